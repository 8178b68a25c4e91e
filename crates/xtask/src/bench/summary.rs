//! The facts a run gathered, turned into the [`Report`] it prints: the table's inputs and the
//! "Machine and setup" lines.

use std::path::PathBuf;

use super::builds::Build;
use super::fixtures::report_path;
use super::machine;
use super::options::{self, Config, Workload, label};
use super::report::Report;
use super::seed::Seeded;
use super::workloads::Measured;

/// What a run learnt besides the measures.
#[derive(Debug)]
pub struct Facts {
    pub stamp: String,
    pub pg_version: String,
    pub pg_bin_dir: PathBuf,
    pub pg_data_dir: PathBuf,
    pub pg_port: u16,
    /// `name=value` of [`super::cluster::SHOWN_SETTINGS`].
    pub settings: Vec<String>,
    pub fsync: String,
    pub small: Seeded,
    pub large: Option<Seeded>,
    pub work: String,
    pub rollup_work: u64,
    pub rollup_large: Option<u64>,
    /// The server's environment as `raw/server-env-*.txt` shows it, on one line.
    pub server_env: String,
    /// The digest of this build's migration files, and of the other build's.
    pub migrations: String,
    pub other_migrations: Option<String>,
    pub other_build: Option<Build>,
    /// The other build's own databases, when its migration files differ from this build's
    /// (else it ran on this build's).
    pub other_databases: Option<OwnDatabases>,
    pub rss_ready: Option<f64>,
    pub rss_logged_in: Option<f64>,
    pub logins: usize,
    /// `<database> <count>` of WARN and ERROR lines per server log.
    pub warnings: Vec<String>,
}

/// The databases the other build's own db-admin seeded, and what it ran on.
#[derive(Debug)]
pub struct OwnDatabases {
    pub small: Seeded,
    /// Its phase 1 copy of `small`.
    pub work: String,
    pub large: Option<Seeded>,
    /// Seconds until the sales rollup caught up after its server was ready.
    pub rollup_work: Option<u64>,
    pub rollup_large: Option<u64>,
}

/// The "Other build" line: what it is, and which databases it ran on.
fn other_line(other: &Build, f: &Facts) -> String {
    let head = format!(
        "Other build: {} (commit {}), release build of a worktree in target/bench/against/, the same environment",
        other.label, other.describe
    );
    let theirs = f.other_migrations.as_deref().unwrap_or("?");
    let Some(own) = &f.other_databases else {
        let mut shared = f.work.clone();
        if let Some(large) = &f.large {
            shared.push_str(&format!(" and {}", large.name));
        }
        return format!(
            "{head} and the same migration files (digest {theirs}): it ran on this build's databases ({shared}); its db-admin migrate ran on {} too",
            f.work
        );
    };
    let mut databases = format!("{} {}", own.small.name, own.small.info);
    let mut rollups = format!("{} {} s", own.small.name, secs(own.small.rollup_secs));
    let mut caught_up = format!("{} {} s", own.work, secs(own.rollup_work));
    if let Some(large) = &own.large {
        databases.push_str(&format!("; {} {}", large.name, large.info));
        rollups.push_str(&format!(", {} {} s", large.name, secs(large.rollup_secs)));
        caught_up.push_str(&format!(", {} {} s", large.name, secs(own.rollup_large)));
    }
    let rollup_built = if other.has_rollup { format!("took {rollups}") } else { "not in that build".to_owned() };
    format!(
        "{head}; its migration files differ from this build's (digest {theirs}, this build {}), so it ran on databases of its own in the same cluster, made by its own db-admin init and seed with the same parameters: {databases}; its phase 1 ran on {}, a copy of {} made for this run and dropped at its end (the baselines on this build's {} only); its db-admin rollup {rollup_built}; caught up after its server was ready: {caught_up}",
        f.migrations, own.work, own.small.name, f.work
    )
}

fn mb(value: Option<f64>) -> String {
    value.map_or_else(|| "?".to_owned(), |v| format!("{v:.1}"))
}

fn secs(value: Option<u64>) -> String {
    value.map_or_else(|| "?".to_owned(), |v| v.to_string())
}

