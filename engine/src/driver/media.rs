//! What the driver's core asks of the media side (the live recorder endpoint and the file
//! checks) and what it hears back. The core only emits [`MediaRequest`]s
//! ([`super::CoreOutput::Media`]) and takes [`MediaReport`]s
//! ([`super::DriverCore::media_report`]); the tokio shell hands them to whatever runs the
//! media (`switchyard_media`'s SIP endpoint, UDP recorder and `ingest`), and a virtual-time
//! test answers them itself.
//!
//! ```text
//!   live:   Expect ─► Ready ─► (the core originates the recorder legs) ... legs end ─► Finished
//!   oreka:  ExpectFork ─► Ready ─► (the core runs oreka_record) ... its BYEs ─► Finished
//!           Expect ─► Refused (full, file not writable) ─► the core records on the switch
//!           Silence{on} while running; Abandon when the core gave the live capture up
//!   switch: (RECORD_STOP) Ingest ─► Ingested (waits for the file to appear, then checks it)
//! ```

use std::path::PathBuf;
use std::time::Duration;

use crate::recording::{AudioFigures, RecordingId};

/// The `switchyard_leg` value of a recorder leg.
pub const RECORDER_LEG: &str = "recorder";

/// A recorder leg's SIP user: `rec-<recording>-a` carries what the caller says (the left
/// channel), `-b` what the caller hears (the right).
pub fn recorder_user(id: RecordingId, side: char) -> String {
    format!("rec-{id}-{side}")
}

/// What the media side must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaRequest {
    /// Open `path` and answer the recorder legs `caller_user` and `agent_user` into it; report
    /// `Ready` (or `Refused`) before the legs are dialled.
    Expect {
        id: RecordingId,
        path: PathBuf,
        stereo: bool,
        caller_user: String,
        agent_user: String,
    },
    /// Open `path` and take mod_oreka's fork of `channel` (Call-ID = its uuid) into it; report
    /// `Ready` (or `Refused`) before `oreka_record` runs.
    ExpectFork {
        id: RecordingId,
        path: PathBuf,
        stereo: bool,
        channel: String,
        /// No INVITE from mod_oreka this long after `Ready` (its `oreka.conf` names another
        /// server, a firewall): the fork is forgotten and `Refused` reported, so the switch
        /// records instead.
        wait: Duration,
    },
    /// Write silence from now on (`on`), or audio again.
    Silence { id: RecordingId, on: bool },
    /// The core gave this live capture up (its legs failed): stop it, delete its file, forget
    /// its users, report nothing.
    Abandon { id: RecordingId },
    /// A switch recording closed: wait up to `wait` for `path` to appear (and stop growing),
    /// check it, report `Ingested`.
    Ingest {
        id: RecordingId,
        path: PathBuf,
        wait: Duration,
    },
}

/// What the media side reports.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaReport {
    /// The endpoint expects the legs: dial them.
    Ready { id: RecordingId },
    /// The endpoint cannot take the recording.
    Refused { id: RecordingId, error: String },
    /// Both recorder legs ended; the file was closed and checked. `figures` may come with an
    /// `error` (a file that is not whole).
    Finished {
        id: RecordingId,
        path: PathBuf,
        figures: Option<AudioFigures>,
        error: Option<String>,
    },
    /// A switch recording's file, checked (or not found in time).
    Ingested {
        id: RecordingId,
        path: PathBuf,
        figures: Option<AudioFigures>,
        error: Option<String>,
    },
}
