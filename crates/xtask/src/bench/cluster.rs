//! The bench cluster: the service's own local PostgreSQL ([`LocalPostgres`]) under
//! `target/bench/pg-<major>`, with the run's `max_connections` and `--pg-option`s, and the few
//! statements the benchmark itself sends (settings, sizes, maintenance, the working copy).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use infrastructure::local_pg::{self, LocalPgOptions, LocalPostgres};

use super::options::Config;
use super::supervise::Supervisor;

/// PostgreSQL's settings the summary quotes.
pub const SHOWN_SETTINGS: [&str; 9] = [
    "shared_buffers",
    "synchronous_commit",
    "fsync",
    "full_page_writes",
    "wal_sync_method",
    "max_connections",
    "work_mem",
    "checkpoint_timeout",
    "max_wal_size",
];

/// The running bench cluster; stopped on drop (it is this run's).
#[derive(Debug)]
pub struct BenchCluster {
    pub pg: LocalPostgres,
    /// `target/bench/pg-<major>`: the cluster's folder (its data in `postgres/`), and the seed
    /// markers.
    pub base_dir: PathBuf,
    pub major: u32,
}

impl BenchCluster {
    pub fn start(bench_root: &Path, config: &Config, sup: &Supervisor) -> anyhow::Result<Self> {
        let bin_dir = local_pg::find_bin_dir().context(
            "PostgreSQL's server programs are missing (/usr/lib/postgresql/*/bin); run: sudo apt-get install -y postgresql",
        )?;
        for program in ["pgbench", "pg_test_fsync"] {
            if !bin_dir.join(program).is_file() {
                bail!("{} is missing (it ships with PostgreSQL's server package)", bin_dir.join(program).display());
            }
        }
        let major = major_version(&bin_dir)?;
        let base_dir = bench_root.join(format!("pg-{major}"));
        if base_dir.join("data/PG_VERSION").is_file() {
            sup.say(&format!(
                "note: {} is a cluster of the former shell runner, no longer used (delete it to free its space)",
                base_dir.join("data").display()
            ));
        }
        if local_pg::stop_cluster_of(&base_dir)? {
            sup.say("the bench cluster was left running by an earlier run: stopped it first");
        }
        let mut server_settings = vec![("max_connections".to_owned(), config.max_connections().to_string())];
        server_settings.extend(config.pg_options.iter().cloned());
        let pg = LocalPostgres::start(&base_dir, &LocalPgOptions { server_settings, ..LocalPgOptions::default() })
            .with_context(|| format!("starting the bench cluster in {}", base_dir.display()))?;
        if !pg.owned() {
            bail!("another process runs the bench cluster in {}; stop it first", pg.data_dir().display());
        }
        sup.say(&format!("bench cluster {} on 127.0.0.1:{}", pg.data_dir().display(), pg.port()));
        Ok(Self { pg, base_dir, major })
    }

    pub fn url(&self, database: &str) -> String {
        self.pg.url(database)
    }

    pub fn sql(&self, database: &str) -> anyhow::Result<Sql> {
        Sql::connect(&self.url(database))
    }

    /// A folder of the cluster's that the `postgres` user writes, on the data's disk.
    pub fn scratch_dir(&self) -> PathBuf {
        self.pg.data_dir().with_file_name("postgres-run")
    }

    /// `pg_test_fsync -s secs` into `out`; the fdatasync line of "one 8kB write", or `n/a`.
    pub fn fsync_cost(&self, secs: u64, out: &Path, sup: &Supervisor) -> anyhow::Result<String> {
        let scratch = self.scratch_dir().join("pg_test_fsync.tmp");
        let mut command = self.pg.program("pg_test_fsync");
        command.arg("-s").arg(secs.to_string()).arg("-f").arg(&scratch);
        let status = sup.run_to_file(&mut command, out)?;
        let _ = std::fs::remove_file(&scratch);
        if !status.success() {
            sup.warn(&format!("pg_test_fsync failed (see {})", out.display()));
        }
        Ok(fdatasync_line(&std::fs::read_to_string(out).unwrap_or_default()).unwrap_or_else(|| "n/a".to_owned()))
    }

