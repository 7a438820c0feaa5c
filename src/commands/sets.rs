//! Sets: SADD SREM SMEMBERS and friends, random members (SPOP, SRANDMEMBER), the algebra (SINTER,
//! SUNION, SDIFF, their STORE forms, SINTERCARD) and SSCAN (Redis 7.0's t_set.c).
//!
//! A set lives in one key's entry (`Value::Set`). Commands on several keys run with the world
//! lock held exclusively (EXCLUSIVE in the table), so they read their sources one at a time and
//! still see one state. A set whose last member goes is deleted, as in Redis.

use bytes::Bytes;

use super::keys::{parse_cursor, scan_reply_head, ScanOptions};
use super::{eq_ic, parse_i64_strict, CmdError, CmdResult, Ctx};
use crate::keyspace::notify::class;
use crate::keyspace::set::Member;
use crate::keyspace::{Entry, Lookup, Set, Slot, Ttl, Value};
use crate::protocol::Reply;

/// set-max-intset-entries as configured now.
fn max_intset(ctx: &Ctx<'_>) -> usize {
    ctx.server.config.set_max_intset_entries.load(std::sync::atomic::Ordering::Relaxed) as usize
}

fn set_of(entry: &Entry) -> Result<&Set, CmdError> {
    entry.value.as_set().ok_or(CmdError::WRONGTYPE)
}

fn set_in<'s>(slot: &'s Slot<'_>) -> Result<Option<&'s Set>, CmdError> {
    slot.get().map(set_of).transpose()
}

fn set_mut<'s>(slot: &'s mut Slot<'_>) -> &'s mut Set {
    slot.get_mut().and_then(|e| e.value.as_set_mut()).expect("checked to be a set")
}

fn reply_member(out: &mut Reply, m: Member<'_>) {
    match m {
        Member::Int(n) => out.bulk(itoa::Buffer::new().format(n).as_bytes()),
        Member::Str(s) => out.bulk(s),
    }
}

/// Runs `f` on the set at `key` for reading; `missing` answers when there is no key.
fn read_set(ctx: &mut Ctx<'_>, key: &[u8], missing: impl FnOnce(&mut Reply), f: impl FnOnce(&Set, &mut Reply)) -> CmdResult {
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, key, ctx.now, Lookup::Read, |e| {
        match e {
            None => missing(out),
            Some(e) => f(set_of(e)?, out),
        }
        Ok(())
    })
}

pub fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let max = max_intset(ctx);
    let key = &args[1];
    let added = ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        match set_in(slot)? {
            None => slot.set(Value::Set(Box::new(Set::for_member(&args[2]))), Ttl::Clear),
            // Nothing new: no modification (WATCH stays clean), as in Redis.
            Some(s) if args[2..].iter().all(|m| s.contains(m)) => return Ok(0),
            Some(_) => {}
        }
        let s = set_mut(slot);
        Ok::<_, CmdError>(args[2..].iter().filter(|m| s.add(m, max)).count())
    })?;
    if added > 0 {
        ctx.notify(class::SET, "sadd", key);
    }
    ctx.out.int(added as i64);
    Ok(())
}

pub fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    super::remove_members(ctx, args, Value::as_set, Value::as_set_mut, class::SET, "srem")
}

pub fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let m = &args[2];
    read_set(ctx, &args[1], |out| out.int(0), |s, out| out.int(s.contains(m) as i64))
}

pub fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let ms = &args[2..];
    read_set(
        ctx,
        &args[1],
        |out| {
            out.array(ms.len());
            ms.iter().for_each(|_| out.int(0));
        },
        |s, out| {
            out.array(ms.len());
            ms.iter().for_each(|m| out.int(s.contains(m) as i64));
        },
    )
}

pub fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    read_set(ctx, &args[1], |out| out.int(0), |s, out| out.int(s.len() as i64))
}

pub fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    read_set(
        ctx,
        &args[1],
        |out| out.set(0),
        |s, out| {
            out.set(s.len());
            s.iter().for_each(|m| reply_member(out, m));
        },
    )
}

