//! Configuration of the fake switch and its behaviour model (Rust API and TOML scenarios).
//!
//! ```toml
//! seed = 42
//! [agents]                       # user/<ext>
//! extensions = ["1000-1099"]
//! answer_delay = { fixed = 1.0 }
//! answer = 1.0                   # outcome weights
//! reject = 0.0
//! no_answer = 0.0
//! busy = 0.0
//! # talk_time = { exp = 120.0 }  # absent: the agent stays up until hung up
//! [[agents.overrides]]
//! extensions = ["1005"]
//! no_answer = 1.0
//! [customers]                    # sofia/gateway/<gw>/<number>
//! human = 0.7
//! machine = 0.1
//! busy = 0.1
//! no_answer = 0.05
//! failed = 0.05
//! answer_delay = { uniform = [2.0, 8.0] }
//! talk_time = { lognormal = { median = 120.0, sigma = 0.5 } }
//! amd_delay = { fixed = 2.5 }  # answer -> AMD verdict (execute_on_answer=amd|avmd_start)
//! [inbound]                      # callers arriving over the outbound socket
//! calls_per_minute = 6.0
//! destination = "5000"
//! patience = { exp = 60.0 }
//! talk_time = { exp = 180.0 }
//! dtmf = ["1", "2"]
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::rng::Dist;
use crate::error::EslError;

/// The switch itself: identity, credentials, timers, bounds.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Event-socket password (`ClueCon`).
    pub password: String,
    /// `FreeSWITCH-Hostname` / `FreeSWITCH-Switchname`.
    pub hostname: String,
    /// HEARTBEAT interval (FreeSWITCH: 20 s).
    pub heartbeat_interval: Duration,
    /// Events a listener may leave unread (FreeSWITCH's MAX_QUEUE_LEN, 100,000).
    pub max_event_queue: usize,
    /// Events dropped past the bound before the listener is killed (MAX_MISSED, 500).
    pub max_missed: usize,
    /// Where inbound calls go: the address of the dialplan's `socket` application.
    pub inbound_target: Option<String>,
    /// Length of a file played by `playback`/`uuid_broadcast` when the path says nothing
    /// (`silence_stream://<ms>` and `tone_stream://...;loops=N` carry their own).
    pub default_playback: Duration,
    /// Wall-clock time of the simulation start, in microseconds since the Unix epoch (event
    /// timestamps are this plus the virtual time elapsed).
    pub epoch_start_us: u64,
    pub scenario: Scenario,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            password: "ClueCon".into(),
            hostname: "fakeswitch".into(),
            heartbeat_interval: Duration::from_secs(20),
            max_event_queue: 100_000,
            max_missed: 500,
            inbound_target: None,
            default_playback: Duration::from_secs(2),
            epoch_start_us: 1_795_275_700_000_000,
            scenario: Scenario::default(),
        }
    }
}

/// The behaviour model.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    pub seed: u64,
    pub agents: AgentModel,
    pub customers: CustomerModel,
    pub inbound: Option<InboundModel>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: 1,
            agents: AgentModel::default(),
            customers: CustomerModel::default(),
            inbound: None,
        }
    }
}

impl Scenario {
    pub fn from_toml(text: &str) -> Result<Self, EslError> {
        toml::from_str(text).map_err(|e| EslError::Protocol {
            reason: format!("bad scenario: {e}"),
        })
    }
}

/// Agent phones (`user/<ext>`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentModel {
    /// Registered extensions: `"1000-1099"` ranges or single numbers. Others are
    /// USER_NOT_REGISTERED.
    pub extensions: Vec<String>,
    #[serde(flatten)]
    pub behaviour: AgentBehaviour,
    pub overrides: Vec<AgentOverride>,
}

