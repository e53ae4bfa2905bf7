//! Server configuration, with the reference server's defaults.

use crate::protocol::engineio::TransportKind;
use crate::protocol::engineio::session::SessionConfig;
use crate::protocol::http::{AllowedOrigins, Cors, HeadLimits};
use std::path::PathBuf;
use std::time::Duration;

/// How the server behaves. Every setting has the reference server's default.
///
/// ```
/// use sioloop::Config;
/// use std::time::Duration;
/// let config = Config::default()
///     .path("/engine.io/")
///     .ping_interval(Duration::from_millis(300))
///     .ping_timeout(Duration::from_millis(200))
///     .max_payload(64 * 1024)
///     .cors_any_origin();
/// assert_eq!(config.max_payload, 65536);
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// The path Engine.IO requests use (default `/socket.io/`). A trailing `/` is added.
    pub path: String,
    /// How often the server pings (default 25 s).
    pub ping_interval: Duration,
    /// How long the server waits for a pong (default 20 s).
    pub ping_timeout: Duration,
    /// How long an upgrade may take once the WebSocket is open (default 10 s).
    pub upgrade_timeout: Duration,
    /// The largest message or polling body, in bytes (default 1 000 000). Sent to the client
    /// as `maxPayload`.
    pub max_payload: usize,
    /// The most packets one polling POST may carry (default 16 384).
    pub max_packets_per_payload: usize,
    /// The transports clients may use (default polling and WebSocket).
    pub transports: Vec<TransportKind>,
    /// Whether polling sessions may upgrade to WebSocket (default true).
    pub allow_upgrades: bool,
    /// Cross-origin policy; `None` sends no CORS headers (default).
    pub cors: Option<Cors>,
    /// Limits on request heads (default 8 KiB, 64 headers).
    pub head_limits: HeadLimits,
    /// The most open TCP connections (default 10 000). Past it, new connections get
    /// `503` and are closed.
    pub max_connections: usize,
    /// The most open TCP connections from one IP address (default 1 000). Past it, new
    /// connections from that address get `503` and are closed.
    pub max_connections_per_ip: usize,
    /// How long a connection may take to send a complete request head, and how long an
    /// idle keep-alive connection is kept (default 10 s). A slow head gets `408`.
    pub head_timeout: Duration,
    /// The most bytes queued for one client, on its connection or its polling session
    /// (default 1 MiB). A client that does not keep up past this is disconnected with
    /// `slow consumer`; volatile packets are dropped long before (as soon as anything is
    /// queued).
    pub max_queued_bytes: usize,
    /// Origins allowed to open sessions, on polling and WebSocket alike (default: any).
    /// A request whose `Origin` header is not listed gets `403` with code 4 `Forbidden`.
    /// Requests without an `Origin` header (non-browser clients) are allowed.
    pub allowed_origins: Option<Vec<String>>,
    /// Serve the counters as Prometheus text at this path (default: off).
    pub metrics_path: Option<String>,
    /// The server-wide budget for buffered input and output, in bytes (default 64 MiB):
    /// unparsed input, WebSocket messages in fragments, binary attachments waiting for
    /// their packet, and queued output, over every connection. Past it, the connections
    /// holding the most queued output are closed as slow consumers first, and the
    /// connections holding the most unfinished input are not read until memory frees up.
    pub max_buffered_bytes: usize,
    /// How many connections the kernel may complete and queue before the loop accepts
    /// them (the `listen` backlog; default 1024). A reconnect storm after a restart brings
    /// every client at once, and a queue that is full drops their SYNs, which they resend
    /// only after a second or more. The kernel caps it at `net.core.somaxconn` (4096 on
    /// Linux since 5.4). Applied on Linux and Android; elsewhere the standard library's
    /// backlog (128) is used.
    pub listen_backlog: u32,
    /// Whether `run` stops gracefully on SIGINT (Ctrl-C) and SIGTERM, as sent by systemd,
    /// Docker and process managers (default true; on Windows, Ctrl-C). The signals are
    /// caught only while `run` runs: when it returns they do again what they did before
    /// (by default, end the process). Turn it off when the program handles these signals
    /// itself, and stop the loop with a `ShutdownHandle`.
    pub shutdown_on_signals: bool,
    /// Serve the Socket.IO client bundle from this directory under [`Config::path`], as
    /// Node's `serveClient` does (default: off). See [`Config::serve_client`].
    pub client_dir: Option<PathBuf>,
    /// Whether Engine.IO protocol 3 clients (`socket.io-client@2`, the old Java and Swift
    /// clients) may connect (default false, as Node's `allowEIO3`). See
    /// [`Config::allow_eio3`].
    pub allow_eio3: bool,
}

