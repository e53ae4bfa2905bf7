//! The engine's counters, and their Prometheus text.

use super::Engine;
use crate::protocol::engineio::session::CloseReason;

/// Engine.IO counters, readable from handlers (`Engine::stats`) and as Prometheus text.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct EngineStats {
    /// TCP connections accepted.
    pub connections_accepted: u64,
    /// TCP connections refused at accept (connection limits).
    pub connections_refused: u64,
    /// Requests answered with an error status (4xx, 5xx).
    pub requests_refused: u64,
    /// Sessions opened.
    pub sessions_opened: u64,
    /// Engine.IO packets received.
    pub packets_in: u64,
    /// Engine.IO packets sent.
    pub packets_out: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Times a connection's input was left unread for a turn because it had used its share
    /// of the loop (fair reads): a client writing faster than its handlers run is slowed
    /// down by TCP instead of piling up input in memory.
    pub reads_deferred: u64,
    /// Times a connection was not read because the server-wide memory budget
    /// (`Config::max_buffered_bytes`) was spent and it held the most unfinished input.
    pub reads_paused_by_budget: u64,
    /// How long connections stayed paused by the memory budget, in all (microseconds).
    pub paused_by_budget_micros: u64,
    /// Connections closed as slow consumers to bring the server back under its memory budget.
    pub closed_by_budget: u64,
    /// Connections refused at accept that were answered `503` and closed gracefully.
    /// (Counted in `connections_refused` too.)
    pub refusals_answered: u64,
    /// Times `accept` failed because the process (`EMFILE`, `RLIMIT_NOFILE`) or the system
    /// (`ENFILE`) had no file descriptor left. The connection waits in the listen backlog
    /// and is accepted once a connection closes.
    pub accepts_out_of_descriptors: u64,
    /// Sessions closed, by reason (see [`EngineStats::closed`]).
    closes: [u64; 7],
}

pub(super) const CLOSE_REASONS: [CloseReason; 7] = [
    CloseReason::TransportClose,
    CloseReason::TransportError,
    CloseReason::PingTimeout,
    CloseReason::ParseError,
    CloseReason::ForcedClose,
    CloseReason::ServerShuttingDown,
    CloseReason::SlowConsumer,
];

impl EngineStats {
    /// Sessions closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        CLOSE_REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.closes[i])
    }

    pub(super) fn count_close(&mut self, reason: CloseReason) {
        if let Some(i) = CLOSE_REASONS.iter().position(|r| *r == reason) {
            self.closes[i] += 1;
        }
    }
}

impl Engine {
    /// The counters as Prometheus text.
    pub fn metrics_text(&self) -> String {
        use crate::metrics::{self, Kind};
        let s = &self.stats;
        let mut out = String::new();
        metrics::single(
            &mut out,
            Kind::Gauge,
            &[
                (
                    "sioloop_connections_open",
                    "Open TCP connections.",
                    self.conns.len() as u64,
                ),
                (
                    "sioloop_sessions_open",
                    "Open Engine.IO sessions.",
                    self.sessions.len() as u64,
                ),
                (
                    "sioloop_connections_deferred",
                    "Connections with input left for the next turn (fair reads).",
                    self.deferred.len() as u64,
                ),
                (
                    "sioloop_connections_paused_by_budget",
                    "Connections not read until the memory budget has room.",
                    self.budget.paused_count() as u64,
                ),
                (
                    "sioloop_buffered_bytes",
                    "Buffered input and output, counted against max_buffered_bytes.",
                    self.budget.total() as u64,
                ),
            ],
        );
        metrics::single(
            &mut out,
            Kind::Counter,
            &[
                (
                    "sioloop_connections_accepted_total",
                    "TCP connections accepted.",
                    s.connections_accepted,
                ),
                (
                    "sioloop_connections_refused_total",
                    "TCP connections refused by a limit.",
                    s.connections_refused,
                ),
                (
                    "sioloop_requests_refused_total",
                    "HTTP requests answered with an error.",
                    s.requests_refused,
                ),
                (
                    "sioloop_sessions_opened_total",
                    "Engine.IO sessions opened.",
                    s.sessions_opened,
                ),
                (
                    "sioloop_packets_in_total",
                    "Engine.IO packets received.",
                    s.packets_in,
                ),
                (
                    "sioloop_packets_out_total",
                    "Engine.IO packets sent.",
                    s.packets_out,
                ),
                (
                    "sioloop_bytes_in_total",
                    "Bytes read from sockets.",
                    s.bytes_in,
                ),
                (
                    "sioloop_bytes_out_total",
                    "Bytes written to sockets.",
                    s.bytes_out,
                ),
                (
                    "sioloop_reads_deferred_total",
                    "Reads deferred to a later turn: the connection used its share.",
                    s.reads_deferred,
                ),
                (
                    "sioloop_reads_paused_by_budget_total",
                    "Reads paused because the memory budget was spent.",
                    s.reads_paused_by_budget,
                ),
                (
                    "sioloop_paused_by_budget_seconds_total",
                    "Time connections stayed paused by the memory budget, in all (whole seconds).",
                    s.paused_by_budget_micros / 1_000_000,
                ),
                (
                    "sioloop_closed_by_budget_total",
                    "Slow consumers closed to stay within the memory budget.",
                    s.closed_by_budget,
                ),
                (
                    "sioloop_accepts_out_of_descriptors_total",
                    "Accepts that failed for lack of file descriptors (RLIMIT_NOFILE).",
                    s.accepts_out_of_descriptors,
                ),
            ],
        );
        let name = "sioloop_sessions_closed_total";
        metrics::header(
            &mut out,
            Kind::Counter,
            name,
            "Engine.IO sessions closed, by reason.",
        );
        for reason in CLOSE_REASONS {
            metrics::labelled(&mut out, name, "reason", reason.as_str(), s.closed(reason));
        }
        out
    }
}
