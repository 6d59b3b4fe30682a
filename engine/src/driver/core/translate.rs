//! FreeSWITCH events to the engine's [`SwitchEvent`]s, CDRs and machine verdicts.
//!
//! | event (header)                               | for                 | becomes                      |
//! |----------------------------------------------|---------------------|------------------------------|
//! | CHANNEL_ANSWER                               | originated legs     | `LegAnswered` (once)         |
//! | CHANNEL_PARK                                 | originated legs     | the handover (held bridges go) |
//! | CHANNEL_BRIDGE (`Other-Leg-Unique-ID` or `Bridge-B-Unique-ID`) | either leg ours | `Bridged` |
//! | CHANNEL_EXECUTE_COMPLETE `Application: amd`  | campaign legs       | `MachineDetection` (once)    |
//! | CHANNEL_EXECUTE_COMPLETE, `Application-UUID` of a flow's collection | callers in a flow | the flow (module `ivr`) |
//! | CHANNEL_EXECUTE_COMPLETE (other)             | callers             | the prompt queue             |
//! | CUSTOM `avmd::beep`                          | campaign legs       | `MachineDetection` Machine   |
//! | CHANNEL_HANGUP_COMPLETE                      | legs of ours        | a CDR, then `LegHungUp`      |
//! | CHANNEL_HANGUP_COMPLETE, `endpoint_disposition` *_TRANSFER | originated legs | `Transferred` first |
//! | CHANNEL_HANGUP_COMPLETE                      | recorder legs       | forgotten (module `capture`) |
//! | RECORD_STOP (`Record-File-Path`)             | switch recordings   | the file's check (`capture`) |
//!
//! Answering-machine detection: the engine asks for it with the originate's variables
//! (`execute_on_answer=amd` for mod_amd, `execute_on_answer=avmd_start` for mod_avmd); the
//! verdict of mod_amd is `variable_amd_result` (HUMAN / MACHINE / NOTSURE); mod_avmd only
//! ever says "beep", so the engine's AMD timeout decides the humans.

use switchyard_esl::Event;
use tracing::debug;

use crate::ids::QueueId;
use crate::io::{AmdResult, CdrRecord, HangupCause, LegId, Record, SwitchEvent};

use super::{DriverCore, bump};

impl DriverCore {
    /// An event from `node`'s inbound connection.
    pub fn switch_event(&mut self, now: std::time::Instant, _node: usize, e: &Event) {
        self.at(now);
        self.translate(e);
        self.settle();
    }

    fn translate(&mut self, e: &Event) {
        let Some(leg) = e.unique_id().and_then(|u| LegId::parse(&u)) else {
            return;
        };
        match e.name().as_deref() {
            Some("CHANNEL_ANSWER") => {
                if let Some(o) = self.originated.get_mut(&leg)
                    && !o.answered
                {
                    o.answered = true;
                    self.feed_switch(SwitchEvent::LegAnswered { leg });
                }
            }
            // The originate's `&park()` runs once the originate let go.
            Some("CHANNEL_PARK") => self.handed_over(leg),
            Some("CHANNEL_BRIDGE") => {
                let other = e
                    .header("Other-Leg-Unique-ID")
                    .or_else(|| e.header("Bridge-B-Unique-ID"))
                    .and_then(|u| LegId::parse(&u));
                let ours = |l: &LegId| self.callers.contains(l) || self.originated.contains_key(l);
                if let Some(other) = other
                    && (ours(&leg) || ours(&other))
                {
                    self.feed_switch(SwitchEvent::Bridged { a: leg, b: other });
                }
            }
            Some("CHANNEL_EXECUTE_COMPLETE")
                if e.header("Application").as_deref() == Some("amd") =>
            {
                let verdict = e
                    .variable("amd_result")
                    .map_or(AmdResult::Unsure, |v| AmdResult::from_freeswitch(&v));
                self.machine_detection(leg, verdict);
            }
            Some("CHANNEL_EXECUTE_COMPLETE") if self.voicemail_executed(leg, e) => {}
            Some("CHANNEL_EXECUTE_COMPLETE") if self.flow_executed(leg, e) => {}
            Some("CHANNEL_EXECUTE_COMPLETE") => self.on_executed(leg, e),
            Some("CUSTOM") if e.header("Event-Subclass").as_deref() == Some("avmd::beep") => {
                self.machine_detection(leg, AmdResult::Machine);
            }
            // A recorder leg is the capture's, not a call's: no CDR, no engine event.
            Some("CHANNEL_HANGUP_COMPLETE") if self.on_recorder_gone(leg) => {}
            Some("CHANNEL_HANGUP_COMPLETE") => self.on_hangup_complete(leg, e),
            Some("RECORD_STOP") => {
                let path = e.header("Record-File-Path");
                self.on_record_stop(leg, path.as_deref());
            }
            _ => {}
        }
    }

