//! The connection pool, embedded migrations, error mapping and the readiness check.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ConnectionManager, CustomizeConnection, PooledConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tracing::warn;

use application::StoreError;

/// Every migration under `migrations/`, compiled in (build.rs reruns when the folder changes).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

pub type PgPool = r2d2::Pool<ConnectionManager<PgConnection>>;
pub type PgPooled = PooledConnection<ConnectionManager<PgConnection>>;

/// How the pool behaves.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_size: u32,
    /// How long a request may wait for a connection before it is answered 503.
    pub checkout_timeout: Duration,
    pub statement_timeout: Duration,
}

/// Sets each new connection up: a statement timeout, UTC.
#[derive(Debug)]
struct SessionSetup {
    statement_timeout_ms: u128,
}

impl CustomizeConnection<PgConnection, r2d2::Error> for SessionSetup {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute(&format!("SET statement_timeout = {}; SET TIME ZONE 'UTC'", self.statement_timeout_ms))
            .map_err(r2d2::Error::QueryError)
    }
}

/// r2d2 reports failed connection attempts here (during an outage, many): into our logs.
#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<r2d2::Error> for LogErrors {
    fn handle_error(&self, error: r2d2::Error) {
        warn!(error = %error, "database connection failed");
    }
}

/// The pool of connections to one database. Building it does not connect: the service starts,
/// and recovers, whether or not the database answers at that moment.
#[derive(Clone)]
pub struct Database {
    pool: PgPool,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.pool.state();
        f.debug_struct("Database")
            .field("connections", &state.connections)
            .field("idle", &state.idle_connections)
            .finish()
    }
}

impl Database {
    pub fn new(url: &str, settings: PoolSettings) -> Self {
        let connect_secs = settings.checkout_timeout.as_secs().clamp(1, 10);
        let url = with_connect_timeout(url, connect_secs);
        let pool = r2d2::Pool::builder()
            .max_size(settings.max_size)
            .min_idle(Some(settings.max_size.min(2)))
            .connection_timeout(settings.checkout_timeout)
            .connection_customizer(Box::new(SessionSetup {
                statement_timeout_ms: settings.statement_timeout.as_millis(),
            }))
            .error_handler(Box::new(LogErrors))
            .build_unchecked(ConnectionManager::new(url));
        Self { pool }
    }

    /// A connection, or `Unavailable` after the checkout timeout.
    pub fn conn(&self) -> Result<PgPooled, StoreError> {
        self.pool.get().map_err(|e| StoreError::Unavailable(Box::new(e)))
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Ready means: a connection within `timeout`, and no pending migration.
    pub fn readiness(&self, timeout: Duration) -> Result<(), NotReady> {
        let mut conn = self.pool.get_timeout(timeout).map_err(|e| NotReady::Database(e.to_string()))?;
        let pending = pending_migrations(&mut conn).map_err(|e| NotReady::Database(e.to_string()))?;
        if pending.is_empty() { Ok(()) } else { Err(NotReady::MigrationsPending(pending.len())) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("the database does not answer: {0}")]
    Database(String),
    #[error("{0} migrations are pending; run `db-admin migrate`")]
    MigrationsPending(usize),
}

type MigrationResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Names of the migrations not yet applied.
pub fn pending_migrations(conn: &mut PgConnection) -> MigrationResult<Vec<String>> {
    Ok(conn.pending_migrations(MIGRATIONS)?.iter().map(|m| m.name().to_string()).collect())
}

/// Applies every pending migration; returns their names.
pub fn run_pending_migrations(conn: &mut PgConnection) -> MigrationResult<Vec<String>> {
    Ok(conn.run_pending_migrations(MIGRATIONS)?.iter().map(ToString::to_string).collect())
}

/// Reverts the last `steps` applied migrations; returns their names.
pub fn revert_migrations(conn: &mut PgConnection, steps: usize) -> MigrationResult<Vec<String>> {
    let mut reverted = Vec::new();
    for _ in 0..steps {
        if conn.applied_migrations()?.is_empty() {
            break;
        }
        reverted.push(conn.revert_last_migration(MIGRATIONS)?.to_string());
    }
    Ok(reverted)
}

/// Every known migration with whether it is applied, oldest first.
pub fn migration_status(conn: &mut PgConnection) -> MigrationResult<Vec<(String, bool)>> {
    use diesel::migration::MigrationSource;
    let applied: Vec<String> = conn.applied_migrations()?.iter().map(ToString::to_string).collect();
    let mut all: Vec<(String, bool)> = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)?
        .iter()
        .map(|m| {
            let name = m.name().to_string();
            let version = m.name().version().to_string();
            let done = applied.contains(&version);
            (name, done)
        })
        .collect();
    all.sort();
    Ok(all)
}

/// Drops everything in the `public` schema and migrates from scratch.
pub fn reset(conn: &mut PgConnection) -> MigrationResult<Vec<String>> {
    diesel::sql_query("DROP SCHEMA public CASCADE").execute(conn)?;
    diesel::sql_query("CREATE SCHEMA public").execute(conn)?;
    run_pending_migrations(conn)
}

/// Maps a diesel error to the port's error: lost connections and timeouts are `Unavailable`.
pub(crate) fn store_error(error: DieselError) -> StoreError {
    if is_unavailable(&error) { StoreError::Unavailable(Box::new(error)) } else { StoreError::Other(Box::new(error)) }
}

fn is_unavailable(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _) => {
            true
        }
        DieselError::DatabaseError(_, info) => {
            let message = info.message();
            [
                "terminating connection",
                "server closed the connection",
                "no connection to the server",
                "could not receive data",
                "could not send data",
                "connection to server",
                "the database system is",
                "canceling statement due to statement timeout",
                "too many clients",
            ]
            .iter()
            .any(|needle| message.contains(needle))
        }
        DieselError::BrokenTransactionManager => true,
        _ => false,
    }
}

/// The name of the constraint a unique violation broke, if that is what `error` is.
pub(crate) fn unique_violation(error: &DieselError) -> Option<&str> {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => info.constraint_name(),
        _ => None,
    }
}

fn with_connect_timeout(url: &str, seconds: u64) -> String {
    if url.contains("connect_timeout=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&connect_timeout={seconds}")
    } else {
        format!("{url}?connect_timeout={seconds}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("could not connect to the database: {0}")]
    Connect(String),
    #[error("the database is {} migration(s) behind ({}); run `db-admin migrate` first", .0.len(), .0.join(", "))]
    Behind(Vec<String>),
    #[error("could not migrate the database: {0}")]
    Migrate(String),
}

/// Checks the database before serving: with `apply`, applies pending migrations (the local
/// default); without, refuses a database whose migrations are behind. Returns what it applied.
pub fn prepare(url: &str, apply: bool) -> Result<Vec<String>, PrepareError> {
    let mut conn = PgConnection::establish(url).map_err(|e| PrepareError::Connect(e.to_string()))?;
    let pending = pending_migrations(&mut conn).map_err(|e| PrepareError::Migrate(e.to_string()))?;
    if pending.is_empty() {
        return Ok(pending);
    }
    if !apply {
        return Err(PrepareError::Behind(pending));
    }
    run_pending_migrations(&mut conn).map_err(|e| PrepareError::Migrate(e.to_string()))
}
