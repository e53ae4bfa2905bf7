//! The process's file descriptor limit (`RLIMIT_NOFILE`) against the connections the
//! server is configured to hold, and `accept` failing for lack of descriptors.
//!
//! Every connection is a file descriptor. When the process runs out, `accept` fails with
//! `EMFILE` and the connection stays in the listen backlog; the loop counts it, warns at
//! most once a second, and accepts again when a connection closes (the listener's
//! readiness is edge-triggered and would not be reported again for clients already
//! queued).

use std::io;
use std::time::{Duration, Instant};

/// Descriptors the server needs besides its connections: standard input, output and
/// error, the poll, the listener, the waker, the Ctrl-C socket pair, and a few for the
/// application (a log file, a database).
const RESERVED: u64 = 16;

/// How often the "out of descriptors" warning may be logged.
pub(super) const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// What to tell the operator when `max_connections` cannot all be open at once under the
/// process's soft limit, or `None` when they can (or the limit cannot be read).
pub(super) fn advice(max_connections: usize) -> Option<String> {
    advice_for(max_connections as u64, soft_limit()?)
}

fn advice_for(max_connections: u64, limit: u64) -> Option<String> {
    let needed = max_connections.saturating_add(RESERVED);
    (needed > limit).then(|| {
        format!(
            "max_connections is {max_connections}, but this process may open only {limit} \
             files (RLIMIT_NOFILE): past about {} connections, new clients wait in the listen \
             backlog until one leaves. Raise the limit to {needed} or more (`ulimit -n \
             {needed}`, `LimitNOFILE={needed}` in a systemd unit, `--ulimit nofile={needed}` \
             with docker) or lower max_connections.",
            limit.saturating_sub(RESERVED)
        )
    })
}

/// The soft `RLIMIT_NOFILE`, if it can be read and is not unlimited.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
fn soft_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a pointer to a live local.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn soft_limit() -> Option<u64> {
    None
}

/// Whether `accept` failed because the process or the system has no descriptor left.
pub(super) fn is_out_of_descriptors(e: &io::Error) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = e;
        false
    }
}

/// Whether a warning last logged at `last` may be logged again at `now`.
pub(super) fn may_warn(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|at| now.saturating_duration_since(at) >= WARN_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_says_what_to_raise_when_the_limit_is_below_max_connections() {
        assert_eq!(advice_for(1000, 65_536), None);
        assert_eq!(advice_for(1000, 1016), None);
        let advice = advice_for(10_000, 1024).expect("advice");
        assert!(advice.contains("max_connections is 10000"), "{advice}");
        assert!(advice.contains("only 1024 files"), "{advice}");
        assert!(advice.contains("ulimit -n 10016"), "{advice}");
        assert!(advice.contains("LimitNOFILE=10016"), "{advice}");
    }

    #[test]
    fn only_emfile_and_enfile_are_out_of_descriptors() {
        #[cfg(target_os = "linux")]
        {
            assert!(is_out_of_descriptors(&io::Error::from_raw_os_error(
                libc::EMFILE
            )));
            assert!(is_out_of_descriptors(&io::Error::from_raw_os_error(
                libc::ENFILE
            )));
        }
        assert!(!is_out_of_descriptors(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
    }
}
