//! Signing in to the web pages (issue 14), against the real binary on SQLite and on PostgreSQL: the password
//! set with `user passwd`, the session cookie and its attributes, sign-out and `passwd` revoking sessions
//! (on every replica), CSRF and cross-site refusals, the limit on failed sign-ins, and unknown names refused
//! like wrong passwords. The pages around it are in `web_pages.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod served;

use browser::{Db, Site};

/// Each behaviour on a SQLite and on a PostgreSQL catalog.
macro_rules! both_catalogs {
    ($($behaviour:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::Db::Sqlite).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread")] async fn $behaviour() { crate::$behaviour(crate::Db::Postgres).await } )* }
    };
}

both_catalogs!(
    sign_in_shows_the_home_and_sign_out_revokes,
    wrong_and_unknown_are_refused_alike_then_limited,
    passwd_signs_the_user_out_everywhere,
    forms_without_their_token_or_from_elsewhere_are_refused,
);

const PASSWORD: &str = "correct horse battery staple";

async fn sign_in_shows_the_home_and_sign_out_revokes(db: Db) {
    let site = Site::start(db, PASSWORD).await;
    let mut browser = site.browser();

    // Signed out, a page sends the browser to the login form.
    let home = browser.get("/").await;
    assert_eq!(home.status, 303);
    assert_eq!(home.header("location"), Some("/login"));

    // The login form sets its CSRF cookie with the strict attributes.
    let form = browser.get("/login").await;
    assert_eq!(form.status, 200);
    assert!(form.header("content-type").unwrap().starts_with("text/html"));
    let csrf_cookie = form.set_cookie("iphoto_csrf").unwrap();
    assert!(
        csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"),
        "{csrf_cookie}"
    );
    let csp = form.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );

    // Signing in, back to a local `next`.
    let csrf = form.csrf_field();
    let signed = browser
        .post(
            "/login",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf", &csrf),
                ("next", "/albums?year=2024"),
            ],
            &[],
        )
        .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    assert_eq!(signed.header("location"), Some("/albums?year=2024"));
    let cookie = signed.set_cookie("iphoto_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=2592000"] {
        assert!(
            cookie.split("; ").any(|a| a == attribute),
            "{attribute} missing: {cookie}"
        );
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP: no Secure, or the browser drops it: {cookie}"
    );

    // The home: the layout with the user and the empty state.
    let home = browser.get("/").await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(
        home.body.contains("Signed in as <strong>alice</strong>"),
        "{}",
        home.body
    );
    assert!(
        home.body.contains("No photos yet — run the agent on your Mac"),
        "{}",
        home.body
    );
    assert_eq!(home.header("cache-control"), Some("no-store"));

    // With a synced photo (alice's own client token), the timeline with its one tile instead.
    let token = site.cli(&["token", "create", "--user", "alice", "--scope", "client"], None);
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let synced = reqwest::Client::new()
        .post(format!("{}/client/iphoto/sync", site.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "libraryId": "L", "items": [photo("A")] }))
        .send()
        .await
        .unwrap();
    assert_eq!(synced.status(), 200);
    let home = browser.get("/").await;
    assert_eq!(home.body.matches("class=\"tile\"").count(), 1, "{}", home.body);
    assert!(home.body.contains("IMG_0001.HEIC"), "{}", home.body);
    assert!(!home.body.contains("No photos yet"));

    // A tampered cookie (one character of the secret, or of the signature) is no session.
    let value = browser.cookies["iphoto_session"].clone();
    for tampered in [
        flip(&value, 0),
        flip(&value, value.len() - 1),
        value.split('.').next().unwrap().to_owned(),
    ] {
        let mut forger = site.browser();
        forger.cookies.insert("iphoto_session".into(), tampered);
        let page = forger.get("/").await;
        assert_eq!((page.status, page.header("location")), (303, Some("/login")));
    }

    // Signing out revokes the session: the same cookie replayed afterwards is refused.
    let stolen = browser.clone();
    let csrf = home.csrf_field();
    let out = browser.post("/logout", &[("csrf", &csrf)], &[]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/login"));
    assert!(out.set_cookie("iphoto_session").unwrap().contains("Max-Age=0"));
    let mut replay = stolen;
    let page = replay.get("/").await;
    assert_eq!((page.status, page.header("location")), (303, Some("/login")));

    // Behind a proxy terminating TLS, the cookie is Secure.
    let mut secure = site.browser();
    let signed = secure
        .sign_in("alice", PASSWORD, &[("x-forwarded-proto", "https")])
        .await;
    assert_eq!(signed.status, 303);
    assert!(signed.set_cookie("iphoto_session").unwrap().ends_with("; Secure"));

    // The password is in no log line (the CLI's nor the failed and successful sign-ins').
    assert!(!site.server.log_text().contains(PASSWORD));
}

