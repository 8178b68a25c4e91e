//! The app factory: `Application::build(settings)` wires the concrete types together, binds the
//! listener and gives back the port, so that tests start the real app exactly as `main` does.

use std::sync::Arc;
use std::time::Duration;

use actix_extensible_rate_limit::backend::memory::InMemoryBackend;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{Condition, DefaultHeaders, NormalizePath, from_fn};
use actix_web::{App, Error, HttpResponse, HttpServer, web};
use secrecy::{ExposeSecret, SecretSlice};
use tracing::{info, warn};
use utoipa_swagger_ui::SwaggerUi;

use application::{
    AuthService, Clock, KitchenRepository, KitchenService, LocationService, MenuService, OrderService, ReportService,
    SystemClock, UserService,
};
use infrastructure::{
    Argon2Hasher, Database, FeedSettings, JwtTokenService, KitchenFeed, PgKitchenRepository, PgLocationRepository,
    PgMenuRepository, PgOrderRepository, PgOrderWriter, PgReportRepository, PgUserRepository, PoolSettings,
    random_jwt_secret,
};
use ipnet::IpNet;

use crate::dto::cursor::CursorCodec;
use crate::dto::unreadable;
use crate::error::ApiError;
use crate::hashing_pool::HashingPool;
use crate::request_limits::BODY_LIMIT;
use crate::routes::{auth, health, kitchen, locations, menu, not_allowed, orders, reports, users};
use crate::settings::{Config, ServerSettings};
use crate::state::{AppState, Gauges, NotReady, Probes, StreamSettings};
use crate::{openapi, rate_limit, request_id};

/// What every HTTP worker's app is built with: where the rate limits count (one backend for
/// the process, or the Redis every replica shares), the limits, the trusted proxies, CORS, the
/// time a body may take, and the response audit of tests.
#[derive(Clone)]
pub struct HttpConfig {
    /// Counters in this process (shared by its workers), or the Redis every replica shares.
    backend: InMemoryBackend,
    redis: Option<redis::Client>,
    fail_open: bool,
    login_per_minute: u32,
    per_minute: u32,
    trusted_proxies: Arc<Vec<IpNet>>,
    cors_allowed_origins: Arc<Vec<String>>,
    body_read_timeout: Duration,
    audit: Option<crate::audit::Audit>,
}

impl HttpConfig {
    pub fn new(server: &ServerSettings) -> anyhow::Result<Self> {
        let audit = match &server.response_audit_dir {
            Some(dir) => Some(crate::audit::Audit::open(dir)?),
            None => None,
        };
        let redis = match &server.redis_url {
            Some(url) => Some(redis::Client::open(url.expose_secret())?),
            None => None,
        };
        Ok(Self {
            redis,
            fail_open: server.rate_limit_fail_open,
            audit,
            backend: InMemoryBackend::builder().build(),
            login_per_minute: server.rate_limit_login_per_minute,
            per_minute: server.rate_limit_per_minute,
            trusted_proxies: Arc::new(server.trusted_proxies.clone()),
            cors_allowed_origins: Arc::new(server.cors_allowed_origins.clone()),
            body_read_timeout: server.body_read_timeout,
        })
    }
}

/// The adapters health and metrics look at: the pool and the order writers.
#[derive(Debug)]
struct Adapters {
    db: Database,
    writer: Arc<PgOrderWriter>,
}

impl Probes for Adapters {
    fn readiness(&self, timeout: Duration) -> Result<(), NotReady> {
        self.db.readiness(timeout).map_err(|not_ready| match not_ready {
            infrastructure::NotReady::Database(cause) => NotReady::Unreachable(cause),
            infrastructure::NotReady::MigrationsPending(n) => NotReady::MigrationsPending(n),
        })
    }

    fn gauges(&self) -> Gauges {
        let pool = self.db.stats();
        let writer = self.writer.stats();
        Gauges {
            pool_max_size: pool.max_size,
            pool_connections: pool.connections,
            pool_idle: pool.idle,
            pool_waiting: pool.waiting,
            writer_statements: writer.statements,
            writer_orders: writer.orders,
        }
    }
}

