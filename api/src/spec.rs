//! The API's shapes for queues and agents, and their conversion to the engine's configuration.
//!
//! The store keeps these specs as JSON (what the portal sent, normalised); the runtime turns
//! them into `switchyard_engine` configs with the row's id. Times are seconds (numbers) here,
//! `Duration`s in the engine. Every field has a default, so a minimal body is `{"name": ".."}`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_engine::config::{
    Announcements, DEFAULT_CALLBACK_CONFIRM, EmptyRule, EscalationStep, SkillRequirement,
};
use switchyard_engine::{
    AgentConfig, AgentId, Exit, Mailbox, QueueConfig, QueueId, SkillId, Strategy,
};
use utoipa::ToSchema;

use crate::grants::DialGrants;
use crate::ids::IdKind;
use crate::spec_recording::{RecordingMode, RecordingSpec};

/// A validation failure naming the field (JSON path) at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

pub(crate) fn bad(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Longest time accepted anywhere (a year), so deadlines never overflow.
const MAX_SECONDS: f64 = 366.0 * 24.0 * 3600.0;

fn secs(field: &str, v: f64) -> Result<Duration, FieldError> {
    if !v.is_finite() || !(0.0..=MAX_SECONDS).contains(&v) {
        return Err(bad(
            field,
            "must be a number of seconds between 0 and one year",
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

fn positive_secs(field: &str, v: f64) -> Result<Duration, FieldError> {
    let d = secs(field, v)?;
    if d.is_zero() {
        return Err(bad(field, "must be greater than 0"));
    }
    Ok(d)
}

fn opt_secs(field: &str, v: Option<f64>) -> Result<Option<Duration>, FieldError> {
    v.map(|v| positive_secs(field, v)).transpose()
}

/// Where a caller goes when leaving without an agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default, ToSchema)]
#[serde(tag = "to", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ExitSpec {
    #[default]
    Hangup,
    Queue {
        queue: u32,
    },
    Voicemail {
        /// A dialplan destination: 1-128 of letters, digits and `*#+_-.@:/`.
        #[schema(pattern = "^[A-Za-z0-9*#+_.@:/-]{1,128}$")]
        destination: String,
    },
    Transfer {
        #[schema(pattern = "^[A-Za-z0-9*#+_.@:/-]{1,128}$")]
        destination: String,
    },
    Callback,
    /// A message in switchyard's own voicemail: this queue's box, or the box of `queue` or
    /// of `agent` (one of them at most); listed at `/v1/voicemail`.
    Mailbox {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<u32>,
    },
}

impl ExitSpec {
    fn to_engine(
        &self,
        field: &str,
        own: QueueId,
        grants: &DialGrants,
    ) -> Result<Exit, FieldError> {
        let granted = |d: &str| {
            let d = dest(field, d)?;
            grants.destination(&format!("{field}.destination"), &d)?;
            Ok::<_, FieldError>(d)
        };
        Ok(match self {
            ExitSpec::Hangup => Exit::Hangup,
            ExitSpec::Queue { queue } => Exit::Queue(QueueId(*queue)),
            ExitSpec::Voicemail { destination } => Exit::Voicemail(granted(destination)?),
            ExitSpec::Transfer { destination } => Exit::Transfer(granted(destination)?),
            ExitSpec::Callback => Exit::Callback,
            ExitSpec::Mailbox { queue, agent } => Exit::Mailbox(match (queue, agent) {
                (None, None) => Mailbox::Queue(own),
                (Some(q), None) => Mailbox::Queue(QueueId(*q)),
                (None, Some(a)) => Mailbox::Agent(AgentId(*a)),
                (Some(_), Some(_)) => {
                    return Err(bad(
                        &format!("{field}.agent"),
                        "a message goes to one box: a queue's or an agent's, not both",
                    ));
                }
            }),
        })
    }

    /// The voicemail box this exit names, other than its own queue's: (queue, agent).
    pub fn mailbox_target(&self) -> Option<(Option<u32>, Option<u32>)> {
        match self {
            ExitSpec::Mailbox { queue, agent } if queue.is_some() || agent.is_some() => {
                Some((*queue, *agent))
            }
            _ => None,
        }
    }

    /// The queue this exit sends callers to, if any (checked against the tenant's queues).
    pub fn target_queue(&self) -> Option<u32> {
        match self {
            ExitSpec::Queue { queue } => Some(*queue),
            _ => None,
        }
    }
}

fn dest(field: &str, d: &str) -> Result<String, FieldError> {
    // Goes into a `uuid_transfer` command line: one token of safe characters.
    if d.is_empty()
        || d.len() > 128
        || !d
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"*#+_-.@:/".contains(&b))
    {
        return Err(bad(
            field,
            "a dialplan destination: 1-128 characters of letters, digits and *#+_-.@:/",
        ));
    }
    Ok(d.to_owned())
}

/// A skill a caller needs, at a minimum proficiency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillNeed {
    /// A skill id of the tenant's (`/v1/skills`).
    pub skill: u32,
    #[schema(minimum = 1, maximum = 10)]
    pub min: u8,
}

/// A step of escalation: after `after_s` in queue, open tiers up to `max_level` and accept
/// skills `relax_by` levels below the need.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationSpec {
    #[schema(minimum = 0, maximum = 31_622_400)]
    pub after_s: f64,
    #[serde(default = "max_level")]
    pub max_level: u32,
    /// Capped at 9.
    #[serde(default)]
    #[schema(maximum = 255)]
    pub relax_by: u8,
}

fn max_level() -> u32 {
    u32::MAX
}

/// A key the caller may press to leave the queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DtmfExit {
    #[schema(pattern = "^[0-9*#]$")]
    pub digit: char,
    pub exit: ExitSpec,
}

