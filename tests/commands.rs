//! Commands through a real client (redis-rs): strings, keys, expiry, transactions, SCAN, INFO.

mod common;
use common::*;
use redis::AsyncCommands;
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test]
async fn strings_round_trip_through_redis_rs() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let _: () = c.set("name", "respite").await.unwrap();
    let v: String = c.get("name").await.unwrap();
    assert_eq!(v, "respite");
    let n: i64 = c.incr("counter", 5).await.unwrap();
    assert_eq!(n, 5);
    let n: usize = c.append("name", "!").await.unwrap();
    assert_eq!(n, 8);
    let vals: Vec<Option<String>> = c.mget(&["name", "nope"]).await.unwrap();
    assert_eq!(vals, vec![Some("respite!".to_string()), None]);
    let f: f64 = redis::cmd("INCRBYFLOAT").arg("f").arg("10.5").query_async(&mut c).await.unwrap();
    assert_eq!(f, 10.5);
    let old: Option<String> = redis::cmd("SET")
        .arg("name")
        .arg("new")
        .arg("GET")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(old.as_deref(), Some("respite!"));
    let r: redis::RedisResult<i64> = c.incr("name", 1).await;
    assert!(r.unwrap_err().to_string().contains("not an integer"));
    h.stop().await;
}

/// MGET, MSET and pipelines warm their keys 16 at a time (Keyspace::prefetch): replies must not
/// depend on where the chunks end, nor on a SELECT in the middle of a pipeline.
#[tokio::test]
async fn multi_key_commands_and_pipelines_across_prefetch_chunks() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let pairs: Vec<(String, String)> = (0..40).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
    let _: () = c.mset(&pairs).await.unwrap();
    let _: () = c.lpush("a-list", "x").await.unwrap();
    // 40 present, 9 missing, one of another type: 50 keys over four chunks.
    let mut keys: Vec<String> = (0..49).map(|i| format!("k{i}")).collect();
    keys.push("a-list".into());
    let got: Vec<Option<String>> = c.mget(&keys).await.unwrap();
    let want: Vec<Option<String>> = (0..50).map(|i| (i < 40).then(|| format!("v{i}"))).collect();
    assert_eq!(got, want);
    // 40 GETs in one pipeline, switching to db 1 (empty) after 20 and back.
    let mut pipe = redis::pipe();
    for i in 0..40 {
        if i == 20 {
            pipe.cmd("SELECT").arg(1).ignore();
        }
        if i == 30 {
            pipe.cmd("SELECT").arg(0).ignore();
        }
        pipe.get(format!("k{i}"));
    }
    let got: Vec<Option<String>> = pipe.query_async(&mut c).await.unwrap();
    let want: Vec<Option<String>> = (0..40).map(|i| (!(20..30).contains(&i)).then(|| format!("v{i}"))).collect();
    assert_eq!(got, want);
    h.stop().await;
}

#[tokio::test]
async fn ttls_expire_by_themselves_without_reads() {
    let h = start().await;
    let mut c = client(h.addr).await;
    for i in 0..300 {
        let _: () = redis::cmd("SET")
            .arg(format!("t{i}"))
            .arg("v")
            .arg("PX")
            .arg(100)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    let _: () = c.set("forever", "v").await.unwrap();
    // Never read the keys; the active cycle alone must reclaim them.
    let mut size = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        size = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
        if size == 1 {
            break;
        }
    }
    assert_eq!(size, 1);
    let info: String = redis::cmd("INFO").arg("stats").query_async(&mut c).await.unwrap();
    assert!(info.contains("expired_keys:300\r\n"), "{info}");
    h.stop().await;
}

#[tokio::test]
async fn expire_options_and_ttl_replies() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let _: () = c.set("k", "v").await.unwrap();
    let ttl: i64 = c.ttl("k").await.unwrap();
    assert_eq!(ttl, -1);
    let ttl: i64 = c.ttl("missing").await.unwrap();
    assert_eq!(ttl, -2);
    let set: i64 = redis::cmd("EXPIRE").arg("k").arg(100).arg("XX").query_async(&mut c).await.unwrap();
    assert_eq!(set, 0);
    let set: i64 = redis::cmd("EXPIRE").arg("k").arg(100).arg("NX").query_async(&mut c).await.unwrap();
    assert_eq!(set, 1);
    let set: i64 = redis::cmd("EXPIRE").arg("k").arg(50).arg("GT").query_async(&mut c).await.unwrap();
    assert_eq!(set, 0);
    let set: i64 = redis::cmd("EXPIRE").arg("k").arg(50).arg("LT").query_async(&mut c).await.unwrap();
    assert_eq!(set, 1);
    let ttl: i64 = c.ttl("k").await.unwrap();
    assert_eq!(ttl, 50);
    let p: i64 = c.persist("k").await.unwrap();
    assert_eq!(p, 1);
    let gone: i64 = redis::cmd("EXPIRE").arg("k").arg(-1).query_async(&mut c).await.unwrap();
    assert_eq!(gone, 1);
    let exists: i64 = c.exists("k").await.unwrap();
    assert_eq!(exists, 0);
    h.stop().await;
}

