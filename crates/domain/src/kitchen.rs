//! The kitchen: tickets of lines sent from an order, their status machine, and the kitchen
//! status and voids of lines.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::location::LocationId;
use crate::order::OrderId;
use crate::text::{self, TextError};
use crate::user::UserId;

/// A kitchen ticket's identifier (a UUID, time-ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketId(pub Uuid);

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a ticket stands: open -> ready -> served, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketStatus {
    Open,
    Ready,
    Served,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 3] = [Self::Open, Self::Ready, Self::Served];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Ready => "ready",
            Self::Served => "served",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a line stands in the kitchen: not sent yet, or its ticket's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KitchenStatus {
    New,
    Sent,
    Ready,
    Served,
}

impl KitchenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Sent => "sent",
            Self::Ready => "ready",
            Self::Served => "served",
        }
    }

    /// A sent line's status: its ticket's.
    pub fn of_ticket(status: TicketStatus) -> Self {
        match status {
            TicketStatus::Open => Self::Sent,
            TicketStatus::Ready => Self::Ready,
            TicketStatus::Served => Self::Served,
        }
    }
}

/// Why a line was voided: 1 to 200 characters after the text rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidReason(String);

impl VoidReason {
    pub const MAX_LEN: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::normalize(raw, 1, Self::MAX_LEN).map(Self)
    }

    /// The reason recorded on the lines a cancellation takes back from the kitchen.
    pub fn order_cancelled() -> Self {
        Self("order cancelled".to_owned())
    }
}

impl AsRef<str> for VoidReason {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A line's void: why, by whom, when. A voided line stays on its order (and its ticket), out of
/// every total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineVoid {
    pub reason: VoidReason,
    pub by: UserId,
    pub at: DateTime<Utc>,
}

/// Why a ticket transition is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketTransitionError {
    #[error("only an open ticket can be made ready; this one is {0}")]
    ReadyNotOpen(TicketStatus),
    #[error("only a ready ticket can be served; this one is {0}")]
    ServedNotReady(TicketStatus),
}

/// A kitchen ticket: the lines of one order sent together, numbered from 1 per location and
/// business day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: TicketId,
    pub order_id: OrderId,
    pub location_id: LocationId,
    /// The location's business day when the ticket was sent.
    pub business_date: NaiveDate,
    /// Given by storage when the ticket is written (0 before).
    pub number: u32,
    pub status: TicketStatus,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    pub served_at: Option<DateTime<Utc>>,
}

impl Ticket {
    /// open -> ready.
    pub fn ready(&mut self, now: DateTime<Utc>) -> Result<(), TicketTransitionError> {
        if self.status != TicketStatus::Open {
            return Err(TicketTransitionError::ReadyNotOpen(self.status));
        }
        self.status = TicketStatus::Ready;
        // Never before the ticket was made (the clocks of two replicas may differ a little).
        self.ready_at = Some(now.max(self.created_at));
        Ok(())
    }

    /// ready -> served.
    pub fn served(&mut self, now: DateTime<Utc>) -> Result<(), TicketTransitionError> {
        let ready_at = match (self.status, self.ready_at) {
            (TicketStatus::Ready, Some(at)) => at,
            _ => return Err(TicketTransitionError::ServedNotReady(self.status)),
        };
        self.status = TicketStatus::Served;
        self.served_at = Some(now.max(ready_at));
        Ok(())
    }
}

/// A line as a ticket shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketLine {
    pub line_id: u16,
    pub name: String,
    pub quantity: u32,
    pub note: Option<String>,
    pub voided: Option<LineVoid>,
}

/// A ticket as the kitchen reads it: with its order's customer and waiter, and its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketView {
    pub ticket: Ticket,
    pub customer_name: String,
    pub waiter_id: UserId,
    pub lines: Vec<TicketLine>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> Ticket {
        let now = Utc::now();
        Ticket {
            id: TicketId(Uuid::now_v7()),
            order_id: OrderId(Uuid::now_v7()),
            location_id: LocationId(Uuid::now_v7()),
            business_date: now.date_naive(),
            number: 1,
            status: TicketStatus::Open,
            created_at: now,
            ready_at: None,
            served_at: None,
        }
    }

    #[test]
    fn a_ticket_goes_open_ready_served_and_nowhere_else() {
        let mut t = ticket();
        assert_eq!(t.served(Utc::now()), Err(TicketTransitionError::ServedNotReady(TicketStatus::Open)));
        t.ready(t.created_at - chrono::TimeDelta::seconds(1)).unwrap();
        assert_eq!(t.status, TicketStatus::Ready);
        assert_eq!(t.ready_at, Some(t.created_at), "never before it was made");
        assert_eq!(t.ready(Utc::now()), Err(TicketTransitionError::ReadyNotOpen(TicketStatus::Ready)));
        t.served(Utc::now()).unwrap();
        assert_eq!(t.status, TicketStatus::Served);
        assert!(t.served_at >= t.ready_at);
        assert_eq!(t.ready(Utc::now()), Err(TicketTransitionError::ReadyNotOpen(TicketStatus::Served)));
        assert_eq!(t.served(Utc::now()), Err(TicketTransitionError::ServedNotReady(TicketStatus::Served)));
        assert_eq!(KitchenStatus::of_ticket(TicketStatus::Ready).as_str(), "ready");
    }

    #[test]
    fn a_void_reason_follows_the_text_rule() {
        assert_eq!(VoidReason::parse("  wrong   table ").unwrap().as_ref(), "wrong table");
        assert!(VoidReason::parse(" ").is_err());
        assert!(VoidReason::parse(&"x".repeat(201)).is_err());
    }
}
