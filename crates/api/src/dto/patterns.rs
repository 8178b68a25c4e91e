//! The OpenAPI patterns of the text rules, made from the same Unicode data as the checks
//! themselves (`domain::text`), so that the document says exactly what the service accepts and
//! cannot drift from it. Characters of the Basic Multilingual Plane are written `\uXXXX` (both
//! ECMA-262 and Python regular expressions read that); others are written as themselves.

use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::sync::LazyLock;

use domain::{Email, text};

fn push_char(out: &mut String, c: char) {
    if (c as u32) <= 0xFFFF {
        let _ = write!(out, "\\u{:04x}", c as u32);
    } else {
        out.push(c);
    }
}

/// The inside of a character class holding `ranges`.
fn class(ranges: &[RangeInclusive<char>]) -> String {
    let mut out = String::new();
    for range in ranges {
        push_char(&mut out, *range.start());
        if range.start() != range.end() {
            out.push('-');
            push_char(&mut out, *range.end());
        }
    }
    out
}

fn union(sets: &[&[RangeInclusive<char>]]) -> Vec<RangeInclusive<char>> {
    let mut all: Vec<RangeInclusive<char>> = sets.iter().flat_map(|s| s.iter().cloned()).collect();
    all.sort_by_key(|r| *r.start());
    let mut merged: Vec<RangeInclusive<char>> = Vec::new();
    for range in all {
        match merged.last_mut() {
            Some(last) if (*range.start() as u32) <= (*last.end() as u32) + 1 => {
                if range.end() > last.end() {
                    *last = *last.start()..=*range.end();
                }
            }
            _ => merged.push(range),
        }
    }
    merged
}

fn chars(s: &str) -> Vec<RangeInclusive<char>> {
    s.chars().map(|c| c..=c).collect()
}

/// A name of at least `min` characters once trimmed (1 or 2): no control or bidirectional
/// control anywhere, at least one visible character, and for `min` 2 another character that is
/// not white space before or after it.
pub fn name(min: usize) -> String {
    let refused = text::refused_ranges();
    let invisible = union(&[&refused, &text::invisible_ranges()]);
    let spaced = union(&[&refused, &text::white_space_ranges()]);
    let (r, i, w) = (class(&refused), class(&invisible), class(&spaced));
    if min >= 2 {
        format!("^[^{r}]*(?:[^{i}][^{r}]*[^{w}]|[^{w}][^{r}]*[^{i}])[^{r}]*$")
    } else {
        format!("^[^{r}]*[^{i}][^{r}]*$")
    }
}

/// A new email address as `Email::parse` reads it (surrounding white space allowed).
pub fn email() -> String {
    let white = class(&text::white_space_ranges());
    let not_local =
        class(&union(&[&text::refused_ranges(), &text::invisible_ranges(), &chars(Email::SPECIALS), &chars(".")]));
    let atom = format!("[^{not_local}]+");
    let label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    format!("^[{white}]*(?=[^@]{{1,64}}@){atom}(?:\\.{atom})*@{label}(?:\\.{label})+[{white}]*$")
}

/// Product, customer and location names: one character at least.
static SHORT_NAME: LazyLock<String> = LazyLock::new(|| name(1));
static PERSON_NAME: LazyLock<String> = LazyLock::new(|| name(2));
static EMAIL: LazyLock<String> = LazyLock::new(email);
/// A new password holds at least one visible character (unanchored: anywhere).
static PASSWORD: LazyLock<String> = LazyLock::new(|| format!("[^{}]", class(&text::invisible_ranges())));

/// A text field's schema: a string of `min..=max` characters matching `pattern`.
fn text_schema(pattern: &str, min: usize, max: usize, example: &str, description: &str) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .examples([example])
        .description(Some(description))
        .build()
}

const NAME_RULE: &str = "Trimmed, inner white space collapsed to one space, stored in NFC; control and bidirectional control characters are refused, and so is a name without a visible character. The length counts characters after trimming.";

pub fn product_name_schema() -> utoipa::openapi::Object {
    text_schema(&SHORT_NAME, 1, 120, "Café con leche", NAME_RULE)
}

pub fn customer_name_schema() -> utoipa::openapi::Object {
    text_schema(&SHORT_NAME, 1, 120, "Mesa 4", NAME_RULE)
}

pub fn location_name_schema() -> utoipa::openapi::Object {
    text_schema(&SHORT_NAME, 1, 120, "Centro", &format!("{NAME_RULE} Unique among locations, ignoring case."))
}

pub fn category_name_schema() -> utoipa::openapi::Object {
    text_schema(&SHORT_NAME, 1, 120, "Bebidas", &format!("{NAME_RULE} Unique among categories, ignoring case."))
}

