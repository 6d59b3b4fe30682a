//! The fake switch on an in-memory wire, in virtual time: no TCP, no tokio.
//!
//! [`Wire`] owns a [`Switch`] and plays the client side of every connection the real
//! switchyard holds over TCP: inbound event-socket [`Link`]s (what `esl::client` does: auth,
//! `api global_getvar core_uuid`, `event plain ...`, api/bgapi with our own Job-UUID) and the
//! outbound [`Socket`]s the switch's `socket` application opens (what `esl::server` and the
//! engine's session task do: `connect`, `myevents`, `linger`, and `exit` after the disconnect
//! notice). Every command is encoded to bytes and framed by the switch's [`CommandDecoder`];
//! every message the switch sends is encoded and decoded again by our [`EslCodec`], so what
//! crosses is exactly what would cross a socket.
//!
//! The run loop (like quinn-proto's test `Pair`, with time as an input):
//! ```
//! use std::time::{Duration, Instant};
//! use switchyard_esl::sim::{SimConfig, Wire, WireEvent};
//!
//! let t0 = Instant::now();
//! let mut wire = Wire::new(SimConfig::default(), 7, t0).with_latency(Duration::from_millis(5));
//! let link = wire.connect(t0, "ClueCon", "CHANNEL_ANSWER")?;
//! let token = wire.api(t0, link, "status")?;
//! let mut answered = None;
//! while answered.is_none() {
//!     // Step to the next thing that happens: a timer of the switch or a delivery on the wire.
//!     let Some(t) = wire.poll_timeout() else { break };
//!     wire.handle_timeout(t);
//!     while let Some(ev) = wire.poll_event() {
//!         if let WireEvent::Api { token: tk, .. } = ev {
//!             assert_eq!(tk, token);
//!             answered = Some(t);
//!         }
//!     }
//! }
//! // Greeting, auth, its reply, the setup, its replies (the link is up at 25 ms and the
//! // request, held until then, goes out), the request, its answer: seven legs of 5 ms.
//! assert_eq!(answered, Some(t0 + Duration::from_millis(35)));
//! # Ok::<(), switchyard_esl::EslError>(())
//! ```
//!
//! The wire, with a one-way latency `L` (zero by default):
//! ```text
//!  caller ─connect/api/bgapi/socket_*─▶ client side ──commands, +L──▶ CommandDecoder ─▶ Switch
//!  caller ◀──poll_event── WireEvent ◀── EslCodec ◀──messages, +L── Output::Send/SendRaw ◀┘
//! ```
//! What each [`Output`] becomes:
//! - `Send`: encoded and sent (an event counts as flushed at once, as `net`'s writer counts
//!   it when written); `SendRaw`: its bytes are sent as they are. Bytes our decoder cannot
//!   frame make us drop the connection as the real client and server do: a link reports
//!   `Lost` for every unanswered token and then `Closed`; an open socket `SocketClosed`.
//!   The switch then sees the close, as `net` reports a reader's EOF.
//! - `Close`: the switch stops reading at once (as `net` aborts the reader); we read what was
//!   sent before it, then the end of the stream.
//! - `Kill`: the notice, then the end of the stream (what was sent before it is already on
//!   the wire, so nothing is dropped).
//! - `OpenOutbound`: we accept `L` later (whatever the address: we are the only target) and
//!   send `connect`; the switch learns of the accept `L` after that (`outbound_connected`),
//!   just before the command.
//! - `Recorder`: there is no UDP here. A `Dial` comes out as [`RecorderDials`] says (by
//!   default answered [`RecorderDials::DEFAULT_ANSWER`] after the dial, as the capture's UAS
//!   answered in ~4 ms); no RTP flows, and `Audio` and `HangUp` are dropped (there is no far
//!   end to feed or say BYE to). The switch's events for the leg are the same as over UDP.
//! - `WriteRecording`: not written; reported as [`WireEvent::Recording`] at the switch's time,
//!   in order, ahead of anything the switch sent after it. The harness may write it with
//!   [`super::wav::write_recording`].
//!
//! Not modelled: an inbound link's TCP handshake (the switch accepts at `connect`'s `now`),
//! partial writes and socket buffers (each message is delivered whole, and our end reads
//! everything as it arrives, as the real client does, so the switch never kills a listener
//! for lost events), reconnection (a lost link stays lost: `connect` again), and TLS. `Fault::Stall` and `Fault::SlowReplies` need nothing here: the switch delays its
//! replies with its own timers, which [`Wire::poll_timeout`] includes.
//!
//! Bounds: per link, [`MAX_UNANSWERED`] requests without a reply and [`MAX_JOBS`] accepted
//! jobs, per socket [`MAX_UNANSWERED`] commands (past them a request fails with
//! [`EslError::Overloaded`]); [`MAX_QUEUED_EVENTS`] unpolled events, past which subscribed
//! events are dropped and counted ([`Wire::dropped_events`]) as the real client's event sink
//! drops them; [`MAX_HELD_EVENTS`] per socket during its handshake. Status events (answers, `Lost`, `Closed`, socket openings and
//! closings, recordings) are never dropped: each stands for a request the caller made or a
//! connection or recording the switch made. The wire itself holds what was sent within the
//! last `L` of virtual time; the switch bounds what it sends per listener.
//!
//! Determinism: no clock, no randomness but the switch's seeded one, and nothing is emitted
//! in hash-map order. The same seed, config and calls give the same events.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tracing::{debug, warn};

use super::config::SimConfig;
use super::core::{
    ConnId, ConnKind, Fault, InboundCall, Output, RecorderAction, RecordingJob, Switch,
};
use crate::codec::{
    Command, CommandDecoder, EslCodec, Event, EventFormat, EventSet, Message, Reply, SendMsg,
};
use crate::error::EslError;