/// Music on hold and announcements while waiting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AnnouncementsSpec {
    /// Music on hold: a file or stream (at most 512 bytes, no control characters).
    #[schema(min_length = 1, pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$")]
    pub music: String,
    /// First position / expected-wait announcement after this long in queue.
    #[schema(minimum = 0, maximum = 31_622_400)]
    pub first_after_s: Option<f64>,
    /// Then every this long.
    #[schema(exclusive_minimum = 0, maximum = 31_622_400)]
    pub every_s: Option<f64>,
    pub position: bool,
    pub expected_wait: bool,
    /// A periodic message every this long (with `periodic_file`).
    #[schema(exclusive_minimum = 0, maximum = 31_622_400)]
    pub periodic_every_s: Option<f64>,
    /// The periodic message's file (at most 512 bytes, no spaces or control characters).
    #[schema(min_length = 1, pattern = r"^[^\u0000-\u0020\u007f-\u009f]+$")]
    pub periodic_file: Option<String>,
}

impl Default for AnnouncementsSpec {
    fn default() -> Self {
        AnnouncementsSpec {
            music: "local_stream://moh".into(),
            first_after_s: Some(30.0),
            every_s: Some(60.0),
            position: true,
            expected_wait: true,
            periodic_every_s: None,
            periodic_file: None,
        }
    }
}

