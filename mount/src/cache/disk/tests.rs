//! The disk cache's bound, checksums, restart and concurrency, on real files in a temporary directory.

use super::*;
use harness::dir_bytes;

const KIB: u64 = 1024;

fn id(key: &str, version: &str, index: u64) -> BlockId {
    BlockId {
        key: key.into(),
        version: version.into(),
        index,
        block_size: 4 << 20,
    }
}

/// A block of `len` bytes from the cache.
fn get(cache: &DiskCache, id: &BlockId, len: usize) -> Option<Bytes> {
    cache.get(id, BlockBuf::unpooled(len)).unwrap()
}

#[test]
fn round_trip_and_version_miss() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::open(dir.path(), INDEX_ALLOWANCE + 1024 * KIB).unwrap();
    assert!(cache.put(&id("a/b", "v1", 0), b"hello").unwrap());
    assert_eq!(
        get(&cache, &id("a/b", "v1", 0), 5).unwrap(),
        Bytes::from_static(b"hello")
    );
    // Another version or another block of the same key misses.
    assert!(get(&cache, &id("a/b", "v2", 0), 5).is_none());
    assert!(get(&cache, &id("a/b", "v1", 1), 5).is_none());
}

#[test]
fn an_odd_sized_aligned_block_round_trips_and_another_block_size_misses() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::open(dir.path(), INDEX_ALLOWANCE + 1024 * KIB).unwrap();
    // Whole pages by direct I/O, the partial last page through the page cache.
    let len = 3 * ALIGN + 123;
    let mut block = BlockBuf::unpooled(len);
    for (i, byte) in block.as_mut_slice().iter_mut().enumerate() {
        *byte = (i % 251) as u8;
    }
    let expected = block.as_ref().to_vec();
    assert!(cache.put(&id("k", "v", 2), block.as_ref()).unwrap());
    assert_eq!(get(&cache, &id("k", "v", 2), len).unwrap(), expected);
    // The same index counted in blocks of another size is another block.
    let other = BlockId {
        block_size: 1 << 20,
        ..id("k", "v", 2)
    };
    assert!(get(&cache, &other, len).is_none());
}

#[test]
fn bound_holds_at_insert_and_lru_goes_first() {
    let dir = tempfile::tempdir().unwrap();
    let max = INDEX_ALLOWANCE + 300 * KIB;
    let cache = DiskCache::open(dir.path(), max).unwrap();
    let block = vec![7u8; 100 * KIB as usize];
    for i in 0..3 {
        assert!(cache.put(&id("k", "v", i), &block).unwrap());
    }
    // Block 0 is used again, so block 1 is the least recently used.
    assert!(get(&cache, &id("k", "v", 0), 100 * KIB as usize).is_some());
    assert!(cache.put(&id("k", "v", 3), &block).unwrap());
    assert!(cache.contains(&id("k", "v", 0)));
    assert!(!cache.contains(&id("k", "v", 1)));
    assert!(cache.contains(&id("k", "v", 3)));
    for i in 4..40 {
        cache.put(&id("k", "v", i), &block).unwrap();
        assert!(dir_bytes(dir.path()) <= max, "over the bound after block {i}");
        assert!(cache.usage().used_bytes <= max);
    }
}

#[test]
fn a_block_larger_than_the_cache_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::open(dir.path(), INDEX_ALLOWANCE + 10 * KIB).unwrap();
    assert!(
        !cache
            .put(&id("k", "v", 0), &vec![1u8; 11 * KIB as usize])
            .unwrap()
    );
    assert_eq!(cache.usage().blocks, 0);
}

#[test]
fn a_corrupt_block_is_a_miss_and_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::open(dir.path(), INDEX_ALLOWANCE + 1024 * KIB).unwrap();
    let block = id("k", "v", 0);
    cache.put(&block, b"original bytes").unwrap();
    fs::write(cache.block_path(&block_name(&block)), b"original bytez").unwrap();
    assert!(get(&cache, &block, 14).is_none());
    assert!(!cache.contains(&block));
}

#[test]
fn a_restart_keeps_blocks_without_walking_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = DiskCache::open(dir.path(), INDEX_ALLOWANCE + 1024 * KIB).unwrap();
        cache.put(&id("k", "v", 0), b"zero").unwrap();
        cache.put(&id("k", "v", 1), b"one").unwrap();
        // Dropped without `persist`: the log alone must be enough (a crash).
    }
    // A stray file the index does not know is not picked up (the directory is not walked).
    fs::write(dir.path().join("blocks").join("stray"), b"x").unwrap();
    let cache = DiskCache::open(dir.path(), INDEX_ALLOWANCE + 1024 * KIB).unwrap();
    assert_eq!(cache.usage().blocks, 2);
    assert_eq!(
        get(&cache, &id("k", "v", 1), 3).unwrap(),
        Bytes::from_static(b"one")
    );
    cache.persist().unwrap();
    let cache = DiskCache::open(dir.path(), INDEX_ALLOWANCE + 1024 * KIB).unwrap();
    assert_eq!(
        get(&cache, &id("k", "v", 0), 4).unwrap(),
        Bytes::from_static(b"zero")
    );
}

