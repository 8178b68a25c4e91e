//! Staff users over HTTP.

use std::collections::HashSet;

use serde_json::{Value, json};
use test_support::{TestApp, json_body};

#[tokio::test]
async fn an_admin_creates_a_waiter_who_can_log_in() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let response = app
        .post("/api/v1/users", &admin)
        .json(&json!({"email": " Luis@Example.COM ", "name": "  Luis   García ", "password": "a fine password"}))
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body = json_body(response, 201).await;
    assert_eq!(body["email"], "Luis@example.com");
    assert_eq!(body["name"], "Luis García");
    assert_eq!(body["role"], "waiter");
    assert_eq!(location, format!("/api/v1/users/{}", body["id"].as_str().unwrap()));
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());
    let token = app.login("luis@example.com", "a fine password").await;
    let me = json_body(app.get("/api/v1/users/me", &token).send().await.unwrap(), 200).await;
    assert_eq!(me, body);
    // The user itself may read itself; another waiter may not.
    let own = json_body(app.get(&location, &token).send().await.unwrap(), 200).await;
    assert_eq!(own, body);
    let (_, other) = app.waiter().await;
    assert_eq!(app.get(&location, &other).send().await.unwrap().status(), 403);
    assert_eq!(app.get(&format!("/api/v1/users/{}", uuid::Uuid::now_v7()), &admin).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn emails_are_unique_without_regard_to_case() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let create = |email: &'static str| {
        app.post("/api/v1/users", &admin)
            .json(&json!({"email": email, "name": "Eva", "password": "a fine password", "role": "admin"}))
            .send()
    };
    json_body(create("eva@example.com").await.unwrap(), 201).await;
    let body = json_body(create("EVA@Example.com").await.unwrap(), 409).await;
    assert_eq!(body["type"], "/problems/conflict");
}

#[tokio::test]
async fn every_invalid_field_is_listed_in_one_422() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let response = app
        .post("/api/v1/users", &admin)
        .json(&json!({"email": "not-an-email", "name": "x", "password": "short", "role": "owner"}))
        .send()
        .await
        .unwrap();
    let body = json_body(response, 422).await;
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["email", "name", "password", "role"]);
    let response = app
        .post("/api/v1/users", &admin)
        .json(&json!({"email": "same@example.com", "name": "Name\u{0}", "password": "SAME@example.com"}))
        .send()
        .await
        .unwrap();
    let body = json_body(response, 422).await;
    let messages: Vec<String> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}: {}", e["field"].as_str().unwrap(), e["message"].as_str().unwrap()))
        .collect();
    assert_eq!(messages, ["name: must not contain control characters", "password: must not be the email address"]);
    let response = app.post("/api/v1/users", &admin).json(&json!({})).send().await.unwrap();
    let body = json_body(response, 422).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn users_are_listed_newest_first_page_by_page() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    for i in 0..5 {
        app.create_user(&format!("u{i}@example.com"), domain::Role::Waiter);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?limit=2&cursor={c}"),
            None => "/api/v1/users?limit=2".to_owned(),
        };
        let page = json_body(app.get(&path, &admin).send().await.unwrap(), 200).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items.iter().map(|u| u["created_at"].as_str().unwrap().to_owned() + "|" + u["id"].as_str().unwrap()),
        );
        match &page["next_cursor"] {
            Value::String(c) => cursor = Some(c.clone()),
            _ => break,
        }
    }
    assert_eq!(seen.len(), 6, "5 waiters and the admin");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 6);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    for limit in ["0", "101"] {
        let body = json_body(app.get(&format!("/api/v1/users?limit={limit}"), &admin).send().await.unwrap(), 422).await;
        assert_eq!(body["errors"][0]["field"], "limit");
    }
}

/// Case is ignored beyond ASCII too (the database's lower() under the C locale would not).
#[tokio::test]
async fn non_ascii_emails_are_unique_and_log_in_without_regard_to_case() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let create = |email: &'static str| {
        app.post("/api/v1/users", &admin)
            .json(&json!({"email": email, "name": "Ángel", "password": "a fine password"}))
            .send()
    };
    json_body(create("Ángel@Example.com").await.unwrap(), 201).await;
    json_body(create("ÁNGEL@example.com").await.unwrap(), 409).await;
    json_body(create("ángel@EXAMPLE.COM").await.unwrap(), 409).await;
    app.login("ángel@example.com", "a fine password").await;
}
