//! `ReportRepository` on PostgreSQL, and the sales rollup that keeps the report's cost flat as
//! the order tables grow.
//!
//! A background job aggregates every closed hour (from the orders) and every closed day (from
//! the hours) into `sales_rollup`; an hour or a day is closed once it ended more than the lag
//! before now. The report then reads whole days and hours from the rollup and only the open
//! tail (at most about an hour plus the lag, and the partial hours at the range's edges) from
//! the orders, all in one snapshot. Cancelling an order of an aggregated hour or day recomputes
//! that bucket's rows for the order's products in the cancel's own transaction (see
//! [`refresh_after_cancel`]), so the report stays exact.

use std::collections::HashMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Numeric, Text, Timestamptz, Uuid as SqlUuid};
use rust_decimal::Decimal;

use application::{ProductSales, ReportRange, ReportRepository, RollupProgress, StoreError};
use domain::{Order, UserId};

use crate::db::{Database, store_error};

/// The most buckets one aggregation step takes (bounded transactions on a big backlog).
const MAX_HOURS_PER_STEP: i64 = 24 * 7;
const MAX_DAYS_PER_STEP: i64 = 31;

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

#[derive(Debug, Clone, Copy, Default, QueryableByName)]
struct State {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    hours_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    days_until: Option<DateTime<Utc>>,
}

/// Where each part of a report range is read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadPlan {
    pub days: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    pub hours: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    pub live: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

fn floor_to(t: DateTime<Utc>, unit: TimeDelta) -> DateTime<Utc> {
    t.duration_trunc(unit).unwrap_or(t)
}

fn ceil_to(t: DateTime<Utc>, unit: TimeDelta) -> DateTime<Utc> {
    let floor = floor_to(t, unit);
    if floor == t { t } else { floor + unit }
}

/// Splits `[start, end)` into whole days already aggregated, whole hours already aggregated,
/// and the rest, which is read from the orders themselves.
pub fn plan(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    hours_until: Option<DateTime<Utc>>,
    days_until: Option<DateTime<Utc>>,
) -> ReadPlan {
    let mut plan = ReadPlan::default();
    if start >= end {
        return plan;
    }
    let day = TimeDelta::days(1);
    let hour = TimeDelta::hours(1);
    let mut rest = vec![(start, end)];
    if let Some(days_until) = days_until {
        let from = ceil_to(start, day);
        let to = floor_to(end, day).min(days_until);
        if from < to {
            plan.days.push((from, to));
            rest = vec![(start, from), (to, end)];
        }
    }
    for (a, b) in rest.into_iter().filter(|(a, b)| a < b) {
        let mut pieces = vec![(a, b)];
        if let Some(hours_until) = hours_until {
            let from = ceil_to(a, hour);
            let to = floor_to(b, hour).min(hours_until);
            if from < to {
                plan.hours.push((from, to));
                pieces = vec![(a, from), (to, b)];
            }
        }
        plan.live.extend(pieces.into_iter().filter(|(a, b)| a < b));
    }
    plan
}

/// One range of orders. One query per range, with the bounds as plain parameters: the planner
/// then sees them (these queries are planned per call) and walks the created_at index for that
/// range only. (An array of ranges joined in would hide the bounds from it, and on ten million
/// lines it chose to scan every order.)
const LIVE_SQL: &str = r#"
SELECT i.product_key,
       min(i.product_name COLLATE "C") AS product_name,
       sum(i.quantity)::bigint AS total_quantity,
       sum(i.subtotal) AS total_price
FROM orders o
JOIN order_items i ON i.order_id = o.id
WHERE o.created_at >= $1 AND o.created_at < $2
  AND o.status <> 'cancelled'
  AND ($3::uuid IS NULL OR o.waiter_id = $3)
GROUP BY i.product_key
"#;

/// One range of aggregated buckets of one grain: an index-only scan of the covering key.
const ROLLUP_SQL: &str = r#"
SELECT s.product_key,
       min(s.product_name COLLATE "C") AS product_name,
       sum(s.total_quantity)::bigint AS total_quantity,
       sum(s.total_price) AS total_price
FROM sales_rollup s
WHERE s.grain = $1 AND s.bucket >= $2 AND s.bucket < $3
GROUP BY s.product_key
"#;

