//! `db-admin seed`: realistic demo data, fast.

use diesel::PgConnection;

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// How many orders.
    #[arg(long)]
    pub orders: u64,
    /// Over how many days, ending now.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// How many waiters.
    #[arg(long, default_value_t = 20)]
    pub waiters: u32,
    /// How many products on the menu.
    #[arg(long, default_value_t = 300)]
    pub products: u32,
}

pub fn run(_conn: &mut PgConnection, _args: &SeedArgs) -> anyhow::Result<()> {
    anyhow::bail!("seed comes with the orders issue")
}
