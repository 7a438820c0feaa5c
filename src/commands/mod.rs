//! Commands: one table row per command (name, arity, flags, key positions, handler) and one file
//! per family. Dispatch, COMMAND, AUTH checks and MULTI queueing all read the table.

mod acl;
mod bitmaps;
pub mod blocking;
mod cluster;
mod connection;
pub mod docs;
mod expire;
mod geo;
mod hashes;
mod hyperloglog;
mod info;
mod keys;
mod lists;
pub mod pubsub;
pub mod scripting;
mod server;
mod sets;
mod sort;
mod strings;
mod transactions;
mod zsets;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use bytes::Bytes;

use crate::client::Client;
use crate::keyspace::Keyspace;
use crate::protocol::Reply;
use crate::server::Server;

pub type CmdResult = Result<(), CmdError>;
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> CmdResult;

/// Flags of a table row (a subset of Redis's, plus what respite's dispatch needs).
pub mod flags {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    /// Allowed before AUTH.
    pub const NO_AUTH: u32 = 1 << 4;
    pub const FAST: u32 = 1 << 5;
    /// Runs with the keyspace's world lock held exclusively (spans shards or databases).
    pub const EXCLUSIVE: u32 = 1 << 6;
    /// Runs at once even inside MULTI (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
    pub const NO_QUEUE: u32 = 1 << 7;
    /// A container (CONFIG, CLIENT ...): the first argument names a subcommand.
    pub const SUBCOMMANDS: u32 = 1 << 8;
    /// Allowed to a RESP2 client in subscribed mode (the (P|S)(UN)SUBSCRIBEs, PING, QUIT, RESET).
    pub const PUBSUB_OK: u32 = 1 << 9;
    /// A `STORE key` option names one more key (SORT's sortGetKeys; GEORADIUS's STORE and
    /// STOREDIST, georadiusGetKeys).
    pub const STORE_OPTION: u32 = 1 << 10;
    /// Redis's may_replicate: not a write, but held by CLIENT PAUSE WRITE as writes are.
    pub const MAY_REPLICATE: u32 = 1 << 11;
    /// Redis's skip_slowlog: never in the slow log (EXEC: its commands are, one by one).
    pub const SKIP_SLOWLOG: u32 = 1 << 12;
}

use flags::*;

pub struct Command {
    pub name: &'static str,
    /// Redis's arity: exact count if positive, minimum count if negative (name included).
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// Commands whose keys follow a count (LMPOP 2 a b, ZUNIONSTORE d 2 a b: Redis's "keynum" key
    /// specs): the count's position; 0 for none.
    pub keynum: usize,
    pub handler: Handler,
}

impl Command {
    /// The key arguments of a call (`args` includes the command name), by the table's positions.
    pub fn keys<'a>(&self, args: &'a [Bytes]) -> impl Iterator<Item = &'a Bytes> + 'a {
        let argc = args.len() as i32;
        let last = if self.last_key < 0 { argc + self.last_key } else { self.last_key };
        let (first, step) = (self.first_key, self.step.max(1) as usize);
        // No keys (first 0) gives an empty range.
        let last = if first == 0 { -1 } else { last };
        let fixed = (first.max(1)..=last).step_by(step).filter_map(move |p| args.get(p as usize));
        let store = match self.flags & STORE_OPTION != 0 {
            true if self.name == "sort" => [sort::store_key(args), None],
            true => geo::store_keys(args),
            false => [None, None],
        };
        fixed
            .chain(self.counted_keys(args).unwrap_or_default())
            .chain(store.into_iter().flatten())
    }

    /// Whether the command names keys at all (COMMAND GETKEYS refuses those that do not).
    pub fn takes_keys(&self) -> bool {
        self.first_key != 0 || self.keynum != 0
    }

    /// The keys after the count: None when the count is not a number of keys the call holds
    /// (the command itself then answers with its own error).
    pub fn counted_keys<'a>(&self, args: &'a [Bytes]) -> Option<&'a [Bytes]> {
        if self.keynum == 0 {
            return Some(&[]);
        }
        let n = parse_i64_strict(args.get(self.keynum)?).filter(|n| *n >= 1)?;
        let start = self.keynum + 1;
        let end = start.checked_add(usize::try_from(n).ok()?)?;
        args.get(start..end)
    }
}

macro_rules! cmd {
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $handler:path) => {
        cmd!($name, $arity, $flags, $first, $last, $step, $handler, keynum = 0)
    };
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $handler:path, keynum = $keynum:expr) => {
        Command {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            keynum: $keynum,
            handler: $handler,
        }
    };
}

