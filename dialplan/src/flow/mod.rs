//! Flows and IVR menus: which flow a dialled number runs, the flow's steps and menus, their
//! validation (every refusal names the field by its path, `steps[3].menu`,
//! `menus[1].entries[2].action`), and the sans-IO runner that walks one caller through a flow.
//!
//! The pieces, top-down:
//! - [`model`]: the documents the API takes as JSON ([`NumberPlan`], [`Flow`], [`Menu`]), typed
//!   (`Duration` for time; JSON carries `*_ms` integers).
//! - [`numbers`]: number lookup (light normalisation, a default flow for unknown numbers).
//! - [`pattern`]: the keys a menu entry answers to (`2`, `2XXX`, 6 to 10 digits) and the PCRE
//!   FreeSWITCH's `play_and_get_digits` checks input against.
//! - [`validate`]: structure, bounds, references (through the caller's [`Known`]), then the graph:
//!   unreachable steps and menus, loops with no exit, submenu depth.
//! - [`runner`]: [`Run`], driven with `handle_input` / `poll_output` like the engine:
//!
//! ```text
//!   Run::new(flow, caller)
//!   run.handle_input(&ctx, Input::CallArrived)          ctx: FlowContext (is schedule X open?)
//!   loop {
//!       match run.poll_output() {
//!           Some(Output::Play { .. })             -> queue a playback, keep polling
//!           Some(Output::PlayAndGetDigits(..))    -> execute it; on CHANNEL_EXECUTE_COMPLETE
//!                                                    run.handle_input(&ctx, read_input(vars))
//!           Some(Output::Route(target))           -> hand the call to the engine / the switch
//!           None                                  -> wait for the next input
//!       }
//!   }
//! ```
//!
//! Bounds (named constants below; what happens at each is said where it is defined): steps per
//! flow, menus per flow, entries per menu, variables per `set`, string length, digits per entry,
//! submenu depth, prompts per call (the runner then routes to the flow's fallback), steps walked
//! between two prompts, journey entries.

pub mod model;
pub mod numbers;
pub mod pattern;
pub mod runner;
pub mod validate;

pub use model::{
    Assignment, DigitLen, Fallback, Flow, Keys, Menu, MenuAction, MenuEntry, NumberPlan,
    NumberRoute, Step, Value, VoicemailBox,
};
pub use numbers::{NumberIndex, normalise_number};
pub use runner::{
    CallerInfo, FlowContext, Input, Journey, JourneyEntry, Node, Outcome, Output, PlayAndGetDigits,
    QueueExit, Run, RunState, Target, Vars, read_input,
};
pub use validate::Known;

/// Steps in one flow; a flow is a phone tree, not a program.
pub const MAX_STEPS: usize = 200;
/// Menus in one flow.
pub const MAX_MENUS: usize = 100;
/// Entries in one menu (a keypad has 12 keys; patterns add a few).
pub const MAX_ENTRIES_PER_MENU: usize = 20;
/// Assignments in one `set` step.
pub const MAX_VARS_PER_SET: usize = 16;
/// Any string in a document: ids, prompt paths, numbers, variable values.
pub const MAX_STRING_LEN: usize = 256;
/// Digits one menu entry may take (an account number, a card number).
pub const MAX_DIGITS: u8 = 32;
/// Menus stacked by `submenu` (mod_ivr has no limit; a caller lost nine levels deep is lost).
pub const MAX_MENU_DEPTH: usize = 8;
/// Failures or timeouts a menu may allow before its exit action.
pub const MAX_TRIES: u8 = 10;
/// Prompts (`play_and_get_digits`) one call may hear; past it the runner routes to the flow's
/// fallback, so a caller (or a robot) pressing keys forever still ends somewhere.
pub const MAX_PROMPTS_PER_CALL: u32 = 50;
/// Steps walked between two prompts; more than a flow can hold, so reaching it means a loop the
/// validator would refuse (a flow run without validation): the runner routes to the fallback.
pub const MAX_STEPS_PER_WALK: usize = MAX_STEPS + 1;
/// Journey entries kept for the call detail; past it entries are counted, not kept.
pub const MAX_JOURNEY_ENTRIES: usize = 512;
/// Numbers in one number plan.
pub const MAX_NUMBERS: usize = 10_000;
/// The longest timeout a menu may wait for a first digit.
pub const MAX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
