//! The slow log (Redis's slowlog.c): commands that ran for at least `slowlog-log-slower-than`
//! microseconds, newest first, at most `slowlog-max-len` of them. Checking costs one atomic load
//! per command; the lock is taken only to record a slow one.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::client::ClientInfo;
use crate::config::Config;
use crate::protocol::Reply;

/// Arguments kept per entry, the last one then saying how many more there were.
const MAX_ARGC: usize = 32;
/// Bytes kept per argument.
const MAX_STRING: usize = 128;

struct Entry {
    id: u64,
    time: i64,
    duration_us: u64,
    args: Vec<Bytes>,
    peer: String,
    name: Bytes,
}

#[derive(Default)]
pub struct SlowLog {
    /// Newest first, with the id the next entry takes.
    entries: Mutex<(VecDeque<Entry>, u64)>,
}

impl SlowLog {
    /// Records the command if it was slow enough (slowlogPushEntryIfNeeded); `redact` marks the
    /// arguments shown as "(redacted)", as AUTH's are.
    #[inline]
    pub fn push_if_slow(
        &self,
        config: &Config,
        client: &ClientInfo,
        args: &[Bytes],
        redact: impl Fn(&[Bytes]) -> Vec<bool>,
        duration_us: u64,
    ) {
        let threshold = config.slowlog_log_slower_than.load(Relaxed);
        if threshold < 0 || (duration_us as i64) < threshold {
            return;
        }
        self.push(config, client, args, redact(args), duration_us);
    }

    #[cold]
    fn push(&self, config: &Config, client: &ClientInfo, args: &[Bytes], hide: Vec<bool>, duration_us: u64) {
        let kept = args.len().min(MAX_ARGC);
        let mut logged = Vec::with_capacity(kept);
        for (j, (arg, hide)) in args.iter().zip(hide).take(kept).enumerate() {
            logged.push(if kept != args.len() && j == kept - 1 {
                Bytes::from(format!("... ({} more arguments)", args.len() - kept + 1))
            } else if hide {
                Bytes::from_static(b"(redacted)")
            } else if arg.len() > MAX_STRING {
                let mut s = arg[..MAX_STRING].to_vec();
                s.extend_from_slice(format!("... ({} more bytes)", arg.len() - MAX_STRING).as_bytes());
                Bytes::from(s)
            } else {
                // A copy: a slice would pin the whole read buffer the argument came in.
                Bytes::copy_from_slice(arg)
            });
        }
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut guard = self.entries.lock();
        let (entries, next_id) = &mut *guard;
        entries.push_front(Entry {
            id: *next_id,
            time,
            duration_us,
            args: logged,
            peer: client.addr.to_string(),
            name: client.name().unwrap_or_default(),
        });
        *next_id += 1;
        entries.truncate(config.slowlog_max_len.load(Relaxed) as usize);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the log; ids go on from where they were.
    pub fn reset(&self) {
        self.entries.lock().0.clear();
    }

    /// SLOWLOG GET: the newest `count` entries (all with None), each as Redis shows it.
    pub fn reply(&self, out: &mut Reply, count: Option<usize>) {
        let guard = self.entries.lock();
        let n = count.unwrap_or(usize::MAX).min(guard.0.len());
        out.array(n);
        for e in guard.0.iter().take(n) {
            out.array(6);
            out.int(e.id as i64);
            out.int(e.time);
            out.int(e.duration_us as i64);
            out.array(e.args.len());
            for a in &e.args {
                out.bulk(a);
            }
            out.bulk(e.peer.as_bytes());
            out.bulk(&e.name);
        }
    }
}
