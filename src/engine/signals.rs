//! SIGINT (Ctrl-C) and SIGTERM as events of the loop, while `run` runs and
//! [`Config::shutdown_on_signals`](super::Config::shutdown_on_signals) is on.
//!
//! On Unix the signal handler writes a byte to a socket pair whose other end the loop
//! polls, so no thread is involved. That matters beyond tidiness: in a process with a
//! second thread, Linux takes a reference on the file for every socket call (`fdget` on a
//! shared file table), which is an atomic increment and decrement per `recv` and `send`.
//! Elsewhere the `ctrlc` crate's handler thread asks the loop to stop through its waker.
//!
//! When `run` returns, the signals do again what they did before: signal-hook keeps its
//! handler installed once it has one and, for a signal whose previous disposition was the
//! default, would then ignore it (it does not run `SIG_DFL` itself). So for such a signal
//! an action that emulates the default (terminate) is added once per process, and armed
//! only while no loop is catching: after `run`, SIGTERM and Ctrl-C kill the process as
//! they did before it. A signal that was ignored stays ignored, and a handler the
//! program had installed is chained by signal-hook, during `run` and after.

use mio::{Registry, Token};
use std::io;
#[cfg(not(unix))]
use std::sync::Arc;

/// The signals that stop a running loop.
#[cfg(unix)]
const STOP_SIGNALS: [libc::c_int; 2] = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM];

/// Catching of the stop signals for one running loop; dropping it removes the handler's
/// actions, and once no loop catches them the previous dispositions apply again.
#[cfg(unix)]
#[derive(Debug)]
pub(crate) struct StopSignals {
    rx: mio::net::UnixStream,
    ids: Vec<signal_hook::SigId>,
}

#[cfg(unix)]
impl StopSignals {
    /// Catches SIGINT and SIGTERM: `token` becomes readable when one arrives.
    pub(crate) fn install(
        registry: &Registry,
        token: Token,
        _stopper: &std::sync::Arc<super::handles::Stopper>,
    ) -> io::Result<StopSignals> {
        let (rx, tx) = std::os::unix::net::UnixStream::pair()?;
        // The handler writes one byte to `tx` without blocking: a full pipe loses nothing,
        // one byte is enough.
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        let mut rx = mio::net::UnixStream::from_std(rx);
        registry.register(&mut rx, token, mio::Interest::READABLE)?;
        process_wide::loop_started()?;
        // From here on, dropping `catching` undoes what was done, even on an error below.
        let mut catching = StopSignals {
            rx,
            ids: Vec::with_capacity(STOP_SIGNALS.len()),
        };
        // Several loops in one process each get their own actions.
        for signal in STOP_SIGNALS {
            let id = signal_hook::low_level::pipe::register(signal, tx.try_clone()?)?;
            catching.ids.push(id);
        }
        Ok(catching)
    }

    /// Empties the socket after a signal (edge-triggered: read until `WouldBlock`).
    pub(crate) fn drain(&mut self) {
        use std::io::Read;
        let mut buf = [0u8; 64];
        while matches!(self.rx.read(&mut buf), Ok(n) if n > 0) {}
    }
}

#[cfg(unix)]
impl Drop for StopSignals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        process_wide::loop_stopped();
    }
}

/// What the whole process shares: how many loops catch the stop signals now, and the
/// actions that give a signal its default back while none does.
#[cfg(unix)]
mod process_wide {
    use super::STOP_SIGNALS;
    use std::io;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, PoisonError};

    struct Catching {
        /// Loops between `loop_started` and `loop_stopped`.
        loops: usize,
        /// Whether each of `STOP_SIGNALS` has had its previous disposition looked at.
        looked_at: [bool; STOP_SIGNALS.len()],
    }

    static CATCHING: Mutex<Catching> = Mutex::new(Catching {
        loops: 0,
        looked_at: [false; STOP_SIGNALS.len()],
    });

    /// True while no loop catches the stop signals; read by the signal handler.
    static NONE_CATCHING: AtomicBool = AtomicBool::new(true);

    pub(super) fn loop_started() -> io::Result<()> {
        let mut catching = CATCHING.lock().unwrap_or_else(PoisonError::into_inner);
        for (signal, looked_at) in STOP_SIGNALS.into_iter().zip(&mut catching.looked_at) {
            if *looked_at {
                continue;
            }
            // Looked at before signal-hook installs its handler for the signal, which it
            // does with the first action registered for it.
            if disposition_is_default(signal)? {
                signal_hook::flag::register_conditional_default(signal, &NONE_CATCHING)?;
            }
            *looked_at = true;
        }
        catching.loops += 1;
        NONE_CATCHING.store(false, Ordering::SeqCst);
        Ok(())
    }

    pub(super) fn loop_stopped() {
        let mut catching = CATCHING.lock().unwrap_or_else(PoisonError::into_inner);
        catching.loops = catching.loops.saturating_sub(1);
        if catching.loops == 0 {
            NONE_CATCHING.store(true, Ordering::SeqCst);
        }
    }

    /// Whether `signal` does what it does by default (`SIG_DFL`) now.
    #[allow(unsafe_code)]
    fn disposition_is_default(signal: libc::c_int) -> io::Result<bool> {
        // SAFETY: with a null new action, `sigaction` only writes the current one into
        // `current`, a plain C struct for which all zeroes is a valid value.
        let current = unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut current) != 0 {
                return Err(io::Error::last_os_error());
            }
            current
        };
        Ok(current.sa_sigaction == libc::SIG_DFL)
    }
}

/// Ctrl-C handling through the `ctrlc` crate (one handler per process, on its own thread);
/// dropping it takes the loop off the handler's list.
#[cfg(not(unix))]
#[derive(Debug)]
pub(crate) struct StopSignals {
    stopper: std::sync::Weak<super::handles::Stopper>,
}

/// The loops the `ctrlc` handler stops: it allows one handler per process.
#[cfg(not(unix))]
static TARGETS: std::sync::Mutex<Vec<std::sync::Weak<super::handles::Stopper>>> =
    std::sync::Mutex::new(Vec::new());

#[cfg(not(unix))]
impl StopSignals {
    pub(crate) fn install(
        _registry: &Registry,
        _token: Token,
        stopper: &Arc<super::handles::Stopper>,
    ) -> io::Result<StopSignals> {
        use std::sync::{Once, PoisonError, Weak};
        static INSTALL: Once = Once::new();
        let mut result = Ok(());
        INSTALL.call_once(|| {
            result = ctrlc::set_handler(|| {
                let mut stopped_one = false;
                let targets = TARGETS.lock().unwrap_or_else(PoisonError::into_inner);
                for target in targets.iter().filter_map(Weak::upgrade) {
                    target.request_shutdown();
                    stopped_one = true;
                }
                // The handler cannot be removed: with no loop running, Ctrl-C ends the
                // process as it would have without one (STATUS_CONTROL_C_EXIT).
                if !stopped_one {
                    std::process::exit(0xC000_013A_u32 as i32);
                }
            })
            .map_err(io::Error::other);
        });
        result?;
        let stopper = Arc::downgrade(stopper);
        let mut targets = TARGETS.lock().unwrap_or_else(PoisonError::into_inner);
        targets.retain(|t| t.strong_count() > 0);
        targets.push(stopper.clone());
        Ok(StopSignals { stopper })
    }

    pub(crate) fn drain(&mut self) {}
}

#[cfg(not(unix))]
impl Drop for StopSignals {
    fn drop(&mut self) {
        let mut targets = TARGETS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        targets.retain(|t| !t.ptr_eq(&self.stopper) && t.strong_count() > 0);
    }
}
