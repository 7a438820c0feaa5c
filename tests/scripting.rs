//! EVAL through real clients: redis-rs's Script (EVALSHA, then EVAL on NOSCRIPT), atomicity
//! under concurrent clients, a runaway script stopped at busy-reply-threshold with the server
//! still serving, and the script cache. Reply and error texts are compared with Redis in
//! tests/differential/scripting.redis.

mod common;

use std::time::{Duration, Instant};

#[tokio::test]
async fn redis_rs_scripts_load_and_run_by_sha() {
    let h = common::start().await;
    let mut c = common::client(h.addr).await;
    let script = redis::Script::new("return redis.call('incrby', KEYS[1], ARGV[1]) * 2");
    // The first invocation finds no script by SHA and falls back to EVAL, as against Redis.
    let n: i64 = script.key("counter").arg(5).invoke_async(&mut c).await.unwrap();
    assert_eq!(n, 10);
    let n: i64 = script.key("counter").arg(1).invoke_async(&mut c).await.unwrap();
    assert_eq!(n, 12);
    let exists: Vec<bool> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(script.get_hash())
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(exists, vec![true]);
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut c).await.unwrap();
    let err = redis::cmd("EVALSHA")
        .arg(script.get_hash())
        .arg(0)
        .query_async::<i64>(&mut c)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("NOSCRIPT"), "{err}");
    h.stop().await;
}

#[tokio::test]
async fn a_script_runs_alone_while_clients_race() {
    let h = common::start().await;
    // Read, then write: only atomic execution keeps every increment.
    let script = "local v = tonumber(redis.call('get', KEYS[1]) or '0'); redis.call('set', KEYS[1], v + 1); return v + 1";
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let addr = h.addr;
        tasks.push(tokio::spawn(async move {
            let mut c = common::client(addr).await;
            for _ in 0..200 {
                let _: i64 = redis::cmd("EVAL").arg(script).arg(1).arg("n").query_async(&mut c).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = common::client(h.addr).await;
    let n: i64 = redis::cmd("GET").arg("n").query_async(&mut c).await.unwrap();
    assert_eq!(n, 1600);
    h.stop().await;
}

#[tokio::test]
async fn a_runaway_script_is_stopped_and_the_server_goes_on() {
    let h = common::start().await;
    let mut c = common::client(h.addr).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-reply-threshold")
        .arg(200)
        .query_async(&mut c)
        .await
        .unwrap();
    let started = Instant::now();
    let err = redis::cmd("EVAL")
        .arg("while true do end")
        .arg(0)
        .query_async::<()>(&mut c)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.to_string().contains("busy-reply-threshold"), "{err}");
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(5), "{took:?}");
    // Both this client and a new one are served afterwards.
    let pong: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
    assert_eq!(pong, "PONG");
    let mut other = common::client(h.addr).await;
    let v: i64 = redis::cmd("EVAL").arg("return 7").arg(0).query_async(&mut other).await.unwrap();
    assert_eq!(v, 7);
    h.stop().await;
}
