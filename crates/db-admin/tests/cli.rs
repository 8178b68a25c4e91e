//! `db-admin` as scripts and operators use it.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use test_support::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_db-admin");

fn run(db: &TestDb, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let dir = std::env::temp_dir();
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", "1");
    for (k, v) in vars {
        command.env(k, v);
    }
    command.output().unwrap()
}

/// How many migrations the repository has.
fn migrations() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations")).unwrap().count()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn init_migrates_creates_the_first_admin_once_and_says_so_the_second_time() {
    let db = TestDb::empty();
    let first = run(&db, &["init"], &[("ADMIN_EMAIL", "boss@example.com")]);
    assert!(first.status.success(), "{}", stderr(&first));
    let out = stdout(&first);
    assert!(out.contains(&format!("applied {} migration(s)", migrations())), "{out}");
    assert!(out.contains("created the admin boss@example.com"), "{out}");
    let password = out.lines().find_map(|l| l.strip_prefix("its generated password, shown only this once: ")).unwrap();
    assert!(password.len() >= 24);

    let second = run(&db, &["init"], &[("ADMIN_EMAIL", "boss@example.com")]);
    assert!(second.status.success());
    let out = stdout(&second);
    assert!(out.contains("nothing to do") && out.contains("already exists: nothing changed"), "{out}");
    assert!(!out.contains("password"), "the password is shown only once");
}

