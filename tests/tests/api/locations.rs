//! Locations, roles and the business day: the permission table walked route by route, role by
//! role, in the user's own location and in another; business days across midnight and across
//! daylight-saving changes, read live and from the rollup; locations and staff assignments.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Value, json};
use test_support::{TestApp, json_body};

use api::access::{Gate, ROUTES};
use domain::permission::reach;
use domain::{LocationId, Reach, Role, UserId};

use crate::report::Placer;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn order_body(location: Option<LocationId>) -> Value {
    let mut body =
        json!({"customer_name": "Mesa 1", "items": [{"product_name": "Pan", "unit_price": "2.00", "quantity": 1}]});
    if let Some(location) = location {
        body["location_id"] = json!(location.0);
    }
    body
}

async fn create_order(app: &TestApp, token: &str, location: Option<LocationId>) -> Value {
    json_body(app.post("/api/v1/orders", token).json(&order_body(location)).send().await.unwrap(), 201).await
}

fn location_of(item: &Value) -> String {
    item["location_id"].as_str().unwrap().to_owned()
}

/// The docs' permission table is the code's: `UPDATE_SNAPSHOT=1` rewrites it.
#[test]
fn the_permission_table_in_the_docs_is_the_codes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PERMISSIONS.md");
    let rendered = api::access::permissions_markdown();
    if std::env::var_os("UPDATE_SNAPSHOT").is_some() {
        std::fs::write(path, &rendered).unwrap();
    }
    let committed = std::fs::read_to_string(path).expect("docs/PERMISSIONS.md is missing; run with UPDATE_SNAPSHOT=1");
    assert!(committed == rendered, "docs/PERMISSIONS.md is not the code's table; run with UPDATE_SNAPSHOT=1");
}

/// Every operation of the OpenAPI document is in the route table, and nothing else is.
#[test]
fn the_route_table_holds_every_operation_of_the_document() {
    let document = serde_json::to_value(api::openapi::document()).unwrap();
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    let table: BTreeSet<(String, String)> = ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    assert_eq!(operations, table);
}

/// Where a probe's request points, relative to the caller's location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The caller's own location.
    Own,
    /// A location the caller does not work in.
    Other,
}

/// How a route meets locations: a resource that lies in one (addressed by id), a location the
/// request names (body or query), or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scoped {
    Resource,
    Named,
    Unscoped,
}

/// One request of the walk, and how its route meets locations.
struct Probe {
    method: String,
    path: String,
    body: Option<Value>,
    scoped: Scoped,
    /// What success is (200 or 201).
    success: u16,
}

