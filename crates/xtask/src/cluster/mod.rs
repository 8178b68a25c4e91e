//! The cluster harness (to be ported from scripts/cluster/*.py).

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not ported yet: use scripts/cluster/test.sh")
}
