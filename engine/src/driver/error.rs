//! The driver's errors. The core's own [`EngineError`] passes through unchanged; everything
//! else is about the switch, the sockets, or a driver that has stopped.

use crate::error::EngineError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The core refused the command (the API layer maps these to 4xx).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The Event Socket client or the outbound server failed (connect, bind, auth).
    #[error("event socket: {0}")]
    Esl(#[from] switchyard_esl::EslError),
    /// Binding the outbound-socket listener failed.
    #[error("outbound listener: {0}")]
    Io(#[from] std::io::Error),
    /// The driver has stopped (shut down, or its task ended); nothing was done.
    #[error("the driver has stopped")]
    Stopped,
    /// A value that would change the meaning of an Event Socket command if sent as is (a space
    /// inside a uuid or dial string, a newline anywhere). Nothing was sent.
    #[error("unsafe {field} for an event socket command: {value:?}")]
    UnsafeArgument { field: &'static str, value: String },
    /// The recorder endpoint could not start (its sockets could not be bound).
    #[error("recorder endpoint: {0}")]
    Media(#[from] switchyard_media::MediaError),
    /// The configuration cannot work (two nodes with one name...). Nothing was started.
    #[error("driver configuration: {0}")]
    Config(String),
}
