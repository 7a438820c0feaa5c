//! Scripting: EVAL EVALSHA EVAL_RO EVALSHA_RO and SCRIPT (Redis 7.0's eval.c and script_lua.c)
//! on Lua 5.1, the version Redis embeds.
//!
//! A script runs under the keyspace's world lock (the command is EXCLUSIVE), so nothing
//! interleaves with it, as in Redis; `redis.call` runs the command through the same `call` as
//! EXEC. Each event-loop thread keeps its own Lua state and compiled functions: scripts cannot keep
//! state between runs (globals are read-only), so which state runs a script does not show.
//! The sandbox follows Redis: reading an unknown global or writing any global is an error,
//! `dofile`/`loadfile`/`load`/`loadstring`/`print`/`setfenv`/`getfenv` are absent.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value, Variadic};
use parking_lot::Mutex;
use sha1::{Digest, Sha1};

use super::{docs, eq_ic, flags, lookup, parse_i64, CmdError, CmdResult, Ctx, TABLE};
use crate::protocol::Reply;

/// Scripts loaded by EVAL or SCRIPT LOAD, by SHA-1 (lowercase hex); shared by every thread.
#[derive(Default)]
pub struct ScriptCache {
    bodies: Mutex<HashMap<String, Bytes>>,
    /// Bumped by SCRIPT FLUSH: each thread drops its compiled functions when it sees a new value.
    generation: AtomicU64,
    /// The Lua heap of the state that ran the last script (INFO's used_memory_lua).
    pub lua_memory: AtomicU64,
}