pub fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let max = max_intset(ctx);
    let ks = &ctx.server.keyspace;
    let (db, now) = (ctx.client.db, ctx.now);
    let (src, dst, m) = (&args[1], &args[2], &args[3]);
    // Source missing: 0 whatever the destination holds, as Redis checks types only after.
    // Write lookups (Peek): no keyspace hit/miss counted, as Redis's lookupKeyWrite.
    let Some(in_src) = ks.read(db, src, now, Lookup::Peek, |e| {
        e.map(|e| set_of(e).map(|s| s.contains(m))).transpose()
    })?
    else {
        ctx.out.int(0);
        return Ok(());
    };
    ks.read(db, dst, now, Lookup::Peek, |e| e.map(set_of).transpose().map(|_| ()))?;
    if src == dst || !in_src {
        ctx.out.int(in_src as i64);
        return Ok(());
    }
    let emptied = ks.write(db, src, now, |slot| {
        let s = set_mut(slot);
        s.remove(m);
        let emptied = s.is_empty();
        if emptied {
            slot.remove();
        }
        emptied
    });
    ctx.notify(class::SET, "srem", src);
    if emptied {
        ctx.notify(class::GENERIC, "del", src);
    }
    let added = ks.write(db, dst, now, |slot| {
        if !slot.exists() {
            slot.set(Value::Set(Box::new(Set::for_member(m))), Ttl::Clear);
        }
        let s = slot.get().and_then(|e| e.value.as_set()).expect("a set");
        if s.contains(m) {
            // Already there: the destination is not modified (WATCH stays clean), as in Redis.
            return false;
        }
        set_mut(slot).add(m, max)
    });
    if added {
        ctx.notify(class::SET, "sadd", dst);
    }
    ctx.out.int(1);
    Ok(())
}

pub fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => {}
        3 => return spop_count(ctx, args),
        _ => return Err(CmdError::SYNTAX),
    }
    let key = &args[1];
    let mut rng = fastrand::Rng::new();
    let popped = ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        if set_in(slot)?.is_none() {
            return Ok(None);
        }
        let s = set_mut(slot);
        let m = s.pop_random(&mut rng).expect("a set is never empty");
        let emptied = s.is_empty();
        if emptied {
            slot.remove();
        }
        Ok::<_, CmdError>(Some((m, emptied)))
    })?;
    match popped {
        None => ctx.out.null(),
        Some((m, emptied)) => {
            ctx.notify(class::SET, "spop", key);
            ctx.out.bulk(&m);
            if emptied {
                ctx.notify(class::GENERIC, "del", key);
            }
        }
    }
    Ok(())
}

/// SPOP's strategies, as Redis's: few members asked of a big set are drawn one by one; otherwise
/// the members are shuffled partially.
const SPOP_MOVE_STRATEGY_MUL: u64 = 5;

