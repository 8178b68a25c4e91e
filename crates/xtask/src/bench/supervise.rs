//! What keeps a run tidy: its console (stderr and `run.log`), the one-run-at-a-time lock, the
//! children it starts (registered, so that Ctrl-C or SIGTERM stops them and the run then
//! cleans up as after an error), and the helpers that run a program into a raw file.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The run's console and its children. Cheap to clone; every part of the run holds one.
#[derive(Debug, Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: Mutex<Option<File>>,
    children: Mutex<Vec<u32>>,
    interrupted: AtomicBool,
    signal: Mutex<Option<Signal>>,
}

impl Supervisor {
    /// Catches SIGINT, SIGTERM and SIGHUP in a thread of their own (tokio's handlers: the
    /// children keep the default dispositions and an empty signal mask), which marks the run
    /// as interrupted and stops the registered children; the run then fails at its next step
    /// and cleans up as after any error.
    pub fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let supervisor = Self {
            inner: Arc::new(Inner {
                log: Mutex::new(None),
                children: Mutex::new(Vec::new()),
                interrupted: AtomicBool::new(false),
                signal: Mutex::new(None),
            }),
        };
        let watcher = supervisor.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let streams = (
                        signal(SignalKind::interrupt()),
                        signal(SignalKind::terminate()),
                        signal(SignalKind::hangup()),
                    );
                    let (mut int, mut term, mut hup) = match streams {
                        (Ok(int), Ok(term), Ok(hup)) => (int, term, hup),
                        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    loop {
                        let caught = tokio::select! {
                            _ = int.recv() => Signal::SIGINT,
                            _ = term.recv() => Signal::SIGTERM,
                            _ = hup.recv() => Signal::SIGHUP,
                        };
                        watcher.interrupt(caught);
                    }
                });
            })
            .context("starting the signal thread")?;
        ready_rx.recv().context("the signal thread ended")?.context("catching SIGINT, SIGTERM and SIGHUP")?;
        Ok(supervisor)
    }

    fn interrupt(&self, signal: Signal) {
        self.inner.interrupted.store(true, Ordering::SeqCst);
        if let Ok(mut seen) = self.inner.signal.lock() {
            seen.get_or_insert(signal);
        }
        self.say(&format!("{signal} received: stopping"));
        let pids = self.inner.children.lock().map(|c| c.clone()).unwrap_or_default();
        for pid in pids {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }

    /// Fails once a signal asked the run to stop (checked between steps and in waits).
    pub fn check(&self) -> anyhow::Result<()> {
        if self.inner.interrupted.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        Ok(())
    }

    /// The exit code a signal asks for (130 for SIGINT, 143 for SIGTERM), if one came.
    pub fn signal_exit_code(&self) -> Option<u8> {
        let signal = (*self.inner.signal.lock().ok()?)?;
        Some(128 + signal as i32 as u8)
    }

    /// Sleeps, waking early when interrupted.
    pub fn sleep(&self, duration: Duration) -> anyhow::Result<()> {
        let step = Duration::from_millis(100);
        let mut left = duration;
        while !left.is_zero() {
            self.check()?;
            let nap = left.min(step);
            std::thread::sleep(nap);
            left -= nap;
        }
        self.check()
    }

    /// From now on, the console is also appended to `path`.
    pub fn log_to(&self, path: &Path) -> anyhow::Result<()> {
        let file =
            OpenOptions::new().create(true).append(true).open(path).with_context(|| path.display().to_string())?;
        if let Ok(mut log) = self.inner.log.lock() {
            *log = Some(file);
        }
        Ok(())
    }

    /// `==> text` on stderr and in the run's log.
    pub fn say(&self, text: &str) {
        self.line(&format!("==> {text}"));
    }

    /// `warning: text` on stderr and in the run's log.
    pub fn warn(&self, text: &str) {
        self.line(&format!("warning: {text}"));
    }

    /// A line of the console: stderr and the run's log.
    pub fn line(&self, text: &str) {
        eprintln!("{text}");
        if let Ok(mut log) = self.inner.log.lock()
            && let Some(file) = log.as_mut()
        {
            let _ = writeln!(file, "{text}");
        }
    }

    /// Starts `command` and registers it, so that a signal stops it too.
    pub fn spawn(&self, command: &mut Command) -> anyhow::Result<Child> {
        self.check()?;
        let child = command.spawn().with_context(|| format!("could not start {}", shown(command)))?;
        if let Ok(mut children) = self.inner.children.lock() {
            children.push(child.id());
        }
        Ok(child)
    }

    /// Waits for a child started by [`spawn`](Self::spawn) and forgets it.
    pub fn wait(&self, child: &mut Child) -> anyhow::Result<std::process::ExitStatus> {
        let status = child.wait().context("waiting for a child process")?;
        self.forget(child.id());
        Ok(status)
    }

    pub fn forget(&self, pid: u32) {
        if let Ok(mut children) = self.inner.children.lock() {
            children.retain(|&p| p != pid);
        }
    }

    /// Runs `command` with stdout and stderr into `out` (created), and returns its status.
    pub fn run_to_file(&self, command: &mut Command, out: &Path) -> anyhow::Result<std::process::ExitStatus> {
        let file = File::create(out).with_context(|| out.display().to_string())?;
        command.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file);
        let mut child = self.spawn(command)?;
        let status = self.wait(&mut child)?;
        self.check()?;
        Ok(status)
    }

    /// Like [`run_to_file`](Self::run_to_file), and a failure is an error quoting the end of
    /// the file.
    pub fn run_ok(&self, command: &mut Command, out: &Path, what: &str) -> anyhow::Result<()> {
        let status = self.run_to_file(command, out)?;
        if !status.success() {
            bail!("{what} failed ({status}); the end of {}:\n{}", out.display(), tail(out, 20));
        }
        Ok(())
    }
}

/// The last `n` lines of a file (for error messages).
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A command as a person would type it (for messages).
pub fn shown(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// The one-run-at-a-time lock (`target/bench/.lock`), held while the value lives.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    pub fn take(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                bail!("another benchmark is running (lock {})", path.display())
            }
            Err(std::fs::TryLockError::Error(e)) => Err(e).context(path.display().to_string()),
        }
    }
}

/// A folder in the system's temporary folder, removed on drop: the binaries' working
/// directory (no `.env` there or above) and pgbench's, readable by the `postgres` user.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = std::env::temp_dir().join(format!("comanda-bench.{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).with_context(|| path.display().to_string())?;
        }
        fs::create_dir(&path).with_context(|| path.display().to_string())?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Raises this process's open-files limit to `wanted` if it is lower (children inherit it):
/// up to the hard limit, and beyond it when allowed (root).
pub fn raise_open_files(wanted: u64) -> anyhow::Result<Option<u64>> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit")?;
    if soft >= wanted {
        return Ok(None);
    }
    if setrlimit(Resource::RLIMIT_NOFILE, wanted, hard.max(wanted)).is_err() {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(wanted).max(soft), hard);
    }
    let (now, _) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit")?;
    Ok((now < wanted).then_some(now))
}
