//! The two backends. Both are `object_store` stores behind [`Objects`], which holds what they
//! share (write-once puts, ranged reads, idempotent deletes); they differ in where a key lands,
//! how a location is written, and whether a URL can be presigned.

use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{
    BackoffConfig, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, RetryConfig,
};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::config::S3Config;
use super::key::check_segment;
use super::{
    MAX_OBJECT_BYTES, ObjectKey, ObjectSlice, RecordingStorage, StorageFuture, StoredObject,
};
use crate::MediaError;

/// How much of the file one read takes (and one chunk of the upload holds).
const READ_CHUNK: usize = 1 << 20;

/// Recordings in a directory on this machine: `<dir>/<key>`, written with fsync so that a
/// successful put survives a crash (the caller deletes its spool copy after it).
#[derive(Debug)]
pub struct LocalDir {
    objects: Objects,
    dir: PathBuf,
}

impl LocalDir {
    /// Creates `dir` if it is missing.
    pub fn open(dir: &FsPath) -> Result<Self, MediaError> {
        let dir_error = |source| MediaError::StorageDir {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(dir_error)?;
        let dir = std::fs::canonicalize(dir).map_err(dir_error)?;
        let store = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|source| MediaError::StorageOpen { source })?
            .with_fsync(true);
        Ok(Self {
            objects: Objects {
                store: Arc::new(store),
                root: String::new(),
            },
            dir,
        })
    }

    /// The file that holds `key` (the API serves it from there, with Range support).
    pub fn file_path(&self, key: &ObjectKey) -> PathBuf {
        self.dir.join(key.as_str())
    }
}

impl RecordingStorage for LocalDir {
    fn put_file<'a>(
        &'a self,
        key: &'a ObjectKey,
        path: &'a FsPath,
    ) -> StorageFuture<'a, StoredObject> {
        Box::pin(self.objects.put_file(key, path, self.location(key)))
    }

    fn get_range<'a>(
        &'a self,
        key: &'a ObjectKey,
        range: Option<Range<u64>>,
    ) -> StorageFuture<'a, ObjectSlice> {
        Box::pin(self.objects.get_range(key, range))
    }

    fn head<'a>(&'a self, key: &'a ObjectKey) -> StorageFuture<'a, Option<u64>> {
        Box::pin(self.objects.head(key))
    }

    fn delete<'a>(&'a self, key: &'a ObjectKey) -> StorageFuture<'a, ()> {
        Box::pin(self.objects.delete(key))
    }

    fn presign_get<'a>(
        &'a self,
        _key: &'a ObjectKey,
        _expires: Duration,
    ) -> StorageFuture<'a, Option<String>> {
        // Nothing stands in front of a directory to check a signature: the API signs its own.
        Box::pin(async { Ok(None) })
    }

    fn location(&self, key: &ObjectKey) -> String {
        format!("file://{}", self.file_path(key).display())
    }
}

/// Recordings in an S3 bucket (AWS or a compatible server): `<bucket>/<prefix>/<key>`.
#[derive(Debug)]
pub struct S3Store {
    objects: Objects,
    // The same client as `objects.store`, kept typed for presigning.
    s3: Arc<AmazonS3>,
    bucket: String,
}

impl S3Store {
    /// Builds the client; makes no request.
    pub fn open(config: &S3Config) -> Result<Self, MediaError> {
        let prefix = config.prefix.trim_matches('/');
        let root = if prefix.is_empty() {
            String::new()
        } else {
            // The rules of a key's prefix, so that the location written on a recording is the
            // key as stored (nothing to percent-encode).
            for segment in prefix.split('/') {
                check_segment("store prefix", segment)?;
            }
            format!("{prefix}/")
        };
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            // Atomic create (`If-None-Match: *`): what makes an object write-once.
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            // A few quick retries inside one operation; the uploader retries for ever on top,
            // and an API read should fail within seconds, not after object_store's 3 minutes.
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 2,
                retry_timeout: Duration::from_secs(20),
            });
        // Only when set, so that the environment (AWS_ALLOW_HTTP...) is not overridden by a
        // default.
        if config.allow_http {
            builder = builder.with_allow_http(true);
        }
        if config.virtual_hosted_style {
            builder = builder.with_virtual_hosted_style_request(true);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let s3 = Arc::new(
            builder
                .build()
                .map_err(|source| MediaError::StorageOpen { source })?,
        );
        Ok(Self {
            objects: Objects {
                store: s3.clone(),
                root,
            },
            s3,
            bucket: config.bucket.clone(),
        })
    }
}

