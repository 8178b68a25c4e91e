//! Errors the framework itself produces are problem+json too, with the right status.

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::Value;
use test_support::TestApp;

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert_eq!(body["request_id"], request_id.as_str(), "the body names the request");
    assert!(body["type"].as_str().unwrap().starts_with("/problems/"));
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

#[tokio::test]
async fn unknown_route_is_404() {
    let app = TestApp::spawn().await;
    problem(app.client.get(app.url("/nothing/here")).send().await.unwrap(), 404).await;
    problem(app.client.get(app.url("/api/v1/nothing")).send().await.unwrap(), 404).await;
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let response = app.client.delete(app.url("/api/v1/orders")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET, POST");
    problem(response, 405).await;
    let response = app.client.put(app.url("/api/v1/auth/login")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    problem(response, 405).await;
    let response = app.client.post(app.url("/health/live")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET");
    problem(response, 405).await;
}

#[tokio::test]
async fn malformed_json_is_400_and_wrong_content_type_415() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let response = app
        .post("/api/v1/orders", &token)
        .header(CONTENT_TYPE, "application/json")
        .body("{\"customer_name\": \"Mesa 1\", \"items\": [")
        .send()
        .await
        .unwrap();
    problem(response, 400).await;
    let response =
        app.post("/api/v1/orders", &token).header(CONTENT_TYPE, "text/plain").body("hello").send().await.unwrap();
    problem(response, 415).await;
    let response = app.post("/api/v1/orders", &token).body("{}").send().await.unwrap();
    problem(response, 415).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header(CONTENT_TYPE, "application/xml")
        .body("<login/>")
        .send()
        .await
        .unwrap();
    problem(response, 415).await;
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_with_or_without_content_length() {
    let app = TestApp::spawn().await;
    let (_, token) = app.waiter().await;
    let big = format!("{{\"customer_name\": \"{}\"}}", "x".repeat(70 * 1024));
    let response = app
        .post("/api/v1/orders", &token)
        .header(CONTENT_TYPE, "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    problem(response, 413).await;
    // Chunked: no Content-Length, the limit still holds while streaming.
    let chunks: Vec<Result<String, std::io::Error>> =
        big.as_bytes().chunks(4096).map(|c| Ok(String::from_utf8(c.to_vec()).unwrap())).collect();
    let response = app
        .post("/api/v1/orders", &token)
        .header(CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    problem(response, 413).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header(CONTENT_TYPE, "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    problem(response, 413).await;
}

#[tokio::test]
async fn bad_query_is_400_and_bad_path_404() {
    let app = TestApp::spawn().await;
    let (_, token) = app.admin().await;
    problem(app.get("/api/v1/orders?limit=abc", &token).send().await.unwrap(), 400).await;
    problem(app.get("/api/v1/orders?status=unknown", &token).send().await.unwrap(), 400).await;
    problem(app.get("/api/v1/orders?cursor=garbage", &token).send().await.unwrap(), 400).await;
    problem(app.get("/api/v1/orders/not-a-uuid", &token).send().await.unwrap(), 404).await;
    problem(app.get("/api/v1/users/..%2F..%2Fetc%2Fpasswd", &token).send().await.unwrap(), 404).await;
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_made_otherwise() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/health/live")).header("x-request-id", "abc-123.xyz").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123.xyz");
    let response = app.client.get(app.url("/nope")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "abc-123");
    for insane in ["has space", &"x".repeat(200), "semi;colon"] {
        let response = app
            .client
            .get(app.url("/health/live"))
            .header("x-request-id", HeaderValue::from_str(insane).unwrap())
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(id, insane);
        assert!(uuid::Uuid::parse_str(id).is_ok());
    }
}

#[tokio::test]
async fn swagger_ui_is_served_offline_and_docs_redirects() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), 308);
    assert_eq!(response.headers()["location"], "/docs/");
    let response = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("swagger-ui"));
    let response = app.client.get(app.url("/docs/swagger-ui-bundle.js")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap().len() > 100_000);
}

/// The served document is the committed snapshot: a contract change shows up in review.
/// `UPDATE_SNAPSHOT=1` rewrites the snapshot.
#[tokio::test]
async fn openapi_document_matches_the_committed_snapshot() {
    let app = TestApp::spawn().await;
    let served: Value = app.client.get(app.url("/api-docs/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOT").is_some() {
        std::fs::write(path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(path).expect("docs/openapi.json is missing; run with UPDATE_SNAPSHOT=1");
    assert!(committed == pretty, "the OpenAPI document changed; review it and run with UPDATE_SNAPSHOT=1 to accept");
}
