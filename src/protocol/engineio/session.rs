//! One Engine.IO session (one `sid`) as a state machine: heartbeat, long-polling rules, the
//! upgrade to WebSocket, and close. No IO, no clock: every `now` comes from the caller.

use super::handshake::TransportKind;
use super::packet::{Message, Packet};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// The timing and size settings a session runs with.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct SessionConfig {
    /// How often the server pings.
    pub ping_interval: Duration,
    /// How long the server waits for the pong before closing with `ping timeout`.
    pub ping_timeout: Duration,
    /// How long a probed WebSocket may take to complete the upgrade.
    pub upgrade_timeout: Duration,
}

impl Default for SessionConfig {
    /// The reference server's defaults: 25 s, 20 s, 10 s.
    fn default() -> Self {
        SessionConfig {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
        }
    }
}

/// Why a session closed. The strings are the reference server's disconnect reasons.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum CloseReason {
    /// The client closed the transport (a close packet, a WebSocket close, or EOF).
    TransportClose,
    /// The transport failed (a socket error, a protocol violation, an overlapping GET).
    TransportError,
    /// No pong within `ping_timeout` of a ping.
    PingTimeout,
    /// The client sent bytes that are not a valid packet.
    ParseError,
    /// The server closed the session.
    ForcedClose,
    /// The server is stopping.
    ServerShuttingDown,
    /// The client did not read what was sent to it; its queue passed the limit.
    SlowConsumer,
}

impl CloseReason {
    /// The reference server's string for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::ForcedClose => "forced close",
            CloseReason::ServerShuttingDown => "server shutting down",
            CloseReason::SlowConsumer => "slow consumer",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the session tells its owner.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Event {
    /// Application data from the client.
    Message(Message),
    /// The probed WebSocket is now the session's transport.
    Upgraded,
    /// The probed WebSocket must be closed: the upgrade failed or timed out.
    ProbeAborted,
    /// The session is closed; no more messages will be delivered.
    Closed(CloseReason),
}

/// Why a polling request cannot be served by this session.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum PollError {
    /// The session no longer uses polling (it upgraded, or started on WebSocket). The request
    /// is refused with `Bad request`; the session goes on.
    TransportMismatch,
    /// A second GET while one is held. The request is refused and the session is closed with
    /// `transport error`, as the reference server does.
    Overlap,
    /// The session is closed.
    Closed,
}

/// What the probing WebSocket must do after a packet it carried.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum ProbeReply {
    /// Send this packet on the probing WebSocket (`3probe`).
    Send(Packet),
    /// The upgrade is complete; the probing WebSocket is now the transport.
    Upgraded,
    /// Close the probing WebSocket; the session goes on over polling.
    Abort,
}

#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Upgrade {
    /// No WebSocket is probing.
    Idle,
    /// A WebSocket is attached and has not sent `2probe` yet.
    AwaitingProbe { deadline: Instant },
    /// `3probe` was sent; waiting for `5`.
    Probed { deadline: Instant },
    /// The session runs on WebSocket.
    Done,
}

/// Protocol state for one Engine.IO session, independent of any socket.
///
/// `Session` has three kinds of methods:
/// - handlers for input from the peer or the clock, named `handle_*`;
/// - commands from the application ([`Session::send`], [`Session::close`]);
/// - polling methods for output, named `poll_*`. After any handler or command, drain
///   [`Session::poll_event`], then the transmit side ([`Session::poll_ws_packet`] or
///   [`Session::poll_polling_response`]), then re-arm the timer from [`Session::poll_timeout`].
///
/// No method performs IO or reads the clock: every `now` is supplied by the caller, and a
/// spurious [`Session::handle_timeout`] is a no-op.
///
/// ```
/// use sioloop::protocol::engineio::session::{Session, SessionConfig, Event};
/// use sioloop::protocol::engineio::handshake::TransportKind;
/// use sioloop::protocol::engineio::packet::{Packet, Message};
/// use std::time::{Duration, Instant};
///
/// let t0 = Instant::now();
/// let mut s = Session::new(TransportKind::WebSocket, SessionConfig::default(), "{}".into(), t0);
/// assert_eq!(s.poll_ws_packet(), Some(Packet::Open("{}".into())));
/// s.handle_packet(Packet::Message(Message::Text("hi".into())), t0);
/// assert_eq!(s.poll_event(), Some(Event::Message(Message::Text("hi".into()))));
/// // The server pings after ping_interval ...
/// s.handle_timeout(t0 + Duration::from_secs(25));
/// assert_eq!(s.poll_ws_packet(), Some(Packet::Ping(String::new())));
/// ```
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    transport: TransportKind,
    upgrade: Upgrade,
    outbox: Queue<Packet>,
    /// Message bytes in `outbox`.
    queued_bytes: usize,
    /// A polling GET is waiting for data.
    get_held: bool,
    /// The held (or next) GET must be answered even with nothing queued: with a noop.
    release_get: bool,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    closed: Option<CloseReason>,
    /// A closed polling session lingers until its last packets are fetched, or until this.
    linger_until: Option<Instant>,
    events: Queue<Event>,
    /// Engine.IO protocol 3: the client pings and the server answers; `pong_deadline` is
    /// then the time by which the client's next ping must come.
    v3: bool,
    /// A protocol 3 client that asked for base64 (`b64=1`) in its polling payloads.
    v3_base64: bool,
}

