//! Validation and normalisation before anything is written, shared by both adapters. Limits are generous
//! for real libraries and exist so that one bad or hostile value cannot fail a whole batch in the database
//! (PostgreSQL rejects NUL in TEXT, a u64 over `i64::MAX` does not fit a column) or bloat the catalog.

use sha2::{Digest, Sha256};

use super::model::{AlbumUpsert, PhotoUpsert};
use super::{Error, Result};

/// Longest accepted `localIdentifier` (and album id), in bytes.
pub const MAX_LOCAL_IDENTIFIER_LEN: usize = 256;
/// Largest accepted declared or stored resource size: 1 TiB.
pub const MAX_RESOURCE_SIZE: u64 = 1 << 40;
/// Largest accepted width or height in pixels (panoramas reach tens of thousands).
const MAX_DIMENSION: u32 = 1_000_000;
/// Longest accepted video: 100 days.
const MAX_DURATION_MS: u64 = 100 * 24 * 3600 * 1000;
const MAX_SHORT: usize = 256;
const MAX_NAME: usize = 1024;
const MAX_TEXT: usize = 16 * 1024;
const MAX_LIST: usize = 1000;

/// Checks a user name: 1..=64 bytes of letters, digits, `.`, `_`, `-`, `@`.
pub(crate) fn user_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            "a user name is 1 to 64 letters, digits, '.', '_', '-' or '@'",
        ))
    }
}

/// Checks a free-text label (token name), 0..=`max` bytes without control characters.
pub(crate) fn label(field: &str, value: &str, max: usize) -> Result<()> {
    text(value, max).map_err(|reason| Error::invalid(field, reason))
}

/// Checks an identifier the client chose (library key, album key): 1..=256 characters, no NUL. Characters,
/// not bytes, as the OpenAPI document's `maxLength` counts them: these keys only live in catalog rows.
pub(crate) fn key(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    characters(value, MAX_LOCAL_IDENTIFIER_LEN).map_err(|reason| Error::invalid(field, reason))
}

/// Lower-case hex SHA-256 (64 characters).
pub(crate) fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Validates one sync item and normalises it (resources sorted by type) so equal content hashes equally.
/// The error is the rejection reason, naming the field.
pub(crate) fn photo(item: &mut PhotoUpsert) -> std::result::Result<(), String> {
    let id = &item.local_identifier;
    if id.is_empty() {
        return Err("localIdentifier: must not be empty".into());
    }
    text(id, MAX_LOCAL_IDENTIFIER_LEN).map_err(|r| format!("localIdentifier: {r}"))?;
    local_identifier(id).map_err(|r| format!("localIdentifier: {r}"))?;
    let optional = [
        ("cloudGuid", &item.cloud_guid, MAX_SHORT),
        ("fingerprint", &item.fingerprint, MAX_SHORT),
        ("subtype", &item.subtype, 64),
        ("timeZone", &item.time_zone, 64),
        ("title", &item.title, MAX_NAME),
        ("caption", &item.caption, MAX_TEXT),
    ];
    for (field, value, max) in optional {
        if let Some(value) = value {
            text(value, max).map_err(|r| format!("{field}: {r}"))?;
        }
    }
    text(&item.original_filename, MAX_NAME).map_err(|r| format!("originalFilename: {r}"))?;
    text(&item.uti, MAX_SHORT).map_err(|r| format!("uti: {r}"))?;
    for (field, list) in [("keywords", &item.keywords), ("people", &item.people)] {
        if list.len() > MAX_LIST {
            return Err(format!("{field}: more than {MAX_LIST} entries"));
        }
        for value in list {
            text(value, MAX_SHORT).map_err(|r| format!("{field}: {r}"))?;
        }
    }
    if item.width > MAX_DIMENSION || item.height > MAX_DIMENSION {
        return Err(format!("width/height: more than {MAX_DIMENSION} pixels"));
    }
    if item.duration_ms.is_some_and(|d| d > MAX_DURATION_MS) {
        return Err("durationMs: longer than 100 days".into());
    }
    if let Some(lat) = item.latitude
        && !(lat.is_finite() && (-90.0..=90.0).contains(&lat))
    {
        return Err(format!("latitude: {lat} is outside -90..=90"));
    }
    if let Some(lon) = item.longitude
        && !(lon.is_finite() && (-180.0..=180.0).contains(&lon))
    {
        return Err(format!("longitude: {lon} is outside -180..=180"));
    }
    item.resources.sort_by_key(|r| r.resource_type);
    for pair in item.resources.windows(2) {
        if pair[0].resource_type == pair[1].resource_type {
            return Err(format!(
                "resources: {} is listed twice",
                pair[0].resource_type.as_str()
            ));
        }
    }
    for resource in &mut item.resources {
        let name = resource.resource_type.as_str();
        if resource.size > MAX_RESOURCE_SIZE {
            return Err(format!("resources.{name}.size: more than 1 TiB"));
        }
        if let Some(sha) = &resource.sha256
            && !is_sha256_hex(sha)
        {
            return Err(format!(
                "resources.{name}.sha256: not 64 lower-case hex characters"
            ));
        }
        if let Some(path) = &resource.bundle_path {
            storage::bundle_path(path).map_err(|e| format!("resources.{name}.bundlePath: {e}"))?;
        }
        if resource.available {
            // A reason only means something for an unavailable resource; drop it so it cannot make an
            // otherwise equal item hash differently.
            resource.unavailable_reason = None;
        }
    }
    Ok(())
}

