//! The benchmark (`cargo xtask bench`, which `scripts/bench/run.sh` calls): seeded databases
//! in a PostgreSQL cluster of its own, the release build under wrk, the SQL baselines with
//! pgbench, one table. Loopback only; every run has a fixed duration. How it works and how
//! to read it: scripts/bench/README.md.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

mod baselines;
mod builds;
mod client;
mod cluster;
mod fixtures;
mod machine;
mod options;
mod report;
mod seed;
mod server;
mod summary;
mod supervise;
mod workloads;
mod wrk;

pub use options::Args;

use builds::Build;
use client::Api;
use cluster::{BenchCluster, SHOWN_SETTINGS};
use options::{Config, Workload, label};
use server::Server;
use supervise::{RunLock, Supervisor, TempDir};
use workloads::{Measured, Phase, Servers};

/// What every part of a run shares.
pub struct Ctx {
    pub sup: Supervisor,
    pub config: Config,
    pub api: Api,
    pub wrk: wrk::Wrk,
    /// `target/bench/<timestamp>`, and its `raw/`.
    pub run_dir: PathBuf,
    pub raw: PathBuf,
    /// The binaries' working folder (no `.env`), also pgbench's.
    pub workdir: PathBuf,
    pub this_build: Build,
}

/// The working copy of the small database, dropped when the run ends however it ends.
struct WorkCopy<'a> {
    cluster: &'a BenchCluster,
    name: String,
    sup: Supervisor,
}

impl Drop for WorkCopy<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.cluster.drop_database(&self.name) {
            self.sup.warn(&format!("could not drop {}: {e:#}", self.name));
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::from_args(args)?;
    let sup = Supervisor::install()?;
    let mut run_dir = None;
    let result = run_with(&sup, config, &mut run_dir);
    if let Err(e) = &result {
        let raw = run_dir.map_or_else(|| "none".to_owned(), |p: PathBuf| p.display().to_string());
        sup.line(&format!("error: {e:#}"));
        sup.line(&format!(
            "error: the benchmark stopped; the server and the bench cluster are stopped. Raw output: {raw}"
        ));
        if let Some(code) = sup.signal_exit_code() {
            std::process::exit(i32::from(code));
        }
        bail!("the benchmark failed");
    }
    result
}

fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    fs::canonicalize(&here).unwrap_or(here)
}

