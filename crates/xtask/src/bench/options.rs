//! The command line of `cargo xtask bench` and what it resolves to: the run's sizes and
//! durations (the full run's or `--quick`'s), the workloads selected, the fixed parameters of
//! each workload.

#[cfg(test)]
use anyhow::Context as _;
use anyhow::bail;

/// `cargo xtask bench [options]` (`scripts/bench/run.sh` passes its arguments through).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Everything raw goes to target/bench/<timestamp>/, the table to its summary.md. The cluster \
lives in target/bench/pg-<major>/ and keeps its seeded databases for the next run (they are reused when their \
seeded line count matches).")]
pub struct Args {
    /// Smoke run: 20k/60k lines, warm-up 1 s, runs of 3 s (not a measurement).
    #[arg(long)]
    pub quick: bool,
    /// Order lines of the small database (default 1000000).
    #[arg(long, value_name = "N", value_parser = at_least(100))]
    pub lines_small: Option<u64>,
    /// Order lines of the large database (default 10000000).
    #[arg(long, value_name = "N", value_parser = at_least(100))]
    pub lines_large: Option<u64>,
    /// Seconds measured per workload (default 20).
    #[arg(long, value_name = "S", value_parser = at_least(1))]
    pub duration: Option<u64>,
    /// Seconds of warm-up before each measured run (default 5).
    #[arg(long, value_name = "S", value_parser = at_least(0))]
    pub warmup: Option<u64>,
    /// DATABASE_POOL_SIZE of the service = pgbench clients.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = at_least(1))]
    pub pool: u64,
    /// The "thousand waiters" concurrency of W2.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = at_least(2))]
    pub conns_high: u64,
    /// The low concurrency of W2 (default: the pool size).
    #[arg(long, value_name = "N", value_parser = at_least(1))]
    pub conns_low: Option<u64>,
    /// wrk's request timeout in seconds (wrk's own default).
    #[arg(long, value_name = "S", default_value_t = 2, value_parser = at_least(1))]
    pub timeout: u64,
    /// Seeded days, ending at seeding time.
    #[arg(long, value_name = "D", default_value_t = 365, value_parser = at_least(1))]
    pub days: u64,
    /// Seeded waiters; all log in, tokens rotate per thread.
    #[arg(long, value_name = "W", default_value_t = 50, value_parser = at_least(1))]
    pub waiters: u64,
    /// Seeded menu size.
    #[arg(long, value_name = "P", default_value_t = 300, value_parser = at_least(20))]
    pub products: u64,
    /// Extra PostgreSQL setting for the bench cluster (repeatable).
    #[arg(long = "pg-option", value_name = "K=V", value_parser = key_value)]
    pub pg_options: Vec<(String, String)>,
    /// Extra environment variable for comanda-api (repeatable).
    #[arg(long = "server-env", value_name = "K=V", value_parser = key_value)]
    pub server_env: Vec<(String, String)>,
    /// Only these workloads, comma-separated: W0, W1, W1b, W2 (with the baselines), W3, W4,
    /// W5 (with its baseline), W6.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = workload)]
    pub only: Vec<Workload>,
    /// Also run the selected workloads on the release build of this git revision (built in
    /// target/bench/against/), alternately with this build: over the same databases when both
    /// have the same migration files, else each over databases its own db-admin seeded.
    #[arg(long, value_name = "GIT-REV")]
    pub against: Option<String>,
    /// Use the existing target/release binaries.
    #[arg(long)]
    pub skip_build: bool,
    /// Drop and seed the databases again even if they match.
    #[arg(long)]
    pub reseed: bool,
}

/// The workloads, as the table names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    /// `GET /health/live`.
    W0,
    /// The login storm (and the hash it is bound by).
    W1,
    /// Get order at a fixed rate, alone and during a storm.
    W1b,
    /// Create order at two concurrencies, with the pgbench baselines.
    W2,
    /// The sales report on the small and the large database.
    W3,
    /// The mix.
    W4,
    /// Two lines added to an open order, with the pgbench baseline (c).
    W5,
    /// The kitchen stream: 1000 displays of one location while tickets are sent.
    W6,
}

impl Workload {
    pub const ALL: [Workload; 8] = [Self::W0, Self::W1, Self::W1b, Self::W2, Self::W3, Self::W4, Self::W5, Self::W6];

