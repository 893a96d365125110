//! The inode table and the listing cache: which inode number is which key, what each directory held when it
//! was last listed, and when that was.
//!
//! Inode numbers are never reused within a mount, so a handle or the kernel never reaches another file by
//! an old number. A directory's listing is trusted for the metadata TTL; after that the next lookup lists it
//! again (one LIST for the whole directory, not one HEAD per entry).

use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime};

use storage::{DirListing, ObjectAttributes, ObjectMeta, StorageKey};

/// The object that keeps an empty directory in the store (`dir/.iphoto-dir`): object stores have no
/// directories, only keys. Never shown in a listing; a file cannot be made under this name.
pub const DIR_MARKER: &str = ".iphoto-dir";

use crate::fs::listings::{self, SavedEntry, SavedListing};

/// The root directory's inode number (FUSE's convention).
pub const ROOT_INO: u64 = 1;

/// File or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file: one object.
    File,
    /// A directory: a key prefix.
    Directory,
}

/// One entry of the table.
#[derive(Debug, Clone)]
pub(crate) struct Inode {
    pub(crate) parent: u64,
    pub(crate) name: String,
    /// The object key (files) or key prefix (directories); `None` only for the root without a prefix.
    pub(crate) key: Option<StorageKey>,
    pub(crate) kind: Kind,
    pub(crate) size: u64,
    /// ETag, or size + mtime when the store gives none: what cached blocks are keyed by.
    pub(crate) version: String,
    pub(crate) mtime: SystemTime,
    /// When the attributes were last confirmed by the store.
    pub(crate) checked: Instant,
    /// Attributes must be fetched again before use (our own upload changed the object).
    pub(crate) expired: bool,
    /// Made here and not (yet) in the store: kept across listings (a new file or an empty directory).
    pub(crate) local: bool,
    /// The stored mtime and extended attributes of this version, once a HEAD read them (`None`: not yet;
    /// a listing does not carry them on S3).
    pub(crate) attributes: Option<ObjectAttributes>,
}

/// A directory's children as last listed.
#[derive(Debug, Clone)]
pub(crate) struct Listing {
    pub(crate) children: BTreeMap<String, u64>,
    /// An application read this listing as a directory (`ls`): the lookups of its entries that follow are
    /// answered from it without a HEAD each.
    pub(crate) enumerated: bool,
    pub(crate) fetched: Instant,
    /// The same moment as Unix milliseconds, for the persistent listing cache.
    pub(crate) fetched_ms: u64,
}

/// Inodes, names and listings.
#[derive(Debug)]
pub(crate) struct InodeTable {
    inodes: HashMap<u64, Inode>,
    by_name: HashMap<(u64, String), u64>,
    listings: HashMap<u64, Listing>,
    next: u64,
    /// Bumped by every change of a listing: the persistent cache is written only when it moved.
    changes: u64,
}

/// The version string blocks are keyed by.
pub(crate) fn version_of(meta: &ObjectMeta) -> String {
    match &meta.etag {
        Some(etag) => etag.clone(),
        None => format!(
            "{}-{}",
            meta.size,
            meta.last_modified.timestamp_nanos_opt().unwrap_or(0)
        ),
    }
}

impl InodeTable {
    /// A table holding only the root, keyed by `prefix`.
    pub(crate) fn new(prefix: Option<StorageKey>) -> Self {
        let root = Inode {
            parent: ROOT_INO,
            name: String::new(),
            key: prefix,
            kind: Kind::Directory,
            size: 0,
            version: String::new(),
            mtime: SystemTime::UNIX_EPOCH,
            checked: Instant::now(),
            expired: false,
            local: false,
            attributes: None,
        };
        Self {
            inodes: HashMap::from([(ROOT_INO, root)]),
            by_name: HashMap::new(),
            listings: HashMap::new(),
            next: ROOT_INO + 1,
            changes: 0,
        }
    }

    pub(crate) fn get(&self, ino: u64) -> Option<&Inode> {
        self.inodes.get(&ino)
    }

    pub(crate) fn listing(&self, ino: u64) -> Option<&Listing> {
        self.listings.get(&ino)
    }

