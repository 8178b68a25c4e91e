//! Dates and instants as clients write them: RFC 3339 only, and only the years 0000 to 9999
//! that RFC 3339 (and so the contract) can hold. chrono also reads forms such as a negative
//! or five-digit year (`-0001-01-01T00:00:00Z`, `+10000-01-01`) that PostgreSQL cannot store
//! or that overflow date arithmetic: those are refused with a 422 that says the range, never
//! passed on.

use std::str::FromStr;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};

/// The message of an instant or a date outside the years RFC 3339 can write.
pub const OUT_OF_RANGE: &str = "must be between the years 0000 and 9999";

/// An RFC 3339 date-time (with an offset; converted to UTC).
pub fn parse_instant(raw: &str) -> Result<DateTime<Utc>, &'static str> {
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) if (0..=9999).contains(&t.year()) => Ok(t.with_timezone(&Utc)),
        Ok(_) => Err(OUT_OF_RANGE),
        // What chrono's lenient reading takes but RFC 3339 does not: a year out of range.
        Err(_) => match DateTime::<FixedOffset>::from_str(raw) {
            Ok(_) => Err(OUT_OF_RANGE),
            Err(_) => Err("must be an RFC 3339 date-time such as 2026-11-23T14:30:00Z"),
        },
    }
}

/// A calendar date `YYYY-MM-DD`.
pub fn parse_date(raw: &str) -> Result<NaiveDate, &'static str> {
    let padded = raw.len() == 10 && raw.as_bytes()[4] == b'-' && raw.as_bytes()[7] == b'-';
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(day) if !(0..=9999).contains(&day.year()) => Err(OUT_OF_RANGE),
        Ok(day) if padded => Ok(day),
        _ => Err("must be a date YYYY-MM-DD"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc3339_within_four_digit_years() {
        assert_eq!(parse_instant("2026-11-23T14:30:00+01:00").unwrap().to_rfc3339(), "2026-11-23T13:30:00+00:00");
        assert!(parse_instant("0000-01-01T00:00:00Z").is_ok());
        assert!(parse_instant("9999-12-31T23:59:59.999999-23:59").is_ok());
        for far in
            ["-0001-01-01T00:00:00Z", "+10000-01-01T00:00:00Z", "-262143-01-01T00:00:00Z", "+262142-12-31T23:59:59Z"]
        {
            assert_eq!(parse_instant(far), Err(OUT_OF_RANGE), "{far}");
        }
        assert_ne!(parse_instant("yesterday"), Err(OUT_OF_RANGE));
        assert!(parse_instant("2026-11-23").is_err());
    }

    #[test]
    fn dates_are_four_digit_years() {
        assert_eq!(parse_date("2026-02-28").unwrap().to_string(), "2026-02-28");
        for far in ["-0001-01-01", "+10000-01-01"] {
            assert_eq!(parse_date(far), Err(OUT_OF_RANGE), "{far}");
        }
        for far in ["262142-12-31", "99999-01-01"] {
            assert!(parse_date(far).is_err(), "{far}");
        }
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("2026-2-3").is_err());
    }
}
