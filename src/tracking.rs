//! Client-side caching (Redis's tracking.c). CLIENT TRACKING ON makes the server remember which
//! keys a client read; when one of them changes, the client is sent an `invalidate` push (RESP3),
//! or through REDIRECT a message on `__redis__:invalidate` to a RESP2 subscriber. BCAST clients
//! are sent every change under their prefixes instead, remembered or not.
//!
//! respite runs commands on several threads, so a key is remembered *before* the read command
//! runs: a write that lands between the two still finds the key in the table and invalidates it.
//! (Redis, single-threaded, remembers after.) Invalidations a command causes for its own client
//! are held until its reply is written, as Redis's tracking_pending_keys; BCAST messages are sent
//! when the command ends (Redis batches them per event-loop turn).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::client::{ClientInfo, Clients};
use crate::protocol::Reply;

/// A client's tracking flags (CLIENT TRACKINGINFO's words).
pub mod flag {
    pub const ON: u32 = 1;
    pub const BCAST: u32 = 2;
    pub const OPTIN: u32 = 4;
    pub const OPTOUT: u32 = 8;
    /// CLIENT CACHING yes (under OPTIN) or no (under OPTOUT), for the next command.
    pub const CACHING: u32 = 16;
    pub const NOLOOP: u32 = 32;
    /// The client redirected to has gone.
    pub const BROKEN_REDIR: u32 = 64;
}

/// One client's tracking state, read by whichever thread changes a key it tracks.
#[derive(Default)]
pub struct ClientTracking {
    pub flags: AtomicU32,
    /// REDIRECT's client id; 0 for none.
    pub redirect: AtomicU64,
    /// BCAST prefixes, in order.
    pub prefixes: Mutex<Vec<Bytes>>,
    /// How many tracking clients redirect their invalidations here.
    pub redirected_here: AtomicUsize,
}

impl ClientTracking {
    #[inline]
    pub fn flags(&self) -> u32 {
        self.flags.load(Relaxed)
    }

    /// Whether invalidations may arrive for this client: its connection must wait for them.
    #[inline]
    pub fn gets_mail(&self) -> bool {
        self.flags() != 0 || self.redirected_here.load(Relaxed) > 0
    }
}

/// What CLIENT TRACKING ON asked for, checked.
pub struct Options {
    pub flags: u32,
    pub redirect: u64,
    pub prefixes: Vec<Bytes>,
}

#[derive(Default)]
struct Table {
    /// Key name (any database, as Redis) -> the ids of the clients that read it.
    keys: HashMap<Box<[u8]>, Vec<u64>>,
    /// Sum of the id lists' lengths (INFO tracking_total_items).
    items: usize,
    /// BCAST prefix -> its clients.
    prefixes: BTreeMap<Bytes, Vec<u64>>,
}

/// Invalidations raised by the command running on this thread, sent when it ends.
#[derive(Default)]
struct Pending {
    /// The client running a command here (0: none).
    current: u64,
    /// Keys the running command changed that its own client tracks (None: a flush).
    own: Vec<Option<Box<[u8]>>>,
    /// Keys changed under some BCAST prefix, with the client that changed them.
    bcast: Vec<Box<[u8]>>,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

pub struct Tracking {
    clients: Arc<Clients>,
    /// Shared with the keyspace: whether any client tracks, so a write pays one load otherwise.
    on: Arc<AtomicBool>,
    tracking_clients: AtomicUsize,
    table: Mutex<Table>,
    /// tracking-table-max-keys (0: no limit).
    pub max_keys: AtomicU64,
    /// Read for its hard output limit (client-output-buffer-limit pubsub): a client that never
    /// reads its invalidations is closed there, as a subscriber is.
    pubsub: Arc<crate::pubsub::PubSub>,
}

impl Tracking {
    pub fn new(clients: Arc<Clients>, on: Arc<AtomicBool>, pubsub: Arc<crate::pubsub::PubSub>) -> Self {
        Tracking {
            clients,
            on,
            tracking_clients: AtomicUsize::new(0),
            table: Mutex::new(Table::default()),
            max_keys: AtomicU64::new(1_000_000),
            pubsub,
        }
    }

