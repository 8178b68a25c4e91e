//! The menu: categories and items, prices with their history, sold-out marks per location, and
//! order lines from the menu beside open lines, in orders and in the report.

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use test_support::{TestApp, json_body};

use application::ReportRepository;
use domain::{LocationId, Role};
use infrastructure::{Database, PgReportRepository, PoolSettings};

/// A category and an item of it, made by the admin; their ids.
pub(crate) async fn category_and_item(
    app: &TestApp,
    admin: &str,
    category: &str,
    item: &str,
    price: &str,
) -> (String, String) {
    let body = json!({"name": category, "position": 1});
    let category = json_body(app.post("/api/v1/menu/categories", admin).json(&body).send().await.unwrap(), 201).await;
    let category = category["id"].as_str().unwrap().to_owned();
    let item = new_item(app, admin, &category, item, price).await;
    (category, item)
}

async fn new_item(app: &TestApp, admin: &str, category: &str, name: &str, price: &str) -> String {
    let body = json!({"name": name, "category_id": category, "price": price});
    let item = json_body(app.post("/api/v1/menu/items", admin).json(&body).send().await.unwrap(), 201).await;
    item["id"].as_str().unwrap().to_owned()
}

async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.client.patch(app.url(path)).bearer_auth(token).json(&body).send().await.unwrap()
}

async fn sold_out(app: &TestApp, token: &str, location: LocationId, item: &str, on: bool) -> u16 {
    let url = app.url(&format!("/api/v1/locations/{location}/sold-out/{item}"));
    let request = if on { app.client.put(url) } else { app.client.delete(url) };
    request.bearer_auth(token).send().await.unwrap().status().as_u16()
}