static TABLE: &[Command] = &[
    // connection
    cmd!("ping", -1, FAST | PUBSUB_OK, 0, 0, 0, connection::ping),
    cmd!("echo", 2, FAST, 0, 0, 0, connection::echo),
    cmd!("quit", -1, NO_AUTH | FAST | NO_QUEUE | PUBSUB_OK, 0, 0, 0, connection::quit),
    cmd!("hello", -1, NO_AUTH | FAST, 0, 0, 0, connection::hello),
    cmd!("auth", -2, NO_AUTH | FAST, 0, 0, 0, connection::auth),
    cmd!("select", 2, FAST, 0, 0, 0, connection::select),
    cmd!("reset", 1, NO_AUTH | FAST | NO_QUEUE | PUBSUB_OK, 0, 0, 0, connection::reset),
    cmd!("client", -2, SUBCOMMANDS, 0, 0, 0, connection::client),
    cmd!("command", -1, SUBCOMMANDS, 0, 0, 0, docs::command),
    // strings
    cmd!("get", 2, READONLY | FAST, 1, 1, 1, strings::get),
    cmd!("set", -3, WRITE | DENYOOM, 1, 1, 1, strings::set),
    cmd!("setnx", 3, WRITE | DENYOOM | FAST, 1, 1, 1, strings::setnx),
    cmd!("setex", 4, WRITE | DENYOOM, 1, 1, 1, strings::setex),
    cmd!("psetex", 4, WRITE | DENYOOM, 1, 1, 1, strings::psetex),
    cmd!("getset", 3, WRITE | DENYOOM | FAST, 1, 1, 1, strings::getset),
    cmd!("getdel", 2, WRITE | FAST, 1, 1, 1, strings::getdel),
    cmd!("getex", -2, WRITE | FAST, 1, 1, 1, strings::getex),
    cmd!("mget", -2, READONLY | FAST | EXCLUSIVE, 1, -1, 1, strings::mget),
    cmd!("mset", -3, WRITE | DENYOOM | EXCLUSIVE, 1, -1, 2, strings::mset),
    cmd!("msetnx", -3, WRITE | DENYOOM | EXCLUSIVE, 1, -1, 2, strings::msetnx),
    cmd!("append", 3, WRITE | DENYOOM | FAST, 1, 1, 1, strings::append),
    cmd!("strlen", 2, READONLY | FAST, 1, 1, 1, strings::strlen),
    cmd!("getrange", 4, READONLY, 1, 1, 1, strings::getrange),
    cmd!("substr", 4, READONLY, 1, 1, 1, strings::getrange),
    cmd!("setrange", 4, WRITE | DENYOOM, 1, 1, 1, strings::setrange),
    cmd!("lcs", -3, READONLY | EXCLUSIVE, 1, 2, 1, strings::lcs),
    // HyperLogLog
    cmd!("pfadd", -2, WRITE | DENYOOM | FAST, 1, 1, 1, hyperloglog::pfadd),
    cmd!("pfcount", -2, READONLY | EXCLUSIVE | MAY_REPLICATE, 1, -1, 1, hyperloglog::pfcount),
    cmd!("pfmerge", -2, WRITE | DENYOOM | EXCLUSIVE, 1, -1, 1, hyperloglog::pfmerge),
    // bitmaps
    cmd!("setbit", 4, WRITE | DENYOOM, 1, 1, 1, bitmaps::setbit),
    cmd!("getbit", 3, READONLY | FAST, 1, 1, 1, bitmaps::getbit),
    cmd!("bitcount", -2, READONLY, 1, 1, 1, bitmaps::bitcount),
    cmd!("bitpos", -3, READONLY, 1, 1, 1, bitmaps::bitpos),
    cmd!("bitop", -4, WRITE | DENYOOM | EXCLUSIVE, 2, -1, 1, bitmaps::bitop),
    cmd!("bitfield", -2, WRITE | DENYOOM, 1, 1, 1, bitmaps::bitfield),
    cmd!("bitfield_ro", -2, READONLY | FAST, 1, 1, 1, bitmaps::bitfield_ro),
    cmd!("incr", 2, WRITE | DENYOOM | FAST, 1, 1, 1, strings::incr),
    cmd!("decr", 2, WRITE | DENYOOM | FAST, 1, 1, 1, strings::decr),
    cmd!("incrby", 3, WRITE | DENYOOM | FAST, 1, 1, 1, strings::incrby),
    cmd!("decrby", 3, WRITE | DENYOOM | FAST, 1, 1, 1, strings::decrby),
    cmd!("incrbyfloat", 3, WRITE | DENYOOM | FAST, 1, 1, 1, strings::incrbyfloat),
    // hashes
    cmd!("hset", -4, WRITE | DENYOOM | FAST, 1, 1, 1, hashes::hset),
    cmd!("hsetnx", 4, WRITE | DENYOOM | FAST, 1, 1, 1, hashes::hsetnx),
    cmd!("hmset", -4, WRITE | DENYOOM | FAST, 1, 1, 1, hashes::hmset),
    cmd!("hget", 3, READONLY | FAST, 1, 1, 1, hashes::hget),
    cmd!("hmget", -3, READONLY | FAST, 1, 1, 1, hashes::hmget),
    cmd!("hgetall", 2, READONLY, 1, 1, 1, hashes::hgetall),
    cmd!("hkeys", 2, READONLY, 1, 1, 1, hashes::hkeys),
    cmd!("hvals", 2, READONLY, 1, 1, 1, hashes::hvals),
    cmd!("hlen", 2, READONLY | FAST, 1, 1, 1, hashes::hlen),
    cmd!("hexists", 3, READONLY | FAST, 1, 1, 1, hashes::hexists),
    cmd!("hstrlen", 3, READONLY | FAST, 1, 1, 1, hashes::hstrlen),
    cmd!("hdel", -3, WRITE | FAST, 1, 1, 1, hashes::hdel),
    cmd!("hincrby", 4, WRITE | DENYOOM | FAST, 1, 1, 1, hashes::hincrby),
    cmd!("hincrbyfloat", 4, WRITE | DENYOOM | FAST, 1, 1, 1, hashes::hincrbyfloat),
    cmd!("hrandfield", -2, READONLY, 1, 1, 1, hashes::hrandfield),
    cmd!("hscan", -3, READONLY, 1, 1, 1, hashes::hscan),
    // lists
    cmd!("lpush", -3, WRITE | DENYOOM | FAST, 1, 1, 1, lists::lpush),
    cmd!("rpush", -3, WRITE | DENYOOM | FAST, 1, 1, 1, lists::rpush),
    cmd!("lpushx", -3, WRITE | DENYOOM | FAST, 1, 1, 1, lists::lpushx),
    cmd!("rpushx", -3, WRITE | DENYOOM | FAST, 1, 1, 1, lists::rpushx),
    cmd!("lpop", -2, WRITE | FAST, 1, 1, 1, lists::lpop),
    cmd!("rpop", -2, WRITE | FAST, 1, 1, 1, lists::rpop),
    cmd!("llen", 2, READONLY | FAST, 1, 1, 1, lists::llen),
    cmd!("lrange", 4, READONLY, 1, 1, 1, lists::lrange),
    cmd!("lindex", 3, READONLY, 1, 1, 1, lists::lindex),
    cmd!("lset", 4, WRITE | DENYOOM, 1, 1, 1, lists::lset),
    cmd!("linsert", 5, WRITE | DENYOOM, 1, 1, 1, lists::linsert),
    cmd!("lrem", 4, WRITE, 1, 1, 1, lists::lrem),
    cmd!("ltrim", 4, WRITE, 1, 1, 1, lists::ltrim),
    cmd!("lpos", -3, READONLY, 1, 1, 1, lists::lpos),
    cmd!("lmove", 5, WRITE | DENYOOM | EXCLUSIVE, 1, 2, 1, lists::lmove),
    cmd!("rpoplpush", 3, WRITE | DENYOOM | EXCLUSIVE, 1, 2, 1, lists::rpoplpush),
    // LMPOP and BLMPOP take their keys after numkeys (movable keys: none by position).
    cmd!("lmpop", -4, WRITE | EXCLUSIVE, 0, 0, 0, lists::lmpop, keynum = 1),
    cmd!("blpop", -3, WRITE | EXCLUSIVE, 1, -2, 1, lists::blpop),
    cmd!("brpop", -3, WRITE | EXCLUSIVE, 1, -2, 1, lists::brpop),
    cmd!("blmove", 6, WRITE | DENYOOM | EXCLUSIVE, 1, 2, 1, lists::blmove),
    cmd!("brpoplpush", 4, WRITE | DENYOOM | EXCLUSIVE, 1, 2, 1, lists::brpoplpush),
    cmd!("blmpop", -5, WRITE | EXCLUSIVE, 0, 0, 0, lists::blmpop, keynum = 2),
    // keys
    cmd!("sort", -2, WRITE | DENYOOM | EXCLUSIVE | STORE_OPTION, 1, 1, 1, sort::sort),
    cmd!("sort_ro", -2, READONLY | EXCLUSIVE, 1, 1, 1, sort::sort_ro),
    cmd!("del", -2, WRITE | EXCLUSIVE, 1, -1, 1, keys::del),
    cmd!("unlink", -2, WRITE | FAST | EXCLUSIVE, 1, -1, 1, keys::del),
    cmd!("exists", -2, READONLY | FAST, 1, -1, 1, keys::exists),
    cmd!("type", 2, READONLY | FAST, 1, 1, 1, keys::type_),
    cmd!("keys", 2, READONLY, 0, 0, 0, keys::keys),
    cmd!("scan", -2, READONLY, 0, 0, 0, keys::scan),
    cmd!("randomkey", 1, READONLY, 0, 0, 0, keys::randomkey),
    cmd!("rename", 3, WRITE | EXCLUSIVE, 1, 2, 1, keys::rename),
    cmd!("renamenx", 3, WRITE | FAST | EXCLUSIVE, 1, 2, 1, keys::renamenx),
    cmd!("copy", -3, WRITE | DENYOOM | EXCLUSIVE, 1, 2, 1, keys::copy),
    cmd!("move", 3, WRITE | FAST | EXCLUSIVE, 1, 1, 1, keys::move_),
    cmd!("swapdb", 3, WRITE | FAST | EXCLUSIVE, 0, 0, 0, keys::swapdb),
    cmd!("dbsize", 1, READONLY | FAST, 0, 0, 0, keys::dbsize),
    cmd!("flushdb", -1, WRITE | EXCLUSIVE, 0, 0, 0, keys::flushdb),
    cmd!("flushall", -1, WRITE | EXCLUSIVE, 0, 0, 0, keys::flushall),
    cmd!("touch", -2, READONLY | FAST, 1, -1, 1, keys::touch),
    cmd!("object", -2, READONLY | SUBCOMMANDS, 0, 0, 0, keys::object),
    cmd!("memory", -2, READONLY | SUBCOMMANDS, 0, 0, 0, keys::memory),
    // sets
    cmd!("sadd", -3, WRITE | DENYOOM | FAST, 1, 1, 1, sets::sadd),
    cmd!("srem", -3, WRITE | FAST, 1, 1, 1, sets::srem),
    cmd!("smembers", 2, READONLY, 1, 1, 1, sets::smembers),
    cmd!("sismember", 3, READONLY | FAST, 1, 1, 1, sets::sismember),
    cmd!("smismember", -3, READONLY | FAST, 1, 1, 1, sets::smismember),
    cmd!("scard", 2, READONLY | FAST, 1, 1, 1, sets::scard),
    cmd!("spop", -2, WRITE | FAST, 1, 1, 1, sets::spop),
    cmd!("srandmember", -2, READONLY, 1, 1, 1, sets::srandmember),
    cmd!("smove", 4, WRITE | FAST | EXCLUSIVE, 1, 2, 1, sets::smove),
    cmd!("sinter", -2, READONLY | EXCLUSIVE, 1, -1, 1, sets::sinter),
    cmd!("sunion", -2, READONLY | EXCLUSIVE, 1, -1, 1, sets::sunion),
    cmd!("sdiff", -2, READONLY | EXCLUSIVE, 1, -1, 1, sets::sdiff),
    cmd!("sinterstore", -3, WRITE | DENYOOM | EXCLUSIVE, 1, -1, 1, sets::sinterstore),
    cmd!("sunionstore", -3, WRITE | DENYOOM | EXCLUSIVE, 1, -1, 1, sets::sunionstore),
    cmd!("sdiffstore", -3, WRITE | DENYOOM | EXCLUSIVE, 1, -1, 1, sets::sdiffstore),
    cmd!("sintercard", -3, READONLY | EXCLUSIVE, 0, 0, 0, sets::sintercard, keynum = 1),
    cmd!("sscan", -3, READONLY, 1, 1, 1, sets::sscan),
    // expiry
    cmd!("expire", -3, WRITE | FAST, 1, 1, 1, expire::expire),
    cmd!("pexpire", -3, WRITE | FAST, 1, 1, 1, expire::pexpire),
    cmd!("expireat", -3, WRITE | FAST, 1, 1, 1, expire::expireat),
    cmd!("pexpireat", -3, WRITE | FAST, 1, 1, 1, expire::pexpireat),
    cmd!("ttl", 2, READONLY | FAST, 1, 1, 1, expire::ttl),
    cmd!("pttl", 2, READONLY | FAST, 1, 1, 1, expire::pttl),
    cmd!("expiretime", 2, READONLY | FAST, 1, 1, 1, expire::expiretime),
    cmd!("pexpiretime", 2, READONLY | FAST, 1, 1, 1, expire::pexpiretime),
    cmd!("persist", 2, WRITE | FAST, 1, 1, 1, expire::persist),
    // pub/sub
    cmd!("subscribe", -2, PUBSUB_OK, 0, 0, 0, pubsub::subscribe),
    cmd!("unsubscribe", -1, PUBSUB_OK, 0, 0, 0, pubsub::unsubscribe),
    cmd!("psubscribe", -2, PUBSUB_OK, 0, 0, 0, pubsub::psubscribe),
    cmd!("punsubscribe", -1, PUBSUB_OK, 0, 0, 0, pubsub::punsubscribe),
    cmd!("ssubscribe", -2, PUBSUB_OK, 1, -1, 1, pubsub::ssubscribe),
    cmd!("sunsubscribe", -1, PUBSUB_OK, 1, -1, 1, pubsub::sunsubscribe),
    cmd!("publish", 3, FAST | MAY_REPLICATE, 0, 0, 0, pubsub::publish),
    cmd!("spublish", 3, FAST | MAY_REPLICATE, 1, 1, 1, pubsub::spublish),
    cmd!("pubsub", -2, SUBCOMMANDS, 0, 0, 0, pubsub::pubsub),
    // sorted sets
    // geo (sorted sets of geohashes)
    cmd!("geoadd", -5, WRITE | DENYOOM, 1, 1, 1, geo::geoadd),
    cmd!("geodist", -4, READONLY, 1, 1, 1, geo::geodist),
    cmd!("geohash", -2, READONLY, 1, 1, 1, geo::geohash),
    cmd!("geopos", -2, READONLY, 1, 1, 1, geo::geopos),
    cmd!("georadius", -6, WRITE | DENYOOM | EXCLUSIVE | STORE_OPTION, 1, 1, 1, geo::georadius),
    cmd!("georadius_ro", -6, READONLY, 1, 1, 1, geo::georadius_ro),
    cmd!(
        "georadiusbymember",
        -5,
        WRITE | DENYOOM | EXCLUSIVE | STORE_OPTION,
        1,
        1,
        1,
        geo::georadiusbymember
    ),
    cmd!("georadiusbymember_ro", -5, READONLY, 1, 1, 1, geo::georadiusbymember_ro),
    cmd!("geosearch", -7, READONLY, 1, 1, 1, geo::geosearch),
    cmd!("geosearchstore", -8, WRITE | DENYOOM | EXCLUSIVE, 1, 2, 1, geo::geosearchstore),
    cmd!("zadd", -4, WRITE | DENYOOM | FAST, 1, 1, 1, zsets::zadd),
    cmd!("zincrby", 4, WRITE | DENYOOM | FAST, 1, 1, 1, zsets::zincrby),
    cmd!("zrem", -3, WRITE | FAST, 1, 1, 1, zsets::zrem),
    cmd!("zcard", 2, READONLY | FAST, 1, 1, 1, zsets::zcard),
    cmd!("zscore", 3, READONLY | FAST, 1, 1, 1, zsets::zscore),
    cmd!("zmscore", -3, READONLY | FAST, 1, 1, 1, zsets::zmscore),
    cmd!("zrank", 3, READONLY | FAST, 1, 1, 1, zsets::zrank),
    cmd!("zrevrank", 3, READONLY | FAST, 1, 1, 1, zsets::zrevrank),
    cmd!("zcount", 4, READONLY | FAST, 1, 1, 1, zsets::zcount),
    cmd!("zlexcount", 4, READONLY | FAST, 1, 1, 1, zsets::zlexcount),
    cmd!("zrange", -4, READONLY, 1, 1, 1, zsets::zrange),
    cmd!("zrevrange", -4, READONLY, 1, 1, 1, zsets::zrevrange),
    cmd!("zrangebyscore", -4, READONLY, 1, 1, 1, zsets::zrangebyscore),
    cmd!("zrevrangebyscore", -4, READONLY, 1, 1, 1, zsets::zrevrangebyscore),
    cmd!("zrangebylex", -4, READONLY, 1, 1, 1, zsets::zrangebylex),
    cmd!("zrevrangebylex", -4, READONLY, 1, 1, 1, zsets::zrevrangebylex),
    cmd!("zrangestore", -5, WRITE | DENYOOM | EXCLUSIVE, 1, 2, 1, zsets::zrangestore),
    cmd!("zremrangebyscore", 4, WRITE, 1, 1, 1, zsets::zremrangebyscore),
    cmd!("zremrangebyrank", 4, WRITE, 1, 1, 1, zsets::zremrangebyrank),
    cmd!("zremrangebylex", 4, WRITE, 1, 1, 1, zsets::zremrangebylex),
    cmd!("zpopmin", -2, WRITE | FAST, 1, 1, 1, zsets::zpopmin),
    cmd!("zpopmax", -2, WRITE | FAST, 1, 1, 1, zsets::zpopmax),
    cmd!("bzpopmin", -3, WRITE | FAST | EXCLUSIVE, 1, -2, 1, zsets::bzpopmin),
    cmd!("bzpopmax", -3, WRITE | FAST | EXCLUSIVE, 1, -2, 1, zsets::bzpopmax),
    cmd!("zmpop", -4, WRITE | EXCLUSIVE, 0, 0, 0, zsets::zmpop, keynum = 1),
    cmd!("bzmpop", -5, WRITE | EXCLUSIVE, 0, 0, 0, zsets::bzmpop, keynum = 2),
    cmd!(
        "zunionstore",
        -4,
        WRITE | DENYOOM | EXCLUSIVE,
        1,
        1,
        1,
        zsets::zunionstore,
        keynum = 2
    ),
    cmd!(
        "zinterstore",
        -4,
        WRITE | DENYOOM | EXCLUSIVE,
        1,
        1,
        1,
        zsets::zinterstore,
        keynum = 2
    ),
    cmd!(
        "zdiffstore",
        -4,
        WRITE | DENYOOM | EXCLUSIVE,
        1,
        1,
        1,
        zsets::zdiffstore,
        keynum = 2
    ),
    cmd!("zunion", -3, READONLY | EXCLUSIVE, 0, 0, 0, zsets::zunion, keynum = 1),
    cmd!("zinter", -3, READONLY | EXCLUSIVE, 0, 0, 0, zsets::zinter, keynum = 1),
    cmd!("zdiff", -3, READONLY | EXCLUSIVE, 0, 0, 0, zsets::zdiff, keynum = 1),
    cmd!("zintercard", -3, READONLY | EXCLUSIVE, 0, 0, 0, zsets::zintercard, keynum = 1),
    cmd!("zrandmember", -2, READONLY, 1, 1, 1, zsets::zrandmember),
    cmd!("zscan", -3, READONLY, 1, 1, 1, zsets::zscan),
    // scripting
    cmd!("eval", -3, EXCLUSIVE | MAY_REPLICATE, 0, 0, 0, scripting::eval, keynum = 2),
    cmd!("evalsha", -3, EXCLUSIVE | MAY_REPLICATE, 0, 0, 0, scripting::evalsha, keynum = 2),
    cmd!("eval_ro", -3, READONLY | EXCLUSIVE, 0, 0, 0, scripting::eval_ro, keynum = 2),
    cmd!("evalsha_ro", -3, READONLY | EXCLUSIVE, 0, 0, 0, scripting::evalsha_ro, keynum = 2),
    cmd!("script", -2, SUBCOMMANDS, 0, 0, 0, scripting::script),
    // transactions
    cmd!("multi", 1, FAST | NO_QUEUE, 0, 0, 0, transactions::multi),
    cmd!("exec", 1, EXCLUSIVE | NO_QUEUE | SKIP_SLOWLOG, 0, 0, 0, transactions::exec),
    cmd!("discard", 1, FAST | NO_QUEUE, 0, 0, 0, transactions::discard),
    cmd!("watch", -2, FAST | NO_QUEUE, 1, -1, 1, transactions::watch),
    cmd!("unwatch", 1, FAST, 0, 0, 0, transactions::unwatch),
    // server
    cmd!("info", -1, 0, 0, 0, 0, info::info),
    cmd!("config", -2, ADMIN | SUBCOMMANDS, 0, 0, 0, server::config),
    cmd!("time", 1, FAST, 0, 0, 0, server::time),
    cmd!("monitor", 1, ADMIN, 0, 0, 0, server::monitor),
    cmd!("lastsave", 1, FAST, 0, 0, 0, server::lastsave),
    cmd!("shutdown", -1, ADMIN | NO_QUEUE, 0, 0, 0, server::shutdown),
    cmd!("function", -2, SUBCOMMANDS, 0, 0, 0, server::function),
    cmd!("debug", -2, ADMIN | EXCLUSIVE, 0, 0, 0, server::debug),
    cmd!("latency", -2, ADMIN | SUBCOMMANDS, 0, 0, 0, server::latency),
    cmd!("slowlog", -2, ADMIN | SUBCOMMANDS, 0, 0, 0, server::slowlog),
    cmd!("acl", -2, SUBCOMMANDS, 0, 0, 0, acl::acl),
    // cluster (one node owning every slot, with cluster-enabled yes)
    cmd!("cluster", -2, SUBCOMMANDS, 0, 0, 0, cluster::cluster),
    cmd!("readonly", 1, FAST, 0, 0, 0, cluster::readonly),
    cmd!("readwrite", 1, FAST, 0, 0, 0, cluster::readonly),
    cmd!("asking", 1, FAST, 0, 0, 0, cluster::readonly),
];

