//! One outbound connection: the `connect` handshake, then a reader task and a writer task.
//!
//! ```text
//!  SessionHandle ──commands (bounded)──▶ writer task ──bytes──▶ switch
//!        ▲                                  │ registers the reply waiter, then writes
//!        │ replies (FIFO), execute results  ▼
//!  SessionEvents ◀──events (bounded)──── reader task ◀──bytes── switch
//! ```
//! The reader owns the read half and never waits for anyone: replies go to their waiters,
//! events to a bounded queue whose overflow drops the newest event (counted, then reported
//! as [`SessionEvent::Lagged`]). FreeSWITCH kills listeners that leave events unread, so not
//! reading because a consumer is slow is the one thing this design rules out.
//!
//! Every command gets exactly one `command/reply` (or `api/response` for `api`), in order, so
//! replies are matched first-in first-out. The writer registers a command's waiter before the
//! command's bytes leave, so even an instant reply finds it.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::codec::FramedRead;
use tracing::{Instrument, debug, info, warn};

use super::config::SessionConfig;
use crate::codec::{
    Command, DisconnectNotice, Disposition, EslCodec, Event, Message, Reply, SendMsg,
};
use crate::error::EslError;

type Result<T, E = EslError> = std::result::Result<T, E>;

/// How long the writer gives a stream to finish its shutdown (a TLS close, say) once the
/// session is over. Plain TCP finishes at once.
const WRITE_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// Something that happened on the session, in the order the switch sent it.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionEvent {
    /// An event (after `myevents`, the channel's own events).
    Event(Event),
    /// `text/disconnect-notice`. `Linger`: the channel hung up and the socket stays open so the
    /// last events can be read; `Disconnect`: the socket is about to close. After either,
    /// nothing more runs on the channel: pending [`execute`](SessionHandle::execute) calls have
    /// failed with [`EslError::ConnectionClosed`].
    Disconnect {
        disposition: Option<Disposition>,
        /// How long the switch keeps the socket open; `None` for `Linger-Time: -1` (until we
        /// [`exit`](SessionHandle::exit)) or when not given.
        linger_time: Option<Duration>,
        notice: DisconnectNotice,
    },
    /// `dropped` events were dropped because the queue was full; delivered as soon as there
    /// is room again and the next message arrives.
    Lagged { dropped: u64 },
    /// The server is shutting down: finish up (hang up or [`exit`](SessionHandle::exit))
    /// before its grace period ends. Pending executions have failed with
    /// [`EslError::Shutdown`], and new ones are refused; other commands still work.
    Shutdown,
    /// The connection is gone; the last event. `error` says why when it was not an orderly
    /// close (a malformed frame from the switch, an i/o error).
    Closed { error: Option<EslError> },
    /// Anything else the switch sent (`log/data`, a reply nobody waited for, unknown types).
    Other(Message),
}

/// Ties a session to its server (absent for sessions built with
/// [`OutboundSession::from_stream`]).
#[derive(Debug)]
pub(crate) struct ServerLink {
    pub(crate) state: watch::Receiver<ServerState>,
    /// The session's slot in `max_connections`, given back when the connection is gone.
    pub(crate) permit: OwnedSemaphorePermit,
}

/// The server's lifecycle as sessions see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerState {
    Running,
    /// Graceful shutdown began: sessions get [`SessionEvent::Shutdown`].
    Draining,
    /// The grace period is over: sessions close now.
    Closing,
}

/// A session that has completed the `connect` handshake: the channel data, commands (through
/// [`Deref`](std::ops::Deref) to [`SessionHandle`]) and events.
///
/// To wait for events and run commands concurrently, [`into_parts`](Self::into_parts) it.
/// The connection closes when every handle is dropped.
#[derive(Debug)]
pub struct OutboundSession {
    handle: SessionHandle,
    events: SessionEvents,
}

impl OutboundSession {
    /// Runs the outbound protocol over an already connected stream: sends `connect` at once
    /// and waits (up to `connect_timeout`) for the channel data. The server does this for
    /// every accepted socket; this is for other transports and tests. Must be called inside a
    /// tokio runtime (it spawns the reader and writer tasks).
    pub async fn from_stream<S>(io: S, config: SessionConfig) -> Result<OutboundSession>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        start(io, config, None, None).await
    }

    /// The command side (cheap to clone).
    pub fn handle(&self) -> &SessionHandle {
        &self.handle
    }

    /// The next event; `None` once the connection is gone and every event was read.
    pub async fn next_event(&mut self) -> Option<SessionEvent> {
        self.events.recv().await
    }

    /// Splits commands from events, so a task can wait on both at once.
    pub fn into_parts(self) -> (SessionHandle, SessionEvents) {
        (self.handle, self.events)
    }
}

