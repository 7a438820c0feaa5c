//! COMMAND: COUNT, LIST, INFO, DOCS, GETKEYS. Names, arity and key positions come from the table;
//! the descriptive parts (flags, ACL categories, key specs, argument docs for redis-cli's hints)
//! are Redis 7.0.15's own reply bytes, per command and subcommand, in RESP2 and RESP3, captured by
//! tools/capture-redis-spec.py and served verbatim, so they match Redis byte for byte.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use super::{eq_ic, CmdError, CmdResult, Ctx, TABLE};
use crate::glob::glob_match;
use crate::protocol::Reply;

const SPEC: &[u8] = include_bytes!("redis-commands.spec");

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Info,
    Docs,
    Help,
}

type Spec = HashMap<(&'static str, Kind, bool), &'static [u8]>;

/// (name, kind, resp3) -> one RESP frame.
fn spec() -> &'static Spec {
    static SPEC_INDEX: OnceLock<Spec> = OnceLock::new();
    SPEC_INDEX.get_or_init(|| {
        let mut map = HashMap::new();
        let mut rest = SPEC;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let header = std::str::from_utf8(&rest[..nl]).unwrap_or_default();
            let fields: Vec<&str> = header.split(' ').collect();
            let [name, kind, proto, len] = fields[..] else { break };
            let Ok(len) = len.parse::<usize>() else { break };
            let body = &rest[nl + 1..];
            if body.len() < len + 1 {
                break;
            }
            let kind = match kind {
                "info" => Kind::Info,
                "docs" => Kind::Docs,
                _ => Kind::Help,
            };
            // The spec file is a static, so the name borrowed from it is 'static too.
            let name: &'static str = std::str::from_utf8(&SPEC[SPEC.len() - rest.len()..][..name.len()]).unwrap_or_default();
            map.insert((name, kind, proto == "3"), &body[..len]);
            rest = &body[len + 1..];
        }
        map
    })
}

fn frame(name: &str, kind: Kind, resp3: bool) -> Option<&'static [u8]> {
    spec().get(&(name, kind, resp3)).copied()
}

/// Arity of each subcommand of each container command ("config" -> "get" -> -3), read from the
/// captured RESP2 COMMAND INFO frames (`*10\r\n$N\r\nname\r\n:arity\r\n...`).
fn subcommands() -> &'static HashMap<&'static str, HashMap<&'static str, i32>> {
    static SUBS: OnceLock<HashMap<&'static str, HashMap<&'static str, i32>>> = OnceLock::new();
    SUBS.get_or_init(|| {
        let mut map: HashMap<&'static str, HashMap<&'static str, i32>> = HashMap::new();
        for (&(name, kind, resp3), frame) in spec() {
            let Some((container, sub)) = name.split_once('|') else { continue };
            if kind != Kind::Info || resp3 {
                continue;
            }
            let arity = std::str::from_utf8(frame)
                .ok()
                .and_then(|t| t.split("\r\n").nth(3))
                .and_then(|l| l.strip_prefix(':'))
                .and_then(|n| n.parse().ok());
            if let Some(arity) = arity {
                map.entry(container).or_default().insert(sub, arity);
            }
        }
        map
    })
}

/// "container|sub" for every subcommand of the containers `has` accepts, plus CLIENT SETINFO
/// (Redis 7.2, taken by respite because current clients send it).
pub fn subcommand_names(has: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = subcommands()
        .iter()
        .filter(|(container, _)| has(container))
        .flat_map(|(container, subs)| subs.keys().map(move |sub| format!("{container}|{sub}")))
        .collect();
    names.push("client|setinfo".into());
    names.sort();
    names.dedup();
    names
}

