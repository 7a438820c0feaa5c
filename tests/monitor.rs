//! MONITOR over real connections: the lines Redis 7.0.15 prints for the same commands (time and
//! port masked; the same session against redis-server printed the same lines), what monitors
//! do not see, the keyspace refused to a monitor, and a monitor that never reads being closed
//! at the pub/sub output limit instead of growing without bound.

mod common;

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use common::Raw;

/// The lines of a monitor's output with the timestamp and the client's port masked.
fn masked(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| {
            let Some(rest) = l.strip_prefix('+').and_then(|l| l.split_once(' ')) else {
                return l.to_string();
            };
            let line = rest.1.to_string();
            match line.find("127.0.0.1:") {
                Some(i) => {
                    let end = line[i..].find(']').map_or(line.len(), |j| i + j);
                    format!("+T {}127.0.0.1:P{}", &line[..i], &line[end..])
                }
                None => format!("+T {line}"),
            }
        })
        .collect()
}

#[tokio::test]
async fn monitors_see_commands_as_redis_shows_them() {
    let h = common::start_with(&[("enable-debug-command", "yes")]).await;
    let mut m = Raw::connect(h.addr).await;
    m.roundtrip(b"MONITOR\r\n", b"+OK\r\n").await;
    let mut c = Raw::connect(h.addr).await;
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9\r\na b\n\"\\\x00\xc3\xbf\r\n").await;
    c.read_n(5).await;
    for cmd in [
        &b"GET k\r\n"[..],
        b"NOSUCH\r\n",
        b"GET\r\n",
        b"AUTH pw\r\n",
        b"CONFIG GET maxmemory\r\n",
        b"SELECT 2\r\n",
        b"MULTI\r\nINCR x\r\nEXEC\r\n",
        b"EVAL \"redis.call('set','y','2') return 1\" 0\r\n",
        b"HELLO 3 AUTH default secret\r\n",
        b"DEBUG SLEEP 0\r\n",
        b"PING\r\n",
    ] {
        c.send(cmd).await;
        c.read_n(4096).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lines = masked(&m.read_n(64 * 1024).await);
    let expected = [
        r#"+T [0 127.0.0.1:P] "SET" "k" "a b\n\"\\\x00\xc3\xbf""#,
        r#"+T [0 127.0.0.1:P] "GET" "k""#,
        r#"+T [0 127.0.0.1:P] "AUTH" "(redacted)""#,
        r#"+T [2 127.0.0.1:P] "SELECT" "2""#,
        r#"+T [2 127.0.0.1:P] "MULTI""#,
        r#"+T [2 127.0.0.1:P] "INCR" "x""#,
        r#"+T [2 127.0.0.1:P] "EXEC""#,
        r#"+T [2 127.0.0.1:P] "EVAL" "redis.call('set','y','2') return 1" "0""#,
        r#"+T [2 lua] "set" "y" "2""#,
        r#"+T [2 127.0.0.1:P] "HELLO" "3" "AUTH" "(redacted)" "(redacted)""#,
        r#"+T [2 127.0.0.1:P] "PING""#,
    ];
    assert_eq!(lines, expected);
    // The monitor itself may ping, not read keys; and CLIENT LIST marks it O.
    m.send(b"GET k\r\nPING\r\n").await;
    let own = masked(&m.read_n(4096).await);
    assert_eq!(own[..2], ["-ERR Replica can't interact with the keyspace", "+PONG"]);
    c.send(b"CLIENT LIST\r\n").await;
    let list = String::from_utf8_lossy(&c.read_n(4096).await).to_string();
    assert!(list.contains("flags=O "), "{list}");
    // RESET ends monitoring.
    m.send(b"RESET\r\n").await;
    m.read_n(4096).await;
    c.send(b"PING\r\n").await;
    c.read_n(64).await;
    assert!(m.read_n(4096).await.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn a_monitor_that_never_reads_is_closed_at_the_limit() {
    let h = common::start().await;
    let mut c = common::client(h.addr).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("pubsub 1mb 0 0")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut m = Raw::connect(h.addr).await;
    m.roundtrip(b"MONITOR\r\n", b"+OK\r\n").await;
    let value = "v".repeat(64 * 1024);
    // About 25 MB of monitor lines against a 1 MB limit (more than the kernel's socket buffers
    // take), bounded in count.
    for i in 0..400 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(&value)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut c).await.unwrap();
    assert!(
        !list.contains("flags=O"),
        "the monitor should have been closed at the limit: {list}"
    );
    // What the kernel still held for it, then the end of the stream.
    let (mut buf, mut held, mut closed) = (vec![0u8; 1 << 20], 0, false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), m.stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => held += n,
            Err(_) => break,
        }
    }
    assert!(closed, "still open after {held} bytes");
    assert!(held < 24 << 20, "{held} bytes reached the monitor");
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(n, 400);
    h.stop().await;
}
