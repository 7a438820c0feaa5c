//! Lists through a real client (redis-rs): a reliable job queue (producer LPUSH, consumers taking
//! jobs with RPOP or LMOVE into a processing list, LREM to acknowledge), a capped activity feed
//! (LPUSH + LTRIM), a large list read in pages, and list keys in the keyspace (TYPE, OBJECT
//! ENCODING, MEMORY USAGE, EXPIRE, SCAN TYPE, COPY, RENAME), plus the blocking forms where they are
//! served at once.

mod common;
use common::*;
use redis::AsyncCommands;
use std::collections::HashSet;
use std::time::Duration;

/// used_memory counts this whole process, so the tests take turns: the memory test must not see
/// another test's allocations.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const JOBS: usize = 2000;

/// The "reliable queue" pattern: a job moves atomically from the queue to a per-consumer
/// processing list, and leaves it only when acknowledged, so a crashed consumer's jobs can be
/// found again. Half the consumers use LMOVE, the other half the older RPOPLPUSH; one plain RPOP
/// consumer takes jobs without the safety net.
#[tokio::test]
async fn job_queue_with_processing_lists() {
    let _turn = SERIAL.lock().await;
    let h = start().await;
    let addr = h.addr;

    let producer = tokio::spawn(async move {
        let mut c = client(addr).await;
        for i in 0..JOBS {
            let n: usize = c.lpush("jobs", format!("job:{i}")).await.unwrap();
            assert!(n >= 1);
        }
    });

    let mut consumers = Vec::new();
    for w in 0..4 {
        consumers.push(tokio::spawn(async move {
            let mut c = client(addr).await;
            let processing = format!("processing:{w}");
            let mut done = Vec::new();
            let mut idle = 0;
            while idle < 50 {
                let job: Option<String> = if w % 2 == 0 {
                    c.lmove("jobs", &processing, redis::Direction::Right, redis::Direction::Left)
                        .await
                        .unwrap()
                } else {
                    c.rpoplpush("jobs", &processing).await.unwrap()
                };
                let Some(job) = job else {
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                idle = 0;
                // The job sits in the processing list until it is acknowledged.
                let pending: Vec<String> = c.lrange(&processing, 0, -1).await.unwrap();
                assert_eq!(pending, std::slice::from_ref(&job));
                let acked: i64 = c.lrem(&processing, 1, &job).await.unwrap();
                assert_eq!(acked, 1);
                done.push(job);
            }
            done
        }));
    }
    let rpop_consumer = tokio::spawn(async move {
        let mut c = client(addr).await;
        let mut done = Vec::new();
        let mut idle = 0;
        while idle < 50 {
            let jobs: Option<Vec<String>> = c.rpop("jobs", std::num::NonZeroUsize::new(3)).await.unwrap();
            match jobs {
                Some(jobs) => {
                    assert!(!jobs.is_empty() && jobs.len() <= 3);
                    idle = 0;
                    done.extend(jobs);
                }
                None => {
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        done
    });

    producer.await.unwrap();
    let mut all = rpop_consumer.await.unwrap();
    for c in consumers {
        all.extend(c.await.unwrap());
    }
    // Every job exactly once.
    assert_eq!(all.len(), JOBS, "jobs processed");
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), JOBS);

    // Nothing left anywhere: emptied lists are deleted.
    let mut c = client(addr).await;
    let n: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(n, 0);

    // A crashed consumer: its job is still in its processing list, and a reaper puts it back.
    let _: usize = c.lpush("jobs", &["a", "b", "c"]).await.unwrap();
    let taken: String = c
        .lmove("jobs", "processing:dead", redis::Direction::Right, redis::Direction::Left)
        .await
        .unwrap();
    assert_eq!(taken, "a");
    let back: Option<String> = c.rpoplpush("processing:dead", "jobs").await.unwrap();
    assert_eq!(back.as_deref(), Some("a"));
    let order: Vec<String> = c.lrange("jobs", 0, -1).await.unwrap();
    assert_eq!(order, ["a", "c", "b"]);
    let pos: Option<usize> = c.lpos("jobs", "b", redis::LposOptions::default()).await.unwrap();
    assert_eq!(pos, Some(2));
    h.stop().await;
}

/// BRPOP and BLMOVE answer at once when there is something to take, like their twins; inside
/// MULTI they never wait.
#[tokio::test]
async fn blocking_forms_served_at_once() {
    let _turn = SERIAL.lock().await;
    let h = start().await;
    let mut c = client(h.addr).await;
    let _: usize = c.rpush("q", &["1", "2", "3"]).await.unwrap();
    let got: Option<(String, String)> = c.brpop(&["empty", "q"], 1.0).await.unwrap();
    assert_eq!(got, Some(("q".into(), "3".into())));
    let got: Option<(String, String)> = c.blpop("q", 0.0).await.unwrap();
    assert_eq!(got, Some(("q".into(), "1".into())));
    let moved: String = c
        .blmove("q", "done", redis::Direction::Left, redis::Direction::Right, 1.0)
        .await
        .unwrap();
    assert_eq!(moved, "2");
    let exists: bool = c.exists("q").await.unwrap();
    assert!(!exists);
    let (key, items): (String, Vec<String>) = redis::cmd("BLMPOP")
        .arg(0)
        .arg(2)
        .arg("q")
        .arg("done")
        .arg("LEFT")
        .arg("COUNT")
        .arg(10)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((key.as_str(), items), ("done", vec!["2".to_string()]));

    let (a, b): (Option<(String, String)>, Option<String>) = redis::pipe()
        .atomic()
        .cmd("BLPOP")
        .arg("q")
        .arg(0)
        .cmd("BRPOPLPUSH")
        .arg("q")
        .arg("done")
        .arg(0)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((a, b), (None, None));
    h.stop().await;
}

/// An activity feed: newest first, capped at 100 entries with LPUSH + LTRIM, read in pages.
#[tokio::test]
async fn capped_feed() {
    let _turn = SERIAL.lock().await;
    let h = start().await;
    let mut c = client(h.addr).await;
    for i in 0..1000 {
        let (_, ()): (usize, ()) = redis::pipe()
            .atomic()
            .lpush("feed:42", format!("event {i}"))
            .ltrim("feed:42", 0, 99)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    let len: usize = c.llen("feed:42").await.unwrap();
    assert_eq!(len, 100);
    let page: Vec<String> = c.lrange("feed:42", 0, 9).await.unwrap();
    assert_eq!(page[0], "event 999");
    assert_eq!(page[9], "event 990");
    let last: Vec<String> = c.lrange("feed:42", -5, -1).await.unwrap();
    assert_eq!(last, ["event 904", "event 903", "event 902", "event 901", "event 900"]);
    let oldest: Option<String> = c.lindex("feed:42", -1).await.unwrap();
    assert_eq!(oldest.as_deref(), Some("event 900"));
    // Editing in place: LSET and LINSERT keep the list's TTL.
    let _: bool = c.expire("feed:42", 600).await.unwrap();
    let _: () = c.lset("feed:42", 0, "event 999 (edited)").await.unwrap();
    let n: i64 = c.linsert_after("feed:42", "event 999 (edited)", "note").await.unwrap();
    assert_eq!(n, 101);
    let ttl: i64 = c.ttl("feed:42").await.unwrap();
    assert!((590..=600).contains(&ttl), "ttl {ttl}");
    h.stop().await;
}

#[tokio::test]
async fn list_keys_in_the_keyspace() {
    let _turn = SERIAL.lock().await;
    let h = start().await;
    let mut c = client(h.addr).await;
    let _: usize = c.rpush("small", "x").await.unwrap();
    let t: String = redis::cmd("TYPE").arg("small").query_async(&mut c).await.unwrap();
    assert_eq!(t, "list");
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("small").query_async(&mut c).await.unwrap();
    assert_eq!(enc, "quicklist");
    let small: i64 = redis::cmd("MEMORY").arg("USAGE").arg("small").query_async(&mut c).await.unwrap();
    let items: Vec<String> = (0..2000).map(|_| "v".repeat(100)).collect();
    let _: usize = c.rpush("large", &items).await.unwrap();
    let large: i64 = redis::cmd("MEMORY").arg("USAGE").arg("large").query_async(&mut c).await.unwrap();
    assert!(small > 0 && small < 1024, "small list: {small} bytes");
    // 2000 elements of 100 bytes: at least the data, not wildly more.
    assert!(large > 2000 * 100 && large < 2000 * 300, "large list: {large} bytes");
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("large").query_async(&mut c).await.unwrap();
    assert_eq!(enc, "quicklist");

    // COPY is deep; RENAME moves; SCAN TYPE finds lists.
    let _: bool = redis::cmd("COPY").arg("small").arg("copy").query_async(&mut c).await.unwrap();
    let _: usize = c.rpush("copy", "y").await.unwrap();
    let n: usize = c.llen("small").await.unwrap();
    assert_eq!(n, 1);
    let _: () = c.rename("copy", "renamed").await.unwrap();
    let got: Vec<String> = c.lrange("renamed", 0, -1).await.unwrap();
    assert_eq!(got, ["x", "y"]);
    let _: () = c.set("string", "s").await.unwrap();
    let keys: Vec<String> = redis::cmd("SCAN")
        .arg(0)
        .arg("COUNT")
        .arg(1000)
        .arg("TYPE")
        .arg("list")
        .query_async::<(u64, Vec<String>)>(&mut c)
        .await
        .unwrap()
        .1;
    let keys: HashSet<String> = keys.into_iter().collect();
    assert_eq!(keys, ["small", "large", "renamed"].iter().map(|s| s.to_string()).collect());

    // A list with a TTL goes when it runs out, and a new push starts without one.
    let _: bool = c.pexpire("small", 30).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let n: usize = c.llen("small").await.unwrap();
    assert_eq!(n, 0);
    let _: usize = c.rpush("small", "again").await.unwrap();
    let ttl: i64 = c.ttl("small").await.unwrap();
    assert_eq!(ttl, -1);

    // Wrong types both ways.
    let err = c.lpush::<_, _, i64>("string", "x").await.unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
    let err = c.get::<_, String>("large").await.unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
    h.stop().await;
}

/// A list of 200,000 elements: pushes in batches, reads in pages, trims, and gives its memory back
/// when popped down.
#[tokio::test]
async fn large_list() {
    let _turn = SERIAL.lock().await;
    let h = start().await;
    let mut c = client(h.addr).await;
    let used = |info: &str| -> i64 {
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut c).await.unwrap();
    let before = used(&info);
    const N: usize = 200_000;
    for batch in 0..N / 1000 {
        let items: Vec<String> = (batch * 1000..(batch + 1) * 1000).map(|i| format!("item:{i:06}")).collect();
        let _: usize = c.rpush("big", &items).await.unwrap();
    }
    let len: usize = c.llen("big").await.unwrap();
    assert_eq!(len, N);
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut c).await.unwrap();
    let grown = used(&info) - before;
    assert!(
        grown > (N * 11) as i64 && grown < (N * 64) as i64,
        "200k elements took {grown} bytes"
    );
    let usage = |c: &mut redis::aio::MultiplexedConnection| {
        let mut c = c.clone();
        async move {
            let n: i64 = redis::cmd("MEMORY").arg("USAGE").arg("big").query_async(&mut c).await.unwrap();
            n
        }
    };
    let full = usage(&mut c).await;
    // Packed as Redis packs it: about 13 bytes an 11-byte element (Redis: 2,617,864 in all).
    assert!(full > (N * 11) as i64 && full < (N * 15) as i64, "MEMORY USAGE {full}");

    // Paging through the whole list.
    let mut seen = 0;
    for start in (0..N).step_by(10_000) {
        let page: Vec<String> = c.lrange("big", start as isize, (start + 9_999) as isize).await.unwrap();
        assert_eq!(page.len(), 10_000);
        assert_eq!(page[0], format!("item:{start:06}"));
        seen += page.len();
    }
    assert_eq!(seen, N);
    let mid: Option<String> = c.lindex("big", 100_000).await.unwrap();
    assert_eq!(mid.as_deref(), Some("item:100000"));
    let pos: Option<usize> = c.lpos("big", "item:150000", redis::LposOptions::default()).await.unwrap();
    assert_eq!(pos, Some(150_000));
    let none: Option<usize> = c
        .lpos("big", "item:150000", redis::LposOptions::default().maxlen(1000))
        .await
        .unwrap();
    assert_eq!(none, None);

    // Pop most of it in big counts, trim, delete: the memory comes back.
    let popped: Vec<String> = c.lpop("big", std::num::NonZeroUsize::new(150_000)).await.unwrap();
    assert_eq!(popped.len(), 150_000);
    assert_eq!(popped[149_999], "item:149999");
    let _: () = c.ltrim("big", 0, 999).await.unwrap();
    let len: usize = c.llen("big").await.unwrap();
    assert_eq!(len, 1000);
    let left = usage(&mut c).await;
    assert!(left < full / 20, "{left} bytes left of {full} after trimming to 1000");
    let _: i64 = c.del("big").await.unwrap();
    h.stop().await;
}