impl ScriptCache {
    pub fn len(&self) -> usize {
        self.bodies.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of script text held (INFO's used_memory_scripts_eval).
    pub fn bytes(&self) -> usize {
        self.bodies.lock().iter().map(|(sha, body)| sha.len() + body.len()).sum()
    }
}

/// How long a script may run before it is stopped: `busy-reply-threshold` (5000 ms). Redis only
/// starts answering BUSY then and waits for SCRIPT KILL; respite's event loop is the one running
/// the script, so it stops the script itself.
fn time_limit(ctx: &Ctx<'_>) -> Duration {
    let ms = ctx
        .server
        .config
        .get("busy-reply-threshold")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(5000);
    Duration::from_millis(ms.max(1))
}

/// An error `redis.call` raises: the text of the error table ("CODE message").
#[derive(Debug)]
struct Raised(String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

/// The error handler Redis installs (script_lua.c): an error becomes a table {err=...} ("ERR "
/// put before a plain message) with the source and line of the script where it was raised.
fn handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let t = match err {
        Value::Table(t) => t,
        Value::Error(e) => {
            // A Rust callback's error: the cause under mlua's callback wrappers.
            let mut cause: &mlua::Error = &e;
            while let mlua::Error::CallbackError { cause: inner, .. } = cause {
                cause = inner;
            }
            let text = match cause {
                mlua::Error::ExternalError(x) => match x.downcast_ref::<Raised>() {
                    Some(r) => r.0.clone(),
                    None => format!("ERR {x}"),
                },
                mlua::Error::RuntimeError(m) => format!("ERR {m}"),
                other => format!("ERR {other}"),
            };
            let t = lua.create_table()?;
            t.set("err", text)?;
            t
        }
        other => {
            let text = lua
                .coerce_string(other)?
                .map(|s| s.to_string_lossy())
                .unwrap_or_else(|| "nil".into());
            let t = lua.create_table()?;
            t.set("err", format!("ERR {text}"))?;
            t
        }
    };
    // The innermost frame of the user's script (levels above are this handler and whatever
    // raised the error).
    for level in 1.. {
        let Some(frame) = lua.inspect_stack(level) else { break };
        if frame.source().source.as_deref() == Some("@user_script") {
            t.set("source", "@user_script")?;
            t.set("line", frame.curr_line())?;
            break;
        }
    }
    Ok(t)
}

/// The read-only globals: a proxy table whose reads fall through to the real globals (Redis
/// makes the globals table itself read-only, an ability its patched Lua has).
const GLOBALS_META: &str = r#"
local globals = ...
local error, tostring = error, tostring
return {
  __index = function (t, k)
    if k == '_G' then return t end
    local v = globals[k]
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = function () error('Attempt to modify a readonly table', 2) end,
  __metatable = false,
}
"#;

/// Bound on each thread's Lua heap: a script that allocates past it fails with Lua's "not enough
/// memory".
const LUA_MEMORY_LIMIT: usize = 512 << 20;

struct Vm {
    lua: Lua,
    globals: Table,
    meta: Table,
    redis: Table,
    xpcall: Function,
    handler: Function,
    functions: HashMap<String, Function>,
    generation: u64,
}

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
    /// When the running script started and how long it may run (read by the instruction hook).
    static STARTED: std::cell::Cell<Option<(Instant, Duration)>> = const { std::cell::Cell::new(None) };
}

fn new_vm() -> mlua::Result<Vm> {
    // The debug library is for the error handler only: it is removed from the globals.
    let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH, LuaOptions::default())?;
    let g = lua.globals();
    let xpcall: Function = g.get("xpcall")?;
    for name in [
        "debug",
        "dofile",
        "loadfile",
        "load",
        "loadstring",
        "print",
        "setfenv",
        "getfenv",
        "newproxy",
        "gcinfo",
    ] {
        g.raw_set(name, Value::Nil)?;
    }
    let handler = lua.create_function(handler)?;
    let redis = lua.create_table()?;
    redis.set("status_reply", lua.create_function(status_reply)?)?;
    redis.set("error_reply", lua.create_function(error_reply)?)?;
    redis.set(
        "sha1hex",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.len() != 1 {
                return Err(mlua::Error::runtime("wrong number of arguments"));
            }
            let s = lua
                .coerce_string(args[0].clone())?
                .map(|s| s.as_bytes().to_vec())
                .unwrap_or_default();
            Ok(sha1_hex(&s))
        })?,
    )?;
    redis.set("log", lua.create_function(|_, _: Variadic<Value>| Ok(()))?)?;
    for (i, name) in ["LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING"].iter().enumerate() {
        redis.set(*name, i as i64)?;
    }
    redis.set(
        "setresp",
        lua.create_function(|lua, args: Variadic<Value>| {
            let v = match args.first() {
                Some(Value::Integer(n)) => *n as f64,
                Some(Value::Number(n)) => *n,
                _ => 0.0,
            };
            if args.len() != 1 || (v != 2.0 && v != 3.0) {
                return Err(mlua::Error::runtime("RESP version must be 2 or 3."));
            }
            lua.set_named_registry_value("resp", v as i64)
        })?,
    )?;
    g.set("redis", redis.clone())?;
    let meta: Table = lua.load(GLOBALS_META).set_name("=globals").call(g.clone())?;
    // A script cannot take the machine's memory: its Lua heap is bounded (Redis has no bound).
    lua.set_memory_limit(LUA_MEMORY_LIMIT)?;
    // Runaway scripts: look at the clock every 100k instructions.
    lua.set_hook(mlua::HookTriggers::new().every_nth_instruction(100_000), |_, _| {
        match STARTED.get() {
            Some((t, limit)) if t.elapsed() > limit => Err(mlua::Error::runtime(format!(
                "Script stopped after {} ms (busy-reply-threshold): respite serves no other client while a script runs",
                limit.as_millis()
            ))),
            _ => Ok(mlua::VmState::Continue),
        }
    });
    Ok(Vm {
        lua,
        globals: g,
        meta,
        redis,
        xpcall,
        handler,
        functions: HashMap::new(),
        generation: 0,
    })
}

fn sha1_hex(body: &[u8]) -> String {
    Sha1::digest(body).iter().map(|b| format!("{b:02x}")).collect()
}

/// Redis's luaPushErrorBuff: "-CODE msg" keeps its code, a plain "msg" gets ERR; the table
/// {err="CODE msg"} scripts see.
fn error_table(lua: &Lua, raw: &[u8]) -> mlua::Result<Table> {
    let text = String::from_utf8_lossy(raw);
    let (code, msg) = match text.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, msg)) => (code.to_string(), msg.to_string()),
            None => ("ERR".to_string(), rest.to_string()),
        },
        None => ("ERR".to_string(), text.to_string()),
    };
    let t = lua.create_table()?;
    t.set("err", format!("{code} {}", msg.trim_matches(['\r', '\n'])))?;
    Ok(t)
}

