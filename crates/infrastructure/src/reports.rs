//! `ReportRepository` on PostgreSQL, and the sales rollup that keeps the report's cost flat as
//! the order tables grow.
//!
//! A background job aggregates every closed ten-minute period (from the orders), every closed
//! hour (from its ten-minute periods) and every closed day (from its hours) into
//! `sales_rollup`, per location and for all locations together; a period is closed once it
//! ended more than the lag before now. The orders of each closed ten-minute period are also
//! added to the sums of their business dates (`business_day_sales`). A report of instants reads
//! whole days, hours and ten-minute periods from the rollup and only the rest (the open tail, a
//! few minutes plus the lag, and the range's ragged edges) from the orders; a report of business
//! dates reads their sums and the orders since the last closed period; each in one snapshot.
//! Cancelling an aggregated order subtracts it from the rows it was added to, in the cancel's
//! own transaction (see [`subtract_cancelled`]), so the report stays exact.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, DurationRound, NaiveDate, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Integer, Nullable, Numeric, Text, Timestamptz, Uuid as SqlUuid};
use rust_decimal::Decimal;
use uuid::Uuid;

use application::{LocationScope, ProductSales, ReportRange, ReportRepository, RollupProgress, StoreError};
use domain::{LocationSettings, MenuItemId, Order, OrderStatus, UserId};

use crate::db::{Database, store_error};

/// One level of the rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grain {
    name: &'static str,
    unit: TimeDelta,
    /// The bucket of a `timestamptz` expression `{t}`, in SQL (aligned like [`floor_to`]).
    bucket_sql: &'static str,
    /// The most buckets one aggregation step takes (bounded transactions on a big backlog).
    max_per_step: i32,
    /// The advisory lock class of its buckets' refreshes.
    lock_class: i32,
}

/// Finest first: each grain is built from the one before it, the first from the orders.
const GRAINS: [Grain; 3] = [
    Grain {
        name: "minute10",
        unit: TimeDelta::minutes(10),
        bucket_sql: "date_bin('10 minutes', {t}, TIMESTAMPTZ '2000-01-01 00:00:00+00')",
        max_per_step: 6 * 24 * 7,
        lock_class: 7_240_600,
    },
    Grain {
        name: "hour",
        unit: TimeDelta::hours(1),
        bucket_sql: "date_trunc('hour', {t} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        max_per_step: 24 * 7,
        lock_class: 7_240_601,
    },
    Grain {
        name: "day",
        unit: TimeDelta::days(1),
        bucket_sql: "date_trunc('day', {t} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        max_per_step: 31,
        lock_class: 7_240_602,
    },
];

/// The `location_id` of the rollup rows that hold every location together.
const ALL_LOCATIONS: Uuid = Uuid::nil();

/// The advisory lock class of a business date's refreshes.
const BUSINESS_DAY_LOCK_CLASS: i32 = 7_240_603;

#[derive(Debug, QueryableByName)]
struct SalesRow {
    #[diesel(sql_type = Text)]
    product_key: String,
    /// The smallest spelling among the lines read (live rows only; rollup rows carry none).
    #[diesel(sql_type = Nullable<Text>)]
    product_name: Option<String>,
    #[diesel(sql_type = BigInt)]
    total_quantity: i64,
    #[diesel(sql_type = Numeric)]
    total_price: Decimal,
}

/// How far each grain is aggregated, finest first (see [`GRAINS`]). The business-day sums hold
/// every order created before `minutes_until` (they are added in the same step).
#[derive(Debug, Clone, Copy, Default, QueryableByName)]
struct State {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    minutes_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    hours_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    days_until: Option<DateTime<Utc>>,
}

impl State {
    fn marks(&self) -> [Option<DateTime<Utc>>; 3] {
        [self.minutes_until, self.hours_until, self.days_until]
    }
}

