//! `db-admin seed`: realistic demo data, fast.
//!
//! A menu of products with a skewed (Zipf-like) popularity and prices that look real, waiters
//! created as real users (or reused when they already exist, so seeding twice adds orders), and
//! orders spread over the last days with a lunch and dinner pattern: mostly paid (one or two
//! payments that add up exactly), some partially paid, some still open (mostly recent ones) and
//! about 3% cancelled. Every row satisfies the schema's CHECK constraints and reads back through
//! the domain (`Order::restore`).
//!
//! Speed: one thread generates the rows as PostgreSQL `COPY` text while `--jobs` connections
//! load the previous batches in parallel, `BATCH_ORDERS` orders per batch, each batch (its
//! orders, lines and payments) in one transaction; every constraint, index and foreign key stays
//! in force (a superuser may skip the foreign key triggers with `--skip-fk-checks`). Amounts are integer cents until they are written. Afterwards the sales rollup is
//! reset (the background roll-up rebuilds it: the load added orders to closed hours) and the
//! tables are analyzed.
//!
//! `--seed-value` makes the same menu, waiters' shares and orders (lines, statuses, payments,
//! customers) again; times are relative to the moment of the run, and ids differ per run so
//! that seeding twice adds orders.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Datelike, Timelike, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::{SmallRng, StdRng};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use application::PasswordHasher as _;
use domain::{Email, Password, PersonName, ProductName, Role};
use infrastructure::schema::{order_items, orders, payments, users};
use infrastructure::{Argon2Hasher, Database, PgReportRepository, PoolSettings, Settings, db};

/// Orders per batch (per transaction); their lines and payments go in the same transaction.
const BATCH_ORDERS: u64 = 25_000;
/// Where the seeded waiters' addresses live: `waiter1@seed.comanda.local`, ...
const WAITER_DOMAIN: &str = "seed.comanda.local";
const MAX_ORDERS: u64 = 100_000_000;
const MAX_DAYS: u64 = 3_650;
const MAX_WAITERS: u64 = 1_000;
const MAX_PRODUCTS: u64 = 5_000;
/// At most this many lines per order (fewer when the menu is smaller).
const MAX_LINES: usize = 8;
/// 2^64 / golden ratio: spreads consecutive numbers over the seed space.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

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

fn jobs_arg(raw: &str) -> Result<u64, String> {
    bounded(raw, 1, 16, "the number of jobs")
}

fn products_arg(raw: &str) -> Result<u64, String> {
    bounded(raw, 1, MAX_PRODUCTS, "the number of products")
}

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
    let days = i64::try_from(args.days).context("--days is too large")?;
    let start_us = end_us - days * MICROS_PER_DAY;
    let waiter_count = usize::try_from(args.waiters).context("--waiters is too large")?;
    let product_count = usize::try_from(args.products).context("--products is too large")?;
    let jobs = match args.jobs {
        Some(jobs) => usize::try_from(jobs).context("--jobs is too large")?,
        None => thread::available_parallelism().map_or(1, |n| n.get().min(4)),
    };

    if args.skip_fk_checks {
        let superuser: String = diesel::select(diesel::dsl::sql::<Text>("current_setting('is_superuser')"))
            .get_result(conn)
            .context("could not check whether the connection is a superuser")?;
        if superuser != "on" {
            bail!("--skip-fk-checks needs a superuser connection; run without it");
        }
    }

    let menu = Menu::build(&mut rng, product_count)?;
    let (waiter_ids, created) =
        ensure_waiters(conn, waiter_count, &args.password, settings, start_us - MICROS_PER_DAY)?;
    let waiter_weights: Vec<f64> = waiter_ids.iter().map(|_| rng.random_range(0.6..1.4)).collect();
    let generator = Generator {
        menu,
        waiters: waiter_ids.iter().map(|id| hyphenated(*id)).collect(),
        waiter_cdf: cumulative(&waiter_weights),
        times: TimeStream::new(start_us, end_us, args.orders),
        end_us,
        remaining: args.orders,
        seed: seed_value,
        index: 0,
        time_rng: StdRng::seed_from_u64(seed_value ^ 0x005E_ED0F_71E5),
        // Ids take their random bits from a generator of their own, seeded with the time too:
        // the same seed value makes the same data, and running it again adds new orders
        // instead of colliding with the first run's ids.
        id_rng: SmallRng::seed_from_u64(seed_value.wrapping_mul(GOLDEN) ^ end_us.unsigned_abs()),
    };

    println!(
        "seeding {} orders over {} day(s), {} waiter(s), {} products, {jobs} connection(s) \
         (seed value {seed_value})",
        args.orders, args.days, waiter_count, product_count
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
    let (tx, rx) = mpsc::sync_channel::<Batch>(jobs);
    let producer = thread::Builder::new()
        .name("seed-generator".to_owned())
        .spawn(move || generator.run(&tx))
        .context("could not start the data generator")?;
    let rx = Arc::new(Mutex::new(rx));
    let failed = Arc::new(AtomicBool::new(false));
    let loaded = Arc::new(AtomicU64::new(0));
    let mut loaders = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        let loader = Loader {
            url: url.to_owned(),
            batches: Arc::clone(&rx),
            failed: Arc::clone(&failed),
            loaded: Arc::clone(&loaded),
            progress: progress.clone(),
            skip_fk_checks: args.skip_fk_checks,
        };
        loaders.push(
            thread::Builder::new()
                .name("seed-loader".to_owned())
                .spawn(move || loader.run())
                .context("could not start a loader")?,
        );
    }
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
    progress.finish_and_clear();
    let load_time = load_started.elapsed();

    // The sales rollup holds the aggregates of closed hours and days; orders were just added to
    // past ones (even when a batch failed, the earlier ones stay), so it is forgotten and the
    // background roll-up rebuilds it from the orders.
    let loaded = loaded.load(Ordering::Relaxed);
    let reset = if loaded > 0 {
        let reports = PgReportRepository::new(Database::new(
            url,
            PoolSettings {
                max_size: 1,
                checkout_timeout: settings.database_timeout,
                statement_timeout: settings.database_statement_timeout,
            },
        ));
        reports.reset_rollup().context("could not reset the sales rollup after the load")
    } else {
        Ok(())
    };
    if let Some(e) = first_error {
        return Err(e.context(format!("seeding stopped; the {loaded} orders loaded before stay")));
    }
    reset?;
    producer.join().map_err(|_| anyhow::anyhow!("the data generator failed"))?;
    if totals.orders != args.orders {
        bail!("only {} of {} orders were generated", totals.orders, args.orders);
    }

    let analyze_started = Instant::now();
    conn.batch_execute("ANALYZE users, orders, order_items, payments").context("could not ANALYZE the tables")?;
    let analyze_time = analyze_started.elapsed();

    print_summary(&Summary {
        totals: &totals,
        waiters: waiter_count,
        created,
        products: product_count,
        password: &args.password,
        seed_value,
        skip_fk_checks: args.skip_fk_checks,
        load_time,
        analyze_time,
        total_time: started.elapsed(),
    });
    Ok(())
}

