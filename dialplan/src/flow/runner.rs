//! The sans-IO runner: one caller walked through one flow. It reads no clock and does no I/O;
//! the ESL shell turns its outputs into `play_and_get_digits` / `playback` / the route, and the
//! results of `play_and_get_digits` back into inputs ([`read_input`]).
//!
//! ```text
//!                 CallArrived
//!   NotStarted ---------------> walk steps (schedule? ask FlowContext; set; goto)
//!                                  |                     |
//!                       menu step  v                     v terminal step
//!                 +----------> Collecting            Route(target) --> Ended
//!   Digits/Timeout|   one PlayAndGetDigits (tries 1)    \-- queue --> InQueue
//!   /Invalid      |   at a time; the runner counts          QueueExit(no agent | max wait)
//!                 +--- failures and timeouts itself          -> walk on from the queue's
//!                      entry -> submenu | back | top |          on_no_agent / on_max_wait
//!                      repeat (ask again) | step (leave, walk on)
//!
//!   every prompt counts; the 51st (MAX_PROMPTS_PER_CALL) is not played: Route(fallback)
//! ```
//!
//! Why one try per `play_and_get_digits`: with FreeSWITCH's own retries the runner could not
//! tell a caller who pressed `*` twice then went quiet from one who never pressed anything (the
//! capture shows `read_result` stays `success` after three invalid tries), nor play the short
//! greeting on the second try, nor keep mod_ivr's separate failure and timeout counts.
//!
//! Everything visited, every key pressed and every outcome goes into the [`Journey`], bounded
//! by [`MAX_JOURNEY_ENTRIES`] (past it, entries are counted in `dropped`). Outputs wait in a
//! queue the caller drains with `poll_output` after every input; one input yields at most an
//! exit sound and one prompt or route, so the queue holds at most two.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::model::{Assignment, Fallback, Flow, Keys, MenuAction, Step, Value, VoicemailBox};
use super::validate::{parse_level, parse_priority};
use super::{MAX_DIGITS, MAX_JOURNEY_ENTRIES, MAX_MENU_DEPTH, MAX_PROMPTS_PER_CALL, pattern};
use super::{MAX_STEPS_PER_WALK, MAX_STRING_LEN};
use crate::DialplanError;

/// What the runner asks the outside world while walking.
pub trait FlowContext {
    /// Whether the schedule is open now; `None` if the caller cannot tell (an unknown schedule):
    /// the runner then takes the closed branch, which is where a center sends callers it cannot
    /// serve (voicemail, a message), and notes it in the journey.
    fn schedule_open(&self, schedule: &str) -> Option<bool>;
}

impl<F: Fn(&str) -> Option<bool>> FlowContext for F {
    fn schedule_open(&self, schedule: &str) -> Option<bool> {
        self(schedule)
    }
}

/// Who is calling, as the switch says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerInfo {
    /// `Caller-Caller-ID-Number`.
    pub caller_id: String,
    /// The number dialled (the DID), for the journey and the CDR.
    pub dialled: String,
}

/// What the shell tells the runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// The call reached the flow: walk from its first step.
    CallArrived,
    /// `digits` set (the terminator is not part of it).
    Digits(String),
    /// `read_result=failure`, `digits` unset: nothing pressed in time.
    Timeout,
    /// `read_result=success`, `digits` unset, `digits_invalid` set: keys the menu's regex refused.
    Invalid { entered: String },
    /// The queue the call was routed to gave up (the engine's decision).
    QueueExit(QueueExit),
}

/// Why a queue let the caller go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueExit {
    NoAgent,
    MaxWait,
}

/// Maps the channel variables `play_and_get_digits` leaves (CHANNEL_EXECUTE_COMPLETE carries
/// `Application-Response: _none_`; the result is only in `variable_digits`,
/// `variable_read_result`, `variable_digits_invalid`) to an input. An absent variable is `None`;
/// `_undef_` (what `uuid_getvar` answers for one) counts as absent.
///
/// The shell must take the variables of this execution (from its EXECUTE_COMPLETE, or unset
/// `digits` and `digits_invalid` before executing): channel variables outlive the application.
pub fn read_input(
    digits: Option<&str>,
    read_result: Option<&str>,
    digits_invalid: Option<&str>,
) -> Input {
    fn set(v: Option<&str>) -> Option<&str> {
        v.filter(|s| !s.is_empty() && *s != "_undef_")
    }
    if let Some(d) = set(digits) {
        return Input::Digits(d.to_owned());
    }
    // `failure` is what 1.10.12 answers on silence; `timeout` is what `read` answers.
    if matches!(set(read_result), Some("failure" | "timeout")) {
        return Input::Timeout;
    }
    match set(digits_invalid) {
        Some(entered) => Input::Invalid {
            entered: entered.to_owned(),
        },
        // success with nothing collected: the caller pressed only a terminator.
        None => Input::Timeout,
    }
}

