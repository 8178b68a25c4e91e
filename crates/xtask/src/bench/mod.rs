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
mod kitchen;
mod machine;
mod open_orders;
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
use workloads::{Measured, Other, Phase, Servers};

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

impl<'a> WorkCopy<'a> {
    /// `<seeded>_work`, a copy of the seeded database `seeded`.
    fn make(cluster: &'a BenchCluster, seeded: &str, sup: &Supervisor) -> anyhow::Result<Self> {
        // Made before the copy: a copy that fails half-way is dropped too.
        let work = Self { cluster, name: format!("{seeded}_work"), sup: sup.clone() };
        let started = std::time::Instant::now();
        cluster.copy_database(seeded, &work.name)?;
        sup.say(&format!(
            "working copy {} of {seeded} made in {} s (dropped at the end)",
            work.name,
            started.elapsed().as_secs()
        ));
        Ok(work)
    }
}

impl Drop for WorkCopy<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.cluster.drop_database(&self.name) {
            self.sup.warn(&format!("could not drop {}: {e:#}", self.name));
        }
    }
}

/// Where the `--against` build runs, from the digests of both builds' migration files.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placement {
    /// On this build's databases: both builds have the same migration files.
    Shared,
    /// On databases of its own, seeded by its own db-admin with the same parameters in the same
    /// cluster: its migration files differ, and so may its schema (an older build's INSERT
    /// lacks the NOT NULL columns a newer migration added; a newer build's needs them).
    Own,
}

