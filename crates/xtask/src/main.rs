//! `cargo xtask`: the programs that develop and prove Comanda, written in Rust beside the
//! service so that they call its own code (the local PostgreSQL, the settings list, the order
//! statement) instead of copying it.
//!
//!     cargo xtask bench [options]     the benchmark (scripts/bench/run.sh calls it)
//!     cargo xtask cluster <command>   the compose topology as processes, and its test
//!                                     (scripts/cluster/run.sh and test.sh call it)

#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod cluster;

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "Comanda's benchmark driver and cluster harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The benchmark: seeded databases, the release build under wrk, the SQL baselines.
    Bench(Box<bench::Args>),
    /// The container topology as local processes (PostgreSQL, Redis, replicas, nginx).
    Cluster(cluster::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(*args),
        Command::Cluster(args) => cluster::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
