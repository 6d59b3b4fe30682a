//! The sans-IO fake switch: commands and time in, messages out.
//!
//! ```text
//! let mut sw = Switch::new(config, seed, now);
//! let conn = sw.connection_opened(now, ConnKind::Inbound);   // queues auth/request
//! sw.handle_command(now, conn, frame);                       // a decoded CommandFrame
//! while let Some(out) = sw.poll_output() { /* Send, Close, OpenOutbound, WriteRecording */ }
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

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::channel::{
    App, CState, ChanId, Channel, Pairs, Profile, Recording, Ring, Waiter, channel_data,
    known_cause, push, q850,
};
use super::clock::date_strings;
use super::config::SimConfig;
use super::rng::{Dist, SimRng};
use crate::codec::{
    Command, CommandFrame, DisconnectNotice, Event, EventFormat, Headers, Message, Reply, percent,
};

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
}

/// A finished `uuid_record`/`record_session`: enough to synthesise the audio.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingJob {
    pub path: String,
    pub duration: Duration,
    pub stereo: bool,
    pub sample_rate: u32,
    /// Intervals (from the start) to write as silence (`uuid_record ... mask`).
    pub masked: Vec<(Duration, Duration)>,
    /// A per-recording number so two parties of two calls do not sound alike.
    pub seed: u64,
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
    pub dtmf: Option<(Duration, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Heartbeat,
    Pump(ConnId),
    Ring(ChanId),
    OriginateTimeout(ChanId),
    TalkEnd(ChanId),
    AppDone(ChanId, u64),
    Patience(ChanId),
    Dtmf(ChanId),
    Arrival,
    LingerEnd(ConnId),
    ConnectTimeout(ConnId),
}

const GOODBYE: &[u8] = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";
const VERSION: &str = "1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit";
/// Commands a blocked or stalled connection may have waiting; past this the client is
/// flooding us and is disconnected.
const MAX_PENDING_COMMANDS: usize = 10_000;

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
}

