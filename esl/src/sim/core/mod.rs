//! The sans-IO fake switch: commands and time in, messages out.
//!
//! ```text
//! let mut sw = Switch::new(config, seed, now);
//! let conn = sw.connection_opened(now, ConnKind::Inbound);   // queues auth/request
//! sw.handle_command(now, conn, frame);                       // a decoded CommandFrame
//! while let Some(out) = sw.poll_output() { /* Send, Close, OpenOutbound, WriteRecording, Recorder */ }
//! sw.recorder_answered(now, leg);                            // the shell's SIP reports
//! if let Some(t) = sw.poll_timeout() { /* sleep until t, then */ sw.handle_timeout(t); }
//! ```
//! Nothing here reads a clock or a socket: tests drive a whole scenario in virtual time.
//!
//! Channel life (FreeSWITCH's states, as events show them):
//! ```text
//!  originate ─▶ CS_INIT/DOWN ─▶ CS_ROUTING/RINGING|EARLY ─┬▶ answer ─▶ CS_EXECUTE/ACTIVE ─┐
//!  inbound   ─▶ CS_INIT ─▶ CS_ROUTING ─▶ CS_EXECUTE(socket)│                                │
//!                                                         └▶ busy/no-answer/... ─┐          │
//!                          CS_HANGUP ─▶ CS_REPORTING (HANGUP_COMPLETE) ─▶ CS_DESTROY ◀──────┘
//! ```
//! Scale: channels live in a `BTreeMap` by id (creation order, as `show channels` lists them)
//! with a uuid index; timers are one `BTreeSet`; no per-channel tasks and no scans per event
//! (delivery walks the listeners, never the channels).
//!
//! One `Switch`, its `impl` spread over the parts below, in the order a call meets them:
//! `commands` (event-socket commands, faults), `api` (api/bgapi: originate, uuid_*, show),
//! `channels` (the channel state machine), `handover` (an originate's completion and
//! `uuid_bridge`, with their race), `expand` (`${var}` and `${api args}`), `events` (building
//! and delivering events),
//! `timers`, `inbound` (calls placed over outbound sockets), `digits` (caller DTMF and
//! `play_and_get_digits`, with `regex` for its patterns), `record` (the `record` application:
//! voicemail), `recorder` (legs dialled over real
//! SIP: what the shell must dial, feed and end, and what it reports back), `util` (parsers,
//! formatters).

mod api;
mod channels;
mod commands;
mod digits;
mod events;
mod expand;
mod handover;
mod inbound;
mod oreka;
mod record;
mod recorder;
mod refer;
mod regex;
mod resume;
mod timers;
mod util;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::channel::{
    App, CState, ChanId, Channel, Pairs, Profile, Recording, Ring, Waiter, channel_data,
    known_cause, push, q850,
};
use super::clock::date_strings;
use super::config::{AfterSocket, SimConfig};
use super::rng::{Dist, SimRng};
use super::tone::{Voice, tone_hz};
use crate::codec::{
    Command, CommandFrame, DisconnectNotice, Event, EventFormat, Headers, Message, Reply, percent,
};
pub use oreka::{OrekaAction, OrekaSetup};
pub use recorder::RecorderAction;
use util::*;

/// A connection to the switch: an inbound ESL client or an outbound socket it opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnKind {
    /// A client that connected to the event socket (port 8021).
    Inbound,
    /// A socket the switch opened for the `socket` application.
    Outbound,
}

/// What the shell must do.
#[derive(Debug)]
pub enum Output {
    Send(ConnId, Message),
    /// Bytes that are not a valid message (fault injection).
    SendRaw(ConnId, Bytes),
    /// Flush what was queued, then close.
    Close(ConnId),
    /// Drop whatever is queued, write this notice, close (a killed listener).
    Kill(ConnId, Message),
    /// Connect to `addr` for the channel `uuid`; report `outbound_connected`/`_failed`.
    OpenOutbound {
        conn: ConnId,
        addr: String,
        uuid: String,
    },
    /// Write this recording (a WAV file) before delivering anything queued after it.
    WriteRecording(RecordingJob),
    /// Dial, feed or end a leg over real SIP and RTP (recorder legs, see `recorder`).
    Recorder(RecorderAction),
    /// Start, feed or end a channel's mod_oreka fork (see `oreka`).
    Oreka(OrekaAction),
}

