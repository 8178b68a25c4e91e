//! (d)'s verdict: what the clients were told, compared with what the API shows (each order, its
//! payments, the paged list) and with what the database holds.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Context, Result, anyhow};
use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use domain::Money;
use tokio::task::JoinSet;

use super::super::super::http::{Http, lo};
use super::super::super::report::Report;
use super::clients::{PlacedOrder, money, money_field};

/// What a client knows of one acknowledged order.
#[derive(Debug, Clone)]
pub struct Expected {
    pub id: String,
    pub total: Money,
    /// Acknowledged payments: (id, amount).
    pub acked: Vec<(String, Money)>,
    /// The amounts of payments sent without an acknowledgement (they may have been recorded).
    pub uncertain: Money,
    /// Payment requests sent for it.
    pub requests: usize,
}

impl Expected {
    pub fn of(order: &PlacedOrder) -> Result<Self> {
        let id = order.id.clone().context("an acknowledged order without id")?;
        let total = order.total.context("an acknowledged order without total")?;
        let mut acked = Vec::new();
        let mut uncertain = Money::ZERO;
        for p in &order.payments {
            if p.acked() {
                let pid = p.resource_id().context("an acknowledged payment without id")?.to_owned();
                acked.push((pid, money_field(&p.resource, "amount")?));
            } else {
                uncertain = uncertain.checked_add(money_field(&p.body, "amount")?)?;
            }
        }
        Ok(Self { id, total, acked, uncertain, requests: order.payments.len() })
    }

    /// (certainly paid, possibly paid).
    fn paid_bounds(&self) -> Result<(Money, Money)> {
        let sure = sum(self.acked.iter().map(|(_, amount)| *amount))?;
        Ok((sure, sure.checked_add(self.uncertain)?))
    }
}

fn sum(amounts: impl Iterator<Item = Money>) -> Result<Money> {
    amounts.into_iter().try_fold(Money::ZERO, |total, amount| total.checked_add(amount)).map_err(Into::into)
}

/// Reads each order and its payments through nginx (8 clients at once) as the admin; a problem
/// per order that is not exactly what its client was told.
pub async fn through_api(http: &Http, port: u16, admin: &str, orders: &[Expected]) -> Result<Vec<String>> {
    let mut tasks = JoinSet::new();
    for k in 0..8u8 {
        let mine: Vec<Expected> = orders.iter().skip(usize::from(k)).step_by(8).cloned().collect();
        let (http, admin) = (http.clone(), admin.to_owned());
        tasks.spawn(async move {
            let mut problems = Vec::new();
            for order in &mine {
                if let Some(problem) = read_order(&http, port, &admin, k, order).await? {
                    problems.push(problem);
                }
            }
            anyhow::Ok(problems)
        });
    }
    let mut problems = Vec::new();
    while let Some(done) = tasks.join_next().await {
        problems.extend(done.context("a verifying task failed")??);
    }
    Ok(problems)
}

