//! Lists: pushes and pops at both ends, indexes and ranges, LINSERT LREM LTRIM LPOS, moves between
//! lists, and the blocking forms (Redis's t_list.c).
//!
//! A list lives in one key's entry (`Value::List`). Popping is written once ([`pop_from`], with
//! [`pop_first`] over several keys) and moving once ([`move_one`]); each blocking command runs
//! the same code as its non-blocking twin and only calls [`Ctx::block`] when there was nothing to
//! take, so it can be re-run as it stands to serve a waiting client. A list whose last element goes
//! is deleted, as in Redis.

use bytes::Bytes;

use super::blocking::{parse_timeout, TimeoutReply};
use super::{eq_ic, parse_at_least_one, parse_i64, parse_non_negative, CmdError, CmdResult, Ctx};
use crate::keyspace::list::{clamp_range, Elem};
use crate::keyspace::notify::class;
use crate::keyspace::{End, Entry, List, Lookup, Slot, Ttl, Value};
use crate::protocol::Reply;

fn list_of(entry: &Entry) -> Result<&List, CmdError> {
    entry.value.as_list().ok_or(CmdError::WRONGTYPE)
}

/// The list under a slot known to hold one, to change in place (signals WATCH).
fn list_mut<'s>(slot: &'s mut Slot<'_>) -> &'s mut List {
    slot.get_mut().and_then(|e| e.value.as_list_mut()).expect("checked to be a list")
}

/// Checks the key holds a list (or nothing) before a write: true if a list is there.
fn check_write(slot: &Slot<'_>) -> Result<bool, CmdError> {
    match slot.get() {
        None => Ok(false),
        Some(e) => list_of(e).map(|_| true),
    }
}

/// Runs `f` on the list at `key` for reading; `missing` answers when there is no key.
fn read_list(ctx: &mut Ctx<'_>, key: &[u8], missing: impl FnOnce(&mut Reply), f: impl FnOnce(&List, &mut Reply) -> CmdResult) -> CmdResult {
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, key, ctx.now, Lookup::Read, |e| match e {
        None => {
            missing(out);
            Ok(())
        }
        Some(e) => f(list_of(e)?, out),
    })
}

/// LEFT / RIGHT (Redis's getListPositionFromObjectOrReply).
fn parse_end(arg: &[u8]) -> Result<End, CmdError> {
    if eq_ic(arg, "left") {
        Ok(End::Head)
    } else if eq_ic(arg, "right") {
        Ok(End::Tail)
    } else {
        Err(CmdError::SYNTAX)
    }
}

fn push_event(end: End) -> &'static str {
    match end {
        End::Head => "lpush",
        End::Tail => "rpush",
    }
}

fn pop_event(end: End) -> &'static str {
    match end {
        End::Head => "lpop",
        End::Tail => "rpop",
    }
}

// ---- pushes ----

fn push_generic(ctx: &mut Ctx<'_>, args: &[Bytes], end: End, only_existing: bool) -> CmdResult {
    let key = &args[1];
    let len = ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        if !check_write(slot)? {
            if only_existing {
                return Ok(None);
            }
            slot.set(Value::List(Box::default()), Ttl::Clear);
        }
        let l = list_mut(slot);
        for v in &args[2..] {
            l.push(end, v);
        }
        Ok::<_, CmdError>(Some(l.len()))
    })?;
    match len {
        None => ctx.out.int(0),
        Some(n) => {
            // Reply first, then the event, as Redis's pushGenericCommand.
            ctx.out.int(n as i64);
            ctx.notify(class::LIST, push_event(end), key);
        }
    }
    Ok(())
}

pub fn lpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push_generic(ctx, args, End::Head, false)
}

pub fn rpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push_generic(ctx, args, End::Tail, false)
}

pub fn lpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push_generic(ctx, args, End::Head, true)
}

pub fn rpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push_generic(ctx, args, End::Tail, true)
}

// ---- pops: one function for every popping command ----

/// What a pop took, and whether it emptied (so deleted) the list.
struct Popped {
    elems: Vec<Elem>,
    emptied: bool,
}

