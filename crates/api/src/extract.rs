//! Extractors for the signed-in caller and the `Idempotency-Key` header.
//!
//! The bearer token proves who is calling (CPU only, no database); what the caller may do is
//! decided by the use case on the role the database holds at that moment, so that a change of
//! role takes effect at once.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use application::{Caller, IdempotencyKey};

use crate::error::ApiError;
use crate::problem::FieldError;
use crate::state::AppState;

/// Any signed-in user: a valid bearer token, or 401.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn(pub Caller);

fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(std::io::Error::other("application state is missing")))?;
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into()))?;
    Ok(state.auth.authenticate(token)?)
}

impl FromRequest for SignedIn {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).map(Self))
    }
}

/// The optional `Idempotency-Key` header; a malformed one is reported with the body's field
/// errors, in the same 422.
#[derive(Debug, Clone)]
pub struct Idempotency(pub Result<Option<IdempotencyKey>, FieldError>);

impl Idempotency {
    /// The key, with the body's parse result: every field error together.
    pub fn with<T>(self, body: Result<T, Vec<FieldError>>) -> Result<(T, Option<IdempotencyKey>), ApiError> {
        match (body, self.0) {
            (Ok(value), Ok(key)) => Ok((value, key)),
            (Ok(_), Err(e)) => Err(ApiError::validation(vec![e])),
            (Err(errors), Ok(_)) => Err(ApiError::validation(errors)),
            (Err(mut errors), Err(e)) => {
                errors.push(e);
                Err(ApiError::validation(errors))
            }
        }
    }
}

const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

impl FromRequest for Idempotency {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = match req.headers().get(IDEMPOTENCY_KEY) {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| IdempotencyKey::parse(v).ok())
                .map(Some)
                .ok_or_else(|| FieldError::new(IDEMPOTENCY_KEY, "must be 1 to 255 visible ASCII characters")),
        };
        ready(Ok(Self(parsed)))
    }
}

/// The `If-Match` header of a change to an order: `"<version>"` (or `W/"<version>"`), `*`
/// (any version), or absent (or empty). A value that names no version can match none: it is kept as
/// version 0, which no order has, so the change is answered 412 like any stale one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfMatch(pub Option<u32>);

impl IfMatch {
    fn parse(raw: &str) -> Option<u32> {
        let raw = raw.trim();
        if raw == "*" || raw.is_empty() {
            return None;
        }
        let tag = raw.strip_prefix("W/").unwrap_or(raw);
        let version = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).and_then(|t| t.parse::<u32>().ok());
        Some(version.unwrap_or(0))
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let expected = match req.headers().get(header::IF_MATCH) {
            None => None,
            Some(value) => value.to_str().map_or(Some(0), IfMatch::parse),
        };
        ready(Ok(Self(expected)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_names_a_version_or_none() {
        assert_eq!(IfMatch::parse(r#""4""#), Some(4));
        assert_eq!(IfMatch::parse(r#"W/"12""#), Some(12));
        assert_eq!(IfMatch::parse("*"), None);
        assert_eq!(IfMatch::parse(" "), None, "empty: as if absent");
        assert_eq!(IfMatch::parse("4"), Some(0), "an unquoted tag matches nothing");
        assert_eq!(IfMatch::parse(r#""x""#), Some(0));
    }
}
