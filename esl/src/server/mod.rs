//! The outbound Event Socket server (FreeSWITCH's `socket` application connects to us).
//!
//! Dialplan `<action application="socket" data="host:port async full"/>` makes FreeSWITCH
//! open one TCP connection per channel. It sends nothing until we speak; the server sends
//! `connect` at once and hands out the session once the channel data has arrived.
//!
//! The run loop:
//! ```no_run
//! use std::time::Duration;
//! use switchyard_esl::server::{OutboundServer, OutboundSession, ServerConfig, SessionEvent};
//!
//! async fn call(session: OutboundSession) -> Result<(), switchyard_esl::EslError> {
//!     let dest = session.channel_data().caller("Destination-Number").map(|d| d.into_owned());
//!     let (handle, mut events) = session.into_parts();
//!     handle.myevents().await?;
//!     handle.linger(None).await?; // keep the socket after hangup: no lost events
//!     handle.execute("answer", None).await?;
//!     let done = handle.execute("playback", Some("ivr/ivr-welcome.wav")).await?;
//!     println!("{dest:?}: {:?}", done.application_response());
//!     handle.hangup("NORMAL_CLEARING").await?;
//!     while let Some(ev) = events.recv().await {
//!         if let SessionEvent::Disconnect { .. } | SessionEvent::Shutdown = ev {
//!             break;
//!         }
//!     }
//!     handle.exit().await
//! }
//!
//! # async fn run() -> Result<(), switchyard_esl::EslError> {
//! let mut server = OutboundServer::bind("127.0.0.1:8084", ServerConfig::default()).await?;
//! loop {
//!     tokio::select! {
//!         Some(session) = server.accept() => { tokio::spawn(call(session)); }
//!         _ = tokio::time::sleep(Duration::from_secs(3600)) => break, // your stop signal
//!     }
//! }
//! server.shutdown(Duration::from_secs(30)).await;
//! # Ok(()) }
//! ```
//!
//! Bounds: `max_connections` (excess sockets are closed and counted), per session a command
//! queue, an in-flight reply window, a table of waiting executions and an event queue that
//! drops the newest events when full (counted, reported as [`SessionEvent::Lagged`]) so the
//! socket is always read. See [`SessionConfig`].

mod config;
mod listener;
mod session;

pub use config::{ServerConfig, SessionConfig};
pub use listener::{OutboundServer, ServerStats, ShutdownReport};
pub use session::{ExecuteOptions, OutboundSession, SessionEvent, SessionEvents, SessionHandle};
