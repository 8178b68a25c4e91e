//! `db-admin seed`: realistic demo data, fast.
//!
//! A menu of products with a skewed (Zipf-like) popularity and prices that look real, stored
//! as the service's menu (categories and items) from before the first order: most lines are
//! menu lines (some with a note for the kitchen), and one order in twenty also carries an open
//! line typed off the menu; several
//! locations in different time zones, each with its own business day (the first location and
//! up to four more); waiters, and a manager and a kitchen display per location, created as real
//! users working in one location each (or reused when they already exist, so seeding twice
//! adds orders); and orders spread over the last days with a lunch and dinner pattern, each in
//! its waiter's location on that location's business date: mostly paid (one or two
//! payments that add up exactly), some partially paid, some still open (mostly recent ones) and
//! about 3% cancelled. Every row satisfies the schema's CHECK constraints and reads back through
//! the domain (`Order::restore`).
//!
//! Speed: one thread generates the rows while `--jobs` connections load the previous batches in
//! parallel, taking them from one bounded queue (a `crossbeam-channel`, the code base's one
//! worker queue), `BATCH_ORDERS` orders per batch, each batch (its orders, lines and payments)
//! in one transaction; every constraint, index and foreign key stays in force (a superuser may
//! skip the foreign key triggers with `--skip-fk-checks`). The rows go through diesel's own
//! `COPY` support (binary format); see [`load`] for how it compares with the text encoder it
//! replaced. Amounts are integer cents until they are written. Afterwards the sales rollup is reset (the background roll-up rebuilds it: the
//! load added orders to closed hours) and the tables are analyzed.
//!
//! `--seed-value` makes the same menu, waiters' shares and orders (lines, statuses, payments,
//! customers) again; times are relative to the moment of the run, and ids differ per run so
//! that seeding twice adds orders.
//!
//! The parts: [`args`] (the options), [`words`] (the word lists in `data/`), [`menu`] (products
//! and prices), [`customers`] (who orders), [`locations`] (where, and their business dates),
//! [`staff`] (the users), [`times`] (when orders
//! happen), [`draw`] (weighted choices, ids), [`generator`] (the orders), [`rows`] (what is
//! loaded), [`load`] (the loaders), [`summary`] (what is printed at the end).

mod args;
mod customers;
mod draw;
mod generator;
mod load;
mod locations;
mod menu;
mod rows;
mod staff;
mod summary;
mod times;
mod words;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use domain::Role;
use infrastructure::{PgReportRepository, Settings, db};

pub use args::SeedArgs;
use customers::Customers;
use generator::Generator;
use load::{Loader, prepare_session};
use menu::Menu;
use summary::{Stats, Summary};
use times::MICROS_PER_DAY;
use words::Words;

/// Orders per batch (per transaction); their lines and payments go in the same transaction.
const BATCH_ORDERS: u64 = 25_000;
/// Where the seeded staff's addresses live: `waiter1@seed.comanda.local`, ...
const STAFF_DOMAIN: &str = "seed.comanda.local";