/// A finished `uuid_record`/`record_session`: enough to synthesise the audio. Offsets are
/// file time: paused stretches are not in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingJob {
    pub path: String,
    /// The file's length (wall time minus the paused stretches).
    pub duration: Duration,
    pub stereo: bool,
    pub sample_rate: u32,
    /// Intervals (from the start) to write as silence (`uuid_record ... mask`).
    pub masked: Vec<(Duration, Duration)>,
    /// What the recorded channel says (left in stereo): its `sim_tone_hz`.
    pub said_hz: Option<u32>,
    /// From which offset on it heard which tone (right in stereo): its bridged peer's, none
    /// while unbridged. Ascending; the first entry is at zero.
    pub heard_hz: Vec<(Duration, Option<u32>)>,
}

/// Faults to inject.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Close every inbound event-socket connection (the switch stays up).
    DropConnections,
    /// A switch restart: new Core-UUID, Event-Sequence from 1, every channel and connection
    /// gone without a word.
    Restart,
    /// Stop reading commands for this long (replies wait; events still flow).
    Stall(Duration),
    /// Delay every reply by this much from now on (`Duration::ZERO` to stop).
    SlowReplies(Duration),
    /// Replace the next message to this connection (or every inbound one) with garbage.
    Garble(Option<ConnId>),
}

/// An inbound caller placed by hand (the arrival process places its own).
#[derive(Clone, Debug, Default)]
pub struct InboundCall {
    pub caller_number: String,
    pub caller_name: String,
    pub destination: String,
    pub patience: Option<Duration>,
    pub talk_time: Option<Duration>,
    /// These digits all at once, this long after the answer. A script of presses goes
    /// through [`Switch::place_scripted_call`] (a field here would break every struct literal
    /// of this type in the workspace).
    pub dtmf: Option<(Duration, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Heartbeat,
    Pump(ConnId),
    Ring(ChanId),
    OriginateTimeout(ChanId),
    TalkEnd(ChanId),
    /// The phone's transfer key (module `refer`).
    Refer(ChanId),
    AppDone(ChanId, u64),
    /// mod_avmd hears a machine's beep.
    AvmdBeep(ChanId),
    Patience(ChanId),
    Dtmf(ChanId),
    /// A caller's scripted digit is due (module `digits`).
    CallerDigit(ChanId),
    /// A `play_and_get_digits` timer: prompt end, timeout, invalid file end (by arm id).
    Collect(ChanId, u64),
    /// A `record` application's silence rule or time limit (by application seq).
    RecordEnd(ChanId, u64),
    /// A caller who said its voice message hangs up (module `record`).
    MessageEnd(ChanId),
    Arrival,
    LingerEnd(ConnId),
    ConnectTimeout(ConnId),
    /// An originate's handover window ends: it answers and its application runs.
    Handover(ChanId),
    /// uuid_bridge, first step: the legs leave park.
    BridgeUnpark(ChanId, ChanId),
    /// uuid_bridge, last step: CHANNEL_EXECUTE uuid_bridge and CHANNEL_BRIDGE.
    BridgeJoin(ChanId, ChanId),
    /// A caller whose `socket` returned into an empty extension is hung up.
    ExtensionEnd(ChanId),
    /// A bgapi job's thread runs its command (`bg_jobs`).
    BgApi(u64),
    /// A caller's hold tone ended: into `socket` again (`resume_loop`).
    Resume(ChanId),
}

const GOODBYE: &[u8] = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";
const VERSION: &str = "1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit";
/// Commands a blocked or stalled connection may have waiting; past this the client is
/// flooding us and is disconnected.
const MAX_PENDING_COMMANDS: usize = 10_000;
/// bgapi jobs waiting for their thread at once; past it a job runs as it is read (a client
/// this far ahead is flooding us anyway).
const MAX_BG_JOBS: usize = 100_000;
/// Recordings whose length `playback` remembers (the files this switch wrote); past it, newer
/// ones play for `default_playback`.
const MAX_KNOWN_LENGTHS: usize = 10_000;

#[derive(Debug)]
struct Conn {
    kind: ConnKind,
    authed: bool,
    events_on: bool,
    all: bool,
    names: HashSet<String>,
    subclasses: HashSet<String>,
    all_custom: bool,
    format: EventFormat,
    filters: Vec<(String, String)>,
    myevents: Option<String>,
    /// Outbound: the channel this socket controls, and whether `connect` came.
    channel: Option<ChanId>,
    connected: bool,
    linger: Option<Option<Duration>>,
    backlog: usize,
    lost: usize,
    blocked: bool,
    held: VecDeque<Message>,
    pending: VecDeque<(Instant, CommandFrame)>,
    garble_next: bool,
    park_announced: bool,
    /// Outbound: the uuid of the controlled session, kept for the final notice.
    session: Option<String>,
    gone: bool,
}

impl Conn {
    fn new(kind: ConnKind) -> Self {
        Conn {
            kind,
            authed: kind == ConnKind::Outbound,
            events_on: false,
            all: false,
            names: HashSet::new(),
            subclasses: HashSet::new(),
            all_custom: false,
            format: EventFormat::Plain,
            filters: Vec::new(),
            myevents: None,
            channel: None,
            connected: false,
            linger: None,
            backlog: 0,
            lost: 0,
            blocked: false,
            held: VecDeque::new(),
            pending: VecDeque::new(),
            garble_next: false,
            park_announced: false,
            session: None,
            gone: false,
        }
    }

