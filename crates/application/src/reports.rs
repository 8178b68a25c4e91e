//! The sales report: products sold in a range, most sold first.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use rust_decimal::Decimal;

use domain::{Action, LocationId, LocationSettings, UserId};

use crate::actor::{Caller, Denied, LocationScope};
use crate::locations::LocationRepository;
use crate::ports::UserRepository;
use crate::store::StoreError;

/// Which orders a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportRange {
    /// Orders created in a half-open range of instants: `start <= created_at < end`.
    Instants { start: DateTime<Utc>, end: DateTime<Utc> },
    /// Orders of the business dates `first..=last` (each location's own business day).
    BusinessDates { first: NaiveDate, last: NaiveDate },
}

/// A bound of a report as the client gives it: a date or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportBound {
    Day(NaiveDate),
    Instant(DateTime<Utc>),
}

/// A range that ends before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must not be after end_date")]
pub struct StartAfterEnd;

impl ReportRange {
    /// How long a report covers when no start is given.
    pub const DEFAULT_DAYS: i64 = 30;

    /// The range of the bounds. Dates alone (one or both, no instant) are business dates: a
    /// date as end includes that business day; without an end the range runs to the current
    /// business day of every location, without a start it covers [`Self::DEFAULT_DAYS`]
    /// business days up to its end. Otherwise the range is of instants: an instant as end is
    /// included (timestamps have microsecond precision, so the range ends one microsecond
    /// after it); a date beside an instant stands for its first instant in UTC, or as end for
    /// its whole UTC day; without an end the range ends now (included), without a start it
    /// begins [`Self::DEFAULT_DAYS`] days before its end. The arithmetic saturates, so no
    /// bound can overflow it.
    pub fn from_bounds(
        start: Option<ReportBound>,
        end: Option<ReportBound>,
        now: DateTime<Utc>,
    ) -> Result<Self, StartAfterEnd> {
        let is_day = |b: &Option<ReportBound>| matches!(b, None | Some(ReportBound::Day(_)));
        if is_day(&start) && is_day(&end) && (start.is_some() || end.is_some()) {
            let day = |b: Option<ReportBound>| match b {
                Some(ReportBound::Day(day)) => Some(day),
                _ => None,
            };
            // No location is a whole day ahead of UTC: tomorrow's UTC date is past every
            // location's current business day.
            let today = now.date_naive();
            let last = day(end).unwrap_or_else(|| today.succ_opt().unwrap_or(today));
            let first = day(start).unwrap_or_else(|| {
                last.checked_sub_days(chrono::Days::new(Self::DEFAULT_DAYS as u64 - 1)).unwrap_or(NaiveDate::MIN)
            });
            if first > last {
                return Err(StartAfterEnd);
            }
            return Ok(Self::BusinessDates { first, last });
        }
        let micro = TimeDelta::microseconds(1);
        let after = |t: DateTime<Utc>| t.checked_add_signed(micro).unwrap_or(t);
        let end = match end {
            None => after(now),
            Some(ReportBound::Day(day)) => day.succ_opt().unwrap_or(day).and_time(NaiveTime::MIN).and_utc(),
            Some(ReportBound::Instant(t)) => after(t),
        };
        let start = match start {
            None => {
                let last = end.checked_sub_signed(micro).unwrap_or(end);
                last.checked_sub_signed(TimeDelta::days(Self::DEFAULT_DAYS)).unwrap_or(last)
            }
            Some(ReportBound::Day(day)) => day.and_time(NaiveTime::MIN).and_utc(),
            Some(ReportBound::Instant(t)) => t,
        };
        if start >= end {
            return Err(StartAfterEnd);
        }
        Ok(Self::Instants { start, end })
    }

    /// The instants the range spans for locations with these settings: for business dates,
    /// from the earliest first instant of the first date to the latest end of the last one
    /// (the UTC days themselves when there is no location).
    pub fn span(&self, locations: &[LocationSettings]) -> (DateTime<Utc>, DateTime<Utc>) {
        match *self {
            Self::Instants { start, end } => (start, end),
            Self::BusinessDates { first, last } => {
                let after = last.succ_opt().unwrap_or(last);
                let utc = LocationSettings::default();
                let settings = if locations.is_empty() { std::slice::from_ref(&utc) } else { locations };
                let start = settings.iter().map(|s| s.day_starts_at(first)).min().unwrap_or_default();
                let end = settings.iter().map(|s| s.day_starts_at(after)).max().unwrap_or_default();
                (start, end)
            }
        }
    }
}

/// One product's sales: one spelling of its name (the same one every time), the units sold and
/// what they came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSales {
    /// The menu item's current name, or the open lines' product name.
    pub product_name: String,
    /// The menu item the row counts (its lines whatever it was called when sold); `None` for
    /// open lines, which count by their product name.
    pub menu_item_id: Option<domain::MenuItemId>,
    pub total_quantity: i64,
    pub total_price: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesReport {
    pub range: ReportRange,
    /// The instants the range spans in the report's locations: `start <= t < end`.
    pub span: (DateTime<Utc>, DateTime<Utc>),
    pub products: Vec<ProductSales>,
    pub total_quantity: i64,
    pub total_price: Decimal,
}

