//! Connection state recovery (socket.io 4.6+ `connectionStateRecovery`): a socket whose
//! connection dropped comes back with its id, rooms, data and the events it missed.
//!
//! How the reference server does it, and so how the official clients expect it:
//! - the CONNECT answer carries a private session id, `pid`, beside the socket id;
//! - every EVENT that is neither volatile nor waiting for an ack carries an offset as its
//!   last argument; the client keeps the last one it saw;
//! - when a socket closes for a reason that is not deliberate (the transport closed or
//!   failed, a ping timeout, a forced close, the server stopping), its id, rooms and data
//!   are kept for `max_disconnection_duration`;
//! - a CONNECT whose auth has `pid` and `offset` (strings) gets that socket back, with every
//!   event sent since the offset that would have reached it, written before the CONNECT
//!   answer. Anything that does not fit (unknown or expired pid, an offset no longer in the
//!   log, too many missed events) is silently a new socket, as from the reference.
//!
//! Here the log is one queue for the whole server, one entry per emit (not per recipient):
//! the entry is the emit's encoded messages, moved in after the broadcast, and who it was
//! for (rooms and exceptions, or one socket). A restore filters it by the kept session's
//! rooms, as the reference's in-memory adapter does. Entries expire with the duration and
//! are evicted oldest first past `max_buffered_bytes`; an eviction makes the offsets before
//! it unusable, so a client that needed an evicted entry starts over rather than silently
//! missing it. No IO and no clock: `now` comes from the engine.

use super::core::{SocketData, SocketKey};
use crate::protocol::engineio::Message;
use foldhash::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings of connection state recovery ([`Server::connection_state_recovery`]).
///
/// ```
/// use sioloop::{RecoveryConfig, Server};
/// use std::time::Duration;
///
/// let (mut server, _net) = Server::in_memory(Default::default(), ());
/// server.connection_state_recovery(RecoveryConfig {
///     max_disconnection_duration: Duration::from_secs(30),
///     ..RecoveryConfig::default()
/// });
/// server.of("/").on_connect(|cx| {
///     if !cx.recovered() {
///         cx.join("lobby"); // a recovered socket is back in its rooms already
///     }
/// });
/// ```
///
/// [`Server::connection_state_recovery`]: super::Server::connection_state_recovery
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// How long a dropped socket's state is kept, and how long an event stays in the log
    /// (default 2 minutes, like the reference server).
    pub max_disconnection_duration: Duration,
    /// Whether a recovered socket skips the namespace's middlewares (default `true`, like
    /// the reference server): it passed them when it first connected.
    pub skip_middlewares: bool,
    /// A socket that missed more events than this is not recovered (a new socket instead,
    /// counted in [`Stats::recoveries_refused`](super::Stats::recoveries_refused)); default
    /// 10 000. The reference server has no such bound.
    pub max_missed_packets: usize,
    /// The most the log of events may hold, in bytes (messages plus bookkeeping); past it
    /// the oldest events are evicted (counted in
    /// [`Stats::recovery_log_evicted`](super::Stats::recovery_log_evicted)) and clients that
    /// needed them get a new socket. Default 16 MiB. The reference server has no such bound.
    pub max_buffered_bytes: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
            max_missed_packets: 10_000,
            max_buffered_bytes: 16 << 20,
        }
    }
}

/// Who an emit was for, as the Emitter selected them.
#[derive(Debug)]
pub(super) enum Recipients {
    /// One socket (`socket.emit`).
    Only(SocketKey),
    /// The sockets of the namespace in any of `rooms` (all if empty), minus those in any of
    /// `except`, minus `except_socket` (the sender, for `socket.to(room)`).
    Rooms {
        rooms: Vec<String>,
        except: Vec<String>,
        except_socket: Option<SocketKey>,
    },
}

#[derive(Debug)]
struct LogEntry {
    offset: u64,
    expires: Instant,
    nsp: String,
    to: Recipients,
    messages: Vec<Message>,
    /// What this entry counts against `max_buffered_bytes`.
    bytes: usize,
}

