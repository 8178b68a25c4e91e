//! Typed settings, read once from the environment (and `.env`) and checked at start. A wrong
//! value stops the process with a sentence that names the variable. These are the settings of
//! both binaries (the database, tokens, hashing, the first admin); the server's own HTTP
//! settings are read by the api crate with the same [`Vars`] reader. Every variable is listed in
//! [`catalog`].

use std::path::PathBuf;
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

/// What both binaries can be told. See `.env.example` and the README's tables.
#[derive(Debug, Clone)]
pub struct Settings {
    pub app_env: AppEnv,
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
    pub argon2: Argon2Settings,
    /// Threads writing new orders in batches (each holds a connection while it writes).
    pub order_writers: usize,
    pub idempotency_ttl_hours: u32,
    pub report_rollup_interval: Duration,
    /// The longest a kitchen display's stream goes without a byte (a comment keeps it open).
    pub kitchen_keepalive: Duration,
    /// How long one stream connection lasts before the server ends it (the display resumes by
    /// id, with its token and permissions checked again).
    pub kitchen_stream_max: Duration,
    /// Minimum age before a kitchen event is purged (a display resumes from any younger one).
    pub kitchen_events_retention_hours: u32,
    pub admin_email: String,
    pub admin_name: String,
    pub admin_password: Option<SecretString>,
    /// The location that the migration bringing locations makes, for the orders and staff
    /// that existed before (and as the first location of a new database).
    pub first_location: crate::db::FirstLocation,
}

/// Whether human-readable logs on standard error get colours: only for a person at a terminal
/// (never into a file, a pipe or journald), and never when `NO_COLOR` is set to anything but
/// the empty string (https://no-color.org).
pub fn log_colour() -> bool {
    use std::io::IsTerminal;
    colour_wanted(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref())
}

/// Colour for a terminal, unless `NO_COLOR` is set to something (<https://no-color.org>).
fn colour_wanted(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// A setting that is wrong, with the sentence that says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var} {message}")]
pub struct SettingsError {
    pub var: &'static str,
    pub message: String,
}

impl SettingsError {
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self { var, message: message.into() }
    }
}

/// Reads `.env` (if present; real environment variables win), for the loaders that follow.
fn read_dotenv() -> Result<(), SettingsError> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(e) if e.not_found() => Ok(()),
        Err(e) => Err(SettingsError::new(".env", format!("could not be read: {e}"))),
    }
}

/// Variables from any source (the environment, or a map in tests), read by the rules every
/// setting follows: trimmed, and an empty value counts as unset.
pub struct Vars<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        (self.lookup)(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A whole number from `min` to `max`, `default` when unset.
    pub fn number(&self, key: &'static str, default: u64, min: u64, max: u64) -> Result<u64, SettingsError> {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw.parse::<u64>().ok().filter(|v| (min..=max).contains(v)).ok_or_else(|| {
                SettingsError::new(key, format!("must be a whole number from {min} to {max}, not {raw:?}"))
            }),
        }
    }

    /// `true` or `false`, `default` when unset.
    pub fn flag(&self, key: &'static str, default: bool) -> Result<bool, SettingsError> {
        match self.get(key).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(SettingsError::new(key, format!("must be true or false, not {other:?}"))),
        }
    }

    /// One of `choices` (the first is the default when unset).
    pub fn choice<T: Copy>(&self, key: &'static str, choices: &[(&str, T)]) -> Result<T, SettingsError> {
        match self.get(key) {
            None => Ok(choices[0].1),
            Some(raw) => choices.iter().find(|(name, _)| *name == raw).map(|(_, v)| *v).ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                let listed = match names.split_last() {
                    Some((last, [])) => (*last).to_owned(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => String::new(),
                };
                SettingsError::new(key, format!("must be {listed}, not {raw:?}"))
            }),
        }
    }

    /// A secret (wrapped so that it never prints).
    pub fn secret(&self, key: &str) -> Option<SecretString> {
        self.get(key).map(SecretString::from)
    }
}

