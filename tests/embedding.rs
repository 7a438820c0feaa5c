//! The embedding API as a test suite would use it: `respite::spawn` for plain `#[test]`s with a
//! blocking client, `respite::start` inside tokio, FLUSHALL between tests, and time control so TTL
//! tests need no sleeps (Handle::advance_clock, DEBUG ADVANCE-CLOCK).

mod common;

use std::time::Duration;

use redis::Commands;

#[test]
fn a_blocking_test_suite_shares_one_background_server() {
    let server = respite::spawn(respite::Config::default()).expect("server starts");
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    // "test 1"
    let _: () = con.set("user:1", "ada").unwrap();
    let _: () = con.hset("user:1:prefs", "theme", "dark").unwrap();
    assert_eq!(con.get::<_, String>("user:1").unwrap(), "ada");
    server.handle().flushall();
    // "test 2" starts from an empty server, on the same connection.
    assert!(!con.exists::<_, bool>("user:1").unwrap());
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 0);
    let port = server.addr().port();
    drop(server);
    // Stopped: nothing listens on the port any more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn ttls_expire_when_the_clock_is_advanced() {
    let server = respite::spawn(respite::Config::default()).unwrap();
    let mut con = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    let _: () = con.set_ex("token", "t", 3600).unwrap();
    let _: () = con.set("forever", "f").unwrap();
    server.handle().advance_clock(Duration::from_secs(1800));
    let ttl: i64 = con.ttl("token").unwrap();
    assert!((1799..=1800).contains(&ttl), "ttl {ttl}");
    server.handle().advance_clock(Duration::from_secs(1801));
    assert_eq!(con.get::<_, Option<String>>("token").unwrap(), None);
    assert_eq!(con.get::<_, Option<String>>("forever").unwrap().as_deref(), Some("f"));
    // Real time still runs underneath.
    let _: () = con.pset_ex("short", "s", 30).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while con.exists::<_, bool>("short").unwrap() {
        assert!(std::time::Instant::now() < deadline, "a 30 ms TTL did not run out in real time");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn debug_advance_clock_over_the_wire_needs_enable_debug_command() {
    let h = common::start().await;
    let mut c = common::client(h.addr).await;
    let err = redis::cmd("DEBUG")
        .arg("ADVANCE-CLOCK")
        .arg(1000)
        .query_async::<()>(&mut c)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("DEBUG command not allowed"), "{err}");
    h.stop().await;

    let h = common::start_with(&[("enable-debug-command", "yes")]).await;
    let mut c = common::client(h.addr).await;
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg(10)
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("DEBUG")
        .arg("ADVANCE-CLOCK")
        .arg(10_000)
        .query_async(&mut c)
        .await
        .unwrap();
    let v: Option<String> = redis::cmd("GET").arg("k").query_async(&mut c).await.unwrap();
    assert_eq!(v, None);
    let err = redis::cmd("DEBUG")
        .arg("ADVANCE-CLOCK")
        .arg(-1)
        .query_async::<()>(&mut c)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only moves forward"), "{err}");
    // DEBUG SLEEP 0 and SET-ACTIVE-EXPIRE, as test tooling sends them.
    let _: () = redis::cmd("DEBUG").arg("SLEEP").arg(0).query_async(&mut c).await.unwrap();
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(0)
        .query_async(&mut c)
        .await
        .unwrap();
    // DEBUG ERROR answers its argument as the error, as redis-server 7.0.15 does (compared by hand).
    let mut raw = common::Raw::connect(h.addr).await;
    raw.roundtrip(b"DEBUG ERROR \"LOADING fake message\"\r\n", b"-LOADING fake message\r\n")
        .await;
    raw.roundtrip(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nerror\r\n$4\r\na\r\nb\r\n", b"-a  b\r\n")
        .await;
    raw.roundtrip(
        b"DEBUG ERROR\r\n",
        b"-ERR unknown subcommand or wrong number of arguments for 'ERROR'. Try DEBUG HELP.\r\n",
    )
    .await;
    h.stop().await;
}

/// Start-up as a test suite sees it: spawn, answer a PING, stop; twenty times. The time is printed
/// (README figure), not asserted: timing on shared machines belongs in benchmarks.
#[test]
fn spawn_answers_at_once_and_stops_cleanly_repeatedly() {
    let mut took = Vec::new();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let server = respite::spawn(respite::Config::default()).unwrap();
        let mut con = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
        let pong: String = redis::cmd("PING").query(&mut con).unwrap();
        assert_eq!(pong, "PONG");
        took.push(started.elapsed());
        drop(con);
        drop(server);
    }
    took.sort();
    eprintln!("spawn + connect + PING: median {:?}, max {:?} over 20", took[10], took[19]);
}