    pub fn name(self) -> &'static str {
        match self {
            Self::W0 => "W0",
            Self::W1 => "W1",
            Self::W1b => "W1b",
            Self::W2 => "W2",
            Self::W3 => "W3",
            Self::W4 => "W4",
            Self::W5 => "W5",
            Self::W6 => "W6",
        }
    }
}

fn workload(raw: &str) -> Result<Workload, String> {
    let raw = raw.trim();
    Workload::ALL.into_iter().find(|w| w.name().eq_ignore_ascii_case(raw)).ok_or_else(|| {
        format!("'{raw}' is not a workload; --only takes W0, W1, W1b, W2, W3, W4, W5, W6 (comma-separated)")
    })
}

fn at_least(min: u64) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    move |raw| match raw.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("must be a whole number >= {min}, not '{raw}'")),
    }
}

fn key_value(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("takes KEY=VALUE, not '{raw}'")),
    }
}

/// The run as resolved from [`Args`]: every figure decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub quick: bool,
    pub lines_small: u64,
    pub lines_large: u64,
    pub duration: u64,
    pub warmup: u64,
    pub fsync_secs: u64,
    pub pool: u64,
    pub conns_low: u64,
    pub conns_high: u64,
    pub wrk_timeout: u64,
    pub days: u64,
    pub waiters: u64,
    pub products: u64,
    pub pg_options: Vec<(String, String)>,
    pub server_env: Vec<(String, String)>,
    /// Sorted, without duplicates.
    pub workloads: Vec<Workload>,
    pub against: Option<String>,
    pub skip_build: bool,
    pub reseed: bool,
}

impl Config {
    pub fn from_args(args: Args) -> anyhow::Result<Self> {
        let (lines_small, lines_large, duration, warmup, fsync_secs) =
            if args.quick { (20_000, 60_000, 3, 1, 1) } else { (1_000_000, 10_000_000, 20, 5, 2) };
        let mut workloads = if args.only.is_empty() { Workload::ALL.to_vec() } else { args.only };
        workloads.sort();
        workloads.dedup();
        let config = Self {
            quick: args.quick,
            lines_small: args.lines_small.unwrap_or(lines_small),
            lines_large: args.lines_large.unwrap_or(lines_large),
            duration: args.duration.unwrap_or(duration),
            warmup: args.warmup.unwrap_or(warmup),
            fsync_secs,
            pool: args.pool,
            conns_low: args.conns_low.unwrap_or(args.pool),
            conns_high: args.conns_high,
            wrk_timeout: args.timeout,
            days: args.days,
            waiters: args.waiters,
            products: args.products,
            pg_options: args.pg_options,
            server_env: args.server_env,
            workloads,
            against: args.against.filter(|rev| !rev.trim().is_empty()),
            skip_build: args.skip_build,
            reseed: args.reseed,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.lines_large <= self.lines_small {
            bail!("--lines-large must be more than --lines-small");
        }
        if self.conns_low == self.conns_high {
            bail!("--conns-low and --conns-high must differ (both are {})", self.conns_low);
        }
        for (key, value) in &self.pg_options {
            // They reach the server as `-c key=value` through pg_ctl's shell.
            if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
                || value.is_empty()
                || value.bytes().any(|b| b.is_ascii_whitespace() || b"'\"\\$`;&|<>()".contains(&b))
            {
                bail!(
                    "--pg-option {key}={value}: the name must be a setting's name, the value one word without quotes"
                );
            }
        }
        Ok(())
    }

    pub fn runs(&self, workload: Workload) -> bool {
        self.workloads.contains(&workload)
    }

    /// Whether the large database is needed (only the report runs on it).
    pub fn needs_large(&self) -> bool {
        self.runs(Workload::W3)
    }

    /// Whether one Argon2id hash is measured (the limit W1's rows are compared with).
    pub fn needs_hash(&self) -> bool {
        self.runs(Workload::W1) || self.runs(Workload::W1b)
    }

    /// The open-files limit 1000 connections need (wrk and the server inherit it; W6's
    /// displays are this process's own sockets).
    pub fn wanted_open_files(&self) -> u64 {
        self.conns_high.max(W6_DISPLAYS) * 2 + 512
    }

    /// W5's open orders per run: enough that none reaches the limit of 100 live lines (one
    /// line when made, then 2 per request, [`W5_ADDS_PER_ORDER`] requests at most) over the
    /// warm-up and the measured run at [`W5_MAX_RPS`], at least [`W5_MIN_ORDERS`]; a multiple
    /// of the pool, so that each pgbench client of baseline (c) has as many.
    pub fn add_orders(&self) -> u64 {
        let secs = self.warmup + self.duration;
        let needed = (W5_MAX_RPS * secs).div_ceil(W5_ADDS_PER_ORDER).max(W5_MIN_ORDERS);
        needed.div_ceil(self.pool) * self.pool
    }

    /// `max_connections` of the bench cluster: the service's pool, pgbench's clients, spare.
    pub fn max_connections(&self) -> u64 {
        self.pool * 2 + 40
    }

    /// Orders to seed for `lines` order lines (db-admin seed's mean is [`LINES_PER_ORDER`]).
    pub fn orders_for(lines: u64) -> u64 {
        ((lines as f64 / LINES_PER_ORDER).round() as u64).max(1)
    }
}

/// Parses `--only` from a string the way the command line does (for the tests).
#[cfg(test)]
fn parse(line: &[&str]) -> anyhow::Result<Config> {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }
    let cli = Cli::try_parse_from(std::iter::once("bench").chain(line.iter().copied())).context("parse")?;
    Config::from_args(cli.args)
}