/// One connection loading batches until there are no more, or another loader failed.
struct Loader {
    url: String,
    batches: Arc<Mutex<mpsc::Receiver<Batch>>>,
    failed: Arc<AtomicBool>,
    loaded: Arc<AtomicU64>,
    progress: ProgressBar,
    skip_fk_checks: bool,
}

impl Loader {
    fn run(self) -> anyhow::Result<Stats> {
        let result = self.load_all();
        if result.is_err() {
            self.failed.store(true, Ordering::Relaxed);
        }
        result
    }

    fn load_all(&self) -> anyhow::Result<Stats> {
        let mut conn = PgConnection::establish(&self.url).context("could not connect to the database")?;
        prepare_session(&mut conn)?;
        if self.skip_fk_checks {
            // Foreign keys are checked by triggers, which do not fire for a replica session.
            conn.batch_execute("SET session_replication_role = replica")
                .context("--skip-fk-checks could not turn the checks off (it needs a superuser)")?;
        }
        let mut stats = Stats::default();
        while !self.failed.load(Ordering::Relaxed) {
            let next = self.batches.lock().map_err(|_| anyhow::anyhow!("a loader failed"))?.recv();
            let Ok(batch) = next else { break };
            load_batch(&mut conn, &batch)?;
            stats.add(&batch.stats);
            self.loaded.fetch_add(batch.stats.orders, Ordering::Relaxed);
            self.progress.inc(batch.stats.orders);
        }
        Ok(stats)
    }
}

/// No statement timeout (a COPY of a big batch may take longer than one set through the URL),
/// UTC.
fn prepare_session(conn: &mut PgConnection) -> anyhow::Result<()> {
    conn.batch_execute("SET statement_timeout = 0; SET TIME ZONE 'UTC'")
        .context("could not prepare the database session")
}

/// Loads one batch in one transaction: orders first, then their lines and payments.
fn load_batch(conn: &mut PgConnection, batch: &Batch) -> anyhow::Result<()> {
    conn.transaction::<_, anyhow::Error, _>(|conn| {
        diesel::copy_from(orders::table)
            .from_raw_data(
                (
                    orders::id,
                    orders::customer_name,
                    orders::waiter_id,
                    orders::status,
                    orders::total_price,
                    orders::amount_paid,
                    orders::created_at,
                    orders::updated_at,
                ),
                |out| send(out, &batch.orders),
            )
            .execute(conn)
            .context("COPY into orders failed")?;
        diesel::copy_from(order_items::table)
            .from_raw_data(
                (
                    order_items::order_id,
                    order_items::line_no,
                    order_items::product_key,
                    order_items::product_name,
                    order_items::unit_price,
                    order_items::quantity,
                    order_items::subtotal,
                ),
                |out| send(out, &batch.items),
            )
            .execute(conn)
            .context("COPY into order_items failed")?;
        if !batch.payments.is_empty() {
            diesel::copy_from(payments::table)
                .from_raw_data(
                    (
                        payments::id,
                        payments::order_id,
                        payments::amount,
                        payments::method,
                        payments::recorded_by,
                        payments::created_at,
                    ),
                    |out| send(out, &batch.payments),
                )
                .execute(conn)
                .context("COPY into payments failed")?;
        }
        Ok(())
    })
}

/// Hands prepared COPY text to libpq in large pieces (each write is one `PQputCopyData`).
fn send(out: &mut dyn Write, data: &[u8]) -> QueryResult<()> {
    for chunk in data.chunks(1 << 20) {
        out.write_all(chunk).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    }
    Ok(())
}

/// The waiters `waiter1@...` to `waiterN@...` in that order: the existing ones, and the missing
/// ones created. Returns their ids and how many were created.
fn ensure_waiters(
    conn: &mut PgConnection,
    count: usize,
    password: &str,
    settings: &Settings,
    created_at_us: i64,
) -> anyhow::Result<(Vec<Uuid>, usize)> {
    let mut emails = Vec::with_capacity(count);
    for i in 1..=count {
        let email = Email::parse(&format!("waiter{i}@{WAITER_DOMAIN}"))
            .map_err(|e| anyhow::anyhow!("the seeded waiters' email {e}"))?;
        emails.push(email);
    }
    let mut checked = None;
    for email in &emails {
        checked =
            Some(Password::parse_new(password, Some(email), None).map_err(|e| anyhow::anyhow!("--password {e}"))?);
    }
    let password = checked.context("at least one waiter is needed")?;
    let keys: Vec<String> = emails.iter().map(Email::key).collect();

    let find = |conn: &mut PgConnection| -> anyhow::Result<HashMap<String, Uuid>> {
        let found: Vec<(String, Uuid)> = users::table
            .filter(users::email_key.eq_any(&keys))
            .select((users::email_key, users::id))
            .load(conn)
            .context("could not look the seeded waiters up")?;
        Ok(found.into_iter().collect())
    };
    let mut existing = find(conn)?;
    let missing: Vec<usize> = (0..count).filter(|&i| !existing.contains_key(&keys[i])).collect();
    if !missing.is_empty() {
        // One Argon2id hash (the configured parameters, its own random salt) shared by every
        // waiter created here: they are demo accounts with the same password, and hashing is
        // deliberately slow. Each stored PHC string verifies on its own like any other.
        let hash =
            Argon2Hasher::new(settings.argon2)?.hash(&password).context("could not hash the waiters' password")?;
        let mut rows = Vec::with_capacity(missing.len());
        for &i in &missing {
            let name =
                PersonName::parse(&format!("Waiter {}", i + 1)).map_err(|e| anyhow::anyhow!("the waiter name {e}"))?;
            let created_us = created_at_us + i64::try_from(i)? * MICROS_PER_SECOND;
            let created_at = timestamp(created_us);
            let id = Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                u64::try_from(created_at.timestamp())?,
                created_at.timestamp_subsec_nanos(),
            ));
            rows.push((
                users::id.eq(id),
                users::email.eq(emails[i].as_ref().to_owned()),
                users::email_key.eq(keys[i].clone()),
                users::name.eq(name.as_ref().to_owned()),
                users::role.eq(Role::Waiter.as_str()),
                users::password_hash.eq(hash.clone()),
                users::created_at.eq(created_at),
            ));
        }
        // A concurrent seed may have created some meanwhile: theirs are kept.
        diesel::insert_into(users::table)
            .values(&rows)
            .on_conflict_do_nothing()
            .execute(conn)
            .context("could not create the seeded waiters")?;
        existing = find(conn)?;
    }
    let ids = keys
        .iter()
        .map(|key| existing.get(key).copied().with_context(|| format!("the waiter {key} could not be created")))
        .collect::<anyhow::Result<Vec<Uuid>>>()?;
    Ok((ids, missing.len()))
}

