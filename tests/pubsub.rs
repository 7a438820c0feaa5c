//! Pub/sub and keyspace notifications over real TCP.
//!
//! * Keyspace events, differentially: the same commands run on a real redis-server (from PATH;
//!   skipped without one) and on respite, each watched by a second raw connection PSUBSCRIBEd to
//!   `__key*__:*`, for several notify-keyspace-events settings; the subscriber's bytes are compared
//!   command by command (a PING on the subscriber after each command marks where its messages end).
//!   Expiry by the active cycle and by lookup, and eviction, are checked the same way.
//! * redis-rs's async PubSub: several subscribers on channels and patterns, PUBLISH counts,
//!   message contents, unsubscribing.
//! * A subscriber that never reads while large messages flood in is disconnected at the
//!   client-output-buffer-limit pubsub hard limit; the server stays up with bounded memory.
//! * CLIENT LIST's sub/psub/ssub and flag P, PUBSUB NUMSUB and INFO's counts, and a subscriber
//!   leaving them when it disconnects.

mod common;
use common::*;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------------------------
// A raw RESP connection that reads whole frames

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// The length of the first complete RESP2/RESP3 frame in `buf`, if there is one.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let nl = buf.windows(2).position(|w| w == b"\r\n")?;
    let n = || std::str::from_utf8(&buf[1..nl]).ok()?.parse::<i64>().ok();
    match buf[0] {
        b'$' | b'!' | b'=' => {
            let n = n()?;
            let total = if n < 0 { nl + 2 } else { nl + 2 + n as usize + 2 };
            (buf.len() >= total).then_some(total)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = n()?;
            let count = if n < 0 {
                0
            } else if matches!(buf[0], b'%' | b'|') {
                2 * n as usize
            } else {
                n as usize
            };
            let mut pos = nl + 2;
            for _ in 0..count {
                pos += frame_len(&buf[pos..])?;
            }
            Some(pos)
        }
        _ => Some(nl + 2),
    }
}

const PONG: &[u8] = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n";

impl Conn {
    async fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Conn { stream, buf: Vec::new() }
    }

    async fn send(&mut self, args: &[&[u8]]) {
        self.stream.write_all(&resp(args)).await.unwrap();
    }

    /// The next frame, or None if none came within `wait`.
    async fn frame_within(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(n) = frame_len(&self.buf) {
                return Some(self.buf.drain(..n).collect());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.buf.reserve(64 * 1024);
            match tokio::time::timeout(left, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(_)) => {}
            }
        }
    }

    async fn frame(&mut self) -> Vec<u8> {
        self.frame_within(Duration::from_secs(10)).await.expect("a reply within 10 s")
    }

    async fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(args).await;
        self.frame().await
    }

    /// For a RESP2 subscriber: every message that arrived before a PING sent now.
    async fn messages(&mut self) -> Vec<Vec<u8>> {
        self.send(&[b"PING"]).await;
        let mut got = Vec::new();
        loop {
            let f = self.frame().await;
            if f == PONG {
                return got;
            }
            got.push(f);
        }
    }
}

fn esc(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

fn words(line: &str) -> Vec<&[u8]> {
    line.split_whitespace().map(str::as_bytes).collect()
}

// ---------------------------------------------------------------------------------------------
// Keyspace notifications, differentially

/// One server under test: a connection running the script and a subscriber to every event.
struct Watched {
    cmd: Conn,
    sub: Conn,
}

impl Watched {
    async fn new(addr: SocketAddr, events: &str) -> Watched {
        let mut cmd = Conn::connect(addr).await;
        assert_eq!(cmd.call(&[b"FLUSHALL"]).await, b"+OK\r\n");
        let set = cmd.call(&[b"CONFIG", b"SET", b"notify-keyspace-events", events.as_bytes()]).await;
        assert_eq!(set, b"+OK\r\n", "CONFIG SET notify-keyspace-events {events}");
        let mut sub = Conn::connect(addr).await;
        sub.call(&[b"PSUBSCRIBE", b"__key*__:*"]).await;
        Watched { cmd, sub }
    }

    /// Runs one command: its reply and the events the subscriber received for it.
    async fn run(&mut self, line: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
        let reply = self.cmd.call(&words(line)).await;
        (reply, self.sub.messages().await)
    }

    /// Waits (at most 5 s) for a message containing `word`, then returns it and what followed.
    async fn wait_for(&mut self, word: &[u8]) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while Instant::now() < deadline {
            let Some(f) = self.sub.frame_within(Duration::from_millis(100)).await else {
                continue;
            };
            let found = f.windows(word.len()).any(|w| w == word);
            got.push(f);
            if found {
                got.extend(self.sub.messages().await);
                return got;
            }
        }
        got
    }
}

