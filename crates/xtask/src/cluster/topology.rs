//! Comanda's container topology (container/compose.yaml) as local processes: a PostgreSQL
//! cluster of its own and `db-admin init` (postgres.rs), Redis (redis.rs), N `comanda-api`
//! replicas on loopback ports sharing one JWT_SECRET and one Redis, and nginx in front (nginx.rs)
//! with container/nginx-proxy.conf.
//! Everything lives under one work folder (configuration, data, logs, the pid list) and listens
//! on 127.0.0.1 only. Nothing goes to /etc; PostgreSQL goes to /var/lib/comanda only when, as
//! root, the `postgres` user cannot enter the work folder (see `infrastructure::local_pg`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use infrastructure::local_pg::{self, LocalPostgres};
use infrastructure::settings::catalog::SETTINGS;
use nix::sys::signal::Signal;

use super::http::{self, Http};
use super::ports::{Ports, random_hex};
use super::process::{self, Proc};
use super::say;

/// The database the replicas use.
pub const DATABASE: &str = "comanda";

/// What differs between `run` and `test`.
#[derive(Debug, Clone)]
pub struct Config {
    pub work: PathBuf,
    /// Where `comanda-api` and `db-admin` are.
    pub bin_dir: PathBuf,
    pub replicas: usize,
    /// Settings for every child, over the harness's own (an empty value: the built-in default).
    pub settings: Vec<(&'static str, String)>,
    pub admin_email: String,
    pub admin_password: String,
    /// nginx's port; None picks a free one.
    pub nginx_port: Option<u16>,
    /// false: PostgreSQL without fsync (a test kills replicas, never the database).
    pub durable: bool,
}

/// One `comanda-api`.
#[derive(Debug)]
pub struct Replica {
    pub name: String,
    pub port: u16,
    pub proc: Proc,
    pub behind_nginx: bool,
}

/// PostgreSQL + Redis + replicas + nginx, all on loopback, all under `work`.
#[derive(Debug)]
pub struct Cluster {
    pub config: Config,
    pub work: PathBuf,
    api_bin: PathBuf,
    pub(super) admin_bin: PathBuf,
    jwt_secret: String,
    pub pg: Option<LocalPostgres>,
    pub redis_port: u16,
    pub redis: Option<Proc>,
    pub nginx_port: u16,
    pub nginx: Option<Proc>,
    pub replicas: Vec<Replica>,
    ports: Ports,
    pub http: Http,
}

impl Cluster {
    pub fn new(config: Config) -> Result<Self> {
        fs::create_dir_all(&config.work).with_context(|| format!("creating {}", config.work.display()))?;
        let work = fs::canonicalize(&config.work).with_context(|| format!("resolving {}", config.work.display()))?;
        let bin_dir = fs::canonicalize(&config.bin_dir).with_context(|| {
            format!(
                "{} is missing; build first: cargo build --bin comanda-api --bin db-admin",
                config.bin_dir.display()
            )
        })?;
        let api_bin = bin_dir.join("comanda-api");
        let admin_bin = bin_dir.join("db-admin");
        for bin in [&api_bin, &admin_bin] {
            if !bin.is_file() {
                bail!("{} is missing; build it: cargo build --bin comanda-api --bin db-admin", bin.display());
            }
        }
        let mut ports = Ports::default();
        let redis_port = ports.restartable()?;
        // nginx is never restarted: any free port does.
        let nginx_port = match config.nginx_port {
            Some(port) => port,
            None => local_pg::free_port().context("finding a free port for nginx")?,
        };
        Ok(Self {
            config,
            work,
            api_bin,
            admin_bin,
            jwt_secret: random_hex(48)?,
            pg: None,
            redis_port,
            redis: None,
            nginx_port,
            nginx: None,
            replicas: Vec::new(),
            ports,
            http: Http::default(),
        })
    }

    /// The folder of the local PostgreSQL (a DATA_DIR-like folder).
    pub fn pg_base(work: &Path) -> PathBuf {
        work.join("db")
    }

    pub fn pg_port(&self) -> u16 {
        self.pg.as_ref().map_or(0, LocalPostgres::port)
    }