/// A queue as the API reads and writes it (everything but `name` is optional on create).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSpec {
    #[schema(value_type = crate::openapi::Strategy)]
    pub strategy: Strategy,
    /// Dialled numbers (DIDs) that reach this queue.
    #[schema(schema_with = crate::openapi::dialled_numbers)]
    pub numbers: Vec<String>,
    /// Skills a caller needs (each agent offered must have them all).
    #[schema(max_items = 64)]
    pub skills: Vec<SkillNeed>,
    /// Tier levels open at first (none: all).
    pub initial_max_level: Option<u32>,
    #[schema(max_items = 64)]
    pub escalation: Vec<EscalationSpec>,
    /// Answered within this counts towards the service level.
    #[schema(exclusive_minimum = 0, maximum = 31_622_400)]
    pub sl_threshold_s: f64,
    /// Abandoned within this is a short abandon.
    #[schema(minimum = 0, maximum = 31_622_400)]
    pub short_abandon_s: f64,
    pub announcements: AnnouncementsSpec,
    /// Longest wait before `on_timeout` (none: no limit).
    #[schema(exclusive_minimum = 0, maximum = 31_622_400)]
    pub max_wait_s: Option<f64>,
    pub on_timeout: ExitSpec,
    /// Longest wait with no agent logged in before `on_no_agents`.
    #[schema(exclusive_minimum = 0, maximum = 31_622_400)]
    pub max_wait_no_agent_s: Option<f64>,
    pub on_no_agents: ExitSpec,
    #[schema(value_type = crate::openapi::EmptyRule)]
    pub join_empty: EmptyRule,
    #[schema(value_type = crate::openapi::EmptyRule)]
    pub leave_when_empty: EmptyRule,
    #[schema(max_items = 64)]
    pub dtmf_exits: Vec<DtmfExit>,
    /// How long an agent's phone rings.
    #[schema(exclusive_minimum = 0, maximum = 31_622_400)]
    pub offer_timeout_s: f64,
    /// Ring-progressively: another agent joins the ringing every this long.
    #[schema(exclusive_minimum = 0, maximum = 31_622_400)]
    pub ring_progressively_step_s: f64,
    /// Wrap-up after each call (an agent's own `wrapup_s` wins).
    #[schema(minimum = 0, maximum = 31_622_400)]
    pub wrapup_s: f64,
    /// Added to every caller's priority here: 0-1000. A negative boost is refused: it would
    /// push callers behind later arrivals with no way for them to know.
    #[schema(minimum = 0, maximum = 1000)]
    pub priority_boost: i32,
    pub paused: bool,
    /// How a caller who took the callback exit is dialled back: a FreeSWITCH dial string with
    /// `{number}` once where their number goes (`sofia/gateway/carrier/{number}`). At most
    /// 256 visible characters, none of `{}[],|&^'"\` besides the placeholder (nothing that
    /// sets variables or adds a destination or application). None: through the first carrier
    /// gateway granted to the tenant (`sofia/gateway/<gateway>/{number}`).
    #[schema(
        max_length = 256,
        pattern = r"^[!#-%(-+\-./0-9:-@A-Z_`a-z~]*\{number\}[!#-%(-+\-./0-9:-@A-Z_`a-z~]*$"
    )]
    pub callback_dial: Option<String>,
    /// Dials to the customer before the callback gives up (`callback-failed`); a failed dial
    /// (busy, no answer, failed) puts the call back in line at its old place.
    #[schema(minimum = 1, maximum = 10)]
    pub callback_attempts: u32,
    /// Wait after a failed dial before the next (the call keeps its place meanwhile).
    #[schema(exclusive_minimum = 0, maximum = 31_622_400)]
    pub callback_retry_s: f64,
    /// Played to a caller taking the callback exit before they are hung up (a sound file;
    /// at most 512 bytes, no spaces or control characters). The default is FreeSWITCH's
    /// `ivr/ivr-thank_you.wav` from the standard English sounds; a recorded "we will call you
    /// back" is better.
    #[schema(min_length = 1, pattern = r"^[^\u0000-\u0020\u007f-\u009f]+$")]
    pub callback_confirm: String,
    /// Which calls are recorded, and how (a campaign's calls follow the campaign's policy).
    pub recording: RecordingSpec,
}

impl Default for QueueSpec {
    fn default() -> Self {
        QueueSpec {
            strategy: Strategy::LongestIdleAgent,
            numbers: Vec::new(),
            skills: Vec::new(),
            initial_max_level: None,
            escalation: Vec::new(),
            sl_threshold_s: 20.0,
            short_abandon_s: 5.0,
            announcements: AnnouncementsSpec::default(),
            max_wait_s: None,
            on_timeout: ExitSpec::Hangup,
            max_wait_no_agent_s: None,
            on_no_agents: ExitSpec::Hangup,
            join_empty: EmptyRule::Never,
            leave_when_empty: EmptyRule::Never,
            dtmf_exits: Vec::new(),
            offer_timeout_s: 20.0,
            ring_progressively_step_s: 10.0,
            wrapup_s: 0.0,
            priority_boost: 0,
            paused: false,
            callback_dial: None,
            callback_attempts: 3,
            callback_retry_s: 300.0,
            callback_confirm: DEFAULT_CALLBACK_CONFIRM.into(),
            recording: RecordingSpec::default(),
        }
    }
}

/// Characters a callback dial string may hold besides its `{number}`: visible ASCII without
/// what FreeSWITCH reads as syntax in an originate (`{}`/`[]` channel variables, `,` and `|`
/// more destinations, `&` an application, `^^` a new separator, quotes and a backslash). The caller's
/// number put in place of `{number}` is reduced by the engine to the same kind of text.
fn dial_char(b: u8) -> bool {
    b.is_ascii_graphic() && !br#"{}[],|&^'"\"#.contains(&b)
}