/// One attempt at collecting digits: FreeSWITCH's `play_and_get_digits` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayAndGetDigits {
    pub min: u8,
    pub max: u8,
    /// Always 1: the runner counts failures and timeouts itself.
    pub tries: u8,
    pub timeout: Duration,
    /// Keys that end input early; empty for none.
    pub terminators: String,
    pub prompt: String,
    pub invalid_prompt: Option<String>,
    /// The variable the digits land in (`<var_name>_invalid` for refused input).
    pub var_name: String,
    /// PCRE the switch checks input against.
    pub regex: String,
    pub inter_digit_timeout: Duration,
}

impl PlayAndGetDigits {
    /// The application argument: `min max tries timeout_ms terminators prompt invalid var regex
    /// digit_timeout_ms`.
    pub fn app_args(&self) -> String {
        let terminators = if self.terminators.is_empty() {
            "none"
        } else {
            &self.terminators
        };
        format!(
            "{} {} {} {} {} {} {} {} {} {}",
            self.min,
            self.max,
            self.tries,
            self.timeout.as_millis(),
            terminators,
            self.prompt,
            self.invalid_prompt
                .as_deref()
                .unwrap_or("silence_stream://250"),
            self.var_name,
            self.regex,
            self.inter_digit_timeout.as_millis()
        )
    }
}

/// Variables a flow set for the call, carried with the route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vars {
    /// Skill -> minimum level (1..=10).
    pub skills: BTreeMap<String, u8>,
    pub priority: Option<u32>,
    pub language: Option<String>,
    pub account_tier: Option<String>,
    pub custom: BTreeMap<String, String>,
}

/// Where the call ends up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Queue { queue: String, vars: Vars },
    Agent { agent: String, vars: Vars },
    Voicemail { mailbox: VoicemailBox, vars: Vars },
    Transfer { number: String },
    PlayHangup { prompt: String },
}

/// What the runner asks the shell to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// Play a prompt (no input expected; queued before what follows).
    Play { prompt: String },
    /// Collect digits; answer with [`Input::Digits`], [`Input::Timeout`] or [`Input::Invalid`].
    PlayAndGetDigits(PlayAndGetDigits),
    /// The call leaves the flow (a queue may bring it back with [`Input::QueueExit`]).
    Route(Target),
}

/// Where the runner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    NotStarted,
    /// Waiting for the result of a `PlayAndGetDigits`.
    Collecting,
    /// Routed to a queue that may still hand the call back.
    InQueue,
    Ended,
}

/// A node of the flow, for the journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    Step(String),
    Menu(String),
    /// The flow's fallback target.
    Fallback,
}

/// What happened at a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Entered,
    ScheduleOpen,
    ScheduleClosed,
    /// The context could not say; the closed branch was taken.
    ScheduleUnknown,
    /// Keys pressed and matched.
    Digits(String),
    /// Keys pressed that no entry takes (refused by the runner, not the switch).
    NoMatch(String),
    Timeout,
    Invalid(String),
    MaxFailures,
    MaxTimeouts,
    Routed,
    QueueExit(QueueExit),
    /// [`MAX_PROMPTS_PER_CALL`] reached.
    PromptBound,
    /// [`MAX_STEPS_PER_WALK`] reached (a loop in an unvalidated flow).
    WalkBound,
    /// [`MAX_MENU_DEPTH`] reached (an unvalidated flow).
    MenuDepth,
    /// A step or menu id the flow does not define (an unvalidated flow).
    BrokenReference(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JourneyEntry {
    pub node: Node,
    pub outcome: Outcome,
}

/// The call's path through the flow, for the call detail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journey {
    pub entries: Vec<JourneyEntry>,
    /// Entries past [`MAX_JOURNEY_ENTRIES`], counted and not kept.
    pub dropped: u32,
}

