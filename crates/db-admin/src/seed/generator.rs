//! The orders: their lines, where they stand, their payments and their customers, generated
//! into batches for the loaders.

use crossbeam_channel::Sender;
use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, SeedableRng};

use domain::{OrderStatus, PaymentMethod};

use super::copy::{hyphenated, push_money, push_timestamp, push_u64};
use super::draw::{pick, pick_weighted, uuid_v7};
use super::menu::Menu;
use super::summary::Stats;
use super::times::{MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE, TimeStream};

/// At most this many lines per order (fewer when the menu is smaller).
const MAX_LINES: usize = 8;
/// Lines per order: 1 to 8, percent.
const LINE_WEIGHTS: [u32; MAX_LINES] = [14, 20, 20, 16, 12, 8, 6, 4];
/// Quantity per line: 1 to 6, per thousand.
const QUANTITY_WEIGHTS: [u32; 6] = [620, 240, 80, 30, 15, 15];
/// 2^64 / golden ratio: spreads consecutive numbers over the seed space.
pub(super) const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// One batch of COPY text (tab-separated, PostgreSQL's text format) for each table.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub orders: Vec<u8>,
    pub items: Vec<u8>,
    pub payments: Vec<u8>,
    pub stats: Stats,
}

pub(super) struct Generator {
    /// Each order's content (lines, status, payments, customer) comes from a generator seeded
    /// with this and the order's number, so it does not depend on the time of the run.
    pub seed: u64,
    pub index: u64,
    /// The order times.
    pub time_rng: StdRng,
    pub id_rng: SmallRng,
    pub menu: Menu,
    /// Hyphenated ids, ready to write.
    pub waiters: Vec<[u8; 36]>,
    pub waiter_cdf: Vec<f64>,
    pub first_names: Vec<&'static str>,
    pub last_names: Vec<&'static str>,
    pub times: TimeStream,
    pub end_us: i64,
    pub remaining: u64,
    pub batch_orders: u64,
}

impl Generator {
    /// Sends batches until every order is made, or until no loader is left.
    pub fn run(mut self, batches: &Sender<Batch>) {
        while self.remaining > 0 {
            let n = self.remaining.min(self.batch_orders);
            let batch = self.batch(n);
            self.remaining -= n;
            if batches.send(batch).is_err() {
                // Every loader stopped (they report why).
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
            OrderStatus::Cancelled
        } else if u < 0.03 + open {
            OrderStatus::Open
        } else if u < 0.03 + open + partial {
            OrderStatus::PartiallyPaid
        } else {
            OrderStatus::Paid
        };
        let latest = self.end_us - 1;
        let (amount_paid, updated) = match status {
            OrderStatus::Open => (0, created),
            OrderStatus::Cancelled => {
                let at = created + rng.random_range(MICROS_PER_MINUTE..20 * MICROS_PER_MINUTE);
                (0, at.min(latest))
            }
            OrderStatus::PartiallyPaid => {
                let amount = part_of(total, rng);
                let at = payment_time(created, latest, rng);
                push_payment(batch, &id, &waiter, amount, at, rng, id_rng);
                (amount, at)
            }
            OrderStatus::Paid => {
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
        push_customer(out, rng, &self.first_names, &self.last_names);
        out.push(b'\t');
        out.extend_from_slice(&waiter);
        out.push(b'\t');
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b'\t');
        push_money(out, total);
        out.push(b'\t');
        push_money(out, amount_paid);
        out.push(b'\t');
        push_timestamp(out, created);
        out.push(b'\t');
        push_timestamp(out, updated);
        out.push(b'\n');

        batch.stats.order(status, count, amount_paid, created);
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
    let method = if u < 0.62 {
        PaymentMethod::Card
    } else if u < 0.95 {
        PaymentMethod::Cash
    } else {
        PaymentMethod::Other
    };
    let out = &mut batch.payments;
    out.extend_from_slice(&id);
    out.push(b'\t');
    out.extend_from_slice(order_id);
    out.push(b'\t');
    push_money(out, amount);
    out.push(b'\t');
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b'\t');
    out.extend_from_slice(waiter);
    out.push(b'\t');
    push_timestamp(out, at);
    out.push(b'\n');
    batch.stats.payments += 1;
}

/// A table, the bar, the terrace, or a person's name. Written as they are, without
/// `CustomerName::parse` (which normalizes Unicode: too slow for every order): the words'
/// tests check that the domain would keep each of these names unchanged and that none needs
/// escaping for COPY.
fn push_customer(out: &mut Vec<u8>, rng: &mut impl Rng, first_names: &[&str], last_names: &[&str]) {
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
            out.extend_from_slice(first_names[rng.random_range(0..first_names.len())].as_bytes());
            out.push(b' ');
            out.extend_from_slice(last_names[rng.random_range(0..last_names.len())].as_bytes());
        }
    }
}