/// Places an order of `items` (each a JSON line) at `location`; the response.
async fn order(app: &TestApp, token: &str, location: Option<LocationId>, items: Value) -> reqwest::Response {
    let mut body = json!({"customer_name": "Mesa 7", "items": items});
    if let Some(location) = location {
        body["location_id"] = json!(location.0);
    }
    app.post("/api/v1/orders", token).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn admins_make_the_menu_and_names_are_unique_among_active_items() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, waiter) = app.waiter().await;
    let (drinks, water) = category_and_item(&app, &admin, "Bebidas", "Agua  mineral", "1.50").await;

    let item = json_body(app.get(&format!("/api/v1/menu/items/{water}"), &waiter).send().await.unwrap(), 200).await;
    assert_eq!(item["name"], "Agua mineral", "the text rule applies");
    assert_eq!((item["price"].as_str(), item["active"].as_bool()), (Some("1.50"), Some(true)));
    assert!(item.get("sold_out").is_none(), "sold_out only when a location is asked for");

    // Names: unique ignoring case among categories, and among active items.
    let taken = json!({"name": "BEBIDAS"});
    json_body(app.post("/api/v1/menu/categories", &admin).json(&taken).send().await.unwrap(), 409).await;
    let again = json!({"name": "agua MINERAL", "category_id": drinks, "price": "2.00"});
    json_body(app.post("/api/v1/menu/items", &admin).json(&again).send().await.unwrap(), 409).await;
    // Retired, its name is free again; the retired item stays (items are never deleted).
    let retired =
        json_body(patch(&app, &format!("/api/v1/menu/items/{water}"), &admin, json!({"active": false})).await, 200)
            .await;
    assert_eq!(retired["active"], false);
    let successor = json_body(app.post("/api/v1/menu/items", &admin).json(&again).send().await.unwrap(), 201).await;
    // Bringing the old one back would make two active items of one name.
    json_body(patch(&app, &format!("/api/v1/menu/items/{water}"), &admin, json!({"active": true})).await, 409).await;

    // Filters: by category and by state.
    let list = |query: String| {
        let app = &app;
        let waiter = waiter.clone();
        async move { json_body(app.get(&format!("/api/v1/menu/items{query}"), &waiter).send().await.unwrap(), 200).await }
    };
    let active = list(format!("?category_id={drinks}&active=true")).await;
    let ids: Vec<&str> = active["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [successor["id"].as_str().unwrap()]);
    let inactive = list("?active=false".into()).await;
    assert_eq!(inactive["items"][0]["id"], water.as_str());

    // Only admins change the menu; bad input is a 422 naming every field.
    let body = json!({"name": "Flan", "category_id": drinks, "price": "3.00"});
    json_body(app.post("/api/v1/menu/items", &waiter).json(&body).send().await.unwrap(), 403).await;
    let bad = json!({"name": "", "category_id": uuid::Uuid::now_v7(), "price": "0"});
    let problem = json_body(app.post("/api/v1/menu/items", &admin).json(&bad).send().await.unwrap(), 422).await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "price"]);
    let unknown = json!({"name": "Flan", "category_id": uuid::Uuid::now_v7(), "price": "3.00"});
    let problem = json_body(app.post("/api/v1/menu/items", &admin).json(&unknown).send().await.unwrap(), 422).await;
    assert_eq!(problem["errors"][0]["field"], "category_id");
    let renamed = json_body(
        patch(
            &app,
            &format!("/api/v1/menu/categories/{drinks}"),
            &admin,
            json!({"name": "Bebidas frías", "position": 3}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!((renamed["name"].as_str(), renamed["position"].as_u64()), (Some("Bebidas frías"), Some(3)));
    let categories = json_body(app.get("/api/v1/menu/categories", &waiter).send().await.unwrap(), 200).await;
    assert_eq!(categories["items"][0]["name"], "Bebidas frías");
    // Lines point to items and categories without foreign keys: the database refuses to delete them.
    use diesel::RunQueryDsl;
    for table in ["menu_items", "menu_categories"] {
        let deleted = diesel::sql_query(format!("DELETE FROM {table}")).execute(&mut app.db.conn());
        assert!(deleted.unwrap_err().to_string().contains("never deleted"), "{table}");
    }
}

#[tokio::test]
async fn a_price_change_holds_from_its_answer_and_lines_keep_theirs() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, waiter) = app.waiter().await;
    let (_, coffee) = category_and_item(&app, &admin, "Cafés", "Cortado", "2.00").await;
    let line = json!([{"menu_item_id": coffee, "quantity": 2, "note": "leche de avena"}]);

    let before = json_body(order(&app, &waiter, None, line.clone()).await, 201).await;
    assert_eq!(
        before["items"][0],
        json!({"id": 1, "kind": "menu", "menu_item_id": coffee, "category": "Cafés", "note": "leche de avena",
               "product_name": "Cortado", "unit_price": "2.00", "quantity": 2, "subtotal": "4.00",
               "kitchen_status": "new", "voided": null})
    );
    // This process now holds the menu in memory; the change must reach the next order anyway.
    let changed =
        patch(&app, &format!("/api/v1/menu/items/{coffee}"), &admin, json!({"price": "2.40", "name": "Cortado doble"}))
            .await;
    json_body(changed, 200).await;
    let after = json_body(order(&app, &waiter, None, line.clone()).await, 201).await;
    assert_eq!(after["items"][0]["unit_price"], "2.40");
    assert_eq!(after["items"][0]["product_name"], "Cortado doble");
    assert_eq!(after["total_price"], "4.80");

    // The first order keeps its name and price, read back from storage.
    let first = format!("/api/v1/orders/{}", before["id"].as_str().unwrap());
    let first = json_body(app.get(&first, &waiter).send().await.unwrap(), 200).await;
    assert_eq!((first["items"][0]["unit_price"].as_str(), first["total_price"].as_str()), (Some("2.00"), Some("4.00")));
    assert_eq!(first["items"][0]["product_name"], "Cortado");

    // The history: each price with when it held, the spans meeting, the last one open.
    let prices =
        json_body(app.get(&format!("/api/v1/menu/items/{coffee}/prices"), &waiter).send().await.unwrap(), 200).await;
    let prices = prices.as_array().unwrap();
    assert_eq!(prices.len(), 2);
    assert_eq!((prices[0]["price"].as_str(), prices[1]["price"].as_str()), (Some("2.00"), Some("2.40")));
    assert_eq!(prices[0]["to"], prices[1]["from"]);
    assert!(prices[1]["to"].is_null());
    assert!(prices[0]["from"].as_str() < prices[0]["to"].as_str());
    // A change that leaves the price alone starts no new span.
    json_body(patch(&app, &format!("/api/v1/menu/items/{coffee}"), &admin, json!({"price": "2.40"})).await, 200).await;
    let again =
        json_body(app.get(&format!("/api/v1/menu/items/{coffee}/prices"), &waiter).send().await.unwrap(), 200).await;
    assert_eq!(again.as_array().unwrap().len(), 2);
    json_body(
        app.get(&format!("/api/v1/menu/items/{}/prices", uuid::Uuid::now_v7()), &waiter).send().await.unwrap(),
        404,
    )
    .await;
}