impl Default for Config {
    fn default() -> Self {
        let session = SessionConfig::default();
        Config {
            path: "/socket.io/".into(),
            ping_interval: session.ping_interval,
            ping_timeout: session.ping_timeout,
            upgrade_timeout: session.upgrade_timeout,
            max_payload: 1_000_000,
            max_packets_per_payload: 16_384,
            transports: vec![TransportKind::Polling, TransportKind::WebSocket],
            allow_upgrades: true,
            cors: None,
            head_limits: HeadLimits::default(),
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            head_timeout: Duration::from_secs(10),
            max_queued_bytes: 1024 * 1024,
            allowed_origins: None,
            metrics_path: None,
            max_buffered_bytes: 64 * 1024 * 1024,
            listen_backlog: 1024,
            shutdown_on_signals: true,
            client_dir: None,
            allow_eio3: false,
        }
    }
}

impl Config {
    /// Sets the Engine.IO path.
    pub fn path(mut self, path: &str) -> Self {
        let mut path = path.to_owned();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        if !path.ends_with('/') {
            path.push('/');
        }
        self.path = path;
        self
    }

    /// Sets the ping interval.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Sets the ping timeout.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }

    /// Sets the upgrade timeout.
    pub fn upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.upgrade_timeout = timeout;
        self
    }

    /// Sets the largest message or polling body, in bytes.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Sets the allowed transports.
    pub fn transports(mut self, transports: &[TransportKind]) -> Self {
        self.transports = transports.to_vec();
        self
    }

    /// Allows or forbids upgrades from polling to WebSocket.
    pub fn allow_upgrades(mut self, allow: bool) -> Self {
        self.allow_upgrades = allow;
        self
    }

    /// Sets the cross-origin policy.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Allows cross-origin requests from any origin, without credentials.
    pub fn cors_any_origin(self) -> Self {
        self.cors(Cors {
            origins: AllowedOrigins::Any,
            credentials: false,
        })
    }

    /// Sets the most open TCP connections, in all and from one IP address.
    pub fn max_connections(mut self, total: usize, per_ip: usize) -> Self {
        self.max_connections = total;
        self.max_connections_per_ip = per_ip;
        self
    }

    /// Sets how long a request head may take (and an idle keep-alive connection may stay).
    pub fn head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = timeout;
        self
    }

    /// Sets the most bytes queued for one client before it is disconnected.
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// Allows sessions only from these origins (polling and WebSocket).
    pub fn allowed_origins(mut self, origins: &[&str]) -> Self {
        self.allowed_origins = Some(origins.iter().map(|o| (*o).to_owned()).collect());
        self
    }

    /// Sets the server-wide budget for buffered input and output, in bytes.
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.max_buffered_bytes = bytes;
        self
    }

    /// Sets the `listen` backlog: connections the kernel queues before they are accepted.
    ///
    /// ```
    /// let config = sioloop::Config::default().listen_backlog(4096);
    /// assert_eq!(config.listen_backlog, 4096);
    /// ```
    pub fn listen_backlog(mut self, backlog: u32) -> Self {
        self.listen_backlog = backlog;
        self
    }

    /// Whether `run` stops gracefully on SIGINT (Ctrl-C) and SIGTERM (default true). Off,
    /// `run` leaves the signals alone, for a program that handles them itself:
    ///
    /// ```no_run
    /// use sioloop::engine::{Config, EngineServer};
    /// let mut server = EngineServer::bind("127.0.0.1:3000", Config::default().shutdown_on_signals(false))?;
    /// let stop = server.shutdown_handle();
    /// // ... the program's own signal handling calls `stop.shutdown()`.
    /// # drop(stop);
    /// server.run()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown_on_signals(mut self, on: bool) -> Self {
        self.shutdown_on_signals = on;
        self
    }

    /// Serves the Socket.IO client from `dir`, like Node's `serveClient`: a GET (or HEAD) of
    /// `/socket.io/socket.io.min.js` (under [`Config::path`]) answers with that file from
    /// `dir`, and so for `socket.io.js`, `socket.io.esm.min.js`,
    /// `socket.io.msgpack.min.js` and the `.map` of each. Point it at the `dist/` directory
    /// of the npm package `socket.io-client`, so a page needs neither a CDN nor a route of
    /// its own for the client, and gets the version installed next to the server.
    ///
    /// The files are read once, when the server is made (`bind`, `in_memory`), not per
    /// request: only those of the eight names that exist, each at most 8 MiB; one larger or
    /// unreadable is skipped with a `log` warning, and so is a directory with none of them
    /// (the server runs anyway). Answers carry a strong `ETag` from the file's content
    /// (a request with a matching `If-None-Match`, strong or weak, gets `304`),
    /// `Cache-Control: public, max-age=0` (the browser checks each time, cheaply), the
    /// content type of JavaScript (`application/json` for a map) and the CORS headers of
    /// [`Config::cors`]. The query string is ignored; any other name under the path goes to
    /// Engine.IO as before. Unlike Node, the body is never compressed.
    ///
    /// ```no_run
    /// use sioloop::{Config, Server};
    /// let config = Config::default().serve_client("node_modules/socket.io-client/dist");
    /// let server = Server::bind("127.0.0.1:3000", config, ())?;
    /// // A page served by this server loads the client with
    /// // <script src="/socket.io/socket.io.min.js"></script>
    /// # drop(server);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn serve_client(mut self, dir: impl Into<PathBuf>) -> Self {
        self.client_dir = Some(dir.into());
        self
    }

    /// Accepts Engine.IO protocol 3 clients (off by default, like Node's `allowEIO3`):
    /// `socket.io-client@2` and the old Java and Swift clients, over polling (protocol 3's
    /// length-prefixed payloads, binary as `b4` + base64 or as an `application/octet-stream`
    /// payload) and WebSocket. With it on, any request whose `EIO` is not `4` is protocol 3,
    /// as in Node; off, such a handshake is refused with code 5, `Unsupported protocol
    /// version`.
    ///
    /// A protocol 3 session keeps that protocol's heartbeat: the client pings, the server
    /// answers, and a session that does not ping within `ping_interval + ping_timeout` is
    /// closed with `ping timeout`. Above it, the Socket.IO server speaks Socket.IO protocol
    /// 4 to such a client: the default namespace is joined at once, a refused connection's
    /// CONNECT_ERROR carries the message as a plain string, the auth of a namespace comes
    /// from the query of its CONNECT, and socket ids are the Engine.IO sid (`/nsp#sid`
    /// outside `/`).
    pub fn allow_eio3(mut self, allow: bool) -> Self {
        self.allow_eio3 = allow;
        self
    }

    /// Serves the counters as Prometheus text at `path` (e.g. `/metrics`).
    pub fn metrics_path(mut self, path: &str) -> Self {
        self.metrics_path = Some(path.to_owned());
        self
    }

    /// The session settings derived from this configuration.
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            upgrade_timeout: self.upgrade_timeout,
        }
    }

    /// The upgrades offered in the handshake of a session on `transport`.
    pub fn upgrades_for(&self, transport: TransportKind) -> &'static [&'static str] {
        let ws_allowed = self.allow_upgrades && self.transports.contains(&TransportKind::WebSocket);
        match transport {
            TransportKind::Polling if ws_allowed => &["websocket"],
            _ => &[],
        }
    }
}
