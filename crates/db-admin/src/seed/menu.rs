//! The menu: products made from the word lists, their prices, and how popular each is.

use std::collections::HashSet;

use anyhow::bail;
use rand::Rng;
use rand::seq::SliceRandom;

use domain::ProductName;

use super::draw::cumulative;
use super::words::Words;

pub(super) struct Product {
    /// As the domain writes it ([`ProductName`]).
    pub name: String,
    /// The domain's key of the name ([`ProductName::key`]).
    pub key: String,
    pub price_cents: i64,
}

pub(super) struct Menu {
    pub products: Vec<Product>,
    /// Cumulative Zipf weights: the product at rank r (from 1) weighs 1/r.
    pub cdf: Vec<f64>,
}

impl Menu {
    /// The first `count` distinct products (by the domain's product key) of the candidates.
    pub fn build(rng: &mut impl Rng, count: usize, words: &Words) -> anyhow::Result<Self> {
        let mut products = Vec::with_capacity(count);
        let mut keys = HashSet::with_capacity(count);
        for (raw, lo, hi) in candidates(rng, words) {
            if products.len() == count {
                break;
            }
            let name = ProductName::parse(&raw).map_err(|e| anyhow::anyhow!("the product name {raw:?} {e}"))?;
            let key = name.key();
            if !keys.insert(key.clone()) {
                continue;
            }
            products.push(Product {
                key: key.as_ref().to_owned(),
                name: name.as_ref().to_owned(),
                price_cents: price(rng, lo, hi),
            });
        }
        if products.len() < count {
            bail!("the menu generator makes only {} distinct products", products.len());
        }
        let weights: Vec<f64> = (1..=count).map(|rank| 1.0 / rank as f64).collect();
        Ok(Self { products, cdf: cumulative(&weights) })
    }
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

/// Every product name the word lists make, with its price range in cents, the most popular
/// first: the classics, then dishes from the templates and the main courses (protein, cooking,
/// side; shuffled), then the templates' variants (half portions, to share, ...; shuffled).
fn candidates(rng: &mut impl Rng, words: &Words) -> Vec<(String, i64, i64)> {
    let mut out: Vec<(String, i64, i64)> =
        words.classics.iter().map(|p| (p.name.to_owned(), p.lowest, p.highest)).collect();
    let mut dishes = Vec::new();
    let mut variants = Vec::new();
    for template in &words.templates {
        let (lo, hi) = (template.lowest, template.highest);
        for filler in &template.fillers {
            let name = template.pattern.replace("{}", filler);
            if template.with_variants {
                for variant in &words.variants {
                    let scale = |v: i64| (v as f64 * variant.factor).round() as i64;
                    variants.push((format!("{name} {}", variant.words), scale(lo), scale(hi)));
                }
            }
            dishes.push((name, lo, hi));
        }
    }
    for protein in &words.proteins {
        for cooking in &words.cooking {
            for side in &words.sides {
                let name = match side.words {
                    Some(side) => format!("{} {cooking} {side}", protein.name),
                    None => format!("{} {cooking}", protein.name),
                };
                dishes.push((name, protein.lowest + side.extra, protein.highest + side.extra));
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
        for (name, lo, hi) in &all {
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
