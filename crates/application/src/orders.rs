//! Orders and their payments: placing, reading, listing, cancelling, paying.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::instrument;
use uuid::Uuid;

use domain::{
    Action, AddLinesError, CorruptOrder, CustomerName, KitchenStatus, LineNote, Location, LocationId, MenuItemId,
    MenuLine, Money, NewOrder, NewOrderLine, Order, OrderId, OrderStatus, Payment, PaymentId, PaymentMethod,
    PlacementError, ProductName, Quantity, Ticket, TicketId, TransitionError, UserId, VoidReason,
};

use crate::actor::{Actor, Caller, Denied, LocationScope};
use crate::clock::Clock;
use crate::directory::Directory;
use crate::idempotency::{Fingerprint, IdempotencyClaim, IdempotencyKey, Replay};
use crate::menu::{Menu, Unorderable};
use crate::page::{Cursor, Page, PageRequest};
use crate::ports::UserRepository;
use crate::snapshot::{Snapshots, Versioned};
use crate::store::StoreError;

/// The most order lines one page of the order list carries: a page of 100 orders of 100 lines
/// would otherwise answer megabytes to a request of a few bytes.
pub const MAX_PAGE_LINES: usize = 1000;

/// Filters of the order list; every one optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub location_id: Option<LocationId>,
    pub status: Option<OrderStatus>,
    pub waiter_id: Option<UserId>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
}

/// A line as the client asked for it: from the menu (priced when the order is placed), or an
/// open line with its own name and price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineRequest {
    Menu { item: MenuItemId, quantity: Quantity, note: Option<LineNote> },
    Open { product_name: ProductName, unit_price: Money, quantity: Quantity, note: Option<LineNote> },
}

/// An order as the client asked for it, before its menu lines are priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub customer_name: CustomerName,
    pub lines: Vec<LineRequest>,
    /// Send the lines to the kitchen once the order is placed.
    pub send: bool,
}

/// The versions of the snapshots an order was placed with, which its write checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotVersions {
    pub directory: i64,
    /// `None` when the order has no menu line (a menu change does not concern it).
    pub menu: Option<i64>,
}

/// What writing a new order did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// The idempotency key was already claimed (by a first request, or one racing this one):
    /// nothing was written; here is what the first request asked for and the order it made.
    KeyUsed {
        replay: Replay,
        /// Boxed: an order is large, and the other outcomes are nothing.
        first: Option<Box<Order>>,
    },
    /// A snapshot the order was placed with (the staff directory, the menu, or both) is no
    /// longer storage's: nothing was written; place it again with fresh ones.
    Stale {
        directory: bool,
        menu: bool,
    },
}

/// A write under way: resolves once the order's statement has committed (or failed).
pub type PendingWrite = Pin<Box<dyn Future<Output = Result<WriteOutcome, StoreError>> + Send>>;

/// Writes new orders. Asynchronous: an implementation may put the orders that arrive at the
/// same moment into one statement (one round trip, one commit), each order still all-or-nothing
/// and unaffected by its neighbours.
pub trait OrderWriter: Send + Sync {
    /// Inserts the order with all its lines and claims the idempotency key, as one atomic step,
    /// but only if storage's staff directory and menu are still at `versions` (those the order
    /// was authorized and priced with) and the key is unclaimed (else it reads back the claim
    /// and the first order).
    fn write(&self, order: Arc<Order>, claim: Option<IdempotencyClaim>, versions: SnapshotVersions) -> PendingWrite;
}

/// What recording a payment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentInsert {
    Inserted { payment: Payment, order: Order },
    KeyUsed(Replay),
}

/// A change function's refusal: the change is rolled back. Why it refused stays with the
/// caller (the use case keeps its own error), so the storage port never builds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// What a change to a stored order did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// The change is committed; here is the order after it, and the ticket it sent (if any).
    Done { order: Order, ticket: Option<TicketId> },
    /// The idempotency key was already claimed: nothing was changed.
    KeyUsed(Replay),
    /// Storage's menu is no longer at the version the change was priced with: nothing was
    /// changed.
    MenuStale,
}