fn callback_dial(field: &str, d: &str) -> Result<String, FieldError> {
    let placeholders = d.matches("{number}").count();
    let rest = d.replace("{number}", "");
    if placeholders != 1 || d.len() > 256 || rest.is_empty() || !rest.bytes().all(dial_char) {
        return Err(bad(
            field,
            "a dial string with {number} once, such as sofia/gateway/carrier/{number}: at most \
             256 visible characters, none of {}[],|&^'\"\\ besides the placeholder",
        ));
    }
    Ok(d.to_owned())
}

/// A sound file path for a command line: no spaces or control characters.
fn sound_file(field: &str, file: &str) -> Result<String, FieldError> {
    if file.is_empty() || file.len() > 512 || file.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad(field, "a sound file path without spaces"));
    }
    Ok(file.to_owned())
}

/// Most numbers, skills, steps or keys in one list.
const MAX_LIST: usize = 64;

/// Most dials to one callback customer: beyond a few, calling again is harassment, not
/// service.
const MAX_CALLBACK_ATTEMPTS: u32 = 10;

impl QueueSpec {
    /// Checks every field and builds the engine's config for queue `id` named `name`; its
    /// exits' destinations and callback dial string must be within the tenant's `grants`.
    pub fn to_engine(
        &self,
        id: i64,
        name: &str,
        grants: &DialGrants,
    ) -> Result<QueueConfig, FieldError> {
        let id = engine_id("id", id)?;
        for (field, len) in [
            ("numbers", self.numbers.len()),
            ("skills", self.skills.len()),
            ("escalation", self.escalation.len()),
            ("dtmf_exits", self.dtmf_exits.len()),
        ] {
            if len > MAX_LIST {
                return Err(bad(field, format!("at most {MAX_LIST} entries")));
            }
        }
        for (i, n) in self.numbers.iter().enumerate() {
            if n.is_empty()
                || n.len() > 32
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'+' || b == b'*' || b == b'#')
            {
                return Err(bad(
                    &format!("numbers[{i}]"),
                    "a dialled number: 1-32 of 0-9 + * #",
                ));
            }
        }
        let mut skills = Vec::new();
        for (i, s) in self.skills.iter().enumerate() {
            if !(1..=10).contains(&s.min) {
                return Err(bad(&format!("skills[{i}].min"), "must be 1..=10"));
            }
            skills.push(SkillRequirement {
                skill: SkillId(s.skill),
                min: s.min,
            });
        }
        let mut escalation = Vec::new();
        for (i, e) in self.escalation.iter().enumerate() {
            escalation.push(EscalationStep {
                after: secs(&format!("escalation[{i}].after_s"), e.after_s)?,
                max_level: e.max_level,
                relax_by: e.relax_by.min(9),
            });
        }
        let a = &self.announcements;
        // Both go into command lines to FreeSWITCH: no control characters (NUL included).
        if a.music.is_empty() || a.music.len() > 512 || a.music.chars().any(char::is_control) {
            return Err(bad(
                "announcements.music",
                "a file or stream: 1-512 characters, no control characters",
            ));
        }
        let periodic = match (a.periodic_every_s, &a.periodic_file) {
            (None, None) => None,
            (Some(every), Some(file)) => Some((
                positive_secs("announcements.periodic_every_s", every)?,
                sound_file("announcements.periodic_file", file)?,
            )),
            _ => {
                return Err(bad(
                    "announcements.periodic_file",
                    "periodic_every_s and periodic_file go together",
                ));
            }
        };
        let mut dtmf_exits = Vec::new();
        for (i, d) in self.dtmf_exits.iter().enumerate() {
            if !matches!(d.digit, '0'..='9' | '*' | '#') {
                return Err(bad(&format!("dtmf_exits[{i}].digit"), "one of 0-9 * #"));
            }
            let field = format!("dtmf_exits[{i}].exit");
            dtmf_exits.push((d.digit, d.exit.to_engine(&field, id, grants)?));
        }
        Ok(QueueConfig {
            id,
            name: name.to_owned(),
            strategy: self.strategy,
            skills,
            escalation,
            initial_max_level: self.initial_max_level.unwrap_or(u32::MAX),
            sl_threshold: positive_secs("sl_threshold_s", self.sl_threshold_s)?,
            short_abandon: secs("short_abandon_s", self.short_abandon_s)?,
            announcements: Announcements {
                music: a.music.clone(),
                first_after: a
                    .first_after_s
                    .map(|v| secs("announcements.first_after_s", v))
                    .transpose()?,
                every: opt_secs("announcements.every_s", a.every_s)?,
                position: a.position,
                expected_wait: a.expected_wait,
                periodic,
            },
            max_wait: opt_secs("max_wait_s", self.max_wait_s)?,
            on_timeout: self.on_timeout.to_engine("on_timeout", id, grants)?,
            max_wait_no_agent: opt_secs("max_wait_no_agent_s", self.max_wait_no_agent_s)?,
            on_no_agents: self.on_no_agents.to_engine("on_no_agents", id, grants)?,
            join_empty: self.join_empty,
            leave_when_empty: self.leave_when_empty,
            dtmf_exits,
            offer_timeout: positive_secs("offer_timeout_s", self.offer_timeout_s)?,
            ring_progressively_step: positive_secs(
                "ring_progressively_step_s",
                self.ring_progressively_step_s,
            )?,
            wrapup: secs("wrapup_s", self.wrapup_s)?,
            priority_boost: if (0..=1000).contains(&self.priority_boost) {
                self.priority_boost
            } else {
                return Err(bad("priority_boost", "must be 0..=1000"));
            },
            paused: self.paused,
            callback_dial: match self.callback_dial.as_deref() {
                Some(d) => {
                    callback_dial("callback_dial", d)?;
                    Some(grants.gateway_dial("callback_dial", d)?)
                }
                // The engine's own default names a gateway the platform chose, which this
                // tenant may not be granted: a callback goes through the tenant's own first
                // gateway instead, and a tenant with none cannot offer callbacks.
                None if self.offers_callback() => match grants.gateways.first() {
                    Some(g) => Some(format!("sofia/gateway/{g}/{{number}}")),
                    None => {
                        return Err(bad(
                            "callback_dial",
                            "a callback exit dials through a carrier gateway, and none is \
                             granted to this tenant (ask the platform admin)",
                        ));
                    }
                },
                None => None,
            },
            callback_attempts: match self.callback_attempts {
                n @ 1..=MAX_CALLBACK_ATTEMPTS => n,
                _ => {
                    return Err(bad(
                        "callback_attempts",
                        format!("must be 1..={MAX_CALLBACK_ATTEMPTS}"),
                    ));
                }
            },
            callback_retry: positive_secs("callback_retry_s", self.callback_retry_s)?,
            callback_confirm: Some(sound_file("callback_confirm", &self.callback_confirm)?),
            recording: self.recording.to_engine("recording")?,
        })
    }

    /// This queue with what `grants` do not allow taken out, for a queue that must keep
    /// running (callers in it) after its tenant's grants were narrowed: an exit to a
    /// destination not granted hangs up instead, a callback dial string through a gateway not
    /// granted is dropped (the tenant's first gateway is used), and with no gateway granted at
    /// all a callback exit hangs up too. The stored row is left as the tenant wrote it.
    pub fn within(&self, grants: &DialGrants) -> QueueSpec {
        let mut s = self.clone();
        if s.callback_dial
            .as_deref()
            .is_some_and(|d| grants.gateway_dial("callback_dial", d).is_err())
        {
            s.callback_dial = None;
        }
        let no_callbacks = s.callback_dial.is_none() && grants.gateways.is_empty();
        for exit in [&mut s.on_timeout, &mut s.on_no_agents]
            .into_iter()
            .chain(s.dtmf_exits.iter_mut().map(|d| &mut d.exit))
        {
            let withdrawn = match exit {
                ExitSpec::Voicemail { destination } | ExitSpec::Transfer { destination } => {
                    grants.destination("exit", destination).is_err()
                }
                ExitSpec::Callback => no_callbacks,
                ExitSpec::Hangup | ExitSpec::Queue { .. } | ExitSpec::Mailbox { .. } => false,
            };
            if withdrawn {
                *exit = ExitSpec::Hangup;
            }
        }
        s
    }

    /// Whether any exit offers the caller a callback.
    fn offers_callback(&self) -> bool {
        [&self.on_timeout, &self.on_no_agents]
            .into_iter()
            .chain(self.dtmf_exits.iter().map(|d| &d.exit))
            .any(|e| matches!(e, ExitSpec::Callback))
    }

    /// Voicemail boxes of other queues and of agents its exits name, to check they are the
    /// tenant's: (field, queue, agent).
    pub fn mailbox_targets(&self) -> Vec<(&'static str, Option<u32>, Option<u32>)> {
        [
            ("config.on_timeout", &self.on_timeout),
            ("config.on_no_agents", &self.on_no_agents),
        ]
        .into_iter()
        .chain(
            self.dtmf_exits
                .iter()
                .map(|d| ("config.dtmf_exits", &d.exit)),
        )
        .filter_map(|(f, e)| e.mailbox_target().map(|(q, a)| (f, q, a)))
        .collect()
    }

    /// Queues this one sends callers to (overflow exits), to check they are the tenant's.
    pub fn exit_targets(&self) -> Vec<u32> {
        [&self.on_timeout, &self.on_no_agents]
            .into_iter()
            .chain(self.dtmf_exits.iter().map(|d| &d.exit))
            .filter_map(ExitSpec::target_queue)
            .collect()
    }
}

