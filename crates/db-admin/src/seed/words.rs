//! The word lists the demo data is made of, kept as text files in `crates/db-admin/data/` and
//! compiled in (`include_str!`).
//!
//! The format of every file: UTF-8 lines; a line starting with `#` is a comment and blank lines
//! are skipped; fields are separated by one tab; prices are euros with at most two decimals,
//! read by the domain's [`Money`] (so a price the service would refuse is refused here too).
//! Each file says at its top what its fields are:
//!
//! | file | a line |
//! |---|---|
//! | `classics.txt` | name, lowest price, highest price (best sellers first) |
//! | `templates.txt` | pattern with `{}`, lowest price, highest price, `variants` or `plain`; then its fillers, each line starting with a tab |
//! | `variants.txt` | words added after a dish's name, price factor |
//! | `proteins.txt` | protein, lowest price, highest price |
//! | `cooking.txt` | how the protein is cooked |
//! | `sides.txt` | words added after the cooking (`-` for none), extra price (may be 0) |
//! | `first-names.txt`, `last-names.txt` | a customer's first or last name |
//!
//! [`Words::load`] parses them all, once per run; the tests below check that they parse and
//! that what the generator makes of them is valid for the domain.

use std::str::FromStr;

use anyhow::{Context, bail, ensure};
use rust_decimal::Decimal;

use domain::Money;

const CLASSICS: &str = include_str!("../../data/classics.txt");
const TEMPLATES: &str = include_str!("../../data/templates.txt");
const VARIANTS: &str = include_str!("../../data/variants.txt");
const PROTEINS: &str = include_str!("../../data/proteins.txt");
const COOKING: &str = include_str!("../../data/cooking.txt");
const SIDES: &str = include_str!("../../data/sides.txt");
const FIRST_NAMES: &str = include_str!("../../data/first-names.txt");
const LAST_NAMES: &str = include_str!("../../data/last-names.txt");

/// A name and the range its price is drawn from, in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Priced {
    pub name: &'static str,
    pub lowest: i64,
    pub highest: i64,
}

/// Dishes made by putting each filler in the pattern's `{}`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Template {
    pub pattern: &'static str,
    pub fillers: Vec<&'static str>,
    pub lowest: i64,
    pub highest: i64,
    /// Whether each dish also comes in every [`Variant`].
    pub with_variants: bool,
}

/// A size or style variant: words added after a dish's name, and its price factor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Variant {
    pub words: &'static str,
    pub factor: f64,
}

/// What comes with a main course: words added after the cooking (none for the plain dish), and
/// the extra price in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Side {
    pub words: Option<&'static str>,
    pub extra: i64,
}

/// Every word list, parsed.
#[derive(Debug, Clone)]
pub(super) struct Words {
    pub classics: Vec<Priced>,
    pub templates: Vec<Template>,
    pub variants: Vec<Variant>,
    pub proteins: Vec<Priced>,
    pub cooking: Vec<&'static str>,
    pub sides: Vec<Side>,
    pub first_names: Vec<&'static str>,
    pub last_names: Vec<&'static str>,
}

impl Words {
    /// Parses the compiled-in files (a failure is a bug in a data file; the tests catch it).
    pub fn load() -> anyhow::Result<Self> {
        Ok(Self {
            classics: priced("classics.txt", CLASSICS)?,
            templates: templates("templates.txt", TEMPLATES)?,
            variants: lines(VARIANTS)
                .map(|(n, line)| {
                    let [words, factor] = fields(line).with_context(|| at("variants.txt", n))?;
                    Ok(Variant { words, factor: factor_of(factor).with_context(|| at("variants.txt", n))? })
                })
                .collect::<anyhow::Result<_>>()?,
            proteins: priced("proteins.txt", PROTEINS)?,
            cooking: single("cooking.txt", COOKING)?,
            sides: lines(SIDES)
                .map(|(n, line)| {
                    let [words, extra] = fields(line).with_context(|| at("sides.txt", n))?;
                    let words = (words != "-").then_some(words);
                    Ok(Side { words, extra: extra_cents(extra).with_context(|| at("sides.txt", n))? })
                })
                .collect::<anyhow::Result<_>>()?,
            first_names: single("first-names.txt", FIRST_NAMES)?,
            last_names: single("last-names.txt", LAST_NAMES)?,
        })
    }
}

