//! Typed settings, read once from the environment (and `.env`) and checked at start. A wrong
//! value stops the process with a sentence that names the variable.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

pub mod catalog;

pub use catalog::{ReadBy, SETTINGS, Setting, Table};

/// Where the process runs: development allows conveniences that production refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// An IP address or a network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length"))?,
        };
        Ok(Self { addr, prefix })
    }
}

/// Everything the processes can be told. See `.env.example` and the README's table.
#[derive(Debug, Clone)]
pub struct Settings {
    pub app_env: AppEnv,
    pub host: String,
    pub port: u16,
    /// `None`: start the local PostgreSQL under `data_dir`.
    pub database_url: Option<SecretString>,
    pub data_dir: PathBuf,
    pub database_pool_size: u32,
    pub database_timeout: Duration,
    pub database_statement_timeout: Duration,
    /// `None` in development means: make a random one for this run.
    pub jwt_secret: Option<SecretString>,
    pub jwt_ttl_seconds: u64,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub log_format: LogFormat,
    pub rate_limit_login_per_minute: u32,
    pub rate_limit_per_minute: u32,
    pub trusted_proxies: Vec<IpNet>,
    /// Rate-limit counters shared by every replica in this Redis; `None`: in this process only.
    pub redis_url: Option<SecretString>,
    /// When Redis does not answer: let requests through (`true`) or answer 503 (`false`).
    pub rate_limit_fail_open: bool,
    /// Origins allowed to call the API from a browser; empty: CORS off.
    pub cors_allowed_origins: Vec<String>,
    pub argon2: Argon2Settings,
    pub hash_workers: usize,
    pub hash_queue: usize,
    /// How the hashing threads are scheduled against the threads answering requests.
    pub hash_priority: crate::cpu_pool::PoolPriority,
    pub http_workers: usize,
    /// Threads writing new orders in batches (each holds a connection while it writes).
    pub order_writers: usize,
    pub blocking_threads: usize,
    pub shutdown_timeout: Duration,
    /// How long a request's body may take to arrive (else 408).
    pub body_read_timeout: Duration,
    pub idempotency_ttl_hours: u32,
    pub report_rollup_interval: Duration,
    pub admin_email: String,
    pub admin_name: String,
    pub admin_password: Option<SecretString>,
    /// OpenTelemetry traces go over OTLP/HTTP (protobuf) to this collector; `None`: no tracing
    /// export at all.
    pub otel_endpoint: Option<String>,
    /// Testing aid: every response body is also appended to a file in this folder, so that a
    /// check can search the whole suite's answers for leaked secrets. Refused in production.
    pub response_audit_dir: Option<PathBuf>,
}

/// Whether human-readable logs on standard error get colours: only for a person at a terminal
/// (never into a file, a pipe or journald), and never when `NO_COLOR` is set to anything but
/// the empty string (https://no-color.org).
pub fn log_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A setting that is wrong, with the sentence that says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var} {message}")]
pub struct SettingsError {
    pub var: &'static str,
    pub message: String,
}

fn err(var: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError { var, message: message.into() }
}

