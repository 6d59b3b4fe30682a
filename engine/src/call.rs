//! Calls (members of a queue, in mod_callcenter's words) and their state machine.
//!
//! ```text
//!  CallArrived ─ join refused (join-empty, capacity) ──────────────────► Ended(Dropped)
//!      │ join
//!      ▼            offer(s) issued               agent leg answered
//!   Waiting(q) ─────────────────────► Offering(q) ─────────────────► Connecting(agent)
//!    │  ▲  │                           │  │ every offer rejected /      │ CHANNEL_BRIDGE
//!    │  │  │                           │  │ timed out / failed:         ▼
//!    │  │  │                           │  └─► back to Waiting,      Talking(agent) ─► Ended(Answered)
//!    │  │  │                           │      same place in line     (either side hangs up)
//!    │  ├──┼───────────────────────────┼───── bridge refused / lost / timed out, or the agent
//!    │  │  │                           │      leg dropped while connecting: agent leg hung up,
//!    │  │  │                           │      back to Waiting at the same place
//!    │  │  │ caller hangs up ──────────┴──────── (also while Connecting) ─► Ended(Abandoned)
//!    │  │  │ max wait / no agents / DTMF exit / leave-when-empty:
//!    │  │  ├─ Exit::Queue(q2) ─► Waiting(q2), keeps its accumulated wait and priority
//!    │  │  ├─ Exit::Voicemail / Transfer / Hangup ──────────────────────► Ended(...)
//!    │  │  └─ Exit::Callback: caller hangs up, the call keeps its place ─┐
//!    │  └──────────────────────────────────────────────────────────────┘ (Waiting, no caller leg)
//!    │ callback offer accepted by the agent ─► CallingBack(agent) ─ customer answers ─► Connecting
//!    │                                              └─ customer leg fails: agent freed; back to
//!    │                                                 Waiting (same place, not offered for the
//!    │                                                 queue's callback_retry), or after the
//!    │                                                 last of callback_attempts ─► Ended(CallbackFailed)
//! ```
//!
//! A call in Talking can be transferred back to a queue (`Command::TransferCall`): the caller
//! is parked out of the bridge alive, the agent wraps up, and the call joins the queue as a new
//! member (Waiting) with its old seniority; its recording goes on.
//!
//! A call is *answered* (statistics, live feed, records, a campaign's `connected`) only once
//! FreeSWITCH reports CHANNEL_BRIDGE between its two legs: an agent leg that answered can
//! still be lost to the originate that created it (see the driver's module doc).
//!
//! As a *member* of the queue it is waiting in (mod_callcenter's word), a call goes:
//!
//! ```text
//!   Waiting ──offer──► Trying ──legs bridged──► Answered ──► (left the queue)
//!     ▲   │              │
//!     │   │              └─ every offer failed, or the bridge failed ─► Waiting (same place)
//!     │   └─ hangup / exit ─► Abandoned | Exited(timeout, no agents, overflow, DTMF, ...)
//!     └── joins the next queue on overflow, as a new member with the old seniority
//! ```
//!
//! (`Waiting` is [`Phase::Waiting`], `Trying` is [`Phase::Offering`] and
//! [`Phase::Connecting`], `Answered` is [`Phase::Talking`]; each member ends with exactly one
//! statistics event in its queue.)
//!
//! A call is in exactly one queue's waiting set while `Waiting`, in none otherwise. Its place
//! in line is `(priority, wait_origin)`: the origin is the arrival time and never moves, so a
//! caller moved to another queue or bounced by a failed offer keeps its seniority.

use std::time::Instant;

use crate::ids::{AgentId, CallId, CampaignId, ContactId, OfferId, QueueId};
use crate::io::{CallerInfo, LegId};

/// Place in a queue's line: highest priority first, then the oldest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaitKey {
    pub neg_priority: i64,
    pub origin: Instant,
    pub call: CallId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Offering,
    /// Callback: the agent answered; the customer is being called.
    CallingBack {
        agent: AgentId,
        agent_leg: LegId,
        customer_leg: LegId,
    },
    /// The agent (or a callback's customer) answered and the two legs are being bridged;
    /// nobody talks until FreeSWITCH reports CHANNEL_BRIDGE.
    Connecting {
        agent: AgentId,
        agent_leg: LegId,
        /// When the bridge was asked for.
        since: Instant,
        /// The bridge deadline armed (`TimerKey::BridgeDeadline`).
        deadline: Instant,
        /// How long the agent took to answer the offer (the dialer learns it once connected).
        agent_lag: Option<std::time::Duration>,
    },
    Talking {
        agent: AgentId,
        agent_leg: LegId,
        since: Instant,
    },
}