impl RecordingStorage for S3Store {
    fn put_file<'a>(
        &'a self,
        key: &'a ObjectKey,
        path: &'a FsPath,
    ) -> StorageFuture<'a, StoredObject> {
        Box::pin(self.objects.put_file(key, path, self.location(key)))
    }

    fn get_range<'a>(
        &'a self,
        key: &'a ObjectKey,
        range: Option<Range<u64>>,
    ) -> StorageFuture<'a, ObjectSlice> {
        Box::pin(self.objects.get_range(key, range))
    }

    fn head<'a>(&'a self, key: &'a ObjectKey) -> StorageFuture<'a, Option<u64>> {
        Box::pin(self.objects.head(key))
    }

    fn delete<'a>(&'a self, key: &'a ObjectKey) -> StorageFuture<'a, ()> {
        Box::pin(self.objects.delete(key))
    }

    fn presign_get<'a>(
        &'a self,
        key: &'a ObjectKey,
        expires: Duration,
    ) -> StorageFuture<'a, Option<String>> {
        Box::pin(async move {
            let url = self
                .s3
                .signed_url(Method::GET, &self.objects.path(key), expires)
                .await
                .map_err(|source| storage_error("presign", key, source))?;
            Ok(Some(url.to_string()))
        })
    }

    fn location(&self, key: &ObjectKey) -> String {
        format!("s3://{}/{}{}", self.bucket, self.objects.root, key)
    }
}

/// One `object_store` store and the prefix every key goes under.
#[derive(Debug)]
struct Objects {
    store: Arc<dyn ObjectStore>,
    /// `""` or `"prefix/"`.
    root: String,
}

impl Objects {
    fn path(&self, key: &ObjectKey) -> Path {
        // Keys and the root hold only characters that need no encoding (key.rs, `open`), so
        // this is the key as written.
        Path::from(format!("{}{}", self.root, key))
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: &FsPath,
        location: String,
    ) -> Result<StoredObject, MediaError> {
        let (payload, sha256, bytes) = read_hashed(file).await?;
        let path = self.path(key);
        let options = PutOptions::from(PutMode::Create);
        match self.store.put_opts(&path, payload, options).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                // A retry whose first answer was lost, or another recording under this key:
                // only the bytes can tell.
                let stored = self
                    .store
                    .get(&path)
                    .await
                    .map_err(|source| storage_error("get", key, source))?;
                let same = stored.meta.size == bytes && {
                    let data = stored
                        .bytes()
                        .await
                        .map_err(|source| storage_error("get", key, source))?;
                    let digest: [u8; 32] = Sha256::digest(&data).into();
                    digest == sha256
                };
                if !same {
                    return Err(MediaError::ObjectConflict {
                        key: key.to_string(),
                    });
                }
            }
            Err(source) => return Err(storage_error("put", key, source)),
        }
        Ok(StoredObject {
            location,
            sha256,
            bytes,
        })
    }

    async fn get_range(
        &self,
        key: &ObjectKey,
        range: Option<Range<u64>>,
    ) -> Result<ObjectSlice, MediaError> {
        let mut options = GetOptions::default();
        if let Some(range) = range {
            if range.start >= range.end {
                return Err(MediaError::ObjectRange {
                    key: key.to_string(),
                    start: range.start,
                    end: range.end,
                });
            }
            options.range = Some(GetRange::Bounded(range));
        }
        let result = self
            .store
            .get_opts(&self.path(key), options)
            .await
            .map_err(|source| not_found_or("get", key, source))?;
        let (range, total) = (result.range.clone(), result.meta.size);
        let data = result
            .bytes()
            .await
            .map_err(|source| storage_error("get", key, source))?;
        Ok(ObjectSlice { data, range, total })
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<u64>, MediaError> {
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(storage_error("head", key, source)),
        }
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), MediaError> {
        match self.store.delete(&self.path(key)).await {
            // S3 answers a missing key with success; the local store says NotFound.
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(storage_error("delete", key, source)),
        }
    }
}

/// Reads the file in chunks for one PUT, hashing as it goes.
async fn read_hashed(path: &FsPath) -> Result<(PutPayload, [u8; 32], u64), MediaError> {
    let read_error = |source| MediaError::UploadRead {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |bytes| MediaError::ObjectTooLarge {
        path: path.to_path_buf(),
        bytes,
        limit: MAX_OBJECT_BYTES,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(read_error)?;
    let expected = file.metadata().await.map_err(read_error)?.len();
    if expected > MAX_OBJECT_BYTES {
        return Err(too_large(expected));
    }
    let mut hasher = Sha256::new();
    let mut chunks = Vec::new();
    let mut total = 0u64;
    let mut buf = BytesMut::new();
    loop {
        buf.reserve(READ_CHUNK);
        let n = file.read_buf(&mut buf).await.map_err(read_error)?;
        if n == 0 {
            break;
        }
        // usize -> u64 is lossless on every supported target.
        total += n as u64;
        // The file may grow while it is read (a recording still being written is a caller
        // bug, but memory stays bounded either way).
        if total > MAX_OBJECT_BYTES {
            return Err(too_large(total));
        }
        hasher.update(&buf);
        chunks.push(buf.split().freeze());
    }
    Ok((
        chunks.into_iter().collect(),
        hasher.finalize().into(),
        total,
    ))
}

fn storage_error(op: &'static str, key: &ObjectKey, source: object_store::Error) -> MediaError {
    MediaError::Storage {
        op,
        key: key.to_string(),
        source,
    }
}

fn not_found_or(op: &'static str, key: &ObjectKey, source: object_store::Error) -> MediaError {
    match source {
        object_store::Error::NotFound { .. } => MediaError::ObjectMissing {
            key: key.to_string(),
        },
        source => storage_error(op, key, source),
    }
}
