//! Request and response bodies, and their translation to and from the domain. This is one of
//! the two translations of the codebase (the other is rows in infrastructure).

pub mod cursor;
pub mod kitchen;
pub mod locations;
pub mod menu;
pub mod money;
pub mod orders;
pub mod patterns;
pub mod payments;
pub mod reports;
pub mod time;
pub mod timestamp;
pub mod users;

use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::problem::FieldError;

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

/// A request body (or a part of one) that must be a JSON object. serde's derived structs also
/// take a JSON array of their fields in order (`["Mesa 1", [...]]`), which the contract does
/// not allow: this reads only a map and hands it to `T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object<T>(pub T);

impl<T> Object<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

/// What a client learns of a body or query that could not be read: serde's message without
/// the names of our Rust types (`expected struct CreateOrderRequest`, `expected u32`), which
/// are nobody's business outside.
pub fn unreadable(message: &str) -> String {
    const RUST_NUMBERS: [&str; 14] =
        ["u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32", "f64"];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("expected ") {
        let (before, after) = rest.split_at(at + "expected ".len());
        out.push_str(before);
        let word_end = after.find([' ', ',', ')']).unwrap_or(after.len());
        let word = &after[..word_end];
        rest = match word {
            "struct" | "enum" | "tuple" | "unit" => {
                // `struct Name` or `tuple struct Name`: drop the kind and the name.
                let tail = &after[word_end..];
                let tail = tail.strip_prefix(" struct").unwrap_or(tail);
                let name_end =
                    tail.trim_start().find([' ', ',']).map_or(tail.len(), |i| i + tail.len() - tail.trim_start().len());
                out.push_str(if word == "enum" { "one of the allowed values" } else { "a JSON object" });
                &tail[name_end..]
            }
            w if RUST_NUMBERS.contains(&w) => {
                out.push_str(if w.starts_with('f') { "a number" } else { "a whole number" });
                &after[word_end..]
            }
            _ => after,
        };
    }
    out.push_str(rest);
    out
}

/// An optional field that may be left out but not sent as `null` (the document does not allow
/// it, and for a change it would read as "remove", which these fields cannot be): with
/// `#[serde(default, deserialize_with = "non_null")]`, absent is `None` and `null` does not
/// deserialize (a 400, as for any other value of the wrong type).
pub fn non_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
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

    /// Parses an optional field: `Some(None)` when it is absent, `Some(Some(value))` when it
    /// parses, `None` when it does not (the error is recorded).
    pub fn optional<R, T, E: ToString>(
        &mut self,
        field: impl Into<String>,
        value: Option<R>,
        parse: impl FnOnce(R) -> Result<T, E>,
    ) -> Option<Option<T>> {
        match value {
            None => Some(None),
            Some(raw) => self.check(field, parse(raw)).map(Some),
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
                    // A range says its bounds (taken from the constants the rule names).
                    let range = match (e.code.as_ref(), e.params.get("min"), e.params.get("max")) {
                        ("range", Some(min), Some(max)) => Some(format!("must be between {min} and {max}")),
                        _ => None,
                    };
                    let message =
                        e.message.as_ref().map(ToString::to_string).or(range).unwrap_or_else(|| e.code.to_string());
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
    #[validate(range(min = 1, max = application::PageRequest::MAX_LIMIT))]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::orders::CreateOrderRequest;
    use crate::dto::payments::CreatePaymentRequest;
    use crate::dto::users::{CreateUserRequest, LoginRequest};

    fn refused<T: for<'de> Deserialize<'de> + std::fmt::Debug>(json: &str) -> String {
        unreadable(&serde_json::from_str::<Object<T>>(json).unwrap_err().to_string())
    }

    #[test]
    fn bodies_must_be_objects_at_every_level() {
        for message in [
            refused::<CreateOrderRequest>(r#"["a",[["b","1.00",1]]]"#),
            refused::<CreateOrderRequest>(r#"{"customer_name":"a","items":[["b","1.00",1]]}"#),
            refused::<LoginRequest>(r#"["a@b.co","password"]"#),
            refused::<CreateUserRequest>(r#"["a@b.co","Ana","a long password","waiter"]"#),
            refused::<CreatePaymentRequest>(r#"["1.00","cash"]"#),
        ] {
            assert!(message.starts_with("invalid type: sequence, expected a JSON object"), "{message}");
        }
        assert!(serde_json::from_str::<Object<CreatePaymentRequest>>(r#"{"amount":"1.00","method":"cash"}"#).is_ok());
    }

    #[test]
    fn no_rust_type_names_reach_a_client() {
        let messages = [
            refused::<CreateOrderRequest>(r#"{"customer_name":5}"#),
            refused::<CreateOrderRequest>(r#"{"customer_name":"a","customer_name":"b"}"#),
            refused::<CreateOrderRequest>(r#"{"items":{}}"#),
            unreadable("invalid type: string \"x\", expected u32 at line 1 column 3"),
            unreadable("invalid type: map, expected struct CreateOrderRequest at line 1 column 1"),
            unreadable("invalid type: sequence, expected tuple struct Pair"),
            unreadable("unknown variant `x`, expected enum OrderStatusDto"),
            unreadable("invalid type: floating point `1.5`, expected i64"),
        ];
        for message in &messages {
            for leak in ["struct", "u32", "i64", "OrderStatusDto", "Pair", "Request", "Option", "enum "] {
                assert!(!message.contains(leak), "{message:?} names {leak}");
            }
        }
        assert_eq!(messages[3], "invalid type: string \"x\", expected a whole number at line 1 column 3");
        assert_eq!(messages[4], "invalid type: map, expected a JSON object at line 1 column 1");
        assert!(messages[1].contains("duplicate field `customer_name`"), "{}", messages[1]);
    }
}