/// A socket that dropped and may come back.
pub(super) struct KeptSession {
    pub(super) id: Arc<str>,
    /// Its key while it was connected: what `Recipients::Only` names.
    pub(super) key: SocketKey,
    pub(super) nsp: String,
    pub(super) rooms: Vec<String>,
    pub(super) data: SocketData,
    /// The first offset the socket could have been sent: a client that got no event yet
    /// comes back without an offset, and misses everything from here.
    first_offset: u64,
    expires: Instant,
}

/// Why a CONNECT with a `pid` got a new socket instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NotRecovered {
    /// No kept session has this pid (never, expired, or already recovered).
    UnknownSession,
    /// The pid belongs to another namespace.
    OtherNamespace,
    /// The offset is not one this server gave, or events after it were evicted.
    OffsetGone,
    /// More missed events than `max_missed_packets`.
    TooManyMissed,
}

/// The kept sessions and the log of events they may have missed.
pub(super) struct RecoveryLog {
    pub(super) config: RecoveryConfig,
    next_offset: u64,
    /// Offsets up to this one (inclusive) are no longer all in the log.
    evicted_up_to: u64,
    entries: VecDeque<LogEntry>,
    bytes: usize,
    sessions: HashMap<Box<str>, KeptSession>,
    /// Kept sessions in the order they expire (a pid may be here after its session was
    /// recovered, or kept again later: the expiry then checks the session's own deadline).
    expiries: VecDeque<(Instant, Box<str>)>,
    /// When the sweep (`Timer::Recovery`) is due, if one is scheduled.
    pub(super) sweep_at: Option<Instant>,
}

/// A log entry's own cost beside its messages (the entry and a little of the queue).
const ENTRY_OVERHEAD: usize = std::mem::size_of::<LogEntry>() + 16;

impl RecoveryLog {
    pub(super) fn new(config: RecoveryConfig) -> RecoveryLog {
        RecoveryLog {
            config,
            next_offset: 1,
            evicted_up_to: 0,
            entries: VecDeque::new(),
            bytes: 0,
            sessions: HashMap::default(),
            expiries: VecDeque::new(),
            sweep_at: None,
        }
    }

    /// The offset the next emit will take: a new socket's first.
    pub(super) fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// The next emit's offset, as the client sees it (hex).
    pub(super) fn take_offset(&mut self) -> (u64, String) {
        let offset = self.next_offset;
        self.next_offset += 1;
        (offset, format!("{offset:x}"))
    }

    /// Kept sessions now.
    pub(super) fn kept_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Events in the log now, and their bytes.
    pub(super) fn log_size(&self) -> (usize, usize) {
        (self.entries.len(), self.bytes)
    }

    /// Whether an emit that reached nobody connected must still be logged: a kept session
    /// may be among its recipients.
    pub(super) fn has_kept_sessions(&self) -> bool {
        !self.sessions.is_empty()
    }

    /// Logs an emit sent with `offset` (from [`RecoveryLog::take_offset`]). Returns how
    /// many older entries were evicted to make room.
    pub(super) fn record(
        &mut self,
        now: Instant,
        offset: u64,
        nsp: String,
        to: Recipients,
        messages: Vec<Message>,
    ) -> u64 {
        let mut bytes = ENTRY_OVERHEAD + nsp.len();
        for m in &messages {
            bytes += match m {
                Message::Text(t) => t.len(),
                Message::Binary(b) => b.len(),
            };
        }
        if let Recipients::Rooms { rooms, except, .. } = &to {
            bytes += rooms
                .iter()
                .chain(except)
                .map(|r| r.len() + 24)
                .sum::<usize>();
        }
        self.bytes += bytes;
        self.entries.push_back(LogEntry {
            offset,
            expires: now + self.config.max_disconnection_duration,
            nsp,
            to,
            messages,
            bytes,
        });
        let mut evicted = 0;
        while self.bytes > self.config.max_buffered_bytes {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= old.bytes;
            self.evicted_up_to = old.offset;
            evicted += 1;
        }
        evicted
    }