/// Orders placed while the price and the name change get the old name and price or the new
/// ones, never a mix, and every order placed after the change answered gets the new ones.
#[tokio::test(flavor = "multi_thread")]
async fn an_order_racing_a_price_change_gets_one_price_or_the_other() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, waiter) = app.waiter().await;
    let (_, soup) = category_and_item(&app, &admin, "Sopas", "Sopa del día", "5.00").await;
    let line = json!([{"menu_item_id": soup, "quantity": 1}]);
    for round in 0..3 {
        let old = format!("{}.00", 5 + round);
        let new = format!("{}.00", 6 + round);
        let orders: Vec<_> = (0..20).map(|_| order(&app, &waiter, None, line.clone())).collect();
        let path = format!("/api/v1/menu/items/{soup}");
        let change = patch(&app, &path, &admin, json!({"price": new, "name": format!("Sopa {new}")}));
        let (responses, changed) = futures_util::future::join(futures_util::future::join_all(orders), change).await;
        json_body(changed, 200).await;
        for response in responses {
            let placed = json_body(response, 201).await;
            let line = &placed["items"][0];
            let pair = (line["product_name"].as_str().unwrap(), line["unit_price"].as_str().unwrap());
            let old_name = if round == 0 { "Sopa del día".to_owned() } else { format!("Sopa {old}") };
            assert!(
                pair == (old_name.as_str(), old.as_str()) || pair == (format!("Sopa {new}").as_str(), new.as_str()),
                "round {round}: a mix of the old and the new menu: {pair:?}"
            );
            assert_eq!(placed["total_price"], line["unit_price"]);
        }
        let after = json_body(order(&app, &waiter, None, line.clone()).await, 201).await;
        assert_eq!(after["items"][0]["unit_price"], new.as_str(), "round {round}: an order after the change");
    }
}

#[tokio::test]
async fn sold_out_holds_in_its_location_only_and_retired_items_cannot_be_ordered() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let here = app.first_location(&admin).await;
    let there = app.create_location(&admin, "Norte", "America/Mexico_City", "05:00").await;
    let (_, manager_here) = app.staff_with_token(Role::Manager, Some(vec![here])).await;
    let (_, manager_there) = app.staff_with_token(Role::Manager, Some(vec![there])).await;
    let (_, waiter) = app.staff_with_token(Role::Waiter, Some(vec![here, there])).await;
    let (category, fish) = category_and_item(&app, &admin, "Platos", "Pescado a la talla", "180.00").await;
    let bread = new_item(&app, &admin, &category, "Pan de la casa", "20.00").await;
    let lines = json!([{"menu_item_id": fish, "quantity": 1}, {"menu_item_id": bread, "quantity": 2}]);
    json_body(order(&app, &waiter, Some(here), lines.clone()).await, 201).await;

    // Only that location's managers (and admins) mark it; a waiter may not.
    assert_eq!(sold_out(&app, &waiter, here, &fish, true).await, 403);
    assert_eq!(sold_out(&app, &manager_there, here, &fish, true).await, 404, "another location is hidden");
    assert_eq!(sold_out(&app, &manager_here, here, &fish, true).await, 204);
    assert_eq!(sold_out(&app, &manager_here, here, &fish, true).await, 204, "marking twice is no error");
    assert_eq!(sold_out(&app, &manager_here, here, &uuid::Uuid::now_v7().to_string(), true).await, 404);

    let problem = json_body(order(&app, &waiter, Some(here), lines.clone()).await, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("Pescado a la talla is sold out"), "{problem}");
    json_body(order(&app, &waiter, Some(there), lines.clone()).await, 201).await;

    let flagged = |location: LocationId| {
        let (app, waiter, fish) = (&app, waiter.clone(), fish.clone());
        async move {
            let path = format!("/api/v1/menu/items/{fish}?location_id={location}");
            json_body(app.get(&path, &waiter).send().await.unwrap(), 200).await["sold_out"].clone()
        }
    };
    assert_eq!((flagged(here).await, flagged(there).await), (json!(true), json!(false)));
    let listed = json_body(
        app.get(&format!("/api/v1/menu/items?location_id={here}&category_id={category}"), &waiter)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let marks: Vec<(&str, bool)> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["sold_out"].as_bool().unwrap()))
        .collect();
    assert_eq!(marks, [("Pan de la casa", false), ("Pescado a la talla", true)]);

    assert_eq!(sold_out(&app, &admin, here, &fish, false).await, 204);
    json_body(order(&app, &waiter, Some(here), lines.clone()).await, 201).await;

    // Retired: refused everywhere, named; an id that names nothing is a 422 on its line.
    json_body(patch(&app, &format!("/api/v1/menu/items/{bread}"), &admin, json!({"active": false})).await, 200).await;
    let problem = json_body(order(&app, &waiter, Some(there), lines.clone()).await, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("Pan de la casa is no longer on the menu"), "{problem}");
    let unknown = json!([{"product_name": "Agua", "unit_price": "1.00", "quantity": 1},
                         {"menu_item_id": uuid::Uuid::now_v7(), "quantity": 1}]);
    let problem = json_body(order(&app, &waiter, Some(there), unknown).await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "items[1].menu_item_id");
    // A menu line takes no name or price of its own.
    let both = json!([{"menu_item_id": fish, "product_name": "Pescado", "unit_price": "1.00", "quantity": 1}]);
    let problem = json_body(order(&app, &waiter, Some(there), both).await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "items[0].product_name");
}