/// Where each part of a report range is read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ReadPlan {
    /// Whole aggregated buckets: the grain's name and a range of its buckets.
    rollup: Vec<(&'static str, DateTime<Utc>, DateTime<Utc>)>,
    /// The rest, read from the orders.
    live: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

pub fn floor_to(t: DateTime<Utc>, unit: TimeDelta) -> DateTime<Utc> {
    t.duration_trunc(unit).unwrap_or(t)
}

fn ceil_to(t: DateTime<Utc>, unit: TimeDelta) -> DateTime<Utc> {
    let floor = floor_to(t, unit);
    if floor == t { t } else { floor + unit }
}

/// Splits `[start, end)` into whole aggregated buckets, coarsest first, and the rest, which is
/// read from the orders themselves. `marks[i]` is how far `GRAINS[i]` is aggregated.
fn plan(start: DateTime<Utc>, end: DateTime<Utc>, marks: [Option<DateTime<Utc>>; 3]) -> ReadPlan {
    let mut plan = ReadPlan::default();
    let mut pieces = vec![(start, end)];
    for (grain, mark) in GRAINS.iter().zip(marks).rev() {
        let Some(until) = mark else { continue };
        let mut rest = Vec::new();
        for (a, b) in pieces {
            let from = ceil_to(a, grain.unit);
            let to = floor_to(b, grain.unit).min(until);
            if from < to {
                plan.rollup.push((grain.name, from, to));
                rest.extend([(a, from), (to, b)]);
            } else {
                rest.push((a, b));
            }
        }
        pieces = rest.into_iter().filter(|(a, b)| a < b).collect();
    }
    plan.live = pieces.into_iter().filter(|(a, b)| a < b).collect();
    plan
}

/// The report's rules in SQL, each written once here: which orders count (every one but the
/// cancelled, the domain's `OrderStatus::Cancelled`), and which of a product's spellings is
/// shown when `product_names` has none yet (the smallest in byte order, so that it is the same
/// on every run).
fn counted(order: &str) -> String {
    format!("{order}.status <> '{}'", OrderStatus::Cancelled.as_str())
}

fn shown_name(name: &str) -> String {
    format!(r#"min({name} COLLATE "C")"#)
}

/// The orders of one range of instants, of some locations (`$4`, all when null), of some
/// business dates (`$5..=$6`, all when null), of one waiter (`$3`, all when null). One query
/// per range, with the bounds as plain parameters: the planner then sees them (these queries
/// are planned per call) and walks the created_at index for that range only. (An array of
/// ranges joined in would hide the bounds from it, and on ten million lines it chose to scan
/// every order.)
static LIVE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT i.product_key, {name} AS product_name,
       sum(i.quantity)::bigint AS total_quantity, sum(i.subtotal) AS total_price
FROM orders o
JOIN order_items i ON i.order_id = o.id
WHERE o.created_at >= $1 AND o.created_at < $2
  AND {counted} AND i.voided_at IS NULL
  AND ($3::uuid IS NULL OR o.waiter_id = $3)
  AND ($4::uuid[] IS NULL OR o.location_id = ANY ($4))
  AND ($5::date IS NULL OR o.business_date BETWEEN $5 AND $6)
GROUP BY i.product_key",
        name = shown_name("i.product_name"),
        counted = counted("o"),
    )
});

/// One range of aggregated buckets of one grain, for some locations (or the all-locations
/// rows): an index-only scan of the covering key.
const ROLLUP_SQL: &str = "SELECT s.product_key, NULL::text AS product_name,
       sum(s.total_quantity)::bigint AS total_quantity, sum(s.total_price) AS total_price
FROM sales_rollup s
WHERE s.grain = $1 AND s.location_id = ANY ($2) AND s.bucket >= $3 AND s.bucket < $4
GROUP BY s.product_key";

/// A range of business dates, for some locations (or the all-locations rows).
const BUSINESS_DAYS_SQL: &str = "SELECT b.product_key, NULL::text AS product_name,
       sum(b.total_quantity)::bigint AS total_quantity, sum(b.total_price) AS total_price
FROM business_day_sales b
WHERE b.location_id = ANY ($1) AND b.business_date BETWEEN $2 AND $3
GROUP BY b.product_key";

/// The counted lines of the orders created in `[$1, $2)` (and, when `$3` is not null, of those
/// product keys), with the columns the aggregations group by.
static COUNTED_LINES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT o.location_id, o.business_date, o.created_at, i.product_key, i.quantity, i.subtotal
FROM orders o
JOIN order_items i ON i.order_id = o.id
WHERE o.created_at >= $1 AND o.created_at < $2 AND {counted} AND i.voided_at IS NULL
  AND ($3::text[] IS NULL OR i.product_key = ANY ($3))",
        counted = counted("o"),
    )
});

