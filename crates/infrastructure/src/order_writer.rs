//! Writing new orders: one statement inserts a whole batch of orders with their lines and
//! idempotency keys (one round trip, one commit), and a few writer threads coalesce the orders
//! that arrive while the previous batch is being written. A lone order goes alone at once: no
//! batch waits to fill up. Each order stays all-or-nothing and isolated from its neighbours: an
//! order whose key was used, or that was placed with a staff directory or a menu that has
//! changed since, is simply not inserted, and if a batch fails as a whole its orders are written again one by
//! one.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use crossbeam_channel::{Receiver, Sender};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{
    Array, BigInt, Bool, Bytea, Date, Int2, Int4, Nullable, Numeric, Text, Timestamptz, Uuid as SqlUuid,
};
use rust_decimal::Decimal;
use tokio::sync::oneshot;
use tracing::{debug, warn};
use uuid::Uuid;

use application::{
    IdempotencyClaim, MissingClaim, OrderWriter, PendingWrite, SnapshotVersions, StoreError, WriteOutcome,
};
use domain::Order;

use crate::db::{Database, store_error};

/// The most orders, and lines, one statement carries.
const MAX_BATCH_ORDERS: usize = 64;
const MAX_BATCH_LINES: usize = 2_000;

/// The insert of several orders as one data-modifying statement. A `QueryFragment` with a static
/// query id, so diesel prepares it once per connection whatever the number of orders and lines
/// (they travel as arrays). Every column is bound from the order as the domain made it (its
/// status, amounts, location and business date included): the statement states the entity, it
/// does not restate rules. What it checks is that the staff directory the order was authorized
/// with is still storage's (`directory_versions`), and so is the menu its menu lines were
/// priced from (`menu_versions`, null for an order without menu lines).
#[derive(Debug, Default)]
pub struct InsertOrders<'a> {
    ids: Vec<Uuid>,
    customer_names: Vec<&'a str>,
    waiter_ids: Vec<Uuid>,
    location_ids: Vec<Uuid>,
    business_dates: Vec<NaiveDate>,
    statuses: Vec<&'static str>,
    totals: Vec<Decimal>,
    amounts_paid: Vec<Decimal>,
    versions: Vec<i64>,
    created_at: Vec<DateTime<Utc>>,
    keys: Vec<Option<&'a str>>,
    fingerprints: Vec<Option<&'a [u8]>>,
    directory_versions: Vec<i64>,
    menu_versions: Vec<Option<i64>>,
    line_orders: Vec<Uuid>,
    line_numbers: Vec<i16>,
    line_keys: Vec<&'a str>,
    line_names: Vec<&'a str>,
    line_prices: Vec<Decimal>,
    line_quantities: Vec<i32>,
    line_subtotals: Vec<Decimal>,
    line_notes: Vec<Option<&'a str>>,
    line_menu_items: Vec<Option<Uuid>>,
    line_category_ids: Vec<Option<Uuid>>,
    line_categories: Vec<Option<&'a str>>,
}

impl<'a> InsertOrders<'a> {
    /// The statement's bind parameters, in order (`$1` is the first): what a copy of the
    /// statement with other values in their place (the benchmark's baseline) must supply.
    pub const PARAMETERS: [&'static str; 25] = [
        "ids",
        "customer_names",
        "waiter_ids",
        "location_ids",
        "business_dates",
        "statuses",
        "totals",
        "amounts_paid",
        "versions",
        "created_at",
        "keys",
        "fingerprints",
        "directory_versions",
        "menu_versions",
        "line_orders",
        "line_numbers",
        "line_keys",
        "line_names",
        "line_prices",
        "line_quantities",
        "line_subtotals",
        "line_notes",
        "line_menu_items",
        "line_category_ids",
        "line_categories",
    ];

    /// The statement for these orders, each with the snapshot versions it was placed with.
    pub fn new(orders: &[(&'a Order, Option<&'a IdempotencyClaim>, SnapshotVersions)]) -> Self {
        let mut statement = Self::default();
        for (order, claim, versions) in orders {
            statement.push(order, *claim, *versions);
        }
        statement
    }

