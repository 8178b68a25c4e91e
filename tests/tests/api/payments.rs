//! Payments: the status machine over HTTP, and concurrency that never loses or invents money.

use std::collections::HashSet;
use std::time::Duration;

use diesel::prelude::*;
use serde_json::{Value, json};
use test_support::{TestApp, json_body};

use crate::orders::{count, create, order_body};

async fn ten_euro_order(app: &TestApp, token: &str) -> String {
    let order = create(app, token, &order_body("Mesa 4", &[("Menú del día", json!("10.00"), json!(1))])).await;
    order["id"].as_str().unwrap().to_owned()
}

fn pay(app: &TestApp, token: &str, id: &str, amount: Value, method: &str) -> reqwest::RequestBuilder {
    app.post(&format!("/api/v1/orders/{id}/payments"), token).json(&json!({"amount": amount, "method": method}))
}

#[tokio::test]
async fn partial_payments_lead_to_paid_and_agree_with_the_list() {
    let app = TestApp::spawn().await;
    let (waiter, token) = app.waiter().await;
    let id = ten_euro_order(&app, &token).await;
    let response = pay(&app, &token, &id, json!("4.00"), "cash").send().await.unwrap();
    assert_eq!(response.headers()["location"], format!("/api/v1/orders/{id}/payments").as_str());
    let first = json_body(response, 201).await;
    assert_eq!(first["order_id"], id.as_str());
    assert_eq!(first["amount"], "4.00");
    assert_eq!(first["method"], "cash");
    assert_eq!(first["recorded_by"], waiter.id().to_string());
    let order = json_body(app.get(&format!("/api/v1/orders/{id}"), &token).send().await.unwrap(), 200).await;
    assert_eq!(
        (order["status"].as_str(), order["amount_paid"].as_str(), order["balance_due"].as_str()),
        (Some("partially_paid"), Some("4.00"), Some("6.00"))
    );
    json_body(pay(&app, &token, &id, json!(5.5), "card").send().await.unwrap(), 201).await;
    json_body(pay(&app, &token, &id, json!("0.50"), "other").send().await.unwrap(), 201).await;
    let order = json_body(app.get(&format!("/api/v1/orders/{id}"), &token).send().await.unwrap(), 200).await;
    assert_eq!(
        (order["status"].as_str(), order["amount_paid"].as_str(), order["balance_due"].as_str()),
        (Some("paid"), Some("10.00"), Some("0.00"))
    );
    let payments =
        json_body(app.get(&format!("/api/v1/orders/{id}/payments"), &token).send().await.unwrap(), 200).await;
    let amounts: Vec<&str> = payments.as_array().unwrap().iter().map(|p| p["amount"].as_str().unwrap()).collect();
    assert_eq!(amounts, ["4.00", "5.50", "0.50"], "oldest first");
    assert_eq!(payments[0], first);
}

#[tokio::test]
async fn overpaying_and_paying_closed_orders_are_409() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let id = ten_euro_order(&app, &token).await;
    let body = json_body(pay(&app, &token, &id, json!("10.01"), "cash").send().await.unwrap(), 409).await;
    assert_eq!(body["detail"], "the payment of 10.01 is above the balance due of 10.00");
    json_body(pay(&app, &token, &id, json!("10.00"), "cash").send().await.unwrap(), 201).await;
    let body = json_body(pay(&app, &token, &id, json!("0.01"), "cash").send().await.unwrap(), 409).await;
    assert_eq!(body["detail"], "the order is already paid");
    let cancelled = ten_euro_order(&app, &token).await;
    json_body(app.post(&format!("/api/v1/orders/{cancelled}/cancel"), &token).send().await.unwrap(), 200).await;
    let body = json_body(pay(&app, &token, &cancelled, json!("1.00"), "cash").send().await.unwrap(), 409).await;
    assert_eq!(body["detail"], "the order is cancelled and takes no payments");
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(pay(&app, &token, &unknown, json!("1.00"), "cash").send().await.unwrap().status(), 404);
    assert_eq!(count(&app, "payments"), 1);
}

#[tokio::test]
async fn bad_methods_and_amounts_are_422() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let id = ten_euro_order(&app, &token).await;
    for (amount, method, fields) in [
        (json!("1.00"), "bitcoin", vec!["method"]),
        (json!("0"), "cash", vec!["amount"]),
        (json!(-5), "cash", vec!["amount"]),
        (json!("1.001"), "cash", vec!["amount"]),
        (json!("ten"), "CASH", vec!["amount", "method"]),
        (json!(null), "cash", vec!["amount"]),
        (json!(1e30), "cash", vec!["amount"]),
    ] {
        let body = json_body(pay(&app, &token, &id, amount.clone(), method).send().await.unwrap(), 422).await;
        let got: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(got, fields, "{amount} {method}");
    }
    assert_eq!(count(&app, "payments"), 0);
}