pub fn table() -> &'static [Command] {
    TABLE
}

/// What INFO commandstats and CLIENT LIST's `cmd=` call a command: the table's rows, then the
/// containers' subcommands (`config|get`), since Redis counts a container command under its
/// subcommand. A command's statistics id is its index in this list.
pub fn stat_names() -> &'static [String] {
    &stat_index().0
}

fn stat_index() -> &'static (Vec<String>, HashMap<String, usize>) {
    static STATS: OnceLock<(Vec<String>, HashMap<String, usize>)> = OnceLock::new();
    STATS.get_or_init(|| {
        let subs = docs::subcommand_names(|c| lookup(c.as_bytes()).is_some_and(|i| TABLE[i].flags & SUBCOMMANDS != 0));
        let index = subs.iter().enumerate().map(|(i, n)| (n.clone(), TABLE.len() + i)).collect();
        let mut names: Vec<String> = TABLE.iter().map(|c| c.name.to_string()).collect();
        names.extend(subs);
        (names, index)
    })
}

/// The statistics id of a call of `TABLE[idx]`: its subcommand's for a container command whose
/// subcommand exists, else the command's own.
pub fn stat_id(idx: usize, args: &[Bytes]) -> usize {
    let cmd = &TABLE[idx];
    if cmd.flags & SUBCOMMANDS == 0 || args.len() < 2 {
        return idx;
    }
    let name = format!("{}|{}", cmd.name, String::from_utf8_lossy(&args[1]).to_ascii_lowercase());
    stat_index().1.get(&name).copied().unwrap_or(idx)
}

