//! Orders: who ordered what, at which price, and the strict status machine.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::kitchen::{KitchenStatus, LineVoid, Ticket, TicketId, TicketStatus, VoidReason};
use crate::location::{Location, LocationId};
use crate::menu::{CategoryId, CategoryName, LineNote, MenuItem, MenuItemId};
use crate::money::{Money, MoneyError, Quantity};
use crate::text::{self, TextError};
use crate::user::UserId;

/// An order's identifier (a UUID, time-ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(pub Uuid);

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The customer an order is for: 1 to 120 characters after the text rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerName(String);

impl CustomerName {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::normalize(raw, 1, 120).map(Self)
    }
}

impl AsRef<str> for CustomerName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A product's name as written on an order line: 1 to 120 characters after the text rule.
/// Two names are the same product when their [`ProductKey`]s are equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub const MAX_LEN: usize = 120;

    /// Parses a name by the text rule; a name whose key (see [`text::fold_key`]) would be
    /// longer than [`ProductKey::MAX_LEN`] characters is refused too (only names made of
    /// characters with long compatibility forms get there).
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let name = text::normalize(raw, 1, Self::MAX_LEN)?;
        if text::fold_key(&name).chars().count() > ProductKey::MAX_LEN {
            return Err(TextError::KeyTooLong);
        }
        Ok(Self(name))
    }

    /// A name read back from storage: the text rule again (the key's length was checked when
    /// the name came in, and its key is stored beside it).
    pub fn restore(raw: &str) -> Result<Self, TextError> {
        text::normalize(raw, 1, Self::MAX_LEN).map(Self)
    }

    pub fn key(&self) -> ProductKey {
        ProductKey(text::fold_key(&self.0))
    }
}

impl AsRef<str> for ProductName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What makes two product names the same product: the name's [`text::fold_key`] (compatibility
/// forms, case and look-alike characters unified).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductKey(String);

impl ProductKey {
    /// A key read back from storage, where it was written from [`ProductName::key`] (a data
    /// migration rewrites the stored keys whenever the key function changes).
    pub fn restore(stored: String) -> Self {
        Self(stored)
    }

    /// The longest key stored (three times a name's length: upper-casing and folding can
    /// lengthen a name).
    pub const MAX_LEN: usize = 360;
}

impl AsRef<str> for ProductKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Where an order stands. Transitions: open -> partially_paid -> paid, open -> cancelled; a
/// void can also take partially_paid to paid (when what is left equals what was paid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Open,
    PartiallyPaid,
    Paid,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 4] = [Self::Open, Self::PartiallyPaid, Self::Paid, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::PartiallyPaid => "partially_paid",
            Self::Paid => "paid",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a menu line came from: the item, and its category as it was when the line was added
/// (the item's name and price at that moment are the line's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuLine {
    pub item_id: MenuItemId,
    pub category_id: CategoryId,
    pub category: CategoryName,
}

/// A line as the waiter asked for it, priced: an open line as typed, or a menu line with the
/// menu's name and price of that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrderLine {
    pub product_name: ProductName,
    pub unit_price: Money,
    pub quantity: Quantity,
    pub note: Option<LineNote>,
    /// `None` for an open line.
    pub menu: Option<MenuLine>,
}

impl NewOrderLine {
    /// The product the line counts under: its menu item, or its name for an open line.
    pub fn key(&self) -> ProductKey {
        match &self.menu {
            Some(menu) => MenuItem::product_key(menu.item_id),
            None => self.product_name.key(),
        }
    }
}

/// An order as the waiter typed it, before the merge rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub customer_name: CustomerName,
    pub lines: Vec<NewOrderLine>,
}

/// Why an order cannot be placed. Line positions are those of the request (0-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("an order needs at least one line")]
    NoLines,
    #[error("an order has at most {max} lines")]
    TooManyLines { max: usize },
    #[error("line {line} names the same product as line {first} at another unit price")]
    ConflictingPrice { first: usize, line: usize },
    #[error("line {line} names the same product as line {first} with another note")]
    ConflictingNote { first: usize, line: usize },
    #[error("line {line} names no menu item")]
    UnknownMenuItem { line: usize },
    #[error("the order would have more than {max} live lines")]
    TooManyLiveLines { max: usize },
    #[error("the order would keep more than {max} lines, voided ones included")]
    TooManyKeptLines { max: usize },
    #[error("brings the merged quantity of its product above {max}")]
    MergedQuantityTooLarge { line: usize, max: u32 },
    #[error("the order's total is too large: {0}")]
    Total(MoneyError),
}

