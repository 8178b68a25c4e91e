//! What the workloads need from a running server before they start: the rollup caught up, the
//! tokens of the seeded waiters and the admin, order ids, product names, the report's dates.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{TimeDelta, Utc};
use infrastructure::reports::floor_to;
use infrastructure::{Database, PgReportRepository, PoolSettings};

use super::Ctx;
use super::client::Api;
use super::options::{ADMIN_EMAIL, ADMIN_PASSWORD, SEED_PASSWORD};
use super::server::Server;

/// The files and values the Lua scripts and the baselines read.
#[derive(Debug, Clone)]
pub struct Fixtures {
    pub emails: PathBuf,
    pub tokens: PathBuf,
    pub order_ids: PathBuf,
    pub products_file: PathBuf,
    /// Active menu items' ids, one per line (W2m's lines); `None` for a build without a menu.
    pub menu_items: Option<PathBuf>,
    pub admin_token: String,
    /// `(key, name)`, most sold first.
    pub products: Vec<(String, String)>,
    pub waiter_ids: Vec<String>,
    /// The location each of `waiter_ids` works in (its first).
    pub waiter_locations: Vec<String>,
    pub rss_ready: Option<f64>,
    pub rss_logged_in: Option<f64>,
    pub logins: usize,
}

/// `/api/v1/orders/report?start_date=...&end_date=today` over `days` days (UTC dates).
pub fn report_path(days: i64) -> String {
    let today = Utc::now().date_naive();
    let start = today - TimeDelta::days(days - 1);
    format!("/api/v1/orders/report?start_date={start}&end_date={today}")
}

/// Waits until the server's background rollup has caught up with the orders: hours to within
/// three hours of now (the lag is 5 minutes by default; slack for longer lags or an hour that
/// just turned) and days to the last whole day of those. Reports are measured on a current
/// rollup, as in production. Returns the seconds it took.
pub fn wait_rollup(ctx: &Ctx, database_url: &str, name: &str) -> anyhow::Result<u64> {
    let settings = PoolSettings {
        max_size: 1,
        checkout_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(60),
    };
    let reports = PgReportRepository::new(Database::new(database_url, settings));
    let started = Instant::now();
    let mut marks = [None; 3];
    while started.elapsed() < Duration::from_secs(1800) {
        marks = reports.marks().map_err(|e| anyhow::anyhow!("{e}")).context("reading the rollup's marks")?;
        let [_, hours, days] = marks;
        let now_hour = floor_to(Utc::now(), TimeDelta::hours(1));
        if let (Some(hours), Some(days)) = (hours, days)
            && hours >= now_hour - TimeDelta::hours(3)
            && days == floor_to(hours, TimeDelta::days(1))
        {
            let secs = started.elapsed().as_secs();
            ctx.sup.say(&format!("{name}: sales rollup caught up ({secs} s after ready)"));
            return Ok(secs);
        }
        ctx.sup.sleep(Duration::from_secs(1))?;
    }
    bail!(
        "{name}: the sales rollup did not catch up within 30 minutes (minutes, hours, days aggregated until {marks:?})"
    )
}

