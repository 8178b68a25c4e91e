//! Logging in.

use actix_web::http::header::{self, ContentType};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::dto::users::{LoginForm, LoginRequest, TokenResponse};
use crate::dto::{Object, unreadable};
use crate::error::ApiError;
use crate::problem::Problem;
use crate::state::AppState;

/// Log in with email and password (JSON), or with the OAuth2 password flow (form).
///
/// Unknown email and wrong password give the same answer and take the same time.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body(
        content(
            (LoginRequest = "application/json"),
            (LoginForm = "application/x-www-form-urlencoded")
        )
    ),
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "wrong email or password"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "5 logins per minute per client address"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "the hashing queue is full or the database is away"),
    )
)]
pub async fn login(state: web::Data<AppState>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let parsed = match content_type.as_deref() {
        Some("application/json") => serde_json::from_slice::<Object<LoginRequest>>(&body)
            .map_err(|e| {
                ApiError::BadRequest(format!("the JSON body could not be read: {}", unreadable(&e.to_string())))
            })?
            .0
            .parse(),
        Some("application/x-www-form-urlencoded") => serde_urlencoded::from_bytes::<LoginForm>(&body)
            .map_err(|e| ApiError::BadRequest(format!("the form could not be read: {}", unreadable(&e.to_string()))))?
            .parse(),
        _ => {
            return Err(ApiError::UnsupportedMediaType(
                "send application/json or application/x-www-form-urlencoded".into(),
            ));
        }
    };
    let (email, password) = parsed.map_err(ApiError::validation)?;
    let auth = state.auth.clone();
    let token = state.hash_pool.run(move || auth.login(&email, &password)).await??;
    Ok(HttpResponse::Ok()
        .insert_header(ContentType::json())
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TokenResponse { access_token: token.token, token_type: "bearer", expires_in: token.expires_in_seconds }))
}
