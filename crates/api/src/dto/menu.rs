//! Bodies of the menu endpoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use application::{CategoryChange, ListedItem, MenuFilter, NewMenuItem, PageRequest};
use domain::{
    Category, CategoryId, CategoryName, LocationId, MenuItem, MenuItemChange, Money, Position, PriceSpan, ProductName,
};

use super::cursor::CursorCodec;
use super::money::{money_input_schema, parse_money};
use super::{Fields, NumberInput, page_request};
use crate::error::ApiError;
use crate::problem::FieldError;

/// A new category.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCategoryRequest {
    #[schema(schema_with = super::patterns::category_name_schema, required = true)]
    pub name: Option<String>,
    /// Where the category comes in a menu: smallest first (default 0).
    #[schema(value_type = i64, minimum = 0, maximum = 10000, example = 10)]
    #[serde(default, deserialize_with = "super::non_null")]
    pub position: Option<NumberInput>,
}

/// A change to a category: the fields present replace the current ones.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateCategoryRequest {
    #[schema(schema_with = super::patterns::category_name_schema)]
    #[serde(default, deserialize_with = "super::non_null")]
    pub name: Option<String>,
    #[schema(value_type = i64, minimum = 0, maximum = 10000, example = 10)]
    #[serde(default, deserialize_with = "super::non_null")]
    pub position: Option<NumberInput>,
}

/// A position: a JSON number whose value is a whole number (`10`, and `10.0`, which JSON Schema
/// counts as an integer too).
fn position(fields: &mut Fields, raw: Option<&NumberInput>) -> Option<Option<Position>> {
    fields.optional("position", raw, |input| match input {
        NumberInput::Number(raw) => Position::parse(raw),
        NumberInput::Text(_) | NumberInput::Invalid => Err(domain::PositionError),
    })
}

impl CreateCategoryRequest {
    pub fn parse(self) -> Result<(CategoryName, Option<Position>), Vec<FieldError>> {
        let mut fields = Fields::default();
        let name = fields.required("name", self.name.as_deref(), CategoryName::parse);
        let position = position(&mut fields, self.position.as_ref());
        fields.finish(name.zip(position))
    }
}

impl UpdateCategoryRequest {
    pub fn parse(self) -> Result<CategoryChange, Vec<FieldError>> {
        let mut fields = Fields::default();
        let name = fields.optional("name", self.name.as_deref(), CategoryName::parse);
        let position = position(&mut fields, self.position.as_ref());
        fields.finish(name.zip(position).map(|(name, position)| CategoryChange { name, position }))
    }
}