#[test]
fn a_smaller_bound_at_restart_trims_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let block = vec![1u8; 100 * KIB as usize];
    {
        let cache = DiskCache::open(dir.path(), INDEX_ALLOWANCE + 1000 * KIB).unwrap();
        for i in 0..8 {
            cache.put(&id("k", "v", i), &block).unwrap();
        }
    }
    let max = INDEX_ALLOWANCE + 250 * KIB;
    let cache = DiskCache::open(dir.path(), max).unwrap();
    assert_eq!(cache.usage().blocks, 2);
    assert!(dir_bytes(dir.path()) <= max);
}

#[test]
fn concurrent_inserts_never_exceed_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let max = INDEX_ALLOWANCE + 512 * KIB;
    let cache = std::sync::Arc::new(DiskCache::open(dir.path(), max).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let block = vec![t as u8; 64 * KIB as usize];
                for i in 0..50 {
                    cache.put(&id(&format!("k{t}"), "v", i), &block).unwrap();
                }
            })
        })
        .collect();
    let mut peak = 0;
    while threads.iter().any(|t| !t.is_finished()) {
        peak = peak.max(dir_bytes(dir.path()));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert!(peak <= max, "peak {peak} > {max}");
}

/// The index rewritten (at unmount, or when the log grows) while a block is being written keeps the block's
/// record: after a restart its file is accounted, whether its write finished or not.
#[test]
fn a_block_being_written_survives_an_index_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let bound = INDEX_ALLOWANCE + 1024 * KIB;
    let (finished, unfinished) = (block_name(&id("k", "v", 0)), block_name(&id("k", "v", 1)));
    {
        let cache = DiskCache::open(dir.path(), bound).unwrap();
        for name in [&finished, &unfinished] {
            assert!(matches!(
                cache.account(name, 8, crc32fast::hash(b"finished")).unwrap(),
                Accounted::Reserved
            ));
        }
        // Not served while being written.
        assert!(!cache.contains(&id("k", "v", 0)));
        cache.persist().unwrap();
        cache.write_accounted(&finished, b"finished").unwrap();
        // The other write never finishes (the process ends first).
    }
    let cache = DiskCache::open(dir.path(), bound).unwrap();
    assert_eq!(
        cache.usage().blocks,
        2,
        "both accounted: no file the bound does not know"
    );
    assert_eq!(
        get(&cache, &id("k", "v", 0), 8).unwrap(),
        Bytes::from_static(b"finished")
    );
    // The unfinished block is a miss, and is dropped from the index.
    assert!(get(&cache, &id("k", "v", 1), 8).is_none());
    assert_eq!(cache.usage().blocks, 1);
    assert!(dir_bytes(&dir.path().join("blocks")) <= 8);
}

#[test]
fn pinned_blocks_are_never_evicted_and_stay_pinned_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let max = INDEX_ALLOWANCE + 300 * KIB;
    let block = vec![7u8; 100 * KIB as usize];
    {
        let cache = DiskCache::open(dir.path(), max).unwrap();
        assert!(
            !cache.set_pinned(&id("pinned", "v", 0), true).unwrap(),
            "not cached yet"
        );
        assert!(cache.put(&id("pinned", "v", 0), &block).unwrap());
        assert!(cache.set_pinned(&id("pinned", "v", 0), true).unwrap());
        assert_eq!(cache.usage().pinned_bytes, 100 * KIB);
        for i in 0..20 {
            cache.put(&id("k", "v", i), &block).unwrap();
            assert!(cache.usage().used_bytes <= max);
        }
        assert!(cache.contains(&id("pinned", "v", 0)));
        cache.persist().unwrap();
    }
    let cache = DiskCache::open(dir.path(), max).unwrap();
    assert_eq!(cache.usage().pinned_bytes, 100 * KIB);
    for i in 20..40 {
        cache.put(&id("k", "v", i), &block).unwrap();
    }
    assert!(cache.contains(&id("pinned", "v", 0)));
    // Unpinned, it ages out like any other block.
    assert!(cache.set_pinned(&id("pinned", "v", 0), false).unwrap());
    for i in 40..60 {
        cache.put(&id("k", "v", i), &block).unwrap();
    }
    assert!(!cache.contains(&id("pinned", "v", 0)));
    assert_eq!(cache.usage().pinned_bytes, 0);
}
