//! Idempotency keys: a retry with the same key and the same request gets the first answer and
//! changes nothing; the same key with another request is a conflict.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use domain::UserId;

/// A client's idempotency key: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 255 visible ASCII characters")]
pub struct IdempotencyKeyError;

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, IdempotencyKeyError> {
        if (1..=255).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdempotencyKeyError)
        }
    }
}

impl AsRef<str> for IdempotencyKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A digest of what a request asks for, after parsing (so `12.5` and `"12.50"` are the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Digests the parts of a request; parts are length-prefixed so that no two different
    /// requests give the same stream.
    pub fn of<'a>(parts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        Self(hasher.finalize().into())
    }
}

/// What a write stores with its key, in the same transaction as the write itself: keys are
/// scoped to the user who sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub user_id: UserId,
    pub key: IdempotencyKey,
    pub fingerprint: Fingerprint,
    /// The id of what the first request created.
    pub resource_id: Uuid,
}

/// A key reported as used whose record is gone (purged between the claim and the read, or a
/// bug): the same internal error on every path that meets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an idempotency key was reported as used but its record is missing")]
pub struct MissingClaim;

/// A key found already used: what the first request asked for and what it created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    pub fingerprint: Fingerprint,
    pub resource_id: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("order-2026-11-23-0001").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", " ", "a b", "ñ", "tab\t", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_separate_parts() {
        assert_ne!(Fingerprint::of(["ab", "c"]), Fingerprint::of(["a", "bc"]));
        assert_eq!(Fingerprint::of(["a", "b"]), Fingerprint::of(["a", "b"]));
    }
}