fn run_with(sup: &Supervisor, config: Config, run_dir_out: &mut Option<PathBuf>) -> anyhow::Result<()> {
    let repo = repo_root();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo.join("target"), PathBuf::from);
    let bench_root = std::path::absolute(target_dir.join("bench"))?;
    if !machine::on_path("wrk") {
        bail!(
            "wrk is missing; run: sudo apt-get update && sudo apt-get install -y wrk (scripts/bench/run.sh installs it when run as root)"
        );
    }
    if let Some(now) = supervise::raise_open_files(config.wanted_open_files())? {
        sup.warn(&format!(
            "open files limit is {now}, below the {} that {} connections need",
            config.wanted_open_files(),
            config.conns_high
        ));
    }
    fs::create_dir_all(&bench_root).with_context(|| bench_root.display().to_string())?;
    let _lock = RunLock::take(&bench_root.join(".lock"))?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let run_dir = bench_root.join(&stamp);
    let raw = run_dir.join("raw");
    fs::create_dir_all(&raw)?;
    *run_dir_out = Some(run_dir.clone());
    sup.log_to(&run_dir.join("run.log"))?;
    let workdir = TempDir::new()?;
    sup.say(&format!("raw output in {}", run_dir.display()));
    if config.quick {
        sup.say("quick mode: a smoke run of the tooling, NOT a measurement");
    }
    if repo.join(".env").is_file() {
        sup.say(&format!(
            "note: {} is ignored; the binaries run in {} with an explicit environment",
            repo.join(".env").display(),
            workdir.path().display()
        ));
    }
    let unknown = server::unknown_settings(&config);
    if !unknown.is_empty() {
        sup.warn(&format!(
            "--server-env {}: not settings the binaries read (infrastructure::settings::catalog); passed anyway",
            unknown.join(", ")
        ));
    }

    let this_build = builds::current(&repo, &target_dir, config.skip_build, &raw, sup)?;
    let other_build = match &config.against {
        Some(rev) => Some(builds::against(&repo, &bench_root, rev, &raw, sup)?),
        None => None,
    };
    let ctx = Ctx {
        sup: sup.clone(),
        api: Api::new()?,
        wrk: wrk::Wrk { lua_dir: repo.join("scripts/bench/lua"), timeout_secs: config.wrk_timeout },
        config,
        run_dir: run_dir.clone(),
        raw: raw.clone(),
        workdir: workdir.path().to_path_buf(),
        this_build,
    };
    let config = &ctx.config;

    let cluster = BenchCluster::start(&bench_root, config, sup)?;
    let mut sql = cluster.sql("postgres")?;
    let pg_version = sql.setting("server_version")?;
    let mut settings = Vec::new();
    for name in SHOWN_SETTINGS {
        settings.push(format!("{name}={}", sql.setting(name)?));
    }
    drop(sql);
    sup.say(&format!("measuring the fsync cost (pg_test_fsync -s {})", config.fsync_secs));
    let fsync = cluster.fsync_cost(config.fsync_secs, &raw.join("pg_test_fsync.txt"), sup)?;

    let migrations = seed::migrations_digest(&repo)?;
    let small = seed::ensure_seeded(&ctx, &cluster, &ctx.this_build, config.lines_small, &migrations)?;
    let large = match config.needs_large() {
        true => Some(seed::ensure_seeded(&ctx, &cluster, &ctx.this_build, config.lines_large, &migrations)?),
        false => None,
    };

    // Phase 1 writes (W2, W4, the baselines) go to a copy of the small database made for this
    // run and dropped at the end: the seeded database stays as seeded for the next run.
    let work = WorkCopy { cluster: &cluster, name: format!("{}_work", small.name), sup: sup.clone() };
    let started = std::time::Instant::now();
    cluster.copy_database(&small.name, &work.name)?;
    sup.say(&format!(
        "working copy {} of {} made in {} s (dropped at the end)",
        work.name,
        small.name,
        started.elapsed().as_secs()
    ));
    let work_url = cluster.url(&work.name);
    if let Some(other) = &other_build {
        // The other build may bring migrations of its own: only the working copy gets them.
        let out = raw.join(format!("migrate-{}.log", other.tag));
        sup.run_ok(
            &mut server::db_admin(other, &ctx.workdir, &work_url, &["migrate"]),
            &out,
            &format!("db-admin migrate of {}", other.label),
        )?;
    }

    // Phase 1: the small database.
    let mut measured = Measured::default();
    let this = Server::start(&ctx, &ctx.this_build, &work_url, &work.name)?;
    let rollup_work = fixtures::wait_rollup(&ctx, &work_url, &work.name)?;
    let need_products = config.runs(Workload::W2) || config.runs(Workload::W4);
    let fixtures = fixtures::prepare(&ctx, &this, &small.name, need_products)?;
    let mut other = None;
    if let Some(build) = &other_build {
        let server = Server::start(&ctx, build, &work_url, &format!("{}-{}", work.name, build.tag))?;
        fixtures::same_logins(&ctx.api, &server, &fixtures)?;
        other = Some((server, build.tag.clone()));
    }
    let servers = Servers { this, other };
    Phase::new(&ctx, &cluster, &work.name, &servers, &mut measured).small(&fixtures, &label(config.lines_small))?;
    if measured.rss_not_reset {
        sup.warn("could not reset the peak RSS via /proc/PID/clear_refs: RSS columns are peaks since start");
    }
    let mut warnings = vec![format!("{} {}", work.name, servers.this.warnings())];
    warnings.extend(servers.other.as_ref().map(|(s, tag)| format!("{} on {tag} {}", work.name, s.warnings())));
    let server_env = fs::read_to_string(raw.join(format!("server-env-{}.txt", work.name)))?.replace('\n', " ");
    drop(servers);

    // Phase 2: the large database (the report only).
    let mut rollup_large = None;
    if let Some(large) = &large {
        let url = cluster.url(&large.name);
        let this = Server::start(&ctx, &ctx.this_build, &url, &large.name)?;
        rollup_large = Some(fixtures::wait_rollup(&ctx, &url, &large.name)?);
        let admin = ctx
            .api
            .login(&this.url, options::ADMIN_EMAIL, options::ADMIN_PASSWORD)
            .context("could not log the admin in on the large database")?;
        for days in [30, 365] {
            let body = ctx
                .api
                .get(&this.url, &fixtures::report_path(days), &admin, 60)
                .with_context(|| format!("the {days}-day report failed on {}", large.name))?;
            fs::write(raw.join(format!("report-{}-{days}d.json", large.name)), body)?;
        }
        let mut other = None;
        if let Some(build) = &other_build {
            let server = Server::start(&ctx, build, &url, &format!("{}-{}", large.name, build.tag))?;
            ctx.api.login(&server.url, options::ADMIN_EMAIL, options::ADMIN_PASSWORD)?;
            other = Some((server, build.tag.clone()));
        }
        let servers = Servers { this, other };
        Phase::new(&ctx, &cluster, &large.name, &servers, &mut measured).reports(
            &admin,
            &label(config.lines_large),
            "large",
        )?;
        warnings.push(format!("{} {}", large.name, servers.this.warnings()));
        warnings.extend(servers.other.as_ref().map(|(s, tag)| format!("{} on {tag} {}", large.name, s.warnings())));
    }

    // The table.
    let facts = summary::Facts {
        stamp,
        pg_version,
        pg_bin_dir: cluster.pg.bin_dir().to_path_buf(),
        pg_data_dir: cluster.pg.data_dir().to_path_buf(),
        pg_port: cluster.pg.port(),
        settings,
        fsync,
        small,
        large,
        work: work.name.clone(),
        rollup_work,
        rollup_large,
        server_env,
        other_build,
        rss_ready: fixtures.rss_ready,
        rss_logged_in: fixtures.rss_logged_in,
        logins: fixtures.logins,
        warnings,
    };
    let report = summary::report(config, &ctx.this_build, facts, measured);
    let summary = report.render();
    fs::write(run_dir.join("summary.md"), &summary)?;
    println!();
    println!("{summary}");
    sup.say(&format!("summary: {}; raw outputs: {}", run_dir.join("summary.md").display(), raw.display()));
    Ok(())
}
