//! Request heads above 16 KiB are refused with 431 problem+json before any work is done
//! (the HTTP layer itself closes connections whose head exceeds 128 KiB).

use actix_web::Error;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::error::ApiError;

pub const MAX_HEADER_BYTES: usize = 16 * 1024;

pub async fn middleware<B: MessageBody + 'static>(
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
