//! Bodies of the order endpoints.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use application::{LineRequest, OrderFilter, OrderRequest, PageRequest};
use domain::{
    CustomerName, KitchenStatus, LineNote, LineVoid, LocationId, MenuItemId, Money, Order, OrderStatus, ProductName,
    Quantity, VoidReason,
};

use super::cursor::CursorCodec;
use super::money::{money_input_schema, parse_money, parse_quantity, quantity_input_schema};
use super::time::parse_instant;
use super::{Fields, NumberInput, Object, page_request};
use crate::error::ApiError;
use crate::problem::FieldError;

/// One line of a new order as the body carries it: a menu line when `menu_item_id` is given,
/// else an open line (the version 1 shape). Documented as [`OrderItemRequest`].
#[derive(Debug, Deserialize)]
pub struct OrderLineInput {
    pub menu_item_id: Option<Uuid>,
    pub product_name: Option<String>,
    pub unit_price: Option<NumberInput>,
    pub quantity: Option<NumberInput>,
    #[serde(default, deserialize_with = "super::non_null")]
    pub note: Option<String>,
}

/// A line from the menu: its name, category and unit price are the menu's when the order is
/// placed, and stay on the line when the menu changes later. Lines of the same item merge (when
/// their notes are equal); a retired item, or one the order's location has sold out, is a 409
/// naming it; an id that names no item is a 422.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MenuLineRequest {
    #[schema(schema_with = super::patterns::id_schema)]
    pub menu_item_id: Uuid,
    #[schema(schema_with = quantity_input_schema)]
    pub quantity: NumberInput,
    #[schema(schema_with = super::patterns::note_schema)]
    pub note: Option<String>,
}

/// An open line, typed by the waiter (the version 1 shape): lines naming the same product
/// (ignoring case and extra spaces) merge when their unit prices and notes are equal; at
/// different prices the order is refused. An open line never merges with a menu line.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OpenLineRequest {
    #[schema(schema_with = super::patterns::product_name_schema)]
    pub product_name: String,
    /// At most 1000000.00.
    #[schema(schema_with = money_input_schema)]
    pub unit_price: NumberInput,
    #[schema(schema_with = quantity_input_schema)]
    pub quantity: NumberInput,
    #[schema(schema_with = super::patterns::note_schema)]
    pub note: Option<String>,
}

/// One line of a new order: from the menu, or open.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OrderItemRequest {
    Menu(MenuLineRequest),
    Open(OpenLineRequest),
}

impl OrderLineInput {
    /// The line, with every failing field recorded under `items[i]`.
    fn parse(self, i: usize, fields: &mut Fields) -> Option<LineRequest> {
        let open = match self.menu_item_id {
            Some(_) => {
                for (field, given) in
                    [("product_name", self.product_name.is_some()), ("unit_price", self.unit_price.is_some())]
                {
                    if given {
                        fields.push(FieldError::new(
                            format!("items[{i}].{field}"),
                            "must not be given with menu_item_id: a menu line takes the menu's name and price",
                        ));
                    }
                }
                None
            }
            None => {
                let name = fields.required(
                    format!("items[{i}].product_name"),
                    self.product_name.as_deref(),
                    ProductName::parse,
                );
                let price = match &self.unit_price {
                    None => fields.required(format!("items[{i}].unit_price"), None, |_| Err::<Money, _>("")),
                    Some(input) => {
                        fields.check(format!("items[{i}].unit_price"), parse_money(input, Money::MAX_UNIT_PRICE))
                    }
                };
                Some((name, price))
            }
        };
        let quantity = match &self.quantity {
            None => fields.required(format!("items[{i}].quantity"), None, |_| Err::<Quantity, _>("")),
            Some(input) => fields.check(format!("items[{i}].quantity"), parse_quantity(input)),
        };
        let note = fields.optional(format!("items[{i}].note"), self.note.as_deref(), LineNote::parse);
        let (quantity, note) = (quantity?, note?);
        match (self.menu_item_id, open) {
            (Some(item), _) => Some(LineRequest::Menu { item: MenuItemId(item), quantity, note }),
            (None, Some((Some(product_name), Some(unit_price)))) => {
                Some(LineRequest::Open { product_name, unit_price, quantity, note })
            }
            (None, _) => None,
        }
    }
}