impl std::ops::Deref for OutboundSession {
    type Target = SessionHandle;
    fn deref(&self) -> &SessionHandle {
        &self.handle
    }
}

/// The bounded event queue of one session (see [`SessionConfig::event_queue`]).
#[derive(Debug)]
pub struct SessionEvents {
    rx: mpsc::Receiver<SessionEvent>,
}

impl SessionEvents {
    /// The next event; `None` once the connection is gone and every event was read.
    pub async fn recv(&mut self) -> Option<SessionEvent> {
        self.rx.recv().await
    }

    /// An event if one is queued.
    pub fn try_recv(&mut self) -> Option<SessionEvent> {
        self.rx.try_recv().ok()
    }
}

impl futures_util::Stream for SessionEvents {
    type Item = SessionEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SessionEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// Commands to one outbound session. Clones share the connection, which closes when the last
/// clone (and the [`OutboundSession`]) is dropped.
#[derive(Clone)]
pub struct SessionHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    shared: Arc<Shared>,
    commands: mpsc::Sender<WriteRequest>,
    channel_data: Event,
    uuid: String,
    peer: Option<SocketAddr>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("uuid", &self.inner.uuid)
            .field("peer", &self.inner.peer)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl SessionHandle {
    /// The channel data the switch sent in answer to `connect` (Event-Name CHANNEL_DATA, all
    /// `Channel-*`, `Caller-*` and `variable_*` headers, plus `Socket-Mode` and `Control`).
    pub fn channel_data(&self) -> &Event {
        &self.inner.channel_data
    }

    /// The channel's uuid (`Unique-ID`, else `Channel-Unique-ID`).
    pub fn uuid(&self) -> &str {
        &self.inner.uuid
    }

    /// The switch's address, for sessions the server accepted.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.peer
    }

