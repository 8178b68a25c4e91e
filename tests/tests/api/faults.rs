//! Faults: the database stops under load, the pool is exhausted. (The server killed with
//! SIGKILL under load is in crates/api/tests/server.rs: it needs the real binary.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use test_support::{PASSWORD, TestApp};

use crate::orders::{count, simple_order};

#[derive(Debug)]
struct Outcome {
    status: u16,
    elapsed: Duration,
    retry_after: bool,
    at: Instant,
}

/// Clients that create orders in a loop until told to stop.
fn load(
    base: String,
    token: String,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Outcome>>> {
    (0..clients)
        .map(|c| {
            let (base, token, stop) = (base.clone(), token.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut outcomes = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let started = Instant::now();
                    let response = client
                        .post(format!("{base}/api/v1/orders"))
                        .bearer_auth(&token)
                        .json(&simple_order(&format!("Cliente {c}-{i}")))
                        .send()
                        .await
                        .expect("a request failed at the HTTP level");
                    let retry_after = response.headers().contains_key("retry-after");
                    outcomes.push(Outcome {
                        status: response.status().as_u16(),
                        elapsed: started.elapsed(),
                        retry_after,
                        at: Instant::now(),
                    });
                    let _ = response.bytes().await;
                    if outcomes.last().is_some_and(|o| o.status == 503) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                outcomes
            })
        })
        .collect()
}

/// PostgreSQL stops in the middle of a create-order load: requests fail fast with 503 and
/// Retry-After, nothing hangs beyond the pool timeout, the server keeps running, and when the
/// database is back everything recovers without a restart. Every 201 is an order in the
/// database and there is no other.
#[tokio::test(flavor = "multi_thread")]
async fn the_database_stopping_under_load_fails_fast_and_recovers() {
    let (pg, url, dir) = test_support::own_cluster("fault");
    let mut config = test_support::test_config();
    config.settings.database_timeout = Duration::from_millis(1000);
    config.settings.database_statement_timeout = Duration::from_secs(2);
    test_support::create_user(&url, config.settings.argon2, "load@example.com", PASSWORD, domain::Role::Waiter);
    let (port, handle) = test_support::serve(&config, &url);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let token = test_support::login(&client, &base, "load@example.com", PASSWORD).await;

    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(base.clone(), token, 6, stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg.force_stop().unwrap();
    let stopped_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        client.get(format!("{base}/health/live")).send().await.unwrap().status(),
        200,
        "the server kept running"
    );
    assert_eq!(client.get(format!("{base}/health/ready")).send().await.unwrap().status(), 503);
    pg.restart_stopped().unwrap();
    let restarted_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap());
    }
    assert_eq!(client.get(format!("{base}/health/ready")).send().await.unwrap().status(), 200);

    let created = outcomes.iter().filter(|o| o.status == 201).count();
    let unavailable: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == 503).collect();
    let slowest = outcomes.iter().map(|o| o.elapsed).max().unwrap();
    eprintln!("requests {}, created {created}, 503 {}, slowest {slowest:?}", outcomes.len(), unavailable.len());
    assert!(outcomes.iter().all(|o| o.status == 201 || o.status == 503), "only 201 and 503 are acceptable");
    assert!(unavailable.iter().all(|o| o.retry_after), "every 503 carries Retry-After");
    assert!(!unavailable.is_empty(), "the outage was not noticed");
    assert!(outcomes.iter().any(|o| o.status == 201 && o.at < stopped_at), "nothing was created before the outage");
    assert!(outcomes.iter().any(|o| o.status == 201 && o.at > restarted_at), "nothing was created after the recovery");
    assert!(slowest < Duration::from_millis(1000 + 2000), "a request hung for {slowest:?}");
    let mut conn = PgConnection::establish(&url).unwrap();
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let stored: N = diesel::sql_query("SELECT count(*) AS n FROM orders").get_result(&mut conn).unwrap();
    assert_eq!(stored.n as usize, created, "acknowledged orders and stored orders differ");
    handle.stop(false).await;
    drop(pg);
    let _ = std::fs::remove_dir_all(dir);
}

