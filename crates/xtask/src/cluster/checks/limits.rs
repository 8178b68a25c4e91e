//! (a) the login limit is shared by the replicas (one counter, in Redis), and (b) no client
//! escapes it with an X-Forwarded-For of its own.

use std::collections::HashSet;

use anyhow::Result;

use super::super::http::{Response, lo};
use super::super::report::Report;
use super::super::topology::Cluster;
use super::{WRONG_PASSWORD, joined, login, upstreams_of};

const FIVE_THEN_LIMITED: [u16; 6] = [401, 401, 401, 401, 401, 429];

/// (a) 6 wrong logins from one client through nginx: five 401 and a 429, counted down across
/// the replicas.
pub async fn shared_limit(c: &Cluster, rep: &mut Report, run: &str) -> Result<()> {
    let (port, src) = (c.nginx_port, lo(0, 0, 10));
    let email = &c.config.admin_email;
    let mut results: Vec<Response> = Vec::new();
    for i in 1..=6 {
        results.push(login(&c.http, port, email, WRONG_PASSWORD, src, Some(&format!("a-{run}-{i}")), &[]).await?);
    }
    let statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    let remaining: Vec<String> = results.iter().map(|r| r.header_or_dash("ratelimit-remaining")).collect();
    let served_by = upstreams_of(c, &format!("a-{run}-"), 6).await;
    let names: Vec<String> = served_by.iter().map(|a| c.replica_name(a)).collect();
    rep.info(format!(
        "6 wrong logins from {src} through nginx: {}; RateLimit-Remaining {}; served by {}",
        joined(&statuses),
        joined(&remaining),
        joined(&names)
    ));
    rep.check(
        statuses == FIVE_THEN_LIMITED,
        "(a)",
        "the 6th login within the minute is 429 although the logins were spread over the replicas",
    );
    let last = &results[5];
    rep.check(
        last.header("retry-after").is_some() && last.header("content-type").is_some_and(|t| t.contains("problem+json")),
        "(a)",
        format!("the 429 is problem+json with Retry-After: {} s", last.header_or_dash("retry-after")),
    );
    rep.check(
        remaining[..5] == ["4", "3", "2", "1", "0"],
        "(a)",
        "RateLimit-Remaining counts down 4 3 2 1 0 across replicas: one counter, in Redis",
    );
    let distinct: HashSet<&String> = served_by.iter().collect();
    rep.check(
        distinct.len() >= 2 && served_by.len() == 6,
        "(a)",
        format!("nginx's access log shows the 6 logins reached {} different replicas", distinct.len()),
    );
    Ok(())
}

/// (b) 8 wrong logins, each claiming another client with X-Forwarded-For: the limit holds;
/// another client meanwhile has its own; a replica reached directly believes no header.
pub async fn spoofing(c: &Cluster, rep: &mut Report, run: &str) -> Result<()> {
    let (port, src) = (c.nginx_port, lo(0, 0, 11));
    let email = &c.config.admin_email;
    // What a client might claim to be, including the trusted proxy itself and a whole chain.
    let spoofs: [&[&str]; 8] = [
        &["203.0.113.1"],
        &["127.0.0.1"],
        &["198.51.100.7, 127.0.0.1"],
        &["not-an-address"],
        &["::1"],
        &["203.0.113.2"],
        &["198.51.100.8", "203.0.113.9"],
        &["127.0.0.12"],
    ];
    let mut statuses = Vec::new();
    for (i, forwarded) in spoofs.iter().enumerate() {
        let rid = format!("b-{run}-{}", i + 1);
        statuses.push(login(&c.http, port, email, WRONG_PASSWORD, src, Some(&rid), forwarded).await?.status);
    }
    let claimed: Vec<String> = spoofs.iter().map(|f| f.join(", ")).collect();
    rep.info(format!(
        "8 wrong logins from {src} through nginx, each with another X-Forwarded-For ({}): {}",
        claimed.join("; "),
        joined(&statuses)
    ));
    rep.check(
        statuses == [401, 401, 401, 401, 401, 429, 429, 429],
        "(b)",
        "a client cannot spoof its way out of the limit with X-Forwarded-For (5 x 401, then 429)",
    );
    let seen = upstreams_of(c, &format!("b-{run}-"), spoofs.len()).await;
    let names: Vec<String> = seen.iter().map(|a| c.replica_name(a)).collect();
    rep.info(format!("served by {}", joined(&names)));

    // The limit is per client, not per proxy: another address, even one a spoofer claimed,
    // starts fresh.
    let other = login(&c.http, port, email, WRONG_PASSWORD, lo(0, 0, 12), Some(&format!("b-{run}-other")), &[]).await?;
    rep.check(
        other.status == 401 && other.header("ratelimit-remaining") == Some("4"),
        "(b)",
        format!(
            "another client (127.0.0.12) meanwhile gets {} with RateLimit-Remaining {}: limits are per client address, not per proxy",
            other.status,
            other.header_or_dash("ratelimit-remaining")
        ),
    );

    // Straight to a replica from an untrusted address: X-Forwarded-For is not believed at all.
    let direct = &c.replicas[0];
    let mut statuses = Vec::new();
    for i in 1..=6 {
        let forwarded = format!("192.0.2.{i}");
        let r = login(&c.http, direct.port, email, WRONG_PASSWORD, lo(0, 0, 13), None, &[&forwarded]).await?;
        statuses.push(r.status);
    }
    rep.check(
        statuses == FIVE_THEN_LIMITED,
        "(b)",
        format!(
            "directly to {} from 127.0.0.13 (untrusted) with 6 different X-Forwarded-For: {}",
            direct.name,
            joined(&statuses)
        ),
    );
    Ok(())
}
