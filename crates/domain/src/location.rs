//! Locations: the restaurants of a group. Each keeps its own clock (an IANA time zone from the
//! `chrono-tz` database), its business day and its tax settings.
//!
//! A business day starts at a local time of day (`business_day_start`, default midnight): a bar
//! whose day starts at 05:00 books a sale at 01:30 on the day before. Business days are
//! intervals of instants that follow one another without gap or overlap, so every instant (and
//! every order) belongs to exactly one business date, including on the days a daylight-saving
//! change makes 23 or 25 hours long (see [`LocationSettings::day_starts_at`]).

use std::fmt;

use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone as _, Timelike, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::text::{self, TextError};

/// A location's identifier (a UUID, time-ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocationId(pub Uuid);

impl fmt::Display for LocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A location's name: 1 to 120 characters after the text rule; unique ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationName(String);

impl LocationName {
    pub const MAX_LEN: usize = 120;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::normalize(raw, 1, Self::MAX_LEN).map(Self)
    }

    /// What makes two names the same location name: case and compatibility forms ignored
    /// (see [`text::case_key`]).
    pub fn key(&self) -> String {
        text::case_key(&self.0)
    }
}

impl AsRef<str> for LocationName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An IANA time zone (`America/Mexico_City`, `Europe/Madrid`, `UTC`), with its rules from the
/// `chrono-tz` crate's copy of the IANA database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(Tz);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an IANA time zone name, such as America/Mexico_City or UTC")]
pub struct TimeZoneError;

impl TimeZone {
    pub const UTC: Self = Self(Tz::UTC);
    /// The longest name the database has is 32 characters; names are stored up to this.
    pub const MAX_LEN: usize = 64;

    /// A zone by its exact IANA name (links such as `US/Eastern` included).
    pub fn parse(raw: &str) -> Result<Self, TimeZoneError> {
        raw.parse::<Tz>().map(Self).map_err(|_| TimeZoneError)
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// Every name [`TimeZone::parse`] accepts, in the database's order.
    pub fn names() -> Vec<&'static str> {
        chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect()
    }

    /// The wall-clock date and time at `at` in this zone.
    pub fn wall_clock(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.0).naive_local()
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The local time of day at which a business day starts, in whole minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BusinessDayStart(NaiveTime);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a time of day written HH:MM, from 00:00 to 23:59")]
pub struct DayStartError;

impl BusinessDayStart {
    pub const MIDNIGHT: Self = Self(NaiveTime::MIN);

    /// Exactly `HH:MM` (two digits each, 00:00 to 23:59).
    pub fn parse(raw: &str) -> Result<Self, DayStartError> {
        let bytes = raw.as_bytes();
        if bytes.len() != 5 || bytes[2] != b':' {
            return Err(DayStartError);
        }
        let number =
            |s: &str| (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok()).flatten();
        let (hour, minute) = (number(&raw[..2]), number(&raw[3..]));
        match (hour, minute) {
            (Some(h), Some(m)) => NaiveTime::from_hms_opt(h, m, 0).map(Self).ok_or(DayStartError),
            _ => Err(DayStartError),
        }
    }

    /// A time read back from storage: whole minutes only.
    pub fn from_time(time: NaiveTime) -> Result<Self, DayStartError> {
        if time.second() != 0 || time.nanosecond() != 0 {
            return Err(DayStartError);
        }
        Ok(Self(time))
    }

    pub fn time(&self) -> NaiveTime {
        self.0
    }
}

impl fmt::Display for BusinessDayStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0.hour(), self.0.minute())
    }
}

/// A tax rate in percent: 0 to 100 with at most three decimal places (`8.875`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct TaxRate(Decimal);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxRateError {
    #[error("must be a decimal number such as 16 or 8.875")]
    NotANumber,
    #[error("must be between 0 and 100")]
    OutOfRange,
    #[error("must have at most three decimal places")]
    TooManyDecimals,
}

impl TaxRate {
    pub const ZERO: Self = Self(Decimal::ZERO);
    pub const MAX_DECIMALS: u32 = 3;

    pub fn new(value: Decimal) -> Result<Self, TaxRateError> {
        let value = value.normalize();
        if value.scale() > Self::MAX_DECIMALS {
            return Err(TaxRateError::TooManyDecimals);
        }
        if value.is_sign_negative() && !value.is_zero() || value > Decimal::ONE_HUNDRED {
            return Err(TaxRateError::OutOfRange);
        }
        // Normalizing a negative zero keeps its sign; the rate is plain zero.
        Ok(Self(if value.is_zero() { Decimal::ZERO } else { value }))
    }

