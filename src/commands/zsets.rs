//! Sorted sets: ZADD ZRANGE and friends (Redis's t_zset.c, command side).
//!
//! A sorted set lives in one key's entry (`Value::ZSet`, see keyspace/zset.rs); every command
//! reaches it through the keyspace's read or write door. A sorted set whose last member goes is
//! deleted, as in Redis. Argument errors come in Redis's order (options, then ranges, then the
//! key's type), with Redis's texts.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use bytes::Bytes;

use super::blocking::{parse_timeout, TimeoutReply};
use super::keys::parse_cursor;
use super::{eq_ic, parse_f64, parse_i64, CmdError, CmdResult, Ctx};
use crate::keyspace::notify::class;
use crate::keyspace::zset::{AddFlags, AddOutcome, LexBound, LexRange, Pos, ScoreRange};
use crate::keyspace::{Entry, ListpackLimits, Lookup, Slot, Ttl, Value, ZSet};
use crate::protocol::reply::format_double;
use crate::protocol::Reply;

/// The listpack thresholds as configured now.
pub(super) fn limits(ctx: &Ctx<'_>) -> ListpackLimits {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &ctx.server.config;
    ListpackLimits {
        entries: c.zset_max_listpack_entries.load(Relaxed) as usize,
        value: c.zset_max_listpack_value.load(Relaxed) as usize,
    }
}

pub(super) fn zset_of(entry: &Entry) -> Result<&ZSet, CmdError> {
    entry.value.as_zset().ok_or(CmdError::WRONGTYPE)
}

/// The sorted set under the slot for a write (None if there is no key).
fn existing<'s>(slot: &'s Slot<'_>) -> Result<Option<&'s ZSet>, CmdError> {
    slot.get().map(zset_of).transpose()
}

fn zset_mut<'s>(slot: &'s mut Slot<'_>) -> &'s mut ZSet {
    slot.get_mut()
        .and_then(|e| e.value.as_zset_mut())
        .expect("checked to be a sorted set")
}

/// Runs `f` on the sorted set at `key` for reading; `missing` answers when there is no key.
fn read_zset(ctx: &mut Ctx<'_>, key: &[u8], missing: impl FnOnce(&mut Reply), f: impl FnOnce(&ZSet, &mut Reply)) -> CmdResult {
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, key, ctx.now, Lookup::Read, |e| {
        match e {
            None => missing(out),
            Some(e) => f(zset_of(e)?, out),
        }
        Ok(())
    })
}

// ---- argument parsing ----

/// Redis's string2d (getDoubleFromObject): the whole argument is a float, no leading space, no
/// NaN, and no overflow or underflow to zero ("1e400" and "1e-400" are refused).
pub(super) fn parse_score_with(arg: &[u8], err: &CmdError) -> Result<f64, CmdError> {
    let v = parse_f64(arg).map_err(|_| err.clone())?;
    let text = std::str::from_utf8(arg).unwrap_or_default().to_ascii_lowercase();
    let t = text.trim_start_matches(['+', '-']);
    if v.is_infinite() && !t.starts_with("inf") {
        return Err(err.clone());
    }
    if v == 0.0 {
        let mantissa = match t.strip_prefix("0x") {
            Some(h) => h.split('p').next().unwrap_or_default(),
            None => t.split('e').next().unwrap_or_default(),
        };
        if mantissa.chars().any(|c| c.is_ascii_hexdigit() && c != '0') {
            return Err(err.clone());
        }
    }
    Ok(v)
}

fn parse_score(arg: &[u8]) -> Result<f64, CmdError> {
    parse_score_with(arg, &CmdError::NOT_FLOAT)
}

/// C's strtod over a whole C string (stopping at a NUL byte), as zslParseRange uses it: leading
/// white space is skipped, an empty string reads as 0, NaN is refused.
fn strtod_whole(b: &[u8]) -> Option<f64> {
    let b = &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())];
    if b.is_empty() {
        return Some(0.0);
    }
    let start = b.iter().position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    parse_f64(&b[start..]).ok()
}

fn range_item(arg: &[u8]) -> Option<(f64, bool)> {
    match arg.first() {
        Some(b'(') => strtod_whole(&arg[1..]).map(|v| (v, true)),
        _ => strtod_whole(arg).map(|v| (v, false)),
    }
}

/// zslParseRange: "1.5", "(1.5", "-inf", "+inf".
fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    let err = || CmdError::msg("ERR min or max is not a float");
    let (min, minex) = range_item(min).ok_or_else(err)?;
    let (max, maxex) = range_item(max).ok_or_else(err)?;
    Ok(ScoreRange { min, max, minex, maxex })
}

fn lex_item(arg: &[u8]) -> Option<LexBound> {
    // As C strings: "+" and "-" must end there (a NUL byte ends them too).
    let alone = arg.get(1).is_none_or(|&c| c == 0);
    match arg.first()? {
        b'+' if alone => Some(LexBound::Max),
        b'-' if alone => Some(LexBound::Min),
        b'(' => Some(LexBound::Excl(arg[1..].to_vec())),
        b'[' => Some(LexBound::Incl(arg[1..].to_vec())),
        _ => None,
    }
}