fn status_reply(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Table> {
    match args.first() {
        Some(Value::String(s)) if args.len() == 1 => {
            let t = lua.create_table()?;
            t.set("ok", s.clone())?;
            Ok(t)
        }
        _ => error_table(lua, b"wrong number or type of arguments"),
    }
}

fn error_reply(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Table> {
    match args.first() {
        Some(Value::String(s)) if args.len() == 1 => {
            let bytes = s.as_bytes();
            if bytes.first() == Some(&b'-') {
                error_table(lua, &bytes)
            } else {
                error_table(lua, &[b"-", &bytes[..]].concat())
            }
        }
        _ => error_table(lua, b"wrong number or type of arguments"),
    }
}

/// One reply frame of `buf` at `*pos` as the Lua value Redis gives scripts (redisProtocolToLuaType).
fn reply_to_lua(lua: &Lua, buf: &[u8], pos: &mut usize) -> mlua::Result<Value> {
    let line_end = buf[*pos..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| *pos + i)
        .unwrap_or(buf.len());
    let kind = buf[*pos];
    let line = &buf[*pos + 1..line_end];
    *pos = line_end + 2;
    let text = || String::from_utf8_lossy(line).into_owned();
    let num = || text().parse::<i64>().unwrap_or(0);
    let table_with = |key: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.set(key, v)?;
        Ok(Value::Table(t))
    };
    Ok(match kind {
        b'+' => table_with("ok", Value::String(lua.create_string(line)?))?,
        b'-' => Value::Table(error_table(lua, &[b"-", line].concat())?),
        b':' => Value::Number(num() as f64),
        b'$' | b'=' if num() < 0 => Value::Boolean(false),
        b'$' | b'=' => {
            let n = num() as usize;
            let s = &buf[*pos..*pos + n];
            *pos += n + 2;
            if kind == b'=' {
                let t = lua.create_table()?;
                t.set("format", lua.create_string(&s[..3.min(s.len())])?)?;
                t.set("string", lua.create_string(s.get(4..).unwrap_or_default())?)?;
                table_with("verbatim_string", Value::Table(t))?
            } else {
                Value::String(lua.create_string(s)?)
            }
        }
        b'*' if num() < 0 => Value::Boolean(false),
        b'*' | b'~' | b'>' => {
            let n = num() as usize;
            let t = lua.create_table()?;
            for i in 1..=n {
                let v = reply_to_lua(lua, buf, pos)?;
                if kind == b'~' {
                    t.raw_set(v, true)?;
                } else {
                    t.raw_seti(i, v)?;
                }
            }
            if kind == b'~' {
                table_with("set", Value::Table(t))?
            } else {
                Value::Table(t)
            }
        }
        b'%' => {
            let n = num() as usize;
            let t = lua.create_table()?;
            for _ in 0..n {
                let k = reply_to_lua(lua, buf, pos)?;
                let v = reply_to_lua(lua, buf, pos)?;
                t.raw_set(k, v)?;
            }
            table_with("map", Value::Table(t))?
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(line == b"t"),
        b',' => table_with("double", Value::Number(text().parse().unwrap_or(0.0)))?,
        b'(' => table_with("big_number", Value::String(lua.create_string(line)?))?,
        _ => Value::Nil,
    })
}

/// C's (long long) cast of a double on x86-64: out of range and NaN give i64::MIN.
fn lua_integer(v: f64) -> i64 {
    if v.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v) {
        i64::MIN
    } else {
        v as i64
    }
}

/// A status text as Redis writes it: no line breaks inside.
fn one_line(s: &[u8]) -> Vec<u8> {
    s.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect()
}

/// The script's return value as the client's reply (luaReplyToRedisReply).
fn lua_to_reply(v: &Value, out: &mut Reply, resp3_script: bool, depth: usize) {
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Boolean(b) if resp3_script => out.boolean(*b),
        Value::Boolean(true) => out.int(1),
        Value::Integer(n) => out.int(*n),
        Value::Number(n) => out.int(lua_integer(*n)),
        Value::Table(t) if depth < 1000 => {
            if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
                return out.error(&e.as_bytes());
            }
            if let Ok(Value::String(ok)) = t.raw_get::<Value>("ok") {
                out.simple(&String::from_utf8_lossy(&one_line(&ok.as_bytes())));
                return;
            }
            match t.raw_get::<Value>("double") {
                Ok(Value::Number(d)) => return out.double(d),
                Ok(Value::Integer(d)) => return out.double(d as f64),
                _ => {}
            }
            if let Ok(Value::String(b)) = t.raw_get::<Value>("big_number") {
                let digits = one_line(&b.as_bytes());
                if out.resp3 {
                    out.raw(b"(");
                    out.raw(&digits);
                    out.raw(b"\r\n");
                } else {
                    out.bulk(&digits);
                }
                return;
            }
            if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
                if let (Ok(Value::String(fmt)), Ok(Value::String(text))) = (v.raw_get::<Value>("format"), v.raw_get::<Value>("string")) {
                    if &fmt.as_bytes()[..] == b"txt" {
                        out.verbatim(&text.as_bytes());
                    } else {
                        out.bulk(&text.as_bytes());
                    }
                    return;
                }
            }
            if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
                let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
                out.map(pairs.len());
                for (k, v) in &pairs {
                    lua_to_reply(k, out, resp3_script, depth + 1);
                    lua_to_reply(v, out, resp3_script, depth + 1);
                }
                return;
            }
            if let Ok(Value::Table(m)) = t.raw_get::<Value>("set") {
                let members: Vec<Value> = m.pairs::<Value, Value>().filter_map(Result::ok).map(|(k, _)| k).collect();
                out.set(members.len());
                for k in &members {
                    lua_to_reply(k, out, resp3_script, depth + 1);
                }
                return;
            }
            let mut items = Vec::new();
            for i in 1.. {
                match t.raw_get::<Value>(i) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(v) => items.push(v),
                }
            }
            out.array(items.len());
            for item in &items {
                lua_to_reply(item, out, resp3_script, depth + 1);
            }
        }
        _ => out.null(),
    }
}