/// The world the probes act on: two locations, staff of each role in the first, a waiter in
/// the second.
struct World {
    app: TestApp,
    here: LocationId,
    there: LocationId,
    admin: String,
    /// A waiter working here, and one working there (their orders are the probes' targets).
    waiter_here: (UserId, String),
    waiter_there: (UserId, String),
    /// A menu category and an item of it.
    category: String,
    item: String,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let (_, admin) = app.admin().await;
        let here = app.first_location(&admin).await;
        let there = app.create_location(&admin, "Elsewhere", "Europe/Madrid", "04:00").await;
        let (waiter, token) = app.staff_with_token(Role::Waiter, Some(vec![here])).await;
        let (other, other_token) = app.staff_with_token(Role::Waiter, Some(vec![there])).await;
        let (category, item) = crate::menu::category_and_item(&app, &admin, "Bebidas", "Agua", "1.50").await;
        Self {
            app,
            here,
            there,
            admin,
            waiter_here: (waiter.id(), token),
            waiter_there: (other.id(), other_token),
            category,
            item,
        }
    }

    fn location(&self, place: Place) -> LocationId {
        if place == Place::Own { self.here } else { self.there }
    }

    /// A new order in `place`, by that place's waiter.
    async fn order(&self, place: Place) -> String {
        let (_, token) = if place == Place::Own { &self.waiter_here } else { &self.waiter_there };
        create_order(&self.app, token, None).await["id"].as_str().unwrap().to_owned()
    }

    /// A new ticket in `place`: an order of that place's waiter, sent to the kitchen.
    async fn ticket(&self, place: Place) -> String {
        let (_, token) = if place == Place::Own { &self.waiter_here } else { &self.waiter_there };
        let order = self.order(place).await;
        let sent = self.app.post(&format!("/api/v1/orders/{order}/send"), token).send().await.unwrap();
        json_body(sent, 201).await["id"].as_str().unwrap().to_owned()
    }

    /// A ticket in `place` that the kitchen has made ready.
    async fn ready_ticket(&self, place: Place) -> String {
        let ticket = self.ticket(place).await;
        let ready =
            self.app.post(&format!("/api/v1/kitchen/tickets/{ticket}/ready"), &self.admin).send().await.unwrap();
        json_body(ready, 200).await;
        ticket
    }

    /// The request that exercises `method path` at `place`.
    async fn probe(&self, method: &str, path: &str, place: Place) -> Probe {
        let location = self.location(place);
        let fresh_email = || format!("new-{}@example.com", uuid::Uuid::now_v7().simple());
        let target_waiter = if place == Place::Own { self.waiter_here.0 } else { self.waiter_there.0 };
        let (path, body, scoped, success) = match (method, path) {
            ("GET", "/api/v1/users/me") => (path.to_owned(), None, Scoped::Unscoped, 200),
            ("POST", "/api/v1/users") => {
                let body = json!({"email": fresh_email(), "name": "Nueva Persona", "password": "una frase bastante larga", "location_ids": [location.0]});
                (path.to_owned(), Some(body), Scoped::Unscoped, 201)
            }
            ("GET", "/api/v1/users") => (path.to_owned(), None, Scoped::Unscoped, 200),
            ("GET", "/api/v1/users/{id}") => (format!("/api/v1/users/{target_waiter}"), None, Scoped::Unscoped, 200),
            ("PUT", "/api/v1/users/{id}/locations") => (
                format!("/api/v1/users/{target_waiter}/locations"),
                Some(json!({"location_ids": [location.0]})),
                Scoped::Unscoped,
                200,
            ),
            ("POST", "/api/v1/locations") => {
                let body = json!({"name": format!("Local {}", uuid::Uuid::now_v7().simple()), "time_zone": "UTC"});
                (path.to_owned(), Some(body), Scoped::Unscoped, 201)
            }
            ("GET", "/api/v1/locations") => (path.to_owned(), None, Scoped::Unscoped, 200),
            ("GET", "/api/v1/locations/{id}") => (format!("/api/v1/locations/{location}"), None, Scoped::Resource, 200),
            ("PATCH", "/api/v1/locations/{id}") => {
                (format!("/api/v1/locations/{location}"), Some(json!({"tax_rate": "5"})), Scoped::Resource, 200)
            }
            ("POST", "/api/v1/orders") => (path.to_owned(), Some(order_body(Some(location))), Scoped::Named, 201),
            ("GET", "/api/v1/orders") => (format!("{path}?location_id={location}"), None, Scoped::Named, 200),
            ("GET", "/api/v1/orders/report") => (format!("{path}?location_id={location}"), None, Scoped::Named, 200),
            ("GET", "/api/v1/orders/{id}") => {
                (format!("/api/v1/orders/{}", self.order(place).await), None, Scoped::Resource, 200)
            }
            ("POST", "/api/v1/orders/{id}/cancel") => {
                (format!("/api/v1/orders/{}/cancel", self.order(place).await), None, Scoped::Resource, 200)
            }
            ("POST", "/api/v1/orders/{id}/payments") => (
                format!("/api/v1/orders/{}/payments", self.order(place).await),
                Some(json!({"amount": "1.00", "method": "cash"})),
                Scoped::Resource,
                201,
            ),
            ("GET", "/api/v1/orders/{id}/payments") => {
                (format!("/api/v1/orders/{}/payments", self.order(place).await), None, Scoped::Resource, 200)
            }
            ("PUT" | "DELETE", "/api/v1/locations/{id}/sold-out/{item_id}") => {
                (format!("/api/v1/locations/{location}/sold-out/{}", self.item), None, Scoped::Resource, 204)
            }
            ("POST", "/api/v1/menu/categories") => {
                let body = json!({"name": format!("Categoría {}", uuid::Uuid::now_v7().simple())});
                (path.to_owned(), Some(body), Scoped::Unscoped, 201)
            }
            ("GET", "/api/v1/menu/categories") => (path.to_owned(), None, Scoped::Unscoped, 200),
            ("GET", "/api/v1/menu/categories/{id}") => {
                (format!("/api/v1/menu/categories/{}", self.category), None, Scoped::Unscoped, 200)
            }
            ("PATCH", "/api/v1/menu/categories/{id}") => (
                format!("/api/v1/menu/categories/{}", self.category),
                Some(json!({"position": 5})),
                Scoped::Unscoped,
                200,
            ),
            ("POST", "/api/v1/menu/items") => {
                let name = format!("Plato {}", uuid::Uuid::now_v7().simple());
                let body = json!({"name": name, "category_id": self.category, "price": "9.90"});
                (path.to_owned(), Some(body), Scoped::Unscoped, 201)
            }
            ("GET", "/api/v1/menu/items") => (format!("{path}?location_id={location}"), None, Scoped::Named, 200),
            ("GET", "/api/v1/menu/items/{id}") => {
                (format!("/api/v1/menu/items/{}?location_id={location}", self.item), None, Scoped::Named, 200)
            }
            ("PATCH", "/api/v1/menu/items/{id}") => {
                (format!("/api/v1/menu/items/{}", self.item), Some(json!({"price": "1.60"})), Scoped::Unscoped, 200)
            }
            ("GET", "/api/v1/menu/items/{id}/prices") => {
                (format!("/api/v1/menu/items/{}/prices", self.item), None, Scoped::Unscoped, 200)
            }
            ("POST", "/api/v1/orders/{id}/items") => (
                format!("/api/v1/orders/{}/items", self.order(place).await),
                Some(json!({"items": [{"product_name": "Pan", "unit_price": "1.00", "quantity": 1}]})),
                Scoped::Resource,
                200,
            ),
            ("POST", "/api/v1/orders/{id}/items/{line_id}/void") => (
                format!("/api/v1/orders/{}/items/1/void", self.order(place).await),
                Some(json!({"reason": "wrong table"})),
                Scoped::Resource,
                200,
            ),
            ("POST", "/api/v1/orders/{id}/send") => {
                (format!("/api/v1/orders/{}/send", self.order(place).await), None, Scoped::Resource, 201)
            }
            ("GET", "/api/v1/kitchen/tickets") => (format!("{path}?location_id={location}"), None, Scoped::Named, 200),
            ("GET", "/api/v1/kitchen/tickets/{id}") => {
                (format!("/api/v1/kitchen/tickets/{}", self.ticket(place).await), None, Scoped::Resource, 200)
            }
            ("POST", "/api/v1/kitchen/tickets/{id}/ready") => {
                (format!("/api/v1/kitchen/tickets/{}/ready", self.ticket(place).await), None, Scoped::Resource, 200)
            }
            ("POST", "/api/v1/kitchen/tickets/{id}/served") => (
                format!("/api/v1/kitchen/tickets/{}/served", self.ready_ticket(place).await),
                None,
                Scoped::Resource,
                200,
            ),
            // The stream never ends: the walk reads its status only.
            ("GET", "/api/v1/kitchen/stream") => (format!("{path}?location_id={location}"), None, Scoped::Named, 200),
            _ => panic!("no probe for {method} {path}: add one to tests/tests/api/locations.rs"),
        };
        Probe { method: method.to_owned(), path, body, scoped, success }
    }
}

