//! Web passwords and sessions (issue 14). A session's secret is 32 random bytes in base64url; only its
//! SHA-256 is stored and looked up (as for API tokens, `sql/auth.rs`), and the digest is compared again in
//! constant time. Every statement on a session names its user, so one user never sees or revokes another's.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use sqlx::Row as _;
use subtle::ConstantTimeEq as _;

use super::auth::digest;
use super::{Adapter, Driver as _, ms, new_id, time};
use crate::catalog::{Error, LoginRecord, NewSession, Result, TokenSecret, User, UserId, WebSession};

/// Base64url length of 32 bytes without padding.
const SECRET_LEN: usize = 43;
/// `last_seen_at` is refreshed at most this often, so a page view is not a write.
const LAST_SEEN_GRANULARITY_MS: i64 = 60_000;

pub(super) async fn login_record(catalog: &Adapter, name: &str) -> Result<Option<LoginRecord>> {
    let row = sqlx::query("SELECT id, name, created_at, password_hash FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(catalog.pool())
        .await?;
    row.map(|row| {
        Ok(LoginRecord {
            user: User {
                id: UserId::new(row.try_get::<String, _>("id")?),
                name: row.try_get("name")?,
                created_at: time(row.try_get("created_at")?),
            },
            password_hash: row.try_get("password_hash")?,
        })
    })
    .transpose()
}

pub(super) async fn set_password(
    catalog: &Adapter,
    user_id: &UserId,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut tx = catalog.begin_write().await?;
    let updated = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(user_id.as_str())
        .execute(&mut *tx)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(Error::NotFound { what: "user" });
    }
    let revoked = sqlx::query(
        "UPDATE web_sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(ms(now))
    .bind(user_id.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(revoked.rows_affected())
}

pub(super) async fn create_session(
    catalog: &Adapter,
    user_id: &UserId,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<NewSession> {
    if expires_at <= now {
        return Err(Error::invalid("expiresAt", "must be after now"));
    }
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let plaintext = URL_SAFE_NO_PAD.encode(secret);
    let id = new_id();
    let mut tx = catalog.begin_write().await?;
    // The user's sessions past their expiry are of no use to anyone: they go as a new one comes.
    sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND expires_at <= $2")
        .bind(user_id.as_str())
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO web_sessions (id, user_id, token_sha256, created_at, expires_at, last_seen_at) \
         SELECT $1, id, $3, $4, $5, $4 FROM users WHERE id = $2",
    )
    .bind(&id)
    .bind(user_id.as_str())
    .bind(digest(&plaintext))
    .bind(ms(now))
    .bind(ms(expires_at))
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(Error::NotFound { what: "user" });
    }
    tx.commit().await?;
    Ok(NewSession {
        id,
        secret: TokenSecret::new(plaintext),
        expires_at: time(ms(expires_at)),
    })
}

pub(super) async fn authenticate_session(
    catalog: &Adapter,
    plaintext: &str,
    now: DateTime<Utc>,
) -> Result<Option<WebSession>> {
    if plaintext.len() != SECRET_LEN {
        return Ok(None);
    }
    let presented = digest(plaintext);
    let row = sqlx::query(
        "SELECT s.id, s.token_sha256, s.expires_at, s.last_seen_at, s.revoked_at, \
                u.id AS user_id, u.name AS user_name, u.created_at AS user_created_at \
         FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_sha256 = $1",
    )
    .bind(&presented)
    .fetch_optional(catalog.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: String = row.try_get("token_sha256")?;
    let equal: bool = stored.as_bytes().ct_eq(presented.as_bytes()).into();
    let revoked: Option<i64> = row.try_get("revoked_at")?;
    let expires_at: i64 = row.try_get("expires_at")?;
    let now = ms(now);
    if !equal || revoked.is_some() || expires_at <= now {
        return Ok(None);
    }
    let id: String = row.try_get("id")?;
    let user_id: String = row.try_get("user_id")?;
    let last_seen: i64 = row.try_get("last_seen_at")?;
    if now - last_seen >= LAST_SEEN_GRANULARITY_MS {
        sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE id = $2 AND user_id = $3")
            .bind(now)
            .bind(&id)
            .bind(&user_id)
            .execute(catalog.pool())
            .await?;
    }
    Ok(Some(WebSession {
        id,
        user: User {
            id: UserId::new(user_id),
            name: row.try_get("user_name")?,
            created_at: time(row.try_get("user_created_at")?),
        },
        expires_at: time(expires_at),
    }))
}

pub(super) async fn revoke_session(
    catalog: &Adapter,
    user_id: &UserId,
    session_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    // COALESCE keeps the first revocation time (a second logout is harmless); the row count says whether the
    // session is this user's.
    let done = sqlx::query(
        "UPDATE web_sessions SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND user_id = $3",
    )
    .bind(ms(now))
    .bind(session_id)
    .bind(user_id.as_str())
    .execute(catalog.pool())
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound { what: "session" });
    }
    Ok(())
}

pub(super) async fn web_key(catalog: &Adapter, name: &str, candidate: &str) -> Result<String> {
    sqlx::query(
        "INSERT INTO web_keys (name, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(candidate)
    .bind(ms(Utc::now()))
    .execute(catalog.pool())
    .await?;
    let secret: String = sqlx::query_scalar("SELECT secret FROM web_keys WHERE name = $1")
        .bind(name)
        .fetch_one(catalog.pool())
        .await?;
    Ok(secret)
}

pub(super) async fn login_failure_nth(
    catalog: &Adapter,
    key: &str,
    since: DateTime<Utc>,
    nth: u32,
) -> Result<Option<DateTime<Utc>>> {
    let at: Option<i64> = sqlx::query_scalar(
        "SELECT at FROM login_failures WHERE key = $1 AND at >= $2 ORDER BY at DESC LIMIT 1 OFFSET $3",
    )
    .bind(key)
    .bind(ms(since))
    .bind(i64::from(nth.saturating_sub(1)))
    .fetch_optional(catalog.pool())
    .await?;
    Ok(at.map(time))
}

pub(super) async fn record_login_failure(
    catalog: &Adapter,
    keys: &[String],
    at: DateTime<Utc>,
    forget_before: DateTime<Utc>,
) -> Result<()> {
    let mut tx = catalog.begin_write().await?;
    sqlx::query("DELETE FROM login_failures WHERE at < $1")
        .bind(ms(forget_before))
        .execute(&mut *tx)
        .await?;
    for key in keys {
        sqlx::query("INSERT INTO login_failures (key, at) VALUES ($1, $2)")
            .bind(key)
            .bind(ms(at))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn clear_login_failures(catalog: &Adapter, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE key = $1")
        .bind(key)
        .execute(catalog.pool())
        .await?;
    Ok(())
}