#[tokio::test]
async fn multi_exec_and_watch_across_clients() {
    let h = start().await;
    let mut a = Raw::connect(h.addr).await;
    let mut b = client(h.addr).await;
    a.roundtrip(&resp(&[b"WATCH", b"w"]), b"+OK\r\n").await;
    a.roundtrip(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    a.roundtrip(&resp(&[b"SET", b"w", b"from-a"]), b"+QUEUED\r\n").await;
    let _: () = b.set("w", "from-b").await.unwrap();
    a.roundtrip(&resp(&[b"EXEC"]), b"*-1\r\n").await;
    let v: String = b.get("w").await.unwrap();
    assert_eq!(v, "from-b");
    // Unwatched: the transaction runs, errors inside are per-command.
    a.roundtrip(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    a.roundtrip(&resp(&[b"INCR", b"w"]), b"+QUEUED\r\n").await;
    a.roundtrip(&resp(&[b"SET", b"x", b"1"]), b"+QUEUED\r\n").await;
    a.roundtrip(&resp(&[b"EXEC"]), b"*2\r\n-ERR value is not an integer or out of range\r\n+OK\r\n")
        .await;
    // A queued-command error aborts the whole transaction.
    a.roundtrip(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    a.roundtrip(&resp(&[b"GET"]), b"-ERR wrong number of arguments for 'get' command\r\n")
        .await;
    a.roundtrip(
        &resp(&[b"EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    )
    .await;
    h.stop().await;
}

#[tokio::test]
async fn redis_rs_pipeline_atomic_and_transaction_helper() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let (a, b): (i64, i64) = redis::pipe().atomic().incr("p", 1).incr("p", 2).query_async(&mut c).await.unwrap();
    assert_eq!((a, b), (1, 3));
    h.stop().await;
}

#[tokio::test]
async fn auth_is_required_when_requirepass_is_set() {
    let h = start_with(&[("requirepass", "s3cret")]).await;
    let mut c = Raw::connect(h.addr).await;
    c.roundtrip(&resp(&[b"GET", b"k"]), b"-NOAUTH Authentication required.\r\n").await;
    c.roundtrip(
        &resp(&[b"AUTH", b"wrong"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    c.roundtrip(&resp(&[b"AUTH", b"default", b"s3cret"]), b"+OK\r\n").await;
    c.roundtrip(&resp(&[b"GET", b"k"]), b"$-1\r\n").await;
    let url = format!("redis://:s3cret@{}/", h.addr);
    let mut rc = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut rc).await.unwrap();
    assert_eq!(pong, "PONG");
    h.stop().await;
}

#[tokio::test]
async fn select_isolates_databases_and_swapdb_moves_them() {
    let h = start().await;
    let mut c = Raw::connect(h.addr).await;
    c.roundtrip(&resp(&[b"SET", b"k", b"db0"]), b"+OK\r\n").await;
    c.roundtrip(&resp(&[b"SELECT", b"1"]), b"+OK\r\n").await;
    c.roundtrip(&resp(&[b"GET", b"k"]), b"$-1\r\n").await;
    c.roundtrip(&resp(&[b"SWAPDB", b"0", b"1"]), b"+OK\r\n").await;
    c.roundtrip(&resp(&[b"GET", b"k"]), b"$3\r\ndb0\r\n").await;
    c.roundtrip(&resp(&[b"SELECT", b"16"]), b"-ERR DB index is out of range\r\n").await;
    h.stop().await;
}

/// SCAN's guarantee: a key present for the whole iteration is returned at least once, while
/// other clients insert and delete keys so the tables grow and shrink between calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_returns_every_stable_key_under_concurrent_churn() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let stable: Vec<String> = (0..2000).map(|i| format!("stable:{i}")).collect();
    for chunk in stable.chunks(500) {
        let pairs: Vec<(&str, &str)> = chunk.iter().map(|k| (k.as_str(), "v")).collect();
        let _: () = c.mset(&pairs).await.unwrap();
    }
    let addr = h.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut c = client(addr).await;
            let mut round = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && round < 200 {
                let keys: Vec<String> = (0..500).map(|i| format!("churn:{round}:{i}")).collect();
                let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
                let _: () = c.mset(&pairs).await.unwrap();
                let _: () = c.del(&keys).await.unwrap();
                round += 1;
            }
            round
        })
    };
    let mut seen = HashSet::new();
    let mut cursor: u64 = 0;
    let mut calls = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(20)
            .query_async(&mut c)
            .await
            .unwrap();
        seen.extend(keys);
        calls += 1;
        cursor = next;
        if cursor == 0 || calls > 100_000 {
            break;
        }
        tokio::task::yield_now().await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = churn.await.unwrap();
    assert_eq!(cursor, 0, "iteration ended at cursor 0");
    assert!(rounds > 0, "churn ran during the scan");
    let missing: Vec<&String> = stable.iter().filter(|k| !seen.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} stable keys missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    h.stop().await;
}

#[tokio::test]
async fn scan_match_count_type_and_keys_share_the_glob() {
    let h = start().await;
    let mut c = client(h.addr).await;
    for k in ["user:1", "user:2", "user:10", "session:1", "u[x]"] {
        let _: () = c.set(k, 1).await.unwrap();
    }
    let mut keys: Vec<String> = c.keys("user:?").await.unwrap();
    keys.sort();
    assert_eq!(keys, vec!["user:1", "user:2"]);
    let keys: Vec<String> = c.keys("u\\[x\\]").await.unwrap();
    assert_eq!(keys, vec!["u[x]"]);
    let mut all = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("user:*")
            .arg("COUNT")
            .arg(1)
            .arg("TYPE")
            .arg("string")
            .query_async(&mut c)
            .await
            .unwrap();
        all.extend(keys);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    all.sort();
    assert_eq!(all, vec!["user:1", "user:10", "user:2"]);
    let none: (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("TYPE")
        .arg("hash")
        .arg("COUNT")
        .arg(1000)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(none.1.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn info_has_redis_format_and_counts_hits_and_misses() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let _: () = c.set("a", 1).await.unwrap();
    let _: Option<String> = c.get("a").await.unwrap();
    let _: Option<String> = c.get("a").await.unwrap();
    let _: Option<String> = c.get("nope").await.unwrap();
    let _: () = redis::cmd("EXPIRE").arg("a").arg(100).query_async(&mut c).await.unwrap();
    let info: String = redis::cmd("INFO").query_async(&mut c).await.unwrap();
    assert!(info.starts_with("# Server\r\nredis_version:7."), "{info}");
    for field in [
        "process_id:",
        "tcp_port:",
        "uptime_in_seconds:",
        "connected_clients:1\r\n",
        "used_memory:",
        "used_memory_human:",
        "used_memory_rss:",
        "used_memory_peak:",
        "maxmemory:0\r\n",
        "maxmemory_human:0B\r\n",
        "maxmemory_policy:noeviction\r\n",
        "loading:0\r\n",
        "total_connections_received:",
        "total_commands_processed:",
        "instantaneous_ops_per_sec:",
        "keyspace_hits:2\r\n",
        "keyspace_misses:1\r\n",
        "expired_keys:0\r\n",
        "evicted_keys:0\r\n",
        "role:master\r\n",
        "used_cpu_sys:",
        "# Keyspace\r\ndb0:keys=1,expires=1,avg_ttl=",
    ] {
        assert!(info.contains(field), "missing {field:?} in INFO");
    }
    assert!(!info.contains("# Commandstats"), "commandstats is not a default section");
    for line in info.split("\r\n").filter(|l| !l.is_empty() && !l.starts_with('#')) {
        assert!(line.contains(':'), "bad INFO line {line:?}");
    }
    let all: String = redis::cmd("INFO").arg("all").query_async(&mut c).await.unwrap();
    assert!(all.contains("cmdstat_get:calls=3,usec="), "{all}");
    assert!(all.contains("rejected_calls=0,failed_calls=0"));
    let two: String = redis::cmd("INFO").arg("clients").arg("keyspace").query_async(&mut c).await.unwrap();
    assert!(two.starts_with("# Clients\r\n") && two.contains("\r\n\r\n# Keyspace\r\n"));
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut c).await.unwrap();
    let stats: String = redis::cmd("INFO").arg("stats").query_async(&mut c).await.unwrap();
    assert!(stats.contains("keyspace_hits:0\r\n"), "{stats}");
    h.stop().await;
}

#[tokio::test]
async fn config_get_set_know_redis_parameters() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("10mb")
        .query_async(&mut c)
        .await
        .unwrap();
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query_async(&mut c).await.unwrap();
    assert_eq!(v, vec!["maxmemory", "10485760"]);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("hash-max-listpack-entries")
        .arg("64")
        .query_async(&mut c)
        .await
        .unwrap();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hash-max-listpack-entries")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v, vec!["hash-max-listpack-entries", "64"]);
    let all: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("*").query_async(&mut c).await.unwrap();
    assert!(all.len() > 300 && all.len().is_multiple_of(2));
    let err: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("no-such-thing")
        .arg("1")
        .query_async(&mut c)
        .await;
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("Unknown option or number of arguments for CONFIG SET - 'no-such-thing'"));
    let err: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("sometimes")
        .query_async(&mut c)
        .await;
    assert!(err.is_err());
    h.stop().await;
}

#[tokio::test]
async fn client_commands_name_list_and_kill() {
    let h = start().await;
    let mut a = Raw::connect(h.addr).await;
    a.roundtrip(&resp(&[b"CLIENT", b"SETNAME", b"worker-a"]), b"+OK\r\n").await;
    a.roundtrip(&resp(&[b"CLIENT", b"GETNAME"]), b"$8\r\nworker-a\r\n").await;
    a.roundtrip(
        &resp(&[b"CLIENT", b"SETNAME", b"has space"]),
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    )
    .await;
    let mut b = client(h.addr).await;
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut b).await.unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    let line = list.lines().find(|l| l.contains("name=worker-a")).expect("named client listed");
    let id: u64 = line.split(' ').next().unwrap().trim_start_matches("id=").parse().unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut b)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    assert!(a.is_closed().await);
    h.stop().await;
}

