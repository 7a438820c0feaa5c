//! MONITOR: the commands every client runs, shown to the monitoring clients as Redis shows them
//! (`+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"`), through their mailboxes like pub/sub
//! messages. Costs one atomic load per command while nobody monitors.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::client::{ClientInfo, Peer};

#[derive(Default)]
pub struct Monitors {
    list: Mutex<Vec<Arc<ClientInfo>>>,
    count: AtomicUsize,
}

/// Where a command came from, as the line shows it.
pub enum Origin<'a> {
    Client(&'a Peer),
    /// A command a script ran (`[0 lua]`).
    Lua,
}

impl Monitors {
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    pub fn add(&self, info: Arc<ClientInfo>) {
        let mut list = self.list.lock();
        if !list.iter().any(|m| m.id == info.id) {
            info.monitor.store(true, Relaxed);
            list.push(info);
            self.count.store(list.len(), Relaxed);
        }
    }

    pub fn remove(&self, info: &ClientInfo) {
        if !info.monitor.swap(false, Relaxed) {
            return;
        }
        let mut list = self.list.lock();
        list.retain(|m| m.id != info.id);
        self.count.store(list.len(), Relaxed);
    }

    /// Shows one command to every monitor. `hard_limit`: bytes a monitor may leave unread before
    /// it is closed (the pub/sub limit; Redis puts no bound on monitors).
    pub fn feed(&self, db: usize, origin: Origin<'_>, args: &[Bytes], hard_limit: u64) {
        let line = format_line(db, origin, args);
        let list = self.list.lock();
        for m in list.iter().filter(|m| !m.killed.load(Relaxed)) {
            let size = m.mailbox.push(&line);
            m.close_if_over(size, hard_limit);
        }
    }
}

/// The arguments a monitor must not see (Redis's redactClientCommandArgument): AUTH's, and the
/// user name and password of HELLO's AUTH option.
pub(crate) fn redacted(args: &[Bytes]) -> Vec<bool> {
    let mut hide = vec![false; args.len()];
    if args[0].eq_ignore_ascii_case(b"auth") {
        hide[1..].iter_mut().for_each(|h| *h = true);
    } else if args[0].eq_ignore_ascii_case(b"hello") {
        if let Some(i) = args.iter().position(|a| a.eq_ignore_ascii_case(b"auth")) {
            hide.iter_mut().skip(i + 1).take(2).for_each(|h| *h = true);
        }
    }
    hide
}

fn format_line(db: usize, origin: Origin<'_>, args: &[Bytes]) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let from = match origin {
        Origin::Lua => "lua".to_string(),
        Origin::Client(Peer::Unix(path)) => format!("unix:{path}"),
        Origin::Client(peer) => peer.to_string(),
    };
    let mut line = format!("+{}.{:06} [{db} {from}]", now.as_secs(), now.subsec_micros()).into_bytes();
    for (arg, hide) in args.iter().zip(redacted(args)) {
        line.push(b' ');
        if hide {
            line.extend_from_slice(b"\"(redacted)\"");
        } else {
            quote(&mut line, arg);
        }
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// Redis's sdscatrepr: a quoted string with C escapes, non-printable bytes as \xHH.
fn quote(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quote_and_redact_as_redis() {
        let args: Vec<Bytes> = ["SET", "k", "a b\n\"\\\u{0}"].iter().map(|s| Bytes::from(s.to_string())).collect();
        let line = String::from_utf8(format_line(2, Origin::Lua, &args)).unwrap();
        assert!(line.starts_with('+'));
        assert!(line.ends_with(" [2 lua] \"SET\" \"k\" \"a b\\n\\\"\\\\\\x00\"\r\n"), "{line}");
        let auth: Vec<Bytes> = ["HELLO", "3", "AUTH", "u", "p", "SETNAME", "n"]
            .iter()
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        assert_eq!(redacted(&auth), [false, false, false, true, true, false, false]);
    }
}
