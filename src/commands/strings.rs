//! Strings: GET SET and friends, counters, ranges (Redis's t_string.c).

use bytes::Bytes;

use super::{eq_ic, parse_f64, parse_i64, CmdError, CmdResult, Ctx};
use crate::keyspace::notify::class;
use crate::keyspace::{Entry, Lookup, Ttl, Value, PREFETCH_BATCH};

/// Longest string Redis lets a command build (proto-max-bulk-len).
fn check_size(ctx: &Ctx<'_>, len: u64) -> CmdResult {
    let max = ctx.server.config.proto_max_bulk_len.load(std::sync::atomic::Ordering::Relaxed);
    if len > max {
        return Err(CmdError::TOO_BIG);
    }
    Ok(())
}

pub(super) fn string_of(entry: &Entry) -> Result<&[u8], CmdError> {
    entry.value.as_str().ok_or(CmdError::WRONGTYPE)
}

pub fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let out = &mut *ctx.out;
    ctx.server
        .keyspace
        .read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| match e {
            None => {
                out.null();
                Ok(())
            }
            Some(e) => {
                out.bulk(string_of(e)?);
                Ok(())
            }
        })
}

/// Expiry options shared by SET and GETEX: EX PX EXAT PXAT, converted to a unix ms deadline.
fn expire_at(now: i64, unit_ms: bool, absolute: bool, arg: &[u8], cmd: &str) -> Result<i64, CmdError> {
    let n = parse_i64(arg)?;
    if n <= 0 {
        return Err(CmdError::invalid_expire(cmd));
    }
    let ms = if unit_ms { Some(n) } else { n.checked_mul(1000) };
    let at = match ms {
        Some(ms) if absolute => Some(ms),
        Some(ms) => ms.checked_add(now),
        None => None,
    };
    at.ok_or_else(|| CmdError::invalid_expire(cmd))
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Cond {
    Always,
    Nx,
    Xx,
}

/// An expiry option of SET/GETEX (Redis's OBJ_EX ... flags): the same option may repeat, the last
/// value winning; two different ones conflict.
#[derive(PartialEq, Eq, Clone, Copy)]
enum ExpireOpt {
    Ex,
    Px,
    ExAt,
    PxAt,
    KeepTtl,
    Persist,
}

fn expire_opt(a: &[u8], with_value: bool) -> Option<ExpireOpt> {
    let opt = if eq_ic(a, "ex") {
        ExpireOpt::Ex
    } else if eq_ic(a, "px") {
        ExpireOpt::Px
    } else if eq_ic(a, "exat") {
        ExpireOpt::ExAt
    } else if eq_ic(a, "pxat") {
        ExpireOpt::PxAt
    } else if eq_ic(a, "keepttl") {
        ExpireOpt::KeepTtl
    } else if eq_ic(a, "persist") {
        ExpireOpt::Persist
    } else {
        return None;
    };
    let takes_value = !matches!(opt, ExpireOpt::KeepTtl | ExpireOpt::Persist);
    (takes_value == with_value || !takes_value).then_some(opt)
}

/// Records an expiry option; Err if a different one was already given.
fn note_expire<'a>(current: &mut Option<(ExpireOpt, Option<&'a Bytes>)>, opt: ExpireOpt, value: Option<&'a Bytes>) -> CmdResult {
    match current {
        Some((kind, _)) if *kind != opt => Err(CmdError::SYNTAX),
        _ => {
            *current = Some((opt, value));
            Ok(())
        }
    }
}

/// The deadline an expiry option sets (None for PERSIST/KEEPTTL, which are handled apart).
fn deadline(now: i64, opt: ExpireOpt, value: Option<&Bytes>, cmd: &str) -> Result<Option<i64>, CmdError> {
    let Some(value) = value else { return Ok(None) };
    let (unit_ms, absolute) = match opt {
        ExpireOpt::Ex => (false, false),
        ExpireOpt::Px => (true, false),
        ExpireOpt::ExAt => (false, true),
        ExpireOpt::PxAt => (true, true),
        ExpireOpt::KeepTtl | ExpireOpt::Persist => return Ok(None),
    };
    expire_at(now, unit_ms, absolute, value, cmd).map(Some)
}

