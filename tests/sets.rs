//! Sets through a real client (redis-rs): article tags and "who liked what" (SADD, SINTER,
//! SUNIONSTORE, SMOVE ...), set keys in the keyspace (TYPE, MEMORY USAGE, EXPIRE, SCAN TYPE, COPY,
//! RENAME), a large set walked with SSCAN while it changes, SMOVE from many clients at once, and
//! the randomness of SPOP / SRANDMEMBER checked statistically.

mod common;
use common::*;
use redis::AsyncCommands;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

async fn encoding(c: &mut redis::aio::MultiplexedConnection, key: &str) -> String {
    redis::cmd("OBJECT").arg("ENCODING").arg(key).query_async(c).await.unwrap()
}

#[tokio::test]
async fn tags_and_likes() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let n: i64 = c.sadd("tag:rust", &["a1", "a2", "a3"]).await.unwrap();
    assert_eq!(n, 3);
    let n: i64 = c.sadd("tag:db", &["a2", "a3", "a4", "a2"]).await.unwrap();
    assert_eq!(n, 3);
    let n: i64 = c.sadd("tag:db", "a4").await.unwrap();
    assert_eq!(n, 0);
    let both: HashSet<String> = c.sinter(&["tag:rust", "tag:db"]).await.unwrap();
    assert_eq!(both, HashSet::from(["a2".to_string(), "a3".to_string()]));
    let either: HashSet<String> = c.sunion(&["tag:rust", "tag:db"]).await.unwrap();
    assert_eq!(either.len(), 4);
    let only_rust: HashSet<String> = c.sdiff(&["tag:rust", "tag:db"]).await.unwrap();
    assert_eq!(only_rust, HashSet::from(["a1".to_string()]));
    let n: i64 = c.sunionstore("feed", &["tag:rust", "tag:db"]).await.unwrap();
    assert_eq!(n, 4);
    let card: i64 = redis::cmd("SINTERCARD")
        .arg(2)
        .arg("tag:rust")
        .arg("tag:db")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(card, 2);
    let card: i64 = redis::cmd("SINTERCARD")
        .arg(2)
        .arg("tag:rust")
        .arg("tag:db")
        .arg("LIMIT")
        .arg(1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(card, 1);

    // Likes: user ids are integers, so the set is an intset and answers in order.
    let _: i64 = c.sadd("likes:a1", &[42, 7, 1000, 7]).await.unwrap();
    assert_eq!(encoding(&mut c, "likes:a1").await, "intset");
    let who: Vec<i64> = c.smembers("likes:a1").await.unwrap();
    assert_eq!(who, vec![7, 42, 1000]);
    let liked: bool = c.sismember("likes:a1", 42).await.unwrap();
    assert!(liked);
    let many: Vec<bool> = redis::cmd("SMISMEMBER")
        .arg("likes:a1")
        .arg(7)
        .arg(8)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(many, vec![true, false]);
    // Unlike moves the id to another article; the last unlike deletes the key.
    let moved: bool = c.smove("likes:a1", "likes:a2", 42).await.unwrap();
    assert!(moved);
    let moved: bool = c.smove("likes:a1", "likes:a2", 42).await.unwrap();
    assert!(!moved);
    let n: i64 = c.srem("likes:a1", &[7, 1000]).await.unwrap();
    assert_eq!(n, 2);
    let exists: bool = c.exists("likes:a1").await.unwrap();
    assert!(!exists);
    let n: i64 = c.scard("likes:a2").await.unwrap();
    assert_eq!(n, 1);

    // A whole-set SPOP empties the key.
    let all: HashSet<String> = redis::cmd("SPOP").arg("feed").arg(100).query_async(&mut c).await.unwrap();
    assert_eq!(all.len(), 4);
    let exists: bool = c.exists("feed").await.unwrap();
    assert!(!exists);

    // Wrong types both ways.
    let _: () = c.set("plain", "v").await.unwrap();
    let e = c.sadd::<_, _, i64>("plain", "m").await.unwrap_err();
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    let e = c.get::<_, Option<String>>("tag:db").await.unwrap_err();
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    let e = c.sinter::<_, HashSet<String>>(&["tag:db", "plain"]).await.unwrap_err();
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    h.stop().await;
}

