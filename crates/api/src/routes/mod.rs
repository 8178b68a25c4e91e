//! Handlers, one module per resource.

pub mod auth;
pub mod health;
pub mod orders;
pub mod reports;
pub mod users;

use actix_web::{HttpResponse, web};
use tracing::Span;

use crate::error::ApiError;

/// Runs a whole use case (pool checkout, every query, the transaction) in one blocking hop,
/// inside the request's tracing span.
pub async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    let span = Span::current();
    web::block(move || span.in_scope(work)).await?.map_err(Into::into)
}

/// The answer of a known path to a method it does not have: 405 with `Allow`.
pub fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::route().to(move || async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow)) })
}
