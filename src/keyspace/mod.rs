//! The data: databases of sharded hash tables, and the one door every command goes through to
//! reach a key. Lazy expiry, LRU/LFU touch, hit/miss counting and WATCH signalling happen here and
//! nowhere else; commands never see an expired key.

pub mod blocking;
pub mod dict;
pub mod evict;
pub mod expire;
pub mod list;
pub mod memory;
pub mod notify;
pub mod set;
mod value;
mod watch;
pub mod zset;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use crate::stats::Counter;
use dict::{Dict, Hasher, Node};
pub use list::{End, List};
pub use set::Set;
pub use value::{Entry, Hash, ListpackLimits, Members, Value};
pub use watch::WatchFlag;
pub use zset::ZSet;

/// Shards per database: enough to keep the two worker threads off each other's locks, few enough
/// that whole-database operations (DBSIZE, FLUSHDB) stay cheap.
pub const SHARD_BITS: u32 = 5;
pub const SHARDS: usize = 1 << SHARD_BITS;

/// Most keys [`Keyspace::prefetch`] warms at once.
pub const PREFETCH_BATCH: usize = 16;

pub struct Shard {
    pub(crate) main: Dict<Entry>,
    /// Keys that carry a TTL, so active expiry samples only those.
    pub(crate) expires: Dict<()>,
}

pub struct Db {
    shards: Box<[Mutex<Shard>]>,
}

#[derive(Default)]
pub struct KeyspaceStats {
    pub hits: Counter,
    pub misses: Counter,
    pub expired: Counter,
    pub evicted: Counter,
}

/// Unix time in milliseconds, read from the monotonic clock a command already takes for its
/// statistics (one clock read per command), with an offset a test can move.
pub struct Clock {
    base: Instant,
    base_ms: i64,
    offset_ms: AtomicI64,
    /// The latest reading, for the LRU clock; written only when the millisecond changes, so the
    /// two worker threads rarely touch its cache line.
    latest_ms: AtomicI64,
}

impl Default for Clock {
    fn default() -> Self {
        let base_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock {
            base: Instant::now(),
            base_ms,
            offset_ms: AtomicI64::new(0),
            latest_ms: AtomicI64::new(base_ms),
        }
    }
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        self.at(Instant::now())
    }

    /// Unix ms at `instant`.
    #[inline]
    pub fn at(&self, instant: Instant) -> i64 {
        let ms = self.base_ms + instant.saturating_duration_since(self.base).as_millis() as i64 + self.offset_ms.load(Relaxed);
        if self.latest_ms.load(Relaxed) < ms {
            self.latest_ms.store(ms, Relaxed);
        }
        ms
    }

    /// The latest reading taken by any thread.
    #[inline]
    pub fn latest_ms(&self) -> i64 {
        self.latest_ms.load(Relaxed)
    }

    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Relaxed);
    }
}

/// How a read lookup treats the key (Redis's LOOKUP_* flags).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// GET and friends: touch LRU, count a hit or a miss.
    Read,
    /// TTL, TYPE, EXISTS: count, but do not touch the access time.
    NoTouch,
    /// OBJECT: count, do not touch, and raise no keymiss event (Redis's objectCommandLookup,
    /// LOOKUP_NOTOUCH|LOOKUP_NONOTIFY).
    NoNotify,
    /// Internal peeks (MEMORY USAGE, SCAN TYPE): neither.
    Peek,
}

pub struct Keyspace {
    dbs: Box<[Db]>,
    hasher: Hasher,
    /// Held shared while commands run, exclusively by the few that span shards or databases
    /// (MSET, RENAME, EXEC, FLUSHALL, SWAPDB ...), which makes those atomic as in Redis.
    pub world: RwLock<()>,
    pub stats: KeyspaceStats,
    pub clock: Clock,
    watches: watch::Watches,
    pub(crate) evictor: evict::Evictor,
    /// What accesses record, mirrored from the config (maxmemory-policy, lfu-*).
    pub tracking: Tracking,
    /// Keyspace notifications (notify-keyspace-events).
    pub notifier: notify::Notifier,
    /// Clients blocked on keys, and the keys writes made ready for them.
    pub blocking: blocking::Blocking,
    /// Client-side caching, told of every change while any client tracks keys.
    pub invalidation: Invalidation,
}

/// What client-side caching (CLIENT TRACKING) needs from the keyspace: each changed key
/// (Redis's signalModifiedKey calls trackingInvalidateKey) and each flush.
pub trait Invalidate: Send + Sync {
    fn key(&self, key: &[u8]);
    fn all(&self);
}

