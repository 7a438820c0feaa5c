//! Blocking pops through real clients: BLPOP/BRPOP/BLMOVE/BLMPOP/BZPOPMIN wait until another
//! client (or a transaction) pushes, are served in the order they blocked, time out, survive their
//! client going away, and hold back the commands pipelined behind them.

mod common;
use common::*;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

async fn blocked_clients(c: &mut MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO").arg("clients").query_async(c).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("blocked_clients in INFO")
}

/// Waits (bounded) until `n` clients are blocked.
async fn until_blocked(c: &mut MultiplexedConnection, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while blocked_clients(c).await != n {
        assert!(Instant::now() < deadline, "never saw {n} blocked clients");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Starts `cmd` on a connection of its own; its reply arrives through the join handle.
fn spawn_blocking(addr: SocketAddr, cmd: redis::Cmd) -> tokio::task::JoinHandle<redis::RedisResult<redis::Value>> {
    tokio::spawn(async move {
        let mut c = client(addr).await;
        cmd.query_async(&mut c).await
    })
}

fn bulk(s: &str) -> redis::Value {
    redis::Value::BulkString(s.as_bytes().to_vec())
}

async fn reply(h: tokio::task::JoinHandle<redis::RedisResult<redis::Value>>) -> redis::RedisResult<redis::Value> {
    tokio::time::timeout(Duration::from_secs(5), h)
        .await
        .expect("blocked client answered")
        .unwrap()
}

#[tokio::test]
async fn blpop_is_woken_by_a_push_from_another_client() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let waiter = spawn_blocking(h.addr, redis::cmd("BLPOP").arg("q").arg(0).clone());
    until_blocked(&mut c, 1).await;
    let n: i64 = redis::cmd("RPUSH").arg("q").arg("job-1").query_async(&mut c).await.unwrap();
    assert_eq!(n, 1);
    // Served before the pusher's next command, as in Redis: the list is already empty.
    let len: i64 = redis::cmd("LLEN").arg("q").query_async(&mut c).await.unwrap();
    assert_eq!(len, 0);
    assert_eq!(reply(waiter).await.unwrap(), redis::Value::Array(vec![bulk("q"), bulk("job-1")]));
    assert_eq!(blocked_clients(&mut c).await, 0);
    h.stop().await;
}

#[tokio::test]
async fn waiting_clients_are_served_in_the_order_they_blocked() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let mut waiters = Vec::new();
    for i in 0..5 {
        waiters.push(spawn_blocking(h.addr, redis::cmd("BRPOP").arg("a").arg("q").arg(0).clone()));
        until_blocked(&mut c, i + 1).await;
    }
    // One push of five elements (the list is a b c d e): the first to block gets the first popped,
    // from the tail.
    let _: i64 = redis::cmd("LPUSH")
        .arg("q")
        .arg(&["e", "d", "c", "b", "a"])
        .query_async(&mut c)
        .await
        .unwrap();
    for (w, want) in waiters.into_iter().zip(["e", "d", "c", "b", "a"]) {
        assert_eq!(reply(w).await.unwrap(), redis::Value::Array(vec![bulk("q"), bulk(want)]));
    }
    h.stop().await;
}

#[tokio::test]
async fn timeouts_answer_nil_and_bad_timeouts_are_errors() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let started = Instant::now();
    let v: redis::Value = redis::cmd("BLPOP").arg("none").arg(0.2).query_async(&mut c).await.unwrap();
    assert_eq!(v, redis::Value::Nil);
    assert!(started.elapsed() >= Duration::from_millis(190), "{:?}", started.elapsed());
    let v: redis::Value = redis::cmd("BLMOVE")
        .arg("none")
        .arg("dst")
        .arg("LEFT")
        .arg("RIGHT")
        .arg(0.05)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v, redis::Value::Nil);
    let e = redis::cmd("BLPOP")
        .arg("q")
        .arg(-1)
        .query_async::<redis::Value>(&mut c)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("timeout is negative"), "{e}");
    let e = redis::cmd("BLPOP")
        .arg("q")
        .arg("soon")
        .query_async::<redis::Value>(&mut c)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("timeout is not a float or out of range"), "{e}");
    assert_eq!(blocked_clients(&mut c).await, 0);
    h.stop().await;
}