/// Pops up to `count` elements from `end` of the list at `key`, in the order they come off.
/// Ok(None) when there is no key; a count of 0 takes nothing and changes nothing. The caller
/// replies, then calls [`notify_popped`] (Redis's listElementsRemoved comes after the reply).
fn pop_from(ctx: &Ctx<'_>, key: &[u8], end: End, count: usize) -> Result<Option<Popped>, CmdError> {
    let popped = ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        if !check_write(slot)? {
            return Ok(None);
        }
        if count == 0 {
            return Ok(Some((Vec::new(), false)));
        }
        let l = list_mut(slot);
        let popped = l.pop_many(end, count);
        let emptied = l.is_empty();
        if emptied {
            slot.remove();
        }
        Ok::<_, CmdError>(Some((popped, emptied)))
    })?;
    Ok(popped.map(|(elems, emptied)| Popped { elems, emptied }))
}

/// The pop's events (and "del" when it emptied the list), after the command's reply.
fn notify_popped(ctx: &Ctx<'_>, key: &[u8], end: End, popped: &Popped) {
    if !popped.elems.is_empty() {
        ctx.notify(class::LIST, pop_event(end), key);
        if popped.emptied {
            ctx.notify(class::GENERIC, "del", key);
        }
    }
}

/// Pops from the first of `keys` that holds a list (missing keys are skipped; a key of another type
/// met before any list is an error): the key and what came off, or None if all are missing.
fn pop_first<'k>(ctx: &Ctx<'_>, keys: &'k [Bytes], end: End, count: usize) -> Result<Option<(&'k Bytes, Popped)>, CmdError> {
    for key in keys {
        if let Some(popped) = pop_from(ctx, key, end, count)? {
            return Ok(Some((key, popped)));
        }
    }
    Ok(None)
}

fn pop_generic(ctx: &mut Ctx<'_>, args: &[Bytes], end: End) -> CmdResult {
    let name = if end == End::Head { "lpop" } else { "rpop" };
    let count = match args.len() {
        2 => None,
        3 => Some(parse_non_negative(&args[2], &CmdError::NOT_POSITIVE)? as usize),
        _ => return Err(CmdError::wrong_args(name)),
    };
    let popped = pop_from(ctx, &args[1], end, count.unwrap_or(1))?;
    match (&popped, count) {
        (None, None) => ctx.out.null(),
        (None, Some(_)) => ctx.out.null_array(),
        (Some(p), None) => ctx.out.bulk(&p.elems[0]),
        (Some(p), Some(_)) => {
            ctx.out.array(p.elems.len());
            p.elems.iter().for_each(|e| ctx.out.bulk(e));
        }
    }
    if let Some(p) = &popped {
        notify_popped(ctx, &args[1], end, p);
    }
    Ok(())
}

pub fn lpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    pop_generic(ctx, args, End::Head)
}

pub fn rpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    pop_generic(ctx, args, End::Tail)
}

/// BLPOP / BRPOP: `key... timeout`, answering [key, element].
fn bpop_generic(ctx: &mut Ctx<'_>, args: &[Bytes], end: End) -> CmdResult {
    let deadline = parse_timeout(&args[args.len() - 1], ctx.now)?;
    let keys = &args[1..args.len() - 1];
    match pop_first(ctx, keys, end, 1)? {
        Some((key, p)) => {
            ctx.out.array(2);
            ctx.out.bulk(key);
            ctx.out.bulk(&p.elems[0]);
            notify_popped(ctx, key, end, &p);
            Ok(())
        }
        None => ctx.block(keys, deadline, TimeoutReply::NullArray),
    }
}

pub fn blpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bpop_generic(ctx, args, End::Head)
}

pub fn brpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bpop_generic(ctx, args, End::Tail)
}

/// LMPOP's arguments from `numkeys` on (`args[at]`): the keys, the end, the count.
fn parse_mpop(args: &[Bytes], at: usize) -> Result<(&[Bytes], End, usize), CmdError> {
    let numkeys = parse_at_least_one(&args[at], "ERR numkeys should be greater than 0")? as u64;
    let where_at = (at as u64 + 1).saturating_add(numkeys);
    if where_at >= args.len() as u64 {
        return Err(CmdError::SYNTAX);
    }
    let where_at = where_at as usize;
    let end = parse_end(&args[where_at])?;
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && eq_ic(&args[j], "count") && j + 1 < args.len() {
            count = Some(parse_at_least_one(&args[j + 1], "ERR count should be greater than 0")?);
            j += 2;
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    let count = count.unwrap_or(1) as usize;
    Ok((&args[at + 1..where_at], end, count))
}

/// LMPOP / BLMPOP's reply: [key, [elements...]].
fn mpop_reply(out: &mut Reply, key: &[u8], popped: &[Elem]) {
    out.array(2);
    out.bulk(key);
    out.array(popped.len());
    popped.iter().for_each(|e| out.bulk(e));
}

pub fn lmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, end, count) = parse_mpop(args, 1)?;
    match pop_first(ctx, keys, end, count)? {
        Some((key, p)) => {
            mpop_reply(ctx.out, key, &p.elems);
            notify_popped(ctx, key, end, &p);
        }
        None => ctx.out.null_array(),
    }
    Ok(())
}

