//! The keyspace family: DEL, EXISTS, TYPE, KEYS, SCAN, RENAME, COPY, MOVE, SWAPDB, FLUSH*, OBJECT,
//! MEMORY USAGE (Redis's db.c and object.c).

use bytes::Bytes;

use super::{eq_ic, parse_db, parse_i64, sub_arity, CmdError, CmdResult, Ctx};
use crate::config::EvictionPolicy;
use crate::glob::glob_match;
use crate::keyspace::notify::class;
use crate::keyspace::{Entry, Lookup, Ttl, Value};

pub fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for key in &args[1..] {
        if ctx
            .server
            .keyspace
            .write(ctx.client.db, key, ctx.now, |slot| slot.remove())
            .is_some()
        {
            ctx.notify(class::GENERIC, "del", key);
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

pub fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = args[1..]
        .iter()
        .filter(|k| {
            ctx.server
                .keyspace
                .read(ctx.client.db, k, ctx.now, Lookup::NoTouch, |e| e.is_some())
        })
        .count();
    ctx.out.int(n as i64);
    Ok(())
}

pub fn touch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = args[1..]
        .iter()
        .filter(|k| ctx.server.keyspace.read(ctx.client.db, k, ctx.now, Lookup::Read, |e| e.is_some()))
        .count();
    ctx.out.int(n as i64);
    Ok(())
}

pub fn type_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let t = ctx.server.keyspace.read(ctx.client.db, &args[1], ctx.now, Lookup::NoTouch, |e| {
        e.map_or("none", |e| e.value.type_name())
    });
    ctx.out.simple(t);
    Ok(())
}

pub fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let pattern = &args[1];
    let all = &pattern[..] == b"*";
    let mut found: Vec<Box<[u8]>> = Vec::new();
    ctx.server.keyspace.for_each_key(ctx.client.db, ctx.now, |k, _| {
        if all || glob_match(pattern, k, false) {
            found.push(k.into());
        }
    });
    ctx.out.array(found.len());
    for k in &found {
        ctx.out.bulk(k);
    }
    Ok(())
}

/// Parses a SCAN-family cursor: an unsigned 64-bit decimal.
/// Parses a SCAN-family cursor as Redis does, with strtoul: an optional sign ("-1" wraps to the
/// largest cursor), decimal digits, nothing else; "" is cursor 0.
pub fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::msg("ERR invalid cursor");
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(invalid());
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((d - b'0') as u64))
            .ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// The head of every SCAN-family reply: `[next cursor, [<elements> follow]]`.
pub fn scan_reply_head(out: &mut crate::protocol::Reply, next: u64, elements: usize) {
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(elements);
}

/// The options of the SCAN family: COUNT n, MATCH pattern, and for SCAN itself TYPE t.
pub struct ScanOptions<'a> {
    pub count: usize,
    pattern: Option<&'a [u8]>,
    type_filter: Option<&'a [u8]>,
}

impl<'a> ScanOptions<'a> {
    /// Parses `options` (the arguments after the cursor); TYPE is taken only when `with_type`.
    pub fn parse(options: &'a [Bytes], with_type: bool) -> Result<Self, CmdError> {
        let mut o = ScanOptions {
            count: 10,
            pattern: None,
            type_filter: None,
        };
        for pair in options.chunks(2) {
            let [name, value] = pair else {
                return Err(CmdError::SYNTAX);
            };
            if eq_ic(name, "count") {
                let n = parse_i64(value)?;
                if n < 1 {
                    return Err(CmdError::SYNTAX);
                }
                o.count = n as usize;
            } else if eq_ic(name, "match") {
                o.pattern = Some(value).filter(|p| &p[..] != b"*").map(|p| &p[..]);
            } else if with_type && eq_ic(name, "type") {
                o.type_filter = Some(value);
            } else {
                return Err(CmdError::SYNTAX);
            }
        }
        Ok(o)
    }

    /// Whether a key (or field, member) passes MATCH.
    pub fn matches(&self, name: &[u8]) -> bool {
        self.pattern.is_none_or(|p| glob_match(p, name, false))
    }

    fn type_matches(&self, type_name: &str) -> bool {
        self.type_filter.is_none_or(|t| t.eq_ignore_ascii_case(type_name.as_bytes()))
    }
}

pub fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[1])?;
    let opts = ScanOptions::parse(&args[2..], true)?;
    let mut found: Vec<Box<[u8]>> = Vec::new();
    let next = ctx.server.keyspace.scan(ctx.client.db, cursor, opts.count, ctx.now, |k, e| {
        let keep = opts.matches(k) && opts.type_matches(e.value.type_name());
        if keep {
            found.push(k.into());
        }
    });
    scan_reply_head(ctx.out, next, found.len());
    for k in &found {
        ctx.out.bulk(k);
    }
    Ok(())
}

pub fn randomkey(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let k = ctx.server.keyspace.random_key(ctx.client.db, ctx.now);
    ctx.out.bulk_or_null(k.as_deref());
    Ok(())
}

