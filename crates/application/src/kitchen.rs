//! The kitchen: tickets (reading them, bumping them) and the events of each location's stream.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::instrument;

use domain::{Action, LocationId, Ticket, TicketId, TicketStatus, TicketTransitionError, TicketView};

use crate::actor::{Actor, Caller, Denied, LocationScope};
use crate::clock::Clock;
use crate::orders::Refused;
use crate::page::{Cursor, Page, PageRequest};
use crate::ports::UserRepository;
use crate::store::StoreError;

/// What happened to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KitchenEventKind {
    Created,
    Updated,
}

impl KitchenEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "ticket.created",
            Self::Updated => "ticket.updated",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Created, Self::Updated].into_iter().find(|k| k.as_str() == raw)
    }
}

/// One event of a location's stream: `id` counts from 1 in each location, in commit order.
/// The ticket is as it stands when the event is read (a display shows the latest state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitchenEvent {
    pub location_id: LocationId,
    pub id: i64,
    pub kind: KitchenEventKind,
    pub ticket: TicketView,
}

/// Filters of the ticket list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    pub location_id: Option<LocationId>,
    pub status: Option<TicketStatus>,
}

/// Why a ticket's change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TicketChangeError {
    #[error("no such ticket")]
    NotFound,
    #[error("the change was refused")]
    Refused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Storage of tickets and of the kitchen's events.
pub trait KitchenRepository: Send + Sync {
    fn find(&self, id: TicketId) -> Result<Option<TicketView>, StoreError>;
    /// Tickets of the scope, oldest first after the cursor: up to `page.limit + 1`.
    fn list(
        &self,
        filter: &TicketFilter,
        scope: &LocationScope,
        page: &PageRequest,
    ) -> Result<Vec<TicketView>, StoreError>;
    /// In one transaction: locks the ticket, lets `change` apply a transition, saves it (the
    /// event is written with it).
    fn change(
        &self,
        id: TicketId,
        change: &mut dyn FnMut(&mut Ticket) -> Result<(), Refused>,
    ) -> Result<TicketView, TicketChangeError>;
    /// The location's events after `after`, oldest first, up to `limit`.
    fn events_after(&self, location: LocationId, after: i64, limit: u32) -> Result<Vec<KitchenEvent>, StoreError>;
    /// The id of each location's last event (locations without events are absent).
    fn heads(&self) -> Result<Vec<(LocationId, i64)>, StoreError>;
    /// Forgets events older than `before`; returns how many.
    fn purge_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum KitchenError {
    #[error("no such ticket")]
    NotFound,
    #[error("your role may not do this here")]
    Forbidden,
    #[error(transparent)]
    Transition(#[from] TicketTransitionError),
    #[error("the signed-in user no longer exists")]
    ActorGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Denied> for KitchenError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Forbidden => Self::Forbidden,
            Denied::Hidden => Self::NotFound,
        }
    }
}

pub struct KitchenService {
    tickets: Arc<dyn KitchenRepository>,
    users: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for KitchenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KitchenService").finish_non_exhaustive()
    }
}

/// The most events one read of the stream's backlog returns.
pub const MAX_EVENTS_PER_READ: u32 = 500;

impl KitchenService {
    pub fn new(tickets: Arc<dyn KitchenRepository>, users: Arc<dyn UserRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { tickets, users, clock }
    }

    /// A ticket, for whoever works in its location.
    pub fn get(&self, caller: &Caller, id: TicketId) -> Result<TicketView, KitchenError> {
        let actor = self.actor(caller)?;
        actor.may(Action::ReadKitchen)?;
        let ticket = self.tickets.find(id)?.ok_or(KitchenError::NotFound)?;
        actor.may_on(Action::ReadKitchen, ticket.ticket.location_id, None)?;
        Ok(ticket)
    }

    /// Tickets of the caller's locations (or the one the filter names), oldest first: the
    /// kitchen's queue.
    pub fn list(
        &self,
        caller: &Caller,
        filter: &TicketFilter,
        page: PageRequest,
    ) -> Result<Page<TicketView>, KitchenError> {
        let scope = self.actor(caller)?.scope(Action::ReadKitchen, filter.location_id)?;
        let rows = self.tickets.list(filter, &scope, &page)?;
        Ok(Page::from_rows(rows, page.limit, |t| Cursor { created_at: t.ticket.created_at, id: t.ticket.id.0 }))
    }

    /// open -> ready: the kitchen, a manager, an admin of the ticket's location.
    #[instrument(skip_all, fields(ticket_id = %id))]
    pub fn ready(&self, caller: &Caller, id: TicketId) -> Result<TicketView, KitchenError> {
        self.transition(caller, id, Action::MarkTicketReady, Ticket::ready)
    }

    /// ready -> served: a waiter, a manager, an admin of the ticket's location.
    #[instrument(skip_all, fields(ticket_id = %id))]
    pub fn served(&self, caller: &Caller, id: TicketId) -> Result<TicketView, KitchenError> {
        self.transition(caller, id, Action::MarkTicketServed, Ticket::served)
    }

    fn transition(
        &self,
        caller: &Caller,
        id: TicketId,
        action: Action,
        apply: fn(&mut Ticket, DateTime<Utc>) -> Result<(), TicketTransitionError>,
    ) -> Result<TicketView, KitchenError> {
        let actor = self.actor(caller)?;
        actor.may(action)?;
        let now = self.clock.now();
        let mut refusal = None;
        let result = self.tickets.change(id, &mut |ticket| {
            let decided = match actor.may_on(action, ticket.location_id, None) {
                Ok(()) => apply(ticket, now).map_err(KitchenError::from),
                Err(denied) => Err(denied.into()),
            };
            decided.map_err(|e| {
                refusal = Some(e);
                Refused
            })
        });
        match result {
            Ok(view) => Ok(view),
            Err(TicketChangeError::NotFound) => Err(KitchenError::NotFound),
            Err(TicketChangeError::Store(e)) => Err(e.into()),
            Err(TicketChangeError::Refused) => Err(refusal.unwrap_or(KitchenError::Forbidden)),
        }
    }

    /// Whether the caller may follow the stream of `location` (every role that works there).
    pub fn may_follow(&self, caller: &Caller, location: LocationId) -> Result<(), KitchenError> {
        self.actor(caller)?.may_in(Action::ReadKitchen, location)?;
        Ok(())
    }

    /// The id of the location's last event (0 before its first).
    pub fn head(&self, location: LocationId) -> Result<i64, KitchenError> {
        Ok(self.tickets.heads()?.into_iter().find(|(l, _)| *l == location).map_or(0, |(_, id)| id))
    }

    /// The location's events after `after` (a reconnecting display's `Last-Event-ID`), oldest
    /// first, up to [`MAX_EVENTS_PER_READ`]. The caller was checked by [`Self::may_follow`].
    pub fn events_after(&self, location: LocationId, after: i64) -> Result<Vec<KitchenEvent>, KitchenError> {
        Ok(self.tickets.events_after(location, after, MAX_EVENTS_PER_READ)?)
    }

    /// Forgets events older than `older_than`.
    pub fn purge_events(&self, older_than: chrono::Duration) -> Result<u64, KitchenError> {
        Ok(self.tickets.purge_events(self.clock.now() - older_than)?)
    }

    fn actor(&self, caller: &Caller) -> Result<Actor, KitchenError> {
        self.users.actor(caller)?.ok_or(KitchenError::ActorGone)
    }
}