pub fn menu_item_name_schema() -> utoipa::openapi::Object {
    text_schema(
        &SHORT_NAME,
        1,
        120,
        "Café con leche",
        &format!("{NAME_RULE} Unique among active items, ignoring case (a retired item's name may be reused)."),
    )
}

pub fn note_schema() -> utoipa::openapi::Object {
    text_schema(&SHORT_NAME, 1, 200, "sin cebolla", &format!("What the kitchen should know. {NAME_RULE}"))
}

pub fn void_reason_schema() -> utoipa::openapi::Object {
    text_schema(&SHORT_NAME, 1, 200, "wrong table", &format!("Why the line is voided. {NAME_RULE}"))
}

pub fn person_name_schema() -> utoipa::openapi::Object {
    text_schema(&PERSON_NAME, 2, 100, "Ana López", NAME_RULE)
}

pub fn email_schema() -> utoipa::openapi::Object {
    text_schema(
        &EMAIL,
        3,
        254,
        "ana@example.com",
        "An address with an ASCII domain (an internationalized domain in its xn-- form); unique without regard to case.",
    )
}

pub fn password_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{KnownFormat, SchemaFormat};
    let mut schema = text_schema(
        &PASSWORD,
        8,
        128,
        "una frase larga y tuya",
        "8 to 128 characters with a visible one; not one of the 30,000 most common passwords, nor the email, its name part, the user's name or the product's name, even with digits or symbols around (a 422 says which).",
    );
    schema.format = Some(SchemaFormat::KnownFormat(KnownFormat::Password));
    schema
}

/// A UUID as a body carries it: the hyphenated form (the one the service writes), either case.
/// The uuid crate reads other forms too; the document promises this one.
pub const UUID: &str = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

fn uuid_object(nullable: bool) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
    let kind = match nullable {
        true => SchemaType::from_iter([Type::String, Type::Null]),
        false => SchemaType::Type(Type::String),
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .pattern(Some(UUID))
        .build()
}

/// An optional location id in a body (`null` is the same as leaving it out).
pub fn optional_location_id_schema() -> utoipa::openapi::Object {
    let mut schema = uuid_object(true);
    schema.description =
        Some("Where the order is placed: optional when the signed-in user works in exactly one location.".into());
    schema
}

/// A required id in a body (a menu item's, a category's).
pub fn id_schema() -> utoipa::openapi::Object {
    uuid_object(false)
}

/// A list of location ids in a body.
fn location_ids(description: &str) -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::ArrayBuilder;
    ArrayBuilder::new()
        .items(uuid_object(false))
        .max_items(Some(super::users::MAX_LOCATION_IDS))
        .description(Some(description))
        .build()
}

pub fn new_user_location_ids_schema() -> utoipa::openapi::schema::Array {
    location_ids(
        "The locations the user works in: required unless exactly one location exists; left out for an admin (admins work in every location).",
    )
}

pub fn set_location_ids_schema() -> utoipa::openapi::schema::Array {
    location_ids("The locations the user works in from now on, replacing the current ones (an empty list is allowed).")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The patterns agree with the checks on names and addresses written to probe them.
    #[test]
    fn patterns_say_what_the_checks_do() {
        let product = fancy_regex::Regex::new(&SHORT_NAME).unwrap();
        let person = fancy_regex::Regex::new(&PERSON_NAME).unwrap();
        let email = fancy_regex::Regex::new(&EMAIL).unwrap();
        for raw in [
            "Café",
            " a ",
            "a\u{200b}",
            "\u{200b}",
            "\u{3164}",
            "a\u{202e}b",
            "a\u{7}b",
            "\u{2800}",
            "ñ",
            "  ",
            "Ｔｅａ",
        ] {
            assert_eq!(product.is_match(raw).unwrap(), domain::ProductName::parse(raw).is_ok(), "{raw:?}");
            assert_eq!(product.is_match(raw).unwrap(), domain::LocationName::parse(raw).is_ok(), "{raw:?}");
            assert_eq!(person.is_match(raw).unwrap(), domain::PersonName::parse(raw).is_ok(), "{raw:?}");
        }
        for raw in [
            "ana@example.com",
            " ana@example.com ",
            "\u{a0}ana@example.com",
            "a.b@c.co",
            ".a@c.co",
            "a..b@c.co",
            "a.@c.co",
            "a b@c.co",
            "a\u{200b}@c.co",
            "\u{b}Z@c.co",
            "ángel@example.com",
            "a@-c.co",
            "a@c-.co",
            "a@c",
            "a@españa.es",
            "a@xn--espaa-rta.es",
            "\"a\"@c.co",
            "a@b@c.co",
        ] {
            assert_eq!(email.is_match(raw).unwrap(), domain::Email::parse(raw).is_ok(), "{raw:?}");
        }
        let long_local = format!("{}@c.co", "a".repeat(65));
        assert!(!email.is_match(&long_local).unwrap() && domain::Email::parse(&long_local).is_err());
    }
}
