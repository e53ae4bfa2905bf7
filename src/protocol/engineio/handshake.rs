//! The Engine.IO request query (`EIO`, `transport`, `sid`), its error codes, and the open packet.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// The one Engine.IO protocol revision this server speaks.
pub const PROTOCOL: &str = "4";

/// A transport a client can ask for in the `transport` query parameter.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl TransportKind {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::WebSocket => "websocket",
        }
    }

    /// The transport for a wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "polling" => Some(TransportKind::Polling),
            "websocket" => Some(TransportKind::WebSocket),
            _ => None,
        }
    }
}

/// Why a request was refused before reaching a session. The codes and messages are the
/// reference server's (`Server.errors` and `Server.errorMessages` in engine.io).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum RequestError {
    /// Code 0: the `transport` parameter is missing, unknown or not allowed.
    UnknownTransport = 0,
    /// Code 1: the `sid` names no open session.
    UnknownSid = 1,
    /// Code 2: a handshake (no `sid`) that is not a GET.
    BadHandshakeMethod = 2,
    /// Code 3: anything else wrong with the request.
    BadRequest = 3,
    /// Code 4: refused by the application or the origin policy.
    Forbidden = 4,
    /// Code 5: `EIO` is missing or not `4`.
    UnsupportedProtocolVersion = 5,
}

impl RequestError {
    /// The numeric code sent to the client.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reference message for the code.
    pub fn message(self) -> &'static str {
        match self {
            RequestError::UnknownTransport => "Transport unknown",
            RequestError::UnknownSid => "Session ID unknown",
            RequestError::BadHandshakeMethod => "Bad handshake method",
            RequestError::BadRequest => "Bad request",
            RequestError::Forbidden => "Forbidden",
            RequestError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP status: 403 for Forbidden, 400 for everything else, as the reference does.
    pub fn http_status(self) -> u16 {
        match self {
            RequestError::Forbidden => 403,
            _ => 400,
        }
    }

    /// The JSON body of the error response: `{"code":N,"message":"..."}`.
    pub fn json(self) -> String {
        format!(
            "{{\"code\":{},\"message\":\"{}\"}}",
            self.code(),
            self.message()
        )
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message(), self.code())
    }
}

impl std::error::Error for RequestError {}

/// The Engine.IO parameters of a request's query string, borrowed from it.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct EngineQuery<'a> {
    /// `EIO`: the protocol revision.
    pub eio: Option<&'a str>,
    /// `transport`: `polling` or `websocket`.
    pub transport: Option<&'a str>,
    /// `sid`: the session, absent on a handshake.
    pub sid: Option<&'a str>,
    /// `b64`: a protocol 3 client that cannot take binary polling payloads asks for base64
    /// (`b64=1`).
    pub b64: Option<&'a str>,
}