impl Journey {
    fn push(&mut self, node: Node, outcome: Outcome) {
        if self.entries.len() < MAX_JOURNEY_ENTRIES {
            self.entries.push(JourneyEntry { node, outcome });
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }
}

/// One caller in one flow. See the module doc for the states.
#[derive(Debug)]
pub struct Run {
    flow: Arc<Flow>,
    caller: CallerInfo,
    steps: BTreeMap<String, usize>,
    menus: BTreeMap<String, usize>,
    state: RunState,
    /// Menu indices, the current one last.
    stack: Vec<usize>,
    failures: u8,
    timeouts: u8,
    prompts: u32,
    vars: Vars,
    caller_input: Option<String>,
    /// The queue step the call was routed to, for its exits.
    queue_step: Option<usize>,
    journey: Journey,
    outputs: VecDeque<Output>,
}

impl Run {
    /// A run of `flow` (validated or not: the runner never panics on a bad flow, it routes to
    /// the fallback) for one caller.
    pub fn new(flow: Arc<Flow>, caller: CallerInfo) -> Self {
        // First id wins on duplicates, as validation would have refused them anyway.
        let mut steps = BTreeMap::new();
        for (i, s) in flow.steps.iter().enumerate() {
            steps.entry(s.id().to_owned()).or_insert(i);
        }
        let mut menus = BTreeMap::new();
        for (i, m) in flow.menus.iter().enumerate() {
            menus.entry(m.id.clone()).or_insert(i);
        }
        Run {
            flow,
            caller,
            steps,
            menus,
            state: RunState::NotStarted,
            stack: Vec::new(),
            failures: 0,
            timeouts: 0,
            prompts: 0,
            vars: Vars::default(),
            caller_input: None,
            queue_step: None,
            journey: Journey::default(),
            outputs: VecDeque::new(),
        }
    }

    pub fn state(&self) -> RunState {
        self.state
    }

    /// In a queue: which exits its step names a step for (`(no agent, max wait)`); a queue
    /// exit the step does not name is the queue's own business.
    pub fn queue_exits(&self) -> Option<(bool, bool)> {
        if self.state != RunState::InQueue {
            return None;
        }
        match self.queue_step.and_then(|i| self.flow.steps.get(i)) {
            Some(Step::Queue {
                on_no_agent,
                on_max_wait,
                ..
            }) => Some((on_no_agent.is_some(), on_max_wait.is_some())),
            _ => None,
        }
    }
    /// The flow's id.
    pub fn flow_id(&self) -> &str {
        &self.flow.id
    }

    pub fn journey(&self) -> &Journey {
        &self.journey
    }
    pub fn vars(&self) -> &Vars {
        &self.vars
    }
    pub fn caller(&self) -> &CallerInfo {
        &self.caller
    }
    /// The digits of the last pattern entry matched.
    pub fn caller_input(&self) -> Option<&str> {
        self.caller_input.as_deref()
    }
    /// Prompts played so far.
    pub fn prompts(&self) -> u32 {
        self.prompts
    }

    /// The next thing for the shell to do, or `None` until the next input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Feeds one input. `Err` means the shell misused the runner (an input the state does not
    /// expect), never that the caller did something wrong.
    pub fn handle_input<C: FlowContext + ?Sized>(
        &mut self,
        ctx: &C,
        input: Input,
    ) -> Result<(), DialplanError> {
        match (self.state, input) {
            (RunState::NotStarted, Input::CallArrived) => {
                match self.flow.steps.first().map(|s| s.id().to_owned()) {
                    Some(first) => self.walk(ctx, first),
                    None => self.fallback(Outcome::BrokenReference("steps[0]".into())),
                }
                Ok(())
            }
            (RunState::Collecting, Input::Digits(d)) => {
                self.on_digits(ctx, d);
                Ok(())
            }
            (RunState::Collecting, Input::Timeout) => {
                self.on_miss(ctx, None);
                Ok(())
            }
            (RunState::Collecting, Input::Invalid { entered }) => {
                self.on_miss(ctx, Some(entered));
                Ok(())
            }
            (RunState::InQueue, Input::QueueExit(exit)) => {
                let step = self.queue_step.and_then(|i| self.flow.steps.get(i));
                let (node, next) = match step {
                    Some(Step::Queue {
                        id,
                        on_no_agent,
                        on_max_wait,
                        ..
                    }) => (
                        id.clone(),
                        match exit {
                            QueueExit::NoAgent => on_no_agent.clone(),
                            QueueExit::MaxWait => on_max_wait.clone(),
                        },
                    ),
                    _ => return Err(misuse("no queue step to leave")),
                };
                let Some(next) = next else {
                    return Err(misuse(format!(
                        "queue step {node:?} has no exit for {exit:?}"
                    )));
                };
                self.journey
                    .push(Node::Step(node), Outcome::QueueExit(exit));
                self.queue_step = None;
                self.walk(ctx, next);
                Ok(())
            }
            (state, input) => Err(misuse(format!("{input:?} while {state:?}"))),
        }
    }

