//! Users, tokens and libraries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

pub async fn migrations_are_idempotent_and_ping_works(s: &Subject) {
    s.c().migrate().await.unwrap();
    s.c().migrate().await.unwrap();
    s.c().ping().await.unwrap();
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.photos").await, 0);
}

pub async fn users_have_unique_valid_names(s: &Subject) {
    let c = s.c();
    let alice = c.create_user("alice").await.unwrap();
    assert!(matches!(
        c.create_user("alice").await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(c.create_user("").await, Err(Error::Invalid { .. })));
    assert!(matches!(
        c.create_user("bad name").await,
        Err(Error::Invalid { .. })
    ));
    assert_eq!(c.find_user_by_name("alice").await.unwrap(), Some(alice));
    assert_eq!(c.find_user_by_name("bob").await.unwrap(), None);
    assert_eq!(
        c.version(&c.create_user("bob").await.unwrap().id).await.unwrap(),
        0
    );
}

pub async fn tokens_authenticate_until_revoked(s: &Subject) {
    let c = s.c();
    let alice = c.create_user("alice").await.unwrap();
    let client = c.create_token(&alice.id, Scope::Client, "agent").await.unwrap();
    let web = c.create_token(&alice.id, Scope::Web, "browser").await.unwrap();
    assert!(client.secret.expose().starts_with("ips_"));
    assert!(
        !format!("{:?}", client).contains(client.secret.expose()),
        "Debug must hide the secret"
    );

    let auth = c.authenticate(client.secret.expose()).await.unwrap().unwrap();
    assert_eq!(
        (auth.user.id.clone(), auth.scope, auth.token_id.clone()),
        (alice.id.clone(), Scope::Client, client.info.id.clone())
    );
    assert_eq!(
        c.authenticate(web.secret.expose()).await.unwrap().unwrap().scope,
        Scope::Web
    );
    let used = c.find_token(&client.info.id).await.unwrap().unwrap();
    assert!(used.last_used_at.is_some(), "authentication records last use");

    // Unknown (well-formed), malformed and tampered tokens fail.
    let unknown = format!("ips_{}", "A".repeat(43));
    assert_eq!(c.authenticate(&unknown).await.unwrap(), None);
    assert_eq!(c.authenticate("").await.unwrap(), None);
    assert_eq!(c.authenticate("Bearer whatever").await.unwrap(), None);
    let mut tampered = client.secret.expose().to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(c.authenticate(&tampered).await.unwrap(), None);

    c.revoke_token(&alice.id, &client.info.id).await.unwrap();
    c.revoke_token(&alice.id, &client.info.id).await.unwrap();
    assert_eq!(c.authenticate(client.secret.expose()).await.unwrap(), None);
    assert!(
        c.authenticate(web.secret.expose()).await.unwrap().is_some(),
        "other tokens still work"
    );
    let listed = c.list_tokens(Some(&alice.id)).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .find(|t| t.id == client.info.id)
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        listed
            .iter()
            .find(|t| t.id == web.info.id)
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert!(matches!(
        c.revoke_token(&alice.id, &server::catalog::TokenId::new("nope"))
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        c.create_token(&UserId::new("nobody"), Scope::Admin, "x").await,
        Err(Error::NotFound { .. })
    ));
}

pub async fn tokens_are_stored_only_as_digests(s: &Subject) {
    let c = s.c();
    let alice = c.create_user("alice").await.unwrap();
    let token = c.create_token(&alice.id, Scope::Admin, "cli").await.unwrap();
    let plaintext = token.secret.expose();
    let body = plaintext.trim_start_matches("ips_");
    let rows = s
        .raw
        .strings("SELECT id || '|' || user_id || '|' || name || '|' || scope || '|' || token_sha256 FROM api_tokens")
        .await;
    assert_eq!(rows.len(), 1);
    assert!(
        !rows[0].contains(body),
        "the plaintext is in the table: {}",
        rows[0]
    );
    let digest = hex::encode(Sha256::digest(plaintext.as_bytes()));
    assert_eq!(
        s.raw.strings("SELECT token_sha256 FROM api_tokens").await,
        vec![digest]
    );
}

pub async fn libraries_are_per_user_and_idempotent(s: &Subject) {
    let c = s.c();
    let alice = c.create_user("alice").await.unwrap();
    let bob = c.create_user("bob").await.unwrap();
    let a1 = c.ensure_library(&alice.id, "lib").await.unwrap();
    assert_eq!(c.ensure_library(&alice.id, "lib").await.unwrap(), a1);
    let b1 = c.ensure_library(&bob.id, "lib").await.unwrap();
    assert_ne!(
        a1.id, b1.id,
        "the same agent library id under two users is two libraries"
    );
    assert!(matches!(
        c.ensure_library(&alice.id, "").await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        c.ensure_library(&UserId::new("ghost"), "lib").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(s.raw.int("SELECT COUNT(*) FROM icloud.libraries").await, 2);
}
