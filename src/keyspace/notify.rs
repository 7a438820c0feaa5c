//! Keyspace notifications (Redis's notify.c): which event classes are on, and the one call that
//! commands (and the keyspace itself, for expired and evicted keys) make when a key changes.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Event classes, as the letters of notify-keyspace-events.
pub mod class {
    /// K: publish to __keyspace@<db>__:<key>.
    pub const KEYSPACE: u32 = 1 << 0;
    /// E: publish to __keyevent@<db>__:<event>.
    pub const KEYEVENT: u32 = 1 << 1;
    /// g: DEL, EXPIRE, RENAME ... (commands that work on any type).
    pub const GENERIC: u32 = 1 << 2;
    /// $
    pub const STRING: u32 = 1 << 3;
    /// l
    pub const LIST: u32 = 1 << 4;
    /// s
    pub const SET: u32 = 1 << 5;
    /// h
    pub const HASH: u32 = 1 << 6;
    /// z
    pub const ZSET: u32 = 1 << 7;
    /// x: a key's TTL ran out and it was reclaimed.
    pub const EXPIRED: u32 = 1 << 8;
    /// e: evicted under maxmemory.
    pub const EVICTED: u32 = 1 << 9;
    /// t
    pub const STREAM: u32 = 1 << 10;
    /// m: a read found no key.
    pub const KEY_MISS: u32 = 1 << 11;
    /// d
    pub const MODULE: u32 = 1 << 12;
    /// n: a key was created.
    pub const NEW: u32 = 1 << 13;
}

/// The classes a notify-keyspace-events string turns on.
pub fn flags_of(spec: &str) -> u32 {
    use class::*;
    spec.chars()
        .map(|c| match c {
            'A' => GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// Where notifications go: the pub/sub hub, set once the server is built.
pub trait Sink: Send + Sync {
    fn publish(&self, channel: &[u8], message: &[u8]);
}

/// The configured classes, and the sink they are published to.
#[derive(Default)]
pub struct Notifier {
    flags: AtomicU32,
    sink: parking_lot::RwLock<Option<std::sync::Arc<dyn Sink>>>,
}

impl Notifier {
    pub fn set_flags(&self, flags: u32) {
        self.flags.store(flags, Relaxed);
    }

    /// Where notifications go: the server's pub/sub hub, or (in tests) a recorder put in its place.
    pub fn set_sink(&self, sink: std::sync::Arc<dyn Sink>) {
        *self.sink.write() = Some(sink);
    }

    /// Publishes `event` on `key` if its class is on (one atomic load when notifications are off,
    /// which is the default).
    #[inline]
    pub fn notify(&self, class: u32, event: &str, db: usize, key: &[u8]) {
        let flags = self.flags.load(Relaxed);
        if flags & class == 0 || flags & (class::KEYSPACE | class::KEYEVENT) == 0 {
            return;
        }
        self.publish(flags, event, db, key);
    }

    #[cold]
    fn publish(&self, flags: u32, event: &str, db: usize, key: &[u8]) {
        let Some(sink) = self.sink.read().clone() else { return };
        if flags & class::KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{db}__:").into_bytes();
            channel.extend_from_slice(key);
            sink.publish(&channel, event.as_bytes());
        }
        if flags & class::KEYEVENT != 0 {
            let channel = format!("__keyevent@{db}__:{event}");
            sink.publish(channel.as_bytes(), key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_the_letters() {
        assert_eq!(flags_of(""), 0);
        assert_eq!(flags_of("Kl"), class::KEYSPACE | class::LIST);
        let all = flags_of("AKE");
        assert!(all & class::EXPIRED != 0 && all & class::KEY_MISS == 0 && all & class::NEW == 0);
    }
}
