//! Table-driven tests of the flow model, its validation and the runner, on one realistic flow:
//!
//! ```text
//!   hours --open--> greet (menu main) --2--> sales_vars --> sales (queue) --no agent--> sales_vm
//!        \-closed-> after_hours (vm)  --1--> support_menu --1--> acct_menu --6..10 digits--> acct_vars --> support
//!                                     --0--> operator (agent)     --8 back, 9 top, 0 support
//!                                     --2XXX--> ext_vars --> operator
//!                                     --9 repeat; 3 invalid -> bye; 3 timeouts -> operator
//! ```

use std::sync::Arc;
use std::time::Duration;

use switchyard_dialplan::DialplanError;
use switchyard_dialplan::flow::{
    CallerInfo, Flow, Input, Known, MAX_PROMPTS_PER_CALL, Node, NumberPlan, Outcome, Output,
    QueueExit, Run, RunState, Target, VoicemailBox, read_input,
};

struct World;

impl Known for World {
    fn queue(&self, id: &str) -> bool {
        matches!(id, "sales" | "support")
    }
    fn agent(&self, id: &str) -> bool {
        id == "alice"
    }
    fn schedule(&self, id: &str) -> bool {
        id == "weekday"
    }
}

fn flow_json() -> serde_json::Value {
    serde_json::json!({
        "id": "main",
        "fallback": {"voicemail": {"queue": "support"}},
        "steps": [
            {"kind": "schedule", "id": "hours", "schedule": "weekday", "open": "greet", "closed": "after_hours"},
            {"kind": "menu", "id": "greet", "menu": "main"},
            {"kind": "set", "id": "sales_vars", "next": "sales", "vars": [
                {"kind": "skill", "skill": "sales", "level": {"literal": "5"}},
                {"kind": "language", "value": {"literal": "en"}},
                {"kind": "priority", "value": {"literal": "10"}}
            ]},
            {"kind": "queue", "id": "sales", "queue": "sales", "on_no_agent": "sales_vm", "on_max_wait": "sales_vm"},
            {"kind": "voicemail", "id": "sales_vm", "mailbox": {"queue": "sales"}},
            {"kind": "queue", "id": "support", "queue": "support"},
            {"kind": "voicemail", "id": "after_hours", "mailbox": {"queue": "support"}},
            {"kind": "set", "id": "acct_vars", "next": "support", "vars": [
                {"kind": "custom", "name": "account_number", "value": "caller_input"},
                {"kind": "account_tier", "value": {"literal": "gold"}},
                {"kind": "custom", "name": "callback", "value": "caller_id"}
            ]},
            {"kind": "play_hangup", "id": "bye", "prompt": "ivr/goodbye.wav"},
            {"kind": "agent", "id": "operator", "agent": "alice"},
            {"kind": "set", "id": "ext_vars", "next": "operator", "vars": [
                {"kind": "custom", "name": "extension", "value": "caller_input"}
            ]}
        ],
        "menus": [
            {
                "id": "main", "greet_long": "main_long.wav", "greet_short": "main_short.wav",
                "invalid_sound": "invalid.wav", "exit_sound": "thanks.wav",
                "timeout_ms": 5000, "inter_digit_timeout_ms": 2000,
                "max_failures": 3, "max_timeouts": 3,
                "entries": [
                    {"keys": {"exact": "1"}, "action": {"kind": "submenu", "menu": "support_menu"}},
                    {"keys": {"exact": "2"}, "action": {"kind": "step", "step": "sales_vars"}},
                    {"keys": {"exact": "0"}, "action": {"kind": "step", "step": "operator"}},
                    {"keys": {"pattern": "2XXX"}, "action": {"kind": "step", "step": "ext_vars"}},
                    {"keys": {"exact": "9"}, "action": {"kind": "repeat"}}
                ],
                "on_max_failures": {"kind": "step", "step": "bye"},
                "on_max_timeouts": {"kind": "step", "step": "operator"}
            },
            {
                "id": "support_menu", "greet_long": "support.wav",
                "timeout_ms": 5000, "inter_digit_timeout_ms": 2000,
                "max_failures": 2, "max_timeouts": 2,
                "entries": [
                    {"keys": {"exact": "1"}, "action": {"kind": "submenu", "menu": "acct_menu"}},
                    {"keys": {"exact": "8"}, "action": {"kind": "back"}},
                    {"keys": {"exact": "9"}, "action": {"kind": "top"}},
                    {"keys": {"exact": "0"}, "action": {"kind": "step", "step": "support"}}
                ],
                "on_max_failures": {"kind": "top"},
                "on_max_timeouts": {"kind": "step", "step": "support"}
            },
            {
                "id": "acct_menu", "greet_long": "account.wav",
                "timeout_ms": 8000, "inter_digit_timeout_ms": 3000,
                "max_failures": 3, "max_timeouts": 1, "terminators": "#",
                "entries": [
                    {"keys": {"length": {"min": 6, "max": 10}}, "action": {"kind": "step", "step": "acct_vars"}},
                    {"keys": {"exact": "*"}, "action": {"kind": "back"}}
                ],
                "on_max_failures": {"kind": "step", "step": "support"},
                "on_max_timeouts": {"kind": "step", "step": "support"}
            }
        ]
    })
}

