//! Bodies of the order, payment and report endpoints.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use application::{OrderFilter, PageRequest, ReportBound, ReportRange, SalesReport};
use domain::{
    CustomerName, Money, NewOrder, NewOrderLine, Order, OrderStatus, Payment, PaymentMethod, PlacementError,
    ProductName, Quantity, QuantityError,
};

use super::cursor::CursorCodec;
use super::time::{OUT_OF_RANGE, parse_date, parse_instant};
use super::{Fields, NumberInput, Object, page_request};
use crate::error::{ApiError, FieldError};

/// Schema of a money input up to `max` (integer digits `max_digits`): a decimal string
/// (preferred) or a JSON number, positive, at most two decimals, written without exponent.
fn money_schema(max: f64, max_text: &str, description: &str) -> RefOr<Schema> {
    // Plain digits, at least one before the point, at most two after it, above zero, up to max.
    let below = max_text.len() - 1;
    let pattern = format!(
        r"^0*(?:[1-9][0-9]{{0,{}}}(?:\.[0-9]{{1,2}})?|{max_text}(?:\.00?)?|0\.(?:0[1-9]|[1-9][0-9]?))$",
        below - 1
    );
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)).pattern(Some(pattern)).examples(["12.50"]),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Number))
                .exclusive_minimum(Some(0.0))
                .maximum(Some(max))
                .multiple_of(Some(0.01))
                .examples([12.5]),
        )
        .description(Some(description))
        .into()
}

/// A unit price: up to 1000000.00.
pub fn money_input_schema() -> impl Into<RefOr<Schema>> {
    money_schema(
        1_000_000.0,
        "1000000",
        "A positive amount, at most 1000000.00 with at most two decimal places, as a string (\"12.50\") or a number; more decimals, zero, negatives and exponents are refused, never rounded.",
    )
}

/// A payment amount: at most the balance due (and never above 10^12).
pub fn amount_input_schema() -> impl Into<RefOr<Schema>> {
    money_schema(
        1_000_000_000_000.0,
        "1000000000000",
        "A positive amount with at most two decimal places, at most the order's balance due, as a string (\"12.50\") or a number.",
    )
}

/// Schema of a quantity input: a JSON integer.
pub fn quantity_input_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .minimum(Some(1))
        .maximum(Some(10_000))
        .examples([2])
}

fn parse_money(input: &NumberInput, max: Money) -> Result<Money, String> {
    match input {
        NumberInput::Text(raw) | NumberInput::Number(raw) => Money::parse_positive(raw, max).map_err(|e| e.to_string()),
        NumberInput::Invalid => Err("must be a decimal string such as \"12.50\" or a number".into()),
    }
}

fn parse_quantity(input: &NumberInput) -> Result<Quantity, QuantityError> {
    match input {
        NumberInput::Number(raw) => Quantity::parse(raw),
        NumberInput::Text(_) | NumberInput::Invalid => Err(QuantityError::NotAnInteger),
    }
}

/// One line of a new order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OrderItemRequest {
    /// Lines naming the same product (ignoring case and extra spaces) merge when their unit
    /// prices are equal; at different prices the order is refused.
    #[schema(schema_with = super::patterns::product_name_schema, required = true)]
    pub product_name: Option<String>,
    /// At most 1000000.00.
    #[schema(schema_with = money_input_schema, required = true)]
    pub unit_price: Option<NumberInput>,
    #[schema(schema_with = quantity_input_schema, required = true)]
    pub quantity: Option<NumberInput>,
}

/// A new order. The waiter is the signed-in user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOrderRequest {
    #[schema(schema_with = super::patterns::customer_name_schema, required = true)]
    pub customer_name: Option<String>,
    #[schema(value_type = Vec<OrderItemRequest>, required = true, min_items = 1, max_items = 100)]
    pub items: Option<Vec<Object<OrderItemRequest>>>,
}

