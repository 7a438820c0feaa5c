//! Connection commands: PING ECHO QUIT HELLO AUTH SELECT RESET CLIENT (Redis's networking.c and
//! acl.c for AUTH).

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{eq_ic, sub_arity, CmdError, CmdResult, Ctx};
use crate::client::ClientInfo;
use crate::tracking::{self, flag};

pub fn ping(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 {
        return Err(CmdError::wrong_args("ping"));
    }
    // A RESP2 subscriber gets PING's answer in the shape of a message.
    if !ctx.out.resp3 && ctx.client.subscriptions.active() {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.get(1).map_or(&b""[..], |a| &a[..]));
        return Ok(());
    }
    match args.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(&args[1]),
        _ => return Err(CmdError::wrong_args("ping")),
    }
    Ok(())
}

pub fn echo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ctx.out.bulk(&args[1]);
    Ok(())
}

pub fn quit(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

pub fn select(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = super::parse_i32(&args[1])?;
    if ctx.server.config.cluster_enabled && n != 0 {
        return Err(CmdError::msg("ERR SELECT is not allowed in cluster mode"));
    }
    if n < 0 || n as usize >= ctx.server.keyspace.databases() {
        return Err(CmdError::DB_RANGE);
    }
    ctx.client.db = n as usize;
    ctx.client.info.db.store(n as usize, Relaxed);
    ctx.out.ok();
    Ok(())
}

/// Checks credentials for the default user (the only user respite has).
fn check_auth(ctx: &mut Ctx<'_>, user: Option<&[u8]>, pass: &[u8]) -> CmdResult {
    let ok = user.is_none_or(|u| u == b"default") && ctx.server.config.user.read().check(pass);
    if ok {
        ctx.client.authenticated = true;
        ctx.client.info.authenticated.store(true, Relaxed);
        Ok(())
    } else {
        ctx.server.stats.auth_failures.incr();
        Err(CmdError::WRONGPASS)
    }
}

pub fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => {
            if ctx.server.config.user.read().nopass {
                return Err(CmdError::msg("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
            }
            check_auth(ctx, None, &args[1])?;
        }
        3 => check_auth(ctx, Some(&args[1]), &args[2])?,
        _ => return Err(CmdError::SYNTAX),
    }
    ctx.out.ok();
    Ok(())
}

fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn set_name(info: &ClientInfo, name: &[u8]) -> CmdResult {
    if !valid_client_name(name) {
        return Err(CmdError::msg(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    *info.name.lock() = if name.is_empty() {
        None
    } else {
        Some(Bytes::copy_from_slice(name))
    };
    Ok(())
}

pub fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut proto = None;
    let mut i = 1;
    if args.len() >= 2 {
        let v = super::parse_i64_strict(&args[1]).ok_or_else(|| CmdError::msg("ERR Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(CmdError::msg("NOPROTO unsupported protocol version"));
        }
        proto = Some(v);
        i = 2;
    }
    let mut auth: Option<(Bytes, Bytes)> = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if eq_ic(&args[i], "auth") && more >= 2 {
            auth = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 3;
        } else if eq_ic(&args[i], "setname") && more >= 1 {
            // Redis 7.0 names the client while parsing, before (and regardless of) the auth check.
            set_name(&ctx.client.info, &args[i + 1])?;
            i += 2;
        } else {
            return Err(CmdError::msg(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            )));
        }
    }
    if let Some((user, pass)) = &auth {
        check_auth(ctx, Some(user), pass)?;
    }
    if !ctx.client.authenticated {
        return Err(CmdError::msg("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    if let Some(v) = proto {
        ctx.out.resp3 = v == 3;
        ctx.client.info.resp.store(v as usize, Relaxed);
    }
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(crate::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if out.resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(ctx.client.info.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

pub fn reset(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    super::transactions::end_transaction(&ctx.server.keyspace, ctx.client);
    super::pubsub::unsubscribe_all(&ctx.server.pubsub, ctx.client);
    ctx.server.monitors.remove(&ctx.client.info);
    ctx.server.tracking.disable(&ctx.client.info);
    ctx.client.db = 0;
    ctx.client.info.db.store(0, Relaxed);
    ctx.out.resp3 = false;
    ctx.client.info.resp.store(2, Relaxed);
    *ctx.client.info.name.lock() = None;
    let open = ctx.server.config.open_access();
    ctx.client.authenticated = open;
    ctx.client.info.authenticated.store(open, Relaxed);
    ctx.out.simple("RESET");
    Ok(())
}

/// Redis's getClientType for CLIENT LIST/KILL TYPE: a subscriber is "pubsub", every other
/// respite client "normal" (no masters or replicas); an unknown type name is an error.
fn type_matches(t: &[u8], info: &ClientInfo) -> Result<bool, CmdError> {
    let pubsub = info.subs.iter().any(|s| s.load(Relaxed) > 0);
    if eq_ic(t, "normal") {
        Ok(!pubsub)
    } else if eq_ic(t, "pubsub") {
        Ok(pubsub)
    } else if ["master", "replica", "slave"].iter().any(|n| eq_ic(t, n)) {
        Ok(false)
    } else {
        Err(CmdError::msg(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(t))))
    }
}

/// CLIENT LIST's flags: x in MULTI, b blocked, P subscribed, t tracking (R its redirect gone, B
/// broadcasting), N none.
fn client_flags(info: &ClientInfo) -> String {
    // In Redis's order.
    let mut f = String::new();
    if info.monitor.load(Relaxed) {
        f.push('O');
    }
    if info.subs.iter().any(|s| s.load(Relaxed) > 0) {
        f.push('P');
    }
    if info.multi.load(Relaxed) >= 0 {
        f.push('x');
    }
    if info.blocked.lock().is_some() {
        f.push('b');
    }
    let t = info.tracking.flags();
    for (bit, letter) in [(flag::ON, 't'), (flag::BROKEN_REDIR, 'R'), (flag::BCAST, 'B')] {
        if t & bit != 0 {
            f.push(letter);
        }
    }
    if matches!(info.addr, crate::client::Peer::Unix(_)) {
        f.push('U');
    }
    if f.is_empty() {
        f.push('N');
    }
    f
}

/// One CLIENT LIST / CLIENT INFO line, in Redis 7.0's field order.
pub fn client_line(info: &ClientInfo, now_ms: i64) -> String {
    let name = info.name().map(|n| String::from_utf8_lossy(&n).into_owned()).unwrap_or_default();
    let lib_name = info
        .lib_name
        .lock()
        .clone()
        .map(|n| String::from_utf8_lossy(&n).into_owned())
        .unwrap_or_default();
    let lib_ver = info
        .lib_ver
        .lock()
        .clone()
        .map(|n| String::from_utf8_lossy(&n).into_owned())
        .unwrap_or_default();
    let idle = ((now_ms - info.last_interaction.load(Relaxed)) / 1000).max(0);
    let qbuf = info.qbuf.load(Relaxed);
    let omem = info.omem.load(Relaxed);
    format!(
        "id={} addr={} laddr={} fd=8 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user=default redir={} resp={} lib-name={} lib-ver={}",
        info.id,
        info.addr,
        info.laddr,
        name,
        info.created.elapsed().as_secs(),
        idle,
        client_flags(info),
        info.db.load(Relaxed),
        info.subs[0].load(Relaxed),
        info.subs[1].load(Relaxed),
        info.subs[2].load(Relaxed),
        info.multi.load(Relaxed),
        qbuf,
        omem,
        qbuf + omem + 16384,
        super::stat_names().get(info.last_cmd.load(Relaxed)).map_or("NULL", String::as_str),
        if info.tracking.flags() & flag::ON != 0 { info.tracking.redirect.load(Relaxed) as i64 } else { -1 },
        info.resp.load(Relaxed),
        lib_name,
        lib_ver,
    )
}

pub fn client(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "help") {
        return super::docs::help(ctx, "client");
    }
    if eq_ic(sub, "id") {
        sub_arity(args, 2, "client|id")?;
        ctx.out.int(ctx.client.info.id as i64);
    } else if eq_ic(sub, "getname") {
        sub_arity(args, 2, "client|getname")?;
        let name = ctx.client.info.name();
        ctx.out.bulk_or_null(name.as_deref());
    } else if eq_ic(sub, "setname") {
        sub_arity(args, 3, "client|setname")?;
        set_name(&ctx.client.info, &args[2])?;
        ctx.out.ok();
    } else if eq_ic(sub, "setinfo") {
        sub_arity(args, 4, "client|setinfo")?;
        let value = &args[3];
        if value.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
            return Err(CmdError::msg(format!(
                "ERR {} cannot contain spaces, newlines or special characters.",
                String::from_utf8_lossy(&args[2]).to_ascii_uppercase()
            )));
        }
        let v = Some(value.clone());
        if eq_ic(&args[2], "lib-name") {
            *ctx.client.info.lib_name.lock() = v;
        } else if eq_ic(&args[2], "lib-ver") {
            *ctx.client.info.lib_ver.lock() = v;
        } else {
            return Err(CmdError::msg(format!(
                "ERR Unrecognized option '{}'",
                String::from_utf8_lossy(&args[2])
            )));
        }
        ctx.out.ok();
    } else if eq_ic(sub, "info") {
        sub_arity(args, 2, "client|info")?;
        let line = client_line(&ctx.client.info, ctx.now) + "\n";
        ctx.out.verbatim(line.as_bytes());
    } else if eq_ic(sub, "list") {
        client_list(ctx, args)?;
    } else if eq_ic(sub, "kill") {
        sub_arity(args, -3, "client|kill")?;
        client_kill(ctx, args)?;
    } else if eq_ic(sub, "unblock") {
        if args.len() != 3 && args.len() != 4 {
            return Err(CmdError::wrong_args("client|unblock"));
        }
        let id = super::parse_i64(&args[2])?;
        let with_error = match args.get(3) {
            None => false,
            Some(a) if eq_ic(a, "timeout") => false,
            Some(a) if eq_ic(a, "error") => true,
            Some(_) => return Err(CmdError::msg("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
        };
        let target = ctx.server.clients.get(id as u64);
        let done = target.is_some_and(|t| super::blocking::unblock(ctx.server, &t, with_error));
        ctx.out.int(done as i64);
    } else if eq_ic(sub, "reply") {
        sub_arity(args, 3, "client|reply")?;
        if eq_ic(&args[2], "on") {
            ctx.client.reply_off = false;
        } else if eq_ic(&args[2], "off") {
            ctx.client.reply_off = true;
        } else if eq_ic(&args[2], "skip") {
            ctx.client.reply_skip_next = !ctx.client.reply_off;
        } else {
            return Err(CmdError::SYNTAX);
        }
        ctx.out.ok();
    } else if eq_ic(sub, "pause") {
        if args.len() != 3 && args.len() != 4 {
            return Err(CmdError::wrong_args("client|pause"));
        }
        let all = match args.get(3) {
            None => true,
            Some(m) if eq_ic(m, "all") => true,
            Some(m) if eq_ic(m, "write") => false,
            Some(_) => return Err(CmdError::msg("ERR CLIENT PAUSE mode must be WRITE or ALL")),
        };
        let ms = super::parse_i64(&args[2]).map_err(|_| CmdError::msg("ERR timeout is not an integer or out of range"))?;
        if ms < 0 {
            return Err(CmdError::msg("ERR timeout is negative"));
        }
        // 0 ends at once, as Redis's end time of 0 does.
        let until = tokio::time::Instant::now() + std::time::Duration::from_millis(ms as u64);
        if ms > 0 {
            ctx.server.pause.pause(until, all);
        }
        ctx.out.ok();
    } else if eq_ic(sub, "unpause") {
        sub_arity(args, 2, "client|unpause")?;
        ctx.server.pause.unpause();
        ctx.out.ok();
    } else if eq_ic(sub, "tracking") {
        client_tracking(ctx, args)?;
    } else if eq_ic(sub, "caching") {
        client_caching(ctx, &args[2])?;
    } else if eq_ic(sub, "getredir") {
        let t = &ctx.client.info.tracking;
        ctx.out.int(if t.flags() & flag::ON != 0 {
            t.redirect.load(Relaxed) as i64
        } else {
            -1
        });
    } else if eq_ic(sub, "trackinginfo") {
        client_trackinginfo(ctx);
    } else if eq_ic(sub, "no-evict") || eq_ic(sub, "no-touch") {
        sub_arity(args, 3, "client|no-evict")?;
        if !eq_ic(&args[2], "on") && !eq_ic(&args[2], "off") {
            return Err(CmdError::SYNTAX);
        }
        ctx.out.ok();
    } else {
        return Err(CmdError::unknown_subcommand(sub, "client"));
    }
    Ok(())
}

/// CLIENT TRACKING on|off [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT] [NOLOOP], with
/// Redis 7.0.15's checks in its order.
fn client_tracking(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut opts = tracking::Options {
        flags: 0,
        redirect: 0,
        prefixes: Vec::new(),
    };
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if eq_ic(a, "redirect") && more {
            j += 1;
            if opts.redirect != 0 {
                return Err(CmdError::msg("ERR A client can only redirect to a single other client"));
            }
            let id = super::parse_i64(&args[j])?;
            if id <= 0 || ctx.server.clients.get(id as u64).is_none() {
                return Err(CmdError::msg("ERR The client ID you want redirect to does not exist"));
            }
            opts.redirect = id as u64;
        } else if eq_ic(a, "bcast") {
            opts.flags |= flag::BCAST;
        } else if eq_ic(a, "optin") {
            opts.flags |= flag::OPTIN;
        } else if eq_ic(a, "optout") {
            opts.flags |= flag::OPTOUT;
        } else if eq_ic(a, "noloop") {
            opts.flags |= flag::NOLOOP;
        } else if eq_ic(a, "prefix") && more {
            j += 1;
            opts.prefixes.push(args[j].clone());
        } else {
            return Err(CmdError::SYNTAX);
        }
        j += 1;
    }
    let info = ctx.client.info.clone();
    if eq_ic(&args[2], "on") {
        let cur = info.tracking.flags();
        let err = |m: &'static str| Err(CmdError::msg(m));
        if opts.flags & flag::BCAST == 0 && !opts.prefixes.is_empty() {
            return err("ERR PREFIX option requires BCAST mode to be enabled");
        }
        if cur & flag::ON != 0 && (cur & flag::BCAST) != (opts.flags & flag::BCAST) {
            return err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
        if opts.flags & flag::BCAST != 0 && opts.flags & (flag::OPTIN | flag::OPTOUT) != 0 {
            return err("ERR OPTIN and OPTOUT are not compatible with BCAST");
        }
        if opts.flags & flag::OPTIN != 0 && opts.flags & flag::OPTOUT != 0 {
            return err("ERR You can't specify both OPTIN mode and OPTOUT mode");
        }
        if (opts.flags & flag::OPTIN != 0 && cur & flag::OPTOUT != 0) || (opts.flags & flag::OPTOUT != 0 && cur & flag::OPTIN != 0) {
            return err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
        if opts.flags & flag::BCAST != 0 {
            let existing = info.tracking.prefixes.lock().clone();
            if let Some(e) = tracking::prefix_collision(&existing, &opts.prefixes) {
                return Err(CmdError::msg(e));
            }
        }
        ctx.server.tracking.enable(&info, opts);
    } else if eq_ic(&args[2], "off") {
        ctx.server.tracking.disable(&info);
    } else {
        return Err(CmdError::SYNTAX);
    }
    ctx.out.ok();
    Ok(())
}

/// CLIENT CACHING yes|no: the next command is (OPTIN) or is not (OPTOUT) tracked.
fn client_caching(ctx: &mut Ctx<'_>, opt: &[u8]) -> CmdResult {
    let t = &ctx.client.info.tracking;
    let f = t.flags();
    if f & flag::ON == 0 {
        return Err(CmdError::msg(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    }
    if eq_ic(opt, "yes") {
        if f & flag::OPTIN == 0 {
            return Err(CmdError::msg(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if eq_ic(opt, "no") {
        if f & flag::OPTOUT == 0 {
            return Err(CmdError::msg(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CmdError::SYNTAX);
    }
    t.flags.fetch_or(flag::CACHING, Relaxed);
    ctx.out.ok();
    Ok(())
}

fn client_trackinginfo(ctx: &mut Ctx<'_>) {
    let t = &ctx.client.info.tracking;
    let f = t.flags();
    let mut words = vec![if f & flag::ON != 0 { "on" } else { "off" }];
    for (bit, word) in [(flag::BCAST, "bcast"), (flag::OPTIN, "optin")] {
        if f & bit != 0 {
            words.push(word);
        }
    }
    if f & flag::OPTIN != 0 && f & flag::CACHING != 0 {
        words.push("caching-yes");
    }
    if f & flag::OPTOUT != 0 {
        words.push("optout");
        if f & flag::CACHING != 0 {
            words.push("caching-no");
        }
    }
    for (bit, word) in [(flag::NOLOOP, "noloop"), (flag::BROKEN_REDIR, "broken_redirect")] {
        if f & bit != 0 {
            words.push(word);
        }
    }
    let out = &mut *ctx.out;
    out.map(3);
    out.bulk(b"flags");
    out.set(words.len());
    for w in words {
        out.bulk(w.as_bytes());
    }
    out.bulk(b"redirect");
    out.int(if f & flag::ON != 0 { t.redirect.load(Relaxed) as i64 } else { -1 });
    out.bulk(b"prefixes");
    let prefixes = t.prefixes.lock().clone();
    out.array(prefixes.len());
    for p in prefixes {
        out.bulk(&p);
    }
}

fn client_list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut client_type: Option<&Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        if eq_ic(&args[i], "type") && i + 1 < args.len() {
            let t = &args[i + 1];
            // Checked here so an unknown type is an error even with no clients to test.
            type_matches(t, &ctx.client.info)?;
            client_type = Some(t);
            i += 2;
        } else if eq_ic(&args[i], "id") && i + 1 < args.len() {
            let mut list = Vec::new();
            for a in &args[i + 1..] {
                match super::parse_i64_strict(a) {
                    Some(n) if n > 0 => list.push(n as u64),
                    _ => return Err(CmdError::msg("ERR Invalid client ID")),
                }
            }
            ids = Some(list);
            i = args.len();
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    let mut text = String::new();
    for c in ctx.server.clients.all() {
        if ids.as_ref().is_none_or(|ids| ids.contains(&c.id)) && client_type.is_none_or(|t| type_matches(t, &c).unwrap_or(false)) {
            text.push_str(&client_line(&c, ctx.now));
            text.push('\n');
        }
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// Closes a client's connection and, as Redis frees it before replying, takes it off the client
/// list at once (its connection task finishes closing on its own thread).
fn kill(ctx: &Ctx<'_>, c: &ClientInfo) {
    c.request_kill();
    if c.id != ctx.client.info.id {
        ctx.server.clients.unregister(c.id);
    }
}

fn client_kill(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let me = ctx.client.info.id;
    // Old form: CLIENT KILL addr:port -> +OK or an error.
    if args.len() == 3 {
        let target = String::from_utf8_lossy(&args[2]).into_owned();
        let found = ctx.server.clients.all().into_iter().find(|c| c.addr.to_string() == target);
        return match found {
            Some(c) => {
                kill(ctx, &c);
                if c.id == me {
                    ctx.client.close_after_reply = true;
                }
                ctx.out.ok();
                Ok(())
            }
            None => Err(CmdError::msg("ERR No such client")),
        };
    }
    let (mut id, mut addr, mut laddr, mut skipme) = (None, None, None, true);
    let mut client_type: Option<&Bytes> = None;
    let mut pairs = args[2..].chunks_exact(2);
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::SYNTAX);
    }
    for pair in pairs.by_ref() {
        let (k, v) = (&pair[0], &pair[1]);
        if eq_ic(k, "id") {
            id = Some(
                super::parse_i64_strict(v)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| CmdError::msg("ERR client-id should be greater than 0"))? as u64,
            );
        } else if eq_ic(k, "addr") {
            addr = Some(String::from_utf8_lossy(v).into_owned());
        } else if eq_ic(k, "laddr") {
            laddr = Some(String::from_utf8_lossy(v).into_owned());
        } else if eq_ic(k, "skipme") {
            skipme = if eq_ic(v, "yes") {
                true
            } else if eq_ic(v, "no") {
                false
            } else {
                return Err(CmdError::SYNTAX);
            };
        } else if eq_ic(k, "type") {
            type_matches(v, &ctx.client.info)?;
            client_type = Some(v);
        } else if eq_ic(k, "user") || eq_ic(k, "maxage") {
            // Every respite client is a client of the default user.
        } else {
            return Err(CmdError::SYNTAX);
        }
    }
    let mut killed = 0;
    for c in ctx.server.clients.all() {
        if id.is_some_and(|id| id != c.id)
            || addr.as_ref().is_some_and(|a| *a != c.addr.to_string())
            || laddr.as_ref().is_some_and(|a| *a != c.laddr.to_string())
            || client_type.is_some_and(|t| !type_matches(t, &c).unwrap_or(false))
        {
            continue;
        }
        if c.id == me {
            if skipme {
                continue;
            }
            ctx.client.close_after_reply = true;
        }
        kill(ctx, &c);
        killed += 1;
    }
    ctx.out.int(killed);
    Ok(())
}