    /// Events dropped so far because the event queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.inner.shared.dropped_events.load(Ordering::Relaxed)
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.inner.shared.lock().closed.is_some()
    }

    /// Whether the switch sent a disconnect notice (the channel hung up or the socket is
    /// closing).
    pub fn is_hung_up(&self) -> bool {
        self.inner.shared.lock().hung_up
    }

    /// Sends any command and returns its `command/reply`. A `-ERR` reply is returned, not an
    /// error: look at [`Reply::is_ok`]. `api` answers differently; use [`api`](Self::api).
    pub async fn send(&self, cmd: Command) -> Result<Reply> {
        if matches!(cmd, Command::Api { .. }) {
            return Err(EslError::InvalidCommand {
                reason: "api is answered by api/response; use SessionHandle::api".into(),
            });
        }
        match self.roundtrip(&cmd).await? {
            Answer::Reply(r) => Ok(r),
            Answer::Api(_) => Err(EslError::Protocol {
                reason: format!("api/response in answer to {}", cmd.describe()),
            }),
        }
    }

    /// `api <command>` on this socket: the command's output (which starts with `-ERR` when
    /// the command failed; FreeSWITCH reports failures in-band).
    pub async fn api(&self, command: &str) -> Result<Bytes> {
        let cmd = Command::Api {
            command: command.to_owned(),
        };
        match self.roundtrip(&cmd).await? {
            Answer::Api(body) => Ok(body),
            Answer::Reply(r) => Err(EslError::Protocol {
                reason: format!("command/reply {:?} in answer to api", r.text()),
            }),
        }
    }

    /// `myevents`: this channel's events, in plain format.
    pub async fn myevents(&self) -> Result<()> {
        self.expect_ok(Command::MyEvents {
            format: None,
            uuid: None,
        })
        .await
    }

    /// `linger [<seconds>]`: keep the socket open after hangup (`None`: until we
    /// [`exit`](Self::exit)) so the last events are not lost.
    pub async fn linger(&self, time: Option<Duration>) -> Result<()> {
        self.expect_ok(Command::Linger(time)).await
    }

    /// `nolinger`.
    pub async fn nolinger(&self) -> Result<()> {
        self.expect_ok(Command::NoLinger).await
    }

    /// `divert_events on|off`.
    pub async fn divert_events(&self, on: bool) -> Result<()> {
        self.expect_ok(Command::DivertEvents(on)).await
    }

    /// `filter <header> <value>`.
    pub async fn filter(&self, header: &str, value: &str) -> Result<()> {
        self.expect_ok(Command::Filter {
            header: header.to_owned(),
            value: value.to_owned(),
        })
        .await
    }

    /// `resume`: the dialplan goes on after the socket closes.
    pub async fn resume(&self) -> Result<()> {
        self.expect_ok(Command::Resume).await
    }

    /// Hangs the channel up (`sendmsg` `call-command: hangup`).
    pub async fn hangup(&self, cause: &str) -> Result<()> {
        self.expect_ok(Command::SendMsg {
            uuid: None,
            msg: SendMsg::Hangup {
                cause: cause.to_owned(),
            },
        })
        .await
    }

    /// Runs a dialplan application and waits for its CHANNEL_EXECUTE_COMPLETE, which is
    /// returned (`Application-Response` holds the result, e.g. `FILE PLAYED`).
    ///
    /// The execution is tagged with a fresh `Event-UUID` and the completion is recognised by
    /// `Application-UUID` alone: application names repeat, and FreeSWITCH even reports stale
    /// responses under them. The waiter is registered before the command is written.
    ///
    /// Fails with [`EslError::Rejected`] on a `-ERR` reply, [`EslError::ConnectionClosed`]
    /// when the channel hangs up or the socket closes first, [`EslError::Shutdown`] when the
    /// server shuts down, [`EslError::Timeout`] after `execute_timeout`, and
    /// [`EslError::Overloaded`] when `max_pending_executes` executions are already waiting.
    pub async fn execute(&self, app: &str, arg: Option<&str>) -> Result<Event> {
        self.execute_with(app, arg, ExecuteOptions::default()).await
    }

    /// [`execute`](Self::execute) with `sendmsg` options: `event-lock` (run before any later
    /// message), FreeSWITCH's `async` header, and `loops` (repeat count, e.g. hold music).
    pub async fn execute_with(
        &self,
        app: &str,
        arg: Option<&str>,
        options: ExecuteOptions,
    ) -> Result<Event> {
        let id = uuid::Uuid::new_v4().to_string();
        let done = self.register_execute(&id)?;
        // Removes the waiter however this call ends (error, timeout, or the caller dropping
        // the future), so abandoned executions never fill the table.
        let _guard = ExecuteGuard {
            shared: &self.inner.shared,
            id: &id,
        };
        self.expect_ok(execute_command(app, arg, &id, options))
            .await?;
        let after = self.inner.shared.config.execute_timeout;
        match timeout(after, done).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.end_error()),
            Err(_) => Err(EslError::Timeout {
                what: "CHANNEL_EXECUTE_COMPLETE",
                after,
            }),
        }
    }

    /// Queues a dialplan application without waiting for it to finish; returns the
    /// `Event-UUID` it was tagged with, which its CHANNEL_EXECUTE and CHANNEL_EXECUTE_COMPLETE
    /// events carry as `Application-UUID`. (This is not FreeSWITCH's `async: true` header.)
    pub async fn execute_async(&self, app: &str, arg: Option<&str>) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        self.expect_ok(execute_command(app, arg, &id, ExecuteOptions::default()))
            .await?;
        Ok(id)
    }

    /// Leaves gracefully: `exit`, then waits for the switch to answer `+OK bye`, send its
    /// disconnect notice (delivered as an event) and close. Returns once the connection is
    /// gone. If the switch does not close within `exit_timeout` the socket is closed anyway
    /// and [`EslError::Timeout`] says so. Leaving an already closed session is `Ok`.
    pub async fn exit(&self) -> Result<()> {
        let after = self.inner.shared.config.exit_timeout;
        let leave = async {
            // Whatever the reply (or none, when the switch closes first), we are leaving.
            if let Err(e) = self.send(Command::Exit).await {
                debug!(error = %e, "exit got no reply");
            }
            self.closed().await;
        };
        if timeout(after, leave).await.is_ok() {
            return Ok(());
        }
        debug!("switch did not close the socket after exit; closing it");
        self.close();
        self.closed().await;
        Err(EslError::Timeout {
            what: "the switch to close the socket after exit",
            after,
        })
    }

    /// Drops the connection now, without `exit`. Pending calls fail with
    /// [`EslError::ConnectionClosed`].
    pub fn close(&self) {
        self.inner.shared.close.send_replace(true);
    }

    /// Waits until the connection is gone.
    pub async fn closed(&self) {
        let mut done = self.inner.shared.done.subscribe();
        // The sender lives in `Shared`, which `self` keeps alive, so this only ends when done.
        let _ = done.wait_for(|d| *d).await;
    }

    // ---- internals ------------------------------------------------------------------------

    async fn expect_ok(&self, cmd: Command) -> Result<()> {
        let reply = self.send(cmd.clone()).await?;
        if reply.is_ok() {
            return Ok(());
        }
        Err(EslError::Rejected {
            command: cmd.describe(),
            reply: reply.text().trim_end().to_owned(),
        })
    }

    /// Queues the command for the writer and waits for its answer, all within
    /// `reply_timeout`.
    async fn roundtrip(&self, cmd: &Command) -> Result<Answer> {
        // Encoding here means an invalid command fails before anything is queued.
        let bytes = cmd.to_bytes()?;
        if let Some(end) = self.inner.shared.lock().closed {
            return Err(end.error());
        }
        let (tx, rx) = oneshot::channel();
        let after = self.inner.shared.config.reply_timeout;
        let exchange = async {
            self.inner
                .commands
                .send(WriteRequest { bytes, reply: tx })
                .await
                .ok()?;
            rx.await.ok()
        };
        match timeout(after, exchange).await {
            Ok(Some(answer)) => answer,
            // The writer or reader ended and dropped our request.
            Ok(None) => Err(self.end_error()),
            Err(_) => Err(EslError::Timeout {
                what: "command reply",
                after,
            }),
        }
    }

    fn register_execute(&self, id: &str) -> Result<oneshot::Receiver<Result<Event>>> {
        let shared = &self.inner.shared;
        let mut st = shared.lock();
        if let Some(end) = st.closed {
            return Err(end.error());
        }
        if st.draining {
            return Err(EslError::Shutdown);
        }
        if st.hung_up {
            return Err(EslError::ConnectionClosed);
        }
        let limit = shared.config.max_pending_executes;
        if st.executes.len() >= limit {
            return Err(EslError::Overloaded { limit });
        }
        let (tx, rx) = oneshot::channel();
        st.executes.insert(id.to_owned(), tx);
        Ok(rx)
    }

    /// The error for "the session ended under us".
    fn end_error(&self) -> EslError {
        let st = self.inner.shared.lock();
        match st.closed {
            Some(end) => end.error(),
            None if st.draining => EslError::Shutdown,
            None => EslError::ConnectionClosed,
        }
    }
}

