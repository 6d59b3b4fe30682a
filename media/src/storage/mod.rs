//! Where finished recordings live (feature `storage`): a local directory by default, S3-compatible
//! object storage in production, both through [`object_store`] and behind one trait,
//! [`RecordingStorage`].
//!
//! ```text
//!  capture / ingest            Uploader (upload.rs)                 RecordingStorage
//!  writes spool/x.wav  --job-->  bounded queue -> put_file --------> LocalDir | S3Store
//!                                  | failed: wait Backoff, retry      (write once, SHA-256)
//!                                  v
//!                               reports: Uploaded { key, stored } / Failed { key, attempt }
//!  the caller records the row (location, sha256, bytes), then deletes its spool file
//! ```
//!
//! Why an object is written once: a recording is evidence. Its key,
//! `<prefix>/<tenant>/<recording id>.wav` ([`ObjectKey`]), names one recording for ever, so a
//! put never replaces bytes that are there. It is an atomic create (`If-None-Match: *` on S3, a
//! hard link on the local disk); when the key already exists, the stored bytes are hashed and
//! compared: the same SHA-256 is a retry whose answer was lost (Ok, nothing written), different
//! bytes are [`MediaError::ObjectConflict`]. The uploader can therefore retry blindly.
//!
//! Where the SHA lives: [`RecordingStorage::put_file`] hashes the file while reading it and
//! returns the digest in [`StoredObject`]; the caller keeps it on the recording's row, which is
//! what playback and audits check against. The store itself holds only bytes (no metadata the
//! local backend could not keep too), so the same check works on both backends.
//!
//! Presigning: S3 signs a GET URL itself (SigV4 in the query string, valid for the given
//! `Duration`), and the player fetches the object from S3 directly.
//! [`RecordingStorage::presign_get`] on the local backend answers `None`: there is no server in
//! front of the directory, so the API signs its own expiring URL (HMAC) and serves the file with
//! Range support through [`RecordingStorage::get_range`].
//!
//! Uploads read the whole file into memory (in 1 MiB chunks, hashed on the way) and send it in
//! one request: a recording is a few MB, and S3's atomic create exists for single PUTs only
//! (`object_store` has no create mode for multipart uploads). The bound is
//! [`MAX_OBJECT_BYTES`]; a larger file is refused with [`MediaError::ObjectTooLarge`].
//!
//! ```no_run
//! # async fn run() -> Result<(), switchyard_media::MediaError> {
//! use std::time::Duration;
//! use switchyard_media::storage::{ObjectKey, RecordingStorage, Storage, StorageConfig};
//!
//! let storage = Storage::open(&StorageConfig::Local { dir: "/var/lib/switchyard/recordings".into() })?;
//! let key = ObjectKey::new("recordings", "acme", "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")?;
//! let stored = storage.put_file(&key, "/var/spool/switchyard/call.wav".as_ref()).await?;
//! println!("{} {} bytes sha256 {}", stored.location, stored.bytes, stored.sha256_hex());
//! let head = storage.get_range(&key, Some(0..44)).await?; // the WAV header
//! assert_eq!(head.total, stored.bytes);
//! assert!(storage.presign_get(&key, Duration::from_secs(300)).await?.is_none()); // local
//! # Ok(()) }
//! ```

mod backend;
mod config;
mod key;
mod upload;

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

pub use backend::{LocalDir, S3Store};
pub use config::{S3Config, StorageConfig};
pub use key::ObjectKey;
pub use upload::{Backoff, UploadJob, UploadReport, Uploader};

use crate::MediaError;

/// The largest file [`RecordingStorage::put_file`] takes: it is held in memory for one PUT.
/// 1 GiB is over eight hours of 8 kHz 16-bit stereo.
pub const MAX_OBJECT_BYTES: u64 = 1 << 30;

/// What a storage operation returns: a boxed future, so that [`RecordingStorage`] stays
/// object-safe (`Arc<dyn RecordingStorage>` in the API's state, a failing fake in tests).
pub type StorageFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, MediaError>> + Send + 'a>>;

