//! The benchmark driver (to be ported from scripts/bench/run.sh).

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not ported yet: use scripts/bench/run.sh")
}