fn spop_count(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let count = super::parse_non_negative(&args[2], &CmdError::NOT_POSITIVE)? as u64;
    let key = &args[1];
    let max = max_intset(ctx);
    let mut rng = fastrand::Rng::new();
    let out = &mut *ctx.out;
    let mark = out.buf.len();
    let emptied = ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        let Some(s) = set_in(slot)? else {
            out.set(0);
            return Ok(None);
        };
        if count == 0 {
            out.set(0);
            return Ok(None);
        }
        let size = s.len() as u64;
        if count >= size {
            // The whole set, as SUNION of it would answer (an intset in order).
            let mut whole = Set::new_intset();
            s.iter().for_each(|m| {
                whole.add_member(m, max);
            });
            out.set(whole.len());
            whole.iter().for_each(|m| reply_member(out, m));
            slot.remove();
            return Ok(Some(true));
        }
        let s = set_mut(slot);
        out.set(count as usize);
        let remaining = size - count;
        if remaining * SPOP_MOVE_STRATEGY_MUL > count {
            for _ in 0..count {
                let m = s.pop_random(&mut rng).expect("count < size");
                out.bulk(&m);
            }
        } else {
            // Redis draws the members to keep into a new set (created for the first of them, so
            // a table of integers can become an intset again) and answers with the rest.
            let mut all: Vec<Member<'_>> = s.iter().collect();
            let keep = remaining as usize;
            for i in 0..keep {
                let j = rng.usize(i..all.len());
                all.swap(i, j);
            }
            let mut kept = all[0].with_bytes(Set::for_member);
            for &m in &all[..keep] {
                kept.add_member(m, max);
            }
            for &m in &all[keep..] {
                reply_member(out, m);
            }
            drop(all);
            *s = kept;
        }
        Ok::<_, CmdError>(Some(false))
    })?;
    if let Some(emptied) = emptied {
        // Redis raises "spop" before it replies, "del" after.
        ctx.notify_before(mark, class::SET, "spop", key);
        if emptied {
            ctx.notify(class::GENERIC, "del", key);
        }
    }
    Ok(())
}

/// How much bigger than the count a set must be for SRANDMEMBER to draw at random rather than
/// shuffle (Redis's SRANDMEMBER_SUB_STRATEGY_MUL).
const SRANDMEMBER_SUB_STRATEGY_MUL: u64 = 3;

pub fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut rng = fastrand::Rng::new();
    match args.len() {
        2 => {
            return read_set(
                ctx,
                &args[1],
                |out| out.null(),
                |s, out| reply_member(out, s.random(&mut rng).expect("a set is never empty")),
            )
        }
        3 => {}
        _ => return Err(CmdError::SYNTAX),
    }
    let (count, _) = super::parse_random_count(args, None)?;
    read_set(
        ctx,
        &args[1],
        |out| out.array(0),
        |s, out| {
            let n = count.unsigned_abs();
            if n == 0 {
                out.array(0);
            } else if count < 0 {
                // Repeats allowed: n independent draws.
                out.array(n as usize);
                for _ in 0..n {
                    reply_member(out, s.random(&mut rng).expect("a set is never empty"));
                }
            } else if n >= s.len() as u64 {
                // The whole set, in its own order.
                out.array(s.len());
                s.iter().for_each(|m| reply_member(out, m));
            } else if n * SRANDMEMBER_SUB_STRATEGY_MUL > s.len() as u64 {
                // n distinct members of a set not much bigger: a partial shuffle.
                let mut all: Vec<Member<'_>> = s.iter().collect();
                out.array(n as usize);
                for i in 0..n as usize {
                    let j = rng.usize(i..all.len());
                    all.swap(i, j);
                    reply_member(out, all[i]);
                }
            } else {
                // n distinct members of a big set: draw until n are found.
                let mut picked = std::collections::HashSet::with_capacity(n as usize);
                out.array(n as usize);
                while (picked.len() as u64) < n {
                    let m = s.random(&mut rng).expect("a set is never empty");
                    if picked.insert(m) {
                        reply_member(out, m);
                    }
                }
            }
        },
    )
}

// ---- the algebra: SINTER SUNION SDIFF, their STORE forms, SINTERCARD ----

/// A source set, or None for a missing key; WRONGTYPE if any key holds another type (checked
/// for every key before anything is computed, as in Redis 7.0).
fn source_sizes(ctx: &Ctx<'_>, keys: &[Bytes]) -> Result<Vec<Option<usize>>, CmdError> {
    keys.iter()
        .map(|k| {
            ctx.server.keyspace.read(ctx.client.db, k, ctx.now, Lookup::Read, |e| {
                e.map(|e| set_of(e).map(Set::len)).transpose()
            })
        })
        .collect()
}

/// Runs `f` on a source known to be a set (the world lock is held, so it is still there).
fn with_source<R>(ctx: &Ctx<'_>, key: &[u8], f: impl FnOnce(&Set) -> R) -> R {
    ctx.server.keyspace.read(ctx.client.db, key, ctx.now, Lookup::Peek, |e| {
        f(e.and_then(|e| e.value.as_set()).expect("checked to be a set"))
    })
}