/// The configuration of a run without options (for the tests).
#[cfg(test)]
pub fn defaults() -> Config {
    parse(&[]).expect("the defaults are valid")
}

/// db-admin seed's mean number of lines per order (1 to 8 lines, weighted).
pub const LINES_PER_ORDER: f64 = 3.6;
/// W0's connections.
pub const CONNS_HEALTH: u64 = 64;
/// W1's connections (well below HASH_QUEUE + HASH_WORKERS: no 503 by design).
pub const CONNS_LOGIN: u64 = 16;
/// W1b: 4 connections ...
pub const CONNS_RATE: u64 = 4;
/// ... each waiting 20 ms after a response: about 190 requests/s.
pub const RATE_DELAY_MS: u64 = 20;
/// W3: one client, so p50 is the service time, not queueing.
pub const CONNS_REPORT: u64 = 1;
/// W4's connections.
pub const CONNS_MIX: u64 = 64;
/// W4's orders' lines.
pub const MIX_LINES: u64 = 4;
/// W2's and the baselines' lines per order.
pub const LINES_SET: [u64; 3] = [1, 5, 20];
/// W2m's lines per order (menu lines), one of [`LINES_SET`]: compared with W2's open lines.
pub const MENU_LINES: u64 = 5;
/// W5's and baseline (c)'s lines per request.
pub const ADD_LINES: u64 = 2;
/// W5's sizing: the fastest rate planned for (requests per second, well above what 2 cores do) ...
pub const W5_MAX_RPS: u64 = 10_000;
/// ... the requests one order may take (1 + 2 × 45 = 91 live lines, below the limit of 100) ...
pub const W5_ADDS_PER_ORDER: u64 = 45;
// An order of W5 stays below the limit of 100 live lines.
const _: () = assert!(1 + ADD_LINES * W5_ADDS_PER_ORDER < 100);
/// ... and the fewest orders a run rotates over.
pub const W5_MIN_ORDERS: u64 = 2000;
/// W6: stream connections (displays) on one location ...
pub const W6_DISPLAYS: u64 = 1000;
/// ... tickets sent to its kitchen per second, evenly spaced ...
pub const W6_TICKETS_PER_SEC: u64 = 200;
/// ... lines per ticket ...
pub const W6_LINES: u64 = 2;
/// ... and its targets: p99 of the delivery latency (ms), the server's peak RSS (MB).
pub const W6_P99_MS: f64 = 100.0;
pub const W6_RSS_MB: f64 = 96.0;
/// The seeded waiters' password.
pub const SEED_PASSWORD: &str = "seed-password";
pub const ADMIN_EMAIL: &str = "admin@bench.comanda.local";
pub const ADMIN_PASSWORD: &str = "bench-admin-password";
pub const JWT_SECRET: &str = "comanda-bench-fixed-jwt-secret-0123456789abcdef";

