//! `cargo xtask cluster test`: starts PostgreSQL, Redis, three comanda-api replicas and nginx on
//! loopback ports, plus a fourth replica with RATE_LIMIT_FAIL_OPEN=false that only the checks
//! reach directly, then checks through nginx:
//!
//!   (a) shared login limit: 5 wrong logins per minute per client hold across the replicas
//!       together (the 6th is 429), and nginx's access log shows they reached different ones;
//!   (b) no spoofing: a client that sends its own X-Forwarded-For still hits its limit, another
//!       client is not affected, and a replica reached directly ignores X-Forwarded-For;
//!   (c) Redis down: with Redis frozen (SIGSTOP) and then killed, requests are served within a
//!       second (fail open), the fail-closed replica answers 503, and once Redis is back the
//!       shared limit holds again;
//!   (d) consistency: clients create and pay orders with Idempotency-Keys, retrying, while a
//!       replica is killed (SIGKILL) and restarted; every acknowledged order and payment exists
//!       exactly once and nothing is overpaid, through the API and in the database;
//!   (e) graceful stop: every replica exits 0 on SIGTERM, and none logged an ERROR.
//!
//! Each client uses its own loopback source address (127.0.0.10, 127.0.1.1, ...): to the server
//! they are different machines, and none of them is the trusted proxy (127.0.0.1, nginx). The
//! topology comes down at the end, also on a failure, Ctrl-C or SIGTERM.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::http::{Http, Response};
use super::ports::random_hex;
use super::report::Report;
use super::topology::{Cluster, Config};
use super::{Folders, StopSignals};

mod consistency;
mod limits;
mod redis_outage;
mod shutdown;

pub const WAITER_PASSWORD: &str = "cluster waiter password";
pub const ADMIN_PASSWORD: &str = "cluster admin password";
pub const WRONG_PASSWORD: &str = "not the password at all";
pub const LOGIN: &str = "/api/v1/auth/login";

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    folders: Folders,
    /// (d): clients creating and paying orders at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=200))]
    clients: u8,
    /// (d): seconds the clients start new orders.
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// (d): seconds before the victim replica is frozen and killed.
    #[arg(long, default_value_t = 4.0)]
    kill_after: f64,
    /// (d): seconds the victim is frozen (SIGSTOP) before SIGKILL, so that requests are in
    /// flight on it when it dies.
    #[arg(long, default_value_t = 0.5)]
    freeze: f64,
    /// (d): seconds the victim stays down before it is restarted.
    #[arg(long, default_value_t = 3.0)]
    down_for: f64,
    /// (d): seconds one request may be retried.
    #[arg(long, default_value_t = 30.0)]
    deadline: f64,
    /// Which of the checks (a) to (d) to run; (e) always runs.
    #[arg(long, default_value = "abcd")]
    only: String,
}

/// The settings of the checks' topology.
fn settings() -> Vec<(&'static str, String)> {
    let mut settings: Vec<(&'static str, String)> = [
        ("RATE_LIMIT_LOGIN_PER_MINUTE", "5"),
        ("RATE_LIMIT_PER_MINUTE", "0"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "5"),
        ("DATABASE_POOL_SIZE", "8"),
        ("HTTP_WORKERS", "2"),
        ("REPORT_ROLLUP_INTERVAL_SECONDS", "5"),
    ]
    .map(|(name, value)| (name, value.to_owned()))
    .to_vec();
    // Under scripts/test.sh: these answers are searched for leaks with the suite's.
    if let Ok(dir) = std::env::var("RESPONSE_AUDIT_DIR")
        && !dir.is_empty()
    {
        settings.push(("RESPONSE_AUDIT_DIR", dir));
    }
    settings
}

pub async fn test(args: TestArgs) -> Result<()> {
    if args.only.is_empty() || !args.only.chars().all(|c| ('a'..='d').contains(&c)) {
        bail!("--only takes letters of the checks a to d, e.g. --only ab");
    }
    for (name, value) in [("--duration", args.duration), ("--kill-after", args.kill_after), ("--freeze", args.freeze)]
        .into_iter()
        .chain([("--down-for", args.down_for), ("--deadline", args.deadline)])
    {
        if !(0.0..=3600.0).contains(&value) {
            bail!("{name} takes seconds from 0 to 3600, not {value}");
        }
    }
    let mut signals = StopSignals::catch()?;
    let started = Instant::now();
    // Names the run's keys and users.
    let run = random_hex(4)?;
    let mut report = Report::default();
    let config = Config {
        work: args.folders.work("test")?,
        bin_dir: args.folders.bin_dir()?,
        replicas: 3,
        settings: settings(),
        admin_email: "admin@cluster.comanda.local".to_owned(),
        admin_password: ADMIN_PASSWORD.to_owned(),
        nginx_port: None,
        durable: false,
    };
    let mut cluster = Cluster::new(config)?;
    let outcome = tokio::select! {
        outcome = run_checks(&mut cluster, &mut report, &args, &run, started) => outcome.map_err(|e| ("(setup)", e)),
        signal = signals.recv() => Err(("(stopped)", anyhow::anyhow!("by {signal}: the topology is torn down"))),
    };
    if let Err((label, e)) = outcome {
        report.fail(label, format!("{e:#}"));
    }
    let ended = cluster.stop().await;
    shutdown::check(&cluster, &mut report, &ended);
    println!(
        "\n{} failed, {} passed in {:.0} s; logs in {}",
        report.failed(),
        report.passed(),
        started.elapsed().as_secs_f64(),
        cluster.work.display()
    );
    if report.failed() > 0 {
        bail!("{} of the cluster's checks failed", report.failed());
    }
    Ok(())
}