/// Whether Redis flags the command `noscript` (from its captured COMMAND INFO), by table index.
fn noscript(idx: usize) -> bool {
    static NOSCRIPT: std::sync::OnceLock<Vec<bool>> = std::sync::OnceLock::new();
    NOSCRIPT.get_or_init(|| TABLE.iter().map(|c| docs::has_flag(c.name, "noscript")).collect())[idx]
}

/// What the shebang line (`#!lua flags=...`) of a script allows.
#[derive(Default, Clone, Copy)]
struct ScriptFlags {
    no_writes: bool,
}

fn shebang(body: &[u8]) -> Result<(ScriptFlags, usize), CmdError> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags::default(), 0));
    }
    let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    let line = String::from_utf8_lossy(&body[..end]).into_owned();
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    if parts.next() != Some("#!lua") {
        let engine = line.split(' ').next().unwrap_or("");
        return Err(CmdError::msg(format!("ERR Unexpected engine in script shebang: {engine}")));
    }
    let mut flags = ScriptFlags::default();
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(CmdError::msg(format!("ERR Unknown lua shebang option: {part}")));
        };
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            match flag {
                "no-writes" => flags.no_writes = true,
                "allow-oom" | "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => return Err(CmdError::msg(format!("ERR Unexpected flag in script shebang: {other}"))),
            }
        }
    }
    Ok((flags, end))
}

/// Compiles `body` (the shebang line blanked, so line numbers stay) into the thread's state.
fn compile(vm: &mut Vm, sha: &str, body: &[u8], shebang_end: usize) -> Result<Function, CmdError> {
    if let Some(f) = vm.functions.get(sha) {
        return Ok(f.clone());
    }
    let src: Vec<u8> = if shebang_end > 0 {
        body[shebang_end..].to_vec()
    } else {
        body.to_vec()
    };
    let f = vm.lua.load(src).set_name("@user_script").into_function().map_err(|e| {
        let msg = match e {
            mlua::Error::SyntaxError { message, .. } => message,
            other => other.to_string(),
        };
        CmdError::msg(format!("ERR Error compiling script (new function): {msg}"))
    })?;
    vm.functions.insert(sha.to_string(), f.clone());
    Ok(f)
}

fn with_vm<R>(generation: u64, f: impl FnOnce(&mut Vm) -> Result<R, CmdError>) -> Result<R, CmdError> {
    VM.with(|cell| {
        // EVAL is `noscript`, so a script never starts another; refuse rather than trust that.
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return Err(CmdError::msg("ERR This Redis command is not allowed from script"));
        };
        if slot.is_none() {
            *slot = Some(new_vm().map_err(|e| CmdError::msg(format!("ERR Lua could not start: {e}")))?);
        }
        let vm = slot.as_mut().expect("just made");
        if vm.generation != generation {
            vm.functions.clear();
            vm.generation = generation;
        }
        f(vm)
    })
}

