//! Property tests of flows: generated valid flows always validate, and any caller input ends in
//! a route within the prompt bound; a flow with one reference broken is refused with the path
//! of that field, and the runner still ends it in a route (never a panic).
//!
//! ```text
//!   choices (Vec<u16>) --Builder--> Flow (every non-terminal node has a fresh child, so a
//!                                         terminal is reachable from everywhere; other edges
//!                                         may point back, making loops that have exits)
//!   Flow + inputs (digits | timeout | invalid | queue exit) --Run--> Route within 50 prompts
//!   Flow -> JSON -> one reference := "missing" -> validate: Err at that field's path
//! ```

use std::sync::Arc;

use proptest::prelude::*;
use switchyard_dialplan::DialplanError;
use switchyard_dialplan::flow::{
    Assignment, CallerInfo, Fallback, Flow, Input, Keys, Known, MAX_PROMPTS_PER_CALL, Menu,
    MenuAction, MenuEntry, Output, QueueExit, Run, RunState, Step, Value, VoicemailBox,
};

struct AllKnown;

impl Known for AllKnown {
    fn queue(&self, id: &str) -> bool {
        id.starts_with('q')
    }
    fn agent(&self, id: &str) -> bool {
        id.starts_with('a')
    }
    fn schedule(&self, id: &str) -> bool {
        id.starts_with("sched")
    }
}

/// Builds a flow from a list of choices (read in order, 0 once exhausted, so shrinking the
/// list shrinks the flow).
struct Builder<'a> {
    choices: &'a [u16],
    next: usize,
    steps: Vec<Option<Step>>,
    menus: Vec<Option<Menu>>,
    pending: std::collections::VecDeque<(usize, u8)>,
}

const MAX_GEN_STEPS: usize = 60;
const MAX_GEN_DEPTH: u8 = 6;

