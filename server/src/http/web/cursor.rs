//! Opaque, tamper-checked page cursors: the keyset position of the last item, the list it belongs to and an
//! HMAC-SHA256 tag, base64url. A cursor changed in any byte, cut short, made for another user or another
//! filter, or signed by another key is refused with a 400 rather than silently starting elsewhere.

use api::ErrorCode;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};

use crate::http::error::ApiError;

/// Bytes of the tag kept in a cursor: 128 bits, far beyond guessing, keeps cursors short.
const TAG_BYTES: usize = 16;

/// The key cursors are signed with. `Debug` does not show it.
#[derive(Clone)]
pub struct CursorKey(Hmac<Sha256>);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey([redacted])")
    }
}

impl CursorKey {
    /// A key derived from a secret the replicas share (a separate label keeps it apart from the secret's
    /// other uses, e.g. presigning).
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = keyed(secret);
        mac.update(b"iphoto-sync web cursor v1");
        Self(keyed(&mac.finalize().into_bytes()))
    }

    /// A random key: cursors work only against this process (tests, single runs).
    pub fn random() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(keyed(&bytes))
    }

    /// `payload` with its tag, base64url. `scope` (the user and the list's filter) is signed but not sent:
    /// the same position under another scope does not verify.
    pub(crate) fn seal(&self, scope: &str, payload: &str) -> String {
        let mut bytes = payload.as_bytes().to_vec();
        bytes.extend_from_slice(&self.tag(scope, payload)[..TAG_BYTES]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The payload of a cursor sealed under `scope`, or a 400.
    pub(crate) fn open(&self, scope: &str, cursor: &str) -> Result<String, ApiError> {
        let bad = || {
            ApiError::bad_request(
                ErrorCode::InvalidCursor,
                "cursor: not a cursor this list handed out",
            )
        };
        if cursor.len() > 1024 {
            return Err(bad());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| bad())?;
        if bytes.len() <= TAG_BYTES {
            return Err(bad());
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_BYTES);
        let payload = std::str::from_utf8(payload).map_err(|_| bad())?;
        let mut mac = self.0.clone();
        mac.update(scope.as_bytes());
        mac.update(b"\n");
        mac.update(payload.as_bytes());
        mac.verify_truncated_left(tag).map_err(|_| bad())?;
        Ok(payload.to_owned())
    }

    /// An opaque, stable fingerprint of `payload` under `scope` (128 bits of the tag, hex): what the blob
    /// route sends as an ETag instead of the store's, which for the local backend spells out the file's
    /// inode, mtime and size.
    pub(crate) fn fingerprint(&self, scope: &str, payload: &str) -> String {
        hex::encode(&self.tag(scope, payload)[..16])
    }

    fn tag(&self, scope: &str, payload: &str) -> Vec<u8> {
        let mut mac = self.0.clone();
        mac.update(scope.as_bytes());
        mac.update(b"\n");
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// A short fingerprint of a list's identity (user and filters), to bind cursors to it.
pub(crate) fn scope(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..12])
}

#[expect(
    clippy::expect_used,
    reason = "HMAC takes keys of any length: new_from_slice cannot fail"
)]
fn keyed(secret: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as hmac::Mac>::new_from_slice(secret).expect("HMAC accepts any key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering() {
        let key = CursorKey::derive(b"secret");
        let sealed = key.seal("s", "t|123|abc");
        assert_eq!(key.open("s", &sealed).unwrap(), "t|123|abc");
        assert!(key.open("other scope", &sealed).is_err());
        assert!(CursorKey::derive(b"other").open("s", &sealed).is_err());
        assert!(key.open("s", &sealed[..sealed.len() - 2]).is_err());
        assert!(key.open("s", "").is_err());
        assert!(key.open("s", "!!!").is_err());
        let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&sealed)
            .unwrap();
        bytes[2] ^= 1;
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        assert!(key.open("s", &forged).is_err());
    }
}
