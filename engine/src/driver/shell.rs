//! The tokio loop around [`DriverCore`]: it owns the sockets, the tasks and the clock, and
//! decides nothing. One task `select!`s over everything that can happen and hands it to the
//! core; after each input it carries out the core's outputs in order.
//!
//! **Order of requests.** The core's requests must reach FreeSWITCH in the order it emitted
//! them. All requests to a node go over its one inbound connection, whose client writes them
//! in the order they enter its queue. So the loop enqueues every request itself, in output
//! order, by polling each request future once before handing it to a task (tokio's mpsc
//! serves senders first come, first served, so a request that found the queue full keeps its
//! place); the tasks only wait for the answers. The waiting tasks are spawned once per loop
//! turn (one per node for the turn's `api` answers, one per originate, whose job reports
//! seconds later), after the turn's requests are all enqueued, so the cost of spawning never
//! sits between the core's decision and the request reaching the client.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use switchyard_esl::EslError;
use switchyard_esl::client::{Client, ClientConfig, ClientEvent, EventStream};
use switchyard_esl::server::OutboundServer;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::io::LiveEvent;

use super::commands::EslRequest;
use super::core::{Admission, Answer, CoreOutput, DriverCore, Reply, Ticket};
use super::media::{MediaReport, MediaRequest};
use super::records::RecordPipe;
use super::session::{self, SessionMsg};
use super::{ApiRequest, ShutdownReport};

/// Time as the loop sees it: tokio's clock (pausable in tests), as `std::time::Instant` for
/// the core.
pub(super) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

type PendingReply = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// A request that has been polled once: it is in the client's queue (or already answered).
enum Started {
    Ready(Reply),
    Waiting(PendingReply),
}

impl Started {
    async fn finish(self) -> Reply {
        match self {
            Started::Ready(r) => r,
            Started::Waiting(f) => f.await,
        }
    }
}

/// One ticket's requests, enqueued on the client, waiting for their answers.
pub(super) struct Waiting {
    node: usize,
    ticket: Ticket,
    /// A bgapi: its job reports when the leg answers, seconds later, so it waits alone.
    job: bool,
    started: Vec<Started>,
}

/// Answers of some tickets, in order.
type Answered = Vec<(Ticket, Vec<Reply>)>;

/// A connection attempt's outcome, for the node it was for.
type Attempt = (usize, Result<(Client, EventStream), EslError>);

/// One FreeSWITCH node's connection.
pub(super) struct Conn {
    pub cfg: ClientConfig,
    /// `None` until the first connection succeeds (a node down at start).
    pub client: Option<Client>,
    pub events: Option<EventStream>,
}

pub(super) struct Shell {
    pub core: DriverCore,
    pub conns: Vec<Conn>,
    /// Which node's events are looked at first next time.
    pub event_turn: usize,
    pub server: Option<OutboundServer>,
    pub sessions_tx: mpsc::Sender<SessionMsg>,
    pub sessions_rx: mpsc::Receiver<SessionMsg>,
    /// False while callers are held (`DriverConfig::hold_callers`): their arrivals wait in
    /// `sessions_rx` (and, beyond its bound, in their socket tasks).
    pub callers_admitted: bool,
    /// Caller socket tasks; dropped (sockets closed) with the loop. Bounded by the server's
    /// `max_connections`.
    pub session_tasks: JoinSet<()>,
    pub api_rx: mpsc::Receiver<ApiRequest>,
    pub stop_rx: watch::Receiver<bool>,
    pub live: broadcast::Sender<LiveEvent>,
    pub records: RecordPipe,
    pub writer: Option<tokio::task::JoinHandle<()>>,
    /// Records the writer settled (see `records::writer`).
    pub settled: watch::Receiver<u64>,
    /// What the core was last told of settled records (module `core::gate`).
    pub reported_kept: u64,
    pub shutdown_grace: std::time::Duration,
    /// Tasks waiting for answers (their number is bounded by the core's in-flight bound plus
    /// its own questions).
    pub waits: JoinSet<Answered>,
    /// Requests enqueued during this loop turn whose answers are not waited for yet.
    pub unwaited: Vec<Waiting>,
    /// Connection attempts for nodes never reached.
    pub connects: JoinSet<Attempt>,
    /// Hangups of refused callers.
    pub refusals: JoinSet<()>,
    /// The media service (module `media_service`).
    pub media: super::media_service::MediaLink,
}