/// The ids a config holds (skills, queues), rewritten one by one: from the store's to the
/// API's as a config is shown, and back as one is received (`crate::ids`, `routes::stored_ref`).
pub trait ConfigIds {
    fn map_ids(&mut self, f: &dyn Fn(IdKind, u32) -> u32);
}

impl ConfigIds for QueueSpec {
    fn map_ids(&mut self, f: &dyn Fn(IdKind, u32) -> u32) {
        for need in &mut self.skills {
            need.skill = f(IdKind::Skill, need.skill);
        }
        for exit in [&mut self.on_timeout, &mut self.on_no_agents]
            .into_iter()
            .chain(self.dtmf_exits.iter_mut().map(|d| &mut d.exit))
        {
            match exit {
                ExitSpec::Queue { queue } => *queue = f(IdKind::Queue, *queue),
                ExitSpec::Mailbox { queue, agent } => {
                    if let Some(q) = queue {
                        *q = f(IdKind::Queue, *q);
                    }
                    if let Some(a) = agent {
                        *a = f(IdKind::Agent, *a);
                    }
                }
                _ => {}
            }
        }
    }
}

impl ConfigIds for AgentSpec {
    fn map_ids(&mut self, f: &dyn Fn(IdKind, u32) -> u32) {
        for s in &mut self.skills {
            s.skill = f(IdKind::Skill, s.skill);
        }
    }
}

