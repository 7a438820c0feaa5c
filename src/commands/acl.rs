//! ACL for the one user respite has, `default` (Redis's acl.c): WHOAMI, USERS, LIST, GETUSER,
//! SETUSER default (on/off and passwords), DELUSER, CAT, DRYRUN, GENPASS, LOG.

use std::io::Read;

use bytes::Bytes;

use super::{eq_ic, CmdError, CmdResult, Ctx};

const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

pub fn acl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "help") {
        return super::docs::help(ctx, "acl");
    }
    if eq_ic(sub, "whoami") {
        ctx.out.bulk(b"default");
    } else if eq_ic(sub, "users") {
        ctx.out.array(1);
        ctx.out.bulk(b"default");
    } else if eq_ic(sub, "list") {
        let line = ctx.server.config.user.read().describe();
        ctx.out.array(1);
        ctx.out.bulk(line.as_bytes());
    } else if eq_ic(sub, "getuser") {
        getuser(ctx, &args[2]);
    } else if eq_ic(sub, "setuser") {
        setuser(ctx, &args[2], &args[3..])?;
    } else if eq_ic(sub, "deluser") {
        if args[2..].iter().any(|u| u.as_ref() == b"default") {
            return Err(CmdError::msg("ERR The 'default' user cannot be removed"));
        }
        ctx.out.int(0);
    } else if eq_ic(sub, "cat") {
        cat(ctx, args.get(2))?;
    } else if eq_ic(sub, "dryrun") {
        dryrun(ctx, &args[2], &args[3..])?;
    } else if eq_ic(sub, "genpass") {
        genpass(ctx, args.get(2))?;
    } else if eq_ic(sub, "log") {
        // Denied commands and failed AUTHs are not logged (yet): the log is always empty.
        match args.get(2) {
            Some(a) if eq_ic(a, "reset") => ctx.out.ok(),
            Some(a) => {
                super::parse_i64(a)?;
                ctx.out.array(0);
            }
            None => ctx.out.array(0),
        }
    } else if eq_ic(sub, "save") || eq_ic(sub, "load") {
        return Err(CmdError::msg("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration."));
    } else {
        return Err(CmdError::unknown_subcommand(sub, "acl"));
    }
    Ok(())
}

fn getuser(ctx: &mut Ctx<'_>, name: &[u8]) {
    if name != b"default" {
        ctx.out.null();
        return;
    }
    let user = ctx.server.config.user.read().clone();
    let out = &mut *ctx.out;
    out.map(6);
    out.bulk(b"flags");
    let flags = user.flags();
    out.set(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"passwords");
    let hashes = user.password_hashes();
    out.array(hashes.len());
    for h in hashes {
        out.bulk(h.as_bytes());
    }
    for (k, v) in [("commands", "+@all"), ("keys", "~*"), ("channels", "&*")] {
        out.bulk(k.as_bytes());
        out.bulk(v.as_bytes());
    }
    out.bulk(b"selectors");
    out.array(0);
}

fn setuser(ctx: &mut Ctx<'_>, name: &[u8], rules: &[Bytes]) -> CmdResult {
    if name != b"default" {
        return Err(CmdError::msg(format!(
            "ERR respite has only the 'default' user; cannot create or change '{}'",
            String::from_utf8_lossy(name)
        )));
    }
    let rules: Vec<&[u8]> = rules.iter().map(|r| r.as_ref()).collect();
    ctx.server.config.user.write().apply_rules(&rules).map_err(|(i, why)| {
        CmdError::msg(format!(
            "ERR Error in ACL SETUSER modifier '{}': {why}",
            String::from_utf8_lossy(rules[i])
        ))
    })?;
    ctx.out.ok();
    Ok(())
}

fn cat(ctx: &mut Ctx<'_>, category: Option<&Bytes>) -> CmdResult {
    let Some(category) = category else {
        ctx.out.array(CATEGORIES.len());
        for c in CATEGORIES {
            ctx.out.bulk(c.as_bytes());
        }
        return Ok(());
    };
    let lower = String::from_utf8_lossy(category).to_ascii_lowercase();
    if !CATEGORIES.contains(&lower.as_str()) {
        return Err(CmdError::msg(format!(
            "ERR Unknown category '{}'",
            String::from_utf8_lossy(category)
        )));
    }
    let names = super::docs::commands_in_category(&lower);
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

fn dryrun(ctx: &mut Ctx<'_>, user: &[u8], command: &[Bytes]) -> CmdResult {
    if user != b"default" {
        return Err(CmdError::msg(format!("ERR User '{}' not found", String::from_utf8_lossy(user))));
    }
    let Some(idx) = super::lookup(&command[0]) else {
        return Err(CmdError::msg(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(&command[0])
        )));
    };
    let cmd = &super::table()[idx];
    let n = command.len();
    if (cmd.arity > 0 && n != cmd.arity as usize) || n < cmd.arity.unsigned_abs() as usize {
        return Err(CmdError::wrong_args(cmd.name));
    }
    // The default user may run everything.
    ctx.out.ok();
    Ok(())
}

fn genpass(ctx: &mut Ctx<'_>, bits: Option<&Bytes>) -> CmdResult {
    let bits = match bits {
        Some(b) => super::parse_i64(b)?,
        None => 256,
    };
    if !(1..=4096).contains(&bits) {
        return Err(CmdError::msg(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
        ));
    }
    let chars = (bits as usize).div_ceil(4);
    let mut random = vec![0u8; chars.div_ceil(2)];
    // Passwords need the kernel's CSPRNG, not a fast PRNG.
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .map_err(|e| CmdError::msg(format!("ERR cannot read /dev/urandom: {e}")))?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    ctx.out.bulk(&hex.as_bytes()[..chars]);
    Ok(())
}
