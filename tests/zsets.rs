//! Sorted sets through a real client (redis-rs): a game leaderboard, a delayed-job queue, a large
//! set checked against a model (ranks, ranges, ZSCAN while it changes), and sorted-set keys in the
//! keyspace (TYPE, OBJECT ENCODING, MEMORY USAGE, EXPIRE, SCAN TYPE, COPY, RENAME).

mod common;
use common::*;
use redis::AsyncCommands;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

/// used_memory counts this whole process, so the tests take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn leaderboard_pattern() {
    let _turn = SERIAL.lock().await;
    let h = start().await;
    let mut c = client(h.addr).await;
    let board = "leaderboard:season1";
    let players = [
        ("alice", 1200.0),
        ("bob", 950.5),
        ("carol", 1430.0),
        ("dave", 800.0),
        ("erin", 1430.0),
    ];
    for (p, s) in players {
        let added: i64 = c.zadd(board, p, s).await.unwrap();
        assert_eq!(added, 1);
    }
    let _: bool = c.expire(board, 3600).await.unwrap();

    // Matches played: scores go up by float increments.
    let bob: f64 = c.zincr(board, "bob", 500.25).await.unwrap();
    assert_eq!(bob, 1450.75);
    let dave: f64 = c.zincr(board, "dave", -50).await.unwrap();
    assert_eq!(dave, 750.0);

    // Top three, highest first; ties by member name (erin > carol in reverse order).
    let top: Vec<(String, f64)> = c.zrevrange_withscores(board, 0, 2).await.unwrap();
    assert_eq!(
        top,
        vec![
            ("bob".to_string(), 1450.75),
            ("erin".to_string(), 1430.0),
            ("carol".to_string(), 1430.0)
        ]
    );
    let rank: Option<usize> = c.zrevrank(board, "alice").await.unwrap();
    assert_eq!(rank, Some(3));
    let rank: Option<usize> = c.zrank(board, "dave").await.unwrap();
    assert_eq!(rank, Some(0));
    let missing: Option<usize> = c.zrank(board, "mallory").await.unwrap();
    assert_eq!(missing, None);
    let score: Option<f64> = c.zscore(board, "carol").await.unwrap();
    assert_eq!(score, Some(1430.0));
    let between: usize = c.zcount(board, 1000, "(1430").await.unwrap();
    assert_eq!(between, 1);

    // Pagination by score, two per page.
    let page1: Vec<String> = c.zrangebyscore_limit(board, "-inf", "+inf", 0, 2).await.unwrap();
    let page2: Vec<String> = c.zrangebyscore_limit(board, "-inf", "+inf", 2, 2).await.unwrap();
    assert_eq!(page1, vec!["dave", "alice"]);
    assert_eq!(page2, vec!["carol", "erin"]);

    // ZADD GT only raises a score; CH counts changes.
    let changed: i64 = redis::cmd("ZADD")
        .arg(board)
        .arg("GT")
        .arg("CH")
        .arg(1000)
        .arg("alice")
        .arg(1300)
        .arg("alice")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let score: Option<f64> = c.zscore(board, "alice").await.unwrap();
    assert_eq!(score, Some(1300.0));

    // Keep only the top 3: remove everything below rank -3.
    let trimmed: usize = c.zremrangebyrank(board, 0, -4).await.unwrap();
    assert_eq!(trimmed, 2);
    let left: Vec<String> = c.zrange(board, 0, -1).await.unwrap();
    assert_eq!(left, vec!["carol", "erin", "bob"]);
    // Every write kept the TTL.
    let ttl: i64 = c.ttl(board).await.unwrap();
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}");

    // Season over: store the final standings, then drain the board.
    let stored: usize = redis::cmd("ZRANGESTORE")
        .arg("final:season1")
        .arg(board)
        .arg(0)
        .arg(0)
        .arg("REV")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(stored, 1);
    let winner: Vec<(String, f64)> = c.zrange_withscores("final:season1", 0, -1).await.unwrap();
    assert_eq!(winner, vec![("bob".to_string(), 1450.75)]);
    let popped: Vec<(String, f64)> = c.zpopmin(board, 10).await.unwrap();
    assert_eq!(popped.len(), 3);
    let exists: bool = c.exists(board).await.unwrap();
    assert!(!exists, "the last member going deletes the key");

    // Wrong types both ways.
    let _: () = c.set("plain", "v").await.unwrap();
    let e = c.zadd::<_, _, _, i64>("plain", "m", 1).await.unwrap_err();
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    let e = c.get::<_, Option<String>>("final:season1").await.unwrap_err();
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    h.stop().await;
}

