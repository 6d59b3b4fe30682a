//! The documents, as the API takes them (JSON) and as the runner reads them: a [`NumberPlan`]
//! (number -> flow id) and a [`Flow`] (steps, menus, a fallback target).
//!
//! ```text
//!  NumberPlan: "+1 555 0100" -> flow "main"         (unknown number -> default_flow)
//!  Flow "main": steps[0] is the entry
//!     hours (schedule) --open--> greet (menu "main") --1--> sales_vars (set) -> sales (queue)
//!                      \-closed-> after_hours (voicemail)     --2--> submenu "support" ...
//! ```
//!
//! Every struct refuses unknown fields: a misspelt `on_max_timeout` must be an error, not a
//! menu that silently never exits. Enums are tagged by `kind` (steps, menu actions, assignments)
//! or externally (`{"queue": "sales"}`) where the variant carries one value. Times are
//! `Duration` here and integer milliseconds (`timeout_ms`) in JSON.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which flow a dialled number runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberPlan {
    pub numbers: Vec<NumberRoute>,
    /// The flow for a number no route names (a new DID not yet configured still reaches someone).
    pub default_flow: String,
}

/// One number (E.164 `+15550100`, a DID or an extension as dialled) and its flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberRoute {
    pub number: String,
    pub flow: String,
}

/// A flow: named steps, the first being the entry; the menus its `menu` steps use; and the
/// target a call ends in when the runner gives up (prompt bound, a broken reference).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Left out, it reads as empty, which validation refuses: the API leaves it out of the
    /// documents it stores and fills in the flow's own id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub menus: Vec<Menu>,
    pub fallback: Fallback,
}

/// One step. Queue, agent, voicemail, transfer and play-and-hang-up are terminal: the runner
/// routes there. A queue may name steps to continue with when it has no agent or the caller
/// waited too long (the engine reports that later as [`crate::flow::Input::QueueExit`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Open or closed now, by the schedule's id (the schedule itself lives elsewhere).
    Schedule {
        id: String,
        schedule: String,
        open: String,
        closed: String,
    },
    /// Run a menu of this flow; its entries name where to go.
    Menu {
        id: String,
        menu: String,
    },
    /// Set call variables, then go on.
    Set {
        id: String,
        vars: Vec<Assignment>,
        next: String,
    },
    Queue {
        id: String,
        queue: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_no_agent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_max_wait: Option<String>,
    },
    Agent {
        id: String,
        agent: String,
    },
    Voicemail {
        id: String,
        mailbox: VoicemailBox,
    },
    Transfer {
        id: String,
        number: String,
    },
    PlayHangup {
        id: String,
        prompt: String,
    },
    Goto {
        id: String,
        step: String,
    },
}

impl Step {
    pub fn id(&self) -> &str {
        match self {
            Step::Schedule { id, .. }
            | Step::Menu { id, .. }
            | Step::Set { id, .. }
            | Step::Queue { id, .. }
            | Step::Agent { id, .. }
            | Step::Voicemail { id, .. }
            | Step::Transfer { id, .. }
            | Step::PlayHangup { id, .. }
            | Step::Goto { id, .. } => id,
        }
    }

    /// Terminal steps end the walk in a route.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Step::Queue { .. }
                | Step::Agent { .. }
                | Step::Voicemail { .. }
                | Step::Transfer { .. }
                | Step::PlayHangup { .. }
        )
    }
}

/// Whose voicemail box: a queue's or an agent's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum VoicemailBox {
    Queue(String),
    Agent(String),
}

/// Where a call ends when the runner gives up: a terminal target with no further exits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fallback {
    Queue(String),
    Agent(String),
    Voicemail(VoicemailBox),
    Transfer(String),
    PlayHangup(String),
}

/// One variable a `set` step assigns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Assignment {
    /// A skill the queue's routing requires, with its minimum level (1..=10).
    Skill {
        skill: String,
        level: Value,
    },
    /// Higher is served first.
    Priority {
        value: Value,
    },
    Language {
        value: Value,
    },
    AccountTier {
        value: Value,
    },
    /// Anything else the agent desktop or the CDR should see (`account_number`).
    Custom {
        name: String,
        value: Value,
    },
}

/// Where an assigned value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Value {
    Literal(String),
    /// The digits of the last pattern entry the caller matched (an account number).
    CallerInput,
    /// The caller's number as the switch gave it.
    CallerId,
}

/// An IVR menu, in mod_ivr's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    /// Left out, it reads as empty, which validation refuses: a menu stored apart from any
    /// flow (the API's `/v1/ivr-menus`) is named by its stored id instead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Played on entering the menu, and on `repeat`.
    pub greet_long: String,
    /// Played when asking again after an invalid entry or a timeout; `greet_long` if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greet_short: Option<String>,
    /// FreeSWITCH plays it after a try that did not match (and, as the capture shows, after a
    /// try that timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_sound: Option<String>,
    /// Played when the caller leaves the menus for a flow step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_sound: Option<String>,
    /// Wait for the first digit.
    #[serde(rename = "timeout_ms", with = "duration_ms")]
    pub timeout: Duration,
    /// Wait between two digits.
    #[serde(rename = "inter_digit_timeout_ms", with = "duration_ms")]
    pub inter_digit_timeout: Duration,
    /// Invalid entries before `on_max_failures`.
    pub max_failures: u8,
    /// Silences before `on_max_timeouts`.
    pub max_timeouts: u8,
    /// Digits collected per try; computed from the entries if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digit_len: Option<DigitLen>,
    /// Keys that end an entry early (not part of the digits); `#` if absent.
    #[serde(default = "default_terminators")]
    pub terminators: String,
    pub entries: Vec<MenuEntry>,
    pub on_max_failures: MenuAction,
    pub on_max_timeouts: MenuAction,
}

fn default_terminators() -> String {
    "#".to_owned()
}

/// How many digits one try collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigitLen {
    pub min: u8,
    pub max: u8,
}

/// Keys and what they do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuEntry {
    pub keys: Keys,
    pub action: MenuAction,
}

/// What a menu entry answers to. Pattern and length entries store the digits as the caller's
/// input (for `Value::CallerInput`); exact keys are choices, not data, and store nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Keys {
    /// Exactly these keys (`"2"`, `"0"`, `"*"`, `"99"`).
    Exact(String),
    /// Dialplan-style pattern: `X` any digit, `Z` 1-9, `N` 2-9, `[1-5]` a class, other keys
    /// literal (`"2XXX"`: a direct extension).
    Pattern(String),
    /// Any digits, between `min` and `max` of them (an account number; ended by `#` or by the
    /// inter-digit timeout).
    Length { min: u8, max: u8 },
}

/// What happens after a menu entry (or a menu's exit on too many failures or timeouts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MenuAction {
    /// Leave the menus for this step of the flow.
    Step { step: String },
    /// Enter another menu of the flow (stacked, for `back`).
    Submenu { menu: String },
    /// The menu that entered this one (this menu again at the top).
    Back,
    /// The first menu of the stack.
    Top,
    /// This menu again, with its long greeting; not allowed as an exit action.
    Repeat,
}

/// `Duration` as integer milliseconds in JSON.
pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        // Saturate rather than fail: validation bounds timeouts far below u64::MAX ms.
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