/// `1000000` -> `1m`, `20000` -> `20k`, `1500000` -> `1500k`: database names.
pub fn human(n: u64) -> String {
    if n.is_multiple_of(1_000_000) {
        format!("{}m", n / 1_000_000)
    } else if n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// `1M`, `20K`: the table's labels.
pub fn label(n: u64) -> String {
    human(n).to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_run_has_the_documented_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            (c.lines_small, c.lines_large, c.duration, c.warmup, c.fsync_secs),
            (1_000_000, 10_000_000, 20, 5, 2)
        );
        assert_eq!((c.pool, c.conns_low, c.conns_high, c.wrk_timeout), (16, 16, 1000, 2));
        assert_eq!((c.days, c.waiters, c.products), (365, 50, 300));
        assert_eq!(c.workloads, Workload::ALL.to_vec());
        assert_eq!(c.against, None);
        assert_eq!(c.max_connections(), 72);
        assert_eq!(c.wanted_open_files(), 2512);
    }

    #[test]
    fn w5_has_orders_enough_for_its_runs() {
        // 10000 req/s over 5 s + 20 s, 45 requests per order: 5556, rounded up to the pool.
        let c = parse(&[]).unwrap();
        assert_eq!(c.add_orders(), 5568);
        assert!(c.add_orders() * W5_ADDS_PER_ORDER >= W5_MAX_RPS * 25);
        let c = parse(&["--quick"]).unwrap();
        assert_eq!(c.add_orders(), 2000);
        let c = parse(&["--quick", "--pool", "12"]).unwrap();
        assert_eq!(c.add_orders(), 2004);
    }

    #[test]
    fn quick_shrinks_the_run_but_explicit_values_win() {
        let c = parse(&["--quick"]).unwrap();
        assert_eq!((c.lines_small, c.lines_large, c.duration, c.warmup, c.fsync_secs), (20_000, 60_000, 3, 1, 1));
        let c = parse(&["--quick", "--duration", "7", "--pool", "8"]).unwrap();
        assert_eq!((c.duration, c.pool, c.conns_low), (7, 8, 8));
    }

    #[test]
    fn numbers_have_their_minimums() {
        assert!(parse(&["--lines-small", "99"]).is_err());
        assert!(parse(&["--products", "19"]).is_err());
        assert!(parse(&["--duration", "0"]).is_err());
        assert!(parse(&["--warmup", "0"]).is_ok());
        assert!(parse(&["--pool", "x"]).is_err());
        assert!(parse(&["--lines-small", "1000", "--lines-large", "1000"]).is_err());
        assert!(parse(&["--conns-low", "1000"]).is_err());
    }

    #[test]
    fn only_selects_workloads_in_table_order() {
        let c = parse(&["--only", "w3,W2", "--only", "W2"]).unwrap();
        assert_eq!(c.workloads, vec![Workload::W2, Workload::W3]);
        assert!(c.needs_large() && !c.needs_hash());
        let c = parse(&["--only", "W1b"]).unwrap();
        assert!(!c.needs_large() && c.needs_hash());
        let c = parse(&["--only", "w6,W5"]).unwrap();
        assert_eq!(c.workloads, vec![Workload::W5, Workload::W6]);
        assert!(!c.needs_large() && !c.needs_hash());
        let e = parse(&["--only", "W7"]).unwrap_err();
        assert!(format!("{e:#}").contains("'W7' is not a workload"), "{e:#}");
    }

    #[test]
    fn key_values_and_pg_options() {
        let c = parse(&["--pg-option", "shared_buffers=256MB", "--server-env", "HTTP_WORKERS=1"]).unwrap();
        assert_eq!(c.pg_options, vec![("shared_buffers".to_owned(), "256MB".to_owned())]);
        assert_eq!(c.server_env, vec![("HTTP_WORKERS".to_owned(), "1".to_owned())]);
        assert!(parse(&["--pg-option", "fsync"]).is_err());
        assert!(parse(&["--pg-option", "work_mem=4 MB"]).is_err());
        assert!(parse(&["--pg-option", "x=1;rm"]).is_err());
    }

    #[test]
    fn names_and_seeding_sizes() {
        assert_eq!(
            (human(1_000_000), human(20_000), human(1_500_000), human(1234)),
            ("1m".into(), "20k".into(), "1500k".into(), "1234".into())
        );
        assert_eq!(label(10_000_000), "10M");
        assert_eq!(Config::orders_for(1_000_000), 277_778);
        assert_eq!(Config::orders_for(1), 1);
    }
}