/// The "Machine and setup" lines.
fn setup(config: &Config, this: &Build, f: &Facts) -> Vec<String> {
    let ls = label(config.lines_small);
    let (small, work) = (&f.small, &f.work);
    let mut databases = format!("{} {}", small.name, small.info);
    let mut rollups = format!("{} {} s", small.name, secs(small.rollup_secs));
    let mut caught_up = format!("{work} {} s", f.rollup_work);
    if let Some(large) = &f.large {
        databases.push_str(&format!("; {} {}", large.name, large.info));
        rollups.push_str(&format!(", {} {} s", large.name, secs(large.rollup_secs)));
        caught_up.push_str(&format!(", {} {} s", large.name, secs(f.rollup_large)));
    }
    let rollup_built = if this.has_rollup { format!("took {rollups}") } else { "not in this build".to_owned() };
    let extra = if config.pg_options.is_empty() {
        String::new()
    } else {
        let options: Vec<String> = config.pg_options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("; extra: {}", options.join(" "))
    };
    let query = |days| report_path(days).split_once('?').map_or(String::new(), |(_, q)| q.to_owned());
    let mut lines = vec![
        machine::cpu_line(),
        format!(
            "PostgreSQL {} ({}), own cluster {} on 127.0.0.1:{}",
            f.pg_version,
            f.pg_bin_dir.display(),
            f.pg_data_dir.display(),
            f.pg_port
        ),
        format!("Settings: {}{extra}", f.settings.join(", ")),
        format!("fsync cost (pg_test_fsync -s {}, one 8 kB write + fdatasync): {}", config.fsync_secs, f.fsync),
        format!(
            "Databases{}: {databases}; phase 1 (W0-W4 on {ls} lines, baselines) ran on {work}, a copy of {} made for this run and dropped at its end",
            if f.other_databases.is_some() { " of this build" } else { "" },
            small.name
        ),
        format!("Sales rollup: db-admin rollup {rollup_built}; caught up after the server was ready: {caught_up}"),
        format!("Service: {}, release build; env: {}", this.describe, f.server_env),
    ];
    if let Some(other) = &f.other_build {
        lines.push(other_line(other, f));
    }
    lines.extend([
        format!(
            "Service RSS on {work}: {} MB when ready, {} MB after the {} sequential logins that fetch the tokens (VmRSS)",
            mb(f.rss_ready),
            mb(f.rss_logged_in),
            f.logins
        ),
        format!("Server log warnings/errors: {} (raw/server-*.log)", f.warnings.join(", ")),
        machine::tools_line(&f.pg_bin_dir),
        format!(
            "Workloads: W0 {} conns; W1 {} conns over {} waiters; W1b {} conns × {} ms delay; W2 {} and {} conns, {} waiters' tokens; W3 {} conn, dates {} and {}; W4 {} conns, {}-line orders; W5 {} conns, {} lines a request over {} open orders of 1 line made before each run, each by its own waiter; W6 {} stream connections (admin) on the location with the most waiters, {} tickets/s of {} lines sent by its waiters",
            options::CONNS_HEALTH,
            options::CONNS_LOGIN,
            config.waiters,
            options::CONNS_RATE,
            options::RATE_DELAY_MS,
            config.conns_low,
            config.conns_high,
            config.waiters,
            options::CONNS_REPORT,
            query(30),
            query(365),
            options::CONNS_MIX,
            options::MIX_LINES,
            config.pool,
            options::ADD_LINES,
            config.add_orders(),
            options::W6_DISPLAYS,
            options::W6_TICKETS_PER_SEC,
            options::W6_LINES,
        ),
    ]);
    lines
}

/// The report of a run.
pub fn report(config: &Config, this: &Build, facts: Facts, measured: Measured) -> Report {
    let setup = setup(config, this, &facts);
    let only = (config.workloads.len() < Workload::ALL.len())
        .then(|| config.workloads.iter().map(|w| w.name()).collect::<Vec<_>>().join(", "));
    Report {
        quick: config.quick,
        stamp: facts.stamp,
        warmup: config.warmup,
        duration: config.duration,
        wrk_timeout: config.wrk_timeout,
        pool: config.pool,
        conns_low: config.conns_low,
        conns_high: config.conns_high,
        small_label: label(config.lines_small),
        large_label: label(config.lines_large),
        db_small: facts.small.name,
        db_work: facts.work,
        own_databases: facts.other_databases.is_some(),
        only,
        against: facts
            .other_build
            .map(|b| if b.label == b.describe { b.label } else { format!("{} ({})", b.label, b.describe) }),
        rows: measured.rows,
        baselines: measured.baselines,
        hash: measured.hash,
        lone_login: measured.lone_login,
        setup,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(name: &str) -> Seeded {
        Seeded { name: name.into(), info: "reused: 10 lines".into(), rollup_secs: Some(1) }
    }

    fn facts(other_databases: Option<OwnDatabases>) -> Facts {
        Facts {
            stamp: "20261203T000000Z".into(),
            pg_version: "15".into(),
            pg_bin_dir: "/pg/bin".into(),
            pg_data_dir: "/pg/data".into(),
            pg_port: 1,
            settings: vec![],
            fsync: "n/a".into(),
            small: seeded("bench_1m"),
            large: Some(seeded("bench_10m")),
            work: "bench_1m_work".into(),
            rollup_work: 0,
            rollup_large: Some(0),
            server_env: String::new(),
            migrations: "aaaa".into(),
            other_migrations: Some(if other_databases.is_some() { "bbbb" } else { "aaaa" }.into()),
            other_build: None,
            other_databases,
            rss_ready: None,
            rss_logged_in: None,
            logins: 51,
            warnings: vec![],
        }
    }

    fn build() -> Build {
        Build {
            label: "459eeb5".into(),
            describe: "459eeb5".into(),
            tag: "459eeb5".into(),
            src: "/src".into(),
            api: "/api".into(),
            admin: "/admin".into(),
            hash_time: None,
            has_rollup: true,
            seed_extra: vec![],
        }
    }

    #[test]
    fn the_setup_says_which_databases_each_build_ran_on() {
        let shared = other_line(&build(), &facts(None));
        assert!(
            shared.contains(
                "the same migration files (digest aaaa): it ran on this build's databases (bench_1m_work and bench_10m)"
            ),
            "{shared}"
        );
        let own = OwnDatabases {
            small: seeded("bench_1m_459eeb5"),
            work: "bench_1m_459eeb5_work".into(),
            large: Some(seeded("bench_10m_459eeb5")),
            rollup_work: Some(2),
            rollup_large: Some(3),
        };
        let own = other_line(&build(), &facts(Some(own)));
        assert!(own.contains("(digest bbbb, this build aaaa), so it ran on databases of its own"), "{own}");
        assert!(own.contains("bench_1m_459eeb5 reused: 10 lines; bench_10m_459eeb5 reused: 10 lines;"), "{own}");
        assert!(own.contains("its phase 1 ran on bench_1m_459eeb5_work, a copy of bench_1m_459eeb5"), "{own}");
        assert!(
            own.contains("caught up after its server was ready: bench_1m_459eeb5_work 2 s, bench_10m_459eeb5 3 s"),
            "{own}"
        );
    }
}
