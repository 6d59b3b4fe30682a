//! The task behind a [`super::Client`]: connects, authenticates, subscribes, reads the socket,
//! answers callers, and reconnects.
//!
//! ```text
//! loop {
//!     open: TCP connect -> auth/request -> auth -> +OK accepted         (bounded by connect_timeout)
//!     run:  queue `api global_getvar core_uuid`, filters, `event ...`
//!           select { socket readable -> decode -> dispatch every whole message
//!                    socket writable -> write queued commands
//!                    request        -> encode, push its waiter on the reply FIFO
//!                    no byte for heartbeat_timeout -> dead }
//!     lost: fail waiters, Disconnected, back off (serving requests meanwhile)
//! }
//! ```
//! One task does all of it, so the reply FIFO, the job table and the recorded subscription need
//! no locks. It never awaits anything but the socket, the request queue and timers: events go
//! to the consumer through a non-blocking [`EventSink`], and writes happen only when the socket
//! is writable, so a slow consumer or a switch that does not read never stops us reading.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::backoff::{Backoff, clock_seed};
use super::config::{Auth, ClientConfig};
use super::stream::{ClientEvent, EventSink};
use super::subscriptions::{Change, Subscriptions};
use super::{JobResult, Shared};
use crate::codec::{Command, EslCodec, Event, Message, Reply};
use crate::error::{EslError, excerpt};

/// A caller's request to the connection task.
#[derive(Debug)]
pub(crate) enum Request {
    /// Any command answered by one reply (`api` included).
    Command { cmd: Command, tx: ReplyTx },
    /// `bgapi` with our own Job-UUID; `tx` gets the BACKGROUND_JOB result.
    BgApi {
        command: String,
        job_uuid: String,
        tx: oneshot::Sender<Result<JobResult, EslError>>,
    },
    /// A subscription or filter change: recorded, then applied if connected.
    Subscription { change: Change, tx: ReplyTx },
}

/// A shutdown request travels on its own small queue, so that it is seen even while the
/// request queue is held back by a full reply FIFO. The sender learns when the task is done.
pub(crate) type ShutdownTx = oneshot::Sender<()>;

/// What answers a command.
#[derive(Debug)]
pub(crate) enum Response {
    /// `command/reply`.
    Reply(Reply),
    /// `api/response` body.
    Api(Bytes),
    /// A subscription change recorded while disconnected (or needing no command now); the next
    /// connection applies it.
    Recorded,
}

pub(crate) type ReplyTx = oneshot::Sender<Result<Response, EslError>>;

/// Who waits for the next reply. FreeSWITCH answers every command exactly once, in order, so a
/// FIFO of these pairs replies with commands.
#[derive(Debug)]
enum Pending {
    Caller {
        what: String,
        tx: ReplyTx,
    },
    /// Our own subscription plumbing; `initial` ones count toward readiness.
    Internal {
        what: String,
        initial: bool,
    },
    /// The bgapi whose Job-UUID this is; `+OK` marks the job accepted.
    BgApi {
        job_uuid: String,
        what: String,
    },
    /// `api global_getvar core_uuid` after auth.
    CoreUuid,
    Exit,
}

#[derive(Debug)]
struct JobWaiter {
    tx: oneshot::Sender<Result<JobResult, EslError>>,
    /// The switch answered `+OK Job-UUID`: the job runs whatever happens to this socket.
    accepted: bool,
    /// Accepted on a connection that has since been lost. Its BACKGROUND_JOB still reaches the
    /// next connection if the switch did not restart (FreeSWITCH sends it to every listener).
    carried: bool,
}

/// How a connection ended.
#[derive(Debug)]
enum End {
    Shutdown,
    Failed(EslError),
}

/// How the task ends.
#[derive(Debug)]
enum Finish {
    Shutdown,
    /// Reconnecting is off, or the first connection failed (its error went to the caller).
    Ended,
    Fatal(EslError),
}

/// One authenticated socket and its per-connection state.
#[derive(Debug)]
struct Link {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    codec: EslCodec,
    rbuf: BytesMut,
    /// Encoded commands not yet written. Bounded by the FIFO bound: every command in it has a
    /// waiter in `fifo`.
    wbuf: BytesMut,
    fifo: VecDeque<Pending>,
    /// Initial setup replies still awaited; the connection is "up" at zero.
    setup_left: usize,
    /// `global_getvar core_uuid` gave nothing: take it from the first event instead.
    core_from_event: bool,
    /// Set once `exit` is sent: when to give up waiting for the switch to close.
    closing_deadline: Option<Instant>,
}

