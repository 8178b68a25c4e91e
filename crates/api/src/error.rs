//! `ApiError`: every failure becomes an RFC 9457 problem+json response, reached only through
//! `From` conversions from the layers' own errors.

use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use tracing::{error, warn};

use application::{
    AuthError, KitchenError, LocationError, MenuError, OrderServiceError, ReportError, StoreError, Unorderable,
    UserError,
};
use domain::{PlacementError, TransitionError};

use crate::hashing_pool::HashingPoolError;
use crate::problem::{FieldError, RETRY_AFTER_SECONDS, versioned_problem_response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the order is at version {current_version}, not the one If-Match names")]
    PreconditionFailed { current_version: u32 },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    HeadersTooLarge(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self::Validation(errors)
    }

    fn slug(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad-request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::MethodNotAllowed(_) => "method-not-allowed",
            Self::Conflict(_) => "conflict",
            Self::PreconditionFailed { .. } => "precondition-failed",
            Self::PayloadTooLarge(_) => "payload-too-large",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::HeadersTooLarge(_) => "headers-too-large",
            Self::RequestTimeout(_) => "request-timeout",
            Self::Validation(_) => "validation",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = match self {
            Self::Internal(source) => {
                error!(error = %chain(source.as_ref()), "internal error");
                "something went wrong on our side; the request id identifies it in our logs".to_owned()
            }
            Self::Unavailable(reason) => {
                warn!(reason = %reason, "answered 503");
                "the service is temporarily unavailable; retry shortly".to_owned()
            }
            Self::MethodNotAllowed(allow) => format!("this resource allows only {allow}"),
            other => other.to_string(),
        };
        let errors = match self {
            Self::Validation(errors) => Some(errors.clone()),
            _ => None,
        };
        let current_version = match self {
            Self::PreconditionFailed { current_version } => Some(*current_version),
            _ => None,
        };
        let mut response = versioned_problem_response(status, self.slug(), &detail, errors, current_version);
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::MethodNotAllowed(allow) => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            }
            // The rest of the body may still be on its way: the connection cannot be reused.
            Self::RequestTimeout(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

/// An error and all its sources on one line, for the log.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let _ = write!(out, ": {e}");
        source = e.source();
    }
    out
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(source) => Self::Unavailable(chain(source.as_ref())),
            StoreError::Other(source) => Self::Internal(source),
        }
    }
}

impl From<HashingPoolError> for ApiError {
    fn from(error: HashingPoolError) -> Self {
        match error {
            HashingPoolError::Busy => Self::Unavailable(error.to_string()),
            HashingPoolError::Panicked => Self::internal(error),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::internal(error)
    }
}

const GONE: &str = "the signed-in user no longer exists";

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::InvalidCredentials => Self::Unauthorized("the email or the password is wrong".into()),
            AuthError::Unauthenticated(reason) => {
                tracing::debug!(reason = %chain(&reason), "token refused");
                Self::Unauthorized("a valid bearer token is required".into())
            }
            AuthError::Token(e) => Self::internal(e),
            AuthError::Hash(e) => Self::internal(e),
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> Self {
        match error {
            UserError::Forbidden => Self::Forbidden(error.to_string()),
            UserError::NotFound => Self::NotFound(error.to_string()),
            UserError::DuplicateEmail => Self::Conflict(error.to_string()),
            UserError::Locations(e) => Self::Validation(vec![FieldError::new("location_ids", e)]),
            UserError::ActorGone => Self::Unauthorized(GONE.into()),
            UserError::Hash(e) => Self::internal(e),
            UserError::Store(e) => e.into(),
        }
    }
}