/// The number of cores, the default of the thread counts.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Settings {
    /// Reads `.env` and then the environment.
    pub fn load() -> Result<Self, SettingsError> {
        read_dotenv()?;
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads the settings from any source of variables (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let vars = Vars::new(lookup);
        let app_env =
            vars.choice("APP_ENV", &[("development", AppEnv::Development), ("production", AppEnv::Production)])?;
        let log_format = vars.choice("LOG_FORMAT", &[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)])?;
        let jwt_secret = vars.secret("JWT_SECRET");
        if let Some(secret) = &jwt_secret
            && secret.expose_secret().len() < 32
        {
            return Err(SettingsError::new("JWT_SECRET", "must be at least 32 bytes long"));
        }
        let database_url = vars.secret("DATABASE_URL");
        if let Some(url) = &database_url {
            let url = url.expose_secret();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(SettingsError::new("DATABASE_URL", "must be a postgres:// URL"));
            }
        }
        let settings = Self {
            app_env,
            database_url,
            data_dir: PathBuf::from(vars.get("DATA_DIR").unwrap_or_else(|| ".data".into())),
            database_pool_size: vars.number("DATABASE_POOL_SIZE", 10, 1, 1000)? as u32,
            database_timeout: Duration::from_millis(vars.number("DATABASE_TIMEOUT_MS", 1000, 50, 60_000)?),
            database_statement_timeout: Duration::from_millis(vars.number(
                "DATABASE_STATEMENT_TIMEOUT_MS",
                10_000,
                100,
                3_600_000,
            )?),
            jwt_secret,
            jwt_ttl_seconds: vars.number("JWT_TTL_SECONDS", 1800, 60, 86_400)?,
            jwt_issuer: vars.get("JWT_ISSUER").unwrap_or_else(|| "comanda".into()),
            jwt_audience: vars.get("JWT_AUDIENCE").unwrap_or_else(|| "comanda-api".into()),
            log_format,
            argon2: Argon2Settings {
                memory_kib: vars.number("ARGON2_MEMORY_KIB", 19_456, 8, 4_194_304)? as u32,
                iterations: vars.number("ARGON2_ITERATIONS", 2, 1, 100)? as u32,
                parallelism: vars.number("ARGON2_PARALLELISM", 1, 1, 64)? as u32,
            },
            order_writers: vars.number("ORDER_WRITERS", 4, 1, 256)? as usize,
            idempotency_ttl_hours: vars.number("IDEMPOTENCY_TTL_HOURS", 24, 24, 24 * 365)? as u32,
            report_rollup_interval: Duration::from_secs(vars.number(
                "REPORT_ROLLUP_INTERVAL_SECONDS",
                60,
                0,
                86_400,
            )?),
            kitchen_keepalive: Duration::from_secs(vars.number("KITCHEN_KEEPALIVE_SECONDS", 15, 1, 15)?),
            kitchen_stream_max: Duration::from_secs(vars.number("KITCHEN_STREAM_MAX_SECONDS", 3600, 1, 86_400)?),
            kitchen_events_retention_hours: vars.number("KITCHEN_EVENTS_RETENTION_HOURS", 48, 24, 24 * 365)? as u32,
            admin_email: vars.get("ADMIN_EMAIL").unwrap_or_else(|| "admin@comanda.local".into()),
            admin_name: vars.get("ADMIN_NAME").unwrap_or_else(|| "Administrator".into()),
            admin_password: vars.secret("ADMIN_PASSWORD"),
            first_location: crate::db::FirstLocation {
                name: match vars.get("DEFAULT_LOCATION_NAME") {
                    None => domain::LocationName::parse("Main").expect("a valid name"),
                    Some(raw) => domain::LocationName::parse(&raw)
                        .map_err(|e| SettingsError::new("DEFAULT_LOCATION_NAME", e.to_string()))?,
                },
                time_zone: match vars.get("DEFAULT_TIME_ZONE") {
                    None => domain::TimeZone::UTC,
                    Some(raw) => domain::TimeZone::parse(&raw)
                        .map_err(|e| SettingsError::new("DEFAULT_TIME_ZONE", format!("{e}, not {raw:?}")))?,
                },
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
            return Err(SettingsError::new(
                "DATABASE_URL",
                "must be set when APP_ENV=production (the local PostgreSQL is for development)",
            ));
        }
        if self.argon2.memory_kib < 19_456 || self.argon2.iterations < 2 {
            return Err(SettingsError::new(
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
            return Err(SettingsError::new(
                "JWT_SECRET",
                "must be set when APP_ENV=production (at least 32 random bytes)",
            ));
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
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsStr::new(""))), "an empty NO_COLOR is unset");
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        assert!(!colour_wanted(false, None), "a pipe or a file gets no colour");
    }

    #[test]
    fn defaults_are_those_of_the_contract() {
        let s = load(&[]).unwrap();
        assert_eq!(s.app_env, AppEnv::Development);
        assert!(s.database_url.is_none());
        assert_eq!(s.jwt_ttl_seconds, 1800);
        assert_eq!(s.argon2, Argon2Settings { memory_kib: 19_456, iterations: 2, parallelism: 1 });
        assert_eq!(s.log_format, LogFormat::Pretty);
    }

    #[test]
    fn a_wrong_value_names_its_variable() {
        let e = load(&[("DATABASE_POOL_SIZE", "eighty")]).unwrap_err();
        assert_eq!(e.var, "DATABASE_POOL_SIZE");
        assert!(e.to_string().starts_with("DATABASE_POOL_SIZE must be a whole number"));
        assert_eq!(load(&[("APP_ENV", "staging")]).unwrap_err().var, "APP_ENV");
        assert_eq!(load(&[("JWT_SECRET", "short")]).unwrap_err().var, "JWT_SECRET");
        assert_eq!(load(&[("DATABASE_URL", "mysql://x")]).unwrap_err().var, "DATABASE_URL");
        assert_eq!(load(&[("IDEMPOTENCY_TTL_HOURS", "1")]).unwrap_err().var, "IDEMPOTENCY_TTL_HOURS");
    }

    #[test]
    fn production_refuses_unsafe_defaults() {
        assert_eq!(load(&[("APP_ENV", "production")]).unwrap_err().var, "DATABASE_URL");
        let url = ("DATABASE_URL", "postgres://db/comanda");
        let without_secret = load(&[("APP_ENV", "production"), url]).unwrap();
        assert_eq!(without_secret.check_server().unwrap_err().var, "JWT_SECRET");
        let secret = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");
        assert!(load(&[("APP_ENV", "production"), secret, url]).unwrap().check_server().is_ok());
        assert!(load(&[("APP_ENV", "production"), secret, url, ("ARGON2_MEMORY_KIB", "1024")]).is_err());
    }
}
