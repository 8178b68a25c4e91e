//! Liveness and readiness.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::RETRY_AFTER_SECONDS;
use crate::state::{AppState, NotReady};

#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ok` or `unavailable`.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// `ok`, or what is wrong with the database.
    #[schema(example = "ok")]
    pub database: String,
}

/// The process runs.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, body = Live)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Live { status: "ok" })
}

/// The database answers and its migrations are current. Also at `/health`.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    responses(
        (status = 200, body = Ready),
        (status = 503, body = Ready, description = "the database does not answer or is behind on migrations",
         headers(("Retry-After" = u32, description = "seconds")))
    )
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let probes = state.probes.clone();
    let timeout = state.ready_timeout;
    match web::block(move || probes.readiness(timeout)).await {
        Ok(Ok(())) => HttpResponse::Ok().json(Ready { status: "ok", database: "ok".into() }),
        Ok(Err(not_ready)) => {
            tracing::warn!(reason = %not_ready, "not ready");
            // The connection error names hosts and ports: it goes to the log, not to the caller.
            let database = match not_ready {
                NotReady::Unreachable(_) => "the database does not answer".to_owned(),
                pending @ NotReady::MigrationsPending(_) => pending.to_string(),
            };
            HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS))
                .json(Ready { status: "unavailable", database })
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS))
            .json(Ready { status: "unavailable", database: "the check could not run".into() }),
    }
}