impl CreateOrderRequest {
    pub fn parse(self) -> Result<NewOrder, Vec<FieldError>> {
        let mut fields = Fields::default();
        let customer_name = fields.required("customer_name", self.customer_name.as_deref(), CustomerName::parse);
        let lines = match self.items {
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
                    let name = fields.required(
                        format!("items[{i}].product_name"),
                        item.product_name.as_deref(),
                        ProductName::parse,
                    );
                    let price = match &item.unit_price {
                        None => fields.required(format!("items[{i}].unit_price"), None, |_| Err::<Money, _>("")),
                        Some(input) => {
                            fields.check(format!("items[{i}].unit_price"), parse_money(input, Money::MAX_UNIT_PRICE))
                        }
                    };
                    let quantity = match &item.quantity {
                        None => fields.required(format!("items[{i}].quantity"), None, |_| Err::<Quantity, _>("")),
                        Some(input) => fields.check(format!("items[{i}].quantity"), parse_quantity(input)),
                    };
                    if let (Some(product_name), Some(unit_price), Some(quantity)) = (name, price, quantity) {
                        lines.push(NewOrderLine { product_name, unit_price, quantity });
                    }
                }
                Some(lines)
            }
        };
        let order = match (customer_name, lines) {
            (Some(customer_name), Some(lines)) => Some(NewOrder { customer_name, lines }),
            _ => None,
        };
        fields.finish(order)
    }
}

/// The domain's merge and count rules, as field errors.
pub fn placement_errors(errors: &[PlacementError]) -> Vec<FieldError> {
    errors
        .iter()
        .map(|e| match e {
            PlacementError::NoLines | PlacementError::TooManyLines { .. } | PlacementError::Total(_) => {
                FieldError::new("items", e)
            }
            PlacementError::ConflictingPrice { first, line } => FieldError::new(
                format!("items[{line}].unit_price"),
                format!("names the same product as items[{first}] at another unit price"),
            ),
            PlacementError::MergedQuantityTooLarge { line } => FieldError::new(
                format!("items[{line}].quantity"),
                "brings the merged quantity of its product above 10000",
            ),
        })
        .collect()
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

/// One line of an order (lines of the same product at the same price are merged).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderItemResponse {
    #[schema(example = "Café con leche")]
    pub product_name: String,
    #[schema(example = "2.50", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub unit_price: String,
    #[schema(example = 2, minimum = 1, maximum = 10000)]
    pub quantity: u32,
    #[schema(example = "5.00", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub subtotal: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderResponse {
    pub id: Uuid,
    #[schema(example = "Mesa 4")]
    pub customer_name: String,
    pub waiter_id: Uuid,
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
            status: order.status().into(),
            items: order
                .lines()
                .iter()
                .map(|l| OrderItemResponse {
                    product_name: l.product_name().as_ref().to_owned(),
                    unit_price: l.unit_price().to_string(),
                    quantity: l.quantity().get(),
                    subtotal: l.subtotal().to_string(),
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
    /// Page size, 1 to 100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[A-Za-z0-9_-]{48}$")]
    pub cursor: Option<String>,
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
            status: self.status.map(Into::into),
            waiter_id: self.waiter_id.map(domain::UserId),
            created_from,
            created_to,
        };
        Ok((filter, page_request(self.limit, self.cursor.as_deref(), cursors, Ok(()))?))
    }
}

/// A payment to record.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreatePaymentRequest {
    /// At most the order's balance due.
    #[schema(schema_with = amount_input_schema, required = true)]
    pub amount: Option<NumberInput>,
    #[schema(value_type = PaymentMethodDto, required = true)]
    pub method: Option<String>,
}

