//! The orders: their lines, where they stand, their payments and their customers, generated
//! into batches for the loaders.

use std::ops::Range;

use crossbeam_channel::Sender;
use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use domain::{LocationId, OrderStatus, PaymentMethod};

use super::BATCH_ORDERS;
use super::customers::Customers;
use super::draw::{cumulative, pick, pick_weighted, uuid_v7};
use super::locations::Calendar;
use super::menu::Menu;
use super::rows::{Batch, NewOrderItemRow, NewOrderRow, NewPaymentRow, money};
use super::times::{MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE, TimeStream, timestamp};

/// At most this many lines per order (fewer when the menu is smaller).
const MAX_LINES: usize = 8;
/// Lines per order: 1 to 8, percent.
const LINE_WEIGHTS: [u32; MAX_LINES] = [14, 20, 20, 16, 12, 8, 6, 4];
/// Quantity per line: 1 to 6, per thousand.
const QUANTITY_WEIGHTS: [u32; 6] = [620, 240, 80, 30, 15, 15];
/// 2^64 / golden ratio: spreads consecutive numbers over the seed space.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
/// The share of orders that also carry one open line (typed by the waiter, off the menu).
const OPEN_LINE_SHARE: f64 = 0.05;
/// The share of menu lines with a note for the kitchen, and the notes.
const NOTE_SHARE: f64 = 0.08;
const NOTES: [&str; 5] = ["sin cebolla", "poco hecho", "sin hielo", "para compartir", "sin picante"];

pub(super) struct Generator<'a> {
    /// Each order's content (lines, status, payments, customer) comes from a generator seeded
    /// with this and the order's number, so it does not depend on the time of the run.
    seed: u64,
    index: u64,
    /// The order times.
    time_rng: StdRng,
    id_rng: SmallRng,
    menu: &'a Menu,
    customers: &'a Customers,
    /// Each waiter and the calendar (in `calendars`) of the location they work in.
    waiters: Vec<(Uuid, usize)>,
    waiter_cdf: Vec<f64>,
    calendars: Vec<Calendar>,
    times: TimeStream,
    end_us: i64,
    remaining: u64,
}