/// zslParseLexRange: "[a", "(a", "-", "+".
fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, CmdError> {
    let err = || CmdError::msg("ERR min or max not valid string range item");
    Ok(LexRange {
        min: lex_item(min).ok_or_else(err)?,
        max: lex_item(max).ok_or_else(err)?,
    })
}

// ---- replies ----

/// Members with optional scores: RESP2 flat, RESP3 [member, score] pairs.
fn reply_members<'a>(out: &mut Reply, items: impl ExactSizeIterator<Item = (&'a [u8], f64)>, withscores: bool) {
    let n = items.len();
    out.array(if withscores && !out.resp3 { n * 2 } else { n });
    for (m, s) in items {
        if withscores && out.resp3 {
            out.array(2);
        }
        out.bulk(m);
        if withscores {
            out.double(s);
        }
    }
}

// ---- ZADD / ZINCRBY ----

fn zadd_generic(ctx: &mut Ctx<'_>, args: &[Bytes], incr_cmd: bool) -> CmdResult {
    let mut flags = AddFlags {
        incr: incr_cmd,
        ..Default::default()
    };
    let mut ch = false;
    let mut idx = 2;
    while idx < args.len() {
        let o = &args[idx];
        if eq_ic(o, "nx") {
            flags.nx = true;
        } else if eq_ic(o, "xx") {
            flags.xx = true;
        } else if eq_ic(o, "ch") {
            ch = true;
        } else if eq_ic(o, "incr") {
            flags.incr = true;
        } else if eq_ic(o, "gt") {
            flags.gt = true;
        } else if eq_ic(o, "lt") {
            flags.lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let rest = &args[idx..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(CmdError::SYNTAX);
    }
    if flags.nx && flags.xx {
        return Err(CmdError::msg("ERR XX and NX options at the same time are not compatible"));
    }
    if ((flags.gt || flags.lt) && flags.nx) || (flags.gt && flags.lt) {
        return Err(CmdError::msg("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if flags.incr && rest.len() > 2 {
        return Err(CmdError::msg("ERR INCR option supports a single increment-element pair"));
    }
    let pairs: Vec<(f64, &Bytes)> = rest
        .chunks_exact(2)
        .map(|p| Ok((parse_score(&p[0])?, &p[1])))
        .collect::<Result<_, CmdError>>()?;
    let lim = limits(ctx);
    let key = &args[1];
    // (added, updated, processed, last score)
    let (added, updated, processed, score) = ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        let mut last = 0.0;
        let changes = match existing(slot)? {
            None if flags.xx => return Ok((0, 0, 0, 0.0)),
            None => true,
            Some(z) => {
                // Only INCR (one element) can produce NaN: refuse before touching anything.
                if pairs.iter().any(|(s, m)| z.probe(m, *s, flags) == AddOutcome::Nan) {
                    return Err(CmdError::msg("ERR resulting score is not a number (NaN)"));
                }
                // A command that changes nothing does not touch the key (WATCH stays clean).
                pairs
                    .iter()
                    .any(|(s, m)| matches!(z.probe(m, *s, flags), AddOutcome::Added(_) | AddOutcome::Updated(_)))
            }
        };
        if !changes {
            let z = existing(slot)?.expect("exists");
            let mut processed = 0;
            for (s, m) in &pairs {
                if let AddOutcome::Same(v) = z.probe(m, *s, flags) {
                    processed += 1;
                    last = v;
                }
            }
            return Ok((0, 0, processed, last));
        }
        if !slot.exists() {
            slot.set(Value::ZSet(Box::default()), Ttl::Clear);
        }
        let z = zset_mut(slot);
        let (mut added, mut updated, mut processed) = (0, 0, 0);
        for (s, m) in &pairs {
            match z.add(m, *s, flags, lim) {
                AddOutcome::Nan | AddOutcome::Nop => {}
                AddOutcome::Added(v) => {
                    added += 1;
                    processed += 1;
                    last = v;
                }
                AddOutcome::Updated(v) => {
                    updated += 1;
                    processed += 1;
                    last = v;
                }
                AddOutcome::Same(v) => {
                    processed += 1;
                    last = v;
                }
            }
        }
        Ok::<_, CmdError>((added, updated, processed, last))
    })?;
    if flags.incr {
        if processed > 0 {
            ctx.out.double(score);
        } else {
            ctx.out.null();
        }
    } else {
        ctx.out.int(if ch { added + updated } else { added });
    }
    // After the reply, as Redis's zaddGenericCommand.
    if added + updated > 0 {
        ctx.notify(class::ZSET, if flags.incr { "zincr" } else { "zadd" }, key);
    }
    Ok(())
}

pub fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zadd_generic(ctx, args, false)
}

pub fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zadd_generic(ctx, args, true)
}

// ---- ZREM / ZCARD / ZSCORE / ZMSCORE / ZRANK ----

pub fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    super::remove_members(ctx, args, Value::as_zset, Value::as_zset_mut, class::ZSET, "zrem")
}

pub fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    read_zset(ctx, &args[1], |out| out.int(0), |z, out| out.int(z.len() as i64))
}

