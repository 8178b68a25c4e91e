//! (d) consistency while a replica dies: clients create and pay orders through nginx, each
//! request with an Idempotency-Key and retried; one replica is frozen (so that requests are surely
//! in flight on it), killed with SIGKILL and restarted. Afterwards every acknowledged order and
//! payment exists exactly once and nothing is overpaid, through the API and in the database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use tokio::task::JoinSet;

use super::super::http::lo;
use super::super::nginx::AccessLine;
use super::super::report::Report;
use super::super::say;
use super::super::topology::Cluster;
use super::{ADMIN_PASSWORD, WAITER_PASSWORD, token};
use clients::{Client, ClientLog, Kind, Op, Outcome, PlacedOrder};

mod clients;
mod verify;

/// The load and the fault.
#[derive(Debug, Clone)]
pub struct Options {
    pub clients: usize,
    pub duration: Duration,
    pub kill_after: Duration,
    pub freeze: Duration,
    pub down_for: Duration,
    pub deadline: Duration,
}

/// The replica that is killed.
const VICTIM: usize = 1;

pub async fn check(c: &mut Cluster, rep: &mut Report, run: &str, o: &Options) -> Result<()> {
    let port = c.nginx_port;
    let mut waiters: Vec<(String, String)> = Vec::new();
    for w in 0..4u8 {
        let email = format!("waiter{w}-{run}@cluster.comanda.local");
        let id = c.create_user(&email, &format!("Waiter {w}"), WAITER_PASSWORD, "waiter")?;
        let token = token(&c.http, port, &email, WAITER_PASSWORD, lo(0, 2, w + 1)).await?;
        waiters.push((id, token));
    }
    let admin = token(&c.http, port, &c.config.admin_email, ADMIN_PASSWORD, lo(0, 2, 100)).await?;

    let started = Instant::now();
    let started_orders = Arc::new(AtomicUsize::new(0));
    // Dropped (on an error or a signal), the set aborts the clients.
    let mut tasks = JoinSet::new();
    for index in 0..o.clients {
        let waiter = index % waiters.len();
        let client = Client {
            http: c.http.clone(),
            port,
            index,
            token: waiters[waiter].1.clone(),
            run: run.to_owned(),
            until: started + o.duration,
            deadline: o.deadline,
            started: started_orders.clone(),
        };
        tasks.spawn(client.run());
    }

    // Frozen first for a moment, so that requests are surely in flight on it when it dies (a
    // replica answers in a few ms: a bare SIGKILL often catches none). nginx has sent them, so
    // it does not pass the POSTs on to another replica: the clients get 503 and retry.
    tokio::time::sleep(o.kill_after).await;
    let victim = &mut c.replicas[VICTIM].proc;
    victim.signal(Signal::SIGSTOP);
    tokio::time::sleep(o.freeze).await;
    let before = started_orders.load(Ordering::Relaxed);
    victim.signal(Signal::SIGKILL);
    victim.wait(Duration::from_secs(10)).await;
    let killed_at = started.elapsed();
    let name = c.replicas[VICTIM].name.clone();
    say(&format!(
        "froze {name} for {:.1} s, then killed it (SIGKILL) at {:.1} s, {before} orders in",
        o.freeze.as_secs_f64(),
        killed_at.as_secs_f64()
    ));
    tokio::time::sleep(o.down_for).await;
    let ready_in = c.restart_replica(VICTIM).await?;
    let restarted_at = started.elapsed();
    let log_offset_at_restart = c.read_access_log().len();
    say(&format!(
        "restarted {name} at {:.1} s (ready {:.2} s after its start)",
        restarted_at.as_secs_f64(),
        ready_in.as_secs_f64()
    ));

    let mut logs: Vec<ClientLog> = Vec::new();
    let patience = o.duration + o.deadline * 4 + Duration::from_secs(30);
    let joined = tokio::time::timeout(patience, async {
        while let Some(done) = tasks.join_next().await {
            logs.push(done.context("a client task failed")?);
        }
        anyhow::Ok(())
    })
    .await;
    match joined {
        Ok(result) => result?,
        Err(_) => {
            tasks.abort_all();
            rep.fail("(d)", "client tasks did not finish in time");
        }
    }
    let elapsed = started.elapsed();

    let orders: Vec<&PlacedOrder> = logs.iter().flat_map(|l| l.orders.iter()).collect();
    let repeats: Vec<_> = logs.iter().flat_map(|l| l.repeats.iter()).collect();
    let order_ops: Vec<&Op> = orders.iter().map(|o| &o.op).collect();
    let pay_ops: Vec<&Op> = orders.iter().flat_map(|o| o.payments.iter()).collect();
    let acked: Vec<&PlacedOrder> = orders.iter().copied().filter(|o| o.op.acked()).collect();

    rep.info(format!(
        "{} clients for {:.0} s through nginx ({:.1} s with the tail); {name} frozen {:.1} s then killed (SIGKILL) at {:.1} s, restarted and ready at {:.1} s",
        o.clients,
        o.duration.as_secs_f64(),
        elapsed.as_secs_f64(),
        o.freeze.as_secs_f64(),
        killed_at.as_secs_f64(),
        restarted_at.as_secs_f64()
    ));
    rep.info(format!("orders:   {}", tally(&order_ops)));
    rep.info(format!("payments: {}", tally(&pay_ops)));
    let bad: Vec<String> =
        repeats.iter().filter(|r| !r.same).take(3).map(|r| format!("{:?} {}", r.kind, r.detail)).collect();
    let count = |kind: Kind| repeats.iter().filter(|r| r.kind == kind).count();
    rep.check(
        bad.is_empty(),
        "(d)",
        format!(
            "{} acknowledged orders and {} acknowledged payments sent again on purpose (same key and body, any replica) were answered with the first resource, Idempotent-Replayed: true{}",
            count(Kind::Order),
            count(Kind::Payment),
            if bad.is_empty() { String::new() } else { format!("; wrong: {}", bad.join("; ")) }
        ),
    );
    let all_ops: Vec<&Op> = order_ops.iter().chain(pay_ops.iter()).copied().collect();
    let errors: Vec<&&Op> = all_ops.iter().filter(|op| op.outcome == Outcome::Error).collect();
    for op in errors.iter().take(5) {
        rep.info(format!("unexpected: {:?} {}: {}", op.kind, op.key, op.resource));
    }
    rep.check(
        errors.is_empty(),
        "(d)",
        "no request got an unexpected answer (only 201, or 502/503/504 and errors that were retried)",
    );
    rep.check(
        all_ops.iter().all(|op| op.outcome != Outcome::GaveUp),
        "(d)",
        format!("every request was acknowledged within its {:.0} s retry deadline", o.deadline.as_secs_f64()),
    );
    rep.check(
        acked.len() >= o.clients * 5,
        "(d)",
        format!("{} orders acknowledged (at least {} expected)", acked.len(), o.clients * 5),
    );

    // What nginx saw around the kill: POSTs that failed on the victim as it died, and the
    // requests it served once it was back (log lines written after its restart).
    let victim_addr = format!("127.0.0.1:{}", c.replicas[VICTIM].port);
    let log = c.read_access_log();
    let failed_on_victim = log
        .lines()
        .filter_map(AccessLine::parse)
        .filter(|l| {
            l.request.starts_with("POST ")
                && l.upstream.contains(&victim_addr)
                && ["502", "503", "504"].contains(&l.status)
        })
        .count();
    let after_restart = log
        .get(log_offset_at_restart..)
        .unwrap_or_default()
        .lines()
        .filter_map(AccessLine::parse)
        .filter(|l| l.upstream.contains(&victim_addr))
        .count();
    let cut_repeats = repeats.iter().filter(|r| !r.detail.starts_with("201")).count();
    rep.info(format!(
        "nginx: {failed_on_victim} POSTs failed on {name} as it died, answered 503 ({cut_repeats} of them deliberate repeats, the rest retried above); {name} served {after_restart} requests after its restart"
    ));
    rep.check(
        failed_on_victim > 0 || o.freeze.is_zero(),
        "(d)",
        format!("the kill cut {failed_on_victim} POSTs in flight on {name}, which the clients retried"),
    );
    rep.check(after_restart > 0, "(d)", format!("nginx sends traffic to {name} again after its restart"));

    // ---- through the API ----
    let by_id: HashSet<&str> = acked.iter().filter_map(|o| o.id.as_deref()).collect();
    rep.check(
        by_id.len() == acked.len(),
        "(d)",
        format!(
            "{} acknowledged orders have {} distinct ids (a retry never produced a second order)",
            acked.len(),
            by_id.len()
        ),
    );
    let expected: Vec<verify::Expected> = acked.iter().map(|o| verify::Expected::of(o)).collect::<Result<_>>()?;
    let problems = verify::through_api(&c.http, port, &admin, &expected).await?;
    for problem in problems.iter().take(5) {
        rep.info(problem);
    }
    rep.check(
        problems.is_empty(),
        "(d)",
        format!(
            "through the API, each of the {} orders has its acknowledged total, its acknowledged payments exactly once, amount_paid = sum of its payments <= total_price, and the right status",
            by_id.len()
        ),
    );
    let waiter_ids: Vec<String> = waiters.iter().map(|(id, _)| id.clone()).collect();
    let (listed, pages) = verify::listed(&c.http, port, &admin, &waiter_ids).await?;
    let listed_ids: HashSet<&str> = listed.keys().map(String::as_str).collect();
    rep.check(
        listed_ids == by_id && listed.values().all(|&n| n == 1),
        "(d)",
        format!(
            "listing the waiters' orders ({pages} pages of 100, any replica) shows {} orders, each acknowledged one exactly once and no other",
            listed.values().sum::<usize>()
        ),
    );

    // ---- in the database ----
    let pg = c.pg.as_ref().context("PostgreSQL is not running")?;
    let stored = verify::stored(pg.url(super::super::topology::DATABASE), waiter_ids).await?;
    let uncertain = pay_ops.iter().filter(|p| !p.acked()).count();
    verify::in_database(rep, run, &stored, &acked, uncertain)
}

