//! Blocking commands' common part (Redis's blocked.c): the timeout argument, and what a handler
//! does when there is nothing to serve yet.
//!
//! A blocking handler first tries to serve at once, exactly as its non-blocking twin; when the
//! keys are empty it calls [`Ctx::block`]. Inside MULTI/EXEC (and when re-run to serve a waiting
//! client) that answers the timeout reply at once, as Redis does; otherwise the client waits.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{CmdError, CmdResult, Ctx};
use crate::client::{Client, ClientInfo};
use crate::keyspace::blocking::{WaitState, Waiter};
use crate::protocol::Reply;
use crate::server::Server;

/// What a blocking command answers when it cannot wait (inside MULTI/EXEC). A real timeout
/// answers a null array for every command, as Redis's replyToBlockedClientTimedOut does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutReply {
    /// BLPOP, BRPOP, BLMPOP, BZPOPMIN ...: a null array (RESP2 `*-1`).
    NullArray,
    /// BLMOVE, BRPOPLPUSH: a null bulk string (RESP2 `$-1`).
    NullBulk,
}

/// A client waiting on keys: set by [`Ctx::block`], read by the connection.
#[derive(Clone, Debug)]
pub struct BlockOn {
    pub db: usize,
    pub keys: Vec<Bytes>,
    /// Unix ms after which the client gets `timeout_reply`; None waits for ever.
    pub deadline: Option<i64>,
    pub timeout_reply: TimeoutReply,
}

/// A blocking command's timeout in seconds (fractions allowed; 0 waits for ever), as the absolute
/// deadline in unix ms. Redis's getTimeoutFromObjectOrReply with its error texts.
pub fn parse_timeout(arg: &[u8], now: i64) -> Result<Option<i64>, CmdError> {
    let secs = super::parse_f64(arg).map_err(|_| CmdError::msg("ERR timeout is not a float or out of range"))?;
    let ms = secs * 1000.0;
    // Redis converts to a long long: past its range (inf, 1e300) that comes out negative. (NaN
    // never gets here: parse_f64 refuses it.)
    if ms >= i64::MAX as f64 {
        return Err(CmdError::msg("ERR timeout is negative"));
    }
    let ms = ms.ceil() as i64;
    if ms < 0 {
        return Err(CmdError::msg("ERR timeout is negative"));
    }
    if ms == 0 {
        return Ok(None);
    }
    // A deadline past the end of time waits for ever, as in Redis.
    Ok(now.checked_add(ms))
}

pub fn write_timeout_reply(out: &mut crate::protocol::Reply, how: TimeoutReply) {
    match how {
        TimeoutReply::NullArray => out.null_array(),
        TimeoutReply::NullBulk => out.null(),
    }
}

impl Ctx<'_> {
    /// Nothing to serve on `keys` now: wait for a push to one of them, or answer the timeout reply
    /// at once where a client cannot wait (inside a transaction).
    pub fn block(&mut self, keys: &[Bytes], deadline: Option<i64>, timeout_reply: TimeoutReply) -> CmdResult {
        if self.client.executing_transaction {
            write_timeout_reply(self.out, timeout_reply);
            return Ok(());
        }
        self.client.blocked = Some(BlockOn {
            db: self.client.db,
            keys: keys.to_vec(),
            deadline,
            timeout_reply,
        });
        Ok(())
    }
}

/// After a command left its client blocked: queue it on its keys (under the same world lock the
/// command ran under, so no push is missed).
pub(crate) fn register(server: &Server, client: &mut Client, args: &[Bytes], resp3: bool) {
    let Some(on) = client.blocked.take() else { return };
    let waiter = Arc::new(Waiter {
        client: client.info.clone(),
        db: on.db,
        keys: on.keys,
        args: args.to_vec(),
        resp3,
        state: Mutex::new(WaitState::Waiting),
    });
    *client.info.blocked.lock() = Some(waiter.clone());
    client.waiting = Some((waiter.clone(), on.deadline));
    server.keyspace.blocking.add(waiter);
}

/// Serves the clients waiting on keys that writes made ready, oldest first per key, by re-running
/// their commands on that key alone (Redis 7.0 serves a client from the key that became ready,
/// not from the first of its keys); repeats while serving makes more keys ready (BLMOVE pushes).
/// Runs with the world lock held exclusively, so a re-run multi-key command is as atomic as when it
/// first ran.
pub(crate) fn serve_ready(server: &Server) {
    let blocking = &server.keyspace.blocking;
    for _round in 0..1000 {
        let ready = blocking.take_ready();
        if ready.is_empty() {
            return;
        }
        for (db, key) in ready {
            for w in blocking.waiters(db, &key) {
                let mut state = w.state.lock();
                if !matches!(*state, WaitState::Waiting) {
                    continue;
                }
                let Some(idx) = super::lookup(&w.args[0]) else { continue };
                let cmd = &super::table()[idx];
                // A key that now holds another type (or nothing) does not serve this client.
                if !holds_what_it_waits_for(server, cmd, db, &key) {
                    continue;
                }
                let args = on_one_key(cmd, &w.args, &key);
                let mut proxy = Client::new(w.client.clone(), true);
                proxy.db = w.db;
                let mut out = Reply::new_empty(w.resp3);
                super::call(server, &mut proxy, &mut out, idx, &args);
                if proxy.blocked.is_some() {
                    // Nothing to serve: the key is empty again, so later waiters wait too.
                    break;
                }
                *state = WaitState::Answered(out.buf);
                drop(state);
                blocking.remove(&w);
                w.client.mailbox.wake.notify_one();
            }
        }
    }
}