#[tokio::test]
async fn set_keys_in_the_keyspace() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let _: i64 = c.sadd("small", &[1, 2, 3]).await.unwrap();
    let t: String = redis::cmd("TYPE").arg("small").query_async(&mut c).await.unwrap();
    assert_eq!(t, "set");
    let small: i64 = redis::cmd("MEMORY").arg("USAGE").arg("small").query_async(&mut c).await.unwrap();
    let members: Vec<String> = (0..2000).map(|i| format!("member:{i:04}:{}", "x".repeat(90))).collect();
    let _: i64 = c.sadd("large", &members).await.unwrap();
    let large: i64 = redis::cmd("MEMORY").arg("USAGE").arg("large").query_async(&mut c).await.unwrap();
    assert!(small > 0 && small < 1024, "small set: {small} bytes");
    // 2000 members of 100 bytes: at least the data, not wildly more.
    assert!(large > 2000 * 100 && large < 2000 * 400, "large set: {large} bytes");

    // Writes keep the TTL; a *STORE destination loses it.
    let _: bool = c.expire("small", 100).await.unwrap();
    let _: i64 = c.sadd("small", 4).await.unwrap();
    let _: i64 = c.srem("small", 1).await.unwrap();
    let ttl: i64 = c.ttl("small").await.unwrap();
    assert!((90..=100).contains(&ttl), "ttl {ttl}");
    let _: i64 = c.sadd("dest", "x").await.unwrap();
    let _: bool = c.expire("dest", 100).await.unwrap();
    let _: i64 = c.sunionstore("dest", "small").await.unwrap();
    let ttl: i64 = c.ttl("dest").await.unwrap();
    assert_eq!(ttl, -1);

    // COPY is deep and keeps the encoding; RENAME moves; SCAN TYPE finds sets.
    let _: bool = redis::cmd("COPY").arg("small").arg("copy").query_async(&mut c).await.unwrap();
    assert_eq!(encoding(&mut c, "copy").await, "intset");
    let _: i64 = c.sadd("copy", "word").await.unwrap();
    assert_eq!(encoding(&mut c, "copy").await, "hashtable");
    assert_eq!(encoding(&mut c, "small").await, "intset");
    let n: i64 = c.scard("small").await.unwrap();
    assert_eq!(n, 3);
    let _: () = c.rename("copy", "renamed").await.unwrap();
    let m: HashSet<String> = c.smembers("renamed").await.unwrap();
    assert!(m.contains("word") && m.len() == 4);
    let _: () = c.set("str", "v").await.unwrap();
    let (_, keys): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("COUNT")
        .arg(1000)
        .arg("TYPE")
        .arg("set")
        .query_async(&mut c)
        .await
        .unwrap();
    let keys: HashSet<String> = keys.into_iter().collect();
    let want: HashSet<String> = ["small", "large", "dest", "renamed"].iter().map(|s| s.to_string()).collect();
    assert_eq!(keys, want);

    // The set expires as a whole.
    let _: bool = c.pexpire("renamed", 50).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let m: HashSet<String> = c.smembers("renamed").await.unwrap();
    assert!(m.is_empty());
    let n: i64 = c.scard("renamed").await.unwrap();
    assert_eq!(n, 0);

    // The intset limit follows CONFIG SET.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("set-max-intset-entries")
        .arg(3)
        .query_async(&mut c)
        .await
        .unwrap();
    let _: i64 = c.sadd("lim", &[1, 2, 3]).await.unwrap();
    assert_eq!(encoding(&mut c, "lim").await, "intset");
    let _: i64 = c.sadd("lim", 4).await.unwrap();
    assert_eq!(encoding(&mut c, "lim").await, "hashtable");
    h.stop().await;
}