type Index = HashMap<&'static [u8], usize, foldhash::fast::RandomState>;

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| TABLE.iter().enumerate().map(|(i, c)| (c.name.as_bytes(), i)).collect())
}

/// Finds a command by name, ignoring case, without allocating.
pub fn lookup(name: &[u8]) -> Option<usize> {
    let mut lower = [0u8; 32];
    if name.len() > lower.len() {
        return None;
    }
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    index().get(&lower[..name.len()]).copied()
}

/// An error reply, Redis's text including its code (ERR, WRONGTYPE ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError(pub Cow<'static, str>);

impl CmdError {
    pub const SYNTAX: CmdError = CmdError(Cow::Borrowed("ERR syntax error"));
    pub const NOT_INT: CmdError = CmdError(Cow::Borrowed("ERR value is not an integer or out of range"));
    pub const NOT_FLOAT: CmdError = CmdError(Cow::Borrowed("ERR value is not a valid float"));
    pub const WRONGTYPE: CmdError = CmdError(Cow::Borrowed("WRONGTYPE Operation against a key holding the wrong kind of value"));
    pub const OVERFLOW: CmdError = CmdError(Cow::Borrowed("ERR increment or decrement would overflow"));
    pub const NO_SUCH_KEY: CmdError = CmdError(Cow::Borrowed("ERR no such key"));
    pub const DB_RANGE: CmdError = CmdError(Cow::Borrowed("ERR DB index is out of range"));
    pub const SAME_OBJECT: CmdError = CmdError(Cow::Borrowed("ERR source and destination objects are the same"));
    pub const TOO_BIG: CmdError = CmdError(Cow::Borrowed("ERR string exceeds maximum allowed size (proto-max-bulk-len)"));
    pub const NOAUTH: CmdError = CmdError(Cow::Borrowed("NOAUTH Authentication required."));
    pub const OOM: CmdError = CmdError(Cow::Borrowed("OOM command not allowed when used memory > 'maxmemory'."));
    pub const NOT_POSITIVE: CmdError = CmdError(Cow::Borrowed("ERR value is out of range, must be positive"));
    pub const WRONGPASS: CmdError = CmdError(Cow::Borrowed("WRONGPASS invalid username-password pair or user is disabled."));

