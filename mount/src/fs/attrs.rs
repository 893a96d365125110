//! A file's mtime and extended attributes, stored with its object (see `storage::ObjectAttributes`): read
//! with the HEAD that fixes a file's version, changed by staging the file in the journal, whose upload
//! stores them with the bytes. A stored file whose attributes change is therefore uploaded again (object
//! stores cannot change an object's metadata in place).
//!
//! Names under `user.iphoto.` are the mount's own (answered by the front end, never stored) and cannot be
//! set. Directories have no object to keep attributes with: they have none, and `utimes` on them is
//! accepted and changes nothing.

use std::time::SystemTime;

use storage::{METADATA_LIMIT, ObjectAttributes};

use crate::error::{Error, Result};
use crate::fs::{Attr, Fs, Kind};

/// The prefix of the mount's own attributes.
pub const RESERVED_PREFIX: &str = "user.iphoto.";

/// Namespaces the kernel keeps for itself (ACLs, security labels): never stored, and answered without a
/// request (`ls -l` asks for `security.selinux` and `system.posix_acl_access` of every entry).
const SYSTEM_NAMESPACES: [&str; 3] = ["security.", "system.", "trusted."];

fn is_system(name: &str) -> bool {
    SYSTEM_NAMESPACES.iter().any(|p| name.starts_with(p))
}

/// How `setxattr` treats an attribute that exists (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetMode {
    /// Fail with EEXIST when the attribute exists (`XATTR_CREATE`).
    pub create_only: bool,
    /// Fail with ENODATA when it does not (`XATTR_REPLACE`).
    pub replace_only: bool,
}

impl Fs {
    /// The attributes an entry has now: its staged ones while it waits in the journal, else the stored
    /// ones (a HEAD when they are older than the TTL). `None` for a directory.
    async fn current_attributes(&self, ino: u64) -> Result<Option<ObjectAttributes>> {
        let attr = self.getattr(ino).await?;
        if attr.kind == Kind::Directory {
            return Ok(None);
        }
        self.ensure_attributes(ino).await?;
        let key = self.table().get(ino).and_then(|i| i.key.clone());
        if let (Some(key), Some(journal)) = (key, self.journal.get())
            && let Some((id, _)) = journal.find(&key)
            && let Some(attributes) = journal.attributes(id)
        {
            return Ok(Some(attributes));
        }
        Ok(Some(
            self.table()
                .get(ino)
                .and_then(|i| i.attributes.clone())
                .unwrap_or_default(),
        ))
    }

    /// The value of attribute `name` of an entry.
    pub async fn getxattr(&self, ino: u64, name: &str) -> Result<Vec<u8>> {
        if is_system(name) {
            return Err(Error::NoAttribute {
                name: name.to_owned(),
            });
        }
        self.current_attributes(ino)
            .await?
            .and_then(|mut a| a.xattrs.remove(name))
            .ok_or_else(|| Error::NoAttribute {
                name: name.to_owned(),
            })
    }

    /// The names of an entry's attributes.
    pub async fn listxattr(&self, ino: u64) -> Result<Vec<String>> {
        Ok(self
            .current_attributes(ino)
            .await?
            .map(|a| a.xattrs.into_keys().collect())
            .unwrap_or_default())
    }

    /// Sets attribute `name` of a file; stored with the object by its next upload. Past the store's
    /// metadata limit it fails with E2BIG and nothing changes.
    pub async fn setxattr(&self, ino: u64, name: &str, value: &[u8], mode: SetMode) -> Result<()> {
        if name.starts_with(RESERVED_PREFIX) {
            return Err(Error::ReadOnlyAttribute {
                name: name.to_owned(),
            });
        }
        if is_system(name) {
            return Err(Error::Unsupported {
                what: "security, system and trusted attributes",
            });
        }
        self.change_attributes(ino, "setting an extended attribute", |attributes| {
            let exists = attributes.xattrs.contains_key(name);
            if mode.create_only && exists {
                return Err(Error::Exists {
                    name: name.to_owned(),
                });
            }
            if mode.replace_only && !exists {
                return Err(Error::NoAttribute {
                    name: name.to_owned(),
                });
            }
            attributes.xattrs.insert(name.to_owned(), value.to_vec());
            Ok(())
        })
        .await
    }

    /// Removes attribute `name` of a file.
    pub async fn removexattr(&self, ino: u64, name: &str) -> Result<()> {
        self.change_attributes(ino, "removing an extended attribute", |attributes| {
            attributes
                .xattrs
                .remove(name)
                .map(|_| ())
                .ok_or_else(|| Error::NoAttribute {
                    name: name.to_owned(),
                })
        })
        .await
    }

    /// Sets a file's mtime (`utimes`, `touch`, `cp -p`); stored with the object by its next upload. A
    /// directory's is accepted and not kept.
    pub async fn set_mtime(&self, ino: u64, mtime: SystemTime) -> Result<Attr> {
        if self.getattr(ino).await?.kind == Kind::File {
            self.change_attributes(ino, "setting the modification time", |attributes| {
                attributes.mtime = Some(mtime.into());
                Ok(())
            })
            .await?;
        }
        self.getattr(ino).await
    }

    /// Stages the file (its bytes first when it is only in the store), applies `change` to the attributes
    /// its upload will store, and makes that durable before returning.
    async fn change_attributes(
        &self,
        ino: u64,
        what: &'static str,
        change: impl FnOnce(&mut ObjectAttributes) -> Result<()>,
    ) -> Result<()> {
        self.check_writable(what)?;
        let attr = self.getattr(ino).await?;
        let name = self.table().get(ino).map(|i| i.name.clone()).unwrap_or_default();
        if attr.kind == Kind::Directory {
            return Err(Error::Unsupported {
                what: "extended attributes of a directory",
            });
        }
        let handle = self.open(ino, true, false).await?.handle;
        let changed = async {
            let file = self.handle(handle)?;
            let id = file.lock().await.staged.ok_or(Error::BadHandle { handle })?;
            let journal = self.journal()?;
            let mut attributes = journal.attributes(id).unwrap_or_default();
            change(&mut attributes)?;
            let bytes = attributes.metadata_len();
            if bytes > METADATA_LIMIT {
                return Err(Error::AttributesTooLarge {
                    name,
                    bytes,
                    limit: METADATA_LIMIT,
                });
            }
            journal.set_attributes(id, attributes)
        }
        .await;
        // Closing the handle seals the entry: the change is durable when this returns.
        let released = self.release(handle).await;
        changed?;
        released
    }
}
