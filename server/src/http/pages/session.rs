//! Who is signed in: the session cookie, its signature checked with the shared key, then the session looked
//! up in the catalog (revoked and expired ones are refused there). [`SignedIn`] guards the pages: a signed-out
//! browser is sent to `/login?next=<the page>` with a 303.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::cookies::{self, Purpose, SESSION_COOKIE};
use crate::catalog::WebSession;
use crate::http::AppState;
use crate::http::error::ApiError;

/// A signed-in request: the session and the secret its cookie carried (the page's CSRF token derives from it).
#[derive(Debug, Clone)]
pub struct Signed {
    /// The session as the catalog has it.
    pub session: WebSession,
    /// The session's secret (from the cookie; never logged).
    secret: String,
}

impl Signed {
    /// The CSRF token of this session's forms.
    pub fn csrf(&self, state: &AppState) -> String {
        state.settings().web.cookie_key.session_csrf(&self.secret)
    }
}

/// The session of the request's cookie, if it is signed with our key and the catalog accepts it now.
pub async fn current(state: &AppState, headers: &HeaderMap) -> Result<Option<Signed>, ApiError> {
    let Some(value) = cookies::read(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(secret) = state.settings().web.cookie_key.verify(Purpose::Session, value) else {
        tracing::info!("a session cookie with a bad signature was ignored");
        return Ok(None);
    };
    let found = state
        .catalog()
        .authenticate_session(secret, chrono::Utc::now())
        .await?;
    Ok(found.map(|session| {
        tracing::Span::current().record("user_id", tracing::field::display(&session.user.id));
        Signed {
            session,
            secret: secret.to_owned(),
        }
    }))
}

/// A page's guard: the request is signed in, or it is answered with a redirect to the login form.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Signed);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match current(state, &parts.headers).await {
            Ok(Some(signed)) => Ok(SignedIn(signed)),
            Ok(None) => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map_or("/", axum::http::uri::PathAndQuery::as_str);
                Err(to_login(here))
            }
            Err(error) => Err(error.into_response()),
        }
    }
}

/// 303 to the login form, which comes back to `next` after signing in.
pub fn to_login(next: &str) -> Response {
    let location = if next == "/" {
        "/login".to_owned()
    } else {
        let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        format!("/login?next={encoded}")
    };
    see_other(&location)
}

/// A 303 See Other to `location` (a local path).
pub fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// `next` if it is a path on this server, else `/`: never a redirect to another site. Refused: anything not
/// starting with one `/` (`//evil.example` and `/\evil.example` are other hosts to a browser), backslashes,
/// control characters, and overlong values.
pub fn local_next(next: Option<&str>) -> String {
    let Some(next) = next else {
        return "/".to_owned();
    };
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next.len() <= 2048
        && !next.starts_with("/login")
        && !next.starts_with("/logout");
    if local { next.to_owned() } else { "/".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::local_next;

    #[test]
    fn next_is_only_ever_a_local_path() {
        for (next, expected) in [
            (Some("/"), "/"),
            (Some("/albums?x=1"), "/albums?x=1"),
            (None, "/"),
            (Some("https://evil.example/"), "/"),
            (Some("//evil.example/"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("\\\\evil.example"), "/"),
            (Some("/\tx"), "/"),
            (Some("javascript:alert(1)"), "/"),
            (Some(""), "/"),
            (Some("/login"), "/"),
        ] {
            assert_eq!(local_next(next), expected, "{next:?}");
        }
    }
}