/// Counts over what was generated.
#[derive(Debug, Default, Clone)]
struct Stats {
    orders: u64,
    open: u64,
    partially_paid: u64,
    paid: u64,
    cancelled: u64,
    lines: u64,
    payments: u64,
    paid_cents: i64,
    first_us: Option<i64>,
    last_us: Option<i64>,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.orders += other.orders;
        self.open += other.open;
        self.partially_paid += other.partially_paid;
        self.paid += other.paid;
        self.cancelled += other.cancelled;
        self.lines += other.lines;
        self.payments += other.payments;
        self.paid_cents += other.paid_cents;
        self.first_us = match (self.first_us, other.first_us) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_us = self.last_us.max(other.last_us);
    }
}

struct Summary<'a> {
    totals: &'a Stats,
    waiters: usize,
    created: usize,
    products: usize,
    password: &'a str,
    seed_value: u64,
    skip_fk_checks: bool,
    load_time: Duration,
    analyze_time: Duration,
    total_time: Duration,
}

fn print_summary(s: &Summary<'_>) {
    let t = s.totals;
    let secs = s.load_time.as_secs_f64().max(1e-9);
    println!(
        "seeded {} orders with {} lines in {:.1} s: {:.0} orders/s, {:.0} lines/s",
        t.orders,
        t.lines,
        s.load_time.as_secs_f64(),
        t.orders as f64 / secs,
        t.lines as f64 / secs
    );
    if s.skip_fk_checks {
        println!("  (foreign key checks skipped: --skip-fk-checks)");
    }
    println!(
        "  orders:   paid {}, partially_paid {}, open {}, cancelled {}",
        t.paid, t.partially_paid, t.open, t.cancelled
    );
    println!("  lines:    {} ({:.2} per order)", t.lines, t.lines as f64 / t.orders.max(1) as f64);
    println!("  payments: {} totalling {}", t.payments, money_text(t.paid_cents));
    println!("  products: {} on the menu (the first ones sell the most)", s.products);
    let range = |us: Option<i64>| us.map_or_else(|| "-".to_owned(), |us| timestamp(us).to_rfc3339());
    println!("  dates:    {} to {} (UTC)", range(t.first_us), range(t.last_us));
    let reused = s.waiters - s.created;
    println!(
        "  waiters:  {} ({} created, {} reused): waiter1@{WAITER_DOMAIN} to waiter{}@{WAITER_DOMAIN}",
        s.waiters, s.created, reused, s.waiters
    );
    if s.created > 0 {
        println!(
            "            password of the waiters created now: {}{}",
            s.password,
            if reused > 0 { " (the reused ones keep theirs)" } else { "" }
        );
    } else {
        println!("            all reused: they keep the password they were created with");
    }
    println!(
        "  analyzed in {:.1} s; {:.1} s in all; the same data again: --seed-value {}",
        s.analyze_time.as_secs_f64(),
        s.total_time.as_secs_f64(),
        s.seed_value
    );
}

/// One batch of COPY text (tab-separated, PostgreSQL's text format) for each table.
#[derive(Debug, Default)]
struct Batch {
    orders: Vec<u8>,
    items: Vec<u8>,
    payments: Vec<u8>,
    stats: Stats,
}

// ---------------------------------------------------------------------------------------------
// The menu

struct Product {
    /// Escaped for COPY.
    name: Vec<u8>,
    /// Escaped for COPY.
    key: Vec<u8>,
    price_cents: i64,
}

struct Menu {
    products: Vec<Product>,
    /// Cumulative Zipf weights: the product at rank r (from 1) weighs 1/r.
    cdf: Vec<f64>,
}

impl Menu {
    fn build(rng: &mut impl Rng, count: usize) -> anyhow::Result<Self> {
        let mut products = Vec::with_capacity(count);
        let mut keys = HashSet::with_capacity(count);
        for (raw, lo, hi) in candidates(rng) {
            if products.len() == count {
                break;
            }
            let name = ProductName::parse(&raw).map_err(|e| anyhow::anyhow!("the product name {raw:?} {e}"))?;
            let key = name.key();
            if !keys.insert(key.clone()) {
                continue;
            }
            products.push(Product {
                name: copy_escaped(name.as_ref()),
                key: copy_escaped(key.as_ref()),
                price_cents: price(rng, lo, hi),
            });
        }
        if products.len() < count {
            bail!("the menu generator makes only {} distinct products", products.len());
        }
        let weights: Vec<f64> = (1..=count).map(|rank| 1.0 / rank as f64).collect();
        Ok(Self { products, cdf: cumulative(&weights) })
    }
}

/// A plausible price in cents within `lo..=hi`: multiples of 5 cents below 5.00, of 10 cents
/// (sometimes ending in 5) above, always within 1.20 to 35.00.
fn price(rng: &mut impl Rng, lo: i64, hi: i64) -> i64 {
    let raw = rng.random_range(lo..=hi.max(lo));
    let rounded = if raw < 500 {
        (raw + 2) / 5 * 5
    } else if rng.random_bool(0.25) {
        (raw + 5) / 10 * 10 - 5
    } else {
        (raw + 5) / 10 * 10
    };
    rounded.clamp(120, 3500)
}

