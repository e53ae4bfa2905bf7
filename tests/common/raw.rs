//! Raw clients for the integration tests: a small HTTP/1.1 client over `std::net::TcpStream`
//! (keep-alive aware), Engine.IO polling helpers, and a `tungstenite` WebSocket client. Every
//! socket has read and write timeouts, so a missing answer fails a test instead of hanging it.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::Message;
use tungstenite::protocol::WebSocket;

/// How long any read waits before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The Engine.IO record separator of polling payloads.
pub const SEP: char = '\x1e';

/// A parsed HTTP response.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked if the server used chunked encoding).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone())
            .unwrap_or_else(|_| panic!("response body is not UTF-8: {:?}", self.body))
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {:?}", self.text()))
    }
}

/// One HTTP/1.1 client connection; several requests may be sent on it in turn.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    host: String,
}

impl Conn {
    /// Connects to `addr` with read and write timeouts of [`READ_TIMEOUT`].
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(READ_TIMEOUT))
            .expect("set write timeout");
        stream.set_nodelay(true).expect("set nodelay");
        Conn {
            stream,
            buf: Vec::new(),
            host: addr.to_string(),
        }
    }

    /// Writes one request. A `Host` header is always added; `Content-Length` (and a text
    /// content type, as the JavaScript client sends) whenever there is a body or the method
    /// is POST.
    pub fn send(&mut self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        if method == "POST" || !body.is_empty() {
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                req.push_str("Content-Type: text/plain;charset=UTF-8\r\n");
            }
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("write {method} {target}: {e}"));
    }

    /// Reads more bytes into the buffer; `Ok(0)` at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads until the buffer holds at least `len` bytes.
    fn fill_to(&mut self, len: usize) -> io::Result<()> {
        while self.buf.len() < len {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF with {} of {len} bytes", self.buf.len()),
                ));
            }
        }
        Ok(())
    }

    /// Reads a CRLF-terminated line (without the CRLF) from the buffer.
    fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF in line"));
            }
        }
    }

    /// Reads one response: the status line, the headers, and a `Content-Length`, chunked or
    /// read-to-EOF body. `head_request` says whether the request was a HEAD (no body).
    pub fn try_read_response(&mut self, head_request: bool) -> io::Result<Response> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if self.buf.len() > 64 * 1024 {
                return Err(io::Error::other("response head larger than 64 KiB"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "EOF before a complete response head (got {:?})",
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(io::Error::other(format!("bad status line {status_line:?}")));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| io::Error::other(format!("bad header line {line:?}")))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(response);
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            loop {
                let size_line = self.read_line()?;
                let size_hex = size_line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size_hex, 16)
                    .map_err(|_| io::Error::other(format!("bad chunk size {size_line:?}")))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while !self.read_line()?.is_empty() {}
                    break;
                }
                self.fill_to(size + 2)?;
                response.body.extend_from_slice(&self.buf[..size]);
                if &self.buf[size..size + 2] != b"\r\n" {
                    return Err(io::Error::other("chunk not followed by CRLF"));
                }
                self.buf.drain(..size + 2);
            }
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| io::Error::other(format!("bad Content-Length {len:?}")))?;
            self.fill_to(len)?;
            response.body = self.buf.drain(..len).collect();
        } else {
            while self.fill()? != 0 {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(response)
    }

    /// Reads one response, failing the test on a timeout or a malformed response.
    pub fn read_response(&mut self) -> Response {
        self.try_read_response(false)
            .unwrap_or_else(|e| panic!("reading an HTTP response: {e}"))
    }

    /// Sends a request and reads its response.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.send(method, target, headers, body);
        self.try_read_response(method == "HEAD")
            .unwrap_or_else(|e| panic!("response to {method} {target}: {e}"))
    }

    /// Checks that no response byte arrives within `wait` (a held long-polling GET).
    pub fn assert_no_response_within(&mut self, wait: Duration, what: &str) {
        assert!(
            self.buf.is_empty(),
            "{what}: unexpected bytes already received: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        self.stream
            .set_read_timeout(Some(wait))
            .expect("set read timeout");
        let mut byte = [0u8; 1];
        let got = self.stream.peek(&mut byte);
        self.stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set read timeout");
        match got {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Ok(0) => panic!("{what}: the server closed the connection instead of holding it"),
            Ok(_) => {
                let early = self.try_read_response(false);
                panic!("{what}: expected the request to be held, but got {early:?}")
            }
            Err(e) => panic!("{what}: expected the request to be held, but reading failed: {e}"),
        }
    }

    /// Whether the server closes the connection (EOF or reset) within `wait`, with no more
    /// response bytes.
    pub fn closed_by_peer_within(&mut self, wait: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        self.stream
            .set_read_timeout(Some(wait))
            .expect("set read timeout");
        let mut byte = [0u8; 1];
        let r = self.stream.read(&mut byte);
        self.stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set read timeout");
        match r {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
        }
    }
}

/// One request on a new connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    Conn::open(addr).request(method, target, headers, body)
}

