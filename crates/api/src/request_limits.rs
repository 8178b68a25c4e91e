//! What one request may hold: its head (16 KiB, else 431 before any work), and its body (at
//! most `BODY_LIMIT`, read within `BODY_READ_TIMEOUT_MS`, else 413 or 408). A client that
//! announces a body and sends it a byte at a time would otherwise keep a connection, a worker's
//! attention and, on the login route, a login attempt open for as long as it likes. (The HTTP
//! layer itself bounds the head's arrival to five seconds and closes connections whose head
//! exceeds 128 KiB.)

use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, web};
use futures_util::StreamExt;

use crate::error::ApiError;

const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long a request's body may take to arrive, whole.
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

pub async fn head<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let size: usize = req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if size > MAX_HEADER_BYTES {
        let error =
            ApiError::HeadersTooLarge(format!("the request headers are larger than {} KiB", MAX_HEADER_BYTES / 1024));
        return Ok(req.error_response(error).map_into_right_body());
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

/// Reads the whole body before the handler runs, within the time allowed and the size limit,
/// and hands it on as it came. Requests without a body pass untouched.
pub async fn body<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let announced = |name| req.headers().get(name).is_some();
    let empty =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() == "0");
    if empty || !(announced(header::CONTENT_LENGTH) || announced(header::TRANSFER_ENCODING)) {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let timeout = req.app_data::<web::Data<BodyReadTimeout>>().map_or(Duration::from_secs(5), |t| t.0);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut payload = req.take_payload();
    let announced_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = BytesMut::with_capacity(announced_length.min(BODY_LIMIT));
    loop {
        let chunk = match tokio::time::timeout_at(deadline, payload.next()).await {
            Err(_) => {
                let error = ApiError::RequestTimeout(format!(
                    "the request body did not arrive within {} ms",
                    timeout.as_millis()
                ));
                return Ok(req.error_response(error).map_into_right_body());
            }
            Ok(None) => break,
            Ok(Some(Ok(chunk))) => chunk,
            // A broken stream (the client went away, bad chunked encoding): the extractors
            // meet the same error as they would have, on an empty body.
            Ok(Some(Err(e))) => {
                let error = ApiError::BadRequest(format!("the request body could not be read: {e}"));
                return Ok(req.error_response(error).map_into_right_body());
            }
        };
        if body.len() + chunk.len() > BODY_LIMIT {
            let error = ApiError::PayloadTooLarge(format!("the body is larger than {} KiB", BODY_LIMIT / 1024));
            return Ok(req.error_response(error).map_into_right_body());
        }
        body.extend_from_slice(&chunk);
    }
    req.set_payload(Bytes::from(body).into());
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}