pub fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let m = &args[2];
    read_zset(
        ctx,
        &args[1],
        |out| out.null(),
        |z, out| match z.score(m) {
            Some(s) => out.double(s),
            None => out.null(),
        },
    )
}

pub fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let members = &args[2..];
    read_zset(
        ctx,
        &args[1],
        |out| {
            out.array(members.len());
            members.iter().for_each(|_| out.null());
        },
        |z, out| {
            out.array(members.len());
            for m in members {
                match z.score(m) {
                    Some(s) => out.double(s),
                    None => out.null(),
                }
            }
        },
    )
}

fn zrank_generic(ctx: &mut Ctx<'_>, args: &[Bytes], reverse: bool) -> CmdResult {
    let m = &args[2];
    read_zset(
        ctx,
        &args[1],
        |out| out.null(),
        |z, out| match z.rank(m, reverse) {
            Some(r) => out.int(r as i64),
            None => out.null(),
        },
    )
}

pub fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrank_generic(ctx, args, false)
}

pub fn zrevrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrank_generic(ctx, args, true)
}

// ---- ZCOUNT / ZLEXCOUNT ----

pub fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let r = parse_score_range(&args[2], &args[3])?;
    read_zset(ctx, &args[1], |out| out.int(0), |z, out| out.int(z.count_in_range(&r) as i64))
}

pub fn zlexcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let r = parse_lex_range(&args[2], &args[3])?;
    read_zset(ctx, &args[1], |out| out.int(0), |z, out| out.int(z.count_in_lex_range(&r) as i64))
}

// ---- ZRANGE family ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rank,
    Score,
    Lex,
}

enum Spec {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

struct RangeQuery {
    spec: Spec,
    reverse: bool,
    offset: i64,
    limit: i64,
}

/// Whether an element is still inside the range, walking from its first end.
type InRange<'a> = Box<dyn Fn(&[u8], f64) -> bool + 'a>;

/// Elements taken out of a sorted set.
type Popped = Vec<(Box<[u8]>, f64)>;

/// The elements a range selects, in reply order (genericZrangeby{rank,score,lex}Command).
fn collect_range<'a>(z: &'a ZSet, q: &RangeQuery) -> Vec<(&'a [u8], f64)> {
    let mut found = Vec::new();
    let (start, check): (Option<Pos>, InRange<'_>) = match &q.spec {
        Spec::Rank(start, end) => {
            let llen = z.len() as i64;
            let mut start = if *start < 0 { llen + start } else { *start };
            let mut end = if *end < 0 { llen + end } else { *end };
            if start < 0 {
                start = 0;
            }
            if start > end || start >= llen {
                return found;
            }
            if end >= llen {
                end = llen - 1;
            }
            let n = (end - start + 1) as usize;
            let first = if q.reverse {
                z.at_rank((llen - 1 - start) as usize)
            } else {
                z.at_rank(start as usize)
            };
            found.extend(z.iter_from(first, q.reverse).take(n));
            return found;
        }
        Spec::Score(r) => {
            if q.offset > 0 && q.offset >= z.len() as i64 {
                return found;
            }
            let start = if q.reverse { z.last_in_range(r) } else { z.first_in_range(r) };
            let rev = q.reverse;
            (start, Box::new(move |_, s| if rev { r.gte_min(s) } else { r.lte_max(s) }))
        }
        Spec::Lex(r) => {
            let start = if q.reverse {
                z.last_in_lex_range(r)
            } else {
                z.first_in_lex_range(r)
            };
            let rev = q.reverse;
            (start, Box::new(move |m, _| if rev { r.gte_min(m) } else { r.lte_max(m) }))
        }
    };
    // A negative offset walks off the end, as Redis's `while (ln && offset--)` does.
    if q.offset < 0 {
        return found;
    }
    // Skipping `offset` elements is a jump by rank (O(log n)) rather than a walk.
    let start = match start {
        Some(p) if q.offset > 0 => {
            let r = z.rank_at(p) as i64;
            let target = if q.reverse { r - q.offset } else { r + q.offset };
            if target < 0 {
                None
            } else {
                z.at_rank(target as usize)
            }
        }
        other => other,
    };
    let mut it = z.iter_from(start, q.reverse);
    let mut limit = q.limit;
    while limit != 0 {
        limit -= 1;
        match it.next() {
            Some((m, s)) if check(m, s) => found.push((m, s)),
            _ => break,
        }
    }
    found
}