async fn wrong_and_unknown_are_refused_alike_then_limited(db: Db) {
    let site = Site::start(db, PASSWORD).await;
    let mut browser = site.browser();
    // The server trusts `X-Forwarded-For` from a loopback peer (a local reverse proxy): each attempt below
    // names the client address it comes from.
    let from = |address: &'static str| [("x-forwarded-for", address)];

    let wrong = browser
        .sign_in("alice", "not the password at all", &from("192.0.2.1"))
        .await;
    let unknown = browser
        .sign_in("mallory", "not the password at all", &from("192.0.2.2"))
        .await;
    for refused in [&wrong, &unknown] {
        assert_eq!(refused.status, 401, "{}", refused.body);
        assert!(
            refused.body.contains("Wrong user name or password."),
            "{}",
            refused.body
        );
        assert!(refused.set_cookie("iphoto_session").is_none());
    }
    assert_eq!(
        wrong.body.replace("alice", "NAME"),
        unknown.body.replace("mallory", "NAME"),
        "the answer does not tell whether the name exists"
    );

    // Per name: five failures for alice, from five addresses; the next attempt waits, from a sixth address
    // and with the right password.
    for address in ["192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6"] {
        let page = browser
            .sign_in("alice", "still wrong password", &from(address))
            .await;
        assert_eq!(page.status, 401);
    }
    let limited = browser.sign_in("alice", PASSWORD, &from("192.0.2.7")).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((250..=300).contains(&retry), "Retry-After {retry}");
    assert!(
        limited.body.contains("Try again in 5 minutes (after "),
        "{}",
        limited.body
    );
    assert!(limited.header("content-type").unwrap().starts_with("text/html"));
    // Another name from that address is not held up by alice's failures.
    let other = browser
        .sign_in("mallory", "mallory's guess here", &from("192.0.2.7"))
        .await;
    assert_eq!(other.status, 401);

    // Per address: five names tried from one address; the sixth name waits too.
    for name in ["n1", "n2", "n3", "n4", "n5"] {
        let page = browser
            .sign_in(name, "some guessed password", &from("198.51.100.1"))
            .await;
        assert_eq!(page.status, 401);
    }
    let limited = browser
        .sign_in("admin", "some guessed password", &from("198.51.100.1"))
        .await;
    assert_eq!(limited.status, 429, "{}", limited.body);

    // Failures are logged with the name and the address, never the password.
    let log = site.server.log_text();
    let failures: Vec<&str> = log.lines().filter(|l| l.contains("failed sign-in")).collect();
    assert_eq!(failures.len(), 12, "{log}");
    assert!(
        failures
            .iter()
            .any(|l| l.contains("user=mallory") && l.contains("address=192.0.2.2")),
        "{log}"
    );
    assert_eq!(log.matches("too many failures").count(), 2, "{log}");
    for secret in [
        PASSWORD,
        "not the password at all",
        "still wrong password",
        "some guessed password",
    ] {
        assert!(!log.contains(secret), "{secret:?} is in the log");
    }
}

