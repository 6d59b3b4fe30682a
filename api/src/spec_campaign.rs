//! The API's shape of a campaign and its conversion to the engine's [`CampaignConfig`].
//!
//! Like the queue and agent specs: every field has a default (a minimal body is `{"name":
//! "..", "config": {"queue": 3}}`), unknown fields are refused, times are seconds, and every
//! invalid value is a [`FieldError`] naming its field. Schedule instants are RFC 3339, the
//! calling window local `HH:MM` in each callee's own zone.

use std::time::Duration;
use switchyard_engine::dialer::connect::ProgressiveDial;

use serde::{Deserialize, Serialize};
use switchyard_engine::dialer::config::{
    AmdPolicy, CallingWindow, CampaignConfig, DialMode, MachineAction, PreviewAccept, RetryRule,
    RetryRules,
};
use switchyard_engine::dialer::window;
use switchyard_engine::{CampaignId, QueueId};
use utoipa::ToSchema;

pub use crate::spec_recording::{RecordingMode, RecordingSpec};

use crate::spec::FieldError;

fn bad(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// How lines are matched to agents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ModeSpec {
    /// The agent sees the contact first and the customer is dialled when they accept.
    Preview,
    /// One line per free agent.
    Progressive,
    /// Paced on the predicted risk of each dial against the abandon budget.
    #[default]
    Predictive,
}

/// What to do when answering-machine detection says a machine answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnMachine {
    #[default]
    Drop,
    /// Play `amd.message`, then hang up.
    LeaveMessage,
    /// Connect it to an agent like a person.
    ToAgent,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AmdSpec {
    pub enabled: bool,
    pub on_machine: OnMachine,
    /// The recording left on a machine (required with `leave-message`).
    pub message: Option<String>,
    /// No verdict by then: treat the line as a person.
    #[schema(exclusive_minimum = 0, maximum = 30)]
    pub timeout_s: f64,
}

impl Default for AmdSpec {
    fn default() -> Self {
        AmdSpec {
            enabled: false,
            on_machine: OnMachine::Drop,
            message: None,
            timeout_s: 4.0,
        }
    }
}

/// When and how often a contact is tried again after one outcome.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    #[schema(minimum = 0, maximum = 31_622_400)]
    pub interval_s: f64,
    /// Attempts in all, the first included (1-100).
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: u32,
}

impl RetrySpec {
    fn from_engine(r: RetryRule) -> RetrySpec {
        RetrySpec {
            interval_s: r.interval.as_secs_f64(),
            max_attempts: r.max_attempts,
        }
    }

    fn to_engine(self, field: &str) -> Result<RetryRule, FieldError> {
        if !self.interval_s.is_finite() || !(0.0..=MAX_SECONDS).contains(&self.interval_s) {
            return Err(bad(
                &format!("{field}.interval_s"),
                "must be a number of seconds between 0 and one year",
            ));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(bad(&format!("{field}.max_attempts"), "must be 1..=100"));
        }
        Ok(RetryRule {
            interval: Duration::from_secs_f64(self.interval_s),
            max_attempts: self.max_attempts,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetryRulesSpec {
    pub busy: RetrySpec,
    pub no_answer: RetrySpec,
    pub failed: RetrySpec,
    pub machine: RetrySpec,
    /// A person answered and no agent was free in time.
    pub abandoned: RetrySpec,
}

impl Default for RetryRulesSpec {
    fn default() -> Self {
        let d = RetryRules::default();
        RetryRulesSpec {
            busy: RetrySpec::from_engine(d.busy),
            no_answer: RetrySpec::from_engine(d.no_answer),
            failed: RetrySpec::from_engine(d.failed),
            machine: RetrySpec::from_engine(d.machine),
            abandoned: RetrySpec::from_engine(d.abandoned),
        }
    }
}

/// Local hours in each callee's own time zone, `HH:MM`, start inclusive, end exclusive
/// (`24:00` for midnight).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WindowSpec {
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    pub start: String,
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    pub end: String,
}

impl Default for WindowSpec {
    fn default() -> Self {
        WindowSpec {
            start: "08:00".into(),
            end: "21:00".into(),
        }
    }
}

fn minute_of(field: &str, hhmm: &str) -> Result<u16, FieldError> {
    let err = || bad(field, "a local time HH:MM (00:00-24:00)");
    let (h, m) = hhmm.split_once(':').ok_or_else(err)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(err());
    }
    let h: u16 = h.parse().map_err(|_| err())?;
    let m: u16 = m.parse().map_err(|_| err())?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(err());
    }
    Ok(h * 60 + m)
}

/// Progressive only: how each dial starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProgressiveDialSpec {
    /// Ring agents first until their answer times are known, then dial customers first while
    /// the agents answer fast enough for the 2-second rule and the day's ledger allows.
    #[default]
    Auto,
    /// Dial customers first from the start (phones that auto-answer, persistent lines); the
    /// ledger still rings agents first once the day is at the abandon target.
    CustomerFirst,
    /// Always ring the agent first, then dial the customer.
    AgentFirst,
}

