//! `Store`: the storage port every other crate uses. Reads, listing, deletes and presigning live here; the
//! streaming write is in `put.rs`.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStoreExt as _};

use crate::error::{Error, Result};
use crate::key::StorageKey;
use crate::presign::{LocalSigner, PresignPolicy, PresignedUrl};

/// What the store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key, relative to the store (prefix removed).
    pub key: StorageKey,
    /// Size in bytes.
    pub size: u64,
    /// Entity tag; changes whenever the content does.
    pub etag: Option<String>,
    /// Last write.
    pub last_modified: DateTime<Utc>,
}

/// An object being read: its metadata, the byte range served and the bytes as a stream.
pub struct GetObject {
    /// The whole object's metadata.
    pub meta: ObjectMeta,
    /// The bytes in `body`: the requested range, its end clamped to the object's size.
    pub range: Range<u64>,
    /// The bytes, streamed: never the whole object in memory.
    pub body: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for GetObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetObject")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl GetObject {
    /// Collects the body; for small objects only.
    pub async fn bytes(self) -> Result<Bytes> {
        let chunks: Vec<Bytes> = self.body.try_collect().await?;
        Ok(chunks.concat().into())
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// Objects in key order.
    pub objects: Vec<ObjectMeta>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<StorageKey>,
}

/// One directory level: the objects directly under a prefix and the sub-prefixes ("directories").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirListing {
    /// Objects directly under the prefix.
    pub objects: Vec<ObjectMeta>,
    /// Sub-prefixes, each a full key.
    pub prefixes: Vec<StorageKey>,
}

/// How a single-body `put` behaves when something is already at the key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PutMode {
    /// Replace whatever is there.
    #[default]
    Overwrite,
    /// Fail with [`Error::AlreadyExists`] if anything is there.
    Create,
    /// Replace only the version with this ETag, else [`Error::PreconditionFailed`].
    IfMatch(String),
}

/// Signs GET URLs: SigV4 through the S3 client, HMAC for the local blob route.
#[derive(Debug, Clone)]
pub(crate) enum Presigner {
    S3 {
        signer: Arc<object_store::aws::AmazonS3>,
        prefix: Option<StorageKey>,
    },
    Local(Box<LocalSigner>),
}

/// The object store port: put / get / head / delete / list / presign over one backend.
///
/// Cheap to clone (an `Arc`). The adapters are `object_store` backends (`AmazonS3`, `LocalFileSystem`, and
/// `InMemory` for other crates' unit tests); what differs between them (presigning, the prefix, construction)
/// is decided once in the factory, so callers never branch on the backend.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Keys are relative to it: an S3 prefix is applied by a `PrefixStore` underneath.
    pub(crate) objects: Arc<dyn object_store::ObjectStore>,
    pub(crate) presigner: Presigner,
    pub(crate) policy: PresignPolicy,
    /// For `Debug` and logs: backend kind and location, never credentials.
    pub(crate) describe: String,
    /// The backend lists in key order (S3, memory); the local file system lists in directory order.
    pub(crate) ordered_listing: bool,
    /// For a backend without a minimum part size (local files), the size of each write of a streamed put,
    /// instead of S3-sized parts: a small write follows the hashing while the bytes are still in cache.
    pub(crate) write_part: Option<usize>,
    /// The local backend's root, where `LocalFileSystem` leaves its `<key>#<n>` staging files (which its own
    /// listing hides); `None` for the other backends.
    pub(crate) staging_root: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.describe)
            .finish_non_exhaustive()
    }
}

