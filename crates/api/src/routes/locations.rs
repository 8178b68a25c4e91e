//! Locations: the restaurants of the group.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use uuid::Uuid;
use validator::Validate;

use domain::LocationId;

use crate::dto::locations::{CreateLocationRequest, LocationResponse, UpdateLocationRequest};
use crate::dto::{Object, PageQuery, PageResponse, page_request};
use crate::error::ApiError;
use crate::extract::SignedIn;
use crate::problem::Problem;
use crate::routes::blocking;
use crate::state::AppState;

/// Create a location (admin). Names are unique ignoring case.
#[utoipa::path(
    post,
    path = "/api/v1/locations",
    tag = "locations",
    request_body = CreateLocationRequest,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, body = LocationResponse, headers(("Location" = String, description = "the new location"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the name is taken (ignoring case)"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_location(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    body: web::Json<Object<CreateLocationRequest>>,
) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner().0.parse().map_err(ApiError::validation)?;
    let locations = state.locations.clone();
    let location = blocking(&state, move || locations.create(&caller, new)).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/locations/{}", location.id())))
        .json(LocationResponse::from(&location)))
}

/// Change a location (admin): the fields present replace the current ones. Name, time zone,
/// business-day start and tax apply to orders created afterwards; orders keep their business
/// date.
#[utoipa::path(
    patch,
    path = "/api/v1/locations/{id}",
    tag = "locations",
    request_body = UpdateLocationRequest,
    params(("id" = Uuid, Path, description = "the location's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = LocationResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the name is taken (ignoring case)"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_location(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
    body: web::Json<Object<UpdateLocationRequest>>,
) -> Result<HttpResponse, ApiError> {
    let change = body.into_inner().0.parse().map_err(ApiError::validation)?;
    let locations = state.locations.clone();
    let id = LocationId(id.into_inner());
    let location = blocking(&state, move || locations.change(&caller, id, change)).await?;
    Ok(HttpResponse::Ok().json(LocationResponse::from(&location)))
}

/// A location (admin; others only a location they work in, else 404).
#[utoipa::path(
    get,
    path = "/api/v1/locations/{id}",
    tag = "locations",
    params(("id" = Uuid, Path, description = "the location's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = LocationResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_location(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let locations = state.locations.clone();
    let id = LocationId(id.into_inner());
    let location = blocking(&state, move || locations.get(&caller, id)).await?;
    Ok(HttpResponse::Ok().json(LocationResponse::from(&location)))
}

/// Locations, newest first: every location for an admin, the ones they work in for the others.
#[utoipa::path(
    get,
    path = "/api/v1/locations",
    tag = "locations",
    params(PageQuery),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = PageResponse<LocationResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "unreadable query or cursor"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_locations(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref(), &state.cursors, query.validate())?;
    let locations = state.locations.clone();
    let page = blocking(&state, move || locations.list(&caller, page)).await?;
    Ok(HttpResponse::Ok().json(PageResponse {
        items: page.items.iter().map(LocationResponse::from).collect::<Vec<_>>(),
        next_cursor: page.next.map(|c| state.cursors.encode(&c)),
    }))
}
