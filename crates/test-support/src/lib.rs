//! The test harness: a real PostgreSQL for every test process, a template database migrated
//! once, a fresh database per test made from it and dropped afterwards (so tests run in
//! parallel), and the real app started on port 0 with an HTTP client.
//!
//! The server is the one named by `TEST_DATABASE_URL` (a URL to its maintenance database,
//! e.g. `postgres://postgres@127.0.0.1:5432/postgres`), or else a throwaway cluster started
//! from the system's binaries under `target/test-pg` (durability off; `scripts/test.sh` stops
//! it at the end).

#![allow(clippy::unwrap_used)]

pub mod fakes;

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use diesel::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use api::Config;
use application::{NewUser, SystemClock, UserService};
use domain::{Email, LocationId, Password, PersonName, Role, User};
use infrastructure::local_pg::{LocalPgOptions, LocalPostgres, ensure_database};
use infrastructure::{Argon2Hasher, Database, PgLocationRepository, PgUserRepository, PoolSettings, db};

/// Where the throwaway cluster lives.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")))
}

/// The maintenance URL of the test server, started on first use.
pub fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            return url;
        }
        let base = target_dir().join("test-pg");
        fs::create_dir_all(&base).unwrap();
        // One process starts the cluster; the others wait and join it.
        let lock = fs::File::create(target_dir().join("test-pg.lock")).unwrap();
        lock.lock().unwrap();
        let options = LocalPgOptions {
            server_settings: [("fsync", "off"), ("synchronous_commit", "off"), ("full_page_writes", "off")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..LocalPgOptions::default()
        };
        let pg = LocalPostgres::start(&base, &options)
            .unwrap_or_else(|e| panic!("could not start the test PostgreSQL: {e}"));
        let url = pg.url("postgres");
        // Left running for the other test processes; scripts/test.sh stops it.
        std::mem::forget(pg);
        lock.unlock().unwrap();
        url
    })
}

/// The server part of the maintenance URL, to name other databases on it.
fn url_for(database: &str) -> String {
    let base = server_url();
    let (base, query) = base.split_once('?').map_or((base, None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
    match query {
        Some(q) => format!("{server}/{database}?{q}"),
        None => format!("{server}/{database}"),
    }
}

/// A digest of every migration's text: a changed migration makes a new template.
fn migrations_digest() -> u64 {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"));
    let mut entries: Vec<PathBuf> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    let mut hasher = DefaultHasher::new();
    for entry in entries {
        entry.file_name().hash(&mut hasher);
        for file in ["up.sql", "down.sql"] {
            fs::read_to_string(entry.join(file)).unwrap_or_default().hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// The migrated template, made once per server and migration set.
fn template() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let name = format!("comanda_tpl_{:016x}", migrations_digest());
        let mut admin = PgConnection::establish(server_url()).unwrap();
        // Across test processes: one builds the template, the others wait for it.
        diesel::sql_query("SELECT pg_advisory_lock(7240581)").execute(&mut admin).unwrap();
        let exists: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "EXISTS (SELECT 1 FROM pg_database WHERE datname = '{name}')"
        )))
        .get_result(&mut admin)
        .unwrap();
        if !exists {
            let building = format!("{name}_building");
            diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{building}\"")).execute(&mut admin).unwrap();
            ensure_database(server_url(), &building).unwrap();
            {
                let mut conn = PgConnection::establish(&url_for(&building)).unwrap();
                db::run_pending_migrations(&mut conn, &db::FirstLocation::default()).unwrap();
            }
            diesel::sql_query(format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\""))
                .execute(&mut admin)
                .unwrap();
        }
        diesel::sql_query("SELECT pg_advisory_unlock(7240581)").execute(&mut admin).unwrap();
        name
    })
}

/// A database of its own for one test, migrated, dropped when this value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn new() -> Self {
        let template = template();
        let name = format!("comanda_test_{}", Uuid::now_v7().simple());
        let mut admin = PgConnection::establish(server_url()).unwrap();
        diesel::sql_query(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"")).execute(&mut admin).unwrap();
        Self { url: url_for(&name), name }
    }

    /// An empty database with no migration applied (for migration tests).
    pub fn empty() -> Self {
        let name = format!("comanda_test_{}", Uuid::now_v7().simple());
        ensure_database(server_url(), &name).unwrap();
        Self { url: url_for(&name), name }
    }

    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.url).unwrap()
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(server_url()) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name))
                .execute(&mut admin);
        }
    }
}

