//! Orders: who ordered what, at which price, and the strict status machine.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

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

/// Where an order stands. Transitions: open -> partially_paid -> paid, open -> cancelled.
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
}

/// One product line of an order after merging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    product_name: ProductName,
    product_key: ProductKey,
    unit_price: Money,
    quantity: Quantity,
    subtotal: Money,
    note: Option<LineNote>,
    menu: Option<MenuLine>,
}

impl OrderLine {
    fn new(line: NewOrderLine, product_key: ProductKey) -> Result<Self, MoneyError> {
        let NewOrderLine { product_name, unit_price, quantity, note, menu } = line;
        let subtotal = unit_price.checked_mul(quantity)?;
        Ok(Self { product_name, product_key, unit_price, quantity, subtotal, note, menu })
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
    pub key: ProductKey,
    pub line: NewOrderLine,
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

impl Order {
    pub const MAX_LINES: usize = 100;

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
        if new.lines.is_empty() {
            return Err(vec![PlacementError::NoLines]);
        }
        if new.lines.len() > Self::MAX_LINES {
            return Err(vec![PlacementError::TooManyLines { max: Self::MAX_LINES }]);
        }
        let mut errors = Vec::new();
        // For each product: the request position of its first line, and its merged line.
        let mut merged: Vec<(usize, ProductKey, NewOrderLine)> = Vec::with_capacity(new.lines.len());
        let mut by_key: HashMap<ProductKey, usize> = HashMap::with_capacity(new.lines.len());
        for (position, line) in new.lines.into_iter().enumerate() {
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
                            Err(_) => errors
                                .push(PlacementError::MergedQuantityTooLarge { line: position, max: Quantity::MAX }),
                        }
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut lines = Vec::with_capacity(merged.len());
        let mut total = Money::ZERO;
        for (_, key, line) in merged {
            let line = OrderLine::new(line, key).map_err(|e| vec![PlacementError::Total(e)])?;
            total = total.checked_add(line.subtotal).map_err(|e| vec![PlacementError::Total(e)])?;
            lines.push(line);
        }
        Ok(Self {
            id,
            customer_name: new.customer_name,
            waiter_id,
            location_id: location.id(),
            business_date: location.business_date(now),
            version: 1,
            status: OrderStatus::Open,
            lines,
            total_price: total,
            amount_paid: Money::ZERO,
            created_at: now,
            updated_at: now,
        })
    }

    /// Rebuilds an order read from storage, checking that its numbers agree.
    pub fn restore(stored: StoredOrder) -> Result<Self, CorruptOrder> {
        let corrupt = |reason| CorruptOrder { id: stored.id, reason };
        let mut lines = Vec::with_capacity(stored.lines.len());
        let mut total = Money::ZERO;
        for StoredLine { key, line } in stored.lines {
            if line.menu.as_ref().is_some_and(|m| MenuItem::product_key(m.item_id) != key) {
                return Err(corrupt("a menu line's key is not its item's"));
            }
            let line = OrderLine::new(line, key).map_err(|_| corrupt("a line overflows"))?;
            total = total.checked_add(line.subtotal).map_err(|_| corrupt("the total overflows"))?;
            lines.push(line);
        }
        if lines.is_empty() {
            return Err(corrupt("it has no lines"));
        }
        if total != stored.total_price {
            return Err(corrupt("the stored total is not the sum of its lines"));
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

    /// open -> cancelled; nothing else may be cancelled.
    pub fn cancel(&mut self, now: DateTime<Utc>) -> Result<(), TransitionError> {
        if self.status != OrderStatus::Open {
            return Err(TransitionError::CancelNotOpen(self.status));
        }
        self.status = OrderStatus::Cancelled;
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
        self.status = if self.amount_paid == self.total_price { OrderStatus::Paid } else { OrderStatus::PartiallyPaid };
        self.touch(now);
        Ok(())
    }

    /// Every change: one more version, and the time of it (never before the last change: the
    /// clocks of two replicas may differ a little).
    fn touch(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.updated_at = now.max(self.updated_at);
    }

    /// The order as it was when it was placed: what an idempotent retry of its creation answers.
    pub fn as_placed(&self) -> Self {
        Self {
            status: OrderStatus::Open,
            amount_paid: Money::ZERO,
            version: 1,
            updated_at: self.created_at,
            ..self.clone()
        }
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
        assert_eq!(order.cancel(Utc::now()), Err(TransitionError::CancelNotOpen(OrderStatus::PartiallyPaid)));
        order.record_payment(money("6.00"), Utc::now()).unwrap();
        assert_eq!(order.status(), OrderStatus::Paid);
        assert_eq!(order.balance_due(), Money::ZERO);
        assert_eq!(order.record_payment(money("0.01"), Utc::now()), Err(TransitionError::PaymentOnPaid));
        assert_eq!(order.cancel(Utc::now()), Err(TransitionError::CancelNotOpen(OrderStatus::Paid)));
        assert_eq!(order.version(), 3);
        assert_eq!(order.as_placed().status(), OrderStatus::Open);
        assert_eq!(order.as_placed().version(), 1);
    }

    #[test]
    fn cancelled_orders_take_nothing() {
        let mut order = place(vec![line("Menú", "10.00", 1)]).unwrap();
        order.cancel(Utc::now()).unwrap();
        assert_eq!(order.status(), OrderStatus::Cancelled);
        assert_eq!(order.cancel(Utc::now()), Err(TransitionError::CancelNotOpen(OrderStatus::Cancelled)));
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
                key: ProductName::parse("Menú").unwrap().key(), line: line("Menú", "10.00", 2)
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
}