async fn passwd_signs_the_user_out_everywhere(db: Db) {
    let site = Site::start(db, PASSWORD).await;
    let mut first = site.browser();
    let mut second = site.browser();
    assert_eq!(first.sign_in("alice", PASSWORD, &[]).await.status, 303);
    assert_eq!(second.sign_in("alice", PASSWORD, &[]).await.status, 303);
    assert_eq!(first.get("/").await.status, 200);

    let changed = site.passwd("alice", "a brand new passphrase");
    assert!(changed.status.success(), "{changed:?}");
    let said = String::from_utf8(changed.stdout).unwrap();
    assert!(said.contains("signed out 2 open sessions"), "{said}");

    for browser in [&mut first, &mut second] {
        let page = browser.get("/").await;
        assert_eq!((page.status, page.header("location")), (303, Some("/login")));
    }
    let mut fresh = site.browser();
    assert_eq!(
        fresh.sign_in("alice", PASSWORD, &[]).await.status,
        401,
        "the old password is gone"
    );
    assert_eq!(
        fresh.sign_in("alice", "a brand new passphrase", &[]).await.status,
        303
    );
    assert_eq!(fresh.get("/").await.status, 200);
    assert!(!site.server.log_text().contains("a brand new passphrase"));
}

async fn forms_without_their_token_or_from_elsewhere_are_refused(db: Db) {
    let site = Site::start(db, PASSWORD).await;
    let fields = |csrf: &'static str| [("username", "alice"), ("password", PASSWORD), ("csrf", csrf)];

    // No CSRF cookie at all.
    let mut bare = site.browser();
    let page = bare.post("/login", &fields("anything"), &[]).await;
    assert_refused(
        &page,
        "security token of the sign-in form is missing or does not match",
    );

    // The cookie, but the field missing or another value.
    let mut browser = site.browser();
    let token = browser.get("/login").await.csrf_field();
    let page = browser
        .post("/login", &[("username", "alice"), ("password", PASSWORD)], &[])
        .await;
    assert_refused(&page, "security token");
    let page = browser.post("/login", &fields("not-the-token"), &[]).await;
    assert_refused(&page, "security token");
    // A forged cookie (the field's value, but not signed with the server's key).
    let mut forger = site.browser();
    forger
        .cookies
        .insert("iphoto_csrf".into(), format!("{token}.AAAA"));
    let page = forger
        .post(
            "/login",
            &[("username", "alice"), ("password", PASSWORD), ("csrf", &token)],
            &[],
        )
        .await;
    assert_refused(&page, "security token");

    // The right token, sent from another site.
    for headers in [
        [("sec-fetch-site", "cross-site")],
        [("origin", "https://evil.example")],
    ] {
        let page = browser
            .post(
                "/login",
                &[("username", "alice"), ("password", PASSWORD), ("csrf", &token)],
                &headers,
            )
            .await;
        assert_refused(&page, "sent from another site");
    }
    // None of that signed anyone in; the right token from this site does.
    assert!(!browser.cookies.contains_key("iphoto_session"));
    let same_origin = site.url.clone();
    let signed = browser
        .post(
            "/login",
            &[("username", "alice"), ("password", PASSWORD), ("csrf", &token)],
            &[("origin", &same_origin), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(signed.status, 303, "{}", signed.body);

    // Sign-out: without the token, with the pre-session token, or with another session's: refused, and the
    // session still works.
    let mut other = site.browser();
    other.sign_in("alice", PASSWORD, &[]).await;
    let others_token = other.get("/").await.csrf_field();
    for csrf in ["", token.as_str(), others_token.as_str()] {
        let page = browser.post("/logout", &[("csrf", csrf)], &[]).await;
        assert_refused(&page, "security token of the sign-out form");
    }
    assert_eq!(browser.get("/").await.status, 200);
}

/// Sessions and the cookie key live in the catalog: a cookie from one replica is accepted by another, and
/// signing out on one ends the session on both.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_sessions_and_their_revocation() {
    let site = Site::start(Db::Postgres, PASSWORD).await;
    let replica = site.replica().await;
    let mut first = site.browser();
    assert_eq!(first.sign_in("alice", PASSWORD, &[]).await.status, 303);
    let mut second = first.clone();
    second.url = replica.url();
    let home = second.get("/").await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("Signed in as <strong>alice</strong>"));

    let out = second.post("/logout", &[("csrf", &home.csrf_field())], &[]).await;
    assert_eq!(out.status, 303);
    let page = first.get("/").await;
    assert_eq!((page.status, page.header("location")), (303, Some("/login")));
}

