//! Which store recordings go to, as written in the configuration file:
//!
//! ```toml
//! [storage]
//! kind = "local"
//! dir = "/var/lib/switchyard/recordings"
//! ```
//!
//! ```toml
//! [storage]
//! kind = "s3"
//! bucket = "recordings"
//! prefix = "switchyard"            # optional: every key goes under it
//! region = "eu-west-1"             # optional: else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1
//! endpoint = "http://127.0.0.1:9000"  # optional: MinIO, moto, another S3-compatible server
//! allow_http = true                # optional: plain HTTP, for a loopback test server
//! virtual_hosted_style = false     # optional: path style (the default) suits compatible servers
//! # access_key_id / secret_access_key: optional, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
//! # (and AWS_SESSION_TOKEN...) from the environment, which is where secrets belong.
//! ```

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// The storage backend and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StorageConfig {
    /// A directory on this machine (created if missing).
    Local { dir: PathBuf },
    /// An S3 bucket, on AWS or an S3-compatible server.
    S3(S3Config),
}

/// An S3 bucket's settings; anything not given here is read from the `AWS_*` environment
/// variables (`AmazonS3Builder::from_env`), and the values here win over the environment.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct S3Config {
    pub bucket: String,
    /// Put before every key (no leading or trailing `/`); empty for none.
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub region: Option<String>,
    /// The server's URL when it is not AWS (`http://127.0.0.1:9000`).
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Allow `http://` endpoints: for a test server on loopback, never across a network.
    #[serde(default)]
    pub allow_http: bool,
    /// `https://bucket.host/key` instead of `https://host/bucket/key`.
    #[serde(default)]
    pub virtual_hosted_style: bool,
}

impl S3Config {
    /// A bucket with every other setting at its default (from the environment).
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: String::new(),
            region: None,
            endpoint: None,
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
            virtual_hosted_style: false,
        }
    }
}

// By hand so that the secret key never reaches a log line.
impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .finish()
    }
}