pub fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut cond = Cond::Always;
    let mut get = false;
    let mut expire: Option<(ExpireOpt, Option<&Bytes>)> = None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        let next = args.get(i + 1);
        if eq_ic(a, "nx") && cond != Cond::Xx {
            cond = Cond::Nx;
        } else if eq_ic(a, "xx") && cond != Cond::Nx {
            cond = Cond::Xx;
        } else if eq_ic(a, "get") {
            get = true;
        } else if let Some(opt) = expire_opt(a, next.is_some()).filter(|o| *o != ExpireOpt::Persist) {
            if opt == ExpireOpt::KeepTtl {
                note_expire(&mut expire, opt, None)?;
            } else {
                note_expire(&mut expire, opt, next)?;
                i += 1;
            }
        } else {
            return Err(CmdError::SYNTAX);
        }
        i += 1;
    }
    let ttl = match expire {
        None => Ttl::Clear,
        Some((ExpireOpt::KeepTtl, _)) => Ttl::Keep,
        Some((opt, value)) => match deadline(ctx.now, opt, value, "set")? {
            Some(at) => Ttl::At(at),
            None => Ttl::Clear,
        },
    };
    let (key, value) = (&args[1], &args[2]);
    let now = ctx.now;
    let out = &mut *ctx.out;
    let ks = &ctx.server.keyspace;
    if get {
        // SET ... GET reads like GET (counts a hit or miss) before writing.
        ks.read(ctx.client.db, key, now, Lookup::Read, |e| -> CmdResult {
            if let Some(e) = e {
                string_of(e)?;
            }
            Ok(())
        })?;
    }
    let done = ks.write(ctx.client.db, key, now, |slot| {
        let old = slot.get();
        if get {
            out.bulk_or_null(old.and_then(|e| e.value.as_str()));
            // The old value is answered first: a new key's "new" event follows it, as in Redis.
            crate::pubsub::own_at(out.buf.len());
        }
        let allowed = match cond {
            Cond::Always => true,
            Cond::Nx => old.is_none(),
            Cond::Xx => old.is_some(),
        };
        if !allowed {
            if !get {
                out.null();
            }
            return Ok(false);
        }
        match ttl {
            Ttl::At(at) if at <= now => {
                // Already in the past: the key is set and gone at once, as in Redis.
                slot.remove();
                ks.stats.expired.incr();
            }
            _ => slot.set(Value::string(value), ttl),
        }
        Ok(true)
    })?;
    if done {
        // Redis's order: the events, then +OK (with GET the old value was answered first).
        ctx.notify(class::STRING, "set", key);
        if matches!(ttl, Ttl::At(_)) {
            ctx.notify(class::GENERIC, "expire", key);
        }
        if !get {
            ctx.out.ok();
        }
    }
    Ok(())
}

pub fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let out = &mut *ctx.out;
    let set = ctx.server.keyspace.write(ctx.client.db, &args[1], ctx.now, |slot| {
        if slot.exists() {
            out.int(0);
            false
        } else {
            slot.set(Value::string(&args[2]), Ttl::Clear);
            true
        }
    });
    if set {
        ctx.notify(class::STRING, "set", &args[1]);
        ctx.out.int(1);
    }
    Ok(())
}

fn setex_generic(ctx: &mut Ctx<'_>, args: &[Bytes], unit_ms: bool, name: &str) -> CmdResult {
    let at = expire_at(ctx.now, unit_ms, false, &args[2], name)?;
    ctx.server.keyspace.write(ctx.client.db, &args[1], ctx.now, |slot| {
        slot.set(Value::string(&args[3]), Ttl::At(at))
    });
    ctx.notify(class::STRING, "set", &args[1]);
    ctx.notify(class::GENERIC, "expire", &args[1]);
    ctx.out.ok();
    Ok(())
}

