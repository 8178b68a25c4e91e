//! Handlers, one module per resource.

pub mod auth;
pub mod health;
pub mod kitchen;
pub mod locations;
pub mod menu;
pub mod orders;
pub mod reports;
pub mod users;

use std::time::Instant;

use actix_web::{HttpResponse, web};
use tracing::Span;

use crate::error::ApiError;
use crate::state::AppState;

/// Runs a whole use case (pool checkout, every query, the transaction) in one blocking hop,
/// inside the request's tracing span. A request that waited longer than the database timeout
/// for a blocking thread is answered 503 without starting: under overload the wait stays
/// bounded instead of growing with the queue.
pub async fn blocking<T, E>(
    state: &AppState,
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    let span = Span::current();
    let queued = Instant::now();
    let patience = state.queue_timeout;
    web::block(move || {
        span.in_scope(|| {
            let _database = tracing::info_span!("database_work").entered();
            if queued.elapsed() > patience {
                return Err(ApiError::Unavailable("waited too long for a worker thread".into()));
            }
            work().map_err(Into::into)
        })
    })
    .await?
}

/// The answer of a known path to a method it does not have: 405 with `Allow`.
pub fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::route().to(move || async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow)) })
}
