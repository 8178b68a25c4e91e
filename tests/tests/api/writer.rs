//! The batching order writer: orders that arrive together are written in one statement, and
//! none is lost, duplicated, mixed with another, or refused because of a neighbour.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};
use test_support::{TestApp, json_body};

use application::{Fingerprint, IdempotencyClaim, IdempotencyKey, OrderWriter, SnapshotVersions, WriteOutcome};
use domain::{
    CustomerName, Location, Money, NewOrder, NewOrderLine, Order, OrderId, ProductName, Quantity, Role, UserId,
};
use infrastructure::{Database, PgOrderWriter, PoolSettings};

use crate::orders::count;

fn order(id: OrderId, waiter: UserId, at: &Location, customer: &str, lines: &[(&str, &str, i64)]) -> Arc<Order> {
    Arc::new(placed(id, waiter, at, customer, Utc::now(), lines))
}

/// A domain order placed at `location` at `at`, with lines of (product name, unit price,
/// quantity).
pub(crate) fn placed(
    id: OrderId,
    waiter: UserId,
    location: &Location,
    customer: &str,
    at: DateTime<Utc>,
    lines: &[(&str, &str, i64)],
) -> Order {
    let lines = lines
        .iter()
        .map(|(name, price, quantity)| NewOrderLine {
            product_name: ProductName::parse(name).unwrap(),
            unit_price: Money::parse_positive(price, Money::MAX_UNIT_PRICE).unwrap(),
            quantity: Quantity::new(*quantity).unwrap(),
            note: None,
            menu: None,
        })
        .collect();
    let new = NewOrder { customer_name: CustomerName::parse(customer).unwrap(), lines };
    Order::place(id, waiter, location, new, at).unwrap()
}

fn claim(user: UserId, key: &str, resource: OrderId) -> IdempotencyClaim {
    IdempotencyClaim {
        user_id: user,
        key: IdempotencyKey::parse(key).unwrap(),
        fingerprint: Fingerprint::of([key]),
        resource_id: resource.0,
    }
}

/// One writer thread, many orders queued at once: they go in few statements, each order gets
/// its own outcome, and a bad neighbour does not take the others down.
#[tokio::test]
async fn each_order_of_a_batch_gets_its_own_outcome() {
    let app = TestApp::spawn().await;
    let waiter = app.create_user("batch@example.com", Role::Waiter).id();
    let db = Database::new(
        &app.db.url,
        PoolSettings {
            max_size: 2,
            checkout_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        },
    );
    let writer = PgOrderWriter::new(db, 1, Duration::from_secs(30));
    let here = app.main_location();
    let version = app.directory_version();
    let menu_version = app.menu_version();
    let current = |directory| SnapshotVersions { directory, menu: None };

    // Orders queued together go in fewer statements than orders.
    let warm: Vec<_> = (0..30)
        .map(|i| {
            let placed =
                order(OrderId(uuid::Uuid::now_v7()), waiter, &here, &format!("Lote {i}"), &[("Pan", "1.00", 1)]);
            writer.write(placed, None, current(version))
        })
        .collect();
    for outcome in futures_util::future::join_all(warm).await {
        assert_eq!(outcome.unwrap(), WriteOutcome::Written);
    }
    let stats = writer.stats();
    assert!(stats.statements < stats.orders, "the orders were not batched: {stats:?}");

    // An order already in the database, whose id a later order reuses: that order breaks its
    // statement, and the writer must then write the others one by one.
    let existing_id = OrderId(uuid::Uuid::now_v7());
    assert_eq!(
        writer
            .write(order(existing_id, waiter, &here, "Antes", &[("Pan", "1.00", 1)]), None, current(version))
            .await
            .unwrap(),
        WriteOutcome::Written
    );

    /// What the test expects of each order: its outcome, and for a used key the first order.
    #[derive(Debug, PartialEq, Eq)]
    enum Want {
        Written,
        KeyUsedBy(OrderId),
        Stale { directory: bool, menu: bool },
    }
    let tag = |outcome: &WriteOutcome| match outcome {
        WriteOutcome::Written => Want::Written,
        WriteOutcome::KeyUsed { first, .. } => Want::KeyUsedBy(first.as_ref().map(|o| o.id()).unwrap()),
        WriteOutcome::Stale { directory, menu } => Want::Stale { directory: *directory, menu: *menu },
    };

    let mut expected: Vec<(OrderId, Result<Want, ()>)> = Vec::new();
    let mut first_with_key = None;
    let mut pending = Vec::new();
    for i in 0..40 {
        let id = OrderId(uuid::Uuid::now_v7());
        let lines: Vec<(String, &str, i64)> =
            (0..=(i % 5)).map(|l| (format!("Producto {i}-{l}"), "2.50", l + 1)).collect();
        let refs: Vec<(&str, &str, i64)> = lines.iter().map(|(n, p, q)| (n.as_str(), *p, *q)).collect();
        let (claimed, directory, outcome) = match i {
            // Two orders with one key: the first is written, the second finds the key used.
            7 => {
                first_with_key = Some(id);
                (Some(claim(waiter, "same-key", id)), current(version), Ok(Want::Written))
            }
            8 => (Some(claim(waiter, "same-key", id)), current(version), Ok(Want::KeyUsedBy(first_with_key.unwrap()))),
            // Placed with a staff directory that is no longer storage's.
            13 => (None, current(version - 1), Ok(Want::Stale { directory: true, menu: false })),
            // Priced from a menu that is no longer storage's.
            17 => (
                None,
                SnapshotVersions { directory: version, menu: Some(menu_version - 1) },
                Ok(Want::Stale { directory: false, menu: true }),
            ),
            // Priced from the current menu.
            18 => (None, SnapshotVersions { directory: version, menu: Some(menu_version) }, Ok(Want::Written)),
            _ => ((i % 3 == 0).then(|| claim(waiter, &format!("key-{i}"), id)), current(version), Ok(Want::Written)),
        };
        let placed = order(id, waiter, &here, &format!("Cliente {i}"), &refs);
        expected.push((id, outcome));
        pending.push(writer.write(placed, claimed, directory));
        if i == 20 {
            // The order reusing an existing id: refused, alone.
            let clash = order(existing_id, waiter, &here, "Choque", &[("Pan", "1.00", 1)]);
            expected.push((existing_id, Err(())));
            pending.push(writer.write(clash, None, current(version)));
        }
    }
    let outcomes = futures_util::future::join_all(pending).await;
    for ((id, want), got) in expected.iter().zip(outcomes) {
        match want {
            Ok(want) => assert_eq!(got.as_ref().ok().map(tag).as_ref(), Some(want), "order {id}: {got:?}"),
            Err(()) => assert!(got.is_err(), "the clashing order was accepted"),
        }
    }
    // The database holds exactly the inserted ones, each with its own lines.
    assert_eq!(
        count(&app, "orders") as usize,
        30 + 1 + expected.iter().filter(|(_, o)| *o == Ok(Want::Written)).count()
    );
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text)]
        customer_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        product_name: String,
    }
    let mut conn = app.db.conn();
    let lines: Vec<Line> = diesel::sql_query(
        "SELECT o.customer_name, i.product_name FROM orders o JOIN order_items i ON i.order_id = o.id",
    )
    .load(&mut conn)
    .unwrap();
    for line in lines.iter().filter(|l| l.customer_name.starts_with("Cliente ")) {
        let n = line.customer_name.strip_prefix("Cliente ").unwrap();
        assert!(
            line.product_name.starts_with(&format!("Producto {n}-")),
            "order {n} holds a line of another: {}",
            line.product_name
        );
    }
}

