//! Orders over HTTP: creation with the merge rule, validation, idempotency, reading, listing,
//! cancelling.

use std::collections::HashSet;

use diesel::prelude::*;
use serde_json::{Value, json};
use test_support::{TestApp, json_body};

pub fn order_body(customer: &str, items: &[(&str, Value, Value)]) -> Value {
    json!({
        "customer_name": customer,
        "items": items.iter().map(|(name, price, quantity)| json!({"product_name": name, "unit_price": price, "quantity": quantity})).collect::<Vec<_>>()
    })
}

pub fn simple_order(customer: &str) -> Value {
    order_body(customer, &[("Café con leche", json!("2.50"), json!(2)), ("Tostada", json!("3.00"), json!(1))])
}

pub async fn create(app: &TestApp, token: &str, body: &Value) -> Value {
    json_body(app.post("/api/v1/orders", token).json(body).send().await.unwrap(), 201).await
}

pub fn count(app: &TestApp, table: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db.conn();
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table}")).get_result::<Count>(&mut conn).unwrap().n
}

#[tokio::test]
async fn an_order_is_created_with_merged_lines_and_exact_money() {
    let app = TestApp::spawn().await;
    let (waiter, token) = app.waiter().await;
    let body = order_body(
        "  Mesa   4 ",
        &[
            ("Café  con leche", json!("2.50"), json!(1)),
            ("Tostada", json!(3), json!(2)),
            ("CAFÉ CON LECHE", json!(2.5), json!(2)),
            ("Agua", json!(0.1), json!(3)),
        ],
    );
    let mut with_waiter = body.clone();
    with_waiter["waiter_id"] = json!(uuid::Uuid::now_v7());
    let response = app.post("/api/v1/orders", &token).json(&with_waiter).send().await.unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(response.headers().get("idempotent-replayed").is_none());
    let order = json_body(response, 201).await;
    assert_eq!(location, format!("/api/v1/orders/{}", order["id"].as_str().unwrap()));
    assert_eq!(order["waiter_id"], waiter.id().to_string(), "the waiter comes from the token, never the body");
    assert_eq!(order["customer_name"], "Mesa 4");
    assert_eq!(order["status"], "open");
    assert_eq!(
        order["items"],
        json!([
            {"id": 1, "kind": "open", "menu_item_id": null, "category": null, "note": null,
             "product_name": "Café con leche", "unit_price": "2.50", "quantity": 3, "subtotal": "7.50",
             "kitchen_status": "new", "voided": null},
            {"id": 2, "kind": "open", "menu_item_id": null, "category": null, "note": null,
             "product_name": "Tostada", "unit_price": "3.00", "quantity": 2, "subtotal": "6.00",
             "kitchen_status": "new", "voided": null},
            {"id": 3, "kind": "open", "menu_item_id": null, "category": null, "note": null,
             "product_name": "Agua", "unit_price": "0.10", "quantity": 3, "subtotal": "0.30",
             "kitchen_status": "new", "voided": null},
        ])
    );
    assert_eq!(order["total_price"], "13.80");
    assert_eq!(order["amount_paid"], "0.00");
    assert_eq!(order["balance_due"], "13.80");
    assert_eq!(order["created_at"], order["updated_at"]);
    assert!(order["created_at"].as_str().unwrap().ends_with('Z'));
    let read = json_body(app.get(&location, &token).send().await.unwrap(), 200).await;
    assert_eq!(read, order);
}

#[tokio::test]
async fn the_same_product_at_two_prices_is_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let body =
        order_body("Mesa 1", &[("Vino tinto", json!("3.50"), json!(1)), ("vino  TINTO", json!("4.00"), json!(1))]);
    let body = json_body(app.post("/api/v1/orders", &token).json(&body).send().await.unwrap(), 422).await;
    assert_eq!(
        body["errors"],
        json!([{"field": "items[1].unit_price", "message": "names the same product as items[0] at another unit price"}])
    );
    assert_eq!(count(&app, "orders"), 0);
    assert_eq!(count(&app, "order_items"), 0);
}

