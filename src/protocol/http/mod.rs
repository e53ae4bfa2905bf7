//! Just enough HTTP/1.1 for Engine.IO, without IO: request heads (httparse) with limits,
//! `Content-Length` bodies, responses, keep-alive, and CORS.
//!
//! Not implemented: chunked request bodies (refused with 400), HTTP/2, compression of
//! polling responses, pipelining beyond one request at a time per connection (later
//! requests wait in the buffer until the earlier one is answered).

use std::fmt;

/// Limits on a request head.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct HeadLimits {
    /// The most bytes a request head (request line and headers) may take.
    pub max_head_bytes: usize,
    /// The most headers a request may carry.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    /// 8 KiB and 64 headers.
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: 8 * 1024,
            max_headers: 64,
        }
    }
}

/// An HTTP request as the server and the application see it.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query (`/engine.io/`).
    pub path: String,
    /// The raw query string, without `?` (empty if none).
    pub query: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// The headers in order, names as sent: read them with [`Request::header`] and
    /// [`Request::headers`], add them with [`Request::with_header`].
    headers: Headers,
    /// The body (empty until read).
    pub body: Vec<u8>,
}

/// Request headers in two exactly-sized allocations, kept for a session's whole life:
/// every name and value back to back in `text` (`name0 value0 name1 value1 ...`, no
/// separators), and for each header where its name and its value end in `text`. A header's
/// name starts where the previous header's value ends (at 0 for the first).
///
/// Two `Headers` are equal exactly when they hold the same (name, value) sequence, so the
/// derived `PartialEq` is the sequence's.
#[derive(Clone, Default, Eq, PartialEq)]
struct Headers {
    text: Box<str>,
    ends: Box<[HeaderEnds]>,
}

/// Where one header's name and value end in [`Headers::text`]. `u32` offsets: a parsed
/// head is bounded by `max_head_bytes`, and [`parse_head`] refuses the rare head whose
/// headers do not fit.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
struct HeaderEnds {
    name: u32,
    value: u32,
}

impl Headers {
    fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone {
        self.ends.iter().enumerate().map(|(i, end)| {
            let start = match i.checked_sub(1) {
                Some(prev) => self.ends[prev].value as usize,
                None => 0,
            };
            let (name, value) = (end.name as usize, end.value as usize);
            (&self.text[start..name], &self.text[name..value])
        })
    }

    /// Appends one header, reallocating both parts to their exact new sizes.
    ///
    /// # Panics
    ///
    /// If the headers would take more than `u32::MAX` bytes.
    fn push(&mut self, name: &str, value: &str) {
        let mut text = String::with_capacity(self.text.len() + name.len() + value.len());
        text.push_str(&self.text);
        text.push_str(name);
        let name_end = offset(text.len()).expect("request headers exceed u32::MAX bytes");
        text.push_str(value);
        let value_end = offset(text.len()).expect("request headers exceed u32::MAX bytes");
        let mut ends = Vec::with_capacity(self.ends.len() + 1);
        ends.extend_from_slice(&self.ends);
        ends.push(HeaderEnds {
            name: name_end,
            value: value_end,
        });
        self.text = text.into_boxed_str();
        self.ends = ends.into_boxed_slice();
    }
}

impl fmt::Debug for Headers {
    /// As a list of `(name, value)` pairs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A length as a header offset, if it fits in `u32`.
fn offset(len: usize) -> Option<u32> {
    u32::try_from(len).ok()
}

impl Request {
    /// An HTTP/1.1 request (`version` 1) with no headers and an empty body, for building
    /// requests by hand (tests, hooks). Add headers with [`Request::with_header`].
    ///
    /// ```
    /// use sioloop::protocol::http::Request;
    /// let req = Request::new("GET", "/engine.io/", "EIO=4&transport=polling")
    ///     .with_header("Host", "example.com");
    /// assert_eq!((req.method.as_str(), req.header("host")), ("GET", Some("example.com")));
    /// ```
    pub fn new(method: &str, path: &str, query: &str) -> Request {
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            version: 1,
            ..Request::default()
        }
    }