/// What the permission table says the probe gets.
fn expected(gate: Gate, role: Role, probe: &Probe, place: Place, owns_target: bool) -> u16 {
    let (action, self_allowed) = match gate {
        Gate::Open => return probe.success,
        Gate::Action(action) => (action, false),
        Gate::ActionOrSelf(action) => (action, true),
    };
    let elsewhere = |scoped: Scoped| match scoped {
        Scoped::Resource => 404,
        Scoped::Named => 403,
        Scoped::Unscoped => probe.success,
    };
    match reach(role, action) {
        Reach::Nowhere if self_allowed && owns_target => probe.success,
        Reach::Nowhere => 403,
        Reach::Everywhere => probe.success,
        Reach::OwnLocations if place == Place::Own => probe.success,
        Reach::OwnLocations => elsewhere(probe.scoped),
        Reach::Own if place == Place::Other && probe.scoped != Scoped::Unscoped => elsewhere(probe.scoped),
        Reach::Own if owns_target || probe.scoped == Scoped::Unscoped => probe.success,
        Reach::Own => 403,
    }
}

/// Every role, every route, in the caller's own location and in another: the status is what
/// the permission table says (the expectations are computed from `domain::permission::reach`,
/// not written here).
#[tokio::test(flavor = "multi_thread")]
async fn each_role_gets_on_each_route_what_the_permission_table_says() {
    let world = World::new().await;
    let app = &world.app;
    let mut callers = Vec::new();
    for role in Role::ALL {
        let locations = (role != Role::Admin).then(|| vec![world.here]);
        let (user, token) = app.staff_with_token(role, locations).await;
        callers.push((role, user.id(), token));
    }
    let mut checked = 0;
    for route in ROUTES.iter().filter(|r| r.gate != Gate::Open) {
        for (role, _, token) in &callers {
            for place in [Place::Own, Place::Other] {
                let probe = world.probe(route.method, route.path, place).await;
                // Waiters' orders are not the caller's own: `Reach::Own` is refused on them.
                let expect = expected(route.gate, *role, &probe, place, false);
                let url = app.url(&probe.path);
                let request = match probe.method.as_str() {
                    "GET" => app.client.get(url),
                    "POST" => app.client.post(url),
                    "PUT" => app.client.put(url),
                    "DELETE" => app.client.delete(url),
                    _ => app.client.patch(url),
                }
                .bearer_auth(token);
                let request = match &probe.body {
                    Some(body) => request.json(body),
                    None => request,
                };
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                // A stream that was opened never ends: its status is the answer.
                let text = if status == 200 && probe.path.starts_with("/api/v1/kitchen/stream") {
                    String::new()
                } else {
                    response.text().await.unwrap()
                };
                assert_eq!(status, expect, "{role:?} {} {} ({place:?}): {text}", probe.method, probe.path);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, ROUTES.iter().filter(|r| r.gate != Gate::Open).count() * Role::ALL.len() * 2);
    // `Reach::Own`: a waiter cancels their own order, not a colleague's (checked above).
    let (_, _, token) = callers.iter().find(|(r, ..)| *r == Role::Waiter).unwrap();
    let own = create_order(app, token, None).await;
    let cancel = format!("/api/v1/orders/{}/cancel", own["id"].as_str().unwrap());
    json_body(app.post(&cancel, token).send().await.unwrap(), 200).await;
    // `ActionOrSelf`: everyone reads their own record.
    for (role, user, token) in &callers {
        let me = json_body(app.get(&format!("/api/v1/users/{user}"), token).send().await.unwrap(), 200).await;
        assert_eq!(me["role"], role.as_str());
    }
    let _ = &world.admin;
}

/// A manager of one location never sees another's orders: 404 on each, absent from lists and
/// reports, 403 when naming that location.
#[tokio::test]
async fn a_manager_of_one_location_cannot_reach_another() {
    let world = World::new().await;
    let app = &world.app;
    let (_, manager) = app.staff_with_token(Role::Manager, Some(vec![world.here])).await;
    let mine = world.order(Place::Own).await;
    let theirs = world.order(Place::Other).await;
    assert_eq!(app.get(&format!("/api/v1/orders/{mine}"), &manager).send().await.unwrap().status(), 200);
    for path in [
        format!("/api/v1/orders/{theirs}"),
        format!("/api/v1/orders/{theirs}/payments"),
        format!("/api/v1/locations/{}", world.there),
    ] {
        assert_eq!(app.get(&path, &manager).send().await.unwrap().status(), 404, "{path}");
    }
    for path in [format!("/api/v1/orders/{theirs}/cancel")] {
        assert_eq!(app.post(&path, &manager).send().await.unwrap().status(), 404, "{path}");
    }
    let list = json_body(app.get("/api/v1/orders?limit=100", &manager).send().await.unwrap(), 200).await;
    let ids: Vec<&str> = list["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&mine.as_str()) && !ids.contains(&theirs.as_str()), "{ids:?}");
    assert!(list["items"].as_array().unwrap().iter().all(|o| location_of(o) == world.here.to_string()));
    let locations = json_body(app.get("/api/v1/locations", &manager).send().await.unwrap(), 200).await;
    assert_eq!(locations["items"].as_array().unwrap().len(), 1);
    for path in [
        format!("/api/v1/orders?location_id={}", world.there),
        format!("/api/v1/orders/report?location_id={}", world.there),
    ] {
        assert_eq!(app.get(&path, &manager).send().await.unwrap().status(), 403, "{path}");
    }
    // The manager's report counts their location only; the admin's both.
    let mine_report = json_body(app.get("/api/v1/orders/report", &manager).send().await.unwrap(), 200).await;
    let all_report = json_body(app.get("/api/v1/orders/report", &world.admin).send().await.unwrap(), 200).await;
    assert_eq!(mine_report["total_price"], "2.00");
    assert_eq!(all_report["total_price"], "4.00");
    let post = app.post("/api/v1/orders", &manager).json(&order_body(Some(world.there))).send().await.unwrap();
    assert_eq!(post.status(), 403);
}

/// Orders carry their location, business date and version; the location is optional for who
/// works in one location, required (422) for who works in several.
#[tokio::test]
async fn orders_carry_location_business_date_and_version() {
    let world = World::new().await;
    let app = &world.app;
    let (_, token) = &world.waiter_here;
    let order = create_order(app, token, None).await;
    assert_eq!(location_of(&order), world.here.to_string());
    assert_eq!(order["business_date"], Utc::now().date_naive().to_string());
    assert_eq!(order["version"], 1);
    let id = order["id"].as_str().unwrap();
    let paid =
        app.post(&format!("/api/v1/orders/{id}/payments"), token).json(&json!({"amount": "1.00", "method": "card"}));
    json_body(paid.send().await.unwrap(), 201).await;
    let read = json_body(app.get(&format!("/api/v1/orders/{id}"), token).send().await.unwrap(), 200).await;
    assert_eq!(read["version"], 2);
    // Someone working in both locations must say where.
    let (_, both) = app.staff_with_token(Role::Waiter, Some(vec![world.here, world.there])).await;
    let refused = app.post("/api/v1/orders", &both).json(&order_body(None)).send().await.unwrap();
    let problem = json_body(refused, 422).await;
    assert_eq!(problem["errors"][0]["field"], "location_id");
    let placed = create_order(app, &both, Some(world.there)).await;
    assert_eq!(location_of(&placed), world.there.to_string());
    // Madrid's day starts at 04:00 local: the business date is Madrid's.
    let created: DateTime<Utc> = placed["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(placed["business_date"], location_by_id(app, world.there).business_date(created).to_string());
    // An admin works everywhere: with two locations, an admin says where too.
    let refused = app.post("/api/v1/orders", &world.admin).json(&order_body(None)).send().await.unwrap();
    assert_eq!(refused.status(), 422);
    let unknown = app.post("/api/v1/orders", &world.admin).json(&order_body(Some(LocationId(uuid::Uuid::now_v7()))));
    assert_eq!(json_body(unknown.send().await.unwrap(), 422).await["errors"][0]["field"], "location_id");
}

/// Assigning a user to other locations takes effect at once, for placing orders too (whose
/// permissions come from the in-memory directory, checked against the database's version).
#[tokio::test]
async fn a_change_of_locations_takes_effect_at_once() {
    let world = World::new().await;
    let app = &world.app;
    let (waiter, token) = app.staff_with_token(Role::Waiter, Some(vec![world.here])).await;
    assert_eq!(location_of(&create_order(app, &token, None).await), world.here.to_string());
    let moved = app
        .client
        .put(app.url(&format!("/api/v1/users/{}/locations", waiter.id())))
        .bearer_auth(&world.admin)
        .json(&json!({"location_ids": [world.there.0]}));
    let user = json_body(moved.send().await.unwrap(), 200).await;
    assert_eq!(user["location_ids"], json!([world.there.0]));
    assert_eq!(location_of(&create_order(app, &token, None).await), world.there.to_string());
    let refused = app.post("/api/v1/orders", &token).json(&order_body(Some(world.here))).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    // Every location taken away: the waiter places nothing.
    let emptied = app
        .client
        .put(app.url(&format!("/api/v1/users/{}/locations", waiter.id())))
        .bearer_auth(&world.admin)
        .json(&json!({"location_ids": []}));
    json_body(emptied.send().await.unwrap(), 200).await;
    assert_eq!(app.post("/api/v1/orders", &token).json(&order_body(None)).send().await.unwrap().status(), 403);
    // Admins work everywhere: their locations cannot be set; unknown locations are refused.
    let (admin_user, _) = app.admin().await;
    for (user, ids) in [(admin_user.id(), json!([world.here.0])), (waiter.id(), json!([uuid::Uuid::now_v7()]))] {
        let put = app
            .client
            .put(app.url(&format!("/api/v1/users/{user}/locations")))
            .bearer_auth(&world.admin)
            .json(&json!({"location_ids": ids}));
        let problem = json_body(put.send().await.unwrap(), 422).await;
        assert_eq!(problem["errors"][0]["field"], "location_ids");
    }
}

/// Locations: created by admins, names unique ignoring case, settings validated, changes apply
/// to orders created afterwards.
#[tokio::test]
async fn locations_are_created_and_changed_by_admins() {
    let world = World::new().await;
    let app = &world.app;
    let created = app
        .post("/api/v1/locations", &world.admin)
        .json(&json!({"name": "Centro", "time_zone": "America/Mexico_City", "business_day_start": "05:00", "tax_rate": "16", "prices_include_tax": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let body = json_body(created, 201).await;
    assert_eq!(location, format!("/api/v1/locations/{}", body["id"].as_str().unwrap()));
    assert_eq!(
        (&body["time_zone"], &body["business_day_start"], &body["tax_rate"], &body["prices_include_tax"]),
        (&json!("America/Mexico_City"), &json!("05:00"), &json!("16"), &json!(false))
    );
    let again = app.post("/api/v1/locations", &world.admin).json(&json!({"name": "CENTRO", "time_zone": "UTC"}));
    assert_eq!(again.send().await.unwrap().status(), 409);
    let bad = app
        .post("/api/v1/locations", &world.admin)
        .json(&json!({"name": "X", "time_zone": "Mars/Olympus", "business_day_start": "5:00", "tax_rate": "100.5"}));
    let problem = json_body(bad.send().await.unwrap(), 422).await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["time_zone", "business_day_start", "tax_rate"]);

    // A change applies from now on: an order placed before keeps its business date.
    let id: LocationId = LocationId(body["id"].as_str().unwrap().parse().unwrap());
    let (_, token) = app.staff_with_token(Role::Waiter, Some(vec![id])).await;
    let before = create_order(app, &token, None).await;
    let patch = app
        .client
        .patch(app.url(&location))
        .bearer_auth(&world.admin)
        .json(&json!({"time_zone": "Pacific/Kiritimati", "business_day_start": "00:00"}));
    let changed = json_body(patch.send().await.unwrap(), 200).await;
    assert_eq!(changed["time_zone"], "Pacific/Kiritimati");
    assert_eq!(changed["tax_rate"], "16", "untouched");
    let after = create_order(app, &token, None).await;
    let kiritimati = (Utc::now() + Duration::hours(14)).date_naive();
    assert_eq!(after["business_date"], kiritimati.to_string());
    let read = json_body(
        app.get(&format!("/api/v1/orders/{}", before["id"].as_str().unwrap()), &token).send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(read["business_date"], before["business_date"]);
    // A clash of names on change, and an unknown location.
    let clash = app.client.patch(app.url(&location)).bearer_auth(&world.admin).json(&json!({"name": "elsewhere"}));
    assert_eq!(clash.send().await.unwrap().status(), 409);
    let missing = app
        .client
        .patch(app.url(&format!("/api/v1/locations/{}", uuid::Uuid::now_v7())))
        .bearer_auth(&world.admin)
        .json(&json!({"name": "Nada"}));
    assert_eq!(missing.send().await.unwrap().status(), 404);
}

/// Users are created in locations: optional while one location exists, required (422) with
/// several; unknown locations refused; admins listed as working everywhere.
#[tokio::test]
async fn users_are_created_in_locations() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let here = app.first_location(&admin).await;
    let new = |email: &str| json!({"email": email, "name": "Ana López", "password": "una frase bastante larga"});
    let one =
        json_body(app.post("/api/v1/users", &admin).json(&new("one@example.com")).send().await.unwrap(), 201).await;
    assert_eq!(one["location_ids"], json!([here.0]));
    let there = app.create_location(&admin, "Norte", "Europe/Madrid", "00:00").await;
    let problem =
        json_body(app.post("/api/v1/users", &admin).json(&new("two@example.com")).send().await.unwrap(), 422).await;
    assert_eq!(problem["errors"][0]["field"], "location_ids");
    let mut body = new("three@example.com");
    body["location_ids"] = json!([there.0, there.0]);
    body["role"] = json!("kitchen");
    let three = json_body(app.post("/api/v1/users", &admin).json(&body).send().await.unwrap(), 201).await;
    assert_eq!((&three["location_ids"], &three["role"]), (&json!([there.0]), &json!("kitchen")));
    body["email"] = json!("four@example.com");
    body["location_ids"] = json!([uuid::Uuid::now_v7()]);
    assert_eq!(app.post("/api/v1/users", &admin).json(&body).send().await.unwrap().status(), 422);
    let me = json_body(app.get("/api/v1/users/me", &admin).send().await.unwrap(), 200).await;
    let mut everywhere = vec![here.0.to_string(), there.0.to_string()];
    everywhere.sort();
    assert_eq!(me["location_ids"], json!(everywhere));
}

/// A bar whose day starts at 05:00 in Mexico City books the small hours on the day it opened:
/// by business date, the report and the orders agree, read live and from the rollup.
#[tokio::test]
async fn a_business_day_across_midnight() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let bar = app.create_location(&admin, "Bar", "America/Mexico_City", "05:00").await;
    let (waiter, _) = app.staff_with_token(Role::Waiter, Some(vec![bar])).await;
    let location = location_by_id(&app, bar);
    let placer = Placer::new(&app).at(&app, location);
    // Mexico City is UTC-6: 22:00 on 4 November is 04:00Z on the 5th; 01:30 on the 5th is 07:30Z.
    let evening = placer.place(waiter.id(), at("2026-11-05T04:00:00Z"), &[("Mezcal", "80.00", 1)]).await;
    let late = placer.place(waiter.id(), at("2026-11-05T07:30:00Z"), &[("Mezcal", "80.00", 2)]).await;
    let morning = placer.place(waiter.id(), at("2026-11-05T11:00:00Z"), &[("Café", "30.00", 1)]).await;
    assert_eq!(evening.business_date().to_string(), "2026-11-04");
    assert_eq!(late.business_date().to_string(), "2026-11-04");
    assert_eq!(morning.business_date().to_string(), "2026-11-05");
    let by_date = |date: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let query = format!("/api/v1/orders/report?start_date={date}&end_date={date}&location_id={bar}");
            json_body(app.get(&query, &admin).send().await.unwrap(), 200).await
        }
    };
    for pass in ["live", "rolled up"] {
        let fourth = by_date("2026-11-04").await;
        assert_eq!(
            (fourth["total_quantity"].as_i64(), fourth["total_price"].as_str()),
            (Some(3), Some("240.00")),
            "{pass}"
        );
        assert_eq!(fourth["first_business_date"], "2026-11-04");
        assert_eq!(fourth["start_date"], "2026-11-04T11:00:00.000000Z", "the bar's day starts at 05:00 local");
        let fifth = by_date("2026-11-05").await;
        assert_eq!(fifth["total_price"], "30.00", "{pass}");
        roll_up(&app, at("2026-11-06T00:00:00Z"));
    }
    // Cancelling an aggregated order takes it out of its business date.
    let (_, manager) = app.staff_with_token(Role::Manager, Some(vec![bar])).await;
    json_body(app.post(&format!("/api/v1/orders/{}/cancel", late.id()), &manager).send().await.unwrap(), 200).await;
    assert_eq!(by_date("2026-11-04").await["total_price"], "80.00");
}

/// Across daylight-saving changes a business day lasts 23 or 25 hours, and every order counts
/// once: an order every half hour for three days around each change, in New York.
#[tokio::test(flavor = "multi_thread")]
async fn daylight_saving_days_count_every_order_once() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let ny = app.create_location(&admin, "Brooklyn", "America/New_York", "00:00").await;
    let (waiter, _) = app.staff_with_token(Role::Waiter, Some(vec![ny])).await;
    let placer = Placer::new(&app).at(&app, location_by_id(&app, ny));
    let mut per_date: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for (from, days) in [("2026-03-07T05:00:00Z", 3), ("2026-10-31T04:00:00Z", 3)] {
        let mut t = at(from);
        let end = t + Duration::days(days);
        while t < end {
            let order = placer.place(waiter.id(), t, &[("Bagel", "3.00", 1)]).await;
            *per_date.entry(order.business_date()).or_default() += 1;
            t += Duration::minutes(30);
        }
    }
    let spring: NaiveDate = "2026-03-08".parse().unwrap();
    let autumn: NaiveDate = "2026-11-01".parse().unwrap();
    assert_eq!(per_date[&spring], 46, "a 23-hour day");
    assert_eq!(per_date[&autumn], 50, "a 25-hour day");
    for pass in ["live", "rolled up"] {
        for (date, count) in &per_date {
            let query = format!("/api/v1/orders/report?start_date={date}&end_date={date}&location_id={ny}");
            let report = json_body(app.get(&query, &admin).send().await.unwrap(), 200).await;
            assert_eq!(report["total_quantity"], *count, "{date} ({pass})");
        }
        let whole = format!("/api/v1/orders/report?start_date=2026-03-07&end_date=2026-11-03&location_id={ny}");
        let report = json_body(app.get(&whole, &admin).send().await.unwrap(), 200).await;
        assert_eq!(report["total_quantity"], per_date.values().sum::<i64>(), "{pass}");
        roll_up(&app, at("2026-11-10T00:00:00Z"));
    }
}

/// The location as the service stores it.
fn location_by_id(app: &TestApp, id: LocationId) -> domain::Location {
    use application::LocationRepository as _;
    let database = infrastructure::Database::new(
        &app.db.url,
        infrastructure::PoolSettings {
            max_size: 1,
            checkout_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(30),
        },
    );
    infrastructure::PgLocationRepository::new(database).find(id).unwrap().unwrap()
}

/// Aggregates every period closed before `closed_before`.
pub(crate) fn roll_up(app: &TestApp, closed_before: DateTime<Utc>) {
    let reports = infrastructure::PgReportRepository::new(infrastructure::Database::new(
        &app.db.url,
        infrastructure::PoolSettings {
            max_size: 2,
            checkout_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(30),
        },
    ));
    let progress = application::ReportRepository::roll_up(&reports, closed_before).unwrap();
    assert!(progress.minutes_until.is_some(), "{progress:?}");
}
