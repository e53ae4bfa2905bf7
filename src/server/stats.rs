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
    }
}