    /// Plain decimal digits with an optional point (`16`, `8.875`, `0.5`); no sign.
    pub fn parse(raw: &str) -> Result<Self, TaxRateError> {
        if raw.starts_with('-') {
            return Err(TaxRateError::OutOfRange);
        }
        let (int_part, frac_part) = raw.split_once('.').map_or((raw, None), |(i, f)| (i, Some(f)));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int_part) || frac_part.is_some_and(|f| !digits(f)) {
            return Err(TaxRateError::NotANumber);
        }
        if frac_part.is_some_and(|f| f.trim_end_matches('0').len() > Self::MAX_DECIMALS as usize) {
            return Err(TaxRateError::TooManyDecimals);
        }
        let significant = int_part.trim_start_matches('0');
        if significant.len() > 3 {
            return Err(TaxRateError::OutOfRange);
        }
        // Without leading zeros and trailing zeros of the fraction, which carry nothing and
        // could only overflow the decimal type.
        let whole = if significant.is_empty() { "0" } else { significant };
        let text = match frac_part.map(|f| f.trim_end_matches('0')) {
            Some(frac) if !frac.is_empty() => format!("{whole}.{frac}"),
            _ => whole.to_owned(),
        };
        let value: Decimal = text.parse().map_err(|_| TaxRateError::NotANumber)?;
        Self::new(value)
    }

    pub fn percent(&self) -> Decimal {
        self.0
    }
}

impl fmt::Display for TaxRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a location's orders are placed under: its clock, its business day and its tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocationSettings {
    pub time_zone: TimeZone,
    pub business_day_start: BusinessDayStart,
    pub tax_rate: TaxRate,
    pub prices_include_tax: bool,
}

impl Default for LocationSettings {
    fn default() -> Self {
        Self {
            time_zone: TimeZone::UTC,
            business_day_start: BusinessDayStart::MIDNIGHT,
            tax_rate: TaxRate::ZERO,
            prices_include_tax: true,
        }
    }
}

impl LocationSettings {
    /// The business date that instant `at` belongs to: the date `d` with
    /// `day_starts_at(d) <= at < day_starts_at(d + 1)`.
    pub fn business_date(&self, at: DateTime<Utc>) -> NaiveDate {
        let wall = self.time_zone.wall_clock(at);
        let since_start = wall.time().signed_duration_since(self.business_day_start.time());
        let mut date = if since_start < TimeDelta::zero() { wall.date().pred_opt() } else { Some(wall.date()) }
            .unwrap_or(wall.date());
        // Around a daylight-saving change the wall clock repeats or skips an hour, and the
        // date read off it can be one day off the interval that holds `at`: settle it on the
        // boundaries themselves.
        for _ in 0..3 {
            match date.pred_opt() {
                Some(before) if at < self.day_starts_at(date) => date = before,
                _ => break,
            }
        }
        for _ in 0..3 {
            match date.succ_opt() {
                Some(after) if at >= self.day_starts_at(after) => date = after,
                _ => break,
            }
        }
        date
    }

    /// The first instant of business date `date`: the earliest instant at which the wall clock
    /// shows that date at the day's start time or later. When the clock goes back and shows
    /// that time twice, the first time; when it jumps over it, the moment of the jump.
    pub fn day_starts_at(&self, date: NaiveDate) -> DateTime<Utc> {
        let wall = date.and_time(self.business_day_start.time());
        match self.time_zone.0.from_local_datetime(&wall) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
            LocalResult::None => self.first_instant_showing(wall),
        }
    }

    /// The earliest instant whose wall-clock time is `wall` or later, for a `wall` that the
    /// clock skips: a search over whole seconds (the database's changes happen on whole
    /// seconds) within a day and a bit on either side, where every offset lies.
    fn first_instant_showing(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        let around = wall.and_utc();
        let (mut low, mut high) = (around - TimeDelta::hours(26), around + TimeDelta::hours(26));
        // Invariant: the clock shows less than `wall` at `low` and at least `wall` at `high`.
        while high - low > TimeDelta::seconds(1) {
            let middle = low + (high - low) / 2;
            let middle = middle - TimeDelta::nanoseconds(i64::from(middle.timestamp_subsec_nanos()));
            if middle <= low {
                break;
            }
            if self.time_zone.wall_clock(middle) >= wall {
                high = middle;
            } else {
                low = middle;
            }
        }
        high
    }

    /// Instants within which every order of the business dates `first..=last` was created,
    /// whatever the zone and the day start (a conservative bound, for searching by time).
    pub fn instants_holding(first: NaiveDate, last: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        // A wall clock is at most 16 hours from UTC and a business day starts at most 24
        // hours after its date's midnight: two days on either side hold it with room to spare.
        let start = first.and_time(NaiveTime::MIN).and_utc() - TimeDelta::days(2);
        let end = last.and_time(NaiveTime::MIN).and_utc() + TimeDelta::days(3);
        (start, end)
    }
}

/// A restaurant of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    id: LocationId,
    name: LocationName,
    settings: LocationSettings,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A change to a location: each field that is present replaces the current one. It applies to