    /// Updates a file's attributes from a HEAD.
    pub(crate) fn update_file(&mut self, ino: u64, meta: &ObjectMeta) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.size = meta.size;
            inode.version = version_of(meta);
            inode.mtime = meta.last_modified.into();
            inode.checked = Instant::now();
            inode.expired = false;
        }
    }

    /// Updates a file's attributes from a HEAD that read its stored attributes too: the mtime shown is the
    /// stored one when the object has it.
    pub(crate) fn update_file_attributes(
        &mut self,
        ino: u64,
        meta: &ObjectMeta,
        attributes: ObjectAttributes,
    ) {
        self.update_file(ino, meta);
        if let Some(inode) = self.inodes.get_mut(&ino) {
            if let Some(mtime) = attributes.mtime {
                inode.mtime = mtime.into();
            }
            inode.attributes = Some(attributes);
        }
    }

    /// Marks a directory's listing as read by an application (see [`Listing::enumerated`]).
    pub(crate) fn set_enumerated(&mut self, dir: u64) {
        if let Some(listing) = self.listings.get_mut(&dir) {
            listing.enumerated = true;
        }
    }

    /// After our own upload of `key`: the next use asks the store for the new version.
    pub(crate) fn uploaded(&mut self, key: &StorageKey) {
        for inode in self.inodes.values_mut() {
            if inode.key.as_ref() == Some(key) {
                inode.expired = true;
                inode.local = false;
            }
        }
    }

    /// A new local entry (created file or directory) in `parent`.
    pub(crate) fn create_local(&mut self, parent: u64, name: &str, key: StorageKey, kind: Kind) -> u64 {
        let ino = self.next;
        self.next += 1;
        self.inodes.insert(
            ino,
            Inode {
                parent,
                name: name.to_owned(),
                key: Some(key),
                kind,
                size: 0,
                version: String::new(),
                mtime: SystemTime::now(),
                checked: Instant::now(),
                expired: false,
                local: true,
                attributes: None,
            },
        );
        self.by_name.insert((parent, name.to_owned()), ino);
        if let Some(listing) = self.listings.get_mut(&parent) {
            listing.children.insert(name.to_owned(), ino);
        }
        self.changes += 1;
        ino
    }

    /// A new file in `parent` that is already in the store (an exclusive create committed it at once).
    pub(crate) fn create_stored(&mut self, parent: u64, name: &str, meta: &ObjectMeta) -> u64 {
        let ino = self.create_local(parent, name, meta.key.clone(), Kind::File);
        self.update_file(ino, meta);
        self.set_stored(ino);
        ino
    }

    /// An entry made here is in the store now: a listing that lacks it means it is gone.
    pub(crate) fn set_stored(&mut self, ino: u64) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.local = false;
        }
    }

    /// Sets the size a local change gave a file.
    pub(crate) fn set_size(&mut self, ino: u64, size: u64) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.size = size;
            inode.mtime = SystemTime::now();
        }
        self.changes += 1;
    }

    /// Moves an entry to another name (after the store did the same).
    pub(crate) fn rename(&mut self, ino: u64, parent: u64, name: &str, key: StorageKey) {
        let Some(inode) = self.inodes.get(&ino) else {
            return;
        };
        let (old_parent, old_name) = (inode.parent, inode.name.clone());
        self.remove_name(old_parent, &old_name);
        self.remove_name(parent, name);
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.parent = parent;
            inode.name = name.to_owned();
            inode.key = Some(key);
            inode.expired = true;
        }
        self.by_name.insert((parent, name.to_owned()), ino);
        if let Some(listing) = self.listings.get_mut(&parent) {
            listing.children.insert(name.to_owned(), ino);
        }
        self.changes += 1;
    }

    /// Moves every inode under key prefix `from` to the same place under `to` (a directory was renamed);
    /// their attributes are read again at the new keys.
    pub(crate) fn rekey_tree(&mut self, from: &StorageKey, to: &StorageKey) {
        let inside = format!("{from}/");
        for inode in self.inodes.values_mut() {
            let moved = inode
                .key
                .as_ref()
                .and_then(|k| k.as_str().strip_prefix(&inside))
                .and_then(|rest| to.join(rest).ok());
            if let Some(key) = moved {
                inode.key = Some(key);
                inode.expired = true;
            }
        }
        self.changes += 1;
    }

    /// Drops every listing, so each directory is listed again when next used (the store changed under
    /// the mount: a directory rename finished at start).
    pub(crate) fn forget_listings(&mut self) {
        self.listings.clear();
        self.changes += 1;
    }

    /// Forgets a name the store says is gone (a HEAD answered "not found").
    pub(crate) fn remove_name(&mut self, parent: u64, name: &str) {
        self.by_name.remove(&(parent, name.to_owned()));
        if let Some(listing) = self.listings.get_mut(&parent) {
            listing.children.remove(name);
        }
        self.changes += 1;
    }

    /// Replaces a directory's listing with what the store just returned. Names keep their inode while
    /// their kind is unchanged; a name both an object and a prefix shows as the directory.
    pub(crate) fn apply_listing(&mut self, dir: u64, listing: &DirListing) {
        self.apply_listing_at(dir, listing, Instant::now(), listings::unix_ms(SystemTime::now()));
    }

    /// [`InodeTable::apply_listing`] of a listing the store gave at `now` (earlier, for a saved one).
    fn apply_listing_at(&mut self, dir: u64, listing: &DirListing, now: Instant, now_ms: u64) {
        let mut children = BTreeMap::new();
        for prefix in &listing.prefixes {
            let name = prefix.file_name().to_owned();
            let ino = self.upsert(dir, &name, Some(prefix.clone()), Kind::Directory, None, now);
            children.insert(name, ino);
        }
        for object in &listing.objects {
            let name = object.key.file_name().to_owned();
            if name == DIR_MARKER {
                continue;
            }
            if children.contains_key(&name) {
                tracing::warn!(key = %object.key, "an object and a prefix share a name; showing the directory");
                continue;
            }
            let ino = self.upsert(
                dir,
                &name,
                Some(object.key.clone()),
                Kind::File,
                Some(object),
                now,
            );
            children.insert(name, ino);
        }
        if let Some(old) = self.listings.get(&dir) {
            let mut gone = Vec::new();
            for (name, ino) in &old.children {
                if children.contains_key(name) {
                    continue;
                }
                // Made here and not in the store yet (a file waiting for its upload, an empty directory):
                // the store cannot list it, so its absence there is no news.
                if self.inodes.get(ino).is_some_and(|i| i.local) {
                    children.insert(name.clone(), *ino);
                } else {
                    gone.push(name.clone());
                }
            }
            for name in gone {
                self.by_name.remove(&(dir, name));
            }
        }
        self.listings.insert(
            dir,
            Listing {
                children,
                enumerated: false,
                fetched: now,
                fetched_ms: now_ms,
            },
        );
        self.changes += 1;
    }

    /// How many listing changes the table has seen.
    pub(crate) fn changes(&self) -> u64 {
        self.changes
    }

    /// Every listing, for the persistent cache.
    pub(crate) fn snapshot(&self) -> Vec<SavedListing> {
        let mut saved = Vec::with_capacity(self.listings.len());
        for (dir, listing) in &self.listings {
            let Some(inode) = self.inodes.get(dir) else {
                continue;
            };
            let entries = listing
                .children
                .iter()
                .filter_map(|(name, ino)| {
                    let child = self.inodes.get(ino)?;
                    Some(SavedEntry {
                        name: name.clone(),
                        dir: child.kind == Kind::Directory,
                        size: child.size,
                        version: child.version.clone(),
                        mtime_ns: listings::unix_ns(child.mtime),
                        local: child.local,
                    })
                })
                .collect();
            saved.push(SavedListing {
                key: inode
                    .key
                    .as_ref()
                    .map(|k| k.as_str().to_owned())
                    .unwrap_or_default(),
                fetched_ms: listing.fetched_ms,
                entries,
            });
        }
        saved
    }

    /// Takes a saved listing of `dir` as if the store had just given it at `fetched`. Entries that are
    /// not valid keys any more are skipped (the listing then counts as fetched: they show up after the TTL).
    pub(crate) fn apply_saved(&mut self, dir: u64, saved: &SavedListing, fetched: Instant) {
        let Some(parent_key) = self.inodes.get(&dir).map(|i| i.key.clone()) else {
            return;
        };
        let key_of = |name: &str| match &parent_key {
            Some(parent) => parent.join(name),
            None => StorageKey::parse(name),
        };
        let mut listing = DirListing::default();
        let mut local = Vec::new();
        for entry in &saved.entries {
            let Ok(key) = key_of(&entry.name) else {
                continue;
            };
            if entry.dir {
                listing.prefixes.push(key);
            } else {
                let nanos = i64::try_from(entry.mtime_ns).unwrap_or(i64::MAX);
                listing.objects.push(ObjectMeta {
                    key,
                    size: entry.size,
                    etag: (!entry.version.is_empty()).then(|| entry.version.clone()),
                    last_modified: chrono::DateTime::from_timestamp_nanos(nanos),
                });
            }
            if entry.local {
                local.push(entry.name.clone());
            }
        }
        self.apply_listing_at(dir, &listing, fetched, saved.fetched_ms);
        for name in local {
            if let Some(&ino) = self.by_name.get(&(dir, name))
                && let Some(inode) = self.inodes.get_mut(&ino)
            {
                inode.local = true;
                inode.version.clear();
            }
        }
    }

    fn upsert(
        &mut self,
        parent: u64,
        name: &str,
        key: Option<StorageKey>,
        kind: Kind,
        meta: Option<&ObjectMeta>,
        now: Instant,
    ) -> u64 {
        let (size, version, mtime) = match meta {
            Some(m) => (m.size, version_of(m), m.last_modified.into()),
            None => (0, String::new(), SystemTime::UNIX_EPOCH),
        };
        if let Some(&ino) = self.by_name.get(&(parent, name.to_owned()))
            && let Some(inode) = self.inodes.get_mut(&ino)
            && inode.kind == kind
        {
            if inode.version != version {
                inode.attributes = None;
            }
            inode.size = size;
            inode.version = version;
            // A stored mtime read with a HEAD of this version stays; the listing only has the last write.
            inode.mtime = match inode.attributes.as_ref().and_then(|a| a.mtime) {
                Some(stored) => stored.into(),
                None => mtime,
            };
            inode.checked = now;
            inode.expired = false;
            inode.local = false;
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.inodes.insert(
            ino,
            Inode {
                parent,
                name: name.to_owned(),
                key,
                kind,
                size,
                version,
                mtime,
                checked: now,
                expired: false,
                local: false,
                attributes: None,
            },
        );
        self.by_name.insert((parent, name.to_owned()), ino);
        ino
    }
}
