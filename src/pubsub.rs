//! Pub/sub (Redis's pubsub.c): who listens to which channel or pattern, and delivery.
//!
//! A message is encoded for each subscriber in its own protocol (RESP2 array or RESP3 push) and
//! appended to that client's mailbox; its connection task is woken to write it out. A subscriber
//! whose mailbox grows past the pubsub output limit (client-output-buffer-limit pubsub, 32 MB by
//! default, as Redis) is disconnected instead of growing without bound.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::client::ClientInfo;
use crate::glob::glob_match;
use crate::protocol::Reply;

/// The three namespaces: SUBSCRIBE channels, PSUBSCRIBE patterns, SSUBSCRIBE shard channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Channel, Kind::Pattern, Kind::Shard];

    fn index(self) -> usize {
        self as usize
    }

    /// The reply words: (subscribe, unsubscribe).
    pub fn words(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("subscribe", "unsubscribe"),
            Kind::Pattern => ("psubscribe", "punsubscribe"),
            Kind::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }
}

/// A client's mailbox: messages encoded for it, waiting for its connection to write them.
#[derive(Default)]
pub struct Mailbox {
    buf: Mutex<Vec<u8>>,
    /// Wakes the connection task (messages arrived, or a blocked command was served).
    pub wake: tokio::sync::Notify,
}

impl Mailbox {
    /// Moves the waiting messages to the end of `out`.
    pub fn drain_into(&self, out: &mut Vec<u8>) {
        let mut buf = self.buf.lock();
        if !buf.is_empty() {
            out.extend_from_slice(&buf);
            buf.clear();
            if buf.capacity() > 64 * 1024 {
                *buf = Vec::new();
            }
        }
    }

    /// Appends an encoded message and wakes the connection; the bytes now waiting.
    pub fn push(&self, bytes: &[u8]) -> usize {
        let size = {
            let mut buf = self.buf.lock();
            buf.extend_from_slice(bytes);
            buf.len()
        };
        self.wake.notify_one();
        size
    }

    pub fn pending(&self) -> usize {
        self.buf.lock().len()
    }
}

type Subscribers = Vec<Arc<ClientInfo>>;

/// Messages for the client whose command runs on this thread (a RESP3 subscriber to keyspace
/// events changing a key itself): Redis writes them into that client's output while the command
/// runs, so they land where the command raised them — SET's event before +OK, HSET's after :1,
/// and inside EXEC's array. They are kept here with the output offset they belong at and
/// spliced in when the command ends.
struct Own {
    /// The client running a command (0: none; client ids start at 1).
    client: u64,
    /// Offset in its output where a message raised now belongs.
    at: usize,
    msgs: Vec<(usize, Vec<u8>)>,
    /// `at` is held where it is (see `own_pin`).
    pinned: bool,
}

thread_local! {
    static OWN: RefCell<Own> = const { RefCell::new(Own { client: 0, at: 0, msgs: Vec::new(), pinned: false }) };
}

/// A command of `client_id` starts; its output is `at` bytes long.
pub fn own_begin(client_id: u64, at: usize) {
    OWN.with(|o| {
        let mut o = o.borrow_mut();
        o.client = client_id;
        o.at = at;
        // Left over only if a command panicked (its task ended): never another client's.
        o.msgs.clear();
    });
}

/// The running command has written `at` bytes of output so far (called where it raises events).
#[inline]
pub fn own_at(at: usize) {
    OWN.with(|o| {
        let mut o = o.borrow_mut();
        if !o.pinned {
            o.at = at;
        }
    });
}

/// While pinned, the position stays where it is: a script's commands write their replies into
/// buffers of their own, and their events go before the script's reply.
pub fn own_pin(pinned: bool) {
    OWN.with(|o| o.borrow_mut().pinned = pinned);
}

/// The command ended: its own messages go into `out` where they were raised.
pub fn own_end(out: &mut Reply) {
    let msgs = OWN.with(|o| {
        let mut o = o.borrow_mut();
        o.client = 0;
        std::mem::take(&mut o.msgs)
    });
    for (at, bytes) in msgs.into_iter().rev() {
        let at = at.min(out.buf.len());
        out.buf.splice(at..at, bytes);
    }
}

#[derive(Default)]
pub struct PubSub {
    /// Per kind: name -> clients, in subscription order.
    maps: [RwLock<HashMap<Bytes, Subscribers>>; 3],
    /// client-output-buffer-limit pubsub hard limit in bytes (0: none).
    pub hard_limit: AtomicU64,
}

impl PubSub {
    pub fn new() -> Self {
        let p = PubSub::default();
        p.hard_limit.store(32 << 20, Relaxed);
        p
    }

    /// Adds `client` under `name`; false if it was already there.
    pub fn subscribe(&self, kind: Kind, name: &Bytes, client: &Arc<ClientInfo>) -> bool {
        let mut map = self.maps[kind.index()].write();
        let subs = map.entry(name.clone()).or_default();
        if subs.iter().any(|c| c.id == client.id) {
            return false;
        }
        subs.push(client.clone());
        true
    }

