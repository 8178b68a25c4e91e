//! The topology's processes (Redis, the replicas, nginx): each in a process group of its own, its
//! output appended to a log file, its environment exactly what the harness gives it; and the pid
//! list that lets `cargo xtask cluster cleanup` stop what a killed run left behind.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// One long-running program of the topology, which may be started again after it stopped.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    cwd: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    /// How the current (or last) run ended, once it has been reaped.
    status: Option<ExitStatus>,
}

impl Proc {
    pub fn new(
        name: &str,
        program: impl Into<PathBuf>,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: &Path,
        log: PathBuf,
    ) -> Self {
        Self {
            name: name.to_owned(),
            program: program.into(),
            args,
            env,
            cwd: cwd.to_owned(),
            log,
            child: None,
            status: None,
        }
    }

    /// Starts it (again). The environment is exactly `env`: nothing of the caller's leaks in.
    /// A process group of its own: Ctrl-C reaches the harness only, which stops everything in
    /// order.
    pub fn start(&mut self) -> Result<()> {
        if let Some(dir) = self.log.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let err = out.try_clone().context("duplicating a log file handle")?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {} ({})", self.name, self.program.display()))?;
        self.child = Some(child);
        self.status = None;
        Ok(())
    }

    pub fn pid(&self) -> Option<Pid> {
        self.child.as_ref().and_then(|c| i32::try_from(c.id()).ok()).map(Pid::from_raw)
    }

    /// Whether it runs (reaps it when it has exited).
    pub fn alive(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else { return false };
        if self.status.is_some() {
            return false;
        }
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.status = Some(status);
                false
            }
            Err(_) => false,
        }
    }

    /// How its last run ended, if it has.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.alive();
        self.status
    }

    /// Sends `signal` if it runs.
    pub fn signal(&mut self, signal: Signal) {
        if self.alive()
            && let Some(pid) = self.pid()
        {
            // It may exit between the check and the signal: nothing to do then.
            let _ = kill(pid, signal);
        }
    }

    /// Waits up to `timeout` for it to exit; its status, or None if it still runs.
    pub async fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.alive() {
                return self.status;
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `signal` and waits; SIGKILL when it does not stop within `timeout`. Returns how it
    /// ended (also when it had already ended before), or None if it never started.
    pub async fn stop(&mut self, signal: Signal, timeout: Duration) -> Option<ExitStatus> {
        self.child.as_ref()?;
        if self.alive() {
            self.signal(signal);
            if self.wait(timeout).await.is_none() {
                self.signal(Signal::SIGKILL);
                self.wait(Duration::from_secs(5)).await;
            }
        }
        self.status
    }

    /// The last lines of its log.
    pub fn tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for Proc {
    /// The last resort (a panic): nothing the harness started outlives it.
    fn drop(&mut self) {
        if self.alive() {
            self.signal(Signal::SIGCONT);
            self.signal(Signal::SIGKILL);
            if let Some(child) = self.child.as_mut() {
                let _ = child.wait();
            }
        }
    }
}

/// "exit 0", "signal 9 (SIGKILL)", or "not started".
pub fn describe(status: Option<ExitStatus>) -> String {
    match status {
        None => "not started".to_owned(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(sig)) => match Signal::try_from(sig) {
                Ok(name) => format!("signal {sig} ({name})"),
                Err(_) => format!("signal {sig}"),
            },
            (None, None) => s.to_string(),
        },
    }
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(_) => "(no log)".to_owned(),
    }
}

/// `pid executable name` per running process of a topology, rewritten whenever one starts, so
/// that a later `cleanup` stops exactly those (if they are still the programs it started).
pub fn record_pids(file: &Path, procs: &mut [&mut Proc]) -> Result<()> {
    let mut text = String::new();
    for p in procs.iter_mut() {
        if p.alive()
            && let Some(pid) = p.pid()
        {
            let exe = fs::canonicalize(&p.program).unwrap_or_else(|_| p.program.clone());
            text.push_str(&format!("{pid} {} {}\n", exe.display(), p.name));
        }
    }
    fs::write(file, text).with_context(|| format!("writing {}", file.display()))
}

/// After a run that could not clean up (killed): stops the processes its pid list names, by
/// pid, if each is still the program it started (SIGCONT first, in case it was frozen, then
/// SIGTERM, SIGKILL after 10 s). Returns how many it stopped.
pub fn stop_recorded(file: &Path) -> Result<usize> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let mut stopped = 0;
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(pid), Some(exe)) = (parts.next().and_then(|p| p.parse::<i32>().ok()), parts.next()) else {
            continue;
        };
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        if fs::read_link(proc_dir.join("exe")).ok().as_deref() != Some(Path::new(exe)) {
            continue;
        }
        let pid = Pid::from_raw(pid);
        let _ = kill(pid, Signal::SIGCONT);
        if kill(pid, Signal::SIGTERM).is_err() {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_running(&proc_dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if is_running(&proc_dir) {
            let _ = kill(pid, Signal::SIGKILL);
        }
        stopped += 1;
    }
    fs::remove_file(file).with_context(|| format!("removing {}", file.display()))?;
    Ok(stopped)
}

/// Whether /proc/<pid> is a process that has not exited (a zombie has).
fn is_running(proc_dir: &Path) -> bool {
    let Ok(stat) = fs::read_to_string(proc_dir.join("stat")) else { return false };
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).is_some_and(|state| state != "Z")
}

/// A program on PATH, or in /usr/sbin and /usr/bin (Debian puts nginx in /usr/sbin, which a
/// user's PATH may lack).
pub fn which(program: &str, package: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")]);
    for dir in dirs {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    anyhow::bail!("{program} is missing: apt-get install {package}")
}