/// The configuration tests start from: any free port, limits off, cheap hashing, a fixed secret.
pub fn test_config() -> Config {
    let mut config = Config::from_lookup(|_| None).unwrap();
    let (settings, server) = (&mut config.settings, &mut config.server);
    server.port = 0;
    server.rate_limit_login_per_minute = 0;
    server.rate_limit_per_minute = 0;
    settings.argon2.memory_kib = 1024;
    settings.argon2.iterations = 1;
    server.http_workers = 2;
    settings.database_timeout = std::time::Duration::from_secs(2);
    // Tests place orders in the past; they run the roll-up themselves when they test it.
    settings.report_rollup_interval = std::time::Duration::ZERO;
    // scripts/test.sh collects every answer of the suite to search them for leaks.
    server.response_audit_dir = std::env::var_os("RESPONSE_AUDIT_DIR").map(PathBuf::from);
    settings.jwt_secret = Some("test-secret-test-secret-test-secret-0123456789".to_owned().into());
    config
}

/// Logs once per process when `TEST_LOG` is set; quiet otherwise.
fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            std::mem::forget(api::telemetry::init(infrastructure::LogFormat::Pretty, None));
        }
    });
}

/// Builds and runs the real app on a thread of its own with its own actix system (as `main`
/// does), whatever runtime the test uses; returns its port and a handle to stop it.
pub fn serve(config: &Config, database_url: &str) -> (u16, actix_web::dev::ServerHandle) {
    let (tx, rx) = std::sync::mpsc::channel();
    let config = config.clone();
    let url = database_url.to_owned();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = api::Application::build(&config, &url).unwrap();
            tx.send((app.port(), app.handle())).unwrap();
            let _ = app.run_until_stopped().await;
        });
    });
    rx.recv().expect("the app did not start")
}

/// The password of every user the harness creates.
pub const PASSWORD: &str = "correct horse battery";

/// Creates a user straight in the database at `url`, hashing with `argon2`, working in the one
/// location there is (admins: everywhere).
pub fn create_user(
    url: &str,
    argon2: infrastructure::settings::Argon2Settings,
    email: &str,
    password: &str,
    role: Role,
) -> User {
    create_staff(url, argon2, email, password, role, None)
}

/// Creates a user straight in the database at `url`, working in `locations` (`None`: the one
/// location there is; admins: everywhere).
pub fn create_staff(
    url: &str,
    argon2: infrastructure::settings::Argon2Settings,
    email: &str,
    password: &str,
    role: Role,
    locations: Option<Vec<LocationId>>,
) -> User {
    let database = Database::new(
        url,
        PoolSettings {
            max_size: 1,
            checkout_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(30),
        },
    );
    let users = UserService::new(
        Arc::new(PgUserRepository::new(database.clone())),
        Arc::new(PgLocationRepository::new(database)),
        Arc::new(Argon2Hasher::new(argon2).unwrap()),
        Arc::new(SystemClock),
    );
    let email = Email::parse(email).unwrap();
    let password = Password::parse_new(password, Some(&email), None).unwrap();
    let name = PersonName::parse("Test User").unwrap();
    users.create_unchecked(NewUser { email, name, password, role, locations }).unwrap().user
}

