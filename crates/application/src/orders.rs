//! Orders and their payments: placing, reading, listing, cancelling, paying.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::instrument;
use uuid::Uuid;

use domain::{
    CorruptOrder, Money, NewOrder, Order, OrderId, OrderStatus, Payment, PaymentId, PaymentMethod, PlacementError,
    TransitionError, UserId,
};

use crate::auth::Actor;
use crate::clock::Clock;
use crate::idempotency::{Fingerprint, IdempotencyClaim, IdempotencyKey, Replay};
use crate::page::{Cursor, Page, PageRequest};
use crate::store::StoreError;
use crate::users::UserRepository;

/// Filters of the order list; every one optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub waiter_id: Option<UserId>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
}

/// What the single atomic insert of an order did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOrder {
    Inserted,
    /// The idempotency key was already claimed (by a first request, or one racing this one).
    KeyUsed,
    /// The waiter in the token no longer exists; nothing was written.
    ActorGone,
}

/// An insert under way: resolves once the order's statement has committed (or failed).
pub type PendingInsert = Pin<Box<dyn Future<Output = Result<InsertOrder, StoreError>> + Send>>;

/// Writes new orders. Unlike the repository it is asynchronous: an implementation may put the
/// orders that arrive at the same moment into one statement (one round trip, one commit), each
/// order still all-or-nothing and unaffected by its neighbours.
pub trait OrderWriter: Send + Sync {
    /// The same contract as [`OrderRepository::insert`].
    fn insert(&self, order: Arc<Order>, claim: Option<IdempotencyClaim>) -> PendingInsert;
}

/// What recording a payment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentInsert {
    Inserted { payment: Payment, order: Order },
    KeyUsed(Replay),
}

/// Storage of orders and their payments.
pub trait OrderRepository: Send + Sync {
    /// Inserts the order with all its lines and claims the idempotency key, as one atomic step,
    /// but only if the waiter exists and the key is unclaimed.
    fn insert(&self, order: &Order, claim: Option<&IdempotencyClaim>) -> Result<InsertOrder, StoreError>;
    fn find(&self, id: OrderId) -> Result<Option<Order>, StoreError>;
    fn find_claim(&self, user: UserId, key: &IdempotencyKey) -> Result<Option<Replay>, StoreError>;
    /// Up to `page.limit + 1` orders, newest first, after the cursor.
    fn list(&self, filter: &OrderFilter, page: &PageRequest) -> Result<Vec<Order>, StoreError>;
    /// In one transaction: locks the order, lets `cancel` apply the transition, saves it.
    fn cancel(
        &self,
        id: OrderId,
        cancel: &mut dyn FnMut(&mut Order) -> Result<(), OrderServiceError>,
    ) -> Result<Order, OrderServiceError>;
    /// In one transaction: claims the key (if any), locks the order, lets `pay` apply the
    /// payment to it, and saves the payment and the order.
    fn record_payment(
        &self,
        order_id: OrderId,
        claim: Option<&IdempotencyClaim>,
        pay: &mut dyn FnMut(&mut Order) -> Result<Payment, OrderServiceError>,
    ) -> Result<PaymentInsert, OrderServiceError>;
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
    #[error("only the order's waiter or an admin may do this")]
    Forbidden,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("this idempotency key was used with another request")]
    IdempotencyMismatch,
    #[error("the signed-in user no longer exists")]
    ActorGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CorruptOrder> for OrderServiceError {
    fn from(error: CorruptOrder) -> Self {
        Self::Store(StoreError::other(error))
    }
}

/// A placed order, or a retried request whose first answer [`OrderService::replay`] gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceOutcome {
    Created(Order),
    Retried(Retry),
}