/// `sendmsg execute` options beyond the application and its argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecuteOptions {
    /// `event-lock: true`: the application runs to completion before later messages.
    pub event_lock: bool,
    /// FreeSWITCH's `async: true` header (queue without waiting for the channel thread).
    pub async_: bool,
    /// `loops`: how many times to run the application.
    pub loops: Option<u32>,
}

fn execute_command(app: &str, arg: Option<&str>, id: &str, options: ExecuteOptions) -> Command {
    Command::SendMsg {
        uuid: None,
        msg: SendMsg::Execute {
            app: app.to_owned(),
            arg: arg.map(str::to_owned),
            event_uuid: Some(id.to_owned()),
            event_lock: options.event_lock,
            async_: options.async_,
            loops: options.loops,
        },
    }
}

struct ExecuteGuard<'a> {
    shared: &'a Shared,
    id: &'a str,
}

impl Drop for ExecuteGuard<'_> {
    fn drop(&mut self) {
        self.shared.lock().executes.remove(self.id);
    }
}

// ---- state shared by the handle and the tasks ------------------------------------------------

struct Shared {
    config: SessionConfig,
    state: Mutex<State>,
    /// Commands written and not yet answered; bounds `State::replies`.
    in_flight: Arc<Semaphore>,
    dropped_events: AtomicU64,
    /// Set to ask the tasks to drop the connection now.
    close: watch::Sender<bool>,
    /// Set by the reader once the connection is gone and every waiter has been answered.
    done: watch::Sender<bool>,
}