#[tokio::test]
async fn maxclients_refuses_with_redis_error() {
    let h = start_with(&[("maxclients", "2")]).await;
    let mut a = Raw::connect(h.addr).await;
    a.roundtrip(b"PING\r\n", b"+PONG\r\n").await;
    let mut b = Raw::connect(h.addr).await;
    b.roundtrip(b"PING\r\n", b"+PONG\r\n").await;
    let mut c = Raw::connect(h.addr).await;
    assert_eq!(c.read_n(36).await, b"-ERR max number of clients reached\r\n");
    h.stop().await;
}

#[tokio::test]
async fn command_docs_and_info_come_from_the_table() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let count: i64 = redis::cmd("COMMAND").arg("COUNT").query_async(&mut c).await.unwrap();
    let list: Vec<String> = redis::cmd("COMMAND").arg("LIST").query_async(&mut c).await.unwrap();
    assert_eq!(count as usize, list.len());
    assert!(list.contains(&"getex".to_string()));
    let docs: redis::Value = redis::cmd("COMMAND").arg("DOCS").arg("set").query_async(&mut c).await.unwrap();
    assert!(format!("{docs:?}").contains("Set the string value of a key"));
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("MSET")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("2")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(keys, vec!["a", "b"]);
    h.stop().await;
}

