//! The container topology (container/compose.yaml) as local processes, for machines without a
//! Docker engine, and its test:
//!
//!     cargo xtask cluster run [--port N]        serve until Ctrl-C (scripts/cluster/run.sh)
//!     cargo xtask cluster test [options]        checks (a)..(e) (scripts/cluster/test.sh)
//!     cargo xtask cluster cleanup               stop what a killed run left behind
//!
//! PostgreSQL is the service's own local cluster (`infrastructure::local_pg`), the children's
//! environment is built from the settings catalogue (`infrastructure::settings::catalog`), and
//! Redis and nginx are Debian's, as foreground processes on private ports and folders.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};

mod checks;
mod http;
mod nginx;
mod ports;
mod postgres;
mod process;
mod redis;
mod report;
mod serve;
mod topology;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Start the topology with the service's default settings and serve until Ctrl-C.
    Run(serve::RunArgs),
    /// Start the topology, run the checks (a)..(e) through nginx, and tear it all down.
    Test(checks::TestArgs),
    /// Stop what a killed run left running: its processes (by the pids it recorded) and its
    /// PostgreSQL.
    Cleanup(CleanupArgs),
}

/// Where things are.
#[derive(Debug, Clone, clap::Args)]
pub struct Folders {
    /// The work folder: configuration, data, logs (default: <target>/cluster/run or
    /// <target>/cluster/test).
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
    /// The folder of the comanda-api and db-admin binaries (default: this program's own,
    /// <target>/debug).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
}

impl Folders {
    fn work(&self, default: &str) -> Result<PathBuf> {
        match &self.work {
            Some(work) => Ok(work.clone()),
            None => Ok(target_dir()?.join("cluster").join(default)),
        }
    }

    fn bin_dir(&self) -> Result<PathBuf> {
        match &self.bin_dir {
            Some(dir) => Ok(dir.clone()),
            None => own_dir(),
        }
    }
}

#[derive(Debug, clap::Args)]
struct CleanupArgs {
    /// The work folder of the run to clean up (default: both <target>/cluster/run and
    /// <target>/cluster/test).
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    match args.command {
        Command::Run(args) => runtime.block_on(serve::serve(args)),
        Command::Test(args) => runtime.block_on(checks::test(args)),
        Command::Cleanup(args) => {
            let works = match args.work {
                Some(work) => vec![work],
                None => vec![target_dir()?.join("cluster/run"), target_dir()?.join("cluster/test")],
            };
            for work in works {
                topology::cleanup(&work)?;
            }
            Ok(())
        }
    }
}

/// A line of progress, on standard error.
fn say(text: &str) {
    eprintln!("==> {text}");
}

/// The checkout this program was built from (container/nginx-proxy.conf is read from it).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The folder of this program (`<target>/debug`), where cargo put the service's binaries too.
fn own_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this program's path")?;
    exe.parent().map(Path::to_path_buf).context("this program's path has no folder")
}

/// The cargo target folder this program was built into.
fn target_dir() -> Result<PathBuf> {
    own_dir()?.parent().map(Path::to_path_buf).context("this program is not in a cargo target folder")
}

/// SIGINT (Ctrl-C) and SIGTERM, caught from the start, so that the topology always comes down.
/// Set explicitly, also for SIGINT: a shell starts background jobs with SIGINT ignored.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn catch() -> Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("catching SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("catching SIGTERM")?,
        })
    }

    /// Waits for either; its name.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
