//! Handles that reach a running [`Engine`](super::Engine) from other threads: wake it, or
//! stop it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Wakes a running [`Engine`](super::Engine) from any thread, so that its handler's
/// [`EngineHandler::on_wake`](super::EngineHandler::on_wake) runs on the loop thread.
/// `Send + Clone`.
#[derive(Clone, Debug)]
pub struct WakeHandle {
    pub(super) inner: Arc<Stopper>,
}

impl WakeHandle {
    /// Wakes the loop. Cheap; many wakes before the loop runs coalesce into one.
    pub fn wake(&self) {
        self.inner.request_wake();
    }
}

/// Stops a running [`Engine`](super::Engine) from any thread. `Send + Clone`.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    pub(super) inner: Arc<Stopper>,
}

impl ShutdownHandle {
    /// Asks the loop to close every session with `server shutting down`, flush, and return
    /// from `run`.
    pub fn shutdown(&self) {
        self.inner.request_shutdown();
    }
}

/// What the handles share with the loop.
#[derive(Debug)]
pub(super) struct Stopper {
    /// A shutdown was asked for.
    requested: AtomicBool,
    /// A wake was asked for since the loop last looked.
    woken: AtomicBool,
    /// Interrupts the loop's wait; `None` where the transport never blocks (in memory).
    waker: Option<mio::Waker>,
}

impl Stopper {
    pub(super) fn new(waker: Option<mio::Waker>) -> Stopper {
        Stopper {
            requested: AtomicBool::new(false),
            woken: AtomicBool::new(false),
            waker,
        }
    }

    /// Interrupts the loop's wait.
    fn wake(&self) {
        if let Some(waker) = &self.waker {
            let _ = waker.wake();
        }
    }

    /// Asks the loop to shut down (from any thread).
    pub(super) fn request_shutdown(&self) {
        self.note_shutdown();
        self.wake();
    }

    /// Records a shutdown request without waking the loop (on the loop thread itself).
    pub(super) fn note_shutdown(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    /// Asks the loop to run its handler's `on_wake` (from any thread).
    fn request_wake(&self) {
        self.woken.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub(super) fn shutdown_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Whether a wake was asked for since the last call.
    pub(super) fn take_woken(&self) -> bool {
        self.woken.swap(false, Ordering::SeqCst)
    }
}