    /// Walks steps from `id` until a menu asks for digits or a terminal routes the call.
    fn walk<C: FlowContext + ?Sized>(&mut self, ctx: &C, mut id: String) {
        let flow = Arc::clone(&self.flow);
        for _ in 0..MAX_STEPS_PER_WALK {
            let Some(step) = self.steps.get(&id).and_then(|&i| flow.steps.get(i)) else {
                self.fallback(Outcome::BrokenReference(id));
                return;
            };
            let node = Node::Step(id.clone());
            match step {
                Step::Schedule {
                    schedule,
                    open,
                    closed,
                    ..
                } => {
                    let (outcome, next) = match ctx.schedule_open(schedule) {
                        Some(true) => (Outcome::ScheduleOpen, open),
                        Some(false) => (Outcome::ScheduleClosed, closed),
                        None => (Outcome::ScheduleUnknown, closed),
                    };
                    self.journey.push(node, outcome);
                    id = next.clone();
                }
                Step::Set { vars, next, .. } => {
                    self.journey.push(node, Outcome::Entered);
                    for a in vars {
                        self.assign(a);
                    }
                    id = next.clone();
                }
                Step::Goto { step, .. } => {
                    self.journey.push(node, Outcome::Entered);
                    id = step.clone();
                }
                Step::Menu { menu, .. } => {
                    self.journey.push(node, Outcome::Entered);
                    self.stack.clear();
                    self.enter_menu(menu);
                    return;
                }
                Step::Queue { queue, .. } => {
                    self.journey.push(node, Outcome::Routed);
                    self.queue_step = self.steps.get(&id).copied();
                    self.route(Target::Queue {
                        queue: queue.clone(),
                        vars: self.vars.clone(),
                    });
                    self.state = RunState::InQueue;
                    return;
                }
                Step::Agent { agent, .. } => {
                    self.journey.push(node, Outcome::Routed);
                    self.route(Target::Agent {
                        agent: agent.clone(),
                        vars: self.vars.clone(),
                    });
                    return;
                }
                Step::Voicemail { mailbox, .. } => {
                    self.journey.push(node, Outcome::Routed);
                    self.route(Target::Voicemail {
                        mailbox: mailbox.clone(),
                        vars: self.vars.clone(),
                    });
                    return;
                }
                Step::Transfer { number, .. } => {
                    self.journey.push(node, Outcome::Routed);
                    self.route(Target::Transfer {
                        number: number.clone(),
                    });
                    return;
                }
                Step::PlayHangup { prompt, .. } => {
                    self.journey.push(node, Outcome::Routed);
                    self.route(Target::PlayHangup {
                        prompt: prompt.clone(),
                    });
                    return;
                }
            }
        }
        self.fallback(Outcome::WalkBound);
    }