/// As Redis 7: a container command counts under its subcommand in INFO commandstats
/// (`cmdstat_config|get`) and shows so in CLIENT LIST (`cmd=client|list`); a bare container
/// rejected for its arity counts under the container, a subcommand's arity error under the
/// subcommand, and an unknown subcommand under nothing (all checked against redis-server 7.0.15).
#[tokio::test]
async fn container_commands_count_under_their_subcommands() {
    let h = start().await;
    let mut c = common::client(h.addr).await;
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut c).await.unwrap();
    let _: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query_async(&mut c).await.unwrap();
    for bad in [vec!["CONFIG"], vec!["CONFIG", "GET"], vec!["CONFIG", "FOO"]] {
        let r: redis::RedisResult<redis::Value> = redis::cmd(bad[0]).arg(&bad[1..]).query_async(&mut c).await;
        assert!(r.is_err(), "{bad:?}");
    }
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut c).await.unwrap();
    assert!(list.contains(" cmd=client|list "), "{list}");
    let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut c).await.unwrap();
    let line = |name: &str| {
        stats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
            .map(str::to_string)
    };
    assert!(
        line("config|get").is_some_and(|l| l.contains(":calls=1,") && l.contains("rejected_calls=1,")),
        "{stats}"
    );
    assert!(
        line("config").is_some_and(|l| l.contains(":calls=0,") && l.contains("rejected_calls=1,")),
        "{stats}"
    );
    assert!(line("config|resetstat").is_some_and(|l| l.contains(":calls=1,")), "{stats}");
    assert!(line("client|list").is_some_and(|l| l.contains(":calls=1,")), "{stats}");
    assert!(line("config|foo").is_none() && line("client").is_none(), "{stats}");
    // CLIENT LIST's cmd= is set at lookup, as Redis's lastcmd: a queued command shows, an unknown
    // command or subcommand shows NULL.
    let mut q = common::client(h.addr).await;
    let _: () = redis::cmd("CLIENT").arg("SETNAME").arg("q").query_async(&mut q).await.unwrap();
    let cmd_of_q = |list: String| {
        let l = list.lines().find(|l| l.contains(" name=q ")).unwrap().to_string();
        l.split(" cmd=").nth(1).unwrap().split(' ').next().unwrap().to_string()
    };
    let _: redis::Value = redis::cmd("MULTI").query_async(&mut q).await.unwrap();
    let _: redis::Value = redis::cmd("GET").arg("k").query_async(&mut q).await.unwrap();
    assert_eq!(cmd_of_q(redis::cmd("CLIENT").arg("LIST").query_async(&mut c).await.unwrap()), "get");
    let _: redis::Value = redis::cmd("DISCARD").query_async(&mut q).await.unwrap();
    for unknown in [vec!["NOSUCH"], vec!["CONFIG", "FOO"]] {
        let r: redis::RedisResult<redis::Value> = redis::cmd(unknown[0]).arg(&unknown[1..]).query_async(&mut q).await;
        assert!(r.is_err());
        assert_eq!(
            cmd_of_q(redis::cmd("CLIENT").arg("LIST").query_async(&mut c).await.unwrap()),
            "NULL",
            "{unknown:?}"
        );
    }
    h.stop().await;
}