    /// The SQL text with `$1`..`$25` for [`Self::PARAMETERS`], as PostgreSQL receives it.
    pub fn sql() -> String {
        let text = diesel::debug_query::<Pg, _>(&Self::default()).to_string();
        text.split(" -- binds:").next().unwrap_or_default().to_owned()
    }

    fn push(&mut self, order: &'a Order, claim: Option<&'a IdempotencyClaim>, versions: SnapshotVersions) {
        self.ids.push(order.id().0);
        self.customer_names.push(order.customer_name().as_ref());
        self.waiter_ids.push(order.waiter_id().0);
        self.location_ids.push(order.location_id().0);
        self.business_dates.push(order.business_date());
        self.statuses.push(order.status().as_str());
        self.totals.push(order.total_price().amount());
        self.amounts_paid.push(order.amount_paid().amount());
        self.versions.push(i64::from(order.version()));
        self.created_at.push(order.created_at());
        self.keys.push(claim.map(|c| c.key.as_ref()));
        self.fingerprints.push(claim.map(|c| c.fingerprint.0.as_slice()));
        self.directory_versions.push(versions.directory);
        self.menu_versions.push(versions.menu);
        for (n, line) in order.lines().iter().enumerate() {
            self.line_orders.push(order.id().0);
            self.line_numbers.push(n as i16 + 1);
            self.line_keys.push(line.product_key().as_ref());
            self.line_names.push(line.product_name().as_ref());
            self.line_prices.push(line.unit_price().amount());
            self.line_quantities.push(line.quantity().get() as i32);
            self.line_subtotals.push(line.subtotal().amount());
            self.line_notes.push(line.note().map(AsRef::as_ref));
            self.line_menu_items.push(line.menu().map(|m| m.item_id.0));
            self.line_category_ids.push(line.menu().map(|m| m.category_id.0));
            self.line_categories.push(line.menu().map(|m| m.category.as_ref()));
        }
    }
}