/// SINTER's members: the smallest set's members that every other set holds, in the smallest
/// set's order, at most `limit` of them (0: no limit).
fn intersect(ctx: &Ctx<'_>, keys: &[Bytes], limit: usize) -> Result<Option<Vec<Box<[u8]>>>, CmdError> {
    let sizes = source_sizes(ctx, keys)?;
    if sizes.iter().any(Option::is_none) {
        return Ok(None);
    }
    // Smallest first (a stable sort, as glibc's qsort merge sort is).
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let first = &keys[order[0]];
    let others: Vec<&Bytes> = order[1..].iter().map(|&i| &keys[i]).filter(|k| *k != first).collect();
    if others.is_empty() {
        let mut all: Vec<Box<[u8]>> = with_source(ctx, first, |s| {
            s.iter()
                .take(if limit == 0 { usize::MAX } else { limit })
                .map(Member::to_bytes)
                .collect()
        });
        all.shrink_to_fit();
        return Ok(Some(all));
    }
    // Candidates from the smallest set, narrowed by each other set in turn; the limit applies
    // at the end since a candidate is kept only if every set holds it.
    let mut candidates: Vec<Box<[u8]>> = with_source(ctx, first, |s| s.iter().map(Member::to_bytes).collect());
    for k in others {
        with_source(ctx, k, |s| candidates.retain(|m| s.contains(m)));
        if candidates.is_empty() {
            break;
        }
    }
    if limit != 0 {
        candidates.truncate(limit);
    }
    Ok(Some(candidates))
}

pub fn sinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let found = intersect(ctx, &args[1..], 0)?.unwrap_or_default();
    ctx.out.set(found.len());
    found.iter().for_each(|m| ctx.out.bulk(m));
    Ok(())
}

/// Stores `result` at `dst` (replacing whatever is there), or deletes `dst` when it is empty;
/// replies with the size and notifies as Redis's *STORE commands do.
fn store(ctx: &mut Ctx<'_>, dst: &[u8], result: Set, event: &str) {
    let n = result.len();
    if n > 0 {
        ctx.server.keyspace.write(ctx.client.db, dst, ctx.now, |slot| {
            slot.set(Value::Set(Box::new(result)), Ttl::Clear)
        });
        ctx.out.int(n as i64);
        ctx.notify(class::SET, event, dst);
    } else {
        ctx.out.int(0);
        let deleted = ctx
            .server
            .keyspace
            .write(ctx.client.db, dst, ctx.now, |slot| slot.remove().is_some());
        if deleted {
            ctx.notify(class::GENERIC, "del", dst);
        }
    }
}

pub fn sinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let max = max_intset(ctx);
    let found = intersect(ctx, &args[2..], 0)?.unwrap_or_default();
    let mut result = Set::new_intset();
    for m in &found {
        result.add(m, max);
    }
    store(ctx, &args[1], result, "sinterstore");
    Ok(())
}