#[tokio::test]
async fn a_transaction_never_blocks_but_its_pushes_wake_waiters() {
    let h = start().await;
    let mut c = client(h.addr).await;
    // Inside MULTI/EXEC an empty BLPOP answers nil at once, as in Redis.
    let (v,): (redis::Value,) = redis::pipe()
        .atomic()
        .cmd("BLPOP")
        .arg("q")
        .arg(0)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v, redis::Value::Nil);
    let waiter = spawn_blocking(h.addr, redis::cmd("BLPOP").arg("q").arg(0).clone());
    until_blocked(&mut c, 1).await;
    // The waiter is served after EXEC, from what the whole transaction left.
    let (_, _, len): (i64, i64, i64) = redis::pipe()
        .atomic()
        .cmd("RPUSH")
        .arg("q")
        .arg("x")
        .cmd("RPUSH")
        .arg("q")
        .arg("y")
        .cmd("LLEN")
        .arg("q")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(len, 2);
    assert_eq!(reply(waiter).await.unwrap(), redis::Value::Array(vec![bulk("q"), bulk("x")]));
    let rest: Vec<String> = redis::cmd("LRANGE").arg("q").arg(0).arg(-1).query_async(&mut c).await.unwrap();
    assert_eq!(rest, ["y"]);
    h.stop().await;
}

#[tokio::test]
async fn blmove_feeds_the_next_waiter() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let mover = spawn_blocking(
        h.addr,
        redis::cmd("BLMOVE")
            .arg("inbox")
            .arg("work")
            .arg("LEFT")
            .arg("RIGHT")
            .arg(0)
            .clone(),
    );
    until_blocked(&mut c, 1).await;
    let worker = spawn_blocking(h.addr, redis::cmd("BLPOP").arg("work").arg(0).clone());
    until_blocked(&mut c, 2).await;
    let _: i64 = redis::cmd("RPUSH").arg("inbox").arg("m1").query_async(&mut c).await.unwrap();
    assert_eq!(reply(mover).await.unwrap(), bulk("m1"));
    assert_eq!(reply(worker).await.unwrap(), redis::Value::Array(vec![bulk("work"), bulk("m1")]));
    let n: i64 = redis::cmd("EXISTS").arg("inbox").arg("work").query_async(&mut c).await.unwrap();
    assert_eq!(n, 0);
    h.stop().await;
}

#[tokio::test]
async fn client_unblock_and_disconnects_release_waiters() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let mut w = client(h.addr).await;
    let id: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut w).await.unwrap();
    let waiter = tokio::spawn(async move { redis::cmd("BLPOP").arg("q").arg(0).query_async::<redis::Value>(&mut w).await });
    until_blocked(&mut c, 1).await;
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut c).await.unwrap();
    assert!(
        list.lines().any(|l| l.starts_with(&format!("id={id} ")) && l.contains(" flags=b ")),
        "{list}"
    );
    let n: i64 = redis::cmd("CLIENT").arg("UNBLOCK").arg(id).query_async(&mut c).await.unwrap();
    assert_eq!(n, 1);
    assert_eq!(reply(waiter).await.unwrap(), redis::Value::Nil);
    let n: i64 = redis::cmd("CLIENT").arg("UNBLOCK").arg(id).query_async(&mut c).await.unwrap();
    assert_eq!(n, 0, "not blocked any more");

    let mut w = client(h.addr).await;
    let id: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut w).await.unwrap();
    let waiter = tokio::spawn(async move { redis::cmd("BLPOP").arg("q").arg(0).query_async::<redis::Value>(&mut w).await });
    until_blocked(&mut c, 1).await;
    let _: i64 = redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(id)
        .arg("ERROR")
        .query_async(&mut c)
        .await
        .unwrap();
    let e = reply(waiter).await.unwrap_err();
    assert!(e.to_string().contains("UNBLOCKED"), "{e}");

    // A client that goes away while blocked leaves nothing behind: a later push stays in the list.
    let mut raw = Raw::connect(h.addr).await;
    raw.send(&resp(&[b"BLPOP", b"q", b"0"])).await;
    until_blocked(&mut c, 1).await;
    drop(raw);
    until_blocked(&mut c, 0).await;
    let _: i64 = redis::cmd("RPUSH").arg("q").arg("kept").query_async(&mut c).await.unwrap();
    let len: i64 = redis::cmd("LLEN").arg("q").query_async(&mut c).await.unwrap();
    assert_eq!(len, 1);
    h.stop().await;
}

