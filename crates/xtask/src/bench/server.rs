//! The binaries as the benchmark runs them: with exactly the environment given here (the
//! caller's is cleared, so no setting of [`catalog::SETTINGS`] leaks in), in a folder without a
//! `.env`; and `comanda-api` as a process watched until it is ready and stopped with SIGTERM.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use infrastructure::settings::catalog::{self, ReadBy};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::Ctx;
use super::builds::Build;
use super::options::{ADMIN_EMAIL, ADMIN_PASSWORD, Config, JWT_SECRET};
use super::supervise::{Supervisor, tail};

/// What every binary gets (the defaults of every other setting apply, e.g. Argon2id
/// m=19456 KiB t=2 p=1, HTTP and hash workers = cores).
pub fn base_env() -> Vec<(String, String)> {
    [("LOG_FORMAT", "json"), ("RUST_LOG", "warn"), ("ADMIN_EMAIL", ADMIN_EMAIL), ("ADMIN_PASSWORD", ADMIN_PASSWORD)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The server's environment on top of [`base_env`].
pub fn server_env(config: &Config, database_url: &str, port: u16) -> Vec<(String, String)> {
    let mut env = base_env();
    for (key, value) in [
        ("DATABASE_URL", database_url.to_owned()),
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", port.to_string()),
        ("JWT_SECRET", JWT_SECRET.to_owned()),
        ("JWT_TTL_SECONDS", "7200".to_owned()),
        ("DATABASE_POOL_SIZE", config.pool.to_string()),
        ("RATE_LIMIT_LOGIN_PER_MINUTE", "0".to_owned()),
        ("RATE_LIMIT_PER_MINUTE", "0".to_owned()),
    ] {
        env.push((key.to_owned(), value));
    }
    env.extend(config.server_env.iter().cloned());
    env
}

/// `--server-env` names that no binary reads (a typo would silently change nothing).
pub fn unknown_settings(config: &Config) -> Vec<String> {
    let known: Vec<&str> = catalog::names(ReadBy::Core)
        .chain(catalog::names(ReadBy::Server))
        .chain(catalog::names(ReadBy::Process))
        .collect();
    config.server_env.iter().map(|(k, _)| k.clone()).filter(|k| !known.contains(&k.as_str())).collect()
}

/// A command for one of the binaries: an empty environment but `PATH` and `HOME`, then
/// `env`, run in `workdir`.
pub fn binary(path: &Path, workdir: &Path, env: &[(String, String)]) -> Command {
    let mut command = Command::new(path);
    command.env_clear();
    command.env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()));
    command.env("HOME", std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command.current_dir(workdir);
    command
}

/// `db-admin ARGS` against `database_url`.
pub fn db_admin(build: &Build, workdir: &Path, database_url: &str, args: &[&str]) -> Command {
    let mut env = base_env();
    env.push(("DATABASE_URL".to_owned(), database_url.to_owned()));
    let mut command = binary(&build.admin, workdir, &env);
    command.args(args);
    command
}

/// A running `comanda-api`; stopped on drop.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    pub pid: u32,
    pub url: String,
    pub log: PathBuf,
    sup: Supervisor,
}

impl Server {
    /// Starts `build`'s server against `database_url` on a free loopback port, its output in
    /// `raw/server-<name>.log` and its environment (secrets left out) in
    /// `raw/server-env-<name>.txt`, and waits until `/health/ready` answers.
    pub fn start(ctx: &Ctx, build: &Build, database_url: &str, name: &str) -> anyhow::Result<Self> {
        let (sup, api, config, workdir, raw) = (&ctx.sup, &ctx.api, &ctx.config, &ctx.workdir, &ctx.raw);
        let log = raw.join(format!("server-{name}.log"));
        for attempt in 0.. {
            let port = infrastructure::local_pg::free_port().context("no free loopback port for comanda-api")?;
            let env = server_env(config, database_url, port);
            let shown: Vec<String> = env
                .iter()
                .filter(|(k, _)| k != "JWT_SECRET" && k != "ADMIN_PASSWORD")
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect();
            fs::write(raw.join(format!("server-env-{name}.txt")), shown.concat())?;
            let url = format!("http://127.0.0.1:{port}");
            sup.say(&format!("starting comanda-api ({}) on {url} against {name} (pool {})", build.label, config.pool));
            let file = File::create(&log).with_context(|| log.display().to_string())?;
            let mut command = binary(&build.api, workdir, &env);
            command.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file);
            let child = sup.spawn(&mut command)?;
            let mut server = Self { pid: child.id(), child: Some(child), url, log: log.clone(), sup: sup.clone() };
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(60) {
                sup.check()?;
                if let Some(status) = server.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    server.child = None;
                    sup.forget(server.pid);
                    let text = fs::read_to_string(&log).unwrap_or_default();
                    if text.contains("Address already in use") && attempt < 3 {
                        sup.warn(&format!("port {port} was taken meanwhile; trying another"));
                        break;
                    }
                    bail!("comanda-api exited at start ({status}); the end of {}:\n{}", log.display(), tail(&log, 20));
                }
                if api.ready(&server.url) {
                    return Ok(server);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if server.child.is_some() {
                bail!("comanda-api did not become ready within 60 s (see {})", log.display());
            }
        }
        unreachable!("the loop returns or fails")
    }

    /// Resets the peak RSS (`/proc/PID/clear_refs`); false when the kernel refuses.
    pub fn reset_hwm(&self) -> bool {
        fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }

    /// `VmHWM` in MB.
    pub fn hwm_mb(&self) -> Option<f64> {
        self.status_mb("VmHWM:")
    }

    /// `VmRSS` in MB.
    pub fn rss_mb(&self) -> Option<f64> {
        self.status_mb("VmRSS:")
    }

    fn status_mb(&self, field: &str) -> Option<f64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let kb: f64 = status.lines().find_map(|l| l.strip_prefix(field))?.split_whitespace().next()?.parse().ok()?;
        Some(kb / 1024.0)
    }

    /// Lines of its log at level WARN or ERROR.
    pub fn warnings(&self) -> usize {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\"")).count()
    }

    /// SIGTERM, up to 15 s for a graceful stop, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = child.try_wait() {
                self.sup.forget(self.pid);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.sup.warn(&format!("comanda-api (pid {}) did not stop within 15 s of SIGTERM; killing it", self.pid));
        let _ = child.kill();
        let _ = child.wait();
        self.sup.forget(self.pid);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variable the benchmark gives the binaries is one they read (a renamed setting
    /// would otherwise be silently ignored by the run).
    #[test]
    fn the_bench_sets_only_settings_the_binaries_read() {
        let config = super::super::options::defaults();
        let known: Vec<&str> = catalog::names(ReadBy::Core)
            .chain(catalog::names(ReadBy::Server))
            .chain(catalog::names(ReadBy::Process))
            .collect();
        for (key, _) in server_env(&config, "postgres://x", 1) {
            assert!(known.contains(&key.as_str()), "{key} is not in infrastructure::settings::catalog");
        }
    }

    #[test]
    fn unknown_server_env_names_are_reported() {
        let mut config = super::super::options::defaults();
        config.server_env = vec![("HTTP_WORKERS".into(), "1".into()), ("HTTP_WORKER".into(), "1".into())];
        assert_eq!(unknown_settings(&config), vec!["HTTP_WORKER".to_owned()]);
    }
}
