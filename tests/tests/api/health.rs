use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::{TestApp, json_body};

#[tokio::test]
async fn live_and_ready_answer_with_and_without_a_trailing_slash() {
    let app = TestApp::spawn().await;
    for path in ["/health/live", "/health/live/"] {
        let body = json_body(app.client.get(app.url(path)).send().await.unwrap(), 200).await;
        assert_eq!(body, serde_json::json!({"status": "ok"}));
    }
    for path in ["/health/ready", "/health", "/health/ready/"] {
        let body = json_body(app.client.get(app.url(path)).send().await.unwrap(), 200).await;
        assert_eq!(body, serde_json::json!({"status": "ok", "database": "ok"}), "{path}");
    }
}

#[tokio::test]
async fn ready_is_503_while_migrations_are_pending() {
    let app = TestApp::spawn().await;
    let mut conn = app.db.conn();
    infrastructure::db::revert_migrations(&mut conn, 1).unwrap();
    let response = app.client.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert!(body["database"].as_str().unwrap().contains("1 migrations are pending"), "{body}");
}

/// Stopping the database turns ready into 503 within 2 seconds without blocking other routes;
/// starting it again turns ready back to 200 without restarting the server.
#[tokio::test]
async fn ready_follows_a_database_outage_and_recovers_by_itself() {
    let (pg, url, dir) = test_support::own_cluster("outage");
    let mut config = test_support::test_config();
    config.settings.database_timeout = Duration::from_millis(1000);
    let (port, handle) = test_support::serve(&config, &url);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let ready = |client: reqwest::Client, base: String| async move {
        client.get(format!("{base}/health/ready")).send().await.unwrap().status().as_u16()
    };
    assert_eq!(ready(client.clone(), base.clone()).await, 200);

    pg.force_stop().unwrap();
    let started = Instant::now();
    let status = ready(client.clone(), base.clone()).await;
    let took = started.elapsed();
    assert_eq!(status, 503);
    assert!(took < Duration::from_secs(2), "ready took {took:?} to notice the outage");
    // Other routes are not blocked meanwhile.
    let started = Instant::now();
    let live = client.get(format!("{base}/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    assert!(started.elapsed() < Duration::from_millis(500));
    // A route that needs the database answers a fast 503 with Retry-After.
    let started = Instant::now();
    let response = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "a@example.com", "password": "whatever-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert!(started.elapsed() < Duration::from_secs(3));

    pg.restart_stopped().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if ready(client.clone(), base.clone()).await == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "ready did not recover after the database came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The routes that use the database work again too, on healed connections.
    for _ in 0..5 {
        let response = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"email": "a@example.com", "password": "whatever-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    handle.stop(false).await;
    drop(pg);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_show_the_pools() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    for _ in 0..3 {
        app.get(&format!("/api/v1/orders/{}", uuid::Uuid::now_v7()), &token).send().await.unwrap();
    }
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains("route=\"/api/v1/orders/{id}\"")
                && l.contains("status=\"404\"")
        })
        .unwrap_or_else(|| panic!("no counter for the route template:\n{text}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{line}");
    assert!(!text.contains("route=\"/api/v1/orders/0"), "a raw path leaked into a label");
    for name in [
        "http_request_duration_seconds_bucket{",
        "db_pool_max_connections ",
        "db_pool_connections{state=\"idle\"}",
        "db_pool_connections{state=\"in_use\"}",
        "db_pool_waiting ",
        "hash_pool_queued ",
        "hash_pool_queue_capacity ",
        "hash_pool_rejections_total ",
    ] {
        assert!(text.contains(name), "missing {name}");
    }
}

#[tokio::test]
async fn rate_limit_rejections_are_counted() {
    let app = TestApp::spawn_with(|s| s.server.rate_limit_per_minute = 1).await;
    app.client.get(app.url("/api/v1/orders")).send().await.unwrap();
    assert_eq!(app.client.get(app.url("/api/v1/orders")).send().await.unwrap().status(), 429);
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.lines().any(|l| l.starts_with("rate_limit_rejections_total{limiter=\"all\"}")), "{text}");
}
