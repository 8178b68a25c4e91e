//! Payments: immutable records of money received for an order.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::money::Money;
use crate::order::OrderId;
use crate::user::UserId;

/// A payment's identifier (a UUID, time-ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentId(pub Uuid);

impl fmt::Display for PaymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a payment was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentMethod {
    Cash,
    Card,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of: cash, card, other")]
pub struct PaymentMethodError;

impl PaymentMethod {
    pub fn parse(raw: &str) -> Result<Self, PaymentMethodError> {
        match raw {
            "cash" => Ok(Self::Cash),
            "card" => Ok(Self::Card),
            "other" => Ok(Self::Other),
            _ => Err(PaymentMethodError),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cash => "cash",
            Self::Card => "card",
            Self::Other => "other",
        }
    }
}

/// A payment recorded against an order. Its fields are valid by their types and it has no rule
/// across them, so they are public; it is never changed once recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub amount: Money,
    pub method: PaymentMethod,
    pub recorded_by: UserId,
    pub created_at: DateTime<Utc>,
}