async fn read_order(http: &Http, port: u16, admin: &str, k: u8, o: &Expected) -> Result<Option<String>> {
    let src = lo(0, 3, k + 1);
    let r = http.get(port, &format!("/api/v1/orders/{}", o.id)).from(src).bearer(admin).send().await?;
    let pr = http.get(port, &format!("/api/v1/orders/{}/payments", o.id)).from(src).bearer(admin).send().await?;
    if r.status != 200 || pr.status != 200 {
        return Ok(Some(format!("{}: GET answered {}/{}", o.id, r.status, pr.status)));
    }
    let body = r.json()?;
    let pays = pr.json()?;
    let pays = pays.get("items").unwrap_or(&pays).as_array().cloned().unwrap_or_default();
    let (total, paid, due) =
        (money_field(&body, "total_price")?, money_field(&body, "amount_paid")?, money_field(&body, "balance_due")?);
    let mut ids: HashMap<String, usize> = HashMap::new();
    for p in &pays {
        *ids.entry(p["id"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    let listed_sum = sum(pays.iter().map(|p| money_field(p, "amount")).collect::<Result<Vec<_>>>()?.into_iter())?;
    let (sure, maybe) = o.paid_bounds()?;
    let id = &o.id;
    let problem = if total != o.total {
        Some(format!("{id}: total {total} != acknowledged {}", o.total))
    } else if paid > total || total.checked_sub(paid) != Some(due) {
        Some(format!("{id}: amount_paid {paid}, balance_due {due}, total {total}"))
    } else if listed_sum != paid {
        Some(format!("{id}: amount_paid {paid} is not the sum of its payments"))
    } else if o.acked.iter().any(|(pid, _)| ids.get(pid) != Some(&1)) {
        Some(format!("{id}: acknowledged payments not listed exactly once: {ids:?}"))
    } else if ids.values().any(|&n| n != 1) {
        Some(format!("{id}: a payment is listed twice"))
    } else if !(sure <= paid && paid <= maybe) {
        Some(format!("{id}: amount_paid {paid} outside what the client sent ({sure} to {maybe})"))
    } else if ids.len() > o.requests {
        Some(format!("{id}: {} payments for {} requests", ids.len(), o.requests))
    } else {
        let want = if paid == total {
            "paid"
        } else if paid > Money::ZERO {
            "partially_paid"
        } else {
            "open"
        };
        let status = body["status"].as_str().unwrap_or("-");
        (status != want).then(|| format!("{id}: status {status} with {paid} of {total} paid"))
    };
    Ok(problem)
}

/// Every order of these waiters, page by page (a cursor made by one replica read by another):
/// how often each id was listed, and the number of pages.
pub async fn listed(
    http: &Http,
    port: u16,
    admin: &str,
    waiters: &[String],
) -> Result<(HashMap<String, usize>, usize)> {
    let mut listed: HashMap<String, usize> = HashMap::new();
    let mut pages = 0;
    for waiter in waiters {
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/orders?waiter_id={waiter}&limit=100");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let r = http.get(port, &path).from(lo(0, 2, 100)).bearer(admin).send().await?;
            if r.status != 200 {
                return Err(anyhow!("listing orders answered {}: {}", r.status, r.body_text(200)));
            }
            let page = r.json()?;
            pages += 1;
            for item in page["items"].as_array().map(Vec::as_slice).unwrap_or_default() {
                *listed.entry(item["id"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
            }
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
    }
    Ok((listed, pages))
}

#[derive(Debug, QueryableByName)]
struct OrderRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    total_price: String,
    #[diesel(sql_type = Text)]
    amount_paid: String,
    #[diesel(sql_type = Text)]
    status: String,
}

#[derive(Debug, QueryableByName)]
struct PaymentRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    order_id: String,
    #[diesel(sql_type = Text)]
    amount: String,
}

#[derive(Debug, QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Text)]
    resource_id: String,
}

/// What the database holds for the test's waiters.
#[derive(Debug, Default)]
pub struct Stored {
    /// id -> (total_price, amount_paid, status).
    pub orders: BTreeMap<String, (Money, Money, String)>,
    /// (id, order id, amount).
    pub payments: Vec<(String, String, Money)>,
    /// (key, resource id).
    pub keys: Vec<(String, String)>,
}

/// Reads the orders, payments and idempotency keys of `waiters` (blocking: on a thread of its
/// own).
pub async fn stored(url: String, waiters: Vec<String>) -> Result<Stored> {
    tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&url).context("connecting to the topology's database")?;
        let orders: Vec<OrderRow> = diesel::sql_query(
            "SELECT id::text AS id, total_price::text AS total_price, amount_paid::text AS amount_paid, status \
             FROM orders WHERE waiter_id = ANY($1::uuid[])",
        )
        .bind::<Array<Text>, _>(&waiters)
        .load(&mut conn)
        .context("reading the orders")?;
        let payments: Vec<PaymentRow> = diesel::sql_query(
            "SELECT p.id::text AS id, p.order_id::text AS order_id, p.amount::text AS amount \
             FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.waiter_id = ANY($1::uuid[])",
        )
        .bind::<Array<Text>, _>(&waiters)
        .load(&mut conn)
        .context("reading the payments")?;
        let keys: Vec<KeyRow> = diesel::sql_query(
            "SELECT key, resource_id::text AS resource_id FROM idempotency_keys WHERE user_id = ANY($1::uuid[])",
        )
        .bind::<Array<Text>, _>(&waiters)
        .load(&mut conn)
        .context("reading the idempotency keys")?;
        let mut stored = Stored::default();
        for row in orders {
            stored.orders.insert(row.id, (money(&row.total_price)?, money(&row.amount_paid)?, row.status));
        }
        for row in payments {
            stored.payments.push((row.id, row.order_id, money(&row.amount)?));
        }
        stored.keys = keys.into_iter().map(|row| (row.key, row.resource_id)).collect();
        Ok(stored)
    })
    .await
    .context("the database reader failed")?
}

