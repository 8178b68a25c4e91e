//! Bodies of the payment endpoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use domain::{Money, Payment, PaymentMethod};

use super::money::{amount_input_schema, parse_money};
use super::{Fields, NumberInput};
use crate::problem::FieldError;

/// A payment to record.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreatePaymentRequest {
    /// At most the order's balance due.
    #[schema(schema_with = amount_input_schema, required = true)]
    pub amount: Option<NumberInput>,
    #[schema(value_type = PaymentMethodDto, required = true)]
    pub method: Option<String>,
}

impl CreatePaymentRequest {
    pub fn parse(self) -> Result<(Money, PaymentMethod), Vec<FieldError>> {
        let mut fields = Fields::default();
        let amount = match &self.amount {
            None => fields.required("amount", None, |_| Err::<Money, _>("")),
            Some(input) => fields.check("amount", parse_money(input, Money::MAX)),
        };
        let method = fields.required("method", self.method.as_deref(), PaymentMethod::parse);
        fields.finish(amount.zip(method))
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethodDto {
    Cash,
    Card,
    Other,
}

impl From<PaymentMethod> for PaymentMethodDto {
    fn from(method: PaymentMethod) -> Self {
        match method {
            PaymentMethod::Cash => Self::Cash,
            PaymentMethod::Card => Self::Card,
            PaymentMethod::Other => Self::Other,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResponse {
    pub id: Uuid,
    pub order_id: Uuid,
    #[schema(example = "10.00", pattern = r"^[0-9]+\.[0-9]{2}$")]
    pub amount: String,
    pub method: PaymentMethodDto,
    /// The user who recorded it.
    pub recorded_by: Uuid,
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

impl From<&Payment> for PaymentResponse {
    fn from(p: &Payment) -> Self {
        Self {
            id: p.id.0,
            order_id: p.order_id.0,
            amount: p.amount.to_string(),
            method: p.method.into(),
            recorded_by: p.recorded_by.0,
            created_at: p.created_at,
        }
    }
}
