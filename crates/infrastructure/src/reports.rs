//! `ReportRepository` on PostgreSQL, and the sales rollup that keeps the report's cost flat as
//! the order tables grow.
//!
//! A background job aggregates every closed ten-minute period (from the orders), every closed
//! hour (from its ten-minute periods) and every closed day (from its hours) into
//! `sales_rollup`; a period is closed once it ended more than the lag before now. The report
//! reads whole days, hours and ten-minute periods from the rollup and only the rest (the open
//! tail, a few minutes plus the lag, and the range's ragged edges) from the orders, all in one
//! snapshot. Cancelling an order of an aggregated period recomputes that period's rows for the
//! order's products in the cancel's own transaction (see [`refresh_after_cancel`]), so the
//! report stays exact.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Numeric, Text, Timestamptz, Uuid as SqlUuid};
use rust_decimal::Decimal;

use application::{ProductSales, ReportRange, ReportRepository, RollupProgress, StoreError};
use domain::{Order, OrderStatus, UserId};

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

#[derive(Debug, QueryableByName)]
struct SalesRow {
    #[diesel(sql_type = Text)]
    product_key: String,
    #[diesel(sql_type = Text)]
    product_name: String,
    #[diesel(sql_type = BigInt)]
    total_quantity: i64,
    #[diesel(sql_type = Numeric)]
    total_price: Decimal,
}

/// How far each grain is aggregated, finest first (see [`GRAINS`]).
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
/// shown (the smallest in byte order, so that it is the same on every run).
fn counted(order: &str) -> String {
    format!("{order}.status <> '{}'", OrderStatus::Cancelled.as_str())
}

fn shown_name(name: &str) -> String {
    format!(r#"min({name} COLLATE "C")"#)
}

/// One range of orders. One query per range, with the bounds as plain parameters: the planner
/// then sees them (these queries are planned per call) and walks the created_at index for that
/// range only. (An array of ranges joined in would hide the bounds from it, and on ten million
/// lines it chose to scan every order.)
static LIVE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT i.product_key, {name} AS product_name,
       sum(i.quantity)::bigint AS total_quantity, sum(i.subtotal) AS total_price
FROM orders o
JOIN order_items i ON i.order_id = o.id
WHERE o.created_at >= $1 AND o.created_at < $2
  AND {counted}
  AND ($3::uuid IS NULL OR o.waiter_id = $3)
GROUP BY i.product_key",
        name = shown_name("i.product_name"),
        counted = counted("o"),
    )
});

/// One range of aggregated buckets of one grain: an index-only scan of the covering key.
static ROLLUP_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT s.product_key, {name} AS product_name,
       sum(s.total_quantity)::bigint AS total_quantity, sum(s.total_price) AS total_price
FROM sales_rollup s
WHERE s.grain = $1 AND s.bucket >= $2 AND s.bucket < $3
GROUP BY s.product_key",
        name = shown_name("s.product_name"),
    )
});

/// Aggregates the buckets `[$1, $2)` of `grain`: the finest from the orders, the others from
/// the grain below; `$3`, when not null, limits it to those product keys.
fn aggregate_sql(level: usize) -> String {
    let grain = &GRAINS[level];
    if level == 0 {
        format!(
            "INSERT INTO sales_rollup (grain, bucket, product_key, product_name, total_quantity, total_price)
SELECT '{name}', {bucket}, i.product_key, {shown}, sum(i.quantity), sum(i.subtotal)
FROM orders o
JOIN order_items i ON i.order_id = o.id
WHERE o.created_at >= $1 AND o.created_at < $2 AND {counted}
  AND ($3::text[] IS NULL OR i.product_key = ANY ($3))
GROUP BY 2, 3",
            name = grain.name,
            bucket = grain.bucket_sql.replace("{t}", "o.created_at"),
            shown = shown_name("i.product_name"),
            counted = counted("o"),
        )
    } else {
        format!(
            "INSERT INTO sales_rollup (grain, bucket, product_key, product_name, total_quantity, total_price)
SELECT '{name}', {bucket}, product_key, {shown}, sum(total_quantity), sum(total_price)
FROM sales_rollup
WHERE grain = '{below}' AND bucket >= $1 AND bucket < $2
  AND ($3::text[] IS NULL OR product_key = ANY ($3))
GROUP BY 2, 3",
            name = grain.name,
            bucket = grain.bucket_sql.replace("{t}", "bucket"),
            shown = shown_name("product_name"),
            below = GRAINS[level - 1].name,
        )
    }
}

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
                if row.product_name < seen.product_name {
                    seen.product_name = row.product_name;
                }
                seen.total_quantity += row.total_quantity;
                seen.total_price += row.total_price;
            }
        }
    }
    Ok(())
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

