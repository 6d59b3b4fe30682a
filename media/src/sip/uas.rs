//! The recorder endpoint's sans-IO core: SIP requests in, responses, routing orders and leg
//! events out. No sockets and no clock: datagrams come with the time they arrived, and the
//! shell (`sip::endpoint`) carries out what `poll_output` hands back, in order.
//!
//! One dialog per answered recorder leg, keyed by Call-ID:
//!
//! ```text
//!  INVITE (expected user) ─> 100, Route ─> handle_routed(Ok) ─> 200 ─ACK─> confirmed ─BYE─> 200, ended
//!         (unknown user)  ─> 404, nothing bound or routed       │ Err ─> 503, ended
//!  CANCEL while routing   ─> 200 + 487, ended                    └ no ACK in 64*T1 ─> ended
//!  re-INVITE ─> 200 at once (same RTP source), or Route{replaces} first (the source moved)
//! ```
//!
//! Retransmissions (UDP) are answered from a cache of the last response per transaction
//! (top Via branch + method, RFC 3261 §17.2.3), so a repeated INVITE gets the same bytes,
//! 100 or 200, and a repeated BYE the same 200. A 2xx to INVITE is itself retransmitted until
//! its ACK (§13.3.1.4). Everything is bounded: expected legs, dialogs, cached transactions
//! (the oldest is forgotten at the bound) and the size of a message.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ezk_sip_types::Method;

use super::message::{self, Incoming, Request};
use super::oreka::{self, ForkMessage};
use super::sdp::{self, Negotiated};
use crate::MediaError;
use crate::config::{Leg, PayloadFormat, PayloadMap};

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS";
const SERVER: &str = "switchyard-recorder";

/// The endpoint's addresses and bounds.
#[derive(Debug, Clone)]
pub struct UasConfig {
    /// Where SIP is received: the Contact of every dialog.
    pub sip_addr: SocketAddr,
    /// Where RTP is received: every SDP answer names it (the recorder's socket).
    pub rtp_addr: SocketAddr,
    /// The captures' rate: L16 and telephone-event are accepted at this clock only.
    pub sample_rate: u32,
    /// Legs announced and not yet invited, at most.
    pub max_expected: usize,
    /// Dialogs (answered or being answered) at most; an INVITE beyond gets 503.
    pub max_dialogs: usize,
    /// Cached transaction responses at most; at the bound the oldest is forgotten (its
    /// retransmission is then answered afresh, or 481).
    pub max_transactions: usize,
    /// Longer datagrams are counted and dropped unread. FreeSWITCH's INVITE is ~1.1 kB.
    pub max_message_bytes: usize,
    /// RFC 3261's T1 (RTT estimate): the first 2xx retransmission interval; 64*T1 is how
    /// long a response is kept for retransmissions and how long an ACK is awaited.
    pub t1: Duration,
    /// RFC 3261's T2: the longest 2xx retransmission interval.
    pub t2: Duration,
    /// Mixed into local tags so that two endpoints (or restarts) do not repeat them.
    pub tag_seed: u64,
}

impl Default for UasConfig {
    fn default() -> Self {
        UasConfig {
            sip_addr: SocketAddr::from(([127, 0, 0, 1], 5090)),
            rtp_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            sample_rate: 8000,
            max_expected: 4096,
            max_dialogs: 4096,
            max_transactions: 16_384,
            max_message_bytes: 8192,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            tag_seed: 0x5eed,
        }
    }
}

/// Why a recorder leg ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The switch hung up (BYE).
    Bye,
    /// The switch cancelled the INVITE before it was answered.
    Cancelled,
    /// The 200 was never acknowledged.
    NoAck,
    /// The offer had nothing the capture decodes (488 sent).
    NotAcceptable,
    /// The recorder would not take the leg's RTP (503 sent): the reason says why.
    RouteFailed(String),
}

/// What happened to a recorder leg, for the engine's driver.
#[derive(Debug)]
pub enum LegEvent<K> {
    /// 200 OK sent: RTP from `rtp_from` is recorded as `leg`.
    Answered {
        key: K,
        leg: Leg,
        call_id: String,
        rtp_from: SocketAddr,
        format: PayloadFormat,
    },
    /// A re-INVITE changed the leg (hold, a codec or address change).
    Updated {
        key: K,
        leg: Leg,
        rtp_from: SocketAddr,
        format: PayloadFormat,
        on_hold: bool,
    },
    Ended {
        key: K,
        leg: Leg,
        call_id: String,
        reason: EndReason,
    },
    /// The last leg of a recording ended and the recording was stopped (sent by the shell).
    Finished {
        key: K,
        result: Result<crate::net::RecordingSummary, MediaError>,
    },
}