impl Store {
    pub(crate) fn from_parts(
        objects: Arc<dyn object_store::ObjectStore>,
        presigner: Presigner,
        policy: PresignPolicy,
        describe: String,
        ordered_listing: bool,
        write_part: Option<usize>,
        staging_root: Option<std::path::PathBuf>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                objects,
                presigner,
                policy,
                describe,
                ordered_listing,
                write_part,
                staging_root,
            }),
        }
    }

    /// A one-line description of the backend for logs (`local:/srv/blobs`, `s3:bucket@endpoint/prefix`).
    pub fn describe(&self) -> &str {
        &self.inner.describe
    }

    /// The presigned-URL lifetimes in force.
    pub fn presign_policy(&self) -> PresignPolicy {
        self.inner.policy
    }

    /// The local blob route's signer, to verify requests; `None` for S3 (its URLs go to the bucket).
    pub fn local_signer(&self) -> Option<&LocalSigner> {
        match &self.inner.presigner {
            Presigner::Local(signer) => Some(signer.as_ref()),
            Presigner::S3 { .. } => None,
        }
    }

    /// Reads an object, whole (`range = None`) or a byte range. The range's end is clamped to the size; a range
    /// that is empty or starts at or past the end is [`Error::RangeNotSatisfiable`].
    pub async fn get(&self, key: &StorageKey, range: Option<Range<u64>>) -> Result<GetObject> {
        if let Some(r) = &range
            && r.start >= r.end
        {
            return Err(Error::RangeNotSatisfiable {
                key: key.to_string(),
                start: r.start,
                end: r.end,
            });
        }
        let options = GetOptions {
            range: range.clone().map(GetRange::Bounded),
            ..Default::default()
        };
        let result = match self.inner.objects.get_opts(&path(key), options).await {
            Ok(result) => result,
            Err(source) => return Err(self.get_error(key, range, source).await),
        };
        let meta = meta(key.clone(), &result.meta);
        let range = result.range.clone();
        let owned_key = key.to_string();
        let body = match result.payload {
            // object_store streams a local file 8 KiB at a time, a blocking-pool hop each: several times
            // slower than `cp`. Read it in 1 MiB chunks instead.
            GetResultPayload::File(file, _) => file_stream(file, range.clone(), owned_key),
            GetResultPayload::Stream(stream) => stream
                .map_err(move |e| Error::from_backend(&owned_key, e))
                .boxed(),
        };
        Ok(GetObject { meta, range, body })
    }

    /// Reads a whole object with up to `concurrency` ranged GETs of `part_size` bytes in flight, yielding the
    /// bytes in order: a single TCP stream to S3 leaves most of a fast link idle. Memory stays bounded by
    /// `concurrency × part_size`. Every range is conditional on the ETag seen first, so an object replaced
    /// mid-read fails with [`Error::PreconditionFailed`] rather than mixing two versions. Objects of one part,
    /// and the local backend, are read with a plain [`Store::get`].
    pub async fn get_parallel(
        &self,
        key: &StorageKey,
        part_size: u64,
        concurrency: usize,
    ) -> Result<GetObject> {
        let meta = self.head(key).await?;
        let part_size = part_size.max(1);
        if meta.size <= part_size || !self.inner.ordered_listing || meta.etag.is_none() {
            return self.get(key, None).await;
        }
        let ranges: Vec<Range<u64>> = (0..meta.size)
            .step_by(usize::try_from(part_size).unwrap_or(usize::MAX))
            .map(|start| start..(start + part_size).min(meta.size))
            .collect();
        let objects = Arc::clone(&self.inner.objects);
        let location = path(key);
        let etag = meta.etag.clone();
        let label = key.to_string();
        let body = futures::stream::iter(ranges)
            .map(move |range| {
                let objects = Arc::clone(&objects);
                let location = location.clone();
                let options = GetOptions {
                    range: Some(GetRange::Bounded(range)),
                    if_match: etag.clone(),
                    ..Default::default()
                };
                let label = label.clone();
                async move {
                    let result = objects.get_opts(&location, options).await;
                    let bytes = match result {
                        Ok(result) => result.bytes().await,
                        Err(e) => Err(e),
                    };
                    bytes.map_err(|e| Error::from_backend(&label, e))
                }
            })
            .buffered(concurrency.max(1))
            .boxed();
        Ok(GetObject {
            range: 0..meta.size,
            meta,
            body,
        })
    }

    /// A failed ranged read is "not satisfiable" when the range starts past the end, whatever the backend
    /// called it (S3 answers 416 as a generic error, the local adapter as an invalid range).
    async fn get_error(
        &self,
        key: &StorageKey,
        range: Option<Range<u64>>,
        source: object_store::Error,
    ) -> Error {
        let mapped = Error::from_backend(key.as_str(), source);
        match (range, &mapped) {
            (Some(r), Error::Backend { .. }) => match self.head(key).await {
                Ok(meta) if r.start >= meta.size => Error::RangeNotSatisfiable {
                    key: key.to_string(),
                    start: r.start,
                    end: r.end,
                },
                _ => mapped,
            },
            _ => mapped,
        }
    }

    /// Reads a whole object into memory; for small objects (thumbnails, manifests).
    pub async fn get_bytes(&self, key: &StorageKey) -> Result<Bytes> {
        self.get(key, None).await?.bytes().await
    }

    /// Size, ETag and last-modified of an object.
    pub async fn head(&self, key: &StorageKey) -> Result<ObjectMeta> {
        let m = self
            .inner
            .objects
            .head(&path(key))
            .await
            .map_err(|e| Error::from_backend(key.as_str(), e))?;
        Ok(meta(key.clone(), &m))
    }

    /// SHA-256 of a stored object, streamed through this process in bounded memory: how a caller verifies
    /// bytes it did not write itself (a copy, or an object found where it was about to write).
    pub async fn sha256(&self, key: &StorageKey) -> Result<crate::Sha256Digest> {
        use futures::StreamExt as _;
        let mut body = self.get(key, None).await?.body;
        let mut hasher = crate::Sha256Hasher::new();
        while let Some(chunk) = body.next().await {
            hasher.update(&chunk?);
        }
        Ok(hasher.finish())
    }

    /// Deletes an object. Deleting a missing key succeeds, as on S3, so retries are safe.
    pub async fn delete(&self, key: &StorageKey) -> Result<()> {
        match self.inner.objects.delete(&path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::from_backend(key.as_str(), e)),
        }
    }

    /// Server-side copy (no bytes through this process); replaces `to`.
    pub async fn copy(&self, from: &StorageKey, to: &StorageKey) -> Result<()> {
        self.inner
            .objects
            .copy(&path(from), &path(to))
            .await
            .map_err(|e| Error::from_backend(from.as_str(), e))
    }

    /// Every object under `prefix` (all objects when `None`), in pages fetched as the stream is read: a
    /// million keys never sit in memory at once. Key order on S3; directory order on the local backend.
    pub fn list(&self, prefix: Option<&StorageKey>) -> BoxStream<'static, Result<ObjectMeta>> {
        let label = prefix.map_or_else(String::new, ToString::to_string);
        let stream = self.inner.objects.list(prefix.map(path).as_ref());
        convert_listing(stream, label)
    }

    /// At most `limit` objects under `prefix` whose key sorts after `after`, in key order: one page, for
    /// callers that page across requests. Memory is bounded by `limit` on every backend.
    pub async fn list_page(
        &self,
        prefix: Option<&StorageKey>,
        after: Option<&StorageKey>,
        limit: usize,
    ) -> Result<ListPage> {
        let label = prefix.map_or_else(String::new, ToString::to_string);
        let prefix_path = prefix.map(path);
        let stream = match after {
            Some(after) => self
                .inner
                .objects
                .list_with_offset(prefix_path.as_ref(), &path(after)),
            None => self.inner.objects.list(prefix_path.as_ref()),
        };
        // One extra tells whether there is a next page.
        let stream = convert_listing(stream, label);
        let mut objects: Vec<ObjectMeta> = if self.inner.ordered_listing {
            stream.take(limit + 1).try_collect().await?
        } else {
            smallest_keys(stream, limit + 1).await?
        };
        let next = if objects.len() > limit {
            objects.truncate(limit);
            objects.last().map(|m| m.key.clone())
        } else {
            None
        };
        Ok(ListPage { objects, next })
    }

    /// One directory level under `prefix` (the root when `None`): objects and sub-prefixes.
    pub async fn list_dir(&self, prefix: Option<&StorageKey>) -> Result<DirListing> {
        let label = prefix.map_or_else(String::new, ToString::to_string);
        let result = self
            .inner
            .objects
            .list_with_delimiter(prefix.map(path).as_ref())
            .await
            .map_err(|e| Error::from_backend(&label, e))?;
        let objects = result.objects.iter().filter_map(listed).collect();
        let prefixes = result
            .common_prefixes
            .iter()
            .filter_map(|p| StorageKey::parse(p.as_ref()).ok())
            .collect();
        Ok(DirListing { objects, prefixes })
    }

    /// A short-lived URL for `GET key`: SigV4 on S3, HMAC to the server's `/blobs/` route on the local backend.
    /// `ttl = None` takes the policy's default; above its maximum is [`Error::InvalidTtl`].
    pub async fn presign_get(&self, key: &StorageKey, ttl: Option<Duration>) -> Result<PresignedUrl> {
        let ttl = self.inner.policy.ttl(ttl)?;
        match &self.inner.presigner {
            Presigner::Local(signer) => Ok(signer.sign(key, ttl, Utc::now())),
            Presigner::S3 { signer, prefix } => {
                use object_store::signer::Signer as _;
                let full = match prefix {
                    Some(prefix) => prefix.join(key.as_str())?,
                    None => key.clone(),
                };
                let now = Utc::now();
                let url = signer
                    .signed_url(object_store::signer::Method::GET, &path(&full), ttl)
                    .await
                    .map_err(|e| Error::from_backend(key.as_str(), e))?;
                let expires_at = now + chrono::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(0));
                Ok(PresignedUrl { url, expires_at })
            }
        }
    }

    /// Proves the store answers with these credentials: a HEAD of a key that should not exist must come back
    /// "not found", not "access denied" or a network error. For `/readyz` and start-up.
    pub async fn check(&self) -> Result<()> {
        let probe = StorageKey::parse(".iphoto-readiness-probe")?;
        match self.head(&probe).await {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Bytes of `range` of an open local file, read 1 MiB at a time.
fn file_stream(file: std::fs::File, range: Range<u64>, key: String) -> BoxStream<'static, Result<Bytes>> {
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    let opened = async move {
        let mut file = tokio::fs::File::from_std(file);
        file.seek(std::io::SeekFrom::Start(range.start)).await?;
        Ok::<_, std::io::Error>(tokio_util::io::ReaderStream::with_capacity(
            file.take(range.end - range.start),
            FILE_CHUNK,
        ))
    };
    futures::stream::once(opened)
        .try_flatten()
        .map_err(move |source| Error::Backend {
            key: key.clone(),
            source: object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(source),
            },
        })
        .boxed()
}