#[tokio::test]
async fn every_failing_field_is_listed_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let body = json!({
        "customer_name": "",
        "items": [
            {"product_name": "Pan", "unit_price": "1.005", "quantity": 1},
            {"product_name": "", "unit_price": "1.00", "quantity": 0},
            {"product_name": "Vino", "unit_price": "1000000.01", "quantity": 10001},
            {"product_name": "Agua", "unit_price": -1, "quantity": 1.5},
            {"product_name": "Café\u{0}", "unit_price": "abc", "quantity": "2"},
            {"product_name": "x".repeat(121), "unit_price": 0, "quantity": 99999999999999999999u128},
            {}
        ]
    });
    let response = app
        .post("/api/v1/orders", &token)
        .header("idempotency-key", "bad key with spaces")
        .json(&body)
        .send()
        .await
        .unwrap();
    let body = json_body(response, 422).await;
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "customer_name",
            "items[0].unit_price",
            "items[1].product_name",
            "items[1].quantity",
            "items[2].unit_price",
            "items[2].quantity",
            "items[3].unit_price",
            "items[3].quantity",
            "items[4].product_name",
            "items[4].unit_price",
            "items[4].quantity",
            "items[5].product_name",
            "items[5].unit_price",
            "items[5].quantity",
            "items[6].product_name",
            "items[6].unit_price",
            "items[6].quantity",
            "Idempotency-Key",
        ]
    );
    assert_eq!(body["errors"][1]["message"], "must have at most two decimal places");
    assert_eq!(count(&app, "orders"), 0);
    for bad in [json!({"customer_name": "M", "items": []}), json!({"customer_name": "M"})] {
        let body = json_body(app.post("/api/v1/orders", &token).json(&bad).send().await.unwrap(), 422).await;
        assert_eq!(body["errors"][0]["field"], "items");
    }
    let many: Vec<(String, Value, Value)> = (0..101).map(|i| (format!("p{i}"), json!("1.00"), json!(1))).collect();
    let many: Vec<(&str, Value, Value)> = many.iter().map(|(n, p, q)| (n.as_str(), p.clone(), q.clone())).collect();
    let body =
        json_body(app.post("/api/v1/orders", &token).json(&order_body("M", &many)).send().await.unwrap(), 422).await;
    assert_eq!(body["errors"][0]["message"], "must have 1 to 100 lines");
    assert_eq!(count(&app, "orders"), 0);
}

