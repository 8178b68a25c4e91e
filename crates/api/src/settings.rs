//! The server's own settings: HTTP (address, workers, request limits, CORS, trusted proxies),
//! rate limits, the hashing pool and telemetry. Read with the same rules and the same reader as
//! the settings of both binaries (`infrastructure::settings`), and listed in the same catalog.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

use infrastructure::settings::{AppEnv, Settings, SettingsError, Vars, cores};

use crate::hashing_pool::PoolPriority;

/// What `comanda-api` alone can be told.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub http_workers: usize,
    pub blocking_threads: usize,
    pub shutdown_timeout: Duration,
    /// How long a request's body may take to arrive (else 408).
    pub body_read_timeout: Duration,
    pub rate_limit_login_per_minute: u32,
    pub rate_limit_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Rate-limit counters shared by every replica in this Redis; `None`: in this process only.
    pub redis_url: Option<SecretString>,
    /// When Redis does not answer: let requests through (`true`) or answer 503 (`false`).
    pub rate_limit_fail_open: bool,
    /// Origins allowed to call the API from a browser; empty: CORS off.
    pub cors_allowed_origins: Vec<String>,
    pub hash_workers: usize,
    pub hash_queue: usize,
    /// How the hashing threads are scheduled against the threads answering requests.
    pub hash_priority: PoolPriority,
    /// OpenTelemetry traces go over OTLP/HTTP (protobuf) to this collector; `None`: no tracing
    /// export at all.
    pub otel_endpoint: Option<String>,
    /// Testing aid: every response body is also appended to a file in this folder, so that a
    /// check can search the whole suite's answers for leaked secrets. Refused in production.
    pub response_audit_dir: Option<PathBuf>,
}

/// Everything the server reads: the settings of both binaries and its own.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub server: ServerSettings,
}

impl Config {
    /// Reads `.env` (if present; real environment variables win) and then the environment.
    pub fn load() -> Result<Self, SettingsError> {
        let settings = Settings::load()?;
        let server = ServerSettings::from_lookup(|key| std::env::var(key).ok(), &settings)?;
        Ok(Self { settings, server })
    }

    /// From any source of variables (tests pass a map, or nothing for the defaults).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let settings = Settings::from_lookup(&lookup)?;
        let server = ServerSettings::from_lookup(&lookup, &settings)?;
        Ok(Self { settings, server })
    }
}

/// An address or a network in CIDR notation (an address alone is that one host).
fn parse_net(raw: &str) -> Result<IpNet, String> {
    if let Ok(net) = IpNet::from_str(raw) {
        return Ok(net);
    }
    IpAddr::from_str(raw).map(IpNet::from).map_err(|_| format!("{raw:?} is not an IP address or CIDR network"))
}