pub(crate) struct Supervisor {
    config: Arc<ClientConfig>,
    shared: Arc<Shared>,
    requests: mpsc::Receiver<Request>,
    shutdowns: mpsc::Receiver<ShutdownTx>,
    sink: EventSink,
    subs: Subscriptions,
    jobs: HashMap<String, JobWaiter>,
    /// Core-UUID of the switch seen last, to tell a reconnect from a restart.
    core_uuid: Option<String>,
    backoff: Backoff,
    /// Present until the first connection is up (or has failed): `Client::connect` awaits it.
    ready: Option<oneshot::Sender<Result<(), EslError>>>,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("addr", &self.config.addr)
            .field("jobs", &self.jobs.len())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    pub(crate) fn new(
        config: Arc<ClientConfig>,
        shared: Arc<Shared>,
        requests: mpsc::Receiver<Request>,
        shutdowns: mpsc::Receiver<ShutdownTx>,
        sink: EventSink,
        ready: oneshot::Sender<Result<(), EslError>>,
    ) -> Self {
        let backoff = Backoff::new(&config.backoff, clock_seed(&config.addr));
        let subs = Subscriptions::new(config.format, config.events.clone(), config.filters.clone());
        Supervisor {
            config,
            shared,
            requests,
            shutdowns,
            sink,
            subs,
            jobs: HashMap::new(),
            core_uuid: None,
            backoff,
            ready: Some(ready),
            shutdown_waiters: Vec::new(),
        }
    }

    /// The task body: connect, run, reconnect, until shutdown or a fatal error.
    pub(crate) async fn run(mut self) {
        let finish = loop {
            let config = Arc::clone(&self.config);
            let Some(opened) = self.serve_while(open(config)).await else {
                break Finish::Shutdown;
            };
            match opened {
                Err(e) => {
                    if let Some(ready) = self.ready.take() {
                        let _ = ready.send(Err(e));
                        break Finish::Ended;
                    }
                    if !e.is_retryable() {
                        warn!(addr = %self.config.addr, error = %e, "giving up on the switch");
                        break Finish::Fatal(e);
                    }
                    warn!(addr = %self.config.addr, error = %e, "reconnect attempt failed");
                }
                Ok(link) => match self.run_connection(link).await {
                    End::Shutdown => {
                        self.sink.status(ClientEvent::Disconnected {
                            reason: EslError::Shutdown,
                        });
                        break Finish::Shutdown;
                    }
                    End::Failed(e) => {
                        if let Some(ready) = self.ready.take() {
                            let _ = ready.send(Err(e));
                            break Finish::Ended;
                        }
                        warn!(addr = %self.config.addr, error = %e, "connection to the switch lost");
                        self.sink.status(ClientEvent::Disconnected { reason: e });
                        if !self.config.reconnect {
                            break Finish::Ended;
                        }
                    }
                },
            }
            let delay = self.backoff.next_delay();
            debug!(addr = %self.config.addr, ?delay, "reconnecting after a pause");
            if self.serve_while(tokio::time::sleep(delay)).await.is_none() {
                break Finish::Shutdown;
            }
        };
        self.finish(finish);
    }

