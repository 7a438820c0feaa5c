//! Clients waiting on keys (BLPOP and friends; Redis's blocked.c key tables): for each key, the
//! clients blocked on it in the order they blocked, and the keys that became ready since the last
//! look. A write to a waited-on key marks it ready; the command layer then re-runs the waiting
//! clients' commands, oldest first. One atomic load per write while nobody waits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::client::ClientInfo;

/// Where a waiting client stands. Serving, timing out and CLIENT UNBLOCK all decide under this
/// one lock, so a client never gets both an element and its timeout reply.
pub enum WaitState {
    Waiting,
    /// Answered: the reply bytes its connection writes next.
    Answered(Vec<u8>),
    /// Gone (timed out and answered by its connection, or disconnected).
    Done,
}

/// One blocked client and the command it waits to finish.
pub struct Waiter {
    pub client: Arc<ClientInfo>,
    pub db: usize,
    pub keys: Vec<Bytes>,
    /// The blocked command as sent, re-run to serve it.
    pub args: Vec<Bytes>,
    pub resp3: bool,
    pub state: Mutex<WaitState>,
}

type KeyId = (usize, Bytes);

#[derive(Default)]
struct Inner {
    queues: HashMap<KeyId, VecDeque<Arc<Waiter>>>,
    ready: Vec<KeyId>,
    ready_set: HashSet<KeyId>,
}

#[derive(Default)]
pub struct Blocking {
    /// Blocked clients; zero makes `signal` a single load.
    waiting: AtomicUsize,
    inner: Mutex<Inner>,
}

impl Blocking {
    /// Blocked clients right now (INFO blocked_clients).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Relaxed)
    }

    /// Queues `w` behind earlier waiters on each of its keys. Its keys are marked ready at once: a
    /// push that landed between the command's look at the keys and this call is not missed.
    pub fn add(&self, w: Arc<Waiter>) {
        let mut inner = self.inner.lock();
        for key in &w.keys {
            let id = (w.db, key.clone());
            inner.queues.entry(id.clone()).or_default().push_back(w.clone());
            if inner.ready_set.insert(id.clone()) {
                inner.ready.push(id);
            }
        }
        self.waiting.fetch_add(1, Relaxed);
    }

    /// Takes `w` out of every queue (served, timed out, unblocked or disconnected).
    pub fn remove(&self, w: &Arc<Waiter>) {
        let mut inner = self.inner.lock();
        let mut found = false;
        for key in &w.keys {
            let id = (w.db, key.clone());
            if let Some(q) = inner.queues.get_mut(&id) {
                if let Some(i) = q.iter().position(|x| Arc::ptr_eq(x, w)) {
                    q.remove(i);
                    found = true;
                }
                if q.is_empty() {
                    inner.queues.remove(&id);
                }
            }
        }
        if found {
            self.waiting.fetch_sub(1, Relaxed);
        }
    }

    /// A write touched `key`: if a client waits on it, it is worth a look.
    #[inline]
    pub fn signal(&self, db: usize, key: &[u8]) {
        if self.waiting.load(Relaxed) == 0 {
            return;
        }
        self.signal_slow(db, key);
    }

    #[cold]
    fn signal_slow(&self, db: usize, key: &[u8]) {
        let mut inner = self.inner.lock();
        let id = (db, Bytes::copy_from_slice(key));
        if inner.queues.contains_key(&id) && inner.ready_set.insert(id.clone()) {
            inner.ready.push(id);
        }
    }

    /// Every waited-on key of `db` (SWAPDB brings in a whole database of new values).
    pub fn signal_db(&self, db: usize) {
        if self.waiting.load(Relaxed) == 0 {
            return;
        }
        let mut inner = self.inner.lock();
        let ids: Vec<KeyId> = inner.queues.keys().filter(|(d, _)| *d == db).cloned().collect();
        for id in ids {
            if inner.ready_set.insert(id.clone()) {
                inner.ready.push(id);
            }
        }
    }

    pub fn has_ready(&self) -> bool {
        self.waiting.load(Relaxed) > 0 && !self.inner.lock().ready.is_empty()
    }

    /// The keys marked ready since the last call, in the order they became ready.
    pub fn take_ready(&self) -> Vec<KeyId> {
        let mut inner = self.inner.lock();
        inner.ready_set.clear();
        std::mem::take(&mut inner.ready)
    }

    /// The clients waiting on a key, oldest first.
    pub fn waiters(&self, db: usize, key: &Bytes) -> Vec<Arc<Waiter>> {
        let inner = self.inner.lock();
        inner
            .queues
            .get(&(db, key.clone()))
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }
}