/// Every member present for a whole SSCAN iteration is returned at least once, even while the set
/// grows and shrinks between calls; SPOP then drains 100,000 members.
#[tokio::test]
async fn large_set_sscan_and_drain() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let stable: Vec<String> = (0..100_000).map(|i| format!("user:{i}")).collect();
    for chunk in stable.chunks(5000) {
        let _: i64 = c.sadd("big", chunk).await.unwrap();
    }
    let n: usize = c.scard("big").await.unwrap();
    assert_eq!(n, 100_000);
    assert_eq!(encoding(&mut c, "big").await, "hashtable");

    let mut seen: HashSet<String> = HashSet::new();
    let mut cursor: u64 = 0;
    let mut calls = 0;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg("big")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await
            .unwrap();
        seen.extend(found);
        calls += 1;
        if calls == 5 {
            let extra: Vec<String> = (0..50_000).map(|i| format!("extra:{i}")).collect();
            for chunk in extra.chunks(5000) {
                let _: i64 = c.sadd("big", chunk).await.unwrap();
            }
        }
        if calls == 40 {
            let extra: Vec<String> = (0..50_000).map(|i| format!("extra:{i}")).collect();
            for chunk in extra.chunks(5000) {
                let _: i64 = c.srem("big", chunk).await.unwrap();
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
        assert!(calls < 100_000, "SSCAN does not finish");
    }
    for m in &stable {
        assert!(seen.contains(m), "{m} missing from SSCAN");
    }
    assert!(calls > 10, "a large set is scanned in steps ({calls} calls)");

    // MATCH filters.
    let mut iter: redis::AsyncIter<String> = c.sscan_match("big", "user:9999*").await.unwrap();
    let mut matched = HashSet::new();
    while let Some(m) = iter.next_item().await {
        matched.insert(m);
    }
    drop(iter);
    assert_eq!(matched.len(), 11, "{matched:?}");

    // Intersections and differences of big sets.
    let evens: Vec<String> = (0..100_000).step_by(2).map(|i| format!("user:{i}")).collect();
    for chunk in evens.chunks(5000) {
        let _: i64 = c.sadd("evens", chunk).await.unwrap();
    }
    let card: i64 = redis::cmd("SINTERCARD")
        .arg(2)
        .arg("big")
        .arg("evens")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(card, 50_000);
    let n: i64 = c.sdiffstore("odds", &["big", "evens"]).await.unwrap();
    assert_eq!(n, 50_000);
    let odd: bool = c.sismember("odds", "user:77").await.unwrap();
    assert!(odd);

    // Drain with SPOP counts of every size: nothing is lost or repeated.
    let mut popped: HashSet<String> = HashSet::new();
    let mut count = 1;
    loop {
        let got: Vec<String> = redis::cmd("SPOP").arg("big").arg(count).query_async(&mut c).await.unwrap();
        if got.is_empty() {
            break;
        }
        for m in got {
            assert!(popped.insert(m), "popped twice");
        }
        count = (count * 3).min(40_000);
    }
    assert_eq!(popped.len(), 100_000);
    let exists: bool = c.exists("big").await.unwrap();
    assert!(!exists);
    h.stop().await;
}

