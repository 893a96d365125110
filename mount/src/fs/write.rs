//! Changes: create, write, truncate, flush/fsync, unlink, mkdir, rmdir and rename, over the journal.
//!
//! A written file lives in the journal until its upload retires it; reads and attributes of it come from
//! there meanwhile. Directories exist in the store only through their objects, so `mkdir` stores a marker
//! object in the new directory (hidden from listings) that keeps it while it is empty. Rename of a file uploads it first,
//! then copies it server-side and deletes the source; a directory is renamed object by object (see
//! `fs/rename.rs`).

use std::time::Duration;

use bytes::Bytes;
use storage::{ObjectAttributes, PutMode, PutOptions, StorageKey};

use crate::error::{Error, Result};
use crate::fs::inode::DIR_MARKER;
use crate::fs::read::{FileVersion, ReadState};
use crate::fs::{Attr, Fs, Kind};

impl Fs {
    /// The key of `name` in directory `parent`.
    fn child_key(&self, parent: u64, name: &str) -> Result<StorageKey> {
        let parent_key = {
            let table = self.table();
            let inode = table.get(parent).ok_or_else(|| Error::NotFound {
                name: format!("inode {parent}"),
            })?;
            if inode.kind != Kind::Directory {
                return Err(Error::NotDirectory {
                    name: inode.name.clone(),
                });
            }
            inode.key.clone()
        };
        if name == DIR_MARKER {
            return Err(Error::InvalidName {
                name: name.to_owned(),
            });
        }
        let key = match parent_key {
            Some(parent) => parent.join(name),
            None => StorageKey::parse(name),
        };
        key.map_err(|_| Error::InvalidName {
            name: name.to_owned(),
        })
    }

    /// The staged journal entry of a file opened for writing, made now if needed.
    pub(super) async fn stage(
        &self,
        ino: u64,
        version: &FileVersion,
        local: bool,
        truncate: bool,
    ) -> Result<u64> {
        let journal = self.journal()?;
        if let Some(id) = journal.find_and_acquire(&version.key) {
            if truncate {
                journal.truncate(id, 0)?;
                self.table().set_size(ino, 0);
            }
            return Ok(id);
        }
        let mut version = version.clone();
        if local || version.version.is_empty() {
            // A file made here: in the store only if its upload has finished since.
            match self.store_version(ino).await {
                Ok(current) => version = current,
                Err(Error::Store(storage::Error::NotFound { .. })) => version.size = 0,
                Err(e) => return Err(e),
            }
        }
        let base = (!version.version.is_empty()).then(|| version.version.clone());
        if base.is_some() {
            self.ensure_attributes(ino).await?;
        }
        // A stored file keeps its attributes (read with the HEAD that fixed its version) and its mtime until
        // a write moves it.
        let attributes = if base.is_some() {
            let table = self.table();
            let inode = table.get(ino);
            let mut attributes = inode.and_then(|i| i.attributes.clone()).unwrap_or_default();
            if attributes.mtime.is_none() {
                attributes.mtime = inode.map(|i| i.mtime.into());
            }
            attributes
        } else {
            ObjectAttributes::default()
        };
        let id = journal.create(version.key.clone(), base, attributes).await?;
        journal.acquire(id);
        if !truncate && version.size > 0 {
            // The current bytes first, block by block through the cache (never the whole file in memory).
            let mut state = ReadState::default();
            let mut offset = 0;
            let step = u32::try_from(self.config.block_size).unwrap_or(u32::MAX);
            while offset < version.size {
                let window = self.reader.advance(&mut state, offset, step);
                let bytes = self.reader.read(&version, window, offset, step).await?;
                if bytes.is_empty() {
                    break;
                }
                journal.write(id, offset, &bytes).await?;
                offset += bytes.len() as u64;
            }
        }
        if truncate {
            self.table().set_size(ino, 0);
        }
        Ok(id)
    }