    /// Removes `client` from `name`; false if it was not there.
    pub fn unsubscribe(&self, kind: Kind, name: &[u8], client_id: u64) -> bool {
        let mut map = self.maps[kind.index()].write();
        let Some(subs) = map.get_mut(name) else { return false };
        let Some(i) = subs.iter().position(|c| c.id == client_id) else {
            return false;
        };
        subs.remove(i);
        if subs.is_empty() {
            map.remove(name);
        }
        true
    }

    /// Delivers `message` to the subscribers of `channel` (and, for ordinary channels, to the
    /// patterns that match it). Returns how many clients received it. `me` is the publishing
    /// client: its own copy is written straight into `own_out`, before PUBLISH's reply, as Redis
    /// orders them.
    pub fn publish(&self, shard: bool, channel: &[u8], message: &[u8], me: Option<(u64, &mut Reply)>) -> usize {
        let mut me = me;
        let mut received = 0;
        let kind = if shard { Kind::Shard } else { Kind::Channel };
        let word: &[u8] = if shard { b"smessage" } else { b"message" };
        if let Some(subs) = self.maps[kind.index()].read().get(channel) {
            for c in subs {
                self.deliver(c, &mut me, &[word, channel, message]);
                received += 1;
            }
        }
        if !shard {
            for (pattern, subs) in self.maps[Kind::Pattern.index()].read().iter() {
                if !glob_match(pattern, channel, false) {
                    continue;
                }
                for c in subs {
                    self.deliver(c, &mut me, &[b"pmessage", pattern, channel, message]);
                    received += 1;
                }
            }
        }
        received
    }

    fn deliver(&self, client: &ClientInfo, me: &mut Option<(u64, &mut Reply)>, parts: &[&[u8]]) {
        // A client being closed (over its limit, or killed) gets nothing more, as Redis adds no
        // output for a client closed ASAP: its mailbox stays bounded until its task ends. It is
        // still counted as a receiver, as in Redis.
        if client.killed.load(Relaxed) {
            return;
        }
        if let Some((id, out)) = me {
            if *id == client.id {
                write_message(out, parts);
                return;
            }
        }
        let own = OWN.with(|o| {
            let mut o = o.borrow_mut();
            if o.client != client.id {
                return false;
            }
            let mut reply = Reply::new_empty(client.resp.load(Relaxed) == 3);
            write_message(&mut reply, parts);
            let at = o.at;
            o.msgs.push((at, reply.buf));
            true
        });
        if own {
            return;
        }
        let size = {
            let mut buf = client.mailbox.buf.lock();
            let mut reply = Reply {
                buf: std::mem::take(&mut *buf),
                resp3: client.resp.load(Relaxed) == 3,
            };
            write_message(&mut reply, parts);
            *buf = reply.buf;
            buf.len()
        };
        client.close_if_over(size, self.hard_limit.load(Relaxed));
        client.mailbox.wake.notify_one();
    }

    /// Names with at least one subscriber, matching `pattern` if given (PUBSUB CHANNELS).
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.maps[kind.index()]
            .read()
            .keys()
            .filter(|n| pattern.is_none_or(|p| glob_match(p, n, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of one name (PUBSUB NUMSUB).
    pub fn count(&self, kind: Kind, name: &[u8]) -> usize {
        self.maps[kind.index()].read().get(name).map_or(0, |s| s.len())
    }

    /// Distinct names of a kind (PUBSUB NUMPAT counts patterns).
    pub fn len(&self, kind: Kind) -> usize {
        self.maps[kind.index()].read().len()
    }
}

/// One message frame: ["message", channel, payload] or ["pmessage", pattern, channel, payload].
fn write_message(out: &mut Reply, parts: &[&[u8]]) {
    out.push(parts.len());
    for p in parts {
        out.bulk(p);
    }
}

/// Keyspace notifications are published like any message.
impl crate::keyspace::notify::Sink for PubSub {
    fn publish(&self, channel: &[u8], message: &[u8]) {
        PubSub::publish(self, false, channel, message, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Once a subscriber is being closed (killed, or over its output limit) its mailbox takes no
    /// more messages, so it cannot grow while the connection's task winds down; PUBLISH still
    /// counts it, as Redis does.
    #[test]
    fn a_killed_subscriber_gets_no_more_messages() {
        let clients = crate::client::Clients::default();
        let addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        let sub = clients.register(addr, addr, 0);
        let pubsub = PubSub::new();
        let channel = Bytes::from_static(b"news");
        assert!(pubsub.subscribe(Kind::Channel, &channel, &sub));
        assert_eq!(pubsub.publish(false, b"news", b"one", None), 1);
        let before = sub.mailbox.pending();
        assert!(before > 0);
        sub.request_kill();
        assert_eq!(pubsub.publish(false, b"news", &[b'x'; 4096], None), 1);
        assert_eq!(sub.mailbox.pending(), before, "nothing added after the kill");
    }
}
