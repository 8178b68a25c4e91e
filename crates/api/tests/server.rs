//! The `comanda-api` binary as an operator runs it: settings checked at start, the local
//! PostgreSQL by default, a database that is behind refused, SIGTERM answered gracefully.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_comanda-api");

fn free_port() -> u16 {
    infrastructure::local_pg::free_port().unwrap()
}

/// The binary with a clean environment (no .env: it runs in a temporary folder).
fn command(dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in vars {
        command.env(k, v);
    }
    command
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("comanda-{name}-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}-{nanos}", std::process::id())
}

fn wait_for(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

async fn wait_ready(base: &str, child: &mut Child) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = client.get(format!("{base}/health/ready")).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "the server exited before it was ready");
        assert!(Instant::now() < deadline, "the server was not ready in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn output(mut command: Command) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap()
}

#[test]
fn a_wrong_setting_stops_the_process_with_a_sentence_naming_it() {
    let dir = temp_dir("settings");
    let out = output(command(&dir, &[("PORT", "eighty")]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("comanda-api: PORT must be a whole number"), "{stderr}");
}

#[test]
fn production_refuses_to_start_without_a_secret() {
    let dir = temp_dir("production");
    let out = output(command(&dir, &[("APP_ENV", "production"), ("DATABASE_URL", "postgres://localhost/x")]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET must be set when APP_ENV=production"));
}

#[test]
fn a_database_whose_migrations_are_behind_is_refused() {
    let db = test_support::TestDb::empty();
    let dir = temp_dir("behind");
    let port = free_port().to_string();
    let out = output(command(&dir, &[("DATABASE_URL", &db.url), ("PORT", &port)]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("migration(s) behind") && stderr.contains("db-admin migrate"), "{stderr}");
}

/// No configuration at all: the server starts its own PostgreSQL under DATA_DIR, serves, logs
/// JSON lines carrying the request id, and on SIGTERM finishes the request in flight, stops the
/// cluster and exits 0. A second start finds the data again.
#[tokio::test(flavor = "multi_thread")]
async fn the_local_default_serves_and_stops_gracefully_on_sigterm() {
    let dir = temp_dir("local");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // A slow hash, so that a login is still in flight when SIGTERM arrives.
    let vars = [
        ("PORT", port.to_string()),
        ("LOG_FORMAT", "json".to_owned()),
        ("ARGON2_MEMORY_KIB", "65536".to_owned()),
        ("ARGON2_ITERATIONS", "40".to_owned()),
        // What is checked is that the request in flight is finished, not how long that may
        // take: room enough for that hash on a loaded machine.
        ("SHUTDOWN_TIMEOUT_SECONDS", "120".to_owned()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut child = command(&dir, &vars).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    wait_ready(&base, &mut child).await;
    assert!(dir.join(".data/postgres/PG_VERSION").exists());

    let client = reqwest::Client::new();
    let docs = client.get(format!("{base}/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);

    let login = tokio::spawn({
        let client = client.clone();
        let base = base.clone();
        async move {
            client
                .post(format!("{base}/api/v1/auth/login"))
                .header("x-request-id", "graceful-login-1")
                .json(&serde_json::json!({"email": "nobody@example.com", "password": "not the password"}))
                .send()
                .await
        }
    });
    hashing_started(&base).await;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let answered = login.await.unwrap().expect("the request in flight was cut off");
    assert_eq!(answered.status(), 401);
    let status = wait_for(&mut child, Duration::from_secs(30)).expect("the server did not exit after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(!dir.join(".data/postgres/postmaster.pid").exists(), "the local cluster was left running");

    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let request_lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["span"]["request_id"] == "graceful-login-1")
        .collect();
    assert!(!request_lines.is_empty(), "no JSON log line carries the request id:\n{stderr}");
    assert!(stderr.contains("DATABASE_URL is not set: started the local PostgreSQL"), "{stderr}");

    // The data stays: a second start finds the database migrated and the cluster initialised.
    // Ctrl-C (SIGINT) is as graceful as SIGTERM.
    let mut again = command(&dir, &vars).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_ready(&base, &mut again).await;
    let login = tokio::spawn({
        let base = base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/api/v1/auth/login"))
                .json(&serde_json::json!({"email": "nobody@example.com", "password": "not the password"}))
                .send()
                .await
        }
    });
    hashing_started(&base).await;
    kill(Pid::from_raw(again.id() as i32), Signal::SIGINT).unwrap();
    assert_eq!(login.await.unwrap().expect("Ctrl-C cut the request in flight").status(), 401);
    assert!(wait_for(&mut again, Duration::from_secs(30)).unwrap().success());
    assert!(!dir.join(".data/postgres/postmaster.pid").exists(), "the local cluster was left running");
    let _ = std::fs::remove_dir_all(dir);
}

/// Waits until the server is hashing a password (the login sent before is in flight), by its
/// metrics: a fixed pause could end before a loaded machine has even read the request.
async fn hashing_started(base: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
        if metrics.lines().any(|l| l.starts_with("hash_pool_running ") && !l.ends_with(" 0")) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the login never reached the hashing pool:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Nothing the server logs (at debug level) or answers contains a password or a hash.
#[tokio::test(flavor = "multi_thread")]
async fn no_log_line_or_response_contains_a_password_or_a_hash() {
    let db = test_support::TestDb::new();
    let dir = temp_dir("secrets");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let vars = [
        ("DATABASE_URL", db.url.clone()),
        ("PORT", port.to_string()),
        ("RUST_LOG", "debug".to_owned()),
        ("ARGON2_MEMORY_KIB", "1024".to_owned()),
        ("ARGON2_ITERATIONS", "1".to_owned()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let argon2 = infrastructure::settings::Argon2Settings { memory_kib: 1024, iterations: 1, parallelism: 1 };
    test_support::create_user(&db.url, argon2, "root@example.com", "first admin secret", domain::Role::Admin);
    let mut child = command(&dir, &vars).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_ready(&base, &mut child).await;
    let client = reqwest::Client::new();
    let mut bodies = String::new();
    let login = |email: &'static str, password: &'static str| {
        client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
    };
    let response = login("root@example.com", "first admin secret").await.unwrap();
    let token: serde_json::Value = response.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    bodies.push_str(&login("root@example.com", "a wrong secret!").await.unwrap().text().await.unwrap());
    bodies.push_str(&login("ghost@example.com", "ghost secret 123").await.unwrap().text().await.unwrap());
    let created = client
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"email": "new@example.com", "name": "New One", "password": "the new one's secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    bodies.push_str(&created.text().await.unwrap());
    let refused = client
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"email": "x@example.com", "name": "X", "password": "tiny"}))
        .send()
        .await
        .unwrap();
    bodies.push_str(&refused.text().await.unwrap());
    for path in ["/api/v1/users", "/api/v1/users/me"] {
        bodies.push_str(
            &client.get(format!("{base}{path}")).bearer_auth(&token).send().await.unwrap().text().await.unwrap(),
        );
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(wait_for(&mut child, Duration::from_secs(30)).unwrap().success());
    let mut logs = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut logs).unwrap();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut logs).unwrap();
    assert!(logs.contains("request finished"), "the logs were not captured");
    assert!(!logs.contains('\x1b'), "human-readable logs into a pipe carry colour codes:\n{logs}");
    for secret in
        ["first admin secret", "a wrong secret!", "ghost secret 123", "the new one's secret", "tiny", "$argon2", &token]
    {
        assert!(!logs.contains(secret), "the logs contain {secret:?}");
        assert!(!bodies.contains(secret), "a response contains {secret:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// SIGKILL in the middle of a create-order load, then a restart: every order whose 201
/// reached a client is there with all its lines, and no order exists without its lines.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_under_load_loses_no_acknowledged_order() {
    let db = test_support::TestDb::new();
    let argon2 = infrastructure::settings::Argon2Settings { memory_kib: 1024, iterations: 1, parallelism: 1 };
    test_support::create_user(&db.url, argon2, "kill@example.com", test_support::PASSWORD, domain::Role::Waiter);
    let dir = temp_dir("sigkill");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let vars = [
        ("DATABASE_URL", db.url.clone()),
        ("PORT", port.to_string()),
        ("ARGON2_MEMORY_KIB", "1024".to_owned()),
        ("ARGON2_ITERATIONS", "1".to_owned()),
        ("JWT_SECRET", "a-fixed-secret-a-fixed-secret-0123456789".to_owned()),
        ("RATE_LIMIT_PER_MINUTE", "0".to_owned()),
        ("RATE_LIMIT_LOGIN_PER_MINUTE", "0".to_owned()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut child = command(&dir, &vars).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_ready(&base, &mut child).await;
    let client = reqwest::Client::new();
    let token = test_support::login(&client, &base, "kill@example.com", test_support::PASSWORD).await;

    // Clients create orders of 1 to 8 lines until the server dies under them.
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0.. {
                    let lines = 1 + (c + i) % 8;
                    let items: Vec<serde_json::Value> = (0..lines)
                        .map(|l| serde_json::json!({"product_name": format!("Producto {l}"), "unit_price": "1.50", "quantity": 1 + l}))
                        .collect();
                    let body = serde_json::json!({"customer_name": format!("Cliente {c}-{i}"), "items": items});
                    match client.post(format!("{base}/api/v1/orders")).bearer_auth(&token).json(&body).send().await {
                        Ok(r) if r.status() == 201 => match r.json::<serde_json::Value>().await {
                            Ok(order) => acknowledged.push((order["id"].as_str().unwrap().to_owned(), lines)),
                            Err(_) => return acknowledged,
                        },
                        Ok(r) => panic!("unexpected {}", r.status()),
                        Err(_) => return acknowledged,
                    }
                }
                acknowledged
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let mut acknowledged = Vec::new();
    for c in clients {
        acknowledged.extend(c.await.unwrap());
    }
    assert!(acknowledged.len() > 20, "the load was too light to mean anything: {}", acknowledged.len());

    let mut again = command(&dir, &vars).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_ready(&base, &mut again).await;
    for (id, lines) in &acknowledged {
        let order: serde_json::Value = client
            .get(format!("{base}/api/v1/orders/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(order["id"], id.as_str(), "acknowledged order {id} is missing");
        assert_eq!(order["items"].as_array().unwrap().len(), *lines, "order {id} lost lines");
    }
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = db.conn();
    let orphans: N = diesel::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT count(*) AS n FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)",
        ),
        &mut conn,
    )
    .unwrap();
    assert_eq!(orphans.n, 0, "orders without lines");
    let stored: N =
        diesel::RunQueryDsl::get_result(diesel::sql_query("SELECT count(*) AS n FROM orders"), &mut conn).unwrap();
    assert!(stored.n as usize >= acknowledged.len());
    eprintln!("acknowledged {}, stored {}", acknowledged.len(), stored.n);
    kill(Pid::from_raw(again.id() as i32), Signal::SIGTERM).unwrap();
    assert!(wait_for(&mut again, Duration::from_secs(30)).unwrap().success());
    let _ = std::fs::remove_dir_all(dir);
}

/// With OTEL_EXPORTER_OTLP_ENDPOINT, requests become traces sent over OTLP/HTTP: the request
/// span carries its route, status and request id, and the database and hashing work are spans
/// of their own.
#[tokio::test(flavor = "multi_thread")]
async fn traces_are_exported_over_otlp_when_configured() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::{Arc, Mutex};

    // A collector that keeps the bodies it receives.
    let collector = TcpListener::bind("127.0.0.1:0").unwrap();
    let collector_port = collector.local_addr().unwrap().port();
    /// Each request the collector received: its request line and its body.
    type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
    let received: Received = Arc::default();
    let sink = received.clone();
    std::thread::spawn(move || {
        for stream in collector.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            sink.lock().unwrap().push((request_line, body));
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });

    let db = test_support::TestDb::new();
    let argon2 = infrastructure::settings::Argon2Settings { memory_kib: 1024, iterations: 1, parallelism: 1 };
    test_support::create_user(&db.url, argon2, "traced@example.com", test_support::PASSWORD, domain::Role::Waiter);
    let dir = temp_dir("otel");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let vars = [
        ("DATABASE_URL", db.url.clone()),
        ("PORT", port.to_string()),
        ("ARGON2_MEMORY_KIB", "1024".to_owned()),
        ("ARGON2_ITERATIONS", "1".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{collector_port}")),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut child = command(&dir, &vars).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_ready(&base, &mut child).await;
    let client = reqwest::Client::new();
    let login: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .header("x-request-id", "trace-login-1")
        .json(&serde_json::json!({"email": "traced@example.com", "password": test_support::PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let listed = client
        .get(format!("{base}/api/v1/orders"))
        .bearer_auth(token)
        .header("x-request-id", "trace-list-1")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    // SIGTERM flushes the spans not yet sent.
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(wait_for(&mut child, Duration::from_secs(30)).unwrap().success());

    let received = received.lock().unwrap();
    assert!(
        received.iter().all(|(line, _)| line.starts_with("POST /v1/traces ")),
        "{:?}",
        received.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    let everything: Vec<u8> = received.iter().flat_map(|(_, body)| body.clone()).collect();
    let contains = |needle: &str| everything.windows(needle.len()).any(|w| w == needle.as_bytes());
    for needle in [
        "request",
        "trace-login-1",
        "trace-list-1",
        "/api/v1/auth/login",
        "/api/v1/orders",
        "route",
        "status",
        "hashing_work",
        "database_work",
        "comanda-api",
    ] {
        assert!(contains(needle), "no exported span mentions {needle:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
