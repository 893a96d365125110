//! What a file system keeps with an object besides its bytes: its modification time and its extended
//! attributes, stored as the object's own metadata so they travel with it (copies keep them).
//!
//! On S3 they are user metadata (`x-amz-meta-mtime`, in rclone's format: Unix seconds with a fraction, and
//! `x-amz-meta-xattrs`, the attributes packed and base64-encoded), read back with a HEAD. On the local
//! backend the mtime is the file's own modification time (so listings show it) and the attributes are one
//! extended attribute of the file (`user.iphoto.xattrs`, same packing). Both enforce S3's limit of
//! [`METADATA_LIMIT`] bytes of user metadata per object, so what fits on one backend fits on the other.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use object_store::{Attribute, AttributeValue, Attributes};

use crate::error::{Error, Result};
use crate::key::StorageKey;
use crate::store::Store;

/// Bytes of user metadata (names and values) an object may carry: S3's limit.
pub const METADATA_LIMIT: usize = 2048;

/// The metadata key of the modification time.
const MTIME: &str = "mtime";
/// The metadata key of the packed extended attributes.
const XATTRS: &str = "xattrs";
/// The local backend's extended attribute holding the packed attributes.
const LOCAL_XATTR: &str = "user.iphoto.xattrs";

/// An object's file-system attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectAttributes {
    /// The modification time a file system set (`None`: the store's last write is the mtime).
    pub mtime: Option<DateTime<Utc>>,
    /// Extended attributes by name, values as bytes.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl ObjectAttributes {
    /// The metadata entries (name, value) stored for these attributes.
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        let mut entries = Vec::new();
        if let Some(mtime) = self.mtime {
            entries.push((MTIME, format_mtime(mtime)));
        }
        if !self.xattrs.is_empty() {
            entries.push((XATTRS, self.packed_xattrs()));
        }
        entries
    }

    /// Bytes of user metadata these attributes take (names and values, as S3 counts them).
    pub fn metadata_len(&self) -> usize {
        self.metadata().iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// [`Error::MetadataTooLarge`] past [`METADATA_LIMIT`].
    pub fn check_limit(&self, key: &StorageKey) -> Result<()> {
        let bytes = self.metadata_len();
        if bytes > METADATA_LIMIT {
            return Err(Error::MetadataTooLarge {
                key: key.to_string(),
                bytes,
                limit: METADATA_LIMIT,
            });
        }
        Ok(())
    }

    /// `u16` name length, name, `u32` value length, value, for each attribute; base64.
    fn packed_xattrs(&self) -> String {
        let mut packed = Vec::new();
        for (name, value) in &self.xattrs {
            packed.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_be_bytes());
            packed.extend_from_slice(name.as_bytes());
            packed.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_be_bytes());
            packed.extend_from_slice(value);
        }
        base64::engine::general_purpose::STANDARD.encode(packed)
    }

    /// The attributes [`ObjectAttributes::packed_xattrs`] packed; `None` when the text is not such a packing.
    fn unpack_xattrs(text: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let packed = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?;
        let mut xattrs = BTreeMap::new();
        let mut rest = packed.as_slice();
        while !rest.is_empty() {
            let (len, tail) = rest.split_first_chunk::<2>()?;
            let (name, tail) = tail.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
            let (len, tail) = tail.split_first_chunk::<4>()?;
            let (value, tail) = tail.split_at_checked(usize::try_from(u32::from_be_bytes(*len)).ok()?)?;
            xattrs.insert(String::from_utf8(name.to_vec()).ok()?, value.to_vec());
            rest = tail;
        }
        Some(xattrs)
    }

    /// As object_store attributes, for a put.
    pub(crate) fn to_attributes(&self) -> Attributes {
        let mut attributes = Attributes::new();
        for (name, value) in self.metadata() {
            attributes.insert(Attribute::Metadata(name.into()), AttributeValue::from(value));
        }
        attributes
    }

    /// From the metadata a HEAD returned; entries it cannot read are skipped (with a warning), never fatal.
    pub(crate) fn from_attributes(attributes: &Attributes) -> Self {
        Self::from_metadata(
            attributes
                .iter()
                .filter_map(|(attribute, value)| match attribute {
                    Attribute::Metadata(name) => Some((name.as_ref(), value.as_ref())),
                    _ => None,
                }),
        )
    }

    /// From metadata entries (name, value) as [`ObjectAttributes::metadata`] gives them; other names are
    /// ignored, unreadable values skipped.
    pub fn from_metadata<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut parsed = Self::default();
        for (name, value) in entries {
            match name.to_ascii_lowercase().as_str() {
                MTIME => parsed.mtime = parse_mtime(value),
                XATTRS => match Self::unpack_xattrs(value) {
                    Some(xattrs) => parsed.xattrs = xattrs,
                    None => tracing::warn!("skipping unreadable extended attributes in object metadata"),
                },
                _ => {}
            }
        }
        parsed
    }
}

/// `1700000000.123456789`: Unix seconds and nanoseconds, as rclone writes `X-Amz-Meta-Mtime`.
fn format_mtime(mtime: DateTime<Utc>) -> String {
    format!("{}.{:09}", mtime.timestamp(), mtime.timestamp_subsec_nanos())
}

/// Reads [`format_mtime`]'s form, also without a fraction (or with a shorter one, as rclone may write).
fn parse_mtime(text: &str) -> Option<DateTime<Utc>> {
    let (seconds, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let seconds: i64 = seconds.parse().ok()?;
    let nanos = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().take(9).collect();
        let scale = 10u32.pow(9 - u32::try_from(digits.len()).ok()?);
        digits.parse::<u32>().ok()? * scale
    };
    DateTime::from_timestamp(seconds, nanos)
}

