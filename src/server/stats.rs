//! The Socket.IO layer's counters (`Stats`) and its part of the metrics page.

use super::core::Core;

/// Counters a handler or a [`Handle`](super::Handle) can read.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct Stats {
    /// Volatile packets dropped because the client could not take them at once.
    pub volatile_dropped: u64,
    /// Incoming events refused by an event middleware or with bad arguments.
    pub events_refused: u64,
    /// Connections refused by a middleware, for an unknown namespace, or for a namespace
    /// name over `Server::max_namespace_name_len`.
    pub connects_refused: u64,
    /// Incoming events over a socket's rate limit.
    pub events_rate_limited: u64,
    /// Joins refused: too many rooms, a name too long, or refused by the validator.
    pub joins_refused: u64,
    /// Connections to a new dynamic namespace refused because there are too many.
    pub namespaces_refused: u64,
    /// Child namespaces created by dynamic namespaces (after their middlewares accepted a
    /// client).
    pub namespaces_created: u64,
    /// Child namespaces removed when their last socket left.
    pub namespaces_removed: u64,
    /// Clients closed (`parse error`) because a binary packet's attachments did not all
    /// arrive within `Server::attachments_timeout`.
    pub attachments_timed_out: u64,
    /// Sockets kept after a drop for connection state recovery.
    pub sessions_kept: u64,
    /// Sockets recovered: a dropped socket came back with its id, rooms, data and the events
    /// it missed.
    pub sessions_recovered: u64,
    /// Recoveries refused (a new socket instead): an unknown or expired session, an offset
    /// no longer in the log, or more missed events than `max_missed_packets`.
    pub recoveries_refused: u64,
    /// Kept sessions that expired before their client came back.
    pub recovery_sessions_expired: u64,
    /// Events evicted from the recovery log before their time, for `max_buffered_bytes`.
    pub recovery_log_evicted: u64,
}

impl<S> Core<S> {
    /// The Socket.IO layer's gauges and counters, as Prometheus text.
    pub(super) fn write_metrics(&self, out: &mut String) {
        use crate::metrics::{self, Kind};
        let name = "sioloop_sockets";
        metrics::header(out, Kind::Gauge, name, "Connected sockets, by namespace.");
        for (_, ns) in &self.namespaces {
            metrics::labelled(out, name, "nsp", &ns.name, ns.sockets.len() as u64);
        }
        let name = "sioloop_rooms";
        metrics::header(out, Kind::Gauge, name, "Non-empty rooms, by namespace.");
        for (_, ns) in &self.namespaces {
            metrics::labelled(out, name, "nsp", &ns.name, ns.rooms.room_count() as u64);
        }
        metrics::single(
            out,
            Kind::Gauge,
            &[(
                "sioloop_child_namespaces",
                "Child namespaces of dynamic namespaces alive now.",
                self.dynamic_namespaces as u64,
            )],
        );
        let s = self.stats;
        metrics::single(
            out,
            Kind::Counter,
            &[
                (
                    "sioloop_volatile_dropped_total",
                    "Volatile packets dropped.",
                    s.volatile_dropped,
                ),
                (
                    "sioloop_events_refused_total",
                    "Events refused by middleware or bad arguments.",
                    s.events_refused,
                ),
                (
                    "sioloop_events_rate_limited_total",
                    "Events over a socket's rate limit.",
                    s.events_rate_limited,
                ),
                (
                    "sioloop_connects_refused_total",
                    "Namespace connections refused.",
                    s.connects_refused,
                ),
                (
                    "sioloop_joins_refused_total",
                    "Room joins refused by a limit.",
                    s.joins_refused,
                ),
                (
                    "sioloop_namespaces_refused_total",
                    "Dynamic namespaces refused by the limit.",
                    s.namespaces_refused,
                ),
                (
                    "sioloop_attachments_timed_out_total",
                    "Clients closed because a binary packet's attachments came too late.",
                    s.attachments_timed_out,
                ),
                (
                    "sioloop_namespaces_created_total",
                    "Child namespaces created by dynamic namespaces.",
                    s.namespaces_created,
                ),
                (
                    "sioloop_namespaces_removed_total",
                    "Child namespaces removed when their last socket left.",
                    s.namespaces_removed,
                ),
            ],
        );
        if let Some(log) = self.recovery.as_deref() {
            let (entries, bytes) = log.log_size();
            metrics::single(
                out,
                Kind::Gauge,
                &[
                    (
                        "sioloop_recovery_kept_sessions",
                        "Dropped sockets kept for connection state recovery.",
                        log.kept_sessions() as u64,
                    ),
                    (
                        "sioloop_recovery_log_events",
                        "Events in the connection state recovery log.",
                        entries as u64,
                    ),
                    (
                        "sioloop_recovery_log_bytes",
                        "Bytes held by the connection state recovery log.",
                        bytes as u64,
                    ),
                ],
            );
            metrics::single(
                out,
                Kind::Counter,
                &[
                    (
                        "sioloop_recovery_sessions_kept_total",
                        "Sockets kept after a drop for connection state recovery.",
                        s.sessions_kept,
                    ),
                    (
                        "sioloop_recovery_sessions_recovered_total",
                        "Dropped sockets that came back with their state.",
                        s.sessions_recovered,
                    ),
                    (
                        "sioloop_recovery_refused_total",
                        "Recoveries refused: unknown session, offset gone, too many missed.",
                        s.recoveries_refused,
                    ),
                    (
                        "sioloop_recovery_sessions_expired_total",
                        "Kept sessions that expired before their client came back.",
                        s.recovery_sessions_expired,
                    ),
                    (
                        "sioloop_recovery_log_evicted_total",
                        "Events evicted from the recovery log for its byte limit.",
                        s.recovery_log_evicted,
                    ),
                ],
            );
        }
    }
}
