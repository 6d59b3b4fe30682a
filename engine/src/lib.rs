//! switchyard's call-center core: every routing decision, as a deterministic state machine.
//!
//! The core does no I/O. Time enters only as an input, randomness comes from a seeded RNG,
//! and everything the core wants done comes out of [`Engine::poll_output`]:
//!
//! ```
//! use std::time::Instant;
//! use switchyard_engine::{Engine, EngineConfig, Input, Output};
//!
//! let now = Instant::now();
//! let mut engine = Engine::new(EngineConfig::default(), 7, now);
//! engine.handle_input(Input::Timeout(now)).unwrap();
//! loop {
//!     match engine.poll_output() {
//!         Output::Switch(_cmd) => { /* send to FreeSWITCH (the driver does) */ }
//!         Output::Persist(_rec) => { /* hand to the batched writer */ }
//!         Output::Notify(_ev) => { /* live feed */ }
//!         Output::Timeout(_at) => break, // sleep until `_at` or the next input
//!     }
//! }
//! ```
//!
//! The same core runs under the tokio driver against FreeSWITCH (feature `driver`), and in
//! virtual time in [`sim`], which is how routing is tested and benchmarked: a simulated day
//! of a million calls runs in seconds.
//!
//! Layout: [`io`] (inputs and outputs), [`config`], [`agent`] and [`call`] (the state
//! machines, drawn in their docs), [`routing`] (strategies, eligibility, matching),
//! [`stats`] (live figures and 15-minute intervals), [`queueing`] (Erlang formulas and
//! expected-wait estimates), [`trace`] (why each offer went where it did), [`recording`]
//! (what is recorded and when).

pub mod agent;
pub mod call;
pub mod config;
pub mod dialer;
mod engine;
pub mod error;
mod hash;
pub mod ids;
pub mod io;
pub mod queue;
pub mod queueing;
pub mod recording;
pub mod routing;
pub mod sim;
pub mod stats;
pub mod timers;
pub mod trace;

#[cfg(feature = "driver")]
pub mod driver;

pub use config::{AgentConfig, EngineConfig, Exit, Mailbox, Membership, QueueConfig, Strategy};
pub use engine::{AdoptedCall, DialSeen, Engine, InvariantViolation, OpenDial, Recovery};
pub use error::EngineError;
pub use ids::{AgentId, CallId, CampaignId, ContactId, OfferId, QueueId, SkillId};
pub use io::{
    AmdResult, BridgeFailure, CallOpen, CallOutcome, CallRecord, CallerInfo, CdrRecord, Command,
    FlowExit, FlowExits, HangupCause, Input, JourneyRecord, LegId, LegKind, LineState, LiveEvent,
    MonitorMode, Output, Presence, Prompt, Record, RecordingCommand, SwitchCommand, SwitchEvent,
};
pub use recording::{
    RecordingAction, RecordingCapture, RecordingId, RecordingMode, RecordingPolicy, Requester,
    VoicemailOpen, VoicemailRecord,
};