impl CreatePaymentRequest {
    pub fn parse(self) -> Result<(Money, PaymentMethod), Vec<FieldError>> {
        let mut fields = Fields::default();
        let amount = match &self.amount {
            None => fields.required("amount", None, |_| Err::<Money, _>("")),
            Some(input) => fields.check("amount", parse_money(input, Money::MAX)),
        };
        let method = fields.required("method", self.method.as_deref(), PaymentMethod::parse);
        fields.finish(amount.zip(method))
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethodDto {
    Cash,
    Card,
    Other,
}

impl From<PaymentMethod> for PaymentMethodDto {
    fn from(method: PaymentMethod) -> Self {
        match method {
            PaymentMethod::Cash => Self::Cash,
            PaymentMethod::Card => Self::Card,
            PaymentMethod::Other => Self::Other,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResponse {
    pub id: Uuid,
    pub order_id: Uuid,
    #[schema(example = "10.00", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub amount: String,
    pub method: PaymentMethodDto,
    /// The user who recorded it.
    pub recorded_by: Uuid,
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

impl From<&Payment> for PaymentResponse {
    fn from(p: &Payment) -> Self {
        Self {
            id: p.id.0,
            order_id: p.order_id.0,
            amount: p.amount.to_string(),
            method: p.method.into(),
            recorded_by: p.recorded_by.0,
            created_at: p.created_at,
        }
    }
}

/// The report's range and filter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// A date (`YYYY-MM-DD`, from its first instant) or an RFC 3339 date-time. Default: 30 days
    /// before `end_date`.
    #[param(schema_with = date_or_date_time)]
    pub start_date: Option<String>,
    /// A date (`YYYY-MM-DD`, the whole day included) or an RFC 3339 date-time (included).
    /// Default: now.
    #[param(schema_with = date_or_date_time)]
    pub end_date: Option<String>,
    /// Only this waiter's orders.
    pub waiter_id: Option<Uuid>,
}

/// Schema of a report bound.
pub fn date_or_date_time() -> impl Into<RefOr<Schema>> {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Date))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime))),
        )
}

/// A bound of the report as written: a date (`YYYY-MM-DD`) or an RFC 3339 date-time.
fn parse_bound(raw: &str) -> Result<ReportBound, &'static str> {
    if raw.len() <= 11 && !raw.contains('T') && !raw.contains('t') {
        return parse_date(raw)
            .map(ReportBound::Day)
            .map_err(|e| if e == OUT_OF_RANGE { e } else { "must be a date (YYYY-MM-DD) or an RFC 3339 date-time" });
    }
    parse_instant(raw)
        .map(ReportBound::Instant)
        .map_err(|e| if e == OUT_OF_RANGE { e } else { "must be a date (YYYY-MM-DD) or an RFC 3339 date-time" })
}