/// Requests on one link (or commands on one socket) waiting for their reply, or for the link's
/// setup. Above the switch's own limit of 10,000 unread commands, so a test can reach that
/// through the wire.
pub const MAX_UNANSWERED: usize = 16_384;
/// bgapi jobs one link may have accepted and not yet reported (the client's default).
pub const MAX_JOBS: usize = 100_000;
/// Unpolled events; past it, subscribed events (`Event`, `SocketEvent`) are dropped.
pub const MAX_QUEUED_EVENTS: usize = 100_000;
/// Events a socket may receive between `myevents` and the `linger` reply (a round trip's
/// worth in practice); past it they are dropped and counted.
pub const MAX_HELD_EVENTS: usize = 1024;

/// Events the real client subscribes for itself (`esl::client`'s subscriptions): bgapi
/// results and the heartbeat watchdog's HEARTBEAT. Not delivered unless asked for.
const INTERNAL_EVENTS: [&str; 2] = ["BACKGROUND_JOB", "HEARTBEAT"];

/// One inbound event-socket connection; its number is the switch's [`ConnId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Link(pub u64);

impl Link {
    /// The switch's id for this connection (for [`Fault::Garble`]).
    pub fn conn(self) -> ConnId {
        ConnId(self.0)
    }
}

/// One outbound socket the switch opened for a call; its number is the switch's [`ConnId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Socket(pub u64);

impl Socket {
    /// The switch's id for this connection (for [`Fault::Garble`]).
    pub fn conn(self) -> ConnId {
        ConnId(self.0)
    }
}

/// What happened on the wire, in the order it happened.
#[derive(Clone, Debug, PartialEq)]
pub enum WireEvent {
    /// Auth accepted, `api global_getvar core_uuid` and the event subscription answered: the
    /// link is usable. `core_uuid` comes from that api answer, or (should it be empty or
    /// `-ERR`) from the first event's `Core-UUID`, as `esl::client` does it.
    Connected { link: Link, core_uuid: String },
    /// An `api` answer: the `api/response` body (a `command/reply` text if the switch
    /// answered that way instead).
    Api { link: Link, token: u64, body: Bytes },
    /// A `bgapi` outcome: the BACKGROUND_JOB body (`+OK <uuid>\n`, `-ERR CAUSE\n`), or the
    /// `command/reply` text if the switch refused the job.
    Job { link: Link, token: u64, body: Bytes },
    /// An event the link subscribed to (plain format). BACKGROUND_JOB events of this link's
    /// jobs become `Job`s instead; BACKGROUND_JOB and HEARTBEAT come only when subscribed.
    Event { link: Link, event: Event },
    /// A request that will never be answered: the link closed first (each unanswered token
    /// in ascending order, just before `Closed`), or the link was already gone.
    Lost { link: Link, token: u64 },
    /// The link is gone: the switch closed it (restart, DropConnections, a refused
    /// password, a killed listener), or it sent bytes we could not frame and we closed it.
    Closed { link: Link },
    /// The switch's `socket` application connected to us; `connect` was answered with the
    /// channel data (`data`), and `myevents` and `linger` were sent and accepted, one after
    /// the other, as the engine's session does before it reports the arrival. A socket whose
    /// handshake fails (the caller hung up meanwhile) is closed without any event, as the
    /// engine drops it without telling its loop.
    SocketOpened {
        socket: Socket,
        uuid: String,
        data: Event,
    },
    /// An event of the socket's channel (`myevents`).
    SocketEvent { socket: Socket, event: Event },
    /// The socket is over. `notice`: the switch sent `text/disconnect-notice` (the channel
    /// hung up and the socket lingers, or the socket is closing); the wire then sends `exit`
    /// as the engine's session does. Otherwise the connection closed without a notice
    /// (restart) or we dropped it over bytes we could not frame. Reported once.
    SocketClosed { socket: Socket, notice: bool },
    /// The switch finished a recording (`Output::WriteRecording`); nothing was written.
    Recording(RecordingJob),
}

/// The fake switch and the client ends of its connections, on an in-memory wire.
#[derive(Debug)]
pub struct Wire {
    sw: Switch,
    /// The latest time given to any call; times never go back.
    now: Instant,
    pipe: Pipe,
    out: Outbox,
    /// The switch's reader of each connection it still reads.
    readers: HashMap<ConnId, Reader>,
    /// Our end of each connection we still hold.
    peers: HashMap<ConnId, Peer>,
    next_token: u64,
    /// Whether a `socket` that dials us is accepted (false: our port is closed).
    refusing: bool,
    recorder_dials: RecorderDials,
}

/// How recorder legs (`sofia/<profile>/<user>@<ip>:<port>`) dialled on the wire come out:
/// the wire has no UDP, so it decides in place of a user agent server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecorderDials {
    /// The far end answers this long after the dial.
    Answer(Duration),
    /// The dial fails this long after it was sent, with this cause (e.g. `USER_BUSY` for a
    /// 486, `NORMAL_TEMPORARY_FAILURE` for a closed port).
    Fail { after: Duration, cause: String },
    /// Nothing answers: the originate times out (`originate_timeout`) with NO_ANSWER.
    Silent,
}

impl RecorderDials {
    /// The capture's UAS answered ~4.4 ms after the INVITE.
    pub const DEFAULT_ANSWER: Duration = Duration::from_millis(5);
}

impl Default for RecorderDials {
    fn default() -> Self {
        RecorderDials::Answer(Self::DEFAULT_ANSWER)
    }
}

impl Wire {
    /// A switch built as [`Switch::new`] builds it, with no connection yet and no latency.
    pub fn new(config: SimConfig, seed: u64, now: Instant) -> Wire {
        Wire {
            sw: Switch::new(config, seed, now),
            now,
            pipe: Pipe::default(),
            out: Outbox::default(),
            readers: HashMap::new(),
            peers: HashMap::new(),
            next_token: 1,
            refusing: false,
            recorder_dials: RecorderDials::default(),
        }
    }

    /// How recorder legs dialled from now on come out (see [`RecorderDials`]).
    pub fn with_recorder_dials(mut self, dials: RecorderDials) -> Wire {
        self.recorder_dials = dials;
        self
    }

    /// Changes how recorder legs dialled from now on come out.
    pub fn set_recorder_dials(&mut self, dials: RecorderDials) {
        self.recorder_dials = dials;
    }