impl Placement {
    fn of(this_migrations: &str, other_migrations: &str) -> Self {
        if this_migrations == other_migrations { Self::Shared } else { Self::Own }
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

/// `<database> on <tag> <count>`: the WARN and ERROR lines of the other build's server log.
fn other_warnings(other: &Other) -> String {
    format!("{} on {} {}", other.database, other.tag, other.server.warnings())
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

    let migrations = seed::migrations_digest(&ctx.this_build.src)?;
    let other_migrations = match &other_build {
        Some(build) => Some(seed::migrations_digest(&build.src)?),
        None => None,
    };
    // The other build when it runs on databases of its own, and its migrations' digest.
    let own = match (&other_build, &other_migrations) {
        (Some(build), Some(theirs)) => match Placement::of(&migrations, theirs) {
            Placement::Shared => {
                sup.say(&format!(
                    "{} has the same migration files as this build ({migrations}): both run on the same databases",
                    build.label
                ));
                None
            }
            Placement::Own => {
                sup.say(&format!(
                    "{} has other migration files than this build ({theirs}, this build {migrations}): it runs on databases of its own, seeded by its own db-admin with the same parameters",
                    build.label
                ));
                Some((build, theirs.as_str()))
            }
        },
        _ => None,
    };

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

    let seeded = |build: &Build, lines: u64, own_of: Option<&str>, digest: &str| {
        seed::ensure_seeded(&ctx, &cluster, build, lines, &seed::database_name(lines, own_of), digest)
    };
    let small = seeded(&ctx.this_build, config.lines_small, None, &migrations)?;
    let large = match config.needs_large() {
        true => Some(seeded(&ctx.this_build, config.lines_large, None, &migrations)?),
        false => None,
    };
    let (other_small, other_large) = match own {
        Some((build, theirs)) => {
            let small = seeded(build, config.lines_small, Some(&build.tag), theirs)?;
            let large = match config.needs_large() {
                true => Some(seeded(build, config.lines_large, Some(&build.tag), theirs)?),
                false => None,
            };
            (Some(small), large)
        }
        None => (None, None),
    };

    // Phase 1 writes (W2, W4, the baselines) go to a copy of the small database made for this
    // run and dropped at the end: the seeded database stays as seeded for the next run. The
    // other build on a database of its own writes to a copy of its own.
    let work = WorkCopy::make(&cluster, &small.name, sup)?;
    let other_work = match &other_small {
        Some(seeded) => Some(WorkCopy::make(&cluster, &seeded.name, sup)?),
        None => None,
    };
    let work_url = cluster.url(&work.name);
    if let Some(other) = &other_build
        && own.is_none()
    {
        // The same migration files: its db-admin migrate finds nothing to do on the shared
        // working copy, and says so in the raw log.
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
    let fixtures = fixtures::prepare(&ctx, &this, &small.name, need_products, "")?;
    let mut other = None;
    let mut other_fixtures = None;
    let mut rollup_other_work = None;
    if let Some(build) = &other_build {
        let (server, database) = match (&other_work, &other_small) {
            (Some(copy), Some(seeded)) => {
                let url = cluster.url(&copy.name);
                let server = Server::start(&ctx, build, &url, &copy.name)?;
                rollup_other_work = Some(fixtures::wait_rollup(&ctx, &url, &copy.name)?);
                let theirs = fixtures::prepare(&ctx, &server, &seeded.name, need_products, &format!("-{}", build.tag))?;
                if theirs.logins != fixtures.logins {
                    sup.warn(&format!(
                        "{} has {} users to log in, {} {}: the seeds differ",
                        seeded.name, theirs.logins, small.name, fixtures.logins
                    ));
                }
                other_fixtures = Some(theirs);
                (server, copy.name.clone())
            }
            _ => {
                let server = Server::start(&ctx, build, &work_url, &format!("{}-{}", work.name, build.tag))?;
                fixtures::same_logins(&ctx.api, &server, &fixtures)?;
                (server, work.name.clone())
            }
        };
        other = Some(Other { server, tag: build.tag.clone(), database });
    }
    let servers = Servers { this, other };
    Phase::new(&ctx, &cluster, &work.name, &servers, &mut measured).small(
        &fixtures,
        other_fixtures.as_ref(),
        &label(config.lines_small),
    )?;
    if measured.rss_not_reset {
        sup.warn("could not reset the peak RSS via /proc/PID/clear_refs: RSS columns are peaks since start");
    }
    let mut warnings = vec![format!("{} {}", work.name, servers.this.warnings())];
    warnings.extend(servers.other.as_ref().map(other_warnings));
    let server_env = fs::read_to_string(raw.join(format!("server-env-{}.txt", work.name)))?.replace('\n', " ");
    drop(servers);

    // Phase 2: the large database (the report only).
    let mut rollup_large = None;
    let mut rollup_other_large = None;
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
        let mut other_admin = admin.clone();
        if let Some(build) = &other_build {
            let server = match &other_large {
                Some(theirs) => {
                    let url = cluster.url(&theirs.name);
                    let server = Server::start(&ctx, build, &url, &theirs.name)?;
                    rollup_other_large = Some(fixtures::wait_rollup(&ctx, &url, &theirs.name)?);
                    server
                }
                None => Server::start(&ctx, build, &url, &format!("{}-{}", large.name, build.tag))?,
            };
            let token = ctx
                .api
                .login(&server.url, options::ADMIN_EMAIL, options::ADMIN_PASSWORD)
                .with_context(|| format!("could not log the admin in on the large database of {}", build.label))?;
            // On a database of its own, the admin is another user: its own token.
            let database = match &other_large {
                Some(theirs) => {
                    other_admin = token;
                    theirs.name.clone()
                }
                None => large.name.clone(),
            };
            other = Some(Other { server, tag: build.tag.clone(), database });
        }
        let servers = Servers { this, other };
        Phase::new(&ctx, &cluster, &large.name, &servers, &mut measured).reports(
            (&admin, &other_admin),
            &label(config.lines_large),
            "large",
        )?;
        warnings.push(format!("{} {}", large.name, servers.this.warnings()));
        warnings.extend(servers.other.as_ref().map(other_warnings));
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
        migrations,
        other_migrations,
        other_build,
        other_databases: other_small.map(|small| summary::OwnDatabases {
            small,
            work: other_work.as_ref().map(|w| w.name.clone()).unwrap_or_default(),
            large: other_large,
            rollup_work: rollup_other_work,
            rollup_large: rollup_other_large,
        }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_build_shares_the_databases_only_with_the_same_migrations() {
        assert_eq!(Placement::of("0123456789abcdef", "0123456789abcdef"), Placement::Shared);
        assert_eq!(Placement::of("0123456789abcdef", "fedcba9876543210"), Placement::Own);
    }

    /// The digest is taken relative to each source tree: a copy of this checkout's migration
    /// files elsewhere (a worktree of the same commit) shares the databases, one more
    /// migration (a later branch) does not.
    #[test]
    fn a_worktree_with_the_same_migrations_has_the_same_digest() {
        let repo = repo_root();
        let src = std::env::temp_dir().join(format!("xtask-bench-placement.{}", std::process::id()));
        let _ = fs::remove_dir_all(&src);
        for entry in fs::read_dir(repo.join("migrations")).unwrap() {
            let dir = entry.unwrap().path();
            let Some(name) = dir.file_name().filter(|_| dir.is_dir()) else { continue };
            let copy = src.join("migrations").join(name);
            fs::create_dir_all(&copy).unwrap();
            for file in fs::read_dir(&dir).unwrap() {
                let file = file.unwrap();
                fs::copy(file.path(), copy.join(file.file_name())).unwrap();
            }
        }
        let this = seed::migrations_digest(&repo).unwrap();
        let same = Placement::of(&this, &seed::migrations_digest(&src).unwrap());
        let later = src.join("migrations/2999-01-01-000001_later");
        fs::create_dir_all(&later).unwrap();
        fs::write(later.join("up.sql"), "SELECT 1;\n").unwrap();
        let more = Placement::of(&this, &seed::migrations_digest(&src).unwrap());
        let _ = fs::remove_dir_all(&src);
        assert_eq!((same, more), (Placement::Shared, Placement::Own));
    }
}