/// Why a status transition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("only open orders can be cancelled; this order is {0}")]
    CancelNotOpen(OrderStatus),
    #[error("the order is cancelled and takes no payments")]
    PaymentOnCancelled,
    #[error("the order is already paid")]
    PaymentOnPaid,
    #[error("the payment of {amount} is above the balance due of {balance_due}")]
    PaymentAboveBalance { amount: Money, balance_due: Money },
    #[error("the order is {0} and takes no more lines")]
    LinesOnClosed(OrderStatus),
    #[error("the order has no line {0}")]
    NoSuchLine(u16),
    #[error("line {0} is already voided")]
    AlreadyVoided(u16),
    #[error("the order is cancelled: its lines cannot be voided")]
    VoidOnCancelled,
    #[error("voiding line {line} would leave the total at {total}, below the {amount_paid} already paid")]
    VoidBelowPaid { line: u16, total: Money, amount_paid: Money },
    #[error("the order is cancelled: nothing goes to the kitchen")]
    SendOnCancelled,
    #[error("the order has no new line to send to the kitchen")]
    NothingToSend,
}

/// Why lines cannot be added to an order: the order does not take them, or they are not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddLinesError {
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("the lines are not valid")]
    Invalid(Vec<PlacementError>),
}

/// One product line of an order (the lines of one request merged), known by its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    number: u16,
    /// The order's version that added the line (1: placed with the order).
    added_in: u32,
    product_name: ProductName,
    product_key: ProductKey,
    unit_price: Money,
    quantity: Quantity,
    subtotal: Money,
    note: Option<LineNote>,
    menu: Option<MenuLine>,
    /// The ticket that took the line to the kitchen, and where that ticket stands.
    ticket: Option<(TicketId, TicketStatus)>,
    voided: Option<LineVoid>,
}

impl OrderLine {
    fn new(number: u16, added_in: u32, line: NewOrderLine, product_key: ProductKey) -> Result<Self, MoneyError> {
        let NewOrderLine { product_name, unit_price, quantity, note, menu } = line;
        let subtotal = unit_price.checked_mul(quantity)?;
        Ok(Self {
            number,
            added_in,
            product_name,
            product_key,
            unit_price,
            quantity,
            subtotal,
            note,
            menu,
            ticket: None,
            voided: None,
        })
    }

    /// The line's id: its number in the order, from 1.
    pub fn number(&self) -> u16 {
        self.number
    }
    pub fn added_in(&self) -> u32 {
        self.added_in
    }
    pub fn kitchen_status(&self) -> KitchenStatus {
        self.ticket.map_or(KitchenStatus::New, |(_, status)| KitchenStatus::of_ticket(status))
    }
    pub fn ticket(&self) -> Option<TicketId> {
        self.ticket.map(|(id, _)| id)
    }
    pub fn voided(&self) -> Option<&LineVoid> {
        self.voided.as_ref()
    }
    /// Not voided: counted in the totals.
    pub fn is_live(&self) -> bool {
        self.voided.is_none()
    }

    pub fn product_name(&self) -> &ProductName {
        &self.product_name
    }
    pub fn product_key(&self) -> &ProductKey {
        &self.product_key
    }
    pub fn unit_price(&self) -> Money {
        self.unit_price
    }
    pub fn quantity(&self) -> Quantity {
        self.quantity
    }
    pub fn subtotal(&self) -> Money {
        self.subtotal
    }
    pub fn note(&self) -> Option<&LineNote> {
        self.note.as_ref()
    }
    /// The menu item the line was ordered from; `None` for an open line.
    pub fn menu(&self) -> Option<&MenuLine> {
        self.menu.as_ref()
    }
}

/// A line as storage holds it (its key as stored, see [`ProductKey::restore`]).
#[derive(Debug, Clone)]
pub struct StoredLine {
    pub number: u16,
    pub added_in: u32,
    pub key: ProductKey,
    pub line: NewOrderLine,
    pub ticket: Option<(TicketId, TicketStatus)>,
    pub voided: Option<LineVoid>,
}