/// A new order. The waiter is the signed-in user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOrderRequest {
    #[schema(schema_with = super::patterns::optional_location_id_schema)]
    pub location_id: Option<Uuid>,
    #[schema(schema_with = super::patterns::customer_name_schema, required = true)]
    pub customer_name: Option<String>,
    #[schema(value_type = Vec<OrderItemRequest>, required = true, min_items = 1, max_items = 100)]
    pub items: Option<Vec<Object<OrderLineInput>>>,
    /// Send the lines to the kitchen as a ticket once the order is placed (default false).
    #[serde(default, deserialize_with = "super::non_null")]
    #[schema(value_type = bool, required = false)]
    pub send: Option<bool>,
}

/// The lines of a request's `items`, every failing one recorded.
fn parse_items(items: Option<Vec<Object<OrderLineInput>>>, fields: &mut Fields) -> Option<Vec<LineRequest>> {
    match items {
        None => {
            fields.push(FieldError::new("items", "is required"));
            None
        }
        // Parsing thousands of lines would only add noise to the answer.
        Some(items) if items.is_empty() || items.len() > Order::MAX_LINES => {
            fields.push(FieldError::new("items", format!("must have 1 to {} lines", Order::MAX_LINES)));
            None
        }
        Some(items) => {
            let mut lines = Vec::with_capacity(items.len());
            for (i, Object(item)) in items.into_iter().enumerate() {
                lines.extend(item.parse(i, fields));
            }
            Some(lines)
        }
    }
}

impl CreateOrderRequest {
    /// The location asked for, and the order.
    pub fn parse(self) -> Result<(Option<LocationId>, OrderRequest), Vec<FieldError>> {
        let location = self.location_id.map(LocationId);
        let mut fields = Fields::default();
        let customer_name = fields.required("customer_name", self.customer_name.as_deref(), CustomerName::parse);
        let lines = parse_items(self.items, &mut fields);
        let send = self.send.unwrap_or(false);
        let order = match (customer_name, lines) {
            (Some(customer_name), Some(lines)) => Some((location, OrderRequest { customer_name, lines, send })),
            _ => None,
        };
        fields.finish(order)
    }
}

/// Lines to add to an order. They merge among themselves by the rule of a new order, never
/// with the order's earlier lines.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddItemsRequest {
    #[schema(value_type = Vec<OrderItemRequest>, required = true, min_items = 1, max_items = 100)]
    pub items: Option<Vec<Object<OrderLineInput>>>,
    /// Send every new line of the order (these and any earlier unsent ones) to the kitchen as
    /// one ticket, in the same transaction (default false).
    #[serde(default, deserialize_with = "super::non_null")]
    #[schema(value_type = bool, required = false)]
    pub send: Option<bool>,
}

impl AddItemsRequest {
    /// The lines, and whether to send them.
    pub fn parse(self) -> Result<(Vec<LineRequest>, bool), Vec<FieldError>> {
        let mut fields = Fields::default();
        let lines = parse_items(self.items, &mut fields);
        let send = self.send.unwrap_or(false);
        fields.finish(lines.map(|lines| (lines, send)))
    }
}

/// Why a line is voided.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VoidLineRequest {
    #[schema(schema_with = super::patterns::void_reason_schema, required = true)]
    pub reason: Option<String>,
}