impl Default for AgentModel {
    fn default() -> Self {
        AgentModel {
            extensions: vec!["1000-1099".into()],
            behaviour: AgentBehaviour::default(),
            overrides: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentOverride {
    pub extensions: Vec<String>,
    #[serde(flatten)]
    pub behaviour: AgentBehaviour,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct AgentBehaviour {
    pub answer: f64,
    pub reject: f64,
    pub no_answer: f64,
    pub busy: f64,
    pub answer_delay: Dist,
    /// Absent: the phone stays up until the far end or the API hangs up.
    pub talk_time: Option<Dist>,
}

impl Default for AgentBehaviour {
    fn default() -> Self {
        AgentBehaviour {
            answer: 1.0,
            reject: 0.0,
            no_answer: 0.0,
            busy: 0.0,
            answer_delay: Dist::Fixed(1.0),
            talk_time: None,
        }
    }
}

/// Customers dialled through a gateway (`sofia/gateway/<gw>/<number>`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CustomerModel {
    pub human: f64,
    pub machine: f64,
    pub busy: f64,
    pub no_answer: f64,
    pub failed: f64,
    /// Cause of a failed call.
    pub failed_cause: String,
    pub answer_delay: Dist,
    /// Ringing before a no-answer gives up (the network's timer; the originate timeout may
    /// cut it short).
    pub no_answer_after: Dist,
    pub talk_time: Option<Dist>,
    /// How long an answering machine talks before it hangs up.
    pub machine_greeting: Dist,
    /// How long answering-machine detection takes on an answered leg (mod_amd's `amd` run by
    /// `execute_on_answer=amd`, or mod_avmd's beep after `execute_on_answer=avmd_start`).
    pub amd_delay: Dist,
    /// Numbers with a fixed outcome: `{ "+15550001" = "busy" }`.
    pub numbers: std::collections::BTreeMap<String, String>,
}

impl Default for CustomerModel {
    fn default() -> Self {
        CustomerModel {
            human: 1.0,
            machine: 0.0,
            busy: 0.0,
            no_answer: 0.0,
            failed: 0.0,
            failed_cause: "NORMAL_TEMPORARY_FAILURE".into(),
            answer_delay: Dist::Uniform([2.0, 6.0]),
            no_answer_after: Dist::Fixed(30.0),
            talk_time: None,
            machine_greeting: Dist::Fixed(8.0),
            amd_delay: Dist::Fixed(2.5),
            numbers: Default::default(),
        }
    }
}

/// Callers reaching the center: they arrive, the dialplan hands each to the socket target.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InboundModel {
    /// Poisson arrival rate; 0 = only calls placed through [`Switch::place_inbound_call`].
    ///
    /// [`Switch::place_inbound_call`]: super::Switch::place_inbound_call
    pub calls_per_minute: f64,
    /// Stop generating after this many calls.
    pub max_calls: Option<u64>,
    /// Dialled number (`Caller-Destination-Number`).
    pub destination: String,
    /// Caller hangs up (ORIGINATOR_CANCEL) when not bridged to someone by then.
    pub patience: Option<Dist>,
    /// Once bridged, caller hangs up after this long.
    pub talk_time: Option<Dist>,
    /// Digits the caller may press (one chosen at random), `dtmf_delay` after answer.
    pub dtmf: Vec<String>,
    pub dtmf_delay: Dist,
}

impl Default for InboundModel {
    fn default() -> Self {
        InboundModel {
            calls_per_minute: 0.0,
            max_calls: None,
            destination: "5000".into(),
            patience: None,
            talk_time: None,
            dtmf: Vec::new(),
            dtmf_delay: Dist::Fixed(2.0),
        }
    }
}

impl AgentModel {
    /// The behaviour of `ext`, or `None` when it is not registered.
    pub fn lookup(&self, ext: &str) -> Option<&AgentBehaviour> {
        for o in self.overrides.iter().rev() {
            if matches_ext(&o.extensions, ext) {
                return Some(&o.behaviour);
            }
        }
        matches_ext(&self.extensions, ext).then_some(&self.behaviour)
    }
}

fn matches_ext(list: &[String], ext: &str) -> bool {
    list.iter().any(|spec| match spec.split_once('-') {
        Some((lo, hi)) => match (
            lo.trim().parse::<u64>(),
            hi.trim().parse::<u64>(),
            ext.parse::<u64>(),
        ) {
            (Ok(lo), Ok(hi), Ok(e)) => (lo..=hi).contains(&e),
            _ => false,
        },
        None => spec.trim() == ext || spec.trim() == "*",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_scenario() {
        let text = r#"
seed = 42
[agents]
extensions = ["1000-1099"]
answer_delay = { fixed = 1.0 }
[[agents.overrides]]
extensions = ["1005"]
answer = 0.0
no_answer = 1.0
[customers]
human = 0.7
busy = 0.3
answer_delay = { uniform = [2.0, 8.0] }
talk_time = { lognormal = { median = 120.0, sigma = 0.5 } }
numbers = { "+15550001" = "busy" }
[inbound]
calls_per_minute = 6.0
patience = { exp = 60.0 }
dtmf = ["1", "2"]
"#;
        let s = Scenario::from_toml(text).unwrap();
        assert_eq!(s.seed, 42);
        assert_eq!(s.agents.lookup("1005").unwrap().no_answer, 1.0);
        assert_eq!(s.agents.lookup("1006").unwrap().answer, 1.0);
        assert!(s.agents.lookup("2000").is_none());
        assert_eq!(s.customers.numbers["+15550001"], "busy");
        assert_eq!(s.inbound.unwrap().calls_per_minute, 6.0);
        assert!(Scenario::from_toml("nonsense = 1").is_err());
    }
}
