//! Hashes: HSET HGET and friends, counters, HRANDFIELD, HSCAN (Redis's t_hash.c).
//!
//! A hash lives in one key's entry (`Value::Hash`); every command reaches it through the keyspace's
//! read or write door like any other. A hash whose last field goes is deleted, as in Redis.

use bytes::Bytes;

use super::keys::parse_cursor;
use super::{parse_f64, parse_i64, parse_i64_strict, CmdError, CmdResult, Ctx};
use crate::keyspace::notify::class;
use crate::keyspace::{Entry, Hash, ListpackLimits, Lookup, Slot, Ttl, Value};
use crate::protocol::Reply;

/// The listpack thresholds as configured now.
fn limits(ctx: &Ctx<'_>) -> ListpackLimits {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &ctx.server.config;
    ListpackLimits {
        entries: c.hash_max_listpack_entries.load(Relaxed) as usize,
        value: c.hash_max_listpack_value.load(Relaxed) as usize,
    }
}

fn hash_of(entry: &Entry) -> Result<&Hash, CmdError> {
    entry.value.as_hash().ok_or(CmdError::WRONGTYPE)
}

/// Checks the key holds a hash (or nothing) before a write: Some(true) if a hash is there.
fn check_write(slot: &Slot<'_>) -> Result<bool, CmdError> {
    match slot.get() {
        None => Ok(false),
        Some(e) => hash_of(e).map(|_| true),
    }
}

/// The hash under the slot, created empty if missing (the caller then adds a field).
fn hash_mut<'s>(slot: &'s mut Slot<'_>) -> Result<&'s mut Hash, CmdError> {
    if !check_write(slot)? {
        slot.set(Value::Hash(Box::default()), Ttl::Clear);
    }
    let entry = slot.get_mut().expect("exists");
    entry.value.as_hash_mut().ok_or(CmdError::WRONGTYPE)
}

/// Runs `f` on the hash at `key` for reading; `missing` answers when there is no key.
fn read_hash(ctx: &mut Ctx<'_>, key: &[u8], missing: impl FnOnce(&mut Reply), f: impl FnOnce(&Hash, &mut Reply)) -> CmdResult {
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, key, ctx.now, Lookup::Read, |e| {
        match e {
            None => missing(out),
            Some(e) => f(hash_of(e)?, out),
        }
        Ok(())
    })
}

/// Sets the pairs, answers (HSET the count added, HMSET +OK), then raises "hset": Redis's order.
fn hset_generic(ctx: &mut Ctx<'_>, args: &[Bytes], name: &str) -> CmdResult {
    let lim = limits(ctx);
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::wrong_args(name));
    }
    let added = ctx.server.keyspace.write(ctx.client.db, &args[1], ctx.now, |slot| {
        let h = hash_mut(slot)?;
        let mut added = 0;
        for pair in args[2..].chunks_exact(2) {
            added += h.set(&pair[0], &pair[1], lim) as i64;
        }
        Ok::<_, CmdError>(added)
    })?;
    if name == "hset" {
        ctx.out.int(added);
    } else {
        ctx.out.ok();
    }
    ctx.notify(class::HASH, "hset", &args[1]);
    Ok(())
}

pub fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    hset_generic(ctx, args, "hset")
}

pub fn hmset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    hset_generic(ctx, args, "hmset")
}

pub fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let lim = limits(ctx);
    let set = ctx.server.keyspace.write(ctx.client.db, &args[1], ctx.now, |slot| {
        let exists = check_write(slot)?;
        if exists
            && slot
                .get()
                .and_then(|e| e.value.as_hash())
                .is_some_and(|h| h.get(&args[2]).is_some())
        {
            return Ok(false);
        }
        hash_mut(slot)?.set(&args[2], &args[3], lim);
        Ok::<_, CmdError>(true)
    })?;
    // Redis's order: the reply, then the event.
    ctx.out.int(set as i64);
    if set {
        ctx.notify(class::HASH, "hset", &args[1]);
    }
    Ok(())
}

pub fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let field = &args[2];
    read_hash(ctx, &args[1], |out| out.null(), |h, out| out.bulk_or_null(h.get(field)))
}

pub fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let fields = &args[2..];
    read_hash(
        ctx,
        &args[1],
        |out| {
            out.array(fields.len());
            fields.iter().for_each(|_| out.null());
        },
        |h, out| {
            out.array(fields.len());
            for f in fields {
                out.bulk_or_null(h.get(f));
            }
        },
    )
}

pub fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    read_hash(
        ctx,
        &args[1],
        |out| out.map(0),
        |h, out| {
            out.map(h.len());
            h.for_each(|f, v| {
                out.bulk(f);
                out.bulk(v);
            });
        },
    )
}

pub fn hkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    read_hash(
        ctx,
        &args[1],
        |out| out.array(0),
        |h, out| {
            out.array(h.len());
            h.for_each(|f, _| out.bulk(f));
        },
    )
}