/// SLOWLOG as Redis 7.0's slowlog.c keeps it: newest first, ids that survive RESET, 32 arguments
/// at most (the last counting the rest), 128 bytes per argument, AUTH's redacted, EXEC itself not
/// logged (its commands are), the client's address and name, and slowlog-max-len applied.
#[tokio::test]
async fn slowlog_records_slow_commands_as_redis() {
    let h = start_with(&[("enable-debug-command", "yes")]).await;
    let mut c = client(h.addr).await;
    let get = |n: i64| redis::cmd("SLOWLOG").arg("GET").arg(n).clone();
    // The default threshold (10 ms) lets a GET by, not a 30 ms DEBUG SLEEP.
    let _: Option<String> = c.get("k").await.unwrap();
    let _: () = redis::cmd("DEBUG").arg("SLEEP").arg("0.03").query_async(&mut c).await.unwrap();
    let log: Vec<redis::Value> = get(-1).query_async(&mut c).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    let redis::Value::Array(entry) = &log[0] else { panic!("{log:?}") };
    assert_eq!(entry.len(), 6);
    assert!(matches!(entry[2], redis::Value::Int(us) if us >= 30_000), "{entry:?}");
    assert_eq!(
        entry[3],
        redis::Value::Array(vec![
            redis::Value::BulkString(b"DEBUG".to_vec()),
            redis::Value::BulkString(b"SLEEP".to_vec()),
            redis::Value::BulkString(b"0.03".to_vec())
        ])
    );
    let peer: String = redis::from_redis_value(&entry[4]).unwrap();
    let local: std::net::SocketAddr = peer.parse().unwrap();
    assert_eq!(local.ip().to_string(), "127.0.0.1");
    assert_eq!(entry[5], redis::Value::BulkString(Vec::new()), "no client name yet");

    // Everything, from now on.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(0)
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(&mut c).await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("slowpoke")
        .query_async(&mut c)
        .await
        .unwrap();
    let long = "x".repeat(200);
    let _: () = c.set("k", &long).await.unwrap();
    let many: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let _: i64 = redis::cmd("DEL").arg(&many).query_async(&mut c).await.unwrap();
    let _: redis::RedisResult<()> = redis::cmd("AUTH").arg("secret").query_async(&mut c).await;
    let (_, _): (String, String) = redis::pipe().atomic().set("a", 1).get("a").query_async(&mut c).await.unwrap();
    let log: Vec<(i64, i64, i64, Vec<String>, String, String)> = get(-1).query_async(&mut c).await.unwrap();
    let args: Vec<&[String]> = log.iter().map(|e| &e.3[..]).collect();
    // Newest first: GET and SET of the transaction (EXEC not logged), MULTI, AUTH, DEL, SET,
    // CLIENT SETNAME, SLOWLOG RESET.
    assert_eq!(args[0], ["GET", "a"]);
    assert_eq!(args[1], ["SET", "a", "1"]);
    assert_eq!(args[2], ["MULTI"]);
    assert_eq!(args[3], ["AUTH", "(redacted)"]);
    assert_eq!(args[4].len(), 32);
    assert_eq!(args[4][30], "k29");
    assert_eq!(args[4][31], "... (10 more arguments)");
    assert_eq!(args[5], ["SET", "k", &format!("{}... (72 more bytes)", "x".repeat(128))]);
    assert_eq!(args[6], ["CLIENT", "SETNAME", "slowpoke"]);
    assert_eq!(args[7], ["SLOWLOG", "RESET"]);
    assert_eq!(log[0].5, "slowpoke");
    let ids: Vec<i64> = log.iter().map(|e| e.0).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1] + 1), "ids count down: {ids:?}");
    assert!(log[7].0 >= 1, "ids go on after RESET: {ids:?}");
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query_async(&mut c).await.unwrap();
    assert_eq!(len as usize, log.len() + 1, "the SLOWLOG GET itself");
    let two: Vec<redis::Value> = get(2).query_async(&mut c).await.unwrap();
    assert_eq!(two.len(), 2);

    // slowlog-max-len trims on the next entry; a negative threshold logs nothing.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-max-len")
        .arg(3)
        .query_async(&mut c)
        .await
        .unwrap();
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query_async(&mut c).await.unwrap();
    assert_eq!(len, 3);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(-1)
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(&mut c).await.unwrap();
    let _: () = redis::cmd("DEBUG").arg("SLEEP").arg("0.02").query_async(&mut c).await.unwrap();
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query_async(&mut c).await.unwrap();
    assert_eq!(len, 0);
    h.stop().await;
}

