//! Client-side caching across connections: CLIENT TRACKING's invalidations reach the client that
//! read a key when another changes it, through REDIRECT to a RESP2 subscriber, on expiry, and,
//! with commands on two event-loop threads, never leave a client holding a value older than the
//! server's once the writes stop. One connection's own invalidations (NOLOOP, OPTIN, BCAST, flushes)
//! are compared with Redis in tests/differential/tracking.redis.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{resp, Raw};
use redis::AsyncCommands;

fn cmd(line: &str) -> Vec<u8> {
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    resp(&args)
}

fn invalidate(keys: &[&str]) -> Vec<u8> {
    let mut v = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len()).into_bytes();
    for k in keys {
        v.extend_from_slice(format!("${}\r\n{k}\r\n", k.len()).as_bytes());
    }
    v
}

async fn id_of(c: &mut Raw) -> String {
    c.send(&cmd("CLIENT ID")).await;
    let reply = String::from_utf8(c.read_n(32).await).unwrap();
    reply.trim().trim_start_matches(':').to_string()
}

#[tokio::test]
async fn another_clients_write_invalidates_what_this_one_read() {
    let server = common::start().await;
    let (mut a, mut b) = (Raw::connect(server.addr).await, Raw::connect(server.addr).await);
    a.send(&cmd("HELLO 3")).await;
    let _ = a.read_n(150).await;
    a.roundtrip(&cmd("CLIENT TRACKING on"), b"+OK\r\n").await;
    a.roundtrip(&cmd("GET k"), b"_\r\n").await;
    a.roundtrip(&cmd("MGET k2 k3"), b"*2\r\n_\r\n_\r\n").await;
    b.roundtrip(&cmd("SET k 1"), b"+OK\r\n").await;
    let want = invalidate(&["k"]);
    assert_eq!(a.read_n(want.len()).await, want);
    // Forgotten once sent: a second write sends nothing until k is read again.
    b.roundtrip(&cmd("SET k 2"), b"+OK\r\n").await;
    a.roundtrip(&cmd("PING"), b"+PONG\r\n").await;
    b.roundtrip(&cmd("MSET k2 a k3 b zz c"), b"+OK\r\n").await;
    let want = [invalidate(&["k2"]), invalidate(&["k3"])].concat();
    assert_eq!(a.read_n(want.len()).await, want);
    // Expiry is a change too: the server's expire cycle sends it with no command from anyone.
    a.roundtrip(&cmd("SET e 1 PX 100"), b"+OK\r\n").await;
    a.roundtrip(&cmd("GET e"), b"$1\r\n1\r\n").await;
    let want = invalidate(&["e"]);
    assert_eq!(a.read_n(want.len()).await, want);
    // OFF: nothing more.
    a.roundtrip(&cmd("GET k"), b"$1\r\n2\r\n").await;
    a.roundtrip(&cmd("CLIENT TRACKING off"), b"+OK\r\n").await;
    b.roundtrip(&cmd("SET k 3"), b"+OK\r\n").await;
    a.roundtrip(&cmd("PING"), b"+PONG\r\n").await;
    let mut info = Raw::connect(server.addr).await;
    info.send(&cmd("INFO clients")).await;
    let text = String::from_utf8(info.read_n(4096).await).unwrap();
    assert!(text.contains("tracking_clients:0"), "{text}");
}

#[tokio::test]
async fn redirect_to_a_resp2_subscriber_and_to_a_client_that_left() {
    let server = common::start().await;
    let (mut a, mut b, mut r) = (
        Raw::connect(server.addr).await,
        Raw::connect(server.addr).await,
        Raw::connect(server.addr).await,
    );
    let rid = id_of(&mut r).await;
    assert!(!rid.is_empty());
    let sub = b"*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n";
    r.roundtrip(&cmd("SUBSCRIBE __redis__:invalidate"), sub).await;
    a.roundtrip(&cmd(&format!("CLIENT TRACKING on REDIRECT {rid}")), b"+OK\r\n").await;
    a.roundtrip(&cmd("CLIENT GETREDIR"), format!(":{rid}\r\n").as_bytes()).await;
    a.roundtrip(&cmd("GET x"), b"$-1\r\n").await;
    b.roundtrip(&cmd("SET x 1"), b"+OK\r\n").await;
    let want = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nx\r\n";
    assert_eq!(r.read_n(want.len()).await, want);
    a.send(&cmd("CLIENT LIST")).await;
    let list = String::from_utf8(a.read_n(4096).await).unwrap();
    assert!(list.contains("flags=t "), "{list}");
    assert!(list.contains(&format!("redir={rid}")), "{list}");
    // The redirect target leaves: a RESP3 client is told, and its flags say so.
    drop(r);
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.send(&cmd("HELLO 3")).await;
    let _ = a.read_n(150).await;
    a.roundtrip(&cmd("GET x"), b"$1\r\n1\r\n").await;
    b.roundtrip(&cmd("SET x 2"), b"+OK\r\n").await;
    let want = format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{rid}\r\n");
    assert_eq!(a.read_n(want.len()).await, want.as_bytes());
    a.send(&cmd("CLIENT TRACKINGINFO")).await;
    let info = String::from_utf8(a.read_n(200).await).unwrap();
    assert!(info.contains("broken_redirect"), "{info}");
}