    pub fn msg(s: impl Into<String>) -> CmdError {
        CmdError(Cow::Owned(s.into()))
    }

    pub fn wrong_args(name: &str) -> CmdError {
        CmdError::msg(format!("ERR wrong number of arguments for '{name}' command"))
    }

    pub fn unknown_subcommand(sub: &[u8], cmd: &str) -> CmdError {
        CmdError::msg(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            truncate(sub, 128),
            cmd.to_ascii_uppercase()
        ))
    }

    pub fn invalid_expire(cmd: &str) -> CmdError {
        CmdError::msg(format!("ERR invalid expire time in '{cmd}' command"))
    }
}

/// `b` as C's %.*s prints it: up to the first NUL, at most `n` bytes.
fn c_str(b: &[u8], n: usize) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len()).min(n);
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn truncate(b: &[u8], n: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(n)]).into_owned()
}

/// What a handler gets: the server, the calling client, its reply buffer, and the time the command
/// started (one clock reading per command, as Redis caches mstime).
pub struct Ctx<'a> {
    pub server: &'a Server,
    pub client: &'a mut Client,
    pub out: &'a mut Reply,
    pub now: i64,
}

impl Ctx<'_> {
    #[inline]
    pub fn ks(&self) -> &Keyspace {
        &self.server.keyspace
    }
    #[inline]
    pub fn db(&self) -> usize {
        self.client.db
    }

    /// A keyspace notification for `key` in the client's database (Redis's notifyKeyspaceEvent):
    /// `class` is one of `keyspace::notify::class`, `event` the event name ("lpush", "del" ...).
    #[inline]
    pub fn notify(&self, class: u32, event: &str, key: &[u8]) {
        if self.client.subscriptions.active() {
            crate::pubsub::own_at(self.out.buf.len());
        }
        self.server.keyspace.notifier.notify(class, event, self.client.db, key);
    }

    /// As [`Ctx::notify`], for an event Redis raises before reply bytes this command has already
    /// written from `mark` on (a subscriber to its own keys gets it there).
    pub fn notify_before(&self, mark: usize, class: u32, event: &str, key: &[u8]) {
        if self.client.subscriptions.active() {
            crate::pubsub::own_at(mark);
        }
        self.server.keyspace.notifier.notify(class, event, self.client.db, key);
    }
}

/// CLIENT PAUSE: until when this call must wait before it runs (or is queued in MULTI), if it
/// must. Under WRITE, Redis's "may replicate" calls wait: writes, the MAY_REPLICATE commands
/// (PUBLISH, SPUBLISH, PFCOUNT, EVAL, EVALSHA), and an EXEC whose queue holds one of them.
pub fn paused_until(server: &Server, client: &Client, args: &[Bytes]) -> Option<tokio::time::Instant> {
    let may_replicate = |args: &[Bytes]| lookup(&args[0]).is_some_and(|idx| TABLE[idx].flags & (WRITE | MAY_REPLICATE) != 0);
    server.pause.holds_with(|| {
        if eq_ic(&args[0], "exec") {
            client.multi.as_ref().is_some_and(|q| q.iter().any(|c| may_replicate(c)))
        } else {
            may_replicate(args)
        }
    })
}

