//! `KitchenRepository` on PostgreSQL: tickets, and the events of each location's stream
//! (written by triggers in the same transaction as the change they record; see the migration
//! `open_orders`).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use uuid::Uuid;

use application::{
    KitchenEvent, KitchenEventKind, KitchenRepository, LocationScope, PageRequest, Refused, StoreError,
    TicketChangeError, TicketFilter,
};
use domain::{LocationId, OrderId, Ticket, TicketId, TicketLine, TicketStatus, TicketView, UserId};

use crate::db::{Database, store_error};
use crate::schema::{kitchen_events, kitchen_streams, kitchen_tickets, order_items, orders};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = kitchen_tickets, check_for_backend(Pg))]
struct TicketRow {
    id: Uuid,
    order_id: Uuid,
    location_id: Uuid,
    business_date: NaiveDate,
    number: i32,
    status: String,
    created_at: DateTime<Utc>,
    ready_at: Option<DateTime<Utc>>,
    served_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = order_items, check_for_backend(Pg))]
struct TicketLineRow {
    line_no: i16,
    ticket_id: Option<Uuid>,
    product_name: String,
    quantity: i32,
    note: Option<String>,
    voided_at: Option<DateTime<Utc>>,
    voided_by: Option<Uuid>,
    void_reason: Option<String>,
}

/// Stored data that no longer makes a valid ticket: a bug or a hand edit.
#[derive(Debug, thiserror::Error)]
#[error("stored ticket {id} is invalid: {reason}")]
struct CorruptTicket {
    id: Uuid,
    reason: String,
}

fn corrupt(id: Uuid, reason: impl ToString) -> StoreError {
    StoreError::other(CorruptTicket { id, reason: reason.to_string() })
}

fn to_ticket(row: TicketRow) -> Result<Ticket, StoreError> {
    Ok(Ticket {
        id: TicketId(row.id),
        order_id: OrderId(row.order_id),
        location_id: LocationId(row.location_id),
        business_date: row.business_date,
        number: u32::try_from(row.number).map_err(|e| corrupt(row.id, e))?,
        status: TicketStatus::parse(&row.status).ok_or_else(|| corrupt(row.id, "unknown status"))?,
        created_at: row.created_at,
        ready_at: row.ready_at,
        served_at: row.served_at,
    })
}

fn to_line(ticket: Uuid, row: TicketLineRow) -> Result<TicketLine, StoreError> {
    let voided =
        crate::orders::stored_void(row.voided_at, row.voided_by, row.void_reason).map_err(|e| corrupt(ticket, e))?;
    Ok(TicketLine {
        line_id: u16::try_from(row.line_no).map_err(|e| corrupt(ticket, e))?,
        name: row.product_name,
        quantity: u32::try_from(row.quantity).map_err(|e| corrupt(ticket, e))?,
        note: row.note,
        voided,
    })
}

/// The tickets with these ids as the kitchen reads them, in the order of `rows`.
fn views(conn: &mut PgConnection, rows: Vec<(TicketRow, String, Uuid)>) -> Result<Vec<TicketView>, StoreError> {
    let ids: Vec<Uuid> = rows.iter().map(|(t, _, _)| t.id).collect();
    let order_ids: Vec<Uuid> = rows.iter().map(|(t, _, _)| t.order_id).collect();
    // By the order (the lines' key), then by ticket.
    let lines: Vec<TicketLineRow> = order_items::table
        .filter(order_items::order_id.eq_any(&order_ids))
        .filter(order_items::ticket_id.eq_any(&ids))
        .order((order_items::order_id, order_items::line_no))
        .select(TicketLineRow::as_select())
        .load(conn)
        .map_err(store_error)?;
    let mut by_ticket: HashMap<Uuid, Vec<TicketLine>> = HashMap::with_capacity(ids.len());
    for line in lines {
        let Some(ticket) = line.ticket_id else { continue };
        by_ticket.entry(ticket).or_default().push(to_line(ticket, line)?);
    }
    rows.into_iter()
        .map(|(row, customer_name, waiter_id)| {
            let lines = by_ticket.remove(&row.id).unwrap_or_default();
            Ok(TicketView { ticket: to_ticket(row)?, customer_name, waiter_id: UserId(waiter_id), lines })
        })
        .collect()
}

fn find_views(conn: &mut PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, TicketView>, StoreError> {
    let rows: Vec<(TicketRow, String, Uuid)> = kitchen_tickets::table
        .inner_join(orders::table)
        .filter(kitchen_tickets::id.eq_any(ids))
        .select((TicketRow::as_select(), orders::customer_name, orders::waiter_id))
        .load(conn)
        .map_err(store_error)?;
    Ok(views(conn, rows)?.into_iter().map(|v| (v.ticket.id.0, v)).collect())
}

#[derive(Debug, Clone)]
pub struct PgKitchenRepository {
    db: Database,
}

impl PgKitchenRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// Why a ticket's transaction ends without committing.
enum TxError {
    Db(diesel::result::Error),
    Change(TicketChangeError),
}

impl From<diesel::result::Error> for TxError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error)
    }
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        Self::Change(TicketChangeError::Store(error))
    }
}