    /// INFO: tracking_clients, tracking_total_keys, tracking_total_items, tracking_total_prefixes.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let t = self.table.lock();
        (self.tracking_clients.load(Relaxed), t.keys.len(), t.items, t.prefixes.len())
    }

    /// CLIENT TRACKING ON (Redis's enableTracking); the options were checked by the caller.
    pub fn enable(&self, c: &ClientInfo, opts: Options) {
        let old = c.tracking.flags();
        if old & flag::ON == 0 {
            self.tracking_clients.fetch_add(1, Relaxed);
            self.on.store(true, Relaxed);
        }
        self.set_redirect(c, opts.redirect);
        // CACHING survives a second ON (Redis clears every other mode flag).
        let keep = old & flag::CACHING;
        if opts.flags & flag::BCAST != 0 {
            let mut t = self.table.lock();
            let mut mine = c.tracking.prefixes.lock();
            let wanted = if opts.prefixes.is_empty() {
                vec![Bytes::new()]
            } else {
                opts.prefixes
            };
            for p in wanted {
                let ids = t.prefixes.entry(p.clone()).or_default();
                if !ids.contains(&c.id) {
                    ids.push(c.id);
                    mine.push(p);
                }
            }
            mine.sort();
        }
        c.tracking.flags.store(flag::ON | keep | opts.flags, Relaxed);
    }

    /// CLIENT TRACKING OFF, and a client's disconnection (Redis's disableTracking).
    pub fn disable(&self, c: &ClientInfo) {
        let old = c.tracking.flags();
        if old & flag::ON == 0 {
            return;
        }
        let mut t = self.table.lock();
        if old & flag::BCAST != 0 {
            for p in std::mem::take(&mut *c.tracking.prefixes.lock()) {
                if let Some(ids) = t.prefixes.get_mut(&p) {
                    ids.retain(|id| *id != c.id);
                    if ids.is_empty() {
                        t.prefixes.remove(&p);
                    }
                }
            }
        }
        c.tracking.flags.store(0, Relaxed);
        self.set_redirect(c, 0);
        if self.tracking_clients.fetch_sub(1, Relaxed) == 1 {
            // Nobody tracks: what the table holds can never be sent.
            self.on.store(false, Relaxed);
            *t = Table::default();
        }
    }