/// A copy of an entry's value and TTL, to re-insert elsewhere (RENAME, COPY, MOVE).
fn clone_value(e: &Entry) -> (Value, i64) {
    let v = match &e.value {
        Value::Str(b) => Value::Str(b.clone()),
        Value::StrBuf(v) => Value::Str(v.as_slice().into()),
        Value::Hash(h) => Value::Hash(Box::new(h.deep_clone())),
        Value::Set(s) => Value::Set(Box::new(s.deep_clone())),
        Value::List(l) => Value::List(l.clone()),
        Value::ZSet(z) => Value::ZSet(Box::new(z.deep_clone())),
    };
    (v, e.expire_at())
}

fn ttl_of(expire_at: i64) -> Ttl {
    if expire_at == 0 {
        Ttl::Clear
    } else {
        Ttl::At(expire_at)
    }
}

fn rename_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> CmdResult {
    let ks = &ctx.server.keyspace;
    let (db, now) = (ctx.client.db, ctx.now);
    let (src, dst) = (&args[1], &args[2]);
    let exists = ks.write(db, src, now, |slot| slot.exists());
    if !exists {
        return Err(CmdError::NO_SUCH_KEY);
    }
    if src == dst {
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return Ok(());
    }
    if nx && ks.write(db, dst, now, |slot| slot.exists()) {
        ctx.out.int(0);
        return Ok(());
    }
    let entry = ks.write(db, src, now, |slot| slot.remove()).expect("checked above");
    let expire = entry.expire_at();
    ks.write(db, dst, now, |slot| {
        slot.remove();
        slot.set(entry.value, ttl_of(expire));
    });
    ctx.notify(class::GENERIC, "rename_from", src);
    ctx.notify(class::GENERIC, "rename_to", dst);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

pub fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, false)
}

pub fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, true)
}

pub fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut dst_db = ctx.client.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if eq_ic(&args[i], "replace") {
            replace = true;
        } else if eq_ic(&args[i], "db") && i + 1 < args.len() {
            dst_db = parse_db(ctx.server, &args[i + 1])?;
            if ctx.server.config.cluster_enabled && dst_db != ctx.client.db {
                return Err(CmdError::msg("ERR Copying to another database is not allowed in cluster mode"));
            }
            i += 1;
        } else {
            return Err(CmdError::SYNTAX);
        }
        i += 1;
    }
    let ks = &ctx.server.keyspace;
    let (src_db, now) = (ctx.client.db, ctx.now);
    if src_db == dst_db && args[1] == args[2] {
        return Err(CmdError::SAME_OBJECT);
    }
    // As Redis's copyCommand (lookupKeyRead): a hit or a miss, and a keymiss event.
    let Some((value, expire)) = ks.read(src_db, &args[1], now, Lookup::Read, |e| e.map(clone_value)) else {
        ctx.out.int(0);
        return Ok(());
    };
    let copied = ks.write(dst_db, &args[2], now, |slot| {
        if slot.exists() {
            if !replace {
                return false;
            }
            slot.remove();
        }
        slot.set(value, ttl_of(expire));
        true
    });
    if copied {
        ks.notifier.notify(class::GENERIC, "copy_to", dst_db, &args[2]);
    }
    ctx.out.int(copied as i64);
    Ok(())
}

pub fn move_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.server.config.cluster_enabled {
        return Err(super::cluster::not_in_cluster_mode("MOVE"));
    }
    let dst_db = parse_db(ctx.server, &args[2])?;
    let ks = &ctx.server.keyspace;
    let (src_db, now) = (ctx.client.db, ctx.now);
    if src_db == dst_db {
        return Err(CmdError::SAME_OBJECT);
    }
    if !ks.write(src_db, &args[1], now, |slot| slot.exists()) || ks.write(dst_db, &args[1], now, |slot| slot.exists()) {
        ctx.out.int(0);
        return Ok(());
    }
    let entry = ks.write(src_db, &args[1], now, |slot| slot.remove()).expect("checked above");
    let expire = entry.expire_at();
    ks.write(dst_db, &args[1], now, |slot| slot.set(entry.value, ttl_of(expire)));
    ks.notifier.notify(class::GENERIC, "move_from", src_db, &args[1]);
    ks.notifier.notify(class::GENERIC, "move_to", dst_db, &args[1]);
    ctx.out.int(1);
    Ok(())
}

pub fn swapdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.server.config.cluster_enabled {
        return Err(super::cluster::not_in_cluster_mode("SWAPDB"));
    }
    let index = |a: &[u8]| super::parse_i64_strict(a).filter(|n| *n >= i32::MIN as i64 && *n <= i32::MAX as i64);
    let a = index(&args[1]).ok_or_else(|| CmdError::msg("ERR invalid first DB index"))?;
    let b = index(&args[2]).ok_or_else(|| CmdError::msg("ERR invalid second DB index"))?;
    let n = ctx.server.keyspace.databases() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Err(CmdError::DB_RANGE);
    }
    ctx.server.keyspace.swap_db(a as usize, b as usize);
    ctx.out.ok();
    Ok(())
}

pub fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let n = ctx.server.keyspace.dbsize(ctx.client.db);
    ctx.out.int(n as i64);
    Ok(())
}