impl Settings {
    /// Reads `.env` (if present; real environment variables win) and then the environment.
    pub fn load() -> Result<Self, SettingsError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(err(".env", format!("could not be read: {e}"))),
        }
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads the settings from any source of variables (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |key: &str| lookup(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());

        let app_env = match get("APP_ENV").as_deref() {
            None | Some("development") => AppEnv::Development,
            Some("production") => AppEnv::Production,
            Some(other) => {
                return Err(err("APP_ENV", format!("must be development or production, not {other:?}")));
            }
        };
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(err("LOG_FORMAT", format!("must be pretty or json, not {other:?}")));
            }
        };
        let number = |key: &'static str, default: u64, min: u64, max: u64| -> Result<u64, SettingsError> {
            match get(key) {
                None => Ok(default),
                Some(raw) => raw
                    .parse::<u64>()
                    .ok()
                    .filter(|v| (min..=max).contains(v))
                    .ok_or_else(|| err(key, format!("must be a whole number from {min} to {max}, not {raw:?}"))),
            }
        };
        let jwt_secret = get("JWT_SECRET").map(SecretString::from);
        if let Some(secret) = &jwt_secret
            && secret.expose_secret().len() < 32
        {
            return Err(err("JWT_SECRET", "must be at least 32 bytes long"));
        }
        let trusted_proxies = match get("TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(IpNet::from_str)
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    err("TRUSTED_PROXIES", format!("must be a comma-separated list of IPs or CIDR networks: {e}"))
                })?,
        };
        let cors_allowed_origins = match get("CORS_ALLOWED_ORIGINS") {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|origin| {
                    let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
                        && !origin.ends_with('/')
                        && origin.split("://").nth(1).is_some_and(|host| !host.is_empty() && !host.contains('/'));
                    if ok {
                        Ok(origin.to_owned())
                    } else {
                        Err(err(
                            "CORS_ALLOWED_ORIGINS",
                            format!("must list origins like https://app.example.com, not {origin:?}"),
                        ))
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        let redis_url = get("REDIS_URL").map(SecretString::from);
        if let Some(url) = &redis_url
            && !url.expose_secret().starts_with("redis://")
        {
            return Err(err(
                "REDIS_URL",
                "must be a redis:// URL (TLS is not built in: use a private network or a TLS sidecar)",
            ));
        }
        let rate_limit_fail_open = match get("RATE_LIMIT_FAIL_OPEN").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => return Err(err("RATE_LIMIT_FAIL_OPEN", format!("must be true or false, not {other:?}"))),
        };
        let database_url = get("DATABASE_URL").map(SecretString::from);
        if let Some(url) = &database_url {
            let url = url.expose_secret();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(err("DATABASE_URL", "must be a postgres:// URL"));
            }
        }
        let pool_size = number("DATABASE_POOL_SIZE", 10, 1, 1000)? as u32;

        let settings = Self {
            app_env,
            host: get("HOST").unwrap_or_else(|| "127.0.0.1".into()),
            port: number("PORT", 8000, 0, 65_535)? as u16,
            database_url,
            data_dir: PathBuf::from(get("DATA_DIR").unwrap_or_else(|| ".data".into())),
            database_pool_size: pool_size,
            database_timeout: Duration::from_millis(number("DATABASE_TIMEOUT_MS", 1000, 50, 60_000)?),
            database_statement_timeout: Duration::from_millis(number(
                "DATABASE_STATEMENT_TIMEOUT_MS",
                10_000,
                100,
                3_600_000,
            )?),
            jwt_secret,
            jwt_ttl_seconds: number("JWT_TTL_SECONDS", 1800, 60, 86_400)?,
            jwt_issuer: get("JWT_ISSUER").unwrap_or_else(|| "comanda".into()),
            jwt_audience: get("JWT_AUDIENCE").unwrap_or_else(|| "comanda-api".into()),
            log_format,
            rate_limit_login_per_minute: number("RATE_LIMIT_LOGIN_PER_MINUTE", 5, 0, 1_000_000)? as u32,
            rate_limit_per_minute: number("RATE_LIMIT_PER_MINUTE", 1200, 0, 100_000_000)? as u32,
            trusted_proxies,
            redis_url,
            rate_limit_fail_open,
            cors_allowed_origins,
            argon2: Argon2Settings {
                memory_kib: number("ARGON2_MEMORY_KIB", 19_456, 8, 4_194_304)? as u32,
                iterations: number("ARGON2_ITERATIONS", 2, 1, 100)? as u32,
                parallelism: number("ARGON2_PARALLELISM", 1, 1, 64)? as u32,
            },
            hash_workers: number("HASH_WORKERS", cores as u64, 1, 256)? as usize,
            hash_queue: number("HASH_QUEUE", 64, 0, 100_000)? as usize,
            hash_priority: match get("HASH_PRIORITY").as_deref() {
                None | Some("idle") => crate::cpu_pool::PoolPriority::Idle,
                Some("low") => crate::cpu_pool::PoolPriority::Low,
                Some("normal") => crate::cpu_pool::PoolPriority::Normal,
                Some(other) => return Err(err("HASH_PRIORITY", format!("must be idle, low or normal, not {other:?}"))),
            },
            http_workers: number("HTTP_WORKERS", cores as u64, 1, 256)? as usize,
            order_writers: number("ORDER_WRITERS", 4, 1, 256)? as usize,
            blocking_threads: number("BLOCKING_THREADS", u64::from(pool_size).max(4), 1, 1024)? as usize,
            shutdown_timeout: Duration::from_secs(number("SHUTDOWN_TIMEOUT_SECONDS", 10, 0, 600)?),
            body_read_timeout: Duration::from_millis(number("BODY_READ_TIMEOUT_MS", 5_000, 100, 600_000)?),
            idempotency_ttl_hours: number("IDEMPOTENCY_TTL_HOURS", 24, 24, 24 * 365)? as u32,
            report_rollup_interval: Duration::from_secs(number("REPORT_ROLLUP_INTERVAL_SECONDS", 60, 0, 86_400)?),
            admin_email: get("ADMIN_EMAIL").unwrap_or_else(|| "admin@comanda.local".into()),
            admin_name: get("ADMIN_NAME").unwrap_or_else(|| "Administrator".into()),
            admin_password: get("ADMIN_PASSWORD").map(SecretString::from),
            response_audit_dir: get("RESPONSE_AUDIT_DIR").map(PathBuf::from),
            otel_endpoint: match get("OTEL_EXPORTER_OTLP_ENDPOINT") {
                None => None,
                Some(url) if url.starts_with("http://") => Some(url.trim_end_matches('/').to_owned()),
                Some(_) => {
                    return Err(err(
                        "OTEL_EXPORTER_OTLP_ENDPOINT",
                        "must be an http:// URL of an OTLP/HTTP collector (a local agent or sidecar; TLS is not built in)",
                    ));
                }
            },
        };
        settings.check_production()?;
        Ok(settings)
    }

    /// Production refuses the development conveniences.
    fn check_production(&self) -> Result<(), SettingsError> {
        if self.app_env != AppEnv::Production {
            return Ok(());
        }
        if self.database_url.is_none() {
            return Err(err(
                "DATABASE_URL",
                "must be set when APP_ENV=production (the local PostgreSQL is for development)",
            ));
        }
        if self.response_audit_dir.is_some() {
            return Err(err("RESPONSE_AUDIT_DIR", "is a testing aid and is refused when APP_ENV=production"));
        }
        if self.argon2.memory_kib < 19_456 || self.argon2.iterations < 2 {
            return Err(err(
                "ARGON2_MEMORY_KIB",
                "and ARGON2_ITERATIONS must be at least OWASP's 19456 KiB and 2 when APP_ENV=production",
            ));
        }
        Ok(())
    }

    /// What only the server needs: in production, a configured token secret (db-admin signs no
    /// tokens and does not ask for one).
    pub fn check_server(&self) -> Result<(), SettingsError> {
        if self.app_env == AppEnv::Production && self.jwt_secret.is_none() {
            return Err(err("JWT_SECRET", "must be set when APP_ENV=production (at least 32 random bytes)"));
        }
        Ok(())
    }

    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_those_of_the_contract() {
        let s = load(&[]).unwrap();
        assert_eq!(s.app_env, AppEnv::Development);
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 8000));
        assert!(s.database_url.is_none());
        assert_eq!(s.jwt_ttl_seconds, 1800);
        assert_eq!((s.rate_limit_login_per_minute, s.rate_limit_per_minute), (5, 1200));
        assert_eq!(s.argon2, Argon2Settings { memory_kib: 19_456, iterations: 2, parallelism: 1 });
        assert_eq!(s.log_format, LogFormat::Pretty);
    }

    #[test]
    fn a_wrong_value_names_its_variable() {
        let e = load(&[("PORT", "eighty")]).unwrap_err();
        assert_eq!(e.var, "PORT");
        assert!(e.to_string().starts_with("PORT must be a whole number"));
        assert_eq!(load(&[("APP_ENV", "staging")]).unwrap_err().var, "APP_ENV");
        assert_eq!(load(&[("JWT_SECRET", "short")]).unwrap_err().var, "JWT_SECRET");
        assert_eq!(load(&[("DATABASE_URL", "mysql://x")]).unwrap_err().var, "DATABASE_URL");
        assert_eq!(load(&[("TRUSTED_PROXIES", "10.0.0.0/40")]).unwrap_err().var, "TRUSTED_PROXIES");
        assert_eq!(load(&[("IDEMPOTENCY_TTL_HOURS", "1")]).unwrap_err().var, "IDEMPOTENCY_TTL_HOURS");
        assert_eq!(load(&[("CORS_ALLOWED_ORIGINS", "*")]).unwrap_err().var, "CORS_ALLOWED_ORIGINS");
        assert_eq!(load(&[("REDIS_URL", "http://x")]).unwrap_err().var, "REDIS_URL");
        assert_eq!(load(&[("REDIS_URL", "rediss://x")]).unwrap_err().var, "REDIS_URL");
        assert_eq!(load(&[("RATE_LIMIT_FAIL_OPEN", "yes")]).unwrap_err().var, "RATE_LIMIT_FAIL_OPEN");
        assert_eq!(load(&[("CORS_ALLOWED_ORIGINS", "https://a.example/")]).unwrap_err().var, "CORS_ALLOWED_ORIGINS");
        let ok = load(&[("CORS_ALLOWED_ORIGINS", "https://a.example, http://localhost:3000")]).unwrap();
        assert_eq!(ok.cors_allowed_origins, ["https://a.example", "http://localhost:3000"]);
    }

    #[test]
    fn production_refuses_unsafe_defaults() {
        assert_eq!(load(&[("APP_ENV", "production")]).unwrap_err().var, "DATABASE_URL");
        let url = ("DATABASE_URL", "postgres://db/comanda");
        let without_secret = load(&[("APP_ENV", "production"), url]).unwrap();
        assert_eq!(without_secret.check_server().unwrap_err().var, "JWT_SECRET");
        let secret = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");
        assert!(load(&[("APP_ENV", "production"), secret, url]).unwrap().check_server().is_ok());
        assert!(load(&[("APP_ENV", "production"), secret, url, ("RESPONSE_AUDIT_DIR", "/tmp/x")]).is_err());
        assert!(load(&[("APP_ENV", "production"), secret, url, ("ARGON2_MEMORY_KIB", "1024")]).is_err());
    }

    #[test]
    fn cidr_matching() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: IpNet = "::1".parse().unwrap();
        assert!(v6.contains("::1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
    }
}
