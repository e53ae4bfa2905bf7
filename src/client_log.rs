//! Log lines a client can cause at will (a refused join, a bad request, an event with
//! invalid arguments): written at `debug` (invalid arguments at `warn`), with the client's
//! text clipped, and at most a few per peer address per second, so a client cannot fill
//! the disk or drown the log of everyone else.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The most bytes of a client's text a log line shows.
const CLIP_BYTES: usize = 64;
/// Lines per peer address per window.
const LINES_PER_WINDOW: u32 = 5;
const WINDOW: Duration = Duration::from_secs(1);
/// Peers tracked at once; past it the table starts over (a burst from many addresses is
/// rate-limited by the window of each, and the table stays small).
const MAX_PEERS: usize = 4096;

/// A client's text for a log line: quoted and escaped (no control characters reach the
/// log), at most [`CLIP_BYTES`] of it, with how much was left out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clipped<'a>(pub(crate) &'a str);

impl fmt::Display for Clipped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if text.len() <= CLIP_BYTES {
            return write!(f, "{text:?}");
        }
        let mut end = CLIP_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        write!(f, "{:?}… ({} bytes)", &text[..end], text.len())
    }
}

/// Counts log lines per peer address in one-second windows.
#[derive(Debug, Default)]
pub(crate) struct PeerLogLimiter {
    peers: HashMap<IpAddr, (Instant, u32)>,
    /// Lines not written because their peer was over its budget.
    pub(crate) suppressed: u64,
}

impl PeerLogLimiter {
    /// Whether a line about `peer` may be written at `now`; counts it if so.
    pub(crate) fn allow(&mut self, peer: IpAddr, now: Instant) -> bool {
        if self.peers.len() >= MAX_PEERS && !self.peers.contains_key(&peer) {
            self.peers
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < WINDOW);
            if self.peers.len() >= MAX_PEERS {
                self.peers.clear();
            }
        }
        let (start, lines) = self.peers.entry(peer).or_insert((now, 0));
        if now.saturating_duration_since(*start) >= WINDOW {
            *start = now;
            *lines = 0;
        }
        if *lines < LINES_PER_WINDOW {
            *lines += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_and_escapes_client_text() {
        assert_eq!(Clipped("a\nb").to_string(), "\"a\\nb\"");
        let long = "é".repeat(100);
        let shown = Clipped(&long).to_string();
        assert!(shown.ends_with("… (200 bytes)"), "{shown}");
        assert!(shown.len() < 90, "{shown}");
    }

    #[test]
    fn limits_lines_per_peer_per_second() {
        let mut limiter = PeerLogLimiter::default();
        let t0 = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let allowed = (0..20).filter(|_| limiter.allow(a, t0)).count();
        assert_eq!(allowed, LINES_PER_WINDOW as usize);
        assert!(limiter.allow(b, t0), "another peer has its own budget");
        assert!(limiter.allow(a, t0 + WINDOW), "a new window");
        assert_eq!(limiter.suppressed, 15);
    }
}
