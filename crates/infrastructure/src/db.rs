//! The connection pool, embedded migrations, error mapping and the readiness check.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
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

type PgPool = r2d2::Pool<ConnectionManager<PgConnection>>;
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
        // No JIT: it costs tens of milliseconds per query and pays off only for long analytics.
        conn.batch_execute(&format!(
            "SET statement_timeout = {}; SET TIME ZONE 'UTC'; SET jit = off",
            self.statement_timeout_ms
        ))
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
    /// One connection of its own for the readiness probe: a pool saturated by requests is busy,
    /// not down, and must not make every replica leave its load balancer at once.
    health: PgPool,
    /// Callers waiting for a connection right now.
    waiting: Arc<AtomicUsize>,
    /// Every pooled connection's `statement_timeout`.
    statement_timeout: Duration,
    /// Where the pool connects (with its connect timeout): for connections of their own that
    /// stay open, such as a `LISTEN`er.
    url: String,
}

/// The pool's state right now (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub max_size: u32,
    pub connections: u32,
    pub idle: u32,
    pub waiting: usize,
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
        let build = |max_size: u32, min_idle: u32| {
            r2d2::Pool::builder()
                .max_size(max_size)
                .min_idle(Some(min_idle))
                .connection_timeout(settings.checkout_timeout)
                .test_on_check_out(false)
                .connection_customizer(Box::new(SessionSetup {
                    statement_timeout_ms: settings.statement_timeout.as_millis(),
                }))
                .error_handler(Box::new(LogErrors))
                .build_unchecked(ConnectionManager::new(url.clone()))
        };
        Self {
            pool: build(settings.max_size, settings.max_size.min(2)),
            health: build(1, 0),
            statement_timeout: settings.statement_timeout,
            waiting: Arc::new(AtomicUsize::new(0)),
            url,
        }
    }

    /// A connection of its own, outside the pool, that listens on `channel` (its
    /// notifications are read with `PgConnection::notifications_iter`).
    pub fn listener(&self, channel: &str) -> Result<PgConnection, StoreError> {
        let unavailable = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Unavailable(e);
        let mut conn = PgConnection::establish(&self.url).map_err(|e| unavailable(Box::new(e)))?;
        diesel::sql_query(format!("LISTEN {channel}")).execute(&mut conn).map_err(|e| unavailable(Box::new(e)))?;
        Ok(conn)
    }

    pub fn stats(&self) -> PoolStats {
        let state = self.pool.state();
        PoolStats {
            max_size: self.pool.max_size(),
            connections: state.connections,
            idle: state.idle_connections,
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    /// A connection, or `Unavailable` after the checkout timeout.
    pub fn conn(&self) -> Result<PgPooled, StoreError> {
        let conn = self.checked_out(None).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        CHECKED_OUT.set(Some((std::time::Instant::now(), self.statement_timeout)));
        Ok(conn)
    }

    /// A connection from the pool. Pooled connections are not tested on checkout (a round trip
    /// per request); instead, for a while after any sign that the database went away, each
    /// checked-out connection is pinged and the dead ones are dropped, so the pool heals by
    /// itself after a restart at the cost of one failed request per dead connection at most.
    fn checked_out(&self, timeout: Option<Duration>) -> Result<PgPooled, CheckoutError> {
        Self::checked_out_of(&self.pool, &self.waiting, timeout)
    }

    fn checked_out_of(
        pool: &PgPool,
        waiting: &AtomicUsize,
        timeout: Option<Duration>,
    ) -> Result<PgPooled, CheckoutError> {
        let attempts = pool.max_size() + 1;
        for _ in 0..attempts {
            waiting.fetch_add(1, Ordering::Relaxed);
            let conn = match timeout {
                Some(t) => pool.get_timeout(t),
                None => pool.get(),
            };
            waiting.fetch_sub(1, Ordering::Relaxed);
            let mut conn = conn.map_err(|e| {
                suspect_outage();
                CheckoutError::Pool(e)
            })?;
            if !outage_suspected() {
                return Ok(conn);
            }
            match r2d2::R2D2Connection::ping(&mut *conn) {
                Ok(()) => return Ok(conn),
                Err(_) => discard(conn),
            }
        }
        Err(CheckoutError::AllDead)
    }

    /// Ready means: a connection within `timeout`, and no pending migration.
    pub fn readiness(&self, timeout: Duration) -> Result<(), NotReady> {
        let unwatched = AtomicUsize::new(0);
        let mut conn = Self::checked_out_of(&self.health, &unwatched, Some(timeout))
            .map_err(|e| NotReady::Database(Box::new(e)))?;
        let pending = pending_migrations(&mut conn).map_err(|e| {
            suspect_outage();
            NotReady::Database(e)
        })?;
        if pending.is_empty() { Ok(()) } else { Err(NotReady::MigrationsPending(pending.len())) }
    }
}

/// No usable connection.
#[derive(Debug, thiserror::Error)]
enum CheckoutError {
    #[error(transparent)]
    Pool(r2d2::PoolError),
    #[error("every pooled connection was dead")]
    AllDead,
}

#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the database does not answer")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{0} migrations are pending; run `db-admin migrate`")]
    MigrationsPending(usize),
}

type MigrationResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Names of the migrations not yet applied. Only reads: a role without the right to create
/// tables (what a service should run with) can ask, and a database never migrated has them all
/// pending.
pub fn pending_migrations(conn: &mut PgConnection) -> MigrationResult<Vec<String>> {
    use diesel::migration::MigrationSource;
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let table: Exists =
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS exists").get_result(conn)?;
    let applied: Vec<String> = if table.exists {
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Version>(conn)?
            .into_iter()
            .map(|v| v.version)
            .collect()
    } else {
        Vec::new()
    };
    let mut pending: Vec<String> = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)?
        .iter()
        .filter(|m| !applied.contains(&m.name().version().to_string()))
        .map(|m| m.name().to_string())
        .collect();
    pending.sort();
    // After the SQL migrations, the stored keys may need rewriting (see `text_keys`); that is
    // pending too. (Before the migration that records their version, that migration is what
    // is pending: running it rewrites the keys as well.)
    if let Some(stored) = crate::text_keys::stored_version(conn)?
        && stored < crate::text_keys::TEXT_KEYS_VERSION
    {
        pending.push(crate::text_keys::pending_name(stored));
    }
    Ok(pending)
}

/// The location that the migration bringing locations makes (`DEFAULT_LOCATION_NAME`,
/// `DEFAULT_TIME_ZONE`): the first location of a new database, or the one that the orders and
/// staff of an older database move into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstLocation {
    pub name: domain::LocationName,
    pub time_zone: domain::TimeZone,
}

impl Default for FirstLocation {
    fn default() -> Self {
        Self { name: domain::LocationName::parse("Main").expect("a valid name"), time_zone: domain::TimeZone::UTC }
    }
}

/// Applies every pending migration, then rewrites stored keys made by an older version of the
/// key functions; returns their names. The migration that brings locations reads `first` from
/// the session's settings.
pub fn run_pending_migrations(conn: &mut PgConnection, first: &FirstLocation) -> MigrationResult<Vec<String>> {
    use diesel::sql_types::Text;
    diesel::sql_query(
        "SELECT set_config('comanda.first_location_name', $1, false), \
                set_config('comanda.first_location_key', $2, false), \
                set_config('comanda.first_location_time_zone', $3, false)",
    )
    .bind::<Text, _>(first.name.as_ref())
    .bind::<Text, _>(first.name.key())
    .bind::<Text, _>(first.time_zone.name())
    .execute(conn)?;
    let mut applied: Vec<String> = conn.run_pending_migrations(MIGRATIONS)?.iter().map(ToString::to_string).collect();
    applied.extend(crate::text_keys::upgrade(conn)?);
    Ok(applied)
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
    // The rewrite of stored keys, once the table recording their version exists.
    if let Some(stored) = crate::text_keys::stored_version(conn)? {
        let name = format!("{}{}", crate::text_keys::PENDING_PREFIX, crate::text_keys::TEXT_KEYS_VERSION);
        all.push((name, stored >= crate::text_keys::TEXT_KEYS_VERSION));
    }
    Ok(all)
}

/// Drops everything in the `public` schema and migrates from scratch.
pub fn reset(conn: &mut PgConnection, first: &FirstLocation) -> MigrationResult<Vec<String>> {
    diesel::sql_query("DROP SCHEMA public CASCADE").execute(conn)?;
    diesel::sql_query("CREATE SCHEMA public").execute(conn)?;
    run_pending_migrations(conn, first)
}