/// A request whose idempotency key was used before: what it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    key: IdempotencyKey,
    fingerprint: Fingerprint,
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
    clock: Arc<dyn Clock>,
}

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
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { orders, writer, users, clock }
    }

    /// Places an order for the signed-in waiter: validation and the merge rule here, then one
    /// insert through the writer (no blocking thread is held meanwhile). When the idempotency
    /// key was used before, the outcome is a [`Retry`] for [`Self::replay`].
    #[instrument(skip_all, fields(lines = new.lines.len()))]
    pub async fn place(
        &self,
        actor: &Actor,
        new: NewOrder,
        key: Option<IdempotencyKey>,
    ) -> Result<PlaceOutcome, OrderServiceError> {
        let fingerprint = order_fingerprint(&new);
        let id = OrderId(Uuid::now_v7());
        let order = Order::place(id, actor.user_id, new, self.clock.now()).map_err(OrderServiceError::Invalid)?;
        let claim = key.map(|key| IdempotencyClaim { user_id: actor.user_id, key, fingerprint, resource_id: id.0 });
        let retry = claim.as_ref().map(|c| Retry { key: c.key.clone(), fingerprint });
        // Shared with the writer, not copied: a thousand orders in flight cost their size once.
        let order = Arc::new(order);
        match self.writer.insert(Arc::clone(&order), claim).await? {
            InsertOrder::Inserted => Ok(PlaceOutcome::Created(Arc::unwrap_or_clone(order))),
            InsertOrder::ActorGone => Err(OrderServiceError::ActorGone),
            InsertOrder::KeyUsed => Ok(PlaceOutcome::Retried(retry.ok_or_else(|| StoreError::other(MissingClaim))?)),
        }
    }

    /// The first answer to a retried request: the order as it was placed, if the retry asks for
    /// the same thing; a conflict otherwise.
    pub fn replay(&self, actor: &Actor, retry: Retry) -> Result<Order, OrderServiceError> {
        let replay =
            self.orders.find_claim(actor.user_id, &retry.key)?.ok_or_else(|| StoreError::other(MissingClaim))?;
        if replay.fingerprint != retry.fingerprint {
            return Err(OrderServiceError::IdempotencyMismatch);
        }
        let first = self.orders.find(OrderId(replay.resource_id))?.ok_or(OrderServiceError::IdempotencyMismatch)?;
        Ok(first.as_placed())
    }

    pub fn get(&self, actor: &Actor, id: OrderId) -> Result<Order, OrderServiceError> {
        self.ensure_exists(actor)?;
        self.orders.find(id)?.ok_or(OrderServiceError::NotFound)
    }

    pub fn list(
        &self,
        actor: &Actor,
        filter: &OrderFilter,
        page: PageRequest,
    ) -> Result<Page<Order>, OrderServiceError> {
        self.ensure_exists(actor)?;
        let rows = self.orders.list(filter, &page)?;
        Ok(Page::from_rows(rows, page.limit, |o| Cursor { created_at: o.created_at(), id: o.id().0 }))
    }

    /// Cancels an open order: its waiter or an admin.
    #[instrument(skip_all, fields(order_id = %id))]
    pub fn cancel(&self, actor: &Actor, id: OrderId) -> Result<Order, OrderServiceError> {
        self.ensure_exists(actor)?;
        let now = self.clock.now();
        self.orders.cancel(id, &mut |order| {
            if !actor.is_admin() && order.waiter_id() != actor.user_id {
                return Err(OrderServiceError::Forbidden);
            }
            Ok(order.cancel(now)?)
        })
    }

    /// Records a payment; concurrent payments on one order serialize on that order only.
    #[instrument(skip_all, fields(order_id = %order_id, method = method.as_str()))]
    pub fn pay(
        &self,
        actor: &Actor,
        order_id: OrderId,
        amount: Money,
        method: PaymentMethod,
        key: Option<IdempotencyKey>,
    ) -> Result<PaymentOutcome, OrderServiceError> {
        self.ensure_exists(actor)?;
        let order_text = order_id.to_string();
        let amount_text = amount.to_string();
        let fingerprint = Fingerprint::of(["payment", &order_text, &amount_text, method.as_str()]);
        let payment_id = PaymentId(Uuid::now_v7());
        let claim =
            key.map(|key| IdempotencyClaim { user_id: actor.user_id, key, fingerprint, resource_id: payment_id.0 });
        let now = self.clock.now();
        let outcome = self.orders.record_payment(order_id, claim.as_ref(), &mut |order| {
            order.record_payment(amount, now)?;
            Ok(Payment { id: payment_id, order_id, amount, method, recorded_by: actor.user_id, created_at: now })
        })?;
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

    pub fn payments(&self, actor: &Actor, order_id: OrderId) -> Result<Vec<Payment>, OrderServiceError> {
        self.ensure_exists(actor)?;
        if self.orders.find(order_id)?.is_none() {
            return Err(OrderServiceError::NotFound);
        }
        Ok(self.orders.payments(order_id)?)
    }

    pub fn purge_idempotency_keys(&self, older_than: chrono::Duration) -> Result<u64, OrderServiceError> {
        Ok(self.orders.purge_idempotency_keys(self.clock.now() - older_than)?)
    }

    fn ensure_exists(&self, actor: &Actor) -> Result<(), OrderServiceError> {
        if self.users.exists(actor.user_id)? { Ok(()) } else { Err(OrderServiceError::ActorGone) }
    }
}

/// What identifies an order request: its customer and its lines as typed, in order.
fn order_fingerprint(new: &NewOrder) -> Fingerprint {
    let texts: Vec<String> = new
        .lines
        .iter()
        .flat_map(|l| [l.product_name.as_ref().to_owned(), l.unit_price.to_string(), l.quantity.to_string()])
        .collect();
    Fingerprint::of(["order", new.customer_name.as_ref()].into_iter().chain(texts.iter().map(String::as_str)))
}

#[derive(Debug, thiserror::Error)]
#[error("an idempotency key was reported as used but its record is missing")]
struct MissingClaim;