/// Where changes go for client-side caching; while nobody tracks, a write pays one load.
#[derive(Default)]
pub struct Invalidation {
    pub on: Arc<AtomicBool>,
    sink: std::sync::OnceLock<Arc<dyn Invalidate>>,
}

impl Invalidation {
    pub fn set_sink(&self, sink: Arc<dyn Invalidate>) {
        let _ = self.sink.set(sink);
    }

    #[inline]
    fn key(&self, key: &[u8]) {
        if self.on.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(s) = self.sink.get() {
                s.key(key);
            }
        }
    }

    fn all(&self) {
        if self.on.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(s) = self.sink.get() {
                s.all();
            }
        }
    }
}

/// Whether accesses feed LFU counters (an LFU policy is set) or the LRU clock, and the LFU knobs.
pub struct Tracking {
    pub lfu: AtomicBool,
    pub lfu_log_factor: AtomicU32,
    pub lfu_decay_minutes: AtomicU32,
}

/// When a write sets a value, what happens to the key's TTL.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ttl {
    /// Drop any TTL (plain SET).
    Clear,
    /// Keep the current TTL (KEEPTTL, SETRANGE, INCR ...).
    Keep,
    /// Expire at this unix time in milliseconds.
    At(i64),
}

impl Keyspace {
    pub fn new(databases: usize) -> Self {
        let hasher = Hasher::with_seed(fastrand::u64(..));
        let dbs = (0..databases.max(1))
            .map(|_| Db {
                shards: (0..SHARDS)
                    .map(|_| {
                        Mutex::new(Shard {
                            main: Dict::new(hasher),
                            expires: Dict::new(hasher),
                        })
                    })
                    .collect(),
            })
            .collect();
        Keyspace {
            dbs,
            hasher,
            world: RwLock::new(()),
            stats: KeyspaceStats::default(),
            clock: Clock::default(),
            watches: watch::Watches::default(),
            evictor: evict::Evictor::default(),
            tracking: Tracking {
                lfu: AtomicBool::new(false),
                lfu_log_factor: AtomicU32::new(10),
                lfu_decay_minutes: AtomicU32::new(1),
            },
            notifier: notify::Notifier::default(),
            blocking: blocking::Blocking::default(),
            invalidation: Invalidation::default(),
        }
    }

    pub fn databases(&self) -> usize {
        self.dbs.len()
    }

    /// The LRU clock: milliseconds, wrapping (idle times are differences), from the latest clock
    /// reading rather than a clock read of its own.
    #[inline]
    pub fn lru_clock(&self) -> u32 {
        self.clock.latest_ms() as u32
    }

    /// Minutes since start, wrapping at 16 bits: the LFU decay clock.
    pub fn lfu_minutes(&self) -> u16 {
        (self.clock.latest_ms() / 60_000) as u16
    }

    pub fn lfu_params(&self) -> evict::LfuParams {
        evict::LfuParams {
            log_factor: self.tracking.lfu_log_factor.load(Relaxed),
            decay_minutes: self.tracking.lfu_decay_minutes.load(Relaxed),
        }
    }

    /// Records an access: the LRU clock, or (under an LFU policy) the decayed-then-incremented
    /// LFU counter with the minute it was last decayed.
    #[inline]
    fn record_access(&self, e: &mut Entry) {
        if self.tracking.lfu.load(Relaxed) {
            let p = self.lfu_params();
            let now = self.lfu_minutes();
            let decayed = evict::lfu_decayed(e.lfu_counter(), e.lru() as u16, now, p.decay_minutes);
            let counter = evict::lfu_incr(decayed, p.log_factor, &mut fastrand::Rng::new());
            e.set_lfu(counter, now);
        } else {
            e.touch(self.lru_clock());
        }
    }

    /// The access stamp a new key starts with.
    fn new_stamp(&self) -> u32 {
        if self.tracking.lfu.load(Relaxed) {
            self.lfu_minutes() as u32
        } else {
            self.lru_clock()
        }
    }

    /// OBJECT FREQ: the LFU counter as decayed now.
    pub fn lfu_frequency(&self, e: &Entry) -> u8 {
        evict::lfu_decayed(e.lfu_counter(), e.lru() as u16, self.lfu_minutes(), self.lfu_params().decay_minutes)
    }

