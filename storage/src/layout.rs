//! Where things live in the bucket: the one place that formats keys.
//!
//! Originals keep the Photos bundle layout (`originals/<X>/<UUID>.<ext>`, X = the UUID's first character, the
//! Live Photo video as `<UUID>_3.mov`), so the `originals/` prefix of a library can be mounted as a Photos
//! library's own `originals/` folder: one copy in the bucket serves both the server and the Mac.
//!
//! ```text
//! users/<user>/libraries/<library>/<bundle path>          originals/<X>/<UUID>.<ext>, resources/renders/…
//! users/<user>/libraries/<library>/content/<aa>/<sha256>.<ext>
//! users/<user>/libraries/<library>/derivatives/<kind>/<X>/<UUID>.<ext>
//! ```
//!
//! Objects are immutable (see `ARCHITECTURE.md`, "Nothing lost"): a key names one content for ever. A resource
//! the Mac declares with its bundle path (`ZDIRECTORY`/`ZFILENAME` as Photos lays them out) is stored exactly
//! there, so an agent sync, `seed-originals` and a mount of `originals/` share one object. Everything else —
//! a plain folder's files, or new content for a bundle path already holding other bytes — goes to a
//! content-addressed key, which by construction can only ever hold those bytes. No key is built from a
//! `localIdentifier`, so two identifiers can never share one.

use crate::digest::Sha256Digest;
use crate::error::Error;
use crate::key::StorageKey;

/// The key prefix of one library of one user. Every key it makes is under `users/<user>/`, so a key built for
/// one user can never name another user's object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryLayout {
    root: StorageKey,
}

impl LibraryLayout {
    /// The layout of `library` of `user`; both must be single, valid key segments.
    pub fn new(user: &str, library: &str) -> Result<Self, Error> {
        let user = segment("user id", user)?;
        let library = segment("library id", library)?;
        Ok(Self {
            root: StorageKey::parse(format!("users/{user}/libraries/{library}"))?,
        })
    }

    /// The prefix every object of every library of `user` is under.
    pub fn user_prefix(user: &str) -> Result<StorageKey, Error> {
        StorageKey::parse(format!("users/{}", segment("user id", user)?))
    }

    /// `uploads/<user>/<id>`: the staging of resumable upload `id` of `user` (its tails on S3, its staging
    /// file on the local backend). Outside `users/`, where the garbage collector looks for unreferenced
    /// objects: the collector removes a staging prefix only when its upload expires.
    pub fn upload_staging(user: &str, id: &str) -> Result<StorageKey, Error> {
        StorageKey::parse(format!(
            "uploads/{}/{}",
            segment("user id", user)?,
            segment("upload id", id)?
        ))
    }

    /// `…/libraries/<library>`: the prefix of everything of this library.
    pub fn root(&self) -> &StorageKey {
        &self.root
    }

    /// `…/originals`: the prefix a mount serves as the library's `originals/` folder.
    pub fn originals_prefix(&self) -> Result<StorageKey, Error> {
        self.root.join("originals")
    }

    /// `…/<path>`: a file at its path inside the Photos bundle (`originals/3/<UUID>.jpeg`), as the agent
    /// read it from `ZDIRECTORY`/`ZFILENAME`. The path must be relative, of valid segments (no `.`, `..`,
    /// empty segment, backslash or control character), and at most [`MAX_BUNDLE_PATH`] bytes.
    pub fn bundle(&self, path: &str) -> Result<StorageKey, Error> {
        bundle_path(path)?;
        self.root.join(path)
    }

    /// `…/content/<aa>/<sha256>.<ext>`: the content-addressed key of bytes hashing to `sha256`. Such a key can
    /// only ever hold those bytes, so writing it twice never replaces anything.
    pub fn content(&self, sha256: &Sha256Digest, ext: &str) -> Result<StorageKey, Error> {
        let hex = sha256.to_hex();
        StorageKey::parse(format!(
            "{}/content/{}/{hex}.{}",
            self.root,
            &hex[..2],
            extension(ext)?
        ))
    }

    /// `…/incoming/<id>.<ext>`: where an upload whose digest is not known in advance is written (under a
    /// fresh `id`, so no two uploads share one) before it is moved to its content key. Anything left here
    /// by a crash is unreferenced, and the garbage collector removes it after the grace period.
    pub fn incoming(&self, id: &str, ext: &str) -> Result<StorageKey, Error> {
        let id = segment("upload id", id)?;
        StorageKey::parse(format!("{}/incoming/{id}.{}", self.root, extension(ext)?))
    }

    /// Whether `key` is one of this library's [`incoming`](Self::incoming) keys.
    pub fn is_incoming(&self, key: &StorageKey) -> bool {
        key.as_str()
            .strip_prefix(self.root.as_str())
            .is_some_and(|rest| rest.starts_with("/incoming/"))
    }

    /// `…/originals/<X>/<UUID>.<ext>`, `ext` lower-cased as Photos writes it.
    pub fn original(&self, uuid: &str, ext: &str) -> Result<StorageKey, Error> {
        self.bundle_path("originals", uuid, &format!(".{}", extension(ext)?))
    }

    /// `…/originals/<X>/<UUID>_3.mov`: the paired video of a Live Photo.
    pub fn live_video(&self, uuid: &str) -> Result<StorageKey, Error> {
        self.bundle_path("originals", uuid, "_3.mov")
    }