/// Every product name the generator knows with its price range in cents, the most popular first:
/// a fixed list of classics, then dishes built from word lists (shuffled), then their variants
/// (half portions, to share, ...; shuffled).
fn candidates(rng: &mut impl Rng) -> Vec<(String, i64, i64)> {
    let mut out: Vec<(String, i64, i64)> = CLASSICS.iter().map(|&(name, lo, hi)| (name.to_owned(), lo, hi)).collect();
    let mut dishes = Vec::new();
    let mut variants = Vec::new();
    for &(pattern, fillers, lo, hi, with_variants) in TEMPLATES {
        for filler in fillers {
            let name = pattern.replace("{}", filler);
            if with_variants {
                for &(suffix, factor) in VARIANTS {
                    let scale = |v: i64| (v as f64 * factor).round() as i64;
                    variants.push((format!("{name}{suffix}"), scale(lo), scale(hi)));
                }
            }
            dishes.push((name, lo, hi));
        }
    }
    for &(protein, lo, hi) in PROTEINS {
        for cooking in COOKING {
            for &(side, extra) in SIDES {
                dishes.push((format!("{protein} {cooking}{side}"), lo + extra, hi + extra));
            }
        }
    }
    dishes.shuffle(rng);
    variants.shuffle(rng);
    out.extend(dishes);
    out.extend(variants);
    out
}

/// (name, lowest price, highest price) in cents, roughly by how much they sell.
const CLASSICS: &[(&str, i64, i64)] = &[
    ("Café con leche", 130, 220),
    ("Caña", 180, 300),
    ("Café solo", 120, 180),
    ("Agua mineral 50cl", 150, 250),
    ("Cortado", 120, 190),
    ("Coca-Cola", 220, 320),
    ("Tostada con tomate", 180, 350),
    ("Patatas bravas", 450, 750),
    ("Croquetas de jamón", 700, 1100),
    ("Copa de vino tinto", 250, 450),
    ("Tortilla española", 800, 1300),
    ("Menú del día", 1100, 1600),
    ("Agua con gas 50cl", 180, 280),
    ("Cerveza sin alcohol", 220, 320),
    ("Zumo de naranja natural", 280, 450),
    ("Pincho de tortilla", 250, 400),
    ("Croissant", 150, 280),
    ("Calamares a la romana", 900, 1400),
    ("Ensalada mixta", 750, 1100),
    ("Copa de vino blanco", 250, 450),
    ("Capuchino", 220, 330),
    ("Jamón ibérico", 1800, 2800),
    ("Pulpo a la gallega", 1500, 2200),
    ("Paella valenciana", 1400, 2000),
    ("Tarta de queso", 450, 650),
    ("Flan casero", 350, 500),
    ("Tinto de verano", 300, 450),
    ("Gin tonic", 800, 1100),
    ("Huevos rotos con jamón", 1100, 1500),
    ("Gambas al ajillo", 1200, 1700),
    ("Pimientos de Padrón", 600, 850),
    ("Ensaladilla rusa", 550, 800),
    ("Clara con limón", 200, 300),
    ("Té verde", 160, 250),
    ("Café americano", 150, 250),
    ("Pan de la casa", 120, 200),
    ("Boquerones en vinagre", 650, 900),
    ("Gazpacho andaluz", 550, 800),
    ("Salmorejo cordobés", 600, 850),
    ("Secreto ibérico", 1500, 2100),
    ("Entrecot a la brasa", 2000, 2700),
    ("Chuletón de buey", 2900, 3500),
    ("Bacalao al pil-pil", 1800, 2400),
    ("Arroz negro", 1500, 2000),
    ("Fideuá", 1400, 1900),
    ("Jarra de sangría", 1200, 1800),
    ("Vermut de grifo", 250, 400),
    ("Tiramisú", 500, 700),
    ("Crema catalana", 450, 650),
    ("Coulant de chocolate", 550, 750),
    ("Chocolate con churros", 350, 550),
    ("Bocadillo de calamares", 450, 700),
    ("Sándwich mixto", 350, 550),
    ("Carajillo", 180, 280),
    ("Copa de cava", 350, 600),
    ("Mojito", 800, 1100),
    ("Aperol Spritz", 750, 1000),
    ("Caesar Salad", 900, 1300),
    ("Fish and Chips", 1200, 1600),
    ("Club Sandwich", 950, 1350),
    ("Cheeseburger", 1000, 1450),
    ("Chicken Wings", 800, 1200),
    ("Nachos con guacamole", 850, 1200),
    ("Cheesecake", 500, 700),
    ("Brownie con helado", 550, 750),
    ("Iced Latte", 300, 420),
    ("Espresso doble", 180, 260),
    ("Botella de agua 1L", 250, 350),
    ("Fruta de temporada", 350, 500),
    ("Chupito de orujo", 250, 400),
];