async fn run_checks(
    cluster: &mut Cluster,
    rep: &mut Report,
    args: &TestArgs,
    run: &str,
    started: Instant,
) -> Result<()> {
    cluster.start().await?;
    // A fourth replica, not behind nginx, that refuses requests when Redis is unavailable.
    let closed = cluster.add_replica("api-closed", false, &[("RATE_LIMIT_FAIL_OPEN", "false")])?;
    cluster.start_replicas(&[closed]).await?;
    let behind: Vec<String> =
        cluster.replicas.iter().filter(|r| r.behind_nginx).map(|r| format!("{} :{}", r.name, r.port)).collect();
    rep.info(format!(
        "topology up in {:.1} s: nginx 127.0.0.1:{} -> {}; {} :{} (RATE_LIMIT_FAIL_OPEN=false, direct); Redis :{}; PostgreSQL :{}",
        started.elapsed().as_secs_f64(),
        cluster.nginx_port,
        behind.join(", "),
        cluster.replicas[closed].name,
        cluster.replicas[closed].port,
        cluster.redis_port,
        cluster.pg_port(),
    ));
    if args.only.contains('a') {
        limits::shared_limit(cluster, rep, run).await?;
    }
    if args.only.contains('b') {
        limits::spoofing(cluster, rep, run).await?;
    }
    if args.only.contains('c') {
        redis_outage::check(cluster, rep, run, closed).await?;
    }
    if args.only.contains('d') {
        let options = consistency::Options {
            clients: usize::from(args.clients),
            duration: Duration::from_secs_f64(args.duration),
            kill_after: Duration::from_secs_f64(args.kill_after),
            freeze: Duration::from_secs_f64(args.freeze),
            down_for: Duration::from_secs_f64(args.down_for),
            deadline: Duration::from_secs_f64(args.deadline),
        };
        consistency::check(cluster, rep, run, &options).await?;
    }
    Ok(())
}

/// A login, with an X-Request-Id (to find it in nginx's access log) and X-Forwarded-For
/// headers (one header each) if given.
pub async fn login(
    http: &Http,
    port: u16,
    email: &str,
    password: &str,
    source: Ipv4Addr,
    rid: Option<&str>,
    forwarded: &[&str],
) -> Result<Response> {
    let mut call = http.post(port, LOGIN).from(source).json(&serde_json::json!({"email": email, "password": password}));
    for value in forwarded {
        call = call.header("x-forwarded-for", value);
    }
    if let Some(rid) = rid {
        call = call.header("x-request-id", rid);
    }
    call.send().await.with_context(|| format!("logging in from {source} to port {port}"))
}

/// A token for `email`, or an error naming the answer.
pub async fn token(http: &Http, port: u16, email: &str, password: &str, source: Ipv4Addr) -> Result<String> {
    let r = login(http, port, email, password, source, None, &[]).await?;
    if r.status != 200 {
        bail!("the login of {email} from {source} answered {}: {}", r.status, r.body_text(200));
    }
    let body = r.json()?;
    body["access_token"].as_str().map(str::to_owned).context("a login answer without access_token")
}

/// The replica(s) nginx used for each request whose X-Request-Id starts with `rid_prefix`, in
/// the log's order. nginx writes the line once the answer is out, which can be a moment after
/// the client has read it: waits up to 2 s for `expected` lines.
pub async fn upstreams_of(cluster: &Cluster, rid_prefix: &str, expected: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let log = cluster.read_access_log();
        let found: Vec<String> = log
            .lines()
            .filter_map(super::nginx::AccessLine::parse)
            .filter(|line| line.rid.starts_with(rid_prefix))
            .map(|line| line.upstream.to_owned())
            .collect();
        if found.len() >= expected || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Statuses as `401 401 429`.
pub fn joined<T: ToString>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
}