pub fn sintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let numkeys = match parse_i64_strict(&args[1]) {
        Some(n) if n > 0 => n as u64,
        _ => return Err(CmdError::msg("ERR numkeys should be greater than 0")),
    };
    if numkeys > (args.len() - 2) as u64 {
        return Err(CmdError::msg("ERR Number of keys can't be greater than number of args"));
    }
    let keys_end = 2 + numkeys as usize;
    let mut limit = 0usize;
    let mut i = keys_end;
    while i < args.len() {
        if eq_ic(&args[i], "limit") && i + 1 < args.len() {
            limit = match parse_i64_strict(&args[i + 1]) {
                Some(n) if n >= 0 => n as usize,
                _ => return Err(CmdError::msg("ERR LIMIT can't be negative")),
            };
            i += 2;
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    let n = intersect(ctx, &args[2..keys_end], limit)?.map_or(0, |v| v.len());
    ctx.out.int(n as i64);
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Diff,
}

/// SUNION / SDIFF as Redis computes them, into a new set that starts as an intset (so its
/// encoding, and the order it answers in, follow Redis's, including which of the two diff
/// algorithms ran).
fn union_diff(ctx: &Ctx<'_>, keys: &[Bytes], op: SetOp) -> Result<Set, CmdError> {
    let max = max_intset(ctx);
    let sizes = source_sizes(ctx, keys)?;
    let mut result = Set::new_intset();
    match op {
        SetOp::Union => {
            for (k, size) in keys.iter().zip(&sizes) {
                if size.is_some() {
                    with_source(ctx, k, |s| {
                        s.iter().for_each(|m| {
                            result.add_member(m, max);
                        })
                    });
                }
            }
        }
        SetOp::Diff => {
            let Some(first_size) = sizes[0] else {
                return Ok(result);
            };
            let first = &keys[0];
            if keys[1..].iter().zip(&sizes[1..]).any(|(k, s)| s.is_some() && k == first) {
                // The first set minus itself.
                return Ok(result);
            }
            let present: Vec<(&Bytes, usize)> = keys[1..].iter().zip(&sizes[1..]).filter_map(|(k, s)| s.map(|s| (k, s))).collect();
            // Redis's choice: algorithm 1 (test each member of the first set against the
            // others) unless adding everything and removing is cheaper (algorithm 2).
            let one = (first_size * (present.len() + 1)) / 2;
            let two = first_size + present.iter().map(|(_, s)| s).sum::<usize>();
            if one <= two {
                let mut candidates: Vec<Box<[u8]>> = with_source(ctx, first, |s| s.iter().map(Member::to_bytes).collect());
                for (k, _) in &present {
                    with_source(ctx, k, |s| candidates.retain(|m| !s.contains(m)));
                }
                for m in &candidates {
                    result.add(m, max);
                }
            } else {
                with_source(ctx, first, |s| {
                    s.iter().for_each(|m| {
                        result.add_member(m, max);
                    })
                });
                for (k, _) in &present {
                    if result.is_empty() {
                        break;
                    }
                    with_source(ctx, k, |s| {
                        s.iter().for_each(|m| {
                            result.remove_member(m);
                        })
                    });
                }
            }
        }
    }
    Ok(result)
}

fn reply_set(out: &mut Reply, s: &Set) {
    out.set(s.len());
    s.iter().for_each(|m| reply_member(out, m));
}

pub fn sunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let r = union_diff(ctx, &args[1..], SetOp::Union)?;
    reply_set(ctx.out, &r);
    Ok(())
}

pub fn sdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let r = union_diff(ctx, &args[1..], SetOp::Diff)?;
    reply_set(ctx.out, &r);
    Ok(())
}

pub fn sunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let r = union_diff(ctx, &args[2..], SetOp::Union)?;
    store(ctx, &args[1], r, "sunionstore");
    Ok(())
}

pub fn sdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let r = union_diff(ctx, &args[2..], SetOp::Diff)?;
    store(ctx, &args[1], r, "sdiffstore");
    Ok(())
}

pub fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| {
        let Some(e) = e else {
            scan_reply_head(out, 0, 0);
            return Ok(());
        };
        let s = set_of(e)?;
        let opts = ScanOptions::parse(&args[3..], false)?;
        let count = opts.count;
        let mut found: Vec<Member<'_>> = Vec::new();
        let next = match s.table() {
            // An intset answers whole, with cursor 0, as in Redis.
            None => {
                found.extend(s.iter().filter(|m| m.with_bytes(|b| opts.matches(b))));
                0
            }
            Some(d) => d.scan_batch(cursor, count, |n| {
                if opts.matches(&n.key) {
                    found.push(Member::Str(&n.key));
                }
            }),
        };
        scan_reply_head(out, next, found.len());
        found.into_iter().for_each(|m| reply_member(out, m));
        Ok(())
    })
}
