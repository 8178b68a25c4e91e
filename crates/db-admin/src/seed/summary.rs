//! What was loaded, counted while generating, and the summary printed at the end.

use std::time::Duration;

use rust_decimal::Decimal;

use domain::{Money, OrderStatus};

use super::STAFF_DOMAIN;
use super::times::timestamp;

/// Counts over what was generated.
#[derive(Debug, Default, Clone)]
pub(super) struct Stats {
    pub orders: u64,
    pub open: u64,
    pub partially_paid: u64,
    pub paid: u64,
    pub cancelled: u64,
    pub lines: u64,
    pub payments: u64,
    pub paid_cents: i64,
    pub first_us: Option<i64>,
    pub last_us: Option<i64>,
}

impl Stats {
    pub fn add(&mut self, other: &Stats) {
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

    /// One more order, created at `created_us`.
    pub fn order(&mut self, status: OrderStatus, lines: usize, paid_cents: i64, created_us: i64) {
        self.orders += 1;
        self.lines += lines as u64;
        self.paid_cents += paid_cents;
        match status {
            OrderStatus::Open => self.open += 1,
            OrderStatus::PartiallyPaid => self.partially_paid += 1,
            OrderStatus::Paid => self.paid += 1,
            OrderStatus::Cancelled => self.cancelled += 1,
        }
        self.first_us = Some(self.first_us.map_or(created_us, |f| f.min(created_us)));
        self.last_us = Some(self.last_us.map_or(created_us, |l| l.max(created_us)));
    }
}

pub(super) struct Summary<'a> {
    pub totals: &'a Stats,
    pub waiters: usize,
    /// Each location's name and time zone.
    pub locations: Vec<String>,
    /// The seeded staff of every role (waiters, then a manager and a kitchen display per
    /// location), and how many of them this run created.
    pub staff: usize,
    pub created: usize,
    pub products: usize,
    pub password: &'a str,
    pub seed_value: u64,
    pub skip_fk_checks: bool,
    pub load_time: Duration,
    pub analyze_time: Duration,
    pub total_time: Duration,
}

/// An amount of cents as the domain writes money (`1234.56`).
fn money_text(cents: i64) -> String {
    let amount = Decimal::new(cents, 2);
    Money::from_decimal(amount).map_or_else(|_| format!("{amount:.2}"), |money| money.to_string())
}

pub(super) fn print(s: &Summary<'_>) {
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
        "  orders:   {} {}, {} {}, {} {}, {} {}",
        OrderStatus::Paid.as_str(),
        t.paid,
        OrderStatus::PartiallyPaid.as_str(),
        t.partially_paid,
        OrderStatus::Open.as_str(),
        t.open,
        OrderStatus::Cancelled.as_str(),
        t.cancelled
    );
    println!("  lines:    {} ({:.2} per order)", t.lines, t.lines as f64 / t.orders.max(1) as f64);
    println!("  payments: {} totalling {}", t.payments, money_text(t.paid_cents));
    println!("  products: {} on the menu (the first ones sell the most)", s.products);
    let range = |us: Option<i64>| us.map_or_else(|| "-".to_owned(), |us| timestamp(us).to_rfc3339());
    println!("  dates:    {} to {} (UTC)", range(t.first_us), range(t.last_us));
    println!("  places:   {}", s.locations.join(", "));
    let reused = s.staff - s.created;
    let places = s.locations.len();
    println!(
        "  staff:    {} ({} created, {} reused): waiter1@{STAFF_DOMAIN} to waiter{}@{STAFF_DOMAIN}, \
         manager1 to manager{places}, kitchen1 to kitchen{places}",
        s.staff, s.created, reused, s.waiters
    );
    if s.created > 0 {
        println!(
            "            password of the staff created now: {}{}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_written_as_the_domain_writes_it() {
        assert_eq!(money_text(0), "0.00");
        assert_eq!(money_text(5), "0.05");
        assert_eq!(money_text(123_456), "1234.56");
    }
}