impl Builder<'_> {
    fn pick(&mut self, n: u16) -> u16 {
        let c = self.choices.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        c % n.max(1)
    }

    fn fresh_step(&mut self, depth: u8) -> String {
        let i = self.steps.len();
        self.steps.push(None);
        self.pending.push_back((i, depth));
        format!("s{i}")
    }

    /// A fresh step, or (half the time) any step already allocated: a back edge.
    fn any_step(&mut self, depth: u8) -> String {
        if self.pick(2) == 0 {
            self.fresh_step(depth)
        } else {
            let n = u16::try_from(self.steps.len()).unwrap_or(u16::MAX);
            format!("s{}", self.pick(n))
        }
    }

    /// Where a queue's exit may lead: a box, a transfer or a message (never a queue or an
    /// agent again; validation refuses that).
    fn exit_target(&mut self) -> String {
        let i = self.steps.len();
        let id = format!("s{i}");
        let step = match self.pick(3) {
            0 => Step::Voicemail {
                id: id.clone(),
                mailbox: VoicemailBox::Queue("q0".into()),
            },
            1 => Step::Transfer {
                id: id.clone(),
                number: "+15550100".into(),
            },
            _ => Step::PlayHangup {
                id: id.clone(),
                prompt: "bye.wav".into(),
            },
        };
        self.steps.push(Some(step));
        id
    }

    fn value(&mut self, literal: &str) -> Value {
        match self.pick(3) {
            0 => Value::Literal(literal.into()),
            1 => Value::CallerInput,
            _ => Value::CallerId,
        }
    }

    fn terminal(&mut self, id: String) -> Step {
        match self.pick(5) {
            0 => {
                let exits = self.pick(3);
                Step::Queue {
                    id,
                    queue: format!("q{}", self.pick(3)),
                    on_no_agent: (exits >= 1).then(|| self.exit_target()),
                    on_max_wait: (exits >= 2).then(|| self.exit_target()),
                }
            }
            1 => Step::Agent {
                id,
                agent: format!("a{}", self.pick(3)),
            },
            2 => Step::Voicemail {
                id,
                mailbox: if self.pick(2) == 0 {
                    VoicemailBox::Queue("q0".into())
                } else {
                    VoicemailBox::Agent("a1".into())
                },
            },
            3 => Step::Transfer {
                id,
                number: "+15550100".into(),
            },
            _ => Step::PlayHangup {
                id,
                prompt: "bye.wav".into(),
            },
        }
    }

    fn step(&mut self, i: usize, depth: u8) -> Step {
        let id = format!("s{i}");
        if depth >= MAX_GEN_DEPTH || self.steps.len() >= MAX_GEN_STEPS {
            return self.terminal(id);
        }
        match self.pick(8) {
            0 => Step::Schedule {
                id,
                schedule: format!("sched{}", self.pick(3)),
                open: self.fresh_step(depth + 1),
                closed: self.any_step(depth + 1),
            },
            1 | 2 => Step::Menu {
                id,
                menu: self.menu(depth + 1, 1),
            },
            3 => {
                let mut vars = vec![Assignment::Skill {
                    skill: "sales".into(),
                    level: self.value("5"),
                }];
                if self.pick(2) == 0 {
                    vars.push(Assignment::Priority {
                        value: self.value("7"),
                    });
                    vars.push(Assignment::Custom {
                        name: "account".into(),
                        value: self.value("x"),
                    });
                }
                Step::Set {
                    id,
                    vars,
                    next: self.fresh_step(depth + 1),
                }
            }
            4 => Step::Goto {
                id,
                step: self.fresh_step(depth + 1),
            },
            _ => self.terminal(id),
        }
    }

    fn action(&mut self, depth: u8, level: usize) -> MenuAction {
        match self.pick(6) {
            0 if level < 4 => MenuAction::Submenu {
                menu: self.menu(depth + 1, level + 1),
            },
            1 => MenuAction::Back,
            2 => MenuAction::Top,
            3 => MenuAction::Repeat,
            _ => MenuAction::Step {
                step: self.any_step(depth + 1),
            },
        }
    }

    fn exit(&mut self, depth: u8) -> MenuAction {
        match self.pick(4) {
            0 => MenuAction::Back,
            1 => MenuAction::Top,
            _ => MenuAction::Step {
                step: self.any_step(depth + 1),
            },
        }
    }

    fn menu(&mut self, depth: u8, level: usize) -> String {
        let m = self.menus.len();
        self.menus.push(None);
        // The first entry leads to a fresh step: the exit that makes every loop escapable.
        let mut entries = vec![MenuEntry {
            keys: Keys::Exact("1".into()),
            action: MenuAction::Step {
                step: self.fresh_step(depth + 1),
            },
        }];
        let extra = self.pick(4);
        for k in 0..extra {
            entries.push(MenuEntry {
                keys: Keys::Exact(format!("{}", k + 2)),
                action: self.action(depth, level),
            });
        }
        if self.pick(3) == 0 {
            entries.push(MenuEntry {
                keys: if self.pick(2) == 0 {
                    Keys::Length { min: 4, max: 6 }
                } else {
                    Keys::Pattern("9XX".into())
                },
                action: MenuAction::Step {
                    step: self.any_step(depth + 1),
                },
            });
        }
        let on_max_failures = self.exit(depth);
        let on_max_timeouts = self.exit(depth);
        self.menus[m] = Some(Menu {
            id: format!("m{m}"),
            greet_long: format!("m{m}_long.wav"),
            greet_short: (self.pick(2) == 0).then(|| format!("m{m}_short.wav")),
            invalid_sound: Some("invalid.wav".into()),
            exit_sound: (self.pick(2) == 0).then(|| "thanks.wav".into()),
            timeout: std::time::Duration::from_millis(5000),
            inter_digit_timeout: std::time::Duration::from_millis(2000),
            max_failures: 1 + u8::try_from(self.pick(3)).unwrap_or(0),
            max_timeouts: 1 + u8::try_from(self.pick(3)).unwrap_or(0),
            digit_len: None,
            terminators: "#".into(),
            entries,
            on_max_failures,
            on_max_timeouts,
        });
        format!("m{m}")
    }

    fn build(choices: &[u16]) -> Flow {
        let mut b = Builder {
            choices,
            next: 0,
            steps: Vec::new(),
            menus: Vec::new(),
            pending: Default::default(),
        };
        b.fresh_step(0);
        while let Some((i, depth)) = b.pending.pop_front() {
            let step = b.step(i, depth);
            b.steps[i] = Some(step);
        }
        let fallback = match b.pick(3) {
            0 => Fallback::Queue("q0".into()),
            1 => Fallback::Voicemail(VoicemailBox::Agent("a0".into())),
            _ => Fallback::PlayHangup("sorry.wav".into()),
        };
        Flow {
            id: "generated".into(),
            // Every slot is filled: each allocated step is pending once and popped once.
            steps: b.steps.into_iter().flatten().collect(),
            menus: b.menus.into_iter().flatten().collect(),
            fallback,
        }
    }
}

#[derive(Debug, Clone)]
enum CallerAct {
    Digits(String),
    Timeout,
    Invalid(String),
    QueueExit(bool),
}

fn caller_act() -> impl Strategy<Value = CallerAct> {
    prop_oneof![
        4 => "[0-9*#]{1,7}".prop_map(CallerAct::Digits),
        4 => "[1-4]".prop_map(CallerAct::Digits),
        2 => Just(CallerAct::Timeout),
        2 => "[0-9*]{1,3}".prop_map(CallerAct::Invalid),
        1 => any::<bool>().prop_map(CallerAct::QueueExit),
    ]
}