    #[inline]
    fn locate(&self, db: usize, key: &[u8]) -> (&Mutex<Shard>, u64) {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        (&self.dbs[db].shards[(hash >> (64 - SHARD_BITS)) as usize], hash)
    }

    /// Warms the cache lines that looking up `keys` in `db` will touch: each key's bucket slot,
    /// then the node there, then a string value's bytes, every stage issued for all keys before
    /// the next, so the memory loads of a pipelined batch overlap instead of stalling one after
    /// another (those stalls were a quarter of GET's time at -P 16 over 100k keys). Hints only:
    /// nothing is read for a command, no statistic or LRU clock moves. At most `PREFETCH_BATCH`
    /// keys are warmed; the rest of `keys` is ignored.
    pub fn prefetch<K: AsRef<[u8]>>(&self, db: usize, keys: &[K]) {
        if db >= self.dbs.len() || keys.is_empty() {
            return;
        }
        let first = self.locate(db, keys[0].as_ref());
        let mut located = [first; PREFETCH_BATCH];
        let n = keys.len().min(PREFETCH_BATCH);
        for (slot, key) in located[1..n].iter_mut().zip(&keys[1..]) {
            *slot = self.locate(db, key.as_ref());
        }
        for &(shard, hash) in &located[..n] {
            shard.lock().main.prefetch_bucket(hash);
        }
        for &(shard, hash) in &located[..n] {
            if let Some(node) = shard.lock().main.head(hash) {
                let at: *const dict::Node<Entry> = node;
                dict::prefetch(at);
                // A node with an inline key spans two cache lines.
                dict::prefetch(at.cast::<u8>().wrapping_add(64));
            }
        }
        for &(shard, hash) in &located[..n] {
            let shard = shard.lock();
            if let Some(node) = shard.main.head(hash).filter(|node| Dict::tag_matches(node, hash)) {
                match &node.value.value {
                    Value::Str(b) => dict::prefetch(b.as_ptr()),
                    Value::StrBuf(v) => dict::prefetch(v.as_ptr()),
                    _ => {}
                }
            }
        }
    }

    /// The read door.
    pub fn read<R>(&self, db: usize, key: &[u8], now: i64, how: Lookup, f: impl FnOnce(Option<&Entry>) -> R) -> R {
        let (shard, hash) = self.locate(db, key);
        let mut shard = shard.lock();
        let mut expired = false;
        if let Some(node) = shard.main.get_mut(hash, key) {
            let entry = &mut node.value;
            if !entry.is_expired(now) {
                if how != Lookup::Peek {
                    self.stats.hits.incr();
                }
                if how == Lookup::Read {
                    self.record_access(entry);
                }
                return f(Some(entry));
            }
            expired = true;
        }
        if expired {
            self.expire_if_needed(db, &mut shard, hash, key, now);
        }
        if how != Lookup::Peek {
            self.stats.misses.incr();
            if how != Lookup::NoNotify {
                self.notifier.notify(notify::class::KEY_MISS, "keymiss", db, key);
            }
        }
        f(None)
    }