impl Shell {
    pub(super) async fn run(mut self) -> ShutdownReport {
        let sleep = tokio::time::sleep_until(self.core.next_deadline().into());
        tokio::pin!(sleep);
        loop {
            self.carry_out();
            self.spawn_waits();
            sleep.as_mut().reset(self.core.next_deadline().into());
            let refill = self.records.has_overflow().then(|| self.records.sender());
            let any_events = self.conns.iter().any(|n| n.events.is_some());
            self.event_turn = self.event_turn.wrapping_add(1);
            let turn = self.event_turn;
            tokio::select! {
                changed = self.stop_rx.changed() => {
                    // A dropped sender means every handle is gone: nobody can use us any more.
                    if changed.is_err() || *self.stop_rx.borrow() {
                        break;
                    }
                }
                req = self.api_rx.recv() => match req {
                    Some(req) => self.on_api(req),
                    None => break,
                },
                Some(msg) = self.sessions_rx.recv(), if self.callers_admitted => {
                    self.on_session(msg);
                }
                (node, ev) = next_event(&mut self.conns, turn), if any_events => {
                    self.on_client_event(node, ev);
                }
                Some(s) = accept(&mut self.server) => {
                    let tx = self.sessions_tx.clone();
                    self.session_tasks.spawn(session::run(s, tx));
                }
                Some(done) = self.waits.join_next(), if !self.waits.is_empty() => {
                    match done {
                        Ok(answered) => {
                            for (ticket, replies) in answered {
                                self.core.answered(now(), ticket, replies);
                            }
                        }
                        // Our tasks do not panic; a cancelled one only happens at shutdown.
                        Err(e) => error!(error = %e, "driver task ended abnormally"),
                    }
                }
                Some(done) = self.connects.join_next(), if !self.connects.is_empty() => {
                    if let Ok((node, result)) = done {
                        self.on_connect(node, result);
                    }
                }
                Some(_) = self.refusals.join_next(), if !self.refusals.is_empty() => {}
                Some(report) = self.media.reports.recv() => self.core.media_report(now(), report),
                Some(_) = self.session_tasks.join_next(), if !self.session_tasks.is_empty() => {}
                Ok(permit) = reserve(refill) => self.records.refill(permit),
                // The loop's next turn reports them to the core.
                Ok(()) = self.settled.changed() => {}
                () = &mut sleep => self.core.handle_timeout(now()),
            }
        }
        self.shutdown().await
    }

    /// Carries out the core's outputs, in order, and tells the core which records are
    /// settled (which may release originates: their outputs are carried out too).
    fn carry_out(&mut self) {
        loop {
            self.carry_out_once();
            let kept = *self.settled.borrow_and_update() + self.records.dropped();
            if kept <= self.reported_kept {
                return;
            }
            self.reported_kept = kept;
            self.core.records_kept(now(), kept);
        }
    }

    fn carry_out_once(&mut self) {
        while let Some(o) = self.core.poll_output() {
            match o {
                CoreOutput::Send {
                    node,
                    ticket,
                    requests,
                } => self.send(node, ticket, requests),
                CoreOutput::Record(r) => self.records.push(r),
                // No subscriber is not an error.
                CoreOutput::Live(ev) => drop(self.live.send(ev)),
                CoreOutput::Connect { node } => {
                    let cfg = self.conns[node].cfg.clone();
                    self.connects
                        .spawn(async move { (node, Client::connect(cfg).await) });
                }
                CoreOutput::Media(req) => self.hand_to_media(req),
            }
        }
    }

    /// Hands a request to the media service. Its queue is far larger than the recordings
    /// the engine runs; if it is full anyway, the request's answer is given here so the
    /// core waits for nothing.
    fn hand_to_media(&mut self, req: MediaRequest) {
        let Err(e) = self.media.requests.try_send(req) else {
            return;
        };
        let req = e.into_inner();
        warn!(request = ?req, "media service behind; request answered as failed");
        let report = match req {
            MediaRequest::Expect { id, .. } | MediaRequest::ExpectFork { id, .. } => {
                MediaReport::Refused {
                    id,
                    error: "the media service is behind".into(),
                }
            }
            MediaRequest::Ingest { id, path, .. } => MediaReport::Ingested {
                id,
                path,
                figures: None,
                error: Some("the media service is behind; the file was not checked".into()),
            },
            MediaRequest::Silence { .. } | MediaRequest::Abandon { .. } => return,
        };
        self.core.media_report(now(), report);
    }