impl Switch {
    pub fn new(config: SimConfig, seed: u64, now: Instant) -> Self {
        let mut rng = SimRng::new(seed);
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
            // The socket application ends with the socket: the call is over.
            self.hangup(now, ch, "NORMAL_CLEARING");
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

    /// Nobody listens at the socket target: the dialplan goes on and the call ends.
    pub fn outbound_failed(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn)
            && let Some(ch) = c.channel
        {
            self.hangup(now, ch, "DESTINATION_OUT_OF_ORDER");
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

    // ---- commands ------------------------------------------------------------------------

    /// A command from a client.
    pub fn handle_command(&mut self, now: Instant, conn: ConnId, frame: CommandFrame) {
        let delay = self.reply_delay;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.gone {
            return;
        }
        if c.pending.len() >= MAX_PENDING_COMMANDS {
            tracing::warn!(
                ?conn,
                "fake switch: too many unanswered commands, disconnecting"
            );
            self.close(conn);
            return;
        }
        c.pending.push_back((now + delay, frame));
        self.pump(now, conn);
    }

    fn pump(&mut self, now: Instant, conn: ConnId) {
        loop {
            if let Some(until) = self.stall_until
                && now < until
            {
                self.schedule(until, TimerKey::Pump(conn));
                return;
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.blocked || c.gone {
                return;
            }
            let Some((due, _)) = c.pending.front() else {
                return;
            };
            if *due > now {
                let due = *due;
                self.schedule(due, TimerKey::Pump(conn));
                return;
            }
            let Some((_, frame)) = c.pending.pop_front() else {
                return;
            };
            self.execute(now, conn, frame);
        }
    }

    fn execute(&mut self, now: Instant, conn: ConnId, frame: CommandFrame) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let parsed = Command::parse(&frame);
        if !c.authed {
            match parsed {
                Ok(Command::Auth { password }) => {
                    if password == self.cfg.password {
                        if let Some(c) = self.conns.get_mut(&conn) {
                            c.authed = true;
                        }
                        self.reply(conn, "+OK accepted");
                    } else {
                        self.reply(conn, "-ERR invalid");
                        let n = self.goodbye_notice(conn, GOODBYE);
                        self.send(conn, n);
                        self.close(conn);
                    }
                }
                _ => self.reply(conn, "-ERR command not found"),
            }
            return;
        }
        let is_outbound = c.kind == ConnKind::Outbound;
        let Ok(cmd) = parsed else {
            self.reply(conn, "-ERR command not found");
            return;
        };
        match cmd {
            Command::Auth { .. } | Command::UserAuth { .. } => {
                self.reply(conn, "-ERR command not found")
            }
            Command::Api { command } => {
                // The listener runs the api inline: events raised meanwhile wait behind the
                // response (the capture's uuid_kill reply precedes its CHANNEL_HANGUP).
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.blocked = true;
                }
                let (name, arg) = split_cmd(&command);
                self.api_event(now, &name, &arg);
                if let Some(out) = self.run_api(now, &name, &arg, Waiter::Api(conn)) {
                    self.api_done(conn, out);
                }
            }
            Command::BgApi { command, job_uuid } => {
                let job = job_uuid.unwrap_or_else(|| self.rng.uuid());
                let text = format!("+OK Job-UUID: {job}");
                self.send(
                    conn,
                    Message::CommandReply(Reply::with_headers(&text, &[("Job-UUID", &job)])),
                );
                let (name, arg) = split_cmd(&command);
                self.api_event(now, &name, &arg);
                let waiter = Waiter::Bg {
                    job: job.clone(),
                    command: name.clone(),
                    arg: arg.clone(),
                };
                if let Some(out) = self.run_api(now, &name, &arg, waiter) {
                    self.background_job(now, &job, &name, &arg, out);
                }
            }
            Command::Event { format, events } => {
                let custom_word = frame
                    .line
                    .split_ascii_whitespace()
                    .any(|w| w.eq_ignore_ascii_case("CUSTOM"));
                let mut keys = 0;
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                for n in &events.names {
                    let up = n.to_ascii_uppercase();
                    if up == "ALL" {
                        c.all = true;
                        c.all_custom = true;
                        keys += 1;
                    } else if is_event_name(&up) {
                        c.names.insert(up);
                        keys += 1;
                    }
                }
                if custom_word {
                    c.names.insert("CUSTOM".into());
                    keys += 1;
                }
                for s in &events.subclasses {
                    c.subclasses.insert(s.clone());
                }
                if keys == 0 {
                    self.reply(conn, "-ERR no keywords supplied");
                    return;
                }
                c.events_on = true;
                c.format = format;
                let text = format!("+OK event listener enabled {}", format.as_str());
                self.reply(conn, &text);
            }
            Command::NixEvent { events } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                let mut keys = 0;
                for n in &events.names {
                    let up = n.to_ascii_uppercase();
                    if up == "ALL" {
                        c.all = false;
                        c.names.clear();
                        keys += 1;
                    } else if is_event_name(&up) {
                        if c.all {
                            c.all = false;
                            c.names.extend(EVENT_NAMES.iter().map(|s| (*s).to_owned()));
                        }
                        c.names.remove(&up);
                        keys += 1;
                    }
                }
                for s in &events.subclasses {
                    c.subclasses.remove(s);
                }
                if keys == 0 && events.subclasses.is_empty() {
                    self.reply(conn, "-ERR no keywords supplied");
                    return;
                }
                c.events_on = true;
                self.reply(conn, "+OK events nixed");
            }
            Command::NoEvents => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                if c.events_on {
                    c.events_on = false;
                    c.all = false;
                    c.names.clear();
                    c.subclasses.clear();
                    c.all_custom = false;
                    self.reply(conn, "+OK no longer listening for events");
                } else {
                    self.reply(conn, "-ERR not listening for events");
                }
            }
            Command::Filter { header, value } => {
                if value.is_empty() {
                    self.reply(conn, "-ERR invalid syntax");
                    return;
                }
                let (header, value) = if header.eq_ignore_ascii_case("add") {
                    let (h, v) = value.split_once(' ').unwrap_or((&value, ""));
                    (h.to_owned(), v.to_owned())
                } else {
                    (header, value)
                };
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.filters.push((header.clone(), value.clone()));
                }
                self.reply(conn, &format!("+OK filter added. [{header}]=[{value}]"));
            }
            Command::FilterDelete { header, value } => {
                if header.is_empty() {
                    self.reply(conn, "-ERR invalid syntax");
                    return;
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    if header.eq_ignore_ascii_case("all") {
                        c.filters.clear();
                    } else {
                        c.filters.retain(|(h, v)| {
                            !(h.eq_ignore_ascii_case(&header)
                                && value.as_deref().is_none_or(|x| x == v))
                        });
                    }
                }
                let text = format!(
                    "+OK filter deleted. [{header}][{}]",
                    value.as_deref().unwrap_or("(null)")
                );
                self.reply(conn, &text);
            }
            Command::MyEvents { format, uuid } => self.myevents(conn, format, uuid),
            Command::Linger(t) => {
                if !is_outbound {
                    self.reply(conn, "-ERR not controlling a session");
                    return;
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.linger = Some(t);
                }
                match t {
                    Some(d) => {
                        self.reply(conn, &format!("+OK will linger {} seconds", d.as_secs()))
                    }
                    None => self.reply(conn, "+OK will linger"),
                }
            }
            Command::NoLinger => {
                if !is_outbound {
                    self.reply(conn, "-ERR not controlling a session");
                    return;
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.linger = None;
                }
                self.reply(conn, "+OK will not linger");
            }
            Command::Resume => self.reply(conn, "+OK"),
            Command::DivertEvents(_) => {
                if is_outbound {
                    self.reply(conn, "+OK events diverted")
                } else {
                    self.reply(conn, "-ERR not controlling a session.")
                }
            }
            Command::Log(level) => {
                let l = level as u8;
                self.reply(conn, &format!("+OK log level {l} [{l}]"))
            }
            Command::NoLog => self.reply(conn, "-ERR not loging"),
            Command::SendEvent { name, .. } => {
                let u = self.rng.uuid();
                let ev = name.to_ascii_uppercase();
                let pairs = self.common(now, &ev, ("mod_event_socket.c", "parse_command", 1906));
                self.deliver(&ev, None, None, pairs, None);
                self.reply(conn, &format!("+OK {u}"));
            }
            Command::SendMsg { uuid, msg } => self.sendmsg(now, conn, uuid, msg),
            Command::Connect => self.connect(now, conn),
            Command::Exit => {
                self.reply(conn, "+OK bye");
                let n = self.goodbye_notice(conn, GOODBYE);
                self.send(conn, n);
                self.close(conn);
                // An outbound socket leaving ends the call (no `resume`).
                if let Some(ch) = self.conns.get_mut(&conn).and_then(|c| c.channel.take()) {
                    self.hangup(now, ch, "NORMAL_CLEARING");
                }
            }
        }
    }

    fn myevents(&mut self, conn: ConnId, format: Option<EventFormat>, uuid: Option<String>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.myevents.is_some() {
            self.reply(conn, "-ERR aready enabled.");
            return;
        }
        let uuid = match (c.channel, uuid) {
            (Some(ch), _) => self.chans.get(&ch).map(|c| c.uuid.clone()),
            (None, Some(u)) if self.by_uuid.contains_key(&u) => Some(u),
            (None, _) => {
                self.reply(conn, "-ERR invalid uuid");
                return;
            }
        };
        let Some(uuid) = uuid else {
            self.reply(conn, "-ERR invalid uuid");
            return;
        };
        {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            c.myevents = Some(uuid);
            c.events_on = true;
            for n in [
                "CHANNEL_ANSWER",
                "CHANNEL_APPLICATION",
                "CHANNEL_BRIDGE",
                "CHANNEL_CREATE",
                "CHANNEL_DATA",
                "CHANNEL_DESTROY",
                "CHANNEL_EXECUTE",
                "CHANNEL_EXECUTE_COMPLETE",
                "CHANNEL_HANGUP",
                "CHANNEL_HANGUP_COMPLETE",
                "CHANNEL_ORIGINATE",
                "CHANNEL_UUID",
                "CHANNEL_OUTGOING",
                "CHANNEL_PARK",
                "CHANNEL_PROGRESS",
                "CHANNEL_PROGRESS_MEDIA",
                "CHANNEL_STATE",
                "CHANNEL_UNBRIDGE",
                "CHANNEL_UNPARK",
                "DETECTED_SPEECH",
                "DTMF",
                "NOTALK",
                "TALK",
            ] {
                c.names.insert(n.to_owned());
            }
            c.format = format.unwrap_or(EventFormat::Plain);
        }
        self.reply(conn, "+OK Events Enabled");
    }

    fn connect(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(ch) = c.channel else {
            self.reply(conn, "-ERR command not found");
            return;
        };
        c.connected = true;
        if !self.chans.contains_key(&ch) {
            return;
        }
        // The CHANNEL_DATA reply: the whole channel as one URL-encoded header block.
        let mut pairs = self.common_at(
            now,
            "CHANNEL_DATA",
            ("mod_event_socket.c", "parse_command", 2021),
        );
        let Some(chan) = self.chans.get(&ch) else {
            return;
        };
        let created = chan.profile.created_us;
        super::channel::profile(&mut pairs, "Channel-", &chan.profile, Some(chan), created);
        channel_data(&mut pairs, chan, created, true);
        let mut encoded: Vec<(Cow<'static, str>, String)> = pairs
            .into_iter()
            .map(|(n, v)| (n, percent_encode(&v)))
            .collect();
        encoded.push(("Content-Type".into(), "command/reply".into()));
        encoded.push(("Reply-Text".into(), "%2BOK%0A".into()));
        encoded.push(("Socket-Mode".into(), "async".into()));
        encoded.push(("Control".into(), "full".into()));
        let headers =
            Headers::from_pairs(encoded.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        self.send(conn, Message::CommandReply(Reply::from_headers(headers)));
    }

    fn sendmsg(
        &mut self,
        now: Instant,
        conn: ConnId,
        uuid: Option<String>,
        msg: crate::codec::SendMsg,
    ) {
        let target = match uuid {
            Some(u) => self.by_uuid.get(&u).copied().ok_or(u),
            None => self
                .conns
                .get(&conn)
                .and_then(|c| c.channel)
                .ok_or_else(String::new),
        };
        let ch = match target {
            Ok(ch) if self.chans.contains_key(&ch) => ch,
            Ok(_) => {
                self.reply(conn, "-ERR invalid session id []");
                return;
            }
            Err(u) => {
                self.reply(conn, &format!("-ERR invalid session id [{u}]"));
                return;
            }
        };
        self.reply(conn, "+OK");
        // The socket application parks its channel in async mode; the capture shows that
        // CHANNEL_PARK right after the first sendmsg's reply.
        if let Some(c) = self.conns.get_mut(&conn)
            && c.channel == Some(ch)
            && !c.park_announced
        {
            c.park_announced = true;
            if self.chans.get(&ch).is_some_and(|c| c.parked) {
                self.chan_event(now, ch, "CHANNEL_PARK", vec![], vec![], true);
            }
        }
        match msg {
            crate::codec::SendMsg::Execute {
                app,
                arg,
                event_uuid,
                loops,
                ..
            } => {
                let uuid = event_uuid.unwrap_or_else(|| self.rng.uuid());
                for _ in 0..loops.unwrap_or(1).max(1) {
                    self.queue_app(
                        now,
                        ch,
                        &app,
                        arg.as_deref().unwrap_or(""),
                        Some(uuid.clone()),
                    );
                }
            }
            crate::codec::SendMsg::Hangup { cause } => {
                let cause = known_cause(&cause).unwrap_or("NORMAL_CLEARING");
                self.hangup(now, ch, cause);
            }
            _ => {}
        }
    }

    // ---- faults --------------------------------------------------------------------------

    pub fn inject(&mut self, now: Instant, fault: Fault) {
        match fault {
            Fault::DropConnections => {
                let ids: Vec<ConnId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.kind == ConnKind::Inbound)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.conns.remove(&id);
                    self.out.push_back(Output::Close(id));
                }
            }
            Fault::Restart => {
                for id in self.conns.keys().copied().collect::<Vec<_>>() {
                    self.out.push_back(Output::Close(id));
                }
                self.conns.clear();
                self.chans.clear();
                self.by_uuid.clear();
                self.eavesdroppers.clear();
                self.dialing.clear();
                self.timers.clear();
                self.core_uuid = self.rng.uuid();
                self.seq = 0;
                self.started = now;
                self.stall_until = None;
                self.reply_delay = Duration::ZERO;
                self.sessions_since_start = 0;
                self.peak = 0;
                self.start_timers(now);
            }
            Fault::Stall(d) => self.stall_until = Some(now + d),
            Fault::SlowReplies(d) => self.reply_delay = d,
            Fault::Garble(target) => {
                for (id, c) in self.conns.iter_mut() {
                    if target.is_none_or(|t| t == *id)
                        && (target.is_some() || c.kind == ConnKind::Inbound)
                    {
                        c.garble_next = true;
                    }
                }
            }
        }
    }

    // ---- timers --------------------------------------------------------------------------

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((t, _, _)) = self.timers.first() {
            if *t > now {
                break;
            }
            let Some((_, _, key)) = self.timers.pop_first() else {
                break;
            };
            self.fire_timer(now, key);
        }
    }

    fn fire_timer(&mut self, now: Instant, key: TimerKey) {
        match key {
            TimerKey::Heartbeat => {
                self.heartbeat(now);
                let hb = self.cfg.heartbeat_interval;
                self.schedule(now + hb, TimerKey::Heartbeat);
            }
            TimerKey::Pump(conn) => self.pump(now, conn),
            TimerKey::Ring(ch) => {
                let Some(c) = self.chans.get(&ch) else { return };
                if c.answered || c.hangup_cause.is_some() {
                    return;
                }
                match c.var("sim_ring_outcome").unwrap_or("answer") {
                    "answer" => self.answer_originated(now, ch),
                    cause => {
                        let cause = known_cause(cause).unwrap_or("NORMAL_TEMPORARY_FAILURE");
                        self.hangup(now, ch, cause);
                    }
                }
            }
            TimerKey::OriginateTimeout(ch) => {
                if self.chans.get(&ch).is_some_and(|c| !c.answered) {
                    self.hangup(now, ch, "NO_ANSWER");
                }
            }
            TimerKey::TalkEnd(ch) => {
                if self.chans.get(&ch).is_some_and(|c| c.answered) {
                    self.hangup(now, ch, "NORMAL_CLEARING");
                }
            }
            TimerKey::AppDone(ch, seq) => {
                let Some(c) = self.chans.get(&ch) else { return };
                let Some(app) = c.current.as_ref().filter(|a| a.seq == seq) else {
                    return;
                };
                if app.name == "playback" {
                    let post = playback_post(&app.data, "done");
                    self.chan_event(now, ch, "PLAYBACK_STOP", vec![], post, true);
                    self.complete_app(now, ch, "FILE PLAYED");
                } else {
                    self.complete_app(now, ch, "_none_");
                }
            }
            TimerKey::Patience(ch) => {
                let Some(c) = self.chans.get(&ch) else { return };
                if c.peer.is_none() {
                    let cause = if c.answered {
                        "NORMAL_CLEARING"
                    } else {
                        "ORIGINATOR_CANCEL"
                    };
                    self.hangup(now, ch, cause);
                }
            }
            TimerKey::Dtmf(ch) => {
                let Some(c) = self.chans.get_mut(&ch) else {
                    return;
                };
                if let Some(digits) = c.dtmf.take() {
                    for d in digits.chars() {
                        let post = vec![
                            ("DTMF-Digit".into(), d.to_string()),
                            ("DTMF-Duration".into(), "2000".into()),
                            ("DTMF-Source".into(), "RTP".into()),
                        ];
                        self.chan_event(now, ch, "DTMF", vec![], post, false);
                    }
                }
            }
            TimerKey::Arrival => {
                let Some(model) = self.cfg.scenario.inbound.clone() else {
                    return;
                };
                if self.cfg.inbound_target.is_none() {
                    return;
                }
                if model.max_calls.is_some_and(|m| self.inbound_placed >= m) {
                    return;
                }
                let num = format!("+1555{:07}", self.rng.range(0, 9_999_999));
                let patience = model.patience.as_ref().map(|d| d.sample(&mut self.rng));
                let talk = model.talk_time.as_ref().map(|d| d.sample(&mut self.rng));
                let dtmf = if model.dtmf.is_empty() {
                    None
                } else {
                    let i = self.rng.range(0, model.dtmf.len() as u64 - 1) as usize;
                    Some((
                        model.dtmf_delay.sample(&mut self.rng),
                        model.dtmf[i].clone(),
                    ))
                };
                self.place_inbound_call(
                    now,
                    InboundCall {
                        caller_number: num,
                        caller_name: String::new(),
                        destination: model.destination.clone(),
                        patience,
                        talk_time: talk,
                        dtmf,
                    },
                );
                self.schedule_arrival(now);
            }
            TimerKey::LingerEnd(conn) => {
                if self.conns.contains_key(&conn) {
                    let n = self.goodbye_notice(conn, GOODBYE);
                    self.send(conn, n);
                    self.close(conn);
                }
            }
            TimerKey::ConnectTimeout(conn) => {
                if let Some(c) = self.conns.get(&conn)
                    && !c.connected
                {
                    let ch = c.channel;
                    self.close(conn);
                    self.conns.remove(&conn);
                    if let Some(ch) = ch {
                        self.hangup(now, ch, "NORMAL_CLEARING");
                    }
                }
            }
        }
    }

    fn schedule_arrival(&mut self, now: Instant) {
        if self.cfg.inbound_target.is_none() {
            return;
        }
        let Some(m) = &self.cfg.scenario.inbound else {
            return;
        };
        if m.calls_per_minute <= 0.0 {
            return;
        }
        let gap = Dist::Exp(60.0 / m.calls_per_minute).sample(&mut self.rng);
        self.schedule(now + gap, TimerKey::Arrival);
    }

    fn heartbeat(&mut self, now: Instant) {
        let up = now.saturating_duration_since(self.started);
        let mut p = self.common(now, "HEARTBEAT", ("switch_core.c", "send_heartbeat", 95));
        push(&mut p, "Event-Info", "System Ready");
        push(&mut p, "Up-Time", uptime_text(up));
        push(&mut p, "FreeSWITCH-Version", VERSION);
        push(&mut p, "Uptime-msec", up.as_millis().to_string());
        push(&mut p, "Session-Count", self.chans.len().to_string());
        push(&mut p, "Max-Sessions", "1000");
        push(&mut p, "Session-Per-Sec", "30");
        push(&mut p, "Session-Per-Sec-Last", "0");
        push(&mut p, "Session-Per-Sec-Max", "0");
        push(&mut p, "Session-Per-Sec-FiveMin", "0");
        push(
            &mut p,
            "Session-Since-Startup",
            self.sessions_since_start.to_string(),
        );
        push(&mut p, "Session-Peak-Max", self.peak.to_string());
        push(&mut p, "Session-Peak-FiveMin", self.peak.to_string());
        push(&mut p, "Idle-CPU", "99.000000");
        self.deliver("HEARTBEAT", None, None, p, None);
        let mut p = self.common(
            now,
            "RE_SCHEDULE",
            ("switch_scheduler.c", "switch_scheduler_execute", 73),
        );
        push(&mut p, "Task-ID", "1");
        push(&mut p, "Task-Desc", "heartbeat");
        push(&mut p, "Task-Group", "core");
        push(
            &mut p,
            "Task-Runtime",
            ((self.us(now) / 1_000_000) + 20).to_string(),
        );
        self.deliver("RE_SCHEDULE", None, None, p, None);
    }

    // ---- events --------------------------------------------------------------------------

    /// The common part of every event; counts the sequence even when nobody listens.
    fn common(&mut self, now: Instant, name: &str, calling: (&str, &str, u32)) -> Pairs {
        self.common_at(now, name, calling)
    }

    fn common_at(&mut self, now: Instant, name: &str, calling: (&str, &str, u32)) -> Pairs {
        self.seq += 1;
        let us = self.us(now);
        let (local, gmt) = date_strings(us);
        let mut p: Pairs = Vec::with_capacity(96);
        push(&mut p, "Event-Name", name.to_owned());
        push(&mut p, "Core-UUID", self.core_uuid.clone());
        push(&mut p, "FreeSWITCH-Hostname", self.cfg.hostname.clone());
        push(&mut p, "FreeSWITCH-Switchname", self.cfg.hostname.clone());
        push(&mut p, "FreeSWITCH-IPv4", "127.0.0.1");
        push(&mut p, "FreeSWITCH-IPv6", "::1");
        push(&mut p, "Event-Date-Local", local);
        push(&mut p, "Event-Date-GMT", gmt);
        push(&mut p, "Event-Date-Timestamp", us.to_string());
        push(&mut p, "Event-Calling-File", calling.0.to_owned());
        push(&mut p, "Event-Calling-Function", calling.1.to_owned());
        push(&mut p, "Event-Calling-Line-Number", calling.2.to_string());
        push(&mut p, "Event-Sequence", self.seq.to_string());
        p
    }

    fn anyone_wants(&self, name: &str, uuid: Option<&str>) -> bool {
        self.conns.values().any(|c| {
            c.subscribed(name, None)
                && !c.gone
                && c.myevents.as_deref().is_none_or(|m| Some(m) == uuid)
        })
    }

    /// Sends an event to every listener whose subscription, filters and myevents admit it;
    /// kills a listener whose backlog passes the bound, as mod_event_socket does.
    fn deliver(
        &mut self,
        name: &str,
        subclass: Option<&str>,
        uuid: Option<&str>,
        pairs: Pairs,
        body: Option<Bytes>,
    ) {
        let targets: Vec<(ConnId, EventFormat)> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                !c.gone
                    && c.subscribed(name, subclass)
                    && c.myevents.as_deref().is_none_or(|m| Some(m) == uuid)
            })
            .map(|(id, c)| (*id, c.format))
            .collect();
        if targets.is_empty() {
            return;
        }
        let headers = Headers::from_pairs(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        for (id, format) in targets {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            if !c.passes_filters(&headers) {
                continue;
            }
            if c.backlog >= self.cfg.max_event_queue {
                c.lost += 1;
                if c.lost > self.cfg.max_missed {
                    tracing::error!(
                        conn = id.0,
                        lost = c.lost,
                        "fake switch: killing listener because of too many lost events"
                    );
                    c.gone = true;
                    let notice = Message::DisconnectNotice(DisconnectNotice::new(
                        &[],
                        b"killed listener because of lost events\n",
                    ));
                    self.out.push_back(Output::Kill(id, notice));
                    self.conns.remove(&id);
                }
                continue;
            }
            c.backlog += 1;
            let ev = Event::from_parts(format, headers.clone(), body.clone());
            self.send(id, Message::Event(ev));
        }
    }

    /// A channel event: common, `pre`, channel data (+ variables), `post`.
    fn chan_event(
        &mut self,
        now: Instant,
        ch: ChanId,
        name: &'static str,
        pre: Pairs,
        post: Pairs,
        vars: bool,
    ) {
        let Some(uuid) = self.chans.get(&ch).map(|c| c.uuid.clone()) else {
            return;
        };
        if !self.anyone_wants(name, Some(&uuid)) {
            self.seq += 1;
            return;
        }
        let calling = calling_site(name);
        let mut p = self.common(now, name, calling);
        p.extend(pre);
        let Some(c) = self.chans.get(&ch) else { return };
        channel_data(&mut p, c, c.profile.created_us, vars);
        p.extend(post);
        self.deliver(name, None, Some(&uuid), p, None);
    }

    fn api_event(&mut self, now: Instant, name: &str, arg: &str) {
        if !self.anyone_wants("API", None) {
            self.seq += 1;
            return;
        }
        let mut p = self.common(
            now,
            "API",
            ("switch_loadable_module.c", "switch_api_execute", 2954),
        );
        push(&mut p, "API-Command", name.to_owned());
        push(&mut p, "API-Command-Argument", arg.to_owned());
        self.deliver("API", None, None, p, None);
    }

    fn background_job(&mut self, now: Instant, job: &str, cmd: &str, arg: &str, out: String) {
        let mut p = self.common(
            now,
            "BACKGROUND_JOB",
            ("mod_event_socket.c", "api_exec", 1572),
        );
        push(&mut p, "Job-UUID", job.to_owned());
        push(&mut p, "Job-Command", cmd.to_owned());
        if !arg.is_empty() {
            push(&mut p, "Job-Command-Arg", arg.to_owned());
        }
        push(&mut p, "Content-Length", out.len().to_string());
        self.deliver("BACKGROUND_JOB", None, None, p, Some(Bytes::from(out)));
    }

    fn set_state(&mut self, now: Instant, ch: ChanId, state: CState) {
        if let Some(c) = self.chans.get_mut(&ch) {
            c.state = state;
        }
        self.chan_event(now, ch, "CHANNEL_STATE", vec![], vec![], false);
    }

    fn set_callstate(&mut self, now: Instant, ch: ChanId, cs: &'static str) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        let old = std::mem::replace(&mut c.callstate, cs);
        if old == cs {
            return;
        }
        let pre = vec![
            ("Original-Channel-Call-State".into(), old.to_owned()),
            (
                "Channel-Call-State-Number".into(),
                callstate_number(cs).to_string(),
            ),
        ];
        self.chan_event(now, ch, "CHANNEL_CALLSTATE", pre, vec![], false);
    }

    // ---- channels ------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn new_channel(
        &mut self,
        now: Instant,
        uuid: String,
        name: String,
        outbound: bool,
        cid_name: &str,
        cid_num: &str,
        dest: &str,
        source: &'static str,
    ) -> ChanId {
        let id = ChanId(self.next_chan);
        self.next_chan += 1;
        self.session_id += 1;
        self.sessions_since_start += 1;
        let created_us = self.us(now);
        let profile = Profile {
            direction: if outbound { "outbound" } else { "inbound" },
            cid_name: cid_name.to_owned(),
            cid_num: cid_num.to_owned(),
            callee_name: if outbound {
                "Outbound Call".into()
            } else {
                String::new()
            },
            callee_num: if outbound {
                dest.to_owned()
            } else {
                String::new()
            },
            dest: dest.to_owned(),
            uuid: uuid.clone(),
            source,
            context: "default".into(),
            channel_name: name.clone(),
            created_us,
        };
        let mut ch = Channel {
            id,
            uuid: uuid.clone(),
            name: name.clone(),
            outbound,
            state: CState::Init,
            callstate: "DOWN",
            answered: false,
            early: false,
            hit_dialplan: !outbound,
            codec: "PCMU",
            codec_rate: "8000",
            codec_bits: "64000",
            profile,
            created_at: now,
            answered_at: None,
            progress_at: None,
            progress_media_at: None,
            bridged_at: None,
            answered_us: 0,
            progress_us: 0,
            progress_media_us: 0,
            bridged_us: 0,
            hangup_us: 0,
            transfer_us: 0,
            vars: Vec::with_capacity(48),
            hangup_cause: None,
            peer: None,
            other: None,
            current: None,
            queue: VecDeque::new(),
            parked: false,
            waiter: Waiter::None,
            after_answer: None,
            hangup_when_idle: outbound,
            socket: None,
            recordings: Vec::new(),
            talk_time: None,
            app_seq: 0,
            last_app: None,
            eavesdrop: None,
            ring_deadline: None,
            inbound_caller: false,
            dtmf: None,
        };
        ch.set_var("direction", ch.direction());
        if outbound {
            ch.set_var("is_outbound", "true");
        }
        ch.set_var("uuid", uuid.clone());
        ch.set_var("session_id", self.session_id.to_string());
        ch.set_var("channel_name", name);
        ch.set_var("read_codec", "PCMU");
        ch.set_var("read_rate", "8000");
        ch.set_var("write_codec", "PCMU");
        ch.set_var("write_rate", "8000");
        self.by_uuid.insert(uuid, id);
        self.chans.insert(id, ch);
        self.peak = self.peak.max(self.chans.len());
        id
    }

    fn answer(&mut self, now: Instant, ch: ChanId) {
        let us = self.us(now);
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.answered || c.hangup_cause.is_some() {
            return;
        }
        c.answered = true;
        c.answered_at = Some(now);
        c.answered_us = us;
        c.set_var("endpoint_disposition", "ANSWER");
        let talk = if c.inbound_caller { None } else { c.talk_time };
        let dtmf_after = c
            .var("sim_dtmf_delay_ms")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis);
        self.chan_event(now, ch, "CHANNEL_ANSWER", vec![], vec![], true);
        self.set_callstate(now, ch, "ACTIVE");
        if let Some(t) = talk {
            self.schedule(now + t, TimerKey::TalkEnd(ch));
        }
        if let Some(d) = dtmf_after {
            self.schedule(now + d, TimerKey::Dtmf(ch));
        }
    }

    fn progress(&mut self, now: Instant, ch: ChanId, media: bool) {
        let us = self.us(now);
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if media {
            if c.early {
                return;
            }
            c.early = true;
            c.progress_media_at = Some(now);
            c.progress_media_us = us;
            self.chan_event(now, ch, "CHANNEL_PROGRESS_MEDIA", vec![], vec![], true);
            self.set_callstate(now, ch, "EARLY");
        } else {
            if c.progress_at.is_some() {
                return;
            }
            c.progress_at = Some(now);
            c.progress_us = us;
            self.chan_event(now, ch, "CHANNEL_PROGRESS", vec![], vec![], true);
            self.set_callstate(now, ch, "RINGING");
        }
    }

    /// An originated leg answered: resolve its waiter and start its application.
    fn answer_originated(&mut self, now: Instant, ch: ChanId) {
        self.answer(now, ch);
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        let waiter = std::mem::replace(&mut c.waiter, Waiter::None);
        let uuid = c.uuid.clone();
        let after = c.after_answer.take();
        self.resolve(now, waiter, ch, Ok(&uuid));
        if self
            .chans
            .get(&ch)
            .is_some_and(|c| c.hangup_cause.is_none())
        {
            self.set_state(now, ch, CState::Execute);
            match after {
                Some((app, data)) => self.queue_app(now, ch, &app, &data, None),
                None => self.park(now, ch, None),
            }
        }
    }

    /// Tells whoever waited for an originate how it went.
    fn resolve(&mut self, now: Instant, waiter: Waiter, b: ChanId, result: Result<&str, &str>) {
        let text = match result {
            Ok(u) => format!("+OK {u}\n"),
            Err(cause) => format!("-ERR {cause}\n"),
        };
        match waiter {
            Waiter::None => {}
            Waiter::Api(conn) => {
                self.api_done(conn, text);
                self.schedule(now, TimerKey::Pump(conn));
            }
            Waiter::Bg { job, command, arg } => {
                self.background_job(now, &job, &command, &arg, text)
            }
            Waiter::Bridge { a, app_seq } => {
                self.dialing.remove(&a);
                let current = self
                    .chans
                    .get(&a)
                    .and_then(|c| c.current.as_ref())
                    .is_some_and(|app| app.seq == app_seq);
                if !current {
                    // The a-leg moved on (hung up): drop the new leg.
                    if result.is_ok() {
                        self.hangup(now, b, "ORIGINATOR_CANCEL");
                    }
                    return;
                }
                match result {
                    Ok(_) => self.bridge(now, a, b),
                    Err(cause) => {
                        if let Some(c) = self.chans.get_mut(&a) {
                            c.set_var("originate_disposition", cause);
                            c.set_var("DIALSTATUS", cause);
                            c.set_var("last_bridge_hangup_cause", cause);
                        }
                        self.complete_app(now, a, "_none_");
                    }
                }
            }
        }
    }

    /// The api response, then whatever events waited behind it.
    fn api_done(&mut self, conn: ConnId, text: String) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.blocked = false;
        let held: Vec<Message> = c.held.drain(..).collect();
        self.send(conn, Message::ApiResponse(Bytes::from(text)));
        for m in held {
            self.send(conn, m);
        }
    }

    fn park(&mut self, now: Instant, ch: ChanId, app_uuid: Option<String>) {
        let uuid = app_uuid.unwrap_or_else(|| self.rng.uuid());
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.parked {
            return;
        }
        c.app_seq += 1;
        let app = App {
            name: "park".into(),
            data: String::new(),
            uuid,
            seq: c.app_seq,
        };
        c.set_var("current_application", "park");
        c.parked = true;
        c.hangup_when_idle = false;
        let post = app_post(&app, None);
        c.current = None;
        c.last_app = Some(("park".into(), String::new()));
        // Park holds the application slot open until something unparks the channel.
        c.queue.push_front(App { seq: 0, ..app });
        self.chan_event(now, ch, "CHANNEL_EXECUTE", vec![], post, true);
        self.chan_event(now, ch, "CHANNEL_PARK", vec![], vec![], true);
    }

    /// Leaves park: CHANNEL_UNPARK and the park (or socket) application's completion.
    fn unpark(&mut self, now: Instant, ch: ChanId) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if !c.parked {
            return;
        }
        c.parked = false;
        let park_app = match c.queue.front() {
            Some(a) if a.seq == 0 => c.queue.pop_front(),
            _ => None,
        };
        self.chan_event(now, ch, "CHANNEL_UNPARK", vec![], vec![], true);
        if let Some(app) = park_app {
            let resp = self
                .chans
                .get(&ch)
                .and_then(|c| c.var("sim_last_response").map(str::to_owned))
                .unwrap_or_else(|| "_none_".into());
            let post = app_post(&app, Some(&resp));
            self.chan_event(now, ch, "CHANNEL_EXECUTE_COMPLETE", vec![], post, true);
        }
    }

    /// Queues an application (sendmsg execute, `&app()` of an originate, broadcast...).
    fn queue_app(
        &mut self,
        now: Instant,
        ch: ChanId,
        name: &str,
        data: &str,
        uuid: Option<String>,
    ) {
        let uuid = uuid.unwrap_or_else(|| self.rng.uuid());
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.hangup_cause.is_some() {
            return;
        }
        if name == "park" {
            self.park(now, ch, Some(uuid));
            return;
        }
        c.app_seq += 1;
        let app = App {
            name: name.to_owned(),
            data: data.to_owned(),
            uuid,
            seq: c.app_seq,
        };
        c.queue.push_back(app);
        if c.current.is_none() {
            self.start_next(now, ch);
        }
    }

    fn start_next(&mut self, now: Instant, ch: ChanId) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.current.is_some() {
            return;
        }
        // A park placeholder stays at the head while parked.
        let idx = c.queue.iter().position(|a| a.seq != 0);
        let Some(app) = idx.and_then(|i| c.queue.remove(i)) else {
            if c.hangup_when_idle && c.peer.is_none() && !c.parked {
                self.hangup(now, ch, "NORMAL_CLEARING");
            }
            return;
        };
        c.set_var("current_application", app.name.clone());
        if app.data.is_empty() {
            c.unset_var("current_application_data");
        } else {
            c.set_var("current_application_data", app.data.clone());
        }
        c.current = Some(app.clone());
        let post = app_post(&app, None);
        self.chan_event(now, ch, "CHANNEL_EXECUTE", vec![], post, true);
        self.run_app(now, ch, app);
    }

    fn run_app(&mut self, now: Instant, ch: ChanId, app: App) {
        match app.name.as_str() {
            "answer" => {
                self.answer(now, ch);
                self.complete_app(now, ch, "_none_");
            }
            "pre_answer" => {
                self.progress(now, ch, true);
                self.complete_app(now, ch, "_none_");
            }
            "ring_ready" => {
                self.progress(now, ch, false);
                self.complete_app(now, ch, "_none_");
            }
            "hangup" => {
                let cause = known_cause(&app.data).unwrap_or("NORMAL_CLEARING");
                self.hangup(now, ch, cause);
            }
            "set" | "export" => {
                if let Some((n, v)) = app.data.split_once('=')
                    && let Some(c) = self.chans.get_mut(&ch)
                {
                    c.set_var(n.trim(), v);
                }
                self.complete_app(now, ch, "_none_");
            }
            "sleep" => {
                let ms = app.data.trim().parse::<u64>().unwrap_or(0);
                self.schedule(
                    now + Duration::from_millis(ms),
                    TimerKey::AppDone(ch, app.seq),
                );
            }
            "playback" | "endless_playback" => {
                let (kind, len) = playback_length(&app.data, self.cfg.default_playback);
                let post = vec![
                    ("Playback-File-Type".into(), kind.to_owned()),
                    ("Playback-File-Path".into(), app.data.clone()),
                ];
                self.chan_event(now, ch, "PLAYBACK_START", vec![], post, true);
                if let Some(len) = len.filter(|_| app.name == "playback") {
                    self.schedule(now + len, TimerKey::AppDone(ch, app.seq));
                }
                if let Some(c) = self.chans.get_mut(&ch) {
                    c.set_var("sim_last_response", "FILE PLAYED");
                }
            }
            "record_session" => {
                self.record_start(now, ch, app.data.trim(), None);
                self.complete_app(now, ch, "_none_");
            }
            "bridge" => {
                let dial = app.data.clone();
                match self.originate_leg(
                    now,
                    &dial,
                    Waiter::Bridge {
                        a: ch,
                        app_seq: app.seq,
                    },
                    None,
                ) {
                    Ok(b) => {
                        self.dialing.insert(ch, b);
                    }
                    Err(cause) => {
                        if let Some(c) = self.chans.get_mut(&ch) {
                            c.set_var("originate_disposition", cause);
                        }
                        self.complete_app(now, ch, "_none_");
                    }
                }
            }
            "eavesdrop" => {
                let target = self.by_uuid.get(app.data.trim()).copied();
                match target {
                    Some(t) if t != ch => {
                        if let Some(c) = self.chans.get_mut(&ch) {
                            c.eavesdrop = Some((t, "listen"));
                            c.set_var("eavesdrop_target", app.data.trim());
                            c.set_var("eavesdrop_mode", "listen");
                        }
                        self.eavesdroppers.entry(t).or_default().push(ch);
                    }
                    _ => self.complete_app(now, ch, "_none_"),
                }
            }
            _ => self.complete_app(now, ch, "_none_"),
        }
    }

    fn complete_app(&mut self, now: Instant, ch: ChanId, response: &str) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        let Some(app) = c.current.take() else { return };
        c.last_app = Some((app.name.clone(), app.data.clone()));
        c.set_var("last_app", app.name.clone());
        let post = app_post(&app, Some(response));
        self.chan_event(now, ch, "CHANNEL_EXECUTE_COMPLETE", vec![], post, true);
        if self
            .chans
            .get(&ch)
            .is_some_and(|c| c.hangup_cause.is_none())
        {
            self.start_next(now, ch);
        }
    }

    /// Joins two channels (uuid_bridge or the bridge application).
    fn bridge(&mut self, now: Instant, a: ChanId, b: ChanId) {
        let us = self.us(now);
        let (Some(pa), Some(pb)) = (
            self.chans.get(&a).map(|c| c.profile.clone()),
            self.chans.get(&b).map(|c| c.profile.clone()),
        ) else {
            return;
        };
        for (x, y) in [(a, b), (b, a)] {
            if let Some(old) = self.chans.get(&x).and_then(|c| c.peer)
                && old != y
            {
                self.unbridge(now, x, old);
            }
        }
        let (ua, ub) = (pa.uuid.clone(), pb.uuid.clone());
        for (x, other, kind, ou) in [
            (a, pb, "originatee", ub.clone()),
            (b, pa, "originator", ua.clone()),
        ] {
            self.unpark(now, x);
            if let Some(c) = self.chans.get_mut(&x) {
                c.peer = Some(if x == a { b } else { a });
                c.other = Some((kind, other));
                c.bridged_at = Some(now);
                c.bridged_us = us;
                c.state = CState::ExchangeMedia;
                c.set_var("bridge_uuid", ou.clone());
                c.set_var("signal_bond", ou.clone());
                c.set_var("last_bridge_to", ou);
                c.set_var("bridge_epoch", (us / 1_000_000).to_string());
                c.set_var("bridge_uepoch", us.to_string());
            }
        }
        if let Some(c) = self.chans.get_mut(&b) {
            c.set_var("call_uuid", ua.clone());
        }
        let pre = vec![
            ("Bridge-A-Unique-ID".into(), ua),
            ("Bridge-B-Unique-ID".into(), ub),
        ];
        self.chan_event(now, a, "CHANNEL_BRIDGE", pre, vec![], true);
        for x in [a, b] {
            let talk = self
                .chans
                .get(&x)
                .filter(|c| c.inbound_caller)
                .and_then(|c| c.talk_time);
            if let Some(t) = talk {
                self.schedule(now + t, TimerKey::TalkEnd(x));
            }
        }
    }

    /// Ends a bridge from `x`'s side; the peer goes on as FreeSWITCH would send it on.
    fn unbridge(&mut self, now: Instant, x: ChanId, y: ChanId) {
        let (ux, uy) = match (self.chans.get(&x), self.chans.get(&y)) {
            (Some(cx), Some(cy)) => (cx.uuid.clone(), cy.uuid.clone()),
            (Some(cx), None) => (cx.uuid.clone(), String::new()),
            _ => return,
        };
        for c in [x, y] {
            if let Some(ch) = self.chans.get_mut(&c) {
                ch.peer = None;
            }
        }
        let pre = vec![
            ("Bridge-A-Unique-ID".into(), ux),
            ("Bridge-B-Unique-ID".into(), uy),
        ];
        self.chan_event(now, x, "CHANNEL_UNBRIDGE", pre, vec![], true);
        // The survivor: a running bridge application completes; a socket-controlled or
        // park_after_bridge channel goes back to park; anything else hangs up.
        let Some(cy) = self.chans.get(&y) else { return };
        if cy.hangup_cause.is_some() {
            return;
        }
        let in_bridge_app = cy.current.as_ref().is_some_and(|a| a.name == "bridge");
        let park_after = cy.var("park_after_bridge").is_some_and(is_true) || cy.socket.is_some();
        let hab = cy.var("hangup_after_bridge").is_some_and(is_true);
        if in_bridge_app {
            if hab {
                self.hangup(now, y, "NORMAL_CLEARING");
            } else {
                if let Some(c) = self.chans.get_mut(&y) {
                    c.state = CState::Execute;
                }
                self.complete_app(now, y, "_none_");
            }
        } else if park_after {
            if let Some(c) = self.chans.get_mut(&y) {
                c.state = CState::Execute;
            }
            self.park(now, y, None);
        } else {
            self.hangup(now, y, "NORMAL_CLEARING");
        }
    }

    /// Hangs a channel up with the full event sequence FreeSWITCH emits, then forgets it.
    pub(crate) fn hangup(&mut self, now: Instant, ch: ChanId, cause: &str) {
        let us = self.us(now);
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.hangup_cause.is_some() {
            return;
        }
        c.hangup_cause = Some(cause.to_owned());
        c.hangup_us = us;
        c.set_var("hangup_cause", cause);
        c.set_var("hangup_cause_q850", q850(cause).to_string());
        if !c.answered {
            let disp = match cause {
                "ORIGINATOR_CANCEL" => "ORIGINATOR_CANCEL",
                _ => "NO ANSWER",
            };
            c.set_var("endpoint_disposition", disp);
        }
        let waiter = if c.answered {
            Waiter::None
        } else {
            std::mem::replace(&mut c.waiter, Waiter::None)
        };
        let peer = c.peer;
        let socket = c.socket;
        // A bridge application still dialling loses its b-leg.
        if let Some(b) = self.dialing.remove(&ch) {
            self.hangup(now, b, "ORIGINATOR_CANCEL");
        }
        self.chan_event(now, ch, "CHANNEL_HANGUP", vec![], vec![], true);
        // Playback in progress stops; recordings are finalised.
        if let Some(app) = self.chans.get(&ch).and_then(|c| c.current.clone())
            && app.name.ends_with("playback")
        {
            let post = playback_post(&app.data, "done");
            self.chan_event(now, ch, "PLAYBACK_STOP", vec![], post, true);
            if let Some(c) = self.chans.get_mut(&ch) {
                c.set_var("sim_last_response", "PLAYBACK ERROR");
            }
        }
        let paths: Vec<String> = self
            .chans
            .get(&ch)
            .map(|c| c.recordings.iter().map(|r| r.path.clone()).collect())
            .unwrap_or_default();
        for p in paths {
            self.record_stop(now, ch, &p);
        }
        if let Some(p) = peer {
            self.unbridge(now, ch, p);
        }
        self.unpark(now, ch);
        if let Some(app) = self.chans.get_mut(&ch).and_then(|c| c.current.take()) {
            let resp = if app.name.ends_with("playback") {
                "PLAYBACK ERROR"
            } else {
                "_none_"
            };
            let post = app_post(&app, Some(resp));
            self.chan_event(now, ch, "CHANNEL_EXECUTE_COMPLETE", vec![], post, true);
        }
        // Eavesdroppers lose their target.
        if let Some(list) = self.eavesdroppers.remove(&ch) {
            for e in list {
                if self
                    .chans
                    .get(&e)
                    .is_some_and(|c| c.eavesdrop.is_some_and(|(t, _)| t == ch))
                {
                    if let Some(c) = self.chans.get_mut(&e) {
                        c.eavesdrop = None;
                    }
                    self.complete_app(now, e, "_none_");
                }
            }
        }
        if let Some((t, _)) = self.chans.get(&ch).and_then(|c| c.eavesdrop)
            && let Some(list) = self.eavesdroppers.get_mut(&t)
        {
            list.retain(|x| *x != ch);
        }
        self.set_state(now, ch, CState::Hangup);
        self.set_callstate(now, ch, "HANGUP");
        if let Some(c) = self.chans.get_mut(&ch) {
            c.queue.clear();
            c.state = CState::Reporting;
            cdr_vars(c, now, us);
        }
        self.chan_event(now, ch, "CHANNEL_STATE", vec![], vec![], false);
        let pre = vec![("Hangup-Cause".into(), cause.to_owned())];
        self.chan_event(now, ch, "CHANNEL_HANGUP_COMPLETE", pre, vec![], true);
        // The controlling socket learns the call is over.
        if let Some(conn) = socket {
            self.socket_hangup(now, conn, ch);
        }
        self.set_state(now, ch, CState::Destroy);
        self.chan_event(now, ch, "CHANNEL_DESTROY", vec![], vec![], true);
        if let Some(c) = self.chans.remove(&ch) {
            self.by_uuid.remove(&c.uuid);
        }
        match waiter {
            Waiter::None => {}
            w => self.resolve(now, w, ch, Err(cause)),
        }
    }

    fn socket_hangup(&mut self, now: Instant, conn: ConnId, ch: ChanId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.channel = None;
        let linger = c.linger;
        let (uuid, name) = match self.chans.get(&ch) {
            Some(x) => (x.uuid.clone(), x.name.clone()),
            None => return,
        };
        match linger {
            Some(t) => {
                let secs = t.map_or("-1".to_owned(), |d| d.as_secs().to_string());
                let notice = DisconnectNotice::new(
                    &[
                        ("Controlled-Session-UUID", uuid.as_str()),
                        ("Content-Disposition", "linger"),
                        ("Channel-Name", name.as_str()),
                        ("Linger-Time", secs.as_str()),
                    ],
                    b"",
                );
                self.send(conn, Message::DisconnectNotice(notice));
                if let Some(d) = t {
                    self.schedule(now + d, TimerKey::LingerEnd(conn));
                }
            }
            None => {
                let notice = DisconnectNotice::new(
                    &[
                        ("Controlled-Session-UUID", uuid.as_str()),
                        ("Content-Disposition", "disconnect"),
                    ],
                    GOODBYE,
                );
                self.send(conn, Message::DisconnectNotice(notice));
                self.close(conn);
            }
        }
        // Events of a gone session no longer reach its socket (CHANNEL_DESTROY included).
        if let Some(c) = self.conns.get_mut(&conn) {
            c.events_on = false;
        }
    }

    fn record_start(
        &mut self,
        now: Instant,
        ch: ChanId,
        path: &str,
        limit: Option<Duration>,
    ) -> bool {
        let Some(c) = self.chans.get_mut(&ch) else {
            return false;
        };
        if path.is_empty() {
            return false;
        }
        let stereo = c.var("RECORD_STEREO").is_some_and(is_true);
        c.recordings.push(Recording {
            path: path.to_owned(),
            started: now,
            masked: Vec::new(),
            stereo,
            limit,
        });
        let post = vec![("Record-File-Path".into(), path.to_owned())];
        self.chan_event(now, ch, "RECORD_START", vec![], post, true);
        true
    }

    fn record_stop(&mut self, now: Instant, ch: ChanId, path: &str) -> bool {
        let Some(c) = self.chans.get_mut(&ch) else {
            return false;
        };
        let Some(i) = c
            .recordings
            .iter()
            .position(|r| r.path == path || path.eq_ignore_ascii_case("all"))
        else {
            return false;
        };
        let rec = c.recordings.remove(i);
        let mut duration = now.saturating_duration_since(rec.started);
        if let Some(l) = rec.limit {
            duration = duration.min(l);
        }
        c.set_var("record_seconds", duration.as_secs().to_string());
        c.set_var("record_ms", duration.as_millis().to_string());
        c.set_var("record_completion_cause", "success");
        let masked = rec
            .masked
            .iter()
            .map(|(s, e)| (*s, e.unwrap_or(duration)))
            .collect();
        self.recordings_written += 1;
        let seed = self.rng.next_u64();
        self.out.push_back(Output::WriteRecording(RecordingJob {
            path: rec.path.clone(),
            duration,
            stereo: rec.stereo,
            sample_rate: 8000,
            masked,
            seed,
        }));
        let post = vec![
            ("Record-File-Path".into(), rec.path),
            ("Record-Completion-Cause".into(), "success".into()),
        ];
        self.chan_event(now, ch, "RECORD_STOP", vec![], post, true);
        if path.eq_ignore_ascii_case("all") {
            self.record_stop(now, ch, "all");
        }
        true
    }

    // ---- inbound calls -------------------------------------------------------------------

    /// A caller arrives: the channel runs the dialplan's `socket` application, which opens an
    /// outbound socket to the inbound target. `None` when no target is configured.
    pub fn place_inbound_call(&mut self, now: Instant, call: InboundCall) -> Option<String> {
        let addr = self.cfg.inbound_target.clone()?;
        self.inbound_placed += 1;
        let uuid = self.rng.uuid();
        let num = if call.caller_number.is_empty() {
            "0000000000".to_owned()
        } else {
            call.caller_number.clone()
        };
        let name = format!("sofia/external/{num}@198.51.100.10");
        let dest = if call.destination.is_empty() {
            "5000".to_owned()
        } else {
            call.destination.clone()
        };
        let ch = self.new_channel(
            now,
            uuid.clone(),
            name,
            false,
            &call.caller_name,
            &num,
            &dest,
            "mod_sofia",
        );
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let mut c = Conn::new(ConnKind::Outbound);
        c.channel = Some(ch);
        c.session = Some(uuid.clone());
        self.conns.insert(conn, c);
        if let Some(c) = self.chans.get_mut(&ch) {
            c.inbound_caller = true;
            c.talk_time = call.talk_time;
            c.socket = Some(conn);
            c.hangup_when_idle = false;
            c.set_var("call_uuid", uuid.clone());
            if let Some((d, digits)) = &call.dtmf {
                c.dtmf = Some(digits.clone());
                c.set_var("sim_dtmf_delay_ms", d.as_millis().to_string());
            }
        }
        self.chan_event(now, ch, "CHANNEL_CREATE", vec![], vec![], true);
        self.set_state(now, ch, CState::Routing);
        self.set_callstate(now, ch, "RINGING");
        self.set_state(now, ch, CState::Execute);
        let data = format!("{addr} async full");
        let host = addr
            .rsplit_once(':')
            .map_or(addr.as_str(), |(h, _)| h)
            .to_owned();
        let app_uuid = self.rng.uuid();
        if let Some(c) = self.chans.get_mut(&ch) {
            c.set_var("current_application_data", data.clone());
            c.set_var("current_application", "socket");
            c.set_var("socket_host", host);
            c.app_seq += 1;
            let app = App {
                name: "socket".into(),
                data,
                uuid: app_uuid,
                seq: 0,
            };
            let post = app_post(&app, None);
            c.queue.push_front(app);
            c.parked = true;
            self.chan_event(now, ch, "CHANNEL_EXECUTE", vec![], post, true);
        }
        if let Some(p) = call.patience {
            self.schedule(now + p, TimerKey::Patience(ch));
        }
        self.out.push_back(Output::OpenOutbound {
            conn,
            addr,
            uuid: uuid.clone(),
        });
        Some(uuid)
    }

    // ---- api -----------------------------------------------------------------------------

    /// Runs an api command. `None`: the answer comes later, through `waiter`.
    fn run_api(&mut self, now: Instant, name: &str, arg: &str, waiter: Waiter) -> Option<String> {
        let args: Vec<&str> = arg.split_ascii_whitespace().collect();
        let no_such = || "-ERR No such channel!\n".to_owned();
        let out = match name {
            "status" => self.status_text(now),
            "version" => format!(
                "FreeSWITCH Version {VERSION} (1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit)\n"
            ),
            "hostname" => self.cfg.hostname.clone(),
            "global_getvar" => match arg.trim() {
                "core_uuid" => self.core_uuid.clone(),
                "hostname" | "switchname" => self.cfg.hostname.clone(),
                "" => format!(
                    "core_uuid={}\nhostname={}\n",
                    self.core_uuid, self.cfg.hostname
                ),
                _ => String::new(),
            },
            "show" => self.show(arg),
            "sofia" => SOFIA_STATUS.to_owned(),
            "reloadxml" => "+OK [Success]\n".to_owned(),
            "echo" => arg.to_owned(),
            "originate" => return self.api_originate(now, arg, waiter),
            "uuid_kill" => match args.first().and_then(|u| self.by_uuid.get(*u).copied()) {
                Some(ch) => {
                    let cause = args
                        .get(1)
                        .and_then(|c| known_cause(c))
                        .unwrap_or("NORMAL_CLEARING");
                    self.hangup(now, ch, cause);
                    "+OK\n".into()
                }
                None if args.is_empty() => "-USAGE: <uuid> [cause]\n".into(),
                None => no_such(),
            },
            "uuid_answer" => match args.first().and_then(|u| self.by_uuid.get(*u).copied()) {
                Some(ch) => {
                    if self
                        .chans
                        .get(&ch)
                        .is_some_and(|c| c.outbound && !c.answered)
                    {
                        self.answer_originated(now, ch);
                    } else {
                        self.answer(now, ch);
                    }
                    "+OK\n".into()
                }
                None => no_such(),
            },
            "uuid_exists" => self.by_uuid.contains_key(arg.trim()).to_string(),
            "uuid_getvar" => match (args.first(), args.get(1)) {
                (Some(u), Some(v)) => {
                    match self.by_uuid.get(*u).and_then(|id| self.chans.get(id)) {
                        Some(c) => c.var(v).map_or_else(|| "_undef_".to_owned(), str::to_owned),
                        None => no_such(),
                    }
                }
                _ => "-USAGE: <uuid> <var>\n".into(),
            },
            "uuid_setvar" => {
                let mut it = arg.splitn(3, ' ');
                match (it.next(), it.next(), it.next()) {
                    (Some(u), Some(v), val) if !u.is_empty() && !v.is_empty() => {
                        match self.by_uuid.get(u).copied() {
                            Some(ch) => {
                                if let Some(c) = self.chans.get_mut(&ch) {
                                    match val {
                                        Some(val) => c.set_var(v, val),
                                        None => c.unset_var(v),
                                    }
                                }
                                "+OK\n".into()
                            }
                            None => no_such(),
                        }
                    }
                    _ => "-USAGE: <uuid> <var> [value]\n".into(),
                }
            }
            "uuid_bridge" => match (args.first(), args.get(1)) {
                (Some(a), Some(b)) => {
                    match (self.by_uuid.get(*a).copied(), self.by_uuid.get(*b).copied()) {
                        (Some(x), Some(y)) if x != y => {
                            for ch in [x, y] {
                                if self.chans.get(&ch).is_some_and(|c| !c.answered) {
                                    self.answer(now, ch);
                                }
                            }
                            self.bridge(now, x, y);
                            format!("+OK {b}\n")
                        }
                        _ => "-ERR Invalid uuid\n".into(),
                    }
                }
                _ => "-USAGE: <uuid> <other_uuid>\n".into(),
            },
            "uuid_broadcast" => {
                if args.len() < 2 {
                    "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n".into()
                } else {
                    match self.by_uuid.get(args[0]).copied() {
                        Some(ch) => {
                            let path = args[1];
                            let (app, data) = match path.split_once("::") {
                                Some((a, d)) => (a.to_owned(), d.to_owned()),
                                None => ("playback".to_owned(), path.to_owned()),
                            };
                            self.queue_app(now, ch, &app, &data, None);
                            "+OK Message sent\n".into()
                        }
                        None => "-ERR invalid uuid\n".into(),
                    }
                }
            }
            "uuid_break" => match args.first().and_then(|u| self.by_uuid.get(*u).copied()) {
                Some(ch) => {
                    if let Some(app) = self.chans.get(&ch).and_then(|c| c.current.clone())
                        && app.name.ends_with("playback")
                    {
                        let post = playback_post(&app.data, "break");
                        self.chan_event(now, ch, "PLAYBACK_STOP", vec![], post, true);
                        self.complete_app(now, ch, "FILE PLAYED");
                    }
                    "+OK\n".into()
                }
                None => no_such(),
            },
            "uuid_park" => match args.first().and_then(|u| self.by_uuid.get(*u).copied()) {
                Some(ch) => {
                    if let Some(p) = self.chans.get(&ch).and_then(|c| c.peer) {
                        if let Some(c) = self.chans.get_mut(&p) {
                            c.set_var("park_after_bridge", "true");
                        }
                        self.unbridge(now, ch, p);
                    }
                    self.park(now, ch, None);
                    "+OK\n".into()
                }
                None => no_such(),
            },
            "uuid_record" => self.api_record(now, &args),
            "uuid_transfer" => self.api_transfer(now, &args),
            "uuid_send_dtmf" => match (
                args.first().and_then(|u| self.by_uuid.get(*u).copied()),
                args.get(1),
            ) {
                (Some(ch), Some(digits)) => {
                    self.send_dtmf(now, ch, digits);
                    "+OK Success\n".into()
                }
                (None, Some(_)) => format!("-ERR no such session {}\n", args[0]),
                _ => "-USAGE: <uuid> <dtmf_data>\n".into(),
            },
            "hupall" => {
                let cause = args
                    .first()
                    .and_then(|c| known_cause(c))
                    .unwrap_or("MANAGER_REQUEST");
                let matching = match (args.get(1), args.get(2)) {
                    (Some(v), Some(val)) => Some(((*v).to_owned(), (*val).to_owned())),
                    _ => None,
                };
                let ids: Vec<ChanId> = self
                    .chans
                    .values()
                    .filter(|c| {
                        matching
                            .as_ref()
                            .is_none_or(|(v, val)| c.var(v) == Some(val.as_str()))
                    })
                    .map(|c| c.id)
                    .collect();
                for id in ids {
                    self.hangup(now, id, cause);
                }
                match matching {
                    None => format!("+OK hangup all channels with cause {cause}\n"),
                    Some((v, val)) => format!(
                        "+OK hangup all channels matching [{v}]=[{val}] with cause: {cause}\n"
                    ),
                }
            }
            _ => format!("-ERR {name} Command not found!\n"),
        };
        Some(out)
    }

    fn send_dtmf(&mut self, now: Instant, ch: ChanId, digits: &str) {
        for d in digits.chars() {
            // Eavesdrop controls: 1 whisper to the eavesdropped leg, 2 to its peer,
            // 3 barge (three-way), 0 back to listening.
            let mode = match d {
                '1' => Some("whisper_a"),
                '2' => Some("whisper_b"),
                '3' => Some("barge"),
                '0' => Some("listen"),
                _ => None,
            };
            if let (Some(m), Some(c)) = (mode, self.chans.get_mut(&ch))
                && let Some((t, _)) = c.eavesdrop
            {
                c.eavesdrop = Some((t, m));
                c.set_var("eavesdrop_mode", m);
            }
            let post = vec![
                ("DTMF-Digit".into(), d.to_string()),
                ("DTMF-Duration".into(), "2000".into()),
                ("DTMF-Source".into(), "APP".into()),
            ];
            self.chan_event(now, ch, "DTMF", vec![], post, false);
        }
    }

    fn api_record(&mut self, now: Instant, args: &[&str]) -> String {
        const USAGE: &str =
            "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n";
        if args.len() < 3 {
            return USAGE.into();
        }
        let Some(ch) = self.by_uuid.get(args[0]).copied() else {
            return "-ERR Cannot locate session!\n".into();
        };
        let path = args[2];
        match args[1].to_ascii_lowercase().as_str() {
            "start" => {
                let limit = args
                    .get(3)
                    .and_then(|l| l.parse::<u64>().ok())
                    .filter(|l| *l > 0)
                    .map(Duration::from_secs);
                if self.record_start(now, ch, path, limit) {
                    "+OK Success\n".into()
                } else {
                    "-ERR Cannot record session!\n".into()
                }
            }
            "stop" => {
                if self.record_stop(now, ch, path) {
                    "+OK Success\n".into()
                } else {
                    "-ERR Cannot stop record session!\n".into()
                }
            }
            action @ ("mask" | "unmask") => {
                let mask = action == "mask";
                let Some(c) = self.chans.get_mut(&ch) else {
                    return "-ERR Cannot locate session!\n".into();
                };
                let Some(r) = c.recordings.iter_mut().find(|r| r.path == path) else {
                    return format!("-ERR Cannot {action} recording session!\n");
                };
                let at = now.saturating_duration_since(r.started);
                if mask {
                    if r.masked.last().is_none_or(|(_, e)| e.is_some()) {
                        r.masked.push((at, None));
                    }
                } else if let Some(last) = r.masked.last_mut()
                    && last.1.is_none()
                {
                    last.1 = Some(at);
                }
                "+OK Success\n".into()
            }
            _ => USAGE.into(),
        }
    }

    fn api_transfer(&mut self, now: Instant, args: &[&str]) -> String {
        const USAGE: &str = "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n";
        if args.len() < 2 || args.len() > 5 {
            return USAGE.into();
        }
        let Some(mut ch) = self.by_uuid.get(args[0]).copied() else {
            return "-ERR No such channel!\n".into();
        };
        let (flag, dest) = if args[1].starts_with('-') {
            match args.get(2) {
                Some(d) => (Some(args[1]), *d),
                None => return USAGE.into(),
            }
        } else {
            (None, args[1])
        };
        let peer = self.chans.get(&ch).and_then(|c| c.peer);
        let mut targets = vec![ch];
        match (flag, peer) {
            (Some("-bleg"), Some(p)) => {
                ch = p;
                targets = vec![ch];
            }
            (Some("-both"), Some(p)) => targets.push(p),
            _ => {}
        }
        let us = self.us(now);
        for t in &targets {
            if let Some(c) = self.chans.get_mut(t) {
                // Transferred legs keep going in the dialplan rather than hang up.
                c.set_var("park_after_bridge", "true");
            }
        }
        for t in targets {
            if let Some(p) = self.chans.get(&t).and_then(|c| c.peer) {
                self.unbridge(now, t, p);
            }
            if let Some(c) = self.chans.get_mut(&t) {
                c.profile.dest = dest.to_owned();
                c.transfer_us = us;
                c.set_var(
                    "transfer_history",
                    format!("{}:{}:uuid_br:{dest}", us / 1_000_000, c.uuid),
                );
                c.state = CState::Routing;
            }
            self.unpark(now, t);
            self.chan_event(now, t, "CHANNEL_STATE", vec![], vec![], false);
            self.set_state(now, t, CState::Execute);
            // The simulated dialplan parks every extension.
            self.park(now, t, None);
        }
        "+OK\n".into()
    }

    fn api_originate(&mut self, now: Instant, arg: &str, waiter: Waiter) -> Option<String> {
        // originate <call url> <exten>|&<app>(<args>) [<dialplan>] [<context>] [<cid_name>]
        //           [<cid_num>] [<timeout_sec>]
        let (url, rest) = split_dial_url(arg.trim());
        let rest: Vec<&str> = rest.split_ascii_whitespace().collect();
        if url.is_empty() || rest.is_empty() || rest.len() > 6 {
            return Some("-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n".into());
        }
        let exten = rest[0];
        let after = match exten.strip_prefix('&') {
            Some(app) => {
                let (name, data) = match app.split_once('(') {
                    Some((n, d)) => (n.to_owned(), d.strip_suffix(')').unwrap_or(d).to_owned()),
                    None => (app.to_owned(), String::new()),
                };
                Some((name, data))
            }
            None => None,
        };
        let timeout = rest
            .get(5)
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs);
        let cid = (
            rest.get(3)
                .filter(|s| **s != "undef")
                .map(|s| (*s).to_owned()),
            rest.get(4)
                .filter(|s| **s != "undef")
                .map(|s| (*s).to_owned()),
        );
        match self.originate_leg(now, &url, waiter, Some((after, timeout, cid))) {
            Ok(_) => None,
            Err(cause) => Some(format!("-ERR {cause}\n")),
        }
    }

    /// Creates an outbound leg from a dial string and lets the behaviour model decide its
    /// fate. `Err(cause)` when it fails at once (nothing was created).
    #[allow(clippy::type_complexity)]
    fn originate_leg(
        &mut self,
        now: Instant,
        dial: &str,
        waiter: Waiter,
        opts: Option<(
            Option<(String, String)>,
            Option<Duration>,
            (Option<String>, Option<String>),
        )>,
    ) -> Result<ChanId, &'static str> {
        let (vars, target) = parse_dial_vars(dial);
        // Several destinations (`,` simultaneous, `|` sequential): the first one is dialled.
        let target = target.split([',', '|']).next().unwrap_or("").trim();
        let (target, leg_vars) = parse_leg_vars(target);
        let mut vars = vars;
        vars.extend(leg_vars);
        let parts: Vec<&str> = target.split('/').collect();
        let (name, dest, outcome, delay, talk, media, source) = match parts.as_slice() {
            ["user", ext] | ["user", ext, ..] => {
                let ext = ext.split('@').next().unwrap_or(ext);
                let Some(b) = self.cfg.scenario.agents.lookup(ext).cloned() else {
                    return Err("USER_NOT_REGISTERED");
                };
                let total = b.answer + b.reject + b.no_answer + b.busy;
                let x = self.rng.unit() * if total > 0.0 { total } else { 1.0 };
                let outcome = if x < b.answer || total <= 0.0 {
                    Some(Ring::Answer)
                } else if x < b.answer + b.reject {
                    Some(Ring::Fail("CALL_REJECTED"))
                } else if x < b.answer + b.reject + b.no_answer {
                    None
                } else {
                    Some(Ring::Fail("USER_BUSY"))
                };
                let delay = b.answer_delay.sample(&mut self.rng);
                let talk = b.talk_time.as_ref().map(|d| d.sample(&mut self.rng));
                let n = format!("sofia/internal/{ext}@192.0.2.50:5060");
                (n, ext.to_owned(), outcome, delay, talk, false, "mod_sofia")
            }
            ["sofia", "gateway", gw, number] => {
                let m = self.cfg.scenario.customers.clone();
                let fixed = m.numbers.get(*number).cloned();
                let kind = match fixed {
                    Some(k) => k,
                    None => {
                        let w = [m.human, m.machine, m.busy, m.no_answer, m.failed];
                        let total: f64 = w.iter().sum();
                        let mut x = self.rng.unit() * if total > 0.0 { total } else { 1.0 };
                        let mut pick = 0;
                        for (i, wi) in w.iter().enumerate() {
                            if x < *wi {
                                pick = i;
                                break;
                            }
                            x -= wi;
                            pick = i;
                        }
                        ["human", "machine", "busy", "no_answer", "failed"][pick].to_owned()
                    }
                };
                let delay = m.answer_delay.sample(&mut self.rng);
                let (outcome, talk) = match kind.as_str() {
                    "human" => (
                        Some(Ring::Answer),
                        m.talk_time.as_ref().map(|d| d.sample(&mut self.rng)),
                    ),
                    "machine" => (
                        Some(Ring::Answer),
                        Some(m.machine_greeting.sample(&mut self.rng)),
                    ),
                    "busy" => (Some(Ring::Fail("USER_BUSY")), None),
                    "no_answer" => (None, None),
                    "failed" => (
                        Some(Ring::Fail(
                            known_cause(&m.failed_cause).unwrap_or("NORMAL_TEMPORARY_FAILURE"),
                        )),
                        None,
                    ),
                    other => (
                        Some(Ring::Fail(
                            known_cause(other).unwrap_or("NORMAL_TEMPORARY_FAILURE"),
                        )),
                        None,
                    ),
                };
                if kind == "machine" {
                    vars.push(("sim_amd_result".into(), "MACHINE".into()));
                    vars.push(("amd_result".into(), "MACHINE".into()));
                } else if kind == "human" {
                    vars.push(("amd_result".into(), "HUMAN".into()));
                }
                let delay = if kind == "no_answer" {
                    m.no_answer_after.sample(&mut self.rng)
                } else {
                    delay
                };
                let n = format!("sofia/gateway/{gw}/{number}");
                (
                    n,
                    (*number).to_owned(),
                    outcome,
                    delay,
                    talk,
                    true,
                    "mod_sofia",
                )
            }
            ["loopback", ext] | ["loopback", ext, _] | ["loopback", ext, _, _] => {
                let n = format!("loopback/{ext}-a");
                (
                    n,
                    (*ext).to_owned(),
                    Some(Ring::Answer),
                    Duration::ZERO,
                    None,
                    false,
                    "mod_loopback",
                )
            }
            ["error", cause] => {
                return Err(known_cause(cause).unwrap_or("NORMAL_TEMPORARY_FAILURE"));
            }
            ["sofia", ..] | ["user", ..] => return Err("INVALID_GATEWAY"),
            _ => return Err("CHAN_NOT_IMPLEMENTED"),
        };
        let uuid = vars
            .iter()
            .rev()
            .find(|(k, _)| k == "origination_uuid")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| self.rng.uuid());
        if self.by_uuid.contains_key(&uuid) {
            return Err("DESTINATION_OUT_OF_ORDER");
        }
        let (after, timeout, (cid_name, cid_num)) = opts.unwrap_or((None, None, (None, None)));
        let var = |k: &str| {
            vars.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        let cid_name = var("origination_caller_id_name")
            .or(cid_name)
            .unwrap_or_default();
        let cid_num = var("origination_caller_id_number")
            .or(cid_num)
            .unwrap_or_else(|| "0000000000".into());
        let timeout = var("originate_timeout")
            .or_else(|| var("leg_timeout"))
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs)
            .or(timeout)
            .unwrap_or(Duration::from_secs(60));
        let ch = self.new_channel(now, uuid, name, true, &cid_name, &cid_num, &dest, source);
        if let Some(c) = self.chans.get_mut(&ch) {
            for (k, v) in &vars {
                c.set_var(k, v.clone());
            }
            c.set_var("originate_early_media", "true");
            c.set_var("originate_endpoint", parts.first().copied().unwrap_or(""));
            c.waiter = waiter;
            c.after_answer = after;
            c.talk_time = talk;
            c.ring_deadline = Some(now + timeout);
            if let Some(o) = &outcome {
                c.set_var(
                    "sim_ring_outcome",
                    match o {
                        Ring::Answer => "answer",
                        Ring::Fail(c) => c,
                    },
                );
            }
        }
        self.chan_event(now, ch, "CHANNEL_CREATE", vec![], vec![], true);
        self.chan_event(now, ch, "CHANNEL_OUTGOING", vec![], vec![], false);
        self.chan_event(now, ch, "CHANNEL_STATE", vec![], vec![], false);
        self.set_state(now, ch, CState::Routing);
        if source != "mod_loopback" {
            self.progress(now, ch, media);
        }
        match outcome {
            Some(_) if delay < timeout => self.schedule(now + delay, TimerKey::Ring(ch)),
            _ => {}
        }
        self.schedule(now + timeout, TimerKey::OriginateTimeout(ch));
        if source == "mod_loopback" {
            self.answer_originated(now, ch);
        }
        Ok(ch)
    }

    fn status_text(&self, now: Instant) -> String {
        let up = now.saturating_duration_since(self.started);
        format!(
            "UP {}\nFreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit) is ready\n{} session(s) since startup\n{} session(s) - peak {}, last 5min {} \n0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n1000 session(s) max\nmin idle cpu 0.00/99.70\nCurrent Stack Size/Max 240K/8192K\n",
            uptime_text(up),
            self.sessions_since_start,
            self.chans.len(),
            self.peak,
            self.peak
        )
    }

    fn show(&self, arg: &str) -> String {
        let words: Vec<String> = arg
            .split_ascii_whitespace()
            .map(str::to_ascii_lowercase)
            .collect();
        let json =
            words.len() >= 3 && words[words.len() - 2] == "as" && words[words.len() - 1] == "json";
        match words.first().map(String::as_str) {
            Some("channels") if words.get(1).is_some_and(|w| w == "count") => {
                format!("\n{} total.\n", self.chans.len())
            }
            Some("calls") if words.get(1).is_some_and(|w| w == "count") => {
                let n = self
                    .chans
                    .values()
                    .filter(|c| {
                        c.peer.is_some()
                            && c.outbound == c.other.as_ref().is_some_and(|o| o.0 == "originator")
                    })
                    .count();
                format!("\n{} total.\n", n)
            }
            Some("channels") if json => self.show_channels_json(),
            Some("calls") if json => self.show_calls_json(),
            Some("channels") | Some("calls") => {
                format!(
                    "uuid,direction,created,created_epoch,name,state\n\n{} total.\n",
                    self.chans.len()
                )
            }
            _ => "-USAGE: show [channels|calls] [count] [as json]\n".into(),
        }
    }

    fn row_fields(&self, c: &Channel) -> Vec<(&'static str, String)> {
        let created_s = c.profile.created_us / 1_000_000;
        let (created, _) = date_strings(c.profile.created_us);
        let app = c
            .current
            .as_ref()
            .map(|a| (a.name.clone(), a.data.clone()))
            .or_else(|| c.parked.then(|| ("park".to_owned(), String::new())));
        let (app, app_data) = app.unwrap_or_default();
        vec![
            ("uuid", c.uuid.clone()),
            ("direction", c.direction().into()),
            ("created", created),
            ("created_epoch", created_s.to_string()),
            ("name", c.name.clone()),
            ("state", c.state.name().into()),
            ("cid_name", c.profile.cid_name.clone()),
            ("cid_num", c.profile.cid_num.clone()),
            ("ip_addr", String::new()),
            ("dest", c.profile.dest.clone()),
            ("application", app),
            ("application_data", app_data),
            ("dialplan", "xml".into()),
            ("context", c.profile.context.clone()),
            ("read_codec", c.codec.into()),
            ("read_rate", c.codec_rate.into()),
            ("read_bit_rate", c.codec_bits.into()),
            ("write_codec", c.codec.into()),
            ("write_rate", c.codec_rate.into()),
            ("write_bit_rate", c.codec_bits.into()),
            ("secure", String::new()),
            ("hostname", self.cfg.hostname.clone()),
            ("presence_id", String::new()),
            ("presence_data", String::new()),
            ("accountcode", String::new()),
            ("callstate", c.callstate.into()),
            ("callee_name", c.profile.callee_name.clone()),
            ("callee_num", c.profile.callee_num.clone()),
            (
                "callee_direction",
                if c.outbound {
                    "RECV".into()
                } else {
                    String::new()
                },
            ),
            (
                "call_uuid",
                c.var("call_uuid").unwrap_or(&c.uuid).to_owned(),
            ),
            ("sent_callee_name", String::new()),
            ("sent_callee_num", String::new()),
            ("initial_cid_name", c.profile.cid_name.clone()),
            ("initial_cid_num", c.profile.cid_num.clone()),
            ("initial_ip_addr", String::new()),
            ("initial_dest", c.profile.dest.clone()),
            ("initial_dialplan", "xml".into()),
            ("initial_context", c.profile.context.clone()),
        ]
    }

    fn show_channels_json(&self) -> String {
        if self.chans.is_empty() {
            return "{\"row_count\": 0}\n".into();
        }
        let mut s = format!("{{\"row_count\":{},\"rows\":[", self.chans.len());
        for (i, c) in self.chans.values().enumerate() {
            if i > 0 {
                s.push(',');
            }
            json_object(
                &mut s,
                self.row_fields(c)
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(*k), v.as_str())),
            );
        }
        s.push_str("]}");
        s
    }

    fn show_calls_json(&self) -> String {
        // One row per bridge, keyed by its a-leg (the side FreeSWITCH calls the originator).
        let pairs: Vec<(&Channel, &Channel)> = self
            .chans
            .values()
            .filter(|c| c.other.as_ref().is_some_and(|o| o.0 == "originatee"))
            .filter_map(|a| a.peer.and_then(|p| self.chans.get(&p)).map(|b| (a, b)))
            .collect();
        if pairs.is_empty() {
            return "{\"row_count\": 0}\n".into();
        }
        let mut s = format!("{{\"row_count\":{},\"rows\":[", pairs.len());
        for (i, (a, b)) in pairs.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let keep = |k: &str| {
                !k.starts_with("initial_")
                    && !matches!(
                        k,
                        "application"
                            | "application_data"
                            | "dialplan"
                            | "context"
                            | "read_codec"
                            | "read_rate"
                            | "read_bit_rate"
                            | "write_codec"
                            | "write_rate"
                            | "write_bit_rate"
                            | "secure"
                    )
            };
            let mut fields: Vec<(Cow<'static, str>, String)> = self
                .row_fields(a)
                .into_iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (Cow::Borrowed(k), v))
                .collect();
            for (k, v) in self
                .row_fields(b)
                .into_iter()
                .filter(|(k, _)| keep(k) && *k != "hostname" && *k != "call_uuid")
            {
                fields.push((Cow::Owned(format!("b_{k}")), v));
            }
            fields.push((
                "call_created_epoch".into(),
                (a.bridged_us / 1_000_000).to_string(),
            ));
            json_object(&mut s, fields.iter().map(|(k, v)| (k.clone(), v.as_str())));
        }
        s.push_str("]}");
        s
    }
}