/// What storage holds of an order, to be checked again by [`Order::restore`].
#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub id: OrderId,
    pub customer_name: CustomerName,
    pub waiter_id: UserId,
    pub location_id: LocationId,
    pub business_date: NaiveDate,
    pub version: u32,
    pub status: OrderStatus,
    pub lines: Vec<StoredLine>,
    pub total_price: Money,
    pub amount_paid: Money,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why stored data does not make a valid order (a bug or a hand edit; never the client's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored order {id} is inconsistent: {reason}")]
pub struct CorruptOrder {
    pub id: OrderId,
    pub reason: &'static str,
}

/// An order: its lines, its total computed once here, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    id: OrderId,
    customer_name: CustomerName,
    waiter_id: UserId,
    location_id: LocationId,
    /// The location's business day when the order was created (see
    /// [`crate::LocationSettings::business_date`]); it never changes afterwards.
    business_date: NaiveDate,
    /// 1 when placed; one more with every change.
    version: u32,
    status: OrderStatus,
    lines: Vec<OrderLine>,
    total_price: Money,
    amount_paid: Money,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The merge rule on the lines of one request: lines naming the same product (see
/// [`ProductKey`]) at the same unit price and note merge into one (first spelling kept); at a
/// different price or note the request is refused. Every problem is reported, not just the
/// first.
fn merge(lines: Vec<NewOrderLine>) -> Result<Vec<(ProductKey, NewOrderLine)>, Vec<PlacementError>> {
    if lines.is_empty() {
        return Err(vec![PlacementError::NoLines]);
    }
    if lines.len() > Order::MAX_LINES {
        return Err(vec![PlacementError::TooManyLines { max: Order::MAX_LINES }]);
    }
    let mut errors = Vec::new();
    // For each product: the request position of its first line, and its merged line.
    let mut merged: Vec<(usize, ProductKey, NewOrderLine)> = Vec::with_capacity(lines.len());
    let mut by_key: HashMap<ProductKey, usize> = HashMap::with_capacity(lines.len());
    for (position, line) in lines.into_iter().enumerate() {
        let key = line.key();
        match by_key.get(&key) {
            None => {
                by_key.insert(key.clone(), merged.len());
                merged.push((position, key, line));
            }
            Some(&slot) => {
                let (first, _, existing) = &mut merged[slot];
                if existing.unit_price != line.unit_price {
                    errors.push(PlacementError::ConflictingPrice { first: *first, line: position });
                } else if existing.note != line.note {
                    errors.push(PlacementError::ConflictingNote { first: *first, line: position });
                } else {
                    match existing.quantity.checked_add(line.quantity) {
                        Ok(quantity) => existing.quantity = quantity,
                        Err(_) => {
                            errors.push(PlacementError::MergedQuantityTooLarge { line: position, max: Quantity::MAX })
                        }
                    }
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(merged.into_iter().map(|(_, key, line)| (key, line)).collect())
}

impl Order {
    /// The most live (not voided) lines an order has.
    pub const MAX_LINES: usize = 100;
    /// The most lines an order keeps, voided ones included.
    pub const MAX_KEPT_LINES: usize = 500;

    /// Places a new order at `location` by the merge rule: lines naming the same product (see
    /// [`ProductKey`]) at the same unit price merge into one (first spelling kept); at different
    /// prices the order is refused. Every problem is reported, not just the first.
    pub fn place(
        id: OrderId,
        waiter_id: UserId,
        location: &Location,
        new: NewOrder,
        now: DateTime<Utc>,
    ) -> Result<Self, Vec<PlacementError>> {
        let merged = merge(new.lines)?;
        let mut order = Self {
            id,
            customer_name: new.customer_name,
            waiter_id,
            location_id: location.id(),
            business_date: location.business_date(now),
            version: 1,
            status: OrderStatus::Open,
            lines: Vec::with_capacity(merged.len()),
            total_price: Money::ZERO,
            amount_paid: Money::ZERO,
            created_at: now,
            updated_at: now,
        };
        order.append(merged, 1)?;
        Ok(order)
    }

    /// Appends merged lines, numbered after the last one, as added by `version`; the total
    /// follows.
    fn append(&mut self, merged: Vec<(ProductKey, NewOrderLine)>, version: u32) -> Result<(), Vec<PlacementError>> {
        let live = self.lines.iter().filter(|l| l.is_live()).count();
        if live + merged.len() > Self::MAX_LINES {
            return Err(vec![PlacementError::TooManyLiveLines { max: Self::MAX_LINES }]);
        }
        if self.lines.len() + merged.len() > Self::MAX_KEPT_LINES {
            return Err(vec![PlacementError::TooManyKeptLines { max: Self::MAX_KEPT_LINES }]);
        }
        let mut total = self.total_price;
        let mut lines = Vec::with_capacity(merged.len());
        for (key, line) in merged {
            // At most MAX_KEPT_LINES (500) lines: every number fits.
            let number = (self.lines.len() + lines.len() + 1) as u16;
            let line = OrderLine::new(number, version, line, key).map_err(|e| vec![PlacementError::Total(e)])?;
            total = total.checked_add(line.subtotal).map_err(|e| vec![PlacementError::Total(e)])?;
            lines.push(line);
        }
        self.lines.extend(lines);
        self.total_price = total;
        Ok(())
    }

    /// Rebuilds an order read from storage, checking that its numbers agree.
    pub fn restore(stored: StoredOrder) -> Result<Self, CorruptOrder> {
        let corrupt = |reason| CorruptOrder { id: stored.id, reason };
        let mut lines = Vec::with_capacity(stored.lines.len());
        let mut total = Money::ZERO;
        for (position, StoredLine { number, added_in, key, line, ticket, voided }) in
            stored.lines.into_iter().enumerate()
        {
            if line.menu.as_ref().is_some_and(|m| MenuItem::product_key(m.item_id) != key) {
                return Err(corrupt("a menu line's key is not its item's"));
            }
            if usize::from(number) != position + 1 {
                return Err(corrupt("its lines are not numbered 1, 2, 3..."));
            }
            let mut line = OrderLine::new(number, added_in, line, key).map_err(|_| corrupt("a line overflows"))?;
            line.ticket = ticket;
            line.voided = voided;
            if line.is_live() {
                total = total.checked_add(line.subtotal).map_err(|_| corrupt("the total overflows"))?;
            }
            lines.push(line);
        }
        if lines.is_empty() {
            return Err(corrupt("it has no lines"));
        }
        if total != stored.total_price {
            return Err(corrupt("the stored total is not the sum of its live lines"));
        }
        let consistent = match stored.status {
            OrderStatus::Open | OrderStatus::Cancelled => stored.amount_paid.is_zero(),
            OrderStatus::PartiallyPaid => !stored.amount_paid.is_zero() && stored.amount_paid < total,
            OrderStatus::Paid => stored.amount_paid == total,
        };
        if !consistent {
            return Err(corrupt("the amount paid does not agree with the status"));
        }
        if stored.version == 0 {
            return Err(corrupt("its version is 0"));
        }
        Ok(Self {
            id: stored.id,
            customer_name: stored.customer_name,
            waiter_id: stored.waiter_id,
            location_id: stored.location_id,
            business_date: stored.business_date,
            version: stored.version,
            status: stored.status,
            lines,
            total_price: stored.total_price,
            amount_paid: stored.amount_paid,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
        })
    }

    /// open -> cancelled; nothing else may be cancelled. The lines at the kitchen are voided on
    /// their tickets (by `by`, "order cancelled").
    pub fn cancel(&mut self, by: UserId, now: DateTime<Utc>) -> Result<(), TransitionError> {
        if self.status != OrderStatus::Open {
            return Err(TransitionError::CancelNotOpen(self.status));
        }
        let at = now.max(self.updated_at);
        for line in self.lines.iter_mut().filter(|l| l.is_live() && l.ticket.is_some()) {
            line.voided = Some(LineVoid { reason: VoidReason::order_cancelled(), by, at });
        }
        self.status = OrderStatus::Cancelled;
        self.total_price = self.live_total();
        self.touch(now);
        Ok(())
    }

    /// open | partially_paid -> partially_paid | paid, never above the balance due.
    pub fn record_payment(&mut self, amount: Money, now: DateTime<Utc>) -> Result<(), TransitionError> {
        match self.status {
            OrderStatus::Cancelled => return Err(TransitionError::PaymentOnCancelled),
            OrderStatus::Paid => return Err(TransitionError::PaymentOnPaid),
            OrderStatus::Open | OrderStatus::PartiallyPaid => {}
        }
        let balance_due = self.balance_due();
        if amount > balance_due {
            return Err(TransitionError::PaymentAboveBalance { amount, balance_due });
        }
        self.amount_paid = self
            .amount_paid
            .checked_add(amount)
            .map_err(|_| TransitionError::PaymentAboveBalance { amount, balance_due })?;
        self.settle_status();
        self.touch(now);
        Ok(())
    }

    /// Adds the lines of one request (merged among themselves by the rule of [`Order::place`],
    /// never with earlier lines) while the order is open or partially paid. Returns the numbers
    /// of the new lines.
    pub fn add_lines(
        &mut self,
        lines: Vec<NewOrderLine>,
        now: DateTime<Utc>,
    ) -> Result<std::ops::RangeInclusive<u16>, AddLinesError> {
        if !matches!(self.status, OrderStatus::Open | OrderStatus::PartiallyPaid) {
            return Err(TransitionError::LinesOnClosed(self.status).into());
        }
        let merged = merge(lines).map_err(AddLinesError::Invalid)?;
        let first = self.lines.len() as u16 + 1;
        self.append(merged, self.version + 1).map_err(AddLinesError::Invalid)?;
        self.settle_status();
        self.touch(now);
        Ok(first..=self.lines.len() as u16)
    }

    /// Voids a line: it stays on the order (and its ticket), out of every total. Refused on a
    /// cancelled order, and when what is left would be below what was paid.
    pub fn void_line(
        &mut self,
        number: u16,
        reason: VoidReason,
        by: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), TransitionError> {
        if self.status == OrderStatus::Cancelled {
            return Err(TransitionError::VoidOnCancelled);
        }
        let at = now.max(self.updated_at);
        let line = self.lines.iter_mut().find(|l| l.number == number).ok_or(TransitionError::NoSuchLine(number))?;
        if line.voided.is_some() {
            return Err(TransitionError::AlreadyVoided(number));
        }
        let total = self.total_price.checked_sub(line.subtotal).unwrap_or(Money::ZERO);
        if total < self.amount_paid {
            return Err(TransitionError::VoidBelowPaid { line: number, total, amount_paid: self.amount_paid });
        }
        line.voided = Some(LineVoid { reason, by, at });
        self.total_price = total;
        self.settle_status();
        self.touch(now);
        Ok(())
    }

    /// Sends every new live line to the kitchen on one ticket (numbered by storage), at the
    /// location's business date `business_date`. Any order but a cancelled one may send (a
    /// counter order may be paid before it is cooked).
    pub fn send(
        &mut self,
        ticket: TicketId,
        business_date: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Ticket, TransitionError> {
        if self.status == OrderStatus::Cancelled {
            return Err(TransitionError::SendOnCancelled);
        }
        let mut sent = 0;
        for line in self.lines.iter_mut().filter(|l| l.is_live() && l.ticket.is_none()) {
            line.ticket = Some((ticket, TicketStatus::Open));
            sent += 1;
        }
        if sent == 0 {
            return Err(TransitionError::NothingToSend);
        }
        self.touch(now);
        Ok(Ticket {
            id: ticket,
            order_id: self.id,
            location_id: self.location_id,
            business_date,
            number: 0,
            status: TicketStatus::Open,
            created_at: self.updated_at,
            ready_at: None,
            served_at: None,
        })
    }

    /// The sum of the live lines.
    fn live_total(&self) -> Money {
        self.lines.iter().filter(|l| l.is_live()).fold(Money::ZERO, |total, l| {
            // Never overflows: the total of the same lines was checked when they were added.
            total.checked_add(l.subtotal).unwrap_or(total)
        })
    }

    /// The status that the amounts make, for an order that is not cancelled: nothing paid is
    /// open (an order voided down to 0.00 included), everything paid is paid.
    fn settle_status(&mut self) {
        if self.status == OrderStatus::Cancelled {
            return;
        }
        self.status = if self.amount_paid.is_zero() {
            OrderStatus::Open
        } else if self.amount_paid == self.total_price {
            OrderStatus::Paid
        } else {
            OrderStatus::PartiallyPaid
        };
    }

    /// Every change: one more version, and the time of it (never before the last change: the
    /// clocks of two replicas may differ a little).
    fn touch(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.updated_at = now.max(self.updated_at);
    }

    /// The order as it was when it was placed: what an idempotent retry of its creation
    /// answers (its lines of then, none voided; where they stand in the kitchen is now's).
    pub fn as_placed(&self) -> Self {
        let lines: Vec<OrderLine> =
            self.lines.iter().filter(|l| l.added_in == 1).map(|l| OrderLine { voided: None, ..l.clone() }).collect();
        let mut placed = Self {
            status: OrderStatus::Open,
            amount_paid: Money::ZERO,
            version: 1,
            updated_at: self.created_at,
            lines,
            ..self.clone()
        };
        placed.total_price = placed.live_total();
        placed
    }

    /// The line numbered `number`.
    pub fn line(&self, number: u16) -> Option<&OrderLine> {
        self.lines.iter().find(|l| l.number == number)
    }
    pub fn id(&self) -> OrderId {
        self.id
    }
    pub fn customer_name(&self) -> &CustomerName {
        &self.customer_name
    }
    pub fn waiter_id(&self) -> UserId {
        self.waiter_id
    }
    pub fn location_id(&self) -> LocationId {
        self.location_id
    }
    pub fn business_date(&self) -> NaiveDate {
        self.business_date
    }
    pub fn version(&self) -> u32 {
        self.version
    }
    pub fn status(&self) -> OrderStatus {
        self.status
    }
    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }
    pub fn total_price(&self) -> Money {
        self.total_price
    }
    pub fn amount_paid(&self) -> Money {
        self.amount_paid
    }
    pub fn balance_due(&self) -> Money {
        self.total_price.checked_sub(self.amount_paid).unwrap_or(Money::ZERO)
    }
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(raw: &str) -> Money {
        Money::parse_positive(raw, Money::MAX_UNIT_PRICE).unwrap()
    }

    fn line(name: &str, price: &str, quantity: i64) -> NewOrderLine {
        NewOrderLine {
            product_name: ProductName::parse(name).unwrap(),
            unit_price: money(price),
            quantity: Quantity::new(quantity).unwrap(),
            note: None,
            menu: None,
        }
    }

    fn location() -> Location {
        let name = crate::LocationName::parse("Centro").unwrap();
        Location::new(LocationId(Uuid::now_v7()), name, crate::LocationSettings::default(), Utc::now())
    }

    fn someone() -> UserId {
        UserId(Uuid::from_u128(7))
    }

    fn reason() -> VoidReason {
        VoidReason::parse("wrong table").unwrap()
    }

    fn place(lines: Vec<NewOrderLine>) -> Result<Order, Vec<PlacementError>> {
        let new = NewOrder { customer_name: CustomerName::parse("Mesa 4").unwrap(), lines };
        Order::place(OrderId(Uuid::now_v7()), UserId(Uuid::now_v7()), &location(), new, Utc::now())
    }

    #[test]
    fn same_product_same_price_merges_keeping_the_first_spelling() {
        let order = place(vec![
            line("Café  con leche", "2.50", 1),
            line("Tostada", "3.00", 2),
            line("CAFÉ CON LECHE", "2.50", 2),
        ])
        .unwrap();
        assert_eq!(order.lines().len(), 2);
        assert_eq!(order.lines()[0].product_name().as_ref(), "Café con leche");
        assert_eq!(order.lines()[0].quantity().get(), 3);
        assert_eq!(order.lines()[0].subtotal().to_string(), "7.50");
        assert_eq!(order.total_price().to_string(), "13.50");
        assert_eq!(order.status(), OrderStatus::Open);
        assert_eq!(order.balance_due(), order.total_price());
        assert_eq!(order.version(), 1);
        assert_eq!(order.business_date(), order.created_at().date_naive());
    }

    #[test]
    fn same_product_different_price_is_refused_with_every_conflict() {
        let errors = place(vec![
            line("Agua", "1.00", 1),
            line("agua", "1.50", 1),
            line("Pan", "0.50", 1),
            line("AGUA", "2.00", 1),
        ])
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                PlacementError::ConflictingPrice { first: 0, line: 1 },
                PlacementError::ConflictingPrice { first: 0, line: 3 }
            ]
        );
    }

    #[test]
    fn merged_quantity_is_bounded() {
        let errors = place(vec![line("Pan", "0.50", 6000), line("pan", "0.50", 5000)]).unwrap_err();
        assert_eq!(errors, vec![PlacementError::MergedQuantityTooLarge { line: 1, max: 10_000 }]);
    }

    #[test]
    fn a_menu_line_merges_with_its_item_only() {
        let item = crate::MenuItemId(Uuid::now_v7());
        let menu_line = |quantity, note: Option<&str>| NewOrderLine {
            menu: Some(MenuLine {
                item_id: item,
                category_id: crate::CategoryId(Uuid::now_v7()),
                category: crate::CategoryName::parse("Bebidas").unwrap(),
            }),
            note: note.map(|n| LineNote::parse(n).unwrap()),
            ..line("Agua", "1.00", quantity)
        };
        let order = place(vec![menu_line(1, None), line("agua", "1.00", 2), menu_line(3, None)]).unwrap();
        assert_eq!(order.lines().len(), 2, "the open line of the same name stays apart");
        assert_eq!(order.lines()[0].quantity().get(), 4);
        assert_eq!(order.lines()[0].product_key(), &MenuItem::product_key(item));
        assert!(order.lines()[1].menu().is_none());
        let errors = place(vec![menu_line(1, Some("sin hielo")), menu_line(1, None)]).unwrap_err();
        assert_eq!(errors, vec![PlacementError::ConflictingNote { first: 0, line: 1 }]);
    }

    #[test]
    fn line_count_is_bounded() {
        assert_eq!(place(vec![]).unwrap_err(), vec![PlacementError::NoLines]);
        let many = (0..101).map(|i| line(&format!("p{i}"), "1.00", 1)).collect();
        assert_eq!(place(many).unwrap_err(), vec![PlacementError::TooManyLines { max: 100 }]);
    }

    #[test]
    fn payments_walk_the_status_machine() {
        let mut order = place(vec![line("Menú", "10.00", 1)]).unwrap();
        order.record_payment(money("4.00"), Utc::now()).unwrap();
        assert_eq!(order.status(), OrderStatus::PartiallyPaid);
        assert_eq!(order.version(), 2, "every change is a version");
        assert_eq!(order.balance_due().to_string(), "6.00");
        assert_eq!(
            order.record_payment(money("6.01"), Utc::now()),
            Err(TransitionError::PaymentAboveBalance { amount: money("6.01"), balance_due: money("6.00") })
        );
        assert_eq!(
            order.cancel(someone(), Utc::now()),
            Err(TransitionError::CancelNotOpen(OrderStatus::PartiallyPaid))
        );
        order.record_payment(money("6.00"), Utc::now()).unwrap();
        assert_eq!(order.status(), OrderStatus::Paid);
        assert_eq!(order.balance_due(), Money::ZERO);
        assert_eq!(order.record_payment(money("0.01"), Utc::now()), Err(TransitionError::PaymentOnPaid));
        assert_eq!(order.cancel(someone(), Utc::now()), Err(TransitionError::CancelNotOpen(OrderStatus::Paid)));
        assert_eq!(order.version(), 3);
        assert_eq!(order.as_placed().status(), OrderStatus::Open);
        assert_eq!(order.as_placed().version(), 1);
    }

    #[test]
    fn cancelled_orders_take_nothing() {
        let mut order = place(vec![line("Menú", "10.00", 1)]).unwrap();
        order.cancel(someone(), Utc::now()).unwrap();
        assert_eq!(order.status(), OrderStatus::Cancelled);
        assert_eq!(order.cancel(someone(), Utc::now()), Err(TransitionError::CancelNotOpen(OrderStatus::Cancelled)));
        assert_eq!(order.record_payment(money("1.00"), Utc::now()), Err(TransitionError::PaymentOnCancelled));
    }

    #[test]
    fn restore_refuses_inconsistent_numbers() {
        let order = place(vec![line("Menú", "10.00", 2)]).unwrap();
        let stored = |status, paid: &str| StoredOrder {
            id: order.id(),
            customer_name: order.customer_name().clone(),
            waiter_id: order.waiter_id(),
            location_id: order.location_id(),
            business_date: order.business_date(),
            version: 1,
            status,
            lines: vec![StoredLine {
                number: 1,
                added_in: 1,
                key: ProductName::parse("Menú").unwrap().key(),
                line: line("Menú", "10.00", 2),
                ticket: None,
                voided: None,
            }],
            total_price: money("20.00"),
            amount_paid: if paid == "0" { Money::ZERO } else { money(paid) },
            created_at: order.created_at(),
            updated_at: order.updated_at(),
        };
        assert_eq!(Order::restore(stored(OrderStatus::Open, "0")).unwrap(), order);
        assert!(Order::restore(stored(OrderStatus::Paid, "19.99")).is_err());
        assert!(Order::restore(stored(OrderStatus::PartiallyPaid, "20.00")).is_err());
        assert!(Order::restore(stored(OrderStatus::Open, "1.00")).is_err());
    }

    #[test]
    fn later_lines_never_merge_with_earlier_ones_and_are_numbered_after_them() {
        let mut order = place(vec![line("Agua", "1.00", 1), line("Pan", "0.50", 2)]).unwrap();
        let added = order.add_lines(vec![line("agua", "1.00", 2), line("AGUA", "1.00", 1)], Utc::now()).unwrap();
        assert_eq!(added, 3..=3, "merged among themselves");
        assert_eq!(order.lines().len(), 3);
        assert_eq!(order.lines()[2].quantity().get(), 3);
        assert_eq!(order.lines()[2].added_in(), 2);
        assert_eq!(order.total_price().to_string(), "5.00");
        assert_eq!(order.version(), 2);
        let error = order.add_lines(vec![line("Vino", "3.00", 1), line("vino", "4.00", 1)], Utc::now()).unwrap_err();
        assert_eq!(error, AddLinesError::Invalid(vec![PlacementError::ConflictingPrice { first: 0, line: 1 }]));
        assert_eq!(order.version(), 2, "a refused change changes nothing");
    }

    #[test]
    fn the_live_line_limit_counts_live_lines_only() {
        let many = |from: usize, n: usize| (from..from + n).map(|i| line(&format!("p{i}"), "1.00", 1)).collect();
        let mut order = place(many(0, 100)).unwrap();
        assert_eq!(
            order.add_lines(many(100, 1), Utc::now()),
            Err(AddLinesError::Invalid(vec![PlacementError::TooManyLiveLines { max: 100 }]))
        );
        order.void_line(1, reason(), someone(), Utc::now()).unwrap();
        assert_eq!(order.add_lines(many(100, 1), Utc::now()), Ok(101..=101));
    }

    #[test]
    fn voids_leave_the_line_and_take_it_out_of_the_total() {
        let mut order = place(vec![line("Agua", "1.00", 1), line("Pan", "0.50", 2)]).unwrap();
        order.void_line(2, reason(), someone(), Utc::now()).unwrap();
        assert_eq!(order.total_price().to_string(), "1.00");
        assert_eq!(order.lines().len(), 2);
        assert_eq!(order.lines()[1].voided().unwrap().reason.as_ref(), "wrong table");
        assert_eq!(order.void_line(2, reason(), someone(), Utc::now()), Err(TransitionError::AlreadyVoided(2)));
        assert_eq!(order.void_line(9, reason(), someone(), Utc::now()), Err(TransitionError::NoSuchLine(9)));
        order.void_line(1, reason(), someone(), Utc::now()).unwrap();
        assert_eq!(order.total_price(), Money::ZERO, "an all-voided order totals 0.00");
        assert_eq!(order.status(), OrderStatus::Open);
        order.add_lines(vec![line("Café", "1.20", 1)], Utc::now()).unwrap();
        assert_eq!(order.total_price().to_string(), "1.20");
        order.void_line(3, reason(), someone(), Utc::now()).unwrap();
        order.cancel(someone(), Utc::now()).unwrap();
        assert_eq!(order.version(), 6);
    }

    #[test]
    fn a_void_never_leaves_the_total_below_what_was_paid() {
        let mut order = place(vec![line("Agua", "1.00", 1), line("Pan", "0.50", 2)]).unwrap();
        order.record_payment(money("1.50"), Utc::now()).unwrap();
        assert_eq!(
            order.void_line(2, reason(), someone(), Utc::now()),
            Err(TransitionError::VoidBelowPaid { line: 2, total: money("1.00"), amount_paid: money("1.50") })
        );
        order.void_line(1, reason(), someone(), Utc::now()).unwrap_err();
        let mut order = place(vec![line("Agua", "1.00", 1), line("Pan", "0.50", 2)]).unwrap();
        order.record_payment(money("1.00"), Utc::now()).unwrap();
        order.void_line(2, reason(), someone(), Utc::now()).unwrap();
        assert_eq!(order.status(), OrderStatus::Paid, "what is left is paid");
        assert_eq!(
            order.add_lines(vec![line("Café", "1.20", 1)], Utc::now()),
            Err(AddLinesError::Transition(TransitionError::LinesOnClosed(OrderStatus::Paid)))
        );
    }

    #[test]
    fn sending_takes_the_new_live_lines_and_cancelling_voids_them_on_their_ticket() {
        let mut order = place(vec![line("Agua", "1.00", 1), line("Pan", "0.50", 2)]).unwrap();
        order.void_line(2, reason(), someone(), Utc::now()).unwrap();
        let first = TicketId(Uuid::now_v7());
        let ticket = order.send(first, order.business_date(), Utc::now()).unwrap();
        assert_eq!((ticket.order_id, ticket.status, ticket.number), (order.id(), TicketStatus::Open, 0));
        assert_eq!(order.lines()[0].kitchen_status(), KitchenStatus::Sent);
        assert_eq!(order.lines()[1].kitchen_status(), KitchenStatus::New, "a voided line is never sent");
        assert_eq!(
            order.send(TicketId(Uuid::now_v7()), order.business_date(), Utc::now()),
            Err(TransitionError::NothingToSend)
        );
        order.add_lines(vec![line("Café", "1.20", 1)], Utc::now()).unwrap();
        order.send(TicketId(Uuid::now_v7()), order.business_date(), Utc::now()).unwrap();
        assert_eq!(order.lines()[2].ticket().map(|t| t != first), Some(true));
        order.cancel(someone(), Utc::now()).unwrap();
        assert!(order.lines().iter().all(|l| l.voided().is_some()), "every line at the kitchen is voided");
        assert_eq!(order.lines()[0].voided().unwrap().reason.as_ref(), "order cancelled");
        assert_eq!(order.total_price(), Money::ZERO);
        assert_eq!(order.send(first, order.business_date(), Utc::now()), Err(TransitionError::SendOnCancelled));
        let placed = order.as_placed();
        assert_eq!(placed.lines().len(), 2);
        assert_eq!(placed.total_price().to_string(), "2.00");
    }
}