    /// Creates and opens a file for writing. An `exclusive` create (`O_CREAT|O_EXCL`, how editing
    /// applications take a lock file) commits at once with a conditional create in the store: when another
    /// mount of the same prefix made the name first, this fails with EEXIST, whatever either listing says.
    pub async fn create(&self, parent: u64, name: &str, exclusive: bool) -> Result<(Attr, u64)> {
        self.check_writable("create")?;
        let key = self.child_key(parent, name)?;
        match self.lookup(parent, name).await {
            Ok(attr) if exclusive => {
                if !self.stored_name_is_gone(parent, name, attr.ino).await? {
                    return Err(Error::Exists {
                        name: name.to_owned(),
                    });
                }
            }
            Ok(attr) => {
                let handle = self.open(attr.ino, true, true).await?.handle;
                return Ok((self.getattr(attr.ino).await?, handle));
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let ino = if exclusive {
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match self
                .timed("a conditional PUT", self.store.put(&key, Bytes::new(), &options))
                .await
            {
                Ok(_) => {}
                Err(Error::Store(storage::Error::AlreadyExists { .. })) => {
                    return Err(Error::Exists {
                        name: name.to_owned(),
                    });
                }
                Err(e) => return Err(e),
            }
            let meta = self.timed("a HEAD", self.store.head(&key)).await?;
            self.table().create_stored(parent, name, &meta)
        } else {
            self.table().create_local(parent, name, key, Kind::File)
        };
        let handle = self.open(ino, true, true).await?.handle;
        Ok((self.getattr(ino).await?, handle))
    }

    /// Whether a name a listing holds, neither made here nor waiting in the journal, is gone from the store
    /// (another mount deleted it since the listing): then it is forgotten and the caller may create it.
    async fn stored_name_is_gone(&self, parent: u64, name: &str, ino: u64) -> Result<bool> {
        let key = {
            let table = self.table();
            match table.get(ino) {
                Some(inode) if !inode.local && inode.kind == Kind::File => inode.key.clone(),
                _ => None,
            }
        };
        let Some(key) = key else { return Ok(false) };
        if self.journal.get().is_some_and(|j| j.find(&key).is_some()) {
            return Ok(false);
        }
        match self.timed("a HEAD", self.store.head(&key)).await {
            Ok(_) => Ok(false),
            Err(Error::Store(storage::Error::NotFound { .. })) => {
                self.table().remove_name(parent, name);
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes at `offset` of a handle opened for writing.
    pub async fn write(&self, handle: u64, offset: u64, data: &[u8]) -> Result<u32> {
        let file = self.handle(handle)?;
        let file = file.lock().await;
        let id = file.staged.ok_or(Error::BadHandle { handle })?;
        let journal = self.journal()?;
        let size = journal.write(id, offset, data).await?;
        self.table().set_size(file.ino, size);
        Ok(u32::try_from(data.len()).unwrap_or(u32::MAX))
    }

    /// Writes at `offset` now, if nothing has to be waited for: the handle is free and the dirty budget has
    /// room (`None` otherwise; then call [`Fs::write`]). A front end calls it where the request arrives, so a
    /// sequential writer's many small writes each cost one wake-up, not two: under load, each wake-up of a
    /// thread can wait milliseconds for a core.
    pub fn try_write(&self, handle: u64, offset: u64, data: &[u8]) -> Option<Result<u32>> {
        let file = self.handle(handle).ok()?;
        let file = file.try_lock().ok()?;
        let id = file.staged?;
        let size = match self.journal.get()?.try_write(id, offset, data)? {
            Ok(size) => size,
            Err(e) => return Some(Err(e)),
        };
        self.table().set_size(file.ino, size);
        Some(Ok(u32::try_from(data.len()).unwrap_or(u32::MAX)))
    }

    /// Makes what a handle wrote durable (fsynced in the journal) and queues its upload: when this returns,
    /// a crash no longer loses it. Called on every `close` (FUSE flush) and `fsync`.
    pub async fn flush(&self, handle: u64) -> Result<()> {
        let file = self.handle(handle)?;
        let file = file.lock().await;
        if let (Some(_), Some(journal)) = (file.staged, self.journal.get())
            && let Some((id, _)) = journal.find(&file.version.key)
        {
            journal.seal(id)?;
        }
        Ok(())
    }

    /// Sets a file's size (truncate or extend); made durable at once.
    pub async fn set_size(&self, ino: u64, size: u64) -> Result<Attr> {
        self.check_writable("truncate")?;
        let handle = self.open(ino, true, size == 0).await?.handle;
        let result = async {
            let file = self.handle(handle)?;
            let key = file.lock().await.version.key.clone();
            let journal = self.journal()?;
            if let Some((id, _)) = journal.find(&key) {
                journal.truncate(id, size)?;
            }
            self.table().set_size(ino, size);
            Ok::<(), Error>(())
        }
        .await;
        let released = self.release(handle).await;
        result?;
        released?;
        self.getattr(ino).await
    }

    /// Makes a directory, kept in the store by a marker object (`dir/.iphoto-dir`) so it exists for other
    /// mounts while empty, and after a restart.
    pub async fn mkdir(&self, parent: u64, name: &str) -> Result<Attr> {
        self.check_writable("mkdir")?;
        let key = self.child_key(parent, name)?;
        match self.lookup(parent, name).await {
            Ok(_) => {
                return Err(Error::Exists {
                    name: name.to_owned(),
                });
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let marker = key.join(DIR_MARKER).map_err(|_| Error::InvalidName {
            name: name.to_owned(),
        })?;
        self.timed(
            "a PUT",
            self.store.put(&marker, Bytes::new(), &PutOptions::default()),
        )
        .await?;
        let ino = {
            let mut table = self.table();
            let ino = table.create_local(parent, name, key, Kind::Directory);
            // In the store now (its marker): listed like any other directory, and gone when another mount
            // removes it.
            table.set_stored(ino);
            ino
        };
        self.getattr(ino).await
    }

    /// Removes a file: from the journal if not uploaded yet, and from the store.
    pub async fn unlink(&self, parent: u64, name: &str) -> Result<()> {
        self.check_writable("unlink")?;
        let attr = self.lookup(parent, name).await?;
        if attr.kind == Kind::Directory {
            return Err(Error::IsDirectory {
                name: name.to_owned(),
            });
        }
        let key = self.child_key(parent, name)?;
        let journal = self.journal()?;
        journal.discard(&key).await;
        self.timed("a DELETE", self.store.delete(&key)).await?;
        self.table().remove_name(parent, name);
        Ok(())
    }

    /// Removes an empty directory.
    pub async fn rmdir(&self, parent: u64, name: &str) -> Result<()> {
        self.check_writable("rmdir")?;
        let attr = self.lookup(parent, name).await?;
        if attr.kind != Kind::Directory {
            return Err(Error::NotDirectory {
                name: name.to_owned(),
            });
        }
        self.ensure_listing(attr.ino).await?;
        let empty = self
            .table()
            .listing(attr.ino)
            .is_none_or(|l| l.children.is_empty());
        if !empty {
            return Err(Error::NotEmpty {
                name: name.to_owned(),
            });
        }
        let marker = self
            .child_key(parent, name)?
            .join(DIR_MARKER)
            .map_err(|_| Error::InvalidName {
                name: name.to_owned(),
            })?;
        self.timed("a DELETE", self.store.delete(&marker)).await?;
        self.table().remove_name(parent, name);
        Ok(())
    }

    /// Renames a file: its pending upload finishes first, then a server-side copy and a delete.
    pub async fn rename(&self, parent: u64, name: &str, new_parent: u64, new_name: &str) -> Result<()> {
        self.check_writable("rename")?;
        let attr = self.lookup(parent, name).await?;
        let from = self.child_key(parent, name)?;
        let to = self.child_key(new_parent, new_name)?;
        if attr.kind == Kind::Directory {
            return self
                .rename_dir(attr.ino, (parent, name), (new_parent, new_name), (from, to))
                .await;
        }
        let journal = self.journal()?;
        journal
            .flush(
                Some(&from),
                self.config.request_timeout.max(Duration::from_secs(60)),
            )
            .await?;
        self.timed("a COPY", self.store.copy(&from, &to)).await?;
        self.timed("a DELETE", self.store.delete(&from)).await?;
        self.table().rename(attr.ino, new_parent, new_name, to);
        Ok(())
    }
}
