//! Placing an order costs one prepared statement, parsed and planned once per connection.

use std::sync::Arc;

use chrono::Utc;
use diesel::prelude::*;
use test_support::TestApp;

use application::{OrderWriter, SnapshotVersions, WriteOutcome};
use domain::{CustomerName, Money, NewOrder, NewOrderLine, Order, OrderId, ProductName, Quantity, Role};
use infrastructure::{Database, PgOrderWriter, PoolSettings};

#[derive(QueryableByName)]
struct Prepared {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn the_order_insert_is_prepared_once_and_reused_whatever_the_line_count() {
    let app = TestApp::spawn().await;
    let waiter = app.create_user("prepared@example.com", Role::Waiter);
    // One connection, so that every insert uses the same session.
    let db = Database::new(
        &app.db.url,
        PoolSettings {
            max_size: 1,
            checkout_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(30),
        },
    );
    let writer = PgOrderWriter::new(db.clone(), 1, std::time::Duration::from_secs(30));
    for lines in [1, 5, 20, 1, 7] {
        let new = NewOrder {
            customer_name: CustomerName::parse("Mesa").unwrap(),
            lines: (0..lines)
                .map(|i| NewOrderLine {
                    product_name: ProductName::parse(&format!("Producto {i}")).unwrap(),
                    unit_price: Money::parse_positive("1.25", Money::MAX_UNIT_PRICE).unwrap(),
                    quantity: Quantity::new(2).unwrap(),
                    note: None,
                    menu: None,
                })
                .collect(),
        };
        let order =
            Order::place(OrderId(uuid::Uuid::now_v7()), waiter.id(), &app.main_location(), new, Utc::now()).unwrap();
        let version = app.directory_version();
        assert_eq!(
            writer.write(Arc::new(order), None, SnapshotVersions { directory: version, menu: None }).await.unwrap(),
            WriteOutcome::Written
        );
    }
    let mut conn = db.conn().unwrap();
    let prepared: Prepared = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE 'WITH input AS (SELECT * FROM unnest(%'",
    )
    .get_result(&mut *conn)
    .unwrap();
    assert_eq!(prepared.n, 1, "the order insert should be one cached prepared statement");
}
