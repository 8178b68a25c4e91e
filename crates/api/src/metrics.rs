//! `GET /metrics` in the Prometheus text format (metrics + metrics-exporter-prometheus):
//! requests by route template and status, latency histograms, the connection pool, the hashing
//! queue, rate-limit rejections.

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

const REQUESTS: &str = "http_requests_total";
const DURATION: &str = "http_request_duration_seconds";
const RATE_LIMITED: &str = "rate_limit_rejections_total";

/// The process-wide recorder (installed once; every app of the process shares it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.to_owned()), &buckets)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may exist (a test binary that installs its own): then ours only
        // renders what it sees, which is nothing; that is acceptable for tests.
        let _ = metrics::set_global_recorder(recorder);
        // Histogram samples wait in buffers until upkeep folds them into the buckets: without it
        // they pile up between scrapes (megabytes per second under load).
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                upkeep.run_upkeep();
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the metrics upkeep thread");
        }
        handle
    })
}

/// Counts a finished request under its route template (never the raw path: ids would explode
/// the label space).
pub fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [("method", method.to_owned()), ("route", route.to_owned()), ("status", status.to_string())];
    metrics::counter!(REQUESTS, &labels).increment(1);
    let labels = [("method", method.to_owned()), ("route", route.to_owned())];
    metrics::histogram!(DURATION, &labels).record(elapsed.as_secs_f64());
}

pub fn record_rate_limited(limiter: &'static str) {
    metrics::counter!(RATE_LIMITED, "limiter" => limiter).increment(1);
}

/// Prometheus metrics of this process: requests by route template and status, latency
/// histograms, the connection pool, the hashing queue, rate-limit rejections.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "the Prometheus text format", content_type = "text/plain", body = String))
)]
pub async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    let gauges = state.probes.gauges();
    metrics::gauge!("db_pool_max_connections").set(f64::from(gauges.pool_max_size));
    metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(gauges.pool_idle));
    metrics::gauge!("db_pool_connections", "state" => "in_use")
        .set(f64::from(gauges.pool_connections.saturating_sub(gauges.pool_idle)));
    metrics::gauge!("db_pool_waiting").set(gauges.pool_waiting as f64);
    metrics::counter!("order_writer_statements_total").absolute(gauges.writer_statements);
    metrics::counter!("order_writer_orders_total").absolute(gauges.writer_orders);
    let hashing = state.hash_pool.stats();
    metrics::gauge!("hash_pool_workers").set(hashing.workers as f64);
    metrics::gauge!("hash_pool_queue_capacity").set(hashing.capacity as f64);
    metrics::gauge!("hash_pool_queued").set(hashing.queued as f64);
    metrics::gauge!("hash_pool_running").set(hashing.running as f64);
    metrics::counter!("hash_pool_rejections_total").absolute(hashing.rejected as u64);
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(handle().render())
}
