//! Testing aid (`RESPONSE_AUDIT_DIR`, refused in production): every response body is appended to
//! a file, so that the test command can search all the answers of the whole suite for secrets,
//! hashes and internal error text.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use actix_web::Error;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;

/// Where the bodies go.
#[derive(Debug, Clone)]
pub struct Audit(Arc<Mutex<File>>);

impl Audit {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("responses-{}.log", std::process::id())))?;
        Ok(Self(Arc::new(Mutex::new(file))))
    }
}

/// Copies text bodies (JSON, problem+json, CSV, plain text) into the audit file.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let audit = req.app_data::<actix_web::web::Data<Option<Audit>>>().and_then(|a| a.as_ref().clone());
    let line = format!("{} {}", req.method(), req.path());
    let response = next.call(req).await?.map_into_boxed_body();
    let Some(audit) = audit else { return Ok(response) };
    let textual = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        ct.starts_with("application/json")
            || ct.starts_with("application/problem+json")
            || ct.starts_with("text/csv")
            || ct.starts_with("text/plain")
    });
    if !textual {
        return Ok(response);
    }
    let (request, response) = response.into_parts();
    let (head, body) = response.into_parts();
    let bytes =
        actix_web::body::to_bytes(body).await.map_err(|_| actix_web::error::ErrorInternalServerError("body"))?;
    if let Ok(mut file) = audit.0.lock() {
        let _ = writeln!(file, "{line} -> {}\n{}", head.status(), String::from_utf8_lossy(&bytes));
    }
    Ok(ServiceResponse::new(request, head.set_body(bytes).map_into_boxed_body()))
}
