//! Directory operations of the core: a directory's listing (from the store, from the listing the last mount
//! saved, plus the files the journal still holds), lookups in it, and directory handles whose entries stay
//! fixed while they are read.

use std::sync::atomic::Ordering;

use super::{Attr, DirEntry, Fs, Kind, ROOT_INO, listings};
use crate::error::{Error, Result};

impl Fs {
    /// Lists `dir` unless its listing is younger than the TTL.
    pub(super) async fn ensure_listing(&self, dir: u64) -> Result<()> {
        let key = {
            let table = self.table();
            let inode = table.get(dir).ok_or_else(|| Error::NotFound {
                name: format!("inode {dir}"),
            })?;
            if inode.kind != Kind::Directory {
                return Err(Error::NotDirectory {
                    name: inode.name.clone(),
                });
            }
            if table
                .listing(dir)
                .is_some_and(|l| l.fetched.elapsed() < self.config.metadata_ttl)
            {
                return Ok(());
            }
            inode.key.clone()
        };
        // A listing the last mount saved answers while it is younger than the TTL.
        let saved = self
            .saved_listings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key.as_ref().map_or("", |k| k.as_str()));
        if let Some(saved) = saved
            && let Some(fetched) = listings::fresh_instant(saved.fetched_ms, self.config.metadata_ttl)
        {
            self.table().apply_saved(dir, &saved, fetched);
            return Ok(());
        }
        let listing = self.timed("a LIST", self.store.list_dir(key.as_ref())).await?;
        let mut table = self.table();
        table.apply_listing(dir, &listing);
        // Files staged in the journal and not uploaded yet (also those a crashed mount left) are in the
        // directory even though the store does not list them.
        if let Some(journal) = self.journal.get() {
            for staged in journal.keys() {
                let name = match &key {
                    Some(dir_key) => staged
                        .as_str()
                        .strip_prefix(dir_key.as_str())
                        .and_then(|rest| rest.strip_prefix('/')),
                    None => Some(staged.as_str()),
                };
                if let Some(name) = name
                    && !name.contains('/')
                    && table.listing(dir).is_some_and(|l| !l.children.contains_key(name))
                {
                    table.create_local(dir, name, staged.clone(), Kind::File);
                }
            }
        }
        Ok(())
    }

    /// The entry `name` in directory `parent`.
    ///
    /// A stored file whose mtime and attributes were not read yet is asked for them (a HEAD), unless the
    /// directory was just read by an application (`ls -l` then looks up every entry: one LIST answers them
    /// all, showing the store's last write as the mtime).
    pub async fn lookup(&self, parent: u64, name: &str) -> Result<Attr> {
        self.ensure_listing(parent).await?;
        let ino = {
            let table = self.table();
            let listing = table.listing(parent);
            let ino = listing
                .and_then(|l| l.children.get(name).copied())
                .ok_or_else(|| Error::NotFound {
                    name: name.to_owned(),
                })?;
            let inode = table.get(ino).ok_or_else(|| Error::NotFound {
                name: name.to_owned(),
            })?;
            let fetch = inode.kind == Kind::File
                && !inode.local
                && inode.attributes.is_none()
                && !listing.is_some_and(|l| l.enumerated);
            if !fetch {
                return Ok(self.attr_of(ino, inode));
            }
            ino
        };
        self.ensure_attributes(ino).await?;
        self.getattr(ino).await
    }

    /// Opens a directory: its entries are read now and kept for the handle, so offsets stay stable.
    pub async fn opendir(&self, ino: u64) -> Result<u64> {
        self.ensure_listing(ino).await?;
        let entries = {
            let mut table = self.table();
            table.set_enumerated(ino);
            let parent = table.get(ino).map_or(ROOT_INO, |i| i.parent);
            let mut entries = vec![
                DirEntry {
                    ino,
                    name: ".".into(),
                    kind: Kind::Directory,
                },
                DirEntry {
                    ino: parent,
                    name: "..".into(),
                    kind: Kind::Directory,
                },
            ];
            if let Some(listing) = table.listing(ino) {
                for (name, &child) in &listing.children {
                    if let Some(inode) = table.get(child) {
                        entries.push(DirEntry {
                            ino: child,
                            name: name.clone(),
                            kind: inode.kind,
                        });
                    }
                }
            }
            entries
        };
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.dirs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(handle, entries);
        Ok(handle)
    }

    /// Entries of an open directory from `offset` on; each comes with the offset of the entry after it.
    pub fn readdir(&self, handle: u64, offset: u64) -> Result<Vec<(u64, DirEntry)>> {
        let dirs = self
            .dirs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entries = dirs.get(&handle).ok_or(Error::BadHandle { handle })?;
        Ok(entries
            .iter()
            .enumerate()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .map(|(i, e)| (i as u64 + 1, e.clone()))
            .collect())
    }

    /// Closes a directory handle.
    pub fn releasedir(&self, handle: u64) {
        self.dirs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&handle);
    }
}
