//! The kitchen: tickets, their bumps, and each location's live stream (Server-Sent Events).

use std::collections::VecDeque;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::stream;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;
use uuid::Uuid;

use application::{KitchenEvent, MAX_EVENTS_PER_READ};
use domain::{LocationId, TicketId};
use infrastructure::FeedItem;

use crate::dto::PageResponse;
use crate::dto::kitchen::{ListTicketsQuery, StreamEvent, StreamQuery, TicketResponse};
use crate::error::ApiError;
use crate::extract::SignedIn;
use crate::problem::Problem;
use crate::routes::blocking;
use crate::state::AppState;

/// An event as a display receives it: `id`, `event`, one line of JSON `data`.
pub fn frame(event: &KitchenEvent) -> Bytes {
    let data = serde_json::to_string(&TicketResponse::from(&event.ticket)).unwrap_or_else(|_| "{}".to_owned());
    Bytes::from(format!("id: {}\nevent: {}\ndata: {data}\n\n", event.id, event.kind.as_str()))
}

/// Kitchen tickets, oldest first: the queue of the locations the user works in, or of the one
/// `location_id` names (every role that works there).
#[utoipa::path(
    get,
    path = "/api/v1/kitchen/tickets",
    tag = "kitchen",
    params(ListTicketsQuery),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = PageResponse<TicketResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "unreadable query or cursor"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_tickets(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    query: web::Query<ListTicketsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (filter, page) = query.parse(&state.cursors)?;
    let kitchen = state.kitchen.clone();
    let page = blocking(&state, move || kitchen.list(&caller, &filter, page)).await?;
    Ok(HttpResponse::Ok().json(PageResponse {
        items: page.items.iter().map(TicketResponse::from).collect::<Vec<_>>(),
        next_cursor: page.next.map(|c| state.cursors.encode(&c)),
    }))
}