/// The database's side of (d).
pub fn in_database(rep: &mut Report, run: &str, db: &Stored, acked: &[&PlacedOrder], uncertain: usize) -> Result<()> {
    let acked_ids: HashSet<&str> = acked.iter().filter_map(|o| o.id.as_deref()).collect();
    let db_ids: HashSet<&str> = db.orders.keys().map(String::as_str).collect();
    rep.check(
        db_ids == acked_ids,
        "(d)",
        format!(
            "database: {} orders for the test's waiters = the {} acknowledged ones, none missing, none extra",
            db_ids.len(),
            acked_ids.len()
        ),
    );
    let order_keys: HashMap<&str, &str> = db
        .keys
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("order-{run}-")))
        .map(|(k, r)| (k.as_str(), r.as_str()))
        .collect();
    let pay_keys: HashMap<&str, &str> = db
        .keys
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("pay-{run}-")))
        .map(|(k, r)| (k.as_str(), r.as_str()))
        .collect();
    let acked_keys: HashSet<&str> = acked.iter().map(|o| o.op.key.as_str()).collect();
    let keys_name_orders = acked.iter().all(|o| order_keys.get(o.op.key.as_str()).copied() == o.id.as_deref());
    rep.check(
        order_keys.len() == db.orders.len() && db.orders.len() == acked_keys.len() && keys_name_orders,
        "(d)",
        format!(
            "database: {} order idempotency keys = {} orders = {} distinct acknowledged keys, each key naming its acknowledged order",
            order_keys.len(),
            db.orders.len(),
            acked_keys.len()
        ),
    );

    let acked_pays: HashSet<&str> =
        acked.iter().flat_map(|o| o.payments.iter()).filter(|p| p.acked()).filter_map(|p| p.resource_id()).collect();
    let mut db_pays: HashMap<&str, usize> = HashMap::new();
    for (id, _, _) in &db.payments {
        *db_pays.entry(id.as_str()).or_default() += 1;
    }
    let extra = db_pays.keys().filter(|id| !acked_pays.contains(*id)).count();
    let others = if uncertain > 0 {
        format!(", {extra} more from {uncertain} requests without an acknowledgement")
    } else {
        ", no other".to_owned()
    };
    rep.check(
        acked_pays.iter().all(|id| db_pays.contains_key(id)) && db_pays.values().all(|&n| n == 1) && extra <= uncertain,
        "(d)",
        format!(
            "database: {} payments; the {} acknowledged ones each exactly once{others}",
            db_pays.len(),
            acked_pays.len()
        ),
    );
    let keyed: HashSet<&str> = pay_keys.values().copied().collect();
    let paid_ids: HashSet<&str> = db_pays.keys().copied().collect();
    rep.check(
        pay_keys.len() == db_pays.len() && keyed == paid_ids,
        "(d)",
        format!(
            "database: every payment has its own idempotency key ({} keys, {} payments): no payment was recorded twice for one request",
            pay_keys.len(),
            db_pays.len()
        ),
    );

    let mut sums: HashMap<&str, Money> = HashMap::new();
    for (_, order_id, amount) in &db.payments {
        let entry = sums.entry(order_id.as_str()).or_insert(Money::ZERO);
        *entry = entry.checked_add(*amount)?;
    }
    let overpaid = db.orders.values().filter(|(total, paid, _)| paid > total).count();
    let mismatched = db
        .orders
        .iter()
        .filter(|(id, (_, paid, _))| sums.get(id.as_str()).copied().unwrap_or(Money::ZERO) != *paid)
        .count();
    rep.check(
        overpaid == 0 && mismatched == 0,
        "(d)",
        format!(
            "database: no order has amount_paid > total_price ({overpaid}), and amount_paid = the sum of its payments for every order ({mismatched} differ)"
        ),
    );
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, status) in db.orders.values() {
        *statuses.entry(status.as_str()).or_default() += 1;
    }
    let shown: Vec<String> = statuses.iter().map(|(s, n)| format!("{s} {n}")).collect();
    rep.info(format!("database: order statuses {}", shown.join(", ")));
    Ok(())
}
