//! Web sign-in records: a user's password hash and the browser sessions it opens (issue 14).
//!
//! The catalog stores and finds; it never hashes a password or signs a cookie (the HTTP layer and the admin
//! CLI do, `http::pages::password`). A session's secret, like a token's, exists in plaintext only in the
//! answer to [`super::Catalog::create_session`]: the catalog keeps its SHA-256.

use chrono::{DateTime, Utc};

use super::{TokenSecret, User};

/// A user as the login form needs them: who, and their Argon2id PHC string if they have a web password.
#[derive(Clone)]
pub struct LoginRecord {
    /// The user.
    pub user: User,
    /// The PHC string (`$argon2id$…`); `None`: the user has no web password and cannot sign in.
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for LoginRecord {
    /// The hash is not a secret in the cryptographic sense, but it is an offline-guessing target: kept out
    /// of logs like one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRecord")
            .field("user", &self.user)
            .field("has_password", &self.password_hash.is_some())
            .finish()
    }
}

/// A session just opened.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session's id (for revocation and logs; not a credential).
    pub id: String,
    /// 32 random bytes in base64url: what the cookie carries (signed by the HTTP layer).
    pub secret: TokenSecret,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// A live session, as [`super::Catalog::authenticate_session`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The session's id.
    pub id: String,
    /// Whose it is.
    pub user: User,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}