/// Preview only: how an agent takes a contact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PreviewAcceptSpec {
    /// The agent's phone rings with the contact's number; answering accepts.
    #[default]
    Phone,
    /// The agent is reserved without ringing and sees the contact on `/agent`: Accept rings
    /// its phone (or uses its persistent line) and then dials the customer, Skip passes the
    /// contact to the next agent; no answer within `preview_timeout_s` counts as no answer.
    Desktop,
}

/// Most disposition codes a campaign lists.
pub const MAX_DISPOSITIONS: usize = 50;

/// A campaign as the API reads and writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignSpec {
    pub mode: ModeSpec,
    /// The queue whose agents take the calls (one of the tenant's; required).
    pub queue: i64,
    /// Dial nothing before this instant (RFC 3339).
    pub start: Option<String>,
    /// Dial nothing after this instant (RFC 3339).
    pub end: Option<String>,
    /// The number shown to the callee: `+` and 1-20 digits.
    #[schema(pattern = r"^\+?[0-9]{1,20}$")]
    pub caller_id: String,
    /// The name shown with it (at most 64 characters, no quotes or control characters).
    pub caller_id_name: String,
    /// Dial string; `{number}` becomes the contact's E.164 number.
    pub dial: String,
    /// Lines in flight at most (1-10000).
    #[schema(minimum = 1, maximum = 10000)]
    pub max_lines: u32,
    /// A line rings this long before it counts as no answer (15-120 s).
    #[schema(minimum = 15, maximum = 120)]
    pub ring_timeout_s: f64,
    /// Predictive: a line still ringing after this many seconds (15-120) is released early
    /// when the person who might yet answer it would find no agent (recorded as no answer and
    /// retried by that rule). `null` lets every line ring for `ring_timeout_s`.
    #[schema(minimum = 15, maximum = 120)]
    pub release_after_s: Option<f64>,
    /// Abandoned / answered by a person, per day and 30 days (0-0.5, exclusive of 0).
    #[schema(exclusive_minimum = 0, maximum = 0.5)]
    pub abandon_target: f64,
    /// Played to a person no agent reached within 2 s.
    pub abandon_message: String,
    pub recording: RecordingSpec,
    pub amd: AmdSpec,
    pub retry: RetryRulesSpec,
    pub window: WindowSpec,
    /// Blended agents: keep this many of the queue's ready agents for inbound calls.
    pub agent_reserve: u32,
    /// IANA zone whose midnight starts a ledger day.
    pub ledger_zone: String,
    pub progressive_dial: ProgressiveDialSpec,
    pub preview_accept: PreviewAcceptSpec,
    /// Desktop previews: seconds (5-1800) a reservation waits for Accept or Skip.
    #[schema(minimum = 5, maximum = 1800)]
    pub preview_timeout_s: f64,
    /// The disposition codes agents choose from on `/agent` (at most 50, each 1-64
    /// characters, no duplicates); empty: agents type a code.
    pub dispositions: Vec<String>,
}

impl Default for CampaignSpec {
    fn default() -> Self {
        let d = CampaignConfig::default();
        CampaignSpec {
            mode: ModeSpec::Predictive,
            queue: 0,
            start: None,
            end: None,
            caller_id: String::new(),
            caller_id_name: String::new(),
            dial: d.dial,
            max_lines: d.max_lines,
            ring_timeout_s: d.ring_timeout.as_secs_f64(),
            release_after_s: d.release_after.map(|r| r.as_secs_f64()),
            abandon_target: d.abandon_target,
            abandon_message: d.abandon_message,
            recording: RecordingSpec::default(),
            amd: AmdSpec::default(),
            retry: RetryRulesSpec::default(),
            window: WindowSpec::default(),
            agent_reserve: 0,
            ledger_zone: d.ledger_zone,
            progressive_dial: ProgressiveDialSpec::Auto,
            preview_accept: PreviewAcceptSpec::Phone,
            preview_timeout_s: d.preview_timeout.as_secs_f64(),
            dispositions: Vec::new(),
        }
    }
}