/// SMOVE and SINTERSTORE are atomic: members moved back and forth by many clients at once are
/// never lost or duplicated.
#[tokio::test]
async fn concurrent_smove_conserves_members() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let members: Vec<i64> = (0..200).collect();
    let _: i64 = c.sadd("left", &members).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let addr = h.addr;
        tasks.push(tokio::spawn(async move {
            let mut c = client(addr).await;
            for i in 0..300 {
                let m = (i * 7 + t * 13) % 200;
                let (from, to) = if (i + t) % 2 == 0 { ("left", "right") } else { ("right", "left") };
                let _: bool = c.smove(from, to, m).await.unwrap();
                if i % 50 == 0 {
                    let n: i64 = c.sunionstore(format!("snapshot{t}"), &["left", "right"]).await.unwrap();
                    assert_eq!(n, 200);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let l: i64 = c.scard("left").await.unwrap();
    let r: i64 = c.scard("right").await.unwrap();
    assert_eq!(l + r, 200);
    let inter: i64 = redis::cmd("SINTERCARD")
        .arg(2)
        .arg("left")
        .arg("right")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(inter, 0);
    h.stop().await;
}

/// Counts of each member over many draws. For n draws of k members, a member's count has mean
/// n/k and standard deviation below sqrt(n/k); the bound used is 8 standard deviations, which a
/// uniform draw misses with a chance below 1e-14, while a draw biased by hash chains (a member
/// sharing a bucket drawn half as often) misses it by far.
fn assert_uniform(counts: &HashMap<String, u64>, members: usize, draws: u64) {
    assert_eq!(counts.len(), members, "every member drawn");
    let mean = draws as f64 / members as f64;
    let bound = 8.0 * mean.sqrt();
    for (m, &n) in counts {
        assert!((n as f64 - mean).abs() < bound, "{m} drawn {n} times, expected {mean} ± {bound}");
    }
}

#[tokio::test]
async fn spop_and_srandmember_are_uniform() {
    let h = start().await;
    let mut c = client(h.addr).await;
    for (key, members) in [
        ("ints", (0..40).map(|i| i.to_string()).collect::<Vec<_>>()),
        ("strs", (0..40).map(|i| format!("m{i}")).collect::<Vec<_>>()),
    ] {
        let _: i64 = c.sadd(key, &members).await.unwrap();
        // Single draws, and one call with a negative count (repeats allowed).
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut pipe = redis::pipe();
        for _ in 0..20_000 {
            pipe.cmd("SRANDMEMBER").arg(key);
        }
        let single: Vec<String> = pipe.query_async(&mut c).await.unwrap();
        for m in single {
            *counts.entry(m).or_default() += 1;
        }
        let many: Vec<String> = redis::cmd("SRANDMEMBER").arg(key).arg(-20_000).query_async(&mut c).await.unwrap();
        assert_eq!(many.len(), 20_000);
        for m in many {
            *counts.entry(m).or_default() += 1;
        }
        assert_uniform(&counts, 40, 40_000);

        // Distinct draws (positive counts), by both of SRANDMEMBER's strategies.
        for count in [5usize, 30] {
            let mut counts: HashMap<String, u64> = HashMap::new();
            let mut pipe = redis::pipe();
            let trials = 4000;
            for _ in 0..trials {
                pipe.cmd("SRANDMEMBER").arg(key).arg(count);
            }
            let replies: Vec<Vec<String>> = pipe.query_async(&mut c).await.unwrap();
            for r in replies {
                assert_eq!(r.len(), count);
                assert_eq!(r.iter().collect::<HashSet<_>>().len(), count, "distinct members");
                for m in r {
                    *counts.entry(m).or_default() += 1;
                }
            }
            assert_uniform(&counts, 40, (trials * count) as u64);
        }

        // SPOP: one member, and counts drawn one by one or by shuffling.
        for count in [1usize, 3, 35] {
            let mut counts: HashMap<String, u64> = HashMap::new();
            let trials = 3000;
            let mut pipe = redis::pipe();
            for _ in 0..trials {
                pipe.cmd("DEL").arg("pop").ignore();
                pipe.cmd("SADD").arg("pop").arg(&members).ignore();
                if count == 1 {
                    pipe.cmd("SPOP").arg("pop");
                } else {
                    pipe.cmd("SPOP").arg("pop").arg(count);
                }
            }
            if count == 1 {
                let replies: Vec<String> = pipe.query_async(&mut c).await.unwrap();
                for m in replies {
                    *counts.entry(m).or_default() += 1;
                }
            } else {
                let replies: Vec<Vec<String>> = pipe.query_async(&mut c).await.unwrap();
                for r in replies {
                    assert_eq!(r.iter().collect::<HashSet<_>>().len(), count, "distinct members");
                    for m in r {
                        *counts.entry(m).or_default() += 1;
                    }
                }
            }
            let n: i64 = c.scard("pop").await.unwrap();
            assert_eq!(n as usize, 40 - count);
            assert_uniform(&counts, 40, (trials * count) as u64);
        }
    }

    // Reply shapes: count 0, counts beyond the set, huge negative counts refused.
    let none: Vec<String> = redis::cmd("SRANDMEMBER").arg("ints").arg(0).query_async(&mut c).await.unwrap();
    assert!(none.is_empty());
    let all: Vec<String> = redis::cmd("SRANDMEMBER")
        .arg("ints")
        .arg(i64::MAX)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(all.len(), 40);
    let e = redis::cmd("SRANDMEMBER")
        .arg("ints")
        .arg(-1_000_000_000_000i64)
        .query_async::<Vec<String>>(&mut c)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    h.stop().await;
}

#[tokio::test]
async fn intset_limit_from_the_command_line() {
    let h = start_with(&[("set-max-intset-entries", "2")]).await;
    let mut c = client(h.addr).await;
    let _: i64 = c.sadd("s", &[1, 2]).await.unwrap();
    assert_eq!(encoding(&mut c, "s").await, "intset");
    let _: i64 = c.sadd("s", 3).await.unwrap();
    assert_eq!(encoding(&mut c, "s").await, "hashtable");
    let limit: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("set-max-intset-entries")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(limit, vec!["set-max-intset-entries", "2"]);
    h.stop().await;
}

/// The keyspace events of t_set.c, as a subscriber receives them: names, keys, and "del" when a
/// command empties or deletes a key.
#[tokio::test]
async fn keyspace_events() {
    use futures_util::StreamExt;
    let h = start().await;
    let mut c = client(h.addr).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Eg$s")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut sub = redis::Client::open(format!("redis://{}/", h.addr))
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    sub.psubscribe("__keyevent@0__:*").await.unwrap();
    sub.subscribe("marker").await.unwrap();
    let mut messages = sub.on_message();
    let expect = |cmds: &[&[&str]], events: &[(&str, &str)]| {
        let cmds: Vec<Vec<String>> = cmds.iter().map(|c| c.iter().map(|s| s.to_string()).collect()).collect();
        let events: Vec<(String, String)> = events.iter().map(|(e, k)| (format!("__keyevent@0__:{e}"), k.to_string())).collect();
        (cmds, events)
    };
    let cases = [
        expect(&[&["SADD", "a", "1", "2", "3"]], &[("sadd", "a")]),
        expect(&[&["SADD", "a", "1"]], &[]),
        expect(&[&["SREM", "a", "9"]], &[]),
        expect(&[&["SREM", "a", "1"]], &[("srem", "a")]),
        expect(&[&["SMOVE", "a", "b", "2"]], &[("srem", "a"), ("sadd", "b")]),
        expect(&[&["SADD", "b", "3"]], &[("sadd", "b")]),
        // The destination already holds the member: only the source changes.
        expect(&[&["SMOVE", "a", "b", "3"]], &[("srem", "a"), ("del", "a")]),
        expect(&[&["SMOVE", "b", "b", "3"]], &[]),
        expect(&[&["SPOP", "b", "0"]], &[]),
        expect(&[&["SPOP", "b", "1"]], &[("spop", "b")]),
        expect(&[&["SPOP", "b", "5"]], &[("spop", "b"), ("del", "b")]),
        expect(&[&["SPOP", "nokey"]], &[]),
        expect(&[&["SADD", "c", "x"]], &[("sadd", "c")]),
        expect(&[&["SPOP", "c"]], &[("spop", "c"), ("del", "c")]),
        expect(
            &[&["SADD", "s1", "1", "2"], &["SADD", "s2", "2", "3"]],
            &[("sadd", "s1"), ("sadd", "s2")],
        ),
        expect(&[&["SINTERSTORE", "d", "s1", "s2"]], &[("sinterstore", "d")]),
        expect(&[&["SUNIONSTORE", "d", "s1", "s2"]], &[("sunionstore", "d")]),
        expect(&[&["SDIFFSTORE", "d", "s1", "s2"]], &[("sdiffstore", "d")]),
        expect(&[&["SINTERSTORE", "d", "s1", "nokey"]], &[("del", "d")]),
        expect(&[&["SINTERSTORE", "d", "s1", "nokey"]], &[]),
        expect(&[&["SDIFFSTORE", "d", "s1", "s1"]], &[]),
        expect(&[&["SREM", "s1", "1", "2"]], &[("srem", "s1"), ("del", "s1")]),
        expect(&[&["SINTER", "s2", "s2"], &["SMEMBERS", "s2"], &["SRANDMEMBER", "s2", "-3"]], &[]),
    ];
    for (cmds, events) in cases {
        for cmd in &cmds {
            let mut q = redis::cmd(&cmd[0]);
            for a in &cmd[1..] {
                q.arg(a);
            }
            let _: redis::Value = q.query_async(&mut c).await.unwrap();
        }
        // Everything published before the marker arrives before it.
        let _: i64 = redis::cmd("PUBLISH").arg("marker").arg("end").query_async(&mut c).await.unwrap();
        let mut got = Vec::new();
        loop {
            let m = tokio::time::timeout(std::time::Duration::from_secs(5), messages.next())
                .await
                .expect("marker arrives")
                .expect("subscription open");
            if m.get_channel_name() == "marker" {
                break;
            }
            got.push((m.get_channel_name().to_string(), m.get_payload::<String>().unwrap()));
        }
        assert_eq!(got, events, "after {cmds:?}");
    }
    h.stop().await;
}