/// Runs one command from a client: lookup, arity, auth, MULTI queueing, then the handler.
pub fn execute(server: &Server, client: &mut Client, out: &mut Reply, args: &[Bytes]) {
    // CLIENT REPLY OFF/SKIP: run the command, then drop what it wrote.
    let mark = out.buf.len();
    let skip_this = std::mem::take(&mut client.reply_skip_next);
    // Client-side caching: which client runs, so its own invalidations follow its reply.
    let tracking = server.keyspace.invalidation.on.load(std::sync::atomic::Ordering::Relaxed);
    if tracking {
        server.tracking.begin(&client.info);
    }
    dispatch(server, client, out, args);
    if client.reply_off || skip_this || client.reply_skip_next {
        out.buf.truncate(mark);
    }
    if tracking {
        // CLIENT CACHING lasts for the next command, or the whole transaction (Redis's resetClient).
        let keep_caching = client.multi.is_some() || eq_ic(&args[0], "client");
        server.tracking.end(&client.info, out, keep_caching);
    }
}

fn dispatch(server: &Server, client: &mut Client, out: &mut Reply, args: &[Bytes]) {
    let start = Instant::now();
    let now = server.keyspace.clock.at(start);
    client.info.last_interaction.store(now, std::sync::atomic::Ordering::Relaxed);
    let Some(idx) = lookup(&args[0]) else {
        // As Redis's sdscatprintf with %.*s: C strings end at a NUL byte; the argument list is
        // cut once it reaches 128 bytes.
        let mut list = String::new();
        for a in &args[1..] {
            if list.len() >= 128 {
                break;
            }
            list.push_str(&format!("'{}' ", c_str(a, 128 - list.len())));
        }
        let msg = format!("ERR unknown command '{}', with args beginning with: {list}", c_str(&args[0], 128));
        client.info.last_cmd.store(usize::MAX, std::sync::atomic::Ordering::Relaxed);
        reject(server, client, out, None, &CmdError::msg(msg));
        return;
    };
    let cmd = &TABLE[idx];
    // The call counts under its subcommand, if any; an unknown subcommand is no command at all.
    // CLIENT LIST shows it from here on, whether it then runs, is queued or is refused (as Redis
    // sets lastcmd at lookup).
    let sid = stat_id(idx, args);
    let unknown_sub = cmd.flags & SUBCOMMANDS != 0 && args.len() >= 2 && sid == idx;
    client
        .info
        .last_cmd
        .store(if unknown_sub { usize::MAX } else { sid }, std::sync::atomic::Ordering::Relaxed);
    if (cmd.arity > 0 && args.len() != cmd.arity as usize) || args.len() < cmd.arity.unsigned_abs() as usize {
        reject(server, client, out, Some(idx), &CmdError::wrong_args(cmd.name));
        return;
    }
    if cmd.flags & SUBCOMMANDS != 0 {
        if let Err(e) = docs::check_subcommand(cmd.name, args) {
            reject(server, client, out, (!unknown_sub).then_some(sid), &e);
            return;
        }
    }
    if !client.authenticated && cmd.flags & NO_AUTH == 0 {
        reject(server, client, out, Some(sid), &CmdError::NOAUTH);
        return;
    }
    // A monitor is a replica to Redis: it may not touch the keyspace.
    if cmd.flags & (WRITE | READONLY) != 0 && client.info.monitor.load(std::sync::atomic::Ordering::Relaxed) {
        reject(
            server,
            client,
            out,
            Some(sid),
            &CmdError::msg("ERR Replica can't interact with the keyspace"),
        );
        return;
    }
    if server.config.cluster_enabled {
        if let Err(e) = cluster::check_slots(cmd, args, client) {
            if cmd.name == "exec" {
                // As Redis: a cross-slot transaction is discarded and EXEC gets the plain error.
                transactions::end_transaction(&server.keyspace, client);
                server.command_stats.reject(idx);
                out.error(e.0.as_bytes());
                server.stats.count_error(e.0.as_bytes());
            } else {
                reject(server, client, out, Some(sid), &e);
            }
            return;
        }
    }
    // As Redis's processCommand: unknown command, arity, unknown subcommand, auth and cluster
    // redirection errors come first; only then is a RESP2 subscriber refused other commands.
    if cmd.flags & PUBSUB_OK == 0 && !out.resp3 && client.subscriptions.active() {
        let name = match args.get(1) {
            Some(sub) if cmd.flags & SUBCOMMANDS != 0 => format!("{}|{}", cmd.name, String::from_utf8_lossy(sub).to_ascii_lowercase()),
            _ => cmd.name.to_string(),
        };
        let msg =
            format!("ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context");
        reject(server, client, out, Some(sid), &CmdError::msg(msg));
        return;
    }
    let ks = &server.keyspace;
    if cmd.flags & DENYOOM != 0 && client.multi.is_some() && out_of_memory(server) {
        reject(server, client, out, Some(sid), &CmdError::OOM);
        return;
    }
    if let Some(queue) = client.multi.as_mut() {
        if cmd.flags & NO_QUEUE == 0 {
            queue.push(args.iter().map(|a| Bytes::copy_from_slice(a)).collect());
            client.info.multi.store(queue.len() as i64, std::sync::atomic::Ordering::Relaxed);
            out.simple("QUEUED");
            return;
        }
    }
    // Eviction runs under the world lock so it never cuts into a transaction.
    let _world = if cmd.flags & EXCLUSIVE != 0 {
        World::Exclusive(ks.world.write())
    } else {
        World::Shared(ks.world.read())
    };
    // Messages the command (or eviction for it) raises for this very client go into its output
    // where they were raised, as Redis writes them.
    // Only a subscriber (or a transaction, which may subscribe) can be sent messages: nobody else
    // pays for this.
    let own = client.subscriptions.active() || client.multi.is_some();
    if own {
        crate::pubsub::own_begin(client.info.id, out.buf.len());
    }
    if cmd.flags & DENYOOM != 0 && out_of_memory(server) {
        if own {
            crate::pubsub::own_end(out);
        }
        reject(server, client, out, Some(sid), &CmdError::OOM);
        return;
    }
    call_at(server, client, out, idx, args, now, start);
    if own {
        crate::pubsub::own_end(out);
    }
    if client.blocked.is_some() {
        blocking::register(server, client, args, out.resp3);
    }
    drop(_world);
    // Clients blocked on keys this command wrote are served before the writer's next command, as
    // Redis does after every command (and after EXEC as a whole).
    if ks.blocking.has_ready() {
        let _world = ks.world.write();
        blocking::serve_ready(server);
    }
}