    pub fn database_url(&self) -> String {
        let url = self.pg.as_ref().map(|pg| pg.url(DATABASE)).unwrap_or_default();
        format!("{url}?connect_timeout=2")
    }

    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.redis_port)
    }

    pub fn logs(&self) -> PathBuf {
        self.work.join("logs")
    }

    /// What every child gets: PATH and the locale, then every variable of the settings
    /// catalogue set (empty = the built-in default, and a `.env` in a parent folder cannot fill
    /// it in), then the harness's values and the caller's settings.
    pub fn base_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for name in ["PATH", "HOME", "LANG", "TZ"] {
            if let Ok(value) = std::env::var(name) {
                env.insert(name.to_owned(), value);
            }
        }
        for setting in SETTINGS {
            env.insert(setting.name.to_owned(), String::new());
        }
        for (name, value) in [
            ("APP_ENV", "development".to_owned()),
            ("DATABASE_URL", self.database_url()),
            ("LOG_FORMAT", "json".to_owned()),
            ("ARGON2_MEMORY_KIB", "1024".to_owned()),
            ("ARGON2_ITERATIONS", "1".to_owned()),
        ] {
            env.insert(name.to_owned(), value);
        }
        for (name, value) in &self.config.settings {
            env.insert((*name).to_owned(), value.clone());
        }
        env
    }

    fn replica_env(&self, port: u16, overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut env = self.base_env();
        let log = env.get("RUST_LOG").filter(|v| !v.is_empty()).cloned().unwrap_or_else(|| "info".to_owned());
        for (name, value) in [
            ("HOST", "127.0.0.1".to_owned()),
            ("PORT", port.to_string()),
            ("JWT_SECRET", self.jwt_secret.clone()),
            ("REDIS_URL", self.redis_url()),
            // Only nginx, which connects from 127.0.0.1, may name the client. The checks' clients
            // connect from other loopback addresses (127.0.0.10, ...), which are not trusted.
            ("TRUSTED_PROXIES", "127.0.0.1".to_owned()),
            ("RUST_LOG", log),
        ] {
            env.insert(name.to_owned(), value);
        }
        for (name, value) in overrides {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        env
    }

    // -- the pid list (for `cleanup` after a crash) --------------------------------------

    pub fn pids_file(work: &Path) -> PathBuf {
        work.join("pids")
    }

    pub fn record_pids(&mut self) -> Result<()> {
        let mut procs: Vec<&mut Proc> = self.replicas.iter_mut().map(|r| &mut r.proc).collect();
        procs.extend(self.redis.iter_mut());
        procs.extend(self.nginx.iter_mut());
        process::record_pids(&Self::pids_file(&self.work), &mut procs)
    }

    // -- replicas ------------------------------------------------------------------------

    /// Adds a replica (not started) on a port of its own; its index in `replicas`.
    pub fn add_replica(&mut self, name: &str, behind_nginx: bool, overrides: &[(&str, &str)]) -> Result<usize> {
        let port = self.ports.restartable()?;
        let env = self.replica_env(port, overrides);
        let log = self.logs().join(format!("{name}.log"));
        let proc = Proc::new(name, &self.api_bin, Vec::new(), env, &self.work, log);
        self.replicas.push(Replica { name: name.to_owned(), port, proc, behind_nginx });
        Ok(self.replicas.len() - 1)
    }

    /// Starts these replicas and waits until each is ready.
    pub async fn start_replicas(&mut self, which: &[usize]) -> Result<()> {
        for &i in which {
            self.replicas[i].proc.start()?;
        }
        self.record_pids()?;
        for &i in which {
            let http = self.http.clone();
            let replica = &mut self.replicas[i];
            let (port, what) = (replica.port, format!("{} ready on 127.0.0.1:{}", replica.name, replica.port));
            wait_for(&what, Duration::from_secs(60), Some(&mut replica.proc), async || http::ready(&http, port).await)
                .await?;
        }
        Ok(())
    }

    /// Starts a stopped replica again on its port; the time until it was ready.
    pub async fn restart_replica(&mut self, i: usize) -> Result<Duration> {
        self.replicas[i].proc.start()?;
        self.record_pids()?;
        let http = self.http.clone();
        let replica = &mut self.replicas[i];
        let (port, what) = (replica.port, format!("{} ready again", replica.name));
        wait_for(&what, Duration::from_secs(60), Some(&mut replica.proc), async || http::ready(&http, port).await).await
    }

    /// The replica listening on `addr` (`127.0.0.1:port`), or the address itself.
    pub fn replica_name(&self, addr: &str) -> String {
        let named = self.replicas.iter().find(|r| addr.ends_with(&format!(":{}", r.port)));
        named.map_or_else(|| addr.to_owned(), |r| r.name.clone())
    }

    // -- all of it -----------------------------------------------------------------------

    /// A fresh start: what a killed earlier run left stops, its logs and state go; then
    /// PostgreSQL, `db-admin init`, Redis, the replicas, nginx.
    pub async fn start(&mut self) -> Result<()> {
        cleanup(&self.work)?;
        for old in ["logs", "nginx", "redis"] {
            let path = self.work.join(old);
            if path.exists() {
                fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
        self.start_postgres()?;
        self.init_database()?;
        say(&format!("starting Redis on 127.0.0.1:{}", self.redis_port));
        self.start_redis().await?;
        for i in 1..=self.config.replicas {
            self.add_replica(&format!("api{i}"), true, &[])?;
        }
        let all: Vec<usize> = (0..self.replicas.len()).collect();
        let names: Vec<String> = self.replicas.iter().map(|r| format!("{} on 127.0.0.1:{}", r.name, r.port)).collect();
        say(&format!("starting {}", names.join(", ")));
        self.start_replicas(&all).await?;
        say(&format!("starting nginx on 127.0.0.1:{}", self.nginx_port));
        self.start_nginx().await
    }

    /// Stops everything: nginx, the replicas (SIGTERM, all at once, then each awaited), Redis,
    /// PostgreSQL. Returns how each replica's last run ended, in order.
    pub async fn stop(&mut self) -> Vec<(String, Option<std::process::ExitStatus>)> {
        if let Some(nginx) = self.nginx.as_mut() {
            nginx.stop(Signal::SIGTERM, Duration::from_secs(10)).await;
        }
        for replica in &mut self.replicas {
            replica.proc.signal(Signal::SIGTERM);
        }
        let mut ended = Vec::new();
        for replica in &mut self.replicas {
            let mut status = replica.proc.wait(Duration::from_secs(20)).await;
            if replica.proc.alive() {
                status = replica.proc.stop(Signal::SIGKILL, Duration::from_secs(5)).await;
            }
            ended.push((replica.name.clone(), status));
        }
        if let Some(redis) = self.redis.as_mut() {
            redis.signal(Signal::SIGCONT);
            redis.stop(Signal::SIGTERM, Duration::from_secs(10)).await;
        }
        if let Some(mut pg) = self.pg.take() {
            pg.stop();
        }
        let _ = fs::remove_file(Self::pids_file(&self.work));
        ended
    }
}

/// After a run that could not clean up (killed): stops the processes it recorded, then its
/// PostgreSQL (whose data stays until the next start).
pub fn cleanup(work: &Path) -> Result<()> {
    let stopped = process::stop_recorded(&Cluster::pids_file(work))?;
    if stopped > 0 {
        say(&format!("stopped {stopped} processes a previous run in {} left", work.display()));
    }
    let base = Cluster::pg_base(work);
    if local_pg::stop_cluster_of(&base).with_context(|| format!("stopping the PostgreSQL of {}", base.display()))? {
        say(&format!("stopped the PostgreSQL a previous run in {} left", work.display()));
    }
    Ok(())
}

/// Polls `check` until it is true; the time it took. Fails when `proc` exits meanwhile, or
/// after `timeout`, with the last lines of its log.
pub async fn wait_for(
    what: &str,
    timeout: Duration,
    mut proc: Option<&mut Proc>,
    mut check: impl AsyncFnMut() -> bool,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if check().await {
            return Ok(started.elapsed());
        }
        if let Some(p) = proc.as_deref_mut()
            && !p.alive()
        {
            let status = process::describe(p.exit_status());
            bail!(
                "{} ended ({status}) while waiting for {what}; last lines of {}:\n{}",
                p.name,
                p.log.display(),
                p.tail(15)
            );
        }
        if started.elapsed() > timeout {
            let tail =
                proc.map(|p| format!("; last lines of {}:\n{}", p.log.display(), p.tail(15))).unwrap_or_default();
            bail!("timed out after {} s waiting for {what}{tail}", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