/// Many clients at once through HTTP: every acknowledged order is there once, with exactly the
/// lines its client sent, under its client's waiter.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_orders_are_neither_lost_duplicated_nor_mixed() {
    let app = TestApp::spawn_with(|s| s.settings.order_writers = 2).await;
    let mut waiters = Vec::new();
    for _ in 0..4 {
        waiters.push(app.waiter().await);
    }
    let mut tasks = Vec::new();
    for c in 0..16 {
        let (waiter, token) = waiters[c % waiters.len()].clone();
        let client = app.client.clone();
        let url = app.url("/api/v1/orders");
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for i in 0..25 {
                let lines: Vec<Value> = (0..1 + (c + i) % 6)
                    .map(|l| json!({"product_name": format!("C{c}-O{i}-L{l}"), "unit_price": format!("{}.{:02}", 1 + l, c), "quantity": 1 + i % 3}))
                    .collect();
                let body = json!({"customer_name": format!("Cliente {c}-{i}"), "items": lines});
                let mut request = client.post(&url).bearer_auth(&token).json(&body);
                if i % 2 == 0 {
                    request = request.header("Idempotency-Key", format!("client-{c}-order-{i}"));
                }
                let response = request.send().await.unwrap();
                let order = json_body(response, 201).await;
                assert_eq!(order["waiter_id"], waiter.id().to_string());
                sent.push((order["id"].as_str().unwrap().to_owned(), body));
            }
            sent
        }));
    }
    let mut acknowledged: HashMap<String, Value> = HashMap::new();
    for task in tasks {
        for (id, body) in task.await.unwrap() {
            assert!(acknowledged.insert(id, body).is_none(), "two requests got the same order id");
        }
    }
    assert_eq!(acknowledged.len(), 16 * 25);
    assert_eq!(count(&app, "orders") as usize, acknowledged.len(), "an order was lost or written twice");
    let (_, token) = &waiters[0];
    for (id, body) in &acknowledged {
        let read = json_body(app.get(&format!("/api/v1/orders/{id}"), token).send().await.unwrap(), 200).await;
        assert_eq!(read["customer_name"], body["customer_name"]);
        let names: Vec<&str> =
            read["items"].as_array().unwrap().iter().map(|i| i["product_name"].as_str().unwrap()).collect();
        let sent: Vec<&str> =
            body["items"].as_array().unwrap().iter().map(|i| i["product_name"].as_str().unwrap()).collect();
        assert_eq!(names, sent, "order {id} does not hold the lines its client sent");
    }
}

/// A product name whose lower-case form is longer than the name (U+0130) is still an order.
#[tokio::test]
async fn names_that_grow_when_lower_cased_are_accepted() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let name = "İ".repeat(120);
    let body = json!({"customer_name": "Mesa", "items": [{"product_name": name, "unit_price": "1.00", "quantity": 1}]});
    let order = json_body(app.post("/api/v1/orders", &token).json(&body).send().await.unwrap(), 201).await;
    assert_eq!(order["items"][0]["product_name"], name.as_str());
}