    /// Keeps a dropped socket's state under its pid (`first_offset`: what
    /// [`RecoveryLog::next_offset`] was when the socket was made).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn keep(
        &mut self,
        now: Instant,
        pid: Box<str>,
        id: Arc<str>,
        key: SocketKey,
        nsp: String,
        rooms: Vec<String>,
        data: SocketData,
        first_offset: u64,
    ) {
        let expires = now + self.config.max_disconnection_duration;
        self.expiries.push_back((expires, pid.clone()));
        self.sessions.insert(
            pid,
            KeptSession {
                id,
                key,
                nsp,
                rooms,
                data,
                first_offset,
                expires,
            },
        );
    }

    /// Takes the session kept under `pid` for a CONNECT to `nsp` that last saw `offset`,
    /// with the messages of every logged event after the offset that would have reached
    /// it, oldest first. The session is gone afterwards whatever the outcome (but for
    /// another namespace's pid): a pid recovers once.
    ///
    /// Without an offset (the client got no event since it connected) it gets every event
    /// since the socket was made; the reference server does not recover such a client.
    /// An offset from before the socket was made (the client keeps its last offset across
    /// sockets) counts from the socket's making too, so nothing older comes twice.
    pub(super) fn take(
        &mut self,
        now: Instant,
        pid: &str,
        nsp: &str,
        offset: Option<&str>,
    ) -> Result<(KeptSession, Vec<Message>), NotRecovered> {
        match self.sessions.get(pid) {
            // Expired is expired, whether or not the sweep (once a second) came by yet.
            Some(kept) if kept.expires <= now => return Err(NotRecovered::UnknownSession),
            None => return Err(NotRecovered::UnknownSession),
            Some(kept) if kept.nsp != nsp => return Err(NotRecovered::OtherNamespace),
            Some(_) => {}
        }
        let kept = self
            .sessions
            .remove(pid)
            .ok_or(NotRecovered::UnknownSession)?;
        // Our offsets are lowercase hex without a sign or leading zeros; anything else is
        // not ours.
        let seen = match offset {
            None => 0,
            Some(text) => u64::from_str_radix(text, 16)
                .ok()
                .filter(|o| format!("{o:x}") == text && *o < self.next_offset)
                .ok_or(NotRecovered::OffsetGone)?,
        };
        let offset = seen.max(kept.first_offset.saturating_sub(1));
        if offset < self.evicted_up_to {
            return Err(NotRecovered::OffsetGone);
        }
        let start = self.entries.partition_point(|e| e.offset <= offset);
        let mut missed = Vec::new();
        let mut count = 0;
        for entry in self.entries.range(start..) {
            if entry.nsp != kept.nsp || !reaches(&entry.to, &kept) {
                continue;
            }
            count += 1;
            if count > self.config.max_missed_packets {
                return Err(NotRecovered::TooManyMissed);
            }
            missed.extend(entry.messages.iter().cloned());
        }
        Ok((kept, missed))
    }

    /// Drops expired sessions and log entries. Returns how many sessions expired.
    pub(super) fn expire(&mut self, now: Instant) -> u64 {
        let mut expired = 0;
        while let Some(entry) = self.entries.front() {
            if entry.expires > now {
                break;
            }
            self.bytes -= entry.bytes;
            self.evicted_up_to = entry.offset;
            self.entries.pop_front();
        }
        while let Some((at, _)) = self.expiries.front() {
            if *at > now {
                break;
            }
            if let Some((_, pid)) = self.expiries.pop_front()
                && self.sessions.get(&pid).is_some_and(|k| k.expires <= now)
            {
                self.sessions.remove(&pid);
                expired += 1;
            }
        }
        if self.entries.is_empty() {
            // Give the memory of a burst back.
            self.entries.shrink_to(64);
        }
        expired
    }

    /// When [`RecoveryLog::expire`] next has something to do.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        let entry = self.entries.front().map(|e| e.expires);
        let session = self.expiries.front().map(|(at, _)| *at);
        match (entry, session) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Whether an emit for `to` would have reached the kept session (given its namespace).