/// orders created afterwards; orders keep the business date they were given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocationChange {
    pub name: Option<LocationName>,
    pub time_zone: Option<TimeZone>,
    pub business_day_start: Option<BusinessDayStart>,
    pub tax_rate: Option<TaxRate>,
    pub prices_include_tax: Option<bool>,
}

impl Location {
    pub fn new(id: LocationId, name: LocationName, settings: LocationSettings, now: DateTime<Utc>) -> Self {
        Self { id, name, settings, created_at: now, updated_at: now }
    }

    /// A location read back from storage.
    pub fn restore(
        id: LocationId,
        name: LocationName,
        settings: LocationSettings,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    ) -> Self {
        Self { id, name, settings, created_at, updated_at }
    }

    /// Applies the change; the location is updated only if something differs.
    pub fn change(&mut self, change: LocationChange, now: DateTime<Utc>) {
        let before = self.clone();
        if let Some(name) = change.name {
            self.name = name;
        }
        if let Some(zone) = change.time_zone {
            self.settings.time_zone = zone;
        }
        if let Some(start) = change.business_day_start {
            self.settings.business_day_start = start;
        }
        if let Some(rate) = change.tax_rate {
            self.settings.tax_rate = rate;
        }
        if let Some(included) = change.prices_include_tax {
            self.settings.prices_include_tax = included;
        }
        if *self != before {
            self.updated_at = now.max(self.created_at);
        }
    }

    /// The business date of an order created at `at`.
    pub fn business_date(&self, at: DateTime<Utc>) -> NaiveDate {
        self.settings.business_date(at)
    }

    pub fn id(&self) -> LocationId {
        self.id
    }
    pub fn name(&self) -> &LocationName {
        &self.name
    }
    pub fn settings(&self) -> &LocationSettings {
        &self.settings
    }
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn settings(zone: &str, start: &str) -> LocationSettings {
        LocationSettings {
            time_zone: TimeZone::parse(zone).unwrap(),
            business_day_start: BusinessDayStart::parse(start).unwrap(),
            ..LocationSettings::default()
        }
    }

    #[test]
    fn a_bar_books_the_small_hours_on_the_day_it_opened() {
        // Mexico City keeps UTC-6 all year since 2022.
        let bar = settings("America/Mexico_City", "05:00");
        assert_eq!(bar.business_date(t("2026-12-05T07:30:00Z")), d("2026-12-04"), "01:30 local");
        assert_eq!(bar.business_date(t("2026-12-05T10:59:59Z")), d("2026-12-04"), "04:59:59 local");
        assert_eq!(bar.business_date(t("2026-12-05T11:00:00Z")), d("2026-12-05"), "05:00 local");
        assert_eq!(bar.day_starts_at(d("2026-12-05")), t("2026-12-05T11:00:00Z"));
        // Midnight is an ordinary hour of the night.
        let midnight = settings("America/Mexico_City", "00:00");
        assert_eq!(midnight.business_date(t("2026-12-05T05:59:00Z")), d("2026-12-04"));
        assert_eq!(midnight.business_date(t("2026-12-05T06:00:00Z")), d("2026-12-05"));
    }

    #[test]
    fn utc_at_midnight_is_the_calendar_date() {
        let plain = LocationSettings::default();
        assert_eq!(plain.business_date(t("2026-12-03T00:00:00Z")), d("2026-12-03"));
        assert_eq!(plain.business_date(t("2026-12-03T23:59:59.999999Z")), d("2026-12-03"));
    }

    #[test]
    fn daylight_saving_days_last_23_and_25_hours() {
        let ny = settings("America/New_York", "00:00");
        let length = |day: &str| {
            let day = d(day);
            ny.day_starts_at(day.succ_opt().unwrap()) - ny.day_starts_at(day)
        };
        assert_eq!(length("2026-03-08"), TimeDelta::hours(23));
        assert_eq!(length("2026-11-01"), TimeDelta::hours(25));
        assert_eq!(length("2026-11-02"), TimeDelta::hours(24));
    }

    #[test]
    fn a_day_start_inside_the_skipped_hour_starts_at_the_jump() {
        // New York skips 02:00-03:00 on 8 March 2026 (07:00Z is 03:00 EDT).
        let ny = settings("America/New_York", "02:30");
        assert_eq!(ny.day_starts_at(d("2026-03-08")), t("2026-03-08T07:00:00Z"));
        assert_eq!(ny.business_date(t("2026-03-08T06:59:59Z")), d("2026-03-07"));
        assert_eq!(ny.business_date(t("2026-03-08T07:00:00Z")), d("2026-03-08"));
    }

