//! `OrderRepository` on PostgreSQL. Placing an order is one statement: one round trip, one
//! commit, the idempotency key included.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use application::{
    Changed, Fingerprint, IdempotencyClaim, LocationScope, MAX_PAGE_LINES, MissingClaim, OrderChangeError, OrderFilter,
    OrderRepository, PageRequest, PaymentInsert, Refused, Replay, StoreError, budget_cut,
};
use domain::{
    CategoryId, CategoryName, CustomerName, LineNote, LineVoid, LocationId, MenuItemId, MenuLine, Money, NewOrderLine,
    Order, OrderId, OrderLine, OrderStatus, Payment, PaymentId, PaymentMethod, ProductKey, ProductName, Quantity,
    StoredLine, StoredOrder, Ticket, TicketId, TicketStatus, UserId, VoidReason,
};

use crate::db::{Database, PgPooled, store_error};
use crate::schema::{idempotency_keys, kitchen_tickets, menu_version, order_items, orders, payments};

// A line's ticket: no foreign key in the database (see the migration `open_orders`), so
// `diesel print-schema` does not declare the join.
diesel::joinable!(order_items -> kitchen_tickets (ticket_id));

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = orders, check_for_backend(Pg))]
struct OrderRow {
    id: Uuid,
    customer_name: String,
    waiter_id: Uuid,
    status: String,
    total_price: Decimal,
    amount_paid: Decimal,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    location_id: Uuid,
    business_date: NaiveDate,
    version: i32,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = order_items, check_for_backend(Pg))]
struct OrderItemRow {
    order_id: Uuid,
    line_no: i16,
    product_key: String,
    product_name: String,
    unit_price: Decimal,
    quantity: i32,
    note: Option<String>,
    menu_item_id: Option<Uuid>,
    category_id: Option<Uuid>,
    category: Option<String>,
    added_in: i32,
    ticket_id: Option<Uuid>,
    voided_at: Option<DateTime<Utc>>,
    voided_by: Option<Uuid>,
    void_reason: Option<String>,
}

/// A line added to an order after it was placed.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = order_items, check_for_backend(Pg))]
struct NewItemRow<'a> {
    order_id: Uuid,
    line_no: i16,
    product_key: &'a str,
    product_name: &'a str,
    unit_price: Decimal,
    quantity: i32,
    subtotal: Decimal,
    menu_item_id: Option<Uuid>,
    category_id: Option<Uuid>,
    category: Option<&'a str>,
    note: Option<&'a str>,
    added_in: i32,
    ticket_id: Option<Uuid>,
    voided_at: Option<DateTime<Utc>>,
    voided_by: Option<Uuid>,
    void_reason: Option<&'a str>,
}