/// "sent N, acknowledged N, retried N (N extra attempts: 503 x4, connect x2), ...".
fn tally(ops: &[&Op]) -> String {
    let mut outcomes: HashMap<Outcome, usize> = HashMap::new();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for op in ops {
        *outcomes.entry(op.outcome).or_default() += 1;
        for reason in &op.retry_reasons {
            *reasons.entry(reason.as_str()).or_default() += 1;
        }
    }
    let retried: Vec<&&Op> = ops.iter().filter(|op| op.attempts > 1).collect();
    let extra: u32 = retried.iter().map(|op| op.attempts - 1).sum();
    let mut reasons: Vec<(&str, usize)> = reasons.into_iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} x{n}")).collect();
    let n = |outcome: Outcome| outcomes.get(&outcome).copied().unwrap_or(0);
    format!(
        "sent {}, acknowledged {}, retried {} ({extra} extra attempts: {}), answered as replays {}, refused after a retry {}, gave up {}, unexpected answers {}",
        ops.len(),
        n(Outcome::Acked),
        retried.len(),
        if reasons.is_empty() { "none".to_owned() } else { reasons.join(", ") },
        ops.iter().filter(|op| op.replayed).count(),
        n(Outcome::RefusedAfterRetry),
        n(Outcome::GaveUp),
        n(Outcome::Error)
    )
}
