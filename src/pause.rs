//! CLIENT PAUSE: for a while, commands (all, or those that write) wait before they run, as Redis
//! postpones them in processCommand. A pause only ever grows until it ends or CLIENT UNPAUSE.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Default)]
pub struct Pause {
    /// Until when, and whether every command waits (ALL) or only writes (WRITE).
    state: Mutex<Option<(Instant, bool)>>,
    /// Whether a pause may be on: the one load a command pays when there is none.
    active: AtomicBool,
    /// Woken when a pause is lifted (CLIENT UNPAUSE), so waiting commands run at once.
    pub lifted: Notify,
}

impl Pause {
    /// pauseClients: a pause already on keeps the later end and the stricter mode.
    pub fn pause(&self, until: Instant, all: bool) {
        let mut state = self.state.lock();
        *state = match *state {
            Some((end, was_all)) if end > Instant::now() => Some((end.max(until), was_all || all)),
            _ => Some((until, all)),
        };
        self.active.store(true, Relaxed);
    }

    pub fn unpause(&self) {
        *self.state.lock() = None;
        self.active.store(false, Relaxed);
        self.lifted.notify_waiters();
    }

    /// Until when a command must wait: any command under ALL, under WRITE only those `writes`
    /// says write (asked only while a pause is on).
    #[inline]
    pub fn holds_with(&self, writes: impl FnOnce() -> bool) -> Option<Instant> {
        if !self.active.load(Relaxed) {
            return None;
        }
        let (end, all) = self.current()?;
        (all || writes()).then_some(end)
    }

    #[cold]
    fn current(&self) -> Option<(Instant, bool)> {
        let mut state = self.state.lock();
        match *state {
            Some((end, _)) if end <= Instant::now() => {
                *state = None;
                self.active.store(false, Relaxed);
                None
            }
            current => current,
        }
    }
}
