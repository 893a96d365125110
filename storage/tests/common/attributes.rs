//! File-system attributes stored with an object: written with it, read back with a HEAD, kept by a copy,
//! refused past the metadata limit.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::DateTime;
use storage::{Error, METADATA_LIMIT, ObjectAttributes, PutOptions};

use super::{Subject, data, key};

pub async fn file_attributes_travel_with_the_object(s: &Subject) {
    let k = key("project/cut.mov");
    let mut xattrs = BTreeMap::new();
    xattrs.insert("user.com.apple.FinderInfo".to_owned(), vec![0u8, 1, 2, 3, 255]);
    xattrs.insert("user.xdg.comment".to_owned(), b"final".to_vec());
    let attributes = ObjectAttributes {
        mtime: DateTime::from_timestamp(1_500_000_000, 250_000_000),
        xattrs,
    };
    s.store
        .put_with_attributes(
            &k,
            Bytes::from_static(b"frames"),
            &PutOptions::default(),
            Some(&attributes),
        )
        .await
        .unwrap();
    let (meta, back) = s.store.head_attributes(&k).await.unwrap();
    assert_eq!(meta.size, 6);
    assert_eq!(back, attributes);

    // Streamed, past one part (a multipart upload on S3).
    let big = key("project/render.mov");
    let body = data(9 * 1024 * 1024, 3);
    let chunks = futures::stream::iter(
        body.chunks(1 << 20)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    s.store
        .put_stream_with_attributes(&big, chunks, &PutOptions::default(), Some(&attributes))
        .await
        .unwrap();
    assert_eq!(s.store.head_attributes(&big).await.unwrap().1, attributes);

    // A copy keeps them.
    let copy = key("project/copy.mov");
    s.store.copy(&k, &copy).await.unwrap();
    assert_eq!(s.store.head_attributes(&copy).await.unwrap().1, attributes);

    // Past the limit nothing is written, and the error names the figures.
    let mut huge = attributes.clone();
    huge.xattrs.insert("user.big".into(), vec![7u8; METADATA_LIMIT]);
    let too_big = key("project/too-big.mov");
    match s
        .store
        .put_with_attributes(
            &too_big,
            Bytes::from_static(b"x"),
            &PutOptions::default(),
            Some(&huge),
        )
        .await
    {
        Err(Error::MetadataTooLarge { bytes, limit, .. }) => {
            assert!(bytes > limit);
            assert_eq!(limit, METADATA_LIMIT);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.store.head(&too_big).await,
        Err(Error::NotFound { .. })
    ));

    // An object written without attributes has none (and no mtime of its own on S3).
    let plain = key("project/plain.txt");
    s.store
        .put(&plain, Bytes::from_static(b"p"), &PutOptions::default())
        .await
        .unwrap();
    assert!(s.store.head_attributes(&plain).await.unwrap().1.xattrs.is_empty());
}
