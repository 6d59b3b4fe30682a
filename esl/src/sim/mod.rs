//! A fake FreeSWITCH 1.10 for tests, benchmarks and the demo (feature `sim`).
//!
//! It speaks the Event Socket exactly as the captures in `../shared/esl-captures` show:
//! inbound connections (auth, event/filter/myevents, api and bgapi), outbound sockets for
//! inbound calls (`connect`, `sendmsg`, linger), and channels whose events carry the same
//! headers in the same order as the real ones. A seeded behaviour model decides what agents,
//! customers and callers do; faults can be injected.
//!
//! - [`Switch`] (module `core`): the sans-IO state machine. Time and randomness are inputs.
//! - [`net`]: the tokio shell ([`net::spawn`], [`run_standalone`]).
//! - [`wav`]: the WAV files `uuid_record` and the `record` application leave behind.
//! - [`tone`]: every channel's voice (`sim_tone_hz`: callers ~440 Hz, agents ~1000 Hz), shared
//!   by the WAVs and recorder-leg RTP; u-law and Goertzel helpers for tests.
//! - [`sip`] and `uac`: recorder legs (`sofia/<profile>/<user>@<ip>:<port>`) dialled over
//!   real UDP by [`net`], streaming RTP of the eavesdropped party ([`RecorderAction`]).
//! - [`wire`]: the switch on an in-memory wire in virtual time ([`Wire`]): our client ends of
//!   its inbound links and outbound sockets, for stepping an engine against it without TCP.
//!
//! The run loop, without sockets (what [`net`] does with them):
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::BytesMut;
//! use switchyard_esl::codec::CommandDecoder;
//! use switchyard_esl::sim::{ConnKind, Output, SimConfig, Switch};
//!
//! let t0 = Instant::now();
//! let mut sw = Switch::new(SimConfig::default(), 42, t0);
//! let conn = sw.connection_opened(t0, ConnKind::Inbound);
//! let mut wire = BytesMut::from(&b"auth ClueCon\n\napi originate user/1000 &park()\n\n"[..]);
//! let mut dec = CommandDecoder::default();
//! while let Some(frame) = dec.decode(&mut wire)? {
//!     sw.handle_command(t0, conn, frame);
//! }
//! // The phone answers about a second later.
//! let mut now = t0;
//! while let Some(t) = sw.poll_timeout().filter(|t| *t <= t0 + Duration::from_secs(5)) {
//!     now = t;
//!     sw.handle_timeout(now);
//! }
//! let mut replies = Vec::new();
//! while let Some(out) = sw.poll_output() {
//!     if let Output::Send(_, msg) = out {
//!         replies.push(msg);
//!     }
//! }
//! assert_eq!(sw.channel_count(), 1);
//! # Ok::<(), switchyard_esl::EslError>(())
//! ```

mod channel;
mod clock;
pub mod config;
mod core;
pub mod net;
mod oreka;
pub mod rng;
pub mod sip;
pub mod tone;
mod uac;
pub mod wav;
pub mod wire;

pub use config::{
    AfterMessage, AfterSocket, AgentBehaviour, AgentModel, AgentOverride, BridgeRace,
    CustomerModel, DEFAULT_MODULES, DtmfPress, DtmfScript, InboundModel, PhoneTransfer,
    RaceOutcome, ResumeLoop, Scenario, ScenarioFile, SimConfig, SoundFiles, SwitchModel,
    VoiceMessage,
};
pub use core::{
    ConnId, ConnKind, Fault, InboundCall, OrekaAction, OrekaSetup, Output, RecorderAction,
    RecordingJob, Switch,
};
pub use net::{SimHandle, StandaloneConfig, run_standalone, spawn};
pub use rng::{Dist, SimRng};
pub use wire::{Link, RecorderDials, Socket, Wire, WireEvent};