fn flush_mode(args: &[Bytes]) -> CmdResult {
    match args.len() {
        1 => Ok(()),
        2 if eq_ic(&args[1], "async") || eq_ic(&args[1], "sync") => Ok(()),
        _ => Err(CmdError::SYNTAX),
    }
}

pub fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    flush_mode(args)?;
    ctx.server.keyspace.flush_db(ctx.client.db);
    ctx.out.ok();
    Ok(())
}

pub fn flushall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    flush_mode(args)?;
    ctx.server.keyspace.flush_all();
    ctx.out.ok();
    Ok(())
}

pub fn object(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "help") {
        return super::docs::help(ctx, "object");
    }
    let name = if eq_ic(sub, "encoding") {
        "object|encoding"
    } else if eq_ic(sub, "idletime") {
        "object|idletime"
    } else if eq_ic(sub, "freq") {
        "object|freq"
    } else if eq_ic(sub, "refcount") {
        "object|refcount"
    } else {
        return Err(CmdError::unknown_subcommand(sub, "object"));
    };
    sub_arity(args, 3, name)?;
    let policy = ctx.server.config.policy();
    let lfu = matches!(policy, EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu);
    let lru_now = ctx.server.keyspace.lru_clock();
    enum Answer {
        Text(&'static str),
        Int(i64),
    }
    let ks = &ctx.server.keyspace;
    let answer = ks.read(ctx.client.db, &args[2], ctx.now, Lookup::NoNotify, |e| {
        let e = e?;
        Some(match name {
            "object|encoding" => Ok(Answer::Text(e.encoding())),
            "object|idletime" if lfu => Err(CmdError::msg("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")),
            "object|idletime" => Ok(Answer::Int((lru_now.wrapping_sub(e.lru()) / 1000) as i64)),
            "object|freq" if !lfu => Err(CmdError::msg("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")),
            "object|freq" => Ok(Answer::Int(ks.lfu_frequency(e) as i64)),
            _ => Ok(Answer::Int(refcount(e))),
        })
    });
    match answer {
        None => ctx.out.null(),
        Some(Err(e)) => return Err(e),
        Some(Ok(Answer::Text(t))) => ctx.out.bulk(t.as_bytes()),
        Some(Ok(Answer::Int(n))) => ctx.out.int(n),
    }
    Ok(())
}

/// Redis shares the integers 0..9999 and reports them with INT_MAX references.
fn refcount(e: &Entry) -> i64 {
    match e.value.as_str().and_then(super::parse_i64_strict) {
        Some(n) if (0..10000).contains(&n) && e.encoding() == "int" => i32::MAX as i64,
        _ => 1,
    }
}

/// Bytes a key costs: its table node (with the key inline when short), heap key, value and TTL
/// index entry, at allocator size classes plus a bucket pointer each.
pub fn memory_usage_of(key: &[u8], e: &Entry) -> usize {
    use crate::keyspace::dict::{Node, INLINE_KEY};
    use crate::keyspace::memory::size_class;
    use std::mem::size_of;
    let key_heap = if key.len() > INLINE_KEY { size_class(key.len()) } else { 0 };
    let bucket = 8;
    let main = size_class(size_of::<Node<Entry>>()) + key_heap + bucket;
    let expire = if e.expire_at() != 0 {
        size_class(size_of::<Node<()>>()) + key_heap + bucket
    } else {
        0
    };
    main + expire + e.value.heap_size()
}

pub fn memory(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "help") {
        return super::docs::help(ctx, "memory");
    }
    if eq_ic(sub, "usage") {
        sub_arity(args, -3, "memory|usage")?;
        match args.len() {
            3 => {}
            5 if eq_ic(&args[3], "samples") => {
                parse_i64(&args[4])?;
            }
            _ => return Err(CmdError::SYNTAX),
        }
        let n = ctx.server.keyspace.read(ctx.client.db, &args[2], ctx.now, Lookup::Peek, |e| {
            e.map(|e| memory_usage_of(&args[2], e))
        });
        match n {
            Some(n) => ctx.out.int(n as i64),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    if eq_ic(sub, "doctor") {
        ctx.out
            .verbatim(b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.");
        return Ok(());
    }
    if eq_ic(sub, "purge") {
        crate::keyspace::memory::purge();
        ctx.out.ok();
        return Ok(());
    }
    if eq_ic(sub, "malloc-stats") {
        ctx.out.verbatim(b"Stats not supported for the current allocator");
        return Ok(());
    }
    if eq_ic(sub, "stats") {
        let used = crate::keyspace::memory::used_memory() as i64;
        let keys: usize = (0..ctx.server.keyspace.databases()).map(|d| ctx.server.keyspace.dbsize(d)).sum();
        let pairs: [(&str, i64); 4] = [
            ("peak.allocated", used),
            ("total.allocated", used),
            ("keys.count", keys as i64),
            ("dataset.bytes", used),
        ];
        ctx.out.map(pairs.len());
        for (k, v) in pairs {
            ctx.out.bulk(k.as_bytes());
            ctx.out.int(v);
        }
        return Ok(());
    }
    Err(CmdError::unknown_subcommand(sub, "memory"))
}