pub fn hvals(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    read_hash(
        ctx,
        &args[1],
        |out| out.array(0),
        |h, out| {
            out.array(h.len());
            h.for_each(|_, v| out.bulk(v));
        },
    )
}

pub fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    read_hash(ctx, &args[1], |out| out.int(0), |h, out| out.int(h.len() as i64))
}

pub fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let field = &args[2];
    read_hash(ctx, &args[1], |out| out.int(0), |h, out| out.int(h.get(field).is_some() as i64))
}

pub fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let field = &args[2];
    read_hash(
        ctx,
        &args[1],
        |out| out.int(0),
        |h, out| out.int(h.get(field).map_or(0, |v| v.len()) as i64),
    )
}

pub fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    super::remove_members(ctx, args, Value::as_hash, Value::as_hash_mut, class::HASH, "hdel")
}

pub fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let lim = limits(ctx);
    let incr = parse_i64(&args[3])?;
    let field = &args[2];
    let new = ctx.server.keyspace.write(ctx.client.db, &args[1], ctx.now, |slot| {
        if check_write(slot)? {
            let h = slot.get().and_then(|e| e.value.as_hash()).expect("checked");
            let current = match h.get(field) {
                Some(v) => parse_i64_strict(v).ok_or_else(|| CmdError::msg("ERR hash value is not an integer"))?,
                None => 0,
            };
            let new = current.checked_add(incr).ok_or(CmdError::OVERFLOW)?;
            hash_mut(slot)?.set(field, itoa::Buffer::new().format(new).as_bytes(), lim);
            Ok(new)
        } else {
            hash_mut(slot)?.set(field, itoa::Buffer::new().format(incr).as_bytes(), lim);
            Ok::<_, CmdError>(incr)
        }
    })?;
    // Redis's order: the reply, then the event.
    ctx.out.int(new);
    ctx.notify(class::HASH, "hincrby", &args[1]);
    Ok(())
}

pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let lim = limits(ctx);
    let incr = parse_f64(&args[3])?;
    if incr.is_infinite() {
        return Err(CmdError::msg("ERR value is NaN or Infinity"));
    }
    let field = &args[2];
    let text = ctx.server.keyspace.write(ctx.client.db, &args[1], ctx.now, |slot| {
        let current = match slot.get() {
            Some(e) => match hash_of(e)?.get(field) {
                Some(v) => parse_f64(v).map_err(|_| CmdError::msg("ERR hash value is not a float"))?,
                None => 0.0,
            },
            None => 0.0,
        };
        let new = current + incr;
        if new.is_nan() || new.is_infinite() {
            return Err(CmdError::msg("ERR increment would produce NaN or Infinity"));
        }
        let text = super::strings::format_human(new);
        hash_mut(slot)?.set(field, text.as_bytes(), lim);
        Ok(text)
    })?;
    // Redis's order: the reply, then the event.
    ctx.out.bulk(text.as_bytes());
    ctx.notify(class::HASH, "hincrbyfloat", &args[1]);
    Ok(())
}

pub fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut rng = fastrand::Rng::new();
    if args.len() == 2 {
        return read_hash(
            ctx,
            &args[1],
            |out| out.null(),
            |h, out| out.bulk_or_null(h.random(&mut rng).map(|(f, _)| f)),
        );
    }
    let count = super::parse_random_count(args, Some("withvalues"))?;
    read_hash(
        ctx,
        &args[1],
        |out| out.array(0),
        |h, out| {
            super::reply_random_draws(
                out,
                &mut rng,
                count,
                h.len(),
                |rng| h.random(rng).expect("a hash is never empty"),
                // The whole hash answers in its own order.
                || {
                    let mut all = Vec::with_capacity(h.len());
                    h.for_each(|f, v| all.push((f, v)));
                    all
                },
                |out, v| out.bulk(v),
            )
        },
    )
}

pub fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| {
        let Some(e) = e else {
            super::keys::scan_reply_head(out, 0, 0);
            return Ok(());
        };
        let h = hash_of(e)?;
        let opts = super::keys::ScanOptions::parse(&args[3..], false)?;
        let count = opts.count;
        let keep = |f: &[u8]| opts.matches(f);
        let mut found: Vec<(&[u8], &[u8])> = Vec::new();
        let next = match h.table() {
            // A listpack answers whole, with cursor 0, as in Redis.
            None => {
                h.for_each(|f, v| {
                    if keep(f) {
                        found.push((f, v));
                    }
                });
                0
            }
            Some(d) => d.scan_batch(cursor, count, |n| {
                if keep(&n.key) {
                    found.push((&n.key, &n.value));
                }
            }),
        };
        super::keys::scan_reply_head(out, next, found.len() * 2);
        for (f, v) in found {
            out.bulk(f);
            out.bulk(v);
        }
        Ok(())
    })
}