    /// Delivers everything, in both directions, `latency` after it was sent.
    pub fn with_latency(mut self, latency: Duration) -> Wire {
        self.pipe.latency = latency;
        self
    }

    /// The switch, to look at (channels, variables, core uuid).
    pub fn switch(&self) -> &Switch {
        &self.sw
    }

    /// The switch itself. What it sends meanwhile goes on the wire at the next call.
    pub fn switch_mut(&mut self) -> &mut Switch {
        &mut self.sw
    }

    /// The latest time the wire was given.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Subscribed events dropped because [`MAX_QUEUED_EVENTS`] were waiting to be polled, or
    /// because [`MAX_HELD_EVENTS`] came during one socket's handshake.
    pub fn dropped_events(&self) -> u64 {
        self.out.dropped
    }

    /// Opens an inbound link: the switch greets it, we authenticate with `password`, ask for
    /// `core_uuid` and subscribe to `events` in plain format (FreeSWITCH's spelling, e.g.
    /// `CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE CUSTOM avmd::beep`; BACKGROUND_JOB and
    /// HEARTBEAT are added as the real client adds them). [`WireEvent::Connected`] says when
    /// it is done; a refused password shows as [`WireEvent::Closed`] without it. Fails only
    /// when the password or the event words cannot be put on the wire.
    pub fn connect(
        &mut self,
        now: Instant,
        password: &str,
        events: &str,
    ) -> Result<Link, EslError> {
        let auth = Command::Auth {
            password: password.to_owned(),
        }
        .to_bytes()?;
        let wanted = EventSet::parse(events);
        let mut set = wanted.clone();
        if !has_all(&wanted) {
            set.add_names(INTERNAL_EVENTS);
        }
        let subscribe = Command::Event {
            format: EventFormat::Plain,
            events: set,
        }
        .to_bytes()?;
        self.run_until(now);
        let t = self.now;
        let conn = self.sw.connection_opened(t, ConnKind::Inbound);
        self.readers.insert(conn, Reader::default());
        let link = LinkState::new(auth, subscribe, wanted);
        self.peers.insert(conn, Peer::new(Role::Link(link)));
        self.drain(t);
        self.run_until(t);
        Ok(Link(conn.0))
    }

    /// `api <line>`; the answer comes as [`WireEvent::Api`] with the returned token. Sent at
    /// once if the link is up, else when it is (as `esl::client` serves no request before).
    /// On a link that is gone the token is reported [`WireEvent::Lost`] at once. Fails when
    /// `line` cannot be put on the wire (a line break) or with [`MAX_UNANSWERED`] requests
    /// unanswered on the link ([`EslError::Overloaded`]).
    pub fn api(&mut self, now: Instant, link: Link, line: &str) -> Result<u64, EslError> {
        let bytes = Command::Api {
            command: line.to_owned(),
        }
        .to_bytes()?;
        self.request(now, link, false, |token| (Pending::Api(token), bytes))
    }

    /// `bgapi <line>` with a `Job-UUID` of ours, as `esl::client` sends it; the outcome
    /// comes as [`WireEvent::Job`] with the returned token. Fails as [`api`](Self::api)
    /// does, and with [`MAX_JOBS`] jobs of the link not yet reported.
    pub fn bgapi(&mut self, now: Instant, link: Link, line: &str) -> Result<u64, EslError> {
        // Checked once without the Job-UUID: ours is always one valid word.
        Command::BgApi {
            command: line.to_owned(),
            job_uuid: None,
        }
        .to_bytes()?;
        let line = line.to_owned();
        self.request(now, link, true, move |token| {
            let job = job_uuid(token);
            let bytes = Command::BgApi {
                command: line,
                job_uuid: Some(job.clone()),
            }
            .to_bytes()
            .unwrap_or_default();
            (Pending::BgApi { token, job }, bytes)
        })
    }

    /// Hangs the socket's channel up as `esl::server`'s `SessionHandle::hangup` does
    /// (`sendmsg` with `call-command: hangup`). Nothing is sent on a closed socket. Fails
    /// when `cause` is not one word, or with [`MAX_UNANSWERED`] commands of ours unanswered
    /// on the socket.
    pub fn socket_hangup(
        &mut self,
        now: Instant,
        socket: Socket,
        cause: &str,
    ) -> Result<(), EslError> {
        let bytes = Command::SendMsg {
            uuid: None,
            msg: SendMsg::Hangup {
                cause: cause.to_owned(),
            },
        }
        .to_bytes()?;
        self.socket_command(now, socket, bytes, false)
    }

    /// `exit` on the socket: the switch says goodbye (a disconnect notice, reported as
    /// [`WireEvent::SocketClosed`]), closes, and ends the call. Nothing is sent on a closed
    /// socket; fails only with [`MAX_UNANSWERED`] commands unanswered on it.
    pub fn socket_exit(&mut self, now: Instant, socket: Socket) -> Result<(), EslError> {
        // `exit` is a fixed word: encoding cannot fail.
        let bytes = Command::Exit.to_bytes().unwrap_or_default();
        self.socket_command(now, socket, bytes, true)
    }

    /// Closes our port (`false`) or opens it again: while closed, a `socket` that dials us is
    /// refused ("Connection refused"), as when switchyard is not running.
    pub fn set_accepting(&mut self, now: Instant, on: bool) {
        self.run_until(now);
        self.refusing = !on;
    }

    /// Closes our end of a link as a process that dies does: nothing more is read or
    /// reported on it (no `Lost`, no `Closed`), and the switch sees the close one latency later.
    pub fn drop_link(&mut self, now: Instant, link: Link) {
        self.drop_conn(now, link.conn());
    }

    /// Closes our end of a socket as a process that dies does (see [`Wire::drop_link`]).
    pub fn drop_socket(&mut self, now: Instant, socket: Socket) {
        self.drop_conn(now, socket.conn());
    }

    fn drop_conn(&mut self, now: Instant, conn: ConnId) {
        self.run_until(now);
        let t = self.now;
        if self.peers.remove(&conn).is_some() {
            self.pipe.send(t, Carried::ClientClosed(conn));
        }
        self.run_until(t);
    }

