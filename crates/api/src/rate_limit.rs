//! Rate limits per client address (actix-extensible-rate-limit, fixed one-minute windows):
//! 429 problem+json with `Retry-After` and the `RateLimit-*` headers. The counters live in this
//! process, or in Redis (`REDIS_URL`) so that every replica counts together; when Redis does
//! not answer in time, requests pass (`RATE_LIMIT_FAIL_OPEN=true`, the default) or get a 503.

use std::cell::Cell;
use std::future::{Ready, ready};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_extensible_rate_limit::HeaderCompatibleOutput;
use actix_extensible_rate_limit::RateLimiter;
use actix_extensible_rate_limit::backend::memory::InMemoryBackend;
use actix_extensible_rate_limit::backend::redis::RedisBackend;
use actix_extensible_rate_limit::backend::{Backend, Decision, SimpleInput, SimpleOutput};
use actix_web::HttpResponse;
use actix_web::dev::ServiceRequest;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use ipnet::IpNet;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::problem::{RETRY_AFTER_SECONDS, problem_response};

const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The client's address: the socket peer, unless the peer is a trusted proxy, in which case
/// the right-most address of `X-Forwarded-For` that is not itself a trusted proxy.
fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let Some(chain) = forwarded_for else {
        return Some(peer);
    };
    let mut client = peer;
    for hop in chain.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            // A garbled entry: stop at the last address we could trust.
            Err(_) => break,
        }
    }
    Some(client)
}

/// Whom a limit counts: an IPv4 address, or the /64 network of an IPv6 address (one host, or
/// one home or office, is given a whole /64 and can pick any address in it; counting single
/// IPv6 addresses would give each client 2^64 allowances).
fn limit_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let network = u128::from(v6) & (u128::MAX << 64);
                format!("{}/64", std::net::Ipv6Addr::from(network))
            }
        },
    }
}

fn set_headers(map: &mut HeaderMap, output: &SimpleOutput) {
    map.insert(RATELIMIT_LIMIT, HeaderValue::from(output.limit()));
    map.insert(RATELIMIT_REMAINING, HeaderValue::from(output.remaining()));
    map.insert(RATELIMIT_RESET, HeaderValue::from(output.seconds_until_reset()));
}

type InputFuture = Ready<Result<SimpleInput, actix_web::Error>>;

/// Where the counters live.
#[derive(Clone)]
pub enum LimitBackend {
    Memory(InMemoryBackend),
    Redis(RedisLimit),
}

/// Redis counters (atomic MULTI of BITFIELD INCRBY and EXPIRE NX, by the crate), reached through
/// a connection made on first use and remade after failures, each call bounded in time.
#[derive(Clone)]
pub struct RedisLimit {
    client: redis::Client,
    fail_open: bool,
    /// When this worker last logged a failure (at most one line a second, however many fail).
    last_report: Rc<Cell<Option<Instant>>>,
    backend: Rc<tokio::sync::OnceCell<RedisBackend>>,
    /// No new connection attempt before this instant (after a failed one).
    next_attempt: Rc<Cell<Instant>>,
}

/// How long one rate-limit decision may take before Redis counts as unavailable.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

impl RedisLimit {
    pub fn new(client: redis::Client, fail_open: bool) -> Self {
        Self {
            client,
            fail_open,
            last_report: Rc::new(Cell::new(None)),
            backend: Rc::new(tokio::sync::OnceCell::new()),
            next_attempt: Rc::new(Cell::new(Instant::now())),
        }
    }

    /// Every failure is counted; a warning says what the limiter did about it, at most once a
    /// second per worker.
    fn report(&self, error: &LimitError) {
        let decision = if self.fail_open { "allowed" } else { "refused" };
        metrics::counter!("rate_limit_backend_errors_total", "decision" => decision).increment(1);
        let now = Instant::now();
        if self.last_report.get().is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1)) {
            self.last_report.set(Some(now));
            if self.fail_open {
                tracing::warn!(error = %error, "rate limit counters unavailable: requests pass uncounted (RATE_LIMIT_FAIL_OPEN=true)");
            } else {
                tracing::warn!(error = %error, "rate limit counters unavailable: requests get 503 (RATE_LIMIT_FAIL_OPEN=false)");
            }
        }
    }

    async fn backend(&self) -> Result<&RedisBackend, LimitError> {
        if let Some(backend) = self.backend.get() {
            return Ok(backend);
        }
        if Instant::now() < self.next_attempt.get() {
            return Err(LimitError("Redis was unreachable a moment ago".into()));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(REDIS_TIMEOUT)
            .set_response_timeout(REDIS_TIMEOUT)
            .set_number_of_retries(1);
        let client = self.client.clone();
        let made = self
            .backend
            .get_or_try_init(|| async move {
                let manager = ConnectionManager::new_with_config(client, config).await?;
                Ok::<_, redis::RedisError>(
                    RedisBackend::builder(manager).key_prefix(Some("comanda:ratelimit:")).build(),
                )
            })
            .await;
        made.map_err(|e| {
            self.next_attempt.set(Instant::now() + Duration::from_secs(1));
            LimitError(format!("could not connect to Redis: {e}"))
        })
    }
}

