//! TTLs: EXPIRE and friends with NX/XX/GT/LT, TTL/PTTL, EXPIRETIME, PERSIST (Redis's expire.c).

use bytes::Bytes;

use super::{eq_ic, parse_i64, CmdError, CmdResult, Ctx};
use crate::keyspace::Lookup;

#[derive(Default)]
struct Flags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_flags(args: &[Bytes]) -> Result<Flags, CmdError> {
    let mut f = Flags::default();
    for a in args {
        if eq_ic(a, "nx") {
            f.nx = true;
        } else if eq_ic(a, "xx") {
            f.xx = true;
        } else if eq_ic(a, "gt") {
            f.gt = true;
        } else if eq_ic(a, "lt") {
            f.lt = true;
        } else {
            return Err(CmdError::msg(format!("ERR Unsupported option {}", String::from_utf8_lossy(a))));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(CmdError::msg("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if f.gt && f.lt {
        return Err(CmdError::msg("ERR GT and LT options at the same time are not compatible"));
    }
    Ok(f)
}

fn expire_generic(ctx: &mut Ctx<'_>, args: &[Bytes], unit_ms: bool, relative: bool, name: &str) -> CmdResult {
    let flags = parse_flags(&args[3..])?;
    let mut when = parse_i64(&args[2])?;
    if !unit_ms {
        when = when.checked_mul(1000).ok_or_else(|| CmdError::invalid_expire(name))?;
    }
    if relative {
        when = when.checked_add(ctx.now).ok_or_else(|| CmdError::invalid_expire(name))?;
    }
    let now = ctx.now;
    let done = ctx.server.keyspace.write(ctx.client.db, &args[1], now, |slot| {
        let entry = slot.get()?;
        let current = entry.expire_at();
        let has = current != 0;
        if (flags.nx && has) || (flags.xx && !has) || (flags.gt && (!has || when <= current)) || (flags.lt && has && when >= current) {
            return None;
        }
        if when <= now {
            slot.remove();
            Some("del")
        } else {
            slot.set_expire(Some(when));
            Some("expire")
        }
    });
    // Redis's order: a deleted key's "del" before the reply, "expire" after it.
    match done {
        Some("expire") => {
            ctx.out.int(1);
            ctx.notify(crate::keyspace::notify::class::GENERIC, "expire", &args[1]);
        }
        Some(event) => {
            ctx.notify(crate::keyspace::notify::class::GENERIC, event, &args[1]);
            ctx.out.int(1);
        }
        None => ctx.out.int(0),
    }
    Ok(())
}

pub fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, false, true, "expire")
}

pub fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, true, true, "pexpire")
}

pub fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, false, false, "expireat")
}

pub fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, true, false, "pexpireat")
}

/// -2 for a missing key, -1 for no TTL, else what `f` makes of the deadline.
fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], f: impl FnOnce(i64, i64) -> i64) -> CmdResult {
    let now = ctx.now;
    let n = ctx.server.keyspace.read(ctx.client.db, key, now, Lookup::NoTouch, |e| match e {
        None => -2,
        Some(e) if e.expire_at() == 0 => -1,
        Some(e) => f(e.expire_at(), now),
    });
    ctx.out.int(n);
    Ok(())
}

pub fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], |at, now| ((at - now).max(0) + 500) / 1000)
}

pub fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], |at, now| (at - now).max(0))
}

pub fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], |at, _| (at + 500) / 1000)
}

pub fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], |at, _| at)
}

pub fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let done = ctx
        .server
        .keyspace
        .write(ctx.client.db, &args[1], ctx.now, |slot| match slot.get() {
            Some(e) if e.expire_at() != 0 => slot.set_expire(None),
            _ => false,
        });
    if done {
        ctx.notify(crate::keyspace::notify::class::GENERIC, "persist", &args[1]);
    }
    ctx.out.int(done as i64);
    Ok(())
}