/// The shape of an identifier that can be uploaded and addressed later: `/`-separated segments (PhotoKit's
/// `<UUID>/L0/001`), none empty, `.` or `..`, no leading `/`, no backslash. Anything else could never be
/// named in an upload URL, so it is rejected at sync rather than left pending for ever.
fn local_identifier(id: &str) -> std::result::Result<(), &'static str> {
    if id.contains('\\') {
        return Err("must not contain a backslash");
    }
    if id.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    if id.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err("must be '/'-separated segments, none empty, '.' or '..' (like <UUID>/L0/001)");
    }
    Ok(())
}

/// SHA-256 (hex) of the normalised item: equal hashes mean nothing the catalog stores has changed.
pub(crate) fn metadata_hash(item: &PhotoUpsert) -> String {
    // serde_json of a struct is deterministic (field order fixed, floats printed shortest-exact).
    let bytes = serde_json::to_vec(item).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// SHA-256 (hex) of an album's stored content, with its members resolved to photo ids (so an album whose
/// unknown members later sync is seen as changed).
pub(crate) fn album_hash(album: &AlbumUpsert, sort_index: i64, member_ids: &[&str]) -> String {
    let mut value = serde_json::json!([album.title, album.kind, album.parent_key, sort_index, member_ids]);
    // Only when there is one, so an album without a GUID hashes as it always did.
    if let (Some(guid), Some(list)) = (&album.cloud_guid, value.as_array_mut()) {
        list.push(guid.as_str().into());
    }
    hex::encode(Sha256::digest(value.to_string().as_bytes()))
}

/// Validates an albums request as a whole (it is applied atomically, so one bad album refuses the call).
pub(crate) fn albums(albums: &[AlbumUpsert]) -> Result<()> {
    let mut keys = std::collections::HashSet::new();
    for (i, album) in albums.iter().enumerate() {
        key(&format!("albums[{i}].albumKey"), &album.album_key)?;
        if !keys.insert(album.album_key.as_str()) {
            return Err(Error::invalid(format!("albums[{i}].albumKey"), "listed twice"));
        }
        characters(&album.title, MAX_NAME)
            .map_err(|reason| Error::invalid(format!("albums[{i}].title"), reason))?;
        if let Some(guid) = &album.cloud_guid {
            key(&format!("albums[{i}].cloudGuid"), guid)?;
        }
        if let Some(parent) = &album.parent_key {
            key(&format!("albums[{i}].parentKey"), parent)?;
            if parent == &album.album_key {
                return Err(Error::invalid(
                    format!("albums[{i}].parentKey"),
                    "an album cannot contain itself",
                ));
            }
        }
        if album.members.len() > 1_000_000 {
            return Err(Error::invalid(
                format!("albums[{i}].members"),
                "more than 1,000,000 members",
            ));
        }
        for member in &album.members {
            if member.is_empty() || characters(member, MAX_LOCAL_IDENTIFIER_LEN).is_err() {
                return Err(Error::invalid(
                    format!("albums[{i}].members"),
                    "an identifier is empty, longer than 256 characters or contains a NUL character",
                ));
            }
        }
    }
    Ok(())
}

/// [`text`] counting characters instead of bytes, for values that only live in catalog rows.
fn characters(value: &str, max: usize) -> std::result::Result<(), String> {
    if value.chars().count() > max {
        return Err(format!("longer than {max} characters"));
    }
    if value.chars().any(|c| c == '\0') {
        return Err("contains a NUL character".into());
    }
    Ok(())
}

fn text(value: &str, max: usize) -> std::result::Result<(), String> {
    if value.len() > max {
        return Err(format!("longer than {max} bytes"));
    }
    if value.chars().any(|c| c == '\0') {
        return Err("contains a NUL character".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_is_strict() {
        assert!(is_sha256_hex(&"a".repeat(64)));
        assert!(!is_sha256_hex(&"A".repeat(64)));
        assert!(!is_sha256_hex(&"a".repeat(63)));
        assert!(!is_sha256_hex(&"g".repeat(64)));
    }

    #[test]
    fn identifiers_that_could_never_be_uploaded_are_refused() {
        for good in ["9F6A1B2C-0000-4000-8000-000000000001/L0/001", "abc", "U/L0/002"] {
            assert!(local_identifier(good).is_ok(), "{good}");
        }
        for bad in [
            "../x",
            "/etc/passwd",
            ".",
            "",
            "a\u{7}b",
            "a\\b",
            "a//b",
            "U/L0/",
            "U/./x",
        ] {
            assert!(local_identifier(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn client_keys_and_album_fields_count_characters_not_bytes() {
        let accented = "é".repeat(256);
        assert!(key("albumKey", &accented).is_ok(), "256 characters, 512 bytes");
        assert!(key("albumKey", &"a".repeat(257)).is_err());
        assert!(key("albumKey", "").is_err());
        assert!(key("albumKey", "a\0b").is_err());
        let album = |title: String, member: &str| AlbumUpsert {
            album_key: "A".into(),
            title,
            kind: super::super::AlbumKind::Album,
            parent_key: Some(accented.clone()),
            members: vec![member.to_owned()],
            cloud_guid: None,
        };
        assert!(albums(&[album("é".repeat(1024), &accented)]).is_ok());
        assert!(albums(&[album("é".repeat(1025), "m")]).is_err());
        assert!(albums(&[album(String::new(), &"a".repeat(257))]).is_err());
        assert!(
            albums(&[album(String::new(), "a\0")]).is_err(),
            "PostgreSQL refuses NUL in TEXT"
        );
    }

    #[test]
    fn user_names() {
        assert!(user_name("alice@example.org").is_ok());
        assert!(user_name("").is_err());
        assert!(user_name("a b").is_err());
        assert!(user_name(&"a".repeat(65)).is_err());
    }
}
