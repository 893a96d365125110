//! The web pages' cookies: the session cookie and the pre-session CSRF cookie, each value signed with an
//! HMAC-SHA256 key every replica shares (kept in the catalog, `Catalog::web_key`), and the `Set-Cookie`
//! attributes they carry.
//!
//! A signed value is `<secret>.<mac>`, the MAC over a purpose label and the secret, so a session secret
//! cannot be replayed as a CSRF cookie or the other way round. A value whose MAC does not verify is treated
//! as absent before the catalog is asked anything: a tampered or made-up cookie costs no database lookup.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "iphoto_session";
/// The pre-session CSRF cookie's name (double-submit: the login form carries the same token).
pub const CSRF_COOKIE: &str = "iphoto_csrf";

/// What a signed value is for: part of what its MAC covers.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    /// The session cookie.
    Session,
    /// The pre-session CSRF cookie.
    Csrf,
    /// A signed-in form's CSRF token, derived from the session secret (never a cookie of its own).
    SessionCsrf,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"iphoto session\0",
            Purpose::Csrf => b"iphoto csrf\0",
            Purpose::SessionCsrf => b"iphoto session csrf\0",
        }
    }
}

/// The key the web cookies are signed with (32 bytes). `Debug` does not show it.
#[derive(Clone)]
pub struct CookieKey([u8; 32]);

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey(***)")
    }
}

impl CookieKey {
    /// A fresh random key (tests; `serve` stores one in the catalog and reads it back, see [`Self::from_hex`]).
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// A key as `Catalog::web_key` keeps it: 64 hex digits. `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// A new random key as 64 hex digits, the candidate `serve` offers the catalog.
    pub fn random_hex() -> String {
        hex::encode(rand::random::<[u8; 32]>())
    }

    #[expect(
        clippy::expect_used,
        reason = "HMAC takes a key of any length: 32 bytes cannot be refused"
    )]
    fn mac(&self, purpose: Purpose, secret: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(purpose.label());
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// `<secret>.<mac>`.
    pub fn sign(&self, purpose: Purpose, secret: &str) -> String {
        format!("{secret}.{}", URL_SAFE_NO_PAD.encode(self.mac(purpose, secret)))
    }

    /// The secret of a signed value whose MAC verifies (constant-time compare); `None` otherwise.
    pub fn verify<'v>(&self, purpose: Purpose, value: &'v str) -> Option<&'v str> {
        let (secret, mac) = value.rsplit_once('.')?;
        let presented = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = self.mac(purpose, secret);
        bool::from(presented.ct_eq(&expected)).then_some(secret)
    }

    /// The CSRF token of a signed-in page: a MAC of the session secret, so it is tied to that session and
    /// useless with any other.
    pub fn session_csrf(&self, session_secret: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(Purpose::SessionCsrf, session_secret))
    }
}

/// Whether two tokens are equal, in time independent of where they differ.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name` in the request's `Cookie` headers, if any (the first one).
pub fn read<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// How a cookie is set.
#[derive(Debug, Clone, Copy)]
pub struct Attributes {
    /// `Max-Age`; `None` makes a browser-session cookie.
    pub max_age: Option<Duration>,
    /// `Secure`: only when the page was served over HTTPS (a browser would drop it over plain HTTP).
    pub secure: bool,
}

/// A `Set-Cookie` value: always `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page
/// sends it) and `Path=/`.
pub fn set_cookie(name: &str, value: &str, attributes: Attributes) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(max_age) = attributes.max_age {
        cookie.push_str(&format!("; Max-Age={}", max_age.as_secs()));
    }
    if attributes.secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// A `Set-Cookie` value that deletes cookie `name`.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    set_cookie(
        name,
        "",
        Attributes {
            max_age: Some(Duration::ZERO),
            secure,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_value_verifies_only_unchanged_and_for_its_purpose() {
        let key = CookieKey::random();
        let signed = key.sign(Purpose::Session, "abc");
        assert_eq!(key.verify(Purpose::Session, &signed), Some("abc"));
        assert_eq!(key.verify(Purpose::Csrf, &signed), None, "another purpose");
        assert_eq!(
            CookieKey::random().verify(Purpose::Session, &signed),
            None,
            "another key"
        );
        let tampered = signed.replacen("abc", "abd", 1);
        assert_eq!(key.verify(Purpose::Session, &tampered), None);
        assert_eq!(key.verify(Purpose::Session, "abc"), None, "no MAC");
        assert_eq!(key.verify(Purpose::Session, "abc.!!"), None, "not base64");
    }

    #[test]
    fn keys_round_trip_through_hex_and_hide_in_debug() {
        let text = CookieKey::random_hex();
        let key = CookieKey::from_hex(&text).unwrap();
        assert_eq!(
            CookieKey::from_hex(&text).unwrap().sign(Purpose::Csrf, "x"),
            key.sign(Purpose::Csrf, "x")
        );
        assert!(CookieKey::from_hex("abcd").is_none());
        assert!(!format!("{key:?}").contains(&text[..8]));
    }

    #[test]
    fn cookies_are_read_from_every_header() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, "a=1; iphoto_csrf=xyz".parse().unwrap());
        headers.append(COOKIE, "iphoto_session=s.m".parse().unwrap());
        assert_eq!(read(&headers, CSRF_COOKIE), Some("xyz"));
        assert_eq!(read(&headers, SESSION_COOKIE), Some("s.m"));
        assert_eq!(read(&headers, "b"), None);
    }

    #[test]
    fn set_cookie_has_the_attributes() {
        let secure = set_cookie(
            "n",
            "v",
            Attributes {
                max_age: Some(Duration::from_secs(60)),
                secure: true,
            },
        );
        assert_eq!(
            secure,
            "n=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure"
        );
        let plain = set_cookie(
            "n",
            "v",
            Attributes {
                max_age: None,
                secure: false,
            },
        );
        assert_eq!(plain, "n=v; Path=/; HttpOnly; SameSite=Strict");
    }
}