/// Builds the services over a database URL: the composition root, the one place that names
/// the concrete adapters.
pub fn build_state(config: &Config, database_url: &str) -> anyhow::Result<AppState> {
    let (settings, server) = (&config.settings, &config.server);
    crate::metrics::handle();
    let db = Database::new(
        database_url,
        PoolSettings {
            max_size: settings.database_pool_size,
            checkout_timeout: settings.database_timeout,
            statement_timeout: settings.database_statement_timeout,
        },
    );
    let secret: SecretSlice<u8> = match &settings.jwt_secret {
        Some(secret) => SecretSlice::from(secret.expose_secret().as_bytes().to_vec()),
        None => {
            warn!("JWT_SECRET is not set: using a random secret for this run (tokens die with the process)");
            random_jwt_secret()
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let user_repo = Arc::new(PgUserRepository::new(db.clone()));
    let hasher = Arc::new(Argon2Hasher::new(settings.argon2)?);
    let tokens =
        Arc::new(JwtTokenService::new(&secret, &settings.jwt_issuer, &settings.jwt_audience, settings.jwt_ttl_seconds));
    let orders = Arc::new(PgOrderRepository::new(db.clone()));
    let report_repo = Arc::new(PgReportRepository::new(db.clone()));
    let order_writer = Arc::new(PgOrderWriter::new(db.clone(), settings.order_writers, settings.database_timeout));
    let location_repo = Arc::new(PgLocationRepository::new(db.clone()));
    let directory = Arc::new(infrastructure::staff_directory(db.clone()));
    let menu_snapshots = Arc::new(infrastructure::menu_snapshots(db.clone()));
    let menu_repo = Arc::new(PgMenuRepository::new(db.clone()));
    let kitchen_repo: Arc<dyn KitchenRepository> = Arc::new(PgKitchenRepository::new(db.clone()));
    let feed = KitchenFeed::start(db.clone(), kitchen_repo.clone(), Arc::new(kitchen::frame), FeedSettings::default());
    Ok(AppState {
        auth: Arc::new(AuthService::new(user_repo.clone(), hasher.clone(), tokens)?),
        users: Arc::new(UserService::new(user_repo.clone(), location_repo.clone(), hasher, clock.clone())),
        locations: Arc::new(LocationService::new(location_repo.clone(), user_repo.clone(), clock.clone())),
        menu: Arc::new(MenuService::new(menu_repo, user_repo.clone(), clock.clone())),
        orders: Arc::new(OrderService::new(
            orders,
            order_writer.clone(),
            user_repo.clone(),
            directory,
            menu_snapshots,
            clock.clone(),
        )),
        reports: Arc::new(ReportService::new(
            report_repo,
            user_repo.clone(),
            location_repo,
            clock.clone(),
            application::rollup_lag(settings.database_timeout, settings.database_statement_timeout),
        )),
        kitchen: Arc::new(KitchenService::new(kitchen_repo, user_repo.clone(), clock.clone())),
        feed,
        kitchen_stream: StreamSettings { keepalive: settings.kitchen_keepalive, max_age: settings.kitchen_stream_max },
        stopping: tokio::sync::watch::channel(false).0,
        clock,
        hash_pool: HashingPool::new(
            server.hash_workers,
            server.hash_queue,
            server.hash_priority,
            infrastructure::keep_hash_memory,
        ),
        cursors: CursorCodec::new(secret.expose_secret()),
        ready_timeout: settings.database_timeout.min(Duration::from_millis(1000)),
        queue_timeout: settings.database_timeout,
        probes: Arc::new(Adapters { db, writer: order_writer }),
    })
}

/// The whole HTTP application.
pub fn app(
    state: web::Data<AppState>,
    limits: HttpConfig,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let json = web::JsonConfig::default().limit(BODY_LIMIT).error_handler(|e, _| json_error(e).into());
    let query = web::QueryConfig::default().error_handler(|e, _| {
        ApiError::BadRequest(format!("the query string could not be read: {}", unreadable(&e.to_string()))).into()
    });
    // A path segment that is not an id names no resource.
    let path = web::PathConfig::default().error_handler(|_, _| ApiError::NotFound("no such resource".into()).into());
    // Per worker: its own Redis connection (made on first use), or the process's counters.
    let backend = match &limits.redis {
        Some(client) => rate_limit::LimitBackend::Redis(rate_limit::RedisLimit::new(client.clone(), limits.fail_open)),
        None => rate_limit::LimitBackend::Memory(limits.backend.clone()),
    };
    let general = rate_limit::limiter(
        backend.clone(),
        "all",
        limits.per_minute,
        limits.trusted_proxies.clone(),
        limits.fail_open,
    );
    let login = rate_limit::limiter(
        backend,
        "login",
        limits.login_per_minute,
        limits.trusted_proxies.clone(),
        limits.fail_open,
    );

    App::new()
        .app_data(state)
        .app_data(json)
        .app_data(query)
        .app_data(path)
        .app_data(web::PayloadConfig::new(BODY_LIMIT))
        .app_data(web::Data::new(crate::request_limits::BodyReadTimeout(limits.body_read_timeout)))
        .wrap(from_fn(crate::request_limits::head))
        .wrap(
            DefaultHeaders::new()
                .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .add((header::X_FRAME_OPTIONS, "DENY"))
                .add((header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"))
                .add((header::REFERRER_POLICY, "no-referrer")),
        )
        .wrap(Condition::new(!limits.cors_allowed_origins.is_empty(), cors(&limits.cors_allowed_origins)))
        .wrap(from_fn(request_id::middleware))
        .app_data(web::Data::new(limits.audit.clone()))
        .wrap(Condition::new(limits.audit.is_some(), from_fn(crate::audit::middleware)))
        .service(
            web::scope("/health")
                .wrap(NormalizePath::trim())
                .service(web::resource("").route(web::get().to(health::ready)).default_service(not_allowed("GET")))
                .service(web::resource("/live").route(web::get().to(health::live)).default_service(not_allowed("GET")))
                .service(
                    web::resource("/ready").route(web::get().to(health::ready)).default_service(not_allowed("GET")),
                ),
        )
        .service(
            web::scope("/api/v1")
                // Innermost: after the rate limits, so that a refused request is not read.
                .wrap(from_fn(crate::request_limits::body))
                .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
                .wrap(Condition::new(limits.per_minute > 0, general))
                .wrap(NormalizePath::trim())
                .service(
                    web::resource("/auth/login")
                        .wrap(Condition::new(limits.login_per_minute > 0, login))
                        .route(web::post().to(auth::login))
                        .default_service(not_allowed("POST")),
                )
                .service(
                    web::resource("/users")
                        .route(web::post().to(users::create_user))
                        .route(web::get().to(users::list_users))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(web::resource("/users/me").route(web::get().to(users::me)).default_service(not_allowed("GET")))
                .service(
                    web::resource("/users/{id}")
                        .route(web::get().to(users::get_user))
                        .default_service(not_allowed("GET")),
                )
                .service(
                    web::resource("/users/{id}/locations")
                        .route(web::put().to(users::set_user_locations))
                        .default_service(not_allowed("PUT")),
                )
                .service(
                    web::resource("/locations")
                        .route(web::post().to(locations::create_location))
                        .route(web::get().to(locations::list_locations))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/locations/{id}")
                        .route(web::get().to(locations::get_location))
                        .route(web::patch().to(locations::update_location))
                        .default_service(not_allowed("GET, PATCH")),
                )
                .service(
                    web::resource("/locations/{id}/sold-out/{item_id}")
                        .route(web::put().to(menu::mark_sold_out))
                        .route(web::delete().to(menu::clear_sold_out))
                        .default_service(not_allowed("DELETE, PUT")),
                )
                .service(
                    web::resource("/menu/categories")
                        .route(web::post().to(menu::create_category))
                        .route(web::get().to(menu::list_categories))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/menu/categories/{id}")
                        .route(web::get().to(menu::get_category))
                        .route(web::patch().to(menu::update_category))
                        .default_service(not_allowed("GET, PATCH")),
                )
                .service(
                    web::resource("/menu/items")
                        .route(web::post().to(menu::create_item))
                        .route(web::get().to(menu::list_items))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/menu/items/{id}")
                        .route(web::get().to(menu::get_item))
                        .route(web::patch().to(menu::update_item))
                        .default_service(not_allowed("GET, PATCH")),
                )
                .service(
                    web::resource("/menu/items/{id}/prices")
                        .route(web::get().to(menu::item_prices))
                        .default_service(not_allowed("GET")),
                )
                .service(
                    web::resource("/orders")
                        .route(web::post().to(orders::create_order))
                        .route(web::get().to(orders::list_orders))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/orders/report")
                        .route(web::get().to(reports::sales_report))
                        .default_service(not_allowed("GET")),
                )
                .service(
                    web::resource("/orders/{id}")
                        .route(web::get().to(orders::get_order))
                        .default_service(not_allowed("GET")),
                )
                .service(
                    web::resource("/orders/{id}/cancel")
                        .route(web::post().to(orders::cancel_order))
                        .default_service(not_allowed("POST")),
                )
                .service(
                    web::resource("/orders/{id}/payments")
                        .route(web::post().to(orders::create_payment))
                        .route(web::get().to(orders::list_payments))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/orders/{id}/items")
                        .route(web::post().to(orders::add_items))
                        .default_service(not_allowed("POST")),
                )
                .service(
                    web::resource("/orders/{id}/items/{line_id}/void")
                        .route(web::post().to(orders::void_item))
                        .default_service(not_allowed("POST")),
                )
                .service(
                    web::resource("/orders/{id}/send")
                        .route(web::post().to(orders::send_order))
                        .default_service(not_allowed("POST")),
                )
                .service(
                    web::resource("/kitchen/tickets")
                        .route(web::get().to(kitchen::list_tickets))
                        .default_service(not_allowed("GET")),
                )
                .service(
                    web::resource("/kitchen/tickets/{id}")
                        .route(web::get().to(kitchen::get_ticket))
                        .default_service(not_allowed("GET")),
                )
                .service(
                    web::resource("/kitchen/tickets/{id}/ready")
                        .route(web::post().to(kitchen::ready_ticket))
                        .default_service(not_allowed("POST")),
                )
                .service(
                    web::resource("/kitchen/tickets/{id}/served")
                        .route(web::post().to(kitchen::serve_ticket))
                        .default_service(not_allowed("POST")),
                )
                .service(
                    web::resource("/kitchen/stream")
                        .route(web::get().to(kitchen::stream))
                        .default_service(not_allowed("GET")),
                ),
        )
        .service(
            web::resource("/metrics").route(web::get().to(crate::metrics::scrape)).default_service(not_allowed("GET")),
        )
        .service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", openapi::document()))
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/docs/")).finish()
            }),
        )
        .default_service(web::to(|| async { Err::<HttpResponse, _>(ApiError::NotFound("no such resource".into())) }))
}

/// CORS for the configured origins only (off when none are configured: browsers then refuse
/// cross-origin calls).
fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT, header::IF_MATCH])
        .allowed_header("idempotency-key")
        .allowed_header("last-event-id")
        .allowed_header("x-request-id")
        .expose_headers([header::LOCATION, header::RETRY_AFTER, header::ETAG])
        .expose_headers([
            "x-request-id",
            "idempotent-replayed",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
        ])
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// The JSON extractor's errors as problems: 415, 413, 400.
fn json_error(error: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match error {
        E::ContentType => ApiError::UnsupportedMediaType("send the body as application/json".into()),
        E::OverflowKnownLength { .. } | E::Overflow { .. } => {
            ApiError::PayloadTooLarge(format!("the body is larger than {} KiB", BODY_LIMIT / 1024))
        }
        E::Payload(actix_web::error::PayloadError::Overflow) => {
            ApiError::PayloadTooLarge(format!("the body is larger than {} KiB", BODY_LIMIT / 1024))
        }
        E::Deserialize(e) => {
            ApiError::BadRequest(format!("the JSON body could not be read: {}", unreadable(&e.to_string())))
        }
        other => ApiError::BadRequest(format!("the body could not be read: {}", unreadable(&other.to_string()))),
    }
}

