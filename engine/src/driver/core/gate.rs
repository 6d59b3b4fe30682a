//! Write before you act: an originate decided after a record that must be kept first
//! ([`Record::must_precede_action`]: a call's open row, a campaign dial's attempt) waits
//! until the shell reports that record kept ([`DriverCore::records_kept`]). A restart then
//! finds every call and dial that was under way in the store, so no contact can look never
//! dialled and no call can go without a record.
//!
//! Records are numbered in the order the core hands them out ([`CoreOutput::Record`]); the
//! shell's writer reports how many of them are settled (written, or given up on and counted:
//! a record the bounded pipe had to drop releases its originates too, since waiting for it
//! would stop dialling for good). Only originates wait, in order; everything else (bridges,
//! kills, music) goes at once. A hang-up of a leg whose originate still waits takes the
//! originate back: nothing is sent for it.

use std::collections::VecDeque;

use tracing::error;

use crate::io::{HangupCause, Record, SwitchCommand, SwitchEvent};

use super::{CoreOutput, DriverCore, bump};

/// Originates waiting for their records at once; beyond it an originate fails (the record
/// writer is that far behind: the store is down and nothing holds records for it).
const MAX_HELD: usize = 100_000;

#[derive(Debug, Default)]
pub(super) struct Gate {
    /// Records handed out so far.
    emitted: u64,
    /// Records the shell reported settled.
    kept: u64,
    /// The number of the last record that must be kept before acting.
    barrier: u64,
    /// Originates waiting, with the record number each waits for.
    held: VecDeque<(u64, SwitchCommand)>,
}

impl DriverCore {
    /// Hands a record to the shell, numbering it.
    pub(super) fn record(&mut self, r: Record) {
        self.gate.emitted += 1;
        if r.must_precede_action() {
            self.gate.barrier = self.gate.emitted;
        }
        self.out.push_back(CoreOutput::Record(r));
    }

    /// The shell's writer has settled the first `count` records handed out: originates
    /// waiting for them go now.
    pub fn records_kept(&mut self, now: std::time::Instant, count: u64) {
        self.at(now);
        if count <= self.gate.kept {
            return;
        }
        self.gate.kept = count.min(self.gate.emitted);
        while let Some((wait, _)) = self.gate.held.front() {
            if *wait > self.gate.kept {
                break;
            }
            if let Some((_, cmd)) = self.gate.held.pop_front() {
                self.switch_now(cmd);
            }
        }
        self.release_voicemail();
        self.settle();
    }

    /// Records the shell has reported settled.
    pub(super) fn records_kept_count(&self) -> u64 {
        self.gate.kept
    }

    /// Records handed out that the shell has not reported settled.
    pub fn records_unsettled(&self) -> u64 {
        self.gate.emitted - self.gate.kept
    }

    /// Records handed out so far (what [`DriverCore::records_kept`] counts against).
    pub fn records_handed_out(&self) -> u64 {
        self.gate.emitted
    }

    /// Takes a command through the gate: `None` when it waits (or was taken back).
    pub(super) fn through_gate(&mut self, cmd: SwitchCommand) -> Option<SwitchCommand> {
        match &cmd {
            // A recording's commands wait behind its open row, and keep their order.
            SwitchCommand::Originate { .. } | SwitchCommand::Recording(_)
                if self.gate.barrier > self.gate.kept || !self.gate.held.is_empty() =>
            {
                if self.gate.held.len() >= MAX_HELD {
                    bump(&self.counters.commands_dropped);
                    error!(command = ?cmd, "originate dropped: too many wait for the record writer");
                    self.fail_unsent(&cmd, HangupCause::Failed);
                    return None;
                }
                self.gate.held.push_back((self.gate.barrier, cmd));
                None
            }
            SwitchCommand::Hangup { leg, .. } => {
                let leg = *leg;
                let before = self.gate.held.len();
                self.gate.held.retain(
                    |(_, c)| !matches!(c, SwitchCommand::Originate { leg: l, .. } if *l == leg),
                );
                if self.gate.held.len() == before {
                    return Some(cmd);
                }
                // Never placed: the leg ends here, as far as the engine is concerned.
                self.followups.push_back(SwitchEvent::LegHungUp {
                    leg,
                    cause: HangupCause::Normal,
                });
                None
            }
            _ => Some(cmd),
        }
    }

    /// At shutdown: the originates still waiting are never sent; how many.
    pub(super) fn drop_held(&mut self) -> usize {
        let n = self.gate.held.len();
        self.gate.held.clear();
        n
    }
}