impl Session {
    /// A new open session on `transport`. The open packet (`0` + `open_json`) is the first
    /// packet out: the answer to the handshake GET, or the first WebSocket frame.
    pub fn new(
        transport: TransportKind,
        config: SessionConfig,
        open_json: String,
        now: Instant,
    ) -> Session {
        let mut outbox = Queue::new();
        outbox.push_back(Packet::Open(open_json));
        Session {
            config,
            transport,
            upgrade: match transport {
                TransportKind::Polling => Upgrade::Idle,
                TransportKind::WebSocket => Upgrade::Done,
            },
            outbox,
            queued_bytes: 0,
            // The handshake GET itself is answered with the open packet.
            get_held: transport == TransportKind::Polling,
            release_get: false,
            next_ping: Some(now + config.ping_interval),
            pong_deadline: None,
            closed: None,
            linger_until: None,
            events: Queue::new(),
            v3: false,
            v3_base64: false,
        }
    }

    /// A new open session speaking Engine.IO protocol 3 (`EIO=3`, `socket.io-client@2`):
    /// as [`Session::new`], but the heartbeat runs the other way. The client pings, the
    /// server answers each ping with a pong, and a session that has not pinged within
    /// `ping_interval + ping_timeout` (of the open, or of its last ping) closes with
    /// `ping timeout`, as the reference server does for protocol 3. A pong from the client
    /// is a transport error. `base64`: the client asked for `b64=1`, so its polling answers
    /// must never be binary payloads (the session only keeps it for its owner, which frames
    /// them).
    pub fn new_v3(
        transport: TransportKind,
        config: SessionConfig,
        open_json: String,
        base64: bool,
        now: Instant,
    ) -> Session {
        let mut session = Session::new(transport, config, open_json, now);
        session.v3 = true;
        session.v3_base64 = base64;
        session.next_ping = None;
        session.pong_deadline = Some(session.v3_ping_deadline(now));
        session
    }

    /// Whether the session speaks Engine.IO protocol 3.
    pub fn is_v3(&self) -> bool {
        self.v3
    }

    /// Whether the session's protocol 3 client asked for base64 (`b64=1`) in polling
    /// payloads (false for protocol 4).
    pub fn v3_base64(&self) -> bool {
        self.v3_base64
    }

    fn v3_ping_deadline(&self, now: Instant) -> Instant {
        now + self.config.ping_interval + self.config.ping_timeout
    }