const FILE_CHUNK: usize = 1 << 20;

/// The `n` smallest keys of an unordered listing, in order, holding at most `n` at a time.
async fn smallest_keys(
    mut stream: BoxStream<'static, Result<ObjectMeta>>,
    n: usize,
) -> Result<Vec<ObjectMeta>> {
    let mut heap: std::collections::BinaryHeap<ByKey> = std::collections::BinaryHeap::with_capacity(n + 1);
    while let Some(meta) = stream.try_next().await? {
        heap.push(ByKey(meta));
        if heap.len() > n {
            heap.pop();
        }
    }
    Ok(heap.into_sorted_vec().into_iter().map(|b| b.0).collect())
}

/// Orders listed objects by key alone.
struct ByKey(ObjectMeta);

impl PartialEq for ByKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}
impl Eq for ByKey {}
impl PartialOrd for ByKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.key.cmp(&other.0.key)
    }
}

pub(crate) fn path(key: &StorageKey) -> Path {
    // A StorageKey meets every rule of `Path::parse`, so the key is kept verbatim; the encoding fallback is
    // never taken, but is safe (it percent-encodes) rather than a panic.
    Path::parse(key.as_str()).unwrap_or_else(|_| Path::from(key.as_str()))
}

pub(crate) fn meta(key: StorageKey, m: &object_store::ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        key,
        size: m.size,
        etag: m.e_tag.clone(),
        last_modified: m.last_modified,
    }
}

/// A listed object whose name is not a valid key (put there by another tool) is skipped, not an error: one odd
/// file must not hide the rest of a listing.
fn listed(m: &object_store::ObjectMeta) -> Option<ObjectMeta> {
    match StorageKey::parse(m.location.as_ref()) {
        Ok(key) => Some(meta(key, m)),
        Err(e) => {
            tracing::warn!(error = %e, "skipping listed object with an invalid key");
            None
        }
    }
}

fn convert_listing(
    stream: BoxStream<'static, object_store::Result<object_store::ObjectMeta>>,
    label: String,
) -> BoxStream<'static, Result<ObjectMeta>> {
    stream
        .map_err(move |e| Error::from_backend(&label, e))
        .try_filter_map(|m| futures::future::ready(Ok(listed(&m))))
        .boxed()
}