/// A category of the menu.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryResponse {
    pub id: Uuid,
    #[schema(example = "Bebidas")]
    pub name: String,
    #[schema(example = 10, minimum = 0, maximum = 10000)]
    pub position: u16,
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl From<&Category> for CategoryResponse {
    fn from(c: &Category) -> Self {
        Self {
            id: c.id.0,
            name: c.name.as_ref().to_owned(),
            position: c.position.get(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A new menu item.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateMenuItemRequest {
    #[schema(schema_with = super::patterns::menu_item_name_schema, required = true)]
    pub name: Option<String>,
    #[schema(schema_with = super::patterns::id_schema, required = true)]
    pub category_id: Option<Uuid>,
    /// At most 1000000.00.
    #[schema(schema_with = money_input_schema, required = true)]
    pub price: Option<NumberInput>,
}

/// A change to a menu item: the fields present replace the current ones. A new price holds
/// for every line added after the answer (lines already on orders keep theirs); `active:
/// false` retires the item (it can no longer be ordered; items are never deleted).
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateMenuItemRequest {
    #[schema(schema_with = super::patterns::menu_item_name_schema)]
    #[serde(default, deserialize_with = "super::non_null")]
    pub name: Option<String>,
    #[schema(schema_with = super::patterns::id_schema)]
    #[serde(default, deserialize_with = "super::non_null")]
    pub category_id: Option<Uuid>,
    #[schema(schema_with = money_input_schema)]
    #[serde(default, deserialize_with = "super::non_null")]
    pub price: Option<NumberInput>,
    #[schema(value_type = bool)]
    #[serde(default, deserialize_with = "super::non_null")]
    pub active: Option<bool>,
}

impl CreateMenuItemRequest {
    pub fn parse(self) -> Result<NewMenuItem, Vec<FieldError>> {
        let mut fields = Fields::default();
        let name = fields.required("name", self.name.as_deref(), ProductName::parse);
        if self.category_id.is_none() {
            fields.push(FieldError::new("category_id", "is required"));
        }
        let price = match &self.price {
            None => fields.required("price", None, |_| Err::<Money, _>("")),
            Some(input) => fields.check("price", parse_money(input, Money::MAX_UNIT_PRICE)),
        };
        let item = match (name, self.category_id, price) {
            (Some(name), Some(category), Some(price)) => {
                Some(NewMenuItem { name, category_id: CategoryId(category), price })
            }
            _ => None,
        };
        fields.finish(item)
    }
}

impl UpdateMenuItemRequest {
    pub fn parse(self) -> Result<MenuItemChange, Vec<FieldError>> {
        let mut fields = Fields::default();
        let name = fields.optional("name", self.name.as_deref(), ProductName::parse);
        let price = fields.optional("price", self.price.as_ref(), |p| parse_money(p, Money::MAX_UNIT_PRICE));
        let change = name.zip(price).map(|(name, price)| MenuItemChange {
            name,
            category_id: self.category_id.map(CategoryId),
            price,
            active: self.active,
        });
        fields.finish(change)
    }
}

/// A dish or drink of the menu.
#[derive(Debug, Serialize, ToSchema)]
pub struct MenuItemResponse {
    pub id: Uuid,
    #[schema(example = "Café con leche")]
    pub name: String,
    pub category_id: Uuid,
    /// The current price.
    #[schema(example = "2.50", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub price: String,
    /// `false` once retired: it can no longer be ordered.
    pub active: bool,
    /// Whether the location the request named has sold it out; only when the request named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sold_out: Option<bool>,
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl MenuItemResponse {
    pub fn new(item: &MenuItem, sold_out: Option<bool>) -> Self {
        Self {
            id: item.id.0,
            name: item.name.as_ref().to_owned(),
            category_id: item.category_id.0,
            price: item.price.to_string(),
            active: item.active,
            sold_out,
            created_at: item.created_at,
            updated_at: item.updated_at,
        }
    }
}

impl From<&ListedItem> for MenuItemResponse {
    fn from(listed: &ListedItem) -> Self {
        Self::new(&listed.item, listed.sold_out)
    }
}

/// One price of an item and when it held.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceResponse {
    #[schema(example = "2.50", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub price: String,
    /// When this price began to hold.
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub from: DateTime<Utc>,
    /// When the next price replaced it (exclusive); null for the current price.
    #[serde(serialize_with = "crate::dto::timestamp::serialize_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub to: Option<DateTime<Utc>>,
}

impl From<&PriceSpan> for PriceResponse {
    fn from(span: &PriceSpan) -> Self {
        Self { price: span.price.to_string(), from: span.from, to: span.to }
    }
}

/// Filters and page of the item list.
#[derive(Debug, Deserialize, IntoParams, Validate)]
#[into_params(parameter_in = Query)]
pub struct ListMenuItemsQuery {
    /// Page size, 1 to 100 (default 20).
    #[validate(range(min = 1, max = application::PageRequest::MAX_LIMIT))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[A-Za-z0-9_-]{48}$")]
    pub cursor: Option<String>,
    pub category_id: Option<Uuid>,
    /// Only active items (`true`) or only retired ones (`false`).
    pub active: Option<bool>,
    /// Each item then carries `sold_out` for this location (one the signed-in user works in).
    pub location_id: Option<Uuid>,
}

impl ListMenuItemsQuery {
    pub fn parse(&self, cursors: &CursorCodec) -> Result<(MenuFilter, PageRequest), ApiError> {
        let page = page_request(self.limit, self.cursor.as_deref(), cursors, self.validate())?;
        let filter = MenuFilter {
            category_id: self.category_id.map(CategoryId),
            active: self.active,
            location_id: self.location_id.map(LocationId),
        };
        Ok((filter, page))
    }
}

/// The location whose sold-out marks an item shows.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MenuItemQuery {
    /// The item then carries `sold_out` for this location (one the signed-in user works in).
    pub location_id: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::Object;

    fn item(json: &str) -> Result<NewMenuItem, Vec<FieldError>> {
        serde_json::from_str::<Object<CreateMenuItemRequest>>(json).unwrap().0.parse()
    }

    #[test]
    fn every_failing_field_is_listed() {
        let errors = item(r#"{"name":" ","price":"1.005"}"#).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "category_id", "price"]);
        let new = item(r#"{"name":"Flan","category_id":"0192f1a4-0000-7000-8000-000000000001","price":3.5}"#).unwrap();
        assert_eq!(new.price.to_string(), "3.50");
        let change = serde_json::from_str::<Object<UpdateCategoryRequest>>(r#"{"position":10001}"#).unwrap().0.parse();
        assert_eq!(change.unwrap_err()[0].field, "position");
    }
}
