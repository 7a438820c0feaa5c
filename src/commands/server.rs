//! Server commands: CONFIG, TIME, LASTSAVE, SHUTDOWN, FUNCTION, DEBUG, LATENCY, SLOWLOG.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{eq_ic, parse_i64, sub_arity, CmdError, CmdResult, Ctx};

pub fn config(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "help") {
        return super::docs::help(ctx, "config");
    }
    if eq_ic(sub, "get") {
        sub_arity(args, -3, "config|get")?;
        let patterns: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
        let found = ctx.server.config.get_matching(&patterns);
        ctx.out.map(found.len());
        for (k, v) in found {
            ctx.out.bulk(k.as_bytes());
            ctx.out.bulk(v.as_bytes());
        }
    } else if eq_ic(sub, "set") {
        sub_arity(args, -4, "config|set")?;
        if !args.len().is_multiple_of(2) {
            return Err(CmdError::SYNTAX);
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for pair in args[2..].chunks_exact(2) {
            let asked = String::from_utf8_lossy(&pair[0]).into_owned();
            let name = asked.to_ascii_lowercase();
            if !ctx.server.config.exists(&name) {
                return Err(CmdError::msg(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{asked}'"
                )));
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(CmdError::msg(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{asked}') - duplicate parameter"
                )));
            }
            pairs.push((name, String::from_utf8_lossy(&pair[1]).into_owned()));
        }
        ctx.server
            .config
            .set_many(&pairs)
            .map_err(|(name, e)| CmdError::msg(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {e}")))?;
        ctx.server.apply_config();
        // A lower limit takes effect now, as in Redis.
        if pairs.iter().any(|(n, _)| n == "maxmemory") {
            super::out_of_memory(ctx.server);
        }
        ctx.out.ok();
    } else if eq_ic(sub, "resetstat") {
        sub_arity(args, 2, "config|resetstat")?;
        ctx.server.stats.reset();
        ctx.server.command_stats.reset();
        let ks = &ctx.server.keyspace.stats;
        for c in [&ks.hits, &ks.misses, &ks.expired, &ks.evicted] {
            c.reset();
        }
        ctx.out.ok();
    } else if eq_ic(sub, "rewrite") {
        sub_arity(args, 2, "config|rewrite")?;
        return Err(CmdError::msg(
            "ERR CONFIG REWRITE is not supported by respite; edit the config file",
        ));
    } else {
        return Err(CmdError::unknown_subcommand(sub, "config"));
    }
    Ok(())
}

pub fn time(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(us / 1_000_000).as_bytes());
    ctx.out.bulk(itoa::Buffer::new().format(us % 1_000_000).as_bytes());
    Ok(())
}

pub fn lastsave(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    // respite does not persist; the last "save" is the start, as for a fresh Redis.
    ctx.out.int(ctx.server.started_unix);
    Ok(())
}

pub fn shutdown(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    for a in &args[1..] {
        if eq_ic(a, "abort") {
            return Err(CmdError::msg("ERR No shutdown in progress."));
        }
        if !["nosave", "save", "now", "force"].iter().any(|w| eq_ic(a, w)) {
            return Err(CmdError::SYNTAX);
        }
    }
    tracing::warn!("User requested shutdown...");
    ctx.server.request_shutdown();
    // Like Redis, the connection closes without a reply.
    ctx.client.close_after_reply = true;
    Ok(())
}

pub fn function(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if eq_ic(&args[1], "help") {
        return super::docs::help(ctx, "function");
    }
    let sub = &args[1];
    if eq_ic(sub, "flush") {
        match args.len() {
            2 => {}
            3 if eq_ic(&args[2], "async") || eq_ic(&args[2], "sync") => {}
            _ => return Err(CmdError::msg("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")),
        }
        ctx.out.ok();
    } else if eq_ic(sub, "list") {
        ctx.out.array(0);
    } else if eq_ic(sub, "stats") {
        // No scripting engine runs functions here; the reply Redis gives with none loaded.
        ctx.out.map(2);
        ctx.out.bulk(b"running_script");
        ctx.out.null();
        ctx.out.bulk(b"engines");
        ctx.out.map(1);
        ctx.out.bulk(b"LUA");
        ctx.out.map(2);
        ctx.out.bulk(b"libraries_count");
        ctx.out.int(0);
        ctx.out.bulk(b"functions_count");
        ctx.out.int(0);
    } else {
        return Err(CmdError::unknown_subcommand(sub, "function"));
    }
    Ok(())
}

