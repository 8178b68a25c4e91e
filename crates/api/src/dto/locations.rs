//! Bodies of the location endpoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use uuid::Uuid;

use application::NewLocation;
use domain::{
    BusinessDayStart, Location, LocationChange, LocationName, LocationSettings, TaxRate, TaxRateError, TimeZone,
};

use super::{Fields, NumberInput};
use crate::problem::FieldError;

/// Schema of a time zone: one of the IANA names the service knows.
fn time_zone_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(TimeZone::names()))
        .examples(["America/Mexico_City"])
        .description(Some("An IANA time zone name (the service's copy of the IANA database)."))
}

/// Schema of a tax rate input: a decimal string (preferred) or a JSON number, 0 to 100, at
/// most three decimals, without exponent.
fn tax_rate_schema() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .pattern(Some(r"^0*(?:100(?:\.0+)?|[0-9]{1,2}(?:\.[0-9]{0,2}[0-9]0*)?)$"))
                .examples(["8.875"]),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Number))
                .minimum(Some(0.0))
                .maximum(Some(100.0))
                .multiple_of(Some(0.001))
                .examples([16]),
        )
        .description(Some(
            "A percentage from 0 to 100 with at most three decimal places, as a string (\"8.875\") or a number (default 0).",
        ))
        .into()
}

fn parse_rate(input: &NumberInput) -> Result<TaxRate, String> {
    match input {
        NumberInput::Text(raw) | NumberInput::Number(raw) => TaxRate::parse(raw).map_err(|e| e.to_string()),
        NumberInput::Invalid => Err(TaxRateError::NotANumber.to_string()),
    }
}

/// A new location.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateLocationRequest {
    #[schema(schema_with = super::patterns::location_name_schema, required = true)]
    pub name: Option<String>,
    #[schema(schema_with = time_zone_schema, required = true)]
    pub time_zone: Option<String>,
    /// The local time at which a business day starts (`HH:MM`, default `00:00`): sales before
    /// it belong to the day before.
    #[schema(value_type = String, pattern = "^(?:[01][0-9]|2[0-3]):[0-5][0-9]$", example = "05:00")]
    #[serde(default, deserialize_with = "super::non_null")]
    pub business_day_start: Option<String>,
    #[schema(schema_with = tax_rate_schema)]
    #[serde(default, deserialize_with = "super::non_null")]
    pub tax_rate: Option<NumberInput>,
    /// Whether menu prices include the tax (default `true`).
    #[serde(default, deserialize_with = "super::non_null")]
    #[schema(value_type = bool)]
    pub prices_include_tax: Option<bool>,
}

/// A change to a location: the fields present replace the current ones, for the orders created
/// afterwards.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateLocationRequest {
    #[schema(schema_with = super::patterns::location_name_schema)]
    #[serde(default, deserialize_with = "super::non_null")]
    pub name: Option<String>,
    #[schema(schema_with = time_zone_schema)]
    #[serde(default, deserialize_with = "super::non_null")]
    pub time_zone: Option<String>,
    #[schema(value_type = String, pattern = "^(?:[01][0-9]|2[0-3]):[0-5][0-9]$", example = "05:00")]
    #[serde(default, deserialize_with = "super::non_null")]
    pub business_day_start: Option<String>,
    #[schema(schema_with = tax_rate_schema)]
    #[serde(default, deserialize_with = "super::non_null")]
    pub tax_rate: Option<NumberInput>,
    #[serde(default, deserialize_with = "super::non_null")]
    #[schema(value_type = bool)]
    pub prices_include_tax: Option<bool>,
}

impl CreateLocationRequest {
    pub fn parse(self) -> Result<NewLocation, Vec<FieldError>> {
        let mut fields = Fields::default();
        let name = fields.required("name", self.name.as_deref(), LocationName::parse);
        if self.time_zone.is_none() {
            fields.push(FieldError::new("time_zone", "is required"));
        }
        let zone = fields.optional("time_zone", self.time_zone.as_deref(), TimeZone::parse);
        let start = fields.optional("business_day_start", self.business_day_start.as_deref(), BusinessDayStart::parse);
        let rate = fields.optional("tax_rate", self.tax_rate.as_ref(), parse_rate);
        let defaults = LocationSettings::default();
        let location = match (name, zone.flatten(), start, rate) {
            (Some(name), Some(time_zone), Some(start), Some(rate)) => Some(NewLocation {
                name,
                settings: LocationSettings {
                    time_zone,
                    business_day_start: start.unwrap_or(defaults.business_day_start),
                    tax_rate: rate.unwrap_or(defaults.tax_rate),
                    prices_include_tax: self.prices_include_tax.unwrap_or(defaults.prices_include_tax),
                },
            }),
            _ => None,
        };
        fields.finish(location)
    }
}

