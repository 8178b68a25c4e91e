//! Time as a port, so that tests can place orders on any day.

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock, truncated to microseconds (what PostgreSQL keeps), so that what a response
/// shows and what a later read returns are equal.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        now - chrono::Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos() % 1_000))
    }
}
