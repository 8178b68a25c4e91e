//! Comanda's HTTP API: actix-web handlers, DTOs, problem+json errors, middleware, the app
//! factory. The only crate that wires concrete types together.

// The response audit is a testing aid: only builds with the `response-audit` feature (the test
// harness and scripts/test.sh's servers) carry it; others have a stand-in that does nothing.
pub mod access;
#[cfg(feature = "response-audit")]
pub mod audit;
#[cfg(not(feature = "response-audit"))]
#[path = "audit_absent.rs"]
pub mod audit;
pub mod dto;
pub mod error;
pub mod extract;
pub mod hashing_pool;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod rate_limit;
pub mod request_context;
pub mod request_id;
pub mod request_limits;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use request_limits::BODY_LIMIT;
pub use settings::{Config, ServerSettings};
pub use startup::{Application, app, build_state};