    /// Runs `fut` (connecting, or the backoff pause) while answering requests as a disconnected
    /// client must. `None` means shutdown was asked for.
    async fn serve_while<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Some(out),
                done = self.shutdowns.recv() => {
                    self.shutdown_waiters.extend(done);
                    return None;
                }
                req = self.requests.recv() => match req {
                    // Every handle is gone: nobody can use the connection any more.
                    None => return None,
                    Some(req) => self.refuse_while_disconnected(req),
                },
            }
        }
    }

    /// Nothing is queued for a future connection: an `originate` sent twice, or late, is worse
    /// than one that fails now. Subscription changes are the exception: they are state, recorded
    /// and applied when the connection is back.
    fn refuse_while_disconnected(&mut self, req: Request) {
        match req {
            Request::Command { tx, .. } => {
                let _ = tx.send(Err(EslError::ConnectionClosed));
            }
            Request::BgApi { tx, .. } => {
                let _ = tx.send(Err(EslError::ConnectionClosed));
            }
            Request::Subscription { change, tx } => {
                self.subs.apply(change);
                let _ = tx.send(Ok(Response::Recorded));
            }
        }
    }

    fn finish(mut self, how: Finish) {
        let shut_down = matches!(how, Finish::Shutdown);
        let reason = || {
            if shut_down {
                EslError::Shutdown
            } else {
                EslError::ConnectionClosed
            }
        };
        self.shared.closed.store(true, Ordering::Release);
        self.shared.shut_down.store(shut_down, Ordering::Release);
        self.requests.close();
        while let Ok(req) = self.requests.try_recv() {
            match req {
                Request::Command { tx, .. } | Request::Subscription { tx, .. } => {
                    let _ = tx.send(Err(reason()));
                }
                Request::BgApi { tx, .. } => {
                    let _ = tx.send(Err(reason()));
                }
            }
        }
        self.shutdowns.close();
        while let Ok(done) = self.shutdowns.try_recv() {
            self.shutdown_waiters.push(done);
        }
        for (_, job) in self.jobs.drain() {
            let _ = job.tx.send(Err(reason()));
        }
        if let Finish::Fatal(e) = how
            && let Ok(mut slot) = self.shared.fatal.lock()
        {
            // Stored before the sink is dropped, so a consumer that sees the stream end finds it.
            *slot = Some(e);
        }
        for done in self.shutdown_waiters.drain(..) {
            let _ = done.send(());
        }
        // Dropping `self` drops the sink: the stream ends after what it already holds.
    }

    // ---- one connection ------------------------------------------------------------------

    async fn run_connection(&mut self, mut link: Link) -> End {
        let end = self.serve_link(&mut link).await;
        let reason = || match &end {
            End::Shutdown => EslError::Shutdown,
            End::Failed(_) => EslError::ConnectionClosed,
        };
        // Commands without a reply may or may not have run: say so rather than re-send them.
        for pending in link.fifo.drain(..) {
            match pending {
                Pending::Caller { what, tx } => {
                    debug!(command = %what, "reply lost with the connection");
                    let _ = tx.send(Err(reason()));
                }
                Pending::BgApi { job_uuid, .. } => {
                    if let Some(job) = self.jobs.remove(&job_uuid) {
                        let _ = job.tx.send(Err(reason()));
                    }
                }
                Pending::Internal { .. } | Pending::CoreUuid | Pending::Exit => {}
            }
        }
        for job in self.jobs.values_mut() {
            job.carried = true;
        }
        end
    }

    async fn serve_link(&mut self, link: &mut Link) -> End {
        let heartbeat = self.config.heartbeat_timeout;
        if let Err(e) = self.queue_setup(link) {
            return End::Failed(e);
        }
        // Bytes that came with the auth reply.
        if let Err(e) = self.drain(link) {
            return End::Failed(e);
        }
        let idle = tokio::time::sleep(heartbeat);
        tokio::pin!(idle);
        loop {
            // The reply FIFO bounds both it and `wbuf`. A subscription change may push up to
            // three commands past the bound (ours ride along with the caller's).
            let accepting =
                link.closing_deadline.is_none() && link.fifo.len() < self.config.max_pending;
            let closing = link.closing_deadline;
            tokio::select! {
                read = link.reader.read_buf(&mut link.rbuf) => match read {
                    Ok(0) => return self.on_eof(link),
                    Ok(_) => {
                        idle.as_mut().reset(Instant::now() + heartbeat);
                        if let Err(e) = self.drain(link) {
                            return End::Failed(e);
                        }
                    }
                    Err(e) => return End::Failed(e.into()),
                },
                written = link.writer.write_buf(&mut link.wbuf), if !link.wbuf.is_empty() => {
                    match written {
                        Ok(0) => return End::Failed(EslError::Io(std::io::ErrorKind::WriteZero.into())),
                        Ok(_) => {}
                        Err(e) => return End::Failed(e.into()),
                    }
                }
                req = self.requests.recv(), if accepting => match req {
                    Some(req) => self.on_request(link, req),
                    // Every handle is gone: nobody can use the connection any more.
                    None => self.begin_close(link),
                },
                done = self.shutdowns.recv(), if closing.is_none() => {
                    self.shutdown_waiters.extend(done);
                    self.begin_close(link);
                }
                () = &mut idle => {
                    return End::Failed(EslError::Timeout {
                        what: "any data from the switch (HEARTBEAT is due every 20 s)",
                        after: heartbeat,
                    });
                }
                () = sleep_until_opt(closing), if closing.is_some() => {
                    debug!(addr = %self.config.addr, "switch did not close after exit; closing");
                    return End::Shutdown;
                }
            }
        }
    }

    fn on_eof(&mut self, link: &mut Link) -> End {
        if link.codec.in_frame(&link.rbuf) {
            return End::Failed(EslError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed in the middle of a message ({} bytes buffered)",
                    link.rbuf.len()
                ),
            )));
        }
        if link.closing_deadline.is_some() {
            End::Shutdown
        } else {
            End::Failed(EslError::ConnectionClosed)
        }
    }

    /// Auth is done by `open`; this queues the rest of the setup. `core_uuid` goes first so that
    /// `Connected` is delivered before any event of this connection.
    fn queue_setup(&mut self, link: &mut Link) -> Result<(), EslError> {
        let core = Command::Api {
            command: "global_getvar core_uuid".into(),
        };
        core.encode(&mut link.wbuf)?;
        link.fifo.push_back(Pending::CoreUuid);
        link.setup_left = 1;
        for cmd in self.subs.setup_commands() {
            cmd.encode(&mut link.wbuf)?;
            link.fifo.push_back(Pending::Internal {
                what: cmd.describe(),
                initial: true,
            });
            link.setup_left += 1;
        }
        Ok(())
    }

    fn setup_step_done(&mut self, link: &mut Link) {
        link.setup_left = link.setup_left.saturating_sub(1);
        if link.setup_left == 0 {
            info!(addr = %self.config.addr, "connected to the switch");
            self.backoff.reset();
            if let Some(ready) = self.ready.take() {
                let _ = ready.send(Ok(()));
            }
        }
    }

    // ---- requests ------------------------------------------------------------------------

    fn on_request(&mut self, link: &mut Link, req: Request) {
        match req {
            Request::Command { cmd, tx } => {
                let what = cmd.describe();
                match cmd.encode(&mut link.wbuf) {
                    Ok(()) => link.fifo.push_back(Pending::Caller { what, tx }),
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            }
            Request::BgApi {
                command,
                job_uuid,
                tx,
            } => self.start_job(link, command, job_uuid, tx),
            Request::Subscription { change, tx } => {
                let mut tx = Some(tx);
                for planned in self.subs.apply(change) {
                    let what = planned.command.describe();
                    if let Err(e) = planned.command.encode(&mut link.wbuf) {
                        // The client validated the caller's command; ours are fixed words.
                        warn!(command = %what, error = %e, "subscription command not sent");
                        continue;
                    }
                    let pending = match (planned.for_caller, tx.take()) {
                        (true, Some(tx)) => Pending::Caller { what, tx },
                        (_, other) => {
                            tx = other;
                            Pending::Internal {
                                what,
                                initial: false,
                            }
                        }
                    };
                    link.fifo.push_back(pending);
                }
                if let Some(tx) = tx {
                    let _ = tx.send(Ok(Response::Recorded));
                }
            }
        }
    }

    /// The waiter is in the job table before the command is even encoded, so a BACKGROUND_JOB
    /// racing ahead of the `+OK Job-UUID` reply still finds it.
    fn start_job(
        &mut self,
        link: &mut Link,
        command: String,
        job_uuid: String,
        tx: oneshot::Sender<Result<JobResult, EslError>>,
    ) {
        let limit = self.config.max_jobs;
        if self.jobs.len() >= limit {
            // Callers that timed out leave their waiter behind; sweep those first.
            self.jobs.retain(|_, job| !job.tx.is_closed());
            if self.jobs.len() >= limit {
                let _ = tx.send(Err(EslError::Overloaded { limit }));
                return;
            }
        }
        let cmd = Command::BgApi {
            command,
            job_uuid: Some(job_uuid.clone()),
        };
        let what = cmd.describe();
        self.jobs.insert(
            job_uuid.clone(),
            JobWaiter {
                tx,
                accepted: false,
                carried: false,
            },
        );
        match cmd.encode(&mut link.wbuf) {
            Ok(()) => link.fifo.push_back(Pending::BgApi { job_uuid, what }),
            Err(e) => {
                if let Some(job) = self.jobs.remove(&job_uuid) {
                    let _ = job.tx.send(Err(e));
                }
            }
        }
    }

    fn begin_close(&mut self, link: &mut Link) {
        if link.closing_deadline.is_some() {
            return;
        }
        // `exit` is two fixed words; encoding cannot fail.
        if Command::Exit.encode(&mut link.wbuf).is_ok() {
            link.fifo.push_back(Pending::Exit);
        }
        link.closing_deadline = Some(Instant::now() + self.config.shutdown_timeout);
    }

    // ---- what the switch sends -----------------------------------------------------------

    /// Dispatches every whole message in the buffer. A decoding error leaves the stream out of
    /// sync, so it ends the connection; the messages before it have been dispatched.
    fn drain(&mut self, link: &mut Link) -> Result<(), EslError> {
        loop {
            match link.codec.decode_message(&mut link.rbuf) {
                Ok(Some(msg)) => self.dispatch(link, msg)?,
                Ok(None) => return Ok(()),
                Err(e) => {
                    warn!(
                        addr = %self.config.addr,
                        error = %e,
                        buffered = link.rbuf.len(),
                        head = %excerpt(&link.rbuf),
                        "undecodable data from the switch"
                    );
                    return Err(e);
                }
            }
        }
    }

    fn dispatch(&mut self, link: &mut Link, msg: Message) -> Result<(), EslError> {
        match msg {
            Message::CommandReply(reply) => self.complete(link, Response::Reply(reply)),
            Message::ApiResponse(body) => self.complete(link, Response::Api(body)),
            Message::Event(event) => {
                self.on_event(link, event);
                Ok(())
            }
            Message::LogData(log) => {
                self.sink.data(ClientEvent::Log(log));
                Ok(())
            }
            Message::DisconnectNotice(notice) => {
                // The close follows; until then keep reading what is still on the wire.
                debug!(addr = %self.config.addr, body = %excerpt(notice.body()), "disconnect notice");
                Ok(())
            }
            Message::RudeRejection(body) => Err(EslError::AccessDenied {
                message: String::from_utf8_lossy(&body).trim().to_owned(),
            }),
            Message::AuthRequest => Err(EslError::Protocol {
                reason: "auth/request on an authenticated connection".into(),
            }),
            Message::Other { content_type, .. } => {
                debug!(addr = %self.config.addr, %content_type, "ignoring unknown message");
                Ok(())
            }
        }
    }

    fn complete(&mut self, link: &mut Link, response: Response) -> Result<(), EslError> {
        let Some(pending) = link.fifo.pop_front() else {
            return Err(EslError::Protocol {
                reason: "a reply arrived with no command awaiting it".into(),
            });
        };
        match pending {
            Pending::Caller { tx, .. } => {
                let _ = tx.send(Ok(response));
            }
            Pending::BgApi { job_uuid, what } => match response {
                Response::Reply(reply) if reply.is_ok() => {
                    if let Some(job) = self.jobs.get_mut(&job_uuid) {
                        job.accepted = true;
                    }
                }
                other => {
                    if let Some(job) = self.jobs.remove(&job_uuid) {
                        let _ = job.tx.send(Err(EslError::Rejected {
                            command: what,
                            reply: response_text(&other),
                        }));
                    }
                }
            },
            Pending::CoreUuid => {
                let uuid = match &response {
                    Response::Api(body) => {
                        let text = String::from_utf8_lossy(body).trim().to_owned();
                        (!text.is_empty() && !text.starts_with("-ERR")).then_some(text)
                    }
                    _ => None,
                };
                match uuid {
                    Some(uuid) => self.on_core_uuid(uuid),
                    None => {
                        debug!(addr = %self.config.addr, "no core_uuid global; using the first event's Core-UUID");
                        link.core_from_event = true;
                    }
                }
                self.setup_step_done(link);
            }
            Pending::Internal { what, initial } => {
                if let Response::Reply(reply) = &response
                    && !reply.is_ok()
                {
                    warn!(addr = %self.config.addr, command = %what, reply = %reply.text(), "the switch refused a subscription command");
                }
                if initial {
                    self.setup_step_done(link);
                }
            }
            Pending::Exit => {}
        }
        Ok(())
    }

    fn on_event(&mut self, link: &mut Link, event: Event) {
        if link.core_from_event
            && let Some(uuid) = event.core_uuid()
        {
            link.core_from_event = false;
            self.on_core_uuid(uuid.into_owned());
        }
        let name = event.name().unwrap_or_default();
        if name == "BACKGROUND_JOB"
            && let Some(job_uuid) = event.job_uuid()
            && let Some(job) = self.jobs.remove(job_uuid.as_ref())
        {
            let job_uuid = job_uuid.into_owned();
            let _ = job.tx.send(Ok(JobResult { job_uuid, event }));
            return;
        }
        if (name == "BACKGROUND_JOB" || name == "HEARTBEAT") && !self.subs.wants(&name) {
            return;
        }
        self.sink.data(ClientEvent::Event(event));
    }

    fn on_core_uuid(&mut self, uuid: String) {
        let restarted = self.core_uuid.as_ref().is_some_and(|prev| *prev != uuid);
        if restarted {
            warn!(addr = %self.config.addr, core_uuid = %uuid, "the switch restarted");
            // Jobs accepted by the old instance will never report.
            let carried: Vec<String> = self
                .jobs
                .iter()
                .filter(|(_, job)| job.carried)
                .map(|(id, _)| id.clone())
                .collect();
            for id in carried {
                if let Some(job) = self.jobs.remove(&id) {
                    let _ = job.tx.send(Err(EslError::ConnectionClosed));
                }
            }
        }
        self.core_uuid = Some(uuid.clone());
        self.sink.status(ClientEvent::Connected {
            core_uuid: uuid,
            switch_restarted: restarted,
        });
    }
}