    /// Injects a fault into the switch (see [`Fault`]); its effects arrive over the wire.
    pub fn inject(&mut self, now: Instant, fault: Fault) {
        self.run_until(now);
        let t = self.now;
        self.sw.inject(t, fault);
        self.drain(t);
        self.run_until(t);
    }

    /// A caller arrives and the dialplan's `socket` application dials us (needs
    /// `SimConfig::inbound_target`). Returns the call's uuid.
    pub fn place_inbound_call(&mut self, now: Instant, call: InboundCall) -> Option<String> {
        self.run_until(now);
        let t = self.now;
        let uuid = self.sw.place_inbound_call(t, call);
        self.drain(t);
        self.run_until(t);
        uuid
    }

    /// The next event, in the order things happened.
    pub fn poll_event(&mut self) -> Option<WireEvent> {
        self.out.queue.pop_front()
    }

    /// When something happens next: a timer of the switch, or a delivery on the wire.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.pipe.next_at(), self.sw.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs everything due by `now`, each at its own time, in time order (a delivery before
    /// a switch timer due at the same instant). Every other call does this first, so nothing
    /// it does overtakes what was due before it.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.run_until(now);
    }

    // ---- the loop ------------------------------------------------------------------------

    fn run_until(&mut self, now: Instant) {
        // Outputs the caller caused through `switch_mut`.
        self.drain(self.now);
        self.now = self.now.max(now);
        let end = self.now;
        loop {
            let delivery = self.pipe.next_at().filter(|t| *t <= end);
            let timer = self.sw.poll_timeout().filter(|t| *t <= end);
            match (delivery, timer) {
                (Some(d), Some(t)) if t < d => self.fire(t),
                (Some(_), _) => {
                    if let Some(item) = self.pipe.items.pop_front() {
                        self.deliver(item);
                    }
                }
                (None, Some(t)) => self.fire(t),
                (None, None) => break,
            }
        }
    }

    fn fire(&mut self, t: Instant) {
        self.sw.handle_timeout(t);
        self.drain(t);
    }

    fn request(
        &mut self,
        now: Instant,
        link: Link,
        job: bool,
        make: impl FnOnce(u64) -> (Pending, Bytes),
    ) -> Result<u64, EslError> {
        self.run_until(now);
        let t = self.now;
        let conn = link.conn();
        let Some(Role::Link(st)) = self.peers.get_mut(&conn).map(|p| &mut p.role) else {
            let token = take_token(&mut self.next_token);
            self.out.status(WireEvent::Lost { link, token });
            return Ok(token);
        };
        if st.unanswered() >= MAX_UNANSWERED {
            return Err(EslError::Overloaded {
                limit: MAX_UNANSWERED,
            });
        }
        if job && st.jobs.len() >= MAX_JOBS {
            return Err(EslError::Overloaded { limit: MAX_JOBS });
        }
        let token = take_token(&mut self.next_token);
        let (pending, bytes) = make(token);
        if let Pending::BgApi { token, job } = &pending {
            // Registered before the command leaves, as the client does, so the job's result
            // finds its waiter whatever overtakes what.
            st.jobs.insert(job.clone(), *token);
        }
        if st.phase == LinkPhase::Up {
            st.fifo.push_back(pending);
            self.pipe.send(t, Carried::ToSwitch(conn, bytes));
        } else {
            st.queued.push_back((pending, bytes));
        }
        self.run_until(t);
        Ok(token)
    }

    fn socket_command(
        &mut self,
        now: Instant,
        socket: Socket,
        bytes: Bytes,
        exit: bool,
    ) -> Result<(), EslError> {
        self.run_until(now);
        let t = self.now;
        let conn = socket.conn();
        let Some(Role::Socket(st)) = self.peers.get_mut(&conn).map(|p| &mut p.role) else {
            debug!(
                socket = socket.0,
                "wire: command for a closed socket not sent"
            );
            return Ok(());
        };
        if st.fifo.len() >= MAX_UNANSWERED {
            return Err(EslError::Overloaded {
                limit: MAX_UNANSWERED,
            });
        }
        st.fifo.push_back(SocketCmd::Other);
        st.exit_sent |= exit;
        self.pipe.send(t, Carried::ToSwitch(conn, bytes));
        self.run_until(t);
        Ok(())
    }

    // ---- the switch's side ---------------------------------------------------------------

    /// Puts what the switch produced at `t` on the wire, in its order.
    fn drain(&mut self, t: Instant) {
        while let Some(out) = self.sw.poll_output() {
            match out {
                Output::Send(conn, msg) => {
                    let mut b = BytesMut::new();
                    msg.encode(&mut b);
                    if matches!(msg, Message::Event(_)) {
                        self.sw.handle_flushed(conn, 1);
                    }
                    self.pipe.send(t, Carried::ToClient(conn, b.freeze()));
                }
                Output::SendRaw(conn, bytes) => self.pipe.send(t, Carried::ToClient(conn, bytes)),
                Output::Close(conn) => {
                    self.readers.remove(&conn);
                    self.pipe.send(t, Carried::SwitchClosed(conn));
                }
                Output::Kill(conn, notice) => {
                    self.readers.remove(&conn);
                    let mut b = BytesMut::new();
                    notice.encode(&mut b);
                    self.pipe.send(t, Carried::ToClient(conn, b.freeze()));
                    self.pipe.send(t, Carried::SwitchClosed(conn));
                }
                Output::OpenOutbound { conn, addr, uuid } => {
                    debug!(%addr, %uuid, "wire: the socket application dials us");
                    self.pipe.send(t, Carried::Dialled { conn, uuid });
                }
                Output::WriteRecording(job) => self.out.status(WireEvent::Recording(job)),
                Output::Recorder(RecorderAction::Dial { leg, .. }) => {
                    match self.recorder_dials.clone() {
                        RecorderDials::Answer(after) => self
                            .pipe
                            .send_at(t + after, Carried::RecorderAnswer { leg, failed: None }),
                        RecorderDials::Fail { after, cause } => self.pipe.send_at(
                            t + after,
                            Carried::RecorderAnswer {
                                leg,
                                failed: Some(cause),
                            },
                        ),
                        RecorderDials::Silent => {}
                    }
                }
                Output::Recorder(RecorderAction::Audio { .. } | RecorderAction::HangUp { .. }) => {}
                // No network in virtual time: a fork's datagrams go nowhere.
                Output::Oreka(_) => {}
            }
        }
    }

    fn deliver(&mut self, item: Transit) {
        let t = item.at;
        match item.what {
            Carried::ToSwitch(conn, bytes) => self.switch_reads(t, conn, &bytes),
            Carried::Accepted(conn) => {
                self.readers.insert(conn, Reader::default());
                self.sw.outbound_connected(t, conn);
                self.drain(t);
            }
            Carried::ClientClosed(conn) => {
                // Unless the switch closed first and stopped reading.
                if self.readers.remove(&conn).is_some() {
                    self.sw.connection_closed(t, conn);
                    self.drain(t);
                }
            }
            Carried::ToClient(conn, bytes) => self.client_reads(t, conn, &bytes),
            Carried::SwitchClosed(conn) => self.client_sees_eof(t, conn),
            Carried::Dialled { conn, uuid } if self.refusing => {
                // Our port is closed: the switch's connect fails at once.
                debug!(%uuid, "wire: a socket dials us while we refuse");
                self.sw.outbound_failed(t, conn);
                self.drain(t);
            }
            Carried::Dialled { conn, uuid } => self.accept(t, conn, uuid),
            Carried::RecorderAnswer { leg, failed } => {
                match failed {
                    None => self.sw.recorder_answered(t, &leg),
                    Some(cause) => self.sw.recorder_failed(t, &leg, &cause),
                }
                self.drain(t);
            }
        }
    }

    /// The switch's reader: frames commands as `net`'s `SwitchCodec` does. Bytes it cannot
    /// frame end the connection, as `net` treats a reader error.
    fn switch_reads(&mut self, t: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(r) = self.readers.get_mut(&conn) else {
            // The switch stopped reading this connection: the bytes go nowhere.
            return;
        };
        r.buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        let mut broken = false;
        loop {
            match r.decoder.decode(&mut r.buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    debug!(conn = conn.0, error = %e, "wire: the switch cannot frame a command");
                    broken = true;
                    break;
                }
            }
        }
        for frame in frames {
            if !self.readers.contains_key(&conn) {
                break;
            }
            self.sw.handle_command(t, conn, frame);
            self.drain(t);
        }
        if broken && self.readers.remove(&conn).is_some() {
            self.sw.connection_closed(t, conn);
            self.drain(t);
        }
    }

    // ---- our side ------------------------------------------------------------------------

    /// The socket application reached us: accept, and send `connect` at once as
    /// `esl::server` does.
    fn accept(&mut self, t: Instant, conn: ConnId, uuid: String) {
        let mut st = SocketState::new(uuid);
        st.fifo.push_back(SocketCmd::Connect);
        self.peers.insert(conn, Peer::new(Role::Socket(st)));
        self.pipe.send(t, Carried::Accepted(conn));
        let connect = Command::Connect.to_bytes().unwrap_or_default();
        self.pipe.send(t, Carried::ToSwitch(conn, connect));
    }

    fn client_reads(&mut self, t: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(mut peer) = self.peers.remove(&conn) else {
            // We closed this connection already: late bytes go nowhere.
            return;
        };
        peer.rbuf.extend_from_slice(bytes);
        let mut cx = Cx {
            t,
            conn,
            pipe: &mut self.pipe,
            out: &mut self.out,
        };
        let flow = loop {
            match peer.codec.decode_message(&mut peer.rbuf) {
                Ok(Some(msg)) => {
                    if peer.role.on_message(&mut cx, msg) == Flow::Drop {
                        break Flow::Drop;
                    }
                }
                Ok(None) => break Flow::Keep,
                Err(e) => {
                    debug!(conn = conn.0, error = %e, "wire: undecodable bytes from the switch; dropping the connection");
                    break Flow::Drop;
                }
            }
        };
        match flow {
            Flow::Keep => {
                self.peers.insert(conn, peer);
            }
            Flow::Drop => {
                peer.role.closed(&mut cx);
                cx.pipe.send(t, Carried::ClientClosed(conn));
            }
        }
    }

    fn client_sees_eof(&mut self, t: Instant, conn: ConnId) {
        let Some(mut peer) = self.peers.remove(&conn) else {
            return;
        };
        let mut cx = Cx {
            t,
            conn,
            pipe: &mut self.pipe,
            out: &mut self.out,
        };
        peer.role.closed(&mut cx);
    }
}