/// Aggregates the buckets `[$1, $2)` of `grain`: the finest from the orders (a row per
/// location and product, and one per product for all locations together), the others from
/// the grain below; `$3`, when not null, limits it to those product keys.
fn aggregate_sql(level: usize) -> String {
    let grain = &GRAINS[level];
    if level == 0 {
        format!(
            "INSERT INTO sales_rollup (grain, location_id, bucket, product_key, total_quantity, total_price)
SELECT '{name}', coalesce(location_id, '{all}'), bucket, product_key, sum(quantity), sum(subtotal)
FROM (SELECT location_id, {bucket} AS bucket, product_key, quantity, subtotal FROM ({lines}) l) x
GROUP BY GROUPING SETS ((bucket, location_id, product_key), (bucket, product_key))",
            name = grain.name,
            all = ALL_LOCATIONS,
            bucket = grain.bucket_sql.replace("{t}", "l.created_at"),
            lines = *COUNTED_LINES,
        )
    } else {
        format!(
            "INSERT INTO sales_rollup (grain, location_id, bucket, product_key, total_quantity, total_price)
SELECT '{name}', location_id, {bucket}, product_key, sum(total_quantity), sum(total_price)
FROM sales_rollup
WHERE grain = '{below}' AND bucket >= $1 AND bucket < $2
  AND ($3::text[] IS NULL OR product_key = ANY ($3))
GROUP BY location_id, 3, product_key",
            name = grain.name,
            bucket = grain.bucket_sql.replace("{t}", "bucket"),
            below = GRAINS[level - 1].name,
        )
    }
}

/// Adds the orders created in `[$1, $2)` to the sums of their business dates.
static ADD_BUSINESS_DAYS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO business_day_sales (location_id, business_date, product_key, total_quantity, total_price)
SELECT coalesce(location_id, '{all}'), business_date, product_key, sum(quantity), sum(subtotal)
FROM ({lines}) l
GROUP BY GROUPING SETS ((business_date, location_id, product_key), (business_date, product_key))
ON CONFLICT (location_id, business_date, product_key) DO UPDATE
SET total_quantity = business_day_sales.total_quantity + excluded.total_quantity,
    total_price = business_day_sales.total_price + excluded.total_price",
        all = ALL_LOCATIONS,
        lines = *COUNTED_LINES,
    )
});

/// Records the shown spelling of the open lines' products first seen in `[$1, $2)` (cancelled
/// orders included: a name is a name). Menu lines are shown by their item's current name.
static NAME_PRODUCTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO product_names (product_key, product_name)
SELECT i.product_key, {shown}
FROM orders o
JOIN order_items i ON i.order_id = o.id
WHERE o.created_at >= $1 AND o.created_at < $2 AND i.menu_item_id IS NULL
GROUP BY i.product_key
ON CONFLICT (product_key) DO NOTHING",
        shown = shown_name("i.product_name"),
    )
});

fn load_sales(
    query: diesel::query_builder::BoxedSqlQuery<'_, diesel::pg::Pg, diesel::query_builder::SqlQuery>,
    conn: &mut PgConnection,
    into: &mut HashMap<String, SalesRow>,
) -> QueryResult<()> {
    for row in query.load::<SalesRow>(conn)? {
        match into.get_mut(&row.product_key) {
            None => {
                into.insert(row.product_key.clone(), row);
            }
            Some(seen) => {
                seen.product_name = match (seen.product_name.take(), row.product_name) {
                    (Some(a), Some(b)) => Some(if b < a { b } else { a }),
                    (a, b) => a.or(b),
                };
                seen.total_quantity += row.total_quantity;
                seen.total_price += row.total_price;
            }
        }
    }
    Ok(())
}

/// The shown name of each product: a menu item's current name; for open lines, the spelling
/// `product_names` holds, else the smallest among the lines read live.
fn name_products(conn: &mut PgConnection, sales: HashMap<String, SalesRow>) -> QueryResult<Vec<ProductSales>> {
    #[derive(QueryableByName)]
    struct Named {
        #[diesel(sql_type = Text)]
        product_key: String,
        #[diesel(sql_type = Text)]
        product_name: String,
    }
    let keys: Vec<&str> = sales.keys().map(String::as_str).collect();
    let mut names: HashMap<String, String> = diesel::sql_query(
        "SELECT product_key, product_name FROM product_names WHERE product_key = ANY ($1)
UNION ALL
SELECT 'MENU:' || m.id::text, m.name FROM menu_items m WHERE 'MENU:' || m.id::text = ANY ($1)",
    )
    .bind::<Array<Text>, _>(&keys)
    .load::<Named>(conn)?
    .into_iter()
    .map(|n| (n.product_key, n.product_name))
    .collect();
    Ok(sales
        .into_values()
        .filter(|row| row.total_quantity > 0)
        .map(|row| ProductSales {
            menu_item_id: menu_item_of(&row.product_key),
            product_name: names.remove(&row.product_key).or(row.product_name).unwrap_or(row.product_key),
            total_quantity: row.total_quantity,
            total_price: row.total_price,
        })
        .collect())
}