/// Strings, keys, expire and hashes: every event these commands raise (and some they don't).
const SCRIPT: &[&str] = &[
    "SET s1 v",
    "SET s1 v2 EX 100",
    "SET s1 v3 KEEPTTL",
    "SET s2 x NX GET",
    "SET s2 y NX",
    "SETNX s3 x",
    "SETEX s4 100 v",
    "PSETEX s5 100000 v",
    "GETSET s1 new",
    "GETSET fresh new",
    "GETDEL s3",
    "GETEX s1 EX 100",
    "GETEX s1 PERSIST",
    "GETEX s1 PERSIST",
    "GETEX s5 EXAT 1",
    "MSET m1 a m2 b",
    "MSETNX m3 a m4 b",
    "MSETNX m3 a m5 b",
    "APPEND ap x",
    "APPEND ap y",
    "SETRANGE sr 3 x",
    "SETRANGE sr 0 ab",
    "INCR n1",
    "DECRBY n1 5",
    "INCRBYFLOAT n1 1.5",
    "INCR ap",
    "GET nokey",
    "GET s1",
    "MGET s1 nokey nokey2",
    "STRLEN nokey",
    "GETRANGE nokey 0 1",
    "EXISTS nokey m1",
    "TYPE nokey",
    "TTL nokey",
    "TOUCH m1 nokey",
    "DEL s1 s2 nokey",
    "UNLINK s4 nokey",
    "SET r1 v",
    "RENAME r1 r2",
    "RENAME r2 r2",
    "RENAMENX r2 r3",
    "RENAMENX r3 m1",
    "COPY r3 c1",
    "COPY r3 c1",
    "COPY r3 c1 REPLACE",
    "COPY r3 c5 DB 2",
    "MOVE c1 1",
    "MOVE m1 1",
    "SELECT 1",
    "DEL c1",
    "SET only1 v",
    "SELECT 0",
    "SET e1 v",
    "EXPIRE e1 100",
    "EXPIRE e1 100 NX",
    "EXPIRE e1 200 XX",
    "PEXPIRE e1 500000",
    "EXPIREAT e1 9999999999",
    "PEXPIREAT e1 9999999999000",
    "PERSIST e1",
    "PERSIST e1",
    "EXPIRE nokey 100",
    "EXPIRE e1 0",
    "SET e2 v",
    "PEXPIREAT e2 1",
    "HSET h1 f v g w",
    "HSET h1 f v2",
    "HSETNX h1 f x",
    "HSETNX h1 z x",
    "HMSET h1 a 1 b 2",
    "HINCRBY h1 a 5",
    "HINCRBYFLOAT h1 b 1.5",
    "HGET nokey f",
    "HGET h1 f",
    "HGETALL nokey",
    "HLEN nokey",
    "HEXISTS nokey f",
    "HDEL h1 nosuch",
    "HDEL h1 f g",
    "HDEL h1 a b z",
    "HINCRBY h2 c 1",
    "HSET ap f v",
    "SET h2 str",
    // Reads of missing keys: keymiss only from lookups Redis makes with notification.
    "OBJECT ENCODING nokey",
    "OBJECT ENCODING m2",
    "MEMORY USAGE nokey",
    "PTTL nokey",
    "EXPIRETIME nokey",
    "PEXPIRETIME nokey",
    "SUBSTR nokey 0 1",
    "GETDEL nokey",
    "GETEX nokey",
    "HMGET nokey a b",
    "HKEYS nokey",
    "HVALS nokey",
    "HSTRLEN nokey f",
    "HRANDFIELD nokey",
    "HSCAN nokey 0",
    "COPY nokey c9",
    "RENAME nokey r9",
    "MOVE nokey 1",
    "HDEL nokey f",
    "DBSIZE",
    "KEYS nokey*",
    // No events from these in Redis 7.0.
    "SWAPDB 0 1",
    "SWAPDB 0 1",
    "FLUSHDB",
];

