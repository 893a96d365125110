//! Short-lived GET URLs: SigV4 for S3, HMAC-SHA256 for the local adapter's blob route.
//!
//! Web clients and workers never get a bare object URL. Both backends follow one TTL policy: a short default,
//! a configurable maximum, and an error above it. The local signature binds the method, the key and the expiry,
//! so changing any character of the URL is refused, and is checked here (the server's blob route only parses).

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use url::Url;

use crate::config::Secret;
use crate::error::Error;
use crate::key::StorageKey;

/// The route under the server's public URL that serves local blobs.
pub const BLOB_ROUTE: &str = "blobs";

/// TTL rules shared by both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresignPolicy {
    /// Used when the caller names no TTL.
    pub default_ttl: Duration,
    /// Longest TTL a caller may ask for.
    pub max_ttl: Duration,
}

impl Default for PresignPolicy {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(300),
            max_ttl: Duration::from_secs(3600),
        }
    }
}

impl PresignPolicy {
    /// The TTL to sign with: the default when `requested` is `None`, an error outside 1 s ..= max.
    pub fn ttl(&self, requested: Option<Duration>) -> Result<Duration, Error> {
        let ttl = requested.unwrap_or(self.default_ttl);
        if ttl < Duration::from_secs(1) || ttl > self.max_ttl {
            return Err(Error::InvalidTtl {
                requested_secs: ttl.as_secs(),
                max_secs: self.max_ttl.as_secs(),
            });
        }
        Ok(ttl)
    }
}

/// A presigned URL and when it stops working. The signature is in the URL: it is short-lived by design, but
/// still do not log it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedUrl {
    /// The URL to GET.
    pub url: Url,
    /// When the store stops honouring it.
    pub expires_at: DateTime<Utc>,
}

/// Why a local presigned URL was refused. The blob route answers all of them with 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresignError {
    /// A parameter is missing or not of its form.
    #[error("malformed presigned URL: {0}")]
    Malformed(&'static str),
    /// The signature does not match method, key and expiry.
    #[error("presigned URL signature does not match")]
    BadSignature,
    /// Past its expiry.
    #[error("presigned URL expired")]
    Expired,
}

/// Signs and verifies URLs for the local adapter's blob route (`<public_url>/blobs/<key>?exp=&sig=`).
#[derive(Clone)]
pub struct LocalSigner {
    /// HMAC state keyed once with the secret; cloned per signature.
    keyed: Hmac<Sha256>,
    base: Url,
}