#[tokio::test]
async fn menu_and_open_lines_in_one_order_and_in_the_report() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, waiter) = app.waiter().await;
    let (_, lemonade) = category_and_item(&app, &admin, "Bebidas", "Limonada", "3.00").await;
    let items = json!([
        {"menu_item_id": lemonade, "quantity": 1},
        {"product_name": "limonada", "unit_price": "2.50", "quantity": 1},
        {"menu_item_id": lemonade, "quantity": 2},
    ]);
    let placed = json_body(order(&app, &waiter, None, items).await, 201).await;
    let kinds: Vec<(&str, &str, u64)> = placed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["kind"].as_str().unwrap(), l["product_name"].as_str().unwrap(), l["quantity"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, [("menu", "Limonada", 3), ("open", "limonada", 1)], "menu lines merge, never with open ones");
    assert_eq!(placed["total_price"], "11.50");
    // Two notes on one item in one request cannot merge into one line.
    let noted = json!([{"menu_item_id": lemonade, "quantity": 1, "note": "sin hielo"}, {"menu_item_id": lemonade, "quantity": 1}]);
    let problem = json_body(order(&app, &waiter, None, noted).await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "items[1].note");

    // Renamed and repriced, the item's lines still count as one product, under its new name.
    json_body(
        patch(
            &app,
            &format!("/api/v1/menu/items/{lemonade}"),
            &admin,
            json!({"name": "Limonada natural", "price": "3.50"}),
        )
        .await,
        200,
    )
    .await;
    json_body(order(&app, &waiter, None, json!([{"menu_item_id": lemonade, "quantity": 1}])).await, 201).await;
    let report = json_body(app.get("/api/v1/orders/report", &admin).send().await.unwrap(), 200).await;
    assert_eq!(
        report["products"],
        json!([
            {"product_name": "Limonada natural", "menu_item_id": lemonade, "total_quantity": 4, "total_price": "12.50"},
            {"product_name": "limonada", "menu_item_id": null, "total_quantity": 1, "total_price": "2.50"},
        ])
    );
    assert_eq!(report["total_price"], "15.00");

    // Once aggregated by the rollup, the item's row still takes its current name.
    let reports = PgReportRepository::new(Database::new(
        &app.db.url,
        PoolSettings {
            max_size: 1,
            checkout_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(30),
        },
    ));
    let progress = ReportRepository::roll_up(&reports, Utc::now() + TimeDelta::hours(1)).unwrap();
    assert!(progress.minutes10 > 0, "{progress:?}");
    json_body(
        patch(&app, &format!("/api/v1/menu/items/{lemonade}"), &admin, json!({"name": "Limonada de la casa"})).await,
        200,
    )
    .await;
    let report = json_body(app.get("/api/v1/orders/report", &admin).send().await.unwrap(), 200).await;
    assert_eq!(report["products"][0]["product_name"], "Limonada de la casa");
    assert_eq!(
        (report["products"][0]["total_quantity"].as_u64(), report["total_price"].as_str()),
        (Some(4), Some("15.00"))
    );
}