fn flow() -> Flow {
    let flow: Flow = serde_json::from_value(flow_json()).expect("the sample flow parses");
    flow.validate(&World).expect("the sample flow is valid");
    flow
}

fn caller() -> CallerInfo {
    CallerInfo {
        caller_id: "+15550199".into(),
        dialled: "+15550100".into(),
    }
}

fn drain(run: &mut Run) -> Vec<Output> {
    std::iter::from_fn(|| run.poll_output()).collect()
}

/// Runs a call: arrival, then each input; every input but the last must find the runner
/// collecting digits. Returns every output in order, and the run.
fn drive(flow: Flow, open: Option<bool>, inputs: &[Input]) -> (Vec<Output>, Run) {
    let ctx = move |id: &str| {
        assert_eq!(id, "weekday");
        open
    };
    let mut run = Run::new(Arc::new(flow), caller());
    run.handle_input(&ctx, Input::CallArrived).expect("start");
    let mut out = drain(&mut run);
    for (i, input) in inputs.iter().enumerate() {
        assert!(
            matches!(run.state(), RunState::Collecting | RunState::InQueue),
            "input {i} ({input:?}) while {:?}; outputs so far {out:#?}",
            run.state()
        );
        run.handle_input(&ctx, input.clone())
            .expect("input accepted");
        out.extend(drain(&mut run));
    }
    (out, run)
}

fn last_route(out: &[Output]) -> &Target {
    match out.last() {
        Some(Output::Route(t)) => t,
        other => panic!("the last output is not a route: {other:?}"),
    }
}

fn d(s: &str) -> Input {
    Input::Digits(s.into())
}

fn inv(s: &str) -> Input {
    Input::Invalid { entered: s.into() }
}

