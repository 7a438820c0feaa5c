//! Issue 6 items 1-3 over real TCP: output and query buffer limits, a huge declared bulk that
//! never arrives, idle timeout, and access (requirepass, ACL for the default user, NOAUTH, counts).
mod common;

use std::time::{Duration, Instant};

use common::{resp, Raw};
use redis::AsyncCommands;
use tokio::io::AsyncWriteExt;

async fn info_field(addr: std::net::SocketAddr, section: &str, field: &str) -> String {
    let mut c = common::client(addr).await;
    let text: String = redis::cmd("INFO").arg(section).query_async(&mut c).await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_default()
}

/// The `field=` value of the CLIENT LIST line of the client whose last command was `cmd`.
async fn client_list_field(addr: std::net::SocketAddr, cmd: &str, field: &str) -> Option<usize> {
    let mut c = common::client(addr).await;
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut c).await.unwrap();
    list.lines()
        .find(|l| l.contains(&format!(" cmd={cmd} ")))
        .and_then(|l| l.split(' ').find_map(|kv| kv.strip_prefix(&format!("{field}="))))
        .and_then(|v| v.parse().ok())
}

/// Pipelines GETs of a 100 KB value on a raw socket that never reads, for at most `secs`.
/// Returns whether the server closed the connection.
async fn flood_without_reading(addr: std::net::SocketAddr, secs: u64) -> bool {
    let mut raw = Raw::connect(addr).await;
    let batch = resp(&[b"GET", b"big"]).repeat(100);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), raw.stream.write_all(&batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return true,
            // The server stopped reading: the socket buffers are full.
            Err(_) => break,
        }
    }
    // Keep the connection open (unread) while the caller inspects the server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let closed = tokio::time::timeout(Duration::from_secs(3), raw.stream.write_all(&batch)).await;
    matches!(closed, Ok(Err(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_stalls_without_growing_the_server() {
    let h = common::start().await;
    let mut c = common::client(h.addr).await;
    let _: () = c.set("big", vec![b'x'; 100_000]).await.unwrap();
    let before: u64 = info_field(h.addr, "memory", "used_memory").await.parse().unwrap();
    let addr = h.addr;
    let (done, held) = tokio::sync::oneshot::channel::<()>();
    let flood = tokio::spawn(async move {
        let mut raw = Raw::connect(addr).await;
        let batch = resp(&[b"GET", b"big"]).repeat(100);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if tokio::time::timeout(Duration::from_millis(200), raw.stream.write_all(&batch))
                .await
                .is_err()
            {
                break;
            }
        }
        // Hold the connection, unread, until the checks are done.
        let _ = tokio::time::timeout(Duration::from_secs(10), held).await;
        drop(raw);
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Redis would buffer every reply (gigabytes); respite stops reading this client instead.
    let omem = client_list_field(h.addr, "get", "omem").await;
    let omem = omem.unwrap_or_else(|| panic!("flooding client not listed"));
    let after: u64 = info_field(h.addr, "memory", "used_memory").await.parse().unwrap();
    assert!(omem <= 256 * 1024, "omem {omem}");
    assert!(after < before + 4 * 1024 * 1024, "used_memory grew from {before} to {after}");
    // Everyone else is still served.
    let v: Vec<u8> = c.get("big").await.unwrap();
    assert_eq!(v.len(), 100_000);
    let _ = done.send(());
    flood.await.unwrap();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_output_buffer_limit_disconnects_a_client_that_does_not_read() {
    let h = common::start_with(&[("client-output-buffer-limit", "normal 1mb 512kb 10")]).await;
    let mut c = common::client(h.addr).await;
    let _: () = c.set("big", vec![b'x'; 100_000]).await.unwrap();
    assert!(flood_without_reading(h.addr, 3).await, "hard limit did not close the client");
    // The soft limit alone closes it once over for longer than its seconds.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("normal 0 256kb 1")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(flood_without_reading(h.addr, 3).await, "soft limit did not close the client");
    let pong: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
    assert_eq!(pong, "PONG");
    h.stop().await;
}

#[tokio::test]
async fn query_buffer_limit_closes_the_client() {
    let h = common::start_with(&[("client-query-buffer-limit", "1mb")]).await;
    let mut raw = Raw::connect(h.addr).await;
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n").await;
    let chunk = vec![b'x'; 64 * 1024];
    let mut closed = false;
    for _ in 0..40 {
        if raw.stream.write_all(&chunk).await.is_err() {
            closed = true;
            break;
        }
    }
    assert!(closed || raw.is_closed().await, "client over client-query-buffer-limit kept open");
    let mut c = common::client(h.addr).await;
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(n, 0);
    h.stop().await;
}

#[tokio::test]
async fn a_huge_declared_bulk_reserves_nothing_up_front() {
    let h = common::start().await;
    let before: u64 = info_field(h.addr, "memory", "used_memory").await.parse().unwrap();
    let mut trickles = Vec::new();
    for _ in 0..20 {
        let mut raw = Raw::connect(h.addr).await;
        raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$500000000\r\nabc").await;
        trickles.push(raw);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for raw in &mut trickles {
        raw.send(b"def").await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after: u64 = info_field(h.addr, "memory", "used_memory").await.parse().unwrap();
    // 20 clients declaring 500 MB each: what is held is their few bytes and small buffers.
    assert!(after < before + 2 * 1024 * 1024, "used_memory {before} -> {after}");
    let qbuf = client_list_field(h.addr, "NULL", "qbuf").await;
    assert!(qbuf.is_none_or(|q| q < 4096), "qbuf {qbuf:?}");
    h.stop().await;
}

#[tokio::test]
async fn timeout_closes_idle_clients() {
    let h = common::start_with(&[("timeout", "1")]).await;
    let mut raw = Raw::connect(h.addr).await;
    raw.roundtrip(b"PING\r\n", b"+PONG\r\n").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(raw.is_closed().await);
    h.stop().await;
}

#[tokio::test]
async fn acl_default_user_passwords_on_off_and_auth_with_username() {
    let h = common::start().await;
    let mut admin = Raw::connect(h.addr).await;
    admin.roundtrip(b"ACL WHOAMI\r\n", b"$7\r\ndefault\r\n").await;
    admin
        .roundtrip(&resp(&[b"ACL", b"SETUSER", b"default", b">s3cret"]), b"+OK\r\n")
        .await;
    let mut anon = Raw::connect(h.addr).await;
    anon.roundtrip(b"GET k\r\n", b"-NOAUTH Authentication required.\r\n").await;
    anon.roundtrip(
        b"AUTH default nope\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    anon.roundtrip(
        b"AUTH someone s3cret\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    anon.roundtrip(b"AUTH default s3cret\r\n", b"+OK\r\n").await;
    anon.roundtrip(b"GET k\r\n", b"$-1\r\n").await;
    // Clients that send a username (redis-py, redis-rs with a user in the URL) get in.
    let url = format!("redis://default:s3cret@{}/", h.addr);
    let mut c = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () = c.set("k", "v").await.unwrap();
    // Wrong passwords are counted: INFO stats and errorstats.
    let mut raw = Raw::connect(h.addr).await;
    raw.roundtrip(b"AUTH s3cret\r\n", b"+OK\r\n").await;
    raw.send(b"INFO\r\n").await;
    let info = String::from_utf8_lossy(&raw.read_n(64 * 1024).await).to_string();
    assert!(info.contains("acl_access_denied_auth:2"), "{info}");
    assert!(info.contains("errorstat_WRONGPASS:count=2"), "{info}");
    // A disabled default user: nobody gets in, even with the password.
    admin.roundtrip(b"ACL SETUSER default off\r\n", b"+OK\r\n").await;
    let mut late = Raw::connect(h.addr).await;
    late.roundtrip(
        b"AUTH s3cret\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    admin.roundtrip(b"ACL SETUSER default on nopass\r\n", b"+OK\r\n").await;
    let mut open = Raw::connect(h.addr).await;
    open.roundtrip(b"GET k\r\n", b"$1\r\nv\r\n").await;
    open.roundtrip(
        b"ACL SETUSER bob on\r\n",
        b"-ERR respite has only the 'default' user; cannot create or change 'bob'\r\n",
    )
    .await;
    h.stop().await;
}
