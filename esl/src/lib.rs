//! switchyard-esl: FreeSWITCH's Event Socket, spoken exactly as FreeSWITCH 1.10 speaks it.
//!
//! - [`codec`]: the sans-IO codec. Bytes in, [`Message`]s out; [`Command`]s in, bytes out.
//!   Bounded (16 MiB bodies, a configurable header-block cap), resumable at any byte, and
//!   panic-free on any input.
//! - [`client`]: the inbound client (tokio): auth, api/bgapi, subscriptions, a bounded event
//!   stream that never stops reading the socket, heartbeat watchdog, reconnect, pooling.
//!
//! The run loop of anything built on the codec:
//! ```
//! use bytes::BytesMut;
//! use switchyard_esl::codec::{EslCodec, Message};
//!
//! let mut codec = EslCodec::default();
//! let mut buf = BytesMut::new();
//! // ... read from the socket into `buf`, then:
//! buf.extend_from_slice(b"Content-Type: auth/request\n\n");
//! while let Some(msg) = codec.decode_message(&mut buf)? {
//!     assert_eq!(msg, Message::AuthRequest);
//! }
//! # Ok::<(), switchyard_esl::EslError>(())
//! ```

pub mod client;
pub mod codec;
mod error;
pub mod server;
#[cfg(feature = "sim")]
pub mod sim;

pub use codec::{Command, Event, EventFormat, Message};
pub use error::EslError;
