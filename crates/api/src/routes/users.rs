//! Staff users.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use uuid::Uuid;
use validator::Validate;

use domain::UserId;

use crate::dto::users::{CreateUserRequest, SetLocationsRequest, UserResponse};
use crate::dto::{Object, PageQuery, PageResponse, page_request};
use crate::error::ApiError;
use crate::extract::SignedIn;
use crate::problem::Problem;
use crate::routes::blocking;
use crate::state::AppState;

/// Create a staff user (admin). Email, name and role never change afterwards; the locations
/// they work in do (`PUT /api/v1/users/{id}/locations`).
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    request_body = CreateUserRequest,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, body = UserResponse, headers(("Location" = String, description = "the new user"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the email is taken (ignoring case)"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_user(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    body: web::Json<Object<CreateUserRequest>>,
) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner().0.parse().map_err(ApiError::validation)?;
    let users = state.users.clone();
    // Hashing the password is Argon2id work: the bounded pool, not a blocking thread.
    let user = state.hash_pool.run(move || users.create(&caller, new)).await??;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/users/{}", user.user.id())))
        .json(UserResponse::from(&user)))
}

/// Replace the locations a user works in (admin; not for admins, who work everywhere).
#[utoipa::path(
    put,
    path = "/api/v1/users/{id}/locations",
    tag = "users",
    request_body = SetLocationsRequest,
    params(("id" = Uuid, Path, description = "the user's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = UserResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "unknown locations, or the user is an admin"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_user_locations(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
    body: web::Json<Object<SetLocationsRequest>>,
) -> Result<HttpResponse, ApiError> {
    let locations = body.into_inner().0.parse().map_err(ApiError::validation)?;
    let users = state.users.clone();
    let id = UserId(id.into_inner());
    let user = blocking(&state, move || users.set_locations(&caller, id, locations)).await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(&user)))
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    tag = "users",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = UserResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn me(state: web::Data<AppState>, SignedIn(caller): SignedIn) -> Result<HttpResponse, ApiError> {
    let users = state.users.clone();
    let user = blocking(&state, move || users.me(&caller)).await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(&user)))
}

/// A user (admin, or the user itself).
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "the user's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = UserResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_user(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let users = state.users.clone();
    let id = UserId(id.into_inner());
    let user = blocking(&state, move || users.get(&caller, id)).await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(&user)))
}

/// Staff users, newest first (admin).
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    params(PageQuery),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = PageResponse<UserResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "unreadable query or cursor"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_users(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref(), &state.cursors, query.validate())?;
    let users = state.users.clone();
    let page = blocking(&state, move || users.list(&caller, page)).await?;
    Ok(HttpResponse::Ok().json(PageResponse {
        items: page.items.iter().map(UserResponse::from).collect::<Vec<_>>(),
        next_cursor: page.next.map(|c| state.cursors.encode(&c)),
    }))
}