/// Why a change to a stored order did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OrderChangeError {
    #[error("no such order")]
    NotFound,
    #[error("the change was refused")]
    Refused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Storage of orders and their payments.
pub trait OrderRepository: Send + Sync {
    fn find(&self, id: OrderId) -> Result<Option<Order>, StoreError>;
    /// Orders of the scope, newest first after the cursor: up to `page.limit` of them, fewer
    /// when their lines would pass [`MAX_PAGE_LINES`] (the first one always comes), and then
    /// one more if there is one, which only says that there is more (see
    /// [`Page::within_budget`]).
    fn list(&self, filter: &OrderFilter, scope: &LocationScope, page: &PageRequest) -> Result<Vec<Order>, StoreError>;
    /// In one transaction: claims the key (if any), checks that storage's menu is at
    /// `menu_version` (when given), locks the order, lets `change` apply itself to it (and
    /// return the ticket it sends, if any), and saves what changed: the order, its new and
    /// changed lines, the ticket (numbered here), the sales rollup's sums.
    fn change(
        &self,
        id: OrderId,
        claim: Option<&IdempotencyClaim>,
        menu_version: Option<i64>,
        change: &mut dyn FnMut(&mut Order) -> Result<Option<Ticket>, Refused>,
    ) -> Result<Changed, OrderChangeError>;
    /// In one transaction: claims the key (if any), locks the order, lets `pay` apply the
    /// payment to it, and saves the payment and the order.
    fn record_payment(
        &self,
        order_id: OrderId,
        claim: Option<&IdempotencyClaim>,
        pay: &mut dyn FnMut(&mut Order) -> Result<Payment, Refused>,
    ) -> Result<PaymentInsert, OrderChangeError>;
    fn find_payment(&self, id: PaymentId) -> Result<Option<Payment>, StoreError>;
    /// The order's payments, oldest first.
    fn payments(&self, order_id: OrderId) -> Result<Vec<Payment>, StoreError>;
    /// Forgets idempotency keys older than `before`; returns how many.
    fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum OrderServiceError {
    #[error("the order is not valid")]
    Invalid(Vec<PlacementError>),
    #[error("no such order")]
    NotFound,
    #[error("your role may not do this to this order")]
    Forbidden,
    #[error("you work in no location")]
    NoLocation,
    #[error("is required: you work in {count} locations")]
    LocationRequired { count: usize },
    #[error("no such location")]
    UnknownLocation,
    /// Menu items that cannot be ordered here now: each one's name and why.
    #[error("some menu items cannot be ordered")]
    Unorderable(Vec<(ProductName, Unorderable)>),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("the order is at version {current}, not the one If-Match names")]
    VersionMismatch { current: u32 },
    /// The menu snapshot the lines were priced with is out of date: price them again with a
    /// fresh one (see [`OrderService::add_lines`]).
    #[error("the menu changed while the lines were priced")]
    MenuStale,
    #[error("this idempotency key was used with another request")]
    IdempotencyMismatch,
    #[error("the signed-in user no longer exists")]
    ActorGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OrderServiceError {
    /// Whether a snapshot older than storage could have made this refusal (who the caller is,
    /// where they work, which menu items exist and can be ordered), so that it must be
    /// confirmed on fresh ones; a malformed order is malformed on any.
    fn may_be_stale(&self) -> bool {
        match self {
            Self::Invalid(errors) => errors.iter().any(|e| matches!(e, PlacementError::UnknownMenuItem { .. })),
            Self::Forbidden
            | Self::NotFound
            | Self::NoLocation
            | Self::LocationRequired { .. }
            | Self::UnknownLocation
            | Self::Unorderable(_)
            | Self::ActorGone => true,
            Self::Transition(_)
            | Self::VersionMismatch { .. }
            | Self::MenuStale
            | Self::IdempotencyMismatch
            | Self::Store(_) => false,
        }
    }
}

impl From<Denied> for OrderServiceError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Forbidden => Self::Forbidden,
            Denied::Hidden => Self::NotFound,
        }
    }
}

