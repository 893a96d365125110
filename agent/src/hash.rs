//! Streamed SHA-256 of a resource file: the digest the sync item carries and the upload announces.
//!
//! Files are read in 1 MiB chunks on a blocking thread, so a 4 GB video never sits in memory and the async
//! workers stay free for network I/O.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::sync::{Phase, Progress};

/// A file's lower-case hex SHA-256 and the number of bytes hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Bytes read.
    pub size: u64,
}

/// Hashes a file without holding it in memory.
pub async fn sha256_file(path: &Path) -> Result<FileDigest> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || hash_blocking(&owned))
        .await
        .map_err(|join| Error::Io {
            path: path.to_path_buf(),
            action: "hashing",
            source: std::io::Error::other(join),
        })?
}

/// Hashes many files, as many at once as there are cores (a pass's first run hashes a whole library), each
/// reported to `progress` as done; one result per file, in order.
pub async fn sha256_files(files: Vec<PathBuf>, progress: &dyn Progress) -> Vec<Result<FileDigest>> {
    let parallel = std::thread::available_parallelism().map_or(2, usize::from);
    futures::stream::iter(files)
        .map(|path| async move { sha256_file(&path).await })
        .buffered(parallel)
        .inspect(|_| progress.advance(Phase::Hashing, 1))
        .collect()
        .await
}

fn hash_blocking(path: &PathBuf) -> Result<FileDigest> {
    let io = |source| Error::Io {
        path: path.clone(),
        action: "hashing",
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok(FileDigest {
        sha256: hex::encode(hasher.finalize()),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_match_the_known_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        let digest = sha256_file(&path).await.unwrap();
        assert_eq!(
            digest.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(digest.size, 3);
        assert!(sha256_file(&dir.path().join("none")).await.is_err());
    }
}