/// `GET target` on a new connection.
pub fn get(addr: SocketAddr, target: &str) -> Response {
    request(addr, "GET", target, &[], b"")
}

/// `POST target` with `body` on a new connection.
pub fn post(addr: SocketAddr, target: &str, body: &[u8]) -> Response {
    request(addr, "POST", target, &[], body)
}

/// The polling URL of a session.
pub fn poll_url(sid: &str) -> String {
    format!("/engine.io/?EIO=4&transport=polling&sid={sid}")
}

/// The polling handshake URL.
pub const HANDSHAKE_URL: &str = "/engine.io/?EIO=4&transport=polling";

/// The settings the open packet must carry.
#[derive(Clone, Copy, Debug)]
pub struct Expected {
    /// `pingInterval` in ms.
    pub ping_interval: u64,
    /// `pingTimeout` in ms.
    pub ping_timeout: u64,
    /// `maxPayload` in bytes.
    pub max_payload: u64,
}

impl Expected {
    /// The defaults of the echo example (the reference server's).
    pub const DEFAULTS: Expected = Expected {
        ping_interval: 25_000,
        ping_timeout: 20_000,
        max_payload: 1_000_000,
    };
}

/// Checks that a sid is 20 characters of url-safe base64.
pub fn assert_sid_format(sid: &str) {
    assert_eq!(sid.len(), 20, "sid {sid:?} should be 20 characters");
    assert!(
        sid.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "sid {sid:?} should be url-safe base64"
    );
}

/// Checks an open packet (`0{json}`) and returns its sid: exactly the five keys, with these
/// upgrades and settings.
pub fn assert_open_packet(packet: &str, upgrades: &[&str], expected: Expected) -> String {
    let json = packet
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("open packet should start with 0: {packet:?}"));
    let value: Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("open packet JSON does not parse ({e}): {json:?}"));
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("open packet JSON is not an object: {json:?}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "maxPayload",
            "pingInterval",
            "pingTimeout",
            "sid",
            "upgrades"
        ],
        "open packet keys in {json:?}"
    );
    let sid = object["sid"]
        .as_str()
        .unwrap_or_else(|| panic!("sid is not a string in {json:?}"))
        .to_owned();
    assert_sid_format(&sid);
    assert_eq!(
        object["upgrades"],
        serde_json::json!(upgrades),
        "upgrades in {json:?}"
    );
    assert_eq!(
        object["pingInterval"],
        serde_json::json!(expected.ping_interval),
        "pingInterval in {json:?}"
    );
    assert_eq!(
        object["pingTimeout"],
        serde_json::json!(expected.ping_timeout),
        "pingTimeout in {json:?}"
    );
    assert_eq!(
        object["maxPayload"],
        serde_json::json!(expected.max_payload),
        "maxPayload in {json:?}"
    );
    sid
}

/// A polling handshake; checks the response and returns the sid.
pub fn handshake(addr: SocketAddr, expected: Expected) -> String {
    let res = get(addr, HANDSHAKE_URL);
    assert_eq!(res.status, 200, "handshake status; body {:?}", res.text());
    assert_open_packet(&res.text(), &["websocket"], expected)
}

/// Checks an Engine.IO error response: HTTP 400 (403 for code 4 `Forbidden`, as the
/// reference) with exactly `{"code":N,"message":"..."}`.
pub fn assert_error(res: &Response, code: u64, message: &str, what: &str) {
    let status = if code == 4 { 403 } else { 400 };
    assert_eq!(
        res.status,
        status,
        "{what}: expected HTTP {status}, got {} with body {:?}",
        res.status,
        String::from_utf8_lossy(&res.body)
    );
    let body: Value = serde_json::from_slice(&res.body).unwrap_or_else(|e| {
        panic!(
            "{what}: error body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&res.body)
        )
    });
    assert_eq!(
        body,
        serde_json::json!({ "code": code, "message": message }),
        "{what}: error body"
    );
}

/// Splits a polling payload into its packets.
pub fn packets(body: &str) -> Vec<String> {
    body.split(SEP).map(str::to_owned).collect()
}

/// GETs on the session (each on a new connection) until `n` packets have arrived; fails if
/// more arrive.
pub fn collect_packets(addr: SocketAddr, sid: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let res = get(addr, &poll_url(sid));
        assert_eq!(res.status, 200, "polling GET; body {:?}", res.text());
        out.extend(packets(&res.text()));
    }
    assert_eq!(out.len(), n, "more packets than expected: {out:?}");
    out
}

/// Checks that a session closed without a GET held is forgotten, as the reference server
/// forgets it: the next GET and POST for its sid get HTTP 400 code 1, not the packets that
/// were queued.
pub fn assert_session_gone(addr: SocketAddr, sid: &str, what: &str) {
    let res = get(addr, &poll_url(sid));
    assert_error(
        &res,
        1,
        "Session ID unknown",
        &format!("{what}: GET on the closed session"),
    );
    let res = post(addr, &poll_url(sid), b"4x");
    assert_error(
        &res,
        1,
        "Session ID unknown",
        &format!("{what}: POST on the closed session"),
    );
}