/// For container commands (CONFIG, CLIENT ...): the subcommand must exist and get its arity,
/// checked before the command runs or is queued, as Redis's command table does.
pub fn check_subcommand(name: &str, args: &[Bytes]) -> CmdResult {
    // COMMAND alone is valid (it lists everything).
    let (Some(subs), true) = (subcommands().get(name), args.len() >= 2) else {
        return Ok(());
    };
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    // CLIENT SETINFO arrived in Redis 7.2; respite takes it because current clients send it.
    let extra = (name == "client" && sub == "setinfo").then_some(4);
    let Some(arity) = subs.get(sub.as_str()).copied().or(extra) else {
        return Err(CmdError::unknown_subcommand(&args[1], name));
    };
    super::sub_arity(args, arity, &format!("{name}|{sub}"))
}

/// A container command's HELP, as Redis 7.0.15 words it.
pub fn help(ctx: &mut Ctx<'_>, name: &str) -> CmdResult {
    match frame(name, Kind::Help, ctx.out.resp3) {
        Some(f) => ctx.out.raw(f),
        None => ctx.out.array(0),
    }
    Ok(())
}

/// Whether Redis 7.0.15 gives the command `flag` among its COMMAND INFO flags ("noscript" ...).
pub fn has_flag(name: &str, flag: &str) -> bool {
    let Some(f) = frame(name, Kind::Info, false) else { return false };
    let text = String::from_utf8_lossy(f);
    // *10, $len, name, :arity, then *K and K flags as simple strings.
    let mut lines = text.split("\r\n").skip(4);
    let Some(n) = lines.next().and_then(|l| l.strip_prefix('*')).and_then(|n| n.parse::<usize>().ok()) else {
        return false;
    };
    lines.take(n).any(|l| l.strip_prefix('+') == Some(flag))
}

fn write_info(out: &mut Reply, name: &str) {
    match frame(name, Kind::Info, out.resp3) {
        Some(f) => out.raw(f),
        None => out.null(),
    }
}

/// Table rows and, for container commands, their subcommands ("config|get").
fn known(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    frame(&lower, Kind::Info, false).is_some() && super::lookup(lower.split('|').next().unwrap_or_default().as_bytes()).is_some()
}

pub fn command(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let out = &mut *ctx.out;
    if args.len() == 1 {
        out.array(TABLE.len());
        for c in TABLE {
            write_info(out, c.name);
        }
        return Ok(());
    }
    let sub = &args[1];
    if eq_ic(sub, "help") {
        return help(ctx, "command");
    }
    if eq_ic(sub, "count") {
        super::sub_arity(args, 2, "command|count")?;
        out.int(TABLE.len() as i64);
    } else if eq_ic(sub, "info") {
        if args.len() == 2 {
            out.array(TABLE.len());
            for c in TABLE {
                write_info(out, c.name);
            }
        } else {
            out.array(args.len() - 2);
            for name in &args[2..] {
                let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                if known(&name) {
                    write_info(out, &name);
                } else {
                    out.null();
                }
            }
        }
    } else if eq_ic(sub, "docs") {
        let names: Vec<String> = if args.len() == 2 {
            TABLE.iter().map(|c| c.name.to_string()).collect()
        } else {
            args[2..]
                .iter()
                .map(|n| String::from_utf8_lossy(n).to_ascii_lowercase())
                .filter(|n| known(n))
                .collect()
        };
        let found: Vec<(String, &[u8])> = names
            .into_iter()
            .filter_map(|n| frame(&n, Kind::Docs, out.resp3).map(|d| (n, d)))
            .collect();
        out.map(found.len());
        for (name, doc) in found {
            out.bulk(name.as_bytes());
            out.raw(doc);
        }
    } else if eq_ic(sub, "list") {
        let filter = match args.len() {
            2 => None,
            5 if eq_ic(&args[2], "filterby") => Some((args[3].clone(), args[4].clone())),
            _ => return Err(CmdError::SYNTAX),
        };
        let names: Vec<&str> = TABLE
            .iter()
            .map(|c| c.name)
            .filter(|name| match &filter {
                None => true,
                Some((kind, value)) if eq_ic(kind, "pattern") => glob_match(value, name.as_bytes(), true),
                Some((kind, value)) if eq_ic(kind, "aclcat") => in_acl_category(name, value),
                Some((kind, _)) if eq_ic(kind, "module") => false,
                Some(_) => false,
            })
            .collect();
        out.array(names.len());
        for n in names {
            out.bulk(n.as_bytes());
        }
    } else if eq_ic(sub, "getkeys") {
        super::sub_arity(args, -4, "command|getkeys")?;
        let Some(i) = super::lookup(&args[2]) else {
            return Err(CmdError::msg("ERR Invalid command specified"));
        };
        let cmd = &TABLE[i];
        let cmd_args = &args[2..];
        let argc = cmd_args.len() as i32;
        if (cmd.arity > 0 && argc != cmd.arity) || argc < -cmd.arity {
            return Err(CmdError::msg("ERR Invalid number of arguments specified for command"));
        }
        if !cmd.takes_keys() {
            return Err(CmdError::msg("ERR The command has no key arguments"));
        }
        // EVAL's key count may be 0 (Redis's no_mandatory_keys): no keys, not an error.
        let no_keys_ok = has_flag(cmd.name, "no_mandatory_keys") && cmd_args.get(cmd.keynum).is_some_and(|n| &n[..] == b"0");
        if cmd.counted_keys(cmd_args).is_none() && !no_keys_ok {
            return Err(CmdError::msg("ERR Invalid arguments specified for command"));
        }
        let keys: Vec<&Bytes> = cmd.keys(cmd_args).collect();
        out.array(keys.len());
        for k in keys {
            out.bulk(k);
        }
    } else {
        return Err(CmdError::unknown_subcommand(sub, "command"));
    }
    Ok(())
}

