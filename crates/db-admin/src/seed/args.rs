//! `db-admin seed`'s options and their bounds.

use std::thread;

use anyhow::Context;

const MAX_ORDERS: u64 = 100_000_000;
const MAX_DAYS: u64 = 3_650;
const MAX_WAITERS: u64 = 1_000;
pub(super) const MAX_PRODUCTS: u64 = 5_000;
const MAX_JOBS: u64 = 16;

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// How many orders (1 to 100000000).
    #[arg(long, value_parser = orders_arg)]
    pub orders: u64,
    /// Over how many days, ending now (1 to 3650).
    #[arg(long, default_value_t = 30, value_parser = days_arg)]
    pub days: u64,
    /// How many waiters (1 to 1000): waiter1@seed.comanda.local and so on, reused when they
    /// already exist.
    #[arg(long, default_value_t = 20, value_parser = waiters_arg)]
    pub waiters: u64,
    /// Over how many locations (1 to 5): the first location, then Centro (Mexico City, days
    /// from 05:00), Gràcia (Madrid, 04:00), Brooklyn (New York, 02:00), Shibuya (Tokyo),
    /// made when missing. Each gets a manager and a kitchen display; waiters are spread over
    /// them.
    #[arg(long, default_value_t = 4, value_parser = locations_arg)]
    pub locations: u64,
    /// How many products on the menu (1 to 5000).
    #[arg(long, default_value_t = 300, value_parser = products_arg)]
    pub products: u64,
    /// The password of the waiters this run creates (existing ones keep theirs).
    #[arg(long, default_value = "seed-password")]
    pub password: String,
    /// How many connections load in parallel (1 to 16; default: the number of CPUs, at most 4).
    #[arg(long, value_parser = jobs_arg)]
    pub jobs: Option<u64>,
    /// Skip the foreign key checks while loading, often about twice as fast (needs a superuser: it
    /// sets session_replication_role = replica for the loading connections). The generated
    /// rows refer only to the waiters read from the database and to orders of their own batch;
    /// CHECK, primary key and unique constraints are enforced as always.
    #[arg(long)]
    pub skip_fk_checks: bool,
    /// Seed of the random generator, to make the same data again (relative to the current
    /// time); random when not given, and printed at the end.
    #[arg(long)]
    pub seed_value: Option<u64>,
}

/// The numbers of [`SeedArgs`] as the code uses them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Counts {
    pub days: i64,
    pub waiters: usize,
    pub locations: usize,
    pub products: usize,
    pub jobs: usize,
}

impl SeedArgs {
    pub(super) fn counts(&self) -> anyhow::Result<Counts> {
        Ok(Counts {
            days: i64::try_from(self.days).context("--days is too large")?,
            waiters: usize::try_from(self.waiters).context("--waiters is too large")?,
            locations: usize::try_from(self.locations).context("--locations is too large")?,
            products: usize::try_from(self.products).context("--products is too large")?,
            jobs: match self.jobs {
                Some(jobs) => usize::try_from(jobs).context("--jobs is too large")?,
                None => thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            },
        })
    }
}

fn bounded(raw: &str, min: u64, max: u64, what: &str) -> Result<u64, String> {
    match raw.trim().parse::<u64>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(format!("{what} must be a whole number from {min} to {max}")),
    }
}

fn orders_arg(raw: &str) -> Result<u64, String> {
    bounded(raw, 1, MAX_ORDERS, "the number of orders")
}

fn days_arg(raw: &str) -> Result<u64, String> {
    bounded(raw, 1, MAX_DAYS, "the number of days")
}

fn waiters_arg(raw: &str) -> Result<u64, String> {
    bounded(raw, 1, MAX_WAITERS, "the number of waiters")
}

fn locations_arg(raw: &str) -> Result<u64, String> {
    bounded(raw, 1, super::locations::MAX_LOCATIONS as u64, "the number of locations")
}

fn jobs_arg(raw: &str) -> Result<u64, String> {
    bounded(raw, 1, MAX_JOBS, "the number of jobs")
}

fn products_arg(raw: &str) -> Result<u64, String> {
    bounded(raw, 1, MAX_PRODUCTS, "the number of products")
}
