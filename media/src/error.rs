//! The crate's one error type. Network input never produces an error: a bad datagram is
//! counted and dropped ([`crate::Admission`]); errors are for configuration, the caller's
//! misuse of a capture, files and sockets. A recording written elsewhere (`ingest`) that cannot
//! be measured, or only in part, is an error too: the caller keeps the file for inspection.

use std::path::PathBuf;

/// Everything that can fail in `switchyard-media`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The capture configuration cannot work (the reason says which bound or value).
    #[error("invalid capture configuration: {reason}")]
    Config { reason: &'static str },
    /// A payload type outside RTP's 7-bit range was mapped.
    #[error("payload type {payload_type} is outside 0..=127")]
    PayloadType { payload_type: u8 },
    /// A format whose clock is fixed (G.711 runs at 8 kHz) was mapped on a capture at another rate.
    #[error(
        "payload type {payload_type} runs at {clock_rate} Hz but the capture runs at {sample_rate} Hz"
    )]
    ClockRate {
        payload_type: u8,
        clock_rate: u32,
        sample_rate: u32,
    },
    /// More pause spans are waiting to be applied than the capture keeps.
    #[error("too many pending pause spans (limit {limit})")]
    PauseSpans { limit: usize },
    /// The WAV file would pass the 4 GiB that a RIFF header can describe.
    #[error("{path}: a WAV file holds at most 4 GiB of samples")]
    WavFull { path: PathBuf },
    /// Audio with a channel count other than the file's was handed to a WAV sink.
    #[error("{path}: the file has {file} channel(s), the audio {audio}")]
    Channels {
        path: PathBuf,
        file: u16,
        audio: u16,
    },
    /// Creating, writing or finalising a WAV file failed.
    #[error("{path}: {source}")]
    Wav {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    /// The recorder already has a recording under that key.
    #[error("a recording with this key is already running")]
    RecordingExists,
    /// The recorder has no recording under that key.
    #[error("no recording with this key")]
    NoSuchRecording,
    /// Another running recording already receives from that address.
    #[error("RTP from {addr} already goes to another recording")]
    FlowInUse { addr: std::net::SocketAddr },
    /// The recorder holds as many recordings as it was configured for.
    #[error("the recorder is full ({limit} recordings)")]
    RecorderFull { limit: usize },
    /// The recorder endpoint already expects (or is answering) a leg under that user.
    #[error("recorder leg {user} is already expected")]
    LegExpected { user: String },
    /// One of the recorder endpoint's bounds was reached.
    #[error("the recorder endpoint holds at most {limit} {what}")]
    SipFull { what: &'static str, limit: usize },
    /// The recorder (the `net` shell) stopped before answering.
    #[error("the recorder is not running")]
    RecorderGone,
    /// The recording holds no audio: a well-formed header and not one frame (FreeSWITCH leaves
    /// such 44-byte files behind, its issue #1787).
    #[cfg(feature = "ingest")]
    #[error("the recording holds no audio")]
    Empty,
    /// The recording was cut short (a crash): its header promised more audio than the file
    /// holds, or its lengths were never written. `report` measures the audio that is there
    /// (every whole frame); `expected` is what the header promised, `None` when it never said.
    #[cfg(feature = "ingest")]
    #[error("the recording is cut short: {:?} decoded of {}", report.duration, match expected {
        Some(expected) => format!("{expected:?}"),
        None => "a length never written".to_owned(),
    })]
    Truncated {
        report: Box<crate::ingest::AudioReport>,
        expected: Option<std::time::Duration>,
    },
    /// The file is not a recording: it does not open with a WAV header (an HTML error page
    /// uploaded instead, random bytes).
    #[cfg(feature = "ingest")]
    #[error("not a recording: the file does not start with a WAV header")]
    NotAudio,
    /// The file is a WAV file whose header or audio cannot be read (the reason says which part).
    #[cfg(feature = "ingest")]
    #[error("unreadable recording: {reason}")]
    Malformed { reason: &'static str },
    /// The recording's encoding is not one switchyard decodes (PCM, G.711 u-law and A-law,
    /// IEEE float are).
    #[cfg(feature = "ingest")]
    #[error("unsupported encoding: {encoding}")]
    Unsupported { encoding: String },
    /// Opening or reading a recording failed (`path` is `None` for a source other than a file).
    #[cfg(feature = "ingest")]
    #[error("reading the recording{}: {source}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    RecordingIo {
        path: Option<PathBuf>,
        #[source]
        source: std::io::Error,
    },
    /// An object key part cannot be used (`part` is "prefix", "tenant" or "recording id"; "store
    /// prefix" for the S3 configuration's prefix).
    #[cfg(feature = "storage")]
    #[error("invalid object key: the {part} is {reason}")]
    ObjectKey {
        part: &'static str,
        reason: &'static str,
    },
    /// The key already holds an object with other bytes: recordings are written once.
    #[cfg(feature = "storage")]
    #[error("{key} already holds a different object")]
    ObjectConflict { key: String },
    /// The file is larger than an upload takes (it is held in memory for one PUT).
    #[cfg(feature = "storage")]
    #[error("{path}: {bytes} bytes, more than the {limit} an upload takes")]
    ObjectTooLarge {
        path: PathBuf,
        bytes: u64,
        limit: u64,
    },
    /// No object under that key.
    #[cfg(feature = "storage")]
    #[error("no object {key}")]
    ObjectMissing { key: String },
    /// A read asked for an empty or inverted range.
    #[cfg(feature = "storage")]
    #[error("{key}: the range {start}..{end} is empty")]
    ObjectRange { key: String, start: u64, end: u64 },
    /// The local storage directory cannot be created or resolved.
    #[cfg(feature = "storage")]
    #[error("storage directory {path}: {source}")]
    StorageDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The storage configuration cannot make a client (bucket, region, endpoint, prefix).
    #[cfg(feature = "storage")]
    #[error("storage configuration: {source}")]
    StorageOpen {
        #[source]
        source: object_store::Error,
    },
    /// Reading the file to upload failed.
    #[cfg(feature = "storage")]
    #[error("reading {path} for upload: {source}")]
    UploadRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The store failed an operation (`op`: put, get, head, delete, presign).
    #[cfg(feature = "storage")]
    #[error("storage {op} {key}: {source}")]
    Storage {
        op: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    /// The upload task has stopped (its runtime is shutting down).
    #[cfg(feature = "storage")]
    #[error("the uploader is not running")]
    UploaderGone,
    /// A socket operation of the UDP shell failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}