    /// Adds a header after the others (for requests built by hand; [`parse_head`] fills in
    /// the headers of a parsed one).
    ///
    /// # Panics
    ///
    /// If the headers would take more than `u32::MAX` bytes.
    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.push_header(name, value);
        self
    }

    /// Adds a header after the others, like [`Request::with_header`] in place.
    ///
    /// # Panics
    ///
    /// If the headers would take more than `u32::MAX` bytes.
    pub fn push_header(&mut self, name: &str, value: &str) {
        self.headers.push(name, value);
    }

    /// The headers in order, names as sent (case kept), duplicates included.
    ///
    /// ```
    /// use sioloop::protocol::http::{parse_head, HeadLimits, Parsed};
    /// let buf = b"GET / HTTP/1.1\r\nHost: a\r\nCookie: x=1\r\ncookie: y=2\r\n\r\n";
    /// let Ok(Parsed::Complete { request, .. }) = parse_head(buf, &HeadLimits::default()) else { panic!() };
    /// let headers: Vec<(&str, &str)> = request.headers().collect();
    /// assert_eq!(headers, [("Host", "a"), ("Cookie", "x=1"), ("cookie", "y=2")]);
    /// ```
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone {
        self.headers.iter()
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether a comma-separated header contains `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the connection stays open after the response (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub fn keep_alive(&self) -> bool {
        if self.version == 0 {
            self.header_has_token("connection", "keep-alive")
        } else {
            !self.header_has_token("connection", "close")
        }
    }

    /// Whether this is a WebSocket upgrade request.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.method == "GET"
            && self.header_has_token("upgrade", "websocket")
            && self.header_has_token("connection", "upgrade")
    }
}

/// The result of reading a request head from a buffer.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Parsed {
    /// A complete head, and the bytes it took. The body follows.
    Complete {
        /// The request (its body is empty).
        request: Request,
        /// The head's length in bytes.
        head_len: usize,
        /// The body's length from `Content-Length` (0 if absent).
        body_len: usize,
    },
    /// More bytes are needed; nothing was consumed.
    Partial,
}

/// Why a request head is refused. Each is final: answer with [`HttpError::status`] and close.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum HttpError {
    /// The head is larger than the limit (431).
    HeadTooLarge,
    /// More headers than the limit (431).
    TooManyHeaders,
    /// Not a valid HTTP/1.x request head (400).
    Malformed,
    /// A `Content-Length` that is not a number, or conflicting ones (400).
    BadContentLength,
    /// A body framing this server does not read: `Transfer-Encoding` (400).
    UnsupportedTransferEncoding,
}

impl HttpError {
    /// The status code to answer with.
    pub fn status(self) -> u16 {
        match self {
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            _ => 400,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpError::HeadTooLarge => "request head too large",
            HttpError::TooManyHeaders => "too many request headers",
            HttpError::Malformed => "malformed request head",
            HttpError::BadContentLength => "invalid Content-Length",
            HttpError::UnsupportedTransferEncoding => "Transfer-Encoding is not supported",
        })
    }
}

impl std::error::Error for HttpError {}

/// Reads a request head from the start of `buf`.
///
/// ```
/// use sioloop::protocol::http::{parse_head, HeadLimits, Parsed};
/// let buf = b"POST /engine.io/?EIO=4 HTTP/1.1\r\nContent-Length: 2\r\n\r\n4a";
/// let Ok(Parsed::Complete { request, head_len, body_len }) = parse_head(buf, &HeadLimits::default()) else { panic!() };
/// assert_eq!((request.path.as_str(), request.query.as_str(), head_len, body_len), ("/engine.io/", "EIO=4", 54, 2));
/// assert_eq!(parse_head(b"GET / HT", &HeadLimits::default()), Ok(Parsed::Partial));
/// ```
pub fn parse_head(buf: &[u8], limits: &HeadLimits) -> Result<Parsed, HttpError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut headers);
    // Only the first `max_head_bytes` are ever looked at, so the verdict on the same bytes
    // does not depend on how they arrived: a head that is still incomplete there is too
    // large, whatever follows (a byte past the limit must not turn 431 into 400).
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head_bytes {
                return Err(HttpError::HeadTooLarge);
            }
            return Ok(Parsed::Partial);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(_) => return Err(HttpError::Malformed),
    };
    if head_len > limits.max_head_bytes {
        return Err(HttpError::HeadTooLarge);
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HttpError::Malformed);
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // Body framing, and the headers in one string and one slice of offsets. Values are
    // kept as lossy UTF-8; valid ones fill the string's capacity exactly, and
    // `into_boxed_str` trims what a replacement character added.
    let mut body_len: Option<usize> = None;
    let mut text = String::with_capacity(
        req.headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum(),
    );
    let mut ends = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = String::from_utf8_lossy(h.value)
                .trim()
                .parse::<usize>()
                .map_err(|_| HttpError::BadContentLength)?;
            if body_len.is_some_and(|m| m != n) {
                return Err(HttpError::BadContentLength);
            }
            body_len = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::UnsupportedTransferEncoding);
        }
        text.push_str(h.name);
        let name = offset(text.len()).ok_or(HttpError::HeadTooLarge)?;
        for chunk in h.value.utf8_chunks() {
            text.push_str(chunk.valid());
            if !chunk.invalid().is_empty() {
                text.push(char::REPLACEMENT_CHARACTER);
            }
        }
        let value = offset(text.len()).ok_or(HttpError::HeadTooLarge)?;
        ends.push(HeaderEnds { name, value });
    }
    let request = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        version,
        headers: Headers {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        },
        body: Vec::new(),
    };
    Ok(Parsed::Complete {
        request,
        head_len,
        body_len: body_len.unwrap_or(0),
    })
}