/// The event settings compared: everything, single classes, new-key and key-miss events.
const VARIANTS: &[&str] = &["KEA", "Ex", "Kg$", "KEn", "KEm", "Eh", "AKEmn", "Kgx"];

#[tokio::test]
async fn keyspace_events_match_redis() {
    let Some(redis) = RedisServer::start() else {
        eprintln!("redis-server not on PATH: skipping the differential keyspace-event test");
        return;
    };
    let h = start_with(&[("enable-debug-command", "yes")]).await;
    let mut mismatches = Vec::new();
    for events in VARIANTS {
        let mut a = Watched::new(redis.addr(), events).await;
        let mut b = Watched::new(h.addr, events).await;
        let mut compare = |what: String, ra: &[Vec<u8>], rb: &[Vec<u8>]| {
            if ra != rb {
                let show = |v: &[Vec<u8>]| v.iter().map(|f| esc(f)).collect::<Vec<_>>().join(" + ");
                mismatches.push(format!("[{events}] {what}\n    redis:   {}\n    respite: {}", show(ra), show(rb)));
            }
        };
        for line in SCRIPT {
            let (reply_a, ev_a) = a.run(line).await;
            let (reply_b, ev_b) = b.run(line).await;
            compare(format!("{line} (reply)"), &[reply_a], &[reply_b]);
            compare(format!("{line} (events)"), &ev_a, &ev_b);
        }

        // Active expiry: a key nobody touches again expires on its own ("expired", class x).
        let (_, ev_a) = a.run("SET act v PX 50").await;
        let (_, ev_b) = b.run("SET act v PX 50").await;
        compare("SET act v PX 50 (events)".into(), &ev_a, &ev_b);
        let (ev_a, ev_b) = if events.contains('x') || events.contains('A') {
            let ev_b = b.wait_for(b"expired").await;
            assert!(
                ev_b.iter().any(|f| esc(f).contains("expired")),
                "[{events}] no expired event from respite's active expiry"
            );
            (a.wait_for(b"expired").await, ev_b)
        } else {
            tokio::time::sleep(Duration::from_millis(300)).await;
            (a.sub.messages().await, b.sub.messages().await)
        };
        compare("active expiry of act".into(), &ev_a, &ev_b);

        // Lazy expiry: with the active cycle off, the lookup that finds the key stale expires it
        // ("expired", then "keymiss" for the read).
        for w in [&mut a, &mut b] {
            assert_eq!(w.cmd.call(&words("DEBUG SET-ACTIVE-EXPIRE 0")).await, b"+OK\r\n");
            w.run("SET lazy v PX 20").await;
            w.run("SET lazy2 v PX 20").await;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        for line in ["GET lazy", "SET lazy2 again", "GET lazy"] {
            let (reply_a, ev_a) = a.run(line).await;
            let (reply_b, ev_b) = b.run(line).await;
            compare(format!("{line} after the TTL (reply)"), &[reply_a], &[reply_b]);
            compare(format!("{line} after the TTL (events)"), &ev_a, &ev_b);
        }
        for w in [&mut a, &mut b] {
            assert_eq!(w.cmd.call(&words("DEBUG SET-ACTIVE-EXPIRE 1")).await, b"+OK\r\n");
        }
    }
    for w in [redis.addr(), h.addr] {
        let mut c = Conn::connect(w).await;
        c.call(&[b"CONFIG", b"SET", b"notify-keyspace-events", b""]).await;
    }
    assert!(
        mismatches.is_empty(),
        "{} keyspace-event mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Fills a server under maxmemory with allkeys-random and counts the "evicted" events a
/// subscriber to `__keyevent@*__:evicted` receives (bounded in keys and time).
async fn evicted_events(addr: SocketAddr) -> usize {
    let mut cmd = Conn::connect(addr).await;
    assert_eq!(cmd.call(&[b"FLUSHALL"]).await, b"+OK\r\n");
    assert_eq!(cmd.call(&words("CONFIG SET notify-keyspace-events Ee")).await, b"+OK\r\n");
    let mut sub = Conn::connect(addr).await;
    sub.call(&[b"PSUBSCRIBE", b"__keyevent@*__:evicted"]).await;
    let info = String::from_utf8(cmd.call(&[b"INFO", b"memory"]).await).unwrap();
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO");
    let max = (used + (2 << 20)).to_string();
    assert_eq!(cmd.call(&words("CONFIG SET maxmemory-policy allkeys-random")).await, b"+OK\r\n");
    assert_eq!(cmd.call(&[b"CONFIG", b"SET", b"maxmemory", max.as_bytes()]).await, b"+OK\r\n");
    // 8 MB of values into a 2 MB budget, 100 commands per round trip.
    let value = vec![b'x'; 1024];
    for round in 0..80 {
        let mut batch = Vec::new();
        for i in 0..100 {
            let key = format!("k{round}:{i}");
            batch.extend_from_slice(&resp(&[b"SET", key.as_bytes(), &value]));
        }
        cmd.stream.write_all(&batch).await.unwrap();
        for _ in 0..100 {
            let r = cmd.frame().await;
            assert_eq!(r, b"+OK\r\n", "a write under allkeys-random");
        }
    }
    let events = sub.messages().await;
    for e in &events {
        assert!(esc(e).contains("evicted"), "unexpected message {}", esc(e));
    }
    assert_eq!(cmd.call(&words("CONFIG SET maxmemory 0")).await, b"+OK\r\n");
    assert_eq!(cmd.call(&[b"CONFIG", b"SET", b"notify-keyspace-events", b""]).await, b"+OK\r\n");
    events.len()
}

/// Eviction raises "evicted" events on respite; Redis does too (how many depends on the sizes each
/// server accounts, so only their presence is compared). respite runs as its own process here:
/// used_memory is process-wide.
#[tokio::test]
async fn eviction_raises_evicted_events() {
    let server = RespiteProcess::start();
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port));
    let ours = evicted_events(addr).await;
    assert!(ours > 0, "respite raised no evicted events");
    if let Some(redis) = RedisServer::start() {
        let theirs = evicted_events(redis.addr()).await;
        assert!(theirs > 0, "redis-server raised no evicted events (test setup)");
    }
}

// ---------------------------------------------------------------------------------------------
// redis-rs's async pub/sub

async fn next_msg(stream: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin)) -> redis::Msg {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("a message within 5 s")
        .expect("the stream is open")
}