impl From<AddLinesError> for OrderServiceError {
    fn from(error: AddLinesError) -> Self {
        match error {
            AddLinesError::Transition(e) => Self::Transition(e),
            AddLinesError::Invalid(errors) => Self::Invalid(errors),
        }
    }
}

impl From<CorruptOrder> for OrderServiceError {
    fn from(error: CorruptOrder) -> Self {
        Self::Store(StoreError::other(error))
    }
}

/// Runs a change through the port, keeping the change function's own error: the port only
/// learns that it refused.
fn change<C, T>(
    run: impl FnOnce(&mut dyn FnMut(&mut Order) -> Result<C, Refused>) -> Result<T, OrderChangeError>,
    mut decide: impl FnMut(&mut Order) -> Result<C, OrderServiceError>,
) -> Result<T, OrderServiceError> {
    let mut refusal = None;
    let result = run(&mut |order| {
        decide(order).map_err(|e| {
            refusal = Some(e);
            Refused
        })
    });
    match result {
        Ok(value) => Ok(value),
        Err(OrderChangeError::NotFound) => Err(OrderServiceError::NotFound),
        Err(OrderChangeError::Store(e)) => Err(e.into()),
        Err(OrderChangeError::Refused) => {
            Err(refusal.unwrap_or_else(|| StoreError::other(RefusedWithoutReason).into()))
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("storage reported a refusal that the change function did not make")]
struct RefusedWithoutReason;

#[derive(Debug, thiserror::Error)]
#[error("storage reported a used idempotency key for a change that claimed none")]
struct MissingClaimedOrder;

/// The version an `If-Match` names: the change applies only to the order at that version.
fn check_version(order: &Order, expected: Option<u32>) -> Result<(), OrderServiceError> {
    match expected {
        Some(version) if version != order.version() => {
            Err(OrderServiceError::VersionMismatch { current: order.version() })
        }
        _ => Ok(()),
    }
}

/// A changed order, or, for a retried request, the order as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    Changed(Order),
    Replayed(Order),
}

/// What a change to an order asks for besides the change itself: the version `If-Match`
/// names, and the idempotency key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeTerms {
    pub expected_version: Option<u32>,
    pub key: Option<IdempotencyKey>,
}

/// A placed order, or the first answer to a retried request: the order as it was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceOutcome {
    Created(Order),
    Replayed(Order),
}

/// A recorded payment and the order after it, or the first answer to a retried request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Recorded(Payment),
    Replayed(Payment),
}

pub struct OrderService {
    orders: Arc<dyn OrderRepository>,
    writer: Arc<dyn OrderWriter>,
    users: Arc<dyn UserRepository>,
    directory: Arc<dyn Snapshots<Directory>>,
    menu: Arc<dyn Snapshots<Menu>>,
    clock: Arc<dyn Clock>,
}

/// How many times placing an order prepares it again after a snapshot changed under it before
/// it gives up (503): the directory changes when staff or locations do, the menu when prices
/// and sold-out marks do; rarely, both.
const PLACE_ATTEMPTS: usize = 3;

impl std::fmt::Debug for OrderService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderService").finish_non_exhaustive()
    }
}

impl OrderService {
    pub fn new(
        orders: Arc<dyn OrderRepository>,
        writer: Arc<dyn OrderWriter>,
        users: Arc<dyn UserRepository>,
        directory: Arc<dyn Snapshots<Directory>>,
        menu: Arc<dyn Snapshots<Menu>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { orders, writer, users, directory, menu, clock }
    }

