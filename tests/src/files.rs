//! The files under a directory, for tests that check what a store, a cache or a server left on disk.

use std::path::{Path, PathBuf};

/// Every file below `dir`, at any depth (directories themselves are not listed). A directory that cannot be
/// read (never made, or removed while this walks) contributes nothing.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files
}

/// Apparent bytes of the files below `dir`, walked (not at one instant: for checks after the fact). A file
/// removed while this walks (an eviction) counts as zero.
pub fn dir_bytes(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .map(|file| std::fs::metadata(file).map_or(0, |meta| meta.len()))
        .sum()
}
