//! Why a socket disconnected, with the reference server's strings, and why a connection to a
//! namespace was refused.

use crate::protocol::engineio::CloseReason;
use std::fmt;

/// Why a socket left its namespace. The strings are the reference server's.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum DisconnectReason {
    /// The client closed the connection.
    TransportClose,
    /// The connection failed.
    TransportError,
    /// The client stopped answering pings.
    PingTimeout,
    /// The client sent a packet that is not valid.
    ParseError,
    /// The server closed the client's connection (`close_connection`, or
    /// `socket.conn.close()` in the reference server).
    ForcedClose,
    /// The server closed the whole connection because another socket of it was
    /// disconnected with its connection.
    ForcedServerClose,
    /// The server is stopping.
    ServerShuttingDown,
    /// The client left the namespace (`socket.disconnect()` on the client).
    ClientNamespaceDisconnect,
    /// The server removed the socket from the namespace (`disconnect` on the server).
    ServerNamespaceDisconnect,
    /// The client did not read what was sent to it and its queue passed the limit.
    SlowConsumer,
}

impl DisconnectReason {
    /// Whether connection state recovery keeps a socket that left for this reason: the
    /// connection was lost or closed under it (`transport close`, `transport error`,
    /// `ping timeout`, `forced close`, `forced server close`, `server shutting down`, the
    /// reference server's list), not a deliberate disconnect from the namespace, a parse
    /// error or a slow consumer.
    ///
    /// ```
    /// use sioloop::DisconnectReason;
    /// assert!(DisconnectReason::PingTimeout.is_recoverable());
    /// assert!(!DisconnectReason::ClientNamespaceDisconnect.is_recoverable());
    /// ```
    pub fn is_recoverable(self) -> bool {
        matches!(
            self,
            DisconnectReason::TransportClose
                | DisconnectReason::TransportError
                | DisconnectReason::PingTimeout
                | DisconnectReason::ForcedClose
                | DisconnectReason::ForcedServerClose
                | DisconnectReason::ServerShuttingDown
        )
    }

    /// The reference server's string.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::ForcedServerClose => "forced server close",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::SlowConsumer => "slow consumer",
        }
    }
}

impl From<CloseReason> for DisconnectReason {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::TransportClose => DisconnectReason::TransportClose,
            CloseReason::TransportError => DisconnectReason::TransportError,
            CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            CloseReason::ParseError => DisconnectReason::ParseError,
            CloseReason::ForcedClose => DisconnectReason::ForcedClose,
            CloseReason::ServerShuttingDown => DisconnectReason::ServerShuttingDown,
            CloseReason::SlowConsumer => DisconnectReason::SlowConsumer,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal of a connection to a namespace, sent to the client as CONNECT_ERROR
/// `{"message": ..., "data": ...}`; the client sees it as a `connect_error` event.
///
/// ```
/// use sioloop::ConnectError;
/// let e = ConnectError::new("not authorized").with_data(serde_json::json!({"retry": false}));
/// assert_eq!(e.to_json(), r#"{"message":"not authorized","data":{"retry":false}}"#);
/// assert_eq!(ConnectError::new("a \"b\"").to_json(), r#"{"message":"a \"b\""}"#);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectError {
    /// The message (`err.message` on the client).
    pub message: String,
    /// Extra data (`err.data` on the client).
    pub data: Option<serde_json::Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> ConnectError {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }

    /// Adds data to the refusal.
    pub fn with_data(mut self, data: serde_json::Value) -> ConnectError {
        self.data = Some(data);
        self
    }

    /// The JSON sent in the CONNECT_ERROR packet (`message` first, as the reference).
    pub fn to_json(&self) -> String {
        // A string always serializes; a `Value` displays as compact JSON.
        let message = serde_json::to_string(&self.message).unwrap_or_else(|_| r#""error""#.into());
        match &self.data {
            Some(data) => format!(r#"{{"message":{message},"data":{data}}}"#),
            None => format!(r#"{{"message":{message}}}"#),
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}

/// Why an acknowledgement did not arrive.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum AckError {
    /// No answer within the timeout.
    Timeout,
    /// The socket disconnected before answering.
    Disconnected,
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AckError::Timeout => "operation has timed out",
            AckError::Disconnected => "socket has been disconnected",
        })
    }
}

impl std::error::Error for AckError {}
