//! The menu: products made from the word lists, their categories and prices, and how popular
//! each is; stored as the service's menu (categories, items, each item's first price) so that
//! most seeded lines are menu lines.

use std::collections::HashSet;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Numeric, Text, Timestamptz, Uuid as SqlUuid};
use rand::Rng;
use rand::seq::SliceRandom;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use uuid::Uuid;

use domain::{CategoryName, MenuItem, MenuItemId, ProductName};

use super::draw::cumulative;
use super::words::Words;

pub(super) struct Product {
    /// As the domain writes it ([`ProductName`]).
    pub name: String,
    /// The domain's key of the name ([`ProductName::key`]).
    pub key: String,
    pub price_cents: i64,
    /// Its category's index in [`Menu::categories`].
    pub category: usize,
    /// Once stored: the menu item, its line key (`MenuItem::product_key`) and its category's id.
    pub item: Option<StoredItem>,
}

/// A product as a menu item of the database.
pub(super) struct StoredItem {
    pub id: Uuid,
    pub key: String,
    pub category_id: Uuid,
}

/// What waiters type off the menu (open lines), with a price range in cents.
const OFF_MENU: [(&str, i64, i64); 4] = [
    ("Fuera de carta", 400, 2500),
    ("Vino de la casa, botella", 1200, 2200),
    ("Descorche", 500, 800),
    ("Postre especial", 350, 700),
];

/// A product typed off the menu, with its key.
pub(super) struct OffMenu {
    pub name: &'static str,
    pub key: String,
    pub lowest: i64,
    pub highest: i64,
}

pub(super) struct Menu {
    pub products: Vec<Product>,
    /// What open lines name.
    pub off_menu: Vec<OffMenu>,
    /// Category names (the source of each product: the classics, a template's first word, the
    /// main courses).
    pub categories: Vec<String>,
    /// Cumulative Zipf weights: the product at rank r (from 1) weighs 1/r.
    pub cdf: Vec<f64>,
}

impl Menu {
    /// The first `count` distinct products (by the domain's product key) of the candidates.
    pub fn build(rng: &mut impl Rng, count: usize, words: &Words) -> anyhow::Result<Self> {
        let mut products = Vec::with_capacity(count);
        let mut keys = HashSet::with_capacity(count);
        let mut categories: Vec<String> = Vec::new();
        for (raw, lo, hi, category) in candidates(rng, words) {
            if products.len() == count {
                break;
            }
            let name = ProductName::parse(&raw).map_err(|e| anyhow::anyhow!("the product name {raw:?} {e}"))?;
            let key = name.key();
            if !keys.insert(key.clone()) {
                continue;
            }
            let category = match categories.iter().position(|c| *c == category) {
                Some(at) => at,
                None => {
                    categories.push(category);
                    categories.len() - 1
                }
            };
            products.push(Product {
                key: key.as_ref().to_owned(),
                name: name.as_ref().to_owned(),
                price_cents: price(rng, lo, hi),
                category,
                item: None,
            });
        }
        if products.len() < count {
            bail!("the menu generator makes only {} distinct products", products.len());
        }
        let weights: Vec<f64> = (1..=count).map(|rank| 1.0 / rank as f64).collect();
        let off_menu = OFF_MENU
            .iter()
            .map(|&(name, lowest, highest)| {
                let key = ProductName::parse(name).map_err(|e| anyhow::anyhow!("the product name {name:?} {e}"))?.key();
                Ok(OffMenu { name, key: key.as_ref().to_owned(), lowest, highest })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { products, off_menu, categories, cdf: cumulative(&weights) })
    }

    /// Stores the menu: its categories and items (created at `created_at`, before every seeded
    /// order, with their first price from then), or finds them when an earlier seed stored
    /// them (an active item of the same name: its current price is the one lines then take).
    pub fn store(&mut self, conn: &mut PgConnection, created_at: DateTime<Utc>) -> anyhow::Result<()> {
        let mut category_ids = Vec::with_capacity(self.categories.len());
        for (position, raw) in self.categories.iter().enumerate() {
            let name = CategoryName::parse(raw).map_err(|e| anyhow::anyhow!("the category name {raw:?} {e}"))?;
            let id: Uuid = diesel::sql_query(
                "WITH new AS (INSERT INTO menu_categories (id, name, name_key, position, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name_key) DO NOTHING RETURNING id)
                 SELECT id FROM new UNION ALL SELECT id FROM menu_categories WHERE name_key = $3 LIMIT 1",
            )
            .bind::<SqlUuid, _>(Uuid::now_v7())
            .bind::<Text, _>(name.as_ref())
            .bind::<Text, _>(name.key())
            .bind::<Integer, _>(position.min(10_000) as i32)
            .bind::<Timestamptz, _>(created_at)
            .get_result::<Id>(conn)
            .with_context(|| format!("could not store the menu category {raw:?}"))?
            .id;
            category_ids.push(id);
        }
        for product in &mut self.products {
            let category_id = category_ids[product.category];
            let stored: Stored = diesel::sql_query(
                "WITH new AS (INSERT INTO menu_items (id, name, name_key, category_id, active, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, true, $6, $6) ON CONFLICT (name_key) WHERE active DO NOTHING RETURNING id),
                 priced AS (INSERT INTO menu_item_prices (menu_item_id, price, valid_from)
                     SELECT id, $5, $6 FROM new RETURNING menu_item_id, price),
                 found AS (SELECT m.id, p.price, m.category_id FROM menu_items m
                     JOIN menu_item_prices p ON p.menu_item_id = m.id AND p.valid_to IS NULL
                     WHERE m.name_key = $3 AND m.active)
                 SELECT menu_item_id AS id, price, $4 AS category_id FROM priced UNION ALL SELECT * FROM found LIMIT 1",
            )
            .bind::<SqlUuid, _>(Uuid::now_v7())
            .bind::<Text, _>(&product.name)
            .bind::<Text, _>(&product.key)
            .bind::<SqlUuid, _>(category_id)
            .bind::<Numeric, _>(Decimal::new(product.price_cents, 2))
            .bind::<Timestamptz, _>(created_at)
            .get_result(conn)
            .with_context(|| format!("could not store the menu item {:?}", product.name))?;
            product.price_cents =
                (stored.price * Decimal::ONE_HUNDRED).to_i64().context("a stored menu price does not fit in cents")?;
            let key = MenuItem::product_key(MenuItemId(stored.id)).as_ref().to_owned();
            product.item = Some(StoredItem { id: stored.id, key, category_id: stored.category_id });
        }
        Ok(())
    }

    /// The name of a product's category.
    pub fn category_of(&self, product: &Product) -> &str {
        &self.categories[product.category]
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Numeric)]
    price: Decimal,
    #[diesel(sql_type = SqlUuid)]
    category_id: Uuid,
}