/// zrangeGenericCommand: ZRANGE, ZRANGESTORE and the older ZRANGEBYSCORE-style commands.
/// `key_idx` is the source key's position; `kind`/`rev` are fixed by the older commands.
fn zrange_generic(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    key_idx: usize,
    store: Option<&Bytes>,
    mut kind: Option<Kind>,
    mut rev: Option<bool>,
) -> CmdResult {
    let (mut minidx, mut maxidx) = (key_idx + 1, key_idx + 2);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = key_idx + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if store.is_none() && eq_ic(a, "withscores") {
            withscores = true;
        } else if eq_ic(a, "limit") && left >= 2 {
            offset = parse_i64(&args[j + 1])?;
            limit = parse_i64(&args[j + 2])?;
            j += 2;
        } else if rev.is_none() && eq_ic(a, "rev") {
            rev = Some(true);
        } else if kind.is_none() && eq_ic(a, "bylex") {
            kind = Some(Kind::Lex);
        } else if kind.is_none() && eq_ic(a, "byscore") {
            kind = Some(Kind::Score);
        } else {
            return Err(CmdError::SYNTAX);
        }
        j += 1;
    }
    let reverse = rev.unwrap_or(false);
    let kind = kind.unwrap_or(Kind::Rank);
    if limit != -1 && kind == Kind::Rank {
        return Err(CmdError::msg(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == Kind::Lex {
        return Err(CmdError::msg(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    if reverse && kind != Kind::Rank {
        std::mem::swap(&mut minidx, &mut maxidx);
    }
    let spec = match kind {
        Kind::Rank => Spec::Rank(parse_i64(&args[minidx])?, parse_i64(&args[maxidx])?),
        Kind::Score => Spec::Score(parse_score_range(&args[minidx], &args[maxidx])?),
        Kind::Lex => Spec::Lex(parse_lex_range(&args[minidx], &args[maxidx])?),
    };
    let q = RangeQuery {
        spec,
        reverse,
        offset,
        limit,
    };
    let key = &args[key_idx];
    match store {
        None => read_zset(
            ctx,
            key,
            |out| out.array(0),
            |z, out| {
                let found = collect_range(z, &q);
                reply_members(out, found.into_iter(), withscores);
            },
        ),
        Some(dst) => {
            let found: Vec<(Box<[u8]>, f64)> = ctx.server.keyspace.read(ctx.client.db, key, ctx.now, Lookup::Read, |e| match e {
                None => Ok(Vec::new()),
                Some(e) => Ok(collect_range(zset_of(e)?, &q).into_iter().map(|(m, s)| (m.into(), s)).collect()),
            })?;
            let lim = limits(ctx);
            let mut z = ZSet::new();
            for (m, s) in &found {
                z.insert_new(m, *s, lim);
            }
            store_result(ctx, dst, z, "zrangestore")
        }
    }
}

/// Stores a computed set at `dst` (replacing whatever was there, TTL cleared) and answers its
/// size; an empty result deletes `dst` instead.
fn store_result(ctx: &mut Ctx<'_>, dst: &[u8], z: ZSet, event: &str) -> CmdResult {
    let stored = replace_with(ctx, dst, z);
    ctx.out.int(stored.len as i64);
    stored.notify(ctx, dst, event);
    Ok(())
}

/// What [`replace_with`] did to the destination.
pub(super) struct Stored {
    pub len: usize,
    deleted: bool,
}

impl Stored {
    /// The keyspace event of a store: `event` for a set written, `del` for one an empty result
    /// removed, none when there was nothing to remove.
    pub(super) fn notify(&self, ctx: &Ctx<'_>, dst: &[u8], event: &str) {
        if self.len > 0 {
            ctx.notify(class::ZSET, event, dst);
        } else if self.deleted {
            ctx.notify(class::GENERIC, "del", dst);
        }
    }
}

/// `dst` becomes `z` (TTL cleared), or is deleted when `z` is empty: the write of every *STORE
/// that makes a sorted set (ZUNIONSTORE ... GEOSEARCHSTORE), which differ only in their events'
/// names and where those go relative to the reply.
pub(super) fn replace_with(ctx: &mut Ctx<'_>, dst: &[u8], z: ZSet) -> Stored {
    let len = z.len();
    let deleted = ctx.server.keyspace.write(ctx.client.db, dst, ctx.now, |slot| {
        if len == 0 {
            slot.remove().is_some()
        } else {
            slot.set(Value::ZSet(Box::new(z)), Ttl::Clear);
            false
        }
    });
    Stored { len, deleted }
}

pub fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, None, None)
}

pub fn zrangestore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 2, Some(&args[1]), None, None)
}

pub fn zrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, Some(Kind::Rank), Some(true))
}

pub fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, Some(Kind::Score), Some(false))
}

pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, Some(Kind::Score), Some(true))
}

pub fn zrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, Some(Kind::Lex), Some(false))
}

pub fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, Some(Kind::Lex), Some(true))
}

// ---- ZREMRANGEBY* ----