/// Slow queries hold every pooled connection: health/live still answers at once, new requests
/// get a quick 503 instead of joining a queue that grows, and all is well once they end.
#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_pool_answers_503_quickly_and_health_stays_live() {
    let app = TestApp::spawn_with(|s| {
        s.settings.database_pool_size = 2;
        s.settings.database_timeout = Duration::from_millis(500);
        s.settings.database_statement_timeout = Duration::from_secs(2);
        s.server.http_workers = 1;
        s.server.blocking_threads = 3;
    })
    .await;
    let (_, token) = app.waiter().await;
    let (locked, locked_rx) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let url = app.db.url.clone();
    let holder = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            diesel::sql_query("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE").execute(conn)?;
            locked.send(()).unwrap();
            release_rx.recv().unwrap();
            Ok(())
        })
        .unwrap();
    });
    locked_rx.recv().unwrap();
    let started = Instant::now();
    let requests: Vec<_> = (0..12)
        .map(|i| {
            let request = app.post("/api/v1/orders", &token).json(&simple_order(&format!("Mesa {i}")));
            tokio::spawn(async move {
                let started = Instant::now();
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.headers().contains_key("retry-after"), started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let live_started = Instant::now();
    assert_eq!(app.client.get(app.url("/health/live")).send().await.unwrap().status(), 200);
    assert!(live_started.elapsed() < Duration::from_millis(300), "health/live waited behind the database");
    // A busy pool is not a dead database: readiness has a connection of its own.
    assert_eq!(app.client.get(app.url("/health/ready")).send().await.unwrap().status(), 200);
    let mut outcomes = Vec::new();
    for request in requests {
        outcomes.push(request.await.unwrap());
    }
    release.send(()).unwrap();
    holder.join().unwrap();
    eprintln!("{outcomes:?} in {:?}", started.elapsed());
    assert!(outcomes.iter().all(|(status, retry, _)| *status == 503 && *retry), "{outcomes:?}");
    let slowest = outcomes.iter().map(|o| o.2).max().unwrap();
    // At most: the statement timeout of the blocked ones, then the checkout timeout.
    assert!(slowest < Duration::from_millis(2000 + 500 + 1000), "a request waited {slowest:?}");
    assert_eq!(count(&app, "orders"), 0);
    let response = app.post("/api/v1/orders", &token).json(&simple_order("Después")).send().await.unwrap();
    assert_eq!(response.status(), 201);
}

/// A cluster whose server speaks Spanish (its own `lc_messages`, from a locale generated for the
/// test with `localedef`): the classification of failures does not read messages, so a statement
/// timeout is still a fast 503, not a 500.
#[tokio::test(flavor = "multi_thread")]
async fn a_statement_timeout_is_503_whatever_language_the_server_speaks() {
    let locales = std::env::temp_dir().join(format!("comanda-locales-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&locales).unwrap();
    let made = std::process::Command::new("localedef")
        .args(["-i", "es_ES", "-f", "UTF-8"])
        .arg(locales.join("es_ES.UTF-8"))
        .status()
        .expect("localedef (Debian's locales package) is needed: scripts/test.sh installs it");
    assert!(locales.join("es_ES.UTF-8").is_dir(), "localedef made no locale ({made})");
    let options = infrastructure::local_pg::LocalPgOptions {
        server_settings: vec![("lc_messages".into(), "es_ES.UTF-8".into())],
        environment: vec![("LOCPATH".into(), locales.to_string_lossy().into_owned())],
    };
    let (pg, url, dir) = test_support::own_cluster_with("spanish", &options);
    // The server really answers in Spanish.
    let mut probe = PgConnection::establish(&url).unwrap();
    let error = diesel::sql_query("SELECT 1 / 0").execute(&mut probe).unwrap_err().to_string();
    assert!(error.contains("división por cero"), "the server does not speak Spanish: {error}");

    let mut config = test_support::test_config();
    config.settings.database_statement_timeout = Duration::from_millis(300);
    let (port, handle) = test_support::serve(&config, &url);
    let base = format!("http://127.0.0.1:{port}");
    let argon2 = config.settings.argon2;
    test_support::create_user(&url, argon2, "espera@example.com", PASSWORD, domain::Role::Waiter);
    let client = reqwest::Client::new();
    let token = test_support::login(&client, &base, "espera@example.com", PASSWORD).await;
    let order: serde_json::Value = client
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&token)
        .json(&simple_order("Mesa lenta"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
    // Another session holds the order's row: cancelling it waits for the lock until the
    // statement timeout cancels the wait.
    diesel::connection::SimpleConnection::batch_execute(
        &mut probe,
        &format!("BEGIN; SELECT 1 FROM orders WHERE id = '{id}' FOR UPDATE"),
    )
    .unwrap();
    let started = Instant::now();
    let response = client.post(format!("{base}/api/v1/orders/{id}/cancel")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 503, "{}", response.text().await.unwrap());
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    diesel::connection::SimpleConnection::batch_execute(&mut probe, "ROLLBACK").unwrap();
    // With the lock gone, the same request succeeds: nothing was left half done.
    let response = client.post(format!("{base}/api/v1/orders/{id}/cancel")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    handle.stop(false).await;
    drop(probe);
    drop(pg);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(locales);
}