pub fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    setex_generic(ctx, args, false, "setex")
}

pub fn psetex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    setex_generic(ctx, args, true, "psetex")
}

pub fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // As Redis's getGenericCommand: a read lookup first (a hit or a miss, and a keymiss event).
    ctx.server
        .keyspace
        .read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| -> CmdResult {
            if let Some(e) = e {
                string_of(e)?;
            }
            Ok(())
        })?;
    let out = &mut *ctx.out;
    ctx.server.keyspace.write(ctx.client.db, &args[1], ctx.now, |slot| {
        let old = match slot.get() {
            Some(e) => Some(string_of(e)?),
            None => None,
        };
        out.bulk_or_null(old);
        // The old value is answered first: a new key's "new" event follows it, as in Redis.
        crate::pubsub::own_at(out.buf.len());
        slot.set(Value::string(&args[2]), Ttl::Clear);
        Ok::<_, CmdError>(())
    })?;
    ctx.notify(class::STRING, "set", &args[1]);
    Ok(())
}

pub fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let ks = &ctx.server.keyspace;
    let found = ks.read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| {
        e.map(|e| string_of(e).map(|_| ()))
    });
    match found {
        None => ctx.out.null(),
        Some(Err(e)) => return Err(e),
        Some(Ok(())) => {
            let out = &mut *ctx.out;
            ks.write(ctx.client.db, &args[1], ctx.now, |slot| {
                let e = slot.remove();
                out.bulk_or_null(e.as_ref().and_then(|e| e.value.as_str()));
            });
            ctx.notify(class::GENERIC, "del", &args[1]);
        }
    }
    Ok(())
}

pub fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut expire: Option<(ExpireOpt, Option<&Bytes>)> = None;
    let mut i = 2;
    while i < args.len() {
        let next = args.get(i + 1);
        match expire_opt(&args[i], next.is_some()).filter(|o| *o != ExpireOpt::KeepTtl) {
            Some(ExpireOpt::Persist) => note_expire(&mut expire, ExpireOpt::Persist, None)?,
            Some(opt) => {
                note_expire(&mut expire, opt, next)?;
                i += 1;
            }
            None => return Err(CmdError::SYNTAX),
        }
        i += 1;
    }
    let ks = &ctx.server.keyspace;
    let (db, now) = (ctx.client.db, ctx.now);
    // As Redis: the key is looked up before the time argument is parsed.
    let value: Option<Vec<u8>> = ks.read(db, &args[1], now, Lookup::Read, |e| {
        e.map(|e| string_of(e).map(|s| s.to_vec())).transpose()
    })?;
    let Some(value) = value else {
        ctx.out.null();
        return Ok(());
    };
    // None: leave the TTL; Some(None): PERSIST; Some(Some(at)): new deadline.
    let change: Option<Option<i64>> = match expire {
        None => None,
        Some((ExpireOpt::Persist, _)) => Some(None),
        Some((opt, v)) => Some(deadline(now, opt, v, "getex")?),
    };
    // As Redis: the value is answered before the TTL changes (and their events).
    ctx.out.bulk(&value);
    if let Some(change) = change {
        let event = ks.write(db, &args[1], now, |slot| match change {
            Some(at) if at <= now => {
                slot.remove();
                ks.stats.expired.incr();
                Some("del")
            }
            Some(_) => {
                slot.set_expire(change);
                Some("expire")
            }
            // As Redis: "persist" only when there was a TTL to remove.
            None if slot.get().is_some_and(|e| e.expire_at() != 0) => {
                slot.set_expire(change);
                Some("persist")
            }
            None => None,
        });
        if let Some(event) = event {
            ctx.notify(class::GENERIC, event, &args[1]);
        }
    }
    Ok(())
}

