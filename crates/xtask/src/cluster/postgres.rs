//! The topology's PostgreSQL (the service's own local cluster, `infrastructure::local_pg`) and
//! `db-admin`, run with the children's environment.

use std::process::Command;

use anyhow::{Context, Result, bail};
use infrastructure::local_pg::{self, LocalPgOptions, LocalPostgres};

use super::process;
use super::say;
use super::topology::{Cluster, DATABASE};

impl Cluster {
    /// A fresh cluster: whatever an earlier run left is removed first, wherever it lives.
    pub(super) fn start_postgres(&mut self) -> Result<()> {
        let base = Self::pg_base(&self.work);
        local_pg::remove_cluster_of(&base).context("removing the previous run's PostgreSQL")?;
        let mut options = LocalPgOptions::default();
        if !self.config.durable {
            // A test database on a shared machine: no fsync (the test kills replicas, never the
            // database, so durability across a crash of PostgreSQL is not what it checks).
            for name in ["fsync", "synchronous_commit", "full_page_writes"] {
                options.server_settings.push((name.to_owned(), "off".to_owned()));
            }
        }
        say(&format!("initdb and start PostgreSQL under {}", base.display()));
        let pg = LocalPostgres::start(&base, &options).context("starting PostgreSQL")?;
        pg.ensure_database(DATABASE).context("creating the database")?;
        say(&format!("PostgreSQL {} on 127.0.0.1:{}, data in {}", pg.version(), pg.port(), pg.data_dir().display()));
        self.pg = Some(pg);
        Ok(())
    }

    /// Runs `db-admin` with the children's environment plus `extra`; its standard output.
    /// Blocking (a second or so), called while nothing else runs.
    pub fn db_admin(&self, args: &[&str], extra: &[(&str, &str)]) -> Result<String> {
        let mut env = self.base_env();
        for (name, value) in extra {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        let output = Command::new(&self.admin_bin)
            .args(args)
            .env_clear()
            .envs(&env)
            .current_dir(&self.work)
            .output()
            .context("running db-admin")?;
        if !output.status.success() {
            bail!(
                "db-admin {} failed ({}): {}",
                args.join(" "),
                process::describe(Some(output.status)),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    pub(super) fn init_database(&self) -> Result<()> {
        say("db-admin init (database, migrations, first admin)");
        self.db_admin(
            &["init"],
            &[
                ("ADMIN_EMAIL", &self.config.admin_email),
                ("ADMIN_NAME", "Cluster Admin"),
                ("ADMIN_PASSWORD", &self.config.admin_password),
            ],
        )
        .map(drop)
    }

    /// Creates a user with `db-admin create-user`; its id.
    pub fn create_user(&self, email: &str, name: &str, password: &str, role: &str) -> Result<String> {
        let out = self.db_admin(
            &["create-user", "--email", email, "--name", name, "--role", role],
            &[("NEW_USER_PASSWORD", password)],
        )?;
        // "created waiter ana@example.com (01a2...)"
        let id = out.trim().rsplit_once('(').map(|(_, id)| id.trim_end_matches(')').to_owned());
        id.with_context(|| format!("db-admin create-user said {out:?}, without an id"))
    }
}