/// The keyspace's world lock as a command holds it.
enum World<'a> {
    Shared(#[allow(dead_code)] parking_lot::RwLockReadGuard<'a, ()>),
    Exclusive(#[allow(dead_code)] parking_lot::RwLockWriteGuard<'a, ()>),
}

/// Evicts down to maxmemory if set; true when the limit still cannot be met (noeviction, or
/// nothing evictable), in which case a command that may add memory is refused.
pub(crate) fn out_of_memory(server: &Server) -> bool {
    let max = server.config.maxmemory.load(std::sync::atomic::Ordering::Relaxed);
    if max == 0 {
        return false;
    }
    let samples = server.config.maxmemory_samples.load(std::sync::atomic::Ordering::Relaxed) as usize;
    server.keyspace.evict_to_limit(max, server.config.policy(), samples) == crate::keyspace::evict::EvictOutcome::OutOfMemory
}

/// Runs a command that passed the checks; the caller holds the world lock (EXEC holds it for the
/// whole transaction).
pub(crate) fn call(server: &Server, client: &mut Client, out: &mut Reply, idx: usize, args: &[Bytes]) {
    let start = Instant::now();
    let now = server.keyspace.clock.at(start);
    call_at(server, client, out, idx, args, now, start);
}

fn call_at(server: &Server, client: &mut Client, out: &mut Reply, idx: usize, args: &[Bytes], now: i64, start: Instant) {
    let cmd = &TABLE[idx];
    if client.subscriptions.active() {
        crate::pubsub::own_at(out.buf.len());
    }
    // Client-side caching remembers the keys before the read, so a write on another thread
    // between the two still invalidates them. A read-only script's keys are not remembered; the
    // commands it runs are (as Redis).
    let track =
        cmd.flags & READONLY != 0 && crate::tracking::remembers(&client.info) && !matches!(cmd.name, "eval_ro" | "evalsha_ro" | "fcall_ro");
    if track {
        server.tracking.remember(&client.info, cmd.keys(args));
    }
    let mut ctx = Ctx { server, client, out, now };
    let result = (cmd.handler)(&mut ctx, args);
    // And after: a read that deletes an expired key invalidates (forgets) it, but the client
    // caches the reply it got, so the key must stay remembered (Redis remembers only after).
    if track {
        server.tracking.remember(&client.info, cmd.keys(args));
    }
    let failed = match result {
        Ok(()) => false,
        Err(e) => {
            out.error(e.0.as_bytes());
            server.stats.count_error(e.0.as_bytes());
            true
        }
    };
    let sid = stat_id(idx, args);
    let duration_us = start.elapsed().as_micros() as u64;
    server.command_stats.record(sid, duration_us, failed);
    server.stats.commands_processed.incr();
    // A blocked command is not logged (Redis logs it once unblocked).
    if client.waiting.is_none() && cmd.flags & SKIP_SLOWLOG == 0 {
        server
            .slowlog
            .push_if_slow(&server.config, &client.info, args, crate::monitor::redacted, duration_us);
    }
    if server.monitors.active() {
        feed_monitors(server, client, sid, args);
    }
}

/// Shows a command that ran to the MONITOR clients, unless Redis keeps it from them (admin and
/// skip_monitor commands: CONFIG, DEBUG, MONITOR ...; EVAL shows itself before its script runs).
fn feed_monitors(server: &Server, client: &Client, sid: usize, args: &[Bytes]) {
    static SHOWN: OnceLock<Vec<bool>> = OnceLock::new();
    let shown = SHOWN.get_or_init(|| {
        stat_names()
            .iter()
            .map(|n| !docs::has_flag(n, "admin") && !docs::has_flag(n, "skip_monitor"))
            .collect()
    });
    if shown.get(sid).copied().unwrap_or(true) {
        let origin = if client.in_script {
            crate::monitor::Origin::Lua
        } else {
            crate::monitor::Origin::Client(&client.info.addr)
        };
        let limit = server.pubsub.hard_limit.load(std::sync::atomic::Ordering::Relaxed);
        server.monitors.feed(client.db, origin, args, limit);
    }
}

fn reject(server: &Server, client: &mut Client, out: &mut Reply, idx: Option<usize>, err: &CmdError) {
    // A refused EXEC ends the transaction, and says why (Redis's rejectCommand).
    if idx.is_some_and(|i| TABLE.get(i).is_some_and(|c| c.name == "exec")) {
        transactions::end_transaction(&server.keyspace, client);
        if let Some(i) = idx {
            server.command_stats.reject(i);
        }
        let reason = err.0.strip_prefix("ERR ").unwrap_or(&err.0);
        let msg = format!("EXECABORT Transaction discarded because of: {reason}");
        out.error(msg.as_bytes());
        server.stats.count_error(msg.as_bytes());
        return;
    }
    if client.multi.is_some() {
        client.multi_failed = true;
    }
    if let Some(i) = idx {
        server.command_stats.reject(i);
    }
    out.error(err.0.as_bytes());
    server.stats.count_error(err.0.as_bytes());
}

// ---- argument helpers shared by the families ----

#[inline]
pub fn eq_ic(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

pub fn parse_i64(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64_strict(arg).ok_or(CmdError::NOT_INT)
}

/// Redis's string2ll.
pub fn parse_i64_strict(arg: &[u8]) -> Option<i64> {
    crate::protocol::decode::parse_int(arg)
}

/// Redis's strtold-based float parsing: no spaces, no NaN; "inf" is accepted.
pub fn parse_f64(arg: &[u8]) -> Result<f64, CmdError> {
    let s = std::str::from_utf8(arg).map_err(|_| CmdError::NOT_FLOAT)?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return Err(CmdError::NOT_FLOAT);
    }
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        lower => match s.parse() {
            Ok(v) => v,
            // strtold also reads C99 hex floats: 0x10, 0x1p4, -0x1.8p1.
            Err(_) => parse_hex_float(lower).ok_or(CmdError::NOT_FLOAT)?,
        },
    };
    if v.is_nan() {
        return Err(CmdError::NOT_FLOAT);
    }
    Ok(v)
}

/// A count that must be 0 or more (Redis's getPositiveLongFromObjectOrReply); `msg` answers a
/// negative or non-numeric one (NOT_POSITIVE where Redis gives no message of its own).
pub fn parse_non_negative(arg: &[u8], msg: &CmdError) -> Result<i64, CmdError> {
    parse_i64_strict(arg).filter(|n| *n >= 0).ok_or_else(|| msg.clone())
}

/// A count that must be 1 or more (getRangeLongFromObjectOrReply(1, LONG_MAX): numkeys, COUNT).
pub fn parse_at_least_one(arg: &[u8], msg: &'static str) -> Result<i64, CmdError> {
    parse_i64_strict(arg).filter(|n| *n >= 1).ok_or(CmdError(Cow::Borrowed(msg)))
}

/// Largest negative count HRANDFIELD, SRANDMEMBER and ZRANDMEMBER serve (about 100 MB of reply at
/// the smallest members): repeated draws are not bounded by the size of the key and a reply is
/// built whole, so Redis runs out of memory on a count like -1e15; respite refuses.
pub const MAX_DRAWS: i64 = 1 << 24;

