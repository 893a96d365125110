//! Users and API tokens. A token is `ips_` + 32 random bytes in base64url; only its SHA-256 is stored and
//! looked up (an index probe on the digest, so the lookup time says nothing about the plaintext), and the
//! digest is compared again in constant time before it is trusted.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;
use subtle::ConstantTimeEq as _;

use super::{Adapter, Db, Driver as _, ms, new_id, time};
use crate::catalog::validate;
use crate::catalog::{
    Authenticated, Error, NewToken, Result, Scope, TokenId, TokenInfo, TokenSecret, User, UserId,
};

/// Prefix that makes a leaked token recognisable to secret scanners and people.
const TOKEN_PREFIX: &str = "ips_";
/// Base64url length of 32 bytes without padding.
const TOKEN_BODY_LEN: usize = 43;
/// `last_used_at` is refreshed at most this often, so authentication is not a write per request.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

const TOKEN_COLUMNS: &str = "t.id, t.user_id, u.name AS user_name, t.name, t.scope, t.created_at, \
     t.last_used_at, t.revoked_at FROM api_tokens t JOIN users u ON u.id = t.user_id";

pub(super) async fn create_user(catalog: &Adapter, name: &str) -> Result<User> {
    validate::user_name(name)?;
    let user = User {
        id: UserId::new(new_id()),
        name: name.to_owned(),
        created_at: time(ms(Utc::now())),
    };
    let inserted = sqlx::query("INSERT INTO users (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(user.id.as_str())
        .bind(&user.name)
        .bind(ms(user.created_at))
        .execute(catalog.pool())
        .await;
    match inserted {
        Ok(_) => Ok(user),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(Error::Conflict {
            what: "user",
            reason: format!("the name {name:?} is taken"),
        }),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn find_user_by_name(catalog: &Adapter, name: &str) -> Result<Option<User>> {
    let row = sqlx::query("SELECT id, name, created_at FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(catalog.pool())
        .await?;
    row.map(|row| {
        Ok(User {
            id: UserId::new(row.try_get::<String, _>("id")?),
            name: row.try_get("name")?,
            created_at: time(row.try_get("created_at")?),
        })
    })
    .transpose()
}

pub(super) async fn create_token(
    catalog: &Adapter,
    user_id: &UserId,
    scope: Scope,
    name: &str,
) -> Result<NewToken> {
    validate::label("name", name, 128)?;
    let user_name: String = sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
        .bind(user_id.as_str())
        .fetch_optional(catalog.pool())
        .await?
        .ok_or(Error::NotFound { what: "user" })?;
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let plaintext = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let info = TokenInfo {
        id: TokenId::new(new_id()),
        user_id: user_id.clone(),
        user_name,
        name: name.to_owned(),
        scope,
        created_at: time(ms(Utc::now())),
        last_used_at: None,
        revoked_at: None,
    };
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, scope, token_sha256, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(info.id.as_str())
    .bind(user_id.as_str())
    .bind(&info.name)
    .bind(scope.as_str())
    .bind(digest(&plaintext))
    .bind(ms(info.created_at))
    .execute(catalog.pool())
    .await?;
    Ok(NewToken {
        info,
        secret: TokenSecret::new(plaintext),
    })
}

pub(super) async fn authenticate(catalog: &Adapter, plaintext: &str) -> Result<Option<Authenticated>> {
    let well_formed = plaintext
        .strip_prefix(TOKEN_PREFIX)
        .is_some_and(|body| body.len() == TOKEN_BODY_LEN);
    if !well_formed {
        return Ok(None);
    }
    let presented = digest(plaintext);
    let row = sqlx::query(
        "SELECT t.id, t.scope, t.token_sha256, t.last_used_at, t.revoked_at, \
                u.id AS user_id, u.name AS user_name, u.created_at AS user_created_at \
         FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_sha256 = $1",
    )
    .bind(&presented)
    .fetch_optional(catalog.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: String = row.try_get("token_sha256")?;
    let equal: bool = stored.as_bytes().ct_eq(presented.as_bytes()).into();
    let revoked: Option<i64> = row.try_get("revoked_at")?;
    if !equal || revoked.is_some() {
        return Ok(None);
    }
    let token_id = TokenId::new(row.try_get::<String, _>("id")?);
    let now = ms(Utc::now());
    let last_used: Option<i64> = row.try_get("last_used_at")?;
    if last_used.is_none_or(|t| now - t >= LAST_USED_GRANULARITY_MS) {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token_id.as_str())
            .execute(catalog.pool())
            .await?;
    }
    let scope: String = row.try_get("scope")?;
    Ok(Some(Authenticated {
        user: User {
            id: UserId::new(row.try_get::<String, _>("user_id")?),
            name: row.try_get("user_name")?,
            created_at: time(row.try_get("user_created_at")?),
        },
        scope: Scope::parse(&scope)?,
        token_id,
    }))
}

pub(super) async fn find_token(catalog: &Adapter, token_id: &TokenId) -> Result<Option<TokenInfo>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} WHERE t.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(token_id.as_str())
        .fetch_optional(catalog.pool())
        .await?;
    row.as_ref().map(token_info).transpose()
}

pub(super) async fn list_tokens(catalog: &Adapter, user_id: Option<&UserId>) -> Result<Vec<TokenInfo>> {
    let sql =
        format!("SELECT {TOKEN_COLUMNS} WHERE ($1 IS NULL OR t.user_id = $1) ORDER BY t.created_at, t.id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id.map(UserId::as_str))
        .fetch_all(catalog.pool())
        .await?;
    rows.iter().map(token_info).collect()
}

pub(super) async fn revoke_token(catalog: &Adapter, user_id: &UserId, token_id: &TokenId) -> Result<()> {
    // COALESCE keeps the first revocation time, so revoking twice is harmless and the row count still says
    // whether the token is this user's.
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND user_id = $3",
    )
    .bind(ms(Utc::now()))
    .bind(token_id.as_str())
    .bind(user_id.as_str())
    .execute(catalog.pool())
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound { what: "token" });
    }
    Ok(())
}

/// Lower-case hex SHA-256 of the plaintext: what the catalog stores and looks up (API tokens and web
/// session secrets alike).
pub(super) fn digest(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

fn token_info(row: &<Db as sqlx::Database>::Row) -> Result<TokenInfo> {
    let scope: String = row.try_get("scope")?;
    Ok(TokenInfo {
        id: TokenId::new(row.try_get::<String, _>("id")?),
        user_id: UserId::new(row.try_get::<String, _>("user_id")?),
        user_name: row.try_get("user_name")?,
        name: row.try_get("name")?,
        scope: Scope::parse(&scope)?,
        created_at: time(row.try_get("created_at")?),
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(time),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(time),
    })
}