#[test]
fn table_of_calls_lands_where_the_flow_says() {
    use Input::Timeout as T;
    // (case, schedule open?, inputs, check on the final target)
    type Check = fn(&Target, &Run);
    let cases: Vec<(&str, Option<bool>, Vec<Input>, Check)> = vec![
        (
            "press 2: sales queue with the skill the menu set",
            Some(true),
            vec![d("2")],
            |t, _| {
                let Target::Queue { queue, vars } = t else {
                    panic!("{t:?}")
                };
                assert_eq!(queue, "sales");
                assert_eq!(vars.skills.get("sales"), Some(&5));
                assert_eq!(vars.language.as_deref(), Some("en"));
                assert_eq!(vars.priority, Some(10));
            },
        ),
        (
            "invalid three times: max-failures action",
            Some(true),
            vec![inv("*"), inv("*"), inv("*")],
            |t, _| {
                assert_eq!(
                    t,
                    &Target::PlayHangup {
                        prompt: "ivr/goodbye.wav".into()
                    }
                );
            },
        ),
        (
            "silence three times: max-timeouts action",
            Some(true),
            vec![T, T, T],
            |t, _| {
                assert!(
                    matches!(t, Target::Agent { agent, .. } if agent == "alice"),
                    "{t:?}"
                );
            },
        ),
        (
            "keys no entry takes count as failures",
            Some(true),
            vec![d("7"), d("55"), d("7")],
            |t, _| {
                assert_eq!(
                    t,
                    &Target::PlayHangup {
                        prompt: "ivr/goodbye.wav".into()
                    }
                );
            },
        ),
        (
            "failures and timeouts are counted apart",
            Some(true),
            vec![inv("*"), T, inv("*"), T, d("2")],
            |t, _| {
                assert!(
                    matches!(t, Target::Queue { queue, .. } if queue == "sales"),
                    "{t:?}"
                );
            },
        ),
        ("closed: the closed branch", Some(false), vec![], |t, _| {
            assert!(
                matches!(t, Target::Voicemail { mailbox: VoicemailBox::Queue(q), .. } if q == "support"),
                "{t:?}"
            );
        }),
        (
            "schedule unknown: the closed branch",
            None,
            vec![],
            |t, run| {
                assert!(matches!(t, Target::Voicemail { .. }), "{t:?}");
                assert_eq!(run.journey().entries[0].outcome, Outcome::ScheduleUnknown);
            },
        ),
        (
            "submenu then back then 2",
            Some(true),
            vec![d("1"), d("8"), d("2")],
            |t, _| {
                assert!(
                    matches!(t, Target::Queue { queue, .. } if queue == "sales"),
                    "{t:?}"
                );
            },
        ),
        (
            "two levels down, back, top, operator",
            Some(true),
            vec![d("1"), d("1"), d("*"), d("9"), d("0")],
            |t, _| {
                assert!(
                    matches!(t, Target::Agent { agent, .. } if agent == "alice"),
                    "{t:?}"
                );
            },
        ),
        (
            "repeat then 2",
            Some(true),
            vec![d("9"), d("9"), d("2")],
            |t, run| {
                assert!(matches!(t, Target::Queue { .. }), "{t:?}");
                assert_eq!(run.prompts(), 3);
            },
        ),
        (
            "account number stored as a variable",
            Some(true),
            vec![d("1"), d("1"), d("12345678")],
            |t, run| {
                let Target::Queue { queue, vars } = t else {
                    panic!("{t:?}")
                };
                assert_eq!(queue, "support");
                assert_eq!(
                    vars.custom.get("account_number").map(String::as_str),
                    Some("12345678")
                );
                assert_eq!(
                    vars.custom.get("callback").map(String::as_str),
                    Some("+15550199")
                );
                assert_eq!(vars.account_tier.as_deref(), Some("gold"));
                assert_eq!(run.caller_input(), Some("12345678"));
            },
        ),
        (
            "account number too short, then silence: the timeout exit",
            Some(true),
            vec![d("1"), d("1"), d("123"), T],
            |t, _| {
                assert!(
                    matches!(t, Target::Queue { queue, .. } if queue == "support"),
                    "{t:?}"
                );
            },
        ),
        (
            "direct extension 2XXX",
            Some(true),
            vec![d("2345")],
            |t, _| {
                let Target::Agent { agent, vars } = t else {
                    panic!("{t:?}")
                };
                assert_eq!(agent, "alice");
                assert_eq!(
                    vars.custom.get("extension").map(String::as_str),
                    Some("2345")
                );
            },
        ),
        (
            "support menu failures go to the top menu",
            Some(true),
            vec![d("1"), inv("#"), d("7"), d("2")],
            |t, _| {
                assert!(
                    matches!(t, Target::Queue { queue, .. } if queue == "sales"),
                    "{t:?}"
                );
            },
        ),
        (
            "queue without agents: its voicemail",
            Some(true),
            vec![d("2"), Input::QueueExit(QueueExit::NoAgent)],
            |t, run| {
                assert!(
                    matches!(t, Target::Voicemail { mailbox: VoicemailBox::Queue(q), .. } if q == "sales"),
                    "{t:?}"
                );
                assert_eq!(run.state(), RunState::Ended);
            },
        ),
    ];
    for (name, open, inputs, check) in cases {
        let (out, run) = drive(flow(), open, &inputs);
        let target = last_route(&out);
        check(target, &run);
        let routes = out.iter().filter(|o| matches!(o, Output::Route(_))).count();
        assert!(routes >= 1, "{name}: no route");
        assert!(!run.journey().entries.is_empty(), "{name}: empty journey");
    }
}