    /// The write door: an expired key is gone before the command sees the slot.
    pub fn write<R>(&self, db: usize, key: &[u8], now: i64, f: impl FnOnce(&mut Slot<'_>) -> R) -> R {
        let (shard, hash) = self.locate(db, key);
        let mut shard = shard.lock();
        self.expire_if_needed(db, &mut shard, hash, key, now);
        let mut slot = Slot {
            shard: &mut shard,
            hash,
            key,
            db,
            ks: self,
        };
        f(&mut slot)
    }

    fn expire_if_needed(&self, db: usize, shard: &mut Shard, hash: u64, key: &[u8], now: i64) {
        // Most caches hold many keys without TTL: no lookup at all then.
        if shard.expires.is_empty() {
            return;
        }
        let expired = match shard.main.get(hash, key) {
            Some(n) => n.value.is_expired(now),
            None => false,
        };
        if expired {
            shard.main.remove(hash, key);
            shard.expires.remove(hash, key);
            self.stats.expired.incr();
            self.signal_modified(db, key);
            self.notifier.notify(notify::class::EXPIRED, "expired", db, key);
        }
    }

    /// True if the key is stored but its TTL has passed (not yet reclaimed).
    pub fn is_expired_in_place(&self, db: usize, key: &[u8], now: i64) -> bool {
        let (shard, hash) = self.locate(db, key);
        shard.lock().main.get(hash, key).is_some_and(|n| n.value.is_expired(now))
    }

    /// Keys in a database, counting keys whose TTL passed but which are not yet reclaimed (as
    /// Redis's DBSIZE does).
    pub fn dbsize(&self, db: usize) -> usize {
        self.dbs[db].shards.iter().map(|s| s.lock().main.len()).sum()
    }

    pub fn expires_count(&self, db: usize) -> usize {
        self.dbs[db].shards.iter().map(|s| s.lock().expires.len()).sum()
    }

    /// Average remaining TTL in ms over a sample, for INFO keyspace's avg_ttl.
    pub fn avg_ttl(&self, db: usize, now: i64) -> i64 {
        let (mut sum, mut n) = (0i64, 0i64);
        for shard in self.dbs[db].shards.iter() {
            let shard = shard.lock();
            for node in shard.expires.iter().take(16) {
                if let Some(e) = shard.main.get(shard.main.hash(&node.key), &node.key) {
                    sum += (e.value.expire_at() - now).max(0);
                    n += 1;
                }
            }
        }
        if n == 0 {
            0
        } else {
            sum / n
        }
    }

    pub fn flush_db(&self, db: usize) {
        self.clear_db(db);
        self.invalidation.all();
    }

    pub fn flush_all(&self) {
        for db in 0..self.dbs.len() {
            self.clear_db(db);
        }
        self.invalidation.all();
    }

    fn clear_db(&self, db: usize) {
        for shard in self.dbs[db].shards.iter() {
            let mut shard = shard.lock();
            shard.main.clear();
            shard.expires.clear();
        }
        self.watches.signal_db(db);
    }

    pub fn swap_db(&self, a: usize, b: usize) {
        if a == b {
            return;
        }
        for (sa, sb) in self.dbs[a].shards.iter().zip(self.dbs[b].shards.iter()) {
            let (mut ga, mut gb) = (sa.lock(), sb.lock());
            std::mem::swap(&mut *ga, &mut *gb);
        }
        self.watches.signal_db(a);
        self.watches.signal_db(b);
        self.blocking.signal_db(a);
        self.blocking.signal_db(b);
    }

    /// One SCAN call over a database. The cursor is the shard's reverse-binary bucket cursor
    /// shifted left by SHARD_BITS, with the shard number in the low bits; shards are walked in
    /// order, so a key present throughout is returned at least once.
    pub fn scan(&self, db: usize, cursor: u64, count: usize, now: i64, mut f: impl FnMut(&[u8], &Entry)) -> u64 {
        let mut shard_idx = (cursor & (SHARDS as u64 - 1)) as usize;
        let mut inner = cursor >> SHARD_BITS;
        let mut emitted = 0;
        let mut steps = 0;
        let max_steps = count.saturating_mul(10).max(10);
        loop {
            let shard = self.dbs[db].shards[shard_idx].lock();
            while emitted < count && steps < max_steps {
                inner = shard.main.scan_step(inner, |node| {
                    if !node.value.is_expired(now) {
                        emitted += 1;
                        f(&node.key, &node.value);
                    }
                });
                steps += 1;
                if inner == 0 {
                    break;
                }
            }
            drop(shard);
            if inner == 0 {
                shard_idx += 1;
                if shard_idx == SHARDS {
                    return 0;
                }
            }
            if emitted >= count || steps >= max_steps {
                return (inner << SHARD_BITS) | shard_idx as u64;
            }
        }
    }

    /// Every live key of a database (KEYS), shard by shard.
    pub fn for_each_key(&self, db: usize, now: i64, mut f: impl FnMut(&[u8], &Entry)) {
        for shard in self.dbs[db].shards.iter() {
            let shard = shard.lock();
            for node in shard.main.iter() {
                if !node.value.is_expired(now) {
                    f(&node.key, &node.value);
                }
            }
        }
    }

    /// A random live key (RANDOMKEY): random shard weighted by size, then a fair random node.
    pub fn random_key(&self, db: usize, now: i64) -> Option<Box<[u8]>> {
        let mut rng = fastrand::Rng::new();
        for _ in 0..100 {
            let sizes: Vec<usize> = self.dbs[db].shards.iter().map(|s| s.lock().main.len()).collect();
            let total: usize = sizes.iter().sum();
            if total == 0 {
                return None;
            }
            let mut pick = rng.usize(..total);
            let mut idx = 0;
            while pick >= sizes[idx] {
                pick -= sizes[idx];
                idx += 1;
            }
            let shard = self.dbs[db].shards[idx].lock();
            if let Some(node) = shard.main.random(&mut rng) {
                if !node.value.is_expired(now) {
                    return Some((*node.key).into());
                }
            }
        }
        None
    }

    pub(crate) fn shards(&self, db: usize) -> &[Mutex<Shard>] {
        &self.dbs[db].shards
    }

    pub fn watch(&self, db: usize, key: &[u8], flag: &WatchFlag) {
        self.watches.watch(db, key, flag);
    }

    pub fn unwatch(&self, db: usize, key: &[u8], flag: &WatchFlag) {
        self.watches.unwatch(db, key, flag);
    }

    /// A key changed (Redis's signalModifiedKey): WATCH and client-side caching are told.
    #[inline]
    pub fn signal_modified(&self, db: usize, key: &[u8]) {
        self.watches.signal(db, key);
        self.invalidation.key(key);
    }
}

/// A key's place in its shard, locked, for a write command.
pub struct Slot<'a> {
    shard: &'a mut Shard,
    hash: u64,
    key: &'a [u8],
    db: usize,
    ks: &'a Keyspace,
}