    /// Enqueues a ticket's requests on its node's client now, in order; a node never reached
    /// answers at once.
    fn send(&mut self, node: usize, ticket: Ticket, requests: Vec<EslRequest>) {
        let Some(client) = self.conns.get(node).and_then(|c| c.client.clone()) else {
            let replies = requests
                .iter()
                .map(|_| Err(EslError::ConnectionClosed))
                .collect();
            self.core.answered(now(), ticket, replies);
            return;
        };
        let job = requests.iter().any(|r| matches!(r, EslRequest::BgApi(_)));
        let started = requests
            .into_iter()
            .map(|r| start(client.clone(), r))
            .collect();
        self.unwaited.push(Waiting {
            node,
            ticket,
            job,
            started,
        });
    }

    /// Spawns the waits for this turn's requests: the `api` ones together per node (a node
    /// answers its connection's `api`s in order), each job on its own.
    fn spawn_waits(&mut self) {
        let mut per_node: Vec<Vec<Waiting>> = Vec::new();
        for w in std::mem::take(&mut self.unwaited) {
            if w.job {
                self.waits.spawn(wait_all(vec![w]));
                continue;
            }
            match per_node.iter_mut().find(|g| g[0].node == w.node) {
                Some(g) => g.push(w),
                None => per_node.push(vec![w]),
            }
        }
        for group in per_node {
            self.waits.spawn(wait_all(group));
        }
    }

    fn on_api(&mut self, req: ApiRequest) {
        match req {
            ApiRequest::Command(cmd, reply) => {
                let _ = reply.send(self.core.command(now(), cmd));
            }
            ApiRequest::CommandFiled(cmd, reply) => {
                let done = self.core.command(now(), cmd);
                // Its records go to the pipe now, so the count covers them.
                self.carry_out();
                let _ = reply.send(done.map(|()| self.records.pushed()));
            }
            ApiRequest::Query(read) => read(self.core.engine()),
            ApiRequest::Routes(routes) => self.core.set_routes(routes),
            ApiRequest::Inbound(plan) => self.core.set_inbound(plan),
            ApiRequest::Inject(cmd) => self.core.inject(now(), cmd),
            ApiRequest::AdmitCallers => {
                self.callers_admitted = true;
                self.core.admit(now());
            }
        }
    }

    fn on_session(&mut self, msg: SessionMsg) {
        match msg {
            SessionMsg::Arrived { arrival, handle } => {
                if let Admission::Refused { cause } = self.core.caller_arrived(now(), arrival) {
                    self.refusals.spawn(async move {
                        let _ = handle.hangup(&cause).await;
                    });
                }
            }
            SessionMsg::Input(input) => self.core.caller_input(now(), input),
        }
    }

    fn on_client_event(&mut self, node: usize, ev: Option<ClientEvent>) {
        let Some(ev) = ev else {
            let c = &mut self.conns[node];
            let why = c.events.as_mut().and_then(EventStream::take_error);
            c.events = None;
            self.core.node_stopped(now(), node, why.as_ref());
            return;
        };
        match ev {
            ClientEvent::Event(e) => self.core.switch_event(now(), node, &e),
            ClientEvent::Connected {
                core_uuid,
                switch_restarted,
            } => self
                .core
                .node_connected(now(), node, &core_uuid, switch_restarted),
            ClientEvent::Disconnected { reason } => {
                self.core.node_disconnected(now(), node, &reason);
            }
            ClientEvent::Lagged { dropped } => self.core.node_lagged(now(), node, dropped),
            _ => {}
        }
    }

    fn on_connect(&mut self, node: usize, result: Result<(Client, EventStream), EslError>) {
        match result {
            Ok((client, events)) => {
                let c = &mut self.conns[node];
                c.client = Some(client);
                c.events = Some(events);
                // The stream's own Connected (first in it) marks the node up.
                self.core.node_reachable(now(), node);
            }
            Err(e) => self.core.node_unreachable(now(), node, &e),
        }
    }