impl UpdateLocationRequest {
    pub fn parse(self) -> Result<LocationChange, Vec<FieldError>> {
        let mut fields = Fields::default();
        let name = fields.optional("name", self.name.as_deref(), LocationName::parse);
        let zone = fields.optional("time_zone", self.time_zone.as_deref(), TimeZone::parse);
        let start = fields.optional("business_day_start", self.business_day_start.as_deref(), BusinessDayStart::parse);
        let rate = fields.optional("tax_rate", self.tax_rate.as_ref(), parse_rate);
        let change = match (name, zone, start, rate) {
            (Some(name), Some(time_zone), Some(business_day_start), Some(tax_rate)) => Some(LocationChange {
                name,
                time_zone,
                business_day_start,
                tax_rate,
                prices_include_tax: self.prices_include_tax,
            }),
            _ => None,
        };
        fields.finish(change)
    }
}

/// A restaurant of the group.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocationResponse {
    pub id: Uuid,
    #[schema(example = "Centro")]
    pub name: String,
    #[schema(example = "America/Mexico_City")]
    pub time_zone: String,
    #[schema(example = "05:00", pattern = "^(?:[01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub business_day_start: String,
    /// A percentage, without trailing zeros.
    #[schema(example = "16", pattern = r"^[0-9]{1,3}(?:\.[0-9]{1,3})?$")]
    pub tax_rate: String,
    pub prices_include_tax: bool,
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl From<&Location> for LocationResponse {
    fn from(location: &Location) -> Self {
        let settings = location.settings();
        Self {
            id: location.id().0,
            name: location.name().as_ref().to_owned(),
            time_zone: settings.time_zone.name().to_owned(),
            business_day_start: settings.business_day_start.to_string(),
            tax_rate: settings.tax_rate.to_string(),
            prices_include_tax: settings.prices_include_tax,
            created_at: location.created_at(),
            updated_at: location.updated_at(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::Object;

    fn create(json: &str) -> Result<NewLocation, Vec<FieldError>> {
        serde_json::from_str::<Object<CreateLocationRequest>>(json).unwrap().0.parse()
    }

    #[test]
    fn defaults_and_every_failing_field() {
        let new = create(r#"{"name":"Centro","time_zone":"America/Mexico_City"}"#).unwrap();
        assert_eq!(new.settings.business_day_start, BusinessDayStart::MIDNIGHT);
        assert_eq!(new.settings.tax_rate, TaxRate::ZERO);
        assert!(new.settings.prices_include_tax);
        let errors = create(r#"{"name":" ","time_zone":"Mars/Base","business_day_start":"25:00","tax_rate":"100.5"}"#)
            .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "time_zone", "business_day_start", "tax_rate"]);
        let errors = create(r#"{"name":"Centro"}"#).unwrap_err();
        assert_eq!(errors, vec![FieldError::new("time_zone", "is required")]);
        assert_eq!(
            create(r#"{"name":"C","time_zone":"UTC","tax_rate":8.875}"#).unwrap().settings.tax_rate.to_string(),
            "8.875"
        );
    }

    /// The pattern the schema gives `business_day_start`.
    const DAY_START_PATTERN: &str = "^(?:[01][0-9]|2[0-3]):[0-5][0-9]$";

    #[test]
    fn the_patterns_say_what_the_parsers_do() {
        let day_start = fancy_regex::Regex::new(DAY_START_PATTERN).unwrap();
        for raw in ["00:00", "23:59", "24:00", "5:30", "05:60", "05:30 ", "0530"] {
            assert_eq!(day_start.is_match(raw).unwrap(), BusinessDayStart::parse(raw).is_ok(), "{raw:?}");
        }
        let schema = serde_json::to_value(tax_rate_schema()).unwrap();
        let rate = fancy_regex::Regex::new(schema["oneOf"][0]["pattern"].as_str().unwrap()).unwrap();
        for raw in
            ["0", "16", "8.875", "100", "100.000", "100.001", "16.0000", "1.0005", "007", "-0", "-1", "1.", ".5", "1e2"]
        {
            assert_eq!(rate.is_match(raw).unwrap(), TaxRate::parse(raw).is_ok(), "{raw:?}");
        }
    }
}