fn zremrange_generic(ctx: &mut Ctx<'_>, args: &[Bytes], kind: Kind) -> CmdResult {
    let spec = match kind {
        Kind::Rank => Spec::Rank(parse_i64(&args[2])?, parse_i64(&args[3])?),
        Kind::Score => Spec::Score(parse_score_range(&args[2], &args[3])?),
        Kind::Lex => Spec::Lex(parse_lex_range(&args[2], &args[3])?),
    };
    let key = &args[1];
    let (deleted, emptied) = ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        let Some(z) = existing(slot)? else {
            return Ok((0, false));
        };
        // Find what goes first: a command that removes nothing does not touch the key.
        let rank_range = match &spec {
            Spec::Rank(start, end) => {
                let llen = z.len() as i64;
                let start = if *start < 0 { (llen + start).max(0) } else { *start };
                let end = if *end < 0 { llen + end } else { *end };
                if start > end || start >= llen {
                    return Ok((0, false));
                }
                Some((start as usize, end.min(llen - 1) as usize))
            }
            Spec::Score(r) if z.count_in_range(r) == 0 => return Ok((0, false)),
            Spec::Lex(r) if z.first_in_lex_range(r).is_none() => return Ok((0, false)),
            _ => None,
        };
        let z = zset_mut(slot);
        let n = match (&spec, rank_range) {
            (_, Some((a, b))) => z.delete_range_by_rank(a, b),
            (Spec::Score(r), _) => z.delete_range_by_score(r),
            (Spec::Lex(r), _) => z.delete_range_by_lex(r),
            (Spec::Rank(..), None) => 0,
        };
        let emptied = z.is_empty();
        if emptied {
            slot.remove();
        }
        Ok::<_, CmdError>((n, emptied))
    })?;
    if deleted > 0 {
        let event = match kind {
            Kind::Rank => "zremrangebyrank",
            Kind::Score => "zremrangebyscore",
            Kind::Lex => "zremrangebylex",
        };
        ctx.notify(class::ZSET, event, key);
        if emptied {
            ctx.notify(class::GENERIC, "del", key);
        }
    }
    ctx.out.int(deleted as i64);
    Ok(())
}

pub fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zremrange_generic(ctx, args, Kind::Rank)
}

pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zremrange_generic(ctx, args, Kind::Score)
}

pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zremrange_generic(ctx, args, Kind::Lex)
}

// ---- ZPOPMIN / ZPOPMAX / BZPOP* / ZMPOP / BZMPOP ----

/// How a pop answers (genericZpopCommand's emitkey / use_nested_array / reply_nil_when_empty).
#[derive(Clone, Copy, PartialEq, Eq)]
enum PopReply {
    /// ZPOPMIN/ZPOPMAX: [m, s, ...], nested pairs in RESP3 when a count was given.
    Plain { nested: bool },
    /// BZPOPMIN/BZPOPMAX: [key, m, s].
    WithKey,
    /// ZMPOP/BZMPOP: [key, [[m, s], ...]].
    Multi,
}

/// Pops up to `count` elements from the first of `keys` that holds a sorted set. Returns None
/// when no key exists (the caller answers); a wrong type on the way is an error.
fn pop_first(ctx: &mut Ctx<'_>, keys: &[Bytes], max: bool, count: usize) -> Result<Option<(Bytes, Popped, bool)>, CmdError> {
    let server = ctx.server;
    let (ks, db, now) = (&server.keyspace, ctx.client.db, ctx.now);
    for key in keys {
        let popped = ks.write(db, key, now, |slot| {
            let Some(z) = existing(slot)? else {
                return Ok(None);
            };
            if z.is_empty() {
                return Ok(None);
            }
            let z = zset_mut(slot);
            let mut popped = Vec::with_capacity(count.min(z.len()));
            while popped.len() < count {
                match z.pop(max) {
                    Some(e) => popped.push(e),
                    None => break,
                }
            }
            let emptied = z.is_empty();
            if emptied {
                slot.remove();
            }
            Ok::<_, CmdError>(Some((popped, emptied)))
        })?;
        if let Some((popped, emptied)) = popped {
            return Ok(Some((key.clone(), popped, emptied)));
        }
    }
    Ok(None)
}

/// The reply, with the pop's events where Redis's genericZpopCommand raises them: after the
/// headers, before the elements; "del" at the end.
fn reply_popped(ctx: &mut Ctx<'_>, key: &[u8], popped: &Popped, emptied: bool, max: bool, how: PopReply) {
    let out = &mut *ctx.out;
    let nested = match how {
        PopReply::Plain { nested } => {
            out.array(if nested { popped.len() } else { popped.len() * 2 });
            nested
        }
        PopReply::WithKey => {
            out.array(popped.len() * 2 + 1);
            out.bulk(key);
            false
        }
        PopReply::Multi => {
            out.array(2);
            out.bulk(key);
            out.array(popped.len());
            true
        }
    };
    ctx.notify(class::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    for (m, s) in popped {
        if nested {
            ctx.out.array(2);
        }
        ctx.out.bulk(m);
        ctx.out.double(*s);
    }
    if emptied {
        ctx.notify(class::GENERIC, "del", key);
    }
}

fn zpop_minmax(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::SYNTAX);
    }
    let count = match args.get(2) {
        Some(a) => Some(super::parse_non_negative(a, &CmdError::NOT_POSITIVE)?),
        None => None,
    };
    let key = &args[1];
    if count == Some(0) {
        // Type check only: an empty array either way.
        ctx.server
            .keyspace
            .write(ctx.client.db, key, ctx.now, |slot| existing(slot).map(|_| ()))?;
        ctx.out.array(0);
        return Ok(());
    }
    let nested = ctx.out.resp3 && count.is_some();
    match pop_first(ctx, std::slice::from_ref(key), max, count.unwrap_or(1) as usize)? {
        Some((k, popped, emptied)) => reply_popped(ctx, &k, &popped, emptied, max, PopReply::Plain { nested }),
        None => ctx.out.array(0),
    }
    Ok(())
}

