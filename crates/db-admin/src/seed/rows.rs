//! The rows the generator makes and the loaders copy: one struct per table, the columns in
//! their SQL types, strings borrowed from the menu and the customers (nothing allocated per
//! row). A batch holds the rows of `BATCH_ORDERS` orders.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::Insertable;
use rust_decimal::Decimal;
use uuid::Uuid;

use infrastructure::schema::{order_items, orders, payments};

use super::summary::Stats;

/// Every field is written, none left to its default (`COPY` has no defaults to fall back on).
#[derive(Debug, Insertable)]
#[diesel(table_name = orders, treat_none_as_default_value = false)]
pub(super) struct NewOrderRow<'a> {
    pub id: Uuid,
    pub customer_name: &'a str,
    pub waiter_id: Uuid,
    pub status: &'static str,
    pub total_price: Decimal,
    pub amount_paid: Decimal,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub location_id: Uuid,
    pub business_date: NaiveDate,
    pub version: i32,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = order_items, treat_none_as_default_value = false)]
pub(super) struct NewOrderItemRow<'a> {
    pub order_id: Uuid,
    pub line_no: i16,
    pub product_key: &'a str,
    pub product_name: &'a str,
    pub unit_price: Decimal,
    pub quantity: i32,
    pub subtotal: Decimal,
    pub menu_item_id: Option<Uuid>,
    pub category_id: Option<Uuid>,
    pub category: Option<&'a str>,
    pub note: Option<&'a str>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = payments, treat_none_as_default_value = false)]
pub(super) struct NewPaymentRow {
    pub id: Uuid,
    pub order_id: Uuid,
    pub amount: Decimal,
    pub method: &'static str,
    pub recorded_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// The rows of some orders, loaded in one transaction.
#[derive(Debug, Default)]
pub(super) struct Batch<'a> {
    pub orders: Vec<NewOrderRow<'a>>,
    pub items: Vec<NewOrderItemRow<'a>>,
    pub payments: Vec<NewPaymentRow>,
    pub stats: Stats,
}

/// An amount of cents as the domain's `Money` holds it: a decimal with two places. The
/// generator's amounts are sums of menu prices (each read as a `Money`) and parts of them,
/// positive and far below `Money::MAX`; checking each again through `Money::from_decimal` would
/// only slow the hot path.
pub(super) fn money(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}