/// The menu item whose lines a product key counts (see `MenuItem::product_key`), if it is one.
fn menu_item_of(key: &str) -> Option<MenuItemId> {
    key.strip_prefix("MENU:").and_then(|id| Uuid::parse_str(id).ok()).map(MenuItemId)
}

fn read_state(conn: &mut PgConnection, lock: &str) -> QueryResult<Option<State>> {
    diesel::sql_query(format!("SELECT minutes_until, hours_until, days_until FROM sales_rollup_state {lock}"))
        .get_result::<State>(conn)
        .optional()
}

fn aggregate(
    conn: &mut PgConnection,
    level: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    keys: Option<&[String]>,
) -> QueryResult<usize> {
    diesel::sql_query(aggregate_sql(level))
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .bind::<Nullable<Array<Text>>, _>(keys)
        .execute(conn)
}

/// The locations a rollup read covers: the all-locations rows, or each location's own.
fn rollup_locations(scope: &LocationScope) -> Vec<Uuid> {
    match scope {
        LocationScope::All => vec![ALL_LOCATIONS],
        LocationScope::Only(ids) => ids.iter().map(|l| l.0).collect(),
    }
}

/// What an order counts for in the sales report, by product: its live lines, unless it is
/// cancelled. The quantities and amounts, and the spelling of each open line's product.
fn counted_sales(order: &Order) -> HashMap<&str, (i64, Decimal, Option<&str>)> {
    let mut sales: HashMap<&str, (i64, Decimal, Option<&str>)> = HashMap::new();
    if order.status() == OrderStatus::Cancelled {
        return sales;
    }
    for line in order.lines().iter().filter(|l| l.is_live()) {
        let entry = sales.entry(line.product_key().as_ref()).or_insert((0, Decimal::ZERO, None));
        entry.0 += i64::from(line.quantity().get());
        entry.1 += line.subtotal().amount();
        if line.menu().is_none() {
            entry.2 = Some(line.product_name().as_ref());
        }
    }
    sales
}

/// One signed change of the sums: product keys, quantities, amounts.
#[derive(Default)]
struct Delta<'a> {
    keys: Vec<&'a str>,
    quantities: Vec<i64>,
    prices: Vec<Decimal>,
}

