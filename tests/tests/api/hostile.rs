//! Hostile input: each answered with a clear 4xx problem+json, nothing stored; and the headers
//! every response carries.

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use test_support::TestApp;

use crate::orders::{count, create, order_body};

async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    assert!((400..500).contains(&status), "expected a 4xx, got {status}");
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    (status, response.json().await.unwrap())
}

async fn post_raw(app: &TestApp, token: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    problem(app.post("/api/v1/orders", token).header(CONTENT_TYPE, "application/json").body(body).send().await.unwrap())
        .await
}

#[tokio::test]
async fn malformed_bodies_are_4xx_and_store_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!(
        "{{\"customer_name\": \"M\", \"items\": [{{\"product_name\": {}1{}}}]}}",
        "{\"a\":".repeat(500),
        "}".repeat(500)
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("truncated", br#"{"customer_name": "Mesa"#.to_vec(), 400),
        ("empty", Vec::new(), 400),
        ("not json", b"customer_name=Mesa".to_vec(), 400),
        ("deeply nested array", nested.into_bytes(), 400),
        ("deeply nested object", deep_object.into_bytes(), 400),
        ("duplicate keys", br#"{"customer_name": "A", "customer_name": "B", "items": []}"#.to_vec(), 400),
        ("invalid UTF-8", b"{\"customer_name\": \"\xff\xfe\", \"items\": []}".to_vec(), 400),
        ("lone surrogate", br#"{"customer_name": "\ud800", "items": []}"#.to_vec(), 400),
        ("NUL escaped", br#"{"customer_name": "Mesa\u0000", "items": [{"product_name": "Pan", "unit_price": "1.00", "quantity": 1}]}"#.to_vec(), 422),
        ("control characters", br#"{"customer_name": "Mesa\u001b[31m", "items": [{"product_name": "Pan\u0007", "unit_price": "1.00", "quantity": 1}]}"#.to_vec(), 422),
        ("numeric overflow", br#"{"customer_name": "M", "items": [{"product_name": "Pan", "unit_price": 1e309, "quantity": 9223372036854775808}]}"#.to_vec(), 422),
        ("beyond NUMERIC", br#"{"customer_name": "M", "items": [{"product_name": "Pan", "unit_price": "99999999999999999999999999999999999999999.99", "quantity": 2147483648}]}"#.to_vec(), 422),
        ("huge exponent", br#"{"customer_name": "M", "items": [{"product_name": "Pan", "unit_price": 1e-999999, "quantity": 1}]}"#.to_vec(), 422),
    ];
    for (name, body, status) in cases {
        let (got, problem) = post_raw(&app, &token, body).await;
        assert_eq!(got, status, "{name}: {problem}");
        assert!(problem["detail"].is_string(), "{name}");
    }
    let long = json!({"customer_name": "x".repeat(20_000), "items": [{"product_name": "y".repeat(20_000), "unit_price": "1.00", "quantity": 1}]});
    let (status, problem) = post_raw(&app, &token, long.to_string()).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);
    let lines: Vec<Value> =
        (0..10_000).map(|i| json!({"product_name": format!("p{i}"), "unit_price": 1, "quantity": 1})).collect();
    let (status, _) = post_raw(&app, &token, json!({"customer_name": "M", "items": lines}).to_string()).await;
    assert_eq!(status, 413, "10 000 lines are far over the body limit");
    assert_eq!(count(&app, "orders"), 0);
    assert_eq!(count(&app, "order_items"), 0);
}

#[tokio::test]
async fn injection_strings_are_stored_literally_and_returned_escaped() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let nasty = [
        "Robert'); DROP TABLE orders;--",
        "<script>alert(\"x\")</script>",
        "' OR '1'='1",
        "${jndi:ldap://x}",
        "\"quoted\" \\ backslash",
        "emoji 🍕 and ñ",
    ];
    let items: Vec<(&str, Value, Value)> = nasty.iter().map(|n| (*n, json!("1.00"), json!(1))).collect();
    let order = create(&app, &token, &order_body(nasty[0], &items)).await;
    assert_eq!(order["customer_name"], nasty[0]);
    let id = order["id"].as_str().unwrap();
    let raw = app.get(&format!("/api/v1/orders/{id}"), &token).send().await.unwrap().text().await.unwrap();
    assert!(raw.contains(r#"<script>alert(\"x\")</script>"#), "quotes are escaped in JSON: {raw}");
    let read: Value = serde_json::from_str(&raw).unwrap();
    let names: Vec<&str> =
        read["items"].as_array().unwrap().iter().map(|i| i["product_name"].as_str().unwrap()).collect();
    assert_eq!(names, nasty);
    assert_eq!(count(&app, "orders"), 1, "the tables are still there");
}

#[tokio::test]
async fn path_traversal_and_odd_ids_are_404() {
    let app = TestApp::spawn().await;
    let (_, token) = app.admin().await;
    for path in [
        "/api/v1/orders/..%2F..%2Fusers",
        "/api/v1/orders/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/v1/orders/00000000-0000-0000-0000-000000000000%00",
        "/api/v1/orders/1%20OR%201=1",
        "/api/v1/users/%27%3B%20DROP%20TABLE%20users%3B--",
    ] {
        let (status, _) = problem(app.get(path, &token).send().await.unwrap()).await;
        assert_eq!(status, 404, "{path}");
    }
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let app = TestApp::spawn().await;
    let big = "x".repeat(20 * 1024);
    let response = app.client.get(app.url("/api/v1/orders")).header("x-filler", big).send().await.unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    assert!(response.headers().contains_key("x-request-id"));
    // Beyond what the HTTP layer reads at all: refused or cut off, never served.
    let huge = "x".repeat(200 * 1024);
    match app.client.get(app.url("/health/live")).header("x-filler", huge).send().await {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
    // And the server is fine afterwards (on a new connection: the refused one was closed).
    assert_eq!(reqwest::Client::new().get(app.url("/health/live")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_flood_without_a_token_is_401_then_rate_limited() {
    let app = TestApp::spawn_with(|s| s.server.rate_limit_per_minute = 50).await;
    let mut statuses = Vec::new();
    for _ in 0..60 {
        statuses
            .push(app.client.post(app.url("/api/v1/orders")).json(&json!({})).send().await.unwrap().status().as_u16());
    }
    assert!(statuses[..50].iter().all(|s| *s == 401));
    assert!(statuses[50..].iter().all(|s| *s == 429));
    assert_eq!(count(&app, "orders"), 0);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let responses = vec![
        app.client.get(app.url("/health/live")).send().await.unwrap(),
        app.client.get(app.url("/docs/")).send().await.unwrap(),
        app.client.get(app.url("/nope")).send().await.unwrap(),
        app.get("/api/v1/users/me", &token).send().await.unwrap(),
        app.client.get(app.url("/api/v1/users/me")).send().await.unwrap(),
    ];
    for response in responses {
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{}", response.url());
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["content-security-policy"], "frame-ancestors 'none'");
        assert!(h.contains_key("x-request-id"));
        assert!(h.get("access-control-allow-origin").is_none(), "CORS is off by default");
        if response.url().path().starts_with("/api/") {
            assert_eq!(h["cache-control"], "no-store");
        }
    }
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let app = TestApp::spawn_with(|s| s.server.cors_allowed_origins = vec!["https://caja.example".into()]).await;
    let (_, token) = app.waiter().await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/orders"))
        .header("origin", "https://caja.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type, idempotency-key")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://caja.example");
    let allowed = app.get("/api/v1/orders", &token).header("origin", "https://caja.example").send().await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://caja.example");
    let exposed = allowed.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(exposed.contains("x-request-id") && exposed.contains("location"), "{exposed}");
    // Another origin gets no CORS headers, so browsers refuse to hand it the answer.
    let other = app.get("/api/v1/orders", &token).header("origin", "https://evil.example").send().await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/orders"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.headers().get("access-control-allow-origin").is_none());
}
