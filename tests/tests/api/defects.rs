//! The defects found from outside (issue 12), class by class: inputs that crashed or answered
//! 500, authorization and accounts, requests that hold resources, and text that looks the same
//! and is not.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use test_support::{TestApp, json_body};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::orders::{count, create, order_body};

fn sql(app: &TestApp, statement: &str) {
    diesel::sql_query(statement).execute(&mut app.db.conn()).unwrap();
}

// --- Inputs that crashed or answered 500 ---

/// Dates that chrono reads but PostgreSQL cannot hold, or that overflow date arithmetic, are a
/// 422 naming the field; the server neither answers 500 nor drops the connection.
#[tokio::test]
async fn far_out_dates_are_422_not_500_or_a_panic() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    for query in [
        "created_from=-0001-01-01T00:00:00Z",
        "created_to=%2B10000-01-01T00:00:00Z",
        "created_from=-262143-01-01T00:00:00Z",
        "created_to=%2B262142-12-31T23:59:59.999999999Z",
    ] {
        let response = app.get(&format!("/api/v1/orders?{query}"), &admin).send().await.unwrap();
        let body = json_body(response, 422).await;
        let field = query.split('=').next().unwrap();
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    for query in [
        "end_date=%2B262142-12-31",
        "end_date=%2B262142-12-31T23:59:59.999999999Z",
        "start_date=-262143-01-01T00:00:00Z",
        "start_date=-0001-01-01&end_date=2026-01-01",
    ] {
        let response = app.get(&format!("/api/v1/orders/report?{query}"), &admin).send().await.unwrap();
        assert_eq!(response.status(), 422, "{query}");
    }
    // The extremes that RFC 3339 can write are served.
    for query in ["end_date=9999-12-31", "start_date=0000-01-01&end_date=9999-12-31T23:59:59.999999Z"] {
        let response = app.get(&format!("/api/v1/orders/report?{query}"), &admin).send().await.unwrap();
        assert_eq!(response.status(), 200, "{query}");
    }
    let response = app
        .get("/api/v1/orders?created_from=0000-01-01T00:00:00%2B01:00&created_to=9999-12-31T23:59:59-12:00", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// A JSON array where the contract says object is refused, at the top and inside, on every
/// route with a body; nothing is created, and no answer names a Rust type.
#[tokio::test]
async fn arrays_are_not_objects_and_answers_name_no_rust_type() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, waiter) = app.waiter().await;
    let order = create(&app, &waiter, &order_body("Mesa 1", &[("Pan", json!("1.00"), json!(1))])).await;
    let order_id = order["id"].as_str().unwrap();
    let cases = [
        ("/api/v1/orders", &waiter, r#"["a",[["b","1.00",1]]]"#),
        ("/api/v1/orders", &waiter, r#"{"customer_name":"a","items":[["b","1.00",1]]}"#),
        ("/api/v1/users", &admin, r#"["x@example.com","Ana","a long passphrase","waiter"]"#),
        (&format!("/api/v1/orders/{order_id}/payments"), &waiter, r#"["1.00","cash"]"#),
        ("/api/v1/auth/login", &waiter, r#"["x@example.com","a long passphrase"]"#),
        ("/api/v1/orders", &waiter, r#"{"customer_name":5}"#),
        ("/api/v1/orders", &waiter, r#"{"customer_name":"a","items":{"x":1}}"#),
    ];
    for (path, token, body) in cases {
        let response =
            app.post(path, token).header(CONTENT_TYPE, "application/json").body(body.to_owned()).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert!(status == 400 || status == 422, "{path} {body}: {status} {text}");
        for leak in [
            "struct",
            "OrderRequest",
            "ItemRequest",
            "LoginRequest",
            "UserRequest",
            "PaymentRequest",
            "u32",
            "Option<",
            "Vec<",
            "::",
        ] {
            assert!(!text.contains(leak), "{path} {body}: the answer names {leak}: {text}");
        }
    }
    let response = app.get("/api/v1/orders?limit=abc&status=x", &waiter).send().await.unwrap();
    let text = response.text().await.unwrap();
    assert!(!text.contains("u32") && !text.contains("Dto"), "{text}");
    assert_eq!(count(&app, "orders"), 1);
    assert_eq!(count(&app, "payments"), 0);
    assert_eq!(count(&app, "users"), 2);
}

// --- Authorization and accounts ---

/// Authorization follows the role the database holds now, not the one in the token.
#[tokio::test]
async fn a_change_of_role_takes_effect_at_once() {
    let app = TestApp::spawn().await;
    let (admin, admin_token) = app.admin().await;
    let (waiter, waiter_token) = app.waiter().await;
    assert_eq!(app.get("/api/v1/users", &admin_token).send().await.unwrap().status(), 200);
    assert_eq!(app.get("/api/v1/users", &waiter_token).send().await.unwrap().status(), 403);

    sql(&app, &format!("UPDATE users SET role = 'waiter' WHERE id = '{}'", admin.id()));
    // A waiter works somewhere: where the other waiter does.
    sql(
        &app,
        &format!(
            "INSERT INTO user_locations SELECT '{}', location_id FROM user_locations WHERE user_id = '{}'",
            admin.id(),
            waiter.id()
        ),
    );
    sql(&app, &format!("UPDATE users SET role = 'admin' WHERE id = '{}'", waiter.id()));
    assert_eq!(app.get("/api/v1/users", &admin_token).send().await.unwrap().status(), 403);
    assert_eq!(app.get("/api/v1/orders/report", &admin_token).send().await.unwrap().status(), 403);
    let new_user = json!({"email": "late@example.com", "name": "Late Hire", "password": "una frase bastante larga"});
    assert_eq!(app.post("/api/v1/users", &admin_token).json(&new_user).send().await.unwrap().status(), 403);
    assert_eq!(app.get(&format!("/api/v1/users/{}", waiter.id()), &admin_token).send().await.unwrap().status(), 403);
    assert_eq!(app.get("/api/v1/users", &waiter_token).send().await.unwrap().status(), 200);
    assert_eq!(app.get("/api/v1/orders/report", &waiter_token).send().await.unwrap().status(), 200);
    assert_eq!(app.post("/api/v1/users", &waiter_token).json(&new_user).send().await.unwrap().status(), 201);
    // The demoted admin can no longer cancel another waiter's order.
    let order = create(&app, &waiter_token, &order_body("Mesa 2", &[("Pan", json!("1.00"), json!(1))])).await;
    let cancel = format!("/api/v1/orders/{}/cancel", order["id"].as_str().unwrap());
    assert_eq!(app.post(&cancel, &admin_token).send().await.unwrap().status(), 403);
}

/// The password rule of OWASP ASVS 5 and NIST SP 800-63B when a password is set; a user whose
/// older password breaks it still logs in.
#[tokio::test]
async fn weak_passwords_are_refused_when_set_but_never_lock_anyone_out() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let user =
        |password: &str| json!({"email": "maria.garcia@example.com", "name": "María García", "password": password});
    for password in [
        "password",
        "12345678",
        "        ",
        "\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}",
        "\u{3164}\u{2800}\u{feff}\u{3164}\u{2800}\u{feff}\u{3164}\u{2800}",
        "Password1!",
        "qwertyuiop",
        "comanda2026",
        "Comanda!!",
        "maria.garcia",
        "MariaGarcia99",
        "maria.garcia@example.com",
    ] {
        let response = app.post("/api/v1/users", &admin).json(&user(password)).send().await.unwrap();
        let body = json_body(response, 422).await;
        assert_eq!(body["errors"][0]["field"], "password", "{password:?}: {body}");
    }
    let response =
        app.post("/api/v1/users", &admin).json(&user("tortilla de patatas con cebolla")).send().await.unwrap();
    json_body(response, 201).await;

    // An account whose password predates the rule keeps working.
    let old = app.create_user("old@example.com", domain::Role::Waiter);
    let hasher = infrastructure::Argon2Hasher::new(app.config.settings.argon2).unwrap();
    let hash = application::PasswordHasher::hash(&hasher, &domain::Password::candidate("12345678").unwrap()).unwrap();
    sql(&app, &format!("UPDATE users SET password_hash = '{hash}' WHERE id = '{}'", old.id()));
    app.login("old@example.com", "12345678").await;
}

/// Behind a trusted proxy, IPv6 clients are limited by their /64: another address of the same
/// network does not get a fresh allowance.
#[tokio::test]
async fn ipv6_clients_share_the_limit_of_their_64() {
    let app = TestApp::spawn_with(|s| {
        s.server.rate_limit_login_per_minute = 2;
        s.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let login = |from: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", from)
            .json(&json!({"email": "nobody@example.com", "password": "whatever it is"}))
            .send()
    };
    assert_eq!(login("2001:db8:1:2::1").await.unwrap().status(), 401);
    assert_eq!(login("2001:db8:1:2::2").await.unwrap().status(), 401);
    assert_eq!(login("2001:db8:1:2:ffff:ffff:ffff:fffe").await.unwrap().status(), 429);
    assert_eq!(login("2001:db8:1:3::1").await.unwrap().status(), 401, "another /64 has its own allowance");
}

// --- Requests that hold resources ---

/// A client that announces a body and sends it a byte at a time gets a 408 once the time to
/// read a body has passed, and the connection is closed.
#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off_with_408() {
    let app = TestApp::spawn_with(|s| s.server.body_read_timeout = Duration::from_millis(600)).await;
    for path in ["/api/v1/auth/login", "/api/v1/orders"] {
        let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer x\r\nContent-Length: 64\r\n\r\n{{"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            tokio::select! {
                read = stream.read(&mut buffer) => {
                    let n = read.unwrap();
                    if n == 0 { break; }
                    answer.extend_from_slice(&buffer[..n]);
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    assert!(started.elapsed() < Duration::from_secs(10), "{path}: no answer while the body trickles in");
                    // One more byte of the body, as a slow client would send it.
                    let _ = stream.write_all(b" ").await;
                }
            }
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(5), "{path}: took {:?}", started.elapsed());
    }
    // A body that arrives in time is served as usual.
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "nobody@example.com", "password": "whatever it is"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

/// One page of orders carries at most 1000 lines: a page of big orders holds fewer orders and
/// says there is more; walking the pages still gives every order once.
#[tokio::test]
async fn a_page_of_orders_is_bounded_in_lines() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let lines: Vec<(String, Value, Value)> =
        (0..100).map(|i| (format!("Plato {i}"), json!("1.00"), json!(1))).collect();
    let lines: Vec<(&str, Value, Value)> = lines.iter().map(|(n, p, q)| (n.as_str(), p.clone(), q.clone())).collect();
    for i in 0..12 {
        create(&app, &token, &order_body(&format!("Mesa {i}"), &lines)).await;
    }
    create(&app, &token, &order_body("Mesa pequeña", &[("Pan", json!("1.00"), json!(1))])).await;
    let first = json_body(app.get("/api/v1/orders?limit=100", &token).send().await.unwrap(), 200).await;
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 10, "the small order and nine big ones: 901 lines");
    let total_lines: usize = items.iter().map(|o| o["items"].as_array().unwrap().len()).sum();
    assert!(total_lines <= 1000, "{total_lines}");
    assert!(first["next_cursor"].is_string());
    let all = crate::orders::walk(&app, &token, "?limit=100").await;
    assert_eq!(all.len(), 13);
    let ids: std::collections::HashSet<&str> = all.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 13);
}

// --- Text that looks the same and is not ---

/// Names are stored composed (NFC); names that look alike are one product (compatibility forms,
/// case, combining accents, invisible characters, letters of other scripts that look the same);
/// names that draw nothing and bidirectional controls are refused.
#[tokio::test]
async fn text_that_looks_the_same_is_the_same() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, waiter) = app.waiter().await;
    // Decomposed "Café" is stored composed, and merges with the composed spelling.
    let order = create(
        &app,
        &waiter,
        &order_body(
            "Mesa\u{301} 1",
            &[
                ("Cafe\u{301}", json!("2.00"), json!(1)),
                ("Café", json!("2.00"), json!(2)),
                ("CAF\u{c9}", json!("2.00"), json!(1)),
            ],
        ),
    )
    .await;
    assert_eq!(order["customer_name"], "Mesá 1");
    assert_eq!(
        order["items"],
        json!([{"id": 1, "kind": "open", "menu_item_id": null, "category": null, "note": null,
                "product_name": "Café", "unit_price": "2.00", "quantity": 4, "subtotal": "8.00",
                "kitchen_status": "new", "voided": null}])
    );
    // A Cyrillic С, a full-width name, a zero-width space: the same product at another price.
    for look_alike in ["\u{421}afé", "Ｃａｆé", "Ca\u{200b}fé"] {
        let body = order_body("Mesa 2", &[("Café", json!("2.00"), json!(1)), (look_alike, json!("3.00"), json!(1))]);
        let response = app.post("/api/v1/orders", &waiter).json(&body).send().await.unwrap();
        let problem = json_body(response, 422).await;
        assert_eq!(problem["errors"][0]["field"], "items[1].unit_price", "{look_alike:?}: {problem}");
    }
    // In separate orders they count as one product in the report.
    create(&app, &waiter, &order_body("Mesa 3", &[("\u{421}AFÉ", json!("2.00"), json!(1))])).await;
    let report = json_body(app.get("/api/v1/orders/report", &admin).send().await.unwrap(), 200).await;
    assert_eq!(report["products"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["products"][0]["total_quantity"], 5);

    // Names that draw nothing, and bidirectional controls, are refused wherever a name goes.
    for bad in [
        "\u{200b}",
        "\u{3164}",
        "\u{2800}",
        "\u{feff}",
        "\u{200b}\u{3164} \u{2800}",
        "abc\u{202e}fed",
        "\u{2066}x\u{2069}",
    ] {
        let body = order_body(bad, &[(bad, json!("1.00"), json!(1))]);
        let problem = json_body(app.post("/api/v1/orders", &waiter).json(&body).send().await.unwrap(), 422).await;
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["customer_name", "items[0].product_name"], "{bad:?}");
        let user = json!({"email": "x@example.com", "name": bad, "password": "una frase bastante larga"});
        let problem = json_body(app.post("/api/v1/users", &admin).json(&user).send().await.unwrap(), 422).await;
        assert_eq!(problem["errors"][0]["field"], "name", "{bad:?}");
    }
    assert_eq!(count(&app, "orders"), 2);
}

/// A product name that a spreadsheet would run as a formula behind invisible characters is
/// defused in the CSV, which comes as an attachment.
#[tokio::test]
async fn the_csv_report_is_an_attachment_with_formulas_defused() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, waiter) = app.waiter().await;
    create(&app, &waiter, &order_body("Mesa 1", &[("\u{200b}=HYPERLINK(\"http://x\")", json!("1.00"), json!(1))]))
        .await;
    let response = app.get("/api/v1/orders/report", &admin).header("accept", "text/csv").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-disposition"], "attachment; filename=\"sales-report.csv\"");
    let csv = response.text().await.unwrap();
    assert!(csv.contains("\"'\u{200b}=HYPERLINK(\"\"http://x\"\")\",1,1.00"), "{csv}");
}