/// An HTTP response: status, headers and body.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers other than `Content-Length` and `Connection`, which are written for you.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a status, a content type and a body.
    ///
    /// ```
    /// use sioloop::protocol::http::Response;
    /// let page = Response::new(200, "text/html; charset=utf-8", "<h1>hello</h1>");
    /// assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    /// ```
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Appends the response in wire form.
    pub fn write_to(&self, out: &mut Vec<u8>, keep_alive: bool) {
        write_head(out, self.status, &self.headers, self.body.len(), keep_alive);
        out.extend_from_slice(&self.body);
    }
}

/// Appends a status line and headers, with `Content-Length` and `Connection`.
pub fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(String, String)],
    body_len: usize,
    keep_alive: bool,
) {
    use std::io::Write;
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", status, reason_phrase(status));
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let _ = write!(
        out,
        "Content-Length: {body_len}\r\nConnection: {connection}\r\n\r\n"
    );
}

/// The standard reason phrase for the status codes this server sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Which origins may make cross-origin requests.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum AllowedOrigins {
    /// Any origin (echoed back when credentials are allowed, `*` otherwise).
    Any,
    /// Exactly these origins (`https://example.com`).
    List(Vec<String>),
}

/// Cross-origin resource sharing, like the `cors` option of the reference server.
///
/// ```
/// use sioloop::protocol::http::{AllowedOrigins, Cors};
/// let cors = Cors { origins: AllowedOrigins::List(vec!["https://app.example".into()]), credentials: true };
/// assert!(cors.allows(Some("https://app.example")));
/// assert!(!cors.allows(Some("https://evil.example")));
/// ```
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Cors {
    /// The origins allowed.
    pub origins: AllowedOrigins,
    /// Whether to send `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
}

