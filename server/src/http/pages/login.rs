//! Signing in and out.
//!
//! CSRF: every form carries a token and every POST checks it in constant time before anything else. The login
//! form's token is a double-submit one: a random value in a signed, `HttpOnly`, `SameSite=Strict` cookie
//! (`iphoto_csrf`) that the form repeats; the logout form's is a MAC of the session secret, so it is tied to
//! that session. A POST whose `Sec-Fetch-Site` says another site sent it, or whose `Origin` names another
//! host, is refused as well. A refusal is a 403 page saying why.
//!
//! Failed sign-ins are counted per name and per address (`limiter`), logged with both, never with the
//! password, and answered the same way whether the name exists or not: an unknown name is verified against a
//! dummy hash, so it takes as long as a wrong password.

use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::cookies::{self, Attributes, CSRF_COOKIE, Purpose, SESSION_COOKIE};
use super::session::{self, SignedIn, local_next, see_other};
use super::{assets, client_address, is_https, limiter, message, render, signed_out_layout, templates};
use crate::catalog::{LoginRecord, User};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::password;

/// `GET /login?next=`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct LoginQuery {
    next: Option<String>,
}

/// The login form's fields; all optional here, so a missing one is refused by the checks (403 for the CSRF
/// token) rather than by the form parser. No `Debug`: it holds the password.
#[derive(serde::Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

/// The logout form.
#[derive(Debug, serde::Deserialize)]
pub(super) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// The one answer to a wrong password and to an unknown name alike.
const REFUSED: &str = "Wrong user name or password.";

/// `GET /login`: the form (or, when already signed in, on to `next`).
pub(super) async fn get_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = local_next(query.next.as_deref());
    match session::current(&state, &headers).await {
        Ok(Some(_)) => return see_other(&next),
        Ok(None) => {}
        Err(error) => return error.into_response(),
    }
    login_page(&state, &headers, StatusCode::OK, next, String::new(), None)
}

/// `POST /login`.
pub(super) async fn post_login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    if let Some(refusal) = cross_site(&headers) {
        return refusal;
    }
    let form = form.map(|Form(form)| form).unwrap_or(LoginForm {
        username: String::new(),
        password: String::new(),
        csrf: String::new(),
        next: None,
    });
    let cookie_token = cookies::read(&headers, CSRF_COOKIE)
        .and_then(|value| state.settings().web.cookie_key.verify(Purpose::Csrf, value));
    if !cookie_token.is_some_and(|token| !form.csrf.is_empty() && cookies::tokens_equal(token, &form.csrf)) {
        return csrf_refused(
            "The security token of the sign-in form is missing or does not match.",
            "/login",
        );
    }
    let address = client_address(peer.as_ref().map(|Extension(info)| info), &headers);
    let name = form.username.trim().to_owned();
    let next = local_next(form.next.as_deref());
    let keys = [
        format!("user:{}", name.to_lowercase()),
        format!("address:{address}"),
    ];
    let limited = match limiter::retry_after(state.catalog(), &keys, chrono::Utc::now()).await {
        Ok(limited) => limited,
        Err(error) => return ApiError::from(error).into_response(),
    };
    if let Some(wait) = limited {
        tracing::warn!(user = %name, address = %address, "sign-in refused: too many failures");
        return too_many(wait);
    }
    let Some(user) = check_password(&state, &name, form.password).await else {
        if let Err(error) = limiter::record_failure(state.catalog(), &keys, chrono::Utc::now()).await {
            return ApiError::from(error).into_response();
        }
        tracing::warn!(user = %name, address = %address, "failed sign-in");
        return login_page(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            next,
            name,
            Some(REFUSED),
        );
    };
    if let Err(error) = limiter::clear(state.catalog(), &keys[0]).await {
        return ApiError::from(error).into_response();
    }
    let now = chrono::Utc::now();
    let max_age = state.settings().web.session_max_age;
    let expires = now + chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::days(30));
    let opened = match state.catalog().create_session(&user.id, now, expires).await {
        Ok(opened) => opened,
        Err(error) => return ApiError::from(error).into_response(),
    };
    tracing::info!(user = %user.name, address = %address, session = %opened.id, "signed in");
    let value = state
        .settings()
        .web
        .cookie_key
        .sign(Purpose::Session, opened.secret.expose());
    let cookie = cookies::set_cookie(
        SESSION_COOKIE,
        &value,
        Attributes {
            max_age: Some(max_age),
            secure: is_https(&state, &headers),
        },
    );
    with_cookie(see_other(&next), &cookie)
}

