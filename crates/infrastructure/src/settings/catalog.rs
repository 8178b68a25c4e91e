//! The list of settings as data: the one place that says which variables exist, their
//! defaults and what they mean. The README's configuration tables are this list rendered (a
//! test compares them), `.env.example` names every variable the binaries read (tested), and the
//! settings loader asks for exactly those (tested); the cluster harness clears them all for the
//! processes it starts.

/// Who reads a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBy {
    /// `comanda-api` and `db-admin`, through [`super::Settings`].
    Core,
    /// `comanda-api` only, through the api crate's server settings (HTTP, rate limits, the
    /// hashing pool, telemetry).
    Server,
    /// The binaries too, straight from the environment (after `.env`): the local PostgreSQL's
    /// discovery, the log filter, the log colours.
    Process,
    /// The tests and the scripts.
    Tools,
}

/// The README's three tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// "Read by both binaries": [`ReadBy::Core`].
    Binaries,
    /// "Read by the server": [`ReadBy::Server`].
    Server,
    /// "Read elsewhere": the rest.
    Elsewhere,
}

impl Table {
    fn holds(self, read_by: ReadBy) -> bool {
        match self {
            Self::Binaries => read_by == ReadBy::Core,
            Self::Server => read_by == ReadBy::Server,
            Self::Elsewhere => matches!(read_by, ReadBy::Process | ReadBy::Tools),
        }
    }
}

/// One setting as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    /// As the README shows it (Markdown).
    pub default: &'static str,
    /// As the README shows it (Markdown, one line).
    pub meaning: &'static str,
    pub read_by: ReadBy,
}