impl<'a> EngineQuery<'a> {
    /// Reads the Engine.IO parameters from a raw query string (`EIO=4&transport=polling`).
    /// Other parameters are ignored; the first occurrence of a parameter wins.
    pub fn parse(query: &'a str) -> Self {
        let mut out = EngineQuery::default();
        for (key, value) in query_pairs(query) {
            let slot = match key {
                "EIO" => &mut out.eio,
                "transport" => &mut out.transport,
                "sid" => &mut out.sid,
                "b64" => &mut out.b64,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        out
    }

    /// Checks the protocol revision and the transport against the allowed ones, in the
    /// reference server's order (transport first, then protocol).
    pub fn validate(&self, allowed: &[TransportKind]) -> Result<TransportKind, RequestError> {
        self.validate_with_eio3(allowed, false)
            .map(|(transport, _)| transport)
    }

    /// [`EngineQuery::validate`], also accepting protocol 3 when `allow_eio3` is on: as
    /// the reference server does then, any `EIO` other than `4` (missing included) is
    /// protocol 3. Returns the transport and whether the request speaks protocol 3.
    pub fn validate_with_eio3(
        &self,
        allowed: &[TransportKind],
        allow_eio3: bool,
    ) -> Result<(TransportKind, bool), RequestError> {
        let transport = self
            .transport
            .and_then(TransportKind::from_name)
            .filter(|t| allowed.contains(t))
            .ok_or(RequestError::UnknownTransport)?;
        let v3 = self.eio != Some(PROTOCOL);
        if v3 && !allow_eio3 {
            return Err(RequestError::UnsupportedProtocolVersion);
        }
        Ok((transport, v3))
    }
}

/// Splits a raw query string into raw `(key, value)` pairs, without percent-decoding.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// Percent-decodes a query component (`+` is a space), replacing invalid UTF-8.
pub fn percent_decode(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The JSON of the open packet of a protocol 3 session: as [`open_json`] without
/// `maxPayload`, which protocol 3 does not have.
///
/// ```
/// use sioloop::protocol::engineio::handshake::open_json_v3;
/// use std::time::Duration;
/// assert_eq!(
///     open_json_v3("abc", &["websocket"], Duration::from_millis(25000), Duration::from_millis(20000)),
///     r#"{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}"#
/// );
/// ```
pub fn open_json_v3(
    sid: &str,
    upgrades: &[&str],
    ping_interval: Duration,
    ping_timeout: Duration,
) -> String {
    let upgrades = serde_json::to_string(upgrades).unwrap_or_else(|_| "[]".into());
    let sid = serde_json::to_string(sid).unwrap_or_else(|_| "\"\"".into());
    format!(
        "{{\"sid\":{sid},\"upgrades\":{upgrades},\"pingInterval\":{},\"pingTimeout\":{}}}",
        ping_interval.as_millis(),
        ping_timeout.as_millis(),
    )
}

/// The JSON of the open packet: exactly `sid`, `upgrades`, `pingInterval`, `pingTimeout` and
/// `maxPayload`, as the reference server sends it.
///
/// ```
/// use sioloop::protocol::engineio::handshake::open_json;
/// use std::time::Duration;
/// assert_eq!(
///     open_json("abc", &["websocket"], Duration::from_millis(25000), Duration::from_millis(20000), 1_000_000),
///     r#"{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
/// );
/// ```
pub fn open_json(
    sid: &str,
    upgrades: &[&str],
    ping_interval: Duration,
    ping_timeout: Duration,
    max_payload: usize,
) -> String {
    let upgrades = serde_json::to_string(upgrades).unwrap_or_else(|_| "[]".into());
    let sid = serde_json::to_string(sid).unwrap_or_else(|_| "\"\"".into());
    format!(
        "{{\"sid\":{sid},\"upgrades\":{upgrades},\"pingInterval\":{},\"pingTimeout\":{},\"maxPayload\":{max_payload}}}",
        ping_interval.as_millis(),
        ping_timeout.as_millis(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransportKind::*;

    #[test]
    fn parses_and_validates_query() {
        let q = EngineQuery::parse("EIO=4&transport=polling&t=N8&sid=abc");
        assert_eq!(q.sid, Some("abc"));
        assert_eq!(q.validate(&[Polling, WebSocket]), Ok(Polling));
        assert_eq!(
            EngineQuery::parse("EIO=4&transport=flash").validate(&[Polling]),
            Err(RequestError::UnknownTransport)
        );
        assert_eq!(
            EngineQuery::parse("EIO=4&transport=websocket").validate(&[Polling]),
            Err(RequestError::UnknownTransport)
        );
        assert_eq!(
            EngineQuery::parse("transport=polling").validate(&[Polling]),
            Err(RequestError::UnsupportedProtocolVersion)
        );
        assert_eq!(
            EngineQuery::parse("EIO=3&transport=polling").validate(&[Polling]),
            Err(RequestError::UnsupportedProtocolVersion)
        );
        let v3 = EngineQuery::parse("EIO=3&transport=polling&b64=1");
        assert_eq!(v3.b64, Some("1"));
        assert_eq!(v3.validate_with_eio3(&[Polling], true), Ok((Polling, true)));
        assert_eq!(
            v3.validate_with_eio3(&[Polling], false),
            Err(RequestError::UnsupportedProtocolVersion)
        );
        assert_eq!(
            EngineQuery::parse("EIO=4&transport=polling").validate_with_eio3(&[Polling], true),
            Ok((Polling, false))
        );
    }

    #[test]
    fn error_json_matches_reference() {
        assert_eq!(
            RequestError::UnknownSid.json(),
            r#"{"code":1,"message":"Session ID unknown"}"#
        );
        assert_eq!(RequestError::Forbidden.http_status(), 403);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}