/// What a roll-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupProgress {
    /// Ten-minute periods, hours and days aggregated by this call.
    pub minutes10: u32,
    pub hours: u32,
    pub days: u32,
    /// Every period of that grain before these marks is aggregated.
    pub minutes_until: Option<DateTime<Utc>>,
    pub hours_until: Option<DateTime<Utc>>,
    pub days_until: Option<DateTime<Utc>>,
    /// Another process was aggregating; nothing was done here.
    pub busy: bool,
}

/// Sales per product (grouped by product key), cancelled orders left out, in no given order.
pub trait ReportRepository: Send + Sync {
    fn product_sales(
        &self,
        range: &ReportRange,
        scope: &LocationScope,
        waiter: Option<UserId>,
    ) -> Result<Vec<ProductSales>, StoreError>;
    /// Aggregates every ten minutes, hour and day that ended before `closed_before` and is not
    /// yet aggregated, so that reports read them without scanning their orders.
    fn roll_up(&self, closed_before: DateTime<Utc>) -> Result<RollupProgress, StoreError>;
}

/// How long after an hour ends it is aggregated. Orders are stamped by the application's clock
/// when their use case starts, and commit at the latest a pool checkout timeout plus a statement
/// timeout later; several replicas' clocks may also differ a little. So a period is closed only
/// once no order stamped in it can still commit: that bound plus two minutes, and never less
/// than five minutes.
pub fn rollup_lag(checkout_timeout: std::time::Duration, statement_timeout: std::time::Duration) -> chrono::TimeDelta {
    let bound =
        chrono::TimeDelta::from_std(checkout_timeout + statement_timeout).unwrap_or(chrono::TimeDelta::hours(2));
    (bound + chrono::TimeDelta::minutes(2)).max(chrono::TimeDelta::minutes(5))
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("your role may not read reports here")]
    Forbidden,
    #[error("the signed-in user no longer exists")]
    ActorGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Denied> for ReportError {
    fn from(_: Denied) -> Self {
        Self::Forbidden
    }
}

pub struct ReportService {
    reports: Arc<dyn ReportRepository>,
    users: Arc<dyn UserRepository>,
    locations: Arc<dyn LocationRepository>,
    clock: Arc<dyn crate::clock::Clock>,
    lag: chrono::TimeDelta,
}

impl std::fmt::Debug for ReportService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportService").finish_non_exhaustive()
    }
}

impl ReportService {
    /// `lag`: see [`rollup_lag`].
    pub fn new(
        reports: Arc<dyn ReportRepository>,
        users: Arc<dyn UserRepository>,
        locations: Arc<dyn LocationRepository>,
        clock: Arc<dyn crate::clock::Clock>,
        lag: chrono::TimeDelta,
    ) -> Self {
        Self { reports, users, locations, clock, lag }
    }

    /// Brings the sales rollup up to date (every period that ended at least the lag ago).
    pub fn roll_up(&self) -> Result<RollupProgress, StoreError> {
        self.reports.roll_up(self.clock.now() - self.lag)
    }

    /// The report of the caller's locations (every location for an admin), or of the one
    /// `location` names: products by total quantity, then total price, both descending, then
    /// name.
    pub fn sales(
        &self,
        caller: &Caller,
        range: ReportRange,
        location: Option<LocationId>,
        waiter: Option<UserId>,
    ) -> Result<SalesReport, ReportError> {
        let actor = self.users.actor(caller)?.ok_or(ReportError::ActorGone)?;
        let scope = actor.scope(Action::ReadReports, location)?;
        let span = match range {
            ReportRange::Instants { start, end } => (start, end),
            ReportRange::BusinessDates { .. } => {
                let settings: Vec<LocationSettings> =
                    self.locations.all(&scope)?.iter().map(|l| *l.settings()).collect();
                range.span(&settings)
            }
        };
        let mut products = self.reports.product_sales(&range, &scope, waiter)?;
        products.sort_by(|a, b| {
            b.total_quantity
                .cmp(&a.total_quantity)
                .then(b.total_price.cmp(&a.total_price))
                .then_with(|| a.product_name.cmp(&b.product_name))
                .then(a.menu_item_id.cmp(&b.menu_item_id))
        });
        let total_quantity = products.iter().map(|p| p.total_quantity).sum();
        let mut total_price: Decimal = products.iter().map(|p| p.total_price).sum();
        total_price.rescale(2);
        Ok(SalesReport { range, span, products, total_quantity, total_price })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_lag_covers_the_slowest_commit() {
        assert_eq!(rollup_lag(Duration::from_secs(1), Duration::from_secs(10)), chrono::TimeDelta::minutes(5));
        assert_eq!(rollup_lag(Duration::from_secs(60), Duration::from_secs(3600)), chrono::TimeDelta::minutes(63));
    }
}