#[tokio::test]
async fn redis_rs_pubsub_channels_and_patterns() {
    let h = start().await;
    let client = redis::Client::open(format!("redis://{}/", h.addr)).unwrap();
    let mut publisher = client.get_multiplexed_async_connection().await.unwrap();

    // Two subscribers to "news.tech", one of them also to the pattern "news.*"; a third only to
    // the pattern "*.sport".
    let mut tech1 = client.get_async_pubsub().await.unwrap();
    tech1.subscribe("news.tech").await.unwrap();
    let mut tech2 = client.get_async_pubsub().await.unwrap();
    tech2.subscribe("news.tech").await.unwrap();
    tech2.psubscribe("news.*").await.unwrap();
    let mut sport = client.get_async_pubsub().await.unwrap();
    sport.psubscribe("*.sport").await.unwrap();

    let n: i64 = publisher.publish("news.tech", "rust 2.0").await.unwrap();
    assert_eq!(n, 3, "two channel subscribers and one pattern match");
    let n: i64 = publisher.publish("news.sport", "4-2").await.unwrap();
    assert_eq!(n, 2, "news.* and *.sport");
    let n: i64 = publisher.publish("weather", "rain").await.unwrap();
    assert_eq!(n, 0);
    let payload: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let n: i64 = publisher.publish("news.tech", &payload).await.unwrap();
    assert_eq!(n, 3);

    {
        let mut s = tech1.on_message();
        let m = next_msg(&mut s).await;
        assert_eq!(m.get_channel_name(), "news.tech");
        assert_eq!(m.get_payload::<String>().unwrap(), "rust 2.0");
        assert!(!m.from_pattern());
        let m = next_msg(&mut s).await;
        assert_eq!(m.get_payload_bytes(), &payload[..], "a 100 KB binary message arrives intact");
    }
    {
        // tech2 gets the channel message and the pattern one for news.tech (channel first, as
        // Redis delivers), then the pattern one for news.sport.
        let mut s = tech2.on_message();
        let m = next_msg(&mut s).await;
        assert_eq!((m.get_channel_name(), m.from_pattern()), ("news.tech", false));
        let m = next_msg(&mut s).await;
        assert_eq!((m.get_channel_name(), m.from_pattern()), ("news.tech", true));
        assert_eq!(m.get_pattern::<String>().unwrap(), "news.*");
        assert_eq!(m.get_payload::<String>().unwrap(), "rust 2.0");
        let m = next_msg(&mut s).await;
        assert_eq!(m.get_channel_name(), "news.sport");
        assert_eq!(m.get_payload::<String>().unwrap(), "4-2");
        let m = next_msg(&mut s).await;
        assert_eq!((m.get_channel_name(), m.from_pattern()), ("news.tech", false));
        let m = next_msg(&mut s).await;
        assert_eq!((m.get_channel_name(), m.from_pattern()), ("news.tech", true));
        assert_eq!(m.get_payload_bytes().len(), payload.len());
    }
    {
        let mut s = sport.on_message();
        let m = next_msg(&mut s).await;
        assert_eq!(m.get_channel_name(), "news.sport");
        assert_eq!(m.get_pattern::<String>().unwrap(), "*.sport");
    }

    let numsub: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news.tech")
        .arg("news.sport")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(numsub, vec![("news.tech".to_string(), 2), ("news.sport".to_string(), 0)]);
    let numpat: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query_async(&mut publisher).await.unwrap();
    assert_eq!(numpat, 2);

    // Unsubscribing: tech1 leaves the channel, tech2 the pattern.
    tech1.unsubscribe("news.tech").await.unwrap();
    tech2.punsubscribe("news.*").await.unwrap();
    let n: i64 = publisher.publish("news.tech", "after").await.unwrap();
    assert_eq!(n, 1, "only tech2's channel subscription is left");
    {
        let mut s = tech2.on_message();
        let m = next_msg(&mut s).await;
        assert_eq!((m.get_channel_name(), m.from_pattern()), ("news.tech", false));
        assert_eq!(m.get_payload::<String>().unwrap(), "after");
    }
    {
        let mut s = tech1.on_message();
        let nothing = tokio::time::timeout(Duration::from_millis(200), s.next()).await;
        assert!(nothing.is_err(), "tech1 unsubscribed but got a message");
    }
    let numpat: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query_async(&mut publisher).await.unwrap();
    assert_eq!(numpat, 1);

    // Many messages keep their order.
    for i in 0..500 {
        let _: i64 = publisher.publish("news.tech", i).await.unwrap();
    }
    let mut s = tech2.on_message();
    for i in 0..500 {
        let m = next_msg(&mut s).await;
        assert_eq!(m.get_payload::<i64>().unwrap(), i);
    }
}

