//! The menu: categories, items with a price that changes over time, and notes on lines.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::money::{Money, whole_number};
use crate::order::{ProductKey, ProductName};
use crate::text::{self, TextError};

/// A menu item's identifier (a UUID, time-ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MenuItemId(pub Uuid);

impl fmt::Display for MenuItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A menu category's identifier (a UUID, time-ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CategoryId(pub Uuid);

impl fmt::Display for CategoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A category's name: the rule of product names (1 to 120 characters, unique by its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryName(ProductName);

impl CategoryName {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        ProductName::parse(raw).map(Self)
    }

    /// A name read back from storage.
    pub fn restore(raw: &str) -> Result<Self, TextError> {
        ProductName::restore(raw).map(Self)
    }

    /// What makes two category names the same.
    pub fn key(&self) -> String {
        self.0.key().as_ref().to_owned()
    }
}

impl AsRef<str> for CategoryName {
    fn as_ref(&self) -> &str {
        self.0.as_ref()
    }
}

/// Where a category comes in a menu: 0 to 10000, smallest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position(u16);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a whole number from 0 to {max}", max = Position::MAX)]
pub struct PositionError;

impl Position {
    pub const MAX: u16 = 10_000;

    pub fn new(value: i64) -> Result<Self, PositionError> {
        u16::try_from(value).ok().filter(|v| *v <= Self::MAX).map(Self).ok_or(PositionError)
    }

    /// Parses a JSON number's text whose value is a whole number (`10`, `10.0`, `1e1`).
    pub fn parse(raw: &str) -> Result<Self, PositionError> {
        whole_number(raw).map_err(|_| PositionError).and_then(Self::new)
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// A category of the menu (Drinks, Starters). Categories are never deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub id: CategoryId,
    pub name: CategoryName,
    pub position: Position,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Category {
    /// Applies a change (the fields given); `now` never moves `updated_at` back.
    pub fn change(&mut self, name: Option<CategoryName>, position: Option<Position>, now: DateTime<Utc>) {
        if let Some(name) = name {
            self.name = name;
        }
        if let Some(position) = position {
            self.position = position;
        }
        self.updated_at = now.max(self.updated_at);
    }
}

/// A kitchen instruction on a line ("no onions"): 1 to 200 characters after the text rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LineNote(String);

impl LineNote {
    pub const MAX_LEN: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::normalize(raw, 1, Self::MAX_LEN).map(Self)
    }
}

impl AsRef<str> for LineNote {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What a change to a menu item asks for; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MenuItemChange {
    pub name: Option<ProductName>,
    pub category_id: Option<CategoryId>,
    pub price: Option<Money>,
    pub active: Option<bool>,
}

/// A dish or drink of the menu. Never deleted: a retired item is inactive, and can be ordered
/// no more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuItem {
    pub id: MenuItemId,
    pub name: ProductName,
    pub category_id: CategoryId,
    /// The current price (its history is kept beside it, see [`PriceSpan`]).
    pub price: Money,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MenuItem {
    /// The product key of the item's lines: `MENU:` and the item's id. A folded name never
    /// holds a capital letter (see [`text::fold_key`]), so no name's key can be one of these,
    /// and an item's lines count together whatever it was called when they were ordered.
    pub fn product_key(id: MenuItemId) -> ProductKey {
        ProductKey::restore(format!("MENU:{id}"))
    }

    /// Applies a change; returns whether the price changed (a new span of its history starts).
    pub fn change(&mut self, change: MenuItemChange, now: DateTime<Utc>) -> bool {
        let MenuItemChange { name, category_id, price, active } = change;
        if let Some(name) = name {
            self.name = name;
        }
        if let Some(category_id) = category_id {
            self.category_id = category_id;
        }
        if let Some(active) = active {
            self.active = active;
        }
        let repriced = price.is_some_and(|p| p != self.price);
        if let Some(price) = price {
            self.price = price;
        }
        self.updated_at = now.max(self.updated_at);
        repriced
    }
}

/// One price of an item and when it held: from `from` until `to` (exclusive; `None` for the
/// current price).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceSpan {
    pub price: Money,
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_menu_key_is_never_a_names_key() {
        let id = MenuItemId(Uuid::now_v7());
        let key = MenuItem::product_key(id);
        assert!(key.as_ref().starts_with("MENU:"));
        for name in ["MENU: del día", "Menu:x", "ＭＥＮＵ：1", "ᴍᴇɴᴜ:"] {
            let folded = ProductName::parse(name).unwrap().key();
            assert!(!folded.as_ref().chars().any(|c| c.is_ascii_uppercase()), "{name} -> {folded:?}");
        }
    }

    #[test]
    fn a_change_reports_a_new_price_only_when_it_differs() {
        let now = Utc::now();
        let price = |raw| Money::parse_positive(raw, Money::MAX_UNIT_PRICE).unwrap();
        let mut item = MenuItem {
            id: MenuItemId(Uuid::now_v7()),
            name: ProductName::parse("Flan").unwrap(),
            category_id: CategoryId(Uuid::now_v7()),
            price: price("3.00"),
            active: true,
            created_at: now,
            updated_at: now,
        };
        assert!(!item.change(MenuItemChange { price: Some(price("3.00")), ..Default::default() }, now));
        assert!(
            item.change(MenuItemChange { price: Some(price("3.50")), active: Some(false), ..Default::default() }, now)
        );
        assert_eq!((item.price, item.active), (price("3.50"), false));
        assert_eq!(Position::new(10_001), Err(PositionError));
        assert_eq!(Position::parse("1585.0").map(Position::get), Ok(1585));
        assert_eq!(Position::parse("1e1").map(Position::get), Ok(10));
        assert_eq!(Position::parse("1.5"), Err(PositionError));
        assert!(LineNote::parse(&"x".repeat(201)).is_err());
        assert_eq!(LineNote::parse("  sin   cebolla ").unwrap().as_ref(), "sin cebolla");
    }
}