/// Aggregates the hours `[from, to)` from the orders.
const AGGREGATE_HOURS_SQL: &str = r#"
INSERT INTO sales_rollup (grain, bucket, product_key, product_name, total_quantity, total_price)
SELECT 'hour', date_trunc('hour', o.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', i.product_key,
       min(i.product_name COLLATE "C"), sum(i.quantity), sum(i.subtotal)
FROM orders o
JOIN order_items i ON i.order_id = o.id
WHERE o.created_at >= $1 AND o.created_at < $2 AND o.status <> 'cancelled'
  AND ($3::text[] IS NULL OR i.product_key = ANY ($3))
GROUP BY 2, 3
"#;

/// Aggregates the days `[from, to)` from their hours.
const AGGREGATE_DAYS_SQL: &str = r#"
INSERT INTO sales_rollup (grain, bucket, product_key, product_name, total_quantity, total_price)
SELECT 'day', date_trunc('day', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', product_key,
       min(product_name COLLATE "C"), sum(total_quantity), sum(total_price)
FROM sales_rollup
WHERE grain = 'hour' AND bucket >= $1 AND bucket < $2
  AND ($3::text[] IS NULL OR product_key = ANY ($3))
GROUP BY 2, 3
"#;

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
    diesel::sql_query(format!("SELECT hours_until, days_until FROM sales_rollup_state {lock}"))
        .get_result::<State>(conn)
        .optional()
}

fn aggregate(
    conn: &mut PgConnection,
    sql: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    keys: Option<&[String]>,
) -> QueryResult<usize> {
    diesel::sql_query(sql)
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .bind::<Nullable<Array<Text>>, _>(keys)
        .execute(conn)
}

/// Keeps the rollup exact when an order is cancelled: if its hour (or day) is aggregated,
/// recomputes that bucket's rows for the order's products. Runs inside the cancel's
/// transaction, after the order's new status is written. The shared lock on the state row
/// waits for a running aggregation to commit (and keeps the next one from starting), so an
/// aggregation either sees the cancel or is corrected by it.
pub(crate) fn refresh_after_cancel(conn: &mut PgConnection, order: &Order) -> QueryResult<()> {
    let Some(state) = read_state(conn, "FOR SHARE")? else { return Ok(()) };
    let at = order.created_at();
    let keys: Vec<String> = order.lines().iter().map(|l| l.product_key().as_ref().to_owned()).collect();
    let refresh = |conn: &mut PgConnection, grain: &str, unit: TimeDelta, sql: &str| -> QueryResult<()> {
        let bucket = floor_to(at, unit);
        // Concurrent refreshes of one bucket take turns (their DELETE and INSERT would clash).
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind::<diesel::sql_types::Integer, _>(if grain == "hour" { 7_240_601 } else { 7_240_602 })
            .bind::<diesel::sql_types::Integer, _>((bucket.timestamp() / 3600) as i32)
            .execute(conn)?;
        diesel::sql_query("DELETE FROM sales_rollup WHERE grain = $1 AND bucket = $2 AND product_key = ANY ($3)")
            .bind::<Text, _>(grain)
            .bind::<Timestamptz, _>(bucket)
            .bind::<Array<Text>, _>(&keys)
            .execute(conn)?;
        aggregate(conn, sql, bucket, bucket + unit, Some(&keys)).map(drop)
    };
    if state.hours_until.is_some_and(|until| at < until) {
        refresh(conn, "hour", TimeDelta::hours(1), AGGREGATE_HOURS_SQL)?;
    }
    if state.days_until.is_some_and(|until| at < until) {
        refresh(conn, "day", TimeDelta::days(1), AGGREGATE_DAYS_SQL)?;
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
            diesel::sql_query("UPDATE sales_rollup_state SET hours_until = NULL, days_until = NULL").execute(conn)
        })
        .map(drop)
        .map_err(store_error)
    }

    /// One bounded step of aggregation; `None` when another process is aggregating.
    fn roll_up_step(&self, closed_before: DateTime<Utc>) -> Result<Option<RollupProgress>, StoreError> {
        let mut conn = self.db.conn()?;
        conn.transaction(|conn| {
            let Some(state) = read_state(conn, "FOR UPDATE SKIP LOCKED")? else { return Ok(None) };
            let hour = TimeDelta::hours(1);
            let day = TimeDelta::days(1);
            let closed_hour = floor_to(closed_before, hour);
            let hours_from = match state.hours_until {
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
                    // Start at the first order's day, so that days can be built from hours.
                    floor_to(first.unwrap_or(closed_hour), day).min(floor_to(closed_hour, day))
                }
            };
            let hours_to = closed_hour.min(hours_from + hour * MAX_HOURS_PER_STEP as i32);
            let mut progress = RollupProgress::default();
            let mut hours_until = state.hours_until;
            if hours_from < hours_to || state.hours_until.is_none() {
                if hours_from < hours_to {
                    aggregate(conn, AGGREGATE_HOURS_SQL, hours_from, hours_to, None)?;
                    progress.hours = ((hours_to - hours_from).num_hours()) as u32;
                }
                hours_until = Some(hours_to.max(hours_from));
            }
            // Days are made from their hours: only days whose every hour is aggregated.
            let mut days_until = state.days_until;
            if let Some(hours_until) = hours_until {
                let days_from = state.days_until.unwrap_or_else(|| floor_to(hours_from.min(hours_until), day));
                let days_to = floor_to(hours_until, day).min(days_from + day * MAX_DAYS_PER_STEP as i32);
                if days_from < days_to {
                    aggregate(conn, AGGREGATE_DAYS_SQL, days_from, days_to, None)?;
                    progress.days = (days_to - days_from).num_days() as u32;
                }
                days_until = Some(days_to.max(days_from));
            }
            diesel::sql_query("UPDATE sales_rollup_state SET hours_until = $1, days_until = $2")
                .bind::<Nullable<Timestamptz>, _>(hours_until)
                .bind::<Nullable<Timestamptz>, _>(days_until)
                .execute(conn)?;
            progress.hours_until = hours_until;
            progress.days_until = days_until;
            Ok(Some(progress))
        })
        .map_err(store_error)
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
                let plan = plan(range.start, range.end, state.hours_until, state.days_until);
                let mut sales: HashMap<String, SalesRow> = HashMap::new();
                for (grain, ranges) in [("day", &plan.days), ("hour", &plan.hours)] {
                    for (from, to) in ranges {
                        let query = diesel::sql_query(ROLLUP_SQL)
                            .into_boxed()
                            .bind::<Text, _>(grain)
                            .bind::<Timestamptz, _>(*from)
                            .bind::<Timestamptz, _>(*to);
                        load_sales(query, conn, &mut sales)?;
                    }
                }
                for (from, to) in &plan.live {
                    let query = diesel::sql_query(LIVE_SQL)
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
                    return Ok(total);
                }
                Some(step) => {
                    total.hours += step.hours;
                    total.days += step.days;
                    total.hours_until = step.hours_until;
                    total.days_until = step.days_until;
                    if step.hours == 0 && step.days == 0 {
                        return Ok(total);
                    }
                }
            }
        }
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
        let p = plan(t("2026-11-01T10:30:00Z"), t("2026-11-05T00:00:00Z"), None, None);
        assert_eq!(
            p,
            ReadPlan {
                days: vec![],
                hours: vec![],
                live: vec![(t("2026-11-01T10:30:00Z"), t("2026-11-05T00:00:00Z"))]
            }
        );
    }

    #[test]
    fn whole_days_then_whole_hours_then_the_live_edges() {
        let p = plan(
            t("2026-11-01T10:30:00Z"),
            t("2026-11-20T15:45:00Z"),
            Some(t("2026-11-20T14:00:00Z")),
            Some(t("2026-11-20T00:00:00Z")),
        );
        assert_eq!(p.days, vec![(t("2026-11-02T00:00:00Z"), t("2026-11-20T00:00:00Z"))]);
        assert_eq!(
            p.hours,
            vec![
                (t("2026-11-01T11:00:00Z"), t("2026-11-02T00:00:00Z")),
                (t("2026-11-20T00:00:00Z"), t("2026-11-20T14:00:00Z"))
            ]
        );
        assert_eq!(
            p.live,
            vec![
                (t("2026-11-01T10:30:00Z"), t("2026-11-01T11:00:00Z")),
                (t("2026-11-20T14:00:00Z"), t("2026-11-20T15:45:00Z"))
            ]
        );
    }

    #[test]
    fn ranges_inside_one_hour_or_past_the_marks_are_live() {
        let marks = (Some(t("2026-11-20T14:00:00Z")), Some(t("2026-11-20T00:00:00Z")));
        let p = plan(t("2026-11-10T10:05:00Z"), t("2026-11-10T10:55:00Z"), marks.0, marks.1);
        assert_eq!((p.days.len(), p.hours.len(), p.live.len()), (0, 0, 1));
        let p = plan(t("2026-11-21T00:00:00Z"), t("2026-11-22T00:00:00Z"), marks.0, marks.1);
        assert_eq!(p.live, vec![(t("2026-11-21T00:00:00Z"), t("2026-11-22T00:00:00Z"))]);
        let p = plan(t("2026-11-10T00:00:00Z"), t("2026-11-11T00:00:00Z"), marks.0, marks.1);
        assert_eq!(
            (p.days, p.hours, p.live),
            (vec![(t("2026-11-10T00:00:00Z"), t("2026-11-11T00:00:00Z"))], vec![], vec![])
        );
    }

    #[test]
    fn the_pieces_cover_the_range_exactly() {
        let start = t("2026-11-01T10:30:00.000001Z");
        let end = t("2026-11-20T15:45:00.5Z");
        let p = plan(start, end, Some(t("2026-11-20T14:00:00Z")), Some(t("2026-11-19T00:00:00Z")));
        let mut all: Vec<_> = p.days.iter().chain(&p.hours).chain(&p.live).copied().collect();
        all.sort();
        assert_eq!(all.first().unwrap().0, start);
        assert_eq!(all.last().unwrap().1, end);
        for pair in all.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "a gap or an overlap");
        }
    }
}