/// Longest time accepted anywhere (a year).
const MAX_SECONDS: f64 = 366.0 * 24.0 * 3600.0;

/// A file or stream handed to FreeSWITCH: one token, no control characters.
fn sound(field: &str, s: &str) -> Result<String, FieldError> {
    if s.is_empty() || s.len() > 512 || s.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad(
            field,
            "a sound file: 1-512 characters, no spaces or control characters",
        ));
    }
    Ok(s.to_owned())
}

fn instant(field: &str, s: &Option<String>) -> Result<Option<u64>, FieldError> {
    let Some(s) = s else {
        return Ok(None);
    };
    let ts: jiff::Timestamp = s
        .parse()
        .map_err(|_| bad(field, "an RFC 3339 instant such as 2026-03-01T09:00:00Z"))?;
    u64::try_from(ts.as_millisecond())
        .map(Some)
        .map_err(|_| bad(field, "must be after 1970"))
}

impl CampaignSpec {
    /// Checks every field and builds the engine's config for campaign `id` named `name`.
    /// The dial string and caller id must be within the tenant's `grants`.
    pub fn to_engine(
        &self,
        id: i64,
        name: &str,
        grants: &crate::grants::DialGrants,
    ) -> Result<CampaignConfig, FieldError> {
        let id = u32::try_from(id)
            .ok()
            .filter(|v| *v < (1 << 20))
            .ok_or_else(|| bad("id", "id out of the engine's range"))?;
        let queue = u32::try_from(self.queue)
            .ok()
            .filter(|v| *v > 0 && *v < (1 << 20))
            .ok_or_else(|| bad("queue", "one of your queues' ids is required"))?;
        let c = &self.caller_id;
        let digits = c.strip_prefix('+').unwrap_or(c);
        if !c.is_empty()
            && (digits.is_empty()
                || digits.len() > 20
                || !digits.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad("caller_id", "a number: + and 1-20 digits"));
        }
        let n = &self.caller_id_name;
        if n.chars().count() > 64
            || n.chars()
                .any(|ch| ch.is_control() || "'\"{}[],".contains(ch))
        {
            return Err(bad(
                "caller_id_name",
                "at most 64 characters, no quotes, braces, brackets, commas or control characters",
            ));
        }
        let d = &self.dial;
        if d.len() > 512
            || d.chars()
                .any(|ch| ch.is_control() || ch == ' ' || ch == '\'')
        {
            return Err(bad(
                "dial",
                "a dial string: at most 512 characters, no spaces, quotes or control characters",
            ));
        }
        if !d.contains("{number}") {
            return Err(bad("dial", "must contain {number}"));
        }
        grants.caller_id("caller_id", c)?;
        let dial = grants.gateway_dial("dial", d)?;
        if self.max_lines == 0 || self.max_lines > 10_000 {
            return Err(bad("max_lines", "must be 1..=10000"));
        }
        if !self.ring_timeout_s.is_finite() || !(15.0..=120.0).contains(&self.ring_timeout_s) {
            return Err(bad("ring_timeout_s", "must be 15-120 seconds"));
        }
        if let Some(r) = self.release_after_s
            && !(r.is_finite() && (15.0..=120.0).contains(&r))
        {
            return Err(bad("release_after_s", "must be 15-120 seconds or null"));
        }
        if !(self.abandon_target > 0.0 && self.abandon_target <= 0.5) {
            return Err(bad("abandon_target", "must be in (0, 0.5]"));
        }
        let abandon_message = sound("abandon_message", &self.abandon_message)?;
        let recording = self.recording.to_engine("recording")?;
        let a = &self.amd;
        if !(a.timeout_s > 0.0 && a.timeout_s <= 30.0) {
            return Err(bad("amd.timeout_s", "must be in (0, 30] seconds"));
        }
        let on_machine = match a.on_machine {
            OnMachine::Drop => MachineAction::Drop,
            OnMachine::ToAgent => MachineAction::ToAgent,
            OnMachine::LeaveMessage => {
                let m = a
                    .message
                    .as_deref()
                    .ok_or_else(|| bad("amd.message", "required with leave-message"))?;
                MachineAction::LeaveMessage(sound("amd.message", m)?)
            }
        };
        if let Some(m) = &a.message {
            sound("amd.message", m)?;
        }
        let r = &self.retry;
        let retry = RetryRules {
            busy: r.busy.to_engine("retry.busy")?,
            no_answer: r.no_answer.to_engine("retry.no_answer")?,
            failed: r.failed.to_engine("retry.failed")?,
            machine: r.machine.to_engine("retry.machine")?,
            abandoned: r.abandoned.to_engine("retry.abandoned")?,
        };
        let w = CallingWindow {
            start_minute: minute_of("window.start", &self.window.start)?,
            end_minute: minute_of("window.end", &self.window.end)?,
        };
        if w.start_minute >= w.end_minute {
            return Err(bad("window.end", "must be after window.start"));
        }
        let start = instant("start", &self.start)?;
        let end = instant("end", &self.end)?;
        if let (Some(s), Some(e)) = (start, end)
            && s >= e
        {
            return Err(bad("end", "must be after start"));
        }
        if window::zone(&self.ledger_zone).is_none() {
            return Err(bad(
                "ledger_zone",
                "an IANA time zone such as America/New_York",
            ));
        }
        if self.agent_reserve > 10_000 {
            return Err(bad("agent_reserve", "at most 10000"));
        }
        if !(self.preview_timeout_s.is_finite() && (5.0..=1800.0).contains(&self.preview_timeout_s))
        {
            return Err(bad("preview_timeout_s", "5 to 1800 seconds"));
        }
        if self.dispositions.len() > MAX_DISPOSITIONS {
            return Err(bad("dispositions", "at most 50 codes"));
        }
        for (i, code) in self.dispositions.iter().enumerate() {
            if code.trim().is_empty()
                || code.trim() != code
                || code.chars().count() > 64
                || code.chars().any(crate::model::is_forbidden_in_text)
            {
                return Err(bad(
                    "dispositions",
                    "each code 1-64 characters, no control characters or outer spaces",
                ));
            }
            if self.dispositions[..i].contains(code) {
                return Err(bad("dispositions", format!("{code:?} is listed twice")));
            }
        }
        let cfg = CampaignConfig {
            id: CampaignId(id),
            name: name.to_owned(),
            mode: match self.mode {
                ModeSpec::Preview => DialMode::Preview,
                ModeSpec::Progressive => DialMode::Progressive,
                ModeSpec::Predictive => DialMode::Predictive,
            },
            queue: QueueId(queue),
            caller_id_number: self.caller_id.clone(),
            caller_id_name: self.caller_id_name.clone(),
            dial,
            max_lines: self.max_lines,
            ring_timeout: Duration::from_secs_f64(self.ring_timeout_s),
            release_after: self.release_after_s.map(Duration::from_secs_f64),
            abandon_target: self.abandon_target,
            abandon_message,
            amd: AmdPolicy {
                enabled: a.enabled,
                on_machine,
                timeout: Duration::from_secs_f64(a.timeout_s),
            },
            retry,
            window: w,
            start_unix_ms: start,
            end_unix_ms: end,
            ledger_zone: self.ledger_zone.clone(),
            recording,
            agent_reserve: self.agent_reserve,
            progressive_dial: match self.progressive_dial {
                ProgressiveDialSpec::Auto => ProgressiveDial::Auto,
                ProgressiveDialSpec::CustomerFirst => ProgressiveDial::CustomerFirst,
                ProgressiveDialSpec::AgentFirst => ProgressiveDial::AgentFirst,
            },
            preview_accept: match self.preview_accept {
                PreviewAcceptSpec::Phone => PreviewAccept::Phone,
                PreviewAcceptSpec::Desktop => PreviewAccept::Desktop,
            },
            preview_timeout: Duration::from_secs_f64(self.preview_timeout_s),
            ..CampaignConfig::default()
        };
        // The engine's own checks, under the API's field names (they should never fire after
        // the ones above; a mismatch is still an answer, not a panic).
        cfg.validate().map_err(|(field, message)| {
            let field = match field {
                "ring_timeout" => "ring_timeout_s",
                "release_after" => "release_after_s",
                "window" => "window.end",
                "recording" => "recording.percent",
                "preview_timeout" => "preview_timeout_s",
                other => other,
            };
            bad(field, message)
        })?;
        Ok(cfg)
    }
}