pub fn zpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zpop_minmax(ctx, args, false)
}

pub fn zpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zpop_minmax(ctx, args, true)
}

fn bzpop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> CmdResult {
    let deadline = parse_timeout(&args[args.len() - 1], ctx.now)?;
    let keys = &args[1..args.len() - 1];
    match pop_first(ctx, keys, max, 1)? {
        Some((k, popped, emptied)) => {
            reply_popped(ctx, &k, &popped, emptied, max, PopReply::WithKey);
            Ok(())
        }
        None => ctx.block(keys, deadline, TimeoutReply::NullArray),
    }
}

pub fn bzpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bzpop(ctx, args, false)
}

pub fn bzpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bzpop(ctx, args, true)
}

/// zmpopGenericCommand: `numkeys_idx` is 1 for ZMPOP, 2 for BZMPOP (after the timeout).
fn zmpop_generic(ctx: &mut Ctx<'_>, args: &[Bytes], numkeys_idx: usize, blocking: bool) -> CmdResult {
    let numkeys = super::parse_at_least_one(&args[numkeys_idx], "ERR numkeys should be greater than 0")?;
    let where_idx = (numkeys_idx as i64).saturating_add(numkeys).saturating_add(1);
    if where_idx >= args.len() as i64 {
        return Err(CmdError::SYNTAX);
    }
    let where_idx = where_idx as usize;
    let max = if eq_ic(&args[where_idx], "min") {
        false
    } else if eq_ic(&args[where_idx], "max") {
        true
    } else {
        return Err(CmdError::SYNTAX);
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && eq_ic(&args[j], "count") && j + 1 < args.len() {
            count = Some(super::parse_at_least_one(&args[j + 1], "ERR count should be greater than 0")?);
            j += 2;
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    let count = count.unwrap_or(1) as usize;
    let keys = &args[numkeys_idx + 1..where_idx];
    let deadline = if blocking { Some(parse_timeout(&args[1], ctx.now)?) } else { None };
    match pop_first(ctx, keys, max, count)? {
        Some((k, popped, emptied)) => {
            reply_popped(ctx, &k, &popped, emptied, max, PopReply::Multi);
            Ok(())
        }
        None => match deadline {
            Some(deadline) => ctx.block(keys, deadline, TimeoutReply::NullArray),
            None => {
                ctx.out.null_array();
                Ok(())
            }
        },
    }
}

pub fn zmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zmpop_generic(ctx, args, 1, false)
}

pub fn bzmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zmpop_generic(ctx, args, 2, true)
}