/// Names of respite's commands (and subcommands) in an ACL category, for ACL CAT.
pub fn commands_in_category(cat: &str) -> Vec<String> {
    let mut names = Vec::new();
    for c in TABLE {
        if in_acl_category(c.name, cat.as_bytes()) {
            names.push(c.name.to_string());
        }
    }
    names
}

fn in_acl_category(name: &str, cat: &[u8]) -> bool {
    // The RESP2 COMMAND INFO frame lists categories as simple strings: "+@read\r\n".
    let wanted = format!("+@{}\r\n", String::from_utf8_lossy(cat).to_ascii_lowercase());
    frame(name, Kind::Info, false).is_some_and(|f| f.windows(wanted.len()).any(|w| w == wanted.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis_protocol::resp2::types::OwnedFrame;

    fn num(f: &OwnedFrame) -> i64 {
        match f {
            OwnedFrame::Integer(n) => *n,
            other => panic!("not a number: {other:?}"),
        }
    }

    /// The table's arity and key positions are Redis's, for every command (decoded with the
    /// redis-protocol crate).
    #[test]
    fn table_matches_redis_command_info() {
        for c in TABLE {
            let raw = frame(c.name, Kind::Info, false).unwrap_or_else(|| panic!("no captured COMMAND INFO for {}", c.name));
            let (OwnedFrame::Array(data), used) = redis_protocol::resp2::decode::decode(raw).unwrap().unwrap() else {
                panic!("not an array")
            };
            assert_eq!(used, raw.len(), "one whole frame for {}", c.name);
            assert_eq!(num(&data[1]), c.arity as i64, "arity of {}", c.name);
            assert_eq!(num(&data[3]), c.first_key as i64, "first key of {}", c.name);
            assert_eq!(num(&data[4]), c.last_key as i64, "last key of {}", c.name);
            assert_eq!(num(&data[5]), c.step as i64, "step of {}", c.name);
            for resp3 in [false, true] {
                assert!(frame(c.name, Kind::Docs, resp3).is_some(), "docs for {}", c.name);
                assert!(frame(c.name, Kind::Info, resp3).is_some(), "info for {}", c.name);
            }
        }
        assert!(frame("config|get", Kind::Info, true).is_some());
    }
}