/// Everything waiters register in, behind one lock so that registering and the reader
/// failing everyone at the end cannot interleave (no waiter is ever left behind).
/// Critical sections are short and never span an await.
#[derive(Default)]
struct State {
    replies: VecDeque<ReplyWaiter>,
    executes: HashMap<String, oneshot::Sender<Result<Event>>>,
    hung_up: bool,
    draining: bool,
    closed: Option<End>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; should something ever, the state is still
        // consistent (every mutation is a single push, pop or insert), so keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a session ended, for the errors its waiters get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Closed,
    Shutdown,
}

impl End {
    fn error(self) -> EslError {
        match self {
            End::Closed => EslError::ConnectionClosed,
            End::Shutdown => EslError::Shutdown,
        }
    }
}

#[derive(Debug)]
enum Answer {
    Reply(Reply),
    Api(Bytes),
}

struct ReplyWaiter {
    tx: oneshot::Sender<Result<Answer>>,
    /// Held until the answer arrives: the in-flight bound.
    _permit: OwnedSemaphorePermit,
}

struct WriteRequest {
    bytes: Bytes,
    reply: oneshot::Sender<Result<Answer>>,
}

// ---- handshake -------------------------------------------------------------------------------

/// `connect`, the channel data, then the reader and writer tasks.
pub(crate) async fn start<S>(
    io: S,
    config: SessionConfig,
    peer: Option<SocketAddr>,
    server: Option<ServerLink>,
) -> Result<OutboundSession>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let config = config.normalized();
    let (rd, mut wr) = tokio::io::split(io);
    let mut frames = FramedRead::new(rd, EslCodec::new(config.limits));
    let after = config.connect_timeout;
    let channel_data = timeout(after, connect(&mut frames, &mut wr))
        .await
        .map_err(|_| EslError::Timeout {
            what: "the connect reply (channel data)",
            after,
        })??;
    let uuid = channel_data
        .unique_id()
        .or_else(|| channel_data.header("Channel-Unique-ID"))
        .map(Cow::into_owned)
        .ok_or_else(|| EslError::Protocol {
            reason: "the connect reply carries no Unique-ID".into(),
        })?;
    let span = tracing::info_span!("esl_outbound", channel = %uuid, peer = ?peer);
    span.in_scope(|| {
        info!(
            destination = ?channel_data.caller("Destination-Number"),
            "outbound session connected"
        )
    });

    let (events_tx, events_rx) = mpsc::channel(config.event_queue);
    let (commands_tx, commands_rx) = mpsc::channel(config.command_queue);
    let shared = Arc::new(Shared {
        in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
        config,
        state: Mutex::new(State::default()),
        dropped_events: AtomicU64::new(0),
        close: watch::Sender::new(false),
        done: watch::Sender::new(false),
    });

    let writer = tokio::spawn(write_loop(wr, commands_rx, shared.clone()).instrument(span.clone()));
    let reader = Reader {
        shared: shared.clone(),
        sink: EventSink {
            tx: events_tx,
            lag: 0,
            shared: shared.clone(),
        },
        delivered: 0,
    };
    tokio::spawn(reader.run(frames, writer, server).instrument(span));

    Ok(OutboundSession {
        handle: SessionHandle {
            inner: Arc::new(HandleInner {
                shared,
                commands: commands_tx,
                channel_data,
                uuid,
                peer,
            }),
        },
        events: SessionEvents { rx: events_rx },
    })
}

async fn connect<S: AsyncRead + AsyncWrite>(
    frames: &mut FramedRead<ReadHalf<S>, EslCodec>,
    wr: &mut WriteHalf<S>,
) -> Result<Event> {
    wr.write_all(&Command::Connect.to_bytes()?).await?;
    wr.flush().await?;
    match frames.next().await {
        Some(Ok(Message::CommandReply(r))) if r.is_ok() => Ok(r.into_channel_data()),
        Some(Ok(Message::CommandReply(r))) => Err(EslError::Rejected {
            command: "connect".into(),
            reply: r.text().trim_end().to_owned(),
        }),
        Some(Ok(other)) => Err(EslError::Protocol {
            reason: format!("expected the connect reply, got {}", other.content_type()),
        }),
        Some(Err(e)) => Err(e),
        None => Err(EslError::ConnectionClosed),
    }
}

// ---- writer ----------------------------------------------------------------------------------