#[tokio::test]
async fn commands_pipelined_behind_a_blocked_one_wait_for_it() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let mut raw = Raw::connect(h.addr).await;
    let mut batch = resp(&[b"BLPOP", b"q", b"0"]);
    batch.extend(resp(&[b"PING"]));
    raw.send(&batch).await;
    until_blocked(&mut c, 1).await;
    let _: i64 = redis::cmd("RPUSH").arg("q").arg("v").query_async(&mut c).await.unwrap();
    let expected = b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n+PONG\r\n";
    let got = tokio::time::timeout(Duration::from_secs(5), raw.read_n(expected.len()))
        .await
        .unwrap();
    assert_eq!(got, expected);
    h.stop().await;
}

#[tokio::test]
async fn sorted_set_pops_block_too() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let waiter = spawn_blocking(h.addr, redis::cmd("BZPOPMIN").arg("z").arg(0).clone());
    until_blocked(&mut c, 1).await;
    let _: i64 = redis::cmd("ZADD")
        .arg("z")
        .arg(2)
        .arg("b")
        .arg(1)
        .arg("a")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(
        reply(waiter).await.unwrap(),
        redis::Value::Array(vec![bulk("z"), bulk("a"), bulk("1")])
    );
    let left: i64 = redis::cmd("ZCARD").arg("z").query_async(&mut c).await.unwrap();
    assert_eq!(left, 1);
    h.stop().await;
}

/// As Redis 7.0 (checked with redis-cli against redis-server 7.0.15): a client blocked on several
/// keys is served from the key that became ready first, not from the first of its keys, and a key
/// of another type among them is passed over.
#[tokio::test]
async fn served_from_the_key_that_became_ready() {
    let h = start().await;
    let mut c = client(h.addr).await;
    let waiter = spawn_blocking(h.addr, redis::cmd("BLPOP").arg("a").arg("b").arg(0).clone());
    until_blocked(&mut c, 1).await;
    let _: () = redis::cmd("SET").arg("a").arg("str").query_async(&mut c).await.unwrap();
    let _: i64 = redis::cmd("RPUSH").arg("b").arg("x").query_async(&mut c).await.unwrap();
    assert_eq!(reply(waiter).await.unwrap(), redis::Value::Array(vec![bulk("b"), bulk("x")]));
    let _: () = redis::cmd("DEL").arg("a").query_async(&mut c).await.unwrap();

    // b becomes ready before a inside one transaction: served from b.
    let waiter = spawn_blocking(h.addr, redis::cmd("BLPOP").arg("a").arg("b").arg(0).clone());
    until_blocked(&mut c, 1).await;
    let _: (i64, i64) = redis::pipe()
        .atomic()
        .cmd("RPUSH")
        .arg("b")
        .arg("1")
        .cmd("RPUSH")
        .arg("a")
        .arg("2")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(reply(waiter).await.unwrap(), redis::Value::Array(vec![bulk("b"), bulk("1")]));
    let _: i64 = redis::cmd("DEL").arg("a").arg("b").query_async(&mut c).await.unwrap();

    // BLMPOP likewise, with its count.
    let waiter = spawn_blocking(
        h.addr,
        redis::cmd("BLMPOP")
            .arg(0)
            .arg(2)
            .arg("a")
            .arg("b")
            .arg("LEFT")
            .arg("COUNT")
            .arg(5)
            .clone(),
    );
    until_blocked(&mut c, 1).await;
    let _: (i64, i64) = redis::pipe()
        .atomic()
        .cmd("RPUSH")
        .arg("b")
        .arg(&["1", "2"])
        .cmd("RPUSH")
        .arg("a")
        .arg("3")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(
        reply(waiter).await.unwrap(),
        redis::Value::Array(vec![bulk("b"), redis::Value::Array(vec![bulk("1"), bulk("2")])])
    );
    let left: Vec<String> = redis::cmd("LRANGE").arg("a").arg(0).arg(-1).query_async(&mut c).await.unwrap();
    assert_eq!(left, ["3"]);
    h.stop().await;
}