/// What the shell must do, in order.
#[derive(Debug)]
pub enum UasOutput<K> {
    Send {
        to: SocketAddr,
        datagram: Vec<u8>,
    },
    /// Route RTP from `from` into recording `key` as `leg`, then call
    /// [`Uas::handle_routed`] with `call_id` and the result.
    Route {
        call_id: String,
        key: K,
        leg: Leg,
        from: SocketAddr,
        replaces: Option<SocketAddr>,
        payload_types: PayloadMap,
    },
    Unroute {
        from: SocketAddr,
    },
    /// An mod_oreka fork (see `oreka`): take RTP arriving at local `port` (from `peers` only)
    /// into recording `key` as `leg`, then call [`Uas::handle_listened`] with the result.
    Listen {
        call_id: String,
        key: K,
        leg: Leg,
        port: u16,
        peers: Vec<IpAddr>,
        payload_types: PayloadMap,
    },
    /// Stop listening on a fork's port.
    Unlisten {
        port: u16,
    },
    /// No leg of recording `key` is expected or live any more: stop it.
    Stop {
        key: K,
    },
    Event(LegEvent<K>),
}

/// What the endpoint counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SipStats {
    pub datagrams: u64,
    /// Unparseable, or missing a header a response needs: dropped unanswered.
    pub malformed: u64,
    /// Longer than `max_message_bytes`: dropped unread.
    pub oversize: u64,
    /// Responses and keep-alives: the endpoint sends no requests, so they are ignored.
    pub ignored: u64,
    /// Requests answered from the transaction cache.
    pub retransmissions: u64,
    /// INVITEs for legs nobody expected (404), or beyond the dialog bound (503).
    pub refused: u64,
    pub answered: u64,
    /// Cached responses forgotten early because the cache was full.
    pub transactions_evicted: u64,
}

#[derive(Debug)]
struct Expected<K> {
    key: K,
    leg: Leg,
}

/// A 2xx being retransmitted until its ACK.
#[derive(Debug)]
struct Unacked {
    to: SocketAddr,
    cseq: u32,
    datagram: Vec<u8>,
    next: Duration,
    interval: Duration,
    give_up: Duration,
}

/// An INVITE waiting for its route.
#[derive(Debug)]
struct Pending {
    request: Box<Request>,
    source: SocketAddr,
    negotiated: Negotiated,
}

#[derive(Debug)]
struct Dialog<K> {
    key: K,
    leg: Leg,
    user: String,
    local_tag: String,
    /// Where RTP is routed from now; `None` until the first route succeeds.
    route: Option<SocketAddr>,
    session_id: u64,
    sdp_version: u64,
    pending: Option<Pending>,
    unacked: Option<Unacked>,
}

/// One direction of an mod_oreka fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ForkLeg {
    Unseen,
    /// The port is being bound; the INVITE waits for [`Uas::handle_listened`].
    Binding {
        port: u16,
    },
    Listening {
        port: u16,
    },
    Ended,
}

/// An mod_oreka fork of one channel (Call-ID = its uuid), announced by `expect_fork`.
#[derive(Debug)]
struct Fork<K> {
    key: K,
    legs: [ForkLeg; 2],
    /// The INVITE of each direction while its port is bound, answered afterwards.
    pending: [Option<(SocketAddr, ForkMessage)>; 2],
    local_tag: String,
}

impl<K> Fork<K> {
    /// Every direction that began has ended (and at least one began).
    fn finished(&self) -> bool {
        self.legs.contains(&ForkLeg::Ended)
            && !self
                .legs
                .iter()
                .any(|l| matches!(l, ForkLeg::Binding { .. } | ForkLeg::Listening { .. }))
    }
}