async fn write_loop<S: AsyncWrite>(
    mut wr: WriteHalf<S>,
    mut commands: mpsc::Receiver<WriteRequest>,
    shared: Arc<Shared>,
) {
    let mut close = shared.close.subscribe();
    let result: std::io::Result<()> = async {
        loop {
            let req = tokio::select! {
                biased;
                () = closing(&mut close) => return Ok(()),
                req = commands.recv() => match req {
                    Some(req) => req,
                    // Every handle is gone: nobody can use the connection any more.
                    None => return Ok(()),
                },
            };
            // The caller timed out while the command was queued; sending it now would act on
            // a request its caller already reported as failed.
            if req.reply.is_closed() {
                continue;
            }
            let permit = tokio::select! {
                biased;
                () = closing(&mut close) => return Ok(()),
                p = shared.in_flight.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    // Never closed; treat it as the end if it ever is.
                    Err(_) => return Ok(()),
                },
            };
            {
                let mut st = shared.lock();
                if let Some(end) = st.closed {
                    let _ = req.reply.send(Err(end.error()));
                    continue;
                }
                st.replies.push_back(ReplyWaiter {
                    tx: req.reply,
                    _permit: permit,
                });
            }
            tokio::select! {
                biased;
                () = closing(&mut close) => return Ok(()),
                r = async {
                    wr.write_all(&req.bytes).await?;
                    wr.flush().await
                } => r?,
            }
        }
    }
    .await;
    if let Err(e) = result {
        warn!(error = %e, "writing to the switch failed; closing the session");
    }
    // Our FIN tells the switch we are gone even if the reader is still draining.
    let _ = timeout(WRITE_SHUTDOWN_TIMEOUT, wr.shutdown()).await;
}

// ---- reader ----------------------------------------------------------------------------------

struct Reader {
    shared: Arc<Shared>,
    sink: EventSink,
    /// Messages decoded so far, for the log line when the stream breaks.
    delivered: u64,
}

impl Reader {
    async fn run<S: AsyncRead>(
        mut self,
        mut frames: FramedRead<ReadHalf<S>, EslCodec>,
        writer: JoinHandle<()>,
        server: Option<ServerLink>,
    ) {
        let mut close = self.shared.close.subscribe();
        let mut writer = Some(writer);
        let (mut server_state, permit) = match server {
            Some(link) => (Some(link.state), Some(link.permit)),
            None => (None, None),
        };
        if let Some(s) = &mut server_state {
            // Shutdown may have begun while we were connecting: look at the current state.
            s.mark_changed();
        }

        let (end, error) = loop {
            tokio::select! {
                biased;
                () = closing(&mut close) => break (End::Closed, None),
                _ = async { writer.as_mut()?.await.ok() }, if writer.is_some() => {
                    // The writer stops when every handle is dropped or writing failed.
                    writer = None;
                    break (End::Closed, None);
                }
                state = next_server_state(&mut server_state), if server_state.is_some() => {
                    match state {
                        Some(ServerState::Running) => {}
                        Some(ServerState::Draining) => self.on_draining(),
                        Some(ServerState::Closing) => break (End::Shutdown, None),
                        // The server was dropped: this session carries on alone.
                        None => server_state = None,
                    }
                }
                item = frames.next() => match item {
                    Some(Ok(msg)) => {
                        self.delivered += 1;
                        self.dispatch(msg);
                    }
                    Some(Err(e)) => {
                        warn!(
                            error = %e,
                            messages_before = self.delivered,
                            "bad input from the switch; closing the session"
                        );
                        break (End::Closed, Some(e));
                    }
                    None => {
                        debug!("the switch closed the socket");
                        break (End::Closed, None);
                    }
                },
            }
        };

        // Mark the end and take every waiter under one lock, so nothing registers after.
        let (replies, executes) = {
            let mut st = self.shared.lock();
            st.closed = Some(end);
            (
                std::mem::take(&mut st.replies),
                std::mem::take(&mut st.executes),
            )
        };
        for w in replies {
            let _ = w.tx.send(Err(end.error()));
        }
        for (_, tx) in executes {
            let _ = tx.send(Err(end.error()));
        }
        self.sink.push(SessionEvent::Closed { error });
        drop(self.sink);

        self.shared.close.send_replace(true);
        if let Some(w) = writer {
            // Prompt: the writer watches `close`.
            let _ = w.await;
        }
        // Both halves gone: the socket is closed. Only now is the connection slot free.
        drop(frames);
        drop(permit);
        self.shared.done.send_replace(true);
    }

