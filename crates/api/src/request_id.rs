//! `X-Request-Id` on every response and in every log line of the request; the tracing span of
//! the request; and the safety net that turns any error the framework answers by itself into
//! problem+json.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::{Instrument, info, info_span};
use uuid::Uuid;

use crate::problem::{PROBLEM_JSON, problem_response};
use crate::request_context::REQUEST_ID;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The client's id when it is sane (1 to 128 characters of letters, digits and `-_.:`), else
/// a fresh UUID.
fn pick_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::now_v7().to_string())
}

/// The outermost middleware.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, Error> {
    let id = pick_id(&req);
    let span = info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
        route = tracing::field::Empty,
        status = tracing::field::Empty,
        otel.kind = "server",
    );
    let started = Instant::now();
    let result = REQUEST_ID
        .scope(id.clone(), async move { next.call(req).await.map(ServiceResponse::map_into_boxed_body) })
        .instrument(span.clone())
        .await;
    // Handlers' and extractors' errors arrive here as responses; only a middleware can return
    // an `Err`, and none of ours does for a request (the framework renders it if one ever does).
    let mut response = REQUEST_ID.sync_scope(id.clone(), || result.map(as_problem))?;
    let status = response.status();
    let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    crate::metrics::record_request(response.request().method().as_str(), &route, status.as_u16(), started.elapsed());
    span.record("route", route.as_str());
    span.record("status", status.as_u16());
    span.in_scope(|| {
        info!(status = status.as_u16(), route = %route, latency_ms = started.elapsed().as_secs_f64() * 1000.0, "request finished")
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    Ok(response.map_into_left_body())
}

/// Errors answered by the framework itself (a payload over the limit, a route that does not
/// exist, ...) come without our body: give them one.
fn as_problem(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    // Ours already (problem+json, or the JSON of the readiness probe).
    let is_ours = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(PROBLEM_JSON.as_bytes()) || v.starts_with(b"application/json")
    });
    if status.as_u16() < 400 || is_ours {
        return response;
    }
    let (slug, detail) = match status {
        StatusCode::NOT_FOUND => ("not-found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "this method is not allowed on this resource"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload-too-large", "the request body is larger than 64 KiB"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", "this content type is not accepted here"),
        StatusCode::TOO_MANY_REQUESTS => ("rate-limited", "too many requests; see Retry-After"),
        s if s.is_server_error() => {
            ("internal", "something went wrong on our side; the request id identifies it in our logs")
        }
        _ => ("bad-request", "the request could not be read"),
    };
    // Every header stays (security, CORS, rate limits, Allow, Retry-After...) but the body's own.
    let keep: Vec<(HeaderName, HeaderValue)> = response
        .headers()
        .iter()
        .filter(|(name, _)| *name != header::CONTENT_TYPE && *name != header::CONTENT_LENGTH)
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let (request, _) = response.into_parts();
    let mut replacement = problem_response(status, slug, detail, None);
    for (name, value) in keep {
        replacement.headers_mut().append(name, value);
    }
    ServiceResponse::new(request, replacement)
}