/// The real app on a free port, over its own database.
#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub config: Config,
    handle: actix_web::dev::ServerHandle,
    // Dropped last: the server stops before its database goes.
    pub db: TestDb,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the app with its configuration changed by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        init_logs();
        let db = TestDb::new();
        let mut config = test_config();
        configure(&mut config);
        let (port, handle) = serve(&config, &db.url);
        let address = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { address, client, config, handle, db }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Creates a user directly (no HTTP), with [`PASSWORD`].
    pub fn create_user(&self, email: &str, role: Role) -> User {
        create_user(&self.db.url, self.config.settings.argon2, email, PASSWORD, role)
    }

    /// Logs in over HTTP and returns the bearer token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        login(&self.client, &self.address, email, password).await
    }

    /// A new user of that role and its token.
    pub async fn user_with_token(&self, role: Role) -> (User, String) {
        self.staff_with_token(role, None).await
    }

    /// A new user of that role working in `locations` (`None`: the one location there is),
    /// and its token.
    pub async fn staff_with_token(&self, role: Role, locations: Option<Vec<LocationId>>) -> (User, String) {
        let email = format!("{}-{}@example.com", role.as_str(), Uuid::now_v7().simple());
        let user = create_staff(&self.db.url, self.config.settings.argon2, &email, PASSWORD, role, locations);
        let token = self.login(&email, PASSWORD).await;
        (user, token)
    }

    /// The first location (made by the migrations: every test database has it), read straight
    /// from the database.
    pub fn main_location(&self) -> domain::Location {
        use application::LocationRepository as _;
        let database = Database::new(
            &self.db.url,
            PoolSettings {
                max_size: 1,
                checkout_timeout: std::time::Duration::from_secs(5),
                statement_timeout: std::time::Duration::from_secs(30),
            },
        );
        PgLocationRepository::new(database).all(&application::LocationScope::All).unwrap().remove(0)
    }

    /// The staff directory's version in the database now (what an order written straight
    /// through the writer must carry).
    pub fn directory_version(&self) -> i64 {
        self.version_of("staff_directory")
    }

    /// The menu's version (see the `menu_version` table).
    pub fn menu_version(&self) -> i64 {
        self.version_of("menu_version")
    }

    fn version_of(&self, table: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Version {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            version: i64,
        }
        diesel::sql_query(format!("SELECT version FROM {table}"))
            .get_result::<Version>(&mut self.db.conn())
            .unwrap()
            .version
    }

    /// The id of the first location (made by the migrations: every test database has it).
    pub async fn first_location(&self, admin_token: &str) -> LocationId {
        let body = json_body(self.get("/api/v1/locations?limit=100", admin_token).send().await.unwrap(), 200).await;
        let items = body["items"].as_array().unwrap();
        let last = items.last().expect("no location");
        LocationId(last["id"].as_str().unwrap().parse().unwrap())
    }

    /// Creates a location over HTTP as `admin_token` and returns its id.
    pub async fn create_location(&self, admin_token: &str, name: &str, time_zone: &str, day_start: &str) -> LocationId {
        let response = self
            .post("/api/v1/locations", admin_token)
            .json(&json!({"name": name, "time_zone": time_zone, "business_day_start": day_start}))
            .send()
            .await
            .unwrap();
        let body = json_body(response, 201).await;
        LocationId(body["id"].as_str().unwrap().parse().unwrap())
    }

    pub async fn admin(&self) -> (User, String) {
        self.user_with_token(Role::Admin).await
    }

    pub async fn waiter(&self) -> (User, String) {
        self.user_with_token(Role::Waiter).await
    }

    pub fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(token)
    }

    pub fn post(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(token)
    }

    /// Stops the server now (graceful stop is tested elsewhere).
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command at once; the future only waits for the outcome.
        drop(self.handle.stop(false));
    }
}

/// A response's JSON body, asserting its status first.
pub async fn json_body(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// Logs in over HTTP at `base` (`http://host:port`) and returns the bearer token.
pub async fn login(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let response = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "login of {email} failed");
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A PostgreSQL cluster of the test's own, in a new temporary folder, with the database
/// `comanda` migrated: for tests that stop and start the server ([`LocalPostgres::force_stop`],
/// [`LocalPostgres::restart_stopped`]). Returns the cluster, the database URL and the folder
/// (remove it after dropping the cluster).
pub fn own_cluster(name: &str) -> (LocalPostgres, String, PathBuf) {
    own_cluster_with(name, &LocalPgOptions::default())
}

/// [`own_cluster`] started with `options`.
pub fn own_cluster_with(name: &str, options: &LocalPgOptions) -> (LocalPostgres, String, PathBuf) {
    let dir = std::env::temp_dir().join(format!("comanda-{name}-{}", Uuid::now_v7().simple()));
    let pg = LocalPostgres::start(&dir, options).unwrap();
    pg.ensure_database("comanda").unwrap();
    let url = pg.url("comanda");
    db::prepare(&url, Some(&db::FirstLocation::default())).unwrap();
    (pg, url, dir)
}