fn take_token(next: &mut u64) -> u64 {
    let token = *next;
    *next += 1;
    token
}

/// The Job-UUID of a token: uuid-shaped like the client's (random) ones, but deterministic.
fn job_uuid(token: u64) -> String {
    format!("00000000-0000-4000-8000-{token:012x}")
}

fn has_all(set: &EventSet) -> bool {
    set.names.iter().any(|n| n.eq_ignore_ascii_case("ALL"))
}

// ---- the wire ----------------------------------------------------------------------------

/// What is on the wire, in delivery order.
#[derive(Debug, Default)]
struct Pipe {
    latency: Duration,
    items: VecDeque<Transit>,
}

impl Pipe {
    fn send(&mut self, sent: Instant, what: Carried) {
        self.send_at(sent + self.latency, what);
    }

    /// Puts `what` on the wire for delivery at `at` (after whatever is due by then).
    fn send_at(&mut self, at: Instant, what: Carried) {
        // Send times never go back and the latency is fixed, so this appends; the search only
        // keeps the order right should either ever change.
        let pos = self
            .items
            .iter()
            .rposition(|x| x.at <= at)
            .map_or(0, |i| i + 1);
        self.items.insert(pos, Transit { at, what });
    }

    fn next_at(&self) -> Option<Instant> {
        self.items.front().map(|x| x.at)
    }
}

