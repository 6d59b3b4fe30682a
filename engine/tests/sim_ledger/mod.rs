//! An account of a simulated run kept from the engine's outputs alone, so that the report's
//! and the engine's own counters can be checked against figures neither of them computed.
//!
//! Arrivals are the caller legs the engine answered (it answers each arrival it accepts, once;
//! these scenarios refuse none), and the harness numbers its callers `+1555NNNNNNN` in arrival
//! order, so the final records' numbers must be exactly 1..=N: an arrival the engine swallowed
//! without a word still leaves a gap.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};

use switchyard_engine::{CallId, CallOutcome, LegId, Output, Record, SwitchCommand};

struct Final {
    outcome: CallOutcome,
    arrived_unix_ms: u64,
    number: Option<u64>,
}

#[derive(Default)]
pub struct Ledger {
    arrivals: HashSet<LegId>,
    finals: HashMap<CallId, Final>,
    final_legs: HashSet<LegId>,
    faults: Vec<String>,
}

/// Calls counted from their final records, by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub calls: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub other: u64,
}

impl Ledger {
    pub fn observe(&mut self, out: &Output) {
        match out {
            Output::Switch(SwitchCommand::Answer { leg }) if !self.arrivals.insert(*leg) => {
                self.faults.push(format!("caller leg {leg} answered twice"));
            }
            Output::Persist(Record::Call(r)) => {
                if !self.final_legs.insert(r.leg) {
                    self.faults
                        .push(format!("leg {} has a second final record", r.leg));
                }
                let number = r
                    .caller_number
                    .strip_prefix("+1555")
                    .and_then(|n| n.parse().ok());
                let f = Final {
                    outcome: r.outcome,
                    arrived_unix_ms: r.arrived_unix_ms,
                    number,
                };
                if self.finals.insert(r.call, f).is_some() {
                    self.faults
                        .push(format!("{} has a second final record", r.call));
                }
            }
            _ => {}
        }
    }

    /// Checks that every arrival has exactly one final record and every final record an
    /// arrival, then counts the calls that arrived at or after `since_unix_ms` by outcome.
    pub fn settle(&self, since_unix_ms: u64) -> Result<Counts, String> {
        let mut faults = self.faults.clone();
        let missing = self.arrivals.difference(&self.final_legs).count();
        if missing > 0 {
            faults.push(format!(
                "{missing} of {} arrivals have no final record",
                self.arrivals.len()
            ));
        }
        let strays = self.final_legs.difference(&self.arrivals).count();
        if strays > 0 {
            faults.push(format!(
                "{strays} final records for legs that never arrived"
            ));
        }
        let mut numbers: Vec<u64> = self.finals.values().filter_map(|f| f.number).collect();
        numbers.sort_unstable();
        let n = self.arrivals.len() as u64;
        if numbers.len() as u64 != n || numbers.iter().copied().ne(1..=n) {
            faults.push(format!(
                "the records' caller numbers are not 1..={n} once each ({} numbered records)",
                numbers.len()
            ));
        }
        if !faults.is_empty() {
            return Err(faults.join("; "));
        }
        let mut c = Counts::default();
        for f in self.finals.values() {
            if f.arrived_unix_ms < since_unix_ms {
                continue;
            }
            c.calls += 1;
            match f.outcome {
                CallOutcome::Answered => c.answered += 1,
                CallOutcome::Abandoned => c.abandoned += 1,
                _ => c.other += 1,
            }
        }
        Ok(c)
    }
}
