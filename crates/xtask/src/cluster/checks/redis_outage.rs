//! (c) Redis frozen, then down, then back: the replicas fail open (within a second), the
//! fail-closed replica answers 503, and the shared limit returns with Redis.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::Signal;

use super::super::http::{Response, lo};
use super::super::redis;
use super::super::report::Report;
use super::super::topology::Cluster;
use super::{WRONG_PASSWORD, joined, login};

const SECOND: Duration = Duration::from_secs(1);

/// `n` wrong logins from `src` through nginx: their statuses and the slowest answer.
async fn burst(c: &Cluster, run: &str, label: &str, src: Ipv4Addr, n: usize) -> Result<(Vec<u16>, Duration)> {
    let mut statuses = Vec::new();
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let rid = format!("c-{run}-{label}-{i}");
        let r = login(&c.http, c.nginx_port, &c.config.admin_email, WRONG_PASSWORD, src, Some(&rid), &[]).await?;
        statuses.push(r.status);
        slowest = slowest.max(r.elapsed);
    }
    Ok((statuses, slowest))
}

/// One wrong login straight to the fail-closed replica.
async fn closed_login(c: &Cluster, closed: usize, src: Ipv4Addr) -> Result<Response> {
    login(&c.http, c.replicas[closed].port, &c.config.admin_email, WRONG_PASSWORD, src, None, &[]).await
}

pub async fn check(c: &mut Cluster, rep: &mut Report, run: &str, closed: usize) -> Result<()> {
    let keys = redis::count_keys(c.redis_port, "comanda:ratelimit:*")?;
    rep.info(format!("Redis holds {keys} rate-limit keys before the outage"));

    // Frozen: connections are accepted by the kernel but nothing answers (the 250 ms timeout).
    let redis_proc = c.redis.as_mut().context("Redis is not running")?;
    redis_proc.signal(Signal::SIGSTOP);
    let frozen = frozen(c, rep, run, closed).await;
    let redis_proc = c.redis.as_mut().context("Redis is not running")?;
    redis_proc.signal(Signal::SIGCONT);
    frozen?;

    // Gone: connections are refused.
    redis_proc.stop(Signal::SIGKILL, Duration::from_secs(5)).await;
    let (statuses, slowest) = burst(c, run, "down", lo(0, 0, 21), 8).await?;
    rep.info(format!(
        "Redis killed: 8 wrong logins from 127.0.0.21: {}, slowest {} ms",
        joined(&statuses),
        slowest.as_millis()
    ));
    rep.check(
        statuses == [401; 8] && slowest < SECOND,
        "(c)",
        "with Redis down, logins are served (fail open) within 1 s each",
    );
    let ready = c.http.get(c.nginx_port, "/health/ready").from(lo(0, 0, 21)).send().await?;
    rep.check(ready.status == 200, "(c)", format!("/health/ready through nginx stays {} without Redis", ready.status));
    let r = closed_login(c, closed, lo(0, 0, 23)).await?;
    let kind = if r.status == 503 { r.json()?["type"].as_str().unwrap_or("-").to_owned() } else { "-".to_owned() };
    rep.check(
        r.status == 503 && kind == "/problems/unavailable" && r.elapsed < SECOND,
        "(c)",
        format!("the fail-closed replica answers {} {kind} in {} ms", r.status, r.millis()),
    );

    // Back (an empty Redis on the same port): the shared limit holds again.
    c.start_redis().await?;
    let back = Instant::now();
    let mut recovered = None;
    let mut tries = Vec::new();
    for attempt in 1..=5u8 {
        let src = lo(0, 0, 30 + attempt);
        let mut statuses = Vec::new();
        let mut uncounted = 0;
        for i in 0..6 {
            let rid = format!("c-{run}-back{attempt}-{i}");
            let r = login(&c.http, c.nginx_port, &c.config.admin_email, WRONG_PASSWORD, src, Some(&rid), &[]).await?;
            statuses.push(r.status);
            // An answer without RateLimit-* headers passed without being counted (fail open).
            if r.header("ratelimit-limit").is_none() {
                uncounted += 1;
            }
        }
        tries.push(format!("{src}: {} ({uncounted} uncounted)", joined(&statuses)));
        if statuses == [401, 401, 401, 401, 401, 429] {
            recovered = Some((attempt, src, statuses, back.elapsed()));
            break;
        }
        tokio::time::sleep(SECOND).await;
    }
    rep.info(format!("Redis restarted; 6 logins per fresh client until the limit holds: {}", tries.join("; ")));
    match recovered {
        Some((attempt, src, statuses, took)) => rep.pass(
            "(c)",
            format!(
                "Redis back: 6 logins from {src} give {} (shared limit holds again {:.1} s after the restart, client {attempt})",
                joined(&statuses),
                took.as_secs_f64()
            ),
        ),
        None => rep.fail("(c)", "Redis restarted, but the shared limit did not come back within 5 clients"),
    }
    // The fail-closed replica, retried as a client honouring Retry-After would (faster here).
    let mut answers = Vec::new();
    for _ in 0..15 {
        let status = closed_login(c, closed, lo(0, 0, 25)).await?.status;
        answers.push(status);
        if status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = answers.iter().filter(|&&s| s == 503).count();
    rep.check(
        answers.last() == Some(&401),
        "(c)",
        format!(
            "the fail-closed replica serves again once Redis is back ({}: {refused} more 503 before it reconnected)",
            joined(&answers)
        ),
    );
    Ok(())
}

/// While Redis is frozen: the replicas behind nginx fail open, the fail-closed one refuses.
async fn frozen(c: &Cluster, rep: &mut Report, run: &str, closed: usize) -> Result<()> {
    let (statuses, slowest) = burst(c, run, "frozen", lo(0, 0, 20), 8).await?;
    rep.info(format!(
        "Redis frozen (SIGSTOP): 8 wrong logins from 127.0.0.20: {}, slowest {} ms",
        joined(&statuses),
        slowest.as_millis()
    ));
    rep.check(
        statuses == [401; 8] && slowest < SECOND,
        "(c)",
        "with Redis not answering, logins are served (fail open: no 429, no 5xx) within 1 s each",
    );
    let r = closed_login(c, closed, lo(0, 0, 23)).await?;
    rep.check(
        r.status == 503 && r.header("retry-after").is_some() && r.elapsed < SECOND,
        "(c)",
        format!(
            "the replica with RATE_LIMIT_FAIL_OPEN=false answers {} (Retry-After {}) in {} ms",
            r.status,
            r.header_or_dash("retry-after"),
            r.millis()
        ),
    );
    Ok(())
}