/// The running server, its port, and its background work.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    idempotency_ttl: chrono::Duration,
    kitchen_events_retention: chrono::Duration,
    rollup_interval: Duration,
}

impl Application {
    /// Builds the services, binds `HOST:PORT` (port 0: any free port) and prepares the server.
    pub fn build(config: &Config, database_url: &str) -> anyhow::Result<Self> {
        let (settings, server) = (&config.settings, &config.server);
        let state = web::Data::new(build_state(config, database_url)?);
        let limits = HttpConfig::new(server)?;
        let app_state = state.clone();
        let http = HttpServer::new(move || app(app_state.clone(), limits.clone()))
            .workers(server.http_workers)
            .worker_max_blocking_threads(server.blocking_threads)
            .shutdown_timeout(server.shutdown_timeout.as_secs())
            // A thousand clients may connect at once: room for them in the accept queue.
            .backlog(2048)
            // SIGTERM and Ctrl-C both stop gracefully (actix would stop at once on Ctrl-C).
            .disable_signals()
            .bind((server.host.as_str(), server.port))?;
        let port =
            http.addrs().first().map(|a| a.port()).ok_or_else(|| anyhow::anyhow!("the server bound no address"))?;
        info!(address = %format!("http://{}:{port}", server.host), docs = %format!("http://{}:{port}/docs/", server.host), "listening");
        let server = http.run();
        Ok(Self {
            port,
            server,
            state,
            idempotency_ttl: chrono::Duration::hours(i64::from(settings.idempotency_ttl_hours)),
            kitchen_events_retention: chrono::Duration::hours(i64::from(settings.kitchen_events_retention_hours)),
            rollup_interval: settings.report_rollup_interval,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM or Ctrl-C (or the handle's stop): stops accepting, finishes the
    /// requests in flight (bounded by the shutdown timeout), and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let mut background = vec![
            tokio::spawn(purge_idempotency_keys(self.state.clone(), self.idempotency_ttl)),
            tokio::spawn(purge_kitchen_events(self.state.clone(), self.kitchen_events_retention)),
            tokio::spawn(stop_on_signal(self.server.handle(), self.state.clone())),
        ];
        if !self.rollup_interval.is_zero() {
            background.push(tokio::spawn(roll_up_sales(self.state.clone(), self.rollup_interval)));
        }
        let result = self.server.await;
        self.state.stopping.send_replace(true);
        for task in background {
            task.abort();
        }
        result
    }
}

/// SIGTERM or Ctrl-C (SIGINT): stop accepting, finish the requests in flight (bounded by the
/// shutdown timeout), then return from `run_until_stopped`.
async fn stop_on_signal(server: actix_web::dev::ServerHandle, state: web::Data<AppState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        warn!("could not listen for SIGTERM and SIGINT; stop the process with the server handle");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(signal = name, "stopping gracefully: no new connections, finishing the requests in flight");
    // Kitchen streams never finish by themselves: end them (displays reconnect elsewhere).
    state.stopping.send_replace(true);
    server.stop(true).await;
}

/// Runs `purge` hourly on a blocking thread, logging how many `what` it forgot.
async fn purge_hourly<E: std::fmt::Display + Send + 'static>(
    what: &'static str,
    purge: impl Fn() -> Result<u64, E> + Clone + Send + 'static,
) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        match web::block(purge.clone()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => info!(count = n, "purged old {what}"),
            Ok(Err(e)) => warn!(error = %e, "could not purge {what}"),
            Err(e) => warn!(error = %e, "could not purge {what}"),
        }
    }
}

/// Forgets idempotency keys older than the retention, hourly.
async fn purge_idempotency_keys(state: web::Data<AppState>, ttl: chrono::Duration) {
    purge_hourly("idempotency keys", move || state.orders.purge_idempotency_keys(ttl)).await;
}

/// Forgets kitchen events older than the retention, hourly.
async fn purge_kitchen_events(state: web::Data<AppState>, retention: chrono::Duration) {
    purge_hourly("kitchen events", move || state.kitchen.purge_events(retention)).await;
}

/// Keeps the sales rollup current (see `infrastructure::reports`). Every replica runs it; one
/// at a time does the work.
async fn roll_up_sales(state: web::Data<AppState>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let reports = state.reports.clone();
        match web::block(move || reports.roll_up()).await {
            Ok(Ok(progress)) if progress.minutes10 > 0 || progress.hours > 0 || progress.days > 0 => {
                info!(minutes10 = progress.minutes10, hours = progress.hours, days = progress.days, "rolled up sales")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "could not roll up sales"),
            Err(e) => warn!(error = %e, "could not roll up sales"),
        }
    }
}