fn reaches(to: &Recipients, kept: &KeptSession) -> bool {
    match to {
        Recipients::Only(key) => *key == kept.key,
        Recipients::Rooms {
            rooms,
            except,
            except_socket,
        } => {
            *except_socket != Some(kept.key)
                && (rooms.is_empty() || rooms.iter().any(|r| kept.rooms.contains(r)))
                && !except.iter().any(|r| kept.rooms.contains(r))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(index: usize) -> SocketKey {
        SocketKey {
            index,
            generation: 1,
        }
    }

    fn text(s: &str) -> Vec<Message> {
        vec![Message::Text(s.into())]
    }

    fn rooms(rooms: &[&str], except: &[&str], except_socket: Option<SocketKey>) -> Recipients {
        Recipients::Rooms {
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            except: except.iter().map(|r| r.to_string()).collect(),
            except_socket,
        }
    }

    fn log(config: RecoveryConfig) -> (RecoveryLog, Instant) {
        (RecoveryLog::new(config), Instant::now())
    }

    fn keep(log: &mut RecoveryLog, now: Instant, pid: &str, k: SocketKey, in_rooms: &[&str]) {
        log.keep(
            now,
            pid.into(),
            Arc::from("id"),
            k,
            "/".into(),
            in_rooms.iter().map(|r| r.to_string()).collect(),
            SocketData::default(),
            1,
        );
    }

    #[test]
    fn a_restore_gets_what_reached_its_rooms_after_the_offset_in_order() {
        let (mut log, t0) = log(RecoveryConfig::default());
        let me = key(1);
        let (seen, seen_hex) = log.take_offset();
        log.record(t0, seen, "/".into(), rooms(&["a"], &[], None), text("seen"));
        let sends: [(&str, Recipients); 7] = [
            ("to a", rooms(&["a"], &[], None)),
            ("to b", rooms(&["b"], &[], None)),
            ("to all", rooms(&[], &[], None)),
            ("all but a", rooms(&[], &["a"], None)),
            ("a, not from me", rooms(&["a"], &[], Some(me))),
            ("only me", Recipients::Only(me)),
            ("only another", Recipients::Only(key(2))),
        ];
        for (what, to) in sends {
            let (offset, _) = log.take_offset();
            log.record(t0, offset, "/".into(), to, text(what));
        }
        let (offset, _) = log.take_offset();
        log.record(
            t0,
            offset,
            "/other".into(),
            rooms(&[], &[], None),
            text("other nsp"),
        );
        keep(&mut log, t0, "pid", me, &["a", "id"]);
        let (kept, missed) = log
            .take(t0, "pid", "/", Some(&seen_hex))
            .expect("recovered");
        assert_eq!(kept.rooms, ["a", "id"]);
        assert_eq!(
            missed,
            [text("to a"), text("to all"), text("only me")].concat()
        );
        assert_eq!(
            log.take(t0, "pid", "/", Some(&seen_hex)).err(),
            Some(NotRecovered::UnknownSession),
            "a pid recovers once"
        );
    }

    #[test]
    fn offsets_that_are_not_ours_or_evicted_are_refused() {
        let config = RecoveryConfig {
            max_buffered_bytes: 3 * (ENTRY_OVERHEAD + 1 + 4),
            ..RecoveryConfig::default()
        };
        let (mut log, t0) = log(config);
        let mut offsets = Vec::new();
        let mut evicted = 0;
        for _ in 0..5 {
            let (offset, hex) = log.take_offset();
            evicted += log.record(t0, offset, "/".into(), rooms(&[], &[], None), text("four"));
            offsets.push(hex);
        }
        assert_eq!(evicted, 2);
        assert_eq!(log.log_size().0, 3);
        assert_eq!(log.evicted_up_to, 2);
        for (offset, expected) in [
            (offsets[0].as_str(), Err(NotRecovered::OffsetGone)),
            ("ff", Err(NotRecovered::OffsetGone)),
            ("0x2", Err(NotRecovered::OffsetGone)),
            ("02", Err(NotRecovered::OffsetGone)),
            (offsets[1].as_str(), Ok(3)),
            (offsets[4].as_str(), Ok(0)),
        ] {
            keep(&mut log, t0, "pid", key(1), &["id"]);
            let got = log
                .take(t0, "pid", "/", Some(offset))
                .map(|(_, missed)| missed.len());
            assert_eq!(got, expected, "offset {offset:?}");
        }
        keep(&mut log, t0, "pid", key(1), &["id"]);
        assert_eq!(
            log.take(t0, "pid", "/chat", Some(&offsets[4])).err(),
            Some(NotRecovered::OtherNamespace)
        );
        assert!(
            log.take(t0, "pid", "/", Some(&offsets[4])).is_ok(),
            "still kept for its own"
        );
    }

    #[test]
    fn without_an_offset_or_with_an_older_one_it_counts_from_the_sockets_making() {
        let (mut log, t0) = log(RecoveryConfig::default());
        let (before, before_hex) = log.take_offset();
        log.record(
            t0,
            before,
            "/".into(),
            rooms(&[], &[], None),
            text("before"),
        );
        let first = log.next_offset();
        let (offset, _) = log.take_offset();
        log.record(t0, offset, "/".into(), rooms(&[], &[], None), text("after"));
        for client_offset in [None, Some(before_hex.as_str())] {
            log.keep(
                t0,
                "pid".into(),
                Arc::from("id"),
                key(1),
                "/".into(),
                vec!["id".into()],
                SocketData::default(),
                first,
            );
            let (_, missed) = log.take(t0, "pid", "/", client_offset).expect("recovered");
            assert_eq!(missed, text("after"), "offset {client_offset:?}");
        }
    }

    #[test]
    fn a_session_past_its_deadline_is_not_restored_before_the_sweep() {
        let (mut log, t0) = log(RecoveryConfig::default());
        let d = log.config.max_disconnection_duration;
        keep(&mut log, t0, "pid", key(1), &["id"]);
        assert_eq!(
            log.take(t0 + d, "pid", "/", None).err(),
            Some(NotRecovered::UnknownSession)
        );
    }

    #[test]
    fn too_many_missed_is_refused() {
        let config = RecoveryConfig {
            max_missed_packets: 2,
            ..RecoveryConfig::default()
        };
        let (mut log, t0) = log(config);
        let (_, first) = log.take_offset();
        for _ in 0..3 {
            let (offset, _) = log.take_offset();
            log.record(t0, offset, "/".into(), rooms(&[], &[], None), text("x"));
        }
        keep(&mut log, t0, "pid", key(1), &["id"]);
        assert_eq!(
            log.take(t0, "pid", "/", Some(&first)).err(),
            Some(NotRecovered::TooManyMissed)
        );
    }

    #[test]
    fn sessions_and_entries_expire() {
        let (mut log, t0) = log(RecoveryConfig::default());
        let d = log.config.max_disconnection_duration;
        let (seen, hex) = log.take_offset();
        log.record(t0, seen, "/".into(), rooms(&[], &[], None), text("seen"));
        let (offset, _) = log.take_offset();
        log.record(
            t0,
            offset,
            "/".into(),
            rooms(&[], &[], None),
            text("missed"),
        );
        keep(&mut log, t0 + d / 2, "pid", key(1), &["id"]);
        assert_eq!(log.next_expiry(), Some(t0 + d));
        assert_eq!(log.expire(t0 + d), 0);
        assert_eq!(log.log_size(), (0, 0));
        assert_eq!(log.kept_sessions(), 1);
        assert_eq!(log.next_expiry(), Some(t0 + d + d / 2));
        // An event after its offset expired from the log: the offset is gone.
        keep(&mut log, t0 + d, "other", key(2), &["id"]);
        assert_eq!(
            log.take(t0, "other", "/", Some(&hex)).err(),
            Some(NotRecovered::OffsetGone)
        );
        assert_eq!(
            log.kept_sessions(),
            1,
            "a failed restore forgets the session too"
        );
        assert_eq!(log.expire(t0 + d + d / 2), 1);
        assert_eq!(log.kept_sessions(), 0);
        assert_eq!(log.expire(t0 + 2 * d), 0, "the one taken is not counted");
        assert_eq!(log.next_expiry(), None);
    }
}