impl std::fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSigner")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl LocalSigner {
    /// A signer for URLs under `public_url` (the server's externally reachable base URL).
    pub fn new(secret: &Secret, public_url: &Url) -> Result<Self, Error> {
        let keyed =
            Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).map_err(|_| Error::Config {
                variable: "IPHOTO_PRESIGN_SECRET",
                reason: "not usable as an HMAC key".into(),
            })?;
        let mut base = public_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(Self { keyed, base })
    }

    /// A URL for `GET key` valid until `now + ttl`.
    pub fn sign(&self, key: &StorageKey, ttl: Duration, now: DateTime<Utc>) -> PresignedUrl {
        let expires_at =
            now + chrono::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2));
        let exp = expires_at.timestamp();
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(BLOB_ROUTE).extend(key.segments());
        }
        url.query_pairs_mut()
            .append_pair("exp", &exp.to_string())
            .append_pair("sig", &self.signature("GET", key, exp));
        PresignedUrl { url, expires_at }
    }

    /// Checks a request against its signature. `key` is the decoded path after `/blobs/`, `exp` and `sig` the
    /// query parameters as received. The comparison is constant-time.
    pub fn verify(
        &self,
        method: &str,
        key: &str,
        exp: Option<&str>,
        sig: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<StorageKey, PresignError> {
        let key = StorageKey::parse(key).map_err(|_| PresignError::Malformed("invalid key"))?;
        let exp: i64 = exp
            .ok_or(PresignError::Malformed("missing exp"))?
            .parse()
            .map_err(|_| PresignError::Malformed("exp is not an integer"))?;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig.ok_or(PresignError::Malformed("missing sig"))?)
            .map_err(|_| PresignError::Malformed("sig is not base64url"))?;
        self.mac(method, &key, exp)
            .verify_slice(&sig)
            .map_err(|_| PresignError::BadSignature)?;
        if now.timestamp() >= exp {
            return Err(PresignError::Expired);
        }
        Ok(key)
    }

    fn signature(&self, method: &str, key: &StorageKey, exp: i64) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.mac(method, key, exp).finalize().into_bytes())
    }

    fn mac(&self, method: &str, key: &StorageKey, exp: i64) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(key.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(exp.to_string().as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> LocalSigner {
        let secret = Secret::new("0123456789abcdef0123456789abcdef".into());
        LocalSigner::new(&secret, &Url::parse("http://127.0.0.1:8080").unwrap()).unwrap()
    }

    fn params(url: &Url) -> (String, String, String) {
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        let path = url.path().strip_prefix("/blobs/").unwrap();
        let key = percent_decode(path);
        (key, q["exp"].clone(), q["sig"].clone())
    }

    fn percent_decode(s: &str) -> String {
        url::form_urlencoded::parse(format!("k={}", s.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap()
    }

    #[test]
    fn round_trip_and_every_tamper_is_refused() {
        let s = signer();
        let now = Utc::now();
        let key = StorageKey::parse("users/u/a b/ü+#x.jpg").unwrap();
        let p = s.sign(&key, Duration::from_secs(60), now);
        let (k, exp, sig) = params(&p.url);
        assert_eq!(k, key.as_str());
        assert_eq!(s.verify("GET", &k, Some(&exp), Some(&sig), now).unwrap(), key);
        assert_eq!(
            s.verify("PUT", &k, Some(&exp), Some(&sig), now),
            Err(PresignError::BadSignature)
        );
        assert_eq!(
            s.verify("GET", "users/u/other.jpg", Some(&exp), Some(&sig), now),
            Err(PresignError::BadSignature)
        );
        let later = (exp.parse::<i64>().unwrap() + 1).to_string();
        assert_eq!(
            s.verify("GET", &k, Some(&later), Some(&sig), now),
            Err(PresignError::BadSignature)
        );
        for i in 0..sig.len() {
            let mut bad = sig.clone().into_bytes();
            bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
            let bad = String::from_utf8(bad).unwrap();
            assert!(
                s.verify("GET", &k, Some(&exp), Some(&bad), now).is_err(),
                "sig char {i}"
            );
        }
        assert_eq!(
            s.verify(
                "GET",
                &k,
                Some(&exp),
                Some(&sig),
                now + chrono::Duration::seconds(61)
            ),
            Err(PresignError::Expired)
        );
        assert!(matches!(
            s.verify("GET", &k, None, Some(&sig), now),
            Err(PresignError::Malformed(_))
        ));
        assert!(matches!(
            s.verify("GET", "../x", Some(&exp), Some(&sig), now),
            Err(PresignError::Malformed(_))
        ));
        let other = LocalSigner::new(
            &Secret::new("another-secret-another-secret-xx".into()),
            &Url::parse("http://127.0.0.1:8080").unwrap(),
        )
        .unwrap();
        assert_eq!(
            other.verify("GET", &k, Some(&exp), Some(&sig), now),
            Err(PresignError::BadSignature)
        );
    }

    #[test]
    fn ttl_policy() {
        let p = PresignPolicy::default();
        assert_eq!(p.ttl(None).unwrap(), Duration::from_secs(300));
        assert_eq!(
            p.ttl(Some(Duration::from_secs(3600))).unwrap(),
            Duration::from_secs(3600)
        );
        assert!(matches!(
            p.ttl(Some(Duration::from_secs(3601))),
            Err(Error::InvalidTtl { .. })
        ));
        assert!(matches!(
            p.ttl(Some(Duration::ZERO)),
            Err(Error::InvalidTtl { .. })
        ));
    }

    #[test]
    fn base_path_is_kept() {
        let s = LocalSigner::new(
            &Secret::new("0123456789abcdef0123456789abcdef".into()),
            &Url::parse("https://photos.example/api").unwrap(),
        )
        .unwrap();
        let p = s.sign(
            &StorageKey::parse("a/b").unwrap(),
            Duration::from_secs(5),
            Utc::now(),
        );
        assert!(
            p.url
                .as_str()
                .starts_with("https://photos.example/api/blobs/a/b?exp="),
            "{}",
            p.url
        );
    }
}