    /// Places an order for the signed-in user at `location` (or at the one location they work
    /// in): permission, location and business date from the staff directory in memory, menu
    /// lines priced from the menu in memory, validation and the merge rule here, then one write
    /// through the writer, which checks that both snapshots are still current (no blocking
    /// thread is held meanwhile). When the idempotency key was used before, the answer is the
    /// first order as it was placed if the request is the same, a conflict if not.
    #[instrument(skip_all, fields(lines = request.lines.len()))]
    pub async fn place(
        &self,
        caller: &Caller,
        location: Option<LocationId>,
        request: OrderRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<PlaceOutcome, OrderServiceError> {
        let fingerprint = order_fingerprint(location, &request);
        let id = OrderId(Uuid::now_v7());
        let claim = key.map(|key| IdempotencyClaim { user_id: caller.user_id, key, fingerprint, resource_id: id.0 });
        let mut directory = self.directory.current();
        let mut menu = self.menu.current();
        let uses_menu = request.lines.iter().any(|l| matches!(l, LineRequest::Menu { .. }));
        for _ in 0..PLACE_ATTEMPTS {
            // A refusal is confirmed on fresh snapshots: this process's may predate the user,
            // their new location, or the menu item.
            let order = match self.prepare(id, caller, location, &request, &directory, &menu) {
                Ok(order) => order,
                Err(refusal) if !refusal.may_be_stale() => return Err(refusal),
                Err(_) => {
                    directory = self.directory.refresh(directory.version()).await?;
                    if uses_menu {
                        menu = self.menu.refresh(menu.version()).await?;
                    }
                    self.prepare(id, caller, location, &request, &directory, &menu)?
                }
            };
            // Shared with the writer, not copied: a thousand orders in flight cost their size once.
            let order = Arc::new(order);
            let versions = SnapshotVersions { directory: directory.version(), menu: uses_menu.then(|| menu.version()) };
            match self.writer.write(Arc::clone(&order), claim.clone(), versions).await? {
                WriteOutcome::Written => return Ok(PlaceOutcome::Created(Arc::unwrap_or_clone(order))),
                WriteOutcome::KeyUsed { replay, first } => {
                    if replay.fingerprint != fingerprint {
                        return Err(OrderServiceError::IdempotencyMismatch);
                    }
                    let first = *first.ok_or(OrderServiceError::IdempotencyMismatch)?;
                    return Ok(PlaceOutcome::Replayed(first.as_placed()));
                }
                // Placed again from the fresh snapshots, and stamped anew: the time between an
                // order's stamp and its commit stays within what one attempt may take (the
                // sales rollup's lag counts on it).
                WriteOutcome::Stale { directory: directory_stale, menu: menu_stale } => {
                    if directory_stale {
                        directory = self.directory.refresh(directory.version()).await?;
                    }
                    if menu_stale {
                        menu = self.menu.refresh(menu.version()).await?;
                    }
                }
            }
        }
        Err(StoreError::Unavailable(Box::new(SnapshotsUnsettled)).into())
    }

    /// The order as the snapshots make it: where it goes (and whether the caller may place it
    /// there), its menu lines priced, the merge rule applied.
    fn prepare(
        &self,
        id: OrderId,
        caller: &Caller,
        location: Option<LocationId>,
        request: &OrderRequest,
        directory: &Directory,
        menu: &Menu,
    ) -> Result<Order, OrderServiceError> {
        let at = where_to_place(directory, caller, location)?;
        let new = price_lines(menu, at.id(), request)?;
        Order::place(id, caller.user_id, at, new, self.clock.now()).map_err(OrderServiceError::Invalid)
    }

    pub fn get(&self, caller: &Caller, id: OrderId) -> Result<Order, OrderServiceError> {
        let actor = self.actor(caller)?;
        actor.may(Action::ReadOrders)?;
        let order = self.orders.find(id)?.ok_or(OrderServiceError::NotFound)?;
        actor.may_on(Action::ReadOrders, order.location_id(), None)?;
        Ok(order)
    }

    /// Orders of the caller's locations (every location for an admin), or of the one the filter
    /// names.
    pub fn list(
        &self,
        caller: &Caller,
        filter: &OrderFilter,
        page: PageRequest,
    ) -> Result<Page<Order>, OrderServiceError> {
        let scope = self.actor(caller)?.scope(Action::ReadOrders, filter.location_id)?;
        let rows = self.orders.list(filter, &scope, &page)?;
        Ok(Page::within_budget(
            rows,
            page.limit,
            MAX_PAGE_LINES,
            |o| o.lines().len(),
            |o| Cursor { created_at: o.created_at(), id: o.id().0 },
        ))
    }

    /// Cancels an open order: its waiter, a manager of its location, an admin. Its lines at
    /// the kitchen are voided on their tickets.
    #[instrument(skip_all, fields(order_id = %id))]
    pub fn cancel(
        &self,
        caller: &Caller,
        id: OrderId,
        expected_version: Option<u32>,
    ) -> Result<Order, OrderServiceError> {
        let actor = self.actor(caller)?;
        actor.may(Action::CancelOrder)?;
        let now = self.clock.now();
        let changed = change(
            |cancel| self.orders.change(id, None, None, cancel),
            |order| {
                actor.may_on(Action::CancelOrder, order.location_id(), Some(order.waiter_id()))?;
                check_version(order, expected_version)?;
                order.cancel(actor.user_id, now)?;
                Ok(None)
            },
        )?;
        self.done(changed).map(|(order, _)| order)
    }

    /// Adds lines to an open or partially paid order (its waiter, a manager of its location,
    /// an admin), menu lines priced from `menu` (a stale snapshot is [`OrderServiceError::MenuStale`]:
    /// refresh it and call again), and with `send` sends every new line to the kitchen in the
    /// same transaction. Concurrent adds to one order take turns on its row: none is lost.
    #[instrument(skip_all, fields(order_id = %id, lines = lines.len(), send))]
    pub fn add_lines(
        &self,
        caller: &Caller,
        id: OrderId,
        lines: &[LineRequest],
        send: bool,
        terms: ChangeTerms,
        menu: &Menu,
    ) -> Result<ChangeOutcome, OrderServiceError> {
        let actor = self.actor(caller)?;
        actor.may(Action::ChangeOrder)?;
        let id_text = id.to_string();
        let fingerprint = Fingerprint::of(
            ["add lines", id_text.as_str(), if send { "send" } else { "" }]
                .into_iter()
                .chain(line_texts(lines).iter().map(String::as_str)),
        );
        let claim = terms.key.clone().map(|key| IdempotencyClaim {
            user_id: actor.user_id,
            key,
            fingerprint,
            resource_id: id.0,
        });
        let uses_menu = lines.iter().any(|l| matches!(l, LineRequest::Menu { .. }));
        let now = self.clock.now();
        let changed = change(
            |add| self.orders.change(id, claim.as_ref(), uses_menu.then(|| menu.version()), add),
            |order| {
                actor.may_on(Action::ChangeOrder, order.location_id(), Some(order.waiter_id()))?;
                check_version(order, terms.expected_version)?;
                let request = price(menu, order.location_id(), lines)?;
                order.add_lines(request, now)?;
                if send { self.send_lines(order, now).map(Some) } else { Ok(None) }
            },
        )?;
        self.outcome(changed, fingerprint, id)
    }

    /// Voids a line: a `new` line by the order's waiter, a manager of its location or an
    /// admin; a line already sent only by a manager or an admin (403 for a waiter).
    #[instrument(skip_all, fields(order_id = %id, line))]
    pub fn void_line(
        &self,
        caller: &Caller,
        id: OrderId,
        line: u16,
        reason: VoidReason,
        terms: ChangeTerms,
    ) -> Result<ChangeOutcome, OrderServiceError> {
        let actor = self.actor(caller)?;
        actor.may(Action::ChangeOrder)?;
        let (id_text, line_text) = (id.to_string(), line.to_string());
        let fingerprint = Fingerprint::of(["void line", id_text.as_str(), line_text.as_str(), reason.as_ref()]);
        let claim = terms.key.clone().map(|key| IdempotencyClaim {
            user_id: actor.user_id,
            key,
            fingerprint,
            resource_id: id.0,
        });
        let now = self.clock.now();
        let changed = change(
            |void| self.orders.change(id, claim.as_ref(), None, void),
            |order| {
                actor.may_on(Action::ChangeOrder, order.location_id(), Some(order.waiter_id()))?;
                let sent = order.line(line).is_some_and(|l| l.kitchen_status() != KitchenStatus::New);
                if sent {
                    actor.may_on(Action::VoidSentLine, order.location_id(), None)?;
                }
                check_version(order, terms.expected_version)?;
                order.void_line(line, reason.clone(), actor.user_id, now)?;
                Ok(None)
            },
        )?;
        self.outcome(changed, fingerprint, id)
    }

    /// Sends every new line of the order to the kitchen as one ticket (its waiter, a manager
    /// of its location, an admin). Returns the order and the ticket's id.
    #[instrument(skip_all, fields(order_id = %id))]
    pub fn send(
        &self,
        caller: &Caller,
        id: OrderId,
        expected_version: Option<u32>,
    ) -> Result<(Order, TicketId), OrderServiceError> {
        let actor = self.actor(caller)?;
        actor.may(Action::ChangeOrder)?;
        let now = self.clock.now();
        let changed = change(
            |send| self.orders.change(id, None, None, send),
            |order| {
                actor.may_on(Action::ChangeOrder, order.location_id(), Some(order.waiter_id()))?;
                check_version(order, expected_version)?;
                self.send_lines(order, now).map(Some)
            },
        )?;
        match self.done(changed)? {
            (order, Some(ticket)) => Ok((order, ticket)),
            (_, None) => Err(StoreError::other(RefusedWithoutReason).into()),
        }
    }

    /// Sends the lines of an order just placed (`"send": true`), after the writer wrote it: a
    /// second transaction. A retry of the request with its idempotency key sends what the
    /// first attempt could not (nothing new to send is no error here); a replay answers the
    /// order as placed, its lines where they now stand in the kitchen.
    pub fn send_placed(&self, caller: &Caller, placed: PlaceOutcome) -> Result<PlaceOutcome, OrderServiceError> {
        let id = match &placed {
            PlaceOutcome::Created(order) | PlaceOutcome::Replayed(order) => order.id(),
        };
        let order = match self.send(caller, id, None) {
            Ok((order, _)) => order,
            Err(OrderServiceError::Transition(TransitionError::NothingToSend)) => {
                self.orders.find(id)?.ok_or(OrderServiceError::NotFound)?
            }
            Err(e) => return Err(e),
        };
        Ok(match placed {
            PlaceOutcome::Created(_) => PlaceOutcome::Created(order),
            PlaceOutcome::Replayed(_) => PlaceOutcome::Replayed(order.as_placed()),
        })
    }

    /// The menu snapshot this process holds, to price added lines with (see [`Self::add_lines`]).
    pub fn menu(&self) -> Arc<Menu> {
        self.menu.current()
    }

    /// A menu snapshot newer than `stale`, after [`OrderServiceError::MenuStale`].
    pub async fn fresh_menu(&self, stale: &Menu) -> Result<Arc<Menu>, OrderServiceError> {
        Ok(self.menu.refresh(stale.version()).await?)
    }

    /// The order's new lines on a ticket of its location's business day now.
    fn send_lines(&self, order: &mut Order, now: DateTime<Utc>) -> Result<Ticket, OrderServiceError> {
        let directory = self.directory.current();
        let location = directory.location(order.location_id()).ok_or(OrderServiceError::UnknownLocation)?;
        Ok(order.send(TicketId(Uuid::now_v7()), location.business_date(now), now)?)
    }

    fn done(&self, changed: Changed) -> Result<(Order, Option<TicketId>), OrderServiceError> {
        match changed {
            Changed::Done { order, ticket } => Ok((order, ticket)),
            Changed::MenuStale => Err(OrderServiceError::MenuStale),
            // Only changes with a key can find it used.
            Changed::KeyUsed(_) => Err(StoreError::other(MissingClaimedOrder).into()),
        }
    }

    /// The changed order, or for a retried request the order as it is now.
    fn outcome(
        &self,
        changed: Changed,
        fingerprint: Fingerprint,
        id: OrderId,
    ) -> Result<ChangeOutcome, OrderServiceError> {
        match changed {
            Changed::KeyUsed(replay) => {
                if replay.fingerprint != fingerprint || replay.resource_id != id.0 {
                    return Err(OrderServiceError::IdempotencyMismatch);
                }
                let order = self.orders.find(id)?.ok_or(OrderServiceError::NotFound)?;
                Ok(ChangeOutcome::Replayed(order))
            }
            other => self.done(other).map(|(order, _)| ChangeOutcome::Changed(order)),
        }
    }

    /// Records a payment; concurrent payments on one order serialize on that order only.
    #[instrument(skip_all, fields(order_id = %order_id, method = method.as_str()))]
    pub fn pay(
        &self,
        caller: &Caller,
        order_id: OrderId,
        amount: Money,
        method: PaymentMethod,
        terms: ChangeTerms,
    ) -> Result<PaymentOutcome, OrderServiceError> {
        let actor = self.actor(caller)?;
        actor.may(Action::RecordPayment)?;
        let order_text = order_id.to_string();
        let amount_text = amount.to_string();
        let fingerprint = Fingerprint::of(["payment", &order_text, &amount_text, method.as_str()]);
        let payment_id = PaymentId(Uuid::now_v7());
        let claim = terms.key.map(|key| IdempotencyClaim {
            user_id: actor.user_id,
            key,
            fingerprint,
            resource_id: payment_id.0,
        });
        let now = self.clock.now();
        let outcome = change(
            |pay| self.orders.record_payment(order_id, claim.as_ref(), pay),
            |order| {
                actor.may_on(Action::RecordPayment, order.location_id(), None)?;
                check_version(order, terms.expected_version)?;
                order.record_payment(amount, now)?;
                Ok(Payment { id: payment_id, order_id, amount, method, recorded_by: actor.user_id, created_at: now })
            },
        )?;
        match outcome {
            PaymentInsert::Inserted { payment, .. } => Ok(PaymentOutcome::Recorded(payment)),
            PaymentInsert::KeyUsed(replay) => {
                if replay.fingerprint != fingerprint {
                    return Err(OrderServiceError::IdempotencyMismatch);
                }
                let first = self
                    .orders
                    .find_payment(PaymentId(replay.resource_id))?
                    .ok_or(OrderServiceError::IdempotencyMismatch)?;
                Ok(PaymentOutcome::Replayed(first))
            }
        }
    }

    pub fn payments(&self, caller: &Caller, order_id: OrderId) -> Result<Vec<Payment>, OrderServiceError> {
        self.get(caller, order_id)?;
        Ok(self.orders.payments(order_id)?)
    }

    pub fn purge_idempotency_keys(&self, older_than: chrono::Duration) -> Result<u64, OrderServiceError> {
        Ok(self.orders.purge_idempotency_keys(self.clock.now() - older_than)?)
    }

    fn actor(&self, caller: &Caller) -> Result<Actor, OrderServiceError> {
        self.users.actor(caller)?.ok_or(OrderServiceError::ActorGone)
    }
}

/// Where the caller's order goes, by the permission table and the directory: the location the
/// request names (if the caller may place orders there), or the one location they work in.
fn where_to_place<'d>(
    directory: &'d Directory,
    caller: &Caller,
    requested: Option<LocationId>,
) -> Result<&'d Location, OrderServiceError> {
    let actor = directory.actor(caller.user_id).ok_or(OrderServiceError::ActorGone)?;
    actor.may(Action::PlaceOrder)?;
    let id = match requested {
        Some(id) => {
            actor.may_in(Action::PlaceOrder, id)?;
            id
        }
        None => match directory.locations_of(&actor).as_slice() {
            [only] => *only,
            [] => return Err(OrderServiceError::NoLocation),
            many => return Err(OrderServiceError::LocationRequired { count: many.len() }),
        },
    };
    directory.location(id).ok_or(OrderServiceError::UnknownLocation)
}