/// Every setting: its variable, its default and what it means, as the README's configuration
/// tables show them (a test renders the tables from this list and compares), and which program
/// reads it. `.env.example` lists the same variables (tested too).
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "APP_ENV",
        default: "`development`",
        meaning: "`development` or `production`. Production refuses to start without `DATABASE_URL`, with Argon2 below 19456 KiB / 2 iterations, or with `RESPONSE_AUDIT_DIR`; the server also without `JWT_SECRET`.",
        read_by: ReadBy::Core,
    },
    Setting { name: "HOST", default: "`127.0.0.1`", meaning: "Address to listen on.", read_by: ReadBy::Server },
    Setting {
        name: "PORT",
        default: "`8000`",
        meaning: "Port to listen on (0 to 65535; 0 picks a free port).",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "DATABASE_URL",
        default: "unset",
        meaning: "`postgres://` or `postgresql://` URL. Unset: the local PostgreSQL under `DATA_DIR`.",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "DATA_DIR",
        default: "`.data`",
        meaning: "Where the local PostgreSQL keeps its data (`postgres/`) and its socket and log (`postgres-run/`). Relative to the working directory. As root, when the `postgres` user cannot enter this folder (a checkout under `/root`), the cluster lives in `/var/lib/comanda/<folder>-<hash>/` instead, and `DATA_DIR/postgres.location` says so; nobody's permissions are changed.",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "DATABASE_POOL_SIZE",
        default: "`10`",
        meaning: "Maximum connections in the pool of each process (1 to 1000), shared by requests, order writers and background jobs. The readiness probe has one more connection of its own, so a process opens up to `DATABASE_POOL_SIZE + 1`.",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "DATABASE_TIMEOUT_MS",
        default: "`1000`",
        meaning: "Pool checkout timeout: how long a request waits for a connection before it gets a 503 (50 to 60000). It is also the longest a request waits for a blocking thread, and a new order in the order writers' queue, before it gets a 503. It sets the readiness probe's wait (at most 1000 ms) and libpq's `connect_timeout` (1 to 10 s) unless the URL has one. With the next setting, it sets the sales rollup's lag (their sum plus 2 minutes, at least 5 minutes).",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "DATABASE_STATEMENT_TIMEOUT_MS",
        default: "`10000`",
        meaning: "`statement_timeout` set on every pooled connection (100 to 3600000).",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "JWT_SECRET",
        default: "unset",
        meaning: "HS256 signing secret, at least 32 bytes. Unset in development: a random secret per start (with a warning), so tokens and list cursors stop working when the process restarts. Required in production.",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "JWT_TTL_SECONDS",
        default: "`1800`",
        meaning: "Token lifetime (60 to 86400).",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "JWT_ISSUER",
        default: "`comanda`",
        meaning: "`iss` claim issued and required.",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "JWT_AUDIENCE",
        default: "`comanda-api`",
        meaning: "`aud` claim issued and required.",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "LOG_FORMAT",
        default: "`pretty`",
        meaning: "`pretty` (human lines) or `json` (one JSON object per line), on standard error.",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "RATE_LIMIT_LOGIN_PER_MINUTE",
        default: "`5`",
        meaning: "Logins per minute per client address; `0` turns the limit off.",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "RATE_LIMIT_PER_MINUTE",
        default: "`1200`",
        meaning: "Requests per minute per client address on all of `/api/v1` (logins included); `0` turns the limit off.",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "TRUSTED_PROXIES",
        default: "empty",
        meaning: "Comma-separated IPs or CIDR networks of reverse proxies. Only for these peers is `X-Forwarded-For` used to find the client address.",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "REDIS_URL",
        default: "unset",
        meaning: "`redis://` URL (Redis 7 or later): the rate-limit counters live in this Redis, so that every replica counts together. Unset: counters in each process. `rediss://` is refused at start: TLS is not built in.",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "RATE_LIMIT_FAIL_OPEN",
        default: "`true`",
        meaning: "When Redis does not answer within 250 ms (connecting included): `true` lets requests through uncounted, `false` answers 503 with `Retry-After: 1`. Either way the failure is counted in `rate_limit_backend_errors_total{decision=\"allowed\"\\|\"refused\"}` and logged at most once a second per HTTP worker.",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "OTEL_EXPORTER_OTLP_ENDPOINT",
        default: "unset",
        meaning: "`http://` base URL of an OTLP/HTTP collector (no TLS: a local agent or sidecar): traces of every request (route, status, request id; blocking database work and hashing work as child spans) are exported to `<url>/v1/traces`. Unset: no exporter exists.",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "CORS_ALLOWED_ORIGINS",
        default: "empty",
        meaning: "Comma-separated origins (`https://app.example.com`, no path, no trailing slash) that browsers may call the API from. Empty: CORS is off.",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "ARGON2_MEMORY_KIB",
        default: "`19456`",
        meaning: "Argon2id memory cost (8 to 4194304).",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "ARGON2_ITERATIONS",
        default: "`2`",
        meaning: "Argon2id time cost (1 to 100).",
        read_by: ReadBy::Core,
    },
    Setting { name: "ARGON2_PARALLELISM", default: "`1`", meaning: "Argon2id lanes (1 to 64).", read_by: ReadBy::Core },
    Setting {
        name: "HASH_WORKERS",
        default: "number of cores",
        meaning: "Threads of the password-hashing pool (1 to 256).",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "HASH_QUEUE",
        default: "`64`",
        meaning: "Hashing jobs that may wait. When the queue is full, logins and user creation get 503 at once (0 to 100000).",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "HASH_PRIORITY",
        default: "`idle`",
        meaning: "How the hashing threads are scheduled: `idle` (SCHED_IDLE: they run only when no other thread wants the CPU, and yield at once), `low` (nice 10) or `normal`. Under a login storm the threads answering other requests run first.",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "HTTP_WORKERS",
        default: "number of cores",
        meaning: "actix-web worker threads (1 to 256).",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "BLOCKING_THREADS",
        default: "`max(DATABASE_POOL_SIZE, 4)`",
        meaning: "Blocking threads per HTTP worker, for the database work of requests (1 to 1024).",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "ORDER_WRITERS",
        default: "`4`",
        meaning: "Threads per process that write new orders (1 to 256). Each writes the orders queued at that moment (up to 64) with one statement, holding one pooled connection while it writes.",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "SHUTDOWN_TIMEOUT_SECONDS",
        default: "`10`",
        meaning: "How long SIGTERM or SIGINT (Ctrl-C) waits for requests in flight (0 to 600).",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "BODY_READ_TIMEOUT_MS",
        default: "`5000`",
        meaning: "How long a request's body may take to arrive, whole, before the answer is 408 and the connection is closed (100 to 600000). A client that announces a body and sends it a byte at a time holds nothing longer than this.",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "IDEMPOTENCY_TTL_HOURS",
        default: "`24`",
        meaning: "Minimum age before an idempotency key is purged (24 to 8760).",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "REPORT_ROLLUP_INTERVAL_SECONDS",
        default: "`60`",
        meaning: "How often the background job adds closed hours and days to the sales rollup (0 to 86400; `0` stops the job, and reports then read more from the orders themselves).",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "KITCHEN_KEEPALIVE_SECONDS",
        default: "`15`",
        meaning: "The longest a kitchen stream stays silent: a comment line is sent after this many idle seconds (1 to 15).",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "KITCHEN_STREAM_MAX_SECONDS",
        default: "`3600`",
        meaning: "How long one kitchen stream connection lasts before the server ends it; the display reconnects with `Last-Event-ID` and its token is checked again (1 to 86400).",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "KITCHEN_EVENTS_RETENTION_HOURS",
        default: "`48`",
        meaning: "Minimum age before a kitchen event is purged; a display resumes by `Last-Event-ID` from any younger event (24 to 8760).",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "ADMIN_EMAIL",
        default: "`admin@comanda.local`",
        meaning: "The first admin, created by `db-admin init` when no admin exists yet.",
        read_by: ReadBy::Core,
    },
    Setting { name: "ADMIN_NAME", default: "`Administrator`", meaning: "That admin's name.", read_by: ReadBy::Core },
    Setting {
        name: "ADMIN_PASSWORD",
        default: "unset",
        meaning: "That admin's password (8 to 128 characters, not the email). Unset: generated and printed once.",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "DEFAULT_LOCATION_NAME",
        default: "`Main`",
        meaning: "Name of the first location, made by the migration that brings locations (on a new database, or for the orders and staff of an older one).",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "DEFAULT_TIME_ZONE",
        default: "`UTC`",
        meaning: "That location's IANA time zone (`America/Mexico_City`); change it later with `PATCH /api/v1/locations/{id}`.",
        read_by: ReadBy::Core,
    },
    Setting {
        name: "RESPONSE_AUDIT_DIR",
        default: "unset",
        meaning: "Testing aid: every response body is also appended to a file in this folder (`scripts/test.sh` sets it and searches the bodies for leaks). Refused when `APP_ENV=production`.",
        read_by: ReadBy::Server,
    },
    Setting {
        name: "PG_BIN_DIR",
        default: "unset",
        meaning: "Folder holding `initdb`, `pg_ctl` and `postgres` for the local PostgreSQL (binaries and scripts). Unset: a folder on `PATH` that has all three, else the newest `/usr/lib/postgresql/*/bin`.",
        read_by: ReadBy::Process,
    },
    Setting {
        name: "RUST_LOG",
        default: "`info` (`comanda-api`), `warn` (`db-admin`)",
        meaning: "Log filter, [`tracing` env-filter syntax](https://docs.rs/tracing-subscriber/latest/tracing_subscriber/filter/struct.EnvFilter.html), e.g. `info,api=debug`.",
        read_by: ReadBy::Process,
    },
    Setting {
        name: "NO_COLOR",
        default: "unset",
        meaning: "Set to anything but the empty string: human-readable logs have no colours (they have none anyway when standard error is not a terminal: a file, a pipe, journald). See [no-color.org](https://no-color.org).",
        read_by: ReadBy::Process,
    },
    Setting {
        name: "TEST_DATABASE_URL",
        default: "unset",
        meaning: "Tests only: URL of a server's maintenance database (e.g. `postgres://postgres@127.0.0.1:5432/postgres`), with a role that may create databases. Unset: a throwaway cluster under `target/test-pg`. Must be set in the environment because tests do not read `.env`.",
        read_by: ReadBy::Tools,
    },
    Setting {
        name: "TEST_LOG",
        default: "unset",
        meaning: "Tests only: when set, the app's logs are printed during tests.",
        read_by: ReadBy::Tools,
    },
    Setting {
        name: "UPDATE_SNAPSHOT",
        default: "unset",
        meaning: "Tests only: when set, the OpenAPI test rewrites `docs/openapi.json`.",
        read_by: ReadBy::Tools,
    },
    Setting {
        name: "FUZZ_EXAMPLES",
        default: "`100`",
        meaning: "`scripts/fuzz.sh`: examples per operation.",
        read_by: ReadBy::Tools,
    },
    Setting {
        name: "BROWSER_TEST_TIMEOUT",
        default: "`180`",
        meaning: "`scripts/browser-test.sh`: seconds the browser run may take (the build excluded).",
        read_by: ReadBy::Tools,
    },
    Setting {
        name: "NEW_USER_PASSWORD",
        default: "unset",
        meaning: "`db-admin create-user`: the password when `--password` is not given (the variable name can be changed with `--password-env`).",
        read_by: ReadBy::Tools,
    },
    Setting {
        name: "CARGO_TARGET_DIR",
        default: "`target`",
        meaning: "Also moves the test cluster (`$CARGO_TARGET_DIR/test-pg`).",
        read_by: ReadBy::Tools,
    },
];

