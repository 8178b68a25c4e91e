//! Request and response bodies, and their translation to and from the domain. This is one of
//! the two translations of the codebase (the other is rows in infrastructure).

pub mod cursor;
pub mod orders;
pub mod timestamp;
pub mod users;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::FieldError;

/// A number as the client wrote it: a JSON string or a JSON number, kept as text so that
/// nothing is rounded on the way in (serde_json keeps numbers' text with `arbitrary_precision`).
/// Anything else is remembered as invalid and reported with the other validation errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberInput {
    Text(String),
    Number(String),
    Invalid,
}

impl<'de> Deserialize<'de> for NumberInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::String(s) => Self::Text(s),
            Value::Number(n) => Self::Number(n.to_string()),
            _ => Self::Invalid,
        })
    }
}

/// Collects the field errors of a request while its fields are parsed one by one.
#[derive(Debug, Default)]
pub struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    /// Parses a required field; `None` means it was missing (or null).
    pub fn required<T, E: ToString>(
        &mut self,
        field: impl Into<String>,
        value: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let field = field.into();
        match value {
            None => {
                self.errors.push(FieldError::new(field, "is required"));
                None
            }
            Some(raw) => self.check(field, parse(raw)),
        }
    }

    /// Records the error of an already-parsed field.
    pub fn check<T, E: ToString>(&mut self, field: impl Into<String>, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.errors.push(FieldError::new(field, e.to_string()));
                None
            }
        }
    }

    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// Adds the errors of the `validator` crate (structural rules on DTOs).
    pub fn validated(&mut self, result: Result<(), validator::ValidationErrors>) {
        if let Err(errors) = result {
            for (field, errs) in errors.field_errors() {
                for e in errs {
                    let message = e.message.as_ref().map_or_else(|| e.code.to_string(), ToString::to_string);
                    self.errors.push(FieldError::new(field.to_string(), message));
                }
            }
        }
    }

    /// `Ok(value)` when every field parsed, else every error at once.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Vec<FieldError>> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ => Err(self.errors),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

/// One page of a list, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PageResponse<T: utoipa::ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `limit` and `cursor` of a list.
#[derive(Debug, Deserialize, utoipa::IntoParams, validator::Validate)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[A-Za-z0-9_-]{48}$")]
    pub cursor: Option<String>,
}

/// Checks `limit` and decodes `cursor`: a bad limit is a 422, a garbled cursor a 400.
pub fn page_request(
    limit: Option<u32>,
    cursor: Option<&str>,
    codec: &cursor::CursorCodec,
    validation: Result<(), validator::ValidationErrors>,
) -> Result<application::PageRequest, crate::error::ApiError> {
    let mut fields = Fields::default();
    fields.validated(validation);
    if !fields.is_empty() {
        return Err(crate::error::ApiError::Validation(fields.errors));
    }
    let after = match cursor {
        None => None,
        Some(raw) => Some(codec.decode(raw).map_err(|e| crate::error::ApiError::BadRequest(e.to_string()))?),
    };
    Ok(application::PageRequest { limit: limit.unwrap_or(application::PageRequest::DEFAULT_LIMIT), after })
}
