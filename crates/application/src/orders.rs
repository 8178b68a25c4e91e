//! Orders and their payments: placing, reading, listing, cancelling, paying.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::instrument;
use uuid::Uuid;

use domain::{
    Action, CorruptOrder, CustomerName, LineNote, Location, LocationId, MenuItemId, MenuLine, Money, NewOrder,
    NewOrderLine, Order, OrderId, OrderStatus, Payment, PaymentId, PaymentMethod, PlacementError, ProductName,
    Quantity, TransitionError, UserId,
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
    /// In one transaction: locks the order, lets `cancel` apply the transition, saves it.
    fn cancel(
        &self,
        id: OrderId,
        cancel: &mut dyn FnMut(&mut Order) -> Result<(), Refused>,
    ) -> Result<Order, OrderChangeError>;
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
            Self::Transition(_) | Self::IdempotencyMismatch | Self::Store(_) => false,
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

    /// Cancels an open order: its waiter, a manager of its location, an admin.
    #[instrument(skip_all, fields(order_id = %id))]
    pub fn cancel(&self, caller: &Caller, id: OrderId) -> Result<Order, OrderServiceError> {
        let actor = self.actor(caller)?;
        actor.may(Action::CancelOrder)?;
        let now = self.clock.now();
        change(
            |cancel| self.orders.cancel(id, cancel),
            |order| {
                actor.may_on(Action::CancelOrder, order.location_id(), Some(order.waiter_id()))?;
                Ok(order.cancel(now)?)
            },
        )
    }

    /// Records a payment; concurrent payments on one order serialize on that order only.
    #[instrument(skip_all, fields(order_id = %order_id, method = method.as_str()))]
    pub fn pay(
        &self,
        caller: &Caller,
        order_id: OrderId,
        amount: Money,
        method: PaymentMethod,
        key: Option<IdempotencyKey>,
    ) -> Result<PaymentOutcome, OrderServiceError> {
        let actor = self.actor(caller)?;
        actor.may(Action::RecordPayment)?;
        let order_text = order_id.to_string();
        let amount_text = amount.to_string();
        let fingerprint = Fingerprint::of(["payment", &order_text, &amount_text, method.as_str()]);
        let payment_id = PaymentId(Uuid::now_v7());
        let claim =
            key.map(|key| IdempotencyClaim { user_id: actor.user_id, key, fingerprint, resource_id: payment_id.0 });
        let now = self.clock.now();
        let outcome = change(
            |pay| self.orders.record_payment(order_id, claim.as_ref(), pay),
            |order| {
                actor.may_on(Action::RecordPayment, order.location_id(), None)?;
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
    let mut unknown = Vec::new();
    let mut unorderable: Vec<(ProductName, Unorderable)> = Vec::new();
    let mut lines = Vec::with_capacity(request.lines.len());
    for (position, line) in request.lines.iter().enumerate() {
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
    Ok(NewOrder { customer_name: request.customer_name.clone(), lines })
}

/// What identifies an order request: the location it names, its customer and its lines as
/// the client sent them, in order. An open line without a note is its name, price and quantity
/// (as in version 1, so that a key used before the menu existed still matches); any other line
/// is one text starting with a NUL, which no name can hold.
fn order_fingerprint(location: Option<LocationId>, request: &OrderRequest) -> Fingerprint {
    let location = location.map(|l| l.to_string()).unwrap_or_default();
    let note = |n: &Option<LineNote>| n.as_ref().map_or("", |n| n.as_ref()).to_owned();
    let texts: Vec<String> = request
        .lines
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
        .collect();
    Fingerprint::of(
        ["order", request.customer_name.as_ref(), location.as_str()]
            .into_iter()
            .chain(texts.iter().map(String::as_str)),
    )
}
