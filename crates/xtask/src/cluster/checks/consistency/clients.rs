//! (d)'s clients: each creates orders and pays them (in full, in two parts, or half), every
//! request with its own Idempotency-Key and retried with the same key and body after connection
//! errors and 502/503/504, as a careful client would; and sends some acknowledged requests again
//! on purpose, as a client that lost the answer would.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use domain::{Money, MoneyError};
use serde_json::{Value, json};

use super::super::super::http::{Http, lo};

pub const RETRYABLE: [u16; 3] = [502, 503, 504];

/// An amount as the API writes it ("12.50", "0.00").
pub fn money(raw: &str) -> Result<Money> {
    match Money::parse_positive(raw, Money::MAX) {
        Ok(amount) => Ok(amount),
        Err(MoneyError::NotPositive) if !raw.starts_with('-') => Ok(Money::ZERO),
        Err(e) => Err(anyhow!("{raw:?} is not an amount: {e}")),
    }
}

/// The amount of a JSON field holding one.
pub fn money_field(value: &Value, field: &str) -> Result<Money> {
    money(value[field].as_str().ok_or_else(|| anyhow!("no amount {field} in {value}"))?)
}

fn cents(amount: Money) -> i64 {
    // Money keeps exactly two decimal places: its mantissa is in cents.
    i64::try_from(amount.amount().mantissa()).unwrap_or(i64::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Order,
    Payment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Pending,
    /// 201.
    Acked,
    /// Still no 201 at the retry deadline.
    GaveUp,
    /// 409 after a retry: the first attempt may have been recorded (checked in the database).
    RefusedAfterRetry,
    /// Any other answer.
    Error,
}

/// One logical request (an order or a payment), retried with the same key and body.
#[derive(Debug, Clone)]
pub struct Op {
    pub kind: Kind,
    pub key: String,
    pub body: Value,
    pub attempts: u32,
    pub outcome: Outcome,
    pub replayed: bool,
    /// The answer's body (201 or 409), or what was unexpected.
    pub resource: Value,
    pub retry_reasons: Vec<String>,
}

impl Op {
    fn new(kind: Kind, key: String, body: Value) -> Self {
        Self {
            kind,
            key,
            body,
            attempts: 0,
            outcome: Outcome::Pending,
            replayed: false,
            resource: Value::Null,
            retry_reasons: Vec::new(),
        }
    }

    pub fn acked(&self) -> bool {
        self.outcome == Outcome::Acked
    }

    pub fn resource_id(&self) -> Option<&str> {
        self.resource["id"].as_str()
    }
}

/// An order a client placed, with the payments it sent for it.
#[derive(Debug, Clone)]
pub struct PlacedOrder {
    pub op: Op,
    pub id: Option<String>,
    pub total: Option<Money>,
    pub payments: Vec<Op>,
}

/// An acknowledged request sent again on purpose.
#[derive(Debug, Clone)]
pub struct Repeat {
    pub kind: Kind,
    /// Answered with the first resource (or not answered at all, which proves nothing).
    pub same: bool,
    pub detail: String,
}

/// What one client did.
#[derive(Debug, Default)]
pub struct ClientLog {
    pub orders: Vec<PlacedOrder>,
    pub repeats: Vec<Repeat>,
}

/// One client's part.
#[derive(Debug, Clone)]
pub struct Client {
    pub http: Http,
    pub port: u16,
    pub index: usize,
    pub token: String,
    pub run: String,
    pub until: Instant,
    pub deadline: Duration,
    /// Orders started by all clients so far.
    pub started: Arc<AtomicUsize>,
}

const PRODUCTS: [&str; 6] = ["Café", "Tostada", "Zumo", "Croissant", "Agua", "Bocadillo"];
const METHODS: [&str; 3] = ["cash", "card", "other"];

#[derive(Debug, Clone, Copy)]
enum Plan {
    Full,
    Split,
    Partial,
}

impl Client {
    fn source(&self) -> Ipv4Addr {
        lo(0, 1, u8::try_from(self.index + 1).unwrap_or(u8::MAX))
    }

    pub async fn run(self) -> ClientLog {
        let mut log = ClientLog::default();
        let mut rnd = Rng::new(&format!("{}-{}", self.run, self.index));
        let mut n = 0;
        while Instant::now() < self.until {
            n += 1;
            let items: Vec<Value> = (0..rnd.range(1, 3))
                .map(|k| {
                    json!({
                        "product_name": format!("{} {k}", rnd.choice(&PRODUCTS)),
                        "unit_price": format_cents(rnd.range(1, 2500)),
                        "quantity": rnd.range(1, 4),
                    })
                })
                .collect();
            let key = format!("order-{}-{}-{n}", self.run, self.index);
            let body = json!({"customer_name": format!("Mesa {}-{n}", self.index), "items": items});
            let mut op = Op::new(Kind::Order, key, body);
            let plan = *rnd.choice(&[Plan::Full, Plan::Split, Plan::Split, Plan::Partial]);
            self.started.fetch_add(1, Ordering::Relaxed);
            self.send_with_retry("/api/v1/orders", &mut op).await;
            let id = op.resource_id().map(str::to_owned).filter(|_| op.acked());
            let total = money_field(&op.resource, "total_price").ok();
            let mut placed = PlacedOrder { op, id: id.clone(), total, payments: Vec::new() };
            let (Some(id), Some(total)) = (id, total) else {
                if placed.op.acked() {
                    // A 201 without an id or a total is no acknowledgement.
                    placed.op.outcome = Outcome::Error;
                }
                log.orders.push(placed);
                continue;
            };
            if n % 5 == 0 {
                log.repeats.push(self.repeat("/api/v1/orders", &placed.op).await);
            }
            let total = cents(total);
            let amounts = match plan {
                _ if total < 2 => vec![total],
                Plan::Full => vec![total],
                Plan::Split => {
                    let first = rnd.range(1, total - 1);
                    vec![first, total - first]
                }
                Plan::Partial => vec![total / 2],
            };
            let path = format!("/api/v1/orders/{id}/payments");
            for (k, amount) in amounts.into_iter().enumerate() {
                let key = format!("pay-{}-{}-{n}-{}", self.run, self.index, k + 1);
                let body = json!({"amount": format_cents(amount), "method": rnd.choice(&METHODS)});
                let mut pay = Op::new(Kind::Payment, key, body);
                self.send_with_retry(&path, &mut pay).await;
                let acked = pay.acked();
                if acked && n % 5 == 1 {
                    log.repeats.push(self.repeat(&path, &pay).await);
                }
                placed.payments.push(pay);
                if !acked {
                    break;
                }
            }
            log.orders.push(placed);
        }
        log
    }

    async fn send_with_retry(&self, path: &str, op: &mut Op) {
        let give_up = Instant::now() + self.deadline;
        let mut jitter = Rng::new(&op.key);
        loop {
            op.attempts += 1;
            let answer = self
                .http
                .post(self.port, path)
                .from(self.source())
                .bearer(&self.token)
                .header("idempotency-key", &op.key)
                .json(&op.body)
                .send()
                .await;
            let reason = match answer {
                Err(failure) => failure.to_string(),
                Ok(r) if r.status == 201 => {
                    op.outcome = Outcome::Acked;
                    op.replayed = r.header("idempotent-replayed") == Some("true");
                    op.resource = r.json().unwrap_or(Value::Null);
                    return;
                }
                Ok(r) if RETRYABLE.contains(&r.status) => r.status.to_string(),
                Ok(r) if r.status == 409 && op.attempts > 1 => {
                    // After a retry, a conflict ("above the balance due", "already paid") says
                    // the first attempt may have been recorded: checked in the database.
                    op.outcome = Outcome::RefusedAfterRetry;
                    op.resource = r.json().unwrap_or(Value::Null);
                    return;
                }
                Ok(r) => {
                    op.outcome = Outcome::Error;
                    op.resource = json!({"status": r.status, "body": r.body_text(300)});
                    return;
                }
            };
            op.retry_reasons.push(reason);
            if Instant::now() > give_up {
                op.outcome = Outcome::GaveUp;
                return;
            }
            let pause = 100 + jitter.range(0, 200);
            tokio::time::sleep(Duration::from_millis(u64::try_from(pause).unwrap_or(100))).await;
        }
    }

    /// Sends an acknowledged request again: it must be answered with the first resource
    /// (Idempotent-Replayed: true) and create nothing.
    async fn repeat(&self, path: &str, op: &Op) -> Repeat {
        let answer = self
            .http
            .post(self.port, path)
            .from(self.source())
            .bearer(&self.token)
            .header("idempotency-key", &op.key)
            .json(&op.body)
            .send()
            .await;
        let kind = op.kind;
        match answer {
            // A lost repeat proves nothing either way.
            Err(failure) => Repeat { kind, same: true, detail: format!("not answered: {failure}") },
            Ok(r) if RETRYABLE.contains(&r.status) => Repeat { kind, same: true, detail: r.status.to_string() },
            Ok(r) => {
                let replayed = r.header_or_dash("idempotent-replayed");
                let same_id =
                    r.json().ok().is_some_and(|v| v["id"].as_str().is_some() && v["id"].as_str() == op.resource_id());
                Repeat {
                    kind,
                    same: r.status == 201 && replayed == "true" && same_id,
                    detail: format!("{} replayed={replayed}", r.status),
                }
            }
        }
    }
}

/// `1234` as `12.34`.
fn format_cents(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A small deterministic generator (SplitMix64) seeded from a name, so that a run's orders
/// follow from its id.
struct Rng(u64);

impl Rng {
    fn new(seed: &str) -> Self {
        // FNV-1a of the name.
        Self(seed.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number from `low` to `high`, both included.
    fn range(&mut self, low: i64, high: i64) -> i64 {
        let span = u64::try_from(high - low + 1).unwrap_or(1).max(1);
        low + i64::try_from(self.next() % span).unwrap_or(0)
    }

    fn choice<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = usize::try_from(self.next() % items.len() as u64).unwrap_or(0);
        &items[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_and_written_in_cents() {
        assert_eq!(cents(money("12.50").unwrap()), 1250);
        assert_eq!(cents(money("0.00").unwrap()), 0);
        assert_eq!(format_cents(1205), "12.05");
        assert_eq!(format_cents(7), "0.07");
        assert!(money("-1.00").is_err());
    }

    #[test]
    fn the_generator_stays_in_range() {
        let mut rnd = Rng::new("x");
        for _ in 0..1000 {
            let n = rnd.range(1, 3);
            assert!((1..=3).contains(&n));
        }
    }
}
