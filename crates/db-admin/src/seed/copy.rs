//! PostgreSQL's `COPY` text format, written by hand on the hot path: tab-separated fields, one
//! row per line, numbers, money and times written digit by digit into the batch's buffer.

use chrono::{Datelike, Timelike};
use uuid::Uuid;

use super::times::timestamp;

/// A UUID in its hyphenated form, ready to write.
pub(super) fn hyphenated(id: Uuid) -> [u8; 36] {
    let mut out = [0u8; 36];
    id.hyphenated().encode_lower(&mut out);
    out
}

pub(super) fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_padded(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut v = value;
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

/// Non-negative cents as `12.34`.
pub(super) fn push_money(out: &mut Vec<u8>, cents: i64) {
    let cents = cents.max(0) as u64;
    push_u64(out, cents / 100);
    out.push(b'.');
    push_padded(out, (cents % 100) as u32, 2);
}

/// `YYYY-MM-DD HH:MM:SS.ffffff+00`.
pub(super) fn push_timestamp(out: &mut Vec<u8>, us: i64) {
    let t = timestamp(us);
    push_padded(out, u32::try_from(t.year()).unwrap_or(0), 4);
    out.push(b'-');
    push_padded(out, t.month(), 2);
    out.push(b'-');
    push_padded(out, t.day(), 2);
    out.push(b' ');
    push_padded(out, t.hour(), 2);
    out.push(b':');
    push_padded(out, t.minute(), 2);
    out.push(b':');
    push_padded(out, t.second(), 2);
    out.push(b'.');
    push_padded(out, t.timestamp_subsec_micros(), 6);
    out.extend_from_slice(b"+00");
}

/// Text for PostgreSQL's COPY text format: backslash, tab, newline and carriage return escaped.
pub(super) fn copy_escaped(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_postgres_text() {
        let mut out = Vec::new();
        push_timestamp(&mut out, 1_700_000_000_000_001);
        assert_eq!(out, b"2023-11-14 22:13:20.000001+00");
        let money = |cents| {
            let mut out = Vec::new();
            push_money(&mut out, cents);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(money(5), "0.05");
        assert_eq!(money(123_456), "1234.56");
        assert_eq!(copy_escaped("a\tb\\c"), b"a\\tb\\\\c");
    }
}