/// A plausible price in cents within `lo..=hi`: multiples of 5 cents below 5.00, of 10 cents
/// (sometimes ending in 5) above, always within 1.20 to 35.00.
fn price(rng: &mut impl Rng, lo: i64, hi: i64) -> i64 {
    let raw = rng.random_range(lo..=hi.max(lo));
    let rounded = if raw < 500 {
        (raw + 2) / 5 * 5
    } else if rng.random_bool(0.25) {
        (raw + 5) / 10 * 10 - 5
    } else {
        (raw + 5) / 10 * 10
    };
    rounded.clamp(120, 3500)
}

/// The category of the classics.
const CLASSICS: &str = "Clásicos";
/// The category of the main courses (protein, cooking, side).
const MAINS: &str = "Platos principales";

/// Every product name the word lists make, with its price range in cents and its category, the
/// most popular first: the classics, then dishes from the templates (each template's first word
/// is its category) and the main courses (protein, cooking, side; shuffled), then the
/// templates' variants (half portions, to share, ...; shuffled).
fn candidates(rng: &mut impl Rng, words: &Words) -> Vec<(String, i64, i64, String)> {
    let mut out: Vec<(String, i64, i64, String)> =
        words.classics.iter().map(|p| (p.name.to_owned(), p.lowest, p.highest, CLASSICS.to_owned())).collect();
    let mut dishes = Vec::new();
    let mut variants = Vec::new();
    for template in &words.templates {
        let (lo, hi) = (template.lowest, template.highest);
        let category = template.pattern.split_whitespace().next().unwrap_or(template.pattern).to_owned();
        for filler in &template.fillers {
            let name = template.pattern.replace("{}", filler);
            if template.with_variants {
                for variant in &words.variants {
                    let scale = |v: i64| (v as f64 * variant.factor).round() as i64;
                    variants.push((format!("{name} {}", variant.words), scale(lo), scale(hi), category.clone()));
                }
            }
            dishes.push((name, lo, hi, category.clone()));
        }
    }
    for protein in &words.proteins {
        for cooking in &words.cooking {
            for side in &words.sides {
                let name = match side.words {
                    Some(side) => format!("{} {cooking} {side}", protein.name),
                    None => format!("{} {cooking}", protein.name),
                };
                dishes.push((name, protein.lowest + side.extra, protein.highest + side.extra, MAINS.to_owned()));
            }
        }
    }
    dishes.shuffle(rng);
    variants.shuffle(rng);
    out.extend(dishes);
    out.extend(variants);
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::super::args::MAX_PRODUCTS;
    use super::*;

    #[test]
    fn the_menu_has_enough_distinct_plausible_products() {
        let words = Words::load().unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let menu = Menu::build(&mut rng, MAX_PRODUCTS as usize, &words).unwrap();
        assert_eq!(menu.products.len(), MAX_PRODUCTS as usize);
        for p in &menu.products {
            assert!((120..=3500).contains(&p.price_cents), "{}", p.price_cents);
        }
        assert_eq!(menu.products[0].name, "Café con leche");
        assert_eq!(menu.products[0].key, "café con leche");
    }

    #[test]
    fn every_candidate_is_a_valid_product_name_as_written() {
        let words = Words::load().unwrap();
        let all = candidates(&mut StdRng::seed_from_u64(1), &words);
        for (name, lo, hi, category) in &all {
            assert!(CategoryName::parse(category).is_ok(), "{category}");
            let parsed = ProductName::parse(name).unwrap();
            assert_eq!(parsed.as_ref(), name);
            assert!(0 < *lo && lo <= hi, "{name}: {lo} to {hi}");
        }
    }

    #[test]
    fn the_same_seed_makes_the_same_menu() {
        let words = Words::load().unwrap();
        let names = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            Menu::build(&mut rng, 300, &words)
                .unwrap()
                .products
                .into_iter()
                .map(|p| (p.name, p.price_cents))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(1), names(1));
        assert_ne!(names(1), names(2));
    }
}