    fn subscribed(&self, name: &str, subclass: Option<&str>) -> bool {
        if !self.events_on {
            return false;
        }
        if self.all {
            return true;
        }
        if !self.names.contains(name) {
            return false;
        }
        match (name, subclass) {
            ("CUSTOM", Some(sc)) => self.all_custom || self.subclasses.contains(sc),
            _ => true,
        }
    }

    /// mod_event_socket's filter loop: filters are ORed; `-value` excludes.
    fn passes_filters(&self, headers: &Headers) -> bool {
        if self.filters.is_empty() {
            return true;
        }
        let mut send = false;
        for (name, value) in &self.filters {
            let Some(hval) = headers.get_str(name) else {
                continue;
            };
            let trimmed = value.trim_start_matches([' ', '+', '-']);
            let pos = value
                .chars()
                .take_while(|c| matches!(c, ' ' | '+' | '-'))
                .filter(|c| *c != ' ')
                .last()
                .is_none_or(|c| c == '+');
            if send && pos {
                continue;
            }
            let cmp = if let Some(re) = value.strip_prefix('/') {
                simple_regex(&hval, re.trim_end_matches('/'))
            } else {
                hval.eq_ignore_ascii_case(trimmed)
            };
            if cmp {
                if pos {
                    send = true;
                } else {
                    return false;
                }
            }
        }
        send
    }
}

/// The subset of regular expressions filters use in practice: literal text with optional
/// `^`/`$` anchors (there is no regex engine in this crate).
fn simple_regex(hay: &str, re: &str) -> bool {
    let (start, re) = re.strip_prefix('^').map_or((false, re), |r| (true, r));
    let (end, re) = re.strip_suffix('$').map_or((false, re), |r| (true, r));
    match (start, end) {
        (true, true) => hay == re,
        (true, false) => hay.starts_with(re),
        (false, true) => hay.ends_with(re),
        (false, false) => hay.contains(re),
    }
}

/// The fake switch.
#[derive(Debug)]
pub struct Switch {
    cfg: SimConfig,
    rng: SimRng,
    core_uuid: String,
    started: Instant,
    seq: u64,
    next_conn: u64,
    next_chan: u64,
    session_id: u64,
    sessions_since_start: u64,
    peak: usize,
    conns: BTreeMap<ConnId, Conn>,
    chans: BTreeMap<ChanId, Channel>,
    by_uuid: HashMap<String, ChanId>,
    eavesdroppers: HashMap<ChanId, Vec<ChanId>>,
    dialing: HashMap<ChanId, ChanId>,
    timers: BTreeSet<(Instant, u64, TimerKey)>,
    timer_seq: u64,
    out: VecDeque<Output>,
    stall_until: Option<Instant>,
    reply_delay: Duration,
    inbound_placed: u64,
    recordings_written: u64,
    /// Length of each recording written, so that playing it back takes that long.
    known_lengths: HashMap<String, Duration>,
    /// bgapi jobs whose thread has not run its command yet: job uuid, command, argument.
    bg_jobs: BTreeMap<u64, (String, String, String)>,
    next_bg_job: u64,
    /// Channels given a caller's / an agent's voice so far (each the next tone).
    voices: (u64, u64),
    /// Running `play_and_get_digits`, by channel (module `digits`).
    collectors: HashMap<ChanId, digits::Collect>,
    /// Callers' DTMF scripts, until the answer starts their clock.
    dtmf_scripts: HashMap<ChanId, super::config::DtmfScript>,
    /// Scripted digits still to come, in time order (at most a script's 128 x 64).
    caller_digits: HashMap<ChanId, VecDeque<(Instant, char)>>,
    /// Last collection timer armed (ids start at 1; 0 is "none").
    next_collect_timer: u64,
    /// Running `record` applications, by channel (module `record`).
    records: HashMap<ChanId, record::RecordRun>,
    /// Callers' voice messages, until their first recording.
    caller_messages: HashMap<ChanId, super::config::VoiceMessage>,
}

impl Switch {
    pub fn new(config: SimConfig, seed: u64, now: Instant) -> Self {
        let mut rng = SimRng::new(seed).with_uuid_salt(config.uuid_salt);
        let core_uuid = rng.uuid();
        let mut sw = Switch {
            cfg: config,
            rng,
            core_uuid,
            started: now,
            seq: 0,
            next_conn: 1,
            next_chan: 1,
            session_id: 0,
            sessions_since_start: 0,
            peak: 0,
            conns: BTreeMap::new(),
            chans: BTreeMap::new(),
            by_uuid: HashMap::new(),
            eavesdroppers: HashMap::new(),
            dialing: HashMap::new(),
            timers: BTreeSet::new(),
            timer_seq: 0,
            out: VecDeque::new(),
            stall_until: None,
            reply_delay: Duration::ZERO,
            inbound_placed: 0,
            recordings_written: 0,
            known_lengths: HashMap::new(),
            bg_jobs: BTreeMap::new(),
            next_bg_job: 0,
            voices: (0, 0),
            collectors: HashMap::new(),
            dtmf_scripts: HashMap::new(),
            caller_digits: HashMap::new(),
            next_collect_timer: 0,
            records: HashMap::new(),
            caller_messages: HashMap::new(),
        };
        sw.start_timers(now);
        sw
    }

