//! Web passwords and sessions (issue 14).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

pub async fn sessions_authenticate_until_revoked_or_expired(s: &Subject) {
    let c = s.c();
    let alice = c.create_user("alice").await.unwrap();
    let bob = c.create_user("bob").await.unwrap();
    let now = Utc::now();
    let opened = c
        .create_session(&alice.id, now, now + Duration::days(30))
        .await
        .unwrap();
    let secret = opened.secret.expose().to_owned();
    let found = c.authenticate_session(&secret, now).await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), &found.user), (opened.id.as_str(), &alice));

    // Stored only as its SHA-256.
    let digest = hex::encode(Sha256::digest(secret.as_bytes()));
    assert_eq!(
        s.raw.strings("SELECT token_sha256 FROM web_sessions").await,
        vec![digest]
    );
    assert_eq!(
        s.raw
            .int(&format!(
                "SELECT COUNT(*) FROM web_sessions WHERE token_sha256 = '{secret}' OR id = '{secret}'"
            ))
            .await,
        0
    );

    // Unknown, malformed and later-than-expiry secrets open nothing.
    assert!(
        c.authenticate_session(&"A".repeat(43), now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(c.authenticate_session("short", now).await.unwrap().is_none());
    assert!(
        c.authenticate_session(&secret, now + Duration::days(31))
            .await
            .unwrap()
            .is_none()
    );

    // Another user cannot revoke it; its owner can, once and again.
    assert!(matches!(
        c.revoke_session(&bob.id, &opened.id, now).await,
        Err(Error::NotFound { .. })
    ));
    assert!(c.authenticate_session(&secret, now).await.unwrap().is_some());
    c.revoke_session(&alice.id, &opened.id, now).await.unwrap();
    c.revoke_session(&alice.id, &opened.id, now).await.unwrap();
    assert!(c.authenticate_session(&secret, now).await.unwrap().is_none());

    // A session must end after it starts; one for no user is not made.
    assert!(matches!(
        c.create_session(&alice.id, now, now).await,
        Err(Error::Invalid { .. })
    ));
    let nobody = UserId::new("0".repeat(32));
    assert!(matches!(
        c.create_session(&nobody, now, now + Duration::days(1)).await,
        Err(Error::NotFound { .. })
    ));

    // Opening a session removes the user's expired ones (only theirs).
    let short = c
        .create_session(&alice.id, now, now + Duration::seconds(1))
        .await
        .unwrap();
    c.create_session(&bob.id, now, now + Duration::seconds(1))
        .await
        .unwrap();
    c.create_session(&alice.id, now + Duration::seconds(5), now + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(
        s.raw
            .int(&format!(
                "SELECT COUNT(*) FROM web_sessions WHERE id = '{}'",
                short.id
            ))
            .await,
        0
    );
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM web_sessions").await, 3);
}

pub async fn set_password_revokes_the_users_sessions_only(s: &Subject) {
    let c = s.c();
    let alice = c.create_user("alice").await.unwrap();
    let bob = c.create_user("bob").await.unwrap();
    let record = c.login_record("alice").await.unwrap().unwrap();
    assert_eq!((record.user, record.password_hash), (alice.clone(), None));
    assert!(c.login_record("carol").await.unwrap().is_none());

    let now = Utc::now();
    let later = now + Duration::days(1);
    let a1 = c.create_session(&alice.id, now, later).await.unwrap();
    let a2 = c.create_session(&alice.id, now, later).await.unwrap();
    let b1 = c.create_session(&bob.id, now, later).await.unwrap();
    assert_eq!(
        c.set_password(&alice.id, "$argon2id$v=19$stand-in", now)
            .await
            .unwrap(),
        2
    );
    for gone in [&a1, &a2] {
        assert!(
            c.authenticate_session(gone.secret.expose(), now)
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(
        c.authenticate_session(b1.secret.expose(), now)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        c.login_record("alice")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("$argon2id$v=19$stand-in")
    );
    assert_eq!(c.login_record("bob").await.unwrap().unwrap().password_hash, None);
    // Nothing left to revoke the second time; an unknown user is not found.
    assert_eq!(
        c.set_password(&alice.id, "$argon2id$v=19$other", now)
            .await
            .unwrap(),
        0
    );
    assert!(matches!(
        c.set_password(&UserId::new("0".repeat(32)), "$argon2id$x", now)
            .await,
        Err(Error::NotFound { .. })
    ));
}

pub async fn web_keys_are_made_once_and_shared(s: &Subject) {
    let c = s.c();
    let first = c.web_key("cookie", "aa").await.unwrap();
    assert_eq!(first, "aa");
    assert_eq!(
        c.web_key("cookie", "bb").await.unwrap(),
        "aa",
        "the first key stays"
    );
    assert_eq!(c.web_key("other", "cc").await.unwrap(), "cc");
}

pub async fn login_failures_count_per_key_within_the_window(s: &Subject) {
    let c = s.c();
    let start = Utc::now();
    let keys = ["user:ann".to_owned(), "address:10.0.0.1".to_owned()];
    let at = |seconds: i64| start + chrono::Duration::seconds(seconds);
    for i in 0..5 {
        c.record_login_failure(&keys, at(i), at(i) - chrono::Duration::minutes(5))
            .await
            .unwrap();
    }
    // The fifth newest is the first; the newest is the last; there is no sixth.
    assert_eq!(
        c.login_failure_nth("user:ann", start, 5).await.unwrap(),
        Some(DateTime::from_timestamp_millis(start.timestamp_millis()).unwrap())
    );
    assert_eq!(
        c.login_failure_nth("address:10.0.0.1", start, 1).await.unwrap(),
        Some(DateTime::from_timestamp_millis(at(4).timestamp_millis()).unwrap())
    );
    assert_eq!(c.login_failure_nth("user:ann", start, 6).await.unwrap(), None);
    // Outside the window they do not count; other keys have none.
    assert_eq!(c.login_failure_nth("user:ann", at(1), 5).await.unwrap(), None);
    assert_eq!(c.login_failure_nth("user:bob", start, 1).await.unwrap(), None);
    // Clearing a user's leaves the address's; a failure later than the window deletes the old rows.
    c.clear_login_failures("user:ann").await.unwrap();
    assert_eq!(c.login_failure_nth("user:ann", start, 1).await.unwrap(), None);
    assert!(
        c.login_failure_nth("address:10.0.0.1", start, 5)
            .await
            .unwrap()
            .is_some()
    );
    c.record_login_failure(&["user:bob".to_owned()], at(400), at(100))
        .await
        .unwrap();
    assert_eq!(
        s.raw.strings("SELECT key FROM login_failures ORDER BY key").await,
        vec!["user:bob"]
    );
}
