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
    pub other_build: Option<Build>,
    pub rss_ready: Option<f64>,
    pub rss_logged_in: Option<f64>,
    pub logins: usize,
    /// `<database> <count>` of WARN and ERROR lines per server log.
    pub warnings: Vec<String>,
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
            "Databases: {databases}; phase 1 (W0-W4 on {ls} lines, baselines) ran on {work}, a copy of {} made for this run and dropped at its end",
            small.name
        ),
        format!("Sales rollup: db-admin rollup {rollup_built}; caught up after the server was ready: {caught_up}"),
        format!("Service: {}, release build; env: {}", this.describe, f.server_env),
    ];
    if let Some(other) = &f.other_build {
        lines.push(format!(
            "Other build: {} (commit {}), release build of a worktree in target/bench/against/, the same environment; its db-admin migrated {work}",
            other.label, other.describe
        ));
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
            "Workloads: W0 {} conns; W1 {} conns over {} waiters; W1b {} conns × {} ms delay; W2 {} and {} conns, {} waiters' tokens; W3 {} conn, dates {} and {}; W4 {} conns, {}-line orders",
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
            options::MIX_LINES
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