#[test]
fn init_creates_a_database_that_does_not_exist() {
    let db = TestDb::empty();
    let missing = TestDb { name: format!("{}_new", db.name), url: format!("{}_new", db.url) };
    let out = run(&missing, &["init"], &[("ADMIN_PASSWORD", "a strong password 1")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created the admin admin@comanda.local"));
    assert!(!stdout(&out).contains("generated password"));
}

#[test]
fn status_rollback_and_migrate() {
    let db = TestDb::empty();
    assert!(run(&db, &["migrate"], &[]).status.success());
    let out = stdout(&run(&db, &["status"], &[]));
    assert!(out.contains("[x] 2026-11-23-000001_create_users"), "{out}");
    assert!(out.contains("0 pending"), "{out}");
    let out = run(&db, &["rollback", "--steps", "2"], &[]);
    assert!(stdout(&out).contains("reverted 2 migration(s)"), "{}", stdout(&out));
    assert!(stdout(&run(&db, &["status"], &[])).contains("2 pending"));
    assert!(stdout(&run(&db, &["migrate"], &[])).contains("applied 2 migration(s)"));
}

#[test]
fn reset_needs_yes_and_is_refused_in_production() {
    let db = TestDb::empty();
    let out = run(&db, &["reset"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--yes"));
    let production = [
        ("APP_ENV", "production"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("ARGON2_MEMORY_KIB", "19456"),
        ("ARGON2_ITERATIONS", "2"),
    ];
    let out = run(&db, &["reset", "--yes"], &production);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("refused when APP_ENV=production"), "{}", stderr(&out));
    let out = run(&db, &["reset", "--yes"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("applied {} migration(s)", migrations())));
}

#[test]
fn create_user_for_scripts_and_duplicates_fail() {
    let db = TestDb::new();
    let args = ["create-user", "--email", "Waiter@Example.com", "--name", "Wai Ter", "--role", "waiter"];
    let out = run(&db, &args, &[("NEW_USER_PASSWORD", "a long password")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created waiter Waiter@example.com"));
    let again = ["create-user", "--email", "waiter@EXAMPLE.com", "--name", "Other", "--password", "another password"];
    let out = run(&db, &again, &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"));
}

#[test]
fn new_migration_creates_a_timestamped_pair() {
    let db = TestDb::empty();
    let dir = std::env::temp_dir().join(format!("comanda-migrations-{}", db.name));
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(&db, &["new-migration", "add_tables", "--dir", dir.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(created.len(), 1);
    let name = created[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.ends_with("_add_tables") && name.len() == "YYYY-MM-DD-HHMMSS_add_tables".len(), "{name}");
    assert!(created[0].join("up.sql").exists() && created[0].join("down.sql").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn seed_loads_consistent_orders_lines_payments_and_waiters_and_can_run_twice() {
    use application::{OrderRepository, PasswordHasher};
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;
    use infrastructure::{Argon2Hasher, Database, PgOrderRepository, PoolSettings};

    let db = TestDb::new();
    let args = ["seed", "--orders", "500", "--days", "10", "--waiters", "3", "--products", "20", "--seed-value", "7"];
    let out = run(&db, &args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("seeded 500 orders"), "{printed}");
    assert!(printed.contains("waiter1@seed.comanda.local") && printed.contains("seed-password"), "{printed}");

    let mut conn = db.conn();
    let mut count = |sql: &str| -> i64 {
        diesel::select(diesel::dsl::sql::<BigInt>(&format!("({sql})"))).get_result(&mut conn).unwrap()
    };
    assert_eq!(count("SELECT count(*) FROM orders"), 500);
    let no_lines =
        "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)";
    assert_eq!(count(no_lines), 0, "every order has lines");
    let bad_totals = "SELECT count(*) FROM orders o \
         WHERE o.total_price <> (SELECT sum(i.subtotal) FROM order_items i WHERE i.order_id = o.id)";
    assert_eq!(count(bad_totals), 0, "totals are the sums of the subtotals");
    let bad_paid = "SELECT count(*) FROM orders o \
         WHERE o.amount_paid <> (SELECT coalesce(sum(p.amount), 0) FROM payments p WHERE p.order_id = o.id)";
    assert_eq!(count(bad_paid), 0, "amount_paid is the sum of the payments");
    let bad_status = "SELECT count(*) FROM orders WHERE NOT ( \
         (status IN ('open', 'cancelled') AND amount_paid = 0) \
         OR (status = 'partially_paid' AND amount_paid > 0 AND amount_paid < total_price) \
         OR (status = 'paid' AND amount_paid = total_price))";
    assert_eq!(count(bad_status), 0);
    let bad_payments = "SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id \
         WHERE p.created_at < o.created_at OR p.created_at > o.updated_at OR p.recorded_by <> o.waiter_id";
    assert_eq!(count(bad_payments), 0, "payments follow their order, by its waiter");
    let out_of_range = "SELECT count(*) FROM orders \
         WHERE created_at >= now() OR updated_at >= now() OR created_at < now() - interval '10 days 1 minute'";
    assert_eq!(count(out_of_range), 0, "orders lie in the last 10 days");
    // Menu lines keyed by their item (and named, priced and categorized as the menu has it),
    // open lines by their name's key.
    let names: Vec<(String, String, Option<uuid::Uuid>)> = {
        use infrastructure::schema::order_items::dsl::{menu_item_id, order_items, product_key, product_name};
        order_items.select((product_name, product_key, menu_item_id)).distinct().load(&mut db.conn()).unwrap()
    };
    for (name, key, item) in names {
        let expected = match item {
            Some(item) => domain::MenuItem::product_key(domain::MenuItemId(item)),
            None => domain::ProductName::parse(&name).unwrap().key(),
        };
        assert_eq!(expected.as_ref(), key, "the domain's product key");
    }
    let off_menu = "SELECT count(*) FROM order_items i JOIN menu_items m ON m.id = i.menu_item_id \
         JOIN menu_item_prices p ON p.menu_item_id = m.id JOIN menu_categories c ON c.id = i.category_id \
         WHERE i.product_name <> m.name OR i.unit_price <> p.price OR i.category <> c.name OR m.category_id <> c.id";
    assert_eq!(count(off_menu), 0, "menu lines carry their item's name, price and category");
    let menu_lines = count("SELECT count(*) FROM order_items WHERE menu_item_id IS NOT NULL");
    let open_lines = count("SELECT count(*) FROM order_items WHERE menu_item_id IS NULL");
    assert!(open_lines > 0 && menu_lines > 10 * open_lines, "most lines from the menu: {menu_lines} and {open_lines}");
    assert_eq!(count("SELECT count(*) FROM menu_items"), 20);
    assert!(count("SELECT count(*) FROM order_items WHERE note IS NOT NULL") > 0, "some lines carry a note");
    assert!(count("SELECT count(*) FROM orders WHERE status = 'cancelled'") > 0);
    assert!(count("SELECT count(*) FROM orders WHERE status = 'paid'") > 250);
    let products = count("SELECT count(DISTINCT menu_item_id) FROM order_items");
    assert!((10..=20).contains(&products), "{products} products");
    let waiters = "SELECT count(*) FROM users WHERE role = 'waiter' AND email LIKE 'waiter_@seed.comanda.local'";
    assert_eq!(count(waiters), 3);
    assert_eq!(count("SELECT count(DISTINCT waiter_id) FROM orders"), 3);
    // Several locations in different time zones, a manager and a kitchen display in each, every
    // order in its waiter's location on that location's business date (PostgreSQL's own copy of
    // the time-zone rules agrees with the service's for these zones).
    assert_eq!(count("SELECT count(DISTINCT time_zone) FROM locations"), 4);
    for role in ["manager", "kitchen"] {
        let per_location = format!(
            "SELECT count(DISTINCT ul.location_id) FROM users u JOIN user_locations ul ON ul.user_id = u.id WHERE u.role = '{role}'"
        );
        assert_eq!(count(&per_location), 4, "a {role} in each location");
    }
    let elsewhere = "SELECT count(*) FROM orders o \
         WHERE NOT EXISTS (SELECT 1 FROM user_locations ul WHERE ul.user_id = o.waiter_id AND ul.location_id = o.location_id)";
    assert_eq!(count(elsewhere), 0, "orders are placed where their waiter works");
    let wrong_date = "SELECT count(*) FROM orders o JOIN locations l ON l.id = o.location_id \
         WHERE o.business_date <> ((o.created_at AT TIME ZONE l.time_zone) - l.business_day_start)::date";
    assert_eq!(count(wrong_date), 0, "business dates follow each location's day");
    assert!(count("SELECT count(DISTINCT location_id) FROM orders") >= 2, "orders in several locations");
    // With several locations, a new waiter must be given theirs; the refusal names the flag.
    let args =
        ["create-user", "--email", "new@example.com", "--name", "New Waiter", "--password", "a long passphrase here"];
    let refused = run(&db, &args, &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("--location-id is required: there are 4 locations"), "{}", stderr(&refused));

    // The seeded waiters can sign in with the printed password.
    let hash: String = diesel::sql_query("SELECT password_hash FROM users WHERE email = 'waiter2@seed.comanda.local'")
        .load::<PasswordHash>(&mut conn)
        .unwrap()
        .remove(0)
        .password_hash;
    let hasher =
        Argon2Hasher::new(infrastructure::settings::Argon2Settings { memory_kib: 1024, iterations: 1, parallelism: 1 })
            .unwrap();
    let password = domain::Password::candidate("seed-password").unwrap();
    assert!(hasher.verify(&password, &hash).unwrap().matches);

    // Every order reads back through the repository the API uses.
    let pool = PoolSettings {
        max_size: 1,
        checkout_timeout: std::time::Duration::from_secs(5),
        statement_timeout: std::time::Duration::from_secs(30),
    };
    let orders = PgOrderRepository::new(Database::new(&db.url, pool));
    let ids: Vec<uuid::Uuid> = {
        use infrastructure::schema::orders::dsl::{id, orders as table};
        table.select(id).load(&mut conn).unwrap()
    };
    for order_id in ids {
        let order = orders.find(domain::OrderId(order_id)).unwrap().unwrap();
        assert!(!order.lines().is_empty());
        assert_eq!(!orders.payments(order.id()).unwrap().is_empty(), !order.amount_paid().is_zero());
    }

    // Again: more orders, the same waiters.
    let out = run(&db, &["seed", "--orders", "100", "--waiters", "3", "--products", "20", "--seed-value", "7"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("0 created, 11 reused"), "{}", stdout(&out));
    assert_eq!(count_of(&db, "SELECT count(*) FROM locations"), 4, "the locations are reused too");
    assert_eq!(count_of(&db, "SELECT count(*) FROM menu_items"), 20, "and the menu");
    let mut conn = db.conn();
    let total: i64 =
        diesel::select(diesel::dsl::sql::<BigInt>("(SELECT count(*) FROM orders)")).get_result(&mut conn).unwrap();
    assert_eq!(total, 600);

    // Without the foreign key triggers (superusers only): the references still hold.
    let superuser: String =
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>("current_setting('is_superuser')"))
            .get_result(&mut conn)
            .unwrap();
    let out = run(&db, &["seed", "--orders", "50", "--waiters", "3", "--products", "20", "--skip-fk-checks"], &[]);
    if superuser == "on" {
        assert!(out.status.success(), "{}", stderr(&out));
        let orphans = "SELECT (SELECT count(*) FROM order_items i WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = i.order_id)) \
             + (SELECT count(*) FROM payments p WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = p.order_id)) \
             + (SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = o.waiter_id))";
        let orphans: i64 =
            diesel::select(diesel::dsl::sql::<BigInt>(&format!("({orphans})"))).get_result(&mut conn).unwrap();
        assert_eq!(orphans, 0);
    } else {
        assert!(stderr(&out).contains("--skip-fk-checks needs a superuser"), "{}", stderr(&out));
    }

    // Bad arguments: one clear sentence, a non-zero exit.
    for (flag, value, message) in [
        ("--orders", "0", "the number of orders must be a whole number from 1"),
        ("--days", "0", "the number of days must be a whole number from 1"),
        ("--waiters", "0", "the number of waiters must be a whole number from 1"),
        ("--products", "5001", "the number of products must be a whole number from 1 to 5000"),
    ] {
        let args =
            if flag == "--orders" { vec!["seed", flag, value] } else { vec!["seed", "--orders", "5", flag, value] };
        let out = run(&db, &args, &[]);
        assert!(!out.status.success(), "{flag} {value}");
        assert!(stderr(&out).contains(message), "{}", stderr(&out));
    }
}

fn count_of(db: &TestDb, sql: &str) -> i64 {
    use diesel::RunQueryDsl;
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!("({sql})")))
        .get_result(&mut db.conn())
        .unwrap()
}

#[derive(diesel::QueryableByName)]
struct PasswordHash {
    #[diesel(sql_type = diesel::sql_types::Text)]
    password_hash: String,
}

#[test]
fn init_makes_the_first_admin_only_once_whatever_admin_email_says() {
    let db = TestDb::empty();
    assert!(run(&db, &["init"], &[("ADMIN_EMAIL", "first@example.com")]).status.success());
    let out = run(&db, &["init"], &[("ADMIN_EMAIL", "second@example.com")]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("1 admin(s) already exist"), "{}", stdout(&out));
    let out = run(
        &db,
        &[
            "create-user",
            "--email",
            "second@example.com",
            "--name",
            "Second",
            "--role",
            "admin",
            "--password",
            "another password",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn rollup_aggregates_and_rebuilds() {
    let db = TestDb::new();
    let seed = run(&db, &["seed", "--orders", "300", "--days", "5", "--waiters", "2", "--products", "10"], &[]);
    assert!(seed.status.success(), "{}", stderr(&seed));
    let out = run(&db, &["rollup"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = stdout(&out);
    assert!(first.contains("aggregated") && !first.contains("aggregated 0 ten-minute"), "{first}");
    let again = stdout(&run(&db, &["rollup"], &[]));
    assert!(again.contains("aggregated 0 ten-minute period(s), 0 hour(s) and 0 day(s)"), "{again}");
    let rebuilt = stdout(&run(&db, &["rollup", "--rebuild"], &[]));
    assert!(rebuilt.contains("forgot every aggregate") && !rebuilt.contains("aggregated 0 ten-minute"), "{rebuilt}");
}
