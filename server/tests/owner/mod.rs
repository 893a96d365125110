//! One user with a token per scope, and the few client calls the web and worker tests build a library with.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use serde_json::{Value, json};
use server::catalog::{Scope, User};

use crate::app::{TestApp, item, read, sha256_hex};

pub const LIB: &str = "MacBook-Library";

pub struct Owner {
    pub user: User,
    pub client: String,
    pub web: String,
    pub worker: String,
}

impl Owner {
    pub async fn new(app: &TestApp) -> Owner {
        let (user, client) = app.user_with_token(Scope::Client).await;
        let web = app.token(&user, Scope::Web).await;
        let worker = app.token(&user, Scope::Worker).await;
        Owner {
            user,
            client,
            web,
            worker,
        }
    }

    /// Syncs items; every one must be accepted.
    pub async fn sync(&self, app: &TestApp, items: Vec<Value>) {
        for chunk in items.chunks(500) {
            let body = json!({ "libraryId": LIB, "items": chunk });
            let (status, answer) = app.post_json(&self.client, "/client/iphoto/sync", &body).await;
            assert_eq!(status, 200, "{answer}");
            for r in answer["results"].as_array().unwrap() {
                assert_ne!(r["outcome"], "rejected", "{r}");
            }
        }
    }

    /// Uploads the original of `uuid`; returns the upload answer.
    pub async fn upload(&self, app: &TestApp, uuid: &str, bytes: &[u8]) -> Value {
        let response = app
            .http
            .post(app.url(&format!(
                "/client/iphoto/upload/{uuid}%2FL0%2F001?resource=original"
            )))
            .bearer_auth(&self.client)
            .header("x-content-sha256", sha256_hex(bytes))
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        let (status, answer) = read(response).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    /// Syncs one photo declaring `bytes` and uploads them.
    pub async fn photo_with_original(&self, app: &TestApp, uuid: &str, bytes: &[u8]) -> Value {
        let sha = sha256_hex(bytes);
        self.sync(app, vec![item(uuid, bytes.len() as u64, Some(&sha))])
            .await;
        self.upload(app, uuid, bytes).await
    }
}

/// A sync item taken at `taken_at` (RFC 3339), with an original of 10 bytes not uploaded.
pub fn taken(uuid: &str, taken_at: &str) -> Value {
    let mut v = item(uuid, 10, None);
    v["takenAt"] = taken_at.into();
    v
}
