//! The inbound Event Socket client (switchyard connects to FreeSWITCH on port 8021).
//!
//! ```no_run
//! use switchyard_esl::client::{Auth, Client, ClientConfig, ClientEvent};
//!
//! # async fn run() -> Result<(), switchyard_esl::EslError> {
//! let config = ClientConfig::new("127.0.0.1:8021", Auth::Password("ClueCon".into()))
//!     .events("CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE CUSTOM callcenter::info");
//! let (client, mut events) = Client::connect(config).await?;
//! let status = client.api("status").await?;
//! let job = client.bgapi("originate loopback/7001/default &park()").await?;
//! while let Some(ev) = events.recv().await {
//!     match ev {
//!         ClientEvent::Event(e) => println!("{}", e.to_json_string()),
//!         ClientEvent::Connected { switch_restarted: true, .. } => { /* resync state */ }
//!         _ => {}
//!     }
//! }
//! client.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Behaviour worth knowing:
//! - **Replies.** FreeSWITCH answers every command once, in order; a FIFO of waiters pairs them.
//!   `api` runs inline in the switch and blocks the connection until it returns: use
//!   [`ClientPool`] to run several at once.
//! - **bgapi.** The client picks the Job-UUID (`Job-UUID` header) and registers the waiter
//!   before the command is written; the result is the BACKGROUND_JOB event with that UUID.
//! - **Events.** See [`EventStream`] for the overflow policy: the socket is always read, the
//!   newest events are dropped and counted when the consumer is behind.
//! - **Reconnect.** Lost connections (EOF, I/O error, undecodable data, no byte for
//!   `heartbeat_timeout`) are re-opened with exponential backoff and jitter; auth, the event
//!   subscription and the filters (including changes made at runtime) are re-applied. Requests
//!   awaiting a reply fail with [`EslError::ConnectionClosed`] and are never re-sent; bgapi jobs
//!   the switch had accepted keep waiting for their BACKGROUND_JOB unless the switch restarted.
//! - **Restarts.** After every (re)connect the client reads `core_uuid`; a change is reported as
//!   [`ClientEvent::Connected`] with `switch_restarted: true`.
//! - **Fatal errors.** A refused password ([`EslError::AuthFailed`]) stops the client: it is
//!   returned by `connect`, or ends the stream (see [`EventStream::take_error`]) if it happens on
//!   a reconnect. There is no retry storm.

mod backoff;
mod config;
mod connection;
mod pool;
mod stream;
mod subscriptions;

use std::borrow::Cow;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

pub use config::{Auth, BackoffConfig, ClientConfig};
pub use pool::ClientPool;
pub use stream::{ClientEvent, EventStream};

use crate::codec::{Command, Event, EventFormat, EventSet, Reply};
use crate::error::EslError;
use connection::{Request, Response, ShutdownTx, Supervisor};
use stream::{EventSink, STATUS_RESERVE};
use subscriptions::Change;

/// State shared by the handles, the stream and the connection task.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    dropped: AtomicU64,
    /// Events and log lines in the stream's queue, not yet taken by the consumer.
    queued: AtomicUsize,
    /// api/bgapi calls in progress through the handles (the pool balances on it).
    in_flight: AtomicUsize,
    closed: AtomicBool,
    shut_down: AtomicBool,
    fatal: Mutex<Option<EslError>>,
}

/// The result of a bgapi job: its BACKGROUND_JOB event.
#[derive(Clone, Debug, PartialEq)]
pub struct JobResult {
    job_uuid: String,
    event: Event,
}

impl JobResult {
    /// The Job-UUID the client chose for this job.
    pub fn job_uuid(&self) -> &str {
        &self.job_uuid
    }
    /// The command's output (`+OK <uuid>\n`, `-ERR NO_ROUTE_DESTINATION\n`...).
    pub fn body(&self) -> &[u8] {
        self.event.body().map_or(&[], |b| b.as_ref())
    }
    pub fn body_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.body())
    }
    /// Whether the output starts with `+OK`.
    pub fn is_ok(&self) -> bool {
        self.body().starts_with(b"+OK")
    }
    /// The whole BACKGROUND_JOB event (`Job-Command`, `Job-Command-Arg`, `Core-UUID`...).
    pub fn event(&self) -> &Event {
        &self.event
    }
}

/// A handle on one inbound connection. Cheap to clone; every clone drives the same connection.
/// The connection shuts down after [`shutdown`](Self::shutdown), or when every handle is gone.
#[derive(Clone, Debug)]
pub struct Client {
    tx: mpsc::Sender<Request>,
    shutdown: mpsc::Sender<ShutdownTx>,
    shared: Arc<Shared>,
    config: Arc<ClientConfig>,
}

