use diesel::prelude::*;

use infrastructure::db;
use test_support::TestDb;

#[derive(QueryableByName)]
struct Table {
    #[diesel(sql_type = diesel::sql_types::Text)]
    tablename: String,
}

fn tables(conn: &mut PgConnection) -> Vec<String> {
    let mut names: Vec<String> = diesel::sql_query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        .load::<Table>(conn)
        .unwrap()
        .into_iter()
        .map(|t| t.tablename)
        .filter(|t| t != "__diesel_schema_migrations")
        .collect();
    names.sort();
    names
}

/// Every migration applies, every one reverts (leaving nothing behind), and they apply again.
#[test]
fn every_migration_applies_reverts_and_applies_again() {
    let test_db = TestDb::empty();
    let mut conn = test_db.conn();
    let applied = db::run_pending_migrations(&mut conn, &db::FirstLocation::default()).unwrap();
    // The SQL migrations, then the rewrite of the stored keys (see infrastructure::text_keys).
    let (keys, sql) = applied.split_last().unwrap();
    assert!(keys.starts_with("text keys version 1 to "), "{keys}");
    assert!(!sql.is_empty());
    let after_first = tables(&mut conn);
    assert!(after_first.contains(&"orders".to_owned()), "{after_first:?}");

    let reverted = db::revert_migrations(&mut conn, sql.len()).unwrap();
    assert_eq!(reverted.len(), sql.len());
    assert_eq!(tables(&mut conn), Vec::<String>::new(), "a down.sql left something behind");
    assert_eq!(db::pending_migrations(&mut conn).unwrap().len(), sql.len());

    let again = db::run_pending_migrations(&mut conn, &db::FirstLocation::default()).unwrap();
    assert_eq!(again, applied);
    assert_eq!(tables(&mut conn), after_first);
    assert!(db::pending_migrations(&mut conn).unwrap().is_empty());
}

/// The server refuses a database that is behind, unless told to apply (the local default).
#[test]
fn prepare_refuses_a_database_that_is_behind() {
    let test_db = TestDb::empty();
    let error = db::prepare(&test_db.url, None).unwrap_err();
    assert!(error.to_string().contains("run `db-admin migrate`"), "{error}");
    let applied = db::prepare(&test_db.url, Some(&db::FirstLocation::default())).unwrap();
    assert!(!applied.is_empty());
    assert!(db::prepare(&test_db.url, None).unwrap().is_empty());
}

/// A role that may only read and write rows (what the service should run as) can start the
/// server and pass the readiness check: checking migrations creates nothing.
#[tokio::test]
async fn a_role_without_create_rights_can_serve() {
    let test_db = TestDb::new();
    let role = format!("comanda_rw_{}", &test_db.name[13..25]);
    let mut conn = test_db.conn();
    for sql in [
        format!("CREATE ROLE {role} LOGIN"),
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_owned(),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
    ] {
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    }
    let url = test_db.url.replacen("postgres@", &format!("{role}@"), 1);
    assert!(url.contains(&role), "the test server's URL has no user to replace: {}", test_db.url);
    assert!(db::prepare(&url, None).unwrap().is_empty());
    let database = infrastructure::Database::new(
        &url,
        infrastructure::PoolSettings {
            max_size: 1,
            checkout_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(5),
        },
    );
    assert!(database.readiness(std::time::Duration::from_secs(5)).is_ok());
    let mut probe = PgConnection::establish(&url).unwrap();
    let denied = diesel::sql_query("CREATE TABLE nope (x int)").execute(&mut probe);
    assert!(denied.is_err(), "the role should not be able to create tables");
    drop(probe);
    drop(database);
    drop(conn);
    drop(test_db);
    let mut admin = PgConnection::establish(test_support::server_url()).unwrap();
    let _ = diesel::sql_query(format!("DROP ROLE IF EXISTS {role}")).execute(&mut admin);
}

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct Line {
    #[diesel(sql_type = diesel::sql_types::Text)]
    product_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    product_key: String,
}

