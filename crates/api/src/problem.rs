//! The one shape of every error this API answers: an RFC 9457 problem detail
//! (`application/problem+json`), with the request's id and, for validation, every failing field.
//! A leaf: the error mapping, the middleware and the bodies all build on it.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use serde::Serialize;
use utoipa::ToSchema;

/// One failing field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Where the problem is: `customer_name`, `items[2].unit_price`, a query parameter's name.
    #[schema(example = "items[0].unit_price")]
    pub field: String,
    #[schema(example = "must have at most two decimal places")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl ToString) -> Self {
        Self { field: field.into(), message: message.to_string() }
    }
}

/// An RFC 9457 problem detail, as every error of this API is answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[schema(example = "/problems/validation")]
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(example = "Unprocessable Content")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[schema(example = "the request has invalid fields")]
    pub detail: String,
    /// The request's id, as in the `X-Request-Id` header and the server's logs.
    #[schema(example = "0193a5b2-7c4e-7f00-8a1b-5c3d2e1f0a9b")]
    pub request_id: String,
    /// Every failing field (validation problems only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// The resource's version now (412 only: the `If-Match` named another).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 4)]
    pub current_version: Option<u32>,
}

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Builds a problem+json response; the other error paths (framework errors, rate limits) use
/// it too, so that every error has the same shape.
pub fn problem_response(status: StatusCode, slug: &str, detail: &str, errors: Option<Vec<FieldError>>) -> HttpResponse {
    versioned_problem_response(status, slug, detail, errors, None)
}

/// [`problem_response`] with the resource's current version (a failed `If-Match`).
pub fn versioned_problem_response(
    status: StatusCode,
    slug: &str,
    detail: &str,
    errors: Option<Vec<FieldError>>,
    current_version: Option<u32>,
) -> HttpResponse {
    let problem = Problem {
        kind: format!("/problems/{slug}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: detail.to_owned(),
        request_id: crate::request_context::current().unwrap_or_default(),
        errors,
        current_version,
    };
    let body = serde_json::to_string(&problem).unwrap_or_else(|_| String::from("{}"));
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(body)
}

/// Seconds a client should wait before retrying when the service is overloaded or the
/// database is away.
pub const RETRY_AFTER_SECONDS: u32 = 1;
