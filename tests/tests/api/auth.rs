//! Logging in, tokens and their attacks, roles, rate limits, the hashing queue.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use test_support::{PASSWORD, TestApp, json_body};

use domain::Role;

const SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

fn without_request_id(mut body: Value) -> Value {
    body.as_object_mut().unwrap().remove("request_id");
    body
}

#[tokio::test]
async fn login_with_json_and_with_the_oauth2_form() {
    let app = TestApp::spawn().await;
    let user = app.create_user("Ana@Example.com", Role::Waiter);
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "  ana@EXAMPLE.com ", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = json_body(response, 200).await;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    let token = body["access_token"].as_str().unwrap();
    let me = json_body(app.get("/api/v1/users/me", token).send().await.unwrap(), 200).await;
    assert_eq!(me["id"], user.id().to_string());
    assert_eq!(me["email"], "Ana@example.com");

    let form = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .form(&[("grant_type", "password"), ("username", "ana@example.com"), ("password", PASSWORD), ("scope", "")])
        .send()
        .await
        .unwrap();
    let body = json_body(form, 200).await;
    assert!(body["access_token"].is_string());

    let wrong_grant = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .form(&[("grant_type", "client_credentials"), ("username", "ana@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let body = json_body(wrong_grant, 422).await;
    assert_eq!(body["errors"][0]["field"], "grant_type");
}

#[tokio::test]
async fn unknown_email_and_wrong_password_are_the_same_401() {
    let app = TestApp::spawn().await;
    app.create_user("known@example.com", Role::Waiter);
    let attempt = |email: &'static str, password: &'static str| {
        app.client.post(app.url("/api/v1/auth/login")).json(&json!({"email": email, "password": password})).send()
    };
    let wrong_password = attempt("known@example.com", "not the password").await.unwrap();
    assert_eq!(wrong_password.headers()["www-authenticate"], "Bearer");
    let wrong_password = json_body(wrong_password, 401).await;
    let unknown = json_body(attempt("nobody@example.com", "not the password").await.unwrap(), 401).await;
    let malformed = json_body(attempt("not an email", "not the password").await.unwrap(), 401).await;
    assert_eq!(without_request_id(wrong_password.clone()), without_request_id(unknown));
    assert_eq!(without_request_id(wrong_password), without_request_id(malformed));
}

#[tokio::test]
async fn missing_credentials_are_422_listing_both() {
    let app = TestApp::spawn().await;
    let response = app.client.post(app.url("/api/v1/auth/login")).json(&json!({})).send().await.unwrap();
    let body = json_body(response, 422).await;
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["email", "password"]);
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

fn claims(sub: &str, role: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub, "role": role, "iat": now, "exp": now + 600, "iss": "comanda", "aud": "comanda-api", "jti": "x"})
}

fn sign(algorithm: Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

/// Every kind of forged or stale token is a 401 with `WWW-Authenticate: Bearer`.
#[tokio::test]
async fn every_jwt_attack_is_refused() {
    let app = TestApp::spawn().await;
    let (waiter, good) = app.waiter().await;
    let sub = waiter.id().to_string();
    let now = chrono::Utc::now().timestamp();
    let mut attacks: Vec<(&str, String)> = Vec::new();
    attacks
        .push(("alg none", format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims(&sub, "admin")))));
    attacks.push(("alg None, signature kept", {
        let parts: Vec<&str> = good.split('.').collect();
        format!("{}.{}.{}", b64(&json!({"alg": "None"})), parts[1], parts[2])
    }));
    attacks.push(("HS512 with the right secret", sign(Algorithm::HS512, SECRET, &claims(&sub, "waiter"))));
    attacks.push(("HS384 with the right secret", sign(Algorithm::HS384, SECRET, &claims(&sub, "waiter"))));
    attacks
        .push(("wrong key", sign(Algorithm::HS256, "another-secret-another-secret-another", &claims(&sub, "waiter"))));
    attacks.push(("tampered payload", {
        let parts: Vec<&str> = good.split('.').collect();
        format!("{}.{}.{}", parts[0], b64(&claims(&sub, "admin")), parts[2])
    }));
    let mut expired = claims(&sub, "waiter");
    expired["exp"] = json!(now - 120);
    expired["iat"] = json!(now - 3600);
    attacks.push(("expired", sign(Algorithm::HS256, SECRET, &expired)));
    let mut issuer = claims(&sub, "waiter");
    issuer["iss"] = json!("someone-else");
    attacks.push(("wrong issuer", sign(Algorithm::HS256, SECRET, &issuer)));
    let mut audience = claims(&sub, "waiter");
    audience["aud"] = json!("another-api");
    attacks.push(("wrong audience", sign(Algorithm::HS256, SECRET, &audience)));
    let mut no_exp = claims(&sub, "waiter");
    no_exp.as_object_mut().unwrap().remove("exp");
    attacks.push(("no expiry", sign(Algorithm::HS256, SECRET, &no_exp)));
    attacks.push(("unknown role", sign(Algorithm::HS256, SECRET, &claims(&sub, "owner"))));
    attacks.push(("garbage", "not.a.token".to_owned()));
    attacks.push(("empty", String::new()));

    // The control: a correctly signed token of our own is accepted.
    let ours = sign(Algorithm::HS256, SECRET, &claims(&sub, "waiter"));
    assert_eq!(app.get("/api/v1/users/me", &ours).send().await.unwrap().status(), 200);

    for (name, token) in attacks {
        let response = app.get("/api/v1/users/me", &token).send().await.unwrap();
        assert_eq!(response.status(), 401, "{name} was not refused");
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{name}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    for header in ["Basic dXNlcjpwYXNz", "Bearer", &format!("Token {good}")] {
        let response =
            app.client.get(app.url("/api/v1/users/me")).header("authorization", header).send().await.unwrap();
        assert_eq!(response.status(), 401, "{header}");
    }
}

#[tokio::test]
async fn a_token_whose_user_no_longer_exists_is_refused() {
    let app = TestApp::spawn().await;
    let (waiter, token) = app.waiter().await;
    assert_eq!(app.get("/api/v1/orders", &token).send().await.unwrap().status(), 200);
    let mut conn = app.db.conn();
    for table in ["user_locations WHERE user_id", "users WHERE id"] {
        diesel::sql_query(format!("DELETE FROM {table} = $1"))
            .bind::<diesel::sql_types::Uuid, _>(waiter.id().0)
            .execute(&mut conn)
            .unwrap();
    }
    for (method, path) in [("GET", "/api/v1/users/me"), ("GET", "/api/v1/orders"), ("POST", "/api/v1/orders")] {
        let request = if method == "GET" { app.get(path, &token) } else { app.post(path, &token) };
        let body =
            json!({"customer_name": "Mesa 1", "items": [{"product_name": "Pan", "unit_price": "1.00", "quantity": 1}]});
        let response = request.json(&body).send().await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }
}

/// Every protected route: 401 without a token, 403 for a waiter where only admins may go.
#[tokio::test]
async fn roles_are_checked_on_every_protected_route() {
    let app = TestApp::spawn().await;
    let (admin, admin_token) = app.admin().await;
    let (_, waiter_token) = app.waiter().await;
    let id = uuid::Uuid::now_v7();
    let protected = [
        ("POST", "/api/v1/users".to_owned()),
        ("GET", "/api/v1/users".to_owned()),
        ("GET", "/api/v1/users/me".to_owned()),
        ("GET", format!("/api/v1/users/{}", admin.id())),
        ("POST", "/api/v1/orders".to_owned()),
        ("GET", "/api/v1/orders".to_owned()),
        ("GET", "/api/v1/orders/report".to_owned()),
        ("GET", format!("/api/v1/orders/{id}")),
        ("POST", format!("/api/v1/orders/{id}/cancel")),
        ("POST", format!("/api/v1/orders/{id}/payments")),
        ("GET", format!("/api/v1/orders/{id}/payments")),
    ];
    for (method, path) in &protected {
        let request = app.client.request(method.parse().unwrap(), app.url(path));
        let response = request.json(&json!({})).send().await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path} without a token");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    let admin_only = [
        ("POST", "/api/v1/users".to_owned()),
        ("GET", "/api/v1/users".to_owned()),
        ("GET", format!("/api/v1/users/{}", admin.id())),
        ("GET", "/api/v1/orders/report".to_owned()),
    ];
    for (method, path) in &admin_only {
        let request = app.client.request(method.parse().unwrap(), app.url(path)).bearer_auth(&waiter_token);
        let response = request
            .json(&json!({"email": "x@example.com", "name": "Xx", "password": "long enough"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path} as a waiter");
        let request = app.client.request(method.parse().unwrap(), app.url(path)).bearer_auth(&admin_token);
        let response = request
            .json(&json!({"email": "x@example.com", "name": "Xx", "password": "long enough"}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{method} {path} as an admin: {}", response.status());
    }
}

#[tokio::test]
async fn login_rate_limit_is_429_with_headers() {
    let app = TestApp::spawn_with(|s| s.server.rate_limit_login_per_minute = 5).await;
    let attempt = || {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": "x@example.com", "password": "wrong password"}))
            .send()
    };
    for i in 0..5 {
        let response = attempt().await.unwrap();
        assert_eq!(response.status(), 401, "attempt {i}");
        assert_eq!(response.headers()["ratelimit-limit"], "5");
        assert_eq!(response.headers()["ratelimit-remaining"], (4 - i).to_string().as_str());
    }
    let response = attempt().await.unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(response.headers()["ratelimit-remaining"], "0");
    assert!(response.headers().contains_key("ratelimit-reset"));
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 429);
    // Other routes have their own, larger budget.
    assert_eq!(app.client.get(app.url("/api/v1/orders")).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn general_rate_limit_applies_to_everything_else_but_health() {
    let app = TestApp::spawn_with(|s| s.server.rate_limit_per_minute = 3).await;
    for _ in 0..3 {
        assert_eq!(app.client.get(app.url("/api/v1/orders")).send().await.unwrap().status(), 401);
    }
    let response = app.client.get(app.url("/api/v1/orders")).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["ratelimit-limit"], "3");
    for _ in 0..5 {
        assert_eq!(app.client.get(app.url("/health/live")).send().await.unwrap().status(), 200);
    }
}

/// With the hashing pool full, logins get a fast 503 with Retry-After and the other routes
/// keep answering.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_hashing_queue_answers_503_and_starves_nothing() {
    let app = TestApp::spawn_with(|s| {
        s.server.hash_workers = 1;
        s.server.hash_queue = 1;
        s.settings.argon2.memory_kib = 32 * 1024;
        s.settings.argon2.iterations = 8;
    })
    .await;
    app.create_user("busy@example.com", Role::Waiter);
    let logins: Vec<_> = (0..8)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/api/v1/auth/login");
            tokio::spawn(async move {
                client.post(url).json(&json!({"email": "busy@example.com", "password": PASSWORD})).send().await.unwrap()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    assert_eq!(app.client.get(app.url("/health/live")).send().await.unwrap().status(), 200);
    assert!(started.elapsed() < Duration::from_millis(500), "health waited behind the hashing");
    let mut ok = 0;
    let mut busy = 0;
    for login in logins {
        let response = login.await.unwrap();
        match response.status().as_u16() {
            200 => ok += 1,
            503 => {
                assert_eq!(response.headers()["retry-after"], "1");
                assert_eq!(response.headers()["content-type"], "application/problem+json");
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(ok >= 1, "no login got through");
    assert!(busy >= 1, "the queue never filled");
}

/// A login with a hash made with older parameters stores a hash with today's.
#[tokio::test]
async fn login_upgrades_an_older_parameter_hash() {
    let app = TestApp::spawn().await;
    let user = app.create_user("old@example.com", Role::Waiter);
    let old = infrastructure::Argon2Hasher::new(infrastructure::settings::Argon2Settings {
        memory_kib: 512,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap();
    let old_hash =
        application::PasswordHasher::hash(&old, &domain::Password::parse_new(PASSWORD, None, None).unwrap()).unwrap();
    let mut conn = app.db.conn();
    let set = |conn: &mut PgConnection, hash: &str| {
        diesel::sql_query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind::<diesel::sql_types::Text, _>(hash)
            .bind::<diesel::sql_types::Uuid, _>(user.id().0)
            .execute(conn)
            .unwrap();
    };
    set(&mut conn, &old_hash);
    app.login("old@example.com", PASSWORD).await;
    #[derive(QueryableByName)]
    struct Hash {
        #[diesel(sql_type = diesel::sql_types::Text)]
        password_hash: String,
    }
    let stored: Hash = diesel::sql_query("SELECT password_hash FROM users WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(user.id().0)
        .get_result(&mut conn)
        .unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{}", stored.password_hash);
    // And the password still works.
    app.login("old@example.com", PASSWORD).await;
}