impl<'a> NewItemRow<'a> {
    fn new(order: OrderId, line: &'a OrderLine) -> Result<Self, diesel::result::Error> {
        let added_in =
            i32::try_from(line.added_in()).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
        Ok(Self {
            order_id: order.0,
            line_no: line.number() as i16,
            product_key: line.product_key().as_ref(),
            product_name: line.product_name().as_ref(),
            unit_price: line.unit_price().amount(),
            quantity: line.quantity().get() as i32,
            subtotal: line.subtotal().amount(),
            menu_item_id: line.menu().map(|m| m.item_id.0),
            category_id: line.menu().map(|m| m.category_id.0),
            category: line.menu().map(|m| m.category.as_ref()),
            note: line.note().map(AsRef::as_ref),
            added_in,
            ticket_id: line.ticket().map(|t| t.0),
            voided_at: line.voided().map(|v| v.at),
            voided_by: line.voided().map(|v| v.by.0),
            void_reason: line.voided().map(|v| v.reason.as_ref()),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payments, check_for_backend(Pg))]
struct PaymentRow {
    id: Uuid,
    order_id: Uuid,
    amount: Decimal,
    method: String,
    recorded_by: Uuid,
    created_at: DateTime<Utc>,
}

/// Stored data that no longer makes a valid value: a bug or a hand edit.
#[derive(Debug, thiserror::Error)]
#[error("stored {what} {id} is invalid: {reason}")]
struct Corrupt {
    what: &'static str,
    id: Uuid,
    reason: String,
}

fn corrupt(what: &'static str, id: Uuid, reason: impl ToString) -> StoreError {
    StoreError::other(Corrupt { what, id, reason: reason.to_string() })
}

fn money(what: &'static str, id: Uuid, value: Decimal) -> Result<Money, StoreError> {
    Money::from_decimal(value).map_err(|e| corrupt(what, id, e))
}

/// A line's void as stored: all three columns or none (a CHECK holds it too).
pub(crate) fn stored_void(
    at: Option<DateTime<Utc>>,
    by: Option<Uuid>,
    reason: Option<String>,
) -> Result<Option<LineVoid>, String> {
    match (at, by, reason) {
        (None, None, None) => Ok(None),
        (Some(at), Some(by), Some(reason)) => {
            let reason = VoidReason::parse(&reason).map_err(|e| e.to_string())?;
            Ok(Some(LineVoid { reason, by: UserId(by), at }))
        }
        _ => Err("a partial void".to_owned()),
    }
}

fn to_order(row: OrderRow, mut items: Vec<(OrderItemRow, Option<String>)>) -> Result<Order, StoreError> {
    items.sort_by_key(|(i, _)| i.line_no);
    let id = row.id;
    let lines = items
        .into_iter()
        .map(|(i, ticket_status)| {
            let bad = |e: &dyn std::fmt::Display| corrupt("order line", id, e);
            let menu = match (i.menu_item_id, i.category_id, i.category) {
                (None, None, None) => None,
                (Some(item), Some(category_id), Some(category)) => Some(MenuLine {
                    item_id: MenuItemId(item),
                    category_id: CategoryId(category_id),
                    category: CategoryName::restore(&category).map_err(|e| bad(&e))?,
                }),
                _ => return Err(bad(&"a menu line without its item or category")),
            };
            let line = NewOrderLine {
                product_name: ProductName::restore(&i.product_name).map_err(|e| bad(&e))?,
                unit_price: money("order line", id, i.unit_price)?,
                quantity: Quantity::new(i64::from(i.quantity)).map_err(|e| bad(&e))?,
                note: i.note.as_deref().map(LineNote::parse).transpose().map_err(|e| bad(&e))?,
                menu,
            };
            let ticket = match (i.ticket_id, ticket_status) {
                (None, _) => None,
                (Some(ticket), Some(status)) => Some((
                    TicketId(ticket),
                    TicketStatus::parse(&status).ok_or_else(|| bad(&"a ticket of unknown status"))?,
                )),
                (Some(_), None) => return Err(bad(&"a line on a missing ticket")),
            };
            let voided = stored_void(i.voided_at, i.voided_by, i.void_reason).map_err(|e| bad(&e))?;
            Ok(StoredLine {
                number: u16::try_from(i.line_no).map_err(|e| bad(&e))?,
                added_in: u32::try_from(i.added_in).map_err(|e| bad(&e))?,
                key: ProductKey::restore(i.product_key),
                line,
                ticket,
                voided,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let stored = StoredOrder {
        id: OrderId(id),
        customer_name: CustomerName::parse(&row.customer_name).map_err(|e| corrupt("order", id, e))?,
        waiter_id: UserId(row.waiter_id),
        location_id: LocationId(row.location_id),
        business_date: row.business_date,
        version: u32::try_from(row.version).map_err(|e| corrupt("order", id, e))?,
        status: OrderStatus::parse(&row.status).ok_or_else(|| corrupt("order", id, "unknown status"))?,
        lines,
        total_price: money("order", id, row.total_price)?,
        amount_paid: Money::from_decimal(row.amount_paid).map_err(|e| corrupt("order", id, e))?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    };
    Order::restore(stored).map_err(StoreError::other)
}

fn to_payment(row: PaymentRow) -> Result<Payment, StoreError> {
    Ok(Payment {
        id: PaymentId(row.id),
        order_id: OrderId(row.order_id),
        amount: money("payment", row.id, row.amount)?,
        method: PaymentMethod::parse(&row.method).map_err(|e| corrupt("payment", row.id, e))?,
        recorded_by: UserId(row.recorded_by),
        created_at: row.created_at,
    })
}

/// Why a transaction ends without committing: the database's error, or the port's own outcome.
#[derive(Debug)]
enum TxError {
    Db(diesel::result::Error),
    Change(OrderChangeError),
}

impl From<diesel::result::Error> for TxError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error)
    }
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        Self::Change(OrderChangeError::Store(error))
    }
}

impl From<Refused> for TxError {
    fn from(Refused: Refused) -> Self {
        Self::Change(OrderChangeError::Refused)
    }
}

impl From<TxError> for OrderChangeError {
    fn from(error: TxError) -> Self {
        match error {
            TxError::Db(e) => OrderChangeError::Store(store_error(e)),
            TxError::Change(e) => e,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PgOrderRepository {
    db: Database,
}

impl PgOrderRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    fn conn(&self) -> Result<PgPooled, StoreError> {
        self.db.conn()
    }
}

type ItemRows = Vec<(OrderItemRow, Option<String>)>;

/// Loads the lines of the given orders (each with its ticket's status), grouped by order.
fn load_items(conn: &mut PgConnection, ids: &[Uuid]) -> QueryResult<HashMap<Uuid, ItemRows>> {
    let rows: ItemRows = order_items::table
        .left_join(kitchen_tickets::table)
        .filter(order_items::order_id.eq_any(ids))
        .select((OrderItemRow::as_select(), kitchen_tickets::status.nullable()))
        .load(conn)?;
    let mut by_order: HashMap<Uuid, ItemRows> = HashMap::with_capacity(ids.len());
    for row in rows {
        by_order.entry(row.0.order_id).or_default().push(row);
    }
    Ok(by_order)
}

pub(crate) fn find_order(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Order>, StoreError> {
    let query = orders::table.find(id).select(OrderRow::as_select());
    let row = if lock { query.for_update().first(conn).optional() } else { query.first(conn).optional() };
    let Some(row) = row.map_err(store_error)? else { return Ok(None) };
    let items = load_items(conn, &[id]).map_err(store_error)?.remove(&id).unwrap_or_default();
    Ok(Some(to_order(row, items)?))
}

pub(crate) fn find_claim(conn: &mut PgConnection, user: UserId, key: &str) -> QueryResult<Option<Replay>> {
    let found: Option<(Vec<u8>, Uuid)> = idempotency_keys::table
        .find((user.0, key))
        .select((idempotency_keys::fingerprint, idempotency_keys::resource_id))
        .first(conn)
        .optional()?;
    Ok(found.and_then(|(fingerprint, resource_id)| {
        let fingerprint: [u8; 32] = fingerprint.try_into().ok()?;
        Some(Replay { fingerprint: Fingerprint(fingerprint), resource_id })
    }))
}

fn save_state(conn: &mut PgConnection, order: &Order) -> QueryResult<usize> {
    let version = i32::try_from(order.version()).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    diesel::update(orders::table.find(order.id().0))
        .set((
            orders::status.eq(order.status().as_str()),
            orders::total_price.eq(order.total_price().amount()),
            orders::amount_paid.eq(order.amount_paid().amount()),
            orders::updated_at.eq(order.updated_at()),
            orders::version.eq(version),
        ))
        .execute(conn)
}

/// Claims the idempotency key; `false` when it was claimed before.
fn claim_key(conn: &mut PgConnection, claim: &IdempotencyClaim) -> QueryResult<bool> {
    let claimed = diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::user_id.eq(claim.user_id.0),
            idempotency_keys::key.eq(claim.key.as_ref()),
            idempotency_keys::fingerprint.eq(claim.fingerprint.0.as_slice()),
            idempotency_keys::resource_id.eq(claim.resource_id),
            idempotency_keys::created_at.eq(Utc::now()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(claimed == 1)
}

/// Writes a new ticket with the next number of its location and business day. The counter
/// row's lock is held until the transaction ends: numbers are neither skipped nor repeated.
fn insert_ticket(conn: &mut PgConnection, ticket: &Ticket) -> QueryResult<usize> {
    use diesel::sql_types::{Date, Timestamptz, Uuid as SqlUuid};
    diesel::sql_query(
        "WITH n AS (INSERT INTO kitchen_ticket_numbers AS k (location_id, business_date, last_number) VALUES ($2, $3, 1)
    ON CONFLICT (location_id, business_date) DO UPDATE SET last_number = k.last_number + 1 RETURNING last_number)
INSERT INTO kitchen_tickets (id, order_id, location_id, business_date, number, status, created_at)
SELECT $1, $4, $2, $3, n.last_number, 'open', $5 FROM n",
    )
    .bind::<SqlUuid, _>(ticket.id.0)
    .bind::<SqlUuid, _>(ticket.location_id.0)
    .bind::<Date, _>(ticket.business_date)
    .bind::<SqlUuid, _>(ticket.order_id.0)
    .bind::<Timestamptz, _>(ticket.created_at)
    .execute(conn)
}

/// Saves what a change did to an order: the ticket it sent, its new lines, the lines it sent
/// or voided (one statement, so that a ticket gets one event per change), its state, and the
/// sales rollup's sums.
fn save_change(conn: &mut PgConnection, before: &Order, after: &Order, ticket: Option<&Ticket>) -> QueryResult<()> {
    use diesel::sql_types::{Array, Int2, Nullable, Text, Timestamptz, Uuid as SqlUuid};
    if let Some(ticket) = ticket {
        insert_ticket(conn, ticket)?;
    }
    let kept = before.lines().len();
    let new_rows =
        after.lines()[kept..].iter().map(|line| NewItemRow::new(after.id(), line)).collect::<Result<Vec<_>, _>>()?;
    if !new_rows.is_empty() {
        diesel::insert_into(order_items::table).values(&new_rows).execute(conn)?;
    }
    let changed: Vec<&OrderLine> = after.lines()[..kept]
        .iter()
        .zip(before.lines())
        .filter(|(now, then)| now.ticket() != then.ticket() || now.voided() != then.voided())
        .map(|(now, _)| now)
        .collect();
    if !changed.is_empty() {
        let numbers: Vec<i16> = changed.iter().map(|l| l.number() as i16).collect();
        let tickets: Vec<Option<Uuid>> = changed.iter().map(|l| l.ticket().map(|t| t.0)).collect();
        let voided_at: Vec<Option<DateTime<Utc>>> = changed.iter().map(|l| l.voided().map(|v| v.at)).collect();
        let voided_by: Vec<Option<Uuid>> = changed.iter().map(|l| l.voided().map(|v| v.by.0)).collect();
        let reasons: Vec<Option<&str>> = changed.iter().map(|l| l.voided().map(|v| v.reason.as_ref())).collect();
        diesel::sql_query(
            "UPDATE order_items i
SET ticket_id = u.ticket_id, voided_at = u.voided_at, voided_by = u.voided_by, void_reason = u.void_reason
FROM unnest($2::int2[], $3::uuid[], $4::timestamptz[], $5::uuid[], $6::text[])
    AS u (line_no, ticket_id, voided_at, voided_by, void_reason)
WHERE i.order_id = $1 AND i.line_no = u.line_no",
        )
        .bind::<SqlUuid, _>(after.id().0)
        .bind::<Array<Int2>, _>(&numbers)
        .bind::<Array<Nullable<SqlUuid>>, _>(&tickets)
        .bind::<Array<Nullable<Timestamptz>>, _>(&voided_at)
        .bind::<Array<Nullable<SqlUuid>>, _>(&voided_by)
        .bind::<Array<Nullable<Text>>, _>(&reasons)
        .execute(conn)?;
    }
    save_state(conn, after)?;
    crate::reports::adjust_sales(conn, before, after)
}

impl OrderRepository for PgOrderRepository {
    fn find(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        let mut conn = self.conn()?;
        find_order(&mut conn, id.0, false)
    }

    fn list(&self, filter: &OrderFilter, scope: &LocationScope, page: &PageRequest) -> Result<Vec<Order>, StoreError> {
        let mut conn = self.conn()?;
        // Each order with its number of lines (an index-only count on the lines' key), so that
        // only the lines of the orders that fit in the page are read.
        let line_count =
            order_items::table.filter(order_items::order_id.eq(orders::id)).count().single_value().assume_not_null();
        let mut query = orders::table
            .select((OrderRow::as_select(), line_count))
            .order((orders::created_at.desc(), orders::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        match scope {
            LocationScope::All => {}
            LocationScope::Only(ids) if ids.len() == 1 => query = query.filter(orders::location_id.eq(ids[0].0)),
            LocationScope::Only(ids) => {
                query = query.filter(orders::location_id.eq_any(ids.iter().map(|l| l.0).collect::<Vec<_>>()))
            }
        }
        if let Some(status) = filter.status {
            query = query.filter(orders::status.eq(status.as_str()));
        }
        if let Some(waiter) = filter.waiter_id {
            query = query.filter(orders::waiter_id.eq(waiter.0));
        }
        if let Some(from) = filter.created_from {
            query = query.filter(orders::created_at.ge(from));
        }
        if let Some(to) = filter.created_to {
            query = query.filter(orders::created_at.le(to));
        }
        if let Some(after) = page.after {
            // The `le` bound is what the index seeks to; the `or` only settles ties on the instant.
            // Without it the planner walks the index from the newest order and filters (40 ms on
            // page 2,400 of ten million lines instead of 0.2 ms; docs/ARCHITECTURE.md).
            query = query.filter(orders::created_at.le(after.created_at)).filter(
                orders::created_at
                    .lt(after.created_at)
                    .or(orders::created_at.eq(after.created_at).and(orders::id.lt(after.id))),
            );
        }
        let mut rows: Vec<(OrderRow, i64)> = query.load(&mut conn).map_err(store_error)?;
        // The orders of the page, and one more (its lines too) to say that there is more.
        let fit = budget_cut(rows.iter().map(|(_, n)| *n as usize), page.limit as usize, MAX_PAGE_LINES);
        rows.truncate(fit + 1);
        let ids: Vec<Uuid> = rows.iter().map(|(r, _)| r.id).collect();
        let mut items = load_items(&mut conn, &ids).map_err(store_error)?;
        rows.into_iter()
            .map(|(row, _)| {
                let lines = items.remove(&row.id).unwrap_or_default();
                to_order(row, lines)
            })
            .collect()
    }

    fn change(
        &self,
        id: OrderId,
        claim: Option<&IdempotencyClaim>,
        menu_version: Option<i64>,
        change: &mut dyn FnMut(&mut Order) -> Result<Option<Ticket>, Refused>,
    ) -> Result<Changed, OrderChangeError> {
        let mut conn = self.conn()?;
        conn.transaction::<_, TxError, _>(|conn| {
            // Before the key is claimed: a stale menu must leave the key free for the retry.
            if let Some(expected) = menu_version {
                let current: i64 = menu_version::table.select(menu_version::version).first(conn)?;
                if current != expected {
                    return Ok(Changed::MenuStale);
                }
            }
            if let Some(claim) = claim
                && !claim_key(conn, claim)?
            {
                let replay = find_claim(conn, claim.user_id, claim.key.as_ref())?
                    .ok_or_else(|| StoreError::other(MissingClaim))?;
                return Ok(Changed::KeyUsed(replay));
            }
            let before = find_order(conn, id.0, true)?.ok_or(TxError::Change(OrderChangeError::NotFound))?;
            let mut order = before.clone();
            let ticket = change(&mut order)?;
            save_change(conn, &before, &order, ticket.as_ref())?;
            Ok(Changed::Done { order, ticket: ticket.map(|t| t.id) })
        })
        .map_err(OrderChangeError::from)
    }

    fn record_payment(
        &self,
        order_id: OrderId,
        claim: Option<&IdempotencyClaim>,
        pay: &mut dyn FnMut(&mut Order) -> Result<Payment, Refused>,
    ) -> Result<PaymentInsert, OrderChangeError> {
        let mut conn = self.conn()?;
        conn.transaction::<_, TxError, _>(|conn| {
            if let Some(claim) = claim
                && !claim_key(conn, claim)?
            {
                let replay = find_claim(conn, claim.user_id, claim.key.as_ref())?
                    .ok_or_else(|| StoreError::other(MissingClaim))?;
                return Ok(PaymentInsert::KeyUsed(replay));
            }
            let mut order = find_order(conn, order_id.0, true)?.ok_or(TxError::Change(OrderChangeError::NotFound))?;
            let payment = pay(&mut order)?;
            diesel::insert_into(payments::table)
                .values(PaymentRow {
                    id: payment.id.0,
                    order_id: payment.order_id.0,
                    amount: payment.amount.amount(),
                    method: payment.method.as_str().to_owned(),
                    recorded_by: payment.recorded_by.0,
                    created_at: payment.created_at,
                })
                .execute(conn)?;
            save_state(conn, &order)?;
            Ok(PaymentInsert::Inserted { payment, order })
        })
        .map_err(OrderChangeError::from)
    }

    fn find_payment(&self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        let mut conn = self.conn()?;
        payments::table
            .find(id.0)
            .select(PaymentRow::as_select())
            .first(&mut conn)
            .optional()
            .map_err(store_error)?
            .map(to_payment)
            .transpose()
    }

    fn payments(&self, order_id: OrderId) -> Result<Vec<Payment>, StoreError> {
        let mut conn = self.conn()?;
        payments::table
            .filter(payments::order_id.eq(order_id.0))
            .order((payments::created_at.asc(), payments::id.asc()))
            .select(PaymentRow::as_select())
            .load(&mut conn)
            .map_err(store_error)?
            .into_iter()
            .map(to_payment)
            .collect()
    }

    fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut conn = self.conn()?;
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(before)))
            .execute(&mut conn)
            .map(|n| n as u64)
            .map_err(store_error)
    }
}