/// Thirty terminals pay 1.00 at once on a 10.00 order: exactly ten are accepted.
#[tokio::test(flavor = "multi_thread")]
async fn thirty_concurrent_payments_accept_exactly_the_total() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let id = ten_euro_order(&app, &token).await;
    let requests: Vec<_> = (0..30).map(|_| pay(&app, &token, &id, json!("1.00"), "card").send()).collect();
    let mut created = 0;
    let mut refused = 0;
    for response in futures_util::future::join_all(requests).await {
        match response.unwrap().status().as_u16() {
            201 => created += 1,
            409 => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created, refused), (10, 20));
    let order = json_body(app.get(&format!("/api/v1/orders/{id}"), &token).send().await.unwrap(), 200).await;
    assert_eq!((order["status"].as_str(), order["amount_paid"].as_str()), (Some("paid"), Some("10.00")));
    assert_eq!(count(&app, "payments"), 10);
}

/// Cancel and payment race on many orders: on each, exactly one wins and the other is a 409.
#[tokio::test(flavor = "multi_thread")]
async fn cancel_racing_a_payment_has_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    for _ in 0..15 {
        let id = ten_euro_order(&app, &token).await;
        let cancel = app.post(&format!("/api/v1/orders/{id}/cancel"), &token).send();
        let payment = pay(&app, &token, &id, json!("3.00"), "cash").send();
        let (cancel, payment) = tokio::join!(cancel, payment);
        let (cancel, payment) = (cancel.unwrap(), payment.unwrap());
        let order = json_body(app.get(&format!("/api/v1/orders/{id}"), &token).send().await.unwrap(), 200).await;
        match (cancel.status().as_u16(), payment.status().as_u16()) {
            (200, 409) => {
                assert_eq!(order["status"], "cancelled");
                let body: Value = payment.json().await.unwrap();
                assert_eq!(body["detail"], "the order is cancelled and takes no payments");
            }
            (409, 201) => {
                assert_eq!(order["status"], "partially_paid");
                let body: Value = cancel.json().await.unwrap();
                assert!(body["detail"].as_str().unwrap().contains("only open orders can be cancelled"));
            }
            other => panic!("both or neither won: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_payment_retries_record_one_payment() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let id = ten_euro_order(&app, &token).await;
    let first = json_body(
        pay(&app, &token, &id, json!("2.00"), "cash").header("Idempotency-Key", "pay-1").send().await.unwrap(),
        201,
    )
    .await;
    let retry = pay(&app, &token, &id, json!(2), "cash").header("Idempotency-Key", "pay-1").send().await.unwrap();
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(json_body(retry, 201).await, first);
    let other = pay(&app, &token, &id, json!("3.00"), "cash").header("Idempotency-Key", "pay-1").send().await.unwrap();
    assert_eq!(other.status(), 409);
    // Concurrent retries of another payment.
    let requests: Vec<_> = (0..15)
        .map(|_| pay(&app, &token, &id, json!("1.00"), "card").header("Idempotency-Key", "pay-2").send())
        .collect();
    let mut ids = HashSet::new();
    for response in futures_util::future::join_all(requests).await {
        let response = response.unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        ids.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(count(&app, "payments"), 2);
    let order = json_body(app.get(&format!("/api/v1/orders/{id}"), &token).send().await.unwrap(), 200).await;
    assert_eq!(order["amount_paid"], "3.00");
}

/// The lock is per order: while a transaction holds one order's row lock, a payment on another
/// order goes through, and a payment on the locked order waits for the lock.
#[tokio::test(flavor = "multi_thread")]
async fn payments_lock_only_their_own_order() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let locked = ten_euro_order(&app, &token).await;
    let free = ten_euro_order(&app, &token).await;
    let (lock_taken, lock_taken_rx) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let url = app.db.url.clone();
    let locked_id = uuid::Uuid::parse_str(&locked).unwrap();
    let holder = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            diesel::sql_query("SELECT id FROM orders WHERE id = $1 FOR UPDATE")
                .bind::<diesel::sql_types::Uuid, _>(locked_id)
                .execute(conn)?;
            lock_taken.send(()).unwrap();
            release_rx.recv().unwrap();
            Ok(())
        })
        .unwrap();
    });
    lock_taken_rx.recv().unwrap();

    let other =
        tokio::time::timeout(Duration::from_secs(10), pay(&app, &token, &free, json!("1.00"), "cash").send()).await;
    assert_eq!(other.expect("a payment on another order waited for the lock").unwrap().status(), 201);

    let blocked = tokio::spawn(pay(&app, &token, &locked, json!("1.00"), "cash").send());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!blocked.is_finished(), "a payment on the locked order did not wait for the lock");
    release.send(()).unwrap();
    holder.join().unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), blocked).await.unwrap().unwrap().unwrap();
    assert_eq!(response.status(), 201);
}