    /// `…/renders/<X>/<UUID>.<ext>`: the edited version Photos shows.
    pub fn render(&self, uuid: &str, ext: &str) -> Result<StorageKey, Error> {
        self.bundle_path("renders", uuid, &format!(".{}", extension(ext)?))
    }

    /// `…/derivatives/<kind>/<X>/<UUID>.<ext>`: what workers make (thumbnails, posters).
    pub fn derivative(&self, kind: &str, uuid: &str, ext: &str) -> Result<StorageKey, Error> {
        let kind = segment("derivative kind", kind)?;
        self.bundle_path(
            &format!("derivatives/{kind}"),
            uuid,
            &format!(".{}", extension(ext)?),
        )
    }

    fn bundle_path(&self, area: &str, uuid: &str, suffix: &str) -> Result<StorageKey, Error> {
        let uuid = segment("asset UUID", uuid)?;
        let first = uuid.chars().next().map(|c| c.to_ascii_uppercase()).unwrap_or('0');
        StorageKey::parse(format!("{}/{area}/{first}/{uuid}{suffix}", self.root))
    }
}

/// Longest accepted bundle path, in bytes.
pub const MAX_BUNDLE_PATH: usize = 512;

/// Checks a path inside a Photos bundle as the agent sends it: relative, at most [`MAX_BUNDLE_PATH`] bytes,
/// `/`-separated segments none of which is empty, `.` or `..`, without backslashes or control characters.
pub fn bundle_path(path: &str) -> Result<(), Error> {
    let bad = |reason| Error::InvalidKey {
        key: path.escape_debug().to_string(),
        reason,
    };
    if path.is_empty() || path.len() > MAX_BUNDLE_PATH {
        return Err(bad("a bundle path is 1 to 512 bytes"));
    }
    if path.contains('\\') {
        return Err(bad("a bundle path uses '/', not backslashes"));
    }
    if path.starts_with('/') {
        return Err(bad("a bundle path is relative to the bundle"));
    }
    if path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(bad("a bundle path has no empty, '.' or '..' segment"));
    }
    StorageKey::parse(path).map(|_| ())
}

/// One path segment: no `/`, and whatever [`StorageKey`] refuses.
fn segment<'a>(what: &'static str, value: &'a str) -> Result<&'a str, Error> {
    if value.contains('/') {
        return Err(Error::InvalidKey {
            key: value.escape_debug().to_string(),
            reason: invalid(what),
        });
    }
    StorageKey::parse(value)?;
    Ok(value)
}

fn extension(ext: &str) -> Result<String, Error> {
    let ext = ext.trim_start_matches('.');
    if ext.is_empty() || ext.len() > 16 || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::InvalidKey {
            key: ext.escape_debug().to_string(),
            reason: "bad file extension",
        });
    }
    Ok(ext.to_ascii_lowercase())
}

fn invalid(what: &'static str) -> &'static str {
    match what {
        "user id" => "user id contains '/'",
        "library id" => "library id contains '/'",
        "asset UUID" => "asset UUID contains '/'",
        _ => "segment contains '/'",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn originals_follow_the_photos_bundle() {
        let l = LibraryLayout::new("u1", "lib").unwrap();
        let uuid = "9F6A1B2C-0000-4000-8000-000000000001";
        assert_eq!(
            l.original(uuid, "HEIC").unwrap().as_str(),
            format!("users/u1/libraries/lib/originals/9/{uuid}.heic")
        );
        assert_eq!(
            l.live_video(uuid).unwrap().as_str(),
            format!("users/u1/libraries/lib/originals/9/{uuid}_3.mov")
        );
        assert_eq!(
            l.derivative("thumbnail", "abc", "jpg").unwrap().as_str(),
            "users/u1/libraries/lib/derivatives/thumbnail/A/abc.jpg"
        );
        assert_eq!(
            l.render("abc", ".jpeg").unwrap().as_str(),
            "users/u1/libraries/lib/renders/A/abc.jpeg"
        );
        assert_eq!(
            l.originals_prefix().unwrap().as_str(),
            "users/u1/libraries/lib/originals"
        );
    }

    #[test]
    fn bundle_and_content_keys() {
        let l = LibraryLayout::new("u1", "lib").unwrap();
        assert_eq!(
            l.bundle("originals/3/X.jpeg").unwrap().as_str(),
            "users/u1/libraries/lib/originals/3/X.jpeg"
        );
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "originals/../../x",
            ".",
            "a//b",
            "a\\b",
            "a/\u{1}b",
        ] {
            assert!(l.bundle(bad).is_err(), "{bad:?} accepted");
        }
        let sha = Sha256Digest::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(
            l.content(&sha, "JPG").unwrap().as_str(),
            format!("users/u1/libraries/lib/content/ab/{}.jpg", "ab".repeat(32))
        );
        assert!(l.content(&sha, "j/pg").is_err());
    }

    #[test]
    fn ids_cannot_escape_their_user() {
        assert!(LibraryLayout::new("u1/../u2", "lib").is_err());
        assert!(LibraryLayout::new("..", "lib").is_err());
        assert!(LibraryLayout::new("u1", "").is_err());
        let l = LibraryLayout::new("u1", "lib").unwrap();
        assert!(l.original("../../x", "jpg").is_err());
        assert!(l.original("abc", "j/pg").is_err());
        assert!(l.original("abc", "").is_err());
        assert!(LibraryLayout::user_prefix("a/b").is_err());
    }
}