/// The user `name` if `password` is theirs; `None` for a wrong password, an unknown name or a user without a
/// web password, each in the time one Argon2id verification takes.
async fn check_password(state: &AppState, name: &str, password: String) -> Option<User> {
    if password.is_empty() || password.len() > password::MAX_BYTES {
        return None;
    }
    let record = match state.catalog().login_record(name).await {
        Ok(record) => record,
        Err(error) => {
            tracing::error!(error = %error, "reading the user for a sign-in failed");
            None
        }
    };
    let (user, hash) = match record {
        Some(LoginRecord {
            user,
            password_hash: Some(hash),
        }) => (Some(user), hash),
        _ => (None, password::dummy_hash().to_owned()),
    };
    let matched = tokio::task::spawn_blocking(move || password::verify(&password, &hash))
        .await
        .unwrap_or(false);
    user.filter(|_| matched)
}

/// `POST /logout`: revokes the session in the catalog (so the cookie is dead on every replica even if the
/// browser kept it), clears the cookie, and goes to the login form.
pub(super) async fn post_logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedIn(signed): SignedIn,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    if let Some(refusal) = cross_site(&headers) {
        return refusal;
    }
    let presented = form.map(|Form(form)| form.csrf).unwrap_or_default();
    if presented.is_empty() || !cookies::tokens_equal(&presented, &signed.csrf(&state)) {
        return csrf_refused(
            "The security token of the sign-out form is missing or does not match.",
            "/",
        );
    }
    let user = &signed.session.user;
    if let Err(error) = state
        .catalog()
        .revoke_session(&user.id, &signed.session.id, chrono::Utc::now())
        .await
    {
        return ApiError::from(error).into_response();
    }
    tracing::info!(user = %user.name, session = %signed.session.id, "signed out");
    let cookie = cookies::clear_cookie(SESSION_COOKIE, is_https(&state, &headers));
    with_cookie(see_other("/login"), &cookie)
}

/// The login form, with a CSRF token: the one of the browser's valid `iphoto_csrf` cookie, or a new one set
/// with this answer.
fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: String,
    username: String,
    error: Option<&str>,
) -> Response {
    let key = &state.settings().web.cookie_key;
    let existing = cookies::read(headers, CSRF_COOKIE).and_then(|value| key.verify(Purpose::Csrf, value));
    let (token, new_cookie) = match existing {
        Some(token) => (token.to_owned(), None),
        None => {
            let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
            let cookie = cookies::set_cookie(
                CSRF_COOKIE,
                &key.sign(Purpose::Csrf, &token),
                Attributes {
                    max_age: None,
                    secure: is_https(state, headers),
                },
            );
            (token, Some(cookie))
        }
    };
    let page = templates::Login {
        layout: templates::Layout {
            css: assets::css_path(),
            user: None,
            csrf: token,
            section: None,
        },
        next,
        username,
        error: error.map(str::to_owned),
    };
    let response = render(status, &page);
    match new_cookie {
        Some(cookie) => with_cookie(response, &cookie),
        None => response,
    }
}

/// A 403 page when the request says another site sent it: `Sec-Fetch-Site` other than `same-origin` or
/// `none` (typed or bookmarked), or an `Origin` whose host is not the one the request was sent to.
fn cross_site(headers: &HeaderMap) -> Option<Response> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let fetch_site_ok = text("sec-fetch-site").is_none_or(|site| matches!(site, "same-origin" | "none"));
    let origin_ok = text("origin").is_none_or(|origin| {
        let host = origin.split_once("://").map(|(_, host)| host);
        host.is_some_and(|host| Some(host) == text("host") || Some(host) == text("x-forwarded-host"))
    });
    if fetch_site_ok && origin_ok {
        return None;
    }
    tracing::warn!("a form was posted from another site; refused");
    Some(csrf_refused("This form was sent from another site.", "/"))
}

/// The 403 page of a refused form.
fn csrf_refused(why: &str, back: &str) -> Response {
    message(
        StatusCode::FORBIDDEN,
        signed_out_layout(),
        "Request refused",
        &format!("{why} Nothing was done. Go back, reload the page and try again."),
        (back, "Start again"),
    )
}

/// The 429 page: when to try again, in the page and in `Retry-After`.
fn too_many(wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs().max(1);
    let minutes = seconds.div_ceil(60);
    let at = chrono::Utc::now() + chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 2));
    let text = format!(
        "Too many failed sign-ins. Try again in {minutes} minute{} (after {} UTC).",
        if minutes == 1 { "" } else { "s" },
        at.format("%H:%M:%S")
    );
    let mut response = message(
        StatusCode::TOO_MANY_REQUESTS,
        signed_out_layout(),
        "Too many attempts",
        &text,
        ("/login", "Back to sign-in"),
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