/// A snapshot changed under every attempt to place an order.
#[derive(Debug, thiserror::Error)]
#[error("the staff directory or the menu kept changing while the order was placed")]
struct SnapshotsUnsettled;

/// The order with its menu lines priced from `menu` for `location`: every unknown item is a
/// validation error (with the others of the request), every item that cannot be ordered there
/// is named in one conflict.
fn price_lines(menu: &Menu, location: LocationId, request: &OrderRequest) -> Result<NewOrder, OrderServiceError> {
    let lines = price(menu, location, &request.lines)?;
    Ok(NewOrder { customer_name: request.customer_name.clone(), lines })
}

/// The lines with their menu lines priced from `menu` for `location` (see [`price_lines`]).
fn price(menu: &Menu, location: LocationId, request: &[LineRequest]) -> Result<Vec<NewOrderLine>, OrderServiceError> {
    let mut unknown = Vec::new();
    let mut unorderable: Vec<(ProductName, Unorderable)> = Vec::new();
    let mut lines = Vec::with_capacity(request.len());
    for (position, line) in request.iter().enumerate() {
        match line {
            LineRequest::Open { product_name, unit_price, quantity, note } => lines.push(NewOrderLine {
                product_name: product_name.clone(),
                unit_price: *unit_price,
                quantity: *quantity,
                note: note.clone(),
                menu: None,
            }),
            LineRequest::Menu { item, quantity, note } => match menu.orderable(*item, location) {
                None => unknown.push(PlacementError::UnknownMenuItem { line: position }),
                Some((item, _, Err(why))) => {
                    if !unorderable.iter().any(|(name, _)| name == &item.name) {
                        unorderable.push((item.name.clone(), why));
                    }
                }
                Some((item, category, Ok(()))) => lines.push(NewOrderLine {
                    product_name: item.name.clone(),
                    unit_price: item.price,
                    quantity: *quantity,
                    note: note.clone(),
                    menu: Some(MenuLine {
                        item_id: item.id,
                        category_id: category.id,
                        category: category.name.clone(),
                    }),
                }),
            },
        }
    }
    if !unknown.is_empty() {
        return Err(OrderServiceError::Invalid(unknown));
    }
    if !unorderable.is_empty() {
        return Err(OrderServiceError::Unorderable(unorderable));
    }
    Ok(lines)
}

