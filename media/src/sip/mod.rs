//! The recorder endpoint: a minimal SIP user agent server that answers only the recorder legs
//! switchyard asked FreeSWITCH for, and routes their RTP into the `net` recorder's captures.
//!
//! How a leg is named: the engine originates
//! `sofia/<profile>/rec-<call uuid>-a@<endpoint address>` (and `-b`) and, before that, tells
//! the endpoint to expect the Request-URI user `rec-<call uuid>-a` for recording `key`, leg
//! [`Leg::Caller`](crate::Leg) (`SipCommand::Expect`). The user part is chosen over an
//! `X-` header because it needs nothing from the switch's configuration and shows in every
//! SIP trace; the uuid in it is unguessable, so it doubles as the token. An INVITE for any
//! other user gets 404 and binds nothing; a second INVITE for a used name gets 404 too.
//!
//! RTP: every answer names the recorder's one RTP socket (`net::UdpRecorder`), which
//! routes datagrams by their source address: FreeSWITCH sends from the address its offer
//! names (symmetric RTP), so that address is what a leg is routed by. One socket serves
//! every leg (recvmmsg reads them in batches); binding a port per leg would cost a socket
//! and a task per leg for nothing the routing needs.
//!
//! mod_oreka's forks (`oreka`) are the exception: announced by the forked channel's uuid
//! (`SipCommand::ExpectFork`), they ignore the answer and send RTP to the port number they
//! chose, so each direction gets a socket of its own on that port (`RecorderCommand::Listen`).
//!
//! Which SIP crate, and why (checked Dec 2026 on this machine's registry, stable 1.95):
//! - `ezk-sip-ua` 0.9 / `ezk-sip-core` 0.9: a full endpoint (transactions, transports, TLS
//!   options); 207 / 160 crates in `cargo tree`, and its transaction layer owns the socket,
//!   so the core could not be driven sans-IO like the rest of this crate.
//! - `rsipstack` 0.7: 168 crates with default features (rustls, websocket, DNS SRV); again a
//!   stack that owns its transports and timers.
//! - `rsip` 0.4 (message types only): 39 crates, among them old sha2 0.9, md-5 and uuid 0.8
//!   beside the workspace's newer ones; last released 2022.
//! - `ezk-sip-types` 0.6 (message types and parser only): 12 crates (nom 7, bytes, bytesstr,
//!   memchr, anyhow), maintained with ezk (2025 releases), `forbid(unsafe_code)`. Chosen: it
//!   parses lines, the request line, URIs and the typed headers used here. Its sibling
//!   `ezk-sdp-types` 0.6 parses the SDP offer (6 crates more, thiserror among them). The
//!   transaction cache, the dialogs and the SDP answer are this module's own, small and
//!   sans-IO; both parsers are fed arbitrary and mutated datagrams by tests/sip_core.rs.
//!
//! Layout: `message` (datagram -> request facts), `oreka` (mod_oreka's datagrams), `sdp` (offer -> answer), `uas` (the
//! sans-IO core: dialogs, transactions, bounds), `endpoint` (the tokio shell).

mod endpoint;
mod message;
mod oreka;
mod sdp;
mod uas;

pub use endpoint::{SipCommand, SipEndpoint};
pub use oreka::wire as oreka_wire;
pub use sdp::{Direction, Negotiated, Refusal, negotiate};
pub use uas::{EndReason, LegEvent, SipStats, Uas, UasConfig, UasOutput};