impl Client {
    /// Connects, authenticates and subscribes. Errors of this first attempt are returned
    /// (`AuthFailed`, `AccessDenied`, connection refused, timeouts); after it, a lost connection
    /// is reported on the stream and re-opened in the background.
    pub async fn connect(config: ClientConfig) -> Result<(Client, EventStream), EslError> {
        let config = Arc::new(config);
        let shared = Arc::new(Shared::default());
        let (tx, requests) = mpsc::channel(config.max_pending.max(1));
        // Few callers ever ask to shut down; more than this many at once wait their turn.
        let (shutdown, shutdowns) = mpsc::channel(16);
        let capacity = config.event_capacity.max(1);
        let (events_tx, events_rx) = mpsc::channel(capacity + STATUS_RESERVE);
        let (ready_tx, ready_rx) = oneshot::channel();
        let sink = EventSink::new(events_tx, Arc::clone(&shared), capacity);
        let supervisor = Supervisor::new(
            Arc::clone(&config),
            Arc::clone(&shared),
            requests,
            shutdowns,
            sink,
            ready_tx,
        );
        tokio::spawn(supervisor.run());
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(EslError::ConnectionClosed),
        }
        let stream = EventStream::new(events_rx, Arc::clone(&shared));
        let client = Client {
            tx,
            shutdown,
            shared,
            config,
        };
        Ok((client, stream))
    }

    /// `api <command>`: the response body, whatever it says (`-ERR ...` included: FreeSWITCH
    /// reports command failures in the body). Waits at most `command_timeout`.
    pub async fn api(&self, command: &str) -> Result<Bytes, EslError> {
        let _busy = self.busy();
        let cmd = Command::Api {
            command: command.to_owned(),
        };
        let response = self
            .call(
                |tx| Request::Command { cmd, tx },
                self.config.command_timeout,
                "api/response",
            )
            .await?;
        match response {
            Response::Api(body) => Ok(body),
            Response::Reply(reply) => Err(EslError::Rejected {
                command: format!("api {command}"),
                reply: reply.text().into_owned(),
            }),
            Response::Recorded => Err(EslError::Protocol {
                reason: "api answered without a response".into(),
            }),
        }
    }

    /// `bgapi <command>` with a Job-UUID of our own; resolves with the BACKGROUND_JOB result.
    /// Waits at most `bgapi_timeout` in all. A job the switch refused is
    /// [`EslError::Rejected`]; a job whose `+OK` was lost with the connection is
    /// [`EslError::ConnectionClosed`] (it may have run).
    pub async fn bgapi(&self, command: &str) -> Result<JobResult, EslError> {
        let _busy = self.busy();
        let job_uuid = uuid::Uuid::new_v4().to_string();
        let command = command.to_owned();
        self.call(
            |tx| Request::BgApi {
                command,
                job_uuid,
                tx,
            },
            self.config.bgapi_timeout,
            "BACKGROUND_JOB",
        )
        .await
    }

    /// Sends a command and returns its `command/reply` (check [`Reply::is_ok`]).
    ///
    /// `event`, `nixevent`, `noevents`, `filter` and `filter delete` go through the recorded
    /// subscription, exactly like [`subscribe`](Self::subscribe) and friends, so they survive
    /// reconnects; while disconnected they are recorded and this returns
    /// [`EslError::ConnectionClosed`]. `api`/`bgapi` have their own methods, and `auth`,
    /// `connect` and `exit` belong to the client: those are [`EslError::InvalidCommand`].
    pub async fn send(&self, cmd: Command) -> Result<Reply, EslError> {
        let response = match cmd {
            Command::Api { .. } | Command::BgApi { .. } => {
                return Err(invalid("use Client::api or Client::bgapi"));
            }
            Command::Auth { .. } | Command::UserAuth { .. } | Command::Connect | Command::Exit => {
                return Err(invalid("auth, connect and exit are managed by the client"));
            }
            Command::Event { format, events } => {
                self.change(Change::Subscribe {
                    format: Some(format),
                    events,
                })
                .await?
            }
            Command::NixEvent { events } => self.change(Change::Unsubscribe(events)).await?,
            Command::NoEvents => self.change(Change::NoEvents).await?,
            Command::Filter { header, value } => {
                self.change(Change::Filter { header, value }).await?
            }
            Command::FilterDelete { header, value } => {
                self.change(Change::FilterDelete { header, value }).await?
            }
            cmd => {
                self.call(
                    |tx| Request::Command { cmd, tx },
                    self.config.command_timeout,
                    "command/reply",
                )
                .await?
            }
        };
        match response {
            Response::Reply(reply) => Ok(reply),
            Response::Recorded => Err(EslError::ConnectionClosed),
            Response::Api(_) => Err(EslError::Protocol {
                reason: "api/response to a command".into(),
            }),
        }
    }

    /// Adds events to the subscription (`event <format> ...`, FreeSWITCH adds to what is there).
    /// Recorded: re-applied after every reconnect, and applied later if disconnected now.
    pub async fn subscribe(&self, events: EventSet) -> Result<(), EslError> {
        self.change_checked(Change::Subscribe {
            format: None,
            events,
        })
        .await
    }

    /// Like [`subscribe`](Self::subscribe), also switching the wire format.
    pub async fn subscribe_as(
        &self,
        format: EventFormat,
        events: EventSet,
    ) -> Result<(), EslError> {
        self.change_checked(Change::Subscribe {
            format: Some(format),
            events,
        })
        .await
    }

    /// Removes events from the subscription (`nixevent`). BACKGROUND_JOB and HEARTBEAT stay
    /// subscribed at the switch (the client needs them) but are no longer delivered.
    pub async fn unsubscribe(&self, events: EventSet) -> Result<(), EslError> {
        self.change_checked(Change::Unsubscribe(events)).await
    }

    /// Adds a filter (`filter <header> <value>`). Recorded like subscriptions.
    pub async fn filter(&self, header: &str, value: &str) -> Result<(), EslError> {
        self.change_checked(Change::Filter {
            header: header.to_owned(),
            value: value.to_owned(),
        })
        .await
    }

    /// Deletes filters (`filter delete <header> [<value>]`; header `all` deletes every filter).
    pub async fn filter_delete(&self, header: &str, value: Option<&str>) -> Result<(), EslError> {
        self.change_checked(Change::FilterDelete {
            header: header.to_owned(),
            value: value.map(str::to_owned),
        })
        .await
    }

    /// Sends `exit`, waits (at most `shutdown_timeout`) for the switch to close, and stops:
    /// no reconnect, waiters fail with [`EslError::Shutdown`], the event stream ends.
    pub async fn shutdown(&self) -> Result<(), EslError> {
        let (done, finished) = oneshot::channel();
        if self.shutdown.send(done).await.is_err() {
            return Ok(()); // Already stopped.
        }
        // The task answers within shutdown_timeout, or a backoff/connect step at worst.
        let _ = finished.await;
        Ok(())
    }

    /// Events dropped so far because the stream was not read fast enough.
    pub fn dropped_events(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// api/bgapi calls in progress through this connection.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Whether the client has stopped for good (shutdown or fatal error).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    // ---- internals -----------------------------------------------------------------------

    async fn change_checked(&self, change: Change) -> Result<(), EslError> {
        match self.change(change).await? {
            Response::Reply(reply) if !reply.is_ok() => Err(EslError::Rejected {
                command: "subscription change".into(),
                reply: reply.text().into_owned(),
            }),
            _ => Ok(()),
        }
    }

    async fn change(&self, change: Change) -> Result<Response, EslError> {
        // Refuse a bad word now rather than record it and replay it on every reconnect.
        change.command().to_bytes()?;
        self.call(
            |tx| Request::Subscription { change, tx },
            self.config.command_timeout,
            "command/reply",
        )
        .await
    }

    /// Queues a request and awaits its answer, both within `wait`.
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, EslError>>) -> Request,
        wait: Duration,
        what: &'static str,
    ) -> Result<T, EslError> {
        let (tx, rx) = oneshot::channel();
        let request = make(tx);
        let exchange = async {
            self.tx
                .send(request)
                .await
                .map_err(|_| self.stopped_error())?;
            rx.await.map_err(|_| self.stopped_error())?
        };
        with_timeout(wait, what, exchange).await
    }

    fn stopped_error(&self) -> EslError {
        if self.shared.shut_down.load(Ordering::Acquire) {
            EslError::Shutdown
        } else {
            EslError::ConnectionClosed
        }
    }

    fn busy(&self) -> Busy<'_> {
        self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(&self.shared)
    }
}

async fn with_timeout<T>(
    wait: Duration,
    what: &'static str,
    fut: impl Future<Output = Result<T, EslError>>,
) -> Result<T, EslError> {
    tokio::time::timeout(wait, fut)
        .await
        .map_err(|_| EslError::Timeout { what, after: wait })?
}

fn invalid(reason: &str) -> EslError {
    EslError::InvalidCommand {
        reason: reason.to_owned(),
    }
}

/// Counts a call in flight for as long as it lives (dropped on return, error or cancel).
struct Busy<'a>(&'a Shared);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
