//! The text rule of the contract, and what makes two names the same.
//!
//! A name is stored in Unicode Normalization Form C, trimmed, with inner runs of white space
//! collapsed to one space. Control characters and bidirectional controls (which can make a name
//! read in another order than it is stored) are refused, and so is a name that is empty once
//! white space, format and other invisible characters are set aside. Lengths are counted in
//! characters after that.
//!
//! Two names are the same when their [`fold_key`]s are equal: compatibility forms unified
//! (NFKC), case folded, and characters that look alike mapped to one prototype (the confusable
//! skeleton of Unicode Technical Standard #39), so that `Café` written with a combining accent,
//! `CAFÉ` and `Сafé` with a Cyrillic `С` are one product. The character data comes from the
//! Unicode crates (`unicode-normalization`, `caseless`, `unicode-security`, `icu_properties`).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::RangeInclusive;

use icu_properties::props::{BidiControl, DefaultIgnorableCodePoint, GeneralCategory, WhiteSpace};
use icu_properties::{CodePointMapData, CodePointSetData};
use unicode_normalization::UnicodeNormalization;

/// Why a piece of text is not an acceptable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at least {min} characters long")]
    TooShort { min: usize },
    #[error("must be at most {max} characters long")]
    TooLong { max: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must not contain bidirectional control characters")]
    BidiControl,
    #[error("must contain visible characters")]
    Invisible,
    #[error("is too long once its compatibility characters are expanded")]
    KeyTooLong,
}

/// U+2800 BRAILLE PATTERN BLANK: a symbol (gc=So) that draws nothing, so no Unicode property
/// marks it as invisible; it is the one character added by hand to what the properties say.
const BRAILLE_BLANK: char = '\u{2800}';

/// Whether `c` draws nothing visible: white space, a default-ignorable code point (zero-width
/// space and joiners, the byte order mark, Hangul fillers, variation selectors), a format
/// character (gc=Cf), or the braille blank.
pub fn is_invisible(c: char) -> bool {
    // ASCII (most of every name): only its white space draws nothing.
    if c.is_ascii() {
        return matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ');
    }
    CodePointSetData::new::<WhiteSpace>().contains(c)
        || c == BRAILLE_BLANK
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
        || CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Format
}

/// Whether `c` is a bidirectional control (Bidi_Control: the embeddings, overrides, isolates
/// and marks).
pub fn is_bidi_control(c: char) -> bool {
    // The first of them is U+061C ARABIC LETTER MARK.
    if (c as u32) < 0x061C {
        return false;
    }
    CodePointSetData::new::<BidiControl>().contains(c)
}

/// Normalizes `raw` by the contract's rule and checks that its length is within `min..=max`
/// characters (`min` is at least 1).
pub fn normalize(raw: &str, min: usize, max: usize) -> Result<String, TextError> {
    if raw.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter);
    }
    if raw.chars().any(is_bidi_control) {
        return Err(TextError::BidiControl);
    }
    // Cheap guard before normalizing: a name far above `max` characters (NFC never shortens a
    // string by more than a few characters per character) is refused without more work.
    if raw.split_whitespace().map(|w| w.chars().count() + 1).sum::<usize>() > max.saturating_mul(4) + 1 {
        return Err(TextError::TooLong { max });
    }
    // Most names are already composed (plain ASCII always is): then the quick check spares
    // composing a copy.
    let composed: Cow<'_, str> = match unicode_normalization::is_nfc_quick(raw.chars()) {
        unicode_normalization::IsNormalized::Yes => Cow::Borrowed(raw),
        _ => Cow::Owned(raw.nfc().collect()),
    };
    let mut out = String::with_capacity(composed.len());
    let mut count = 0usize;
    for word in composed.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
            count += 1;
        }
        out.push_str(word);
        count += word.chars().count();
        if count > max {
            return Err(TextError::TooLong { max });
        }
    }
    if count == 0 {
        return Err(TextError::Empty);
    }
    if out.chars().all(is_invisible) {
        return Err(TextError::Invisible);
    }
    if count < min {
        return Err(TextError::TooShort { min });
    }
    Ok(out)
}