#[tokio::test]
async fn wrong_json_types_are_400() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    for bad in [json!({"customer_name": 5, "items": []}), json!({"customer_name": "M", "items": {}}), json!([1, 2])] {
        let response = app.post("/api/v1/orders", &token).json(&bad).send().await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
    let duplicate = r#"{"customer_name": "A", "customer_name": "B", "items": []}"#;
    let response = app
        .post("/api/v1/orders", &token)
        .header("content-type", "application/json")
        .body(duplicate)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn an_idempotent_retry_returns_the_first_answer_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let body = simple_order("Mesa 9");
    let send = |body: Value, key: &'static str| {
        app.post("/api/v1/orders", &token).header("Idempotency-Key", key).json(&body).send()
    };
    let first = json_body(send(body.clone(), "key-1").await.unwrap(), 201).await;
    let retry = send(body.clone(), "key-1").await.unwrap();
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["location"], format!("/api/v1/orders/{}", first["id"].as_str().unwrap()).as_str());
    assert_eq!(json_body(retry, 201).await, first);
    // The same body spelled differently is the same request.
    let respelled = order_body("Mesa 9", &[("Café con leche", json!(2.5), json!(2)), ("Tostada", json!(3), json!(1))]);
    assert_eq!(json_body(send(respelled, "key-1").await.unwrap(), 201).await, first);
    assert_eq!(count(&app, "orders"), 1);
    // Another body with the same key is a conflict.
    let conflict = json_body(send(simple_order("Mesa 10"), "key-1").await.unwrap(), 409).await;
    assert!(conflict["detail"].as_str().unwrap().contains("idempotency key"));
    // After a cancel, the retry still answers the order as it was placed.
    let id = first["id"].as_str().unwrap();
    json_body(app.post(&format!("/api/v1/orders/{id}/cancel"), &token).send().await.unwrap(), 200).await;
    assert_eq!(json_body(send(body.clone(), "key-1").await.unwrap(), 201).await, first);
    // Keys belong to their user: another waiter's same key is a new order.
    let (_, other) = app.waiter().await;
    let theirs =
        app.post("/api/v1/orders", &other).header("Idempotency-Key", "key-1").json(&body).send().await.unwrap();
    let theirs = json_body(theirs, 201).await;
    assert_ne!(theirs["id"], first["id"]);
    assert_eq!(count(&app, "orders"), 2);
    assert_eq!(count(&app, "idempotency_keys"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_retries_with_one_key_create_exactly_one_order() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let body = simple_order("Mesa 3");
    let requests: Vec<_> = (0..20)
        .map(|_| app.post("/api/v1/orders", &token).header("Idempotency-Key", "same-key").json(&body).send())
        .collect();
    let responses = futures_util::future::join_all(requests).await;
    let mut ids = HashSet::new();
    for response in responses {
        let response = response.unwrap();
        let status = response.status().as_u16();
        assert!(status == 201 || status == 409, "unexpected {status}");
        if status == 201 {
            let order: Value = response.json().await.unwrap();
            ids.insert(order["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(ids.len(), 1, "every 201 names the same order");
    assert_eq!(count(&app, "orders"), 1);
    assert_eq!(count(&app, "order_items"), 2);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    for path in [
        format!("/api/v1/orders/{}", uuid::Uuid::now_v7()),
        "/api/v1/orders/123".to_owned(),
        "/api/v1/orders/%00".to_owned(),
    ] {
        let body = json_body(app.get(&path, &token).send().await.unwrap(), 404).await;
        assert_eq!(body["type"], "/problems/not-found");
    }
}

#[tokio::test]
async fn cancel_rules_and_roles() {
    let app = TestApp::spawn().await;
    let (_, waiter) = app.waiter().await;
    let (_, other) = app.waiter().await;
    let (_, admin) = app.admin().await;
    let cancel = |id: &str, token: &str| app.post(&format!("/api/v1/orders/{id}/cancel"), token).send();
    let order = create(&app, &waiter, &simple_order("Mesa 1")).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(cancel(id, &other).await.unwrap().status(), 403, "another waiter may not cancel");
    let cancelled = json_body(cancel(id, &waiter).await.unwrap(), 200).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_ne!(cancelled["updated_at"], order["updated_at"]);
    let again = json_body(cancel(id, &waiter).await.unwrap(), 409).await;
    assert_eq!(again["detail"], "only open orders can be cancelled; this order is cancelled");
    // An admin may cancel anyone's open order.
    let second = create(&app, &waiter, &simple_order("Mesa 2")).await;
    let cancelled = json_body(cancel(second["id"].as_str().unwrap(), &admin).await.unwrap(), 200).await;
    assert_eq!(cancelled["status"], "cancelled");
    // Paid or partly paid orders cannot be cancelled.
    let third = create(&app, &waiter, &simple_order("Mesa 3")).await;
    let third_id = third["id"].as_str().unwrap();
    let payment = app
        .post(&format!("/api/v1/orders/{third_id}/payments"), &waiter)
        .json(&json!({"amount": "1.00", "method": "cash"}));
    json_body(payment.send().await.unwrap(), 201).await;
    let body = json_body(cancel(third_id, &admin).await.unwrap(), 409).await;
    assert!(body["detail"].as_str().unwrap().contains("partially_paid"));
    assert_eq!(cancel(&uuid::Uuid::now_v7().to_string(), &admin).await.unwrap().status(), 404);
}

pub async fn walk(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if query.is_empty() { "?" } else { "&" };
        let path = match &cursor {
            Some(c) => format!("/api/v1/orders{query}{sep}cursor={c}"),
            None => format!("/api/v1/orders{query}"),
        };
        let page = json_body(app.get(&path, token).send().await.unwrap(), 200).await;
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match &page["next_cursor"] {
            Value::String(c) => cursor = Some(c.clone()),
            _ => return all,
        }
    }
}

/// Walking the pages sees every order that existed at the start exactly once, newest first,
/// while other orders are being created meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn pagination_walks_every_order_once_while_orders_are_created() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let mut existing = HashSet::new();
    for i in 0..23 {
        let order = create(&app, &token, &simple_order(&format!("Mesa {i}"))).await;
        existing.insert(order["id"].as_str().unwrap().to_owned());
    }
    let writer = {
        let client = app.client.clone();
        let url = app.url("/api/v1/orders");
        let token = token.clone();
        tokio::spawn(async move {
            for i in 0..30 {
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&simple_order(&format!("Nueva {i}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
            }
        })
    };
    let seen = walk(&app, &token, "?limit=4").await;
    writer.await.unwrap();
    let ids: Vec<String> = seen.iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "an order was seen twice");
    for id in &existing {
        assert!(ids.contains(id), "order {id} was skipped");
    }
    let keys: Vec<(String, String)> = seen
        .iter()
        .map(|o| (o["created_at"].as_str().unwrap().to_owned(), o["id"].as_str().unwrap().to_owned()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted, "newest first");
}

#[tokio::test]
async fn list_filters() {
    let app = TestApp::spawn().await;
    let (ana, ana_token) = app.waiter().await;
    let (_, bob_token) = app.waiter().await;
    let a1 = create(&app, &ana_token, &simple_order("A1")).await;
    let b1 = create(&app, &bob_token, &simple_order("B1")).await;
    let a2 = create(&app, &ana_token, &simple_order("A2")).await;
    json_body(
        app.post(&format!("/api/v1/orders/{}/cancel", a2["id"].as_str().unwrap()), &ana_token).send().await.unwrap(),
        200,
    )
    .await;
    let ids =
        |orders: Vec<Value>| orders.iter().map(|o| o["customer_name"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(ids(walk(&app, &bob_token, "").await), ["A2", "B1", "A1"]);
    assert_eq!(ids(walk(&app, &bob_token, &format!("?waiter_id={}", ana.id())).await), ["A2", "A1"]);
    assert_eq!(ids(walk(&app, &bob_token, "?status=cancelled").await), ["A2"]);
    assert_eq!(ids(walk(&app, &bob_token, "?status=open").await), ["B1", "A1"]);
    let from = b1["created_at"].as_str().unwrap().replace('+', "%2B");
    assert_eq!(ids(walk(&app, &bob_token, &format!("?created_from={from}")).await), ["A2", "B1"]);
    assert_eq!(ids(walk(&app, &bob_token, &format!("?created_to={from}")).await), ["B1", "A1"]);
    assert_eq!(
        ids(walk(&app, &bob_token, &format!("?created_from={from}&created_to={from}&status=open")).await),
        ["B1"]
    );
    let _ = a1;
}