    /// Applies one assignment; a value that does not fit (caller input `abc` as a skill level,
    /// no caller input yet) leaves the variable as it was: the call still gets routed.
    fn assign(&mut self, a: &Assignment) {
        let resolve = |v: &Value| -> Option<String> {
            match v {
                Value::Literal(s) => Some(s.clone()),
                Value::CallerInput => self.caller_input.clone(),
                Value::CallerId => Some(self.caller.caller_id.clone()),
            }
            .filter(|s| s.len() <= MAX_STRING_LEN)
        };
        match a {
            Assignment::Skill { skill, level } => {
                if let Some(l) = resolve(level).and_then(|s| parse_level(&s).ok()) {
                    self.vars.skills.insert(skill.clone(), l);
                }
            }
            Assignment::Priority { value } => {
                if let Some(p) = resolve(value).and_then(|s| parse_priority(&s).ok()) {
                    self.vars.priority = Some(p);
                }
            }
            Assignment::Language { value } => {
                if let Some(v) = resolve(value) {
                    self.vars.language = Some(v);
                }
            }
            Assignment::AccountTier { value } => {
                if let Some(v) = resolve(value) {
                    self.vars.account_tier = Some(v);
                }
            }
            Assignment::Custom { name, value } => {
                if let Some(v) = resolve(value) {
                    self.vars.custom.insert(name.clone(), v);
                }
            }
        }
    }

    fn route(&mut self, target: Target) {
        self.outputs.push_back(Output::Route(target));
        self.state = RunState::Ended;
    }

    fn fallback(&mut self, why: Outcome) {
        self.journey.push(Node::Fallback, why);
        self.stack.clear();
        let vars = self.vars.clone();
        let target = match &self.flow.fallback {
            Fallback::Queue(queue) => Target::Queue {
                queue: queue.clone(),
                vars,
            },
            Fallback::Agent(agent) => Target::Agent {
                agent: agent.clone(),
                vars,
            },
            Fallback::Voicemail(mailbox) => Target::Voicemail {
                mailbox: mailbox.clone(),
                vars,
            },
            Fallback::Transfer(number) => Target::Transfer {
                number: number.clone(),
            },
            Fallback::PlayHangup(prompt) => Target::PlayHangup {
                prompt: prompt.clone(),
            },
        };
        self.journey.push(Node::Fallback, Outcome::Routed);
        // The fallback has no exits, so even a queue ends the run.
        self.route(target);
    }

    /// Pushes a menu (by id) and asks with its long greeting.
    fn enter_menu(&mut self, menu: &str) {
        let Some(&m) = self.menus.get(menu) else {
            self.fallback(Outcome::BrokenReference(menu.to_owned()));
            return;
        };
        if self.stack.len() >= MAX_MENU_DEPTH {
            self.fallback(Outcome::MenuDepth);
            return;
        }
        self.stack.push(m);
        self.show_current();
    }

    /// Enters the menu now on top of the stack afresh: counters reset, long greeting.
    fn show_current(&mut self) {
        self.failures = 0;
        self.timeouts = 0;
        if let Some(menu) = self.current_menu_id() {
            self.journey.push(Node::Menu(menu), Outcome::Entered);
        }
        self.prompt(true);
    }

    fn current_menu_id(&self) -> Option<String> {
        let m = *self.stack.last()?;
        self.flow.menus.get(m).map(|m| m.id.clone())
    }