/// The counters could not be read: 503 when limits fail closed.
#[derive(Debug, thiserror::Error)]
#[error("rate limiter unavailable: {0}")]
pub struct LimitError(String);

impl actix_web::ResponseError for LimitError {
    fn status_code(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = problem_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service is temporarily unavailable; retry shortly",
            None,
        );
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        response
    }
}

impl Backend<SimpleInput> for LimitBackend {
    type Output = SimpleOutput;
    type RollbackToken = String;
    type Error = LimitError;

    async fn request(&self, input: SimpleInput) -> Result<(Decision, SimpleOutput, String), LimitError> {
        match self {
            Self::Memory(memory) => memory.request(input).await.map_err(|never| match never {}),
            Self::Redis(redis) => {
                // One bound for everything: connecting (first use, or after a failure) and asking.
                let answer = tokio::time::timeout(REDIS_TIMEOUT, async {
                    let backend = redis.backend().await?;
                    backend.request(input).await.map_err(|e| LimitError(e.to_string()))
                })
                .await
                .unwrap_or_else(|_| Err(LimitError("Redis did not answer in time".into())));
                if let Err(error) = &answer {
                    redis.report(error);
                }
                answer
            }
        }
    }

    async fn rollback(&self, token: String) -> Result<(), LimitError> {
        match self {
            Self::Memory(memory) => memory.rollback(token).await.map_err(|never| match never {}),
            Self::Redis(redis) => tokio::time::timeout(REDIS_TIMEOUT, async {
                let backend = redis.backend().await?;
                backend.rollback(token).await.map_err(|e| LimitError(e.to_string()))
            })
            .await
            .unwrap_or_else(|_| Err(LimitError("Redis did not answer in time".into()))),
        }
    }
}

/// A limiter of `per_minute` requests per client address, named `scope` (its own counters).
pub fn limiter(
    backend: LimitBackend,
    scope: &'static str,
    per_minute: u32,
    trusted: Arc<Vec<IpNet>>,
    fail_open: bool,
) -> RateLimiter<LimitBackend, SimpleOutput, impl Fn(&ServiceRequest) -> InputFuture + 'static> {
    let input = move |req: &ServiceRequest| {
        let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let ip = client_ip(req.peer_addr().map(|a| a.ip()), forwarded, &trusted);
        let key = match ip {
            Some(ip) => format!("{scope}:{}", limit_key(ip)),
            None => format!("{scope}:unknown"),
        };
        ready(Ok(SimpleInput { interval: Duration::from_secs(60), max_requests: u64::from(per_minute), key }))
    };
    RateLimiter::builder(backend, input)
        .fail_open(fail_open)
        // The innermost limiter's headers win (the login limit on the login route).
        .request_allowed_transformation(Some(
            |map: &mut HeaderMap, output: Option<&SimpleOutput>, _rolled_back: bool| {
                if let Some(output) = output
                    && !map.contains_key(RATELIMIT_LIMIT)
                {
                    set_headers(map, output);
                }
            },
        ))
        .request_denied_response(move |output: &SimpleOutput| {
            crate::metrics::record_rate_limited(scope);
            let seconds = output.seconds_until_reset().max(1);
            let mut response: HttpResponse = problem_response(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                &format!("too many requests from this address; retry in {seconds} s"),
                None,
            );
            let map = response.headers_mut();
            set_headers(map, output);
            map.insert(RETRY_AFTER, HeaderValue::from(seconds));
            response
        })
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // An untrusted peer cannot claim another address.
        assert_eq!(client_ip(Some(ip("203.0.113.9")), Some("1.2.3.4"), &trusted), Some(ip("203.0.113.9")));
        // A trusted proxy: the right-most untrusted hop is the client, whatever the client prepended.
        assert_eq!(client_ip(Some(ip("10.0.0.5")), Some("1.2.3.4, 198.51.100.7"), &trusted), Some(ip("198.51.100.7")));
        assert_eq!(client_ip(Some(ip("10.0.0.5")), Some("198.51.100.7, 10.0.0.9"), &trusted), Some(ip("198.51.100.7")));
        assert_eq!(client_ip(Some(ip("10.0.0.5")), None, &trusted), Some(ip("10.0.0.5")));
        assert_eq!(client_ip(Some(ip("10.0.0.5")), Some("garbage"), &trusted), Some(ip("10.0.0.5")));
        assert_eq!(client_ip(Some(ip("127.0.0.1")), Some("1.2.3.4"), &[]), Some(ip("127.0.0.1")));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_network() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(limit_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")), limit_key(ip("2001:db8:1:2::7")));
        assert_ne!(limit_key(ip("2001:db8:1:3::1")), limit_key(ip("2001:db8:1:2::1")));
        assert_eq!(limit_key(ip("::ffff:198.51.100.7")), "198.51.100.7");
        assert_eq!(limit_key(ip("198.51.100.7")), "198.51.100.7");
        assert_eq!(limit_key(ip("::1")), "::/64");
    }
}