    async fn shutdown(mut self) -> ShutdownReport {
        info!("driver shutting down");
        // Stop accepting callers and requests; queued requests are answered "stopped".
        self.server = None;
        self.api_rx.close();
        while let Ok(req) = self.api_rx.try_recv() {
            drop(req);
        }
        let deadline = tokio::time::Instant::now() + self.shutdown_grace;
        // Commands the core already decided are sent and answered if the switch allows; their
        // answers no longer matter to a stopped core, only their delivery does.
        let unsent = self.core.shutdown(now());
        self.carry_out();
        self.spawn_waits();
        let core = &mut self.core;
        let waits = &mut self.waits;
        let _ = tokio::time::timeout_at(deadline, async {
            while let Some(done) = waits.join_next().await {
                for (ticket, _) in done.unwrap_or_default() {
                    core.delivered(ticket);
                }
            }
        })
        .await;
        let abandoned = self.core.commands_in_flight();
        self.waits.abort_all();
        self.connects.abort_all();
        self.refusals.abort_all();
        // Records: what is parked goes to the writer, then the writer empties its queue.
        let _ = tokio::time::timeout_at(deadline, self.records.flush()).await;
        // The last sender goes: the writer ends once its queue is empty.
        drop(self.records);
        let records_flushed = match self.writer.take() {
            Some(w) => matches!(tokio::time::timeout_at(deadline, w).await, Ok(Ok(()))),
            None => true,
        };
        self.session_tasks.abort_all();
        for c in &self.conns {
            if let Some(client) = &c.client {
                let _ = tokio::time::timeout_at(deadline, client.shutdown()).await;
            }
        }
        info!(abandoned, unsent, records_flushed, "driver stopped");
        let stats = self.core.stats();
        ShutdownReport {
            engine: self.core.into_engine(),
            commands_abandoned: abandoned,
            commands_unsent: unsent,
            records_flushed,
            stats,
        }
    }
}

/// Creates the request's future and polls it once, so that it takes its place in the
/// node's client queue now, in the loop's order. `unconstrained` keeps tokio's cooperative
/// budget from turning that first poll into a no-op. The no-op waker is replaced by the
/// task's own at the task's first poll.
fn start(client: Client, req: EslRequest) -> Started {
    let fut: PendingReply = match req {
        EslRequest::Api(line) => Box::pin(tokio::task::unconstrained(async move {
            client.api(&line).await.map(|b| Answer::Api(b.to_vec()))
        })),
        EslRequest::BgApi(line) => Box::pin(tokio::task::unconstrained(async move {
            client
                .bgapi(&line)
                .await
                .map(|job| Answer::Job(job.body().to_vec()))
        })),
        EslRequest::Execute { leg, app, arg, id } => {
            Box::pin(tokio::task::unconstrained(async move {
                let msg = switchyard_esl::codec::SendMsg::Execute {
                    app,
                    arg: Some(arg),
                    event_uuid: id,
                    event_lock: false,
                    async_: false,
                    loops: None,
                };
                let cmd = switchyard_esl::codec::Command::SendMsg {
                    uuid: Some(leg.to_string()),
                    msg,
                };
                client
                    .send(cmd)
                    .await
                    .map(|reply| Answer::Api(reply.text().as_bytes().to_vec()))
            }))
        }
    };
    first_poll(fut)
}

/// Polls a request future once with a waker that does nothing (see [`start`]).
fn first_poll(mut fut: PendingReply) -> Started {
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(r) => Started::Ready(r),
        Poll::Pending => Started::Waiting(fut),
    }
}

/// Waits for the answers of some tickets, in order (FreeSWITCH answers one connection's
/// `api`s in order, so waiting for them one by one costs nothing).
async fn wait_all(waiting: Vec<Waiting>) -> Answered {
    let mut done = Vec::with_capacity(waiting.len());
    for w in waiting {
        let mut replies = Vec::with_capacity(w.started.len());
        for s in w.started {
            replies.push(s.finish().await);
        }
        done.push((w.ticket, replies));
    }
    done
}

/// The next event of any node (nodes taken in turn from `turn`, so one busy node cannot
/// starve the others). A stream that ended answers `None` once; its node is then marked.
async fn next_event(conns: &mut [Conn], turn: usize) -> (usize, Option<ClientEvent>) {
    std::future::poll_fn(|cx| {
        let n = conns.len();
        for k in 0..n {
            let i = (turn + k) % n;
            let Some(events) = conns[i].events.as_mut() else {
                continue;
            };
            // `recv` only polls the channel: dropping it unfinished loses nothing, and the
            // channel keeps the waker registered by this poll.
            let fut = events.recv();
            let mut fut = std::pin::pin!(fut);
            if let Poll::Ready(ev) = fut.as_mut().poll(cx) {
                return Poll::Ready((i, ev));
            }
        }
        Poll::Pending
    })
    .await
}

/// The next caller socket, or never when the server is gone.
async fn accept(
    server: &mut Option<OutboundServer>,
) -> Option<switchyard_esl::server::OutboundSession> {
    match server {
        Some(s) => s.accept().await,
        None => std::future::pending().await,
    }
}

/// A slot in the record queue, or never when nothing is parked.
async fn reserve(
    tx: Option<mpsc::Sender<crate::io::Record>>,
) -> Result<mpsc::OwnedPermit<crate::io::Record>, mpsc::error::SendError<()>> {
    match tx {
        Some(tx) => tx.reserve_owned().await,
        None => std::future::pending().await,
    }
}
