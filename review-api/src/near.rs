//! The near cache: a copy, in this process, of values read from the cache server, kept coherent by
//! the server's invalidations (CLIENT TRACKING over RESP3: server-assisted client-side caching, as
//! respite and Redis 6+ offer it). A hit here costs no round trip; the cache server stays the
//! shared copy every process fills and invalidates.
//!
//! Why a copy here is never served after it went stale:
//!
//! * It is filled only from reads made on the tracking connection, so the server knows this
//!   process holds both keys of a read (value and generation). Any later change to either, by any
//!   client, expiry or eviction included, makes the server send an invalidation, which drops it.
//! * A read's reply and an invalidation can cross. Each key counts the invalidations seen (its
//!   epoch); a read notes the epochs before it is sent and fills only if they are unchanged when
//!   its reply is handled, under the lock the invalidation handler takes.
//! * This process's own writes move the epochs of the generations they replace before the write
//!   returns (their invalidation arrives a little later), so a read that starts after a write
//!   returned here never sees a copy from before it.
//! * A lost connection or a flush drops everything; until tracking is on again, reads go to the
//!   server as before.
//!
//! What it does not give: another process's write reaches this copy when its invalidation
//! arrives (the server sends it while running the write, one loopback hop later), not before that
//! write returns. So `serve` turns it on only when asked (`--near-cache true`: one API process on
//! the cache); the loadtest, one process by construction, has it on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{IntoConnectionInfo, PushInfo, PushKind, Value};

/// Bytes of values kept; past it, about half the entries are dropped.
const MAX_BYTES: usize = 64 << 20;

#[derive(Default)]
struct State {
    /// Full value key -> its stored value and what it was valid under.
    entries: HashMap<String, Entry>,
    bytes: usize,
    /// Invalidations seen per key (value and generation keys); absent = 0.
    epochs: HashMap<String, u64>,
    /// Generation key -> the value keys filled under it (dropped with it).
    by_gen: HashMap<String, Vec<String>>,
    /// Bumped whenever everything is dropped: fills begun before it are refused.
    session: u64,
    /// The tracking connection, while it is up with tracking on.
    conn: Option<MultiplexedConnection>,
}

struct Entry {
    raw: Bytes,
    gen_key: String,
    epoch: u64,
    gen_epoch: u64,
}

/// What a read noted before it was sent, to fill with if nothing changed meanwhile.
pub struct Ticket {
    session: u64,
    epoch: u64,
    gen_epoch: u64,
}

#[derive(Default)]
pub struct Near {
    state: Mutex<State>,
    /// Set by the invalidation handler when the connection is lost; the keeper reconnects.
    lost: tokio::sync::Notify,
    enabled: AtomicBool,
}

impl State {
    fn epoch(&self, key: &str) -> u64 {
        self.epochs.get(key).copied().unwrap_or(0)
    }

    fn drop_all(&mut self) {
        self.entries.clear();
        self.epochs.clear();
        self.by_gen.clear();
        self.bytes = 0;
        self.session += 1;
    }

    fn invalidate(&mut self, key: &str) {
        *self.epochs.entry(key.to_string()).or_default() += 1;
        self.remove(key);
        for full in self.by_gen.remove(key).unwrap_or_default() {
            if self.entries.get(&full).is_some_and(|e| e.gen_key == key) {
                self.remove(&full);
            }
        }
    }

    fn remove(&mut self, full: &str) {
        if let Some(e) = self.entries.remove(full) {
            self.bytes -= e.raw.len();
        }
    }
}

impl Near {
    pub fn new() -> Arc<Near> {
        Arc::new(Near::default())
    }

    /// The stored value of `full`, if held and nothing it depends on changed since.
    pub fn get(&self, full: &str, gen_key: &str) -> Option<Bytes> {
        if !self.enabled.load(Ordering::Relaxed) {
            return None;
        }
        let s = self.state.lock().unwrap();
        s.conn.as_ref()?;
        let e = s.entries.get(full)?;
        (e.gen_key == gen_key && e.epoch == s.epoch(full) && e.gen_epoch == s.epoch(gen_key)).then(|| e.raw.clone())
    }

    /// The tracking connection and a ticket to fill with, while tracking is on.
    pub fn begin_read(&self, full: &str, gen_key: &str) -> Option<(MultiplexedConnection, Ticket)> {
        if !self.enabled.load(Ordering::Relaxed) {
            return None;
        }
        let s = self.state.lock().unwrap();
        let conn = s.conn.clone()?;
        let ticket = Ticket {
            session: s.session,
            epoch: s.epoch(full),
            gen_epoch: s.epoch(gen_key),
        };
        Some((conn, ticket))
    }

    /// Keeps `raw` (read on the tracking connection under `ticket`) unless something it depends
    /// on was invalidated since the ticket was taken.
    pub fn fill(&self, ticket: Ticket, full: &str, gen_key: &str, raw: Bytes) {
        let mut s = self.state.lock().unwrap();
        if s.conn.is_none() || s.session != ticket.session || s.epoch(full) != ticket.epoch || s.epoch(gen_key) != ticket.gen_epoch {
            return;
        }
        if s.bytes + raw.len() > MAX_BYTES {
            // Bounded: drop about half, arbitrarily (the server keeps every value anyway).
            let mut keep = true;
            let mut freed = 0;
            s.entries.retain(|_, e| {
                keep = !keep;
                if !keep {
                    freed += e.raw.len();
                }
                keep
            });
            s.bytes -= freed;
        }
        s.bytes += raw.len();
        let entry = Entry {
            raw,
            gen_key: gen_key.to_string(),
            epoch: ticket.epoch,
            gen_epoch: ticket.gen_epoch,
        };
        if let Some(old) = s.entries.insert(full.to_string(), entry) {
            s.bytes -= old.raw.len();
        }
        let names = s.by_gen.entry(gen_key.to_string()).or_default();
        if !names.iter().any(|n| n == full) {
            names.push(full.to_string());
        }
        // Epochs of keys no entry uses (and names of entries gone) only grow the maps: start
        // afresh when they get large.
        if s.epochs.len() + s.by_gen.len() > 4 * s.entries.len() + 10_000 {
            s.drop_all();
        }
    }

