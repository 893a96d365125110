//! Property: no key the port accepts is stored outside the local adapter's root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use proptest::prelude::*;
use storage::{PutOptions, Secret, StorageArgs, StorageKey};

fn store_under(root: &std::path::Path) -> storage::Store {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        storage: StorageArgs,
    }
    let mut args = Cli::try_parse_from(["t"]).unwrap().storage;
    args.storage_local_path = Some(root.to_path_buf());
    args.presign_secret = Some(Secret::new("property-test-secret-0123456789abcdef".into()));
    storage::create_object_store(&args.into_config().unwrap()).unwrap()
}

thread_local! {
    /// (accepted, rejected) keys generated, to prove the property was exercised on accepted keys.
    static ACCEPTED: std::cell::RefCell<(u32, u32)> = const { std::cell::RefCell::new((0, 0)) };
}

#[test]
fn the_property_sees_accepted_and_rejected_keys() {
    accepted_keys_stay_under_the_root();
    let (accepted, rejected) = ACCEPTED.with(|a| *a.borrow());
    // About a quarter of the generated keys are accepted: 400 cases give ~90 ± 9. The bounds sit far from
    // that so the check never flakes, yet it fails if either side stops being exercised.
    assert!(
        accepted >= 40 && rejected >= 40,
        "accepted {accepted}, rejected {rejected}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn accepted_keys_stay_under_the_root(
        segments in prop::collection::vec(
            prop_oneof![
                1 => Just("..".to_owned()), 1 => Just(".".to_owned()), 1 => Just(String::new()),
                1 => Just("~".to_owned()), 1 => Just("%2e%2e".to_owned()), 1 => Just("..%2f".to_owned()),
                1 => Just("a\\..".to_owned()), 1 => Just("file#1".to_owned()), 1 => Just("x#".to_owned()),
                1 => Just("\u{0}".to_owned()),
                12 => "[a-zA-Z0-9 ._~%#-]{1,12}",
                6 => "\\PC{1,6}",
            ],
            1..6,
        ),
        leading_slash in any::<bool>(),
    ) {
        let raw = format!("{}{}", if leading_slash { "/" } else { "" }, segments.join("/"));
        let Ok(key) = StorageKey::parse(raw.clone()) else {
            ACCEPTED.with(|a| a.borrow_mut().1 += 1);
            return Ok(());
        };
        ACCEPTED.with(|a| a.borrow_mut().0 += 1);
        // Accepted: it must land as exactly one file, under the root, at the path its segments name.
        let sandbox = tempfile::tempdir().unwrap();
        let root = sandbox.path().join("root");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = store_under(&root);
            store.put(&key, Bytes::from_static(b"x"), &PutOptions::default()).await.unwrap();
            assert_eq!(store.get_bytes(&key).await.unwrap(), Bytes::from_static(b"x"));
        });
        let files = harness::files_under(sandbox.path());
        prop_assert_eq!(files.len(), 1, "{:?} wrote {:?}", raw, files);
        let expected: std::path::PathBuf = key.segments().fold(root.clone(), |p, s| p.join(s));
        prop_assert_eq!(&files[0], &expected);
        prop_assert!(files[0].starts_with(&root));
    }
}