/// Keeps the rollup exact when an order is cancelled: for each grain whose bucket holding the
/// order is aggregated, finest first, recomputes that bucket's rows for the order's products.
/// Runs inside the cancel's transaction, after the order's new status is written. The shared
/// lock on the state row waits for a running aggregation to commit (and keeps the next one
/// from starting), so an aggregation either sees the cancel or is corrected by it.
pub(crate) fn refresh_after_cancel(conn: &mut PgConnection, order: &Order) -> QueryResult<()> {
    let Some(state) = read_state(conn, "FOR SHARE")? else { return Ok(()) };
    let at = order.created_at();
    let keys: Vec<String> = order.lines().iter().map(|l| l.product_key().as_ref().to_owned()).collect();
    for (level, (grain, mark)) in GRAINS.iter().zip(state.marks()).enumerate() {
        if mark.is_none_or(|until| at >= until) {
            continue;
        }
        let bucket = floor_to(at, grain.unit);
        // Concurrent refreshes of one bucket take turns (their DELETE and INSERT would clash).
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind::<diesel::sql_types::Integer, _>(grain.lock_class)
            .bind::<diesel::sql_types::Integer, _>((bucket.timestamp() / 600) as i32)
            .execute(conn)?;
        diesel::sql_query("DELETE FROM sales_rollup WHERE grain = $1 AND bucket = $2 AND product_key = ANY ($3)")
            .bind::<Text, _>(grain.name)
            .bind::<Timestamptz, _>(bucket)
            .bind::<Array<Text>, _>(&keys)
            .execute(conn)?;
        aggregate(conn, level, bucket, bucket + grain.unit, Some(&keys))?;
    }
    Ok(())
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
        conn.transaction(|conn| {
            read_state(conn, "FOR UPDATE")?;
            diesel::sql_query("DELETE FROM sales_rollup").execute(conn)?;
            diesel::sql_query(
                "UPDATE sales_rollup_state SET minutes_until = NULL, hours_until = NULL, days_until = NULL",
            )
            .execute(conn)
        })
        .map(drop)
        .map_err(store_error)
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
            diesel::sql_query("VACUUM (ANALYZE) sales_rollup").execute(&mut conn).map_err(|e| e.to_string())
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
    fn product_sales(&self, range: &ReportRange, waiter: Option<UserId>) -> Result<Vec<ProductSales>, StoreError> {
        let mut conn = self.db.conn()?;
        let rows = conn
            .build_transaction()
            .repeatable_read()
            .read_only()
            .run(|conn| {
                // The rollup has no waiter: a waiter's report reads that waiter's orders.
                let state = if waiter.is_some() { State::default() } else { read_state(conn, "")?.unwrap_or_default() };
                let plan = plan(range.start, range.end, state.marks());
                let mut sales: HashMap<String, SalesRow> = HashMap::new();
                for (grain, from, to) in &plan.rollup {
                    let query = diesel::sql_query(ROLLUP_SQL.as_str())
                        .into_boxed()
                        .bind::<Text, _>(*grain)
                        .bind::<Timestamptz, _>(*from)
                        .bind::<Timestamptz, _>(*to);
                    load_sales(query, conn, &mut sales)?;
                }
                for (from, to) in &plan.live {
                    let query = diesel::sql_query(LIVE_SQL.as_str())
                        .into_boxed()
                        .bind::<Timestamptz, _>(*from)
                        .bind::<Timestamptz, _>(*to)
                        .bind::<Nullable<SqlUuid>, _>(waiter.map(|w| w.0));
                    load_sales(query, conn, &mut sales)?;
                }
                Ok::<_, diesel::result::Error>(sales)
            })
            .map_err(store_error)?;
        Ok(rows
            .into_values()
            .map(|r| ProductSales {
                product_name: r.product_name,
                total_quantity: r.total_quantity,
                total_price: r.total_price,
            })
            .collect())
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