/// Runs one command for `redis.call`/`redis.pcall`: Ok(reply) or Ok(error table) with `false`.
fn script_call(ctx: &mut Ctx<'_>, lua: &Lua, args: Variadic<Value>, flags: ScriptFlags) -> mlua::Result<(bool, Value)> {
    let fail = |msg: &[u8]| -> mlua::Result<(bool, Value)> { Ok((false, Value::Table(error_table(lua, msg)?))) };
    if args.is_empty() {
        return fail(b"Please specify at least one argument for this redis lib call");
    }
    let mut argv: Vec<Bytes> = Vec::with_capacity(args.len());
    for a in args.iter() {
        match a {
            Value::String(_) | Value::Integer(_) | Value::Number(_) => match lua.coerce_string(a.clone())? {
                Some(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
                None => return fail(b"Lua redis lib command arguments must be strings or integers"),
            },
            _ => return fail(b"Lua redis lib command arguments must be strings or integers"),
        }
    }
    let Some(idx) = lookup(&argv[0]) else {
        return fail(b"Unknown Redis command called from script");
    };
    let cmd = &TABLE[idx];
    if (cmd.arity > 0 && argv.len() != cmd.arity as usize) || argv.len() < cmd.arity.unsigned_abs() as usize {
        return fail(b"Wrong number of args calling Redis command from script");
    }
    // A container's subcommand is a command of its own to a script (its flags decide).
    let mut sub_noscript = false;
    if cmd.flags & flags::SUBCOMMANDS != 0 && argv.len() >= 2 {
        if let Err(e) = docs::check_subcommand(cmd.name, &argv) {
            if e.0.starts_with("ERR unknown subcommand") {
                return fail(b"Unknown Redis command called from script");
            }
            return fail(b"Wrong number of args calling Redis command from script");
        }
        let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
        sub_noscript = docs::has_flag(&format!("{}|{sub}", cmd.name), "noscript");
    }
    if noscript(idx) || sub_noscript {
        return fail(b"This Redis command is not allowed from script");
    }
    if flags.no_writes && cmd.flags & flags::WRITE != 0 {
        return fail(b"Write commands are not allowed from read-only scripts.");
    }
    if cmd.flags & flags::DENYOOM != 0 && super::out_of_memory(ctx.server) {
        return fail(&[b"-", CmdError::OOM.0.as_bytes()].concat());
    }
    let resp3 = lua.named_registry_value::<i64>("resp").unwrap_or(2) == 3;
    let mut reply = Reply::new_empty(resp3);
    super::call(ctx.server, ctx.client, &mut reply, idx, &argv);
    if reply.buf.is_empty() {
        return Ok((true, Value::Nil));
    }
    if reply.buf[0] == b'-' {
        let end = reply.buf.len().saturating_sub(2);
        return fail(&reply.buf[..end]);
    }
    let mut pos = 0;
    Ok((true, reply_to_lua(lua, &reply.buf, &mut pos)?))
}

fn run(ctx: &mut Ctx<'_>, body: &[u8], sha: &str, args: &[Bytes], read_only: bool) -> CmdResult {
    let numkeys = parse_i64(&args[2])?;
    if numkeys < 0 {
        return Err(CmdError::msg("ERR Number of keys can't be negative"));
    }
    if numkeys as u64 > (args.len() - 3) as u64 {
        return Err(CmdError::msg("ERR Number of keys can't be greater than number of args"));
    }
    let (mut flags, shebang_end) = shebang(body)?;
    flags.no_writes |= read_only;
    let keys = &args[3..3 + numkeys as usize];
    let argv = &args[3 + numkeys as usize..];
    // Monitors see EVAL before the commands of its script (Redis feeds it first).
    if ctx.server.monitors.active() {
        let limit = ctx.server.pubsub.hard_limit.load(Ordering::Relaxed);
        ctx.server
            .monitors
            .feed(ctx.client.db, crate::monitor::Origin::Client(&ctx.client.info.addr), args, limit);
    }
    let saved_db = ctx.client.db;
    let saved_tx = std::mem::replace(&mut ctx.client.executing_transaction, true);
    let saved_in_script = std::mem::replace(&mut ctx.client.in_script, true);
    // Keyspace events the script's commands raise for this very client go before its reply.
    if ctx.client.subscriptions.active() {
        crate::pubsub::own_at(ctx.out.buf.len());
        crate::pubsub::own_pin(true);
    }
    let generation = ctx.server.scripts.generation.load(Ordering::Relaxed);
    let limit = time_limit(ctx);
    let result = with_vm(generation, |vm| {
        let function = compile(vm, sha, body, shebang_end)?;
        let lua = vm.lua.clone();
        let setup = || -> mlua::Result<()> {
            let to_table = |items: &[Bytes]| -> mlua::Result<Table> {
                let t = lua.create_table()?;
                for (i, k) in items.iter().enumerate() {
                    t.raw_seti(i + 1, lua.create_string(k)?)?;
                }
                Ok(t)
            };
            vm.globals.raw_set("KEYS", to_table(keys)?)?;
            vm.globals.raw_set("ARGV", to_table(argv)?)?;
            lua.set_named_registry_value("resp", 2i64)?;
            // A fresh read-only view of the globals for every run.
            let env = lua.create_table()?;
            env.set_metatable(Some(vm.meta.clone()));
            function.set_environment(env)?;
            Ok(())
        };
        setup().map_err(|e| CmdError::msg(format!("ERR {e}")))?;
        STARTED.set(Some((Instant::now(), limit)));
        // One command runner for redis.call and redis.pcall (its borrow of `ctx` ends with the scope).
        let cell = RefCell::new(&mut *ctx);
        let ctx_cell = &cell;
        let outcome = lua.scope(|scope| {
            let call = scope.create_function(
                |lua, a: Variadic<Value>| match script_call(&mut ctx_cell.borrow_mut(), lua, a, flags)? {
                    (true, v) => Ok(v),
                    (false, Value::Table(t)) => {
                        let text: String = t.get::<mlua::String>("err").map(|s| s.to_string_lossy()).unwrap_or_default();
                        Err(mlua::Error::external(Raised(text)))
                    }
                    (false, v) => Ok(v),
                },
            )?;
            let pcall = scope.create_function(|lua, a: Variadic<Value>| Ok(script_call(&mut ctx_cell.borrow_mut(), lua, a, flags)?.1))?;
            vm.redis.raw_set("call", call)?;
            vm.redis.raw_set("pcall", pcall)?;
            let r: MultiValue = vm.xpcall.call((function.clone(), vm.handler.clone()))?;
            vm.redis.raw_set("call", Value::Nil)?;
            vm.redis.raw_set("pcall", Value::Nil)?;
            let mut r = r.into_iter();
            let ok = matches!(r.next(), Some(Value::Boolean(true)));
            Ok((ok, r.next().unwrap_or(Value::Nil)))
        });
        STARTED.set(None);
        cell.borrow()
            .server
            .scripts
            .lua_memory
            .store(lua.used_memory() as u64, Ordering::Relaxed);
        let resp3_script = lua.named_registry_value::<i64>("resp").unwrap_or(2) == 3;
        let (ok, value) = outcome.map_err(|e| CmdError::msg(format!("ERR Error running script: {e}")))?;
        if ok {
            lua_to_reply(&value, ctx.out, resp3_script, 0);
            return Ok(());
        }
        // The error table the handler made: "<err> script: <sha>, on <source>:<line>."
        let Value::Table(t) = value else {
            return Err(CmdError::msg("ERR Error running script: execution failure"));
        };
        let err: String = t
            .raw_get::<Option<mlua::String>>("err")
            .ok()
            .flatten()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default();
        let source: Option<String> = t.raw_get("source").ok();
        let line: Option<i64> = t.raw_get("line").ok();
        // Reply::error turns the message's line breaks into spaces.
        let msg = match (source, line) {
            (Some(source), Some(line)) => format!("{err} script: {sha}, on {source}:{line}."),
            _ => err,
        };
        Err(CmdError::msg(msg))
    });
    if ctx.client.subscriptions.active() {
        crate::pubsub::own_pin(false);
    }
    ctx.client.executing_transaction = saved_tx;
    ctx.client.in_script = saved_in_script;
    // As Redis 7: SELECT inside a script does not change the caller's database.
    ctx.client.db = saved_db;
    result
}

fn remember(ctx: &Ctx<'_>, body: &Bytes) -> String {
    let sha = sha1_hex(body);
    ctx.server.scripts.bodies.lock().entry(sha.clone()).or_insert_with(|| body.clone());
    sha
}

pub fn eval(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sha = remember(ctx, &args[1]);
    run(ctx, &args[1].clone(), &sha, args, false)
}

pub fn eval_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sha = remember(ctx, &args[1]);
    run(ctx, &args[1].clone(), &sha, args, true)
}

