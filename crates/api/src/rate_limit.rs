//! Rate limits per client address (actix-extensible-rate-limit, fixed one-minute windows):
//! 429 problem+json with `Retry-After` and the `RateLimit-*` headers.

use std::future::{Ready, ready};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_extensible_rate_limit::HeaderCompatibleOutput;
use actix_extensible_rate_limit::RateLimiter;
use actix_extensible_rate_limit::backend::memory::InMemoryBackend;
use actix_extensible_rate_limit::backend::{SimpleInput, SimpleOutput};
use actix_web::HttpResponse;
use actix_web::dev::ServiceRequest;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use infrastructure::settings::IpNet;

use crate::error::problem_response;

pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The client's address: the socket peer, unless the peer is a trusted proxy, in which case
/// the right-most address of `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
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

fn set_headers(map: &mut HeaderMap, output: &SimpleOutput) {
    map.insert(RATELIMIT_LIMIT, HeaderValue::from(output.limit()));
    map.insert(RATELIMIT_REMAINING, HeaderValue::from(output.remaining()));
    map.insert(RATELIMIT_RESET, HeaderValue::from(output.seconds_until_reset()));
}

type InputFuture = Ready<Result<SimpleInput, actix_web::Error>>;

/// A limiter of `per_minute` requests per client address, named `scope` (its own counters).
pub fn limiter(
    backend: InMemoryBackend,
    scope: &'static str,
    per_minute: u32,
    trusted: Arc<Vec<IpNet>>,
) -> RateLimiter<InMemoryBackend, SimpleOutput, impl Fn(&ServiceRequest) -> InputFuture + 'static> {
    let input = move |req: &ServiceRequest| {
        let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let ip = client_ip(req.peer_addr().map(|a| a.ip()), forwarded, &trusted);
        let key = match ip {
            Some(ip) => format!("{scope}:{ip}"),
            None => format!("{scope}:unknown"),
        };
        ready(Ok(SimpleInput { interval: Duration::from_secs(60), max_requests: u64::from(per_minute), key }))
    };
    RateLimiter::builder(backend, input)
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
}
