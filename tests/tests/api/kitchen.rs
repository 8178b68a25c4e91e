//! Open orders and the kitchen: lines added and voided over the meal, versions and If-Match,
//! tickets numbered per location and business day, their status machine, and the live stream
//! (resumed by id, and across two servers on one database).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{Value, json};
use test_support::{TestApp, json_body, serve, test_config};

use domain::{LocationId, Role};

fn line(name: &str, price: &str, quantity: u32) -> Value {
    json!({"product_name": name, "unit_price": price, "quantity": quantity})
}

async fn place(app: &TestApp, token: &str, items: Value, send: bool) -> Value {
    let body = json!({"customer_name": "Mesa 9", "items": items, "send": send});
    json_body(app.post("/api/v1/orders", token).json(&body).send().await.unwrap(), 201).await
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

async fn add(app: &TestApp, token: &str, order: &str, body: Value) -> reqwest::Response {
    app.post(&format!("/api/v1/orders/{order}/items"), token).json(&body).send().await.unwrap()
}

async fn void(app: &TestApp, token: &str, order: &str, line: u64) -> reqwest::Response {
    let body = json!({"reason": "the guest changed their mind"});
    app.post(&format!("/api/v1/orders/{order}/items/{line}/void"), token).json(&body).send().await.unwrap()
}

async fn send(app: &TestApp, token: &str, order: &str) -> reqwest::Response {
    app.post(&format!("/api/v1/orders/{order}/send"), token).send().await.unwrap()
}

#[tokio::test]
async fn lines_are_added_and_voided_over_the_meal_under_versions() {
    let app = TestApp::spawn().await;
    let (_, waiter) = app.waiter().await;
    let (_, colleague) = app.waiter().await;
    let (_, manager) = app.user_with_token(Role::Manager).await;

    let created = app
        .post("/api/v1/orders", &waiter)
        .json(&json!({"customer_name": "Mesa 9", "items": [line("Agua", "1.50", 2)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.headers()["etag"], "\"1\"");
    let order = json_body(created, 201).await;
    let order_id = id(&order);
    assert_eq!((order["version"].as_u64(), order["items"][0]["id"].as_u64()), (Some(1), Some(1)));
    assert_eq!(order["items"][0]["kitchen_status"], "new");
    assert!(order["items"][0]["voided"].is_null());

    // Lines of one request merge among themselves, never with earlier ones.
    let body = json!({"items": [line("agua", "1.50", 1), line("Tacos", "8.00", 2), line("AGUA", "1.50", 1)]});
    let response = add(&app, &waiter, &order_id, body.clone()).await;
    assert_eq!(response.headers()["etag"], "\"2\"");
    let order = json_body(response, 200).await;
    let ids: Vec<u64> = order["items"].as_array().unwrap().iter().map(|l| l["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!((order["items"][1]["quantity"].as_u64(), order["total_price"].as_str()), (Some(2), Some("22.00")));

    // A stale If-Match: 412 with the current version, and nothing changes.
    let stale = app
        .post(&format!("/api/v1/orders/{order_id}/items"), &waiter)
        .header("If-Match", "\"1\"")
        .json(&json!({"items": [line("Pan", "1.00", 1)]}))
        .send()
        .await
        .unwrap();
    let problem = json_body(stale, 412).await;
    assert_eq!(problem["current_version"], 2);
    let current = app.get(&format!("/api/v1/orders/{order_id}"), &waiter).send().await.unwrap();
    assert_eq!(current.headers()["etag"], "\"2\"");
    let any = app
        .post(&format!("/api/v1/orders/{order_id}/items/3/void"), &waiter)
        .header("If-Match", "not-a-version")
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .unwrap();
    json_body(any, 412).await;
    let fresh = app
        .post(&format!("/api/v1/orders/{order_id}/items"), &waiter)
        .header("If-Match", "\"2\"")
        .json(&json!({"items": [line("Pan", "1.00", 1)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(fresh, 200).await["version"], 3);

    // A colleague may not change another waiter's order; a manager may.
    json_body(add(&app, &colleague, &order_id, json!({"items": [line("Pan", "1.00", 1)]})).await, 403).await;
    json_body(void(&app, &colleague, &order_id, 4).await, 403).await;

    // A new line is voided by its waiter: it stays, out of the total.
    let order = json_body(void(&app, &waiter, &order_id, 4).await, 200).await;
    assert_eq!(order["items"][3]["voided"]["reason"], "the guest changed their mind");
    assert_eq!(order["total_price"], "22.00");
    json_body(void(&app, &waiter, &order_id, 4).await, 409).await;
    json_body(void(&app, &waiter, &order_id, 9).await, 404).await;
    let empty = app.post(&format!("/api/v1/orders/{order_id}/items/1/void"), &waiter).json(&json!({"reason": " "}));
    json_body(empty.send().await.unwrap(), 422).await;

    // Sent lines: only a manager (or an admin) voids them.
    let ticket = json_body(send(&app, &waiter, &order_id).await, 201).await;
    assert_eq!(ticket["number"], 1);
    assert_eq!(ticket["lines"].as_array().unwrap().len(), 3, "the voided line is not sent");
    json_body(send(&app, &waiter, &order_id).await, 409).await;
    json_body(void(&app, &waiter, &order_id, 1).await, 403).await;
    let order = json_body(void(&app, &manager, &order_id, 1).await, 200).await;
    assert_eq!(order["items"][0]["kitchen_status"], "sent");
    assert_eq!(order["total_price"], "19.00");
    let ticket =
        json_body(app.get(&format!("/api/v1/kitchen/tickets/{}", id(&ticket)), &waiter).send().await.unwrap(), 200)
            .await;
    assert!(ticket["lines"][0]["voided"].is_object(), "the void shows on the ticket");

    // All voided: 0.00, and the order takes new lines again.
    json_body(void(&app, &manager, &order_id, 2).await, 200).await;
    let order = json_body(void(&app, &manager, &order_id, 3).await, 200).await;
    assert_eq!((order["total_price"].as_str(), order["status"].as_str()), (Some("0.00"), Some("open")));
    let order = json_body(add(&app, &waiter, &order_id, json!({"items": [line("Café", "1.20", 1)]})).await, 200).await;
    assert_eq!(order["total_price"], "1.20");

    // Idempotent adds: a retry answers the order as it is and adds nothing; another body is a 409.
    let keyed = |body: Value| {
        app.post(&format!("/api/v1/orders/{order_id}/items"), &waiter).header("Idempotency-Key", "add-1").json(&body)
    };
    let first = json_body(keyed(json!({"items": [line("Flan", "3.00", 1)]})).send().await.unwrap(), 200).await;
    let retry = keyed(json!({"items": [line("Flan", "3.00", 1)]})).send().await.unwrap();
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(json_body(retry, 200).await["items"], first["items"]);
    json_body(keyed(json!({"items": [line("Flan", "4.00", 1)]})).send().await.unwrap(), 409).await;

    // Paid orders take no lines.
    let pay = json!({"amount": first["total_price"], "method": "cash"});
    let paid = app.post(&format!("/api/v1/orders/{order_id}/payments"), &waiter).header("If-Match", "\"1\"").json(&pay);
    json_body(paid.send().await.unwrap(), 412).await;
    json_body(app.post(&format!("/api/v1/orders/{order_id}/payments"), &waiter).json(&pay).send().await.unwrap(), 201)
        .await;
    let order = json_body(app.get(&format!("/api/v1/orders/{order_id}"), &waiter).send().await.unwrap(), 200).await;
    assert_eq!(order["status"], "paid");
    json_body(add(&app, &waiter, &order_id, json!({"items": [line("Pan", "1.00", 1)]})).await, 409).await;
}

#[tokio::test]
async fn an_order_keeps_at_most_100_live_lines() {
    let app = TestApp::spawn().await;
    let (_, waiter) = app.waiter().await;
    let items: Vec<Value> = (0..100).map(|i| line(&format!("Plato {i}"), "1.00", 1)).collect();
    let order = place(&app, &waiter, json!(items), false).await;
    let order_id = id(&order);
    json_body(add(&app, &waiter, &order_id, json!({"items": [line("Uno más", "1.00", 1)]})).await, 409).await;
    json_body(void(&app, &waiter, &order_id, 7).await, 200).await;
    let order =
        json_body(add(&app, &waiter, &order_id, json!({"items": [line("Uno más", "1.00", 1)]})).await, 200).await;
    assert_eq!(order["items"].as_array().unwrap().len(), 101, "the voided line stays");
    assert_eq!(order["total_price"], "100.00");
}

/// Two waiters (and more) adding to one table at once: every line lands (Odoo's 138664).
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_adds_lose_no_line() {
    let app = TestApp::spawn().await;
    let (_, waiter) = app.waiter().await;
    let (_, manager) = app.user_with_token(Role::Manager).await;
    let order_id = id(&place(&app, &waiter, json!([line("Agua", "1.00", 1)]), false).await);
    let adds = (0..24).map(|i| {
        let token = if i % 2 == 0 { &waiter } else { &manager };
        let body = json!({"items": [line(&format!("Plato {i}"), "2.00", 1)]});
        add(&app, token, &order_id, body)
    });
    for response in futures_util::future::join_all(adds).await {
        assert_eq!(response.status(), 200);
    }
    let order = json_body(app.get(&format!("/api/v1/orders/{order_id}"), &waiter).send().await.unwrap(), 200).await;
    let names: BTreeSet<&str> =
        order["items"].as_array().unwrap().iter().map(|l| l["product_name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 25, "every line landed");
    let ids: Vec<u64> = order["items"].as_array().unwrap().iter().map(|l| l["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=25).collect::<Vec<_>>());
    assert_eq!((order["version"].as_u64(), order["total_price"].as_str()), (Some(25), Some("49.00")));
}

/// A void and a payment racing on one order: whichever comes first, the total never drops below
/// what was paid, and exactly one of the two is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_void_racing_a_payment_never_leaves_the_total_below_what_was_paid() {
    let app = TestApp::spawn().await;
    let (_, waiter) = app.waiter().await;
    for _ in 0..8 {
        let order_id =
            id(&place(&app, &waiter, json!([line("Filete", "10.00", 1), line("Vino", "5.00", 1)]), false).await);
        let pay = app
            .post(&format!("/api/v1/orders/{order_id}/payments"), &waiter)
            .json(&json!({"amount": "12.00", "method": "card"}))
            .send();
        let (paid, voided) = tokio::join!(pay, void(&app, &waiter, &order_id, 1));
        let statuses = (paid.unwrap().status().as_u16(), voided.status().as_u16());
        assert!(statuses == (201, 409) || statuses == (409, 200), "{statuses:?}");
        let order = json_body(app.get(&format!("/api/v1/orders/{order_id}"), &waiter).send().await.unwrap(), 200).await;
        let total: f64 = order["total_price"].as_str().unwrap().parse().unwrap();
        let paid: f64 = order["amount_paid"].as_str().unwrap().parse().unwrap();
        assert!(paid <= total, "{order}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_are_numbered_per_location_and_day_without_gaps_under_concurrency() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let here = app.first_location(&admin).await;
    let there = app.create_location(&admin, "Terraza", "America/Mexico_City", "05:00").await;
    let (_, waiter) = app.staff_with_token(Role::Waiter, Some(vec![here, there])).await;
    let mut orders = Vec::new();
    for i in 0..30 {
        let location = if i % 3 == 0 { there } else { here };
        let body = json!({"customer_name": "Mesa", "location_id": location.0, "items": [line("Sopa", "4.00", 1)]});
        orders.push(json_body(app.post("/api/v1/orders", &waiter).json(&body).send().await.unwrap(), 201).await);
    }
    let sends = orders.iter().map(|o| send(&app, &waiter, o["id"].as_str().unwrap()));
    let mut numbers: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for response in futures_util::future::join_all(sends).await {
        let ticket = json_body(response, 201).await;
        numbers
            .entry(ticket["location_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(ticket["number"].as_u64().unwrap());
    }
    for (location, count) in [(here, 20u64), (there, 10)] {
        let mut got = numbers.remove(&location.0.to_string()).unwrap();
        got.sort_unstable();
        assert_eq!(got, (1..=count).collect::<Vec<_>>(), "numbers of {location}: no gap, no repeat");
    }
    // Placing with "send": the ticket comes with the order, the next number.
    let body =
        json!({"customer_name": "Mesa", "location_id": here.0, "items": [line("Tacos", "8.00", 2)], "send": true});
    let sent = json_body(app.post("/api/v1/orders", &waiter).json(&body).send().await.unwrap(), 201).await;
    assert_eq!((sent["version"].as_u64(), sent["items"][0]["kitchen_status"].as_str()), (Some(2), Some("sent")));
    let queue = json_body(
        app.get(&format!("/api/v1/kitchen/tickets?location_id={here}&status=open&limit=100"), &waiter)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let last = queue["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["number"].as_u64(), last["order_id"].as_str()), (Some(21), sent["id"].as_str()));
    assert_eq!(queue["items"].as_array().unwrap().len(), 21, "oldest first, every open ticket");
}

#[tokio::test]
async fn tickets_go_open_ready_served_and_their_lines_follow() {
    let app = TestApp::spawn().await;
    let (_, waiter) = app.waiter().await;
    let (_, kitchen) = app.user_with_token(Role::Kitchen).await;
    let order = place(&app, &waiter, json!([line("Tacos", "8.00", 2), line("Agua", "1.50", 1)]), false).await;
    let order_id = id(&order);
    let ticket = json_body(send(&app, &waiter, &order_id).await, 201).await;
    let ticket_path = format!("/api/v1/kitchen/tickets/{}", id(&ticket));
    assert_eq!((ticket["status"].as_str(), ticket["customer_name"].as_str()), (Some("open"), Some("Mesa 9")));

    json_body(app.post(&format!("{ticket_path}/served"), &waiter).send().await.unwrap(), 409).await;
    json_body(app.post(&format!("{ticket_path}/ready"), &waiter).send().await.unwrap(), 403).await;
    let ready = json_body(app.post(&format!("{ticket_path}/ready"), &kitchen).send().await.unwrap(), 200).await;
    assert!(ready["ready_at"].is_string());
    json_body(app.post(&format!("{ticket_path}/ready"), &kitchen).send().await.unwrap(), 409).await;
    let order = json_body(app.get(&format!("/api/v1/orders/{order_id}"), &waiter).send().await.unwrap(), 200).await;
    assert_eq!(order["items"][0]["kitchen_status"], "ready");
    json_body(app.post(&format!("{ticket_path}/served"), &kitchen).send().await.unwrap(), 403).await;
    json_body(app.post(&format!("{ticket_path}/served"), &waiter).send().await.unwrap(), 200).await;
    let order = json_body(app.get(&format!("/api/v1/orders/{order_id}"), &waiter).send().await.unwrap(), 200).await;
    assert_eq!(order["items"][1]["kitchen_status"], "served");
    // The kitchen reads tickets, not orders.
    json_body(app.get(&format!("/api/v1/orders/{order_id}"), &kitchen).send().await.unwrap(), 403).await;

    // Cancelling an order with lines at the kitchen voids them on their ticket.
    let order = place(&app, &waiter, json!([line("Sopa", "4.00", 1), line("Pan", "1.00", 1)]), true).await;
    let order_id = id(&order);
    json_body(add(&app, &waiter, &order_id, json!({"items": [line("Flan", "3.00", 1)]})).await, 200).await;
    let cancelled =
        json_body(app.post(&format!("/api/v1/orders/{order_id}/cancel"), &waiter).send().await.unwrap(), 200).await;
    assert_eq!(cancelled["items"][0]["voided"]["reason"], "order cancelled");
    assert!(cancelled["items"][2]["voided"].is_null(), "a line never sent is not the kitchen's");
    let tickets = json_body(app.get("/api/v1/kitchen/tickets?status=open", &kitchen).send().await.unwrap(), 200).await;
    let ticket = tickets["items"].as_array().unwrap().iter().find(|t| t["order_id"] == order["id"]).unwrap().clone();
    assert!(ticket["lines"].as_array().unwrap().iter().all(|l| l["voided"].is_object()));
}

/// One event of a stream.
#[derive(Debug, Clone)]
struct Event {
    id: i64,
    kind: String,
    data: Value,
}

/// A display: reads `count` events (or until `wait` passes without one) from the stream of
/// `location`, resuming after `last_id` when given.
async fn watch(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    location: LocationId,
    last_id: Option<i64>,
    count: usize,
    wait: Duration,
) -> (Vec<Event>, Option<i64>) {
    let mut request = client.get(format!("{base}/api/v1/kitchen/stream?location_id={location}")).bearer_auth(token);
    if let Some(id) = last_id {
        request = request.header("Last-Event-ID", id.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let (mut buffer, mut events, mut opening_id) = (String::new(), Vec::new(), None);
    while events.len() < count {
        let Ok(Some(chunk)) = tokio::time::timeout(wait, body.next()).await else { break };
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| frame.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned);
            match (field("id: "), field("event: "), field("data: ")) {
                (Some(id), Some(kind), Some(data)) => {
                    events.push(Event { id: id.parse().unwrap(), kind, data: serde_json::from_str(&data).unwrap() })
                }
                (Some(id), None, None) => opening_id = Some(id.parse().unwrap()),
                _ => {}
            }
        }
    }
    (events, opening_id)
}

/// Every event once, in order, across a reconnect: the display reads some, drops, and resumes
/// with `Last-Event-ID` while tickets keep coming.
#[tokio::test(flavor = "multi_thread")]
async fn the_stream_resumes_by_id_with_nothing_lost_or_twice() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let here = app.first_location(&admin).await;
    let (_, waiter) = app.waiter().await;
    let (_, kitchen) = app.user_with_token(Role::Kitchen).await;

    let display = {
        let (client, base, token) = (app.client.clone(), app.address.clone(), kitchen.clone());
        tokio::spawn(async move { watch(&client, &base, &token, here, None, 4, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut tickets = Vec::new();
    for _ in 0..4 {
        let order = place(&app, &waiter, json!([line("Sopa", "4.00", 1)]), true).await;
        tickets.push(order["id"].as_str().unwrap().to_owned());
    }
    let (first, opening) = display.await.unwrap();
    assert_eq!(opening, Some(0), "the stream opens with the id of the last event so far");
    assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(first.iter().all(|e| e.kind == "ticket.created"));
    assert_eq!(first[0].data["order_id"].as_str(), Some(tickets[0].as_str()));
    assert_eq!(first[0].data["lines"][0]["name"], "Sopa");

    // Offline: more tickets, a bump and a void of a sent line.
    let (_, manager) = app.user_with_token(Role::Manager).await;
    let more = place(&app, &waiter, json!([line("Flan", "3.00", 1), line("Café", "1.20", 1)]), true).await;
    let more_ticket =
        json_body(app.get("/api/v1/kitchen/tickets?status=open&limit=100", &kitchen).send().await.unwrap(), 200).await
            ["items"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
    json_body(app.post(&format!("/api/v1/kitchen/tickets/{more_ticket}/ready"), &kitchen).send().await.unwrap(), 200)
        .await;
    json_body(void(&app, &manager, more["id"].as_str().unwrap(), 2).await, 200).await;

    // Resumes after 4: 5 (created), 6 (ready), 7 (void), then live ones.
    let display = {
        let (client, base, token) = (app.client.clone(), app.address.clone(), kitchen.clone());
        tokio::spawn(async move { watch(&client, &base, &token, here, Some(4), 4, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    place(&app, &waiter, json!([line("Tacos", "8.00", 1)]), true).await;
    let (rest, _) = display.await.unwrap();
    assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), [5, 6, 7, 8], "nothing lost, nothing twice");
    assert_eq!(
        rest.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["ticket.created", "ticket.updated", "ticket.updated", "ticket.created"]
    );
    assert!(rest[2].data["lines"][1]["voided"].is_object(), "the void shows on the ticket");

    // Another location's displays see none of it; other locations' staff may not follow here.
    let there = app.create_location(&admin, "Otra", "UTC", "00:00").await;
    let (_, stranger) = app.staff_with_token(Role::Kitchen, Some(vec![there])).await;
    let refused = app.get(&format!("/api/v1/kitchen/stream?location_id={here}"), &stranger).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let garbled = app
        .get(&format!("/api/v1/kitchen/stream?location_id={here}"), &kitchen)
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    json_body(garbled, 400).await;
    let (_, there_kitchen) = app.staff_with_token(Role::Kitchen, Some(vec![there])).await;
    let (none, _) =
        watch(&app.client, &app.address, &there_kitchen, there, Some(0), 1, Duration::from_millis(500)).await;
    assert!(none.is_empty());
}

/// Two servers on one database (each with its own pool, feed and listening connection): a
/// display connected to one sees the tickets the other took, as they commit.
#[tokio::test(flavor = "multi_thread")]
async fn a_display_on_one_server_sees_the_tickets_of_another() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let here = app.first_location(&admin).await;
    let (_, waiter) = app.waiter().await;
    let (_, kitchen) = app.user_with_token(Role::Kitchen).await;
    let (other_port, other) = serve(&test_config(), &app.db.url);
    let other_base = format!("http://127.0.0.1:{other_port}");

    let display = {
        let (client, token) = (app.client.clone(), kitchen.clone());
        tokio::spawn(async move { watch(&client, &other_base, &token, here, None, 3, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started: DateTime<Utc> = Utc::now();
    for _ in 0..3 {
        place(&app, &waiter, json!([line("Sopa", "4.00", 1)]), true).await;
    }
    let (events, _) = display.await.unwrap();
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(Utc::now() - started < chrono::TimeDelta::seconds(5));
    other.stop(false).await;
}

async fn report(app: &TestApp, admin: &str) -> Value {
    let query = "/api/v1/orders/report?start_date=2026-10-01&end_date=2026-10-01";
    json_body(app.get(query, admin).send().await.unwrap(), 200).await
}

/// Lines added to an order after its period was aggregated count in the report, voided ones
/// do not, and a cancelled order takes its lines out.
#[tokio::test(flavor = "multi_thread")]
async fn the_report_counts_live_lines_whenever_they_change() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (waiter, token) = app.waiter().await;
    let placer = crate::report::Placer::new(&app);
    let day = DateTime::parse_from_rfc3339("2026-10-01T12:00:00Z").unwrap().with_timezone(&Utc);
    let order = placer.place(waiter.id(), day, &[("Sopa", "4.00", 2)]).await;
    let order_id = order.id().to_string();
    for pass in ["live", "rolled up"] {
        if pass == "rolled up" {
            crate::locations::roll_up(
                &app,
                DateTime::parse_from_rfc3339("2026-10-03T00:00:00Z").unwrap().with_timezone(&Utc),
            );
            // Changes after the aggregation.
            json_body(
                add(&app, &token, &order_id, json!({"items": [line("Sopa", "4.00", 1), line("Pan", "1.00", 3)]})).await,
                200,
            )
            .await;
            json_body(void(&app, &token, &order_id, 1).await, 200).await;
        }
        let got = report(&app, &admin).await;
        let expected = if pass == "live" { ("8.00", 2) } else { ("7.00", 4) };
        assert_eq!(
            (got["total_price"].as_str(), got["total_quantity"].as_i64()),
            (Some(expected.0), Some(expected.1)),
            "{pass}: {got}"
        );
    }
    json_body(app.post(&format!("/api/v1/orders/{order_id}/cancel"), &token).send().await.unwrap(), 200).await;
    let got = report(&app, &admin).await;
    assert_eq!((got["total_price"].as_str(), got["total_quantity"].as_i64()), (Some("0.00"), Some(0)));
}
