//! Hashes through a real client (redis-rs): a session store (HSET, HGETALL, HINCRBY, EXPIRE), a large
//! hash walked with HSCAN while it changes, and hash keys in the keyspace (TYPE, MEMORY USAGE,
//! eviction).

mod common;
use common::*;
use redis::AsyncCommands;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// used_memory counts this whole process, so the tests take turns: the eviction test must not see
/// another test's allocations.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn session_store_pattern() {
    let _turn = SERIAL.lock().await;
    let h = start().await;
    let mut c = client(h.addr).await;
    let key = "session:9f2c";
    let _: () = c
        .hset_multiple(
            key,
            &[("user_id", "42"), ("csrf", "tok-abc"), ("hits", "0"), ("created", "1700000000")],
        )
        .await
        .unwrap();
    let _: bool = c.expire(key, 1800).await.unwrap();
    for _ in 0..5 {
        let _: i64 = c.hincr(key, "hits", 1).await.unwrap();
    }
    let session: HashMap<String, String> = c.hgetall(key).await.unwrap();
    assert_eq!(session.len(), 4);
    assert_eq!(session["user_id"], "42");
    assert_eq!(session["hits"], "5");
    // Writing fields keeps the TTL, as in Redis.
    let _: i64 = c.hset(key, "last_seen", "1700000100").await.unwrap();
    let ttl: i64 = c.ttl(key).await.unwrap();
    assert!((1790..=1800).contains(&ttl), "ttl {ttl}");
    let t: String = redis::cmd("TYPE").arg(key).query_async(&mut c).await.unwrap();
    assert_eq!(t, "hash");
    let user: Option<String> = c.hget(key, "user_id").await.unwrap();
    assert_eq!(user.as_deref(), Some("42"));
    let missing: Option<String> = c.hget(key, "nope").await.unwrap();
    assert_eq!(missing, None);
    let n: i64 = c.hdel(key, &["csrf", "nope"]).await.unwrap();
    assert_eq!(n, 1);
    let exists: bool = c.hexists(key, "csrf").await.unwrap();
    assert!(!exists);
    let spent: f64 = redis::cmd("HINCRBYFLOAT")
        .arg(key)
        .arg("spent")
        .arg("10.5")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(spent, 10.5);

    // Logout: the session expires by itself.
    let _: bool = c.pexpire(key, 50).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let session: HashMap<String, String> = c.hgetall(key).await.unwrap();
    assert!(session.is_empty());
    let exists: bool = c.exists(key).await.unwrap();
    assert!(!exists);

    // Wrong types both ways.
    let _: () = c.set("plain", "v").await.unwrap();
    let e = c.hget::<_, _, Option<String>>("plain", "f").await.unwrap_err();
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    let _: i64 = c.hset("h", "f", "v").await.unwrap();
    let e = c.get::<_, Option<String>>("h").await.unwrap_err();
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    // The last field going deletes the key.
    let _: i64 = c.hdel("h", "f").await.unwrap();
    let exists: bool = c.exists("h").await.unwrap();
    assert!(!exists);
    h.stop().await;
}