impl From<OrderServiceError> for ApiError {
    fn from(error: OrderServiceError) -> Self {
        match error {
            // The order's own lines make these too many: a conflict with its state.
            OrderServiceError::Invalid(errors)
                if errors.iter().any(|e| {
                    matches!(e, PlacementError::TooManyLiveLines { .. } | PlacementError::TooManyKeptLines { .. })
                }) =>
            {
                let detail = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                Self::Conflict(detail)
            }
            OrderServiceError::Invalid(errors) => Self::Validation(placement_errors(&errors)),
            OrderServiceError::NotFound => Self::NotFound(error.to_string()),
            OrderServiceError::Forbidden | OrderServiceError::NoLocation => Self::Forbidden(error.to_string()),
            OrderServiceError::LocationRequired { .. } | OrderServiceError::UnknownLocation => {
                Self::Validation(vec![FieldError::new("location_id", error)])
            }
            OrderServiceError::Unorderable(items) => {
                let named: Vec<String> = items
                    .iter()
                    .map(|(name, why)| {
                        let why = match why {
                            Unorderable::Retired => "is no longer on the menu",
                            Unorderable::SoldOut => "is sold out at this location",
                        };
                        format!("{} {why}", name.as_ref())
                    })
                    .collect();
                Self::Conflict(named.join("; "))
            }
            OrderServiceError::Transition(TransitionError::NoSuchLine(_)) => Self::NotFound(error.to_string()),
            OrderServiceError::Transition(e) => Self::Conflict(e.to_string()),
            OrderServiceError::VersionMismatch { current } => Self::PreconditionFailed { current_version: current },
            // Retried by the handler with a fresh menu; reaching here means it kept changing.
            OrderServiceError::MenuStale => Self::Unavailable(error.to_string()),
            OrderServiceError::IdempotencyMismatch => Self::Conflict(error.to_string()),
            OrderServiceError::ActorGone => Self::Unauthorized(GONE.into()),
            OrderServiceError::Store(e) => e.into(),
        }
    }
}

impl From<MenuError> for ApiError {
    fn from(error: MenuError) -> Self {
        match error {
            MenuError::Forbidden => Self::Forbidden(error.to_string()),
            MenuError::NotFound => Self::NotFound(error.to_string()),
            MenuError::NameTaken => Self::Conflict(error.to_string()),
            MenuError::UnknownCategory => Self::Validation(vec![FieldError::new("category_id", "names no category")]),
            MenuError::ActorGone => Self::Unauthorized(GONE.into()),
            MenuError::Store(e) => e.into(),
        }
    }
}

impl From<KitchenError> for ApiError {
    fn from(error: KitchenError) -> Self {
        match error {
            KitchenError::NotFound => Self::NotFound(error.to_string()),
            KitchenError::Forbidden => Self::Forbidden(error.to_string()),
            KitchenError::Transition(e) => Self::Conflict(e.to_string()),
            KitchenError::ActorGone => Self::Unauthorized(GONE.into()),
            KitchenError::Store(e) => e.into(),
        }
    }
}

impl From<LocationError> for ApiError {
    fn from(error: LocationError) -> Self {
        match error {
            LocationError::Forbidden => Self::Forbidden(error.to_string()),
            LocationError::NotFound => Self::NotFound(error.to_string()),
            LocationError::NameTaken => Self::Conflict(error.to_string()),
            LocationError::ActorGone => Self::Unauthorized(GONE.into()),
            LocationError::Store(e) => e.into(),
        }
    }
}

impl From<ReportError> for ApiError {
    fn from(error: ReportError) -> Self {
        match error {
            ReportError::Forbidden => Self::Forbidden(error.to_string()),
            ReportError::ActorGone => Self::Unauthorized(GONE.into()),
            ReportError::Store(e) => e.into(),
        }
    }
}

/// The domain's merge and count rules, as field errors.
fn placement_errors(errors: &[PlacementError]) -> Vec<FieldError> {
    errors
        .iter()
        .map(|e| match e {
            PlacementError::NoLines
            | PlacementError::TooManyLines { .. }
            | PlacementError::TooManyLiveLines { .. }
            | PlacementError::TooManyKeptLines { .. }
            | PlacementError::Total(_) => FieldError::new("items", e),
            PlacementError::ConflictingPrice { first, line } => FieldError::new(
                format!("items[{line}].unit_price"),
                format!("names the same product as items[{first}] at another unit price"),
            ),
            PlacementError::ConflictingNote { first, line } => FieldError::new(
                format!("items[{line}].note"),
                format!("names the same product as items[{first}] with another note"),
            ),
            PlacementError::UnknownMenuItem { line } => {
                FieldError::new(format!("items[{line}].menu_item_id"), "names no menu item")
            }
            PlacementError::MergedQuantityTooLarge { line, .. } => {
                FieldError::new(format!("items[{line}].quantity"), e)
            }
        })
        .collect()
}