    /// This process changed `keys` (its write returned from the server): copies that depend on
    /// them are dropped now, before their invalidation arrives.
    pub fn invalidate_local(&self, keys: &[String]) {
        let mut s = self.state.lock().unwrap();
        for k in keys {
            s.invalidate(k);
        }
    }

    /// An invalidation from the server (keys, or nil for a flush), or the connection's loss.
    fn on_push(&self, info: PushInfo) {
        let mut s = self.state.lock().unwrap();
        match info.kind {
            PushKind::Invalidate => match info.data.first() {
                Some(Value::Array(keys)) => {
                    for k in keys {
                        if let Value::BulkString(k) = k {
                            s.invalidate(&String::from_utf8_lossy(k));
                        }
                    }
                }
                _ => s.drop_all(),
            },
            PushKind::Disconnection => {
                s.conn = None;
                s.drop_all();
                drop(s);
                self.lost.notify_one();
            }
            _ => {}
        }
    }

    /// Held entries (tests, metrics).
    pub fn len(&self) -> usize {
        self.state.lock().unwrap().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps a tracking connection to `url` for as long as the process runs: connects (RESP3),
    /// turns tracking on, and after a loss starts again. A server without RESP3 or CLIENT TRACKING
    /// leaves the near cache off (logged) and every read goes to the server.
    pub async fn keep_connected(self: Arc<Self>, url: String, timeout: Duration) {
        self.enabled.store(true, Ordering::Relaxed);
        loop {
            match self.connect(&url, timeout).await {
                Ok(conn) => {
                    // Lost before it was stored: the handler's notify is kept for the wait below.
                    {
                        let mut s = self.state.lock().unwrap();
                        s.drop_all();
                        s.conn = Some(conn);
                    }
                    self.lost.notified().await;
                    tracing::warn!("near cache: tracking connection lost, reconnecting");
                }
                Err(e) if e.kind() == redis::ErrorKind::ResponseError => {
                    tracing::warn!("near cache off: the cache server refused client tracking ({e})");
                    self.enabled.store(false, Ordering::Relaxed);
                    return;
                }
                Err(e) => tracing::debug!("near cache: cannot connect ({e})"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn connect(self: &Arc<Self>, url: &str, timeout: Duration) -> redis::RedisResult<MultiplexedConnection> {
        let mut info = url.into_connection_info()?;
        info.redis.protocol = redis::ProtocolVersion::RESP3;
        let client = redis::Client::open(info)?;
        let me = self.clone();
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(timeout.max(Duration::from_millis(100)))
            .set_response_timeout(timeout.max(Duration::from_millis(100)))
            .set_push_sender(move |info: PushInfo| -> Result<(), ()> {
                me.on_push(info);
                Ok(())
            });
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
        redis::cmd("CLIENT").arg("TRACKING").arg("on").query_async::<()>(&mut conn).await?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Near with a live connection slot, without a server: `fill` and `get` only look at it.
    async fn live() -> Arc<Near> {
        // A MultiplexedConnection needs a peer; a throwaway listener accepts it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _conn = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
        let conn = client.get_multiplexed_async_connection().await.unwrap();
        let near = Near::new();
        near.enabled.store(true, Ordering::Relaxed);
        near.state.lock().unwrap().conn = Some(conn);
        near
    }

    #[tokio::test]
    async fn fills_only_when_nothing_changed_since_the_read_was_sent() {
        let near = live().await;
        let raw = Bytes::from_static(b"g1 1 99999999999999\n{}");
        // Plain fill, then a hit.
        let (_, t) = near.begin_read("v", "g").unwrap();
        near.fill(t, "v", "g", raw.clone());
        assert_eq!(near.get("v", "g"), Some(raw.clone()));
        // A local write (its generation replaced) drops it at once, before any invalidation.
        near.invalidate_local(&["g".to_string()]);
        assert_eq!(near.get("v", "g"), None);
        assert!(near.is_empty());
        // A read sent before a write, answered after it: its reply is not kept.
        let (_, t) = near.begin_read("v", "g").unwrap();
        near.invalidate_local(&["g".to_string()]);
        near.fill(t, "v", "g", raw.clone());
        assert_eq!(near.get("v", "g"), None);
        // The same for an invalidation of the value key from the server.
        let (_, t) = near.begin_read("v", "g").unwrap();
        near.on_push(PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Array(vec![Value::BulkString(b"v".to_vec())])],
        });
        near.fill(t, "v", "g", raw.clone());
        assert_eq!(near.get("v", "g"), None);
        // A flush (nil) and a lost connection drop everything, and refuse fills begun before.
        let (_, t) = near.begin_read("v", "g").unwrap();
        near.fill(t, "v", "g", raw.clone());
        let (_, t2) = near.begin_read("w", "g").unwrap();
        near.on_push(PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Nil],
        });
        assert!(near.is_empty());
        near.fill(t2, "w", "g", raw.clone());
        assert!(near.is_empty());
        near.on_push(PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
        });
        assert!(near.begin_read("v", "g").is_none(), "no tracking connection, no near reads");
    }
}