pub fn run(conn: &mut PgConnection, url: &str, args: &SeedArgs, settings: &Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let pending = db::pending_migrations(conn).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !pending.is_empty() {
        bail!("the database is {} migration(s) behind; run `db-admin migrate` first", pending.len());
    }
    prepare_session(conn)?;

    let seed_value = args.seed_value.unwrap_or_else(|| rand::rng().random());
    let mut rng = StdRng::seed_from_u64(seed_value);
    let end_us = Utc::now().timestamp_micros();
    let counts = args.counts()?;
    let start_us = end_us - counts.days * MICROS_PER_DAY;
    let jobs = counts.jobs;

    if args.skip_fk_checks {
        let superuser: String = diesel::select(diesel::dsl::sql::<Text>("current_setting('is_superuser')"))
            .get_result(conn)
            .context("could not check whether the connection is a superuser")?;
        if superuser != "on" {
            bail!("--skip-fk-checks needs a superuser connection; run without it");
        }
    }

    let words = Words::load()?;
    let mut menu = Menu::build(&mut rng, counts.products, &words)?;
    menu.store(conn, chrono::DateTime::from_timestamp_micros(start_us - MICROS_PER_DAY).unwrap_or_else(Utc::now))?;
    let database = crate::database(settings, url);
    let places = locations::ensure(&database, counts.locations, Utc::now())?;
    let place_ids: Vec<_> = places.iter().map(domain::Location::id).collect();
    let plan = staff::StaffPlan {
        database: &database,
        password: &args.password,
        settings,
        created_at_us: start_us - MICROS_PER_DAY,
        locations: &place_ids,
    };
    let (waiters, mut created) = staff::ensure(conn, Role::Waiter, counts.waiters, &plan)?;
    for role in [Role::Manager, Role::Kitchen] {
        created += staff::ensure(conn, role, places.len(), &plan)?.1;
    }
    let customers = Customers::new(&words.first_names, &words.last_names);
    let window = start_us..end_us;
    let calendars = places.iter().cloned().map(locations::Calendar::new).collect();
    let generator = Generator::new(seed_value, &mut rng, window, args.orders, &menu, &customers, &waiters, calendars);

    println!(
        "seeding {} orders over {} day(s) in {} location(s), {} waiter(s), {} products, {jobs} connection(s) \
         (seed value {seed_value})",
        args.orders,
        args.days,
        places.len(),
        counts.waiters,
        counts.products
    );
    let progress = ProgressBar::new(args.orders);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{wide_bar}] {human_pos}/{human_len} orders \
             ({per_sec}, ETA {eta})",
        )
        .context("the progress bar template is invalid")?
        .progress_chars("=> "),
    );
    progress.enable_steady_tick(Duration::from_millis(200));

    let load_started = Instant::now();
    let failed = AtomicBool::new(false);
    let loaded = AtomicU64::new(0);
    // The generator and the loaders borrow the menu and the customers (the rows point into
    // them), so they run in a scope that ends when all of them have.
    let (totals, first_error) = thread::scope(|scope| -> anyhow::Result<_> {
        // At most one batch waiting per loader: the generator runs ahead of the loaders by that
        // much, and memory stays bounded.
        let (tx, rx) = crossbeam_channel::bounded(jobs);
        let producer = thread::Builder::new()
            .name("seed-generator".to_owned())
            .spawn_scoped(scope, move || generator.run(&tx))
            .context("could not start the data generator")?;
        let mut loaders = Vec::with_capacity(jobs);
        for _ in 0..jobs {
            let loader = Loader {
                url,
                batches: rx.clone(),
                failed: &failed,
                loaded: &loaded,
                progress: progress.clone(),
                skip_fk_checks: args.skip_fk_checks,
            };
            loaders.push(
                thread::Builder::new()
                    .name("seed-loader".to_owned())
                    .spawn_scoped(scope, move || loader.run())
                    .context("could not start a loader")?,
            );
        }
        // Only the loaders hold the queue's receiving end: when they have all stopped, the
        // generator's next send fails and it stops too.
        drop(rx);
        let mut totals = Stats::default();
        let mut first_error = None;
        for loader in loaders {
            match loader.join() {
                Ok(Ok(stats)) => totals.add(&stats),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(anyhow::anyhow!("a loader failed"));
                }
            }
        }
        if producer.join().is_err() {
            first_error.get_or_insert(anyhow::anyhow!("the data generator failed"));
        }
        Ok((totals, first_error))
    })?;
    progress.finish_and_clear();
    let load_time = load_started.elapsed();

    // The sales rollup holds the aggregates of closed hours and days; orders were just added to
    // past ones (even when a batch failed, the earlier ones stay), so it is forgotten and the
    // background roll-up rebuilds it from the orders.
    let loaded = loaded.load(Ordering::Relaxed);
    let reset = if loaded > 0 {
        PgReportRepository::new(crate::database(settings, url))
            .reset_rollup()
            .context("could not reset the sales rollup after the load")
    } else {
        Ok(())
    };
    if let Some(e) = first_error {
        return Err(e.context(format!("seeding stopped; the {loaded} orders loaded before stay")));
    }
    reset?;
    if totals.orders != args.orders {
        bail!("only {} of {} orders were generated", totals.orders, args.orders);
    }

    let analyze_started = Instant::now();
    conn.batch_execute(
        "ANALYZE users, user_locations, locations, orders, order_items, payments, menu_categories, menu_items, \
         menu_item_prices",
    )
    .context("could not ANALYZE the tables")?;
    let analyze_time = analyze_started.elapsed();

    summary::print(&Summary {
        totals: &totals,
        waiters: counts.waiters,
        staff: counts.waiters + 2 * places.len(),
        locations: places.iter().map(|l| format!("{} ({})", l.name().as_ref(), l.settings().time_zone)).collect(),
        created,
        products: counts.products,
        password: &args.password,
        seed_value,
        skip_fk_checks: args.skip_fk_checks,
        load_time,
        analyze_time,
        total_time: started.elapsed(),
    });
    Ok(())
}