pub fn debug(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let setting = ctx.server.config.get("enable-debug-command").unwrap_or_default();
    let local = ctx.client.info.addr.is_local();
    if !(setting == "yes" || (setting == "local" && local)) {
        return Err(CmdError::msg("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."));
    }
    let sub = &args[1];
    if eq_ic(sub, "sleep") && args.len() == 3 {
        let secs = super::parse_f64(&args[2])?;
        // Redis blocks the whole server; the exclusive world lock held here does the same.
        std::thread::sleep(std::time::Duration::from_secs_f64(secs.clamp(0.0, 3600.0)));
        ctx.out.ok();
    } else if eq_ic(sub, "error") && args.len() == 3 {
        // The argument as an error reply, verbatim (client libraries test their error parsing
        // with it: "LOADING ...", "WRONGTYPE ..."); Reply::error turns line breaks into spaces.
        ctx.out.error(&args[2]);
    } else if eq_ic(sub, "advance-clock") && args.len() == 3 {
        // respite only: moves the server's clock forward, so tests of TTLs need no sleeps.
        let ms = parse_i64(&args[2])?;
        if ms < 0 {
            return Err(CmdError::msg("ERR the clock only moves forward"));
        }
        ctx.server.keyspace.clock.advance(ms);
        ctx.out.ok();
    } else if eq_ic(sub, "set-active-expire") && args.len() == 3 {
        let on = parse_i64(&args[2])? != 0;
        ctx.server.active_expire.store(on, Relaxed);
        ctx.out.ok();
    } else if eq_ic(sub, "object") && args.len() == 3 {
        let line = ctx
            .server
            .keyspace
            .read(ctx.client.db, &args[2], ctx.now, crate::keyspace::Lookup::Peek, |e| {
                e.map(|e| {
                    format!(
                        "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:0",
                        e.encoding(),
                        e.value.as_str().map_or(0, |s| s.len()),
                        e.lru() / 1000
                    )
                })
            });
        match line {
            Some(l) => ctx.out.simple(&l),
            None => return Err(CmdError::NO_SUCH_KEY),
        }
    } else {
        return Err(CmdError::msg(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(sub)
        )));
    }
    Ok(())
}

pub fn latency(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if eq_ic(&args[1], "help") {
        return super::docs::help(ctx, "latency");
    }
    // respite does not sample latency events (latency-monitor-threshold is 0 by default in
    // Redis too, where these replies are the same empty ones).
    let sub = &args[1];
    if eq_ic(sub, "latest") || eq_ic(sub, "history") {
        ctx.out.array(0);
    } else if eq_ic(sub, "reset") {
        ctx.out.int(0);
    } else if eq_ic(sub, "doctor") {
        ctx.out.verbatim(b"Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep tonight.\n");
    } else {
        return Err(CmdError::unknown_subcommand(sub, "latency"));
    }
    Ok(())
}

pub fn slowlog(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if eq_ic(&args[1], "help") {
        return super::docs::help(ctx, "slowlog");
    }
    let sub = &args[1];
    if eq_ic(sub, "get") {
        if args.len() > 3 {
            return Err(CmdError::msg(
                "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.",
            ));
        }
        let count = match args.get(2) {
            None => Some(10),
            Some(n) => match super::parse_i64_strict(n) {
                Some(-1) => None,
                Some(n) if n >= 0 => Some(n as usize),
                _ => return Err(CmdError::msg("ERR count should be greater than or equal to -1")),
            },
        };
        ctx.server.slowlog.reply(ctx.out, count);
    } else if eq_ic(sub, "len") {
        ctx.out.int(ctx.server.slowlog.len() as i64);
    } else if eq_ic(sub, "reset") {
        ctx.server.slowlog.reset();
        ctx.out.ok();
    } else {
        return Err(CmdError::unknown_subcommand(sub, "slowlog"));
    }
    Ok(())
}

/// MONITOR: from now on this client is shown every command run (src/monitor.rs).
pub fn monitor(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.client.executing_transaction {
        return Err(CmdError::msg("ERR Command not allowed inside a transaction"));
    }
    // As Redis: a second MONITOR is answered with nothing.
    if ctx.client.info.monitor.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    ctx.server.monitors.add(ctx.client.info.clone());
    ctx.out.ok();
    Ok(())
}
