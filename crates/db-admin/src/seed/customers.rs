//! Who the orders are for: a table, the bar, the terrace, take-away, or a person.

use std::ops::RangeInclusive;

use rand::Rng;

/// Every name an order can be for, written once (the rows borrow them). They are not parsed as
/// `CustomerName`s on the hot path: the tests check once that the domain keeps each unchanged.
pub(super) struct Customers {
    tables: Numbered,
    bar: Numbered,
    terrace: Numbered,
    take_away: Numbered,
    /// Every first name with every last name, by first name.
    people: Vec<String>,
    first_names: usize,
    last_names: usize,
}

/// `"{what} {n}"` for each number n of a range.
struct Numbered {
    first: u64,
    last: u64,
    names: Vec<String>,
}

impl Numbered {
    fn new(what: &str, numbers: RangeInclusive<u64>) -> Self {
        let (first, last) = (*numbers.start(), *numbers.end());
        Self { first, last, names: numbers.map(|n| format!("{what} {n}")).collect() }
    }

    fn pick(&self, rng: &mut impl Rng) -> &str {
        let n = rng.random_range(self.first..=self.last);
        &self.names[(n - self.first) as usize]
    }
}

impl Customers {
    pub fn new(first_names: &[&str], last_names: &[&str]) -> Self {
        Self {
            tables: Numbered::new("Mesa", 1..=40),
            bar: Numbered::new("Barra", 1..=12),
            terrace: Numbered::new("Terraza", 1..=20),
            take_away: Numbered::new("Para llevar", 100..=999),
            people: first_names
                .iter()
                .flat_map(|first| last_names.iter().map(move |last| format!("{first} {last}")))
                .collect(),
            first_names: first_names.len(),
            last_names: last_names.len(),
        }
    }

    /// A customer: 45% a table, 10% the bar, 10% the terrace, 7% take-away, 28% a person.
    pub fn pick(&self, rng: &mut impl Rng) -> &str {
        let u: u32 = rng.random_range(0..100);
        match u {
            0..45 => self.tables.pick(rng),
            45..55 => self.bar.pick(rng),
            55..65 => self.terrace.pick(rng),
            65..72 => self.take_away.pick(rng),
            _ => {
                let first = rng.random_range(0..self.first_names);
                let last = rng.random_range(0..self.last_names);
                &self.people[first * self.last_names + last]
            }
        }
    }

    #[cfg(test)]
    fn all(&self) -> impl Iterator<Item = &String> {
        [&self.tables, &self.bar, &self.terrace, &self.take_away]
            .into_iter()
            .flat_map(|numbered| &numbered.names)
            .chain(&self.people)
    }
}

#[cfg(test)]
mod tests {
    use domain::CustomerName;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::super::words::Words;
    use super::*;

    #[test]
    fn every_customer_is_a_customer_name_as_the_domain_keeps_it() {
        let words = Words::load().unwrap();
        let customers = Customers::new(&words.first_names, &words.last_names);
        let mut count = 0;
        for name in customers.all() {
            assert_eq!(CustomerName::parse(name).unwrap().as_ref(), name);
            count += 1;
        }
        assert_eq!(count, 40 + 12 + 20 + 900 + words.first_names.len() * words.last_names.len());
        let mut rng = SmallRng::seed_from_u64(1);
        let picked: Vec<&str> = (0..1000).map(|_| customers.pick(&mut rng)).collect();
        assert!(picked.iter().any(|c| c.starts_with("Mesa ")) && picked.iter().any(|c| !c.contains(char::is_numeric)));
    }
}