    fn on_hangup_complete(&mut self, leg: LegId, e: &Event) {
        self.prompt_leg_gone(leg);
        self.flow_leg_gone(leg);
        self.voicemail_leg_gone(leg);
        for (a, b) in self.handover.drop_leg(leg) {
            self.followups.push_back(SwitchEvent::BridgeFailed { a, b });
        }
        // The leg's CDR, for legs of ours, before the engine forgets whose it was.
        let call_leg = self.call_leg_of(leg);
        let transferred = self.originated.contains_key(&leg) && transferred_its_peer(e);
        self.caller_queues.remove(&leg);
        self.forget_home(leg);
        let ours = self.originated.remove(&leg).is_some() | self.callers.remove(&leg);
        let flow = self.walked_flow(leg);
        // A caller's session may report its hangup first (it is then no longer among the
        // callers): the queue it was routed to, or the flow it walked, still makes it ours.
        if ours || call_leg.is_some() || flow.is_some() {
            let mut cdr = cdr_from(e, leg, call_leg);
            if cdr.call_leg.is_none() && flow.is_some() {
                // A caller who walked a flow and reached no queue is its own call.
                cdr.call_leg = Some(leg);
            }
            cdr.flow = flow;
            self.record(Record::Cdr(cdr));
        }
        if transferred {
            debug!(%leg, to = ?e.variable("transfer_destination"), "agent phone transferred its peer");
            self.feed_switch(SwitchEvent::Transferred { leg });
        }
        if ours {
            let cause = e
                .hangup_cause()
                .map_or(HangupCause::Normal, |c| HangupCause::from_freeswitch(&c));
            self.feed_switch(SwitchEvent::LegHungUp { leg, cause });
        }
    }

    /// An answering-machine verdict: reported once, and only for campaign dials.
    fn machine_detection(&mut self, leg: LegId, result: AmdResult) {
        let Some(o) = self.originated.get_mut(&leg) else {
            return;
        };
        if !o.campaign || o.amd_reported {
            return;
        }
        o.amd_reported = true;
        bump(&self.counters.machine_detections);
        debug!(%leg, ?result, "answering-machine detection");
        if let Some(p) = &self.cfg.probe {
            p.machine_detection(leg, result, self.now);
        }
        self.feed_switch(SwitchEvent::MachineDetection { leg, result });
    }
}

/// mod_sofia marks the leg whose phone sent a REFER it carried out with
/// `endpoint_disposition` BLIND_TRANSFER (`sofia_handle_sip_i_refer`: set before
/// `switch_ivr_session_transfer` moves the peer) or ATTENDED_TRANSFER (REFER with Replaces, the
/// peer bridged to the consulted party). The variable outlives the leg's hangup, so it rides
/// on CHANNEL_HANGUP_COMPLETE; `*_TRANSFER_ERROR` dispositions moved nobody.
fn transferred_its_peer(e: &Event) -> bool {
    matches!(
        e.variable("endpoint_disposition").as_deref(),
        Some("BLIND_TRANSFER" | "ATTENDED_TRANSFER")
    )
}

/// Microseconds since the epoch (FreeSWITCH's `*-Time` headers) to milliseconds; 0 = unset.
fn usec_header(e: &Event, name: &str) -> Option<u64> {
    e.header(name)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|v| *v > 0)
        .map(|v| v / 1000)
}

/// A CDR from CHANNEL_HANGUP_COMPLETE (header names as in the FreeSWITCH 1.10 captures).
pub(super) fn cdr_from(e: &Event, leg: LegId, call: Option<(LegId, QueueId)>) -> CdrRecord {
    let text = |v: Option<std::borrow::Cow<'_, str>>| v.map(|v| v.into_owned()).unwrap_or_default();
    let started = usec_header(e, "Caller-Channel-Created-Time").unwrap_or(0);
    let ended = usec_header(e, "Caller-Channel-Hangup-Time").unwrap_or(started);
    CdrRecord {
        leg,
        flow: None,
        call_leg: call.map(|c| c.0),
        queue: call.map(|c| c.1),
        direction: text(e.header("Call-Direction")),
        caller_number: text(e.caller("Caller-ID-Number")),
        destination: text(e.caller("Destination-Number")),
        hangup_cause: text(e.hangup_cause()),
        started_unix_ms: started,
        answered_unix_ms: usec_header(e, "Caller-Channel-Answered-Time"),
        ended_unix_ms: ended,
        billsec_ms: e
            .variable("billmsec")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
    }
}