impl KitchenRepository for PgKitchenRepository {
    fn find(&self, id: TicketId) -> Result<Option<TicketView>, StoreError> {
        let mut conn = self.db.conn()?;
        Ok(find_views(&mut conn, &[id.0])?.remove(&id.0))
    }

    fn list(
        &self,
        filter: &TicketFilter,
        scope: &LocationScope,
        page: &PageRequest,
    ) -> Result<Vec<TicketView>, StoreError> {
        let mut conn = self.db.conn()?;
        let mut query = kitchen_tickets::table
            .inner_join(orders::table)
            .select((TicketRow::as_select(), orders::customer_name, orders::waiter_id))
            .order((kitchen_tickets::created_at.asc(), kitchen_tickets::id.asc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        match scope {
            LocationScope::All => {}
            LocationScope::Only(ids) => {
                query = query.filter(kitchen_tickets::location_id.eq_any(ids.iter().map(|l| l.0).collect::<Vec<_>>()))
            }
        }
        if let Some(status) = filter.status {
            query = query.filter(kitchen_tickets::status.eq(status.as_str()));
        }
        if let Some(after) = page.after {
            query = query.filter(kitchen_tickets::created_at.ge(after.created_at)).filter(
                kitchen_tickets::created_at
                    .gt(after.created_at)
                    .or(kitchen_tickets::created_at.eq(after.created_at).and(kitchen_tickets::id.gt(after.id))),
            );
        }
        let rows = query.load(&mut conn).map_err(store_error)?;
        views(&mut conn, rows)
    }

    fn change(
        &self,
        id: TicketId,
        change: &mut dyn FnMut(&mut Ticket) -> Result<(), Refused>,
    ) -> Result<TicketView, TicketChangeError> {
        let mut conn = self.db.conn()?;
        let result = conn.transaction::<_, TxError, _>(|conn| {
            let row: TicketRow = kitchen_tickets::table
                .find(id.0)
                .select(TicketRow::as_select())
                .for_update()
                .first(conn)
                .optional()?
                .ok_or(TxError::Change(TicketChangeError::NotFound))?;
            let mut ticket = to_ticket(row)?;
            change(&mut ticket).map_err(|Refused| TxError::Change(TicketChangeError::Refused))?;
            diesel::update(kitchen_tickets::table.find(id.0))
                .set((
                    kitchen_tickets::status.eq(ticket.status.as_str()),
                    kitchen_tickets::ready_at.eq(ticket.ready_at),
                    kitchen_tickets::served_at.eq(ticket.served_at),
                ))
                .execute(conn)?;
            find_views(conn, &[id.0])?.remove(&id.0).ok_or(TxError::Change(TicketChangeError::NotFound))
        });
        result.map_err(|e| match e {
            TxError::Db(e) => TicketChangeError::Store(store_error(e)),
            TxError::Change(e) => e,
        })
    }

    fn events_after(&self, location: LocationId, after: i64, limit: u32) -> Result<Vec<KitchenEvent>, StoreError> {
        let mut conn = self.db.conn()?;
        let rows: Vec<(i64, Uuid, String)> = kitchen_events::table
            .filter(kitchen_events::location_id.eq(location.0))
            .filter(kitchen_events::id.gt(after))
            .order(kitchen_events::id.asc())
            .limit(i64::from(limit))
            .select((kitchen_events::id, kitchen_events::ticket_id, kitchen_events::kind))
            .load(&mut conn)
            .map_err(store_error)?;
        let mut tickets: Vec<Uuid> = rows.iter().map(|(_, t, _)| *t).collect();
        tickets.sort_unstable();
        tickets.dedup();
        let views = find_views(&mut conn, &tickets)?;
        rows.into_iter()
            .map(|(id, ticket, kind)| {
                Ok(KitchenEvent {
                    location_id: location,
                    id,
                    kind: KitchenEventKind::parse(&kind).ok_or_else(|| corrupt(ticket, "an event of unknown kind"))?,
                    ticket: views
                        .get(&ticket)
                        .cloned()
                        .ok_or_else(|| corrupt(ticket, "an event of a missing ticket"))?,
                })
            })
            .collect()
    }

    fn heads(&self) -> Result<Vec<(LocationId, i64)>, StoreError> {
        let mut conn = self.db.conn()?;
        let rows: Vec<(Uuid, i64)> = kitchen_streams::table
            .select((kitchen_streams::location_id, kitchen_streams::last_event))
            .load(&mut conn)
            .map_err(store_error)?;
        Ok(rows.into_iter().map(|(l, n)| (LocationId(l), n)).collect())
    }

    fn purge_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut conn = self.db.conn()?;
        diesel::delete(kitchen_events::table.filter(kitchen_events::created_at.lt(before)))
            .execute(&mut conn)
            .map(|n| n as u64)
            .map_err(store_error)
    }
}