impl QueryId for InsertOrders<'_> {
    type QueryId = InsertOrders<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for InsertOrders<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH input AS (SELECT * FROM unnest(");
        out.push_bind_param::<Array<SqlUuid>, _>(&self.ids)?;
        out.push_sql("::uuid[], ");
        out.push_bind_param::<Array<Text>, _>(&self.customer_names)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<SqlUuid>, _>(&self.waiter_ids)?;
        out.push_sql("::uuid[], ");
        out.push_bind_param::<Array<SqlUuid>, _>(&self.location_ids)?;
        out.push_sql("::uuid[], ");
        out.push_bind_param::<Array<Date>, _>(&self.business_dates)?;
        out.push_sql("::date[], ");
        out.push_bind_param::<Array<Text>, _>(&self.statuses)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Numeric>, _>(&self.totals)?;
        out.push_sql("::numeric[], ");
        out.push_bind_param::<Array<Numeric>, _>(&self.amounts_paid)?;
        out.push_sql("::numeric[], ");
        out.push_bind_param::<Array<BigInt>, _>(&self.versions)?;
        out.push_sql("::int8[], ");
        out.push_bind_param::<Array<Timestamptz>, _>(&self.created_at)?;
        out.push_sql("::timestamptz[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.keys)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Bytea>>, _>(&self.fingerprints)?;
        out.push_sql("::bytea[], ");
        out.push_bind_param::<Array<BigInt>, _>(&self.directory_versions)?;
        out.push_sql("::int8[], ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.menu_versions)?;
        out.push_sql(
            "::int8[]) AS t (id, customer_name, waiter_id, location_id, business_date, status, total_price, amount_paid, \
                 version, created_at, key, fingerprint, directory_version, menu_version)), \
             current AS (SELECT input.id, input.directory_version = (SELECT version FROM staff_directory) AS directory_ok, \
                 input.menu_version IS NULL OR input.menu_version = (SELECT version FROM menu_version) AS menu_ok FROM input), \
             allowed AS (SELECT input.* FROM input JOIN current USING (id) WHERE directory_ok AND menu_ok), \
             claims AS (INSERT INTO idempotency_keys (user_id, key, fingerprint, resource_id, created_at) \
                 SELECT waiter_id, key, fingerprint, id, created_at FROM allowed WHERE key IS NOT NULL \
                 ORDER BY waiter_id, key ON CONFLICT (user_id, key) DO NOTHING RETURNING resource_id), \
             new_orders AS (INSERT INTO orders (id, customer_name, waiter_id, location_id, business_date, status, total_price, \
                     amount_paid, version, created_at, updated_at) \
                 SELECT id, customer_name, waiter_id, location_id, business_date, status, total_price, amount_paid, version, \
                     created_at, created_at FROM allowed \
                 WHERE key IS NULL OR id IN (SELECT resource_id FROM claims) RETURNING id), \
             new_lines AS (INSERT INTO order_items (order_id, line_no, product_key, product_name, unit_price, quantity, subtotal, \
                     note, menu_item_id, category_id, category) \
                 SELECT l.order_id, l.line_no, l.product_key, l.product_name, l.unit_price, l.quantity, l.subtotal, \
                     l.note, l.menu_item_id, l.category_id, l.category FROM unnest(",
        );
        out.push_bind_param::<Array<SqlUuid>, _>(&self.line_orders)?;
        out.push_sql("::uuid[], ");
        out.push_bind_param::<Array<Int2>, _>(&self.line_numbers)?;
        out.push_sql("::int2[], ");
        out.push_bind_param::<Array<Text>, _>(&self.line_keys)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Text>, _>(&self.line_names)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Numeric>, _>(&self.line_prices)?;
        out.push_sql("::numeric[], ");
        out.push_bind_param::<Array<Int4>, _>(&self.line_quantities)?;
        out.push_sql("::int4[], ");
        out.push_bind_param::<Array<Numeric>, _>(&self.line_subtotals)?;
        out.push_sql("::numeric[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.line_notes)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<SqlUuid>>, _>(&self.line_menu_items)?;
        out.push_sql("::uuid[], ");
        out.push_bind_param::<Array<Nullable<SqlUuid>>, _>(&self.line_category_ids)?;
        out.push_sql("::uuid[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.line_categories)?;
        out.push_sql(
            "::text[]) AS l (order_id, line_no, product_key, product_name, unit_price, quantity, subtotal, note, menu_item_id, \
                     category_id, category) \
                 WHERE l.order_id IN (SELECT id FROM new_orders) RETURNING 1) \
             SELECT current.id, current.directory_ok, current.menu_ok, current.id IN (SELECT id FROM new_orders) FROM current",
        );
        Ok(())
    }
}

impl Query for InsertOrders<'_> {
    type SqlType = (SqlUuid, Bool, Bool, Bool);
}

impl RunQueryDsl<PgConnection> for InsertOrders<'_> {}

/// What the statement did with one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inserted {
    Yes,
    KeyUsed,
    Stale { directory: bool, menu: bool },
}

/// Inserts the orders in one statement; returns each order's outcome, in the given order.
fn insert_orders(
    conn: &mut PgConnection,
    orders: &[(&Order, Option<&IdempotencyClaim>, SnapshotVersions)],
) -> QueryResult<Vec<Inserted>> {
    let rows: Vec<(Uuid, bool, bool, bool)> = InsertOrders::new(orders).load(conn)?;
    let outcomes: HashMap<Uuid, Inserted> = rows
        .into_iter()
        .map(|(id, directory_ok, menu_ok, inserted)| {
            let outcome = match (directory_ok && menu_ok, inserted) {
                (false, _) => Inserted::Stale { directory: !directory_ok, menu: !menu_ok },
                (true, true) => Inserted::Yes,
                (true, false) => Inserted::KeyUsed,
            };
            (id, outcome)
        })
        .collect();
    orders
        .iter()
        .map(|(order, _, _)| outcomes.get(&order.id().0).copied().ok_or(diesel::result::Error::NotFound))
        .collect()
}

/// The answer to one order: for a used key, what the first request asked for and the order it
/// made, read on the writer's connection (the request holds no thread meanwhile).
fn answer(conn: &mut PgConnection, job: &Job, inserted: Inserted) -> Result<WriteOutcome, StoreError> {
    match inserted {
        Inserted::Yes => Ok(WriteOutcome::Written),
        Inserted::Stale { directory, menu } => Ok(WriteOutcome::Stale { directory, menu }),
        Inserted::KeyUsed => {
            let claim = job.claim.as_ref().ok_or_else(|| StoreError::other(MissingClaim))?;
            let replay = crate::orders::find_claim(conn, claim.user_id, claim.key.as_ref())
                .map_err(store_error)?
                .ok_or_else(|| StoreError::other(MissingClaim))?;
            let first = crate::orders::find_order(conn, replay.resource_id, false)?.map(Box::new);
            Ok(WriteOutcome::KeyUsed { replay, first })
        }
    }
}

/// One failure told to every order of a batch, each answer keeping the whole cause.
#[derive(Debug, Clone)]
struct SharedCause(Arc<StoreError>);

impl std::fmt::Display for SharedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

struct Job {
    order: Arc<Order>,
    claim: Option<IdempotencyClaim>,
    versions: SnapshotVersions,
    queued: Instant,
    reply: oneshot::Sender<Result<WriteOutcome, StoreError>>,
}

impl Job {
    fn key(&self) -> Option<(Uuid, &str)> {
        self.claim.as_ref().map(|c| (c.user_id.0, c.key.as_ref()))
    }
}

fn unavailable(reason: &str) -> StoreError {
    StoreError::Unavailable(Box::new(std::io::Error::other(reason.to_owned())))
}

/// The batching writer: `writers` threads take what is queued, up to a batch, and write it.
#[derive(Debug, Clone)]
pub struct PgOrderWriter {
    sender: Sender<Job>,
    stats: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    statements: AtomicU64,
    orders: AtomicU64,
}

/// How many statements wrote how many orders (for metrics, and to see batching work).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    pub statements: u64,
    pub orders: u64,
}

impl PgOrderWriter {
    /// `patience`: an order that waited longer than this in the queue is answered
    /// `Unavailable` without being written (the queue stays bounded in time under overload).
    pub fn new(db: Database, writers: usize, patience: Duration) -> Self {
        // Unbounded in size, bounded in time: an order that waited longer than `patience` is
        // answered 503 without being written.
        let (sender, receiver) = crossbeam_channel::unbounded::<Job>();
        let stats = Arc::new(Counters::default());
        for i in 0..writers.max(1) {
            let receiver = receiver.clone();
            let db = db.clone();
            let stats = Arc::clone(&stats);
            std::thread::Builder::new()
                .name(format!("order-writer-{i}"))
                .spawn(move || write_loop(&db, &receiver, patience, &stats))
                .expect("spawning an order writer thread");
        }
        Self { sender, stats }
    }

    pub fn stats(&self) -> WriterStats {
        WriterStats {
            statements: self.stats.statements.load(Ordering::Relaxed),
            orders: self.stats.orders.load(Ordering::Relaxed),
        }
    }
}

impl OrderWriter for PgOrderWriter {
    fn write(&self, order: Arc<Order>, claim: Option<IdempotencyClaim>, versions: SnapshotVersions) -> PendingWrite {
        let (reply, answer) = oneshot::channel();
        let sent = self.sender.send(Job { order, claim, versions, queued: Instant::now(), reply });
        Box::pin(async move {
            if sent.is_err() {
                return Err(unavailable("the order writers have stopped"));
            }
            answer.await.unwrap_or_else(|_| Err(unavailable("an order writer stopped")))
        })
    }
}

/// The batch being formed.
#[derive(Default)]
struct Forming {
    jobs: Vec<Job>,
    keys: HashSet<(Uuid, String)>,
    lines: usize,
}

impl Forming {
    fn full(&self) -> bool {
        self.jobs.len() >= MAX_BATCH_ORDERS || self.lines >= MAX_BATCH_LINES
    }

    /// Adds the job, or defers it when its idempotency key is already in the batch.
    fn take(&mut self, job: Job, deferred: &mut VecDeque<Job>) {
        if let Some((user, key)) = job.key()
            && !self.keys.insert((user, key.to_owned()))
        {
            deferred.push_back(job);
            return;
        }
        self.lines += job.order.lines().len();
        self.jobs.push(job);
    }
}

fn write_loop(db: &Database, queue: &Receiver<Job>, patience: Duration, stats: &Counters) {
    // Orders whose idempotency key is already in the batch being formed wait for the next one.
    let mut deferred: VecDeque<Job> = VecDeque::new();
    loop {
        let mut forming = Forming::default();
        for _ in 0..deferred.len() {
            if forming.full() {
                break;
            }
            if let Some(job) = deferred.pop_front() {
                forming.take(job, &mut deferred);
            }
        }
        // Wait for an order only with nothing in hand; then take whatever else is queued.
        if forming.jobs.is_empty() {
            match queue.recv() {
                Ok(job) => forming.take(job, &mut deferred),
                Err(_) => return,
            }
        }
        while !forming.full() {
            match queue.try_recv() {
                Ok(job) => forming.take(job, &mut deferred),
                Err(_) => break,
            }
        }
        let (late, batch): (Vec<Job>, Vec<Job>) =
            forming.jobs.into_iter().partition(|job| job.queued.elapsed() > patience);
        for job in late {
            let _ = job.reply.send(Err(unavailable("waited too long for an order writer")));
        }
        if !batch.is_empty() {
            write_batch(db, batch, stats);
        }
    }
}

fn write_batch(db: &Database, batch: Vec<Job>, stats: &Counters) {
    let _span = tracing::debug_span!("order_batch", orders = batch.len()).entered();
    let outcome = db.conn().and_then(|mut conn| {
        let orders: Vec<(&Order, Option<&IdempotencyClaim>, SnapshotVersions)> =
            batch.iter().map(|j| (&*j.order, j.claim.as_ref(), j.versions)).collect();
        insert_orders(&mut conn, &orders).map(|outcomes| (conn, outcomes)).map_err(store_error)
    });
    match outcome {
        Ok((mut conn, outcomes)) => {
            debug!(orders = batch.len(), "wrote a batch of orders");
            stats.statements.fetch_add(1, Ordering::Relaxed);
            stats.orders.fetch_add(batch.len() as u64, Ordering::Relaxed);
            for (job, inserted) in batch.into_iter().zip(outcomes) {
                let answer = answer(&mut conn, &job, inserted);
                let _ = job.reply.send(answer);
            }
        }
        Err(StoreError::Unavailable(e)) => {
            let cause = SharedCause(Arc::new(StoreError::Unavailable(e)));
            for job in batch {
                let _ = job.reply.send(Err(StoreError::Unavailable(Box::new(cause.clone()))));
            }
        }
        // Something in the batch broke the statement: write each order on its own so that the
        // others are not refused for it.
        Err(error) if batch.len() > 1 => {
            warn!(error = %error, orders = batch.len(), "a batch of orders failed; writing them one by one");
            for job in batch {
                write_batch(db, vec![job], stats);
            }
        }
        Err(error) => {
            // A batch of one: its order gets the error itself.
            if let Some(job) = batch.into_iter().next() {
                let _ = job.reply.send(Err(error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text others copy (the benchmark's baseline) names every parameter once, in order.
    #[test]
    fn the_sql_has_one_placeholder_per_parameter() {
        let sql = InsertOrders::sql();
        for n in 1..=InsertOrders::PARAMETERS.len() {
            assert!(sql.contains(&format!("${n}::")), "${n} missing from {sql}");
        }
        assert!(!sql.contains(&format!("${}", InsertOrders::PARAMETERS.len() + 1)), "{sql}");
        assert!(sql.starts_with("WITH input AS"), "{sql}");
    }
}