/// The count of HRANDFIELD / SRANDMEMBER / ZRANDMEMBER (negative: draws may repeat) with Redis's
/// errors, and whether `with` (WITHVALUES, WITHSCORES; None where the command has no such word)
/// follows it.
pub fn parse_random_count(args: &[Bytes], with: Option<&str>) -> Result<(i64, bool), CmdError> {
    let count = parse_i64(&args[2])?;
    if count == i64::MIN {
        return Err(CmdError::msg(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let flag = match (args.len(), with) {
        (3, _) => false,
        (4, Some(word)) if eq_ic(&args[3], word) => true,
        _ => return Err(CmdError::SYNTAX),
    };
    if flag && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(CmdError::msg("ERR value is out of range"));
    }
    if count < -MAX_DRAWS {
        return Err(CmdError::msg(format!(
            "ERR value is out of range: at most {MAX_DRAWS} repeated draws"
        )));
    }
    Ok((count, flag))
}

/// The reply of HRANDFIELD / ZRANDMEMBER with a count (from [`parse_random_count`]), Redis's three
/// strategies: a negative count (or 1) draws `|count|` times with repeats through `draw`; a count
/// at least the size answers every element, in the order `all` gives them; a smaller one picks
/// `count` distinct elements (a partial Fisher-Yates over `all`). Each element is its name, then
/// with `with` its value (written by `value`), as a nested pair in RESP3 and flat in RESP2.
pub fn reply_random_draws<'a, T: Copy>(
    out: &mut Reply,
    rng: &mut fastrand::Rng,
    (count, with): (i64, bool),
    size: usize,
    mut draw: impl FnMut(&mut fastrand::Rng) -> (&'a [u8], T),
    all: impl FnOnce() -> Vec<(&'a [u8], T)>,
    value: impl Fn(&mut Reply, T),
) {
    let n = count.unsigned_abs() as usize;
    let header = |out: &mut Reply, n: usize| out.array(if with && !out.resp3 { n * 2 } else { n });
    let element = |out: &mut Reply, (name, v): (&[u8], T)| {
        if with && out.resp3 {
            out.array(2);
        }
        out.bulk(name);
        if with {
            value(out, v);
        }
    };
    if n == 0 {
        out.array(0);
    } else if count < 0 || n == 1 {
        header(out, n);
        for _ in 0..n {
            element(out, draw(rng));
        }
    } else if n >= size {
        let all = all();
        header(out, all.len());
        for e in all {
            element(out, e);
        }
    } else {
        let mut all = all();
        header(out, n);
        for i in 0..n {
            let j = rng.usize(i..all.len());
            all.swap(i, j);
            element(out, all[i]);
        }
    }
}

/// Redis's getIntFromObjectOrReply: an integer that must fit in 32 bits.
pub fn parse_i32(arg: &[u8]) -> Result<i64, CmdError> {
    let n = parse_i64_strict(arg).ok_or(CmdError::NOT_INT)?;
    if n < i32::MIN as i64 || n > i32::MAX as i64 {
        return Err(CmdError::msg(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    Ok(n)
}

/// A C99 hexadecimal float ("0x1.8p3"), lowercase.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (neg, s) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let s = s.strip_prefix("0x")?;
    let (mantissa, exp) = match s.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if neg { -v } else { v })
}

/// A database index argument (SELECT, MOVE, COPY DB).
pub fn parse_db(server: &Server, arg: &[u8]) -> Result<usize, CmdError> {
    let n = parse_i32(arg)?;
    if n < 0 || n as usize >= server.keyspace.databases() {
        return Err(CmdError::DB_RANGE);
    }
    Ok(n as usize)
}

/// Checks a subcommand's arity (for container commands such as CONFIG and CLIENT).
pub fn sub_arity(args: &[Bytes], arity: i32, fullname: &str) -> CmdResult {
    let ok = if arity > 0 {
        args.len() == arity as usize
    } else {
        args.len() >= arity.unsigned_abs() as usize
    };
    if ok {
        Ok(())
    } else {
        Err(CmdError::wrong_args(fullname))
    }
}

/// HDEL, SREM and ZREM: removes `args[2..]` from the container at `args[1]` (`view`/`view_mut` pick
/// the type; another type is WRONGTYPE). When none of them is there nothing is modified (WATCH stays
/// clean), as in Redis; a container left empty is deleted. Raises `event` (and "del") before the
/// count is replied, as t_hash.c / t_set.c / t_zset.c do.
pub(crate) fn remove_members<C: crate::keyspace::Members>(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    view: fn(&crate::keyspace::Value) -> Option<&C>,
    view_mut: fn(&mut crate::keyspace::Value) -> Option<&mut C>,
    class: u32,
    event: &str,
) -> CmdResult {
    let (key, members) = (&args[1], &args[2..]);
    let (removed, emptied) = ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        let Some(entry) = slot.get() else { return Ok((0, false)) };
        let c = view(&entry.value).ok_or(CmdError::WRONGTYPE)?;
        if !members.iter().any(|m| c.has(m)) {
            return Ok((0, false));
        }
        let c = slot.get_mut().and_then(|e| view_mut(&mut e.value)).expect("checked above");
        let mut n = 0;
        for m in members {
            n += c.take(m) as i64;
            if c.is_empty() {
                break;
            }
        }
        let emptied = c.is_empty();
        if emptied {
            slot.remove();
        }
        Ok::<_, CmdError>((n, emptied))
    })?;
    if removed > 0 {
        ctx.notify(class, event, key);
        if emptied {
            ctx.notify(crate::keyspace::notify::class::GENERIC, "del", key);
        }
    }
    ctx.out.int(removed);
    Ok(())
}

/// Cleans up after a client leaves (its WATCHes).
pub fn disconnect(server: &Server, client: &mut Client) {
    server.monitors.remove(&client.info);
    server.tracking.disable(&client.info);
    transactions::unwatch_all(&server.keyspace, client);
    pubsub::unsubscribe_all(&server.pubsub, client);
    if let Some((w, _)) = client.waiting.take() {
        blocking::end_wait(server, &w, Vec::new());
    }
    *client.info.blocked.lock() = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    /// HRANDFIELD, SRANDMEMBER and ZRANDMEMBER share their count's errors (texts from Redis 7.0.15).
    #[test]
    fn random_counts_parse_as_redis() {
        assert_eq!(parse_random_count(&args("X k 5"), None), Ok((5, false)));
        assert_eq!(parse_random_count(&args("X k -3 WITHSCORES"), Some("withscores")), Ok((-3, true)));
        assert_eq!(
            parse_random_count(&args("X k 1 WITHVALUES"), Some("withscores")),
            Err(CmdError::SYNTAX)
        );
        assert_eq!(parse_random_count(&args("X k x"), None), Err(CmdError::NOT_INT));
        let err = |line: &str, with| parse_random_count(&args(line), with).unwrap_err().0.into_owned();
        assert!(err("X k -9223372036854775808", None).contains("must between -9223372036854775807"));
        assert_eq!(
            err("X k -9223372036854775807 WITHVALUES", Some("withvalues")),
            "ERR value is out of range"
        );
        assert_eq!(
            err("X k -16777217", None),
            "ERR value is out of range: at most 16777216 repeated draws"
        );
        assert_eq!(parse_random_count(&args("X k -16777216"), None), Ok((-16777216, false)));
    }
}