#[derive(Debug)]
struct Transit {
    at: Instant,
    what: Carried,
}

#[derive(Debug)]
enum Carried {
    /// Command bytes, client to switch.
    ToSwitch(ConnId, Bytes),
    /// Our accept of a socket reached the switch (`outbound_connected`).
    Accepted(ConnId),
    /// We closed the connection: the switch's reader sees the end.
    ClientClosed(ConnId),
    /// Message bytes, switch to client.
    ToClient(ConnId, Bytes),
    /// The switch closed the connection: we read the end after what came before.
    SwitchClosed(ConnId),
    /// The socket application connects to us.
    Dialled { conn: ConnId, uuid: String },
    /// A recorder leg's far end answers (or the dial fails with this cause).
    RecorderAnswer { leg: String, failed: Option<String> },
}

/// The events for the caller.
#[derive(Debug, Default)]
struct Outbox {
    queue: VecDeque<WireEvent>,
    dropped: u64,
}

impl Outbox {
    /// Answers, closes, openings: never dropped (see the module doc for their bound).
    fn status(&mut self, ev: WireEvent) {
        self.queue.push_back(ev);
    }

    /// A subscribed event: dropped past the bound, as the client's event sink drops.
    fn data(&mut self, ev: WireEvent) {
        if self.queue.len() < MAX_QUEUED_EVENTS {
            self.queue.push_back(ev);
            return;
        }
        self.dropped += 1;
        if self.dropped.is_power_of_two() {
            warn!(
                dropped = self.dropped,
                bound = MAX_QUEUED_EVENTS,
                "wire: events not polled; dropping new ones"
            );
        }
    }
}

/// The switch's end of a connection: what `net`'s reader task does.
#[derive(Debug, Default)]
struct Reader {
    decoder: CommandDecoder,
    buf: BytesMut,
}

/// What a connection handler needs: the time, the connection, the wire and the outbox.
struct Cx<'a> {
    t: Instant,
    conn: ConnId,
    pipe: &'a mut Pipe,
    out: &'a mut Outbox,
}

impl Cx<'_> {
    fn send(&mut self, bytes: Bytes) {
        self.pipe.send(self.t, Carried::ToSwitch(self.conn, bytes));
    }
}

/// Whether our end keeps the connection after a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Keep,
    /// We close it: the stream is out of step or the peer broke the protocol.
    Drop,
}

/// Our end of a connection. The decoder's limits bound `rbuf` (a frame past them is an
/// error, and the connection is dropped).
#[derive(Debug)]
struct Peer {
    codec: EslCodec,
    rbuf: BytesMut,
    role: Role,
}

impl Peer {
    fn new(role: Role) -> Peer {
        Peer {
            codec: EslCodec::default(),
            rbuf: BytesMut::new(),
            role,
        }
    }
}

#[derive(Debug)]
enum Role {
    Link(LinkState),
    Socket(SocketState),
}

impl Role {
    fn on_message(&mut self, cx: &mut Cx<'_>, msg: Message) -> Flow {
        match self {
            Role::Link(st) => st.on_message(cx, msg),
            Role::Socket(st) => st.on_message(cx, msg),
        }
    }

    /// The connection is gone (either end closed it).
    fn closed(&mut self, cx: &mut Cx<'_>) {
        match self {
            Role::Link(st) => st.closed(cx),
            Role::Socket(st) => st.closed(cx),
        }
    }
}

// ---- an inbound link (esl::client) -------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinkPhase {
    /// Waiting for `auth/request`.
    Greeting,
    /// `auth` sent.
    Auth,
    /// `global_getvar core_uuid` and `event` sent; this many replies to go.
    Setup(u8),
    Up,
}

/// Who waits for the next reply: FreeSWITCH answers one connection's commands in order.
#[derive(Debug)]
enum Pending {
    CoreUuid,
    Subscribe,
    Api(u64),
    BgApi { token: u64, job: String },
}

#[derive(Debug)]
struct LinkState {
    phase: LinkPhase,
    auth: Bytes,
    subscribe: Bytes,
    /// What the caller subscribed to (our own additions are not delivered).
    wanted: EventSet,
    fifo: VecDeque<Pending>,
    /// Requests made before the link is up, with their bytes.
    queued: VecDeque<(Pending, Bytes)>,
    /// Job-UUID -> token, from the request until the BACKGROUND_JOB (or a refusal).
    jobs: HashMap<String, u64>,
    core_uuid: Option<String>,
    core_from_event: bool,
    connected: bool,
}

impl LinkState {
    fn new(auth: Bytes, subscribe: Bytes, wanted: EventSet) -> LinkState {
        LinkState {
            phase: LinkPhase::Greeting,
            auth,
            subscribe,
            wanted,
            fifo: VecDeque::new(),
            queued: VecDeque::new(),
            jobs: HashMap::new(),
            core_uuid: None,
            core_from_event: false,
            connected: false,
        }
    }

    fn unanswered(&self) -> usize {
        self.fifo.len() + self.queued.len()
    }

    fn link(cx: &Cx<'_>) -> Link {
        Link(cx.conn.0)
    }

    fn on_message(&mut self, cx: &mut Cx<'_>, msg: Message) -> Flow {
        match (self.phase, msg) {
            (LinkPhase::Greeting, Message::AuthRequest) => {
                cx.send(std::mem::take(&mut self.auth));
                self.phase = LinkPhase::Auth;
                Flow::Keep
            }
            (LinkPhase::Auth, Message::CommandReply(r)) if r.is_ok() => {
                self.setup(cx);
                Flow::Keep
            }
            (LinkPhase::Auth, Message::CommandReply(r)) => {
                debug!(reply = %r.text(), "wire: the switch refused our password");
                Flow::Drop
            }
            (LinkPhase::Greeting | LinkPhase::Auth, other) => {
                debug!(got = %other.content_type(), "wire: unexpected message before auth");
                Flow::Drop
            }
            (_, Message::CommandReply(r)) => self.answer(cx, Answer::Reply(r)),
            (_, Message::ApiResponse(body)) => self.answer(cx, Answer::Api(body)),
            (_, Message::Event(e)) => {
                self.on_event(cx, e);
                Flow::Keep
            }
            // The close follows; what is still on the wire is read first.
            (_, Message::DisconnectNotice(_)) => Flow::Keep,
            (_, Message::AuthRequest | Message::RudeRejection(_)) => Flow::Drop,
            // We never ask for logs; unknown content types are skipped as the client skips
            // them.
            (_, Message::LogData(_) | Message::Other { .. }) => Flow::Keep,
        }
    }

