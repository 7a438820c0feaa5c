//! The wire: pipelining, inline commands, RESP3, protocol errors, limits.

mod common;
use common::*;

#[tokio::test]
async fn pipelined_commands_all_get_replies_in_order() {
    let h = start().await;
    let mut c = Raw::connect(h.addr).await;
    let mut req = Vec::new();
    let mut expected = Vec::new();
    for i in 0..200 {
        req.extend(resp(&[b"SET", format!("k{i}").as_bytes(), format!("v{i}").as_bytes()]));
        expected.extend_from_slice(b"+OK\r\n");
    }
    for i in 0..200 {
        req.extend(resp(&[b"GET", format!("k{i}").as_bytes()]));
        let v = format!("v{i}");
        expected.extend(format!("${}\r\n{v}\r\n", v.len()).into_bytes());
    }
    c.roundtrip(&req, &expected).await;
    h.stop().await;
}

#[tokio::test]
async fn a_command_split_across_writes_is_assembled() {
    let h = start().await;
    let mut c = Raw::connect(h.addr).await;
    let req = resp(&[b"SET", b"key", b"a value split in pieces"]);
    for chunk in req.chunks(3) {
        c.send(chunk).await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(c.read_n(5).await, b"+OK\r\n");
    h.stop().await;
}

#[tokio::test]
async fn inline_commands_as_from_telnet() {
    let h = start().await;
    let mut c = Raw::connect(h.addr).await;
    c.roundtrip(b"PING\r\n", b"+PONG\r\n").await;
    c.roundtrip(b"set greeting \"hello world\"\n", b"+OK\r\n").await;
    c.roundtrip(b"get greeting\r\n", b"$11\r\nhello world\r\n").await;
    c.roundtrip(b"\r\nEXISTS greeting\r\n", b":1\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn malformed_frame_gets_redis_error_then_close_and_server_keeps_serving() {
    let h = start().await;
    let mut bad = Raw::connect(h.addr).await;
    bad.roundtrip(b"*1\r\n$x\r\n", b"-ERR Protocol error: invalid bulk length\r\n")
        .await;
    assert!(bad.is_closed().await);
    let mut bad = Raw::connect(h.addr).await;
    bad.roundtrip(b"*1\r\n:1\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n")
        .await;
    assert!(bad.is_closed().await);
    let mut bad = Raw::connect(h.addr).await;
    bad.roundtrip(
        b"set k \"unterminated\r\n",
        b"-ERR Protocol error: unbalanced quotes in request\r\n",
    )
    .await;
    assert!(bad.is_closed().await);
    // Commands before the bad frame in the same read still run.
    let mut mixed = Raw::connect(h.addr).await;
    mixed
        .roundtrip(b"PING\r\n*-5x\r\n", b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n")
        .await;
    let mut good = Raw::connect(h.addr).await;
    good.roundtrip(b"PING\r\n", b"+PONG\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn huge_declared_bulk_length_is_rejected_by_proto_max_bulk_len() {
    let h = start_with(&[("proto-max-bulk-len", "1mb")]).await;
    let mut c = Raw::connect(h.addr).await;
    c.roundtrip(b"*2\r\n$3\r\nGET\r\n$2000000\r\n", b"-ERR Protocol error: invalid bulk length\r\n")
        .await;
    assert!(c.is_closed().await);
    h.stop().await;
}

#[tokio::test]
async fn resp3_after_hello_3() {
    let h = start().await;
    let mut c = Raw::connect(h.addr).await;
    c.roundtrip(&resp(&[b"GET", b"missing"]), b"$-1\r\n").await;
    c.send(&resp(&[b"HELLO", b"3"])).await;
    let hello = c.read_n(200).await;
    let text = String::from_utf8_lossy(&hello);
    assert!(
        text.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"),
        "{text}"
    );
    c.roundtrip(&resp(&[b"GET", b"missing"]), b"_\r\n").await;
    c.roundtrip(&resp(&[b"CONFIG", b"GET", b"maxmemory"]), b"%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n")
        .await;
    c.roundtrip(&resp(&[b"HELLO", b"4"]), b"-NOPROTO unsupported protocol version\r\n")
        .await;
    h.stop().await;
}

#[tokio::test]
async fn unknown_command_and_arity_errors_use_redis_text() {
    let h = start().await;
    let mut c = Raw::connect(h.addr).await;
    c.roundtrip(
        &resp(&[b"FOO", b"a", b"b"]),
        b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n",
    )
    .await;
    c.roundtrip(&resp(&[b"GET"]), b"-ERR wrong number of arguments for 'get' command\r\n")
        .await;
    c.roundtrip(
        &resp(&[b"SET", b"k", b"v", b"EX", b"0"]),
        b"-ERR invalid expire time in 'set' command\r\n",
    )
    .await;
    h.stop().await;
}