/// What makes two texts the same: NFKC, upper-cased, mapped to its confusable skeleton (UTS
/// #39, which also drops default-ignorable characters), case folded and composed.
///
/// The skeleton is taken of the capitals because that is where scripts look alike: Cyrillic
/// `Т` is confusable with Latin `T`, while lower-case `т` (drawn as a small capital) is not
/// confusable with `t`. Upper-casing first makes `Тасо` and `taco` one key, as `Taco` and
/// `TACO` are.
///
/// Names repeat (a menu's products are typed again and again, and each name is keyed when it
/// is parsed and when its order is placed), so each thread keeps the keys of the last names it
/// saw: [`FOLD_MEMO`] of them at most, forgotten all at once when full.
pub fn fold_key(text: &str) -> String {
    thread_local! {
        static MEMO: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
    }
    MEMO.with(|memo| {
        if let Some(key) = memo.borrow().get(text) {
            return key.clone();
        }
        let capitals: String = text.nfkc().collect::<String>().to_uppercase();
        let skeleton: String = unicode_security::skeleton(&capitals).collect();
        let key: String = caseless::default_case_fold_str(&skeleton).nfc().collect();
        let mut memo = memo.borrow_mut();
        if memo.len() >= FOLD_MEMO {
            memo.clear();
        }
        memo.insert(text.to_owned(), key.clone());
        key
    })
}

/// How many names' keys each thread keeps (see [`fold_key`]): a large menu's worth, a few
/// hundred kilobytes.
pub const FOLD_MEMO: usize = 2048;

/// The characters the rule refuses anywhere in a name: controls (gc=Cc) and bidirectional
/// controls, as ranges (for documents that must say the rule, such as the OpenAPI patterns).
pub fn refused_ranges() -> Vec<RangeInclusive<char>> {
    let controls = CodePointMapData::<GeneralCategory>::new().iter_ranges_for_value(GeneralCategory::Control);
    merge(controls.chain(CodePointSetData::new::<BidiControl>().iter_ranges()))
}

/// The characters that draw nothing ([`is_invisible`]), as ranges.
pub fn invisible_ranges() -> Vec<RangeInclusive<char>> {
    let format = CodePointMapData::<GeneralCategory>::new().iter_ranges_for_value(GeneralCategory::Format);
    let braille = std::iter::once(BRAILLE_BLANK as u32..=BRAILLE_BLANK as u32);
    merge(
        CodePointSetData::new::<WhiteSpace>()
            .iter_ranges()
            .chain(CodePointSetData::new::<DefaultIgnorableCodePoint>().iter_ranges())
            .chain(format)
            .chain(braille),
    )
}

/// White space (the White_Space property: what trimming removes), as ranges.
pub fn white_space_ranges() -> Vec<RangeInclusive<char>> {
    merge(CodePointSetData::new::<WhiteSpace>().iter_ranges())
}

/// Sorted, merged ranges of scalar values (surrogates are not characters: ranges are cut there).
fn merge(ranges: impl Iterator<Item = RangeInclusive<u32>>) -> Vec<RangeInclusive<char>> {
    let mut all: Vec<RangeInclusive<u32>> = ranges.collect();
    all.sort_by_key(|r| *r.start());
    let mut merged: Vec<RangeInclusive<u32>> = Vec::new();
    for range in all {
        match merged.last_mut() {
            Some(last) if *range.start() <= last.end() + 1 => {
                if range.end() > last.end() {
                    *last = *last.start()..=*range.end();
                }
            }
            _ => merged.push(range),
        }
    }
    merged
        .into_iter()
        .flat_map(|r| {
            // Split around the surrogates, which `char` cannot hold.
            [(*r.start(), (*r.end()).min(0xD7FF)), ((*r.start()).max(0xE000), *r.end())]
        })
        .filter_map(|(a, b)| Some(char::from_u32(a)?..=char::from_u32(b)?).filter(|r| r.start() <= r.end()))
        .collect()
}

/// What makes two texts equal ignoring case and compatibility forms (NFKC, case folded,
/// composed): for identifiers such as emails, where look-alikes stay apart.
pub fn case_key(text: &str) -> String {
    let compatible: String = text.nfkc().collect();
    caseless::default_case_fold_str(&compatible).nfc().collect()
}

/// A looser [`case_key`]: accents (nonspacing marks) and white space dropped, for spotting a
/// word inside a password (`Lucía Fernández` in `luciafernandez1`).
pub fn loose_key(text: &str) -> String {
    let folded = case_key(text);
    folded
        .nfd()
        .filter(|c| {
            !c.is_whitespace() && CodePointMapData::<GeneralCategory>::new().get(*c) != GeneralCategory::NonspacingMark
        })
        .collect()
}

