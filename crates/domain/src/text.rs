//! The text rule of the contract: names are trimmed, inner runs of white space collapse to one
//! space, control characters are rejected, and lengths are counted in characters after that.

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
}

/// Normalizes `raw` by the contract's rule and checks that its length is within `min..=max`
/// characters (`min` is at least 1).
pub fn normalize(raw: &str, min: usize, max: usize) -> Result<String, TextError> {
    if raw.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter);
    }
    // Cheap guard before allocating: a huge input cannot collapse below `max` unless it is
    // mostly white space, which `split_whitespace` handles without keeping it.
    let mut out = String::with_capacity(raw.len().min(max * 4));
    let mut count = 0usize;
    for word in raw.split_whitespace() {
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
    if count < min {
        return Err(TextError::TooShort { min });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_collapses_inner_white_space() {
        assert_eq!(normalize("  Café \u{a0}  con\u{2003}leche ", 1, 120).unwrap(), "Café con leche");
    }

    #[test]
    fn rejects_control_characters_including_nul_and_newlines() {
        for raw in ["a\u{0}b", "a\nb", "tab\there", "bell\u{7}", "del\u{7f}"] {
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
}
