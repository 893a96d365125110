//! Pinning: a file or folder fetched whole into the block cache in the background and never evicted, so it
//! reads at local speed with the store out of reach.
//!
//! Pins are set and read through the attribute `user.iphoto.pin` of a path (`1` pins, `0` unpins; reading
//! it gives the state), which is what `iphoto-mount pin/unpin/status` do. Pinned blocks count inside the
//! cache bound; all pins together may take at most [`PIN_SHARE_PERCENT`] % of what the bound leaves to
//! cached blocks (the bound less the dirty budget), and a pin past that is refused with the figures. A
//! pinner task fetches what is missing and, once per metadata TTL, lists each pin again: an object that
//! changed in the store is fetched anew and its old blocks unpinned; one deleted is unpinned. The pinned
//! paths and their states are written to `pins.json` in the cache directory (for `status`, and for the next
//! start, which pins them again).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use storage::{ObjectMeta, StorageKey};

use crate::cache::BlockId;
use crate::error::{Error, Result};
use crate::fs::Fs;
use crate::fs::inode::{DIR_MARKER, version_of};

/// The attribute that pins (`1`), unpins (`0`) and reports a path's pin state.
pub const PIN_XATTR: &str = "user.iphoto.pin";

/// The share of the cached blocks' room all pins may take, percent.
pub const PIN_SHARE_PERCENT: u64 = 80;

/// One pin as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinReport {
    /// The path in the mount (`/` for the root).
    pub path: String,
    /// `pinning`, `pinned` or `cannot finish`.
    pub state: String,
    /// Bytes of the pinned objects.
    pub bytes: u64,
    /// Bytes already in the cache.
    pub cached_bytes: u64,
    /// Objects fetched since the pin was made (a refresh after a change counts again).
    pub fetched_objects: u64,
    /// Why it cannot finish.
    pub reason: Option<String>,
}

/// What `pins.json` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PinsFile {
    /// Every pin.
    pub pins: Vec<PinReport>,
    /// Bytes all pins may take.
    pub cap_bytes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Pins {
    file: Mutex<Option<PathBuf>>,
    /// By pinned key prefix ("" for the root of a mount without prefix).
    pins: Mutex<BTreeMap<String, Pin>>,
    wake: tokio::sync::Notify,
    /// Refused pins, with the figures, by key: reported until pinned or asked again.
    refused: Mutex<HashMap<String, String>>,
}