/// `raw` composed (NFC): what is stored of text that is not a name (emails).
pub fn compose(raw: &str) -> String {
    raw.nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcuts for ASCII and for the characters before the first bidirectional control
    /// say what the Unicode properties say.
    #[test]
    fn the_shortcuts_agree_with_the_properties() {
        for c in (0..0x0800).filter_map(char::from_u32) {
            let invisible = CodePointSetData::new::<WhiteSpace>().contains(c)
                || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
                || CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Format;
            assert_eq!(is_invisible(c), invisible, "{c:?}");
            assert_eq!(is_bidi_control(c), CodePointSetData::new::<BidiControl>().contains(c), "{c:?}");
        }
    }

    #[test]
    fn trims_and_collapses_inner_white_space() {
        assert_eq!(normalize("  Café \u{a0}  con\u{2003}leche ", 1, 120).unwrap(), "Café con leche");
    }

    #[test]
    fn rejects_control_characters_including_nul_and_newlines() {
        for raw in ["a\u{0}b", "a\nb", "tab\there", "bell\u{7}", "del\u{7f}", "c1\u{85}"] {
            assert_eq!(normalize(raw, 1, 120), Err(TextError::ControlCharacter), "{raw:?}");
        }
    }

    #[test]
    fn counts_characters_not_bytes() {
        let name = "ñ".repeat(120);
        assert_eq!(normalize(&name, 1, 120).unwrap().chars().count(), 120);
        assert_eq!(normalize(&format!("{name}ñ"), 1, 120), Err(TextError::TooLong { max: 120 }));
    }

    #[test]
    fn empty_and_short_are_told_apart() {
        assert_eq!(normalize("   ", 1, 120), Err(TextError::Empty));
        assert_eq!(normalize(" a ", 2, 100), Err(TextError::TooShort { min: 2 }));
    }

    #[test]
    fn stored_text_is_composed() {
        // "Café" with a combining acute accent is stored with the precomposed é.
        assert_eq!(normalize("Cafe\u{301}", 1, 120).unwrap(), "Caf\u{e9}");
        // Length counts the composed characters: 120 combining pairs are 120 characters.
        assert!(normalize(&"e\u{301}".repeat(120), 1, 120).is_ok());
    }

    #[test]
    fn names_that_draw_nothing_are_refused() {
        for raw in [
            "\u{200b}",         // zero-width space
            "\u{3164}\u{3164}", // Hangul filler
            "\u{2800}",         // braille blank
            "\u{feff}",         // byte order mark
            "\u{200b} \u{2060}\u{180e}",
            "\u{fe0f}",  // variation selector
            "\u{e0020}", // tag space
            "\u{115f}\u{1160}",
        ] {
            assert_eq!(normalize(raw, 1, 120), Err(TextError::Invisible), "{raw:?}");
        }
        // Invisible characters inside a visible name are kept (joiners matter in some scripts).
        assert_eq!(normalize("Ca\u{200b}fé", 1, 120).unwrap(), "Ca\u{200b}fé");
    }

    #[test]
    fn bidi_controls_are_refused() {
        for raw in ["abc\u{202e}fed", "\u{2066}x\u{2069}", "a\u{200f}", "b\u{61c}", "\u{202a}x"] {
            assert_eq!(normalize(raw, 1, 120), Err(TextError::BidiControl), "{raw:?}");
        }
    }

    #[test]
    fn the_ranges_say_what_the_checks_do() {
        let within = |ranges: &[RangeInclusive<char>], c: char| ranges.iter().any(|r| r.contains(&c));
        let (refused, invisible, white) = (refused_ranges(), invisible_ranges(), white_space_ranges());
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            assert_eq!(within(&refused, c), c.is_control() || is_bidi_control(c), "{c:?}");
            assert_eq!(within(&invisible, c), is_invisible(c), "{c:?}");
            assert_eq!(within(&white, c), c.is_whitespace(), "{c:?}");
        }
        assert!(refused.windows(2).all(|w| w[0].end() < w[1].start()));
    }

    #[test]
    fn keys_unify_what_looks_the_same() {
        let key = |s: &str| fold_key(&normalize(s, 1, 120).unwrap());
        assert_eq!(key("Café"), key("Cafe\u{301}"));
        assert_eq!(key("Café"), key("CAFÉ"));
        assert_eq!(key("Café"), key("\u{421}afé"), "Cyrillic capital Es");
        assert_eq!(key("Taco"), key("\u{422}\u{430}\u{441}\u{43e}"), "all Cyrillic");
        assert_eq!(key("Straße"), key("STRASSE"));
        assert_eq!(key("ﬁsh"), key("fish"), "ligature");
        assert_eq!(key("Ｔｅａ"), key("tea"), "full width");
        assert_eq!(key("Ca\u{200b}fé"), key("Café"), "zero-width space");
        assert_ne!(key("Café"), key("Cafe"));
        assert_ne!(key("Pan"), key("Pon"));
    }
}