    /// `DROP DATABASE IF EXISTS work`, then `work` as a copy of `template`.
    pub fn copy_database(&self, template: &str, work: &str) -> anyhow::Result<()> {
        let strategy = if self.major >= 15 { " STRATEGY = FILE_COPY" } else { "" };
        let mut sql = self.sql("postgres")?;
        sql.exec(&format!("DROP DATABASE IF EXISTS {work} WITH (FORCE)"))?;
        sql.exec(&format!("CREATE DATABASE {work} TEMPLATE {template}{strategy}"))
    }

    pub fn drop_database(&self, name: &str) -> anyhow::Result<()> {
        self.sql("postgres")?.exec(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    }

    pub fn database_exists(&self, name: &str) -> anyhow::Result<bool> {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut sql = self.sql("postgres")?;
        let found: N = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(name)
            .get_result(&mut sql.conn)
            .context("pg_database")?;
        Ok(found.n > 0)
    }

    /// Before each write workload and each baseline: vacuum what earlier runs wrote and
    /// checkpoint, so that every run starts from the same state (no autovacuum or checkpoint
    /// left over from the previous run).
    pub fn quiesce(&self, database: &str) -> anyhow::Result<()> {
        let mut sql = self.sql(database)?;
        sql.exec("VACUUM (ANALYZE) orders, order_items, idempotency_keys")?;
        sql.exec("CHECKPOINT")
    }
}

/// One connection to a database of the bench cluster.
pub struct Sql {
    conn: PgConnection,
}

impl Sql {
    pub fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(Self { conn: PgConnection::establish(url).with_context(|| format!("connecting to {url}"))? })
    }

    /// One statement (VACUUM refuses to share a string with others).
    pub fn exec(&mut self, statement: &str) -> anyhow::Result<()> {
        self.conn.batch_execute(statement).with_context(|| statement.to_owned())
    }

    /// A query whose one row has one column named `n`, a bigint.
    pub fn count(&mut self, query: &str) -> anyhow::Result<i64> {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        Ok(diesel::sql_query(query).get_result::<N>(&mut self.conn).with_context(|| query.to_owned())?.n)
    }

    /// `SHOW name`.
    pub fn setting(&mut self, name: &str) -> anyhow::Result<String> {
        #[derive(QueryableByName)]
        struct V {
            #[diesel(sql_type = Text)]
            v: String,
        }
        Ok(diesel::sql_query("SELECT current_setting($1) AS v")
            .bind::<Text, _>(name)
            .get_result::<V>(&mut self.conn)
            .with_context(|| format!("SHOW {name}"))?
            .v)
    }
}

/// The major version of the server programs in `bin_dir` (`postgres --version`).
fn major_version(bin_dir: &Path) -> anyhow::Result<u32> {
    let out = Command::new(bin_dir.join("postgres")).arg("--version").output().context("postgres --version")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_major(&text).with_context(|| format!("no version in `postgres --version`: {text}"))
}

/// `postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)` -> 15.
fn parse_major(text: &str) -> Option<u32> {
    let version = text.split(") ").nth(1)?.split_whitespace().next()?;
    version.split('.').next()?.parse().ok()
}

/// The `fdatasync` figures of the "one 8kB write" section of pg_test_fsync's output.
fn fdatasync_line(output: &str) -> Option<String> {
    let mut in_section = false;
    for line in output.lines() {
        if line.contains("one 8kB write") {
            in_section = true;
        }
        let mut words = line.split_whitespace();
        if in_section && words.next() == Some("fdatasync") {
            return Some(words.collect::<Vec<_>>().join(" "));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_fsync_lines() {
        assert_eq!(parse_major("postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n"), Some(15));
        assert_eq!(parse_major("postgres (PostgreSQL) 17devel\n"), None);
        let out = "Compare file sync methods using one 8kB write:\n(in wal_sync_method preference order, except fdatasync is Linux's default)\n        open_datasync                      8033.384 ops/sec     124 usecs/op\n        fdatasync                          8175.044 ops/sec     122 usecs/op\n\nCompare file sync methods using two 8kB writes:\n        fdatasync                          1.000 ops/sec     1 usecs/op\n";
        assert_eq!(fdatasync_line(out).as_deref(), Some("8175.044 ops/sec 122 usecs/op"));
        assert_eq!(fdatasync_line("nothing"), None);
    }
}
