//! Bearer-token authentication, one extractor per surface: each accepts exactly its scope.
//!
//! The token is looked up by its SHA-256 in the catalog (the plaintext is never stored or logged); a missing or
//! unknown token is 401, a token of another scope is 403.

use api::ErrorCode;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::catalog::{Scope, User};

/// The authenticated user of a route.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub user: User,
}

macro_rules! scoped {
    ($name:ident, $scope:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
                authenticate(parts, state, $scope).await.map($name)
            }
        }
    };
}

scoped!(
    ClientAuth,
    Scope::Client,
    "A caller holding a `client` token (the Mac agent)."
);
scoped!(WebAuth, Scope::Web, "A caller holding a `web` token.");
scoped!(
    AdminAuth,
    Scope::Admin,
    "A caller holding an `admin` token (operators: restore; the request names the user it acts on)."
);
scoped!(
    WorkerAuth,
    Scope::Worker,
    "A caller holding a `worker` token (an enrichment worker; it sees its user's jobs only)."
);

async fn authenticate(parts: &Parts, state: &AppState, scope: Scope) -> Result<Caller, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("missing Authorization: Bearer token"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 200)
        .ok_or_else(|| unauthorized("Authorization must be `Bearer <token>`"))?;
    let found = state
        .catalog()
        .authenticate(token)
        .await?
        .ok_or_else(|| unauthorized("unknown or revoked token"))?;
    if found.scope != scope {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::WrongScope,
            format!(
                "this route needs a {} token, not {}",
                scope.as_str(),
                found.scope.as_str()
            ),
        ));
    }
    tracing::Span::current().record("user_id", tracing::field::display(&found.user.id));
    Ok(Caller { user: found.user })
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
}