// ---- ZUNION / ZINTER / ZDIFF and their STORE forms, ZINTERCARD ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// zunionInterAggregate.
#[inline]
fn aggregate(target: &mut f64, val: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

type Members = Rc<Vec<(Box<[u8]>, f64)>>;

/// One input of a set operation: its members and scores (None for a missing key), and the
/// position of the first argument naming the same key (Redis compares the objects).
struct Source {
    members: Option<Members>,
    same_as: usize,
    weight: f64,
}

impl Source {
    fn len(&self) -> usize {
        self.members.as_ref().map_or(0, |m| m.len())
    }

    fn iter(&self) -> impl Iterator<Item = &(Box<[u8]>, f64)> {
        self.members.iter().flat_map(|m| m.iter())
    }
}

/// The members of one input key, highest score first.
///
/// Redis also takes a plain set here (every member scored 1); respite's sets are not merged into
/// this branch yet, so a set key answers WRONGTYPE until `Value::Set` gets an arm below.
fn read_source(ctx: &Ctx<'_>, key: &[u8]) -> Result<Option<Members>, CmdError> {
    ctx.server.keyspace.read(ctx.client.db, key, ctx.now, Lookup::Read, |e| match e {
        None => Ok(None),
        // Highest first, as Redis's zuiNext walks a sorted set.
        Some(e) => match &e.value {
            Value::ZSet(z) => Ok(Some(Rc::new(z.iter_from(z.last(), true).map(|(m, s)| (m.into(), s)).collect()))),
            // Plain sets take part with every score 1, as in Redis.
            Value::Set(set) => Ok(Some(Rc::new(set.iter().map(|m| (m.with_bytes(|b| b.into()), 1.0)).collect()))),
            _ => Err(CmdError::WRONGTYPE),
        },
    })
}

/// zunionInterDiffGenericCommand. `dst` is the STORE destination; `card_only` is ZINTERCARD.
fn set_op_generic(ctx: &mut Ctx<'_>, args: &[Bytes], numkeys_idx: usize, dst: Option<&Bytes>, op: SetOp, card_only: bool) -> CmdResult {
    let setnum = parse_i64(&args[numkeys_idx])?;
    let name = args[0].to_ascii_lowercase();
    if setnum < 1 {
        return Err(CmdError::msg(format!(
            "ERR at least 1 input key is needed for '{}' command",
            String::from_utf8_lossy(&name)
        )));
    }
    if setnum > (args.len() - (numkeys_idx + 1)) as i64 {
        return Err(CmdError::SYNTAX);
    }
    let setnum = setnum as usize;
    let keys = &args[numkeys_idx + 1..numkeys_idx + 1 + setnum];
    let mut srcs = Vec::with_capacity(setnum);
    for (i, k) in keys.iter().enumerate() {
        let same_as = keys[..i].iter().position(|o| o == k).unwrap_or(i);
        let members = if same_as == i {
            read_source(ctx, k)?
        } else {
            srcs.get(same_as).and_then(|s: &Source| s.members.clone())
        };
        srcs.push(Source {
            members,
            same_as,
            weight: 1.0,
        });
    }
    let mut how = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0i64;
    let mut j = numkeys_idx + 1 + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if op != SetOp::Diff && !card_only && remaining > setnum && eq_ic(a, "weights") {
            j += 1;
            let err = CmdError::msg("ERR weight value is not a float");
            for s in srcs.iter_mut() {
                s.weight = parse_score_with(&args[j], &err)?;
                j += 1;
            }
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && eq_ic(a, "aggregate") {
            let v = &args[j + 1];
            how = if eq_ic(v, "sum") {
                Aggregate::Sum
            } else if eq_ic(v, "min") {
                Aggregate::Min
            } else if eq_ic(v, "max") {
                Aggregate::Max
            } else {
                return Err(CmdError::SYNTAX);
            };
            j += 2;
        } else if dst.is_none() && !card_only && eq_ic(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && eq_ic(a, "limit") {
            limit = match super::parse_i64_strict(&args[j + 1]) {
                Some(n) if n >= 0 => n,
                _ => return Err(CmdError::msg("ERR LIMIT can't be negative")),
            };
            j += 2;
        } else {
            return Err(CmdError::SYNTAX);
        }
    }

    let mut result = ZSet::new();
    result.set_skiplist();
    let mut cardinality = 0i64;
    match op {
        SetOp::Inter | SetOp::Union => {
            // Smallest first (glibc's qsort is a stable merge sort).
            let mut order: Vec<usize> = (0..setnum).collect();
            order.sort_by_key(|&i| srcs[i].len());
            if op == SetOp::Inter {
                if srcs[order[0]].len() > 0 {
                    // Member -> score of each other input, built once per distinct key.
                    let mut maps: Vec<Option<HashMap<&[u8], f64>>> = (0..setnum).map(|_| None).collect();
                    for &i in &order[1..] {
                        let c = srcs[i].same_as;
                        if maps[c].is_none() {
                            maps[c] = Some(srcs[c].iter().map(|(m, s)| (&m[..], *s)).collect());
                        }
                    }
                    let first = &srcs[order[0]];
                    'outer: for (m, s) in first.iter() {
                        let mut score = first.weight * s;
                        if score.is_nan() {
                            score = 0.0;
                        }
                        for &i in &order[1..] {
                            let other = &srcs[i];
                            let value = if other.same_as == first.same_as {
                                s * other.weight
                            } else {
                                match maps[other.same_as].as_ref().and_then(|map| map.get(&m[..])) {
                                    Some(v) => v * other.weight,
                                    None => continue 'outer,
                                }
                            };
                            aggregate(&mut score, value, how);
                        }
                        if card_only {
                            cardinality += 1;
                            if limit > 0 && cardinality >= limit {
                                break;
                            }
                        } else {
                            result.insert_new(m, score, ListpackLimits { entries: 0, value: 0 });
                        }
                    }
                }
            } else {
                let mut acc: HashMap<&[u8], f64> = Default::default();
                let mut seen: Vec<&[u8]> = Vec::new();
                for &i in &order {
                    let s = &srcs[i];
                    for (m, sc) in s.iter() {
                        let mut score = s.weight * sc;
                        if score.is_nan() {
                            score = 0.0;
                        }
                        match acc.get_mut(&m[..]) {
                            Some(t) => aggregate(t, score, how),
                            None => {
                                acc.insert(m, score);
                                seen.push(m);
                            }
                        }
                    }
                }
                for m in seen {
                    result.insert_new(m, acc[m], ListpackLimits { entries: 0, value: 0 });
                }
            }
        }
        SetOp::Diff => {
            let first = &srcs[0];
            if first.len() > 0 && !srcs[1..].iter().any(|s| s.same_as == 0) {
                let others: HashSet<&[u8]> = srcs[1..].iter().flat_map(|s| s.iter().map(|(m, _)| &m[..])).collect();
                for (m, s) in first.iter() {
                    if !others.contains(&m[..]) {
                        result.insert_new(m, *s, ListpackLimits { entries: 0, value: 0 });
                    }
                }
            }
        }
    }

    if let Some(dst) = dst {
        result.convert_if_small(limits(ctx));
        let event = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        return store_result(ctx, dst, result, event);
    }
    if card_only {
        ctx.out.int(cardinality);
        return Ok(());
    }
    reply_members(ctx.out, ExactIter(result.iter(), result.len()), withscores);
    Ok(())
}

/// An iterator with a known length.
struct ExactIter<I>(I, usize);

impl<I: Iterator> Iterator for ExactIter<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let v = self.0.next();
        if v.is_some() {
            self.1 -= 1;
        }
        v
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<I: Iterator> ExactSizeIterator for ExactIter<I> {}

pub fn zunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    set_op_generic(ctx, args, 2, Some(&args[1]), SetOp::Union, false)
}