/// A skill an agent has, at a proficiency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSkill {
    /// A skill id of the tenant's (`/v1/skills`).
    pub skill: u32,
    #[schema(minimum = 1, maximum = 10)]
    pub level: u8,
}

/// An agent as the API reads and writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSpec {
    /// FreeSWITCH dial string of the agent's phone (`user/1000`, `sofia/gateway/gw/...`):
    /// 1-256 visible ASCII characters, no quotes, brackets or braces.
    #[schema(pattern = r#"^[!#-&(-Z\\^-z|~]{1,256}$"#)]
    pub contact: String,
    #[schema(max_items = 64)]
    pub skills: Vec<AgentSkill>,
    /// Overrides the queue's `wrapup_s`.
    #[schema(minimum = 0, maximum = 31_622_400)]
    pub wrapup_s: Option<f64>,
    /// Not offered calls for this long after rejecting one.
    #[schema(minimum = 0, maximum = 31_622_400)]
    pub reject_delay_s: f64,
    /// ... after the phone was busy.
    #[schema(minimum = 0, maximum = 31_622_400)]
    pub busy_delay_s: f64,
    /// ... after not answering.
    #[schema(minimum = 0, maximum = 31_622_400)]
    pub no_answer_delay_s: f64,
    /// Logged out after this many unanswered offers in a row (capped at 1000).
    pub max_no_answer: u32,
    /// Keep the agent's phone connected while available (a nailed-up line): it is called
    /// once and every call is bridged to it at once, with no ring per call. For predictive
    /// campaigns. If the line drops the agent goes on break `agent-line-down`.
    pub persistent_line: bool,
    /// Replaces the recording mode of the queue or campaign for this agent's calls (a trainee
    /// recorded `always`); null keeps theirs.
    pub recording: Option<RecordingMode>,
}

impl Default for AgentSpec {
    fn default() -> Self {
        AgentSpec {
            contact: String::new(),
            skills: Vec::new(),
            wrapup_s: None,
            reject_delay_s: 10.0,
            busy_delay_s: 60.0,
            no_answer_delay_s: 30.0,
            max_no_answer: 3,
            persistent_line: false,
            recording: None,
        }
    }
}

