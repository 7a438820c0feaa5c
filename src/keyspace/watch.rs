//! WATCH: which clients watch which keys. Writes signal through the keyspace door; the check is a
//! single atomic load while nobody watches anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// Set when a key a client watches is modified; EXEC aborts if it is set.
pub type WatchFlag = Arc<AtomicBool>;

/// Watchers of one key name: (database, flag) pairs.
type Watchers = Vec<(usize, WatchFlag)>;

#[derive(Default)]
pub struct Watches {
    count: AtomicUsize,
    map: Mutex<HashMap<Box<[u8]>, Watchers>>,
}

impl Watches {
    pub fn watch(&self, db: usize, key: &[u8], flag: &WatchFlag) {
        let mut map = self.map.lock();
        let list = map.entry(key.into()).or_default();
        if !list.iter().any(|(d, f)| *d == db && Arc::ptr_eq(f, flag)) {
            list.push((db, flag.clone()));
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn unwatch(&self, db: usize, key: &[u8], flag: &WatchFlag) {
        let mut map = self.map.lock();
        if let Some(list) = map.get_mut(key) {
            let before = list.len();
            list.retain(|(d, f)| !(*d == db && Arc::ptr_eq(f, flag)));
            self.count.fetch_sub(before - list.len(), Ordering::Relaxed);
            if list.is_empty() {
                map.remove(key);
            }
        }
    }

    #[inline]
    pub fn signal(&self, db: usize, key: &[u8]) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(list) = self.map.lock().get(key) {
            for (d, flag) in list {
                if *d == db {
                    flag.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    pub fn signal_db(&self, db: usize) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        for list in self.map.lock().values() {
            for (d, flag) in list {
                if *d == db {
                    flag.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}