/// The lines that hold data, with their numbers (from 1).
fn lines(text: &'static str) -> impl Iterator<Item = (usize, &'static str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

fn at(file: &str, line: usize) -> String {
    format!("data/{file} line {line}")
}

/// Exactly `N` tab-separated fields, none empty and none with space around it.
fn fields<const N: usize>(line: &'static str) -> anyhow::Result<[&'static str; N]> {
    let parts: Vec<&str> = line.split('\t').collect();
    let Ok(fields) = <[&str; N]>::try_from(parts) else {
        bail!("expected {N} tab-separated field(s): {line:?}");
    };
    for field in fields {
        ensure!(!field.is_empty() && field.trim() == field, "a field is empty or has space around it: {line:?}");
    }
    Ok(fields)
}

/// One field per line.
fn single(file: &'static str, text: &'static str) -> anyhow::Result<Vec<&'static str>> {
    lines(text).map(|(n, line)| Ok(fields::<1>(line).with_context(|| at(file, n))?[0])).collect()
}

/// Name, lowest price, highest price.
fn priced(file: &'static str, text: &'static str) -> anyhow::Result<Vec<Priced>> {
    lines(text)
        .map(|(n, line)| {
            let parse = || {
                let [name, lowest, highest] = fields(line)?;
                range(name, lowest, highest)
            };
            parse().with_context(|| at(file, n))
        })
        .collect()
}

fn range(name: &'static str, lowest: &str, highest: &str) -> anyhow::Result<Priced> {
    let (lowest, highest) = (price_cents(lowest)?, price_cents(highest)?);
    ensure!(lowest <= highest, "the lowest price is above the highest");
    Ok(Priced { name, lowest, highest })
}

/// Template lines, each followed by its fillers (lines starting with a tab).
fn templates(file: &'static str, text: &'static str) -> anyhow::Result<Vec<Template>> {
    let mut out: Vec<Template> = Vec::new();
    for (n, line) in lines(text) {
        let parse = |out: &mut Vec<Template>| -> anyhow::Result<()> {
            if let Some(filler) = line.strip_prefix('\t') {
                let [filler] = fields(filler)?;
                out.last_mut().context("a filler before any template")?.fillers.push(filler);
                return Ok(());
            }
            let [pattern, lowest, highest, kind] = fields(line)?;
            ensure!(pattern.matches("{}").count() == 1, "the pattern must hold `{{}}` once");
            let Priced { lowest, highest, .. } = range(pattern, lowest, highest)?;
            let with_variants = match kind {
                "variants" => true,
                "plain" => false,
                _ => bail!("the last field must be `variants` or `plain`"),
            };
            out.push(Template { pattern, fillers: Vec::new(), lowest, highest, with_variants });
            Ok(())
        };
        parse(&mut out).with_context(|| at(file, n))?;
    }
    if let Some(empty) = out.iter().find(|t| t.fillers.is_empty()) {
        bail!("data/{file}: the template {:?} has no fillers", empty.pattern);
    }
    Ok(out)
}

/// A unit price, as the service would accept it, in cents.
fn price_cents(raw: &str) -> anyhow::Result<i64> {
    let money =
        Money::parse_positive(raw, Money::MAX_UNIT_PRICE).map_err(|e| anyhow::anyhow!("the price {raw:?} {e}"))?;
    cents(money)
}

/// An extra price (zero allowed), in cents.
fn extra_cents(raw: &str) -> anyhow::Result<i64> {
    let decimal = Decimal::from_str(raw).map_err(|_| anyhow::anyhow!("the extra price {raw:?} is not a number"))?;
    let money = Money::from_decimal(decimal).map_err(|e| anyhow::anyhow!("the extra price {raw:?} {e}"))?;
    ensure!(money <= Money::MAX_UNIT_PRICE, "the extra price {raw:?} is too large");
    cents(money)
}

/// The amount in cents (a [`Money`] always has two decimal places).
fn cents(money: Money) -> anyhow::Result<i64> {
    let mut amount = money.amount();
    amount.rescale(2);
    i64::try_from(amount.mantissa()).context("the price is too large")
}