/// A database whose stored keys were made by the old key function (lower-casing) gets them
/// rewritten by the new one when migrated: look-alike names of separate orders become one
/// product, two look-alike lines of one order stay two lines, the rollup is emptied (the
/// background job rebuilds it), and email keys are case folded.
#[test]
fn stored_keys_of_an_older_version_are_rewritten() {
    use diesel::connection::SimpleConnection;
    let test_db = TestDb::new();
    let mut conn = test_db.conn();
    conn.batch_execute(
        "UPDATE text_keys SET version = 1;
         INSERT INTO users (id, email, email_key, name, role, password_hash, created_at) VALUES
           ('01900000-0000-7000-8000-000000000001', 'STRAßE@example.com', 'straße@example.com', 'Ana López', 'waiter', '$argon2id$x', now());
         INSERT INTO orders (id, customer_name, waiter_id, location_id, business_date, status, total_price, amount_paid, created_at, updated_at)
           SELECT o.id::uuid, o.customer, '01900000-0000-7000-8000-000000000001', l.id, current_date, 'open', o.total, 0, now(), now()
           FROM (VALUES ('01900000-0000-7000-8000-0000000000a1', 'Mesa 1', 3.00), ('01900000-0000-7000-8000-0000000000a2', 'Mesa 2', 5.00)) AS o (id, customer, total),
                (SELECT id FROM locations LIMIT 1) AS l;
         INSERT INTO order_items (order_id, line_no, product_key, product_name, unit_price, quantity, subtotal) VALUES
           ('01900000-0000-7000-8000-0000000000a1', 1, 'café', 'Café', 1.00, 1, 1.00),
           ('01900000-0000-7000-8000-0000000000a1', 2, 'сafé', 'Сafé', 2.00, 1, 2.00),
           ('01900000-0000-7000-8000-0000000000a2', 1, 'сafé', 'Сafé', 5.00, 1, 5.00);
         INSERT INTO sales_rollup (grain, location_id, bucket, product_key, total_quantity, total_price) VALUES
           ('day', '00000000-0000-0000-0000-000000000000', '2026-01-01', 'café', 1, 1.00);
         INSERT INTO business_day_sales (location_id, business_date, product_key, total_quantity, total_price) VALUES
           ('00000000-0000-0000-0000-000000000000', '2026-01-01', 'café', 1, 1.00);
         INSERT INTO product_names (product_key, product_name) VALUES ('café', 'Café');
         UPDATE sales_rollup_state SET minutes_until = '2026-01-02', hours_until = '2026-01-02', days_until = '2026-01-02';",
    )
    .unwrap();
    let pending = db::pending_migrations(&mut conn).unwrap();
    assert_eq!(pending, ["text keys version 1 to 2"]);
    let applied = db::run_pending_migrations(&mut conn, &db::FirstLocation::default()).unwrap();
    assert_eq!(applied, ["text keys version 1 to 2 (2 order line(s) and 1 email(s) rekeyed)"]);
    assert!(db::pending_migrations(&mut conn).unwrap().is_empty());

    let key = |name: &str| domain::ProductName::parse(name).unwrap().key().as_ref().to_owned();
    assert_eq!(key("Café"), key("Сafé"));
    let lines: Vec<Line> =
        diesel::sql_query("SELECT product_name, product_key FROM order_items ORDER BY order_id, line_no")
            .load(&mut conn)
            .unwrap();
    assert_eq!(
        lines,
        [
            Line { product_name: "Café".into(), product_key: key("Café") },
            Line { product_name: "Сafé".into(), product_key: format!("{} #2", key("Café")) },
            Line { product_name: "Сafé".into(), product_key: key("Café") },
        ]
    );
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    for table in ["sales_rollup", "business_day_sales", "product_names"] {
        let rows: Count =
            diesel::sql_query(format!("SELECT count(*) AS n FROM {table}")).get_result(&mut conn).unwrap();
        assert_eq!(rows.n, 0, "{table} still holds keys of the old version");
    }
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = diesel::sql_types::Text)]
        email_key: String,
    }
    let email: Key = diesel::sql_query("SELECT email_key FROM users").get_result(&mut conn).unwrap();
    assert_eq!(email.email_key, "strasse@example.com");
    // Running it again changes nothing.
    assert!(db::run_pending_migrations(&mut conn, &db::FirstLocation::default()).unwrap().is_empty());
}
