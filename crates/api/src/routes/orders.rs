//! Orders and their payments.

use actix_web::http::header;
use actix_web::{HttpResponse, HttpResponseBuilder, web};
use uuid::Uuid;

use application::{ChangeOutcome, ChangeTerms, OrderServiceError, PaymentOutcome, PlaceOutcome};
use domain::{Order, OrderId};

use crate::dto::kitchen::TicketResponse;
use crate::dto::orders::{AddItemsRequest, CreateOrderRequest, ListOrdersQuery, OrderResponse, VoidLineRequest};
use crate::dto::payments::{CreatePaymentRequest, PaymentResponse};
use crate::dto::{Object, PageResponse};
use crate::error::ApiError;
use crate::extract::{Idempotency, IfMatch, SignedIn};
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

/// An order as the body, its version as the `ETag`.
fn order_response(mut builder: HttpResponseBuilder, order: &Order) -> HttpResponse {
    builder.insert_header((header::ETAG, format!("\"{}\"", order.version()))).json(OrderResponse::from(order))
}

/// A changed order (200), or for a retried request the order as it is now.
fn changed_response(outcome: ChangeOutcome) -> HttpResponse {
    let mut builder = HttpResponse::Ok();
    let order = match outcome {
        ChangeOutcome::Changed(order) => order,
        ChangeOutcome::Replayed(order) => {
            builder.insert_header((IDEMPOTENT_REPLAYED, "true"));
            order
        }
    };
    order_response(builder, &order)
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
    let send = new.send;
    // The write goes through the batching order writer: no blocking thread waits for it.
    let mut placed = state.orders.place(&caller, location, new, key).await?;
    if send {
        let orders = state.orders.clone();
        placed = blocking(&state, move || orders.send_placed(&caller, placed)).await?;
    }
    let (order, replayed) = match placed {
        PlaceOutcome::Created(order) => (order, false),
        PlaceOutcome::Replayed(order) => (order, true),
    };
    Ok(order_response(created(format!("/api/v1/orders/{}", order.id()), replayed), &order))
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
    Ok(order_response(HttpResponse::Ok(), &order))
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
    params(
        ("id" = String, Path, description = "the order's id"),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (the order's `ETag`): the change applies only to the order at that version, else 412 with `current_version`; `*`, empty or absent: to the order as it is", pattern = r#"^((W/)?"[0-9]{1,9}"|\*)?$"#),
    ),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = OrderResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the order is not open"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "the order is at another version (`current_version`)"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_order(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
    IfMatch(expected): IfMatch,
) -> Result<HttpResponse, ApiError> {
    let orders = state.orders.clone();
    let id = OrderId(id.into_inner());
    let order = blocking(&state, move || orders.cancel(&caller, id, expected)).await?;
    Ok(order_response(HttpResponse::Ok(), &order))
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
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (the order's `ETag`): the change applies only to the order at that version, else 412 with `current_version`; `*`, empty or absent: to the order as it is", pattern = r#"^((W/)?"[0-9]{1,9}"|\*)?$"#),
    ),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, body = PaymentResponse, headers(("Location" = String, description = "the order's payments"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "cancelled, paid, above the balance, or a reused key"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "the order is at another version (`current_version`)"),
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
    IfMatch(expected_version): IfMatch,
    body: web::Json<Object<CreatePaymentRequest>>,
) -> Result<HttpResponse, ApiError> {
    let ((amount, method), key) = key.with(body.into_inner().0.parse())?;
    let orders = state.orders.clone();
    let order_id = OrderId(id.into_inner());
    let terms = ChangeTerms { expected_version, key };
    let outcome = blocking(&state, move || orders.pay(&caller, order_id, amount, method, terms)).await?;
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

/// Add lines to an open or partially paid order (its waiter, a manager of its location, an
/// admin). The lines of this request merge among themselves by the rule of a new order, never
/// with earlier lines; the order keeps at most 100 live lines. With `"send": true` every new
/// line goes to the kitchen as one ticket, in the same transaction.
///
/// Concurrent adds to one order take turns: without `If-Match` both land, in either order.
/// `Idempotency-Key` as for orders: a retry answers the order as it is now.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/items",
    tag = "orders",
    request_body = AddItemsRequest,
    params(
        ("id" = String, Path, description = "the order's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters", pattern = r"^[!-~]{1,255}$"),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (the order's `ETag`): the change applies only to the order at that version, else 412 with `current_version`; `*`, empty or absent: to the order as it is", pattern = r#"^((W/)?"[0-9]{1,9}"|\*)?$"#),
    ),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = OrderResponse, headers(("ETag" = String, description = "the order's version"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "paid or cancelled, more than 100 live lines, an unorderable item, or a reused key"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "the order is at another version (`current_version`)"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn add_items(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
    key: Idempotency,
    IfMatch(expected_version): IfMatch,
    body: web::Json<Object<AddItemsRequest>>,
) -> Result<HttpResponse, ApiError> {
    let ((lines, send), key) = key.with(body.into_inner().0.parse())?;
    let id = OrderId(id.into_inner());
    let terms = ChangeTerms { expected_version, key };
    let lines = std::sync::Arc::new(lines);
    let mut menu = state.orders.menu();
    // Menu lines are priced from this process's menu; the transaction checks that it is still
    // storage's, and a stale one is refreshed and the lines priced again.
    for _ in 0..3 {
        let (orders, lines, terms, priced_with) = (state.orders.clone(), lines.clone(), terms.clone(), menu.clone());
        let outcome = blocking(&state, move || {
            Ok::<_, ApiError>(orders.add_lines(&caller, id, &lines, send, terms, &priced_with))
        })
        .await?;
        match outcome {
            Err(OrderServiceError::MenuStale) => menu = state.orders.fresh_menu(&menu).await?,
            outcome => return Ok(changed_response(outcome?)),
        }
    }
    Err(OrderServiceError::MenuStale.into())
}

/// Void a line with a reason: a `new` line by the order's waiter, a manager of its location or
/// an admin; a line already sent to the kitchen only by a manager or an admin (403 for a
/// waiter). The line stays on the order (and its ticket), out of every total. A void that
/// would leave the total below what was paid is a 409. `Idempotency-Key` as for adding lines.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/items/{line_id}/void",
    tag = "orders",
    request_body = VoidLineRequest,
    params(
        ("id" = String, Path, description = "the order's id"),
        ("line_id" = u16, Path, description = "the line's id in the order", minimum = 1, maximum = 500),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters", pattern = r"^[!-~]{1,255}$"),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (the order's `ETag`): the change applies only to the order at that version, else 412 with `current_version`; `*`, empty or absent: to the order as it is", pattern = r#"^((W/)?"[0-9]{1,9}"|\*)?$"#),
    ),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = OrderResponse, headers(("ETag" = String, description = "the order's version"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such order, or no such line"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "already voided, the order cancelled, below what was paid, or a reused key"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "the order is at another version (`current_version`)"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn void_item(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    path: web::Path<(Uuid, u16)>,
    key: Idempotency,
    IfMatch(expected_version): IfMatch,
    body: web::Json<Object<VoidLineRequest>>,
) -> Result<HttpResponse, ApiError> {
    let (reason, key) = key.with(body.into_inner().0.parse())?;
    let (id, line) = path.into_inner();
    let id = OrderId(id);
    let terms = ChangeTerms { expected_version, key };
    let orders = state.orders.clone();
    let outcome = blocking(&state, move || orders.void_line(&caller, id, line, reason, terms)).await?;
    Ok(changed_response(outcome))
}

/// Send every `new` line of the order to the kitchen as one ticket (its waiter, a manager of
/// its location, an admin). The ticket's number counts from 1 per location and business day.
/// Nothing new to send: 409.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/send",
    tag = "kitchen",
    params(
        ("id" = String, Path, description = "the order's id"),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (the order's `ETag`): the change applies only to the order at that version, else 412 with `current_version`; `*`, empty or absent: to the order as it is", pattern = r#"^((W/)?"[0-9]{1,9}"|\*)?$"#),
    ),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, body = TicketResponse, headers(("Location" = String, description = "the ticket"))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "nothing new to send, or the order is cancelled"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "the order is at another version (`current_version`)"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn send_order(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
    IfMatch(expected): IfMatch,
) -> Result<HttpResponse, ApiError> {
    let id = OrderId(id.into_inner());
    let (orders, kitchen) = (state.orders.clone(), state.kitchen.clone());
    let ticket = blocking(&state, move || {
        let (_, ticket) = orders.send(&caller, id, expected)?;
        kitchen.get(&caller, ticket).map_err(ApiError::from)
    })
    .await?;
    Ok(created(format!("/api/v1/kitchen/tickets/{}", ticket.ticket.id), false).json(TicketResponse::from(&ticket)))
}