/// A delayed-job queue: jobs scored by the time they become due; a worker takes the due ones.
#[tokio::test]
async fn delayed_job_queue() {
    let _turn = SERIAL.lock().await;
    let h = start().await;
    let mut c = client(h.addr).await;
    let q = "jobs:delayed";
    let now = 1_700_000_000_000i64;
    let jobs: Vec<(i64, String)> = (0..50).map(|i| (now + i * 1000, format!("job-{i}"))).collect();
    let n: i64 = c.zadd_multiple(q, &jobs).await.unwrap();
    assert_eq!(n, 50);

    // At now + 9.5 s, jobs 0..=9 are due; take them five at a time and claim each with ZREM.
    let due_at = now + 9_500;
    let mut claimed = Vec::new();
    loop {
        let due: Vec<String> = c.zrangebyscore_limit(q, "-inf", due_at, 0, 5).await.unwrap();
        if due.is_empty() {
            break;
        }
        for job in due {
            let won: i64 = c.zrem(q, &job).await.unwrap();
            if won == 1 {
                claimed.push(job);
            }
        }
    }
    let expected: Vec<String> = (0..10).map(|i| format!("job-{i}")).collect();
    assert_eq!(claimed, expected);
    let left: usize = c.zcard(q).await.unwrap();
    assert_eq!(left, 40);

    // A retry pushes a job back; ZADD XX only updates jobs still queued.
    let updated: i64 = redis::cmd("ZADD")
        .arg(q)
        .arg("XX")
        .arg("CH")
        .arg(now + 100_000)
        .arg("job-10")
        .arg(now)
        .arg("job-0")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(updated, 1);
    let last: Vec<String> = c.zrange(q, -1, -1).await.unwrap();
    assert_eq!(last, vec!["job-10"]);

    // The blocking pop serves at once when something is queued, with the key's name.
    let (key, job, score): (String, String, f64) = redis::cmd("BZPOPMIN")
        .arg("nothing")
        .arg(q)
        .arg(1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((key.as_str(), job.as_str(), score), (q, "job-11", (now + 11_000) as f64));

    // ZMPOP takes from the first non-empty key.
    let (key, popped): (String, Vec<(String, f64)>) = redis::cmd("ZMPOP")
        .arg(2)
        .arg("nothing")
        .arg(q)
        .arg("MAX")
        .arg("COUNT")
        .arg(2)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(key, q);
    assert_eq!(popped[0].0, "job-10");
    assert_eq!(popped[1].0, "job-49");

    // Job sets combine: ZUNIONSTORE of two queues, ZINTER of shared jobs.
    let _: i64 = c.zadd_multiple("jobs:other", &[(1, "job-20"), (2, "extra")]).await.unwrap();
    let total: usize = c.zunionstore("jobs:all", &[q, "jobs:other"]).await.unwrap();
    assert_eq!(total, 38);
    let shared: Vec<String> = redis::cmd("ZINTER")
        .arg(2)
        .arg(q)
        .arg("jobs:other")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(shared, vec!["job-20"]);
    let card: usize = redis::cmd("ZINTERCARD")
        .arg(2)
        .arg(q)
        .arg("jobs:all")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(card, 37);
    h.stop().await;
}

/// A large sorted set against a model: ranks, rank ranges, score ranges and lex ranges agree, and
/// ZSCAN returns every member present for the whole iteration while the set changes.
#[tokio::test]
async fn large_sorted_set_matches_a_model() {
    let _turn = SERIAL.lock().await;
    let h = start().await;
    let mut c = client(h.addr).await;
    const N: usize = 100_000;
    let mut model: HashMap<String, f64> = HashMap::new();
    let mut rng = fastrand::Rng::with_seed(42);
    let mut pairs = Vec::with_capacity(N);
    for i in 0..N {
        let m = format!("member:{i:06}");
        let s = rng.u32(..10_000) as f64 / 4.0;
        model.insert(m.clone(), s);
        pairs.push((s, m));
    }
    for chunk in pairs.chunks(5000) {
        let _: i64 = c.zadd_multiple("big", chunk).await.unwrap();
    }
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("big").query_async(&mut c).await.unwrap();
    assert_eq!(enc, "skiplist");
    let card: usize = c.zcard("big").await.unwrap();
    assert_eq!(card, N);

    let mut sorted: Vec<(f64, String)> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
    sorted.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then_with(|| a.1.cmp(&b.1)));

    for _ in 0..200 {
        let i = rng.usize(..N);
        let (s, m) = &sorted[i];
        let rank: Option<usize> = c.zrank("big", m).await.unwrap();
        assert_eq!(rank, Some(i), "rank of {m}");
        let rev: Option<usize> = c.zrevrank("big", m).await.unwrap();
        assert_eq!(rev, Some(N - 1 - i));
        let at: Vec<(String, f64)> = c.zrange_withscores("big", i as isize, i as isize + 2).await.unwrap();
        let expect: Vec<(String, f64)> = sorted[i..(i + 3).min(N)].iter().map(|(s, m)| (m.clone(), *s)).collect();
        assert_eq!(at, expect);
        let count: usize = c.zcount("big", *s, *s + 10.0).await.unwrap();
        let expect = sorted.iter().filter(|(x, _)| *x >= *s && *x <= *s + 10.0).count();
        assert_eq!(count, expect);
    }
    let page: Vec<String> = c.zrangebyscore_limit("big", 1000, "+inf", 50, 5).await.unwrap();
    let first = sorted.iter().position(|(s, _)| *s >= 1000.0).unwrap();
    let expect: Vec<String> = sorted[first + 50..first + 55].iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(page, expect);

    // Remove a score band and a rank band; the model follows.
    let gone: usize = c.zrembyscore("big", 100, 200).await.unwrap();
    let before = sorted.len();
    sorted.retain(|(s, _)| !(100.0..=200.0).contains(s));
    assert_eq!(gone, before - sorted.len());
    let gone: usize = c.zremrangebyrank("big", 10_000, 19_999).await.unwrap();
    assert_eq!(gone, 10_000);
    sorted.drain(10_000..20_000);
    let card: usize = c.zcard("big").await.unwrap();
    assert_eq!(card, sorted.len());
    for i in [0, 9_999, 10_000, sorted.len() / 2, sorted.len() - 1] {
        let got: Vec<String> = c.zrange("big", i as isize, i as isize).await.unwrap();
        assert_eq!(got, vec![sorted[i].1.clone()], "rank {i}");
    }

    // ZSCAN while members come and go: every stable member is returned at least once.
    let stable: BTreeSet<String> = sorted.iter().map(|(_, m)| m.clone()).collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut cursor: u64 = 0;
    let mut calls = 0;
    loop {
        let (next, flat): (u64, Vec<String>) = redis::cmd("ZSCAN")
            .arg("big")
            .arg(cursor)
            .arg("COUNT")
            .arg(500)
            .query_async(&mut c)
            .await
            .unwrap();
        for pair in flat.chunks_exact(2) {
            let score: f64 = pair[1].parse().unwrap();
            if let Some(s) = model.get(&pair[0]) {
                assert_eq!(score, *s);
            }
            seen.insert(pair[0].clone());
        }
        calls += 1;
        if calls == 3 {
            let extra: Vec<(f64, String)> = (0..20_000).map(|i| (i as f64, format!("extra:{i}"))).collect();
            for chunk in extra.chunks(5000) {
                let _: i64 = c.zadd_multiple("big", chunk).await.unwrap();
            }
        }
        if calls == 30 {
            let names: Vec<String> = (0..20_000).map(|i| format!("extra:{i}")).collect();
            for chunk in names.chunks(5000) {
                let _: i64 = c.zrem("big", chunk).await.unwrap();
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
        assert!(calls < 100_000, "ZSCAN does not finish");
    }
    for m in &stable {
        assert!(seen.contains(m), "{m} missing from ZSCAN");
    }
    assert!(calls > 10, "a large set is scanned in steps ({calls} calls)");

    // Pop everything from both ends: the order is the model's.
    let lows: Vec<(String, f64)> = c.zpopmin("big", 3).await.unwrap();
    assert_eq!(
        lows.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
        sorted[..3].iter().map(|(_, m)| m.clone()).collect::<Vec<_>>()
    );
    let highs: Vec<(String, f64)> = c.zpopmax("big", 3).await.unwrap();
    let n = sorted.len();
    assert_eq!(
        highs.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
        sorted[n - 3..].iter().rev().map(|(_, m)| m.clone()).collect::<Vec<_>>()
    );
    let gone: usize = c.zrembyscore("big", "-inf", "+inf").await.unwrap();
    assert_eq!(gone, n - 6);
    let exists: bool = c.exists("big").await.unwrap();
    assert!(!exists);
    h.stop().await;
}

#[tokio::test]
async fn sorted_set_keys_in_the_keyspace() {
    let _turn = SERIAL.lock().await;
    let h = start().await;
    let mut c = client(h.addr).await;
    let _: i64 = c.zadd("small", "m", 1).await.unwrap();
    let t: String = redis::cmd("TYPE").arg("small").query_async(&mut c).await.unwrap();
    assert_eq!(t, "zset");
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("small").query_async(&mut c).await.unwrap();
    assert_eq!(enc, "listpack");
    let small: i64 = redis::cmd("MEMORY").arg("USAGE").arg("small").query_async(&mut c).await.unwrap();
    let members: Vec<(f64, String)> = (0..2000).map(|i| (i as f64, format!("{i:0100}"))).collect();
    let _: i64 = c.zadd_multiple("large", &members).await.unwrap();
    let large: i64 = redis::cmd("MEMORY").arg("USAGE").arg("large").query_async(&mut c).await.unwrap();
    assert!(small > 0 && small < 2048, "small zset: {small} bytes");
    // 2000 members of 100 bytes (kept in the skiplist and the table): the data, not wildly more.
    assert!(large > 2000 * 100 && large < 2000 * 600, "large zset: {large} bytes");

    // Encodings follow the configured limits.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("zset-max-listpack-entries")
        .arg(2)
        .query_async(&mut c)
        .await
        .unwrap();
    let _: i64 = c.zadd_multiple("three", &[(1, "a"), (2, "b"), (3, "c")]).await.unwrap();
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("three").query_async(&mut c).await.unwrap();
    assert_eq!(enc, "skiplist");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("zset-max-listpack-entries")
        .arg(128)
        .query_async(&mut c)
        .await
        .unwrap();

    // COPY is deep; RENAME moves with the TTL; SCAN TYPE finds sorted sets.
    let _: bool = redis::cmd("COPY").arg("three").arg("copy").query_async(&mut c).await.unwrap();
    let _: i64 = c.zadd("copy", "d", 4).await.unwrap();
    let n: usize = c.zcard("three").await.unwrap();
    assert_eq!(n, 3);
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("copy").query_async(&mut c).await.unwrap();
    assert_eq!(enc, "skiplist", "COPY keeps the encoding");
    let _: bool = c.expire("copy", 100).await.unwrap();
    let _: () = c.rename("copy", "renamed").await.unwrap();
    let ttl: i64 = c.ttl("renamed").await.unwrap();
    assert!((95..=100).contains(&ttl), "ttl {ttl}");
    let got: Vec<String> = c.zrange("renamed", 0, -1).await.unwrap();
    assert_eq!(got, vec!["a", "b", "c", "d"]);
    let _: () = c.set("str", "v").await.unwrap();
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("TYPE")
            .arg("zset")
            .query_async(&mut c)
            .await
            .unwrap();
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let keys: HashSet<String> = keys.into_iter().collect();
    assert_eq!(keys, ["small", "large", "three", "renamed"].iter().map(|s| s.to_string()).collect());

    // A store command replaces whatever the destination held, and clears its TTL.
    let _: bool = c.expire("str", 100).await.unwrap();
    let n: usize = c.zunionstore("str", &["three", "renamed"]).await.unwrap();
    assert_eq!(n, 4);
    let t: String = redis::cmd("TYPE").arg("str").query_async(&mut c).await.unwrap();
    assert_eq!(t, "zset");
    let ttl: i64 = c.ttl("str").await.unwrap();
    assert_eq!(ttl, -1);
    // An empty result deletes the destination.
    let n: usize = c.zinterstore("str", &["three", "nothing"]).await.unwrap();
    assert_eq!(n, 0);
    let exists: bool = c.exists("str").await.unwrap();
    assert!(!exists);

    // Expiry removes a sorted set like any key.
    let _: bool = c.pexpire("small", 30).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let n: usize = c.zcard("small").await.unwrap();
    assert_eq!(n, 0);

    // RESP3 clients get doubles.
    let mut raw = Raw::connect(h.addr).await;
    raw.send(b"HELLO 3\r\n").await;
    let _ = raw.read_n(1 << 16).await;
    raw.roundtrip(b"ZSCORE three b\r\n", b",2\r\n").await;
    raw.roundtrip(b"ZRANGE three 0 0 WITHSCORES\r\n", b"*1\r\n*2\r\n$1\r\na\r\n,1\r\n")
        .await;
    h.stop().await;
}
