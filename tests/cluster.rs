//! cluster-enabled mode: respite as a Redis Cluster of one node owning every slot, driven by
//! redis-rs's cluster client and redis-cli -c, with Redis's CROSSSLOT and cluster-mode errors.
mod common;

use common::Raw;
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rs_cluster_client_routes_everything_to_the_one_node() {
    let h = common::start_with(&[("cluster-enabled", "yes")]).await;
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://{}/", h.addr)]).unwrap();
    let mut c = client.get_async_connection().await.unwrap();
    for i in 0..200 {
        let _: () = c.set(format!("key:{i}"), i).await.unwrap();
    }
    for i in (0..200).step_by(37) {
        let v: i64 = c.get(format!("key:{i}")).await.unwrap();
        assert_eq!(v, i);
    }
    // Multi-key commands within one hash tag work; the cluster client splits the rest.
    let _: () = c.mset(&[("{user1}.a", "1"), ("{user1}.b", "2")]).await.unwrap();
    let both: Vec<String> = c.mget(&["{user1}.a", "{user1}.b"]).await.unwrap();
    assert_eq!(both, ["1", "2"]);
    let n: i64 = c.del(&["key:1", "key:2"]).await.unwrap();
    assert_eq!(n, 2);
    h.stop().await;
}

#[tokio::test]
async fn cluster_replies_and_errors_as_redis() {
    let h = common::start_with(&[("cluster-enabled", "yes")]).await;
    let mut r = Raw::connect(h.addr).await;
    r.roundtrip(b"CLUSTER KEYSLOT foo\r\n", b":12182\r\n").await;
    r.roundtrip(b"CLUSTER KEYSLOT {user1}.a\r\n", b":8106\r\n").await;
    r.roundtrip(b"SET foo 1\r\n", b"+OK\r\n").await;
    r.roundtrip(b"CLUSTER COUNTKEYSINSLOT 12182\r\n", b":1\r\n").await;
    r.roundtrip(b"CLUSTER GETKEYSINSLOT 12182 10\r\n", b"*1\r\n$3\r\nfoo\r\n").await;
    r.roundtrip(b"CLUSTER COUNTKEYSINSLOT 16384\r\n", b"-ERR Invalid slot\r\n").await;
    r.roundtrip(b"MSET a 1 b 2\r\n", b"-CROSSSLOT Keys in request don't hash to the same slot\r\n")
        .await;
    r.roundtrip(b"SELECT 1\r\n", b"-ERR SELECT is not allowed in cluster mode\r\n")
        .await;
    r.roundtrip(b"MOVE foo 1\r\n", b"-ERR MOVE is not allowed in cluster mode\r\n")
        .await;
    r.roundtrip(b"READONLY\r\n", b"+OK\r\n").await;
    // A transaction whose commands touch two slots is discarded at EXEC, as in Redis.
    r.roundtrip(
        b"MULTI\r\nSET a 1\r\nSET b 1\r\nEXEC\r\n",
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n-CROSSSLOT Keys in request don't hash to the same slot\r\n",
    )
    .await;
    r.roundtrip(b"GET a\r\n", b"$-1\r\n").await;
    // Keys that follow a count are checked too (Redis's keynum key specs).
    for cmd in [
        &b"LMPOP 2 a b LEFT\r\n"[..],
        b"ZUNIONSTORE {t}d 2 {t}a b\r\n",
        b"SINTERCARD 2 a b\r\n",
    ] {
        r.roundtrip(cmd, b"-CROSSSLOT Keys in request don't hash to the same slot\r\n")
            .await;
    }
    r.roundtrip(b"LMPOP 2 {t}a {t}b LEFT\r\n", b"*-1\r\n").await;
    r.roundtrip(b"ZUNIONSTORE {t}d 2 {t}a {t}b\r\n", b":0\r\n").await;
    // SORT: its STORE key is a key too, and BY/GET patterns are refused (Redis 7.0.15's words).
    r.roundtrip(b"SORT a STORE b\r\n", b"-CROSSSLOT Keys in request don't hash to the same slot\r\n")
        .await;
    r.roundtrip(b"RPUSH {t}l 2 1\r\n", b":2\r\n").await;
    r.roundtrip(b"SORT {t}l STORE {t}d\r\n", b":2\r\n").await;
    r.roundtrip(b"SORT {t}l BY nosort\r\n", b"*2\r\n$1\r\n2\r\n$1\r\n1\r\n").await;
    r.roundtrip(b"SORT {t}l BY w_*\r\n", b"-ERR BY option of SORT denied in Cluster mode.\r\n")
        .await;
    r.roundtrip(b"SORT {t}l GET #\r\n", b"-ERR GET option of SORT denied in Cluster mode.\r\n")
        .await;
    // GEORADIUS: the STORE and STOREDIST destinations are keys (Redis's key specs).
    let geo_crossslot = b"-CROSSSLOT Keys in request don't hash to the same slot\r\n";
    r.roundtrip(b"GEORADIUS {t}g 0 0 1 km STORE b\r\n", geo_crossslot).await;
    r.roundtrip(b"GEORADIUSBYMEMBER {t}g m 1 km STORE {t}d STOREDIST b\r\n", geo_crossslot)
        .await;
    r.roundtrip(b"GEOADD {t}g 0 0 m\r\n", b":1\r\n").await;
    r.roundtrip(b"GEORADIUSBYMEMBER {t}g m 1 km STORE {t}d STOREDIST {t}e\r\n", b":1\r\n")
        .await;
    let port = h.addr.port();
    let slots = format!(
        "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:{port}\r\n$40\r\n{}\r\n*0\r\n",
        h.server.node_id
    );
    r.roundtrip(b"CLUSTER SLOTS\r\n", slots.as_bytes()).await;
    r.send(b"INFO cluster\r\n").await;
    let info = String::from_utf8_lossy(&r.read_n(4096).await).to_string();
    assert!(info.contains("cluster_enabled:1"), "{info}");
    h.stop().await;

    // Without cluster-enabled, Redis's refusal.
    let h = common::start().await;
    let mut r = Raw::connect(h.addr).await;
    r.roundtrip(b"CLUSTER INFO\r\n", b"-ERR This instance has cluster support disabled\r\n")
        .await;
    r.roundtrip(b"MSET a 1 b 2\r\n", b"+OK\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn redis_cli_follows_the_cluster() {
    if std::process::Command::new("redis-cli").arg("--version").output().is_err() {
        eprintln!("redis-cli not found; skipped (.ci/run installs redis-tools)");
        return;
    }
    let h = common::start_with(&[("cluster-enabled", "yes")]).await;
    let port = h.addr.port().to_string();
    let run = |args: Vec<String>| async move {
        let out = tokio::process::Command::new("redis-cli").args(&args).output().await.unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let base = ["-c".to_string(), "-p".to_string(), port.clone()];
    let with = |extra: &[&str]| base.iter().cloned().chain(extra.iter().map(|s| s.to_string())).collect::<Vec<_>>();
    assert_eq!(run(with(&["SET", "greeting", "hi"])).await.trim(), "OK");
    assert_eq!(run(with(&["GET", "greeting"])).await.trim(), "hi");
    let check = run(vec!["--cluster".into(), "check".into(), format!("127.0.0.1:{port}")]).await;
    assert!(check.contains("All 16384 slots covered"), "{check}");
    h.stop().await;
}