/// Timers a call may have armed (remembered so they can be cancelled exactly).
#[derive(Clone, Copy, Debug, Default)]
pub struct CallTimers {
    pub announce: Option<Instant>,
    pub periodic: Option<Instant>,
    pub max_wait: Option<Instant>,
    pub no_agent: Option<Instant>,
    pub escalate: Option<Instant>,
    pub ring_next: Option<Instant>,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub id: CallId,
    /// The caller's leg; for a callback, the customer leg once dialled.
    pub leg: LegId,
    /// The leg the caller arrived on: the call's identity for records and traces, whatever
    /// legs come later (a callback dials a new one).
    pub origin_leg: LegId,
    /// False once the caller's leg is gone for good (callback requested).
    pub caller_present: bool,
    pub caller: CallerInfo,
    pub arrived: Instant,
    /// Seniority in line: set at arrival, kept across moves.
    pub wait_origin: Instant,
    pub priority: i32,
    pub queue: QueueId,
    pub queue_entered: Instant,
    pub queues: Vec<QueueId>,
    pub phase: Phase,
    /// Live offers (several for ring-all and ring-progressively).
    pub offers: Vec<OfferId>,
    /// Agents who already failed this call recently (not offered it again while others can).
    pub tried: Vec<AgentId>,
    pub offers_made: u32,
    /// Escalation: next step index, open tier levels, skill relaxation.
    pub step: usize,
    pub max_level: u32,
    pub relax: u8,
    pub callback: bool,
    /// Callback dials to the customer that failed so far (busy, no answer, failed).
    pub callback_failures: u32,
    /// After a failed callback dial the call waits in line (keeping its place) but is not
    /// offered before this (`TimerKey::CallbackRetry` clears it).
    pub callback_held: Option<Instant>,
    pub timers: CallTimers,
    /// Set for a campaign's call: which dial of which contact it is.
    pub campaign: Option<Box<CampaignCall>>,
    /// The recording of the call's current customer leg, while it runs.
    pub recording: Option<crate::recording::RecordingId>,
    /// 0-99, drawn at arrival: recorded by a sampled policy when below its percentage.
    pub record_draw: u8,
}

/// What a campaign call carries for its attempt record.
#[derive(Clone, Debug)]
pub struct CampaignCall {
    pub campaign: CampaignId,
    pub contact: ContactId,
    pub attempt: u32,
    pub number: String,
    pub zone: String,
    pub dialed: Instant,
    pub answered: Option<Instant>,
    /// Preview: the agent is rung first, then the customer.
    pub preview: bool,
    /// An answering machine routed to an agent (not a person: outside the ledger).
    pub machine: bool,
    pub connected: bool,
    /// The `connect_within` deadline passed: abandoned.
    pub abandoned: bool,
    /// The `connect_within` deadline passed while the bridge was already in flight: the
    /// deadline was moved on by the bridge allowance once, to learn how the bridge ends.
    pub overdue: bool,
    pub deadline: Option<Instant>,
    /// Why the customer leg went away, for a preview dial that failed.
    pub cause: Option<crate::io::HangupCause>,
}

/// Most agents remembered as having failed a call.
pub const TRIED_MEMORY: usize = 16;

impl Call {
    /// The agent on this call (talking, or calling the customer back).
    pub fn agent(&self) -> Option<AgentId> {
        match self.phase {
            Phase::Talking { agent, .. }
            | Phase::Connecting { agent, .. }
            | Phase::CallingBack { agent, .. } => Some(agent),
            _ => None,
        }
    }

    pub fn wait_key(&self) -> WaitKey {
        WaitKey {
            neg_priority: -i64::from(self.priority),
            origin: self.wait_origin,
            call: self.id,
        }
    }

    pub fn remember_tried(&mut self, agent: AgentId) {
        if self.tried.len() >= TRIED_MEMORY {
            self.tried.remove(0);
        }
        self.tried.push(agent);
    }
}

/// One offer: a reservation of one agent for one call while the agent's leg rings.
#[derive(Clone, Copy, Debug)]
pub struct Offer {
    pub id: OfferId,
    pub call: CallId,
    pub agent: AgentId,
    pub leg: LegId,
    pub queue: QueueId,
    pub started: Instant,
    pub timeout_at: Instant,
    /// A desktop preview's reservation not yet accepted: nothing rings (`leg` is not
    /// originated, unless it is the agent's persistent line) and `timeout_at` is the
    /// campaign's preview timeout.
    pub desktop: bool,
}
