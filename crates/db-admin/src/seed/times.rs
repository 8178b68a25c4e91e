//! When orders happen: a daily and weekly pattern over the seeded window.

use chrono::{DateTime, Datelike, Timelike, Utc};
use rand::Rng;

pub(super) const MICROS_PER_SECOND: i64 = 1_000_000;
pub(super) const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
pub(super) const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
pub(super) const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// Relative number of orders in each hour of the day (UTC): breakfast, a lunch peak, a dinner
/// peak, quiet nights.
const HOUR_WEIGHTS: [f64; 24] = [
    0.30, 0.10, 0.02, 0.02, 0.02, 0.02, 0.05, 0.40, 0.80, 0.90, 0.70, 0.60, 1.20, 2.50, 2.80, 1.80, 0.60, 0.50, 0.70,
    1.20, 2.20, 2.60, 1.80, 0.80,
];

/// Relative business by weekday, Monday first.
const WEEKDAY_WEIGHTS: [f64; 7] = [0.85, 0.95, 1.0, 1.05, 1.2, 1.35, 1.1];

/// The time `us` microseconds after the epoch.
pub(super) fn timestamp(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Order times in increasing order: the window split at whole hours, each piece given its share
/// of the orders by the daily and weekly pattern (cumulative rounding, so the counts add up
/// exactly), and times drawn uniformly inside a piece and sorted.
pub(super) struct TimeStream {
    /// (start, length, how many orders) of each piece, in time order.
    slots: Vec<(i64, i64, u64)>,
    next_slot: usize,
    pending: Vec<i64>,
    position: usize,
    fallback: i64,
}

impl TimeStream {
    pub fn new(start_us: i64, end_us: i64, orders: u64) -> Self {
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

    pub fn next(&mut self, rng: &mut impl Rng) -> i64 {
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

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

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
}