/// Maps a diesel error to the port's error: lost connections and timeouts are `Unavailable`.
pub(crate) fn store_error(error: DieselError) -> StoreError {
    if is_unavailable(&error) {
        suspect_outage();
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Other(Box::new(error))
    }
}

/// Until when (milliseconds since the epoch) checked-out connections are pinged first.
static SUSPECT_UNTIL_MS: AtomicI64 = AtomicI64::new(0);
const SUSPECT_FOR_MS: i64 = 10_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn suspect_outage() {
    SUSPECT_UNTIL_MS.fetch_max(now_ms() + SUSPECT_FOR_MS, Ordering::Relaxed);
}

fn outage_suspected() -> bool {
    SUSPECT_UNTIL_MS.load(Ordering::Relaxed) > now_ms()
}

/// Drops a connection without returning it to the pool (r2d2 discards broken ones).
fn discard(mut conn: PgPooled) {
    use diesel::connection::{Connection, TransactionManager};
    <PgConnection as Connection>::TransactionManager::transaction_manager_status_mut(&mut *conn).set_in_error();
    drop(conn);
}

/// Whether a failure means "the database is unavailable, try again" (503) rather than a bug
/// (500). Decided by what diesel tells of the SQLSTATE and of the connection, never by the text
/// of the server's message (which follows the server's `lc_messages`):
/// - diesel reports a connection in the bad state, and the SQLSTATE class 08 (connection
///   exceptions), as `ClosedConnection` (the server shutting down or restarting, a connection
///   terminated by an administrator, a lost network), and a command it could not send as
///   `UnableToSendCommand`;
/// - SQLSTATE 40001 (`SerializationFailure`): the transaction may simply be retried;
/// - a statement cancelled by `statement_timeout` (SQLSTATE 57014, which diesel does not
///   name): recognised by its time, since the unit of work that failed has then run at least
///   the statement timeout since it checked its connection out ([`Database::conn`]);
/// - failures to connect at all (too many clients, the server starting up) never reach here:
///   they are checkout errors, unavailable by definition.
fn is_unavailable(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::SerializationFailure,
            _,
        ) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, _) => ran_past_statement_timeout(),
        DieselError::BrokenTransactionManager => true,
        _ => false,
    }
}

thread_local! {
    /// When this thread last checked a connection out, and the statement timeout of its pool:
    /// a failure after that long is the statement timeout's (see [`is_unavailable`]). Each unit
    /// of work runs on one thread with one connection (a request's blocking hop, an order
    /// writer's batch, a background job), so the last checkout is that unit's.
    static CHECKED_OUT: std::cell::Cell<Option<(std::time::Instant, Duration)>> = const { std::cell::Cell::new(None) };
}

fn ran_past_statement_timeout() -> bool {
    CHECKED_OUT.get().is_some_and(|(at, timeout)| at.elapsed() >= timeout)
}

/// The name of the constraint a unique violation broke, if that is what `error` is.
pub(crate) fn unique_violation(error: &DieselError) -> Option<&str> {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => info.constraint_name(),
        _ => None,
    }
}

/// The name of the constraint a foreign key violation broke, if that is what `error` is.
pub(crate) fn foreign_key_violation(error: &DieselError) -> Option<&str> {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => info.constraint_name(),
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
    #[error("could not connect to the database")]
    Connect(#[source] diesel::ConnectionError),
    #[error("the database is {} migration(s) behind ({}); run `db-admin migrate` first", .0.len(), .0.join(", "))]
    Behind(Vec<String>),
    #[error("could not migrate the database")]
    Migrate(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Checks the database before serving: with `apply`, applies pending migrations (the local
/// default); without, refuses a database whose migrations are behind. Returns what it applied.
pub fn prepare(url: &str, apply: Option<&FirstLocation>) -> Result<Vec<String>, PrepareError> {
    let mut conn = PgConnection::establish(&with_connect_timeout(url, 5)).map_err(PrepareError::Connect)?;
    let pending = pending_migrations(&mut conn).map_err(PrepareError::Migrate)?;
    if pending.is_empty() {
        return Ok(pending);
    }
    let Some(first) = apply else {
        return Err(PrepareError::Behind(pending));
    };
    run_pending_migrations(&mut conn, first).map_err(PrepareError::Migrate)
}