// ---- helpers -----------------------------------------------------------------------------

fn json_object<'a>(s: &mut String, fields: impl Iterator<Item = (Cow<'a, str>, &'a str)>) {
    s.push('{');
    for (i, (k, v)) in fields.enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&serde_json::to_string(k.as_ref()).unwrap_or_default());
        s.push(':');
        s.push_str(&serde_json::to_string(v).unwrap_or_default());
    }
    s.push('}');
}

fn percent_encode(v: &str) -> String {
    let mut out = Vec::with_capacity(v.len());
    percent::encode_into(v.as_bytes(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "on" | "enabled" | "active" | "allow" | "1"
    )
}

fn split_cmd(command: &str) -> (String, String) {
    let command = command.trim();
    match command.split_once(' ') {
        Some((n, a)) => (n.to_owned(), a.trim().to_owned()),
        None => (command.to_owned(), String::new()),
    }
}

/// Splits the call URL off an originate argument, keeping `{a=b c}` groups whole.
fn split_dial_url(arg: &str) -> (String, &str) {
    let mut depth = 0i32;
    for (i, ch) in arg.char_indices() {
        match ch {
            '{' | '[' | '<' => depth += 1,
            '}' | ']' | '>' => depth -= 1,
            ' ' if depth <= 0 => return (arg[..i].to_owned(), &arg[i + 1..]),
            _ => {}
        }
    }
    (arg.to_owned(), "")
}

/// `{a=1,b=2}rest` -> ([(a,1),(b,2)], rest). `<...>` is accepted like `{...}`.
fn parse_dial_vars(dial: &str) -> (Vec<(String, String)>, &str) {
    let dial = dial.trim();
    for (open, close) in [('{', '}'), ('<', '>')] {
        if let Some(rest) = dial.strip_prefix(open)
            && let Some(end) = rest.find(close)
        {
            let vars = split_vars(&rest[..end]);
            let (more, target) = parse_dial_vars(&rest[end + 1..]);
            let mut vars = vars;
            vars.extend(more);
            return (vars, target);
        }
    }
    (Vec::new(), dial)
}

/// `[a=1]user/1000` -> per-leg variables.
fn parse_leg_vars(target: &str) -> (&str, Vec<(String, String)>) {
    if let Some(rest) = target.strip_prefix('[')
        && let Some(end) = rest.find(']')
    {
        return (&rest[end + 1..], split_vars(&rest[..end]));
    }
    (target, Vec::new())
}

fn split_vars(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('\'').to_owned()))
        .collect()
}