impl Slot<'_> {
    pub fn get(&self) -> Option<&Entry> {
        self.shard.main.get(self.hash, self.key).map(|n| &n.value)
    }

    /// The entry, to change in place: this counts as a modification (WATCH).
    pub fn get_mut(&mut self) -> Option<&mut Entry> {
        let node = self.shard.main.get_mut(self.hash, self.key)?;
        self.ks.signal_modified(self.db, self.key);
        self.ks.blocking.signal(self.db, self.key);
        Some(&mut node.value)
    }

    pub fn exists(&self) -> bool {
        self.get().is_some()
    }

    /// Stores `value` under the key, handling the TTL as asked.
    pub fn set(&mut self, value: Value, ttl: Ttl) {
        let ks = self.ks;
        let shard = &mut *self.shard;
        let old_expire = match shard.main.get_mut(self.hash, self.key) {
            Some(node) => {
                let old_expire = node.value.expire_at();
                node.value.value = value;
                node.value.clear_encoding_hint();
                // Overwriting keeps the LFU history (as Redis's dbSetValue); LRU starts afresh.
                if !ks.tracking.lfu.load(Relaxed) {
                    node.value.touch(ks.lru_clock());
                }
                old_expire
            }
            None => {
                shard.main.insert_new(self.hash, self.key, Entry::new(value, ks.new_stamp()));
                ks.notifier.notify(notify::class::NEW, "new", self.db, self.key);
                0
            }
        };
        let new_expire = match ttl {
            Ttl::Clear => 0,
            Ttl::Keep => old_expire,
            Ttl::At(at) => at,
        };
        self.apply_expire(old_expire, new_expire);
        self.ks.signal_modified(self.db, self.key);
        self.ks.blocking.signal(self.db, self.key);
    }

    fn apply_expire(&mut self, old: i64, new: i64) {
        let shard = &mut *self.shard;
        if let Some(node) = shard.main.get_mut(self.hash, self.key) {
            node.value.set_expire_at(new);
        }
        match (old != 0, new != 0) {
            (false, true) => {
                shard.expires.insert_new(self.hash, self.key, ());
            }
            (true, false) => {
                shard.expires.remove(self.hash, self.key);
            }
            _ => {}
        }
    }

    /// Stores a string built by a command (BITOP, PFADD ...), which Redis reports as "raw"
    /// whatever its length, as it never went through the embstr path.
    pub fn set_built_string(&mut self, bytes: Vec<u8>, ttl: Ttl) {
        self.set(Value::StrBuf(bytes), ttl);
        if let Some(node) = self.shard.main.get_mut(self.hash, self.key) {
            node.value.set_raw_hint();
        }
    }

    /// Sets or clears the TTL of an existing key. Returns false if the key does not exist.
    pub fn set_expire(&mut self, at: Option<i64>) -> bool {
        let Some(old) = self.get().map(|e| e.expire_at()) else {
            return false;
        };
        self.apply_expire(old, at.unwrap_or(0));
        self.ks.signal_modified(self.db, self.key);
        true
    }

    pub fn remove(&mut self) -> Option<Entry> {
        let node: Box<Node<Entry>> = self.shard.main.remove(self.hash, self.key)?;
        if node.value.expire_at() != 0 {
            self.shard.expires.remove(self.hash, self.key);
        }
        self.ks.signal_modified(self.db, self.key);
        Some(node.value)
    }
}
