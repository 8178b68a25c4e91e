//! The response audit's stand-in in builds without the `response-audit` feature (every
//! production build): there is no audit to open (the settings refuse `RESPONSE_AUDIT_DIR`), and
//! the middleware passes every response through untouched.

use std::path::Path;

use actix_web::Error;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// No audit can exist in this build.
#[derive(Debug, Clone)]
pub enum Audit {}

impl Audit {
    pub fn open(_dir: &Path) -> std::io::Result<Self> {
        Err(std::io::Error::other("this build has no response audit (the response-audit feature)"))
    }
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}