// ---------------------------------------------------------------------------------------------
// A subscriber that never reads

fn info_field(info: &str, field: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO"))
        .trim()
        .parse()
        .unwrap()
}

/// Floods a subscriber that reads nothing with 64 KB messages until the server drops it
/// (client-output-buffer-limit pubsub 1mb): bounded to 4000 messages and 60 s. Returns how many
/// were published.
async fn flood_until_dropped(addr: SocketAddr) -> usize {
    let mut admin = Conn::connect(addr).await;
    let limit = admin
        .call(&[b"CONFIG", b"SET", b"client-output-buffer-limit", b"pubsub 1mb 512kb 60"])
        .await;
    assert_eq!(limit, b"+OK\r\n");
    let mut slow = Conn::connect(addr).await;
    assert_eq!(slow.call(&words("CLIENT SETNAME slowsub")).await, b"+OK\r\n");
    slow.call(&words("SUBSCRIBE firehose")).await;
    // From here on `slow` reads nothing.
    let message = vec![b'm'; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut published = 0;
    while published < 4000 && Instant::now() < deadline {
        admin.call(&[b"PUBLISH", b"firehose", &message]).await;
        published += 1;
        if published % 16 == 0 {
            let list = admin.call(&words("CLIENT LIST")).await;
            if !esc(&list).contains("name=slowsub") {
                return published;
            }
        }
    }
    panic!("the subscriber that never reads was not disconnected after {published} messages of 64 KB");
}

#[tokio::test]
async fn a_subscriber_that_never_reads_is_disconnected() {
    // Its own process: used_memory is process-wide.
    let server = RespiteProcess::start();
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port));
    let published = flood_until_dropped(addr).await;
    // The 1 MB limit plus what the kernel buffers on both ends (80 messages in our runs). A
    // killed subscriber that lingered (its replies being flushed to a client that never reads)
    // took over 4000 here, now and then.
    assert!(published <= 400, "disconnected only after {published} messages of 64 KB");
    let mut c = Conn::connect(addr).await;
    assert_eq!(c.call(&[b"PING"]).await, b"+PONG\r\n");
    assert_eq!(c.call(&words("PUBLISH firehose x")).await, b":0\r\n", "the subscriber is gone");
    let info = String::from_utf8(c.call(&words("INFO memory")).await).unwrap();
    let used = info_field(&info, "used_memory");
    assert!(used < 64 << 20, "used_memory {used} after {published} messages of 64 KB");
    let info = String::from_utf8(c.call(&words("INFO stats")).await).unwrap();
    assert_eq!(info_field(&info, "pubsub_channels"), 0);
    // Redis disconnects such a subscriber too (compared for the behaviour, not the count).
    if let Some(redis) = RedisServer::start() {
        flood_until_dropped(redis.addr()).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Introspection: CLIENT LIST, PUBSUB NUMSUB, INFO

fn client_line<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    list.lines().find(|l| l.contains(&format!(" name={name} ")))
}