impl Store {
    /// An object's metadata and its file-system attributes (one HEAD on S3; a stat and a getxattr of the
    /// file on the local backend).
    pub async fn head_attributes(&self, key: &StorageKey) -> Result<(crate::ObjectMeta, ObjectAttributes)> {
        match self.local_path(key) {
            Some(file) => {
                let meta = self.head(key).await?;
                let attributes = tokio::task::spawn_blocking(move || local_read(&file))
                    .await
                    .map_err(|source| Error::Backend {
                        key: key.to_string(),
                        source: object_store::Error::JoinError { source },
                    })?;
                let mut attributes = attributes.map_err(|e| local_error(key, e))?;
                attributes.mtime = Some(meta.last_modified);
                Ok((meta, attributes))
            }
            None => {
                let options = object_store::GetOptions {
                    head: true,
                    ..Default::default()
                };
                let result = self
                    .inner
                    .objects
                    .get_opts(&crate::store::path(key), options)
                    .await
                    .map_err(|e| Error::from_backend(key.as_str(), e))?;
                let meta = crate::store::meta(key.clone(), &result.meta);
                Ok((meta, ObjectAttributes::from_attributes(&result.attributes)))
            }
        }
    }

    /// The local backend's root; `None` on the others.
    pub(crate) fn local_path_of_root(&self) -> Option<&std::path::Path> {
        self.inner.staging_root.as_deref()
    }

    /// The file of `key` on the local backend; `None` on the others.
    pub(crate) fn local_path(&self, key: &StorageKey) -> Option<std::path::PathBuf> {
        self.inner
            .staging_root
            .as_ref()
            .map(|root| root.join(key.as_str()))
    }

    /// Gives the local backend's file of `key` these attributes (after it was written). No-op elsewhere:
    /// S3 takes them with the write itself.
    pub(crate) async fn apply_local_attributes(
        &self,
        key: &StorageKey,
        attributes: &ObjectAttributes,
    ) -> Result<()> {
        let Some(file) = self.local_path(key) else {
            return Ok(());
        };
        let attributes = attributes.clone();
        let applied = tokio::task::spawn_blocking(move || local_write(&file, &attributes))
            .await
            .map_err(|source| Error::Backend {
                key: key.to_string(),
                source: object_store::Error::JoinError { source },
            })?;
        applied.map_err(|e| local_error(key, e))
    }
}

fn local_error(key: &StorageKey, source: std::io::Error) -> Error {
    if source.kind() == std::io::ErrorKind::NotFound {
        return Error::NotFound { key: key.to_string() };
    }
    Error::Backend {
        key: key.to_string(),
        source: object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(source),
        },
    }
}

/// The "no such attribute" answer: ENODATA on Linux, ENOATTR on the BSDs and macOS.
fn no_attribute(errno: rustix::io::Errno) -> bool {
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    {
        errno == rustix::io::Errno::NOATTR
    }
    #[cfg(not(any(target_os = "macos", target_os = "ios", target_os = "freebsd")))]
    {
        errno == rustix::io::Errno::NODATA
    }
}

fn local_read(file: &std::path::Path) -> std::io::Result<ObjectAttributes> {
    let mut value = vec![0u8; METADATA_LIMIT * 2];
    let xattrs = match rustix::fs::getxattr(file, LOCAL_XATTR, &mut value[..]) {
        Ok(len) => std::str::from_utf8(&value[..len])
            .ok()
            .and_then(ObjectAttributes::unpack_xattrs)
            .unwrap_or_default(),
        Err(e) if no_attribute(e) => BTreeMap::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(ObjectAttributes { mtime: None, xattrs })
}

fn local_write(file: &std::path::Path, attributes: &ObjectAttributes) -> std::io::Result<()> {
    if attributes.xattrs.is_empty() {
        match rustix::fs::removexattr(file, LOCAL_XATTR) {
            Ok(()) => {}
            Err(e) if no_attribute(e) => {}
            Err(e) => return Err(e.into()),
        }
    } else {
        rustix::fs::setxattr(
            file,
            LOCAL_XATTR,
            attributes.packed_xattrs().as_bytes(),
            rustix::fs::XattrFlags::empty(),
        )?;
    }
    if let Some(mtime) = attributes.mtime {
        std::fs::File::options()
            .write(true)
            .open(file)?
            .set_modified(mtime.into())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_through_metadata() {
        let mut xattrs = BTreeMap::new();
        xattrs.insert("user.com.apple.FinderInfo".to_owned(), vec![0, 1, 2, 255]);
        xattrs.insert("user.empty".to_owned(), Vec::new());
        let attributes = ObjectAttributes {
            mtime: DateTime::from_timestamp(1_600_000_000, 123_456_789),
            xattrs,
        };
        let back = ObjectAttributes::from_attributes(&attributes.to_attributes());
        assert_eq!(back, attributes);
        assert_eq!(
            parse_mtime("1600000000.5"),
            DateTime::from_timestamp(1_600_000_000, 500_000_000)
        );
        assert_eq!(
            parse_mtime("1600000000"),
            DateTime::from_timestamp(1_600_000_000, 0)
        );
        assert_eq!(parse_mtime("soon"), None);
    }

    #[test]
    fn the_limit_counts_names_and_values() {
        let key = StorageKey::parse("a").unwrap();
        let mut attributes = ObjectAttributes::default();
        attributes.xattrs.insert("user.big".into(), vec![7; 1400]);
        assert!(attributes.check_limit(&key).is_ok());
        attributes.xattrs.insert("user.more".into(), vec![7; 200]);
        match attributes.check_limit(&key) {
            Err(Error::MetadataTooLarge { bytes, limit, .. }) => {
                assert!(bytes > limit);
                assert_eq!(limit, METADATA_LIMIT);
            }
            other => panic!("{other:?}"),
        }
    }
}
