//! W5's open orders: made through the API by the seeded waiters right before the runs that add
//! to them, one fresh set per run (this build's, the other build's, baseline (c)'s), so that
//! every run starts from orders of one line, and none reaches the limit of 100 live lines
//! ([`super::options::Config::add_orders`] sizes the sets).

use std::fs;
use std::path::Path;

use anyhow::{Context as _, bail};
use uuid::Uuid;

use super::client::Api;

/// The body of the `i`-th order: one open line.
fn order_body(products: &[String], i: usize) -> serde_json::Value {
    serde_json::json!({
        "customer_name": format!("Table {}", i % 60 + 1),
        "items": [{ "product_name": products[i % products.len()], "unit_price": "4.50", "quantity": 1 }],
    })
}

/// `count` open orders of one line each, made on `url` by the waiters of `tokens` in turn
/// (each in the location they work in): each one's id and the index of its waiter's token.
pub fn make(
    api: &Api,
    url: &str,
    tokens: &[String],
    products: &[String],
    count: u64,
) -> anyhow::Result<Vec<(Uuid, usize)>> {
    if products.is_empty() {
        bail!("no product names for W5's orders");
    }
    let orders = api.create_orders(url, tokens, count as usize, |i| order_body(products, i))?;
    if orders.len() as u64 != count {
        bail!("made {} of W5's {count} orders", orders.len());
    }
    Ok(orders)
}

/// The lines add_lines.lua reads: `<order id> <n>`, `n` the line (from 1) of the tokens file
/// with its waiter's token.
pub fn lines(orders: &[(Uuid, usize)]) -> String {
    orders.iter().map(|(id, token)| format!("{id} {}\n", token + 1)).collect()
}

pub fn write(path: &Path, orders: &[(Uuid, usize)]) -> anyhow::Result<()> {
    fs::write(path, lines(orders)).with_context(|| path.display().to_string())
}

/// Whether the build at `url` adds lines to an order (`POST /api/v1/orders/{id}/items`): an
/// order of its own is made and given two lines. A build without the route answers 404 (or
/// 405); anything else but 200 is an error.
pub fn adds_lines(api: &Api, url: &str, token: &str, products: &[String]) -> anyhow::Result<bool> {
    let [order] = make(api, url, std::slice::from_ref(&token.to_owned()), products, 1)?[..] else {
        bail!("no order to probe POST /api/v1/orders/{{id}}/items with");
    };
    let body = serde_json::json!({ "items": [
        { "product_name": products[0], "unit_price": "1.25", "quantity": 1 },
        { "product_name": products[products.len() - 1], "unit_price": "2.50", "quantity": 2 },
    ]});
    let path = format!("/api/v1/orders/{}/items", order.0);
    match api.post(url, &path, token, &body)? {
        (200, _) => Ok(true),
        (404 | 405, _) => Ok(false),
        (status, text) => bail!("POST {path} on {url}: {status}: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_names_each_order_and_its_token_from_one() {
        let id = Uuid::nil();
        assert_eq!(lines(&[(id, 0), (id, 4)]), format!("{id} 1\n{id} 5\n"));
        let body = order_body(&["A".into(), "B".into()], 3);
        assert_eq!(body["items"][0]["product_name"].as_str(), Some("B"));
        assert_eq!(body["customer_name"].as_str(), Some("Table 4"));
    }
}