    fn dispatch(&mut self, msg: Message) {
        match msg {
            Message::CommandReply(r) => self.answer(Answer::Reply(r)),
            Message::ApiResponse(body) => self.answer(Answer::Api(body)),
            Message::Event(e) => {
                if e.name().as_deref() == Some("CHANNEL_EXECUTE_COMPLETE")
                    && let Some(id) = e.application_uuid()
                {
                    let waiter = self.shared.lock().executes.remove(id.as_ref());
                    if let Some(tx) = waiter {
                        let _ = tx.send(Ok(e.clone()));
                    }
                }
                self.sink.push(SessionEvent::Event(e));
            }
            Message::DisconnectNotice(notice) => {
                // After a disconnect notice no application runs on the channel any more, so
                // executions still waiting would only time out.
                let executes = {
                    let mut st = self.shared.lock();
                    st.hung_up = true;
                    std::mem::take(&mut st.executes)
                };
                for (_, tx) in executes {
                    let _ = tx.send(Err(EslError::ConnectionClosed));
                }
                let disposition = notice.disposition();
                let linger_time = notice
                    .linger_time()
                    .and_then(|s| u64::try_from(s).ok())
                    .map(Duration::from_secs);
                info!(?disposition, ?linger_time, "disconnect notice");
                self.sink.push(SessionEvent::Disconnect {
                    disposition,
                    linger_time,
                    notice,
                });
            }
            other => self.sink.push(SessionEvent::Other(other)),
        }
    }

    /// Hands an answer to the oldest command waiting for one.
    fn answer(&mut self, answer: Answer) {
        let waiter = self.shared.lock().replies.pop_front();
        match waiter {
            Some(w) => {
                // The caller may have timed out; the answer still had to be consumed to keep
                // the order.
                let _ = w.tx.send(Ok(answer));
            }
            None => {
                warn!("the switch answered a command we did not send");
                let msg = match answer {
                    Answer::Reply(r) => Message::CommandReply(r),
                    Answer::Api(b) => Message::ApiResponse(b),
                };
                self.sink.push(SessionEvent::Other(msg));
            }
        }
    }

    fn on_draining(&mut self) {
        let executes = {
            let mut st = self.shared.lock();
            if st.draining {
                return;
            }
            st.draining = true;
            std::mem::take(&mut st.executes)
        };
        for (_, tx) in executes {
            let _ = tx.send(Err(EslError::Shutdown));
        }
        debug!("server shutting down; session told to finish");
        self.sink.push(SessionEvent::Shutdown);
    }
}

/// Resolves once the session is asked to close. Returns nothing so no borrow of the watch
/// value lives across later awaits.
async fn closing(close: &mut watch::Receiver<bool>) {
    let _ = close.wait_for(|c| *c).await;
}

/// The server's next state; `None` when the server is gone. Pending forever without a server
/// (the select branch is disabled then anyway).
async fn next_server_state(rx: &mut Option<watch::Receiver<ServerState>>) -> Option<ServerState> {
    let rx = rx.as_mut()?;
    rx.changed().await.ok()?;
    Some(*rx.borrow_and_update())
}

/// The producer side of the event queue: never waits. At the bound the newest event is
/// dropped and counted; once there is room a [`SessionEvent::Lagged`] marker with the count
/// goes first.
struct EventSink {
    tx: mpsc::Sender<SessionEvent>,
    /// Dropped since the last marker.
    lag: u64,
    shared: Arc<Shared>,
}

impl EventSink {
    fn push(&mut self, event: SessionEvent) {
        if self.lag > 0 {
            match self.tx.try_send(SessionEvent::Lagged { dropped: self.lag }) {
                Ok(()) => self.lag = 0,
                Err(TrySendError::Full(_)) => {
                    self.count_drop();
                    return;
                }
                Err(TrySendError::Closed(_)) => return,
            }
        }
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.count_drop(),
            // Nobody reads events any more; nothing is lost that anyone could notice.
            Err(TrySendError::Closed(_)) => {}
        }
    }

    fn count_drop(&mut self) {
        if self.lag == 0 {
            warn!(
                capacity = self.shared.config.event_queue,
                "event queue full; dropping new events until the consumer catches up"
            );
        }
        self.lag += 1;
        self.shared.dropped_events.fetch_add(1, Ordering::Relaxed);
    }
}