fn to_input(act: &CallerAct) -> Input {
    match act {
        CallerAct::Digits(d) => Input::Digits(d.clone()),
        CallerAct::Timeout => Input::Timeout,
        CallerAct::Invalid(d) => Input::Invalid { entered: d.clone() },
        CallerAct::QueueExit(true) => Input::QueueExit(QueueExit::NoAgent),
        CallerAct::QueueExit(false) => Input::QueueExit(QueueExit::MaxWait),
    }
}

/// Runs a call to its end: the acts in order (each fed only where the state takes it), then
/// silence while the runner still asks. Returns the outputs and the run.
fn run_call(flow: Flow, opens: &[bool], acts: &[CallerAct]) -> (Vec<Output>, Run) {
    let ctx = |id: &str| -> Option<bool> {
        let k = id.len() % 4;
        opens.get(k).copied()
    };
    let mut run = Run::new(
        Arc::new(flow),
        CallerInfo {
            caller_id: "+15550199".into(),
            dialled: "5550100".into(),
        },
    );
    let mut out = Vec::new();
    run.handle_input(&ctx, Input::CallArrived).expect("start");
    out.extend(std::iter::from_fn(|| run.poll_output()));
    let mut fed = 0u32;
    let mut acts = acts.iter().map(to_input);
    loop {
        let input = match run.state() {
            RunState::Collecting => acts
                .by_ref()
                .find(|i| !matches!(i, Input::QueueExit(_)))
                .unwrap_or(Input::Timeout),
            RunState::InQueue => match acts.by_ref().find(|i| matches!(i, Input::QueueExit(_))) {
                Some(i) => i,
                None => break,
            },
            RunState::Ended | RunState::NotStarted => break,
        };
        fed += 1;
        assert!(
            fed <= 10 * MAX_PROMPTS_PER_CALL,
            "the runner keeps asking: {:?}",
            run.journey()
        );
        // A queue exit the queue does not have is the engine's misuse: an error, and the call
        // stays routed where it is.
        if run.handle_input(&ctx, input).is_err() && run.state() == RunState::InQueue {
            break;
        }
        out.extend(std::iter::from_fn(|| run.poll_output()));
    }
    (out, run)
}

