//! The sales report's query, its JSON and its CSV.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use application::{ReportBound, ReportRange, SalesReport};

use super::Fields;
use super::time::{OUT_OF_RANGE, parse_date, parse_instant};
use crate::problem::FieldError;

/// The report's range and filters. Dates alone (`YYYY-MM-DD`, one or both) are business
/// dates: each location's own business day. A date-time (RFC 3339) on either side makes the
/// range one of instants, as in version 1 (a date beside it is that day in UTC).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// The first business date, or the first instant. Default: 30 days (business days for a
    /// date `end_date`) before `end_date`.
    #[param(schema_with = date_or_date_time)]
    pub start_date: Option<String>,
    /// The last business date (included), or the last instant (included). Default: now (the
    /// current business day with a date `start_date`).
    #[param(schema_with = date_or_date_time)]
    pub end_date: Option<String>,
    /// Only this location (one the signed-in user works in). Default: every location the user
    /// works in (every location for an admin).
    pub location_id: Option<Uuid>,
    /// Only this waiter's orders.
    pub waiter_id: Option<Uuid>,
}

/// Schema of a report bound.
fn date_or_date_time() -> impl Into<RefOr<Schema>> {
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
    /// A menu item's current name, or the product name of open lines.
    #[schema(example = "Café con leche")]
    pub product_name: String,
    /// The menu item whose lines the row counts, whatever it was called when they were sold;
    /// null for open lines, which count by product name (a menu item and open lines of the
    /// same name are two rows).
    pub menu_item_id: Option<Uuid>,
    #[schema(example = 42)]
    pub total_quantity: i64,
    #[schema(example = "105.00", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub total_price: String,
}

/// Products sold in the range, most sold first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportResponse {
    /// The first instant included (for business dates: the earliest start of the first date
    /// among the report's locations).
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub start_date: DateTime<Utc>,
    /// The last instant included (for business dates: the latest end of the last date among
    /// the report's locations).
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub end_date: DateTime<Utc>,
    /// The first business date, when the range is of business dates (else null).
    #[schema(value_type = Option<String>, format = Date, example = "2026-11-01")]
    pub first_business_date: Option<NaiveDate>,
    /// The last business date, when the range is of business dates (else null).
    #[schema(value_type = Option<String>, format = Date, example = "2026-11-30")]
    pub last_business_date: Option<NaiveDate>,
    pub products: Vec<ProductSalesResponse>,
    pub total_quantity: i64,
    #[schema(example = "105.00", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub total_price: String,
}

impl From<&SalesReport> for ReportResponse {
    fn from(report: &SalesReport) -> Self {
        let (first_business_date, last_business_date) = match report.range {
            ReportRange::BusinessDates { first, last } => (Some(first), Some(last)),
            ReportRange::Instants { .. } => (None, None),
        };
        let (start, end) = report.span;
        Self {
            start_date: start,
            end_date: end - TimeDelta::microseconds(1),
            first_business_date,
            last_business_date,
            products: report
                .products
                .iter()
                .map(|p| ProductSalesResponse {
                    product_name: p.product_name.clone(),
                    menu_item_id: p.menu_item_id.map(|m| m.0),
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

    #[test]
    fn report_bounds() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z").unwrap().with_timezone(&Utc);
        let q = |s: Option<&str>, e: Option<&str>| ReportQuery {
            start_date: s.map(Into::into),
            end_date: e.map(Into::into),
            location_id: None,
            waiter_id: None,
        };
        let instants = |r: ReportRange| match r {
            ReportRange::Instants { start, end } => (start.to_rfc3339(), end.to_rfc3339()),
            other => panic!("{other:?}"),
        };
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let r = q(Some("2026-11-01"), Some("2026-11-20")).range(now).unwrap();
        assert_eq!(r, ReportRange::BusinessDates { first: day("2026-11-01"), last: day("2026-11-20") });
        let r = q(None, Some("2026-11-20")).range(now).unwrap();
        assert_eq!(r, ReportRange::BusinessDates { first: day("2026-10-22"), last: day("2026-11-20") });
        let r = q(Some("2026-11-01"), None).range(now).unwrap();
        assert_eq!(r, ReportRange::BusinessDates { first: day("2026-11-01"), last: day("2026-11-24") });
        let (start, _) = instants(q(None, None).range(now).unwrap());
        assert_eq!(start, "2026-10-24T12:00:00+00:00");
        let (start, end) =
            instants(q(Some("2026-11-20T10:00:00+02:00"), Some("2026-11-20T10:00:00Z")).range(now).unwrap());
        assert_eq!(start, "2026-11-20T08:00:00+00:00");
        assert_eq!(end, "2026-11-20T10:00:00.000001+00:00");
        // A date beside an instant is that day in UTC.
        let (start, end) = instants(q(Some("2026-11-01"), Some("2026-11-20T10:00:00Z")).range(now).unwrap());
        assert_eq!((start.as_str(), end.as_str()), ("2026-11-01T00:00:00+00:00", "2026-11-20T10:00:00.000001+00:00"));
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
            range: ReportRange::Instants { start: Utc::now(), end: Utc::now() },
            span: (Utc::now(), Utc::now()),
            products: vec![application::ProductSales {
                menu_item_id: None,
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
