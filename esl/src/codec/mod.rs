//! The sans-IO Event Socket codec.
//!
//! ```text
//!  bytes ──FrameDecoder──▶ Frame ──Message::from_frame──▶ Message (Event, Reply, ...)
//!  Command ──Command::encode──▶ bytes
//! ```
//! [`EslCodec`] wraps both for `tokio_util::codec::Framed` on our side; [`SwitchCodec`] is the
//! mirror image (commands in, messages out) for the fake switch and test peers.

mod command;
mod event;
mod frame;
mod headers;
mod json_fast;
mod message;
pub mod percent;
mod xml;

pub use command::{Command, CommandDecoder, CommandFrame, EventSet, LogLevel, SendMsg};
pub use event::{Event, EventFormat};
pub use frame::{DecoderLimits, Frame, FrameDecoder, MAX_CONTENT_LENGTH};
pub use headers::{ARRAY_PREFIX, Header, Headers, UNDEF, join_array, split_array};
pub use message::{DisconnectNotice, Disposition, LogData, Message, Reply};

use bytes::BytesMut;

use crate::error::EslError;

/// Our side of the protocol: decodes [`Message`]s, encodes [`Command`]s.
#[derive(Debug, Default)]
pub struct EslCodec {
    frames: FrameDecoder,
}

impl EslCodec {
    pub fn new(limits: DecoderLimits) -> Self {
        EslCodec {
            frames: FrameDecoder::new(limits),
        }
    }

    /// Takes the next whole message off `buf`.
    pub fn decode_message(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, EslError> {
        self.frames.decode_message(buf)
    }

    /// Whether bytes of an unfinished message are buffered.
    pub fn in_frame(&self, buf: &BytesMut) -> bool {
        self.frames.in_frame(buf)
    }
}

impl tokio_util::codec::Decoder for EslCodec {
    type Item = Message;
    type Error = EslError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, EslError> {
        self.decode_message(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Message>, EslError> {
        match self.decode_message(src)? {
            Some(m) => Ok(Some(m)),
            None if self.in_frame(src) => Err(EslError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed in the middle of a message",
            ))),
            None => Ok(None),
        }
    }
}

impl tokio_util::codec::Encoder<&Command> for EslCodec {
    type Error = EslError;
    fn encode(&mut self, item: &Command, dst: &mut BytesMut) -> Result<(), EslError> {
        item.encode(dst)
    }
}

impl tokio_util::codec::Encoder<Command> for EslCodec {
    type Error = EslError;
    fn encode(&mut self, item: Command, dst: &mut BytesMut) -> Result<(), EslError> {
        item.encode(dst)
    }
}

/// The switch's side of the protocol: decodes commands, encodes messages.
#[derive(Debug, Default)]
pub struct SwitchCodec {
    commands: CommandDecoder,
}

impl SwitchCodec {
    pub fn new(limits: DecoderLimits) -> Self {
        SwitchCodec {
            commands: CommandDecoder::new(limits),
        }
    }
}

impl tokio_util::codec::Decoder for SwitchCodec {
    type Item = CommandFrame;
    type Error = EslError;
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<CommandFrame>, EslError> {
        self.commands.decode(src)
    }
}

impl tokio_util::codec::Encoder<&Message> for SwitchCodec {
    type Error = EslError;
    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), EslError> {
        item.encode(dst);
        Ok(())
    }
}

impl tokio_util::codec::Encoder<Message> for SwitchCodec {
    type Error = EslError;
    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), EslError> {
        item.encode(dst);
        Ok(())
    }
}
