//! Orders and their payments.

use actix_web::http::header;
use actix_web::{HttpResponse, HttpResponseBuilder, web};
use uuid::Uuid;

use application::{PaymentOutcome, PlaceOutcome};
use domain::OrderId;

use crate::dto::orders::{CreateOrderRequest, ListOrdersQuery, OrderResponse};
use crate::dto::payments::{CreatePaymentRequest, PaymentResponse};
use crate::dto::{Object, PageResponse};
use crate::error::ApiError;
use crate::extract::{Idempotency, SignedIn};
use crate::problem::Problem;
use crate::routes::blocking;
use crate::state::AppState;

/// Set on a 201 that answers a retried request instead of creating anything.
const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";

fn created(location: String, replayed: bool) -> HttpResponseBuilder {
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, location));
    if replayed {
        response.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    response
}

/// Place an order for the signed-in user (waiter, manager or admin) at `location_id`, which may
/// be left out by whoever works in exactly one location. A location the user does not work in
/// is a 403. The order's business date is that location's business day at this moment.
///
/// With an `Idempotency-Key`, a retry with the same key and body answers the order as it was
/// placed (`Idempotent-Replayed: true`) and creates nothing; the same key with another body is
/// a 409. Keys are kept at least 24 hours.
#[utoipa::path(
    post,
    path = "/api/v1/orders",
    tag = "orders",
    request_body = CreateOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters", pattern = r"^[!-~]{1,255}$")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, body = OrderResponse, headers(("Location" = String, description = "the order"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the idempotency key was used with another request"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_order(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    key: Idempotency,
    body: web::Json<Object<CreateOrderRequest>>,
) -> Result<HttpResponse, ApiError> {
    let ((location, new), key) = key.with(body.into_inner().0.parse())?;
    // The write goes through the batching order writer: no blocking thread waits for it.
    let (order, replayed) = match state.orders.place(&caller, location, new, key).await? {
        PlaceOutcome::Created(order) => (order, false),
        PlaceOutcome::Replayed(order) => (order, true),
    };
    Ok(created(format!("/api/v1/orders/{}", order.id()), replayed).json(OrderResponse::from(&order)))
}

/// An order (waiter, manager or admin; an order of a location the user does not work in is a
/// 404).
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    params(("id" = String, Path, description = "the order's id (a malformed id is a 404)")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = OrderResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_order(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let orders = state.orders.clone();
    let id = OrderId(id.into_inner());
    let order = blocking(&state, move || orders.get(&caller, id)).await?;
    Ok(HttpResponse::Ok().json(OrderResponse::from(&order)))
}

/// Orders, newest first, with filters (waiter, manager or admin): those of the locations the
/// user works in (every location for an admin), or of the one `location_id` names.
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "orders",
    params(ListOrdersQuery),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = PageResponse<OrderResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "unreadable query or cursor"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_orders(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    query: web::Query<ListOrdersQuery>,
) -> Result<HttpResponse, ApiError> {
    let (filter, page) = query.parse(&state.cursors)?;
    let orders = state.orders.clone();
    let page = blocking(&state, move || orders.list(&caller, &filter, page)).await?;
    Ok(HttpResponse::Ok().json(PageResponse {
        items: page.items.iter().map(OrderResponse::from).collect::<Vec<_>>(),
        next_cursor: page.next.map(|c| state.cursors.encode(&c)),
    }))
}

/// Cancel an open order (its waiter, a manager of its location, an admin). Anything but `open`
/// is a 409.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/cancel",
    tag = "orders",
    params(("id" = String, Path, description = "the order's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = OrderResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the order is not open"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_order(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let orders = state.orders.clone();
    let id = OrderId(id.into_inner());
    let order = blocking(&state, move || orders.cancel(&caller, id)).await?;
    Ok(HttpResponse::Ok().json(OrderResponse::from(&order)))
}

/// Record a payment (waiter, manager or admin of the order's location). Status moves open ->
/// partially_paid -> paid.
///
/// A payment on a cancelled or paid order, or above the balance due, is a 409; concurrent
/// payments never make the amount paid exceed the total. `Idempotency-Key` as for orders.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/payments",
    tag = "payments",
    request_body = CreatePaymentRequest,
    params(
        ("id" = String, Path, description = "the order's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters", pattern = r"^[!-~]{1,255}$"),
    ),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, body = PaymentResponse, headers(("Location" = String, description = "the order's payments"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "cancelled, paid, above the balance, or a reused key"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_payment(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
    key: Idempotency,
    body: web::Json<Object<CreatePaymentRequest>>,
) -> Result<HttpResponse, ApiError> {
    let ((amount, method), key) = key.with(body.into_inner().0.parse())?;
    let orders = state.orders.clone();
    let order_id = OrderId(id.into_inner());
    let outcome = blocking(&state, move || orders.pay(&caller, order_id, amount, method, key)).await?;
    let (payment, replayed) = match outcome {
        PaymentOutcome::Recorded(p) => (p, false),
        PaymentOutcome::Replayed(p) => (p, true),
    };
    Ok(created(format!("/api/v1/orders/{order_id}/payments"), replayed).json(PaymentResponse::from(&payment)))
}

/// The order's payments, oldest first (waiter, manager or admin of the order's location).
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/payments",
    tag = "payments",
    params(("id" = String, Path, description = "the order's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = Vec<PaymentResponse>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_payments(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let orders = state.orders.clone();
    let order_id = OrderId(id.into_inner());
    let payments = blocking(&state, move || orders.payments(&caller, order_id)).await?;
    Ok(HttpResponse::Ok().json(payments.iter().map(PaymentResponse::from).collect::<Vec<_>>()))
}