/// Keeps the rollup exact when an aggregated order changes (lines added or voided, the order
/// cancelled): adds to or subtracts from every aggregated row the order counts in (its
/// location's and the all-locations row, in each grain whose bucket holding the order is
/// aggregated, and in its business date) the difference between what it counted for before
/// and after, deleting the rows that fall to zero. Runs inside the change's transaction. The
/// shared lock on the state row waits for a running aggregation to commit (and keeps the next
/// one from starting), so an aggregation either sees the change or is corrected by it.
pub(crate) fn adjust_sales(conn: &mut PgConnection, before: &Order, after: &Order) -> QueryResult<()> {
    let at = after.created_at();
    let (was, is) = (counted_sales(before), counted_sales(after));
    let (mut added, mut taken) = (Delta::default(), Delta::default());
    let mut names: Vec<(&str, &str)> = Vec::new();
    let keys: std::collections::BTreeSet<&str> = was.keys().chain(is.keys()).copied().collect();
    for key in keys {
        let (q0, p0, _) = was.get(key).copied().unwrap_or((0, Decimal::ZERO, None));
        let (q1, p1, name) = is.get(key).copied().unwrap_or((0, Decimal::ZERO, None));
        let (dq, dp) = (q1 - q0, p1 - p0);
        if dq > 0 {
            added.keys.push(key);
            added.quantities.push(dq);
            added.prices.push(dp);
            names.extend(name.map(|n| (key, n)));
        } else if dq < 0 {
            taken.keys.push(key);
            taken.quantities.push(-dq);
            taken.prices.push(-dp);
        }
    }
    if added.keys.is_empty() && taken.keys.is_empty() {
        return Ok(());
    }
    let Some(state) = read_state(conn, "FOR SHARE")? else { return Ok(()) };
    let locations = vec![after.location_id().0, ALL_LOCATIONS];
    // Concurrent changes of one bucket take turns: their updates of the shared rows would
    // otherwise lock them in whatever order their plans chose.
    let take_turn = |conn: &mut PgConnection, class: i32, slot: i64| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind::<Integer, _>(class)
            .bind::<Integer, _>(slot as i32)
            .execute(conn)
    };
    let mut aggregated = false;
    for (grain, mark) in GRAINS.iter().zip(state.marks()) {
        if mark.is_none_or(|until| at >= until) {
            continue;
        }
        aggregated = true;
        let bucket = floor_to(at, grain.unit);
        take_turn(conn, grain.lock_class, bucket.timestamp() / 600)?;
        if !added.keys.is_empty() {
            diesel::sql_query(
                "INSERT INTO sales_rollup (grain, location_id, bucket, product_key, total_quantity, total_price)
SELECT $1, l.id, $3, d.product_key, d.quantity, d.price
FROM unnest($2::uuid[]) AS l (id), unnest($4::text[], $5::int8[], $6::numeric[]) AS d (product_key, quantity, price)
ORDER BY 2, 4
ON CONFLICT (grain, location_id, bucket, product_key) DO UPDATE
SET total_quantity = sales_rollup.total_quantity + excluded.total_quantity,
    total_price = sales_rollup.total_price + excluded.total_price",
            )
            .bind::<Text, _>(grain.name)
            .bind::<Array<SqlUuid>, _>(&locations)
            .bind::<Timestamptz, _>(bucket)
            .bind::<Array<Text>, _>(&added.keys)
            .bind::<Array<BigInt>, _>(&added.quantities)
            .bind::<Array<Numeric>, _>(&added.prices)
            .execute(conn)?;
        }
        if !taken.keys.is_empty() {
            diesel::sql_query(
                "UPDATE sales_rollup s
SET total_quantity = s.total_quantity - d.quantity, total_price = s.total_price - d.price
FROM unnest($4::text[], $5::int8[], $6::numeric[]) AS d (product_key, quantity, price)
WHERE s.grain = $1 AND s.location_id = ANY ($2) AND s.bucket = $3 AND s.product_key = d.product_key",
            )
            .bind::<Text, _>(grain.name)
            .bind::<Array<SqlUuid>, _>(&locations)
            .bind::<Timestamptz, _>(bucket)
            .bind::<Array<Text>, _>(&taken.keys)
            .bind::<Array<BigInt>, _>(&taken.quantities)
            .bind::<Array<Numeric>, _>(&taken.prices)
            .execute(conn)?;
            diesel::sql_query(
                "DELETE FROM sales_rollup
WHERE grain = $1 AND location_id = ANY ($2) AND bucket = $3 AND product_key = ANY ($4) AND total_quantity = 0",
            )
            .bind::<Text, _>(grain.name)
            .bind::<Array<SqlUuid>, _>(&locations)
            .bind::<Timestamptz, _>(bucket)
            .bind::<Array<Text>, _>(&taken.keys)
            .execute(conn)?;
        }
    }
    if state.minutes_until.is_some_and(|until| at < until) {
        let date = after.business_date();
        take_turn(conn, BUSINESS_DAY_LOCK_CLASS, i64::from(date.num_days_from_ce()))?;
        if !added.keys.is_empty() {
            diesel::sql_query(
                "INSERT INTO business_day_sales (location_id, business_date, product_key, total_quantity, total_price)
SELECT l.id, $2, d.product_key, d.quantity, d.price
FROM unnest($1::uuid[]) AS l (id), unnest($3::text[], $4::int8[], $5::numeric[]) AS d (product_key, quantity, price)
ORDER BY 1, 3
ON CONFLICT (location_id, business_date, product_key) DO UPDATE
SET total_quantity = business_day_sales.total_quantity + excluded.total_quantity,
    total_price = business_day_sales.total_price + excluded.total_price",
            )
            .bind::<Array<SqlUuid>, _>(&locations)
            .bind::<Date, _>(date)
            .bind::<Array<Text>, _>(&added.keys)
            .bind::<Array<BigInt>, _>(&added.quantities)
            .bind::<Array<Numeric>, _>(&added.prices)
            .execute(conn)?;
        }
        if !taken.keys.is_empty() {
            diesel::sql_query(
                "UPDATE business_day_sales b
SET total_quantity = b.total_quantity - d.quantity, total_price = b.total_price - d.price
FROM unnest($3::text[], $4::int8[], $5::numeric[]) AS d (product_key, quantity, price)
WHERE b.location_id = ANY ($1) AND b.business_date = $2 AND b.product_key = d.product_key",
            )
            .bind::<Array<SqlUuid>, _>(&locations)
            .bind::<Date, _>(date)
            .bind::<Array<Text>, _>(&taken.keys)
            .bind::<Array<BigInt>, _>(&taken.quantities)
            .bind::<Array<Numeric>, _>(&taken.prices)
            .execute(conn)?;
            diesel::sql_query(
                "DELETE FROM business_day_sales
WHERE location_id = ANY ($1) AND business_date = $2 AND product_key = ANY ($3) AND total_quantity = 0",
            )
            .bind::<Array<SqlUuid>, _>(&locations)
            .bind::<Date, _>(date)
            .bind::<Array<Text>, _>(&taken.keys)
            .execute(conn)?;
        }
    }
    // A product first sold in an aggregated period by a line added later needs its spelling.
    if aggregated && !names.is_empty() {
        let (keys, spellings): (Vec<&str>, Vec<&str>) = names.into_iter().unzip();
        diesel::sql_query(
            "INSERT INTO product_names (product_key, product_name)
SELECT * FROM unnest($1::text[], $2::text[]) ORDER BY 1 ON CONFLICT (product_key) DO NOTHING",
        )
        .bind::<Array<Text>, _>(&keys)
        .bind::<Array<Text>, _>(&spellings)
        .execute(conn)?;
    }
    Ok(())
}