/// (pattern, fillers, lowest and highest price in cents, whether it has size variants).
type Template = (&'static str, &'static [&'static str], i64, i64, bool);

const TEMPLATES: &[Template] = &[
    (
        "Bocadillo de {}",
        &[
            "jamón serrano",
            "lomo con queso",
            "tortilla",
            "queso manchego",
            "atún con tomate",
            "pollo",
            "bacon y queso",
            "chorizo",
            "salchichón",
            "sobrasada",
            "pavo",
            "vegetal",
            "morcilla",
            "pechuga empanada",
            "lomo con pimientos",
            "sardinas",
            "anchoas",
            "jamón ibérico",
        ],
        450,
        850,
        true,
    ),
    (
        "Pizza {}",
        &[
            "margarita",
            "cuatro quesos",
            "barbacoa",
            "carbonara",
            "prosciutto",
            "diavola",
            "vegetal",
            "hawaiana",
            "marinera",
            "funghi",
            "de la casa",
            "trufada",
            "capricciosa",
            "pepperoni",
            "napolitana",
            "boloñesa",
            "calzone",
        ],
        900,
        1500,
        true,
    ),
    (
        "Ensalada de {}",
        &[
            "burrata",
            "quinoa",
            "pasta",
            "ventresca",
            "queso de cabra",
            "pollo crujiente",
            "aguacate",
            "espinacas",
            "salmón ahumado",
            "la huerta",
            "langostinos",
            "garbanzos",
            "lentejas",
            "tomate y cebolla",
            "rúcula y parmesano",
        ],
        800,
        1400,
        true,
    ),
    (
        "Hamburguesa {}",
        &[
            "con queso",
            "doble",
            "de pollo",
            "vegana",
            "barbacoa",
            "trufada",
            "de buey",
            "con huevo",
            "de cordero",
            "picante",
            "con bacon",
            "de la casa",
            "gourmet",
        ],
        1000,
        1600,
        true,
    ),
    (
        "Croquetas de {}",
        &[
            "jamón ibérico",
            "pollo",
            "bacalao",
            "boletus",
            "queso azul",
            "espinacas",
            "chipirones",
            "cocido",
            "setas",
            "gambas",
            "carabinero",
        ],
        700,
        1200,
        true,
    ),
    (
        "Revuelto de {}",
        &["setas", "ajetes y gambas", "morcilla", "espárragos trigueros", "bacalao", "chistorra", "habitas y jamón"],
        900,
        1400,
        true,
    ),
    (
        "Tortilla de {}",
        &[
            "patatas con cebolla",
            "patatas sin cebolla",
            "espinacas",
            "queso",
            "bacalao",
            "chorizo",
            "calabacín",
            "jamón",
        ],
        700,
        1200,
        true,
    ),
    (
        "Crema de {}",
        &["calabaza", "verduras", "puerros", "champiñones", "marisco", "calabacín", "zanahoria"],
        550,
        850,
        true,
    ),
    (
        "Arroz {}",
        &[
            "a banda",
            "con bogavante",
            "meloso de setas",
            "del señoret",
            "con costillas",
            "de verduras",
            "caldoso de marisco",
            "con pato",
        ],
        1400,
        2600,
        true,
    ),
    (
        "Espaguetis {}",
        &[
            "a la carbonara",
            "a la boloñesa",
            "al pesto",
            "con almejas",
            "a la puttanesca",
            "con gambas",
            "al ajillo",
            "aglio e olio",
        ],
        900,
        1500,
        true,
    ),
    (
        "Tosta de {}",
        &["sobrasada y miel", "salmón", "anchoas", "escalivada", "jamón y tomate", "queso de cabra", "pulpo", "foie"],
        450,
        900,
        true,
    ),
    (
        "Montadito de {}",
        &["lomo", "pringá", "jamón", "queso", "pollo", "morcilla", "chorizo", "salmón"],
        250,
        400,
        false,
    ),
    ("Brocheta de {}", &["pollo", "langostinos", "ternera", "verduras", "rape", "cordero"], 900, 1500, true),
    ("Carpaccio de {}", &["ternera", "bacalao", "pulpo", "calabacín", "salmón", "gamba roja"], 1100, 1700, true),
    (
        "{} Burger",
        &["Classic", "Bacon", "Mushroom", "Veggie", "BBQ", "Double Cheese", "Chicken", "Spicy", "Truffle"],
        1000,
        1600,
        true,
    ),
    ("{} Wrap", &["Chicken", "Falafel", "Tuna", "Veggie", "Beef", "Halloumi"], 750, 1100, true),
    (
        "Chicken {}",
        &["Curry", "Tikka Masala", "Teriyaki", "Nuggets", "Fajitas", "Satay", "Parmigiana"],
        1000,
        1600,
        true,
    ),
    ("{} Pie", &["Apple", "Lemon", "Pecan", "Pumpkin", "Cherry", "Key Lime"], 450, 650, false),
    (
        "Zumo de {}",
        &["naranja", "piña", "manzana", "melocotón", "tomate", "zanahoria", "pomelo", "mango", "fresa", "kiwi"],
        250,
        450,
        false,
    ),
    ("Batido de {}", &["chocolate", "fresa", "vainilla", "plátano", "mango", "frutos rojos", "café"], 350, 550, false),
    (
        "Helado de {}",
        &["chocolate", "fresa", "turrón", "limón", "pistacho", "nata", "mango", "café", "yogur", "avellana"],
        350,
        550,
        false,
    ),
    (
        "Tarta de {}",
        &[
            "chocolate",
            "manzana",
            "zanahoria",
            "limón",
            "Santiago",
            "queso con frutos rojos",
            "tres chocolates",
            "almendra",
        ],
        450,
        700,
        false,
    ),
    (
        "Copa de {}",
        &[
            "Rioja",
            "Ribera del Duero",
            "Albariño",
            "Verdejo",
            "Godello",
            "Priorat",
            "Rueda",
            "Txakoli",
            "Moscatel",
            "Pedro Ximénez",
            "fino",
            "manzanilla",
            "rosado",
        ],
        280,
        600,
        false,
    ),
    (
        "Botella de {}",
        &[
            "Rioja crianza",
            "Rioja reserva",
            "Ribera del Duero",
            "Albariño",
            "Verdejo",
            "Godello",
            "Priorat",
            "cava brut",
            "Txakoli",
            "rosado",
        ],
        1600,
        3500,
        false,
    ),
    (
        "Cerveza {}",
        &[
            "tostada",
            "negra",
            "de trigo",
            "rubia",
            "sin gluten",
            "de abadía",
            "lager",
            "pilsner",
            "artesana IPA",
            "0,0 tostada",
        ],
        250,
        550,
        false,
    ),
    ("{} Tea", &["Earl Grey", "Chamomile", "Mint", "Rooibos", "English Breakfast", "Chai", "Jasmine"], 180, 320, false),
    ("{} Smoothie", &["Berry", "Mango", "Green", "Banana", "Tropical", "Strawberry"], 400, 600, false),
];

/// Size and style variants of the dishes: (suffix, price factor).
const VARIANTS: &[(&str, f64)] = &[
    (" (media ración)", 0.6),
    (" para compartir", 1.7),
    (" sin gluten", 1.1),
    (" XL", 1.35),
    (" especial", 1.2),
    (" para llevar", 1.0),
    (" con patatas", 1.15),
    (" de temporada", 1.1),
];

/// Main courses: protein, then how it is cooked, then what comes with it.
const PROTEINS: &[(&str, i64, i64)] = &[
    ("Pollo", 900, 1400),
    ("Ternera", 1400, 2200),
    ("Cerdo ibérico", 1400, 2100),
    ("Salmón", 1400, 2000),
    ("Atún rojo", 1800, 2600),
    ("Bacalao", 1500, 2200),
    ("Merluza", 1500, 2100),
    ("Lubina", 1600, 2200),
    ("Dorada", 1500, 2100),
    ("Cordero", 1800, 2600),
    ("Pato", 1700, 2400),
    ("Rape", 1800, 2600),
    ("Pulpo", 1700, 2400),
    ("Calamar", 1200, 1700),
    ("Langostinos", 1500, 2200),
    ("Tofu", 900, 1300),
    ("Seitán", 900, 1300),
    ("Conejo", 1200, 1700),
    ("Solomillo", 2000, 2900),
    ("Codillo", 1400, 1900),
    ("Sepia", 1300, 1800),
    ("Chipirones", 1200, 1700),
    ("Presa ibérica", 1700, 2400),
    ("Pluma ibérica", 1700, 2400),
    ("Magret de pato", 1900, 2600),
    ("Corvina", 1600, 2200),
    ("Rodaballo", 2000, 2800),
    ("Salmonete", 1600, 2200),
    ("Carrillera", 1400, 1900),
    ("Costillas", 1300, 1800),
];

const COOKING: &[&str] = &[
    "a la plancha",
    "a la brasa",
    "al horno",
    "en salsa verde",
    "al curry",
    "a la parrilla",
    "en tempura",
    "al ajillo",
    "en su jugo",
    "al vapor",
    "a la sal",
    "en escabeche",
    "a la bilbaína",
    "al estilo thai",
    "a la marinera",
    "a la vizcaína",
    "a la pimienta",
    "al Pedro Ximénez",
    "a la mostaza",
];

/// (suffix, extra price in cents).
const SIDES: &[(&str, i64)] = &[
    ("", 0),
    (" con patatas fritas", 100),
    (" con ensalada", 100),
    (" con verduras a la brasa", 150),
    (" con arroz blanco", 80),
    (" con puré de patata", 120),
    (" con pimientos de Padrón", 150),
    (" con setas", 150),
    (" con cuscús", 100),
    (" con boniato asado", 120),
];

const FIRST_NAMES: &[&str] = &[
    "María",
    "Carmen",
    "Lucía",
    "Javier",
    "Antonio",
    "Laura",
    "David",
    "Ana",
    "Pablo",
    "Marta",
    "Sergio",
    "Elena",
    "Carlos",
    "Sofía",
    "Daniel",
    "Paula",
    "John",
    "Emma",
    "Oliver",
    "Sarah",
    "James",
    "Olivia",
    "Jorge",
    "Isabel",
    "Miguel",
    "Cristina",
    "Alejandro",
    "Raquel",
    "Hugo",
    "Nuria",
];

const LAST_NAMES: &[&str] = &[
    "García",
    "Fernández",
    "González",
    "Rodríguez",
    "López",
    "Martínez",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Martín",
    "Jiménez",
    "Ruiz",
    "Hernández",
    "Díaz",
    "Moreno",
    "Álvarez",
    "Smith",
    "Johnson",
    "Brown",
    "Taylor",
    "Wilson",
    "Müller",
    "Rossi",
    "Dubois",
];

// ---------------------------------------------------------------------------------------------
// When orders happen

/// Relative number of orders in each hour of the day (UTC): breakfast, a lunch peak, a dinner
/// peak, quiet nights.
const HOUR_WEIGHTS: [f64; 24] = [
    0.30, 0.10, 0.02, 0.02, 0.02, 0.02, 0.05, 0.40, 0.80, 0.90, 0.70, 0.60, 1.20, 2.50, 2.80, 1.80, 0.60, 0.50, 0.70,
    1.20, 2.20, 2.60, 1.80, 0.80,
];

/// Relative business by weekday, Monday first.
const WEEKDAY_WEIGHTS: [f64; 7] = [0.85, 0.95, 1.0, 1.05, 1.2, 1.35, 1.1];

/// Order times in increasing order: the window split at whole hours, each piece given its share
/// of the orders by the daily and weekly pattern (cumulative rounding, so the counts add up
/// exactly), and times drawn uniformly inside a piece and sorted.
struct TimeStream {
    /// (start, length, how many orders) of each piece, in time order.
    slots: Vec<(i64, i64, u64)>,
    next_slot: usize,
    pending: Vec<i64>,
    position: usize,
    fallback: i64,
}

impl TimeStream {
    fn new(start_us: i64, end_us: i64, orders: u64) -> Self {
        let mut pieces = Vec::new();
        let mut at = start_us;
        while at < end_us {
            let next_hour = (at.div_euclid(MICROS_PER_HOUR) + 1) * MICROS_PER_HOUR;
            let until = next_hour.min(end_us);
            let when = timestamp(at);
            let weight = HOUR_WEIGHTS[when.hour() as usize]
                * WEEKDAY_WEIGHTS[when.weekday().num_days_from_monday() as usize]
                * (until - at) as f64
                / MICROS_PER_HOUR as f64;
            pieces.push((at, until - at, weight));
            at = until;
        }
        let total: f64 = pieces.iter().map(|p| p.2).sum();
        let mut slots = Vec::with_capacity(pieces.len());
        let mut cumulative = 0.0;
        let mut assigned = 0u64;
        let last = pieces.len().saturating_sub(1);
        for (i, (start, len, weight)) in pieces.into_iter().enumerate() {
            cumulative += weight;
            let target =
                if i == last { orders } else { ((orders as f64 * cumulative / total).round() as u64).min(orders) };
            let count = target.saturating_sub(assigned);
            assigned = assigned.max(target);
            if count > 0 {
                slots.push((start, len, count));
            }
        }
        Self { slots, next_slot: 0, pending: Vec::new(), position: 0, fallback: end_us - 1 }
    }

    fn next(&mut self, rng: &mut impl Rng) -> i64 {
        while self.position == self.pending.len() {
            let Some(&(start, len, count)) = self.slots.get(self.next_slot) else {
                return self.fallback;
            };
            self.next_slot += 1;
            self.pending.clear();
            self.pending.extend((0..count).map(|_| start + rng.random_range(0..len)));
            self.pending.sort_unstable();
            self.position = 0;
        }
        let t = self.pending[self.position];
        self.position += 1;
        t
    }
}

// ---------------------------------------------------------------------------------------------
// The orders

struct Generator {
    /// Each order's content (lines, status, payments, customer) comes from a generator seeded
    /// with this and the order's number, so it does not depend on the time of the run.
    seed: u64,
    index: u64,
    /// The order times.
    time_rng: StdRng,
    id_rng: SmallRng,
    menu: Menu,
    /// Hyphenated ids, ready to write.
    waiters: Vec<[u8; 36]>,
    waiter_cdf: Vec<f64>,
    times: TimeStream,
    end_us: i64,
    remaining: u64,
}

/// Lines per order: 1 to 8, percent.
const LINE_WEIGHTS: [u32; MAX_LINES] = [14, 20, 20, 16, 12, 8, 6, 4];
/// Quantity per line: 1 to 6, per thousand.
const QUANTITY_WEIGHTS: [u32; 6] = [620, 240, 80, 30, 15, 15];

#[derive(Clone, Copy)]
enum Status {
    Open,
    PartiallyPaid,
    Paid,
    Cancelled,
}

impl Generator {
    fn run(mut self, tx: &mpsc::SyncSender<Batch>) {
        while self.remaining > 0 {
            let n = self.remaining.min(BATCH_ORDERS);
            let batch = self.batch(n);
            self.remaining -= n;
            if tx.send(batch).is_err() {
                // The loader stopped (it reports why).
                return;
            }
        }
    }

    fn batch(&mut self, n: u64) -> Batch {
        let n_usize = usize::try_from(n).unwrap_or(0);
        let mut batch = Batch {
            orders: Vec::with_capacity(n_usize * 170),
            items: Vec::with_capacity(n_usize * 4 * 110),
            payments: Vec::with_capacity(n_usize * 110),
            stats: Stats::default(),
        };
        for _ in 0..n {
            self.order(&mut batch);
        }
        batch
    }

    fn order(&mut self, batch: &mut Batch) {
        let rng = &mut SmallRng::seed_from_u64(self.seed ^ self.index.wrapping_mul(GOLDEN));
        self.index += 1;
        let id_rng = &mut self.id_rng;
        let created = self.times.next(&mut self.time_rng);
        let id = hyphenated(uuid_v7(created, id_rng));
        let waiter = self.waiters[pick(&self.waiter_cdf, rng)];

        // The lines: distinct products, the popular ones more often.
        let products = self.menu.products.len();
        let wanted = pick_weighted(&LINE_WEIGHTS, rng).min(products);
        let mut chosen = [0usize; MAX_LINES];
        let mut count = 0;
        let mut attempts = 0;
        while count < wanted {
            let p = if attempts < 64 { pick(&self.menu.cdf, rng) } else { rng.random_range(0..products) };
            attempts += 1;
            if !chosen[..count].contains(&p) {
                chosen[count] = p;
                count += 1;
            }
        }
        let mut total = 0i64;
        for (line_no, &p) in chosen[..count].iter().enumerate() {
            let product = &self.menu.products[p];
            let quantity = pick_weighted(&QUANTITY_WEIGHTS, rng) as i64;
            let subtotal = product.price_cents * quantity;
            total += subtotal;
            let out = &mut batch.items;
            out.extend_from_slice(&id);
            out.push(b'\t');
            push_u64(out, line_no as u64 + 1);
            out.push(b'\t');
            out.extend_from_slice(&product.key);
            out.push(b'\t');
            out.extend_from_slice(&product.name);
            out.push(b'\t');
            push_money(out, product.price_cents);
            out.push(b'\t');
            push_u64(out, quantity as u64);
            out.push(b'\t');
            push_money(out, subtotal);
            out.push(b'\n');
        }

        // Where it stands: recent orders are often still open; old ones are mostly paid.
        let age = self.end_us - created;
        let (open, partial) = if age < 2 * MICROS_PER_HOUR {
            (0.45, 0.10)
        } else if age < MICROS_PER_DAY {
            (0.03, 0.03)
        } else {
            (0.01, 0.015)
        };
        let u: f64 = rng.random();
        let status = if u < 0.03 {
            Status::Cancelled
        } else if u < 0.03 + open {
            Status::Open
        } else if u < 0.03 + open + partial {
            Status::PartiallyPaid
        } else {
            Status::Paid
        };
        let latest = self.end_us - 1;
        let (amount_paid, updated) = match status {
            Status::Open => (0, created),
            Status::Cancelled => {
                let at = created + rng.random_range(MICROS_PER_MINUTE..20 * MICROS_PER_MINUTE);
                (0, at.min(latest))
            }
            Status::PartiallyPaid => {
                let amount = part_of(total, rng);
                let at = payment_time(created, latest, rng);
                push_payment(batch, &id, &waiter, amount, at, rng, id_rng);
                (amount, at)
            }
            Status::Paid => {
                let at = payment_time(created, latest, rng);
                if total >= 2 && rng.random_bool(0.2) {
                    // Split between two people (or two cards): the parts add up exactly.
                    let first = part_of(total, rng);
                    push_payment(batch, &id, &waiter, first, at, rng, id_rng);
                    let second_at = (at + rng.random_range(0..3 * MICROS_PER_MINUTE)).min(latest);
                    push_payment(batch, &id, &waiter, total - first, second_at, rng, id_rng);
                    (total, second_at)
                } else {
                    push_payment(batch, &id, &waiter, total, at, rng, id_rng);
                    (total, at)
                }
            }
        };

        let out = &mut batch.orders;
        out.extend_from_slice(&id);
        out.push(b'\t');
        push_customer(out, rng);
        out.push(b'\t');
        out.extend_from_slice(&waiter);
        out.push(b'\t');
        out.extend_from_slice(match status {
            Status::Open => b"open",
            Status::PartiallyPaid => b"partially_paid",
            Status::Paid => b"paid",
            Status::Cancelled => b"cancelled",
        });
        out.push(b'\t');
        push_money(out, total);
        out.push(b'\t');
        push_money(out, amount_paid);
        out.push(b'\t');
        push_timestamp(out, created);
        out.push(b'\t');
        push_timestamp(out, updated);
        out.push(b'\n');

        let stats = &mut batch.stats;
        stats.orders += 1;
        stats.lines += count as u64;
        stats.paid_cents += amount_paid;
        match status {
            Status::Open => stats.open += 1,
            Status::PartiallyPaid => stats.partially_paid += 1,
            Status::Paid => stats.paid += 1,
            Status::Cancelled => stats.cancelled += 1,
        }
        stats.first_us = Some(stats.first_us.map_or(created, |f| f.min(created)));
        stats.last_us = Some(stats.last_us.map_or(created, |l| l.max(created)));
    }
}

/// A part of `total` (cents, at least 2): 20% to 80% of it, at least one cent and at least one
/// cent short of it.
fn part_of(total: i64, rng: &mut impl Rng) -> i64 {
    let share: f64 = rng.random_range(0.2..0.8);
    ((total as f64 * share).round() as i64).clamp(1, (total - 1).max(1))
}

/// When the bill is paid: 10 to 90 minutes after the order, never in the future.
fn payment_time(created: i64, latest: i64, rng: &mut impl Rng) -> i64 {
    (created + rng.random_range(10 * MICROS_PER_MINUTE..90 * MICROS_PER_MINUTE)).min(latest).max(created)
}

fn push_payment(
    batch: &mut Batch,
    order_id: &[u8; 36],
    waiter: &[u8; 36],
    amount: i64,
    at: i64,
    rng: &mut impl Rng,
    id_rng: &mut impl Rng,
) {
    let id = hyphenated(uuid_v7(at, id_rng));
    let u: f64 = rng.random();
    let method: &[u8] = if u < 0.62 {
        b"card"
    } else if u < 0.95 {
        b"cash"
    } else {
        b"other"
    };
    let out = &mut batch.payments;
    out.extend_from_slice(&id);
    out.push(b'\t');
    out.extend_from_slice(order_id);
    out.push(b'\t');
    push_money(out, amount);
    out.push(b'\t');
    out.extend_from_slice(method);
    out.push(b'\t');
    out.extend_from_slice(waiter);
    out.push(b'\t');
    push_timestamp(out, at);
    out.push(b'\n');
    batch.stats.payments += 1;
}

/// A table, the bar, the terrace, or a person's name (no characters COPY would need escaped).
fn push_customer(out: &mut Vec<u8>, rng: &mut impl Rng) {
    let u: u32 = rng.random_range(0..100);
    match u {
        0..45 => {
            out.extend_from_slice(b"Mesa ");
            push_u64(out, rng.random_range(1..=40));
        }
        45..55 => {
            out.extend_from_slice(b"Barra ");
            push_u64(out, rng.random_range(1..=12));
        }
        55..65 => {
            out.extend_from_slice(b"Terraza ");
            push_u64(out, rng.random_range(1..=20));
        }
        65..72 => {
            out.extend_from_slice(b"Para llevar ");
            push_u64(out, rng.random_range(100..=999));
        }
        _ => {
            out.extend_from_slice(FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())].as_bytes());
            out.push(b' ');
            out.extend_from_slice(LAST_NAMES[rng.random_range(0..LAST_NAMES.len())].as_bytes());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn cumulative(weights: &[f64]) -> Vec<f64> {
    let mut sum = 0.0;
    weights
        .iter()
        .map(|w| {
            sum += w;
            sum
        })
        .collect()
}

/// An index drawn with the weights whose running sums are `cdf` (not empty).
fn pick(cdf: &[f64], rng: &mut impl Rng) -> usize {
    let total = cdf.last().copied().unwrap_or(0.0);
    let u = rng.random::<f64>() * total;
    cdf.partition_point(|&c| c <= u).min(cdf.len().saturating_sub(1))
}

/// 1 + an index drawn with integer weights.
fn pick_weighted(weights: &[u32], rng: &mut impl Rng) -> usize {
    let total: u32 = weights.iter().sum();
    let mut u = rng.random_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if u < w {
            return i + 1;
        }
        u -= w;
    }
    weights.len()
}

/// A version 7 UUID for the time `us` (microseconds since the epoch): the milliseconds in the
/// timestamp field, the microseconds within the millisecond in the 12 bits after the version
/// (RFC 9562's "increased clock precision"), so ids sort like their times; the rest random
/// from the seeded generator (deterministic, and no system call per id).
fn uuid_v7(us: i64, rng: &mut impl Rng) -> Uuid {
    let millis = u64::try_from(us.div_euclid(1000)).unwrap_or(0);
    let sub = us.rem_euclid(1000) as u16;
    let mut bytes = [0u8; 10];
    bytes[..2].copy_from_slice(&sub.to_be_bytes());
    bytes[2..].copy_from_slice(&rng.random::<u64>().to_le_bytes());
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

fn hyphenated(id: Uuid) -> [u8; 36] {
    let mut out = [0u8; 36];
    id.hyphenated().encode_lower(&mut out);
    out
}

fn timestamp(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_padded(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut v = value;
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

/// Non-negative cents as `12.34`.
fn push_money(out: &mut Vec<u8>, cents: i64) {
    let cents = cents.max(0) as u64;
    push_u64(out, cents / 100);
    out.push(b'.');
    push_padded(out, (cents % 100) as u32, 2);
}

fn money_text(cents: i64) -> String {
    let mut out = Vec::new();
    push_money(&mut out, cents);
    String::from_utf8_lossy(&out).into_owned()
}

/// `YYYY-MM-DD HH:MM:SS.ffffff+00`.
fn push_timestamp(out: &mut Vec<u8>, us: i64) {
    let t = timestamp(us);
    push_padded(out, u32::try_from(t.year()).unwrap_or(0), 4);
    out.push(b'-');
    push_padded(out, t.month(), 2);
    out.push(b'-');
    push_padded(out, t.day(), 2);
    out.push(b' ');
    push_padded(out, t.hour(), 2);
    out.push(b':');
    push_padded(out, t.minute(), 2);
    out.push(b':');
    push_padded(out, t.second(), 2);
    out.push(b'.');
    push_padded(out, t.timestamp_subsec_micros(), 6);
    out.extend_from_slice(b"+00");
}

/// Text for PostgreSQL's COPY text format: backslash, tab, newline and carriage return escaped.
fn copy_escaped(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_menu_has_enough_distinct_plausible_products() {
        let mut rng = StdRng::seed_from_u64(7);
        let menu = Menu::build(&mut rng, MAX_PRODUCTS as usize).unwrap();
        assert_eq!(menu.products.len(), MAX_PRODUCTS as usize);
        for p in &menu.products {
            assert!((120..=3500).contains(&p.price_cents), "{}", p.price_cents);
        }
        assert_eq!(menu.products[0].name, "Café con leche".as_bytes());
        assert_eq!(menu.products[0].key, "café con leche".as_bytes());
    }

    #[test]
    fn the_same_seed_makes_the_same_menu() {
        let names = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            Menu::build(&mut rng, 300)
                .unwrap()
                .products
                .into_iter()
                .map(|p| (p.name, p.price_cents))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(1), names(1));
        assert_ne!(names(1), names(2));
    }

    #[test]
    fn times_are_sorted_in_the_window_and_counted_exactly() {
        let mut rng = StdRng::seed_from_u64(3);
        let end = Utc::now().timestamp_micros();
        let start = end - 2 * MICROS_PER_DAY;
        let mut times = TimeStream::new(start, end, 1_001);
        let all: Vec<i64> = (0..1_001).map(|_| times.next(&mut rng)).collect();
        assert!(all.windows(2).all(|w| w[0] <= w[1]));
        assert!(all.iter().all(|&t| t >= start && t < end));
        let slots: u64 = times.slots.iter().map(|s| s.2).sum();
        assert_eq!(slots, 1_001);
    }

    #[test]
    fn uuids_sort_like_their_times_and_formats_are_postgres_text() {
        let mut rng = StdRng::seed_from_u64(5);
        let a = uuid_v7(1_700_000_000_000_001, &mut rng);
        let b = uuid_v7(1_700_000_000_000_002, &mut rng);
        assert!(a < b);
        assert_eq!(a.get_version_num(), 7);
        let mut out = Vec::new();
        push_timestamp(&mut out, 1_700_000_000_000_001);
        assert_eq!(out, b"2023-11-14 22:13:20.000001+00");
        assert_eq!(money_text(5), "0.05");
        assert_eq!(money_text(123_456), "1234.56");
        assert_eq!(copy_escaped("a\tb\\c"), b"a\\tb\\\\c");
    }
}
