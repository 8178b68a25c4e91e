//! Adapters for Comanda's ports: PostgreSQL through diesel, Argon2id, JWT; plus the settings,
//! the local PostgreSQL cluster used when no `DATABASE_URL` is given, and the bounded CPU pool.

pub mod db;
pub mod local_pg;
pub mod order_writer;
pub mod orders;
pub mod reports;
pub mod schema;
pub mod security;
pub mod settings;
pub mod text_keys;
pub mod users;

pub use db::{Database, NotReady, PoolSettings, PoolStats};
pub use local_pg::{LocalPgError, LocalPgOptions, LocalPostgres};
pub use order_writer::{InsertOrders, PgOrderWriter, WriterStats};
pub use orders::PgOrderRepository;
pub use reports::PgReportRepository;
pub use security::{Argon2Hasher, JwtTokenService, keep_hash_memory, random_jwt_secret};
pub use settings::{AppEnv, LogFormat, Settings, SettingsError};
pub use users::PgUserRepository;
