//! The simulated core against queueing theory: on one queue with one skill, the service
//! level and ASA agree with Erlang C, and abandonment with Erlang A, within 5%.
//!
//! Waits in a queue are strongly autocorrelated, so a mean wait needs hundreds of thousands
//! of calls to settle: each load pools four seeded runs of up to 1,000 simulated hours
//! (0.5 to 2 million calls per load).

mod sim_ledger;

use std::time::Duration;

use sim_ledger::Ledger;
use switchyard_engine::EngineConfig;
use switchyard_engine::queueing::{ErlangA, ErlangC};
use switchyard_engine::sim::{Scenario, SimReport, Simulation};

const AHT_S: f64 = 180.0;
const WARMUP_HOURS: f64 = 2.0;

/// Runs one seed and checks its report against the calls counted from the final records: one
/// per arrival, the measured ones being those that arrived after the warm-up.
fn run(agents: u32, erlangs: f64, patience_s: Option<f64>, hours: f64, seed: u64) -> SimReport {
    let per_hour = erlangs * 3600.0 / AHT_S;
    let mut sc = Scenario::single_queue(
        agents,
        per_hour,
        Duration::from_secs_f64(AHT_S),
        patience_s.map(Duration::from_secs_f64),
    );
    sc.hours = hours;
    sc.warmup_hours = WARMUP_HOURS;
    sc.seed = seed;
    let mut ledger = Ledger::default();
    let report = Simulation::new(sc)
        .expect("valid scenario")
        .run_with(|out| ledger.observe(out))
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    // The simulation runs on the default engine configuration's clock origin.
    let warmup_ms = EngineConfig::default().origin_unix_ms + (WARMUP_HOURS * 3_600_000.0) as u64;
    let measured = ledger
        .settle(warmup_ms)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert_eq!(
        (
            report.offered,
            report.answered,
            report.abandoned,
            report.other
        ),
        (
            measured.calls,
            measured.answered,
            measured.abandoned,
            measured.other
        ),
        "seed {seed}: the report against the final records after the warm-up"
    );
    // One queue, no overflow: the engine's counters over the whole run are per call too.
    let whole = ledger
        .settle(0)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let totals = report.engine_totals.as_ref().expect("engine totals");
    assert_eq!(
        (totals.offered, totals.answered, totals.abandoned),
        (whole.calls, whole.answered, whole.abandoned),
        "seed {seed}: the engine's counters against the final records"
    );
    assert!(measured.calls > 0, "seed {seed}: no call measured");
    report
}

/// Pools runs of seeds 1..=4: totals over all calls.
struct Pooled {
    offered: f64,
    answered: f64,
    abandoned: f64,
    within: f64,
    wait_sum: f64,
}

fn pooled(agents: u32, erlangs: f64, patience_s: Option<f64>, hours: f64) -> Pooled {
    let mut p = Pooled {
        offered: 0.0,
        answered: 0.0,
        abandoned: 0.0,
        within: 0.0,
        wait_sum: 0.0,
    };
    for seed in 1..=4 {
        let r = run(agents, erlangs, patience_s, hours, seed);
        p.offered += r.offered as f64;
        p.answered += r.answered as f64;
        p.abandoned += r.abandoned as f64;
        p.within += r.service_level * r.offered as f64;
        p.wait_sum += r.asa_s * r.answered as f64;
    }
    p
}

fn assert_close(label: &str, got: f64, want: f64) {
    let err = (got - want).abs() / want.abs().max(1e-12);
    assert!(
        err <= 0.05,
        "{label}: simulated {got:.5}, theory {want:.5}: off by {:.2}%",
        err * 100.0
    );
}

#[test]
fn service_level_and_asa_agree_with_erlang_c_over_several_loads() {
    for (agents, erlangs, hours) in [(10u32, 7.0, 1000.0), (30, 24.0, 600.0), (100, 88.0, 300.0)] {
        let p = pooled(agents, erlangs, None, hours);
        let theory = ErlangC::new(agents, erlangs, Duration::from_secs_f64(AHT_S));
        let sl = theory.service_level(Duration::from_secs(20));
        let asa = theory.asa().expect("a stable load").as_secs_f64();
        let (got_sl, got_asa) = (p.within / p.offered, p.wait_sum / p.answered);
        eprintln!(
            "N={agents} A={erlangs}: SL {got_sl:.4} (Erlang C {sl:.4}), ASA {got_asa:.2} s ({asa:.2} s), {} calls",
            p.offered
        );
        assert_eq!(p.abandoned, 0.0, "infinitely patient callers never abandon");
        assert_close(&format!("N={agents} A={erlangs} service level"), got_sl, sl);
        assert_close(&format!("N={agents} A={erlangs} ASA"), got_asa, asa);
    }
}

#[test]
fn abandonment_agrees_with_erlang_a_over_several_loads() {
    // Including an overload (more erlangs than agents), where only abandonment keeps the
    // queue finite.
    for (agents, erlangs, patience) in [(10u32, 8.0, 120.0), (30, 28.0, 60.0), (20, 22.0, 180.0)] {
        let p = pooled(agents, erlangs, Some(patience), 300.0);
        let theory = ErlangA::new(
            agents,
            erlangs,
            Duration::from_secs_f64(AHT_S),
            Duration::from_secs_f64(patience),
        )
        .expect("solvable");
        let got = p.abandoned / p.offered;
        eprintln!(
            "N={agents} A={erlangs} patience {patience}: abandoned {got:.4} (Erlang A {:.4})",
            theory.prob_abandon()
        );
        assert_close(
            &format!("N={agents} A={erlangs} abandonment"),
            got,
            theory.prob_abandon(),
        );
    }
}