pub fn zinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    set_op_generic(ctx, args, 2, Some(&args[1]), SetOp::Inter, false)
}

pub fn zdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    set_op_generic(ctx, args, 2, Some(&args[1]), SetOp::Diff, false)
}

pub fn zunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    set_op_generic(ctx, args, 1, None, SetOp::Union, false)
}

pub fn zinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    set_op_generic(ctx, args, 1, None, SetOp::Inter, false)
}

pub fn zdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    set_op_generic(ctx, args, 1, None, SetOp::Diff, false)
}

pub fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    set_op_generic(ctx, args, 1, None, SetOp::Inter, true)
}

// ---- ZRANDMEMBER / ZSCAN ----

pub fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut rng = fastrand::Rng::new();
    if args.len() == 2 {
        return read_zset(
            ctx,
            &args[1],
            |out| out.null(),
            |z, out| out.bulk_or_null(z.random(&mut rng).map(|(m, _)| m)),
        );
    }
    let count = super::parse_random_count(args, Some("withscores"))?;
    read_zset(
        ctx,
        &args[1],
        |out| out.array(0),
        |z, out| {
            super::reply_random_draws(
                out,
                &mut rng,
                count,
                z.len(),
                |rng| z.random(rng).expect("a sorted set is never empty"),
                // The whole set answers highest first (Redis's zuiNext order).
                || z.iter_from(z.last(), true).collect(),
                |out, score| out.double(score),
            )
        },
    )
}

/// A score as a listpack stores it (zzlInsertAt): an integral value within +-2^62 as an integer,
/// anything else as %.17g. ZSCAN of a listpack answers this text.
fn listpack_score_text(s: f64) -> String {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if (-LIMIT..=LIMIT).contains(&s) && s == (s as i64) as f64 {
        itoa::Buffer::new().format(s as i64).to_string()
    } else {
        format_double(s)
    }
}

pub fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| {
        let Some(e) = e else {
            super::keys::scan_reply_head(out, 0, 0);
            return Ok(());
        };
        let z = zset_of(e)?;
        let opts = super::keys::ScanOptions::parse(&args[3..], false)?;
        let count = opts.count;
        let mut found: Vec<(&[u8], f64)> = Vec::new();
        let listpack = z.is_listpack();
        let next = match z.table() {
            // A listpack answers whole, in order, with cursor 0, as in Redis.
            None => {
                found.extend(z.iter().filter(|(m, _)| opts.matches(m)));
                0
            }
            Some(d) => d.scan_batch(cursor, count, |n| {
                if opts.matches(&n.key) {
                    found.push((&n.key, n.value));
                }
            }),
        };
        super::keys::scan_reply_head(out, next, found.len() * 2);
        for (m, s) in found {
            out.bulk(m);
            if listpack {
                out.bulk(listpack_score_text(s).as_bytes());
            } else {
                out.bulk(format_double(s).as_bytes());
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_parse_as_string2d() {
        assert_eq!(parse_score(b"1.5"), Ok(1.5));
        assert_eq!(parse_score(b"-inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Ok(f64::INFINITY));
        assert_eq!(parse_score(b"0x10"), Ok(16.0));
        assert_eq!(parse_score(b"0e5"), Ok(0.0));
        assert_eq!(parse_score(b"-0.000"), Ok(0.0));
        for bad in [&b"1e400"[..], b"-1e400", b"1e-400", b"", b" 1", b"1 ", b"nan", b"abc"] {
            assert!(parse_score(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn listpack_scores_print_as_integers_when_integral() {
        assert_eq!(listpack_score_text(1e17), "100000000000000000");
        assert_eq!(listpack_score_text(123456789012345678.0), "123456789012345680");
        assert_eq!(listpack_score_text(-0.0), "0");
        assert_eq!(listpack_score_text(1e20), "1e+20");
        assert_eq!(listpack_score_text(0.5), "0.5");
        assert_eq!(listpack_score_text(f64::INFINITY), "inf");
    }

    #[test]
    fn ranges_parse_as_zslparserange() {
        let r = parse_score_range(b"(1", b"+inf").unwrap();
        assert!(r.minex && !r.maxex && r.min == 1.0 && r.max == f64::INFINITY);
        let r = parse_score_range(b"", b"(").unwrap();
        assert!(r.min == 0.0 && r.max == 0.0 && r.maxex);
        assert!(parse_score_range(b"  1", b"1e400").is_ok());
        assert!(parse_score_range(b"1 ", b"2").is_err());
        assert!(parse_score_range(b"   ", b"2").is_err());
        assert!(parse_score_range(b"nan", b"2").is_err());
        assert!(parse_score_range(b"1\x00junk", b"2").is_ok());
        assert!(parse_lex_range(b"-", b"+").is_ok());
        assert!(parse_lex_range(b"[a", b"(b").is_ok());
        assert!(parse_lex_range(b"a", b"+").is_err());
        assert!(parse_lex_range(b"+a", b"+").is_err());
        assert!(parse_lex_range(b"", b"+").is_err());
    }
}