fn app_post(app: &App, response: Option<&str>) -> Pairs {
    let mut p: Pairs = Vec::with_capacity(4);
    push(&mut p, "Application", app.name.clone());
    if !app.data.is_empty() {
        push(&mut p, "Application-Data", app.data.clone());
    }
    if let Some(r) = response {
        push(&mut p, "Application-Response", r.to_owned());
    }
    push(&mut p, "Application-UUID", app.uuid.clone());
    p
}

fn playback_post(path: &str, status: &str) -> Pairs {
    let (kind, _) = playback_length(path, Duration::ZERO);
    vec![
        ("Playback-File-Type".into(), kind.to_owned()),
        ("Playback-File-Path".into(), path.to_owned()),
        ("Playback-Status".into(), status.to_owned()),
    ]
}

/// The file type FreeSWITCH reports and how long playing it takes (`None`: forever).
fn playback_length(path: &str, default: Duration) -> (&'static str, Option<Duration>) {
    if let Some(ms) = path.strip_prefix("silence_stream://") {
        let ms = ms
            .split(',')
            .next()
            .and_then(|m| m.trim().parse::<i64>().ok())
            .unwrap_or(0);
        return (
            "silence_stream",
            (ms >= 0).then(|| Duration::from_millis(ms as u64)),
        );
    }
    if let Some(spec) = path.strip_prefix("tone_stream://") {
        // %(on,off,freq...);loops=N
        let cycle_ms: u64 = spec
            .split_once("%(")
            .and_then(|(_, r)| r.split_once(')'))
            .map(|(inner, _)| {
                inner
                    .split(',')
                    .take(2)
                    .filter_map(|x| x.trim().parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(1000);
        let loops = spec
            .split_once("loops=")
            .and_then(|(_, l)| l.trim().parse::<i64>().ok())
            .unwrap_or(1);
        return (
            "tone_stream",
            (loops >= 0).then(|| Duration::from_millis(cycle_ms * loops.max(1) as u64)),
        );
    }
    if path.starts_with("local_stream://") {
        return ("local_stream", None);
    }
    ("file", Some(default))
}

fn calling_site(name: &str) -> (&'static str, &'static str, u32) {
    match name {
        "CHANNEL_CREATE" => (
            "switch_core_state_machine.c",
            "switch_core_session_run",
            626,
        ),
        "CHANNEL_STATE" => (
            "switch_channel.c",
            "switch_channel_perform_set_running_state",
            2198,
        ),
        "CHANNEL_CALLSTATE" => (
            "switch_channel.c",
            "switch_channel_perform_set_callstate",
            336,
        ),
        "CHANNEL_ANSWER" => (
            "switch_channel.c",
            "switch_channel_perform_mark_answered",
            3996,
        ),
        "CHANNEL_PROGRESS" => (
            "switch_channel.c",
            "switch_channel_perform_mark_ring_ready_value",
            3567,
        ),
        "CHANNEL_PROGRESS_MEDIA" => (
            "switch_channel.c",
            "switch_channel_perform_mark_pre_answered",
            3700,
        ),
        "CHANNEL_OUTGOING" => (
            "switch_core_session.c",
            "switch_core_session_outgoing_channel",
            742,
        ),
        "CHANNEL_EXECUTE" => ("switch_core_session.c", "switch_core_session_exec", 2943),
        "CHANNEL_EXECUTE_COMPLETE" => ("switch_core_session.c", "switch_core_session_exec", 2973),
        "CHANNEL_PARK" => ("switch_ivr.c", "switch_ivr_park", 1002),
        "CHANNEL_UNPARK" => ("switch_ivr.c", "switch_ivr_park", 1295),
        "CHANNEL_BRIDGE" => (
            "switch_ivr_bridge.c",
            "switch_ivr_multi_threaded_bridge",
            1690,
        ),
        "CHANNEL_UNBRIDGE" => (
            "switch_ivr_bridge.c",
            "switch_ivr_multi_threaded_bridge",
            1880,
        ),
        "CHANNEL_HANGUP" => ("switch_channel.c", "switch_channel_perform_hangup", 3442),
        "CHANNEL_HANGUP_COMPLETE" => (
            "switch_core_state_machine.c",
            "switch_core_session_reporting_state",
            948,
        ),
        "CHANNEL_DESTROY" => (
            "switch_core_session.c",
            "switch_core_session_perform_destroy",
            1745,
        ),
        "PLAYBACK_START" | "PLAYBACK_STOP" => {
            ("switch_ivr_play_say.c", "switch_ivr_play_file", 1538)
        }
        "RECORD_START" | "RECORD_STOP" => ("switch_ivr_async.c", "record_callback", 1375),
        "DTMF" => ("switch_channel.c", "switch_channel_queue_dtmf", 681),
        _ => ("switch_channel.c", "switch_channel_event_set_data", 0),
    }
}

fn callstate_number(cs: &str) -> u32 {
    match cs {
        "DOWN" => 0,
        "DIALING" => 1,
        "RINGING" => 2,
        "EARLY" => 3,
        "ACTIVE" => 4,
        "HELD" => 5,
        "RING_WAIT" => 6,
        "HANGUP" => 7,
        _ => 8,
    }
}

fn uptime_text(up: Duration) -> String {
    let total = up.as_secs();
    format!(
        "0 years, {} days, {} hours, {} minutes, {} seconds, {} milliseconds, {} microseconds",
        total / 86_400,
        (total % 86_400) / 3600,
        (total % 3600) / 60,
        total % 60,
        up.subsec_millis(),
        up.subsec_micros() % 1000
    )
}

/// The CDR variables of CHANNEL_HANGUP_COMPLETE (`billsec`, `duration`, ...).
fn cdr_vars(c: &mut Channel, now: Instant, end_us: u64) {
    let start_us = c.profile.created_us;
    let stamp = |us: u64| {
        if us == 0 {
            String::new()
        } else {
            date_strings(us).0
        }
    };
    let dur = now.saturating_duration_since(c.created_at);
    let bill = c
        .answered_at
        .map_or(Duration::ZERO, |a| now.saturating_duration_since(a));
    let progress = c.progress_at.map_or(Duration::ZERO, |p| {
        p.saturating_duration_since(c.created_at)
    });
    let answer = c.answered_at.map_or(Duration::ZERO, |a| {
        a.saturating_duration_since(c.created_at)
    });
    let pmedia = c.progress_media_at.map_or(Duration::ZERO, |p| {
        p.saturating_duration_since(c.created_at)
    });
    let (answered_us, bridged_us, progress_us, pmedia_us) = (
        c.answered_us,
        c.bridged_us,
        c.progress_us,
        c.progress_media_us,
    );
    let mut set = |k: &str, v: String| c.set_var(k, v);
    set("start_stamp", stamp(start_us));
    set("profile_start_stamp", stamp(start_us));
    if answered_us > 0 {
        set("answer_stamp", stamp(answered_us));
    }
    if bridged_us > 0 {
        set("bridge_stamp", stamp(bridged_us));
    }
    set("end_stamp", stamp(end_us));
    for (k, us) in [
        ("start", start_us),
        ("profile_start", start_us),
        ("answer", answered_us),
        ("bridge", bridged_us),
        ("last_hold", 0),
        ("resurrect", 0),
        ("progress", progress_us),
        ("progress_media", pmedia_us),
        ("end", end_us),
    ] {
        set(&format!("{k}_epoch"), (us / 1_000_000).to_string());
        set(&format!("{k}_uepoch"), us.to_string());
    }
    set("hold_accum_seconds", "0".into());
    set("hold_accum_usec", "0".into());
    set("hold_accum_ms", "0".into());
    let cid = if c.profile.cid_name.is_empty() {
        c.profile.cid_num.clone()
    } else {
        format!("\"{}\" <{}>", c.profile.cid_name, c.profile.cid_num)
    };
    c.set_var("caller_id", cid);
    let mut set = |k: &str, v: u128| c.set_var(k, v.to_string());
    set("duration", dur.as_secs() as u128);
    set("billsec", bill.as_secs() as u128);
    set("progresssec", progress.as_secs() as u128);
    set("answersec", answer.as_secs() as u128);
    set("waitsec", answer.as_secs() as u128);
    set("progress_mediasec", pmedia.as_secs() as u128);
    set("flow_billsec", bill.as_secs() as u128);
    set("mduration", dur.as_millis());
    set("billmsec", bill.as_millis());
    set("progressmsec", progress.as_millis());
    set("answermsec", answer.as_millis());
    set("waitmsec", answer.as_millis());
    set("progress_mediamsec", pmedia.as_millis());
    set("flow_billmsec", bill.as_millis());
    set("uduration", dur.as_micros());
    set("billusec", bill.as_micros());
    set("progressusec", progress.as_micros());
    set("answerusec", answer.as_micros());
    set("waitusec", answer.as_micros());
    set("progress_mediausec", pmedia.as_micros());
    set("flow_billusec", bill.as_micros());
}

const SOFIA_STATUS: &str = "                     Name\t   Type\t                                      Data\tState\n=================================================================================================\n                127.0.0.1\t  alias\t                                  internal\tALIASED\n                 internal\tprofile\t              sip:mod_sofia@127.0.0.1:5060\tRUNNING (0)\n=================================================================================================\n1 profile 1 alias\n";

/// FreeSWITCH's event names (`switch_event_types_t`), for `event`/`nixevent`.
const EVENT_NAMES: &[&str] = &[
    "CUSTOM",
    "CLONE",
    "CHANNEL_CREATE",
    "CHANNEL_DESTROY",
    "CHANNEL_STATE",
    "CHANNEL_CALLSTATE",
    "CHANNEL_ANSWER",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_OUTGOING",
    "CHANNEL_PARK",
    "CHANNEL_UNPARK",
    "CHANNEL_APPLICATION",
    "CHANNEL_ORIGINATE",
    "CHANNEL_UUID",
    "API",
    "LOG",
    "INBOUND_CHAN",
    "OUTBOUND_CHAN",
    "STARTUP",
    "SHUTDOWN",
    "PUBLISH",
    "UNPUBLISH",
    "TALK",
    "NOTALK",
    "SESSION_CRASH",
    "MODULE_LOAD",
    "MODULE_UNLOAD",
    "DTMF",
    "MESSAGE",
    "PRESENCE_IN",
    "NOTIFY_IN",
    "PRESENCE_OUT",
    "PRESENCE_PROBE",
    "MESSAGE_WAITING",
    "MESSAGE_QUERY",
    "ROSTER",
    "CODEC",
    "BACKGROUND_JOB",
    "DETECTED_SPEECH",
    "DETECTED_TONE",
    "PRIVATE_COMMAND",
    "HEARTBEAT",
    "TRAP",
    "ADD_SCHEDULE",
    "DEL_SCHEDULE",
    "EXE_SCHEDULE",
    "RE_SCHEDULE",
    "RELOADXML",
    "NOTIFY",
    "PHONE_FEATURE",
    "PHONE_FEATURE_SUBSCRIBE",
    "SEND_MESSAGE",
    "RECV_MESSAGE",
    "REQUEST_PARAMS",
    "CHANNEL_DATA",
    "GENERAL",
    "COMMAND",
    "SESSION_HEARTBEAT",
    "CLIENT_DISCONNECTED",
    "SERVER_DISCONNECTED",
    "SEND_INFO",
    "RECV_INFO",
    "RECV_RTCP_MESSAGE",
    "SEND_RTCP_MESSAGE",
    "CALL_SECURE",
    "NAT",
    "RECORD_START",
    "RECORD_STOP",
    "PLAYBACK_START",
    "PLAYBACK_STOP",
    "CALL_UPDATE",
    "FAILURE",
    "SOCKET_DATA",
    "MEDIA_BUG_START",
    "MEDIA_BUG_STOP",
    "CONFERENCE_DATA_QUERY",
    "CONFERENCE_DATA",
    "CALL_SETUP_REQ",
    "CALL_SETUP_RESULT",
    "CALL_DETAIL",
    "DEVICE_STATE",
    "TEXT",
    "SHUTDOWN_REQUESTED",
];

fn is_event_name(n: &str) -> bool {
    EVENT_NAMES.contains(&n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_strings_parse() {
        let (url, rest) = split_dial_url("{origination_uuid=abc,a=b c}user/1000 &park()");
        assert_eq!(url, "{origination_uuid=abc,a=b c}user/1000");
        assert_eq!(rest, "&park()");
        let (vars, target) = parse_dial_vars(&url);
        assert_eq!(vars[0], ("origination_uuid".into(), "abc".into()));
        assert_eq!(vars[1], ("a".into(), "b c".into()));
        assert_eq!(target, "user/1000");
    }

    #[test]
    fn playback_lengths() {
        assert_eq!(
            playback_length("tone_stream://%(250,250,440);loops=4", Duration::ZERO).1,
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            playback_length("silence_stream://1500", Duration::ZERO).1,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            playback_length("local_stream://moh", Duration::ZERO).1,
            None
        );
    }

    #[test]
    fn filters_follow_mod_event_socket() {
        let mut c = Conn::new(ConnKind::Inbound);
        let h = Headers::from_pairs([("Unique-ID", "u1"), ("Event-Name", "CHANNEL_ANSWER")]);
        assert!(c.passes_filters(&h));
        c.filters.push(("Unique-ID".into(), "u2".into()));
        assert!(!c.passes_filters(&h));
        c.filters.push(("Unique-ID".into(), "u1".into()));
        assert!(c.passes_filters(&h));
        c.filters
            .push(("Event-Name".into(), "-CHANNEL_ANSWER".into()));
        assert!(!c.passes_filters(&h));
    }
}