    /// The transport the session currently runs on.
    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// Whether the session is open (not closed).
    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }

    /// Whether a WebSocket is probing or has been probed, but the upgrade is not complete.
    pub fn is_upgrading(&self) -> bool {
        matches!(
            self.upgrade,
            Upgrade::AwaitingProbe { .. } | Upgrade::Probed { .. }
        )
    }

    /// Whether a polling GET is held by the session.
    pub fn is_get_held(&self) -> bool {
        self.get_held
    }

    /// The number of packets queued and not yet handed to a transport.
    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// The bytes of message data queued and not yet handed to a transport.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Queues a message for the client. Returns false (and drops it) if the session is closed.
    pub fn send(&mut self, message: Message) -> bool {
        if self.closed.is_some() {
            return false;
        }
        self.queued_bytes += message.len();
        self.outbox.push_back(Packet::Message(message));
        true
    }

    /// Closes the session from the server side (or for a reason the owner detected, such as
    /// a transport error). On polling, a held GET gets what is queued and a close packet;
    /// with no GET held, the session lingers for the next one only after a
    /// [`CloseReason::ForcedClose`] or [`CloseReason::SlowConsumer`] (see
    /// [`Session::is_finished`]). A second close is a no-op.
    pub fn close(&mut self, reason: CloseReason, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        self.closed = Some(reason);
        self.next_ping = None;
        self.pong_deadline = None;
        if let Upgrade::Probed { deadline } = self.upgrade {
            // The client has paused polling and waits for the upgrade: a close packet on
            // polling would never reach it. Let the upgrade finish (`5`), then the session
            // ends on the new WebSocket; if it never comes, the upgrade deadline ends it.
            self.linger_until = Some(deadline);
            self.events.push_back(Event::Closed(reason));
            return;
        }
        if self.is_upgrading() {
            self.upgrade = Upgrade::Idle;
            self.events.push_back(Event::ProbeAborted);
        }
        if self.transport == TransportKind::Polling {
            match reason {
                // The client said goodbye in a POST: its held GET is released with a noop
                // (reference: `Polling.onClose`), and nothing else is sent.
                CloseReason::TransportClose => {
                    self.outbox.clear();
                    self.queued_bytes = 0;
                    self.release_get = true;
                }
                // What the client did not read is dropped: that is the point of the limit.
                CloseReason::SlowConsumer => {
                    self.outbox.clear();
                    self.queued_bytes = 0;
                    self.outbox.push_back(Packet::Close);
                }
                _ => self.outbox.push_back(Packet::Close),
            }
            if Self::lingers_after(reason) {
                // Wait a while for the client's next GET to collect the last packets.
                self.linger_until = Some(now + self.config.ping_timeout);
            }
        }
        self.events.push_back(Event::Closed(reason));
    }

    /// Whether a polling session closed for `reason` waits for the client's next GET.
    ///
    /// The reference server forgets a session the moment it closes, so the next request
    /// for its sid gets `Session ID unknown`; only a close the server asked for
    /// (`Socket.close`) first waits for the client to drain what was queued, the close
    /// packet last. A GET already held when the session closes gets its answer either way.
    fn lingers_after(reason: CloseReason) -> bool {
        matches!(reason, CloseReason::ForcedClose | CloseReason::SlowConsumer)
    }

    /// A packet from the client on the session's current transport (a record of a POST
    /// body, or a WebSocket frame of the upgraded or WebSocket-only session).
    pub fn handle_packet(&mut self, packet: Packet, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        match packet {
            // engine.io-protocol v4, "Heartbeat": the server pings every pingInterval and
            // waits pingTimeout for the pong; the next ping is due pingInterval after it.
            // Protocol 3: the client pings, the server answers and waits for the next one.
            Packet::Ping(data) if self.v3 => {
                self.pong_deadline = Some(self.v3_ping_deadline(now));
                self.outbox.push_back(Packet::Pong(data));
            }
            Packet::Pong(_) if self.v3 => self.close(CloseReason::TransportError, now),
            Packet::Pong(_) => {
                if self.pong_deadline.take().is_some() {
                    self.next_ping = Some(now + self.config.ping_interval);
                }
            }
            Packet::Message(message) => self.events.push_back(Event::Message(message)),
            Packet::Close => self.close(CloseReason::TransportClose, now),
            // The reference server ignores these from a v4 client.
            Packet::Open(_) | Packet::Ping(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }

    /// A polling GET arrived for this session. On `Ok` it is held until
    /// [`Session::poll_polling_response`] answers it.
    pub fn handle_poll_get(&mut self, now: Instant) -> Result<(), PollError> {
        self.check_poll(now)?;
        if self.get_held {
            self.close(CloseReason::TransportError, now);
            return Err(PollError::Overlap);
        }
        self.get_held = true;
        Ok(())
    }

    /// The held GET's connection went away before it was answered (the reference's "poll
    /// connection closed prematurely"): the session closes with a transport error, and no
    /// GET is waiting for an answer any more, so a session that forgets at once is
    /// finished.
    pub fn handle_poll_aborted(&mut self, now: Instant) {
        self.get_held = false;
        self.release_get = false;
        self.close(CloseReason::TransportError, now);
    }

    /// Checks that a polling POST may be served; the caller then feeds its packets to
    /// [`Session::handle_packet`].
    pub fn check_poll(&mut self, now: Instant) -> Result<(), PollError> {
        self.handle_timeout(now);
        if self.transport != TransportKind::Polling {
            return Err(PollError::TransportMismatch);
        }
        if self.closed.is_some()
            && ((self.outbox.is_empty() && !self.release_get) || self.linger_until.is_none())
        {
            // Nothing left for it, or closed for a reason that forgets it at once.
            return Err(PollError::Closed);
        }
        Ok(())
    }

    /// The packets that answer the held GET, if it should be answered now. The GET is then
    /// no longer held.
    pub fn poll_polling_response(&mut self) -> Option<Vec<Packet>> {
        if !self.get_held || (self.outbox.is_empty() && !self.release_get) {
            return None;
        }
        self.get_held = false;
        // While probed, every GET is answered at once with a noop, not only the one held
        // when `2probe` came: the client may have sent its next GET before `3probe` reached
        // it, and it pauses polling (and sends `5`) only once that GET returns. Held, it
        // would wait for the next ping, `ping_interval` later. (The reference server answers
        // it from a 100 ms timer; answering it now needs no timer and the client stops
        // polling one round trip later.)
        self.release_get = matches!(self.upgrade, Upgrade::Probed { .. }) && self.closed.is_none();
        if self.outbox.is_empty() {
            return Some(vec![Packet::Noop]);
        }
        // After the probe, only a noop may go out over polling: the client has paused it and
        // the rest waits for the WebSocket.
        if matches!(self.upgrade, Upgrade::Probed { .. } | Upgrade::Done) && self.closed.is_none() {
            return Some(vec![Packet::Noop]);
        }
        self.queued_bytes = 0;
        Some(self.outbox.take_all())
    }

    /// The next packet to write on the session's WebSocket, if it runs on one.
    pub fn poll_ws_packet(&mut self) -> Option<Packet> {
        if self.transport != TransportKind::WebSocket {
            return None;
        }
        let packet = self.outbox.pop_front()?;
        if let Packet::Message(m) = &packet {
            self.queued_bytes = self.queued_bytes.saturating_sub(m.len());
        }
        Some(packet)
    }

    /// Attaches a WebSocket that wants to upgrade this polling session. Refused (the caller
    /// accepts and then closes that WebSocket) if the session is not polling, is already
    /// upgrading, or is closed.
    pub fn handle_probe_start(&mut self, now: Instant) -> bool {
        if self.closed.is_some() || self.upgrade != Upgrade::Idle {
            return false;
        }
        self.upgrade = Upgrade::AwaitingProbe {
            deadline: now + self.config.upgrade_timeout,
        };
        true
    }

    /// A packet carried by the probing WebSocket.
    pub fn handle_probe_packet(&mut self, packet: Packet, now: Instant) -> ProbeReply {
        self.handle_timeout(now);
        match (self.upgrade, packet) {
            (Upgrade::AwaitingProbe { deadline }, Packet::Ping(data)) if data == "probe" => {
                self.upgrade = Upgrade::Probed { deadline };
                // Release the held GET so the client can pause polling.
                self.release_get = true;
                ProbeReply::Send(Packet::Pong(data))
            }
            (Upgrade::Probed { .. }, Packet::Upgrade) => {
                self.upgrade = Upgrade::Done;
                self.release_get = false;
                self.transport = TransportKind::WebSocket;
                self.events.push_back(Event::Upgraded);
                ProbeReply::Upgraded
            }
            _ => {
                self.handle_probe_closed();
                ProbeReply::Abort
            }
        }
    }

    /// The probing WebSocket went away before the upgrade completed.
    pub fn handle_probe_closed(&mut self) {
        if self.is_upgrading() {
            self.upgrade = Upgrade::Idle;
            self.release_get = false;
        }
    }

    /// Time passed. Sends the due ping, closes on a missed pong, aborts a slow upgrade.
    /// Calling it early is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        if self.pong_deadline.is_some_and(|d| d <= now) {
            self.close(CloseReason::PingTimeout, now);
            return;
        }
        if let Upgrade::AwaitingProbe { deadline } | Upgrade::Probed { deadline } = self.upgrade
            && deadline <= now
        {
            self.upgrade = Upgrade::Idle;
            self.release_get = false;
            self.events.push_back(Event::ProbeAborted);
        }
        if self.next_ping.is_some_and(|d| d <= now) {
            self.next_ping = None;
            self.pong_deadline = Some(now + self.config.ping_timeout);
            self.outbox.push_back(Packet::Ping(String::new()));
        }
    }

    /// When [`Session::handle_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let probe = match self.upgrade {
            Upgrade::AwaitingProbe { deadline } | Upgrade::Probed { deadline } => Some(deadline),
            _ => None,
        };
        [self.next_ping, self.pong_deadline, probe, self.linger_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next event for the owner.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the session is closed and has nothing left to deliver, so its owner can
    /// forget it. A closed polling session is finished once a held GET has taken its
    /// answer (the close packet, or a noop after the client's own close); after a
    /// [`CloseReason::ForcedClose`] or [`CloseReason::SlowConsumer`] it lingers until a GET
    /// collects its last packets or `ping_timeout` passes.
    pub fn is_finished(&self, now: Instant) -> bool {
        if self.closed.is_none() || !self.events.is_empty() {
            return false;
        }
        if matches!(self.upgrade, Upgrade::Probed { .. }) {
            // Closed while probed: wait for the upgrade to finish, up to its deadline.
            return self.linger_until.is_some_and(|d| d <= now);
        }
        match self.transport {
            TransportKind::WebSocket => true,
            TransportKind::Polling => {
                let answer_waiting = !self.outbox.is_empty() || self.release_get;
                match self.linger_until {
                    Some(until) => !answer_waiting || until <= now,
                    // Forgotten at once; a held GET takes its answer first.
                    None => !(self.get_held && answer_waiting),
                }
            }
        }
    }
}