/// Logs the admin and every seeded waiter in through `server` (the tokens serve every build on
/// the same database: same secret, same users), and collects what the workloads send, in
/// `<run dir>/emails<suffix>.txt` and the like. `suffix` is empty for this build's fixtures,
/// `-<tag>` for those of an `--against` build on a database of its own (its users, orders and
/// menu are its own seed's).
pub fn prepare(
    ctx: &Ctx,
    server: &Server,
    db_small: &str,
    need_products: bool,
    suffix: &str,
) -> anyhow::Result<Fixtures> {
    let (api, url, sup) = (&ctx.api, &server.url, &ctx.sup);
    let rss_ready = server.rss_mb();
    sup.say(&format!("logging the admin and the {} seeded waiters of {db_small} in", ctx.config.waiters));
    let admin_token = api.login(url, ADMIN_EMAIL, ADMIN_PASSWORD).context("could not log the bench admin in")?;
    let mut waiters: Vec<_> = api.users(url, &admin_token)?.into_iter().filter(|u| u.role == "waiter").collect();
    waiters.sort_by(|a, b| (a.email.len(), &a.email).cmp(&(b.email.len(), &b.email)));
    if waiters.is_empty() {
        bail!("{db_small} has no waiters: was it seeded?");
    }
    let mut tokens = Vec::with_capacity(waiters.len());
    for waiter in &waiters {
        let token = api.login(url, &waiter.email, SEED_PASSWORD).with_context(|| {
            format!(
                "could not log {} in with the seed password (was {db_small} seeded by an older db-admin?)",
                waiter.email
            )
        })?;
        tokens.push(token);
    }
    let rss_logged_in = server.rss_mb();
    let file = |name: &str, lines: Vec<String>| -> anyhow::Result<PathBuf> {
        let path = ctx.run_dir.join(fixture_file(name, suffix));
        fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>())?;
        Ok(path)
    };
    let emails = file("emails", waiters.iter().map(|w| w.email.clone()).collect())?;
    let tokens_file = file("tokens", tokens.clone())?;

    sup.say("collecting order ids (GET /api/v1/orders?limit=100, 10 pages)");
    let ids = api.order_ids(url, &tokens[0])?;
    let Some(first) = ids.first() else { bail!("GET /api/v1/orders returned no order ids") };
    api.get(url, &format!("/api/v1/orders/{first}"), &tokens[0], 10)
        .context("GET /api/v1/orders/{id} failed for a listed id")?;
    let order_ids = file("order_ids", ids.iter().map(ToString::to_string).collect())?;

    let mut products = Vec::new();
    for days in [30, 365] {
        let body = api
            .get(url, &report_path(days), &admin_token, 60)
            .with_context(|| format!("the {days}-day report failed on {db_small}"))?;
        fs::write(ctx.raw.join(format!("report-{db_small}-{days}d.json")), &body)?;
        if days == 365 {
            products = products_of(&body)?;
        }
    }
    sup.say(&format!(
        "took {} product names from the 365-day report (the most sold products of the seeded menu)",
        products.len()
    ));
    if need_products && products.len() < 20 {
        bail!("fewer than 20 distinct products in {db_small}: W2's 20-line orders need 20");
    }
    let products_file = file("products", products.iter().map(|(_, name)| name.clone()).collect())?;
    // A build from before the menu answers 404 here: it gets no W2m.
    let menu_items = match api.get(url, "/api/v1/menu/items?active=true&limit=100", &admin_token, 10) {
        Ok(body) => {
            let ids = menu_item_ids(&body)?;
            sup.say(&format!("took {} active menu items (W2m's lines)", ids.len()));
            if need_products && ids.len() < 5 {
                bail!("fewer than 5 active menu items in {db_small}: W2m's orders need 5");
            }
            Some(file("menu_items", ids)?)
        }
        Err(_) => None,
    };
    Ok(Fixtures {
        emails,
        tokens: tokens_file,
        order_ids,
        products_file,
        menu_items,
        admin_token,
        products,
        waiter_ids: waiters.iter().map(|w| w.id.to_string()).collect(),
        waiter_locations: waiters
            .iter()
            .map(|w| w.location_ids.first().map(ToString::to_string).unwrap_or_default())
            .collect(),
        rss_ready,
        rss_logged_in,
        logins: waiters.len() + 1,
    })
}

/// The ids of a page of menu items.
fn menu_item_ids(body: &str) -> anyhow::Result<Vec<String>> {
    let page: serde_json::Value = serde_json::from_str(body).context("the menu item list is not JSON")?;
    let items = page["items"].as_array().context("the menu item list has no items")?;
    Ok(items.iter().filter_map(|i| i["id"].as_str().map(str::to_owned)).collect())
}

/// `<name><suffix>.txt`: the file of one build's fixtures.
fn fixture_file(name: &str, suffix: &str) -> String {
    format!("{name}{suffix}.txt")
}

/// The same logins through another server on the same database (the tokens, order ids and
/// product names of `fixtures` are valid there too), so that both builds served the same
/// requests before their peak RSS is first read. A server on a database of its own gets its
/// own fixtures from [`prepare`] instead (the same requests, and its database's ids).
pub fn same_logins(api: &Api, server: &Server, fixtures: &Fixtures) -> anyhow::Result<()> {
    api.login(&server.url, ADMIN_EMAIL, ADMIN_PASSWORD)?;
    for email in fs::read_to_string(&fixtures.emails)?.lines() {
        api.login(&server.url, email, SEED_PASSWORD)?;
    }
    Ok(())
}

/// Up to 200 `(key, name)` of a report's products, keys made by the service's own rule
/// ([`domain::ProductName::key`]).
fn products_of(report: &str) -> anyhow::Result<Vec<(String, String)>> {
    Ok(Api::report_products(report)?
        .into_iter()
        .filter_map(|p| {
            let name = domain::ProductName::parse(&p.product_name).ok()?;
            Some((name.key().as_ref().to_owned(), name.as_ref().to_owned()))
        })
        .take(200)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_dates_end_today() {
        let today = Utc::now().date_naive();
        let path = report_path(30);
        assert!(path.ends_with(&format!("&end_date={today}")), "{path}");
        assert!(
            path.starts_with(&format!("/api/v1/orders/report?start_date={}", today - TimeDelta::days(29))),
            "{path}"
        );
    }

    #[test]
    fn fixture_files_of_each_build() {
        assert_eq!(fixture_file("tokens", ""), "tokens.txt");
        assert_eq!(fixture_file("order_ids", "-459eeb5"), "order_ids-459eeb5.txt");
    }

    #[test]
    fn products_come_from_the_report_with_the_service_keys() {
        let body = r#"{"start_date":"x","end_date":"y","products":[{"product_name":"Café con leche","total_quantity":3,"total_price":"1.00"},{"product_name":"Tea","total_quantity":1,"total_price":"1.00"}],"total_quantity":4,"total_price":"2.00"}"#;
        let products = products_of(body).unwrap();
        assert_eq!(products.len(), 2);
        assert_eq!(products[0].1, "Café con leche");
        let key = domain::ProductName::parse("Café con leche").unwrap().key();
        assert_eq!(products[0].0, key.as_ref());
    }
}
