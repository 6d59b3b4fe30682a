//! The inbound flow decision (issue 20): a dialled number to a target, with the schedule and
//! a three-level IVR menu evaluated, in the pure `switchyard-dialplan` core. Per call: the
//! number looked up among 10,000 (`NumberIndex`), the flow run from `CallArrived` through the
//! schedule check (New York business hours with holidays and an override, `is_open` at the
//! call's instant) and three menus (main → support → account number of 8 digits) to the
//! route, each prompt's output drained. What the ESL shell and FreeSWITCH add (prompts played,
//! digits pressed) is not in the figure: it is the decision's own CPU time.
//!
//! ```sh
//! cargo bench --bench dialplan
//! ```
//! 200,000 calls, timed one by one (`Instant` around each, ~20 ns of it the clock itself):
//! p50 / p99 / p99.9 / max in microseconds, after 20,000 calls of warm-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_dialplan::flow::{CallerInfo, Flow, Input, NumberPlan, Output, Run, Target};
use switchyard_dialplan::schedule::Schedule;

const NUMBERS: usize = 10_000;
const CALLS: usize = 200_000;
const WARMUP: usize = 20_000;

fn flow() -> Flow {
    let flow = json!({
        "id": "main",
        "fallback": {"voicemail": {"queue": "support"}},
        "steps": [
            {"kind": "schedule", "id": "hours", "schedule": "weekday", "open": "greet", "closed": "after_hours"},
            {"kind": "menu", "id": "greet", "menu": "main"},
            {"kind": "set", "id": "sales_vars", "next": "sales", "vars": [
                {"kind": "skill", "skill": "sales", "level": {"literal": "5"}},
                {"kind": "language", "value": {"literal": "en"}}
            ]},
            {"kind": "queue", "id": "sales", "queue": "sales"},
            {"kind": "queue", "id": "support", "queue": "support"},
            {"kind": "voicemail", "id": "after_hours", "mailbox": {"queue": "support"}},
            {"kind": "set", "id": "acct_vars", "next": "support", "vars": [
                {"kind": "custom", "name": "account_number", "value": "caller_input"},
                {"kind": "account_tier", "value": {"literal": "gold"}}
            ]},
            {"kind": "agent", "id": "operator", "agent": "alice"}
        ],
        "menus": [
            {"id": "main", "greet_long": "main_long.wav", "greet_short": "main_short.wav",
             "timeout_ms": 5000, "inter_digit_timeout_ms": 2000, "max_failures": 3, "max_timeouts": 3,
             "entries": [
                {"keys": {"exact": "1"}, "action": {"kind": "submenu", "menu": "support_menu"}},
                {"keys": {"exact": "2"}, "action": {"kind": "step", "step": "sales_vars"}},
                {"keys": {"exact": "0"}, "action": {"kind": "step", "step": "operator"}}
             ],
             "on_max_failures": {"kind": "step", "step": "operator"},
             "on_max_timeouts": {"kind": "step", "step": "operator"}},
            {"id": "support_menu", "greet_long": "support.wav",
             "timeout_ms": 5000, "inter_digit_timeout_ms": 2000, "max_failures": 2, "max_timeouts": 2,
             "entries": [
                {"keys": {"exact": "1"}, "action": {"kind": "submenu", "menu": "acct_menu"}},
                {"keys": {"exact": "9"}, "action": {"kind": "top"}},
                {"keys": {"exact": "0"}, "action": {"kind": "step", "step": "support"}}
             ],
             "on_max_failures": {"kind": "top"},
             "on_max_timeouts": {"kind": "step", "step": "support"}},
            {"id": "acct_menu", "greet_long": "account.wav",
             "timeout_ms": 8000, "inter_digit_timeout_ms": 3000, "max_failures": 3, "max_timeouts": 1,
             "terminators": "#",
             "entries": [
                {"keys": {"length": {"min": 6, "max": 10}}, "action": {"kind": "step", "step": "acct_vars"}}
             ],
             "on_max_failures": {"kind": "step", "step": "support"},
             "on_max_timeouts": {"kind": "step", "step": "support"}}
        ]
    });
    serde_json::from_value(flow).expect("the bench's flow parses")
}