/// A WebSocket client over a std TcpStream.
pub type Ws = WebSocket<TcpStream>;

/// Opens a WebSocket to `/engine.io/?{query}`. Returns the socket and the handshake status
/// (always 101 on success).
pub fn ws_connect(addr: SocketAddr, query: &str) -> Ws {
    ws_connect_path(addr, "/engine.io/", query)
}

/// Opens a WebSocket to `{path}?{query}`.
pub fn ws_connect_path(addr: SocketAddr, path: &str, query: &str) -> Ws {
    let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("set read timeout");
    stream
        .set_write_timeout(Some(READ_TIMEOUT))
        .expect("set write timeout");
    stream.set_nodelay(true).expect("set nodelay");
    let url = format!("ws://{addr}{path}?{query}");
    match tungstenite::client::client(url.as_str(), stream) {
        Ok((ws, response)) => {
            assert_eq!(
                response.status().as_u16(),
                101,
                "WebSocket handshake to {url}"
            );
            ws
        }
        Err(e) => panic!("WebSocket handshake to {url} failed: {e}"),
    }
}

/// Sets the read timeout of a WebSocket's stream.
pub fn ws_set_timeout(ws: &mut Ws, timeout: Duration) {
    ws.get_mut()
        .set_read_timeout(Some(timeout))
        .expect("set read timeout");
}

/// Reads the next data or close message, skipping WebSocket-level pings and pongs.
pub fn ws_next(ws: &mut Ws) -> tungstenite::Result<Message> {
    loop {
        match ws.read()? {
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            other => return Ok(other),
        }
    }
}

/// Reads the next message, which must be a text frame, and returns its text.
pub fn ws_text(ws: &mut Ws, what: &str) -> String {
    match ws_next(ws) {
        Ok(Message::Text(t)) => t.as_str().to_owned(),
        other => panic!("{what}: expected a text frame, got {other:?}"),
    }
}

/// Sends a text frame.
pub fn ws_send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text))
        .unwrap_or_else(|e| panic!("send text frame {text:?}: {e}"));
}

/// Sends several text frames in one TCP write, as a client that flushes its buffer does
/// (the server then reads them in one go).
pub fn ws_send_texts_together(ws: &mut Ws, texts: &[&str]) {
    for text in texts {
        ws.write(Message::text(*text))
            .unwrap_or_else(|e| panic!("queue text frame {text:?}: {e}"));
    }
    ws.flush()
        .unwrap_or_else(|e| panic!("flush text frames {texts:?}: {e}"));
}

/// Sends a binary frame.
pub fn ws_send_binary(ws: &mut Ws, data: &[u8]) {
    ws.send(Message::binary(data.to_vec()))
        .unwrap_or_else(|e| panic!("send binary frame {data:?}: {e}"));
}

/// How a WebSocket ended.
#[derive(Debug)]
pub enum WsEnd {
    /// A close frame with this code (`None`: no code).
    CloseFrame(Option<u16>),
    /// EOF or a reset without a close frame.
    Eof(String),
}

/// Reads until the server closes the WebSocket or `deadline` passes. Text frames on the way
/// are returned in the first element (the caller decides which are allowed); binary frames
/// are recorded as `<binary N bytes>`. `None` if it is still open at the deadline.
pub fn ws_wait_end(ws: &mut Ws, deadline: Instant) -> (Vec<String>, Option<WsEnd>) {
    let mut seen = Vec::new();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return (seen, None);
        }
        ws_set_timeout(ws, (deadline - now).max(Duration::from_millis(1)));
        match ws_next(ws) {
            Ok(Message::Text(t)) => seen.push(t.as_str().to_owned()),
            Ok(Message::Binary(b)) => seen.push(format!("<binary {} bytes>", b.len())),
            Ok(Message::Close(frame)) => {
                return (
                    seen,
                    Some(WsEnd::CloseFrame(frame.map(|f| u16::from(f.code)))),
                );
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return (seen, None);
            }
            Err(e) => return (seen, Some(WsEnd::Eof(e.to_string()))),
        }
    }
}

/// A WebSocket upgrade request for the Engine.IO path `/socket.io/` (no sid), with the
/// RFC 6455 sample key: what the in-memory tests send a new client.
pub const WS_UPGRADE_REQUEST: &[u8] =
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
    Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// A client WebSocket frame written by hand (for clients that misbehave or write many
/// frames at once): `opcode`, the FIN bit, masked with the key zero (RFC 6455 allows it; the
/// payload is then sent as is).
pub fn masked_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

/// A whole masked text frame.
pub fn masked_text(payload: &str) -> Vec<u8> {
    masked_frame(0x1, true, payload.as_bytes())
}

/// Server frames in `out` (server frames are unmasked): (opcode, payload) each.
pub fn server_frames(mut out: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while out.len() >= 2 {
        let opcode = out[0] & 0x0f;
        let (len, head) = match out[1] & 0x7f {
            126 => (u16::from_be_bytes([out[2], out[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(out[2..10].try_into().expect("8 bytes")) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        frames.push((opcode, out[head..head + len].to_vec()));
        out = &out[head + len..];
    }
    frames
}