#[derive(Debug, Default, Clone)]
struct Pin {
    path: String,
    /// The version pinned of each object, with its size.
    objects: HashMap<String, (String, u64)>,
    bytes: u64,
    cached: u64,
    fetched: u64,
    reason: Option<String>,
    done: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Fs {
    /// The pins' file in `cache_dir`: loads what an earlier mount pinned and starts the pinner. Call inside
    /// the runtime.
    pub fn start_pinner(self: &Arc<Self>, cache_dir: &std::path::Path) {
        let path = cache_dir.join("pins.json");
        if let Ok(text) = std::fs::read(&path)
            && let Ok(saved) = serde_json::from_slice::<PinsFile>(&text)
        {
            let mut pins = lock(&self.pins.pins);
            for report in saved.pins {
                let key = self.key_of_path(&report.path);
                pins.insert(
                    key,
                    Pin {
                        path: report.path,
                        ..Pin::default()
                    },
                );
            }
        }
        *lock(&self.pins.file) = Some(path);
        let fs = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let keys: Vec<String> = lock(&fs.pins.pins).keys().cloned().collect();
                for key in keys {
                    if let Err(e) = fs.refresh_pin(&key).await {
                        tracing::warn!(error = %e, %key, "pinning");
                        if let Some(pin) = lock(&fs.pins.pins).get_mut(&key) {
                            pin.reason = Some(e.to_string());
                        }
                    }
                    fs.save_pins();
                }
                let wait = fs.config.metadata_ttl.max(Duration::from_secs(1));
                let _ = tokio::time::timeout(wait, fs.pins.wake.notified()).await;
            }
        });
    }

    /// Bytes all pins may take.
    pub fn pin_cap(&self) -> u64 {
        self.reader.cache().usage().max_bytes / 100 * PIN_SHARE_PERCENT
    }

    /// The key prefix a mount path names.
    fn key_of_path(&self, path: &str) -> String {
        let relative = path.trim_matches('/');
        match (&self.config.prefix, relative) {
            (Some(prefix), "") => prefix.to_string(),
            (Some(prefix), rest) => format!("{prefix}/{rest}"),
            (None, rest) => rest.to_owned(),
        }
    }

    /// The mount path of `key`.
    fn path_of_key(&self, key: &str) -> String {
        let relative = match &self.config.prefix {
            Some(prefix) => key.strip_prefix(prefix.as_str()).unwrap_or(key),
            None => key,
        };
        format!("/{}", relative.trim_start_matches('/'))
    }

    fn key_of_inode(&self, ino: u64) -> Result<String> {
        let table = self.table();
        let inode = table.get(ino).ok_or_else(|| Error::NotFound {
            name: format!("inode {ino}"),
        })?;
        Ok(inode.key.as_ref().map(|k| k.to_string()).unwrap_or_default())
    }

    /// The objects a pin of `key` covers: the file, or every object under the folder.
    async fn pinned_objects(&self, key: &str) -> Result<Vec<ObjectMeta>> {
        let parsed = (!key.is_empty()).then(|| StorageKey::parse(key)).transpose()?;
        if let Some(file) = &parsed {
            match self.timed("a HEAD", self.store.head(file)).await {
                Ok(meta) => return Ok(vec![meta]),
                Err(Error::Store(storage::Error::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        let listed: Vec<ObjectMeta> = self
            .timed("a LIST", self.store.list(parsed.as_ref()).try_collect())
            .await?;
        Ok(listed
            .into_iter()
            .filter(|m| m.key.file_name() != DIR_MARKER)
            .collect())
    }

    /// Pins the entry `ino`, refusing it (ENOSPC, with the figures) when all pins would pass the cap.
    pub async fn pin(&self, ino: u64) -> Result<()> {
        let key = self.key_of_inode(ino)?;
        let objects = self.pinned_objects(&key).await?;
        let needed: u64 = objects.iter().map(|m| m.size).sum();
        let others: u64 = lock(&self.pins.pins)
            .iter()
            .filter(|(k, _)| **k != key)
            .map(|(_, p)| p.bytes)
            .sum();
        let cap = self.pin_cap();
        let path = self.path_of_key(&key);
        if needed + others > cap {
            let reason = format!(
                "pinning {path} needs {needed} bytes; {others} of the {cap} bytes pins may take ({PIN_SHARE_PERCENT} % \
                 of the cache's room for blocks) are pinned already"
            );
            lock(&self.pins.refused).insert(key, reason.clone());
            return Err(Error::PinTooLarge { reason });
        }
        lock(&self.pins.refused).remove(&key);
        lock(&self.pins.pins).entry(key).or_insert_with(|| Pin {
            path,
            bytes: needed,
            ..Pin::default()
        });
        self.save_pins();
        self.pins.wake.notify_one();
        Ok(())
    }

    /// Unpins the entry `ino`: its blocks become evictable like any other.
    pub async fn unpin(&self, ino: u64) -> Result<()> {
        let key = self.key_of_inode(ino)?;
        let removed = lock(&self.pins.pins).remove(&key);
        if let Some(pin) = removed {
            for (object, (version, size)) in pin.objects {
                self.set_blocks_pinned(&object, &version, size, false)?;
            }
        }
        lock(&self.pins.refused).remove(&key);
        self.save_pins();
        Ok(())
    }

    /// The pin state of entry `ino`, as the pin attribute reads.
    pub fn pin_state(&self, ino: u64) -> Result<String> {
        let key = self.key_of_inode(ino)?;
        if let Some(reason) = lock(&self.pins.refused).get(&key) {
            return Ok(format!("not pinned: {reason}"));
        }
        let pins = lock(&self.pins.pins);
        let covering = pins
            .iter()
            .find(|(k, _)| k.is_empty() || **k == key || key.starts_with(&format!("{k}/")));
        Ok(match covering {
            None => "not pinned".to_owned(),
            Some((_, pin)) => describe(pin).0,
        })
    }

    /// Every pin with its state.
    pub fn pin_reports(&self) -> Vec<PinReport> {
        lock(&self.pins.pins)
            .values()
            .map(|pin| {
                let (state, reason) = describe(pin);
                PinReport {
                    path: pin.path.clone(),
                    state: state.split(':').next().unwrap_or_default().to_owned(),
                    bytes: pin.bytes,
                    cached_bytes: pin.cached,
                    fetched_objects: pin.fetched,
                    reason,
                }
            })
            .collect()
    }

    fn save_pins(&self) {
        let Some(path) = lock(&self.pins.file).clone() else {
            return;
        };
        let file = PinsFile {
            pins: self.pin_reports(),
            cap_bytes: self.pin_cap(),
        };
        let temporary = path.with_extension("json.tmp");
        let written = serde_json::to_vec_pretty(&file)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&temporary, bytes))
            .and_then(|()| std::fs::rename(&temporary, &path));
        if let Err(e) = written {
            tracing::warn!(error = %e, "writing pins.json failed");
        }
    }

    fn set_blocks_pinned(&self, key: &str, version: &str, size: u64, pinned: bool) -> Result<u64> {
        let block_size = self.config.block_size;
        let mut present = 0;
        for index in 0..size.div_ceil(block_size) {
            let id = BlockId {
                key: key.to_owned(),
                version: version.to_owned(),
                index,
                block_size,
            };
            if self.reader.cache().set_pinned(&id, pinned)? {
                present += (size - index * block_size).min(block_size);
            }
        }
        Ok(present)
    }

    /// Lists a pin again and fetches what is not cached: new objects, and new versions of changed ones
    /// (whose old blocks are unpinned); deleted objects are unpinned.
    async fn refresh_pin(&self, key: &str) -> Result<()> {
        let objects = self.pinned_objects(key).await?;
        let previous = match lock(&self.pins.pins).get(key) {
            Some(pin) => pin.objects.clone(),
            None => return Ok(()),
        };
        let total: u64 = objects.iter().map(|m| m.size).sum();
        let mut current = HashMap::new();
        let mut cached = 0;
        if let Some(pin) = lock(&self.pins.pins).get_mut(key) {
            pin.bytes = total;
            pin.done = false;
            pin.reason = None;
        }
        for meta in &objects {
            let object = meta.key.to_string();
            let version = version_of(meta);
            if let Some((old, size)) = previous.get(&object)
                && *old != version
            {
                self.set_blocks_pinned(&object, old, *size, false)?;
            }
            let present = self.set_blocks_pinned(&object, &version, meta.size, true)?;
            if present < meta.size {
                self.fetch_pinned(meta, &version).await?;
                if let Some(pin) = lock(&self.pins.pins).get_mut(key) {
                    pin.fetched += 1;
                }
            }
            cached += meta.size;
            current.insert(object, (version, meta.size));
            if let Some(pin) = lock(&self.pins.pins).get_mut(key) {
                pin.cached = cached;
            }
        }
        for (object, (version, size)) in &previous {
            if !current.contains_key(object) {
                self.set_blocks_pinned(object, version, *size, false)?;
            }
        }
        if let Some(pin) = lock(&self.pins.pins).get_mut(key) {
            pin.objects = current;
            pin.cached = cached;
            pin.done = true;
        } else {
            // Unpinned while this ran.
            for (object, (version, size)) in current {
                self.set_blocks_pinned(&object, &version, size, false)?;
            }
        }
        Ok(())
    }

    /// Fetches every block of `meta` not cached yet, and pins it.
    async fn fetch_pinned(&self, meta: &ObjectMeta, version: &str) -> Result<()> {
        let block_size = self.config.block_size;
        for index in 0..meta.size.div_ceil(block_size) {
            let id = BlockId {
                key: meta.key.to_string(),
                version: version.to_owned(),
                index,
                block_size,
            };
            if self.reader.cache().set_pinned(&id, true)? {
                continue;
            }
            let start = index * block_size;
            let end = (start + block_size).min(meta.size);
            let object = self
                .timed("a GET", self.store.get(&meta.key, Some(start..end)))
                .await?;
            if object
                .meta
                .etag
                .as_ref()
                .is_some_and(|e| Some(e) != meta.etag.as_ref())
            {
                return Err(Error::Stale {
                    key: meta.key.to_string(),
                });
            }
            let bytes = self.timed("a GET", object.bytes()).await?;
            if !self.reader.cache().put(&id, &bytes)? || !self.reader.cache().set_pinned(&id, true)? {
                return Err(Error::NoSpace);
            }
        }
        Ok(())
    }
}

/// The state text and the reason of a pin.
fn describe(pin: &Pin) -> (String, Option<String>) {
    match (&pin.reason, pin.done) {
        (Some(reason), _) => (format!("cannot finish: {reason}"), Some(reason.clone())),
        (None, true) => ("pinned".to_owned(), None),
        (None, false) => (format!("pinning: {} of {} bytes", pin.cached, pin.bytes), None),
    }
}