fn schedule() -> Schedule {
    let day = json!([{"start": "08:00", "end": "20:00"}]);
    serde_json::from_value(json!({
        "time_zone": "America/New_York",
        "weekly": {"monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day},
        "overrides": [{"name": "Christmas Eve", "date": "2026-12-24",
                       "hours": {"open": [{"start": "09:00", "end": "13:00"}]}}],
        "holidays": [
            {"name": "Thanksgiving", "month": 11, "nth": "fourth", "weekday": "thursday"},
            {"name": "Christmas", "month": 12, "day": 25, "observed": true},
            {"name": "New Year", "month": 1, "day": 1, "observed": true},
            {"name": "Memorial Day", "month": 5, "nth": "last", "weekday": "monday"}
        ]
    }))
    .expect("the bench's schedule parses")
}

fn pct(v: &[Duration], p: f64) -> f64 {
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)].as_secs_f64() * 1e6
}

fn main() {
    let plan: NumberPlan = serde_json::from_value(json!({
        "default_flow": "main",
        "numbers": (0..NUMBERS)
            .map(|i| json!({"number": format!("+1 (212) 55{:05}", i), "flow": "main"}))
            .collect::<Vec<_>>()
    }))
    .expect("the plan parses");
    plan.validate(|f| f == "main").expect("the plan is valid");
    let index = plan.index();
    let flow = Arc::new(flow());
    let compiled = schedule().compile().expect("the schedule compiles");
    // Wednesday 25 November 2026, 10:00 in New York: open, the day before a holiday.
    let at: jiff::Timestamp = "2026-11-25T15:00:00Z".parse().expect("an instant");
    let ctx = |id: &str| (id == "weekday").then(|| compiled.is_open(at));
    let digits = ["1", "1", "12345678"];

    let mut times = Vec::with_capacity(CALLS);
    for n in 0..WARMUP + CALLS {
        let dialled = format!("+1212{:07}", 5_500_000 + (n * 7919) % NUMBERS);
        let started = Instant::now();
        let flow_id = index.flow_for(&dialled);
        debug_assert_eq!(flow_id, "main");
        let mut run = Run::new(
            flow.clone(),
            CallerInfo {
                caller_id: "+15550199".into(),
                dialled,
            },
        );
        run.handle_input(&ctx, Input::CallArrived).expect("starts");
        let mut pressed = 0;
        let target = loop {
            let mut asked = false;
            let mut routed = None;
            while let Some(out) = run.poll_output() {
                match out {
                    Output::PlayAndGetDigits(_) => asked = true,
                    Output::Route(t) => routed = Some(t),
                    Output::Play { .. } => {}
                }
            }
            if let Some(t) = routed {
                break t;
            }
            assert!(asked && pressed < digits.len(), "the flow asks for digits");
            run.handle_input(&ctx, Input::Digits(digits[pressed].into()))
                .expect("digits taken");
            pressed += 1;
        };
        let took = started.elapsed();
        assert!(matches!(target, Target::Queue { .. }), "{target:?}");
        if n >= WARMUP {
            times.push(took);
        }
    }
    times.sort_unstable();
    // The number lookup alone, the index against the plan's own scan (which normalises every
    // route each time): why the call path holds a `NumberIndex`.
    let lookup = |f: &dyn Fn(&str) -> usize, calls: usize| {
        let mut v: Vec<Duration> = (0..calls)
            .map(|n| {
                let dialled = format!("+1212{:07}", 5_500_000 + (n * 7919) % NUMBERS);
                let t = Instant::now();
                std::hint::black_box(f(&dialled));
                t.elapsed()
            })
            .collect();
        v.sort_unstable();
        (pct(&v, 0.5), pct(&v, 0.99))
    };
    let (ip50, ip99) = lookup(&|d| index.flow_for(d).len(), 100_000);
    let (sp50, sp99) = lookup(&|d| plan.flow_for(d).len(), 2_000);
    println!(
        "number lookup among {NUMBERS}: index p50 {ip50:.2} µs, p99 {ip99:.2} µs; \
         the plan's scan p50 {sp50:.0} µs, p99 {sp99:.0} µs"
    );
    println!(
        "flow decision (10,000 numbers, schedule, three menus, 3 digit inputs) over {CALLS} calls: \
         p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.1} µs",
        pct(&times, 0.5),
        pct(&times, 0.99),
        pct(&times, 0.999),
        pct(&times, 1.0)
    );
}
