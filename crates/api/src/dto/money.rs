//! Money and quantities as clients write them, and their schemas in the document.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};

use domain::{Money, Quantity, QuantityError};

use super::NumberInput;

/// Schema of a money input up to `max` (integer digits `max_digits`): a decimal string
/// (preferred) or a JSON number, positive, at most two decimals, written without exponent.
fn money_schema(max: f64, max_text: &str, description: &str) -> RefOr<Schema> {
    // Plain digits, at least one before the point, at most two after it, above zero, up to max.
    let below = max_text.len() - 1;
    let pattern = format!(
        r"^0*(?:[1-9][0-9]{{0,{}}}(?:\.[0-9]{{1,2}})?|{max_text}(?:\.00?)?|0\.(?:0[1-9]|[1-9][0-9]?))$",
        below - 1
    );
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)).pattern(Some(pattern)).examples(["12.50"]),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Number))
                .exclusive_minimum(Some(0.0))
                .maximum(Some(max))
                .multiple_of(Some(0.01))
                .examples([12.5]),
        )
        .description(Some(description))
        .into()
}

/// A unit price: up to 1000000.00.
pub fn money_input_schema() -> impl Into<RefOr<Schema>> {
    money_schema(
        1_000_000.0,
        "1000000",
        "A positive amount, at most 1000000.00 with at most two decimal places, as a string (\"12.50\") or a number; more decimals, zero, negatives and exponents are refused, never rounded.",
    )
}

/// A payment amount: at most the balance due (and never above 10^12).
pub fn amount_input_schema() -> impl Into<RefOr<Schema>> {
    money_schema(
        1_000_000_000_000.0,
        "1000000000000",
        "A positive amount with at most two decimal places, at most the order's balance due, as a string (\"12.50\") or a number.",
    )
}

/// Schema of a quantity input: a JSON integer.
pub fn quantity_input_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .minimum(Some(1))
        .maximum(Some(i64::from(Quantity::MAX)))
        .examples([2])
}

pub fn parse_money(input: &NumberInput, max: Money) -> Result<Money, String> {
    match input {
        NumberInput::Text(raw) | NumberInput::Number(raw) => Money::parse_positive(raw, max).map_err(|e| e.to_string()),
        NumberInput::Invalid => Err("must be a decimal string such as \"12.50\" or a number".into()),
    }
}

pub fn parse_quantity(input: &NumberInput) -> Result<Quantity, QuantityError> {
    match input {
        NumberInput::Number(raw) => Quantity::parse(raw),
        NumberInput::Text(_) | NumberInput::Invalid => Err(QuantityError::NotAnInteger),
    }
}
