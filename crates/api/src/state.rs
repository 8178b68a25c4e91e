//! What every handler can reach: the services, wired once at start.

use std::sync::Arc;
use std::time::Duration;

use application::{AuthService, Clock, OrderService, ReportService, UserService};
use infrastructure::{CpuPool, Database, PgOrderWriter};

use crate::dto::cursor::CursorCodec;

#[derive(Debug)]
pub struct AppState {
    pub auth: Arc<AuthService>,
    pub users: Arc<UserService>,
    pub orders: Arc<OrderService>,
    /// The batching writer behind `orders` (kept for its statistics).
    pub order_writer: Arc<PgOrderWriter>,
    pub reports: Arc<ReportService>,
    pub clock: Arc<dyn Clock>,
    pub db: Database,
    /// Argon2id work: logins and user creation.
    pub hash_pool: CpuPool,
    pub cursors: CursorCodec,
    /// How long the readiness probe waits for a connection.
    pub ready_timeout: Duration,
    /// How long a request may wait for a blocking thread before it is answered 503.
    pub queue_timeout: Duration,
}