impl<'a> Generator<'a> {
    /// `orders` orders in the `window` of time (microseconds since the epoch) by these
    /// waiters, each given a share of the orders drawn from `rng`, each order placed in its
    /// waiter's location (one of `calendars`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        seed: u64,
        rng: &mut impl Rng,
        window: Range<i64>,
        orders: u64,
        menu: &'a Menu,
        customers: &'a Customers,
        waiters: &[(Uuid, LocationId)],
        calendars: Vec<Calendar>,
    ) -> Self {
        let waiter_weights: Vec<f64> = waiters.iter().map(|_| rng.random_range(0.6..1.4)).collect();
        let waiters = waiters
            .iter()
            .map(|(id, location)| (*id, calendars.iter().position(|c| c.id() == *location).unwrap_or(0)))
            .collect();
        Self {
            seed,
            index: 0,
            time_rng: StdRng::seed_from_u64(seed ^ 0x005E_ED0F_71E5),
            // Ids take their random bits from a generator of their own, seeded with the time
            // too: the same seed value makes the same data, and running it again adds new
            // orders instead of colliding with the first run's ids.
            id_rng: SmallRng::seed_from_u64(seed.wrapping_mul(GOLDEN) ^ window.end.unsigned_abs()),
            menu,
            customers,
            waiters,
            waiter_cdf: cumulative(&waiter_weights),
            calendars,
            times: TimeStream::new(window.start, window.end, orders),
            end_us: window.end,
            remaining: orders,
        }
    }

    /// Sends batches until every order is made, or until no loader is left.
    pub fn run(mut self, batches: &Sender<Batch<'a>>) {
        while self.remaining > 0 {
            let n = self.remaining.min(BATCH_ORDERS);
            let batch = self.batch(n);
            self.remaining -= n;
            if batches.send(batch).is_err() {
                // Every loader stopped (they report why).
                return;
            }
        }
    }

    fn batch(&mut self, n: u64) -> Batch<'a> {
        let n_usize = usize::try_from(n).unwrap_or(0);
        let mut batch = Batch {
            orders: Vec::with_capacity(n_usize),
            items: Vec::with_capacity(n_usize * 4),
            payments: Vec::with_capacity(n_usize * 6 / 5),
            ..Batch::default()
        };
        for _ in 0..n {
            self.order(&mut batch);
        }
        batch
    }

    fn order(&mut self, batch: &mut Batch<'a>) {
        let rng = &mut SmallRng::seed_from_u64(self.seed ^ self.index.wrapping_mul(GOLDEN));
        self.index += 1;
        let id_rng = &mut self.id_rng;
        let created = self.times.next(&mut self.time_rng);
        let id = uuid_v7(created, id_rng);
        let (waiter, calendar) = self.waiters[pick(&self.waiter_cdf, rng)];
        let location = &mut self.calendars[calendar];
        let (location_id, business_date) = (location.id().0, location.date(created));

        // The lines: distinct products, the popular ones more often.
        let menu = self.menu;
        let products = menu.products.len();
        let wanted = pick_weighted(&LINE_WEIGHTS, rng).min(products);
        let mut chosen = [0usize; MAX_LINES];
        let mut count = 0;
        let mut attempts = 0;
        while count < wanted {
            let p = if attempts < 64 { pick(&menu.cdf, rng) } else { rng.random_range(0..products) };
            attempts += 1;
            if !chosen[..count].contains(&p) {
                chosen[count] = p;
                count += 1;
            }
        }
        let mut total = 0i64;
        for (line_no, &p) in chosen[..count].iter().enumerate() {
            let product = &menu.products[p];
            let quantity = pick_weighted(&QUANTITY_WEIGHTS, rng) as i64;
            let subtotal = product.price_cents * quantity;
            total += subtotal;
            // A menu line once the menu is stored (an unstored menu makes open lines, as
            // before the menu existed).
            let item = product.item.as_ref();
            batch.items.push(NewOrderItemRow {
                order_id: id,
                line_no: line_no as i16 + 1,
                product_key: item.map_or(&product.key, |i| &i.key),
                product_name: &product.name,
                unit_price: money(product.price_cents),
                quantity: quantity as i32,
                subtotal: money(subtotal),
                menu_item_id: item.map(|i| i.id),
                category_id: item.map(|i| i.category_id),
                category: item.map(|_| menu.category_of(product)),
                note: rng.random_bool(NOTE_SHARE).then(|| NOTES[rng.random_range(0..NOTES.len())]),
            });
        }
        if rng.random_bool(OPEN_LINE_SHARE) {
            let open = &menu.off_menu[rng.random_range(0..menu.off_menu.len())];
            let price = rng.random_range(open.lowest..=open.highest) / 10 * 10;
            total += price;
            batch.items.push(NewOrderItemRow {
                order_id: id,
                line_no: count as i16 + 1,
                product_key: &open.key,
                product_name: open.name,
                unit_price: money(price),
                quantity: 1,
                subtotal: money(price),
                menu_item_id: None,
                category_id: None,
                category: None,
                note: None,
            });
            count += 1;
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
        let mut pay =
            |amount: i64, at: i64, rng: &mut SmallRng| push_payment(batch, id, waiter, amount, at, rng, id_rng);
        // Every change makes a version: a cancel, each payment.
        let (amount_paid, updated, version) = match status {
            OrderStatus::Open => (0, created, 1),
            OrderStatus::Cancelled => {
                let at = created + rng.random_range(MICROS_PER_MINUTE..20 * MICROS_PER_MINUTE);
                (0, at.min(latest), 2)
            }
            OrderStatus::PartiallyPaid => {
                let amount = part_of(total, rng);
                let at = payment_time(created, latest, rng);
                pay(amount, at, rng);
                (amount, at, 2)
            }
            OrderStatus::Paid => {
                let at = payment_time(created, latest, rng);
                if total >= 2 && rng.random_bool(0.2) {
                    // Split between two people (or two cards): the parts add up exactly.
                    let first = part_of(total, rng);
                    pay(first, at, rng);
                    let second_at = (at + rng.random_range(0..3 * MICROS_PER_MINUTE)).min(latest);
                    pay(total - first, second_at, rng);
                    (total, second_at, 3)
                } else {
                    pay(total, at, rng);
                    (total, at, 2)
                }
            }
        };

        batch.orders.push(NewOrderRow {
            id,
            customer_name: self.customers.pick(rng),
            waiter_id: waiter,
            status: status.as_str(),
            total_price: money(total),
            amount_paid: money(amount_paid),
            created_at: timestamp(created),
            updated_at: timestamp(updated),
            location_id,
            business_date,
            version,
        });
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
    batch: &mut Batch<'_>,
    order_id: Uuid,
    waiter: Uuid,
    amount: i64,
    at: i64,
    rng: &mut impl Rng,
    id_rng: &mut impl Rng,
) {
    let id = uuid_v7(at, id_rng);
    let u: f64 = rng.random();
    let method = if u < 0.62 {
        PaymentMethod::Card
    } else if u < 0.95 {
        PaymentMethod::Cash
    } else {
        PaymentMethod::Other
    };
    batch.payments.push(NewPaymentRow {
        id,
        order_id,
        amount: money(amount),
        method: method.as_str(),
        recorded_by: waiter,
        created_at: timestamp(at),
    });
    batch.stats.payments += 1;
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rust_decimal::Decimal;

    use super::super::words::Words;
    use super::*;

    #[test]
    fn batches_hold_consistent_orders_and_the_generator_stops_when_no_loader_is_left() {
        let words = Words::load().unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let menu = Menu::build(&mut rng, 50, &words).unwrap();
        let customers = Customers::new(&words.first_names, &words.last_names);
        let end = 1_800_000_000_000_000;
        let name = |n: &str| domain::LocationName::parse(n).unwrap();
        let at = super::super::times::timestamp(end);
        let here = domain::Location::new(LocationId(Uuid::from_u128(10)), name("A"), Default::default(), at);
        let tokyo = domain::LocationSettings {
            time_zone: domain::TimeZone::parse("Asia/Tokyo").unwrap(),
            ..Default::default()
        };
        let there = domain::Location::new(LocationId(Uuid::from_u128(11)), name("B"), tokyo, at);
        let waiters = [(Uuid::from_u128(1), here.id()), (Uuid::from_u128(2), there.id())];
        let locations = [here.clone(), there.clone()];
        let calendars = vec![Calendar::new(here), Calendar::new(there)];
        let orders = 3 * BATCH_ORDERS;
        let window = end - 3 * MICROS_PER_DAY..end;
        let generator = Generator::new(7, &mut rng, window, orders, &menu, &customers, &waiters, calendars);
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::scope(|scope| {
            let producer = scope.spawn(move || generator.run(&tx));
            let batch = rx.recv().unwrap();
            assert_eq!(batch.orders.len() as u64, BATCH_ORDERS);
            assert_eq!(batch.stats.orders, BATCH_ORDERS);
            assert_eq!(batch.stats.lines, batch.items.len() as u64);
            let mut totals: HashMap<Uuid, Decimal> = HashMap::new();
            for item in &batch.items {
                assert_eq!(item.subtotal, item.unit_price * Decimal::from(item.quantity));
                *totals.entry(item.order_id).or_default() += item.subtotal;
            }
            let mut paid: HashMap<Uuid, Decimal> = HashMap::new();
            for payment in &batch.payments {
                *paid.entry(payment.order_id).or_default() += payment.amount;
            }
            for order in &batch.orders {
                assert_eq!(totals[&order.id], order.total_price);
                assert_eq!(paid.get(&order.id).copied().unwrap_or_default(), order.amount_paid);
                let status = OrderStatus::parse(order.status).unwrap();
                let expected = match status {
                    OrderStatus::Open | OrderStatus::Cancelled => order.amount_paid.is_zero(),
                    OrderStatus::PartiallyPaid => !order.amount_paid.is_zero() && order.amount_paid < order.total_price,
                    OrderStatus::Paid => order.amount_paid == order.total_price,
                };
                assert!(expected, "{order:?}");
                assert!(order.created_at <= order.updated_at && order.updated_at.timestamp_micros() < end);
                // In its waiter's location, on that location's business date.
                let (_, location) = waiters.iter().find(|(w, _)| *w == order.waiter_id).unwrap();
                let location = locations.iter().find(|l| l.id() == *location).unwrap();
                assert_eq!(order.location_id, location.id().0);
                assert_eq!(order.business_date, location.business_date(order.created_at));
            }
            // The loaders are gone: the generator's next send fails and it returns.
            drop(rx);
            producer.join().unwrap();
        });
    }
}