/// Forgets every aggregate and every recorded spelling; the next roll-ups rebuild them.
pub(crate) fn clear(conn: &mut PgConnection) -> QueryResult<()> {
    read_state(conn, "FOR UPDATE")?;
    diesel::sql_query("DELETE FROM sales_rollup").execute(conn)?;
    diesel::sql_query("DELETE FROM business_day_sales").execute(conn)?;
    diesel::sql_query("DELETE FROM product_names").execute(conn)?;
    diesel::sql_query("UPDATE sales_rollup_state SET minutes_until = NULL, hours_until = NULL, days_until = NULL")
        .execute(conn)
        .map(drop)
}

#[derive(Debug, Clone)]
pub struct PgReportRepository {
    db: Database,
}

impl PgReportRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Forgets every aggregate (after a bulk load of past orders, for instance); the next
    /// roll-ups rebuild them.
    pub fn reset_rollup(&self) -> Result<(), StoreError> {
        let mut conn = self.db.conn()?;
        conn.transaction(|conn| clear(conn)).map_err(store_error)
    }

    /// One bounded step of aggregation; `None` when another process is aggregating.
    fn roll_up_step(&self, closed_before: DateTime<Utc>) -> Result<Option<[u32; 3]>, StoreError> {
        let mut conn = self.db.conn()?;
        conn.transaction(|conn| {
            let Some(state) = read_state(conn, "FOR UPDATE SKIP LOCKED")? else { return Ok(None) };
            let mut marks = state.marks();
            // Where aggregation starts when nothing is yet: the first order's day (so that every
            // grain's buckets line up), or the current day on an empty database.
            let start = match marks[0] {
                Some(until) => until,
                None => {
                    #[derive(QueryableByName)]
                    struct First {
                        #[diesel(sql_type = Nullable<Timestamptz>)]
                        first: Option<DateTime<Utc>>,
                    }
                    let first = diesel::sql_query("SELECT min(created_at) AS first FROM orders")
                        .get_result::<First>(conn)?
                        .first;
                    let day = GRAINS[2].unit;
                    floor_to(first.unwrap_or(closed_before), day).min(floor_to(closed_before, day))
                }
            };
            let mut done = [0u32; 3];
            for (level, grain) in GRAINS.iter().enumerate() {
                // The finest grain closes with time; the others with the grain below them.
                let closed = if level == 0 { closed_before } else { marks[level - 1].unwrap_or(start) };
                let from = marks[level].unwrap_or(start);
                let to = floor_to(closed, grain.unit).min(from + grain.unit * grain.max_per_step).max(from);
                if from < to {
                    aggregate(conn, level, from, to, None)?;
                    if level == 0 {
                        // The same orders by business date, and the names of the products.
                        diesel::sql_query(ADD_BUSINESS_DAYS_SQL.as_str())
                            .bind::<Timestamptz, _>(from)
                            .bind::<Timestamptz, _>(to)
                            .bind::<Nullable<Array<Text>>, _>(None::<Vec<String>>)
                            .execute(conn)?;
                        diesel::sql_query(NAME_PRODUCTS_SQL.as_str())
                            .bind::<Timestamptz, _>(from)
                            .bind::<Timestamptz, _>(to)
                            .execute(conn)?;
                    }
                    done[level] = ((to - from).num_seconds() / grain.unit.num_seconds()) as u32;
                }
                marks[level] = Some(to);
            }
            diesel::sql_query("UPDATE sales_rollup_state SET minutes_until = $1, hours_until = $2, days_until = $3")
                .bind::<Nullable<Timestamptz>, _>(marks[0])
                .bind::<Nullable<Timestamptz>, _>(marks[1])
                .bind::<Nullable<Timestamptz>, _>(marks[2])
                .execute(conn)?;
            Ok(Some(done))
        })
        .map_err(store_error)
    }

    /// Marks the new rollup pages all-visible at once, so that reports read them with index-only
    /// scans (on ten million lines, heap fetches made the report twice as slow until autovacuum
    /// came by). Best effort: a role that may not vacuum leaves it to autovacuum.
    fn vacuum(&self) {
        let result = self.db.conn().map_err(|e| e.to_string()).and_then(|mut conn| {
            for table in ["sales_rollup", "business_day_sales"] {
                diesel::sql_query(format!("VACUUM (ANALYZE) {table}")).execute(&mut conn).map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::debug!(error = %e, "could not vacuum the sales rollup; autovacuum will");
        }
    }

    /// How far each grain of [`GRAINS`] is aggregated, finest first, without aggregating
    /// anything (the benchmark waits on these for the server's rollup to catch up).
    pub fn marks(&self) -> Result<[Option<DateTime<Utc>>; 3], StoreError> {
        let mut conn = self.db.conn()?;
        Ok(read_state(&mut conn, "").map_err(store_error)?.unwrap_or_default().marks())
    }
}

impl ReportRepository for PgReportRepository {
    fn product_sales(
        &self,
        range: &ReportRange,
        scope: &LocationScope,
        waiter: Option<UserId>,
    ) -> Result<Vec<ProductSales>, StoreError> {
        if matches!(scope, LocationScope::Only(ids) if ids.is_empty()) {
            return Ok(Vec::new());
        }
        let locations: Option<Vec<Uuid>> = match scope {
            LocationScope::All => None,
            LocationScope::Only(ids) => Some(ids.iter().map(|l| l.0).collect()),
        };
        let mut conn = self.db.conn()?;
        conn.build_transaction()
            .repeatable_read()
            .read_only()
            .run(|conn| {
                // The rollup has no waiter: a waiter's report reads that waiter's orders.
                let state = if waiter.is_some() { State::default() } else { read_state(conn, "")?.unwrap_or_default() };
                let mut sales: HashMap<String, SalesRow> = HashMap::new();
                let live = |conn: &mut PgConnection,
                            sales: &mut HashMap<String, SalesRow>,
                            (from, to): (DateTime<Utc>, DateTime<Utc>),
                            dates: Option<(NaiveDate, NaiveDate)>| {
                    let query = diesel::sql_query(LIVE_SQL.as_str())
                        .into_boxed()
                        .bind::<Timestamptz, _>(from)
                        .bind::<Timestamptz, _>(to)
                        .bind::<Nullable<SqlUuid>, _>(waiter.map(|w| w.0))
                        .bind::<Nullable<Array<SqlUuid>>, _>(locations.clone())
                        .bind::<Nullable<Date>, _>(dates.map(|d| d.0))
                        .bind::<Nullable<Date>, _>(dates.map(|d| d.1));
                    load_sales(query, conn, sales)
                };
                match *range {
                    ReportRange::Instants { start, end } => {
                        let plan = plan(start, end, state.marks());
                        for (grain, from, to) in &plan.rollup {
                            let query = diesel::sql_query(ROLLUP_SQL)
                                .into_boxed()
                                .bind::<Text, _>(*grain)
                                .bind::<Array<SqlUuid>, _>(rollup_locations(scope))
                                .bind::<Timestamptz, _>(*from)
                                .bind::<Timestamptz, _>(*to);
                            load_sales(query, conn, &mut sales)?;
                        }
                        for piece in plan.live {
                            live(conn, &mut sales, piece, None)?;
                        }
                    }
                    ReportRange::BusinessDates { first, last } => {
                        // The sums hold every order created before the ten-minute mark; the
                        // orders since are read live, within the instants the dates can hold.
                        let (mut from, to) = LocationSettings::instants_holding(first, last);
                        if let Some(until) = state.minutes_until {
                            let query = diesel::sql_query(BUSINESS_DAYS_SQL)
                                .into_boxed()
                                .bind::<Array<SqlUuid>, _>(rollup_locations(scope))
                                .bind::<Date, _>(first)
                                .bind::<Date, _>(last);
                            load_sales(query, conn, &mut sales)?;
                            from = from.max(until);
                        }
                        if from < to {
                            live(conn, &mut sales, (from, to), Some((first, last)))?;
                        }
                    }
                }
                name_products(conn, sales)
            })
            .map_err(store_error)
    }

    fn roll_up(&self, closed_before: DateTime<Utc>) -> Result<RollupProgress, StoreError> {
        let mut total = RollupProgress::default();
        loop {
            match self.roll_up_step(closed_before)? {
                None => {
                    total.busy = true;
                    break;
                }
                Some(done) => {
                    total.minutes10 += done[0];
                    total.hours += done[1];
                    total.days += done[2];
                    if done == [0, 0, 0] {
                        break;
                    }
                }
            }
        }
        if total.minutes10 + total.hours + total.days > 0 {
            self.vacuum();
        }
        let [minutes, hours, days] = self.marks()?;
        total.minutes_until = minutes;
        total.hours_until = hours;
        total.days_until = days;
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn nothing_aggregated_reads_everything_live() {
        let p = plan(t("2026-11-01T10:30:00Z"), t("2026-11-05T00:00:00Z"), [None, None, None]);
        assert_eq!(p, ReadPlan { rollup: vec![], live: vec![(t("2026-11-01T10:30:00Z"), t("2026-11-05T00:00:00Z"))] });
    }

    #[test]
    fn whole_days_then_hours_then_ten_minutes_then_the_live_edges() {
        let marks = [Some(t("2026-11-20T15:40:00Z")), Some(t("2026-11-20T15:00:00Z")), Some(t("2026-11-20T00:00:00Z"))];
        let p = plan(t("2026-11-01T10:35:00Z"), t("2026-11-20T15:55:00Z"), marks);
        assert_eq!(
            p.rollup,
            vec![
                ("day", t("2026-11-02T00:00:00Z"), t("2026-11-20T00:00:00Z")),
                ("hour", t("2026-11-01T11:00:00Z"), t("2026-11-02T00:00:00Z")),
                ("hour", t("2026-11-20T00:00:00Z"), t("2026-11-20T15:00:00Z")),
                ("minute10", t("2026-11-01T10:40:00Z"), t("2026-11-01T11:00:00Z")),
                ("minute10", t("2026-11-20T15:00:00Z"), t("2026-11-20T15:40:00Z")),
            ]
        );
        assert_eq!(
            p.live,
            vec![
                (t("2026-11-01T10:35:00Z"), t("2026-11-01T10:40:00Z")),
                (t("2026-11-20T15:40:00Z"), t("2026-11-20T15:55:00Z"))
            ]
        );
    }

    #[test]
    fn ranges_inside_one_period_or_past_the_marks_are_live() {
        let marks = [Some(t("2026-11-20T14:00:00Z")), Some(t("2026-11-20T14:00:00Z")), Some(t("2026-11-20T00:00:00Z"))];
        let p = plan(t("2026-11-10T10:01:00Z"), t("2026-11-10T10:09:00Z"), marks);
        assert_eq!((p.rollup.len(), p.live.len()), (0, 1));
        let p = plan(t("2026-11-21T00:00:00Z"), t("2026-11-22T00:00:00Z"), marks);
        assert_eq!(p.live, vec![(t("2026-11-21T00:00:00Z"), t("2026-11-22T00:00:00Z"))]);
        let p = plan(t("2026-11-10T00:00:00Z"), t("2026-11-11T00:00:00Z"), marks);
        assert_eq!((p.rollup, p.live), (vec![("day", t("2026-11-10T00:00:00Z"), t("2026-11-11T00:00:00Z"))], vec![]));
    }

    #[test]
    fn the_pieces_cover_the_range_exactly() {
        let start = t("2026-11-01T10:30:00.000001Z");
        let end = t("2026-11-20T15:45:00.5Z");
        let marks = [Some(t("2026-11-20T15:30:00Z")), Some(t("2026-11-20T14:00:00Z")), Some(t("2026-11-19T00:00:00Z"))];
        let p = plan(start, end, marks);
        let mut all: Vec<_> = p.rollup.iter().map(|(_, a, b)| (*a, *b)).chain(p.live.iter().copied()).collect();
        all.sort();
        assert_eq!(all.first().unwrap().0, start);
        assert_eq!(all.last().unwrap().1, end);
        for pair in all.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "a gap or an overlap");
        }
    }
}
