//! Recording capture for switchyard: RTP from FreeSWITCH's recorder legs -> PCM -> WAV.
//!
//! The core, [`Capture`], is sans-IO and deterministic: datagrams go in with the time they
//! arrived, PCM frames and events come out, and nothing reads a clock. Files ([`wav`]) and
//! sockets (`net`, feature `net`) are thin shells around it.
//!
//! ```
//! use std::time::Duration;
//! use switchyard_media::{Capture, CaptureConfig, CaptureOutput, Leg};
//!
//! let start = Duration::ZERO; // any monotonic clock; the capture's timeline starts here
//! let mut capture = Capture::new(CaptureConfig::default(), start).unwrap();
//! let mut datagram = Vec::new();
//! for i in 0..50u16 {
//!     let now = start + Duration::from_millis(20 * u64::from(i));
//!     // 20 ms of PCMU silence from the caller's recorder leg.
//!     switchyard_media::rtp::write_packet(&mut datagram, 0, i == 0, i, 160 * u32::from(i), 7, &[0xFF; 160]);
//!     capture.push(now, Leg::Caller, &datagram);
//!     while let Some(output) = capture.poll(now) {
//!         match output {
//!             CaptureOutput::Audio(_pcm) => { /* a WavSink writes it; a transcriber reads it */ }
//!             CaptureOutput::Event(_event) => { /* DTMF, a new SSRC */ }
//!         }
//!     }
//! }
//! capture.finish(Duration::from_secs(1));
//! while let Some(_output) = capture.poll(Duration::from_secs(1)) {}
//! assert_eq!(capture.stats().caller.packets, 50);
//! assert_eq!(capture.position(), Duration::from_secs(1));
//! ```
//!
//! Layout: [`rtp`] (packets, telephone-events), [`g711`], [`config`], `stream` (one SSRC:
//! sequence and timestamp extension), `jitter` (the reorder window), `leg` (one direction's
//! timeline), [`capture`] (the two legs together, pause spans), [`wav`], `net`, `sip` (the recorder endpoint:
//! a SIP user agent server that answers the recorder legs and routes their RTP into `net`),
//! [`ingest`] (feature `ingest`: checking and measuring recordings FreeSWITCH wrote itself),
//! `storage` (feature `storage`: the local directory or S3 bucket finished recordings go to,
//! and the upload spool that retries until the store takes them).

pub mod capture;
pub mod config;
mod error;
pub mod g711;
#[cfg(feature = "ingest")]
pub mod ingest;
mod jitter;
mod leg;
#[cfg(feature = "net")]
pub mod net;
pub mod rtp;
#[cfg(feature = "sip")]
pub mod sip;
#[cfg(feature = "storage")]
pub mod storage;
mod stream;
pub mod wav;

pub use capture::{Admission, Capture, CaptureEvent, CaptureOutput, CaptureStats, Pcm};
pub use config::{CaptureConfig, Layout, Leg, PayloadFormat, PayloadMap};
pub use error::MediaError;
pub use leg::LegStats;
pub use wav::{WavSink, WavSummary};