pub fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ctx.out.array(args.len() - 1);
    // Keys far apart in memory: start their loads together, as a pipelined batch's.
    for chunk in args[1..].chunks(PREFETCH_BATCH) {
        if chunk.len() > 1 {
            ctx.server.keyspace.prefetch(ctx.client.db, chunk);
        }
        for key in chunk {
            // A miss's keymiss event goes right before its null, as Redis writes them.
            crate::pubsub::own_at(ctx.out.buf.len());
            let out = &mut *ctx.out;
            ctx.server.keyspace.read(ctx.client.db, key, ctx.now, Lookup::Read, |e| {
                out.bulk_or_null(e.and_then(|e| e.value.as_str()));
            });
        }
    }
    Ok(())
}

pub fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::wrong_args("mset"));
    }
    for pairs in args[1..].chunks(2 * PREFETCH_BATCH) {
        if pairs.len() >= 4 {
            let keys: [&[u8]; PREFETCH_BATCH] = std::array::from_fn(|i| pairs.get(2 * i).map_or(&[][..], |k| &k[..]));
            ctx.server.keyspace.prefetch(ctx.client.db, &keys[..pairs.len() / 2]);
        }
        for pair in pairs.chunks_exact(2) {
            ctx.server.keyspace.write(ctx.client.db, &pair[0], ctx.now, |slot| {
                slot.set(Value::string(&pair[1]), Ttl::Clear)
            });
            ctx.notify(class::STRING, "set", &pair[0]);
        }
    }
    ctx.out.ok();
    Ok(())
}

pub fn msetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::wrong_args("msetnx"));
    }
    let ks = &ctx.server.keyspace;
    let any_exists = args[1..]
        .chunks_exact(2)
        .any(|pair| ks.write(ctx.client.db, &pair[0], ctx.now, |slot| slot.exists()));
    if any_exists {
        ctx.out.int(0);
        return Ok(());
    }
    for pair in args[1..].chunks_exact(2) {
        ks.write(ctx.client.db, &pair[0], ctx.now, |slot| {
            slot.set(Value::string(&pair[1]), Ttl::Clear)
        });
        ctx.notify(class::STRING, "set", &pair[0]);
    }
    ctx.out.int(1);
    Ok(())
}

pub fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let current = ctx.server.keyspace.write(ctx.client.db, &args[1], ctx.now, |slot| {
        slot.get().map(|e| string_of(e).map(|s| s.len())).transpose()
    })?;
    check_size(ctx, (current.unwrap_or(0) + args[2].len()) as u64)?;
    let len = ctx.server.keyspace.write(ctx.client.db, &args[1], ctx.now, |slot| {
        let Some(entry) = slot.get() else {
            slot.set(Value::string(&args[2]), Ttl::Clear);
            return Ok::<_, CmdError>(args[2].len());
        };
        string_of(entry)?;
        let entry = slot.get_mut().expect("exists");
        entry.set_raw_hint();
        let buf = entry.string_buf().ok_or(CmdError::WRONGTYPE)?;
        buf.extend_from_slice(&args[2]);
        Ok::<_, CmdError>(buf.len())
    })?;
    // Redis's order: the event, then the reply.
    ctx.notify(class::STRING, "append", &args[1]);
    ctx.out.int(len as i64);
    Ok(())
}

pub fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| {
        out.int(match e {
            Some(e) => string_of(e)?.len() as i64,
            None => 0,
        });
        Ok(())
    })
}

/// Redis's range clamping (GETRANGE, BITCOUNT, BITPOS): negative indexes count from the end,
/// then both are clamped into [0, total - 1]. The result may be empty (start > end).
pub(super) fn clamp_range(mut start: i64, mut end: i64, total: i64) -> (i64, i64) {
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    (start, end)
}

pub fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let start = parse_i64(&args[2])?;
    let end = parse_i64(&args[3])?;
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| {
        let s = match e {
            Some(e) => string_of(e)?,
            None => &[][..],
        };
        let len = s.len() as i64;
        if start < 0 && end < 0 && start > end {
            out.bulk(b"");
            return Ok(());
        }
        let (start, end) = clamp_range(start, end, len);
        if start > end || len == 0 {
            out.bulk(b"");
        } else {
            out.bulk(&s[start as usize..=end as usize]);
        }
        Ok(())
    })
}