impl AgentSpec {
    /// The contact must be one of the tenant's granted endpoints (`grants`).
    pub fn to_engine(
        &self,
        id: i64,
        name: &str,
        grants: &DialGrants,
    ) -> Result<AgentConfig, FieldError> {
        let id = engine_id("id", id)?;
        // The contact becomes part of an originate command line: no spaces or braces.
        let c = &self.contact;
        if c.is_empty()
            || c.len() > 256
            || !c
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"{}[]'\"".contains(&b))
        {
            return Err(bad(
                "contact",
                "a FreeSWITCH dial string such as user/1000 (no spaces, quotes or braces)",
            ));
        }
        let contact = grants.endpoint("contact", c)?;
        if self.skills.len() > MAX_LIST {
            return Err(bad("skills", format!("at most {MAX_LIST} entries")));
        }
        let mut skills = Vec::new();
        for (i, s) in self.skills.iter().enumerate() {
            if !(1..=10).contains(&s.level) {
                return Err(bad(&format!("skills[{i}].level"), "must be 1..=10"));
            }
            skills.push((SkillId(s.skill), s.level));
        }
        Ok(AgentConfig {
            id: AgentId(id.0),
            name: name.to_owned(),
            contact,
            skills,
            wrapup: self.wrapup_s.map(|v| secs("wrapup_s", v)).transpose()?,
            reject_delay: secs("reject_delay_s", self.reject_delay_s)?,
            busy_delay: secs("busy_delay_s", self.busy_delay_s)?,
            no_answer_delay: secs("no_answer_delay_s", self.no_answer_delay_s)?,
            max_no_answer: self.max_no_answer.min(1000),
            persistent_line: self.persistent_line,
            recording: crate::spec_recording::agent_mode(self.recording),
        })
    }
}

fn engine_id(field: &str, id: i64) -> Result<QueueId, FieldError> {
    u32::try_from(id)
        .ok()
        .filter(|v| *v < (1 << 20))
        .map(QueueId)
        .ok_or_else(|| bad(field, "id out of the engine's range"))
}