    /// Before a read-only command of a tracking client runs: its keys, unless OPTIN without
    /// CACHING yes or OPTOUT with CACHING no (Redis's trackingRememberKeys).
    pub fn remember<'a>(&self, c: &ClientInfo, keys: impl Iterator<Item = &'a Bytes>) {
        let f = c.tracking.flags();
        if f & flag::BCAST != 0 {
            return;
        }
        let caching = f & flag::CACHING != 0;
        if (f & flag::OPTIN != 0 && !caching) || (f & flag::OPTOUT != 0 && caching) {
            return;
        }
        let mut over = Vec::new();
        {
            let mut t = self.table.lock();
            for k in keys {
                let ids = t.keys.entry(k.as_ref().into()).or_default();
                if !ids.contains(&c.id) {
                    ids.push(c.id);
                    t.items += 1;
                }
            }
            // tracking-table-max-keys: forget (and invalidate) keys until under the limit again.
            let max = self.max_keys.load(Relaxed) as usize;
            if max > 0 && t.keys.len() > max {
                let extra = t.keys.len() - max;
                let victims: Vec<Box<[u8]>> = t.keys.keys().take(extra).cloned().collect();
                for v in victims {
                    if let Some(ids) = t.keys.remove(&v) {
                        t.items -= ids.len();
                        over.push((v, ids));
                    }
                }
            }
        }
        for (key, ids) in over {
            self.invalidate_ids(&key, &ids);
        }
    }

    /// A key changed (Redis's trackingInvalidateKey): its trackers are told, and it is forgotten.
    pub fn modified(&self, key: &[u8]) {
        let ids = {
            let mut t = self.table.lock();
            if !t.prefixes.is_empty() && t.prefixes.keys().any(|p| key.starts_with(p)) {
                PENDING.with(|p| p.borrow_mut().bcast.push(key.into()));
            }
            match t.keys.remove(key) {
                Some(ids) => {
                    t.items -= ids.len();
                    ids
                }
                None => return,
            }
        };
        self.invalidate_ids(key, &ids);
    }

    fn invalidate_ids(&self, key: &[u8], ids: &[u64]) {
        let current = PENDING.with(|p| p.borrow().current);
        for &id in ids {
            let Some(target) = self.clients.get(id) else { continue };
            let f = target.tracking.flags();
            if f & flag::ON == 0 || f & flag::BCAST != 0 {
                continue;
            }
            if id == current {
                // The client's own change: after its reply (unless NOLOOP, then never).
                if f & flag::NOLOOP == 0 {
                    PENDING.with(|p| p.borrow_mut().own.push(Some(key.into())));
                }
                continue;
            }
            self.send(&target, Payload::Keys(&[key]), None);
        }
    }

    /// FLUSHDB, FLUSHALL, SWAPDB: every tracking client is sent a null invalidation and the
    /// table is emptied (Redis's trackingInvalidateKeysOnFlush).
    pub fn flushed(&self) {
        let current = PENDING.with(|p| p.borrow().current);
        for c in self.clients.all() {
            if c.tracking.flags() & flag::ON == 0 {
                continue;
            }
            if c.id == current {
                PENDING.with(|p| p.borrow_mut().own.push(None));
            } else {
                self.send(&c, Payload::Flush, None);
            }
        }
        let mut t = self.table.lock();
        t.keys = HashMap::new();
        t.items = 0;
    }

    /// Sends `payload` to `c` (Redis's sendTrackingMessage): to its redirect client if it has one,
    /// as a push in RESP3, as a `__redis__:invalidate` message to a RESP2 subscriber it redirects
    /// to, and not at all to a RESP2 client on its own connection. `own` is the reply buffer of
    /// `c` when `c` is the client whose command just ran.
    fn send(&self, c: &Arc<ClientInfo>, payload: Payload<'_>, own: Option<&mut Reply>) {
        let redirect = c.tracking.redirect.load(Relaxed);
        let c_resp3 = c.resp.load(Relaxed) == 3;
        let (target, redirected) = if redirect == 0 {
            (c.clone(), false)
        } else {
            match self.clients.get(redirect) {
                Some(t) => (t, true),
                None => {
                    c.tracking.flags.fetch_or(flag::BROKEN_REDIR, Relaxed);
                    if c_resp3 {
                        let mut r = Reply::new_empty(true);
                        r.push(2);
                        r.bulk(b"tracking-redir-broken");
                        r.int(redirect as i64);
                        self.deliver(c, &r.buf, own);
                    }
                    return;
                }
            }
        };
        let resp3 = target.resp.load(Relaxed) == 3;
        let subscriber = target.subs.iter().any(|n| n.load(Relaxed) > 0);
        let mut r = Reply::new_empty(resp3);
        if resp3 {
            r.push(2);
            r.bulk(b"invalidate");
        } else if redirected && subscriber {
            r.push(3);
            r.bulk(b"message");
            r.bulk(b"__redis__:invalidate");
        } else {
            return;
        }
        match payload {
            Payload::Keys(keys) => {
                r.array(keys.len());
                for k in keys {
                    r.bulk(k);
                }
            }
            // The null of the tracking client's protocol, as Redis writes shared.null[c->resp].
            Payload::Flush => r.raw(if c_resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        }
        let own = if Arc::ptr_eq(&target, c) { own } else { None };
        self.deliver(&target, &r.buf, own);
    }

    fn deliver(&self, target: &ClientInfo, bytes: &[u8], own: Option<&mut Reply>) {
        if let Some(out) = own {
            out.raw(bytes);
            return;
        }
        if target.killed.load(Relaxed) {
            return;
        }
        let size = target.mailbox.push(bytes);
        target.close_if_over(size, self.pubsub.hard_limit.load(Relaxed));
    }

    fn set_redirect(&self, c: &ClientInfo, to: u64) {
        let old = c.tracking.redirect.swap(to, Relaxed);
        if old == to {
            return;
        }
        if let Some(t) = (old != 0).then(|| self.clients.get(old)).flatten() {
            t.tracking.redirected_here.fetch_sub(1, Relaxed);
        }
        if let Some(t) = (to != 0).then(|| self.clients.get(to)).flatten() {
            t.tracking.redirected_here.fetch_add(1, Relaxed);
        }
    }

    /// A command of `c` starts on this thread.
    #[inline]
    pub fn begin(&self, c: &ClientInfo) {
        PENDING.with(|p| p.borrow_mut().current = c.id);
    }

    /// The command of `c` ended and its reply is in `out`: send what it held back (its own keys'
    /// invalidations after the reply, and the BCAST messages), and end CLIENT CACHING's one-command
    /// effect unless `keep_caching` (in MULTI, or the command was CLIENT itself).
    pub fn end(&self, c: &Arc<ClientInfo>, out: &mut Reply, keep_caching: bool) {
        let (own, bcast) = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            p.current = 0;
            (std::mem::take(&mut p.own), std::mem::take(&mut p.bcast))
        });
        if !keep_caching && c.tracking.flags() & flag::CACHING != 0 {
            c.tracking.flags.fetch_and(!flag::CACHING, Relaxed);
        }
        let mut out = Some(out);
        for key in own {
            match key {
                Some(k) => self.send(c, Payload::Keys(&[&k]), out.as_deref_mut()),
                None => self.send(c, Payload::Flush, out.as_deref_mut()),
            }
        }
        if !bcast.is_empty() {
            self.broadcast(bcast, Some(c.id));
        }
    }

    /// Changes made outside any command (expiry, eviction by the cron): BCAST now.
    pub fn flush_background(&self) {
        let bcast = PENDING.with(|p| std::mem::take(&mut p.borrow_mut().bcast));
        if !bcast.is_empty() {
            self.broadcast(bcast, None);
        }
    }

    /// Redis's trackingBroadcastInvalidationMessages: per prefix, the keys changed under it,
    /// sorted and once each, to each of its clients (but a NOLOOP client's own changes).
    fn broadcast(&self, mut keys: Vec<Box<[u8]>>, changed_by: Option<u64>) {
        keys.sort();
        keys.dedup();
        let plan: Vec<(Vec<&[u8]>, Vec<u64>)> = {
            let t = self.table.lock();
            t.prefixes
                .iter()
                .filter_map(|(p, ids)| {
                    let under: Vec<&[u8]> = keys.iter().map(|k| &k[..]).filter(|k| k.starts_with(p)).collect();
                    (!under.is_empty()).then(|| (under, ids.clone()))
                })
                .collect()
        };
        for (under, ids) in plan {
            for id in ids {
                let Some(target) = self.clients.get(id) else { continue };
                if target.tracking.flags() & flag::NOLOOP != 0 && changed_by == Some(id) {
                    continue;
                }
                self.send(&target, Payload::Keys(&under), None);
            }
        }
    }
}

enum Payload<'a> {
    Keys(&'a [&'a [u8]]),
    Flush,
}

/// Whether `c` is in a tracking mode that remembers the keys it reads.
#[inline]
pub fn remembers(c: &ClientInfo) -> bool {
    c.tracking.flags() & (flag::ON | flag::BCAST) == flag::ON
}

impl crate::keyspace::Invalidate for Tracking {
    fn key(&self, key: &[u8]) {
        self.modified(key);
        if PENDING.with(|p| p.borrow().current == 0) {
            self.flush_background();
        }
    }

    fn all(&self) {
        self.flushed();
    }
}

/// Redis's checkPrefixCollisionsOrReply: no prefix of a client may be a prefix of another.
pub fn prefix_collision(existing: &[Bytes], new: &[Bytes]) -> Option<String> {
    let overlap = |a: &[u8], b: &[u8]| a[..a.len().min(b.len())] == b[..a.len().min(b.len())];
    for (i, p) in new.iter().enumerate() {
        if let Some(e) = existing.iter().find(|e| overlap(e, p)) {
            return Some(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(e)
            ));
        }
        if let Some(q) = new[i + 1..].iter().find(|q| overlap(p, q)) {
            return Some(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(q)
            ));
        }
    }
    None
}