pub fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let offset = parse_i64(&args[2])?;
    if offset < 0 {
        return Err(CmdError::msg("ERR offset is out of range"));
    }
    let value = &args[3];
    let offset = offset as usize;
    let out = &mut *ctx.out;
    let needed = (offset as u64).saturating_add(value.len() as u64);
    let mut new_len = 0;
    let changed = ctx.server.keyspace.write(ctx.client.db, &args[1], ctx.now, |slot| {
        let current = match slot.get() {
            Some(e) => Some(string_of(e)?.len()),
            None => None,
        };
        if value.is_empty() {
            out.int(current.unwrap_or(0) as i64);
            return Ok(false);
        }
        check_size_raw(needed)?;
        let write = |buf: &mut Vec<u8>| {
            if buf.len() < offset + value.len() {
                buf.resize(offset + value.len(), 0);
            }
            buf[offset..offset + value.len()].copy_from_slice(value);
            buf.len()
        };
        new_len = match current {
            None => {
                let mut buf = Vec::new();
                let len = write(&mut buf);
                slot.set(Value::StrBuf(buf), Ttl::Clear);
                len
            }
            Some(_) => {
                let entry = slot.get_mut().expect("exists");
                entry.set_raw_hint();
                write(entry.string_buf().ok_or(CmdError::WRONGTYPE)?)
            }
        };
        if let Some(e) = slot.get_mut() {
            e.set_raw_hint();
        }
        Ok(true)
    })?;
    if changed {
        // Redis's order: the event, then the new length.
        ctx.notify(class::STRING, "setrange", &args[1]);
        ctx.out.int(new_len as i64);
    }
    Ok(())
}

fn check_size_raw(len: u64) -> CmdResult {
    // SETRANGE's bound is Redis's fixed 512MB, independent of proto-max-bulk-len.
    if len > 512 * 1024 * 1024 {
        return Err(CmdError::TOO_BIG);
    }
    Ok(())
}

fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], delta: i64) -> CmdResult {
    let new = ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        let current = match slot.get() {
            Some(e) => {
                let s = string_of(e)?;
                if s.len() > 20 {
                    return Err(CmdError::NOT_INT);
                }
                parse_i64(s)?
            }
            None => 0,
        };
        let new = current.checked_add(delta).ok_or(CmdError::OVERFLOW)?;
        let mut buf = itoa::Buffer::new();
        slot.set(Value::string(buf.format(new).as_bytes()), Ttl::Keep);
        Ok::<_, CmdError>(new)
    })?;
    // Redis's order: the event, then the reply.
    ctx.notify(class::STRING, "incrby", key);
    ctx.out.int(new);
    Ok(())
}

pub fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], 1)
}

pub fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], -1)
}

pub fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let delta = parse_i64(&args[2])?;
    incr_by(ctx, &args[1], delta)
}

pub fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let delta = parse_i64(&args[2])?;
    if delta == i64::MIN {
        return Err(CmdError::msg("ERR decrement would overflow"));
    }
    incr_by(ctx, &args[1], -delta)
}

pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let delta = parse_f64(&args[2])?;
    let text = ctx.server.keyspace.write(ctx.client.db, &args[1], ctx.now, |slot| {
        let current = match slot.get() {
            Some(e) => parse_f64(string_of(e)?)?,
            None => 0.0,
        };
        if current.is_infinite() {
            return Err(CmdError::NOT_FLOAT);
        }
        let new = current + delta;
        if new.is_nan() || new.is_infinite() {
            return Err(CmdError::msg("ERR increment would produce NaN or Infinity"));
        }
        let text = format_human(new);
        slot.set(Value::string(text.as_bytes()), Ttl::Keep);
        Ok::<_, CmdError>(text)
    })?;
    // Redis's order: the event, then the reply.
    ctx.notify(class::STRING, "incrbyfloat", &args[1]);
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

