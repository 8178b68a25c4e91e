//! The sales report against an independent computation on random data.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use test_support::{TestApp, json_body};

use application::{OrderWriter, WriteOutcome};
use domain::{Order, OrderId, UserId};
use infrastructure::{Database, PgOrderWriter, PgReportRepository, PoolSettings};

/// Places an order at a chosen instant, through the real order writer (the API always uses now).
pub struct Placer {
    writer: Arc<PgOrderWriter>,
    location: domain::Location,
    directory_version: i64,
}

impl Placer {
    pub fn new(app: &TestApp) -> Self {
        let db = Database::new(
            &app.db.url,
            PoolSettings {
                max_size: 2,
                checkout_timeout: std::time::Duration::from_secs(5),
                statement_timeout: std::time::Duration::from_secs(30),
            },
        );
        Self {
            writer: Arc::new(PgOrderWriter::new(db, 1, std::time::Duration::from_secs(30))),
            location: app.main_location(),
            directory_version: app.directory_version(),
        }
    }

    /// A placer of orders at another location (the staff directory read again).
    pub fn at(self, app: &TestApp, location: domain::Location) -> Self {
        Self { location, directory_version: app.directory_version(), ..self }
    }

    pub async fn place(&self, waiter: UserId, at: DateTime<Utc>, lines: &[(&str, &str, i64)]) -> Order {
        let order = crate::writer::placed(OrderId(uuid::Uuid::now_v7()), waiter, &self.location, "Mesa", at, lines);
        let written = self
            .writer
            .write(
                Arc::new(order.clone()),
                None,
                application::SnapshotVersions { directory: self.directory_version, menu: None },
            )
            .await
            .unwrap();
        assert_eq!(written, WriteOutcome::Written);
        order
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn report(app: &TestApp, token: &str, query: &str) -> Value {
    json_body(app.get(&format!("/api/v1/orders/report{query}"), token).send().await.unwrap(), 200).await
}

fn names(report: &Value) -> Vec<String> {
    report["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}:{}:{}",
                p["product_name"].as_str().unwrap(),
                p["total_quantity"],
                p["total_price"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn whole_days_inclusive_bounds_cancelled_orders_and_ordering() {
    let app = TestApp::spawn().await;
    let (waiter, token) = app.waiter().await;
    let (_, admin) = app.admin().await;
    let placer = Placer::new(&app);
    let w = waiter.id();
    placer.place(w, at("2026-11-19T23:59:59.999999Z"), &[("Pan", "1.00", 1)]).await;
    placer.place(w, at("2026-11-20T00:00:00Z"), &[("Café", "2.00", 3), ("Agua", "1.50", 4)]).await;
    placer.place(w, at("2026-11-20T12:00:00Z"), &[("CAFÉ", "2.00", 1), ("Vino", "6.00", 4)]).await;
    placer.place(w, at("2026-11-20T23:59:59.999999Z"), &[("agua", "1.00", 1), ("Tarta", "4.00", 1)]).await;
    placer.place(w, at("2026-11-21T00:00:00Z"), &[("Pan", "1.00", 50)]).await;
    let cancelled = placer.place(w, at("2026-11-20T13:00:00Z"), &[("Vino", "6.00", 100)]).await;
    json_body(app.post(&format!("/api/v1/orders/{}/cancel", cancelled.id()), &token).send().await.unwrap(), 200).await;

    let day = report(&app, &admin, "?start_date=2026-11-20&end_date=2026-11-20").await;
    assert_eq!(day["start_date"], "2026-11-20T00:00:00.000000Z");
    assert_eq!(day["end_date"], "2026-11-20T23:59:59.999999Z");
    // Quantity first, then price (Vino 4 / 24.00 before Café 4 / 8.00); Café and Agua merge
    // across spellings, shown with the smallest spelling.
    assert_eq!(names(&day), ["Agua:5:7.00", "Vino:4:24.00", "CAFÉ:4:8.00", "Tarta:1:4.00"]);
    assert_eq!(day["total_quantity"], 14);
    assert_eq!(day["total_price"], "43.00");

    // A date-time end includes that very instant; a date-time start too.
    let exact = report(&app, &admin, "?start_date=2026-11-20T12:00:00Z&end_date=2026-11-20T23:59:59.999999Z").await;
    assert_eq!(names(&exact), ["Vino:4:24.00", "Tarta:1:4.00", "CAFÉ:1:2.00", "agua:1:1.00"]);
    let offset = report(&app, &admin, "?start_date=2026-11-20T13:00:00%2B01:00&end_date=2026-11-20T12:00:00Z").await;
    assert_eq!(names(&offset), ["Vino:4:24.00", "CAFÉ:1:2.00"]);

    // Ties on quantity and price fall back to the name.
    placer.place(w, at("2026-11-22T10:00:00Z"), &[("b", "1.00", 1), ("a", "1.00", 1), ("c", "2.00", 1)]).await;
    let ties = report(&app, &admin, "?start_date=2026-11-22&end_date=2026-11-22").await;
    assert_eq!(names(&ties), ["c:1:2.00", "a:1:1.00", "b:1:1.00"]);

    let csv = app
        .get("/api/v1/orders/report?start_date=2026-11-20&end_date=2026-11-20", &admin)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert_eq!(
        csv.text().await.unwrap(),
        "product_name,total_quantity,total_price\r\nAgua,5,7.00\r\nVino,4,24.00\r\nCAFÉ,4,8.00\r\nTarta,1,4.00\r\n"
    );

    let by_waiter =
        report(&app, &admin, &format!("?start_date=2026-11-20&end_date=2026-11-20&waiter_id={}", uuid::Uuid::now_v7()))
            .await;
    assert_eq!(by_waiter["products"], json!([]));
    assert_eq!(by_waiter["total_price"], "0.00");
}

#[tokio::test]
async fn the_default_range_is_the_last_30_days_and_bad_ranges_are_422() {
    let app = TestApp::spawn().await;
    let (waiter, _) = app.waiter().await;
    let (_, admin) = app.admin().await;
    let placer = Placer::new(&app);
    let now = Utc::now();
    placer.place(waiter.id(), now - Duration::days(1), &[("Reciente", "1.00", 1)]).await;
    placer.place(waiter.id(), now - Duration::days(31), &[("Antiguo", "1.00", 1)]).await;
    let body = report(&app, &admin, "").await;
    assert_eq!(names(&body), ["Reciente:1:1.00"]);
    let start = DateTime::parse_from_rfc3339(body["start_date"].as_str().unwrap()).unwrap();
    let end = DateTime::parse_from_rfc3339(body["end_date"].as_str().unwrap()).unwrap();
    assert_eq!(end - start, Duration::days(30));
    for (query, field) in [
        ("?start_date=2026-11-21&end_date=2026-11-20", "start_date"),
        ("?start_date=yesterday", "start_date"),
        ("?end_date=2026-02-30", "end_date"),
    ] {
        let body =
            json_body(app.get(&format!("/api/v1/orders/report{query}"), &admin).send().await.unwrap(), 422).await;
        assert_eq!(body["errors"][0]["field"], field, "{query}");
    }
    assert_eq!(app.get("/api/v1/orders/report?waiter_id=nope", &admin).send().await.unwrap().status(), 400);
}

/// An order as the test placed it: waiter, time, lines (name, price, quantity), cancelled.
type Placed = (UserId, DateTime<Utc>, Vec<(String, Decimal, i64)>, bool);
/// A report query and the range (and waiter) it means.
type Query = (String, DateTime<Utc>, DateTime<Utc>, Option<UserId>);

/// What the report should say, computed here from what was placed, without the service's code.
/// The spelling the rollup recorded for each product (by key): what the report shows for it.
fn recorded_names(app: &TestApp) -> BTreeMap<String, String> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Named {
        #[diesel(sql_type = diesel::sql_types::Text)]
        product_key: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        product_name: String,
    }
    diesel::sql_query("SELECT product_key, product_name FROM product_names")
        .load::<Named>(&mut app.db.conn())
        .unwrap()
        .into_iter()
        .map(|n| (n.product_key, n.product_name))
        .collect()
}

/// The report computed from the orders themselves: each product under the spelling the
/// rollup recorded for it (`recorded`, by key), else the smallest spelling of its lines in the
/// range.
fn expected(
    orders: &[Placed],
    start: DateTime<Utc>,
    end_inclusive: DateTime<Utc>,
    waiter: Option<UserId>,
    recorded: &BTreeMap<String, String>,
) -> (Vec<String>, i64, Decimal) {
    let mut groups: BTreeMap<String, (String, i64, Decimal)> = BTreeMap::new();
    for (w, at, lines, cancelled) in orders {
        if *cancelled || *at < start || *at > end_inclusive || waiter.is_some_and(|x| x != *w) {
            continue;
        }
        // Lines of one order naming the same product merge under the first line's spelling.
        let mut first_spelling: BTreeMap<String, String> = BTreeMap::new();
        for (name, price, quantity) in lines {
            let normalized = name.split_whitespace().collect::<Vec<_>>().join(" ");
            let spelled = first_spelling.entry(normalized.to_lowercase()).or_insert(normalized).clone();
            let entry = groups.entry(spelled.to_lowercase()).or_insert((spelled.clone(), 0, Decimal::ZERO));
            if spelled < entry.0 {
                entry.0 = spelled.clone();
            }
            entry.1 += quantity;
            entry.2 += price * Decimal::from(*quantity);
        }
    }
    let mut rows: Vec<(String, i64, Decimal)> = groups
        .into_values()
        .map(|(name, q, p)| {
            let key = domain::ProductName::parse(&name).unwrap().key().as_ref().to_owned();
            (recorded.get(&key).cloned().unwrap_or(name), q, p)
        })
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
    let total_quantity = rows.iter().map(|r| r.1).sum();
    let total_price = rows.iter().map(|r| r.2).sum();
    (rows.into_iter().map(|(n, q, p)| format!("{n}:{q}:{p:.2}")).collect(), total_quantity, total_price)
}

fn respell(rng: &mut StdRng, name: &str) -> String {
    let mut out = String::new();
    if rng.random_bool(0.3) {
        out.push_str("  ");
    }
    for c in name.chars() {
        if c == ' ' && rng.random_bool(0.3) {
            out.push_str("   ");
        } else if rng.random_bool(0.2) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
    }
    if rng.random_bool(0.3) {
        out.push(' ');
    }
    out
}

/// Random orders (products, spellings, prices, quantities, waiters, times, cancellations):
/// the report equals an independent computation for many ranges.
#[tokio::test(flavor = "multi_thread")]
async fn the_report_matches_an_independent_computation_on_random_orders() {
    let seed: u64 = std::env::var("REPORT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("REPORT_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let mut waiters = Vec::new();
    for _ in 0..3 {
        waiters.push(app.waiter().await);
    }
    let placer = Placer::new(&app);
    let menu = [
        "café con leche",
        "tostada",
        "agua",
        "zumo de naranja",
        "caña",
        "bocadillo de jamón",
        "ñoquis",
        "crème brûlée",
        "té",
    ];
    let base = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
    let mut placed = Vec::new();
    for _ in 0..160 {
        let (waiter, token) = &waiters[rng.random_range(0..waiters.len())];
        let when = base + Duration::microseconds(rng.random_range(0..(50 * 86_400_000_000i64)));
        let mut lines: Vec<(String, String, i64)> = Vec::new();
        let mut chosen: Vec<&str> = Vec::new();
        for _ in 0..rng.random_range(1..5) {
            let product = menu[rng.random_range(0..menu.len())];
            if chosen.contains(&product) {
                continue;
            }
            chosen.push(product);
            let price = format!("{}.{:02}", rng.random_range(1..30), rng.random_range(0..100));
            let quantity = rng.random_range(1..6);
            lines.push((respell(&mut rng, product), price.clone(), quantity));
            if rng.random_bool(0.2) {
                // The same product again at the same price: merged.
                lines.push((respell(&mut rng, product), price, rng.random_range(1..3)));
            }
        }
        let refs: Vec<(&str, &str, i64)> = lines.iter().map(|(n, p, q)| (n.as_str(), p.as_str(), *q)).collect();
        let order = placer.place(waiter.id(), when, &refs).await;
        let cancelled = rng.random_bool(0.15);
        if cancelled {
            json_body(app.post(&format!("/api/v1/orders/{}/cancel", order.id()), token).send().await.unwrap(), 200)
                .await;
        }
        let lines = lines.into_iter().map(|(n, p, q)| (n, p.parse::<Decimal>().unwrap(), q)).collect();
        placed.push((waiter.id(), when, lines, cancelled));
    }

    let mut ranges: Vec<Query> = vec![(
        "?start_date=2026-10-01&end_date=2026-11-19".to_owned(),
        base,
        Utc.with_ymd_and_hms(2026, 11, 19, 23, 59, 59).unwrap() + Duration::microseconds(999_999),
        None,
    )];
    for _ in 0..12 {
        let a = base + Duration::seconds(rng.random_range(0..50 * 86_400));
        let b = a + Duration::seconds(rng.random_range(0..20 * 86_400));
        let waiter = rng.random_bool(0.3).then(|| waiters[rng.random_range(0..waiters.len())].0.id());
        let mut query = if rng.random_bool(0.5) {
            let (sd, ed) = (a.date_naive(), b.date_naive());
            let start = sd.and_hms_opt(0, 0, 0).unwrap().and_utc();
            let end = ed.and_hms_opt(23, 59, 59).unwrap().and_utc() + Duration::microseconds(999_999);
            ranges.push((String::new(), start, end, waiter));
            format!("?start_date={sd}&end_date={ed}")
        } else {
            ranges.push((String::new(), a, b, waiter));
            format!(
                "?start_date={}&end_date={}",
                a.to_rfc3339().replace('+', "%2B"),
                b.to_rfc3339().replace('+', "%2B")
            )
        };
        if let Some(w) = waiter {
            query.push_str(&format!("&waiter_id={w}"));
        }
        ranges.last_mut().unwrap().0 = query;
    }
    for (query, start, end, waiter) in ranges {
        let got = report(&app, &admin, &query).await;
        let (products, total_quantity, total_price) = expected(&placed, start, end, waiter, &recorded_names(&app));
        assert_eq!(names(&got), products, "{query} (REPORT_SEED={seed})");
        assert_eq!(got["total_quantity"], total_quantity, "{query}");
        assert_eq!(got["total_price"], format!("{total_price:.2}"), "{query}");
    }
}

/// The report through the rollup equals the plain computation on random data, including orders
/// cancelled after their hour and day were aggregated.
#[tokio::test(flavor = "multi_thread")]
async fn the_rollup_keeps_the_report_exact_through_cancellations() {
    let seed: u64 = std::env::var("REPORT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("REPORT_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (waiter, token) = app.waiter().await;
    let placer = Placer::new(&app);
    let now = Utc::now();
    let first = now - Duration::days(9);
    let menu = ["Pan", "pan", "Agua", "AGUA ", "Café", "café", "Vino", "Té"];
    let mut placed = Vec::new();
    let mut ids = Vec::new();
    let place = async |rng: &mut StdRng, when: DateTime<Utc>, placed: &mut Vec<_>, ids: &mut Vec<_>| {
        let product = menu[rng.random_range(0..menu.len())];
        let other = menu[rng.random_range(0..menu.len())];
        let mut lines = vec![(product.to_owned(), format!("{}.50", rng.random_range(1..9)), rng.random_range(1..4))];
        if other.to_lowercase().trim() != product.to_lowercase().trim() {
            lines.push((other.to_owned(), "2.00".to_owned(), rng.random_range(1..4)));
        }
        let refs: Vec<(&str, &str, i64)> = lines.iter().map(|(n, p, q)| (n.as_str(), p.as_str(), *q)).collect();
        let order = placer.place(waiter.id(), when, &refs).await;
        ids.push(order.id());
        placed.push((
            waiter.id(),
            when,
            lines.into_iter().map(|(n, p, q)| (n, p.parse::<Decimal>().unwrap(), q)).collect::<Vec<_>>(),
            false,
        ));
    };
    for _ in 0..220 {
        let when = first + Duration::microseconds(rng.random_range(0..(now - first).num_microseconds().unwrap()));
        place(&mut rng, when, &mut placed, &mut ids).await;
    }
    let reports = PgReportRepository::new(Database::new(
        &app.db.url,
        PoolSettings {
            max_size: 2,
            checkout_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(30),
        },
    ));
    let progress = application::ReportRepository::roll_up(&reports, now - chrono::TimeDelta::minutes(5)).unwrap();
    assert!(progress.days >= 8 && progress.hours >= 8 * 24 && progress.minutes10 >= 8 * 144, "{progress:?}");
    // Every grain is used: the finest reaches within ten minutes of the lag.
    let minutes_until = progress.minutes_until.unwrap();
    assert!(minutes_until <= now - chrono::TimeDelta::minutes(5) && minutes_until > now - Duration::minutes(16));
    let hours_until = minutes_until;

    // Cancel about a third, in aggregated and in open periods alike.
    for (i, id) in ids.iter().enumerate() {
        if rng.random_bool(0.33) {
            json_body(app.post(&format!("/api/v1/orders/{id}/cancel"), &token).send().await.unwrap(), 200).await;
            placed[i].3 = true;
        }
    }
    // More orders after the marks, and a second roll-up that has nothing new to close.
    for _ in 0..20 {
        let when = hours_until + Duration::seconds(rng.random_range(0..(now - hours_until).num_seconds().max(1)));
        place(&mut rng, when, &mut placed, &mut ids).await;
    }
    let again = application::ReportRepository::roll_up(&reports, now - chrono::TimeDelta::minutes(5)).unwrap();
    assert_eq!((again.hours, again.days), (0, 0));

    let mut queries: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    let whole = (first.date_naive(), now.date_naive());
    queries.push((
        format!("?start_date={}&end_date={}", whole.0, whole.1),
        whole.0.and_hms_opt(0, 0, 0).unwrap().and_utc(),
        whole.1.and_hms_opt(23, 59, 59).unwrap().and_utc() + Duration::microseconds(999_999),
    ));
    for _ in 0..25 {
        let a = first + Duration::seconds(rng.random_range(0..(now - first).num_seconds()));
        let b = a + Duration::seconds(rng.random_range(0..(now - a).num_seconds().max(1) + 3600));
        queries.push((
            format!(
                "?start_date={}&end_date={}",
                a.to_rfc3339().replace('+', "%2B"),
                b.to_rfc3339().replace('+', "%2B")
            ),
            a,
            b,
        ));
    }
    for (query, start, end) in queries {
        let got = report(&app, &admin, &query).await;
        let (products, total_quantity, total_price) = expected(&placed, start, end, None, &recorded_names(&app));
        assert_eq!(names(&got), products, "{query} (REPORT_SEED={seed})");
        assert_eq!(got["total_quantity"], total_quantity, "{query}");
        assert_eq!(got["total_price"], format!("{total_price:.2}"), "{query}");
        // The waiter's report never reads the rollup: the same answer the plain way.
        let plain = report(&app, &admin, &format!("{query}&waiter_id={}", waiter.id())).await;
        assert_eq!(names(&plain), products, "{query} for the waiter");
    }
}