fn factor_of(raw: &str) -> anyhow::Result<f64> {
    match raw.parse::<f64>() {
        Ok(factor) if factor > 0.0 && factor <= 3.0 => Ok(factor),
        _ => bail!("the factor {raw:?} must be a number above 0 and at most 3"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use domain::{PersonName, ProductName};

    use super::*;

    /// The text is what the domain keeps of it: the generator writes these words as they are.
    fn normalized(text: &str) -> bool {
        ProductName::parse(text).is_ok_and(|name| name.as_ref() == text)
    }

    #[test]
    fn every_file_parses_and_holds_sane_values() {
        let words = Words::load().unwrap();
        assert!(words.classics.len() >= 50, "{}", words.classics.len());
        assert!(words.templates.len() >= 20 && words.variants.len() >= 5 && words.proteins.len() >= 20);
        assert!(words.cooking.len() >= 10 && words.sides.len() >= 5);
        assert!(words.first_names.len() >= 20 && words.last_names.len() >= 20);

        // Plausible prices: 1.20 to 35.00 for what is listed, a few euros at most extra.
        let sane = |p: &Priced| (120..=3500).contains(&p.lowest) && (120..=3500).contains(&p.highest);
        for p in words.classics.iter().chain(&words.proteins) {
            assert!(sane(p), "{p:?}");
            assert!(normalized(p.name), "{p:?}");
        }
        for t in &words.templates {
            assert!(sane(&Priced { name: t.pattern, lowest: t.lowest, highest: t.highest }), "{t:?}");
            assert!(t.fillers.iter().all(|f| normalized(f)), "{t:?}");
        }
        for v in &words.variants {
            assert!((0.5..=2.0).contains(&v.factor) && normalized(v.words), "{v:?}");
        }
        assert!(words.sides.iter().all(|s| (0..=300).contains(&s.extra) && s.words.is_none_or(normalized)));
        assert_eq!(words.sides.iter().filter(|s| s.words.is_none()).count(), 1, "one plain side");
        assert!(words.cooking.iter().all(|c| normalized(c)));

        // Customers' names (the customers' tests check every "first last" as a CustomerName).
        for name in words.first_names.iter().chain(&words.last_names) {
            assert!(PersonName::parse(name).is_ok_and(|parsed| parsed.as_ref() == *name), "{name}");
        }
        // No duplicates within a list.
        let distinct = |names: &[&str]| names.iter().collect::<HashSet<_>>().len() == names.len();
        assert!(distinct(&words.classics.iter().map(|p| p.name).collect::<Vec<_>>()));
        assert!(distinct(&words.proteins.iter().map(|p| p.name).collect::<Vec<_>>()));
        assert!(distinct(&words.cooking) && distinct(&words.first_names) && distinct(&words.last_names));
    }

    #[test]
    fn malformed_lines_are_refused_with_their_place() {
        let err = priced("test.txt", "# comment\n\nCaña\t1.80\n").unwrap_err();
        assert!(format!("{err:#}").contains("data/test.txt line 3"), "{err:#}");
        assert!(priced("test.txt", "Caña\t3.00\t1.80\n").is_err(), "lowest above highest");
        assert!(priced("test.txt", "Caña\t1.805\t3.00\n").is_err(), "three decimals");
        assert!(priced("test.txt", "Caña\t0\t3.00\n").is_err(), "free");
        assert!(priced("test.txt", " Caña\t1.80\t3.00\n").is_err(), "space around a field");
        assert!(templates("test.txt", "\tqueso\n").is_err(), "a filler first");
        assert!(templates("test.txt", "Pizza\t1.00\t2.00\tplain\n\tqueso\n").is_err(), "no {{}}");
        assert!(templates("test.txt", "Pizza {}\t1.00\t2.00\tplain\n").is_err(), "no fillers");
        assert_eq!(extra_cents("0.00").unwrap(), 0);
        assert_eq!(price_cents("12.5").unwrap(), 1250);
        assert!(factor_of("0").is_err() && factor_of("NaN").is_err());
    }
}
