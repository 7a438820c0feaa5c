//! COMMAND: COUNT, LIST, INFO, DOCS, GETKEYS. Names, arity and key positions come from the table;
//! the descriptive parts (flags, ACL categories, key specs, argument docs for redis-cli's hints)
//! are Redis 7.0.15's own replies, captured by tools/capture-redis-spec.py and decoded here with
//! the redis-protocol crate.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use redis_protocol::resp3::types::OwnedFrame;

use super::{eq_ic, CmdError, CmdResult, Ctx, TABLE};
use crate::glob::glob_match;
use crate::protocol::Reply;

const INFO_RESP3: &[u8] = include_bytes!("redis-command-info.resp3");
const DOCS_RESP3: &[u8] = include_bytes!("redis-command-docs.resp3");

struct Spec {
    info: HashMap<String, OwnedFrame>,
    docs: HashMap<String, OwnedFrame>,
}

fn text(f: &OwnedFrame) -> Option<String> {
    match f {
        OwnedFrame::BlobString { data, .. } | OwnedFrame::SimpleString { data, .. } => Some(String::from_utf8_lossy(data).into_owned()),
        _ => None,
    }
}

fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut info = HashMap::new();
        if let Ok(Some((OwnedFrame::Array { data, .. }, _))) = redis_protocol::resp3::decode::complete::decode(INFO_RESP3) {
            for item in data {
                if let OwnedFrame::Array { data: fields, .. } = &item {
                    if let Some(name) = fields.first().and_then(text) {
                        info.insert(name, item);
                    }
                }
            }
        }
        let mut docs = HashMap::new();
        if let Ok(Some((OwnedFrame::Map { data, .. }, _))) = redis_protocol::resp3::decode::complete::decode(DOCS_RESP3) {
            for (k, v) in data {
                if let Some(name) = text(&k) {
                    docs.insert(name, v);
                }
            }
        }
        Spec { info, docs }
    })
}

/// Writes a decoded frame as a reply in the client's protocol.
fn write_frame(out: &mut Reply, f: &OwnedFrame) {
    match f {
        OwnedFrame::BlobString { data, .. } => out.bulk(data),
        OwnedFrame::SimpleString { data, .. } => out.simple(&String::from_utf8_lossy(data)),
        OwnedFrame::SimpleError { data, .. } => out.error(data.as_bytes()),
        OwnedFrame::BlobError { data, .. } => out.error(data),
        OwnedFrame::Number { data, .. } => out.int(*data),
        OwnedFrame::Double { data, .. } => out.double(*data),
        OwnedFrame::Boolean { data, .. } => out.boolean(*data),
        OwnedFrame::VerbatimString { data, .. } => out.verbatim(data),
        OwnedFrame::Array { data, .. } => {
            out.array(data.len());
            for x in data {
                write_frame(out, x);
            }
        }
        // The capture stores Redis's sets as push frames (see tools/capture-redis-spec.py).
        OwnedFrame::Push { data, .. } => {
            out.set(data.len());
            for x in data {
                write_frame(out, x);
            }
        }
        OwnedFrame::Set { data, .. } => {
            out.set(data.len());
            for x in data {
                write_frame(out, x);
            }
        }
        OwnedFrame::Map { data, .. } => {
            out.map(data.len());
            for (k, v) in data {
                write_frame(out, k);
                write_frame(out, v);
            }
        }
        _ => out.null(),
    }
}

fn write_info(out: &mut Reply, name: &str) {
    match spec().info.get(name) {
        Some(f) => write_frame(out, f),
        None => out.null_array(),
    }
}

const HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "HELP",
    "    Print this help.",
];

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
        return super::keys::help(ctx, HELP);
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
                match super::lookup(name) {
                    Some(i) => write_info(out, TABLE[i].name),
                    None => out.null_array(),
                }
            }
        }
    } else if eq_ic(sub, "docs") {
        let names: Vec<&str> = if args.len() == 2 {
            TABLE.iter().map(|c| c.name).collect()
        } else {
            args[2..].iter().filter_map(|n| super::lookup(n).map(|i| TABLE[i].name)).collect()
        };
        let found: Vec<(&str, &OwnedFrame)> = names.iter().filter_map(|n| spec().docs.get(*n).map(|d| (*n, d))).collect();
        out.map(found.len());
        for (name, doc) in found {
            out.bulk(name.as_bytes());
            write_frame(out, doc);
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
        super::sub_arity(args, -3, "command|getkeys")?;
        let Some(i) = super::lookup(&args[2]) else {
            return Err(CmdError::msg("ERR Invalid command specified"));
        };
        let cmd = &TABLE[i];
        let cmd_args = &args[2..];
        let argc = cmd_args.len() as i32;
        if (cmd.arity > 0 && argc != cmd.arity) || argc < -cmd.arity {
            return Err(CmdError::msg("ERR Invalid number of arguments specified for command"));
        }
        if cmd.first_key == 0 {
            return Err(CmdError::msg("ERR The command has no key arguments"));
        }
        let last = if cmd.last_key < 0 { argc + cmd.last_key } else { cmd.last_key };
        let keys: Vec<&Bytes> = (cmd.first_key..=last)
            .step_by(cmd.step.max(1) as usize)
            .filter_map(|p| cmd_args.get(p as usize))
            .collect();
        out.array(keys.len());
        for k in keys {
            out.bulk(k);
        }
    } else {
        return Err(CmdError::unknown_subcommand(sub, "command"));
    }
    Ok(())
}

fn in_acl_category(name: &str, cat: &[u8]) -> bool {
    let Some(OwnedFrame::Array { data, .. }) = spec().info.get(name) else {
        return false;
    };
    let wanted = format!("@{}", String::from_utf8_lossy(cat).to_ascii_lowercase());
    match data.get(6) {
        Some(OwnedFrame::Push { data, .. }) | Some(OwnedFrame::Array { data, .. }) => {
            data.iter().any(|f| text(f).as_deref() == Some(wanted.as_str()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(f: &OwnedFrame) -> i64 {
        match f {
            OwnedFrame::Number { data, .. } => *data,
            _ => panic!("not a number"),
        }
    }

    /// The table's arity and key positions are Redis's, for every command.
    #[test]
    fn table_matches_redis_command_info() {
        for c in TABLE {
            let Some(OwnedFrame::Array { data, .. }) = spec().info.get(c.name) else {
                panic!("no captured COMMAND INFO for {}", c.name);
            };
            assert_eq!(num(&data[1]), c.arity as i64, "arity of {}", c.name);
            assert_eq!(num(&data[3]), c.first_key as i64, "first key of {}", c.name);
            assert_eq!(num(&data[4]), c.last_key as i64, "last key of {}", c.name);
            assert_eq!(num(&data[5]), c.step as i64, "step of {}", c.name);
            assert!(spec().docs.contains_key(c.name), "docs for {}", c.name);
        }
    }
}