/// A recording written to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Where the object is, for the recording's row: `file:///dir/prefix/tenant/id.wav` or
    /// `s3://bucket/store-prefix/prefix/tenant/id.wav`.
    pub location: String,
    /// SHA-256 of the bytes, computed while reading the local file.
    pub sha256: [u8; 32],
    /// The object's length.
    pub bytes: u64,
}

impl StoredObject {
    /// The digest as 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

/// Bytes read from an object: `data` is `range` of an object `total` bytes long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSlice {
    pub data: Bytes,
    pub range: Range<u64>,
    pub total: u64,
}

/// The storage operations the recordings service needs; [`Storage`] picks a backend from the
/// configuration, and anything else (a fake in tests) can stand in.
pub trait RecordingStorage: Send + Sync + fmt::Debug {
    /// Uploads the file at `path` under `key`, hashing it on the way. Writing a key that holds
    /// the same bytes is Ok (a retried upload); different bytes are
    /// [`MediaError::ObjectConflict`] and the stored object is left as it was.
    fn put_file<'a>(
        &'a self,
        key: &'a ObjectKey,
        path: &'a Path,
    ) -> StorageFuture<'a, StoredObject>;

    /// Reads `range` of the object (all of it with `None`). A range that ends past the object is
    /// cut at its end; one that starts past it, or a missing object, is an error.
    fn get_range<'a>(
        &'a self,
        key: &'a ObjectKey,
        range: Option<Range<u64>>,
    ) -> StorageFuture<'a, ObjectSlice>;

    /// The object's length, `None` when there is no such object.
    fn head<'a>(&'a self, key: &'a ObjectKey) -> StorageFuture<'a, Option<u64>>;

    /// Removes the object; removing a missing object is Ok (a retried deletion).
    fn delete<'a>(&'a self, key: &'a ObjectKey) -> StorageFuture<'a, ()>;

    /// A URL that lets its holder GET the object until `expires` has passed, when the backend
    /// can sign one (S3); `None` when the API must sign and serve it itself (local).
    fn presign_get<'a>(
        &'a self,
        key: &'a ObjectKey,
        expires: Duration,
    ) -> StorageFuture<'a, Option<String>>;

    /// The location `put_file` reports for `key`, without touching the store.
    fn location(&self, key: &ObjectKey) -> String;
}

/// The backend named by a [`StorageConfig`].
#[derive(Debug)]
pub enum Storage {
    Local(LocalDir),
    S3(S3Store),
}

impl Storage {
    /// Opens the configured backend: creates the local directory, or builds the S3 client
    /// (no request is made; a wrong bucket or credentials show on the first operation).
    pub fn open(config: &StorageConfig) -> Result<Self, MediaError> {
        match config {
            StorageConfig::Local { dir } => LocalDir::open(dir).map(Self::Local),
            StorageConfig::S3(s3) => S3Store::open(s3).map(Self::S3),
        }
    }

    fn backend(&self) -> &dyn RecordingStorage {
        match self {
            Self::Local(local) => local,
            Self::S3(s3) => s3,
        }
    }
}

impl RecordingStorage for Storage {
    fn put_file<'a>(
        &'a self,
        key: &'a ObjectKey,
        path: &'a Path,
    ) -> StorageFuture<'a, StoredObject> {
        self.backend().put_file(key, path)
    }

    fn get_range<'a>(
        &'a self,
        key: &'a ObjectKey,
        range: Option<Range<u64>>,
    ) -> StorageFuture<'a, ObjectSlice> {
        self.backend().get_range(key, range)
    }

    fn head<'a>(&'a self, key: &'a ObjectKey) -> StorageFuture<'a, Option<u64>> {
        self.backend().head(key)
    }

    fn delete<'a>(&'a self, key: &'a ObjectKey) -> StorageFuture<'a, ()> {
        self.backend().delete(key)
    }

    fn presign_get<'a>(
        &'a self,
        key: &'a ObjectKey,
        expires: Duration,
    ) -> StorageFuture<'a, Option<String>> {
        self.backend().presign_get(key, expires)
    }

    fn location(&self, key: &ObjectKey) -> String {
        self.backend().location(key)
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}