/// BLMPOP timeout numkeys key... LEFT|RIGHT [COUNT n]: the arguments are checked before the timeout,
/// as in Redis.
pub fn blmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, end, count) = parse_mpop(args, 2)?;
    let deadline = parse_timeout(&args[1], ctx.now)?;
    match pop_first(ctx, keys, end, count)? {
        Some((key, p)) => {
            mpop_reply(ctx.out, key, &p.elems);
            notify_popped(ctx, key, end, &p);
            Ok(())
        }
        None => ctx.block(keys, deadline, TimeoutReply::NullArray),
    }
}

// ---- moves: one function for LMOVE, RPOPLPUSH, BLMOVE, BRPOPLPUSH ----

/// Pops from `from` of the list at `src` and pushes it at `to` of the list at `dst` (created if
/// missing), answering the element; false (nothing written) when `src` is missing. A `dst` of
/// another type is an error before anything changes. Runs with the world lock held exclusively
/// (the table's EXCLUSIVE flag), so the two keys change together.
fn move_one(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from: End, to: End) -> Result<bool, CmdError> {
    let (ks, db, now) = (&ctx.server.keyspace, ctx.client.db, ctx.now);
    if !ks.write(db, src, now, |slot| check_write(slot))? {
        return Ok(false);
    }
    let (moved, src_emptied) = if src == dst {
        // A rotation: the list never empties.
        let moved = ks.write(db, src, now, |slot| {
            let l = list_mut(slot);
            let v = l.pop(from).expect("lists are never empty");
            let moved = v.to_vec();
            l.push_elem(to, v);
            moved
        });
        (moved, false)
    } else {
        ks.write(db, dst, now, |slot| check_write(slot))?;
        let (v, emptied) = ks.write(db, src, now, |slot| {
            let l = list_mut(slot);
            let v = l.pop(from).expect("lists are never empty");
            let emptied = l.is_empty();
            if emptied {
                slot.remove();
            }
            (v, emptied)
        });
        let moved = v.to_vec();
        ks.write(db, dst, now, |slot| {
            if !slot.exists() {
                slot.set(Value::List(Box::default()), Ttl::Clear);
            }
            list_mut(slot).push_elem(to, v);
        });
        (moved, emptied)
    };
    // Redis's order (lmoveHandlePush, then the reply, then the pop's events).
    ctx.notify(class::LIST, push_event(to), dst);
    ctx.out.bulk(&moved);
    ctx.notify(class::LIST, pop_event(from), src);
    if src_emptied {
        ctx.notify(class::GENERIC, "del", src);
    }
    Ok(true)
}

pub fn lmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let from = parse_end(&args[3])?;
    let to = parse_end(&args[4])?;
    if !move_one(ctx, &args[1], &args[2], from, to)? {
        ctx.out.null();
    }
    Ok(())
}

pub fn rpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if !move_one(ctx, &args[1], &args[2], End::Tail, End::Head)? {
        ctx.out.null();
    }
    Ok(())
}

fn bmove_generic(ctx: &mut Ctx<'_>, args: &[Bytes], from: End, to: End, deadline: Option<i64>) -> CmdResult {
    if move_one(ctx, &args[1], &args[2], from, to)? {
        return Ok(());
    }
    ctx.block(&args[1..2], deadline, TimeoutReply::NullBulk)
}

pub fn blmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let from = parse_end(&args[3])?;
    let to = parse_end(&args[4])?;
    let deadline = parse_timeout(&args[5], ctx.now)?;
    bmove_generic(ctx, args, from, to, deadline)
}

