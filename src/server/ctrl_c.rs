//! Ctrl-C (SIGINT) as an event of the loop.
//!
//! On Unix the signal handler writes a byte to a socket pair whose other end the loop
//! polls, so no thread is involved. That matters beyond tidiness: in a process with a
//! second thread, Linux takes a reference on the file for every socket call (`fdget` on a
//! shared file table), which is an atomic increment and decrement per `recv` and `send`.
//! Elsewhere the `ctrlc` crate's handler thread asks the loop to stop through its waker.

use mio::{Registry, Token};
use std::io;
#[cfg(not(unix))]
use std::sync::Arc;

/// Ctrl-C handling for one running loop; dropping it removes the handler's action.
#[cfg(unix)]
#[derive(Debug)]
pub(crate) struct CtrlC {
    rx: mio::net::UnixStream,
    id: signal_hook::SigId,
}

#[cfg(unix)]
impl CtrlC {
    /// Registers for SIGINT: `token` becomes readable on Ctrl-C.
    pub(crate) fn install(
        registry: &Registry,
        token: Token,
        _stopper: &std::sync::Arc<super::handles::Stopper>,
    ) -> io::Result<CtrlC> {
        let (mut rx, tx) = mio::net::UnixStream::pair()?;
        registry.register(&mut rx, token, mio::Interest::READABLE)?;
        // The handler writes one byte to `tx` (non-blocking: a full pipe loses nothing, one
        // byte is enough). Several loops in one process each get their own action.
        let id = signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, tx)?;
        Ok(CtrlC { rx, id })
    }

    /// Empties the socket after a Ctrl-C (edge-triggered: read until `WouldBlock`).
    pub(crate) fn drain(&mut self) {
        use std::io::Read;
        let mut buf = [0u8; 64];
        while matches!(self.rx.read(&mut buf), Ok(n) if n > 0) {}
    }
}

#[cfg(unix)]
impl Drop for CtrlC {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.id);
    }
}

/// Ctrl-C handling through the `ctrlc` crate (one handler per process, on its own thread).
#[cfg(not(unix))]
#[derive(Debug)]
pub(crate) struct CtrlC;

#[cfg(not(unix))]
impl CtrlC {
    pub(crate) fn install(
        _registry: &Registry,
        _token: Token,
        stopper: &Arc<super::handles::Stopper>,
    ) -> io::Result<CtrlC> {
        use std::sync::{Mutex, Once, Weak};
        // `ctrlc` allows one handler per process, so the handler wakes every engine.
        static TARGETS: Mutex<Vec<Weak<super::handles::Stopper>>> = Mutex::new(Vec::new());
        static INSTALL: Once = Once::new();
        if let Ok(mut targets) = TARGETS.lock() {
            targets.retain(|t| t.strong_count() > 0);
            targets.push(Arc::downgrade(stopper));
        }
        let mut result = Ok(());
        INSTALL.call_once(|| {
            result = ctrlc::set_handler(|| {
                if let Ok(targets) = TARGETS.lock() {
                    for t in targets.iter().filter_map(Weak::upgrade) {
                        t.request_shutdown();
                    }
                }
            })
            .map_err(io::Error::other);
        });
        result.map(|()| CtrlC)
    }

    pub(crate) fn drain(&mut self) {}
}
