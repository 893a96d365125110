//! `StorageKey`: the only way a string becomes an object key.

use std::fmt;

use crate::error::Error;

/// Longest key accepted, in bytes. S3, R2, Spaces and SeaweedFS all stop at 1024.
pub const MAX_KEY_BYTES: usize = 1024;

/// Longest path segment accepted, in bytes: most file systems stop at 255, and the local adapter maps a segment
/// to a file name.
pub const MAX_SEGMENT_BYTES: usize = 255;

/// A validated object key, relative to the store's root (and to `IPHOTO_S3_PREFIX`, when set).
///
/// Invariants, checked by [`StorageKey::parse`] and nowhere else:
/// - not empty, at most [`MAX_KEY_BYTES`] bytes, each `/`-separated segment at most [`MAX_SEGMENT_BYTES`];
/// - no leading or trailing `/`, no empty segment (`a//b`), no `.` or `..` segment;
/// - no backslash, no NUL or other control character (C0, DEL, C1);
/// - no segment ending like a Windows drive letter (`c:`, `ab|`), which URL parsing rewrites;
/// - no file name (last segment) ending in `#` + digits, which the local adapter reserves for staging files.
///
/// So a key can never name a file outside the local adapter's root, and means the same object on every backend.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey(String);

impl StorageKey {
    /// Validates `key`; the error names the key and the broken rule.
    pub fn parse(key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        match check(&key) {
            Ok(()) => Ok(Self(key)),
            Err(reason) => Err(Error::InvalidKey {
                key: printable(&key),
                reason,
            }),
        }
    }

    /// Joins validated segments under this key (`self/segment`), validating the result.
    pub fn join(&self, segment: &str) -> Result<Self, Error> {
        Self::parse(format!("{}/{}", self.0, segment))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment (the "file name").
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StorageKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for StorageKey {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self, Error> {
        Self::parse(value)
    }
}

impl TryFrom<String> for StorageKey {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        Self::parse(value)
    }
}

fn check(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("empty key");
    }
    if key.len() > MAX_KEY_BYTES {
        return Err("longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return Err("absolute path (leading '/')");
    }
    if key.ends_with('/') {
        return Err("trailing '/'");
    }
    if key.contains('\\') {
        return Err("backslash");
    }
    if key.chars().any(char::is_control) {
        return Err("control character");
    }
    for segment in key.split('/') {
        match segment {
            "" => return Err("empty path segment"),
            "." | ".." => return Err("'.' or '..' segment"),
            _ if segment.len() > MAX_SEGMENT_BYTES => return Err("segment longer than 255 bytes"),
            _ if is_drive_letter(segment) => return Err("segment ends like a drive letter ('c:')"),
            _ => {}
        }
    }
    if key.rsplit('/').next().is_some_and(is_staging_name) {
        return Err("file name ends in '#' and digits (reserved)");
    }
    Ok(())
}

/// URL parsing (which `LocalFileSystem` maps paths through) takes a segment ending in an ASCII letter and `:`
/// or `|` for a Windows drive (`c:`) and rewrites the path around it, so such a key would not round-trip.
/// Found by the property test in `tests/keys.rs` (`t:`, then `ab:` and `x|`).
fn is_drive_letter(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    bytes.len() >= 2
        && bytes[bytes.len() - 2].is_ascii_alphabetic()
        && matches!(bytes[bytes.len() - 1], b':' | b'|')
}

/// `LocalFileSystem` stages writes as `<name>#<n>` and refuses such names as objects.
fn is_staging_name(segment: &str) -> bool {
    match segment.rsplit_once('#') {
        Some((_, suffix)) => !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// A bad key is echoed in errors and logs: escape control characters and cut it short.
fn printable(key: &str) -> String {
    let escaped: String = key.chars().take(200).flat_map(char::escape_debug).collect();
    if key.chars().count() > 200 {
        format!("{escaped}…")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_bad(key: &str, reason: &str) {
        match StorageKey::parse(key) {
            Err(Error::InvalidKey { reason: r, .. }) => assert_eq!(r, reason, "key {key:?}"),
            other => panic!("{key:?} should be rejected for {reason}, got {other:?}"),
        }
    }

    #[test]
    fn bad_keys_are_rejected_with_their_reason() {
        let long_segment = "a".repeat(256);
        let long_key = vec!["abcdefghij"; 100].join("/");
        let table: &[(&str, &str)] = &[
            ("", "empty key"),
            ("/etc/passwd", "absolute path (leading '/')"),
            ("/", "absolute path (leading '/')"),
            ("a/", "trailing '/'"),
            ("a//b", "empty path segment"),
            ("..", "'.' or '..' segment"),
            ("../x", "'.' or '..' segment"),
            ("a/../../x", "'.' or '..' segment"),
            ("a/..", "'.' or '..' segment"),
            (".", "'.' or '..' segment"),
            ("a/./b", "'.' or '..' segment"),
            ("a\\b", "backslash"),
            ("..\\..\\x", "backslash"),
            ("a\0b", "control character"),
            ("a\nb", "control character"),
            ("a\rb", "control character"),
            ("tab\there", "control character"),
            ("del\u{7f}", "control character"),
            ("c1\u{85}x", "control character"),
            ("esc\u{1b}[0m", "control character"),
            (&long_segment, "segment longer than 255 bytes"),
            (&long_key, "longer than 1024 bytes"),
            ("file#1", "file name ends in '#' and digits (reserved)"),
            ("dir/file.jpg#42", "file name ends in '#' and digits (reserved)"),
            ("a/t:", "segment ends like a drive letter ('c:')"),
            ("C|/x", "segment ends like a drive letter ('c:')"),
            ("a/[r:", "segment ends like a drive letter ('c:')"),
            ("photo ab|", "segment ends like a drive letter ('c:')"),
        ];
        assert!(table.len() >= 20);
        for (key, reason) in table {
            check_bad(key, reason);
        }
    }

    #[test]
    fn good_keys_are_kept_verbatim() {
        for key in [
            "users/u1/libraries/l1/originals/A/ABCD.heic",
            "a",
            "video-projects/Film #1/render.mov",
            "名前/写真.jpg",
            "a/b#x/c#",
            "...",
            "a/..b/c..",
            "with space/and%20percent",
            "a:b/é:/12:",
        ] {
            assert_eq!(StorageKey::parse(key).unwrap().as_str(), key);
        }
    }

    #[test]
    fn error_message_escapes_the_key() {
        let err = StorageKey::parse("a\nb/..").unwrap_err().to_string();
        assert!(err.contains("a\\nb"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn join_validates() {
        let base = StorageKey::parse("users/u").unwrap();
        assert_eq!(base.join("x.jpg").unwrap().as_str(), "users/u/x.jpg");
        assert!(base.join("../v").is_err());
        assert_eq!(base.join("x.jpg").unwrap().file_name(), "x.jpg");
    }
}