    fn start_timers(&mut self, now: Instant) {
        let hb = self.cfg.heartbeat_interval;
        self.schedule(now + hb, TimerKey::Heartbeat);
        self.schedule_arrival(now);
    }

    pub fn core_uuid(&self) -> &str {
        &self.core_uuid
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Live channels.
    pub fn channel_count(&self) -> usize {
        self.chans.len()
    }

    /// Whether a channel with this uuid is up.
    pub fn has_channel(&self, uuid: &str) -> bool {
        self.by_uuid.contains_key(uuid)
    }

    /// A channel variable (for tests).
    pub fn channel_var(&self, uuid: &str, var: &str) -> Option<String> {
        let id = self.by_uuid.get(uuid)?;
        self.chans.get(id)?.var(var).map(str::to_owned)
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _, _)| *t)
    }

    fn schedule(&mut self, at: Instant, key: TimerKey) {
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq, key));
    }

    fn us(&self, now: Instant) -> u64 {
        self.cfg.epoch_start_us + now.saturating_duration_since(self.started).as_micros() as u64
    }

    // ---- connections ---------------------------------------------------------------------

    /// A client connected. Inbound connections are greeted with `auth/request`.
    pub fn connection_opened(&mut self, _now: Instant, kind: ConnKind) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(id, Conn::new(kind));
        if kind == ConnKind::Inbound {
            self.out.push_back(Output::Send(id, Message::AuthRequest));
        }
        id
    }

    /// The peer closed (or the socket failed).
    pub fn connection_closed(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(ch) = c.channel {
            // The controller is gone: what the caller's extension does next (module `resume`).
            self.socket_lost(now, ch, conn);
        }
    }

    /// The shell wrote `n` events of `conn` to its socket.
    pub fn handle_flushed(&mut self, conn: ConnId, n: usize) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.backlog = c.backlog.saturating_sub(n);
            if c.backlog < self.cfg.max_event_queue {
                c.lost = 0;
            }
        }
    }

    /// The outbound socket for an inbound call is up: wait for `connect`.
    pub fn outbound_connected(&mut self, now: Instant, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.schedule(
                now + Duration::from_secs(25),
                TimerKey::ConnectTimeout(conn),
            );
        }
    }

    /// Nobody listens at the socket target: `socket` returns at once and the dialplan goes on
    /// (the hold loop, or the end of the call).
    pub fn outbound_failed(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn)
            && let Some(ch) = c.channel
        {
            self.socket_refused(now, ch, conn);
        }
    }

    fn send(&mut self, conn: ConnId, msg: Message) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.gone {
            return;
        }
        if c.blocked {
            c.held.push_back(msg);
            return;
        }
        if c.garble_next {
            c.garble_next = false;
            self.out.push_back(Output::SendRaw(
                conn,
                Bytes::from_static(b"Content-Length: 12x\nContent-Type: text/event-plain\n\n"),
            ));
            return;
        }
        self.out.push_back(Output::Send(conn, msg));
    }

    fn reply(&mut self, conn: ConnId, text: &str) {
        self.send(conn, Message::CommandReply(Reply::new(text)));
    }

    fn goodbye_notice(&self, conn: ConnId, body: &[u8]) -> Message {
        let session = self.conns.get(&conn).and_then(|c| c.session.clone());
        match session {
            Some(u) => Message::DisconnectNotice(DisconnectNotice::new(
                &[
                    ("Controlled-Session-UUID", u.as_str()),
                    ("Content-Disposition", "disconnect"),
                ],
                body,
            )),
            None => Message::DisconnectNotice(DisconnectNotice::new(&[], body)),
        }
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.gone = true;
        }
        self.out.push_back(Output::Close(conn));
    }
}

#[cfg(test)]
mod tests;
