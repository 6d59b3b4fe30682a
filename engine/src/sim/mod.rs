//! Virtual-time simulation: the real core against a seeded call model, with no I/O.
//!
//! The harness plays the switch. Callers arrive (Poisson per queue), wait with an exponential
//! patience, talk for an exponential handle time once bridged; agent legs answer after a
//! fixed delay or not at all. Everything the engine asks of the switch is carried out in
//! virtual time, so a simulated day takes seconds and the same seed gives the same day.
//!
//! Used by the routing tests (long seeded runs with invariants checked at every step), the
//! Erlang C / Erlang A validation, the `switchyard sim inbound` command and the benchmarks.

mod campaign;
mod harness;
mod scenario;

pub use campaign::{CampaignSimConfig, CampaignSimReport, run_campaign};
pub use harness::{QueueReport, SimError, SimReport, Simulation};
pub use scenario::{AgentGroup, QueueScenario, Scenario};