/// Whether `key` holds the type the blocking command pops from (a list, or a sorted set for the
/// BZ* commands), as Redis checks before serving.
fn holds_what_it_waits_for(server: &Server, cmd: &super::Command, db: usize, key: &[u8]) -> bool {
    let zset = cmd.name.starts_with("bz");
    let now = server.keyspace.clock.now_ms();
    server.keyspace.read(db, key, now, crate::keyspace::Lookup::Peek, |e| {
        e.is_some_and(|e| {
            if zset {
                e.value.as_zset().is_some()
            } else {
                e.value.as_list().is_some()
            }
        })
    })
}

/// The blocked command's arguments narrowed to the one ready key: `BLPOP a b 0` served from `b`
/// runs as `BLPOP b 0`, `BLMPOP 0 2 a b LEFT` as `BLMPOP 0 1 b LEFT`. Commands with one source
/// (BLMOVE) are left as they are.
fn on_one_key(cmd: &super::Command, args: &[Bytes], key: &Bytes) -> Vec<Bytes> {
    if cmd.keynum > 0 {
        let Some(keys) = cmd.counted_keys(args) else { return args.to_vec() };
        let rest = cmd.keynum + 1 + keys.len();
        let mut v = args[..cmd.keynum].to_vec();
        v.push(Bytes::from_static(b"1"));
        v.push(key.clone());
        v.extend_from_slice(&args[rest..]);
        return v;
    }
    // BLPOP/BRPOP/BZPOPMIN/BZPOPMAX: the keys run up to the timeout (last key -2). BLMOVE and
    // BRPOPLPUSH name a source and a destination: only the source is waited on; left whole.
    if cmd.first_key <= 0 || cmd.last_key >= 0 {
        return args.to_vec();
    }
    let last = args.len() as i32 + cmd.last_key;
    let mut v = args[..cmd.first_key as usize].to_vec();
    v.push(key.clone());
    v.extend_from_slice(&args[last as usize + 1..]);
    v
}

/// Ends a wait that was not served: the deadline passed, or CLIENT UNBLOCK. Returns the reply the
/// client gets: `reply` if it was still waiting, else the answer it was already given.
pub(crate) fn end_wait(server: &Server, w: &Arc<Waiter>, reply: Vec<u8>) -> Option<Vec<u8>> {
    let mut state = w.state.lock();
    let answer = match std::mem::replace(&mut *state, WaitState::Done) {
        WaitState::Waiting => Some(reply),
        WaitState::Answered(bytes) => Some(bytes),
        WaitState::Done => None,
    };
    drop(state);
    server.keyspace.blocking.remove(w);
    answer
}

/// The reply a waiting client was given, if any (after its task was woken).
pub(crate) fn take_answer(w: &Waiter) -> Option<Vec<u8>> {
    let mut state = w.state.lock();
    match std::mem::replace(&mut *state, WaitState::Done) {
        WaitState::Answered(bytes) => Some(bytes),
        other => {
            *state = other;
            None
        }
    }
}

/// CLIENT UNBLOCK: answers a waiting client with its timeout reply, or an UNBLOCKED error.
pub(crate) fn unblock(server: &Server, info: &ClientInfo, with_error: bool) -> bool {
    let Some(w) = info.blocked.lock().clone() else { return false };
    let mut state = w.state.lock();
    if !matches!(*state, WaitState::Waiting) {
        return false;
    }
    let mut out = Reply::new_empty(w.resp3);
    if with_error {
        out.error(b"UNBLOCKED client unblocked via CLIENT UNBLOCK");
    } else {
        // As a real timeout: a null array for every blocking command (replyToBlockedClientTimedOut).
        write_timeout_reply(&mut out, TimeoutReply::NullArray);
    }
    *state = WaitState::Answered(out.buf);
    drop(state);
    server.keyspace.blocking.remove(&w);
    w.client.mailbox.wake.notify_one();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_as_redis() {
        assert_eq!(parse_timeout(b"0", 1000), Ok(None));
        assert_eq!(parse_timeout(b"1.5", 1000), Ok(Some(2500)));
        assert_eq!(parse_timeout(b"0.0001", 1000), Ok(Some(1001)));
        assert_eq!(parse_timeout(b"-1", 0).unwrap_err().0, "ERR timeout is negative");
        assert_eq!(
            parse_timeout(b"abc", 0).unwrap_err().0,
            "ERR timeout is not a float or out of range"
        );
        assert_eq!(parse_timeout(b"1e300", 0).unwrap_err().0, "ERR timeout is negative");
        assert_eq!(parse_timeout(b"inf", 0).unwrap_err().0, "ERR timeout is negative");
        // A deadline past the end of time waits for ever.
        assert_eq!(parse_timeout(b"9223372000000000", 1_700_000_000_000), Ok(None));
    }
}