/// What identifies an order request: the location it names, its customer and its lines as
/// the client sent them, in order (see [`line_texts`]), and `send` when it asks for it (so a
/// key used before the kitchen existed still matches).
fn order_fingerprint(location: Option<LocationId>, request: &OrderRequest) -> Fingerprint {
    let location = location.map(|l| l.to_string()).unwrap_or_default();
    let texts = line_texts(&request.lines);
    let send = request.send.then_some("\0send");
    Fingerprint::of(
        ["order", request.customer_name.as_ref(), location.as_str()]
            .into_iter()
            .chain(texts.iter().map(String::as_str))
            .chain(send),
    )
}

/// The lines of a request as texts to digest. An open line without a note is its name, price
/// and quantity (as in version 1, so that a key used before the menu existed still matches);
/// any other line is one text starting with a NUL, which no name can hold.
fn line_texts(lines: &[LineRequest]) -> Vec<String> {
    let note = |n: &Option<LineNote>| n.as_ref().map_or("", |n| n.as_ref()).to_owned();
    lines
        .iter()
        .flat_map(|l| match l {
            LineRequest::Open { product_name, unit_price, quantity, note: None } => {
                vec![product_name.as_ref().to_owned(), unit_price.to_string(), quantity.to_string()]
            }
            LineRequest::Open { product_name, unit_price, quantity, note: n } => {
                vec![format!("\0open\0{}\0{unit_price}\0{quantity}\0{}", product_name.as_ref(), note(n))]
            }
            LineRequest::Menu { item, quantity, note: n } => vec![format!("\0menu\0{item}\0{quantity}\0{}", note(n))],
        })
        .collect()
}
