//! Opaque pagination cursors: the keyset position plus a MAC, so that a garbled or forged
//! cursor is a clear 400 and never reaches the database.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use application::Cursor;

const MAC_LEN: usize = 12;

/// Encodes and checks cursors with a key derived from the token secret (so that every replica
/// reads every other's cursors).
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not one this API gave out")]
pub struct BadCursor;

impl CursorCodec {
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(b"comanda cursor key v1");
        Self { key: mac.finalize().into_bytes().to_vec() }
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    pub fn encode(&self, cursor: &Cursor) -> String {
        let mut bytes = Vec::with_capacity(24 + MAC_LEN);
        bytes.extend_from_slice(&cursor.created_at.timestamp_micros().to_be_bytes());
        bytes.extend_from_slice(cursor.id.as_bytes());
        let mac = self.mac(&bytes);
        bytes.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(&self, raw: &str) -> Result<Cursor, BadCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(raw.as_bytes()).map_err(|_| BadCursor)?;
        if bytes.len() != 24 + MAC_LEN {
            return Err(BadCursor);
        }
        let (payload, mac) = bytes.split_at(24);
        let mut verifier = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).map_err(|_| BadCursor)?;
        verifier.update(payload);
        verifier.verify_truncated_left(mac).map_err(|_| BadCursor)?;
        let micros = i64::from_be_bytes(payload[..8].try_into().map_err(|_| BadCursor)?);
        let created_at: DateTime<Utc> = DateTime::from_timestamp_micros(micros).ok_or(BadCursor)?;
        let id = Uuid::from_slice(&payload[8..]).map_err(|_| BadCursor)?;
        Ok(Cursor { created_at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering() {
        let codec = CursorCodec::new(b"secret");
        let cursor =
            Cursor { created_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(), id: Uuid::now_v7() };
        let text = codec.encode(&cursor);
        assert_eq!(codec.decode(&text), Ok(cursor));
        let mut tampered = text.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(codec.decode(std::str::from_utf8(&tampered).unwrap()), Err(BadCursor));
        assert_eq!(CursorCodec::new(b"other").decode(&text), Err(BadCursor));
        for garbage in ["", "!!!", "abc", &"A".repeat(1000)] {
            assert_eq!(codec.decode(garbage), Err(BadCursor));
        }
    }
}