fn response_text(response: &Response) -> String {
    match response {
        Response::Reply(reply) => reply.text().into_owned(),
        Response::Api(body) => String::from_utf8_lossy(body).trim().to_owned(),
        Response::Recorded => String::new(),
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

// ---- opening a connection ----------------------------------------------------------------

/// TCP connect and the auth exchange, bounded by `connect_timeout`.
async fn open(config: Arc<ClientConfig>) -> Result<Link, EslError> {
    let limit = config.connect_timeout;
    tokio::time::timeout(limit, authenticate(&config))
        .await
        .map_err(|_| EslError::Timeout {
            what: "connect and authenticate",
            after: limit,
        })?
}

async fn authenticate(config: &ClientConfig) -> Result<Link, EslError> {
    let mut stream = TcpStream::connect(config.addr.as_str()).await?;
    // Commands are small and latency matters more than packet count.
    stream.set_nodelay(true)?;
    let mut codec = EslCodec::new(config.limits);
    let mut rbuf = BytesMut::with_capacity(64 * 1024);

    match read_message(&mut stream, &mut codec, &mut rbuf).await? {
        Message::AuthRequest => {}
        Message::RudeRejection(body) => return Err(access_denied(&body)),
        other => {
            return Err(EslError::Protocol {
                reason: format!("expected auth/request, got {}", other.content_type()),
            });
        }
    }
    let auth = match &config.auth {
        Auth::Password(password) => Command::Auth {
            password: password.clone(),
        },
        Auth::User { user, password } => Command::UserAuth {
            user: user.clone(),
            password: password.clone(),
        },
    };
    stream.write_all(&auth.to_bytes()?).await?;
    match read_message(&mut stream, &mut codec, &mut rbuf).await? {
        Message::CommandReply(reply) if reply.is_ok() => {}
        Message::CommandReply(reply) => {
            return Err(EslError::AuthFailed {
                reply: reply.text().trim().to_owned(),
            });
        }
        Message::RudeRejection(body) => return Err(access_denied(&body)),
        other => {
            return Err(EslError::Protocol {
                reason: format!("expected the auth reply, got {}", other.content_type()),
            });
        }
    }
    let (reader, writer) = stream.into_split();
    Ok(Link {
        reader,
        writer,
        codec,
        rbuf,
        wbuf: BytesMut::with_capacity(4096),
        fifo: VecDeque::new(),
        setup_left: 0,
        core_from_event: false,
        closing_deadline: None,
    })
}

fn access_denied(body: &[u8]) -> EslError {
    EslError::AccessDenied {
        message: String::from_utf8_lossy(body).trim().to_owned(),
    }
}

async fn read_message(
    stream: &mut TcpStream,
    codec: &mut EslCodec,
    buf: &mut BytesMut,
) -> Result<Message, EslError> {
    loop {
        if let Some(msg) = codec.decode_message(buf)? {
            return Ok(msg);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(EslError::ConnectionClosed);
        }
    }
}
