//! Socket.IO settings beyond the Engine.IO ones, and the per-socket rate limit (a token
//! bucket).

use std::time::{Duration, Instant};

/// What happens to an event over a socket's rate limit.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum RateLimitAction {
    /// Drop it and count it ([`Stats::events_rate_limited`](super::Stats::events_rate_limited)).
    Drop,
    /// Disconnect the socket (`server namespace disconnect`).
    Disconnect,
}

/// A token bucket: `per_second` events on average, bursts of up to `burst`.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    /// Sustained events per second.
    pub per_second: f64,
    /// The most events at once.
    pub burst: f64,
    /// What to do past the limit.
    pub action: RateLimitAction,
}

/// Socket.IO settings beyond the Engine.IO ones, with their defaults.
#[derive(Clone, Copy, Debug)]
pub(super) struct SioConfig {
    pub(super) connect_timeout: Duration,
    pub(super) max_rooms_per_socket: usize,
    pub(super) max_room_name_len: usize,
    pub(super) max_dynamic_namespaces: usize,
    pub(super) max_namespace_name_len: usize,
    pub(super) cleanup_empty_child_namespaces: bool,
    pub(super) attachments_timeout: Duration,
    pub(super) rate_limit: Option<RateLimit>,
}

impl Default for SioConfig {
    fn default() -> Self {
        SioConfig {
            connect_timeout: Duration::from_secs(45),
            max_rooms_per_socket: 128,
            max_room_name_len: 256,
            max_dynamic_namespaces: 1024,
            max_namespace_name_len: 256,
            cleanup_empty_child_namespaces: true,
            attachments_timeout: Duration::from_secs(10),
            rate_limit: None,
        }
    }
}

/// A socket's token bucket.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bucket {
    pub(super) tokens: f64,
    pub(super) at: Instant,
}

impl Bucket {
    /// Takes one token if there is one, refilling for the time passed.
    pub(super) fn take(&mut self, limit: &RateLimit, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.per_second).min(limit.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// An application check on room names.
pub(super) type RoomValidator = Box<dyn Fn(&str) -> bool>;