    /// After auth, as `esl::client` queues it: `core_uuid` first, so that `Connected` comes
    /// before any event, then the subscription, back to back.
    fn setup(&mut self, cx: &mut Cx<'_>) {
        let core = Command::Api {
            command: "global_getvar core_uuid".into(),
        };
        // Fixed words: encoding cannot fail.
        cx.send(core.to_bytes().unwrap_or_default());
        self.fifo.push_back(Pending::CoreUuid);
        cx.send(self.subscribe.clone());
        self.fifo.push_back(Pending::Subscribe);
        self.phase = LinkPhase::Setup(2);
    }

    fn answer(&mut self, cx: &mut Cx<'_>, answer: Answer) -> Flow {
        let Some(pending) = self.fifo.pop_front() else {
            debug!("wire: a reply with no command awaiting it");
            return Flow::Drop;
        };
        let link = Self::link(cx);
        match pending {
            Pending::CoreUuid => {
                let uuid = match &answer {
                    Answer::Api(body) => {
                        let text = String::from_utf8_lossy(body).trim().to_owned();
                        (!text.is_empty() && !text.starts_with("-ERR")).then_some(text)
                    }
                    Answer::Reply(_) => None,
                };
                match uuid {
                    Some(u) => self.core_uuid = Some(u),
                    None => self.core_from_event = true,
                }
                self.setup_step_done(cx);
            }
            Pending::Subscribe => {
                if let Answer::Reply(r) = &answer
                    && !r.is_ok()
                {
                    warn!(reply = %r.text(), "wire: the switch refused the subscription");
                }
                self.setup_step_done(cx);
            }
            Pending::Api(token) => cx.out.status(WireEvent::Api {
                link,
                token,
                body: answer.into_body(),
            }),
            Pending::BgApi { token, job } => match answer {
                Answer::Reply(r) if r.is_ok() => {}
                other => {
                    self.jobs.remove(&job);
                    cx.out.status(WireEvent::Job {
                        link,
                        token,
                        body: other.into_body(),
                    });
                }
            },
        }
        Flow::Keep
    }

    fn setup_step_done(&mut self, cx: &mut Cx<'_>) {
        let LinkPhase::Setup(left) = self.phase else {
            return;
        };
        if left > 1 {
            self.phase = LinkPhase::Setup(left - 1);
            return;
        }
        self.phase = LinkPhase::Up;
        self.report_connected(cx);
        for (pending, bytes) in std::mem::take(&mut self.queued) {
            self.fifo.push_back(pending);
            cx.send(bytes);
        }
    }

    fn report_connected(&mut self, cx: &mut Cx<'_>) {
        if self.connected || self.phase != LinkPhase::Up {
            return;
        }
        if let Some(core_uuid) = self.core_uuid.clone() {
            self.connected = true;
            cx.out.status(WireEvent::Connected {
                link: Self::link(cx),
                core_uuid,
            });
        }
    }

    fn on_event(&mut self, cx: &mut Cx<'_>, event: Event) {
        if self.core_from_event
            && let Some(u) = event.core_uuid()
        {
            self.core_from_event = false;
            self.core_uuid = Some(u.into_owned());
            self.report_connected(cx);
        }
        let link = Self::link(cx);
        let name = event.name().unwrap_or_default().into_owned();
        if name == "BACKGROUND_JOB"
            && let Some(token) = event.job_uuid().and_then(|j| self.jobs.remove(j.as_ref()))
        {
            let body = event.body().cloned().unwrap_or_default();
            cx.out.status(WireEvent::Job { link, token, body });
            return;
        }
        let internal = INTERNAL_EVENTS.contains(&name.as_str());
        let wanted = has_all(&self.wanted)
            || self
                .wanted
                .names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&name));
        if internal && !wanted {
            return;
        }
        cx.out.data(WireEvent::Event { link, event });
    }

    fn closed(&mut self, cx: &mut Cx<'_>) {
        let link = Self::link(cx);
        let mut tokens: BTreeSet<u64> = self.jobs.values().copied().collect();
        for pending in self.fifo.iter().chain(self.queued.iter().map(|(p, _)| p)) {
            match pending {
                Pending::Api(token) | Pending::BgApi { token, .. } => {
                    tokens.insert(*token);
                }
                Pending::CoreUuid | Pending::Subscribe => {}
            }
        }
        for token in tokens {
            cx.out.status(WireEvent::Lost { link, token });
        }
        cx.out.status(WireEvent::Closed { link });
    }
}

/// What answered a command.
#[derive(Debug)]
enum Answer {
    Reply(Reply),
    Api(Bytes),
}

impl Answer {
    fn into_body(self) -> Bytes {
        match self {
            Answer::Api(body) => body,
            Answer::Reply(r) => Bytes::from(r.text().into_owned()),
        }
    }
}

// ---- an outbound socket (esl::server + the engine's session) -----------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SocketPhase {
    /// `connect` sent; waiting for the channel data.
    Connecting,
    /// `myevents` sent.
    MyEvents,
    /// `linger` sent.
    Linger,
    /// Reported open.
    Open,
    /// Reported closed; waiting for the switch to close.
    Over,
}

/// Our commands on a socket, in order, to pair replies with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SocketCmd {
    Connect,
    MyEvents,
    Linger,
    /// The caller's (hangup, exit): their replies are not reported.
    Other,
}

#[derive(Debug)]
enum Held {
    Event(Event),
    Notice,
}

#[derive(Debug)]
struct SocketState {
    phase: SocketPhase,
    uuid: String,
    data: Option<Event>,
    fifo: VecDeque<SocketCmd>,
    /// What came during the handshake, delivered after `SocketOpened` (the engine's session
    /// queues it the same way and reads it after reporting the arrival).
    held: VecDeque<Held>,
    exit_sent: bool,
}

