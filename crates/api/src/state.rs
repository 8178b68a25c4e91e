//! What every handler can reach: the services, wired once at start, and the probes of the
//! adapters that health and metrics read. Only the wiring (`startup`) builds the adapters; the
//! one adapter handlers hold directly is the kitchen feed, whose broadcast channels the stream
//! handler subscribes to.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use application::{
    AuthService, Clock, KitchenService, LocationService, MenuService, OrderService, ReportService, UserService,
};
use infrastructure::KitchenFeed;

use crate::dto::cursor::CursorCodec;
use crate::hashing_pool::HashingPool;

#[derive(Debug)]
pub struct AppState {
    pub auth: Arc<AuthService>,
    pub users: Arc<UserService>,
    pub locations: Arc<LocationService>,
    pub menu: Arc<MenuService>,
    pub orders: Arc<OrderService>,
    pub reports: Arc<ReportService>,
    pub kitchen: Arc<KitchenService>,
    /// The kitchen's events as they commit, rendered once for every display of this process.
    pub feed: Arc<KitchenFeed<Bytes>>,
    pub kitchen_stream: StreamSettings,
    /// Set when the server stops: open streams end so that the shutdown is not held up.
    pub stopping: tokio::sync::watch::Sender<bool>,
    pub clock: Arc<dyn Clock>,
    /// What health and metrics ask of the adapters.
    pub probes: Arc<dyn Probes>,
    /// Argon2id work: logins and user creation.
    pub hash_pool: HashingPool,
    pub cursors: CursorCodec,
    /// How long the readiness probe waits for a connection.
    pub ready_timeout: Duration,
    /// How long a request may wait for a blocking thread before it is answered 503.
    pub queue_timeout: Duration,
}

/// How the kitchen's streams behave.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// The longest a stream stays silent (a comment line then).
    pub keepalive: Duration,
    /// How long one stream connection lasts.
    pub max_age: Duration,
}

/// Why the service is not ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the database does not answer: {0}")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{0} migrations are pending; run `db-admin migrate`")]
    MigrationsPending(usize),
}

/// The adapters' figures that `/metrics` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    pub pool_max_size: u32,
    pub pool_connections: u32,
    pub pool_idle: u32,
    pub pool_waiting: usize,
    pub writer_statements: u64,
    pub writer_orders: u64,
}

/// What health and metrics ask of the adapters (implemented by the wiring).
pub trait Probes: Send + Sync + std::fmt::Debug {
    /// Ready means: a database connection within `timeout`, and no migration pending. Blocks.
    fn readiness(&self, timeout: Duration) -> Result<(), NotReady>;
    fn gauges(&self) -> Gauges;
}
