//! The sales report's query, its JSON and its CSV.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use application::{ReportBound, ReportRange, SalesReport};

use super::Fields;
use super::time::{OUT_OF_RANGE, parse_date, parse_instant};
use crate::problem::FieldError;

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