/// One of the README's tables, as Markdown.
pub fn markdown_table(table: Table) -> String {
    let mut out = String::from("| Variable | Default | Meaning |\n|---|---|---|\n");
    for setting in SETTINGS.iter().filter(|s| table.holds(s.read_by)) {
        out.push_str(&format!("| `{}` | {} | {} |\n", setting.name, setting.default, setting.meaning));
    }
    out
}

/// The names of the variables `read_by` reads.
pub fn names(read_by: ReadBy) -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().filter(move |s| s.read_by == read_by).map(|s| s.name)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    use super::*;

    fn repository_file(name: &str) -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../").to_owned() + name).unwrap()
    }

    /// The README shows the tables rendered from this list (on a difference, the rendered
    /// tables are printed: paste them).
    #[test]
    fn the_readme_tables_are_this_list() {
        let readme = repository_file("README.md");
        for which in [Table::Binaries, Table::Server, Table::Elsewhere] {
            let table = markdown_table(which);
            assert!(
                readme.contains(&table),
                "the README's {which:?} table differs from SETTINGS; it should be:\n{table}"
            );
        }
    }

    /// `.env.example` names every variable the binaries read (settings and process), no other.
    #[test]
    fn env_example_names_every_setting() {
        let example = repository_file(".env.example");
        let named: BTreeSet<&str> = example
            .lines()
            .map(|l| l.trim_start_matches('#').trim())
            .filter_map(|l| l.split_once('=').map(|(name, _)| name))
            .filter(|name| {
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
            .collect();
        let expected: BTreeSet<&str> =
            names(ReadBy::Core).chain(names(ReadBy::Server)).chain(names(ReadBy::Process)).collect();
        assert_eq!(named, expected);
    }

    /// The loader asks for exactly the variables listed as read by both binaries (the server's
    /// own loader is checked in the api crate).
    #[test]
    fn the_loader_reads_exactly_the_listed_variables() {
        let asked = RefCell::new(BTreeSet::new());
        super::super::Settings::from_lookup(|name| {
            asked.borrow_mut().insert(name.to_owned());
            None
        })
        .unwrap();
        let expected: BTreeSet<String> = names(ReadBy::Core).map(str::to_owned).collect();
        assert_eq!(asked.into_inner(), expected);
    }
}