/// A client-side cache: values, and how many invalidations each key has had.
#[derive(Default)]
struct Near {
    cache: HashMap<String, Option<i64>>,
    epochs: HashMap<String, u64>,
    invalidations: u64,
}

/// The property a client-side cache relies on: once the writes stop and their invalidations
/// have arrived, every value the reader still holds is the server's. Reads and writes run on two
/// event-loop threads; the server remembers a key before reading it, so a write landing between
/// the two still invalidates it. A reader caching without tracking fails this at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracking_reader_never_keeps_a_stale_value() {
    let server = common::start_with(&[("io-threads", "2")]).await;
    let state: Arc<Mutex<Near>> = Arc::default();
    let s2 = state.clone();
    // The push arrives on the connection's driver, in order with the replies: drop the key and
    // count an invalidation of it, so a GET whose reply it overtook does not fill it.
    let on_push = move |info: redis::PushInfo| -> Result<(), ()> {
        if info.kind == redis::PushKind::Invalidate {
            let mut s = s2.lock().unwrap();
            s.invalidations += 1;
            if let Some(redis::Value::Array(keys)) = info.data.first() {
                for k in keys {
                    if let redis::Value::BulkString(k) = k {
                        let k = String::from_utf8_lossy(k).into_owned();
                        s.cache.remove(&k);
                        *s.epochs.entry(k).or_default() += 1;
                    }
                }
            }
        }
        Ok(())
    };
    let client = redis::Client::open(format!("redis://{}/?protocol=resp3", server.addr)).unwrap();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(on_push);
    let mut reader = client.get_multiplexed_async_connection_with_config(&config).await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("on")
        .query_async(&mut reader)
        .await
        .unwrap();
    let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    let mut writers = Vec::new();
    for w in 0..2 {
        let keys = keys.clone();
        let mut conn = common::client(server.addr).await;
        writers.push(tokio::spawn(async move {
            let started = Instant::now();
            for i in 0..4000u64 {
                if started.elapsed() > Duration::from_secs(10) {
                    break;
                }
                let k = &keys[((i * 7 + w) % keys.len() as u64) as usize];
                let _: i64 = conn.incr(k, 1).await.unwrap();
            }
        }));
    }
    let started = Instant::now();
    let mut hits = 0u64;
    while !writers.iter().all(|w| w.is_finished()) && started.elapsed() < Duration::from_secs(15) {
        for k in &keys {
            let before = {
                let s = state.lock().unwrap();
                if s.cache.contains_key(k) {
                    hits += 1;
                    continue;
                }
                s.epochs.get(k).copied().unwrap_or(0)
            };
            let v: Option<i64> = reader.get(k).await.unwrap();
            // Filled only if no invalidation of k arrived while the GET was out (checked and
            // filled under the lock the push handler takes).
            let mut s = state.lock().unwrap();
            if s.epochs.get(k).copied().unwrap_or(0) == before {
                s.cache.insert(k.clone(), v);
            }
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    // A round trip on the reader after the last write: invalidations sent before it are in.
    let _: () = redis::cmd("PING").query_async(&mut reader).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut check = common::client(server.addr).await;
    let held: Vec<(String, Option<i64>)> = state.lock().unwrap().cache.iter().map(|(k, v)| (k.clone(), *v)).collect();
    for (k, v) in held {
        let now: Option<i64> = check.get(&k).await.unwrap();
        assert_eq!(v, now, "the reader still holds {k}={v:?}, the server has {now:?}");
    }
    assert!(state.lock().unwrap().invalidations > 100, "invalidations arrived");
    assert!(hits > 0, "the cache served reads");
}
