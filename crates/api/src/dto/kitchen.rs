//! Bodies of the kitchen endpoints and of the stream's events.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use application::{PageRequest, TicketFilter};
use domain::{LocationId, TicketStatus, TicketView};

use super::cursor::CursorCodec;
use super::orders::VoidResponse;
use super::page_request;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatusDto {
    Open,
    Ready,
    Served,
}

impl From<TicketStatus> for TicketStatusDto {
    fn from(status: TicketStatus) -> Self {
        match status {
            TicketStatus::Open => Self::Open,
            TicketStatus::Ready => Self::Ready,
            TicketStatus::Served => Self::Served,
        }
    }
}

impl From<TicketStatusDto> for TicketStatus {
    fn from(status: TicketStatusDto) -> Self {
        match status {
            TicketStatusDto::Open => Self::Open,
            TicketStatusDto::Ready => Self::Ready,
            TicketStatusDto::Served => Self::Served,
        }
    }
}

/// A line as the kitchen sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketLineResponse {
    /// The line's id in its order.
    #[schema(example = 3, minimum = 1)]
    pub line_id: u16,
    #[schema(example = "Enchiladas verdes")]
    pub name: String,
    #[schema(example = 2, minimum = 1, maximum = 10000)]
    pub quantity: u32,
    #[schema(example = "sin cebolla")]
    pub note: Option<String>,
    /// Null, or the void (the line is struck through on the display).
    pub voided: Option<VoidResponse>,
}

/// A kitchen ticket: the lines of one order sent together.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketResponse {
    pub id: Uuid,
    /// From 1 in each location and business day.
    #[schema(example = 17, minimum = 1)]
    pub number: u32,
    pub order_id: Uuid,
    pub location_id: Uuid,
    /// The location's business day when the ticket was sent.
    #[schema(value_type = String, format = Date, example = "2026-12-03")]
    pub business_date: NaiveDate,
    #[schema(example = "Mesa 4")]
    pub customer_name: String,
    pub waiter_id: Uuid,
    pub status: TicketStatusDto,
    pub lines: Vec<TicketLineResponse>,
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::dto::timestamp::serialize_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub ready_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::dto::timestamp::serialize_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub served_at: Option<DateTime<Utc>>,
}

impl From<&TicketView> for TicketResponse {
    fn from(view: &TicketView) -> Self {
        let t = &view.ticket;
        Self {
            id: t.id.0,
            number: t.number,
            order_id: t.order_id.0,
            location_id: t.location_id.0,
            business_date: t.business_date,
            customer_name: view.customer_name.clone(),
            waiter_id: view.waiter_id.0,
            status: t.status.into(),
            lines: view
                .lines
                .iter()
                .map(|l| TicketLineResponse {
                    line_id: l.line_id,
                    name: l.name.clone(),
                    quantity: l.quantity,
                    note: l.note.clone(),
                    voided: l.voided.as_ref().map(VoidResponse::from),
                })
                .collect(),
            created_at: t.created_at,
            ready_at: t.ready_at,
            served_at: t.served_at,
        }
    }
}

/// Filters and page of the ticket list.
#[derive(Debug, Deserialize, IntoParams, Validate)]
#[into_params(parameter_in = Query)]
pub struct ListTicketsQuery {
    /// Page size, 1 to 100 (default 20).
    #[validate(range(min = 1, max = application::PageRequest::MAX_LIMIT))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[A-Za-z0-9_-]{48}$")]
    pub cursor: Option<String>,
    /// Only this location's tickets (one the signed-in user works in).
    pub location_id: Option<Uuid>,
    pub status: Option<TicketStatusDto>,
}

impl ListTicketsQuery {
    pub fn parse(&self, cursors: &CursorCodec) -> Result<(TicketFilter, PageRequest), ApiError> {
        let page = page_request(self.limit, self.cursor.as_deref(), cursors, self.validate())?;
        let filter =
            TicketFilter { location_id: self.location_id.map(LocationId), status: self.status.map(Into::into) };
        Ok((filter, page))
    }
}

/// What happened to the ticket.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum StreamEventKind {
    #[serde(rename = "ticket.created")]
    Created,
    #[serde(rename = "ticket.updated")]
    Updated,
}

/// One event of the kitchen stream, as Server-Sent Events frame it (`id:`, `event:` and
/// `data:` lines, then an empty line). Comment lines (`: keep-alive`) and the opening `retry:`
/// and `id:` lines carry no event.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamEvent {
    /// The event's id in its location's stream, counting from 1: what `Last-Event-ID` resumes
    /// after.
    #[schema(example = "42", pattern = r"^[0-9]+$")]
    pub id: String,
    pub event: StreamEventKind,
    /// The ticket as it is now (a `TicketResponse`), as one line of JSON.
    pub data: String,
}

/// The location whose stream to follow.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// A location the signed-in user works in.
    pub location_id: Uuid,
}