impl VoidLineRequest {
    pub fn parse(self) -> Result<VoidReason, Vec<FieldError>> {
        let mut fields = Fields::default();
        let reason = fields.required("reason", self.reason.as_deref(), VoidReason::parse);
        fields.finish(reason)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatusDto {
    Open,
    PartiallyPaid,
    Paid,
    Cancelled,
}

impl From<OrderStatus> for OrderStatusDto {
    fn from(status: OrderStatus) -> Self {
        match status {
            OrderStatus::Open => Self::Open,
            OrderStatus::PartiallyPaid => Self::PartiallyPaid,
            OrderStatus::Paid => Self::Paid,
            OrderStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<OrderStatusDto> for OrderStatus {
    fn from(status: OrderStatusDto) -> Self {
        match status {
            OrderStatusDto::Open => Self::Open,
            OrderStatusDto::PartiallyPaid => Self::PartiallyPaid,
            OrderStatusDto::Paid => Self::Paid,
            OrderStatusDto::Cancelled => Self::Cancelled,
        }
    }
}

/// Whether a line came from the menu or was typed.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LineKindDto {
    Menu,
    Open,
}

/// Where a line stands in the kitchen: not sent yet, or its ticket's status.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KitchenStatusDto {
    New,
    Sent,
    Ready,
    Served,
}

impl From<KitchenStatus> for KitchenStatusDto {
    fn from(status: KitchenStatus) -> Self {
        match status {
            KitchenStatus::New => Self::New,
            KitchenStatus::Sent => Self::Sent,
            KitchenStatus::Ready => Self::Ready,
            KitchenStatus::Served => Self::Served,
        }
    }
}

/// A line's void: why, by whom, when.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoidResponse {
    #[schema(example = "wrong table")]
    pub reason: String,
    /// The user who voided the line.
    pub by: Uuid,
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub at: DateTime<Utc>,
}

impl From<&LineVoid> for VoidResponse {
    fn from(void: &LineVoid) -> Self {
        Self { reason: void.reason.as_ref().to_owned(), by: void.by.0, at: void.at }
    }
}

/// One line of an order (the lines of one request naming the same product at the same price
/// are merged; lines of later requests stay apart).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderItemResponse {
    /// The line's id: its number in the order, from 1.
    #[schema(example = 1, minimum = 1, maximum = 500)]
    pub id: u16,
    pub kind: LineKindDto,
    /// The menu item the line was ordered from; null for an open line.
    pub menu_item_id: Option<Uuid>,
    /// The item's category when the line was added; null for an open line.
    #[schema(example = "Bebidas")]
    pub category: Option<String>,
    /// For a menu line, the item's name when the line was added.
    #[schema(example = "Café con leche")]
    pub product_name: String,
    #[schema(example = "2.50", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub unit_price: String,
    #[schema(example = 2, minimum = 1, maximum = 10000)]
    pub quantity: u32,
    #[schema(example = "5.00", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub subtotal: String,
    #[schema(example = "sin cebolla")]
    pub note: Option<String>,
    pub kitchen_status: KitchenStatusDto,
    /// Null, or the void: a voided line stays on the order, out of every total.
    pub voided: Option<VoidResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderResponse {
    pub id: Uuid,
    #[schema(example = "Mesa 4")]
    pub customer_name: String,
    pub waiter_id: Uuid,
    pub location_id: Uuid,
    /// The location's business day when the order was created.
    #[schema(value_type = String, format = Date, example = "2026-12-03")]
    pub business_date: NaiveDate,
    /// 1 when created, one more with every change (also the `ETag`).
    #[schema(example = 1, minimum = 1)]
    pub version: u32,
    pub status: OrderStatusDto,
    pub items: Vec<OrderItemResponse>,
    #[schema(example = "5.00", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub total_price: String,
    #[schema(example = "0.00", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub amount_paid: String,
    #[schema(example = "5.00", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub balance_due: String,
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl From<&Order> for OrderResponse {
    fn from(order: &Order) -> Self {
        Self {
            id: order.id().0,
            customer_name: order.customer_name().as_ref().to_owned(),
            waiter_id: order.waiter_id().0,
            location_id: order.location_id().0,
            business_date: order.business_date(),
            version: order.version(),
            status: order.status().into(),
            items: order
                .lines()
                .iter()
                .map(|l| OrderItemResponse {
                    id: l.number(),
                    kind: if l.menu().is_some() { LineKindDto::Menu } else { LineKindDto::Open },
                    menu_item_id: l.menu().map(|m| m.item_id.0),
                    category: l.menu().map(|m| m.category.as_ref().to_owned()),
                    product_name: l.product_name().as_ref().to_owned(),
                    unit_price: l.unit_price().to_string(),
                    quantity: l.quantity().get(),
                    subtotal: l.subtotal().to_string(),
                    note: l.note().map(|n| n.as_ref().to_owned()),
                    kitchen_status: l.kitchen_status().into(),
                    voided: l.voided().map(VoidResponse::from),
                })
                .collect(),
            total_price: order.total_price().to_string(),
            amount_paid: order.amount_paid().to_string(),
            balance_due: order.balance_due().to_string(),
            created_at: order.created_at(),
            updated_at: order.updated_at(),
        }
    }
}

/// Filters and page of the order list.
#[derive(Debug, Deserialize, IntoParams, Validate)]
#[into_params(parameter_in = Query)]
pub struct ListOrdersQuery {
    /// Page size, 1 to 100 (default 20). A page also ends before its orders' lines would pass
    /// 1000 (the first order always comes): it then holds fewer orders, and `next_cursor` goes
    /// on from there.
    #[validate(range(min = 1, max = application::PageRequest::MAX_LIMIT))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[A-Za-z0-9_-]{48}$")]
    pub cursor: Option<String>,
    /// Only this location's orders (one the signed-in user works in).
    pub location_id: Option<Uuid>,
    pub status: Option<OrderStatusDto>,
    pub waiter_id: Option<Uuid>,
    /// Orders created at or after this instant (RFC 3339, years 0000 to 9999).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_from: Option<String>,
    /// Orders created at or before this instant (RFC 3339, years 0000 to 9999).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_to: Option<String>,
}

impl ListOrdersQuery {
    /// The filter and the page: every failing field in one 422, a garbled cursor a 400.
    pub fn parse(&self, cursors: &CursorCodec) -> Result<(OrderFilter, PageRequest), ApiError> {
        let mut fields = Fields::default();
        fields.validated(self.validate());
        let mut instant = |field: &str, raw: Option<&str>| raw.and_then(|raw| fields.check(field, parse_instant(raw)));
        let created_from = instant("created_from", self.created_from.as_deref());
        let created_to = instant("created_to", self.created_to.as_deref());
        if !fields.is_empty() {
            return Err(ApiError::Validation(fields.errors));
        }
        let filter = OrderFilter {
            location_id: self.location_id.map(LocationId),
            status: self.status.map(Into::into),
            waiter_id: self.waiter_id.map(domain::UserId),
            created_from,
            created_to,
        };
        Ok((filter, page_request(self.limit, self.cursor.as_deref(), cursors, Ok(()))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(json: &str) -> Result<OrderRequest, Vec<FieldError>> {
        serde_json::from_str::<Object<CreateOrderRequest>>(json).unwrap().0.parse().map(|(_, order)| order)
    }

    #[test]
    fn every_failing_field_is_listed() {
        let errors = order(
            r#"{"customer_name":"  ","items":[
                {"product_name":"Agua","unit_price":"1.005","quantity":0},
                {"product_name":"","unit_price":-1,"quantity":"2"},
                {"unit_price":true}
            ]}"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "customer_name",
                "items[0].unit_price",
                "items[0].quantity",
                "items[1].product_name",
                "items[1].unit_price",
                "items[1].quantity",
                "items[2].product_name",
                "items[2].unit_price",
                "items[2].quantity",
            ]
        );
    }

    #[test]
    fn numbers_keep_their_text() {
        let new = order(r#"{"customer_name":"Mesa 1","items":[{"product_name":"Pan","unit_price":0.1,"quantity":3}]}"#)
            .unwrap();
        assert!(matches!(&new.lines[0], LineRequest::Open { unit_price, .. } if unit_price.to_string() == "0.10"));
        let errors =
            order(r#"{"customer_name":"M","items":[{"product_name":"Pan","unit_price":12.345,"quantity":1}]}"#)
                .unwrap_err();
        assert_eq!(errors[0].message, "must have at most two decimal places");
        let errors = order(r#"{"customer_name":"M","items":[{"product_name":"P","unit_price":1e400,"quantity":1e5}]}"#)
            .unwrap_err();
        assert_eq!(errors.len(), 2);
        // A whole number written as JSON Schema allows integers (`1e3`, `205.0`) is a quantity.
        let new = order(r#"{"customer_name":"M","items":[{"product_name":"P","unit_price":"1.00","quantity":1e3}]}"#)
            .unwrap();
        assert!(matches!(&new.lines[0], LineRequest::Open { quantity, .. } if quantity.get() == 1000));
    }

    #[test]
    fn a_line_with_a_menu_item_is_a_menu_line() {
        let new = order(
            r#"{"customer_name":"M","items":[{"menu_item_id":"0192f1a4-0000-7000-8000-000000000001","quantity":2,"note":" sin  hielo "}]}"#,
        )
        .unwrap();
        assert!(matches!(&new.lines[0], LineRequest::Menu { quantity, note: Some(n), .. }
            if quantity.get() == 2 && n.as_ref() == "sin hielo"));
        let errors = order(
            r#"{"customer_name":"M","items":[{"menu_item_id":"0192f1a4-0000-7000-8000-000000000001","product_name":"X","unit_price":"1.00","quantity":1}]}"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["items[0].product_name", "items[0].unit_price"]);
    }

    #[test]
    fn item_count_is_checked_before_the_lines() {
        let errors = order(r#"{"customer_name":"M","items":[]}"#).unwrap_err();
        assert_eq!(errors, vec![FieldError::new("items", "must have 1 to 100 lines")]);
    }
}