fn evalsha_generic(ctx: &mut Ctx<'_>, args: &[Bytes], read_only: bool) -> CmdResult {
    let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let body = ctx.server.scripts.bodies.lock().get(&sha).cloned();
    match body {
        Some(body) if sha.len() == 40 => run(ctx, &body, &sha, args, read_only),
        _ => Err(CmdError::msg("NOSCRIPT No matching script. Please use EVAL.")),
    }
}

pub fn evalsha(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    evalsha_generic(ctx, args, false)
}

pub fn evalsha_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    evalsha_generic(ctx, args, true)
}

pub fn script(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if eq_ic(sub, "load") {
        let body = &args[2];
        let (_, shebang_end) = shebang(body)?;
        let sha = sha1_hex(body);
        // Compiled first: a script that does not compile is not remembered.
        let generation = ctx.server.scripts.generation.load(Ordering::Relaxed);
        with_vm(generation, |vm| compile(vm, &sha, body, shebang_end).map(|_| ()))?;
        remember(ctx, body);
        ctx.out.bulk(sha.as_bytes());
    } else if eq_ic(sub, "exists") {
        let bodies = ctx.server.scripts.bodies.lock();
        let found: Vec<bool> = args[2..]
            .iter()
            .map(|s| bodies.contains_key(&String::from_utf8_lossy(s).to_ascii_lowercase()))
            .collect();
        drop(bodies);
        ctx.out.array(found.len());
        found.into_iter().for_each(|f| ctx.out.int(i64::from(f)));
    } else if eq_ic(sub, "flush") {
        if args.len() > 3 || args.get(2).is_some_and(|m| !eq_ic(m, "sync") && !eq_ic(m, "async")) {
            return Err(CmdError::msg("ERR SCRIPT FLUSH only support SYNC|ASYNC option"));
        }
        ctx.server.scripts.bodies.lock().clear();
        ctx.server.scripts.generation.fetch_add(1, Ordering::Relaxed);
        ctx.out.ok();
    } else if eq_ic(sub, "debug") {
        // The Lua debugger (ldb) is not there: only turning it off succeeds.
        if eq_ic(&args[2], "no") {
            ctx.out.ok();
        } else if eq_ic(&args[2], "yes") || eq_ic(&args[2], "sync") {
            return Err(CmdError::msg("ERR SCRIPT DEBUG is not supported by respite (no Lua debugger)"));
        } else {
            return Err(CmdError::msg("ERR Use SCRIPT DEBUG YES/SYNC/NO"));
        }
    } else if eq_ic(sub, "kill") {
        return Err(CmdError::msg("NOTBUSY No scripts in execution right now."));
    } else if eq_ic(sub, "help") {
        return docs::help(ctx, "script");
    } else {
        return Err(CmdError::msg(format!(
            "ERR unknown subcommand '{}'. Try SCRIPT HELP.",
            String::from_utf8_lossy(sub)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_kept_or_added_as_redis_does() {
        let lua = Lua::new();
        let err = |raw: &[u8]| error_table(&lua, raw).unwrap().get::<String>("err").unwrap();
        assert_eq!(err(b"-My Error"), "My Error");
        assert_eq!(err(b"-Oops"), "ERR Oops");
        assert_eq!(err(b"-"), "ERR ");
        assert_eq!(err(b"plain words"), "ERR plain words");
        assert_eq!(err(b"-WRONGTYPE Operation\r\n"), "WRONGTYPE Operation");
    }

    #[test]
    fn numbers_become_integers_as_a_c_cast() {
        assert_eq!(lua_integer(3.99), 3);
        assert_eq!(lua_integer(-2.5), -2);
        assert_eq!(lua_integer(1e20), i64::MIN);
        assert_eq!(lua_integer(f64::NAN), i64::MIN);
    }

    #[test]
    fn shebangs_parse_as_in_redis() {
        assert_eq!(shebang(b"return 1").unwrap().1, 0);
        assert!(shebang(b"#!lua flags=no-writes\nreturn 1").unwrap().0.no_writes);
        assert_eq!(shebang(b"#!lua\nreturn 1").unwrap().1, 5);
        assert!(shebang(b"#!python\nx").is_err());
        assert!(shebang(b"#!lua flags=foo\nx").is_err());
    }
}