impl crate::spec::ConfigIds for CampaignSpec {
    /// The campaign's queue; 0 (none given) stays 0 both ways, so a missing queue is refused
    /// as missing rather than read as some number's decoding.
    fn map_ids(&mut self, f: &dyn Fn(crate::ids::IdKind, u32) -> u32) {
        if let Ok(q) = u32::try_from(self.queue)
            && q != 0
        {
            self.queue = i64::from(f(crate::ids::IdKind::Queue, q));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CampaignSpec {
        CampaignSpec {
            queue: 1,
            ..CampaignSpec::default()
        }
    }

    #[test]
    fn defaults_with_a_queue_make_a_valid_engine_campaign() {
        let cfg = spec()
            .to_engine(4, "renewals", &crate::grants::test_grants())
            .unwrap();
        assert_eq!(cfg.id, CampaignId(4));
        assert_eq!(cfg.window, CallingWindow::default());
        assert!((cfg.abandon_target - 0.03).abs() < 1e-12);
        assert_eq!(cfg.preview_accept, PreviewAccept::Phone, "today's previews");
        let desktop = CampaignSpec {
            mode: ModeSpec::Preview,
            preview_accept: PreviewAcceptSpec::Desktop,
            preview_timeout_s: 45.0,
            ..spec()
        }
        .to_engine(4, "renewals", &crate::grants::test_grants())
        .unwrap();
        assert_eq!(desktop.preview_accept, PreviewAccept::Desktop);
        assert_eq!(desktop.preview_timeout, Duration::from_secs(45));
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases: Vec<(CampaignSpec, &str)> = vec![
            (CampaignSpec::default(), "queue"),
            (
                CampaignSpec {
                    preview_timeout_s: 2.0,
                    ..spec()
                },
                "preview_timeout_s",
            ),
            (
                CampaignSpec {
                    preview_timeout_s: f64::NAN,
                    ..spec()
                },
                "preview_timeout_s",
            ),
            (
                CampaignSpec {
                    dispositions: vec!["sale".into(), "sale".into()],
                    ..spec()
                },
                "dispositions",
            ),
            (
                CampaignSpec {
                    dispositions: vec![String::new()],
                    ..spec()
                },
                "dispositions",
            ),
            (
                CampaignSpec {
                    ring_timeout_s: 10.0,
                    ..spec()
                },
                "ring_timeout_s",
            ),
            (
                CampaignSpec {
                    release_after_s: Some(5.0),
                    ..spec()
                },
                "release_after_s",
            ),
            (
                CampaignSpec {
                    window: WindowSpec {
                        start: "21:00".into(),
                        end: "08:00".into(),
                    },
                    ..spec()
                },
                "window.end",
            ),
            (
                CampaignSpec {
                    window: WindowSpec {
                        start: "8am".into(),
                        end: "21:00".into(),
                    },
                    ..spec()
                },
                "window.start",
            ),
            (
                CampaignSpec {
                    start: Some("yesterday".into()),
                    ..spec()
                },
                "start",
            ),
            (
                CampaignSpec {
                    ledger_zone: "Mars/Olympus".into(),
                    ..spec()
                },
                "ledger_zone",
            ),
            (
                CampaignSpec {
                    amd: AmdSpec {
                        enabled: true,
                        on_machine: OnMachine::LeaveMessage,
                        ..AmdSpec::default()
                    },
                    ..spec()
                },
                "amd.message",
            ),
            (
                CampaignSpec {
                    dial: "sofia/gw/x".into(),
                    ..spec()
                },
                "dial",
            ),
        ];
        for (s, field) in cases {
            assert_eq!(
                s.to_engine(1, "c", &crate::grants::test_grants())
                    .unwrap_err()
                    .field,
                field
            );
        }
        let mut s = spec();
        s.retry.busy.max_attempts = 0;
        assert_eq!(
            s.to_engine(1, "c", &crate::grants::test_grants())
                .unwrap_err()
                .field,
            "retry.busy.max_attempts"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<CampaignSpec>(r#"{"queue":1,"bogus":1}"#).unwrap_err();
        assert!(err.to_string().contains("bogus"));
    }
}