/// CLIENT PAUSE as Redis 7.0 postpones commands: under WRITE, reads answer at once and writes (and
/// an EXEC of writes) wait, with the commands pipelined behind them, until CLIENT UNPAUSE or the
/// end of the pause; under ALL every command waits, CLIENT UNPAUSE included.
#[tokio::test]
async fn client_pause_holds_writes_then_everything() {
    let h = start().await;
    let mut admin = client(h.addr).await;
    let mut writer = Raw::connect(h.addr).await;
    let mut reader = Raw::connect(h.addr).await;
    let pause = |ms: u64, mode: &str| redis::cmd("CLIENT").arg("PAUSE").arg(ms).arg(mode).clone();
    let _: () = pause(10_000, "WRITE").query_async(&mut admin).await.unwrap();
    // A write, and a read pipelined behind it, wait; another client's read does not.
    writer.send(b"SET k v\r\nGET k\r\n").await;
    reader.roundtrip(b"GET k\r\n", b"$-1\r\n").await;
    let mut tx = Raw::connect(h.addr).await;
    tx.roundtrip(b"MULTI\r\n", b"+OK\r\n").await;
    tx.send(b"INCR n\r\n").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), writer.read_n(1)).await.is_err(),
        "the write ran during the pause"
    );
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query_async(&mut admin).await.unwrap();
    assert_eq!(writer.read_n(12).await, b"+OK\r\n$1\r\nv\r\n");
    assert_eq!(tx.read_n(9).await, b"+QUEUED\r\n");

    // An EXEC of writes waits; the pause's end lets it run.
    let _: () = pause(300, "WRITE").query_async(&mut admin).await.unwrap();
    let started = std::time::Instant::now();
    tx.roundtrip(b"EXEC\r\n", b"*1\r\n:1\r\n").await;
    assert!(started.elapsed() >= Duration::from_millis(200), "EXEC ran during the pause");

    // ALL: even a PING waits, until the pause ends.
    let _: () = pause(300, "ALL").query_async(&mut admin).await.unwrap();
    let started = std::time::Instant::now();
    reader.roundtrip(b"PING\r\n", b"+PONG\r\n").await;
    assert!(started.elapsed() >= Duration::from_millis(200), "PING ran during the pause");
    reader
        .roundtrip(b"CLIENT PAUSE 10 sideways\r\n", b"-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n")
        .await;
    reader.roundtrip(b"CLIENT PAUSE -1\r\n", b"-ERR timeout is negative\r\n").await;
    h.stop().await;
}
