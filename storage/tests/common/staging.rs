//! Sweeping staging left by interrupted writes: the local backend's `<key>#<n>` files, which its listing
//! hides. Other backends have none to sweep (S3 leaves abandoned multipart uploads to a lifecycle rule).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use storage::{PutOptions, StagingSweep};

use super::subject::{Kind, Subject, data, key};

/// A file beside the store's objects, last written `age` ago.
fn plant(root: &std::path::Path, relative: &str, len: usize, age: Duration) -> std::path::PathBuf {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, data(len, 7)).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
    path
}

pub async fn staging_older_than_the_age_is_removed(s: &Subject) {
    let object = key("users/u/libraries/l/originals/A/A1.heic");
    s.store
        .put(&object, data(100, 1).into(), &PutOptions::default())
        .await
        .unwrap();
    // An old object is not staging, however old.
    let old_object = key("users/u/libraries/l/originals/B/B1.heic");
    s.store
        .put(&old_object, data(50, 2).into(), &PutOptions::default())
        .await
        .unwrap();
    let hour = Duration::from_secs(3600);
    if s.kind != Kind::Local {
        assert_eq!(
            s.store.remove_staging(Duration::ZERO, false).await.unwrap(),
            StagingSweep::default()
        );
    } else {
        let root = s.root.as_ref().unwrap().path().join("blobs");
        let file = |k: &storage::StorageKey| root.join(k.as_str());
        std::fs::File::options()
            .write(true)
            .open(file(&old_object))
            .unwrap()
            .set_modified(SystemTime::now() - 2 * hour)
            .unwrap();
        let crashed = plant(&root, "users/u/libraries/l/originals/C/C1.heic#7", 300, 2 * hour);
        let crashed_deep = plant(&root, "users/u/libraries/l/originals/A/A1.heic#1", 20, 3 * hour);
        let writing = plant(
            &root,
            "users/u/libraries/l/originals/D/D1.heic#2",
            40,
            Duration::ZERO,
        );
        let listed: Vec<_> = s.store.list(None).try_collect().await.unwrap();
        assert_eq!(listed.len(), 2, "the backend's listing hides staging: {listed:?}");

        let dry = s.store.remove_staging(hour, true).await.unwrap();
        assert_eq!(dry, StagingSweep { files: 2, bytes: 320 });
        assert!(crashed.exists() && crashed_deep.exists());

        let swept = s.store.remove_staging(hour, false).await.unwrap();
        assert_eq!(swept, dry);
        assert!(!crashed.exists() && !crashed_deep.exists());
        assert!(writing.exists(), "a fresh staging file is a write in progress");
        // Idempotent: a second sweep finds nothing.
        assert_eq!(
            s.store.remove_staging(hour, false).await.unwrap(),
            StagingSweep::default()
        );
    }
    assert_eq!(s.store.get_bytes(&object).await.unwrap(), data(100, 1));
    assert_eq!(s.store.get_bytes(&old_object).await.unwrap(), data(50, 2));
}