/// Names of queues, agents, skills and tenants.
pub fn check_name(field: &str, name: &str) -> Result<(), FieldError> {
    if name.trim().is_empty()
        || name.len() > 100
        || name.chars().any(crate::model::is_forbidden_in_text)
    {
        return Err(bad(
            field,
            "1-100 characters, no control or bidirectional formatting characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_make_a_valid_engine_queue() {
        let cfg = QueueSpec::default()
            .to_engine(3, "sales", &crate::grants::test_grants())
            .unwrap();
        assert_eq!(cfg.id, QueueId(3));
        assert_eq!(cfg.sl_threshold, Duration::from_secs(20));
    }

    #[test]
    fn bad_values_name_their_field() {
        let spec = QueueSpec {
            sl_threshold_s: -1.0,
            ..QueueSpec::default()
        };
        assert_eq!(
            spec.to_engine(1, "q", &crate::grants::test_grants())
                .unwrap_err()
                .field,
            "sl_threshold_s"
        );
        let spec = QueueSpec {
            skills: vec![SkillNeed { skill: 1, min: 11 }],
            ..QueueSpec::default()
        };
        assert_eq!(
            spec.to_engine(1, "q", &crate::grants::test_grants())
                .unwrap_err()
                .field,
            "skills[0].min"
        );
        let spec = QueueSpec {
            on_timeout: ExitSpec::Voicemail {
                destination: "a b".into(),
            },
            ..QueueSpec::default()
        };
        assert_eq!(
            spec.to_engine(1, "q", &crate::grants::test_grants())
                .unwrap_err()
                .field,
            "on_timeout"
        );
        let spec = QueueSpec {
            announcements: AnnouncementsSpec {
                music: "moh\u{0}.wav".into(),
                ..AnnouncementsSpec::default()
            },
            ..QueueSpec::default()
        };
        assert_eq!(
            spec.to_engine(1, "q", &crate::grants::test_grants())
                .unwrap_err()
                .field,
            "announcements.music"
        );
        let agent = AgentSpec {
            contact: "user/1 {evil}".into(),
            ..AgentSpec::default()
        };
        assert_eq!(
            agent
                .to_engine(1, "a", &crate::grants::test_grants())
                .unwrap_err()
                .field,
            "contact"
        );
    }

    #[test]
    fn a_callback_exit_without_its_own_dial_string_dials_through_the_tenants_first_gateway() {
        let spec = QueueSpec {
            on_timeout: ExitSpec::Callback,
            ..QueueSpec::default()
        };
        let grants = crate::grants::test_grants();
        let cfg = spec.to_engine(1, "q", &grants).unwrap();
        assert_eq!(
            cfg.callback_dial.as_deref(),
            Some("sofia/gateway/carrier/{number}")
        );
        let none = crate::grants::DialGrants {
            gateways: Vec::new(),
            ..grants.clone()
        };
        assert_eq!(
            spec.to_engine(1, "q", &none).unwrap_err().field,
            "callback_dial"
        );
        // A queue that offers no callback needs no gateway.
        let plain = QueueSpec::default().to_engine(1, "q", &none).unwrap();
        assert_eq!(plain.callback_dial, None);
    }

    #[test]
    fn callback_dial_strings_need_one_placeholder_and_no_dial_string_syntax() {
        let with = |d: &str| QueueSpec {
            callback_dial: Some(d.into()),
            ..QueueSpec::default()
        };
        let cfg = with("sofia/gateway/carrier/9{number}")
            .to_engine(1, "q", &crate::grants::test_grants())
            .unwrap();
        assert_eq!(
            cfg.callback_dial.as_deref(),
            Some("sofia/gateway/carrier/9{number}")
        );
        // A granted gateway takes digits around the number, nothing that reaches another host.
        assert_eq!(
            with("sofia/gateway/carrier/{number}@sip.example.com:5080;transport=tcp")
                .to_engine(1, "q", &crate::grants::test_grants())
                .unwrap_err()
                .field,
            "callback_dial"
        );
        for bad in [
            "sofia/gateway/carrier/5551234",
            "{number}",
            "sofia/gateway/a/{number}{number}",
            "{origination_caller_id_number=1}sofia/gateway/a/{number}",
            "[leg_timeout=1]sofia/gateway/a/{number}",
            "sofia/gateway/a/{number},user/1000",
            "sofia/gateway/a/{number}|user/1000",
            "sofia/gateway/a/{number} &park()",
            "^^:sofia/gateway/a/{number}",
            "sofia/gateway/a/{number}\u{0}",
            "sofia/gateway/a/{num}",
        ] {
            let err = with(bad)
                .to_engine(1, "q", &crate::grants::test_grants())
                .unwrap_err();
            assert_eq!(err.field, "callback_dial", "{bad}");
        }
        let long = format!("sofia/gateway/{}/{{number}}", "a".repeat(250));
        assert_eq!(
            with(&long)
                .to_engine(1, "q", &crate::grants::test_grants())
                .unwrap_err()
                .field,
            "callback_dial"
        );
    }

    #[test]
    fn callback_retry_rules_and_confirmation_are_checked() {
        let cfg = QueueSpec::default()
            .to_engine(1, "q", &crate::grants::test_grants())
            .unwrap();
        assert_eq!(cfg.callback_attempts, 3);
        assert_eq!(cfg.callback_retry, Duration::from_secs(300));
        assert_eq!(
            cfg.callback_confirm.as_deref(),
            Some("ivr/ivr-thank_you.wav")
        );
        for (spec, field) in [
            (
                QueueSpec {
                    callback_attempts: 0,
                    ..QueueSpec::default()
                },
                "callback_attempts",
            ),
            (
                QueueSpec {
                    callback_attempts: 11,
                    ..QueueSpec::default()
                },
                "callback_attempts",
            ),
            (
                QueueSpec {
                    callback_retry_s: 0.0,
                    ..QueueSpec::default()
                },
                "callback_retry_s",
            ),
            (
                QueueSpec {
                    callback_confirm: "my file.wav".into(),
                    ..QueueSpec::default()
                },
                "callback_confirm",
            ),
        ] {
            assert_eq!(
                spec.to_engine(1, "q", &crate::grants::test_grants())
                    .unwrap_err()
                    .field,
                field
            );
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err =
            serde_json::from_str::<QueueSpec>(r#"{"strategy":"top-down","bogus":1}"#).unwrap_err();
        assert!(err.to_string().contains("bogus"));
    }
}