/// A kitchen ticket (every role that works in its location; elsewhere a 404).
#[utoipa::path(
    get,
    path = "/api/v1/kitchen/tickets/{id}",
    tag = "kitchen",
    params(("id" = String, Path, description = "the ticket's id (a malformed id is a 404)")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = TicketResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_ticket(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let kitchen = state.kitchen.clone();
    let id = TicketId(id.into_inner());
    let ticket = blocking(&state, move || kitchen.get(&caller, id)).await?;
    Ok(HttpResponse::Ok().json(TicketResponse::from(&ticket)))
}

/// Bump a ticket to ready (kitchen, manager or admin of its location). Only an open ticket can
/// be made ready: anything else is a 409.
#[utoipa::path(
    post,
    path = "/api/v1/kitchen/tickets/{id}/ready",
    tag = "kitchen",
    params(("id" = String, Path, description = "the ticket's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = TicketResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the ticket is not open"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ready_ticket(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let kitchen = state.kitchen.clone();
    let id = TicketId(id.into_inner());
    let ticket = blocking(&state, move || kitchen.ready(&caller, id)).await?;
    Ok(HttpResponse::Ok().json(TicketResponse::from(&ticket)))
}

/// Mark a ready ticket served (waiter, manager or admin of its location). Anything but a ready
/// ticket is a 409.
#[utoipa::path(
    post,
    path = "/api/v1/kitchen/tickets/{id}/served",
    tag = "kitchen",
    params(("id" = String, Path, description = "the ticket's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = TicketResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the ticket is not ready"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn serve_ticket(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let kitchen = state.kitchen.clone();
    let id = TicketId(id.into_inner());
    let ticket = blocking(&state, move || kitchen.served(&caller, id)).await?;
    Ok(HttpResponse::Ok().json(TicketResponse::from(&ticket)))
}

/// The live stream of a location's tickets (`text/event-stream`; every role that works there).
/// Each change of a ticket is an event: `event: ticket.created` or `ticket.updated`, `id:` the
/// event's id (counting from 1 in each location), `data:` the ticket as it is now.
///
/// The stream opens with `retry:` and `id:` lines (the id of the location's last event, so a
/// display that drops before any event still resumes without a gap). A display that reconnects
/// with `Last-Event-ID` first gets every event after that id (kept at least
/// `KITCHEN_EVENTS_RETENTION_HOURS`), then live ones: nothing lost, nothing twice. A comment
/// line comes at least every 15 seconds. A display that falls more than 1024 events behind is
/// disconnected (it resumes by id), and every stream ends after `KITCHEN_STREAM_MAX_SECONDS`.
#[utoipa::path(
    get,
    path = "/api/v1/kitchen/stream",
    tag = "kitchen",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "the id of the last event received (empty: none)", pattern = r"^([0-9]{1,18})?$"),
    ),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, content_type = "text/event-stream", body = StreamEvent, description = "events, one per change of a ticket of the location"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "unreadable query, or a Last-Event-ID that is no event's id"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn stream(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    query: web::Query<StreamQuery>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let location = LocationId(query.location_id);
    let resume_from = last_event_id(&request)?;
    // Subscribed before anything is read: an event that commits from here on comes live, and
    // any before it is in what the backlog reads.
    let live = state.feed.subscribe(location);
    let kitchen = state.kitchen.clone();
    let head = blocking(&state, move || {
        kitchen.may_follow(&caller, location)?;
        kitchen.head(location)
    })
    .await?;
    let cursor = resume_from.unwrap_or(head);
    let follow = Follow::new(state.clone(), location, cursor, resume_from.is_some(), live);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // nginx: pass events on as they come.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream::unfold(follow, Follow::next)))
}

/// The `Last-Event-ID` a reconnecting display sends: an id this service gave (digits), or
/// empty or absent (none). Anything else is a 400.
fn last_event_id(request: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = request.headers().get("last-event-id") else { return Ok(None) };
    let text = value.to_str().map(str::trim).unwrap_or("-");
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(id) if id >= 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(id)),
        _ => Err(ApiError::BadRequest("Last-Event-ID must be the id of an event of this stream".into())),
    }
}

type Receiver = tokio::sync::broadcast::Receiver<FeedItem<Bytes>>;

/// One display's stream.
struct Follow {
    state: web::Data<AppState>,
    location: LocationId,
    /// The id of the last event this display has (sent, or named by `Last-Event-ID`).
    cursor: i64,
    /// Reading what the table holds after `cursor` before following the live feed.
    catching_up: bool,
    pending: VecDeque<Bytes>,
    live: Receiver,
    /// Ticks every half keep-alive period: a comment goes out when nothing did for that long,
    /// so the longest silence is the period (no timer is set per event).
    keepalive: tokio::time::Interval,
    last_sent: Instant,
    ends: std::pin::Pin<Box<tokio::time::Sleep>>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// The most events one write to a display carries (those already waiting for it, together).
const MAX_EVENTS_PER_WRITE: usize = 64;

impl Follow {
    fn new(state: web::Data<AppState>, location: LocationId, cursor: i64, resuming: bool, live: Receiver) -> Self {
        let settings = state.kitchen_stream;
        let half = (settings.keepalive / 2).max(Duration::from_millis(500));
        let mut keepalive = tokio::time::interval_at(Instant::now() + half, half);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            pending: VecDeque::from([Bytes::from(format!("retry: 1000\nid: {cursor}\n\n"))]),
            stopping: state.stopping.subscribe(),
            ends: Box::pin(tokio::time::sleep(settings.max_age)),
            state,
            location,
            cursor,
            // Without `Last-Event-ID` the display starts at the head read after subscribing:
            // what commits later comes live (a gap, should the ring show one, is read then).
            catching_up: resuming,
            live,
            keepalive,
            last_sent: Instant::now(),
        }
    }

    async fn next(mut self) -> Option<(Result<Bytes, ApiError>, Self)> {
        let frame = self.next_frame().await?;
        self.last_sent = Instant::now();
        Some((Ok(frame), self))
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            if self.catching_up {
                match self.read_backlog().await {
                    Ok(()) => continue,
                    // The database is away: end the stream; the display reconnects by id.
                    Err(_) => return None,
                }
            }
            let first = tokio::select! {
                biased;
                () = &mut self.ends => return None,
                _ = self.stopping.changed() => return None,
                item = self.live.recv() => item,
                _ = self.keepalive.tick() => {
                    if self.last_sent.elapsed() >= self.keepalive.period() {
                        return Some(Bytes::from_static(KEEPALIVE));
                    }
                    continue;
                }
            };
            // This event, and those already waiting behind it: one write for all of them.
            let mut frames = Vec::new();
            let mut next = Some(first);
            while let Some(item) = next.take() {
                match item {
                    Ok(item) if item.id <= self.cursor => {}
                    // An event the feed handed out before this display's backlog caught up
                    // with it: read the gap from the table.
                    Ok(item) if item.id > self.cursor + 1 => {
                        self.catching_up = true;
                        break;
                    }
                    Ok(item) => {
                        self.cursor = item.id;
                        frames.push(item.frame);
                    }
                    // Too slow (more than the ring behind) or the feed is gone: drop the display.
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
                }
                if frames.len() < MAX_EVENTS_PER_WRITE {
                    next = match self.live.try_recv() {
                        Ok(item) => Some(Ok(item)),
                        Err(TryRecvError::Empty) => None,
                        Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                        Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                    };
                }
            }
            match frames.len() {
                0 => {}
                1 => return frames.pop(),
                _ => return Some(Bytes::from(frames.concat())),
            }
        }
    }

    /// Reads the next events after the cursor from the table into `pending`; stops catching up
    /// when there are no more.
    async fn read_backlog(&mut self) -> Result<(), ApiError> {
        let (kitchen, location, after) = (self.state.kitchen.clone(), self.location, self.cursor);
        let events = blocking(&self.state, move || kitchen.events_after(location, after)).await?;
        if events.len() < MAX_EVENTS_PER_READ as usize {
            self.catching_up = false;
        }
        for event in &events {
            self.cursor = event.id;
            self.pending.push_back(frame(event));
        }
        Ok(())
    }
}