async fn client_list(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> String {
    redis::cmd("CLIENT").arg("LIST").arg(args).query_async(c).await.unwrap()
}

#[tokio::test]
async fn client_list_and_counts_follow_subscribers() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let mut sub = Conn::connect(h.addr).await;
    assert_eq!(sub.call(&words("CLIENT SETNAME watcher")).await, b"+OK\r\n");
    sub.send(&words("SUBSCRIBE a b")).await;
    sub.frame().await;
    sub.frame().await;
    sub.call(&words("PSUBSCRIBE p*")).await;
    sub.call(&words("SSUBSCRIBE s1")).await;
    let mut idle = Conn::connect(h.addr).await;
    assert_eq!(idle.call(&words("CLIENT SETNAME idle")).await, b"+OK\r\n");

    let list = client_list(&mut c, &[]).await;
    let line = client_line(&list, "watcher").expect("the subscriber in CLIENT LIST");
    assert!(line.contains(" flags=P "), "{line}");
    assert!(line.contains(" sub=2 psub=1 ssub=1 "), "{line}");
    let line = client_line(&list, "idle").unwrap();
    assert!(line.contains(" flags=N ") && line.contains(" sub=0 psub=0 ssub=0 "), "{line}");

    // TYPE pubsub lists the subscriber only, TYPE normal the others.
    let list = client_list(&mut c, &["TYPE", "pubsub"]).await;
    assert!(
        client_line(&list, "watcher").is_some() && client_line(&list, "idle").is_none(),
        "{list}"
    );
    let list = client_list(&mut c, &["TYPE", "normal"]).await;
    assert!(
        client_line(&list, "watcher").is_none() && client_line(&list, "idle").is_some(),
        "{list}"
    );

    let numsub: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("a")
        .arg("b")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(numsub, vec![("a".into(), 1), ("b".into(), 1)]);
    let shard: Vec<(String, i64)> = redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg("s1").query_async(&mut c).await.unwrap();
    assert_eq!(shard, vec![("s1".into(), 1)]);
    let info: String = redis::cmd("INFO").arg("stats").query_async(&mut c).await.unwrap();
    assert_eq!(
        (
            info_field(&info, "pubsub_channels"),
            info_field(&info, "pubsub_patterns"),
            info_field(&info, "pubsubshard_channels")
        ),
        (2, 1, 1)
    );

    // Unsubscribing from one channel shows at once.
    sub.call(&words("UNSUBSCRIBE a")).await;
    let list = client_list(&mut c, &[]).await;
    assert!(client_line(&list, "watcher").unwrap().contains(" sub=1 psub=1 ssub=1 "));

    // The subscriber disconnects: it leaves every count within a bounded time.
    drop(sub);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let numsub: Vec<(String, i64)> = redis::cmd("PUBSUB").arg("NUMSUB").arg("b").query_async(&mut c).await.unwrap();
        let numpat: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query_async(&mut c).await.unwrap();
        let info: String = redis::cmd("INFO").arg("stats").query_async(&mut c).await.unwrap();
        let list = client_list(&mut c, &[]).await;
        let gone = numsub == vec![("b".to_string(), 0)]
            && numpat == 0
            && info_field(&info, "pubsub_channels") == 0
            && info_field(&info, "pubsub_patterns") == 0
            && info_field(&info, "pubsubshard_channels") == 0
            && client_line(&list, "watcher").is_none();
        if gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a disconnected subscriber is still counted: {numsub:?} {numpat}\n{list}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let n: i64 = c.publish("b", "anyone?").await.unwrap();
    assert_eq!(n, 0);

    // CLIENT KILL TYPE pubsub closes subscribers only.
    let mut sub2 = Conn::connect(h.addr).await;
    sub2.call(&words("SUBSCRIBE z")).await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    assert_eq!(idle.call(&[b"PING"]).await, b"+PONG\r\n", "a normal client survives");
    let err: redis::RedisResult<i64> = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("bogus").query_async(&mut c).await;
    let err = err.unwrap_err();
    assert!(err.to_string().contains("Unknown client type 'bogus'"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// RESP3 subscribers receiving other clients' messages, compared with Redis

/// A RESP3 subscriber to a channel, a pattern and a shard channel; another client publishes;
/// everything the subscriber received before its PING's +PONG.
async fn resp3_pushes(addr: SocketAddr) -> Vec<Vec<u8>> {
    let mut sub = Conn::connect(addr).await;
    sub.call(&words("HELLO 3")).await;
    let mut got = Vec::new();
    for line in ["SUBSCRIBE ch", "PSUBSCRIBE c*", "SSUBSCRIBE sh"] {
        got.push(sub.call(&words(line)).await);
    }
    let mut publisher = Conn::connect(addr).await;
    for line in [
        "PUBLISH ch hi",
        "PUBLISH cx there",
        "SPUBLISH sh shard",
        "PUBLISH other x",
        "SPUBLISH ch x",
    ] {
        got.push(publisher.call(&words(line)).await);
    }
    sub.send(&[b"PING"]).await;
    loop {
        let f = sub.frame().await;
        let done = f == b"+PONG\r\n";
        got.push(f);
        if done {
            return got;
        }
    }
}

#[tokio::test]
async fn resp3_subscriber_pushes_match_redis() {
    let h = start().await;
    let ours = resp3_pushes(h.addr).await;
    let show = |v: &[Vec<u8>]| v.iter().map(|f| esc(f)).collect::<Vec<_>>().join("\n");
    assert!(show(&ours).contains(">4\\r\\n$8\\r\\npmessage"), "{}", show(&ours));
    if let Some(redis) = RedisServer::start() {
        let theirs = resp3_pushes(redis.addr()).await;
        assert_eq!(show(&ours), show(&theirs));
    }
}