pub fn brpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let deadline = parse_timeout(&args[3], ctx.now)?;
    bmove_generic(ctx, args, End::Tail, End::Head, deadline)
}

// ---- reads ----

pub fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    read_list(
        ctx,
        &args[1],
        |out| out.int(0),
        |l, out| {
            out.int(l.len() as i64);
            Ok(())
        },
    )
}

pub fn lindex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // Redis looks the key up before it reads the index.
    read_list(
        ctx,
        &args[1],
        |out| out.null(),
        |l, out| {
            let index = parse_i64(&args[2])?;
            out.bulk_or_null(l.get(index));
            Ok(())
        },
    )
}

pub fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let start = parse_i64(&args[2])?;
    let stop = parse_i64(&args[3])?;
    read_list(
        ctx,
        &args[1],
        |out| out.array(0),
        |l, out| {
            match clamp_range(start, stop, l.len()) {
                None => out.array(0),
                Some((a, b)) => {
                    out.array(b - a + 1);
                    l.range(a, b).for_each(|e| out.bulk(e));
                }
            }
            Ok(())
        },
    )
}

/// LPOS key element [RANK r] [COUNT n] [MAXLEN m], as t_list.c's lposCommand, down to its
/// arithmetic on a RANK of LONG_MIN (which cannot be negated and so matches from the first hit).
pub fn lpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let ele = &args[2];
    let mut rank: i64 = 1;
    let mut count: i64 = -1;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        if eq_ic(&args[j], "rank") && more {
            rank = parse_i64(&args[j + 1])?;
            if rank == 0 {
                return Err(CmdError::msg(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if eq_ic(&args[j], "count") && more {
            count = parse_non_negative(&args[j + 1], &CmdError::msg("ERR COUNT can't be negative"))?;
        } else if eq_ic(&args[j], "maxlen") && more {
            maxlen = parse_non_negative(&args[j + 1], &CmdError::msg("ERR MAXLEN can't be negative"))?;
        } else {
            return Err(CmdError::SYNTAX);
        }
        j += 2;
    }
    let from_tail = rank < 0;
    if from_tail {
        rank = rank.wrapping_neg();
    }
    let with_count = count != -1;
    read_list(
        ctx,
        &args[1],
        |out| {
            if with_count {
                out.array(0)
            } else {
                out.null()
            }
        },
        |l, out| {
            let llen = l.len() as i64;
            let mut found = Vec::new();
            let mut hit = None;
            let mut iter: Box<dyn Iterator<Item = &[u8]>> = if from_tail { Box::new(l.iter_rev()) } else { Box::new(l.iter()) };
            let mut index: i64 = 0;
            let mut matches: i64 = 0;
            while maxlen == 0 || index < maxlen {
                let Some(e) = iter.next() else { break };
                if e == &ele[..] {
                    matches += 1;
                    let at = if from_tail { llen - index - 1 } else { index };
                    if matches >= rank {
                        if with_count {
                            found.push(at);
                            if count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count {
                                break;
                            }
                        } else {
                            hit = Some(at);
                            break;
                        }
                    }
                }
                index += 1;
            }
            if with_count {
                out.array(found.len());
                found.iter().for_each(|&i| out.int(i));
            } else {
                match hit {
                    Some(i) => out.int(i),
                    None => out.null(),
                }
            }
            Ok(())
        },
    )
}

// ---- in-place changes ----

pub fn lset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        // Redis looks the key up before it reads the index.
        if !check_write(slot)? {
            return Err(CmdError::NO_SUCH_KEY);
        }
        let index = parse_i64(&args[2])?;
        if slot.get().and_then(|e| e.value.as_list()).expect("checked").get(index).is_none() {
            return Err(CmdError::msg("ERR index out of range"));
        }
        list_mut(slot).set(index, &args[3]);
        Ok(())
    })?;
    ctx.out.ok();
    ctx.notify(class::LIST, "lset", key);
    Ok(())
}

