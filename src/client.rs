//! A client as the commands see it: per-connection state (selected db, auth, MULTI queue, WATCH)
//! and the shared record CLIENT LIST/KILL read.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::Mutex;

use crate::keyspace::WatchFlag;

/// One end of a client's connection: an IP address and port, or the server's Unix socket, which
/// Redis shows as `path:0` for both ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    Tcp(SocketAddr),
    Unix(Arc<str>),
}

impl Peer {
    /// Loopback or the Unix socket: what protected mode and `enable-debug-command local` allow.
    pub fn is_local(&self) -> bool {
        match self {
            Peer::Tcp(a) => a.ip().is_loopback(),
            Peer::Unix(_) => true,
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Peer::Tcp(a) => Some(a.ip()),
            Peer::Unix(_) => None,
        }
    }
}

impl From<SocketAddr> for Peer {
    fn from(a: SocketAddr) -> Peer {
        Peer::Tcp(a)
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(a) => a.fmt(f),
            Peer::Unix(path) => write!(f, "{path}:0"),
        }
    }
}

/// What CLIENT LIST shows about a connection; shared between its task and the registry.
pub struct ClientInfo {
    pub id: u64,
    pub addr: Peer,
    pub laddr: Peer,
    pub created: Instant,
    pub name: Mutex<Option<Bytes>>,
    pub lib_name: Mutex<Option<Bytes>>,
    pub lib_ver: Mutex<Option<Bytes>>,
    pub db: AtomicUsize,
    pub resp: AtomicUsize,
    /// Unix ms of the last command.
    pub last_interaction: AtomicI64,
    /// Index in the command table of the last command (usize::MAX before the first).
    pub last_cmd: AtomicUsize,
    pub multi: AtomicI64,
    pub qbuf: AtomicUsize,
    pub omem: AtomicUsize,
    pub killed: AtomicBool,
    pub kill: tokio::sync::Notify,
    pub authenticated: AtomicBool,
    /// Pub/sub messages waiting to be written, and the wake-up for this client's task.
    pub mailbox: crate::pubsub::Mailbox,
    /// Channels, patterns and shard channels subscribed (CLIENT LIST's sub, psub, ssub).
    pub subs: [AtomicUsize; 3],
    /// The blocking command this client waits in, if any (CLIENT LIST flag b, CLIENT UNBLOCK).
    pub blocked: Mutex<Option<Arc<crate::keyspace::blocking::Waiter>>>,
    /// In MONITOR mode (CLIENT LIST flag O): its mailbox receives every command run.
    pub monitor: AtomicBool,
    /// CLIENT TRACKING: its mode, read by the threads that change the keys it tracks.
    pub tracking: crate::tracking::ClientTracking,
}

impl ClientInfo {
    pub fn request_kill(&self) {
        self.killed.store(true, Relaxed);
        self.kill.notify_one();
    }

    /// Mail (pub/sub messages, invalidations) now waiting is `size` bytes: past `limit` (the
    /// pubsub class's hard output limit; 0 for none) the client is closed, as Redis closes a
    /// client over its output buffer limit, instead of the mailbox growing without bound.
    pub fn close_if_over(&self, size: usize, limit: u64) {
        if limit > 0 && size as u64 > limit {
            tracing::warn!(
                "Client id={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                self.id
            );
            self.request_kill();
        }
    }

    pub fn name(&self) -> Option<Bytes> {
        self.name.lock().clone()
    }
}

#[derive(Default)]
pub struct Clients {
    map: DashMap<u64, Arc<ClientInfo>>,
    next_id: AtomicU64,
}

impl Clients {
    pub fn register(&self, addr: impl Into<Peer>, laddr: impl Into<Peer>, now_ms: i64) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        let info = Arc::new(ClientInfo {
            id,
            addr: addr.into(),
            laddr: laddr.into(),
            created: Instant::now(),
            name: Mutex::new(None),
            lib_name: Mutex::new(None),
            lib_ver: Mutex::new(None),
            db: AtomicUsize::new(0),
            resp: AtomicUsize::new(2),
            last_interaction: AtomicI64::new(now_ms),
            last_cmd: AtomicUsize::new(usize::MAX),
            multi: AtomicI64::new(-1),
            qbuf: AtomicUsize::new(0),
            omem: AtomicUsize::new(0),
            killed: AtomicBool::new(false),
            kill: tokio::sync::Notify::new(),
            authenticated: AtomicBool::new(false),
            mailbox: Default::default(),
            subs: Default::default(),
            blocked: Mutex::new(None),
            monitor: AtomicBool::new(false),
            tracking: Default::default(),
        });
        self.map.insert(id, info.clone());
        info
    }

    pub fn unregister(&self, id: u64) {
        self.map.remove(&id);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// All clients, ordered by id as Redis lists them.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        let mut v: Vec<_> = self.map.iter().map(|e| e.value().clone()).collect();
        v.sort_by_key(|c| c.id);
        v
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.map.get(&id).map(|e| e.value().clone())
    }
}

/// Per-connection state the commands read and change.
pub struct Client {
    pub info: Arc<ClientInfo>,
    pub db: usize,
    pub authenticated: bool,
    /// Commands queued after MULTI, and whether one of them was refused (EXECABORT).
    pub multi: Option<Vec<Vec<Bytes>>>,
    pub multi_failed: bool,
    pub watch_flag: WatchFlag,
    /// Watched keys: (db, key, whether it was already expired when watched).
    pub watched: Vec<(usize, Box<[u8]>, bool)>,
    /// Close the connection once the replies so far are written (QUIT, protocol error, KILL).
    pub close_after_reply: bool,
    /// CLIENT REPLY OFF: no replies until ON.
    pub reply_off: bool,
    /// CLIENT REPLY SKIP: no reply for the next command.
    pub reply_skip_next: bool,
    /// Set while EXEC runs the queued commands: blocking commands answer at once then.
    pub executing_transaction: bool,
    /// A script is running commands for this client (MONITOR shows them as from "lua").
    pub in_script: bool,
    /// The keys this client waits on (BLPOP ...), set by the command, served by the connection.
    pub blocked: Option<crate::commands::blocking::BlockOn>,
    pub subscriptions: crate::commands::pubsub::Subscriptions,
    /// Queued on its keys: the wait and its deadline (unix ms; None waits for ever).
    pub waiting: Option<(Arc<crate::keyspace::blocking::Waiter>, Option<i64>)>,
}

impl Client {
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> Self {
        Client {
            info,
            db: 0,
            authenticated,
            multi: None,
            multi_failed: false,
            watch_flag: Arc::new(AtomicBool::new(false)),
            watched: Vec::new(),
            close_after_reply: false,
            reply_off: false,
            reply_skip_next: false,
            executing_transaction: false,
            in_script: false,
            blocked: None,
            subscriptions: Default::default(),
            waiting: None,
        }
    }
}