/// JSON pointers of every field that names something (`steps/3/menu`), as (pointer, path).
fn reference_fields(
    v: &serde_json::Value,
    pointer: &str,
    path: &str,
    out: &mut Vec<(String, String)>,
) {
    const REFS: [&str; 10] = [
        "open",
        "closed",
        "next",
        "step",
        "menu",
        "queue",
        "agent",
        "schedule",
        "on_no_agent",
        "on_max_wait",
    ];
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                let p = format!("{pointer}/{k}");
                let dotted = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if REFS.contains(&k.as_str()) && child.is_string() {
                    out.push((p.clone(), dotted.clone()));
                }
                reference_fields(child, &p, &dotted, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                reference_fields(
                    child,
                    &format!("{pointer}/{i}"),
                    &format!("{path}[{i}]"),
                    out,
                );
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn generated_flows_validate_and_every_call_ends_in_a_route(
        choices in prop::collection::vec(any::<u16>(), 0..300),
        opens in prop::collection::vec(any::<bool>(), 0..4),
        acts in prop::collection::vec(caller_act(), 0..120),
    ) {
        let flow = Builder::build(&choices);
        prop_assert_eq!(flow.validate(&AllKnown), Ok(()), "{:#?}", flow);
        let json = serde_json::to_value(&flow).expect("serialises");
        let back: Flow = serde_json::from_value(json).expect("parses back");
        prop_assert_eq!(&back, &flow);
        let (out, run) = run_call(flow, &opens, &acts);
        prop_assert!(run.prompts() <= MAX_PROMPTS_PER_CALL);
        prop_assert!(matches!(run.state(), RunState::Ended | RunState::InQueue), "{:?}", run.state());
        prop_assert!(matches!(out.last(), Some(Output::Route(_))), "{:?}", out.last());
        let prompts = out.iter().filter(|o| matches!(o, Output::PlayAndGetDigits(_))).count();
        prop_assert_eq!(u32::try_from(prompts).ok(), Some(run.prompts()));
        prop_assert!(!run.journey().entries.is_empty());
    }

    #[test]
    fn a_broken_reference_is_refused_at_its_path_and_still_runs_to_a_route(
        choices in prop::collection::vec(any::<u16>(), 0..300),
        which in any::<prop::sample::Index>(),
        acts in prop::collection::vec(caller_act(), 0..60),
    ) {
        let flow = Builder::build(&choices);
        let mut json = serde_json::to_value(&flow).expect("serialises");
        let mut refs = Vec::new();
        reference_fields(&json, "", "", &mut refs);
        prop_assume!(!refs.is_empty());
        let (pointer, field) = &refs[which.index(refs.len())];
        *json.pointer_mut(pointer).expect("the pointer was just found") = "missing".into();
        let broken: Flow = serde_json::from_value(json).expect("still parses");
        match broken.validate(&AllKnown) {
            Err(DialplanError::Invalid { path, reason }) => {
                // Mailboxes and fallbacks are reported at the enclosing field
                // (`steps[4].mailbox` for `steps[4].mailbox.queue`).
                prop_assert!(field.starts_with(&path) && !path.is_empty(),
                    "broke {} but refused at {}: {}", field, path, reason);
            }
            other => prop_assert!(false, "broke {} but got {:?}", field, other),
        }
        let (out, run) = run_call(broken, &[true, false], &acts);
        prop_assert!(run.prompts() <= MAX_PROMPTS_PER_CALL);
        prop_assert!(matches!(out.last(), Some(Output::Route(_))), "{:?}", out.last());
    }

    #[test]
    fn a_structural_fault_is_refused_at_its_path(
        choices in prop::collection::vec(any::<u16>(), 0..300),
        kind in 0u8..4,
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        let mut flow = Builder::build(&choices);
        let want = match kind {
            // Two steps with one id: the later one is refused.
            0 => {
                prop_assume!(flow.steps.len() >= 2);
                let (i, j) = (a.index(flow.steps.len()), b.index(flow.steps.len()));
                prop_assume!(i != j);
                let (first, later) = (i.min(j), i.max(j));
                let id = flow.steps[first].id().to_owned();
                set_step_id(&mut flow.steps[later], id);
                format!("steps[{later}].id")
            }
            // A pattern with a letter that is not a pattern letter.
            1 => {
                prop_assume!(!flow.menus.is_empty());
                let m = a.index(flow.menus.len());
                let e = b.index(flow.menus[m].entries.len());
                flow.menus[m].entries[e].keys = Keys::Pattern("2Y".into());
                format!("menus[{m}].entries[{e}].keys")
            }
            // `repeat` as an exit: it would ask forever.
            2 => {
                prop_assume!(!flow.menus.is_empty());
                let m = a.index(flow.menus.len());
                flow.menus[m].on_max_timeouts = MenuAction::Repeat;
                format!("menus[{m}].on_max_timeouts")
            }
            // Too many steps.
            _ => {
                let filler = flow.steps[0].clone();
                while flow.steps.len() <= switchyard_dialplan::flow::MAX_STEPS {
                    flow.steps.push(filler.clone());
                }
                "steps".to_owned()
            }
        };
        match flow.validate(&AllKnown) {
            Err(DialplanError::Invalid { path, .. }) => prop_assert_eq!(path, want),
            other => prop_assert!(false, "expected a refusal at {}, got {:?}", want, other),
        }
    }

    #[test]
    fn arbitrary_json_never_panics(text in "\\PC{0,200}") {
        if let Ok(flow) = serde_json::from_str::<Flow>(&text) {
            let _ = flow.validate(&AllKnown);
        }
    }
}

fn set_step_id(step: &mut Step, new: String) {
    match step {
        Step::Schedule { id, .. }
        | Step::Menu { id, .. }
        | Step::Set { id, .. }
        | Step::Queue { id, .. }
        | Step::Agent { id, .. }
        | Step::Voicemail { id, .. }
        | Step::Transfer { id, .. }
        | Step::PlayHangup { id, .. }
        | Step::Goto { id, .. } => *id = new,
    }
}

/// The generator is only worth its properties if it builds real phone trees: menus, submenus,
/// schedules, back edges.
#[test]
fn the_generator_builds_non_trivial_flows() {
    let mut seed = 0x2545_f491_u32;
    let mut lcg = move || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        u16::try_from(seed >> 16).unwrap_or(0)
    };
    let (mut with_menus, mut with_submenus, mut with_schedules, mut big) = (0, 0, 0, 0);
    for _ in 0..200 {
        let choices: Vec<u16> = (0..300).map(|_| lcg()).collect();
        let flow = Builder::build(&choices);
        assert_eq!(flow.validate(&AllKnown), Ok(()));
        with_menus += usize::from(!flow.menus.is_empty());
        with_submenus += usize::from(flow.menus.len() > 1);
        with_schedules += usize::from(
            flow.steps
                .iter()
                .any(|s| matches!(s, Step::Schedule { .. })),
        );
        big += usize::from(flow.steps.len() >= 10);
    }
    assert!(with_menus > 50, "{with_menus}");
    assert!(with_submenus > 20, "{with_submenus}");
    assert!(with_schedules > 20, "{with_schedules}");
    assert!(big > 20, "{big}");
}
