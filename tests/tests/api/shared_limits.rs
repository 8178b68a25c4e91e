//! Rate limits shared across replicas through Redis, what happens when Redis goes away, and
//! client addresses behind a trusted proxy.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use test_support::TestApp;

/// A Redis of our own on a free port (the suite never relies on a server someone else runs).
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    fn start() -> Self {
        let port = infrastructure::local_pg::free_port().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for these tests (Debian package redis-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, url: format!("redis://127.0.0.1:{port}") }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn login_status(app: &TestApp) -> u16 {
    let body = json!({"email": "nobody@example.com", "password": "not the password"});
    app.client.post(app.url("/api/v1/auth/login")).json(&body).send().await.unwrap().status().as_u16()
}

/// Two replicas sharing Redis allow 5 logins a minute per client between them, not 5 each; when
/// Redis stops, a fail-open replica keeps serving and a fail-closed one answers 503 at once.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_the_login_limit_through_redis_and_survive_its_loss() {
    let mut redis = Redis::start();
    let url = redis.url.clone();
    let open = TestApp::spawn_with(|s| {
        s.server.rate_limit_login_per_minute = 5;
        s.server.redis_url = Some(url.clone().into());
    })
    .await;
    let closed = TestApp::spawn_with(|s| {
        s.server.rate_limit_login_per_minute = 5;
        s.server.redis_url = Some(url.clone().into());
        s.server.rate_limit_fail_open = false;
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(login_status(if i % 2 == 0 { &open } else { &closed }).await);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429], "the replicas did not count together");

    redis.stop();
    let started = Instant::now();
    assert_eq!(login_status(&open).await, 401, "fail-open: requests pass while Redis is away");
    let body = json!({"email": "nobody@example.com", "password": "not the password"});
    let response = closed.client.post(closed.url("/api/v1/auth/login")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 503, "fail-closed: requests are refused while Redis is away");
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert!(started.elapsed() < Duration::from_secs(3), "Redis being away slowed requests down");
    assert_eq!(closed.client.get(closed.url("/health/live")).send().await.unwrap().status(), 200);
    // Passing uncounted is counted.
    let metrics = open.client.get(open.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("rate_limit_backend_errors_total{decision=\"allowed\"}"), "{metrics}");
}

/// A Redis that accepts connections but never answers costs each decision at most the 250 ms
/// bound, connecting included.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_redis_costs_at_most_the_bound() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut connections = Vec::new();
        for stream in silent.incoming().take(8) {
            connections.push(stream);
        }
        connections
    });
    let app = TestApp::spawn_with(|s| {
        s.server.rate_limit_login_per_minute = 5;
        s.server.redis_url = Some(url.clone().into());
    })
    .await;
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(login_status(&app).await, 401);
        assert!(started.elapsed() < Duration::from_millis(900), "a decision took {:?}", started.elapsed());
    }
    drop(held);
}

/// Behind a trusted proxy the client is the right-most untrusted X-Forwarded-For address, so a
/// client cannot escape the limit by sending addresses of its own; an untrusted peer's header
/// is ignored.
#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let behind_proxy = TestApp::spawn_with(|s| {
        s.server.rate_limit_login_per_minute = 3;
        s.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let attempt = |app: &TestApp, forwarded: String| {
        let body = json!({"email": "nobody@example.com", "password": "not the password"});
        app.client.post(app.url("/api/v1/auth/login")).header("x-forwarded-for", forwarded).json(&body).send()
    };
    // The proxy appends the real client (203.0.113.7) to whatever the client claimed.
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(attempt(&behind_proxy, format!("198.51.100.{i}, 203.0.113.7")).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    // Another real client behind the same proxy has its own budget.
    assert_eq!(attempt(&behind_proxy, "203.0.113.8".to_owned()).await.unwrap().status(), 401);

    let direct = TestApp::spawn_with(|s| s.server.rate_limit_login_per_minute = 3).await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(attempt(&direct, format!("198.51.100.{i}")).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429], "an untrusted peer's X-Forwarded-For must be ignored");
}
