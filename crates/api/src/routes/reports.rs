//! The sales report.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use domain::{LocationId, UserId};

use crate::dto::reports::{ReportQuery, ReportResponse, report_csv};
use crate::error::ApiError;
use crate::extract::SignedIn;
use crate::problem::Problem;
use crate::routes::blocking;
use crate::state::AppState;

/// Products sold in a range, most sold first (admin; a manager for the locations they work in).
/// JSON, or CSV with `Accept: text/csv`.
///
/// A range of dates alone counts orders by their business date (each location's own business
/// day); a range with a date-time counts them by their `created_at`, as version 1 did.
/// Cancelled orders do not count. Products whose names are
/// equal ignoring case and extra spaces are one product, shown with one spelling: the one
/// recorded when its sales were first aggregated (a few minutes after its first sale; until
/// then, the smallest in byte order of the range). Ordered by total quantity, then total price, both descending, then name.
#[utoipa::path(
    get,
    path = "/api/v1/orders/report",
    tag = "reports",
    params(ReportQuery),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "the report", content(
            (ReportResponse = "application/json"),
            (String = "text/csv", example = "product_name,total_quantity,total_price\r\nCafé con leche,42,105.00\r\n")
        )),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "unreadable dates, or start after end"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sales_report(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    req: HttpRequest,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let range = query.range(state.clock.now()).map_err(ApiError::validation)?;
    let waiter = query.waiter_id.map(UserId);
    let location = query.location_id.map(LocationId);
    let reports = state.reports.clone();
    let report = blocking(&state, move || reports.sales(&caller, range, location, waiter)).await?;
    if wants_csv(&req) {
        return Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")))
            .insert_header((
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"sales-report.csv\""),
            ))
            .body(report_csv(&report)));
    }
    Ok(HttpResponse::Ok().json(ReportResponse::from(&report)))
}

/// CSV when the client asks for it (and does not prefer JSON first).
fn wants_csv(req: &HttpRequest) -> bool {
    let Some(accept) = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    for media in accept.split(',').map(|m| m.split(';').next().unwrap_or("").trim()) {
        match media {
            "text/csv" => return true,
            "application/json" | "*/*" | "application/*" => return false,
            _ => {}
        }
    }
    false
}