type TxKey = (String, &'static str);

#[derive(Debug)]
struct Cached {
    to: SocketAddr,
    datagram: Vec<u8>,
}

/// The recorder endpoint's state. See the module docs.
#[derive(Debug)]
pub struct Uas<K> {
    config: UasConfig,
    expected: HashMap<String, Expected<K>>,
    dialogs: HashMap<String, Dialog<K>>,
    /// mod_oreka forks by Call-ID (the forked channel's uuid).
    forks: HashMap<String, Fork<K>>,
    transactions: HashMap<TxKey, Cached>,
    /// Cache entries by age: (expiry, key). An entry updated later keeps its first expiry.
    transaction_order: VecDeque<(Duration, TxKey)>,
    outputs: VecDeque<UasOutput<K>>,
    counter: u64,
    stats: SipStats,
}

impl<K: Clone + Eq + std::fmt::Debug> Uas<K> {
    pub fn new(config: UasConfig) -> Self {
        Uas {
            config,
            expected: HashMap::new(),
            dialogs: HashMap::new(),
            forks: HashMap::new(),
            transactions: HashMap::new(),
            transaction_order: VecDeque::new(),
            outputs: VecDeque::new(),
            counter: 0,
            stats: SipStats::default(),
        }
    }

    pub fn config(&self) -> &UasConfig {
        &self.config
    }

    pub fn stats(&self) -> SipStats {
        self.stats
    }

    /// Dialogs live or being answered.
    pub fn dialogs(&self) -> usize {
        self.dialogs.len()
    }

    /// Announces a leg: an INVITE whose Request-URI user is `user` (`rec-<uuid>-a`) is
    /// answered and its RTP recorded into recording `key` as `leg`. One INVITE uses it up.
    pub fn expect(&mut self, user: String, key: K, leg: Leg) -> Result<(), MediaError> {
        if self.expected.contains_key(&user) || self.dialogs.values().any(|d| d.user == user) {
            return Err(MediaError::LegExpected { user });
        }
        if self.expected.len() >= self.config.max_expected {
            return Err(MediaError::SipFull {
                what: "expected legs",
                limit: self.config.max_expected,
            });
        }
        self.expected.insert(user, Expected { key, leg });
        Ok(())
    }

    /// Withdraws an announcement not yet used (the originate failed); true if there was one.
    /// When nothing else of its recording is expected or live, the recording is stopped.
    pub fn forget(&mut self, user: &str) -> bool {
        let Some(expected) = self.expected.remove(user) else {
            return false;
        };
        self.stop_if_idle(&expected.key);
        true
    }

    /// Announces an mod_oreka fork of the channel `call_id` (its uuid: mod_oreka's Call-ID):
    /// its RX and TX INVITEs are taken into recording `key` as caller and agent.
    pub fn expect_fork(&mut self, call_id: String, key: K) -> Result<(), MediaError> {
        if self.forks.contains_key(&call_id) {
            return Err(MediaError::LegExpected { user: call_id });
        }
        if self.expected.len() + self.forks.len() >= self.config.max_expected {
            return Err(MediaError::SipFull {
                what: "expected legs",
                limit: self.config.max_expected,
            });
        }
        self.counter += 1;
        let local_tag = self.tag();
        self.forks.insert(
            call_id,
            Fork {
                key,
                legs: [ForkLeg::Unseen; 2],
                pending: [None, None],
                local_tag,
            },
        );
        Ok(())
    }

    /// Withdraws a fork whose INVITEs never came (`oreka_record` failed); true if there was
    /// one. A direction already listening is unbound and the recording stopped when idle.
    pub fn forget_fork(&mut self, call_id: &str) -> bool {
        let Some(fork) = self.forks.remove(call_id) else {
            return false;
        };
        for leg in fork.legs {
            if let ForkLeg::Binding { port } | ForkLeg::Listening { port } = leg {
                self.outputs.push_back(UasOutput::Unlisten { port });
            }
        }
        self.stop_if_idle(&fork.key);
        true
    }

    /// The result of a `Listen` output.
    pub fn handle_listened(&mut self, call_id: &str, leg: Leg, result: Result<(), MediaError>) {
        let Some(fork) = self.forks.get_mut(call_id) else {
            return;
        };
        let i = leg.index();
        let (ForkLeg::Binding { port }, Some((source, message))) =
            (fork.legs[i], fork.pending[i].take())
        else {
            return;
        };
        let key = fork.key.clone();
        let tag = fork.local_tag.clone();
        match result {
            Ok(()) => {
                fork.legs[i] = ForkLeg::Listening { port };
                self.stats.answered += 1;
                let ip = self.config.rtp_addr.ip();
                let body = oreka::answer(ip, port, self.counter);
                let datagram = oreka::response(&message, 200, "OK", &tag, Some(body));
                self.outputs.push_back(UasOutput::Send {
                    to: source,
                    datagram,
                });
                let rtp_from = SocketAddr::new(message.origin.unwrap_or(source.ip()), port);
                self.outputs.push_back(UasOutput::Event(LegEvent::Answered {
                    key,
                    leg,
                    call_id: call_id.to_owned(),
                    rtp_from,
                    format: PayloadFormat::Pcmu,
                }));
            }
            Err(error) => {
                fork.legs[i] = ForkLeg::Ended;
                let datagram = oreka::response(&message, 503, "Service Unavailable", &tag, None);
                self.outputs.push_back(UasOutput::Send {
                    to: source,
                    datagram,
                });
                self.outputs.push_back(UasOutput::Event(LegEvent::Ended {
                    key,
                    leg,
                    call_id: call_id.to_owned(),
                    reason: EndReason::RouteFailed(error.to_string()),
                }));
                self.end_fork_if_finished(call_id);
            }
        }
    }

    pub fn poll_output(&mut self) -> Option<UasOutput<K>> {
        self.outputs.pop_front()
    }

    /// When `handle_timeout` next has something to do.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let retransmit = self
            .dialogs
            .values()
            .filter_map(|d| d.unacked.as_ref().map(|u| u.next.min(u.give_up)))
            .min();
        let expiry = self.transaction_order.front().map(|(at, _)| *at);
        [retransmit, expiry].into_iter().flatten().min()
    }

    /// One datagram from `source`. Never fails: what cannot be used is counted.
    pub fn handle_datagram(&mut self, now: Duration, source: SocketAddr, datagram: &[u8]) {
        self.stats.datagrams += 1;
        if datagram.len() > self.config.max_message_bytes {
            self.stats.oversize += 1;
            return;
        }
        if let Some(fork) = oreka::parse(datagram) {
            match fork {
                Ok(message) => self.handle_fork(source, message),
                Err(()) => self.stats.malformed += 1,
            }
            return;
        }
        let request = match message::parse(datagram) {
            Ok(Incoming::Request(request)) => request,
            Ok(Incoming::Response | Incoming::KeepAlive) => {
                self.stats.ignored += 1;
                return;
            }
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        if request.method == Method::ACK {
            self.handle_ack(&request);
            return;
        }
        let tx = tx_key(&request);
        if let Some(cached) = self.transactions.get(&tx) {
            self.stats.retransmissions += 1;
            self.outputs.push_back(UasOutput::Send {
                to: cached.to,
                datagram: cached.datagram.clone(),
            });
            return;
        }
        match request.method {
            Method::INVITE => self.handle_invite(now, source, request),
            Method::BYE => self.handle_bye(now, source, &request),
            Method::CANCEL => self.handle_cancel(now, source, &request),
            Method::OPTIONS => {
                let extra = format!("Allow: {ALLOW}\r\nAccept: application/sdp\r\n");
                self.respond(now, source, &request, 200, "OK", None, &extra, None);
            }
            _ => {
                let extra = format!("Allow: {ALLOW}\r\n");
                self.respond(
                    now,
                    source,
                    &request,
                    405,
                    "Method Not Allowed",
                    None,
                    &extra,
                    None,
                );
            }
        }
    }

    /// The result of a `Route` output for dialog `call_id`.
    pub fn handle_routed(&mut self, now: Duration, call_id: &str, result: Result<(), MediaError>) {
        let Some(dialog) = self.dialogs.get_mut(call_id) else {
            // Cancelled (or ended) while the route was being made.
            return;
        };
        let Some(pending) = dialog.pending.take() else {
            return;
        };
        let initial = dialog.route.is_none();
        match result {
            Ok(()) => {
                dialog.route = Some(pending.negotiated.rtp_from);
                self.answer(now, call_id, pending, initial);
            }
            Err(error) if initial => {
                let reason = EndReason::RouteFailed(error.to_string());
                self.respond(
                    now,
                    pending.source,
                    &pending.request,
                    503,
                    "Service Unavailable",
                    Some(&dialog_tag(&self.dialogs, call_id)),
                    "",
                    None,
                );
                self.end(call_id, reason);
            }
            Err(_) => {
                // The old route stays; the switch keeps the old session (RFC 3261 §14.2).
                let tag = dialog_tag(&self.dialogs, call_id);
                self.respond(
                    now,
                    pending.source,
                    &pending.request,
                    500,
                    "Server Internal Error",
                    Some(&tag),
                    "Retry-After: 1\r\n",
                    None,
                );
            }
        }
    }

    /// Retransmits unacknowledged 2xx responses, gives up on missing ACKs and forgets old
    /// transactions. Call it at `poll_timeout` (or on a tick).
    pub fn handle_timeout(&mut self, now: Duration) {
        while let Some((at, _)) = self.transaction_order.front()
            && *at <= now
        {
            if let Some((_, key)) = self.transaction_order.pop_front() {
                self.transactions.remove(&key);
            }
        }
        let mut no_ack = Vec::new();
        for (call_id, dialog) in &mut self.dialogs {
            let Some(unacked) = &mut dialog.unacked else {
                continue;
            };
            if now >= unacked.give_up {
                no_ack.push(call_id.clone());
            } else if now >= unacked.next {
                self.outputs.push_back(UasOutput::Send {
                    to: unacked.to,
                    datagram: unacked.datagram.clone(),
                });
                unacked.interval = (unacked.interval * 2).min(self.config.t2);
                unacked.next = now + unacked.interval;
            }
        }
        for call_id in no_ack {
            self.end(&call_id, EndReason::NoAck);
        }
    }

    /// An mod_oreka INVITE or BYE. mod_oreka sends each once and reads no answer, so there is
    /// no transaction to keep: a repeat of a direction's INVITE is ignored, as is a BYE for a
    /// direction that is not listening.
    fn handle_fork(&mut self, source: SocketAddr, message: ForkMessage) {
        let Some(fork) = self.forks.get_mut(&message.call_id) else {
            if message.begin {
                self.stats.refused += 1;
                self.counter += 1;
                let tag = self.tag();
                let datagram = oreka::response(&message, 404, "Not Found", &tag, None);
                self.outputs.push_back(UasOutput::Send {
                    to: source,
                    datagram,
                });
            } else {
                self.stats.ignored += 1;
            }
            return;
        };
        let i = message.leg.index();
        let key = fork.key.clone();
        let tag = fork.local_tag.clone();
        match (message.begin, fork.legs[i], message.port) {
            (true, ForkLeg::Unseen | ForkLeg::Ended, Some(port)) => {
                fork.legs[i] = ForkLeg::Binding { port };
                let mut peers = vec![source.ip()];
                if let Some(origin) = message.origin
                    && origin != source.ip()
                {
                    peers.push(origin);
                }
                fork.pending[i] = Some((source, message.clone()));
                let payload_types = PayloadMap::empty()
                    .with(0, PayloadFormat::Pcmu)
                    .unwrap_or_default();
                self.outputs.push_back(UasOutput::Listen {
                    call_id: message.call_id,
                    key,
                    leg: message.leg,
                    port,
                    peers,
                    payload_types,
                });
            }
            (false, ForkLeg::Listening { port }, _) => {
                fork.legs[i] = ForkLeg::Ended;
                let datagram = oreka::response(&message, 200, "OK", &tag, None);
                self.outputs.push_back(UasOutput::Send {
                    to: source,
                    datagram,
                });
                self.outputs.push_back(UasOutput::Unlisten { port });
                self.outputs.push_back(UasOutput::Event(LegEvent::Ended {
                    key,
                    leg: message.leg,
                    call_id: message.call_id.clone(),
                    reason: EndReason::Bye,
                }));
                self.end_fork_if_finished(&message.call_id);
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn end_fork_if_finished(&mut self, call_id: &str) {
        if self.forks.get(call_id).is_some_and(Fork::finished)
            && let Some(fork) = self.forks.remove(call_id)
        {
            self.stop_if_idle(&fork.key);
        }
    }

    fn handle_invite(&mut self, now: Duration, source: SocketAddr, request: Box<Request>) {
        if request.to_tag.is_some() {
            self.handle_reinvite(now, source, request);
            return;
        }
        if self.dialogs.contains_key(&request.call_id) {
            // A new INVITE transaction on a Call-ID in use, without a To tag: not ours to
            // merge (RFC 3261 §8.2.2.2).
            self.respond(now, source, &request, 482, "Loop Detected", None, "", None);
            return;
        }
        let user = request.user.clone().unwrap_or_default();
        if !self.expected.contains_key(&user) {
            self.stats.refused += 1;
            self.respond(now, source, &request, 404, "Not Found", None, "", None);
            return;
        }
        if self.dialogs.len() >= self.config.max_dialogs {
            self.stats.refused += 1;
            self.respond(
                now,
                source,
                &request,
                503,
                "Service Unavailable",
                None,
                "Retry-After: 5\r\n",
                None,
            );
            return;
        }
        let Some(expected) = self.expected.remove(&user) else {
            return;
        };
        let offer = match request.content_type.as_deref() {
            Some(ct) if ct.starts_with("application/sdp") => {
                sdp::negotiate(&request.body, self.config.sample_rate)
            }
            // An INVITE without an offer would have us offer in the 200; a recorder leg
            // always carries one, so this is refused instead.
            _ => Err(sdp::Refusal::NoAudio),
        };
        let negotiated = match offer {
            Ok(negotiated) => negotiated,
            Err(_) => {
                self.respond(
                    now,
                    source,
                    &request,
                    488,
                    "Not Acceptable Here",
                    None,
                    "",
                    None,
                );
                self.outputs.push_back(UasOutput::Event(LegEvent::Ended {
                    key: expected.key.clone(),
                    leg: expected.leg,
                    call_id: request.call_id.clone(),
                    reason: EndReason::NotAcceptable,
                }));
                self.stop_if_idle(&expected.key);
                return;
            }
        };
        self.counter += 1;
        let local_tag = self.tag();
        let call_id = request.call_id.clone();
        self.respond(now, source, &request, 100, "Trying", None, "", None);
        self.outputs.push_back(UasOutput::Route {
            call_id: call_id.clone(),
            key: expected.key.clone(),
            leg: expected.leg,
            from: negotiated.rtp_from,
            replaces: None,
            payload_types: negotiated.payload_map(),
        });
        self.dialogs.insert(
            call_id,
            Dialog {
                key: expected.key,
                leg: expected.leg,
                user,
                local_tag,
                route: None,
                session_id: self.counter,
                sdp_version: 1,
                pending: Some(Pending {
                    request,
                    source,
                    negotiated,
                }),
                unacked: None,
            },
        );
    }

    fn handle_reinvite(&mut self, now: Duration, source: SocketAddr, request: Box<Request>) {
        let Some(dialog) = self.dialog_of(&request) else {
            self.respond(
                now,
                source,
                &request,
                481,
                "Call/Transaction Does Not Exist",
                None,
                "",
                None,
            );
            return;
        };
        if dialog.pending.is_some() || dialog.unacked.is_some() {
            // An offer while ours is outstanding (RFC 3261 §14.2).
            self.respond(
                now,
                source,
                &request,
                491,
                "Request Pending",
                None,
                "",
                None,
            );
            return;
        }
        let negotiated = match sdp::negotiate(&request.body, self.config.sample_rate) {
            Ok(negotiated) => negotiated,
            Err(_) => {
                self.respond(
                    now,
                    source,
                    &request,
                    488,
                    "Not Acceptable Here",
                    None,
                    "",
                    None,
                );
                return;
            }
        };
        let call_id = request.call_id.clone();
        let moved =
            !negotiated.rtp_from.ip().is_unspecified() && dialog.route != Some(negotiated.rtp_from);
        let (key, leg, replaces) = (dialog.key.clone(), dialog.leg, dialog.route);
        // As for the first INVITE: the switch stops retransmitting while the route is made.
        self.respond(now, source, &request, 100, "Trying", None, "", None);
        // Even without a move, the codec may have changed: routing again updates the
        // capture's payload types; the flow itself stays.
        let pending = Pending {
            request,
            source,
            negotiated,
        };
        if !moved && pending.negotiated.rtp_from.ip().is_unspecified() {
            // Old-style hold (c=0.0.0.0): nothing will be sent, nothing to route.
            self.answer(now, &call_id, pending, false);
            return;
        }
        self.outputs.push_back(UasOutput::Route {
            call_id: call_id.clone(),
            key,
            leg,
            from: pending.negotiated.rtp_from,
            replaces,
            payload_types: pending.negotiated.payload_map(),
        });
        if let Some(dialog) = self.dialogs.get_mut(&call_id) {
            dialog.pending = Some(pending);
        }
    }

    /// Sends the 200 with the SDP answer for `pending` and starts its retransmissions.
    fn answer(&mut self, now: Duration, call_id: &str, pending: Pending, initial: bool) {
        let Some(dialog) = self.dialogs.get_mut(call_id) else {
            return;
        };
        if !initial {
            dialog.sdp_version += 1;
        }
        let body =
            pending
                .negotiated
                .answer(self.config.rtp_addr, dialog.session_id, dialog.sdp_version);
        let contact = format!(
            "Contact: <sip:{}@{}>\r\nAllow: {ALLOW}\r\n",
            dialog.user, self.config.sip_addr
        );
        let tag = dialog.local_tag.clone();
        let (key, leg, cseq) = (dialog.key.clone(), dialog.leg, pending.request.cseq);
        let source = pending.source;
        let datagram = self.respond(
            now,
            pending.source,
            &pending.request,
            200,
            "OK",
            Some(&tag),
            &contact,
            Some(&body),
        );
        if let Some(dialog) = self.dialogs.get_mut(call_id) {
            dialog.unacked = Some(Unacked {
                to: source,
                cseq,
                datagram,
                next: now + self.config.t1,
                interval: self.config.t1,
                give_up: now + self.config.t1 * 64,
            });
        }
        let negotiated = pending.negotiated;
        let event = if initial {
            self.stats.answered += 1;
            LegEvent::Answered {
                key,
                leg,
                call_id: call_id.to_owned(),
                rtp_from: negotiated.rtp_from,
                format: negotiated.audio,
            }
        } else {
            LegEvent::Updated {
                key,
                leg,
                rtp_from: negotiated.rtp_from,
                format: negotiated.audio,
                on_hold: negotiated.is_on_hold(),
            }
        };
        self.outputs.push_back(UasOutput::Event(event));
    }

    fn handle_ack(&mut self, request: &Request) {
        // An ACK for a non-2xx final response only stops retransmissions we do not make
        // (our non-2xx are resent when the INVITE is); an ACK for a 2xx confirms the dialog.
        if let Some(dialog) = self.dialogs.get_mut(&request.call_id)
            && dialog
                .unacked
                .as_ref()
                .is_some_and(|u| u.cseq == request.cseq)
        {
            dialog.unacked = None;
        }
    }

    fn handle_bye(&mut self, now: Duration, source: SocketAddr, request: &Request) {
        if self.dialog_of(request).is_none() {
            self.respond(
                now,
                source,
                request,
                481,
                "Call/Transaction Does Not Exist",
                None,
                "",
                None,
            );
            return;
        }
        self.respond(now, source, request, 200, "OK", None, "", None);
        self.end(&request.call_id, EndReason::Bye);
    }

    fn handle_cancel(&mut self, now: Duration, source: SocketAddr, request: &Request) {
        let Some(dialog) = self.dialogs.get_mut(&request.call_id) else {
            self.respond(
                now,
                source,
                request,
                481,
                "Call/Transaction Does Not Exist",
                None,
                "",
                None,
            );
            return;
        };
        // Only an initial INVITE not yet answered can be cancelled; otherwise CANCEL has no
        // effect but is still answered 200 (RFC 3261 §9.2).
        let cancels = dialog.route.is_none()
            && dialog
                .pending
                .as_ref()
                .is_some_and(|p| p.request.branch == request.branch);
        let pending = if cancels { dialog.pending.take() } else { None };
        let tag = dialog.local_tag.clone();
        self.respond(now, source, request, 200, "OK", None, "", None);
        if let Some(pending) = pending {
            self.respond(
                now,
                pending.source,
                &pending.request,
                487,
                "Request Terminated",
                Some(&tag),
                "",
                None,
            );
            // The route may have been made already by a shell that runs orders concurrently.
            self.outputs.push_back(UasOutput::Unroute {
                from: pending.negotiated.rtp_from,
            });
            self.end(&request.call_id, EndReason::Cancelled);
        }
    }

    /// Removes a dialog, unroutes its RTP and reports it.
    fn end(&mut self, call_id: &str, reason: EndReason) {
        let Some(dialog) = self.dialogs.remove(call_id) else {
            return;
        };
        if let Some(from) = dialog.route {
            self.outputs.push_back(UasOutput::Unroute { from });
        }
        self.outputs.push_back(UasOutput::Event(LegEvent::Ended {
            key: dialog.key.clone(),
            leg: dialog.leg,
            call_id: call_id.to_owned(),
            reason,
        }));
        self.stop_if_idle(&dialog.key);
    }

    fn stop_if_idle(&mut self, key: &K) {
        let busy = self.dialogs.values().any(|d| &d.key == key)
            || self.expected.values().any(|e| &e.key == key)
            || self.forks.values().any(|f| &f.key == key);
        if !busy {
            self.outputs.push_back(UasOutput::Stop { key: key.clone() });
        }
    }

    /// The dialog an in-dialog request belongs to: its Call-ID, and our tag in its To.
    fn dialog_of(&self, request: &Request) -> Option<&Dialog<K>> {
        self.dialogs
            .get(&request.call_id)
            .filter(|d| request.to_tag.as_deref() == Some(d.local_tag.as_str()))
    }

    fn tag(&self) -> String {
        // splitmix64: distinct counters give unrelated-looking tags.
        let mut z = self
            .config
            .tag_seed
            .wrapping_add(self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        format!("sy{:x}", z ^ (z >> 31))
    }

    /// Builds, sends and caches a response to `request`. `to_tag` is added to To when the
    /// request had none (every response but 100 that belongs to a dialog).
    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        now: Duration,
        source: SocketAddr,
        request: &Request,
        status: u16,
        reason: &str,
        to_tag: Option<&str>,
        extra_headers: &str,
        sdp: Option<&str>,
    ) -> Vec<u8> {
        let mut out = String::with_capacity(512 + sdp.map_or(0, str::len));
        out.push_str(&format!("SIP/2.0 {status} {reason}\r\n"));
        for (i, via) in request.vias.iter().enumerate() {
            let via = if i == 0 {
                message::response_via(via, source)
            } else {
                via.clone()
            };
            out.push_str(&format!("Via: {via}\r\n"));
        }
        out.push_str(&format!("From: {}\r\n", request.from));
        match (to_tag, &request.to_tag, status) {
            (Some(tag), None, 101..) => out.push_str(&format!("To: {};tag={tag}\r\n", request.to)),
            // Refusals outside a dialog carry a tag too (RFC 3261 §8.2.6.2).
            (None, None, 300..) => {
                self.counter += 1;
                let tag = self.tag();
                out.push_str(&format!("To: {};tag={tag}\r\n", request.to));
            }
            _ => out.push_str(&format!("To: {}\r\n", request.to)),
        }
        out.push_str(&format!("Call-ID: {}\r\n", request.call_id));
        out.push_str(&format!(
            "CSeq: {} {}\r\n",
            request.cseq, request.cseq_method
        ));
        out.push_str(extra_headers);
        out.push_str(&format!("Server: {SERVER}\r\n"));
        match sdp {
            Some(body) => {
                out.push_str(&format!(
                    "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ));
            }
            None => out.push_str("Content-Length: 0\r\n\r\n"),
        }
        let datagram = out.into_bytes();
        self.cache(now, tx_key(request), source, datagram.clone());
        self.outputs.push_back(UasOutput::Send {
            to: source,
            datagram: datagram.clone(),
        });
        datagram
    }

    fn cache(&mut self, now: Duration, key: TxKey, to: SocketAddr, datagram: Vec<u8>) {
        let fresh = self
            .transactions
            .insert(key.clone(), Cached { to, datagram })
            .is_none();
        if !fresh {
            return;
        }
        self.transaction_order
            .push_back((now + self.config.t1 * 64, key));
        while self.transactions.len() > self.config.max_transactions {
            let Some((_, oldest)) = self.transaction_order.pop_front() else {
                break;
            };
            self.transactions.remove(&oldest);
            self.stats.transactions_evicted += 1;
        }
    }
}

fn tx_key(request: &Request) -> TxKey {
    let method = match request.method {
        Method::INVITE => "INVITE",
        Method::BYE => "BYE",
        Method::CANCEL => "CANCEL",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    };
    (request.branch.clone(), method)
}

fn dialog_tag<K>(dialogs: &HashMap<String, Dialog<K>>, call_id: &str) -> String {
    dialogs
        .get(call_id)
        .map(|d| d.local_tag.clone())
        .unwrap_or_default()
}