impl ReportQuery {
    /// The range the report covers (see `ReportRange::from_bounds` for the rules).
    pub fn range(&self, now: DateTime<Utc>) -> Result<ReportRange, Vec<FieldError>> {
        let mut fields = Fields::default();
        let end = self.end_date.as_deref().map(|raw| fields.check("end_date", parse_bound(raw)));
        let start = self.start_date.as_deref().map(|raw| fields.check("start_date", parse_bound(raw)));
        if !fields.is_empty() {
            return Err(fields.errors);
        }
        ReportRange::from_bounds(start.flatten(), end.flatten(), now)
            .map_err(|e| vec![FieldError::new("start_date", e)])
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductSalesResponse {
    #[schema(example = "Café con leche")]
    pub product_name: String,
    #[schema(example = 42)]
    pub total_quantity: i64,
    #[schema(example = "105.00", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub total_price: String,
}

/// Products sold in the range, most sold first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportResponse {
    /// The first instant included.
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub start_date: DateTime<Utc>,
    /// The last instant included.
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub end_date: DateTime<Utc>,
    pub products: Vec<ProductSalesResponse>,
    pub total_quantity: i64,
    #[schema(example = "105.00", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub total_price: String,
}

impl From<&SalesReport> for ReportResponse {
    fn from(report: &SalesReport) -> Self {
        Self {
            start_date: report.range.start,
            end_date: report.range.end - TimeDelta::microseconds(1),
            products: report
                .products
                .iter()
                .map(|p| ProductSalesResponse {
                    product_name: p.product_name.clone(),
                    total_quantity: p.total_quantity,
                    total_price: format!("{:.2}", p.total_price),
                })
                .collect(),
            total_quantity: report.total_quantity,
            total_price: format!("{:.2}", report.total_price),
        }
    }
}

/// Whether a spreadsheet would run this cell as a formula: its first visible character (after
/// white space and invisible characters, which spreadsheets skip) is `=`, `+`, `-` or `@`, or
/// it starts with a tab or carriage return (OWASP's CSV injection list).
fn looks_like_formula(cell: &str) -> bool {
    cell.starts_with(['\t', '\r'])
        || cell.chars().find(|c| !domain::text::is_invisible(*c)).is_some_and(|c| matches!(c, '=' | '+' | '-' | '@'))
}

/// The report as CSV: a header row, then one row per product (RFC 4180 quoting). A name that a
/// spreadsheet would run as a formula is prefixed with an apostrophe, as OWASP advises against
/// CSV injection.
pub fn report_csv(report: &SalesReport) -> String {
    let mut out = String::from("product_name,total_quantity,total_price\r\n");
    for p in &report.products {
        let name =
            if looks_like_formula(&p.product_name) { format!("'{}", p.product_name) } else { p.product_name.clone() };
        let name = if name.contains([',', '"']) { format!("\"{}\"", name.replace('"', "\"\"")) } else { name };
        out.push_str(&format!("{name},{},{:.2}\r\n", p.total_quantity, p.total_price));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(json: &str) -> Result<NewOrder, Vec<FieldError>> {
        serde_json::from_str::<Object<CreateOrderRequest>>(json).unwrap().0.parse()
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
        assert_eq!(new.lines[0].unit_price.to_string(), "0.10");
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
        assert_eq!(new.lines[0].quantity.get(), 1000);
    }

    #[test]
    fn item_count_is_checked_before_the_lines() {
        let errors = order(r#"{"customer_name":"M","items":[]}"#).unwrap_err();
        assert_eq!(errors, vec![FieldError::new("items", "must have 1 to 100 lines")]);
    }

    #[test]
    fn report_bounds() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z").unwrap().with_timezone(&Utc);
        let q = |s: Option<&str>, e: Option<&str>| ReportQuery {
            start_date: s.map(Into::into),
            end_date: e.map(Into::into),
            waiter_id: None,
        };
        let r = q(Some("2026-11-01"), Some("2026-11-20")).range(now).unwrap();
        assert_eq!(r.start.to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(r.end.to_rfc3339(), "2026-11-21T00:00:00+00:00");
        let r = q(None, None).range(now).unwrap();
        assert_eq!(r.start.to_rfc3339(), "2026-10-24T12:00:00+00:00");
        let r = q(Some("2026-11-20T10:00:00+02:00"), Some("2026-11-20T10:00:00Z")).range(now).unwrap();
        assert_eq!(r.start.to_rfc3339(), "2026-11-20T08:00:00+00:00");
        assert_eq!(r.end.to_rfc3339(), "2026-11-20T10:00:00.000001+00:00");
        let e = q(Some("2026-11-21"), Some("2026-11-20")).range(now).unwrap_err();
        assert_eq!(e[0].field, "start_date");
        let e = q(Some("yesterday"), Some("2026-13-01")).range(now).unwrap_err();
        assert_eq!(e.len(), 2);
        // The same day as both bounds is that whole day.
        assert!(q(Some("2026-11-20"), Some("2026-11-20")).range(now).is_ok());
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        use rust_decimal::Decimal;
        let report = SalesReport {
            range: ReportRange { start: Utc::now(), end: Utc::now() },
            products: vec![application::ProductSales {
                product_name: "Vino \"tinto\", copa".into(),
                total_quantity: 3,
                total_price: Decimal::new(1050, 2),
            }],
            total_quantity: 3,
            total_price: Decimal::new(1050, 2),
        };
        assert_eq!(
            report_csv(&report),
            "product_name,total_quantity,total_price\r\n\"Vino \"\"tinto\"\", copa\",3,10.50\r\n"
        );
    }

    #[test]
    fn csv_defuses_formulas_behind_invisible_characters() {
        for name in ["=1+1", "+SUM(A1)", "-2", "@cmd", "\u{200b}=HYPERLINK(\"x\")", "\u{feff}\u{2060}+1", "\u{3164}-1"]
        {
            assert!(looks_like_formula(name), "{name:?}");
        }
        for name in ["Café", "1+1", "Vino = bueno", "a-b"] {
            assert!(!looks_like_formula(name), "{name:?}");
        }
    }
}