/// A FIFO whose front element lives inline. A session mostly has one packet (or event)
/// waiting at a time: that one costs no allocation, which an echo pays per message
/// otherwise. Anything behind it goes to a heap queue whose buffer is given back once it
/// drains, so an idle session holds no queue memory.
#[derive(Debug)]
struct Queue<T> {
    /// The front element; `None` only when the queue is empty.
    front: Option<T>,
    rest: VecDeque<T>,
}

impl<T> Queue<T> {
    fn new() -> Queue<T> {
        Queue {
            front: None,
            rest: VecDeque::new(),
        }
    }

    fn push_back(&mut self, item: T) {
        if self.front.is_none() {
            self.front = Some(item);
        } else {
            self.rest.push_back(item);
        }
    }

    fn pop_front(&mut self) -> Option<T> {
        let item = self.front.take()?;
        self.front = self.rest.pop_front();
        if self.rest.is_empty() && self.rest.capacity() > 0 {
            self.rest = VecDeque::new();
        }
        Some(item)
    }

    fn len(&self) -> usize {
        usize::from(self.front.is_some()) + self.rest.len()
    }

    fn is_empty(&self) -> bool {
        self.front.is_none()
    }

    fn clear(&mut self) {
        *self = Queue::new();
    }

    /// Everything queued, in order; the queue is empty afterwards.
    fn take_all(&mut self) -> Vec<T> {
        let mut all = Vec::with_capacity(self.len());
        all.extend(self.front.take());
        all.extend(std::mem::take(&mut self.rest));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_fifo_across_its_inline_front() {
        // Interleaved pushes and pops against a VecDeque model.
        let mut queue = Queue::new();
        let mut model = VecDeque::new();
        let mut next = 0;
        for step in 0..200u32 {
            let pushes = step % 3;
            for _ in 0..pushes {
                queue.push_back(next);
                model.push_back(next);
                next += 1;
            }
            if step % 2 == 0 {
                assert_eq!(queue.pop_front(), model.pop_front());
            }
            assert_eq!(queue.len(), model.len());
            assert_eq!(queue.is_empty(), model.is_empty());
            if step % 50 == 49 {
                assert_eq!(queue.take_all(), Vec::from(std::mem::take(&mut model)));
                assert!(queue.is_empty());
            }
        }
        while let Some(item) = model.pop_front() {
            assert_eq!(queue.pop_front(), Some(item));
        }
        assert_eq!(queue.pop_front(), None);
        assert_eq!(queue.rest.capacity(), 0, "a drained queue holds no buffer");
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn config() -> SessionConfig {
        SessionConfig {
            ping_interval: ms(300),
            ping_timeout: ms(200),
            upgrade_timeout: ms(1000),
        }
    }

    fn text(s: &str) -> Packet {
        Packet::Message(Message::Text(s.into()))
    }

    fn polling(t0: Instant) -> Session {
        let mut s = Session::new(TransportKind::Polling, config(), "{}".into(), t0);
        assert_eq!(
            s.poll_polling_response(),
            Some(vec![Packet::Open("{}".into())])
        );
        s
    }

    #[test]
    fn heartbeat_pings_and_times_out() {
        let t0 = Instant::now();
        let mut s = Session::new(TransportKind::WebSocket, config(), "{}".into(), t0);
        assert_eq!(s.poll_ws_packet(), Some(Packet::Open("{}".into())));
        assert_eq!(s.poll_timeout(), Some(t0 + ms(300)));
        s.handle_timeout(t0 + ms(299));
        assert_eq!(s.poll_ws_packet(), None);
        s.handle_timeout(t0 + ms(300));
        assert_eq!(s.poll_ws_packet(), Some(Packet::Ping(String::new())));
        // Pong in time: the next ping is pingInterval after the pong.
        s.handle_packet(Packet::Pong(String::new()), t0 + ms(350));
        assert_eq!(s.poll_timeout(), Some(t0 + ms(650)));
        s.handle_timeout(t0 + ms(650));
        assert_eq!(s.poll_ws_packet(), Some(Packet::Ping(String::new())));
        s.handle_timeout(t0 + ms(849));
        assert!(s.is_open());
        s.handle_timeout(t0 + ms(850));
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::PingTimeout))
        );
        assert!(s.is_finished(t0 + ms(850)));
    }

    #[test]
    fn late_timer_is_caught_by_the_next_request() {
        let t0 = Instant::now();
        let mut s = polling(t0);
        s.handle_timeout(t0 + ms(300));
        assert_eq!(s.handle_poll_get(t0 + ms(300)), Ok(()));
        assert_eq!(
            s.poll_polling_response(),
            Some(vec![Packet::Ping(String::new())])
        );
        // The timer did not fire, but a request after the deadline closes the session, and
        // is refused: a session closed by a ping timeout is forgotten at once, as the
        // reference server does (it used to linger for the next GET).
        assert_eq!(s.check_poll(t0 + ms(501)), Err(PollError::Closed));
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::PingTimeout))
        );
        assert!(s.is_finished(t0 + ms(501)));
        assert_eq!(s.handle_poll_get(t0 + ms(502)), Err(PollError::Closed));
    }

    #[test]
    fn a_session_whose_held_get_went_away_is_finished() {
        // Regression (tests/storm.rs): the engine closed the session when the held GET's
        // connection died, but the session still counted the GET as held, waiting to answer
        // it with the close packet; with no linger deadline it was never finished.
        let t0 = Instant::now();
        let mut s = polling(t0);
        assert_eq!(s.handle_poll_get(t0), Ok(()));
        s.handle_poll_aborted(t0);
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::TransportError))
        );
        assert!(s.is_finished(t0));
        assert_eq!(s.check_poll(t0), Err(PollError::Closed));
    }

    #[test]
    fn closed_polling_session_is_forgotten_unless_a_get_is_held() {
        let t0 = Instant::now();
        for reason in [
            CloseReason::PingTimeout,
            CloseReason::ParseError,
            CloseReason::TransportError,
            CloseReason::TransportClose,
        ] {
            // No GET held: finished as soon as the close event is taken.
            let mut s = polling(t0);
            s.close(reason, t0);
            assert!(!s.is_finished(t0), "{reason}: the close event comes first");
            assert_eq!(s.poll_event(), Some(Event::Closed(reason)));
            assert!(s.is_finished(t0), "{reason}: forgotten at once");
            assert_eq!(s.check_poll(t0), Err(PollError::Closed), "{reason}");
            // A held GET still gets its answer, then the session is finished.
            let mut s = polling(t0);
            assert_eq!(s.handle_poll_get(t0), Ok(()));
            s.close(reason, t0);
            assert_eq!(s.poll_event(), Some(Event::Closed(reason)));
            assert!(
                !s.is_finished(t0),
                "{reason}: the held GET is answered first"
            );
            let answer = match reason {
                CloseReason::TransportClose => Packet::Noop,
                _ => Packet::Close,
            };
            assert_eq!(s.poll_polling_response(), Some(vec![answer]), "{reason}");
            assert!(s.is_finished(t0), "{reason}");
        }
    }

    #[test]
    fn polling_holds_get_until_data() {
        let t0 = Instant::now();
        let mut s = polling(t0);
        assert_eq!(s.handle_poll_get(t0), Ok(()));
        assert_eq!(s.poll_polling_response(), None);
        s.send(Message::Text("a".into()));
        s.send(Message::Binary(vec![1]));
        assert_eq!(
            s.poll_polling_response(),
            Some(vec![text("a"), Packet::Message(Message::Binary(vec![1]))])
        );
        assert!(!s.is_get_held());
    }

    #[test]
    fn overlapping_get_closes_with_transport_error() {
        let t0 = Instant::now();
        let mut s = polling(t0);
        assert_eq!(s.handle_poll_get(t0), Ok(()));
        assert_eq!(s.handle_poll_get(t0), Err(PollError::Overlap));
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::TransportError))
        );
        assert_eq!(s.poll_polling_response(), Some(vec![Packet::Close]));
    }

    #[test]
    fn client_close_releases_held_get_with_noop() {
        let t0 = Instant::now();
        let mut s = polling(t0);
        assert_eq!(s.handle_poll_get(t0), Ok(()));
        assert_eq!(s.check_poll(t0), Ok(()));
        s.handle_packet(Packet::Close, t0);
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::TransportClose))
        );
        assert_eq!(s.poll_polling_response(), Some(vec![Packet::Noop]));
        assert!(s.is_finished(t0));
    }

    #[test]
    fn upgrade_dance() {
        let t0 = Instant::now();
        let mut s = polling(t0);
        assert_eq!(s.handle_poll_get(t0), Ok(()));
        assert!(s.handle_probe_start(t0));
        assert!(!s.handle_probe_start(t0), "a second probe is refused");
        assert_eq!(
            s.handle_probe_packet(Packet::Ping("probe".into()), t0),
            ProbeReply::Send(Packet::Pong("probe".into()))
        );
        // The held GET is released with a noop so the client can pause polling.
        assert_eq!(s.poll_polling_response(), Some(vec![Packet::Noop]));
        s.send(Message::Text("after probe".into()));
        assert_eq!(
            s.handle_probe_packet(Packet::Upgrade, t0),
            ProbeReply::Upgraded
        );
        assert_eq!(s.poll_event(), Some(Event::Upgraded));
        assert_eq!(s.transport(), TransportKind::WebSocket);
        assert_eq!(s.poll_ws_packet(), Some(text("after probe")));
        assert_eq!(s.check_poll(t0), Err(PollError::TransportMismatch));
        assert_eq!(s.handle_poll_get(t0), Err(PollError::TransportMismatch));
        assert!(s.is_open());
        assert!(
            !s.handle_probe_start(t0),
            "an upgraded session refuses another"
        );
    }

    #[test]
    fn a_get_sent_before_3probe_arrived_is_answered_at_once() {
        // Regression (socket.io-client in a loaded browser): the held GET was released by
        // the probe, the client polled again before `3probe` reached it, and that GET was
        // held until the next ping, 25 s, with the client's polling paused on it and its
        // emits waiting behind the upgrade.
        let t0 = Instant::now();
        let mut s = polling(t0);
        assert_eq!(s.handle_poll_get(t0), Ok(()));
        assert!(s.handle_probe_start(t0));
        assert_eq!(
            s.handle_probe_packet(Packet::Ping("probe".into()), t0),
            ProbeReply::Send(Packet::Pong("probe".into()))
        );
        assert_eq!(s.poll_polling_response(), Some(vec![Packet::Noop]));
        for _ in 0..2 {
            assert_eq!(s.handle_poll_get(t0), Ok(()));
            assert_eq!(s.poll_polling_response(), Some(vec![Packet::Noop]));
        }
        assert_eq!(
            s.handle_probe_packet(Packet::Upgrade, t0),
            ProbeReply::Upgraded
        );
        assert_eq!(s.poll_event(), Some(Event::Upgraded));
    }

    #[test]
    fn a_get_after_an_aborted_probe_is_held_again() {
        let t0 = Instant::now();
        let mut s = polling(t0);
        assert_eq!(s.handle_poll_get(t0), Ok(()));
        assert!(s.handle_probe_start(t0));
        assert_eq!(
            s.handle_probe_packet(Packet::Ping("probe".into()), t0),
            ProbeReply::Send(Packet::Pong("probe".into()))
        );
        assert_eq!(s.poll_polling_response(), Some(vec![Packet::Noop]));
        s.handle_probe_closed();
        assert_eq!(s.handle_poll_get(t0), Ok(()));
        assert_eq!(
            s.poll_polling_response(),
            None,
            "idle polling holds its GET"
        );
    }

    #[test]
    fn close_while_probed_lets_the_upgrade_finish() {
        // Regression (socket.io-client interop): a close between 3probe and 5 left the
        // client hanging, its polling paused and the probe closed under it.
        let t0 = Instant::now();
        let mut s = polling(t0);
        assert_eq!(s.handle_poll_get(t0), Ok(()));
        assert!(s.handle_probe_start(t0));
        assert_eq!(
            s.handle_probe_packet(Packet::Ping("probe".into()), t0),
            ProbeReply::Send(Packet::Pong("probe".into()))
        );
        assert_eq!(s.poll_polling_response(), Some(vec![Packet::Noop]));
        s.close(CloseReason::ForcedClose, t0);
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::ForcedClose))
        );
        assert_eq!(s.poll_event(), None, "the probe is not aborted");
        assert!(!s.is_finished(t0));
        // The client completes the upgrade; the session then ends on the WebSocket.
        assert_eq!(
            s.handle_probe_packet(Packet::Upgrade, t0),
            ProbeReply::Upgraded
        );
        assert_eq!(s.poll_event(), Some(Event::Upgraded));
        assert_eq!(s.transport(), TransportKind::WebSocket);
        assert_eq!(
            s.poll_ws_packet(),
            None,
            "no polling close packet on the WebSocket"
        );
        assert!(s.is_finished(t0));
    }

    #[test]
    fn close_while_probed_ends_at_the_upgrade_deadline() {
        let t0 = Instant::now();
        let mut s = polling(t0);
        assert!(s.handle_probe_start(t0));
        s.handle_probe_packet(Packet::Ping("probe".into()), t0);
        s.close(CloseReason::ForcedClose, t0);
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::ForcedClose))
        );
        assert_eq!(s.poll_timeout(), Some(t0 + ms(1000)));
        assert!(!s.is_finished(t0 + ms(999)));
        assert!(s.is_finished(t0 + ms(1000)));
    }

    #[test]
    fn bad_probe_and_slow_upgrade_abort() {
        let t0 = Instant::now();
        let mut s = polling(t0);
        assert!(s.handle_probe_start(t0));
        assert_eq!(s.handle_probe_packet(text("x"), t0), ProbeReply::Abort);
        assert!(s.handle_probe_start(t0), "a new probe may follow");
        s.handle_timeout(t0 + ms(1000));
        assert_eq!(s.poll_event(), Some(Event::ProbeAborted));
        assert_eq!(s.transport(), TransportKind::Polling);
        assert!(s.is_open());
    }

    #[test]
    fn closed_session_drops_sends_and_closes_once() {
        let t0 = Instant::now();
        let mut s = Session::new(TransportKind::WebSocket, config(), "{}".into(), t0);
        s.close(CloseReason::ForcedClose, t0);
        s.close(CloseReason::TransportError, t0);
        assert!(!s.send(Message::Text("late".into())));
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::ForcedClose))
        );
        assert_eq!(s.poll_event(), None);
    }

    #[test]
    fn closed_polling_session_lingers_then_finishes() {
        let t0 = Instant::now();
        let mut s = polling(t0);
        s.close(CloseReason::ForcedClose, t0);
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::ForcedClose))
        );
        assert!(!s.is_finished(t0));
        assert_eq!(s.poll_timeout(), Some(t0 + ms(200)));
        assert!(s.is_finished(t0 + ms(200)));
    }

    #[test]
    fn v3_client_pings_and_server_answers() {
        let t0 = Instant::now();
        let mut s = Session::new_v3(TransportKind::WebSocket, config(), "{}".into(), false, t0);
        assert!(s.is_v3() && !s.v3_base64());
        assert_eq!(s.poll_ws_packet(), Some(Packet::Open("{}".into())));
        // No server ping ever; the deadline is pingInterval + pingTimeout.
        assert_eq!(s.poll_timeout(), Some(t0 + ms(500)));
        s.handle_timeout(t0 + ms(400));
        assert_eq!(s.poll_ws_packet(), None);
        s.handle_packet(Packet::Ping(String::new()), t0 + ms(450));
        assert_eq!(s.poll_ws_packet(), Some(Packet::Pong(String::new())));
        assert_eq!(s.poll_timeout(), Some(t0 + ms(950)));
        s.handle_timeout(t0 + ms(949));
        assert!(s.is_open());
        s.handle_timeout(t0 + ms(950));
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::PingTimeout))
        );
    }

    #[test]
    fn v3_pong_from_the_client_is_a_transport_error() {
        let t0 = Instant::now();
        let mut s = Session::new_v3(TransportKind::Polling, config(), "{}".into(), true, t0);
        assert_eq!(
            s.poll_polling_response(),
            Some(vec![Packet::Open("{}".into())])
        );
        s.handle_packet(Packet::Ping("x".into()), t0);
        assert_eq!(s.handle_poll_get(t0), Ok(()));
        assert_eq!(
            s.poll_polling_response(),
            Some(vec![Packet::Pong("x".into())])
        );
        s.handle_packet(Packet::Pong(String::new()), t0);
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::TransportError))
        );
    }
}