    /// One `play_and_get_digits`, unless the call has heard enough prompts.
    fn prompt(&mut self, long: bool) {
        let Some(menu) = self.stack.last().and_then(|&m| self.flow.menus.get(m)) else {
            self.fallback(Outcome::BrokenReference("menu stack".into()));
            return;
        };
        if self.prompts >= MAX_PROMPTS_PER_CALL {
            self.fallback(Outcome::PromptBound);
            return;
        }
        self.prompts += 1;
        let (min, max) = match menu.digit_len {
            Some(len) => (len.min, len.max),
            None => menu
                .entries
                .iter()
                .map(|e| pattern::lengths(&e.keys))
                .fold(None, |acc: Option<(u8, u8)>, (lo, hi)| {
                    Some(acc.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))))
                })
                .unwrap_or((1, 1)),
        };
        let prompt = if long {
            menu.greet_long.clone()
        } else {
            menu.greet_short
                .clone()
                .unwrap_or_else(|| menu.greet_long.clone())
        };
        let pagd = PlayAndGetDigits {
            min: min.max(1),
            max: max.clamp(1, MAX_DIGITS),
            tries: 1,
            timeout: menu.timeout,
            terminators: menu.terminators.clone(),
            prompt,
            invalid_prompt: menu.invalid_sound.clone(),
            var_name: "digits".into(),
            regex: pattern::menu_regex(menu.entries.iter().map(|e| &e.keys)),
            inter_digit_timeout: menu.inter_digit_timeout,
        };
        self.outputs.push_back(Output::PlayAndGetDigits(pagd));
        self.state = RunState::Collecting;
    }

    fn on_digits<C: FlowContext + ?Sized>(&mut self, ctx: &C, digits: String) {
        let Some(menu) = self
            .stack
            .last()
            .and_then(|&m| self.flow.menus.get(m))
            .cloned()
        else {
            self.fallback(Outcome::BrokenReference("menu stack".into()));
            return;
        };
        let node = Node::Menu(menu.id.clone());
        // Exact keys win over patterns (`2` and `2XXX` can share a menu); patterns in order.
        let entry = if digits.len() > usize::from(MAX_DIGITS) {
            None
        } else {
            menu.entries
                .iter()
                .find(|e| matches!(&e.keys, Keys::Exact(k) if *k == digits))
                .or_else(|| {
                    menu.entries.iter().find(|e| {
                        !matches!(e.keys, Keys::Exact(_)) && pattern::matches(&e.keys, &digits)
                    })
                })
        };
        let Some(entry) = entry else {
            let mut shown = digits;
            shown.truncate(usize::from(MAX_DIGITS));
            self.journey.push(node, Outcome::NoMatch(shown.clone()));
            self.count_miss(ctx, Some(shown));
            return;
        };
        self.journey.push(node, Outcome::Digits(digits.clone()));
        if !matches!(entry.keys, Keys::Exact(_)) {
            self.caller_input = Some(digits);
        }
        self.act(ctx, &entry.action);
    }

    /// A timeout (`None`) or an invalid entry the switch refused.
    fn on_miss<C: FlowContext + ?Sized>(&mut self, ctx: &C, invalid: Option<String>) {
        let Some(id) = self.current_menu_id() else {
            self.fallback(Outcome::BrokenReference("menu stack".into()));
            return;
        };
        let outcome = match &invalid {
            Some(e) => {
                let mut e = e.clone();
                e.truncate(usize::from(MAX_DIGITS));
                Outcome::Invalid(e)
            }
            None => Outcome::Timeout,
        };
        self.journey.push(Node::Menu(id), outcome);
        self.count_miss(ctx, invalid);
    }

    fn count_miss<C: FlowContext + ?Sized>(&mut self, ctx: &C, invalid: Option<String>) {
        let Some(menu) = self
            .stack
            .last()
            .and_then(|&m| self.flow.menus.get(m))
            .cloned()
        else {
            self.fallback(Outcome::BrokenReference("menu stack".into()));
            return;
        };
        let (count, max, exit, outcome) = if invalid.is_some() {
            self.failures = self.failures.saturating_add(1);
            (
                self.failures,
                menu.max_failures,
                menu.on_max_failures.clone(),
                Outcome::MaxFailures,
            )
        } else {
            self.timeouts = self.timeouts.saturating_add(1);
            (
                self.timeouts,
                menu.max_timeouts,
                menu.on_max_timeouts.clone(),
                Outcome::MaxTimeouts,
            )
        };
        if count >= max {
            self.journey
                .push(Node::Menu(menu.id.clone()), outcome.clone());
            // `repeat` as an exit would ask forever; validation refuses it, the runner leaves.
            if exit == MenuAction::Repeat {
                self.fallback(outcome);
            } else {
                self.act(ctx, &exit);
            }
        } else {
            self.prompt(false);
        }
    }

    fn act<C: FlowContext + ?Sized>(&mut self, ctx: &C, action: &MenuAction) {
        match action {
            MenuAction::Step { step } => {
                let exit_sound = self
                    .stack
                    .last()
                    .and_then(|&m| self.flow.menus.get(m))
                    .and_then(|m| m.exit_sound.clone());
                if let Some(prompt) = exit_sound {
                    self.outputs.push_back(Output::Play { prompt });
                }
                self.stack.clear();
                self.walk(ctx, step.clone());
            }
            MenuAction::Submenu { menu } => self.enter_menu(menu),
            MenuAction::Back => {
                if self.stack.len() > 1 {
                    self.stack.pop();
                }
                self.show_current();
            }
            MenuAction::Top => {
                self.stack.truncate(1);
                self.show_current();
            }
            MenuAction::Repeat => self.prompt(true),
        }
    }
}

fn misuse(reason: impl Into<String>) -> DialplanError {
    DialplanError::invalid("input", reason)
}