impl SocketState {
    fn new(uuid: String) -> SocketState {
        SocketState {
            phase: SocketPhase::Connecting,
            uuid,
            data: None,
            fifo: VecDeque::new(),
            held: VecDeque::new(),
            exit_sent: false,
        }
    }

    fn socket(cx: &Cx<'_>) -> Socket {
        Socket(cx.conn.0)
    }

    fn on_message(&mut self, cx: &mut Cx<'_>, msg: Message) -> Flow {
        match msg {
            Message::CommandReply(r) => self.reply(cx, r),
            // We send no `api` on sockets: an answer to one pairs with nothing we report.
            Message::ApiResponse(_) => {
                self.fifo.pop_front();
                Flow::Keep
            }
            Message::Event(e) => self.event(cx, e),
            Message::DisconnectNotice(_) => self.notice(cx),
            // `connect` must be answered by the channel data: anything else before it is a
            // protocol error, as `esl::server` treats it.
            _ if self.phase == SocketPhase::Connecting => Flow::Drop,
            // Logs and unknown content types are not for us.
            _ => Flow::Keep,
        }
    }

    fn reply(&mut self, cx: &mut Cx<'_>, reply: Reply) -> Flow {
        let cmd = self.fifo.pop_front();
        match (cmd, self.phase) {
            (Some(SocketCmd::Connect), SocketPhase::Connecting) => {
                if !reply.is_ok() {
                    debug!(reply = %reply.text(), "wire: connect refused");
                    return Flow::Drop;
                }
                let data = reply.into_channel_data();
                let Some(uuid) = data
                    .unique_id()
                    .or_else(|| data.header("Channel-Unique-ID"))
                    .map(|u| u.into_owned())
                else {
                    debug!("wire: the connect reply carries no Unique-ID");
                    return Flow::Drop;
                };
                self.uuid = uuid;
                self.data = Some(data);
                self.next_step(cx, SocketCmd::MyEvents, SocketPhase::MyEvents);
                Flow::Keep
            }
            (Some(SocketCmd::MyEvents), SocketPhase::MyEvents) if reply.is_ok() => {
                self.next_step(cx, SocketCmd::Linger, SocketPhase::Linger);
                Flow::Keep
            }
            (Some(SocketCmd::Linger), SocketPhase::Linger) if reply.is_ok() => {
                self.open(cx);
                Flow::Keep
            }
            (Some(SocketCmd::MyEvents | SocketCmd::Linger), _) => {
                // The engine's session gives up on the caller, quietly.
                debug!(reply = %reply.text(), "wire: socket setup refused; the caller is gone");
                Flow::Drop
            }
            (None, SocketPhase::Connecting) => Flow::Drop,
            _ => Flow::Keep,
        }
    }

    fn next_step(&mut self, cx: &mut Cx<'_>, cmd: SocketCmd, phase: SocketPhase) {
        let command = match cmd {
            SocketCmd::MyEvents => Command::MyEvents {
                format: None,
                uuid: None,
            },
            _ => Command::Linger(None),
        };
        // Fixed words: encoding cannot fail.
        cx.send(command.to_bytes().unwrap_or_default());
        self.fifo.push_back(cmd);
        self.phase = phase;
    }

    fn open(&mut self, cx: &mut Cx<'_>) {
        self.phase = SocketPhase::Open;
        let socket = Self::socket(cx);
        cx.out.status(WireEvent::SocketOpened {
            socket,
            uuid: self.uuid.clone(),
            data: self
                .data
                .take()
                .unwrap_or_else(|| Event::new("CHANNEL_DATA")),
        });
        while let Some(held) = self.held.pop_front() {
            match held {
                Held::Event(event) => cx.out.data(WireEvent::SocketEvent { socket, event }),
                Held::Notice => {
                    self.notice(cx);
                    break;
                }
            }
        }
    }

    fn event(&mut self, cx: &mut Cx<'_>, event: Event) -> Flow {
        match self.phase {
            SocketPhase::Connecting => return Flow::Drop,
            SocketPhase::MyEvents | SocketPhase::Linger => self.hold(cx, Held::Event(event)),
            SocketPhase::Open => cx.out.data(WireEvent::SocketEvent {
                socket: Self::socket(cx),
                event,
            }),
            SocketPhase::Over => {}
        }
        Flow::Keep
    }

    fn hold(&mut self, cx: &mut Cx<'_>, held: Held) {
        if self.held.len() < MAX_HELD_EVENTS {
            self.held.push_back(held);
        } else {
            cx.out.dropped += 1;
            warn!(
                socket = cx.conn.0,
                bound = MAX_HELD_EVENTS,
                "wire: socket event during the handshake dropped"
            );
        }
    }

    /// The disconnect notice: the channel is over (linger) or the socket is closing. Reported,
    /// then `exit`, as the engine's session leaves once it has seen it.
    fn notice(&mut self, cx: &mut Cx<'_>) -> Flow {
        match self.phase {
            SocketPhase::Connecting => return Flow::Drop,
            SocketPhase::MyEvents | SocketPhase::Linger => self.hold(cx, Held::Notice),
            SocketPhase::Open => {
                self.phase = SocketPhase::Over;
                cx.out.status(WireEvent::SocketClosed {
                    socket: Self::socket(cx),
                    notice: true,
                });
                if !self.exit_sent {
                    self.exit_sent = true;
                    self.fifo.push_back(SocketCmd::Other);
                    cx.send(Command::Exit.to_bytes().unwrap_or_default());
                }
            }
            SocketPhase::Over => {}
        }
        Flow::Keep
    }

    fn closed(&mut self, cx: &mut Cx<'_>) {
        if self.phase == SocketPhase::Open {
            self.phase = SocketPhase::Over;
            cx.out.status(WireEvent::SocketClosed {
                socket: Self::socket(cx),
                notice: false,
            });
        }
    }
}

#[cfg(test)]
mod tests;
