//! The seeded locations: the first location (whatever an operator made of it) and up to four
//! more in other time zones, each with a business day that starts at its own hour. Reused when
//! a location of that name exists.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use application::{LocationRepository as _, LocationScope};
use domain::{BusinessDayStart, Location, LocationId, LocationName, LocationSettings, TaxRate, TimeZone};
use infrastructure::{Database, PgLocationRepository};

use super::times::timestamp;

/// Name, time zone, business-day start and tax rate of the locations seeded after the first.
const SEEDED: [(&str, &str, &str, &str); 4] = [
    ("Centro", "America/Mexico_City", "05:00", "16"),
    ("Gràcia", "Europe/Madrid", "04:00", "10"),
    ("Brooklyn", "America/New_York", "02:00", "8.875"),
    ("Shibuya", "Asia/Tokyo", "00:00", "10"),
];

/// The most locations a seed spreads its orders over.
pub(super) const MAX_LOCATIONS: usize = SEEDED.len() + 1;

/// `count` locations: the oldest existing one, then the seeded ones (made when missing).
pub(super) fn ensure(database: &Database, count: usize, now: DateTime<Utc>) -> anyhow::Result<Vec<Location>> {
    let repository = PgLocationRepository::new(database.clone());
    let existing = repository.all(&LocationScope::All).context("could not read the locations")?;
    let first = existing.first().cloned().context("the database has no location; run `db-admin migrate`")?;
    let mut chosen = vec![first];
    for (name, zone, start, rate) in SEEDED.iter().take(count.saturating_sub(1)) {
        let name = LocationName::parse(name).map_err(|e| anyhow::anyhow!("a seeded location's name {e}"))?;
        if let Some(found) = existing.iter().find(|l| l.name().key() == name.key()) {
            chosen.push(found.clone());
            continue;
        }
        let settings = LocationSettings {
            time_zone: TimeZone::parse(zone).map_err(|e| anyhow::anyhow!("{zone}: {e}"))?,
            business_day_start: BusinessDayStart::parse(start).map_err(|e| anyhow::anyhow!("{start}: {e}"))?,
            tax_rate: TaxRate::parse(rate).map_err(|e| anyhow::anyhow!("{rate}: {e}"))?,
            prices_include_tax: true,
        };
        let location = Location::new(LocationId(Uuid::now_v7()), name, settings, now);
        repository.insert(&location).context("could not create a seeded location")?;
        chosen.push(location);
    }
    // Another seed may have made one of the same name meanwhile: read back what is stored.
    let stored = repository.all(&LocationScope::All).context("could not read the locations")?;
    chosen
        .into_iter()
        .map(|wanted| {
            stored
                .iter()
                .find(|l| l.name().key() == wanted.name().key())
                .cloned()
                .with_context(|| format!("the location {} could not be created", wanted.name().as_ref()))
        })
        .collect()
}

/// A location's business dates, with the last day looked up kept: orders come in time order,
/// so nearly every order's date is the day before's.
pub(super) struct Calendar {
    location: Location,
    /// The last business day looked up: its first instant, the next day's, its date
    /// (microseconds since the epoch).
    day: Option<(i64, i64, NaiveDate)>,
}

impl Calendar {
    pub fn new(location: Location) -> Self {
        Self { location, day: None }
    }

    pub fn id(&self) -> LocationId {
        self.location.id()
    }

    /// The business date of an order created at `at_us`, by the domain's rule.
    pub fn date(&mut self, at_us: i64) -> NaiveDate {
        if let Some((start, end, date)) = self.day
            && (start..end).contains(&at_us)
        {
            return date;
        }
        let date = self.location.business_date(timestamp(at_us));
        let settings = self.location.settings();
        let start = settings.day_starts_at(date).timestamp_micros();
        let end = date.succ_opt().map_or(i64::MAX, |next| settings.day_starts_at(next).timestamp_micros());
        self.day = Some((start, end, date));
        date
    }
}