pub fn linsert(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let after = if eq_ic(&args[2], "after") {
        true
    } else if eq_ic(&args[2], "before") {
        false
    } else {
        return Err(CmdError::SYNTAX);
    };
    let key = &args[1];
    let (pivot, value) = (&args[3], &args[4]);
    let len = ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        if !check_write(slot)? {
            return Ok(0);
        }
        // No pivot: no change (WATCH stays clean).
        let l = slot.get().and_then(|e| e.value.as_list()).expect("checked");
        if !l.iter().any(|e| e == &pivot[..]) {
            return Ok(-1);
        }
        let l = list_mut(slot);
        l.insert(pivot, after, value);
        Ok::<_, CmdError>(l.len() as i64)
    })?;
    if len > 0 {
        ctx.notify(class::LIST, "linsert", key);
    }
    ctx.out.int(len);
    Ok(())
}

pub fn lrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let count = parse_i64(&args[2])?;
    let key = &args[1];
    let value = &args[3];
    let (removed, emptied) = ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        if !check_write(slot)? {
            return Ok((0, false));
        }
        let l = slot.get().and_then(|e| e.value.as_list()).expect("checked");
        if !l.iter().any(|e| e == &value[..]) {
            return Ok((0, false));
        }
        let l = list_mut(slot);
        let removed = l.remove(value, count.unsigned_abs(), count < 0);
        let emptied = l.is_empty();
        if emptied {
            slot.remove();
        }
        Ok::<_, CmdError>((removed, emptied))
    })?;
    if removed > 0 {
        ctx.notify(class::LIST, "lrem", key);
    }
    if emptied {
        ctx.notify(class::GENERIC, "del", key);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

pub fn ltrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let start = parse_i64(&args[2])?;
    let stop = parse_i64(&args[3])?;
    let key = &args[1];
    let found = ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        if !check_write(slot)? {
            return Ok(None);
        }
        // Redis counts LTRIM as a change even when it keeps everything.
        let l = list_mut(slot);
        l.trim(clamp_range(start, stop, l.len()));
        let emptied = l.is_empty();
        if emptied {
            slot.remove();
        }
        Ok::<_, CmdError>(Some(emptied))
    })?;
    if let Some(emptied) = found {
        ctx.notify(class::LIST, "ltrim", key);
        if emptied {
            ctx.notify(class::GENERIC, "del", key);
        }
    }
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;

    use crate::client::Client;
    use crate::keyspace::notify::{flags_of, Sink};
    use crate::protocol::Reply;
    use crate::server::Server;

    /// Keeps every keyevent notification as "event key".
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Sink for Recorder {
        fn publish(&self, channel: &[u8], message: &[u8]) {
            let channel = String::from_utf8_lossy(channel);
            let event = channel.strip_prefix("__keyevent@0__:").expect("keyevent channel");
            self.0.lock().unwrap().push(format!("{event} {}", String::from_utf8_lossy(message)));
        }
    }

    struct Fixture {
        server: Arc<Server>,
        client: Client,
        events: Arc<Recorder>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let server = Server::new(crate::Config::default(), 0);
            let events = Arc::new(Recorder::default());
            server.keyspace.notifier.set_sink(events.clone());
            server.keyspace.notifier.set_flags(flags_of("Egl"));
            let addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
            let info = server.clients.register(addr, addr, 0);
            Fixture {
                server,
                client: Client::new(info, true),
                events,
            }
        }

        /// Runs a command; its reply as text.
        fn run(&mut self, line: &str) -> String {
            let args: Vec<Bytes> = line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
            let mut out = Reply::new(false);
            crate::commands::execute(&self.server, &mut self.client, &mut out, &args);
            String::from_utf8_lossy(&out.buf).into_owned()
        }

        /// The wait the last command left (its keys and deadline), ended so the next can wait.
        fn take_wait(&mut self) -> Option<(Vec<Bytes>, Option<i64>)> {
            let (w, deadline) = self.client.waiting.take()?;
            crate::commands::blocking::end_wait(&self.server, &w, Vec::new());
            *self.client.info.blocked.lock() = None;
            Some((w.keys.clone(), deadline))
        }

        /// The notifications since the last call.
        fn events(&self) -> Vec<String> {
            std::mem::take(&mut *self.events.0.lock().unwrap())
        }
    }

    #[test]
    fn notifications_follow_t_list_c() {
        let mut f = Fixture::new();
        let cases: &[(&str, &[&str])] = &[
            ("RPUSH l a b c", &["rpush l"]),
            ("LPUSH l z", &["lpush l"]),
            ("LPUSHX nokey a", &[]),
            ("RPUSHX l d", &["rpush l"]),
            ("LPUSHX l y", &["lpush l"]),
            ("LPOP l", &["lpop l"]),
            ("RPOP l 0", &[]),
            ("RPOP nokey", &[]),
            ("LSET l 0 Z", &["lset l"]),
            ("LSET l 99 Z", &[]),
            ("LINSERT l BEFORE Z w", &["linsert l"]),
            ("LINSERT l BEFORE nopivot w", &[]),
            ("LREM l 0 nothere", &[]),
            ("LREM l 1 w", &["lrem l"]),
            ("LTRIM l 0 -1", &["ltrim l"]),
            ("LTRIM nokey 0 -1", &[]),
            // LMOVE: the push on the destination first, then the pop on the source.
            ("LMOVE l d LEFT RIGHT", &["rpush d", "lpop l"]),
            ("LMOVE d d LEFT RIGHT", &["rpush d", "lpop d"]),
            ("RPOPLPUSH nokey d", &[]),
            ("RPOP l 10", &["rpop l", "del l"]),
            ("RPOPLPUSH d e", &["lpush e", "rpop d", "del d"]),
            ("RPUSH m 1 2", &["rpush m"]),
            ("LMPOP 3 nokey e m RIGHT COUNT 5", &["rpop e", "del e"]),
            ("BLPOP nokey m 0", &["lpop m"]),
            ("BLMPOP 0 1 m LEFT", &["lpop m", "del m"]),
            ("RPUSH t 1 2", &["rpush t"]),
            ("LTRIM t 5 10", &["ltrim t", "del t"]),
            ("RPUSH r x x", &["rpush r"]),
            ("LREM r 0 x", &["lrem r", "del r"]),
            ("RPUSH s a", &["rpush s"]),
            ("BLMOVE s s RIGHT LEFT 0", &["lpush s", "rpop s"]),
            ("BRPOPLPUSH s u 0", &["lpush u", "rpop s", "del s"]),
        ];
        for (cmd, want) in cases {
            let reply = f.run(cmd);
            assert!(!reply.starts_with('-') || cmd.starts_with("LSET l 99"), "{cmd}: {reply}");
            assert_eq!(f.events(), *want, "{cmd}");
        }
    }

    #[test]
    fn wrongtype_destination_changes_nothing() {
        let mut f = Fixture::new();
        f.run("RPUSH src a b");
        f.run("SET str v");
        f.events();
        assert!(f.run("RPOPLPUSH src str").starts_with("-WRONGTYPE"));
        assert!(f.run("BLMOVE src str LEFT LEFT 0").starts_with("-WRONGTYPE"));
        assert_eq!(f.events(), Vec::<String>::new());
        assert_eq!(f.run("LRANGE src 0 -1"), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    }

    #[test]
    fn blocking_forms_wait_only_when_nothing_is_there() {
        let mut f = Fixture::new();
        // Nothing to take: the client is marked as waiting on the keys, and no reply is written.
        assert_eq!(f.run("BLPOP a b 1.5"), "");
        let (keys, deadline) = f.take_wait().expect("blocked");
        assert_eq!(keys, [Bytes::from("a"), Bytes::from("b")]);
        assert!(deadline.is_some());
        assert_eq!(f.run("BLMPOP 0 2 a b LEFT COUNT 2"), "");
        let (keys, deadline) = f.take_wait().expect("blocked");
        assert_eq!((keys.len(), deadline), (2, None));
        assert_eq!(f.run("BRPOPLPUSH a b 0"), "");
        let (keys, _) = f.take_wait().expect("blocked");
        assert_eq!(keys, [Bytes::from("a")]);
        // Re-run after a push (the waiting side serves the client this way): it is served, once.
        f.run("RPUSH b x");
        assert_eq!(f.run("BLPOP a b 1.5"), "*2\r\n$1\r\nb\r\n$1\r\nx\r\n");
        assert!(f.client.waiting.is_none());
        assert_eq!(f.run("BLPOP a b 1.5"), "");
        assert!(f.take_wait().is_some(), "empty again: waits again");
        // Inside a transaction nothing waits: the timeout reply comes at once.
        f.client.executing_transaction = true;
        assert_eq!(f.run("BLPOP a b 1.5"), "*-1\r\n");
        assert_eq!(f.run("BLMOVE a b LEFT LEFT 1"), "$-1\r\n");
        assert!(f.client.waiting.is_none());
    }
}