/// The limit on failed sign-ins is the catalog's: failures on one replica count on the other, so two
/// replicas do not allow twice as many tries.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_count_failed_sign_ins_together() {
    let site = Site::start(Db::Postgres, PASSWORD).await;
    let replica = site.replica().await;
    let mut first = site.browser();
    let mut second = site.browser();
    second.url = replica.url();
    for i in 0..5_u32 {
        let browser = if i.is_multiple_of(2) {
            &mut first
        } else {
            &mut second
        };
        let refused = browser.sign_in("alice", "not the password at all", &[]).await;
        assert_eq!(refused.status, 401, "attempt {i}: {}", refused.body);
    }
    // The sixth try, on the replica that saw two: refused for the five, even with the right password.
    let limited = second.sign_in("alice", PASSWORD, &[]).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
}

/// An unknown name is verified against a dummy Argon2id hash: refusing it takes as long as refusing a wrong
/// password (without the dummy it would take the time of one indexed lookup, a hundredth of it). Medians of
/// alternating attempts, each from its own address so the limit never applies; the bounds are loose, for a
/// shared machine, but far tighter than the gap a missing verification leaves.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_names_take_as_long_to_refuse_as_wrong_passwords() {
    let site = Site::start(Db::Sqlite, PASSWORD).await;
    let mut browser = site.browser();
    let token = browser.get("/login").await.csrf_field();
    let timed = |name: &'static str, address: String| {
        let mut browser = browser.clone();
        let token = token.clone();
        async move {
            let started = std::time::Instant::now();
            let page = browser
                .post(
                    "/login",
                    &[
                        ("username", name),
                        ("password", "a wrong password here"),
                        ("csrf", &token),
                    ],
                    &[("x-forwarded-for", &address)],
                )
                .await;
            assert_eq!(page.status, 401);
            started.elapsed()
        }
    };
    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    // Round 0 warms up (connections, the first blocking thread); alice's five failures stay within the limit.
    for round in 0..5 {
        let names = ["nobody0", "nobody1", "nobody2", "nobody3", "nobody4"];
        let w = timed("alice", format!("192.0.2.{}", 10 + round)).await;
        let u = timed(names[round], format!("192.0.2.{}", 20 + round)).await;
        if round > 0 {
            wrong.push(w);
            unknown.push(u);
        }
    }
    wrong.sort();
    unknown.sort();
    let (wrong, unknown) = (wrong[1].as_secs_f64(), unknown[1].as_secs_f64());
    let ratio = unknown / wrong;
    assert!(
        (0.25..4.0).contains(&ratio),
        "unknown {unknown:.4} s, wrong password {wrong:.4} s"
    );
}

/// A 403 page saying why.
fn assert_refused(page: &browser::Page, why: &str) {
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.body.contains(why), "{why:?} not in {}", page.body);
    assert!(page.set_cookie("iphoto_session").is_none());
}

/// `value` with the character at `index` changed.
fn flip(value: &str, index: usize) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    chars[index] = if chars[index] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

fn photo(uuid: &str) -> serde_json::Value {
    serde_json::json!({
        "localIdentifier": format!("{uuid}/L0/001"), "kind": "photo", "livePhoto": false,
        "width": 4032, "height": 3024, "takenAt": "2024-05-01T10:00:00+02:00",
        "modifiedAt": "2024-05-02T10:00:00Z", "favorite": false, "hidden": false, "trashed": false,
        "originalFilename": "IMG_0001.HEIC", "uti": "public.heic", "edited": false,
        "resources": [{ "type": "original", "size": 10, "available": true }]
    })
}