impl Cors {
    /// Whether a request with this `Origin` header is allowed. A request without one is not
    /// cross-origin and is always allowed.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match (origin, &self.origins) {
            (None, _) | (_, AllowedOrigins::Any) => true,
            (Some(o), AllowedOrigins::List(list)) => list.iter().any(|a| a == o),
        }
    }

    /// Appends the CORS headers for a response to a request with this `Origin`.
    pub fn add_headers(&self, origin: Option<&str>, headers: &mut Vec<(String, String)>) {
        let Some(origin) = origin.filter(|o| self.allows(Some(o))) else {
            return;
        };
        let value = match self.origins {
            AllowedOrigins::Any if !self.credentials => "*",
            _ => origin,
        };
        headers.push(("Access-Control-Allow-Origin".into(), value.into()));
        if value != "*" {
            headers.push(("Vary".into(), "Origin".into()));
        }
        if self.credentials {
            headers.push(("Access-Control-Allow-Credentials".into(), "true".into()));
        }
    }

    /// The answer to an `OPTIONS` preflight request.
    pub fn preflight(&self, request: &Request) -> Response {
        let origin = request.header("origin");
        if !self.allows(origin) {
            return Response::new(403, "text/plain", "origin not allowed");
        }
        let mut response = Response {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        };
        self.add_headers(origin, &mut response.headers);
        response.headers.push((
            "Access-Control-Allow-Methods".into(),
            "GET,POST,OPTIONS".into(),
        ));
        if let Some(h) = request.header("access-control-request-headers") {
            response
                .headers
                .push(("Access-Control-Allow-Headers".into(), h.into()));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a connection answers for `bytes` fed in pieces of `step` bytes: the first
    /// verdict that is not `Partial`, as the driver stops there.
    fn verdict_in_pieces(
        bytes: &[u8],
        step: usize,
        limits: &HeadLimits,
    ) -> Result<Parsed, HttpError> {
        let mut end = 0;
        loop {
            end = (end + step).min(bytes.len());
            match parse_head(&bytes[..end], limits) {
                Ok(Parsed::Partial) if end < bytes.len() => continue,
                other => return other,
            }
        }
    }

    #[test]
    fn the_verdict_does_not_depend_on_how_the_bytes_arrive() {
        let limits = HeadLimits {
            max_head_bytes: 64,
            max_headers: 4,
        };
        // Valid up to past the limit, then malformed: once 431 in pieces, once 400 whole.
        let mut head = format!("GET /{} HTTP/1.1\r\n", "a".repeat(70)).into_bytes();
        head.extend_from_slice(b"\x01\x01\r\n\r\n");
        let cases: [&[u8]; 4] = [
            &head,
            b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\ne: 5\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n\r\n",
        ];
        for bytes in cases {
            let whole = verdict_in_pieces(bytes, bytes.len(), &limits);
            for step in 1..bytes.len() {
                assert_eq!(
                    verdict_in_pieces(bytes, step, &limits),
                    whole,
                    "{:?} in pieces of {step}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
    }

    #[test]
    fn head_limits_and_errors() {
        let limits = HeadLimits {
            max_head_bytes: 64,
            max_headers: 2,
        };
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(100));
        assert_eq!(
            parse_head(long.as_bytes(), &limits),
            Err(HttpError::HeadTooLarge)
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n", &limits),
            Err(HttpError::TooManyHeaders)
        );
        assert_eq!(
            parse_head(b"\x01\x02 / HTTP/1.1\r\n\r\n", &limits),
            Err(HttpError::Malformed)
        );
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", &limits),
            Err(HttpError::BadContentLength)
        );
        assert_eq!(
            parse_head(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                &limits
            ),
            Err(HttpError::UnsupportedTransferEncoding)
        );
    }

    #[test]
    fn headers_in_order_with_duplicates_and_empty_values() {
        let head = b"GET /engine.io/?EIO=4 HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\n\
            Cookie: a=1\r\nx-empty:   \r\ncookie: b=2\r\nX-Bin: \xffok\r\n\r\n";
        let Ok(Parsed::Complete { request, .. }) = parse_head(head, &HeadLimits::default()) else {
            panic!("complete head expected")
        };
        let expected = [
            ("Host", "example.com"),
            ("X-Empty", ""),
            ("Cookie", "a=1"),
            ("x-empty", ""),
            ("cookie", "b=2"),
            ("X-Bin", "\u{fffd}ok"),
        ];
        assert_eq!(request.headers().len(), expected.len());
        assert_eq!(request.headers().collect::<Vec<_>>(), expected);
        assert_eq!(request.header("HOST"), Some("example.com"));
        assert_eq!(request.header("cookie"), Some("a=1"));
        assert_eq!(request.header("x-empty"), Some(""));
        assert_eq!(request.header("x-bin"), Some("\u{fffd}ok"));
        assert_eq!(request.header("missing"), None);
        // Exactly sized: the header text has no spare capacity and no separators.
        let text_len: usize = expected.iter().map(|(n, v)| n.len() + v.len()).sum();
        assert_eq!(request.headers.text.len(), text_len);
        assert_eq!(request.headers.ends.len(), expected.len());
        // The same headers built by hand compare equal and print the same.
        let mut by_hand = Request::new("GET", "/engine.io/", "EIO=4");
        for (name, value) in expected {
            by_hand.push_header(name, value);
        }
        assert_eq!(by_hand, request);
        assert_eq!(format!("{by_hand:?}"), format!("{request:?}"));
        assert!(
            format!("{request:?}")
                .contains(r#"headers: [("Host", "example.com"), ("X-Empty", "")"#)
        );
        let none = Request::default();
        assert_eq!(none.headers().next(), None);
        assert_eq!(none.header("host"), None);
        assert_ne!(none, Request::default().with_header("a", ""));
    }

    #[test]
    fn keep_alive_and_upgrade() {
        let Ok(Parsed::Complete { request, .. }) = parse_head(
            b"GET /x HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n",
            &HeadLimits::default(),
        ) else {
            panic!("complete head expected")
        };
        assert!(request.keep_alive());
        assert!(request.is_websocket_upgrade());
        let Ok(Parsed::Complete { request, .. }) =
            parse_head(b"GET /x HTTP/1.0\r\n\r\n", &HeadLimits::default())
        else {
            panic!("complete head expected")
        };
        assert!(!request.keep_alive());
    }

    #[test]
    fn cors_headers() {
        let any = Cors {
            origins: AllowedOrigins::Any,
            credentials: false,
        };
        let mut h = Vec::new();
        any.add_headers(Some("http://a"), &mut h);
        assert_eq!(h[0].1, "*");
        let creds = Cors {
            origins: AllowedOrigins::Any,
            credentials: true,
        };
        let mut h = Vec::new();
        creds.add_headers(Some("http://a"), &mut h);
        assert_eq!(h[0].1, "http://a");
        assert!(
            h.iter()
                .any(|(n, v)| n == "Access-Control-Allow-Credentials" && v == "true")
        );
    }
}