/// Redis's LD_STR_HUMAN: fixed-point, no exponent, no trailing zeros. Rust's shortest
/// round-trip form gives the same text for the values people use.
pub(super) fn format_human(v: f64) -> String {
    let s = format!("{v}");
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest common subsequence, by
/// Redis's dynamic programming table (bounded by proto-max-bulk-len, as Redis bounds it).
pub fn lcs(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let ks = &ctx.server.keyspace;
    let (db, now) = (ctx.client.db, ctx.now);
    // Both keys are looked up (hits and misses counted) before either's type is checked.
    let read = |key: &[u8]| {
        ks.read(db, key, now, Lookup::Read, |e| match e {
            Some(e) => e.value.as_str().map(<[u8]>::to_vec),
            None => Some(Vec::new()),
        })
    };
    let (a, b) = match (read(&args[1]), read(&args[2])) {
        (Some(a), Some(b)) => (a, b),
        _ => return Err(CmdError::msg("ERR The specified keys must contain string values")),
    };
    let (mut get_len, mut get_idx, mut with_match_len, mut min_match_len) = (false, false, false, 0usize);
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        if eq_ic(opt, "idx") {
            get_idx = true;
        } else if eq_ic(opt, "len") {
            get_len = true;
        } else if eq_ic(opt, "withmatchlen") {
            with_match_len = true;
        } else if eq_ic(opt, "minmatchlen") && j + 1 < args.len() {
            min_match_len = parse_i64(&args[j + 1])?.max(0) as usize;
            j += 1;
        } else {
            return Err(CmdError::SYNTAX);
        }
        j += 1;
    }
    if get_idx && get_len {
        return Err(CmdError::msg("ERR If you want both the length and indexes, please just use IDX."));
    }
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return Err(CmdError::msg("ERR String too long for LCS"));
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen + 1) as u64 * (blen + 1) as u64;
    if cells * 4 > ctx.server.config.proto_max_bulk_len.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(CmdError::msg(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let mut table: Vec<u32> = Vec::new();
    if table.try_reserve_exact(cells as usize).is_err() {
        return Err(CmdError::msg("ERR Insufficient memory, failed allocating transient memory for LCS"));
    }
    table.resize(cells as usize, 0);
    let at = |i: usize, j: usize| i * (blen + 1) + j;
    for i in 1..=alen {
        for j in 1..=blen {
            table[at(i, j)] = if a[i - 1] == b[j - 1] {
                table[at(i - 1, j - 1)] + 1
            } else {
                table[at(i - 1, j)].max(table[at(i, j - 1)])
            };
        }
    }
    let total = table[at(alen, blen)] as usize;
    // Walk back from the end, building the string and the matching ranges (last ones first).
    let mut idx = total;
    let mut result = vec![0u8; total];
    let mut matches: Vec<[usize; 5]> = Vec::new();
    let unset = alen;
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (unset, 0, 0, 0);
    let (mut i, mut j) = (alen, blen);
    while (get_idx || !get_len) && i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == unset {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            (idx, i, j) = (idx - 1, i - 1, j - 1);
        } else {
            if table[at(i - 1, j)] > table[at(i, j - 1)] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = a_start != unset;
        }
        if emit {
            let len = a_end - a_start + 1;
            if min_match_len == 0 || len >= min_match_len {
                matches.push([a_start, a_end, b_start, b_end, len]);
            }
            a_start = unset;
        }
    }
    let out = &mut *ctx.out;
    if get_idx {
        out.map(2);
        out.bulk(b"matches");
        out.array(matches.len());
        for [a0, a1, b0, b1, len] in matches {
            out.array(2 + usize::from(with_match_len));
            out.array(2);
            out.int(a0 as i64);
            out.int(a1 as i64);
            out.array(2);
            out.int(b0 as i64);
            out.int(b1 as i64);
            if with_match_len {
                out.int(len as i64);
            }
        }
        out.bulk(b"len");
        out.int(total as i64);
    } else if get_len {
        out.int(total as i64);
    } else {
        out.bulk(&result);
    }
    Ok(())
}