    #[test]
    fn a_day_start_inside_the_repeated_hour_starts_the_first_time() {
        // New York shows 01:00-02:00 twice on 1 November 2026: EDT (05:00Z-06:00Z), then EST.
        let ny = settings("America/New_York", "01:30");
        assert_eq!(ny.day_starts_at(d("2026-11-01")), t("2026-11-01T05:30:00Z"));
        assert_eq!(ny.business_date(t("2026-11-01T05:29:59Z")), d("2026-10-31"));
        assert_eq!(ny.business_date(t("2026-11-01T05:45:00Z")), d("2026-11-01"), "01:45 EDT");
        // 01:15 EST comes after 01:45 EDT: still the new day, although its wall time is earlier.
        assert_eq!(ny.business_date(t("2026-11-01T06:15:00Z")), d("2026-11-01"), "01:15 EST");
    }

    #[test]
    fn every_minute_of_a_year_belongs_to_one_day_in_order() {
        for (zone, start) in [("America/New_York", "01:30"), ("Europe/Madrid", "02:30"), ("Asia/Kathmandu", "04:10")] {
            let location = settings(zone, start);
            let mut at = t("2026-01-01T00:00:00Z");
            let mut previous = location.business_date(at);
            while at < t("2027-01-01T00:00:00Z") {
                let date = location.business_date(at);
                assert!(location.day_starts_at(date) <= at && at < location.day_starts_at(date.succ_opt().unwrap()));
                assert!(
                    date == previous || date == previous.succ_opt().unwrap(),
                    "{zone} {at}: {previous} then {date}"
                );
                previous = date;
                at += TimeDelta::minutes(13);
            }
        }
    }

    #[test]
    fn the_search_bound_holds_every_business_date() {
        for zone in ["Pacific/Kiritimati", "Etc/GMT+12", "America/New_York"] {
            let late = settings(zone, "23:59");
            let early = settings(zone, "00:00");
            for s in [late, early] {
                let day = d("2026-06-15");
                let (from, to) = LocationSettings::instants_holding(day, day);
                assert!(from <= s.day_starts_at(day) && s.day_starts_at(day.succ_opt().unwrap()) <= to, "{zone}");
            }
        }
    }

    #[test]
    fn parsing_the_settings() {
        assert!(TimeZone::parse("America/Mexico_City").is_ok());
        assert!(TimeZone::parse("UTC").is_ok());
        assert_eq!(TimeZone::parse("Mars/Olympus"), Err(TimeZoneError));
        assert_eq!(TimeZone::parse("america/mexico_city"), Err(TimeZoneError));
        assert_eq!(BusinessDayStart::parse("05:30").unwrap().to_string(), "05:30");
        for bad in ["5:30", "24:00", "05:60", "05:30:00", "0530", "", "+5:30"] {
            assert_eq!(BusinessDayStart::parse(bad), Err(DayStartError), "{bad:?}");
        }
        assert_eq!(TaxRate::parse("8.875").unwrap().to_string(), "8.875");
        assert_eq!(TaxRate::parse("16.000").unwrap().to_string(), "16");
        assert_eq!(TaxRate::parse("100").unwrap().to_string(), "100");
        assert_eq!(TaxRate::parse("0").unwrap(), TaxRate::ZERO);
        assert_eq!(TaxRate::parse("-0"), Err(TaxRateError::OutOfRange));
        assert_eq!(TaxRate::parse("100.001"), Err(TaxRateError::OutOfRange));
        assert_eq!(TaxRate::parse("-1"), Err(TaxRateError::OutOfRange));
        assert_eq!(TaxRate::parse("1.0005"), Err(TaxRateError::TooManyDecimals));
        assert_eq!(TaxRate::parse("1e2"), Err(TaxRateError::NotANumber));
        assert_eq!(
            TaxRate::parse("00000000000000000000000000000001.50000000000000000000000000000").unwrap().to_string(),
            "1.5"
        );
        assert_eq!(TaxRate::parse("1000"), Err(TaxRateError::OutOfRange));
        assert_eq!(LocationName::parse("  Centro  ").unwrap().key(), LocationName::parse("CENTRO").unwrap().key());
    }

    #[test]
    fn a_change_touches_only_what_it_names() {
        let now = t("2026-12-01T10:00:00Z");
        let name = LocationName::parse("Centro").unwrap();
        let mut location = Location::new(LocationId(Uuid::nil()), name, LocationSettings::default(), now);
        location.change(LocationChange::default(), t("2026-12-02T10:00:00Z"));
        assert_eq!(location.updated_at(), now, "nothing changed");
        let change = LocationChange { tax_rate: Some(TaxRate::parse("16").unwrap()), ..LocationChange::default() };
        location.change(change, t("2026-12-02T10:00:00Z"));
        assert_eq!(location.settings().tax_rate.to_string(), "16");
        assert_eq!(location.settings().time_zone, TimeZone::UTC);
        assert_eq!(location.updated_at(), t("2026-12-02T10:00:00Z"));
    }
}