#[test]
fn prompts_are_one_try_each_long_first_then_short() {
    let (out, _) = drive(flow(), Some(true), &[inv("*"), Input::Timeout, d("2")]);
    let prompts: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::PlayAndGetDigits(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(prompts.len(), 3);
    assert_eq!(prompts[0].prompt, "main_long.wav");
    assert_eq!(prompts[1].prompt, "main_short.wav");
    assert_eq!(prompts[2].prompt, "main_short.wav");
    let p = prompts[0];
    assert_eq!((p.min, p.max, p.tries), (1, 4, 1));
    assert_eq!(p.timeout, Duration::from_millis(5000));
    assert_eq!(p.inter_digit_timeout, Duration::from_millis(2000));
    assert_eq!(p.regex, "^(?:1|2|0|2\\d\\d\\d|9)$");
    assert_eq!(
        p.app_args(),
        "1 4 1 5000 # main_long.wav invalid.wav digits ^(?:1|2|0|2\\d\\d\\d|9)$ 2000"
    );
    // Leaving the menus for a step plays the exit sound, then routes.
    let n = out.len();
    assert_eq!(
        out[n - 2],
        Output::Play {
            prompt: "thanks.wav".into()
        }
    );
}

#[test]
fn journey_records_nodes_digits_and_outcomes() {
    let (_, run) = drive(flow(), Some(true), &[inv("*"), d("1"), d("0")]);
    let got: Vec<(Node, Outcome)> = run
        .journey()
        .entries
        .iter()
        .map(|e| (e.node.clone(), e.outcome.clone()))
        .collect();
    let step = |s: &str| Node::Step(s.into());
    let menu = |s: &str| Node::Menu(s.into());
    assert_eq!(
        got,
        vec![
            (step("hours"), Outcome::ScheduleOpen),
            (step("greet"), Outcome::Entered),
            (menu("main"), Outcome::Entered),
            (menu("main"), Outcome::Invalid("*".into())),
            (menu("main"), Outcome::Digits("1".into())),
            (menu("support_menu"), Outcome::Entered),
            (menu("support_menu"), Outcome::Digits("0".into())),
            (step("support"), Outcome::Routed),
        ]
    );
    assert_eq!(run.journey().dropped, 0);
    // The journey is what the call detail stores.
    let json = serde_json::to_value(run.journey()).expect("serialises");
    assert_eq!(
        json["entries"][4]["outcome"],
        serde_json::json!({"digits": "1"})
    );
}

#[test]
fn pressing_repeat_forever_ends_in_the_fallback_at_the_prompt_bound() {
    let inputs = vec![d("9"); 100];
    let ctx = |_: &str| Some(true);
    let mut run = Run::new(Arc::new(flow()), caller());
    run.handle_input(&ctx, Input::CallArrived).expect("start");
    let mut out = drain(&mut run);
    for input in inputs {
        if run.state() != RunState::Collecting {
            break;
        }
        run.handle_input(&ctx, input).expect("accepted");
        out.extend(drain(&mut run));
    }
    assert_eq!(run.prompts(), MAX_PROMPTS_PER_CALL);
    assert_eq!(run.state(), RunState::Ended);
    assert!(matches!(
        last_route(&out),
        Target::Voicemail { mailbox: VoicemailBox::Queue(q), .. } if q == "support"
    ));
    assert!(
        run.journey()
            .entries
            .iter()
            .any(|e| e.node == Node::Fallback && e.outcome == Outcome::PromptBound)
    );
}

#[test]
fn inputs_out_of_place_are_errors_not_panics() {
    let ctx = |_: &str| Some(true);
    let mut run = Run::new(Arc::new(flow()), caller());
    assert!(run.handle_input(&ctx, Input::Timeout).is_err());
    run.handle_input(&ctx, Input::CallArrived).expect("start");
    assert!(run.handle_input(&ctx, Input::CallArrived).is_err());
    assert!(
        run.handle_input(&ctx, Input::QueueExit(QueueExit::MaxWait))
            .is_err()
    );
    run.handle_input(&ctx, d("0")).expect("operator");
    assert_eq!(run.state(), RunState::Ended);
    assert!(run.handle_input(&ctx, d("2")).is_err());
    // A queue with no exit for the reason: the engine misused the runner.
    let mut run = Run::new(Arc::new(flow()), caller());
    run.handle_input(&ctx, Input::CallArrived).expect("start");
    run.handle_input(&ctx, d("1")).expect("support menu");
    run.handle_input(&ctx, d("0")).expect("support queue");
    assert_eq!(run.state(), RunState::InQueue);
    assert!(
        run.handle_input(&ctx, Input::QueueExit(QueueExit::NoAgent))
            .is_err()
    );
}

/// The three rows of `esl-captures/play-and-get-digits.md`.
#[test]
fn read_input_maps_the_captured_variables() {
    // o1: `12#` pressed: digits=12, read_result=success, terminator # (not in digits).
    assert_eq!(read_input(Some("12"), Some("success"), None), d("12"));
    // o2: nothing pressed: digits unset, read_result=failure.
    assert_eq!(read_input(None, Some("failure"), None), Input::Timeout);
    // o3: `*#` against `\d+`: digits unset, digits_invalid=*, read_result stays success.
    assert_eq!(read_input(None, Some("success"), Some("*")), inv("*"));
    // What uuid_getvar says for an unset variable counts as unset.
    assert_eq!(
        read_input(Some("_undef_"), Some("failure"), Some("_undef_")),
        Input::Timeout
    );
    // A stale digits_invalid from an earlier try does not turn a timeout into an invalid.
    assert_eq!(read_input(None, Some("failure"), Some("*")), Input::Timeout);
    // Only the terminator pressed: nothing collected, nothing refused.
    assert_eq!(read_input(None, Some("success"), None), Input::Timeout);
}

fn refused(json: serde_json::Value) -> (String, String) {
    let flow: Flow = serde_json::from_value(json.clone()).expect("parses");
    match flow.validate(&World) {
        Err(DialplanError::Invalid { path, reason }) => (path, reason),
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(()) => panic!("accepted: {json:#}"),
    }
}

#[test]
fn validation_refuses_with_the_field_path() {
    type Mutate = fn(&mut serde_json::Value);
    let cases: Vec<(&str, Mutate, &str)> = vec![
        (
            "missing menu",
            |j| j["steps"][1]["menu"] = "nope".into(),
            "steps[1].menu",
        ),
        (
            "missing queue",
            |j| j["steps"][3]["queue"] = "nope".into(),
            "steps[3].queue",
        ),
        (
            "missing agent",
            |j| j["steps"][9]["agent"] = "bob".into(),
            "steps[9].agent",
        ),
        (
            "missing schedule",
            |j| j["steps"][0]["schedule"] = "xmas".into(),
            "steps[0].schedule",
        ),
        (
            "missing mailbox owner",
            |j| j["steps"][4]["mailbox"] = serde_json::json!({"agent": "bob"}),
            "steps[4].mailbox",
        ),
        (
            "missing step in an entry",
            |j| j["menus"][0]["entries"][1]["action"]["step"] = "nope".into(),
            "menus[0].entries[1].action.step",
        ),
        (
            "missing submenu",
            |j| j["menus"][0]["entries"][0]["action"]["menu"] = "nope".into(),
            "menus[0].entries[0].action.menu",
        ),
        (
            "missing queue exit",
            |j| j["steps"][3]["on_no_agent"] = "nope".into(),
            "steps[3].on_no_agent",
        ),
        (
            "duplicate step id",
            |j| j["steps"][5]["id"] = "sales".into(),
            "steps[5].id",
        ),
        (
            "duplicate menu id",
            |j| j["menus"][2]["id"] = "main".into(),
            "menus[2].id",
        ),
        (
            "duplicate keys",
            |j| j["menus"][0]["entries"][2]["keys"] = serde_json::json!({"exact": "1"}),
            "menus[0].entries[2].keys",
        ),
        (
            "bad pattern",
            |j| j["menus"][0]["entries"][3]["keys"] = serde_json::json!({"pattern": "2XY"}),
            "menus[0].entries[3].keys",
        ),
        (
            "terminator as a key",
            |j| j["menus"][0]["entries"][2]["keys"] = serde_json::json!({"exact": "#"}),
            "menus[0].entries[2].keys",
        ),
        (
            "bad length",
            |j| {
                j["menus"][2]["entries"][0]["keys"] =
                    serde_json::json!({"length": {"min": 9, "max": 6}})
            },
            "menus[2].entries[0].keys",
        ),
        (
            "repeat as an exit",
            |j| j["menus"][0]["on_max_failures"] = serde_json::json!({"kind": "repeat"}),
            "menus[0].on_max_failures",
        ),
        (
            "zero timeout",
            |j| j["menus"][1]["timeout_ms"] = 0.into(),
            "menus[1].timeout_ms",
        ),
        (
            "zero max failures",
            |j| j["menus"][1]["max_failures"] = 0.into(),
            "menus[1].max_failures",
        ),
        (
            "bad skill level",
            |j| j["steps"][2]["vars"][0]["level"] = serde_json::json!({"literal": "11"}),
            "steps[2].vars[0].level",
        ),
        (
            "bad transfer number",
            |j| {
                j["steps"][9] =
                    serde_json::json!({"kind": "transfer", "id": "operator", "number": "call me"})
            },
            "steps[9].number",
        ),
        (
            "string too long",
            |j| j["steps"][8]["prompt"] = "x".repeat(300).into(),
            "steps[8].prompt",
        ),
        (
            "unreachable step",
            |j| j["menus"][0]["entries"][3]["action"]["step"] = "operator".into(),
            "steps[10]",
        ),
        (
            "submenu cycle",
            |j| {
                j["menus"][2]["entries"][1]["action"] =
                    serde_json::json!({"kind": "submenu", "menu": "support_menu"})
            },
            "menus[2].entries[1].action.menu",
        ),
        (
            "bad fallback",
            |j| j["fallback"] = serde_json::json!({"queue": "nope"}),
            "fallback.queue",
        ),
        (
            "digit_len too narrow",
            |j| j["menus"][0]["digit_len"] = serde_json::json!({"min": 1, "max": 1}),
            "menus[0].entries[3].keys",
        ),
    ];
    for (name, mutate, want) in cases {
        let mut j = flow_json();
        mutate(&mut j);
        let (path, reason) = refused(j);
        assert_eq!(path, want, "{name}: {reason}");
        assert!(!reason.is_empty());
    }
}

#[test]
fn a_queue_exit_leading_to_a_queue_again_is_refused_and_one_to_a_message_is_not() {
    // On no agent: a menu whose key 1 leads into another queue.
    let j = serde_json::json!({
        "id": "exits", "fallback": {"play_hangup": "sorry.wav"},
        "steps": [
            {"kind": "queue", "id": "sales", "queue": "sales",
             "on_no_agent": "offer", "on_max_wait": "vm"},
            {"kind": "menu", "id": "offer", "menu": "a"},
            {"kind": "queue", "id": "support", "queue": "support"},
            {"kind": "voicemail", "id": "vm", "mailbox": {"queue": "sales"}},
            {"kind": "play_hangup", "id": "bye", "prompt": "bye.wav"}
        ],
        "menus": [{
            "id": "a", "greet_long": "a.wav", "timeout_ms": 3000, "inter_digit_timeout_ms": 1000,
            "max_failures": 3, "max_timeouts": 3,
            "entries": [
                {"keys": {"exact": "1"}, "action": {"kind": "step", "step": "support"}},
                {"keys": {"exact": "2"}, "action": {"kind": "step", "step": "vm"}}
            ],
            "on_max_failures": {"kind": "step", "step": "bye"},
            "on_max_timeouts": {"kind": "step", "step": "bye"}
        }]
    });
    let (path, reason) = refused(j.clone());
    assert_eq!(path, "steps[0].on_no_agent");
    assert!(reason.contains("steps[2]"), "{reason}");
    // The same menu without the way into support: voicemail or a message only.
    let mut ok = j;
    ok["menus"][0]["entries"][0]["action"]["step"] = "bye".into();
    ok["steps"][2]["id"] = "unused".into();
    ok["steps"].as_array_mut().unwrap().remove(2);
    let flow: Flow = serde_json::from_value(ok).unwrap();
    flow.validate(&World)
        .expect("exits to voicemail and a message are fine");
}

#[test]
fn a_loop_with_no_exit_is_refused() {
    let j = serde_json::json!({
        "id": "loop", "fallback": {"play_hangup": "sorry.wav"},
        "steps": [
            {"kind": "menu", "id": "m", "menu": "a"},
            {"kind": "goto", "id": "g1", "step": "g2"},
            {"kind": "goto", "id": "g2", "step": "g1"},
            {"kind": "play_hangup", "id": "bye", "prompt": "bye.wav"}
        ],
        "menus": [{
            "id": "a", "greet_long": "a.wav", "timeout_ms": 3000, "inter_digit_timeout_ms": 1000,
            "max_failures": 3, "max_timeouts": 3,
            "entries": [
                {"keys": {"exact": "1"}, "action": {"kind": "step", "step": "g1"}},
                {"keys": {"exact": "2"}, "action": {"kind": "step", "step": "bye"}}
            ],
            "on_max_failures": {"kind": "step", "step": "bye"},
            "on_max_timeouts": {"kind": "top"}
        }]
    });
    let (path, reason) = refused(j);
    assert_eq!(path, "steps[1]");
    assert!(reason.contains("loop with no exit"), "{reason}");
}

#[test]
fn submenus_deeper_than_the_bound_are_refused() {
    let menus: Vec<_> = (0..10)
        .map(|i| {
            let mut entries = vec![serde_json::json!({"keys": {"exact": "0"}, "action": {"kind": "step", "step": "bye"}})];
            if i < 9 {
                entries.push(serde_json::json!({"keys": {"exact": "1"}, "action": {"kind": "submenu", "menu": format!("m{}", i + 1)}}));
            }
            serde_json::json!({
                "id": format!("m{i}"), "greet_long": "x.wav", "timeout_ms": 3000, "inter_digit_timeout_ms": 1000,
                "max_failures": 1, "max_timeouts": 1, "entries": entries,
                "on_max_failures": {"kind": "back"}, "on_max_timeouts": {"kind": "top"}
            })
        })
        .collect();
    let j = serde_json::json!({
        "id": "deep", "fallback": {"play_hangup": "sorry.wav"},
        "steps": [
            {"kind": "menu", "id": "start", "menu": "m0"},
            {"kind": "play_hangup", "id": "bye", "prompt": "bye.wav"}
        ],
        "menus": menus
    });
    let (path, reason) = refused(j);
    assert!(path.starts_with("menus["), "{path}");
    assert!(reason.contains("deeper than 8"), "{reason}");
}

#[test]
fn unknown_fields_and_kinds_do_not_parse() {
    let mut j = flow_json();
    j["menus"][0]["on_max_timeout"] = serde_json::json!({"kind": "top"});
    assert!(serde_json::from_value::<Flow>(j).is_err());
    let mut j = flow_json();
    j["steps"][0]["kind"] = "teleport".into();
    assert!(serde_json::from_value::<Flow>(j).is_err());
    let mut j = flow_json();
    j["steps"][5]["extra"] = 1.into();
    assert!(serde_json::from_value::<Flow>(j).is_err());
}

#[test]
fn the_model_round_trips_through_json() {
    let flow = flow();
    let json = serde_json::to_value(&flow).expect("serialises");
    assert_eq!(json, flow_json_normalised());
    let back: Flow = serde_json::from_value(json).expect("parses back");
    assert_eq!(back, flow);
}

/// The sample with the defaults serde fills in (terminators).
fn flow_json_normalised() -> serde_json::Value {
    let mut j = flow_json();
    for m in j["menus"].as_array_mut().expect("menus") {
        if m.get("terminators").is_none() {
            m["terminators"] = "#".into();
        }
    }
    j
}

#[test]
fn numbers_normalise_lightly_and_default() {
    let plan: NumberPlan = serde_json::from_value(serde_json::json!({
        "default_flow": "main",
        "numbers": [
            {"number": "+1 (555) 010-0100", "flow": "sales_line"},
            {"number": "2001", "flow": "internal"}
        ]
    }))
    .expect("parses");
    let flows = |f: &str| matches!(f, "main" | "sales_line" | "internal");
    plan.validate(flows).expect("valid");
    assert_eq!(plan.flow_for("+15550100100"), "sales_line");
    assert_eq!(plan.flow_for("15550100100"), "sales_line");
    assert_eq!(plan.flow_for("1 555 010 0100"), "sales_line");
    assert_eq!(plan.flow_for("2001"), "internal");
    assert_eq!(plan.flow_for("+442071234567"), "main");
    assert_eq!(plan.flow_for("garbage"), "main");
    let index = plan.index();
    for dialled in [
        "+15550100100",
        "15550100100",
        "1 555 010 0100",
        "2001",
        "+442071234567",
        "garbage",
        "",
    ] {
        assert_eq!(
            index.flow_for(dialled),
            plan.flow_for(dialled),
            "{dialled:?}"
        );
    }

    let mut dup = plan.clone();
    dup.numbers[1].number = "15550100100".into();
    assert_eq!(
        dup.validate(flows),
        Err(DialplanError::invalid(
            "numbers[1].number",
            "the same number as numbers[0]"
        ))
    );
    let mut bad = plan.clone();
    bad.numbers[0].flow = "nope".into();
    assert!(
        matches!(bad.validate(flows), Err(DialplanError::Invalid { path, .. }) if path == "numbers[0].flow")
    );
    let mut bad = plan.clone();
    bad.numbers[1].number = "abc".into();
    assert!(
        matches!(bad.validate(flows), Err(DialplanError::Invalid { path, .. }) if path == "numbers[1].number")
    );
    let mut bad = plan;
    bad.default_flow = "nope".into();
    assert!(
        matches!(bad.validate(flows), Err(DialplanError::Invalid { path, .. }) if path == "default_flow")
    );
}

/// The world above, with menus stored apart from any flow: "m1" (1: sales, 2: submenu "m2",
/// 9: a step named "nope") and "m2" (0: support, 8: back).
struct Stored {
    menus: Vec<switchyard_dialplan::flow::Menu>,
}

impl Known for Stored {
    fn queue(&self, id: &str) -> bool {
        World.queue(id)
    }
    fn agent(&self, id: &str) -> bool {
        World.agent(id)
    }
    fn schedule(&self, id: &str) -> bool {
        World.schedule(id)
    }
    fn menu(&self, id: &str) -> Option<&switchyard_dialplan::flow::Menu> {
        self.menus.iter().find(|m| m.id == id)
    }
}

fn stored_menu(id: &str, entries: serde_json::Value) -> switchyard_dialplan::flow::Menu {
    serde_json::from_value(serde_json::json!({
        "id": id, "greet_long": format!("{id}.wav"),
        "timeout_ms": 5000, "inter_digit_timeout_ms": 2000,
        "max_failures": 3, "max_timeouts": 3,
        "entries": entries,
        "on_max_failures": {"kind": "step", "step": "support"},
        "on_max_timeouts": {"kind": "step", "step": "support"}
    }))
    .expect("the stored menu parses")
}

fn stored() -> Stored {
    Stored {
        menus: vec![
            stored_menu(
                "m1",
                serde_json::json!([
                    {"keys": {"exact": "1"}, "action": {"kind": "step", "step": "sales"}},
                    {"keys": {"exact": "2"}, "action": {"kind": "submenu", "menu": "m2"}}
                ]),
            ),
            stored_menu(
                "m2",
                serde_json::json!([
                    {"keys": {"exact": "0"}, "action": {"kind": "step", "step": "support"}},
                    {"keys": {"exact": "8"}, "action": {"kind": "back"}}
                ]),
            ),
        ],
    }
}

fn flow_on_stored(menu: &str) -> Flow {
    serde_json::from_value(serde_json::json!({
        "id": "lean",
        "fallback": {"queue": "support"},
        "steps": [
            {"kind": "menu", "id": "greet", "menu": menu},
            {"kind": "queue", "id": "sales", "queue": "sales"},
            {"kind": "queue", "id": "support", "queue": "support"}
        ]
    }))
    .expect("parses")
}

#[test]
fn a_flow_runs_the_stored_menus_it_names_and_their_submenus_as_its_own() {
    let known = stored();
    let flow = flow_on_stored("m1");
    assert_eq!(flow.validate(&known), Ok(()));
    let runnable = flow.resolve_menus(&known).expect("resolves");
    let ids: Vec<&str> = runnable.menus.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2"], "the submenu comes in through m1");
    let (out, _) = drive(runnable.clone(), None, &[d("2"), d("0")]);
    assert!(
        matches!(last_route(&out), Target::Queue { queue, .. } if queue == "support"),
        "{out:#?}"
    );
    let (out, _) = drive(runnable, None, &[d("1")]);
    assert!(
        matches!(last_route(&out), Target::Queue { queue, .. } if queue == "sales"),
        "{out:#?}"
    );
    // Without the stored menus the same flow names a menu that is not there.
    assert_eq!(
        flow.validate(&World).map_err(|e| match e {
            DialplanError::Invalid { path, .. } => path,
            other => format!("{other:?}"),
        }),
        Err("steps[0].menu".to_owned())
    );
}

#[test]
fn a_problem_inside_a_stored_menu_is_told_at_the_flow_field_that_brings_it_in() {
    let mut known = stored();
    known.menus[1] = stored_menu(
        "m2",
        serde_json::json!([{"keys": {"exact": "0"}, "action": {"kind": "step", "step": "billing"}}]),
    );
    match flow_on_stored("m1").validate(&known) {
        Err(DialplanError::Invalid { path, reason }) => {
            assert_eq!(path, "steps[0].menu");
            assert!(
                reason.starts_with("IVR menu \"m2\", entries[0].action.step: no step \"billing\""),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_local_menu_may_not_take_the_id_of_a_stored_one() {
    let known = stored();
    let mut json = flow_json();
    json["menus"][1]["id"] = "m1".into();
    json["menus"][0]["entries"][0]["action"]["menu"] = "m1".into();
    let flow: Flow = serde_json::from_value(json).expect("parses");
    match flow.validate(&known) {
        Err(DialplanError::Invalid { path, .. }) => assert_eq!(path, "menus[1].id"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_stored_menu_is_checked_alone_with_its_own_paths_and_any_step() {
    let known = stored();
    let ok = stored_menu(
        "x",
        serde_json::json!([
            {"keys": {"exact": "1"}, "action": {"kind": "step", "step": "whatever_flow_step"}},
            {"keys": {"exact": "2"}, "action": {"kind": "submenu", "menu": "m1"}}
        ]),
    );
    assert_eq!(ok.validate_stored("x", &known), Ok(()));
    let path_of = |m: &switchyard_dialplan::flow::Menu| match m.validate_stored("x", &known) {
        Err(DialplanError::Invalid { path, .. }) => path,
        other => panic!("{other:?}"),
    };
    let mut bad = ok.clone();
    bad.entries[1].action = switchyard_dialplan::flow::MenuAction::Submenu { menu: "m9".into() };
    assert_eq!(path_of(&bad), "entries[1].action.menu", "no stored menu m9");
    bad.entries[1].action = switchyard_dialplan::flow::MenuAction::Submenu { menu: "x".into() };
    assert_eq!(path_of(&bad), "entries[1].action.menu", "itself");
    let mut bad = ok.clone();
    bad.timeout = Duration::ZERO;
    assert_eq!(path_of(&bad), "timeout_ms");
    let mut bad = ok;
    bad.on_max_timeouts = switchyard_dialplan::flow::MenuAction::Repeat;
    assert_eq!(path_of(&bad), "on_max_timeouts");
}

#[test]
fn a_document_without_an_id_parses_and_is_refused_at_id_until_one_is_given() {
    let mut json = flow_json();
    json.as_object_mut().expect("an object").remove("id");
    json["menus"][0]
        .as_object_mut()
        .expect("an object")
        .remove("id");
    let mut flow: Flow = serde_json::from_value(json).expect("parses without ids");
    assert_eq!(flow.id, "");
    let path = |f: &Flow| match f.validate(&World) {
        Err(DialplanError::Invalid { path, .. }) => path,
        other => panic!("{other:?}"),
    };
    assert_eq!(path(&flow), "id");
    flow.id = "main".into();
    assert_eq!(path(&flow), "menus[0].id");
    flow.menus[0].id = "main".into();
    assert_eq!(flow.validate(&World), Ok(()));
    // An empty id is left out of the document, so a stored one reads back the same.
    flow.id.clear();
    let stored = serde_json::to_value(&flow).expect("serialises");
    assert!(stored.get("id").is_none(), "{stored}");
    assert_eq!(
        serde_json::from_value::<Flow>(stored).expect("reads back"),
        flow
    );
}

#[test]
fn the_index_tells_a_listed_number_from_one_the_default_flow_takes() {
    let plan = switchyard_dialplan::flow::NumberPlan {
        numbers: vec![switchyard_dialplan::flow::NumberRoute {
            number: "+1 (555) 010-0100".into(),
            flow: "main".into(),
        }],
        default_flow: "fallback".into(),
    };
    let index = plan.index();
    assert_eq!(index.listed("+15550100100"), Some("main"));
    assert_eq!(index.listed("5000"), None);
    assert_eq!(index.flow_for("5000"), "fallback");
    assert_eq!(index.default_flow(), "fallback");
}