/// Every field present for a whole HSCAN iteration is returned at least once, even while the hash
/// grows and shrinks between calls (Redis's guarantee).
#[tokio::test]
async fn hscan_returns_every_field_of_a_large_changing_hash() {
    let _turn = SERIAL.lock().await;
    let h = start().await;
    let mut c = client(h.addr).await;
    let stable: Vec<(String, String)> = (0..10_000).map(|i| (format!("field:{i}"), format!("value:{i}"))).collect();
    for chunk in stable.chunks(1000) {
        let _: () = c.hset_multiple("big", chunk).await.unwrap();
    }
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("big").query_async(&mut c).await.unwrap();
    assert_eq!(enc, "hashtable");
    let len: usize = c.hlen("big").await.unwrap();
    assert_eq!(len, 10_000);

    let mut seen: HashMap<String, String> = HashMap::new();
    let mut cursor: u64 = 0;
    let mut calls = 0;
    loop {
        let (next, flat): (u64, Vec<String>) = redis::cmd("HSCAN")
            .arg("big")
            .arg(cursor)
            .arg("COUNT")
            .arg(100)
            .query_async(&mut c)
            .await
            .unwrap();
        for pair in flat.chunks_exact(2) {
            seen.insert(pair[0].clone(), pair[1].clone());
        }
        calls += 1;
        // Churn between calls: add fields (the table grows), then remove them again (it shrinks).
        if calls == 5 {
            let extra: Vec<(String, String)> = (0..20_000).map(|i| (format!("extra:{i}"), "x".to_string())).collect();
            for chunk in extra.chunks(1000) {
                let _: () = c.hset_multiple("big", chunk).await.unwrap();
            }
        }
        if calls == 40 {
            let names: Vec<String> = (0..20_000).map(|i| format!("extra:{i}")).collect();
            for chunk in names.chunks(1000) {
                let _: i64 = c.hdel("big", chunk).await.unwrap();
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
        assert!(calls < 100_000, "HSCAN does not finish");
    }
    for (f, v) in &stable {
        assert_eq!(seen.get(f), Some(v), "{f} missing from HSCAN");
    }
    assert!(calls > 10, "a large hash is scanned in steps ({calls} calls)");

    // MATCH filters fields; COUNT bounds the work per call.
    let mut matched = HashSet::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, flat): (u64, Vec<String>) = redis::cmd("HSCAN")
            .arg("big")
            .arg(cursor)
            .arg("MATCH")
            .arg("field:99*")
            .query_async(&mut c)
            .await
            .unwrap();
        for pair in flat.chunks_exact(2) {
            matched.insert(pair[0].clone());
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let expected: HashSet<String> = stable
        .iter()
        .map(|(f, _)| f.clone())
        .filter(|f| f.starts_with("field:99"))
        .collect();
    assert_eq!(matched, expected);

    // redis-rs's own HSCAN iterator sees the whole hash too.
    let mut iter: redis::AsyncIter<(String, String)> = c.hscan("big").await.unwrap();
    let mut n = 0;
    while let Some(_pair) = iter.next_item().await {
        n += 1;
    }
    drop(iter);
    assert!(n >= 10_000);
    h.stop().await;
}

#[tokio::test]
async fn hash_keys_in_the_keyspace() {
    let _turn = SERIAL.lock().await;
    let h = start().await;
    let mut c = client(h.addr).await;
    let _: i64 = c.hset("small", "f", "v").await.unwrap();
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("small").query_async(&mut c).await.unwrap();
    assert_eq!(enc, "listpack");
    let small: i64 = redis::cmd("MEMORY").arg("USAGE").arg("small").query_async(&mut c).await.unwrap();
    let fields: Vec<(String, String)> = (0..2000).map(|i| (format!("f{i}"), "v".repeat(100))).collect();
    let _: () = c.hset_multiple("large", &fields).await.unwrap();
    let large: i64 = redis::cmd("MEMORY").arg("USAGE").arg("large").query_async(&mut c).await.unwrap();
    assert!(small > 0 && small < 1024, "small hash: {small} bytes");
    // 2000 fields of 100-byte values: at least the data, not wildly more.
    assert!(large > 2000 * 100 && large < 2000 * 400, "large hash: {large} bytes");

    // COPY is deep; RENAME moves; SCAN TYPE finds hashes.
    let _: bool = redis::cmd("COPY").arg("small").arg("copy").query_async(&mut c).await.unwrap();
    let _: i64 = c.hset("copy", "g", "w").await.unwrap();
    let n: usize = c.hlen("small").await.unwrap();
    assert_eq!(n, 1);
    let _: () = c.rename("copy", "renamed").await.unwrap();
    let keys: Vec<String> = redis::cmd("SCAN")
        .arg(0)
        .arg("COUNT")
        .arg(1000)
        .arg("TYPE")
        .arg("hash")
        .query_async::<(u64, Vec<String>)>(&mut c)
        .await
        .unwrap()
        .1;
    let keys: HashSet<String> = keys.into_iter().collect();
    assert_eq!(keys, ["small", "large", "renamed"].iter().map(|s| s.to_string()).collect());
    h.stop().await;
}

/// Under maxmemory with allkeys-lru, hash keys are evicted like any key.
#[tokio::test]
async fn hashes_are_evicted_under_maxmemory() {
    let _turn = SERIAL.lock().await;
    let h = start_with(&[("maxmemory-policy", "allkeys-lru")]).await;
    let mut c = client(h.addr).await;
    let used = |info: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut c).await.unwrap();
    let limit = used(&info) + 4 * 1024 * 1024;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(limit)
        .query_async(&mut c)
        .await
        .unwrap();
    let value = "x".repeat(1000);
    for i in 0..20_000 {
        let _: i64 = c.hset(format!("user:{i}"), "profile", &value).await.unwrap();
    }
    let info: String = redis::cmd("INFO").arg("stats").query_async(&mut c).await.unwrap();
    let evicted: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("evicted_keys:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(evicted > 0, "no hash keys evicted");
    let n: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert!(n < 20_000 && n > 0, "dbsize {n}");
    h.stop().await;
}