impl ServerSettings {
    /// Reads the server's settings; `settings` are those already read (the environment decides
    /// what production refuses, the pool size the default of the blocking threads).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>, settings: &Settings) -> Result<Self, SettingsError> {
        let vars = Vars::new(lookup);
        let trusted_proxies = match vars.get("TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(parse_net)
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    SettingsError::new(
                        "TRUSTED_PROXIES",
                        format!("must be a comma-separated list of IPs or CIDR networks: {e}"),
                    )
                })?,
        };
        let cors_allowed_origins = match vars.get("CORS_ALLOWED_ORIGINS") {
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
                        Err(SettingsError::new(
                            "CORS_ALLOWED_ORIGINS",
                            format!("must list origins like https://app.example.com, not {origin:?}"),
                        ))
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        let redis_url = vars.secret("REDIS_URL");
        if let Some(url) = &redis_url
            && !url.expose_secret().starts_with("redis://")
        {
            return Err(SettingsError::new(
                "REDIS_URL",
                "must be a redis:// URL (TLS is not built in: use a private network or a TLS sidecar)",
            ));
        }
        let otel_endpoint = match vars.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            None => None,
            Some(url) if url.starts_with("http://") => Some(url.trim_end_matches('/').to_owned()),
            Some(_) => {
                return Err(SettingsError::new(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "must be an http:// URL of an OTLP/HTTP collector (a local agent or sidecar; TLS is not built in)",
                ));
            }
        };
        let response_audit_dir = vars.get("RESPONSE_AUDIT_DIR").map(PathBuf::from);
        if response_audit_dir.is_some() && settings.app_env == AppEnv::Production {
            return Err(SettingsError::new(
                "RESPONSE_AUDIT_DIR",
                "is a testing aid and is refused when APP_ENV=production",
            ));
        }
        if response_audit_dir.is_some() && !cfg!(feature = "response-audit") {
            return Err(SettingsError::new(
                "RESPONSE_AUDIT_DIR",
                "is a testing aid this build does not carry (build with --features api/response-audit)",
            ));
        }
        let cores = cores() as u64;
        Ok(Self {
            host: vars.get("HOST").unwrap_or_else(|| "127.0.0.1".into()),
            port: vars.number("PORT", 8000, 0, 65_535)? as u16,
            http_workers: vars.number("HTTP_WORKERS", cores, 1, 256)? as usize,
            blocking_threads: vars.number("BLOCKING_THREADS", u64::from(settings.database_pool_size).max(4), 1, 1024)?
                as usize,
            shutdown_timeout: Duration::from_secs(vars.number("SHUTDOWN_TIMEOUT_SECONDS", 10, 0, 600)?),
            body_read_timeout: Duration::from_millis(vars.number("BODY_READ_TIMEOUT_MS", 5_000, 100, 600_000)?),
            rate_limit_login_per_minute: vars.number("RATE_LIMIT_LOGIN_PER_MINUTE", 5, 0, 1_000_000)? as u32,
            rate_limit_per_minute: vars.number("RATE_LIMIT_PER_MINUTE", 1200, 0, 100_000_000)? as u32,
            trusted_proxies,
            redis_url,
            rate_limit_fail_open: vars.flag("RATE_LIMIT_FAIL_OPEN", true)?,
            cors_allowed_origins,
            hash_workers: vars.number("HASH_WORKERS", cores, 1, 256)? as usize,
            hash_queue: vars.number("HASH_QUEUE", 64, 0, 100_000)? as usize,
            hash_priority: vars.choice(
                "HASH_PRIORITY",
                &[("idle", PoolPriority::Idle), ("low", PoolPriority::Low), ("normal", PoolPriority::Normal)],
            )?,
            otel_endpoint,
            response_audit_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::{BTreeSet, HashMap};

    use infrastructure::settings::catalog::{ReadBy, names};

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, SettingsError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_those_of_the_contract() {
        let s = load(&[]).unwrap().server;
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 8000));
        assert_eq!((s.rate_limit_login_per_minute, s.rate_limit_per_minute), (5, 1200));
        assert_eq!(s.body_read_timeout, Duration::from_secs(5));
        assert_eq!(s.blocking_threads, 10);
    }

    #[test]
    fn a_wrong_value_names_its_variable() {
        let e = load(&[("PORT", "eighty")]).unwrap_err();
        assert_eq!(e.var, "PORT");
        assert!(e.to_string().starts_with("PORT must be a whole number"));
        for (var, value) in [
            ("TRUSTED_PROXIES", "10.0.0.0/40"),
            ("CORS_ALLOWED_ORIGINS", "*"),
            ("CORS_ALLOWED_ORIGINS", "https://a.example/"),
            ("REDIS_URL", "http://x"),
            ("REDIS_URL", "rediss://x"),
            ("RATE_LIMIT_FAIL_OPEN", "yes"),
            ("HASH_PRIORITY", "high"),
            ("BODY_READ_TIMEOUT_MS", "10"),
        ] {
            assert_eq!(load(&[(var, value)]).unwrap_err().var, var, "{var}={value}");
        }
        let ok = load(&[("CORS_ALLOWED_ORIGINS", "https://a.example, http://localhost:3000")]).unwrap();
        assert_eq!(ok.server.cors_allowed_origins, ["https://a.example", "http://localhost:3000"]);
        let proxies = load(&[("TRUSTED_PROXIES", "10.1.0.0/16, 127.0.0.1, ::1")]).unwrap().server.trusted_proxies;
        assert!(proxies[0].contains(&"10.1.200.3".parse::<IpAddr>().unwrap()));
        assert!(!proxies[0].contains(&"10.2.0.1".parse::<IpAddr>().unwrap()));
        assert!(proxies[1].contains(&"127.0.0.1".parse::<IpAddr>().unwrap()));
        assert!(!proxies[1].contains(&"127.0.0.2".parse::<IpAddr>().unwrap()));
        assert!(proxies[2].contains(&"::1".parse::<IpAddr>().unwrap()));
    }

    #[test]
    fn production_refuses_the_response_audit() {
        let production = [
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://db/comanda"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ];
        assert!(load(&production).is_ok());
        let mut with_audit = production.to_vec();
        with_audit.push(("RESPONSE_AUDIT_DIR", "/tmp/x"));
        assert_eq!(load(&with_audit).unwrap_err().var, "RESPONSE_AUDIT_DIR");
    }

    /// The server's loader asks for exactly the variables the catalog lists as the server's.
    #[test]
    fn the_loader_reads_exactly_the_listed_variables() {
        let settings = Settings::from_lookup(|_| None).unwrap();
        let asked = RefCell::new(BTreeSet::new());
        ServerSettings::from_lookup(
            |name| {
                asked.borrow_mut().insert(name.to_owned());
                None
            },
            &settings,
        )
        .unwrap();
        let expected: BTreeSet<String> = names(ReadBy::Server).map(str::to_owned).collect();
        assert_eq!(asked.into_inner(), expected);
    }
}
