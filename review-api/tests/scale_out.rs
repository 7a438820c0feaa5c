//! review-api on scaled-out caches, chosen by configuration alone:
//!
//! * `--cache-mode twemproxy`: Debian's nutcracker (ketama over murmur, `hash_tag: "{}"`) in front
//!   of three in-process respite instances, database 0, no CLIENT SETINFO, no SCAN.
//! * `--cache-mode cluster` (`redis+cluster://` URL): a real three-node Redis 7 Cluster made by
//!   `redis-cli --cluster create`, and respite with `cluster-enabled yes` (one node, every slot).
//!
//! Each runs the same workload: reads MISS then HIT, a write makes the next read see it, keys land
//! on more than one backend where there is more than one. Skips with a notice when nutcracker or
//! redis-server/redis-cli are missing (.ci/run installs them). Spawned servers die with their
//! guards; data lives in temp dirs.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use review_api::cache::CacheMode;
use review_api::{AppHandle, Settings};
use serde_json::{json, Value};

const USERS: usize = 8;

/// A spawned server, killed and reaped on drop (also when the test panics).
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn found(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A free port whose cluster bus port (+10000) is free too.
fn free_cluster_port() -> u16 {
    for _ in 0..200 {
        let p = free_port();
        if p <= 55_000 && std::net::TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            return p;
        }
    }
    panic!("no free port pair for a cluster node");
}

fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn start_respite(directives: &[(&str, &str)]) -> respite::Handle {
    let lines: Vec<Vec<String>> = directives.iter().map(|(k, v)| vec![k.to_string(), v.to_string()]).collect();
    respite::start(respite::Config::load(None, &lines).unwrap())
        .await
        .expect("respite starts")
}

struct Api {
    app: AppHandle,
    http: reqwest::Client,
    tokens: Vec<String>,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: u16,
    x_cache: String,
    json: Value,
}

impl Api {
    async fn start(cache_url: &str, mode: CacheMode) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let db_url = format!("sqlite://{}", dir.path().join("review.db").display());
        let tokens_file = dir.path().join("tokens.txt");
        review_api::seed::run(&db_url, USERS, USERS * 30, &tokens_file).await.expect("seed");
        let tokens = std::fs::read_to_string(&tokens_file).unwrap().lines().map(String::from).collect();
        let settings = Settings {
            cache_mode: mode,
            // Generous: these tests are about routing, on a shared 2-core machine.
            cache_timeout: Duration::from_millis(500),
            ..Settings::local(&db_url, Some(cache_url.to_string()))
        };
        let app = review_api::start(settings).await.expect("app starts");
        assert!(
            app.state.cache.wait_connected(Duration::from_secs(10)).await,
            "cache connects ({cache_url})"
        );
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        Api {
            app,
            http,
            tokens,
            _dir: dir,
        }
    }

    async fn request(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        let mut req = self.http.request(method, self.app.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("answered");
        let status = resp.status().as_u16();
        let x_cache = resp
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, x_cache, json }
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.request(reqwest::Method::GET, path, token, None).await
    }

    /// Reads MISS then HIT for every user; a review completed and a title changed are seen by the
    /// next read (a MISS, then HIT again). Returns nothing: it asserts.
    async fn exercise(&self, what: &str) {
        for t in &self.tokens {
            for path in ["/api/review/today/", "/api/analytics/stats/", "/api/content/"] {
                let first = self.get(path, t).await;
                assert_eq!((first.status, first.x_cache.as_str()), (200, "MISS"), "{what}: first {path}");
                let second = self.get(path, t).await;
                assert_eq!((second.status, second.x_cache.as_str()), (200, "HIT"), "{what}: second {path}");
                assert_eq!(first.json, second.json, "{what}: {path} served from the cache");
            }
        }
        let t = &self.tokens[0];

        // A completed review leaves the due list and counts in the stats at once.
        let due = self.get("/api/review/today/", t).await;
        let ids: Vec<i64> = due.json["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["content"]["id"].as_i64().unwrap())
            .collect();
        assert!(!ids.is_empty(), "{what}: the seed leaves reviews due");
        let stats = self.get("/api/analytics/stats/", t).await;
        assert_eq!(stats.x_cache, "HIT");
        let done = self
            .request(
                reqwest::Method::POST,
                "/api/review/complete/",
                t,
                Some(json!({"content_id": ids[0], "remembered": true})),
            )
            .await;
        assert_eq!(done.status, 200, "{what}: complete: {}", done.json);
        let after = self.get("/api/review/today/", t).await;
        assert_eq!(after.x_cache, "MISS", "{what}: the write invalidated the review list");
        let after_ids: Vec<i64> = after.json["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["content"]["id"].as_i64().unwrap())
            .collect();
        assert!(!after_ids.contains(&ids[0]), "{what}: completed review still due: {after_ids:?}");
        assert_eq!(after_ids.len(), ids.len() - 1, "{what}");
        assert_eq!(self.get("/api/review/today/", t).await.x_cache, "HIT", "{what}");
        let stats_after = self.get("/api/analytics/stats/", t).await;
        assert_eq!(stats_after.x_cache, "MISS", "{what}: the write invalidated the stats");
        assert_ne!(stats.json, stats_after.json, "{what}: stats changed");

        // A title change is seen by the next detail read.
        let id = ids[1.min(ids.len() - 1)];
        let path = format!("/api/content/{id}/");
        assert_eq!(self.get(&path, t).await.x_cache, "MISS");
        assert_eq!(self.get(&path, t).await.x_cache, "HIT");
        let patched = self
            .request(
                reqwest::Method::PATCH,
                &path,
                t,
                Some(json!({"title": "Renamed through the proxy"})),
            )
            .await;
        assert_eq!(patched.status, 200, "{what}: {}", patched.json);
        let detail = self.get(&path, t).await;
        assert_eq!(
            (detail.x_cache.as_str(), detail.json["title"].as_str()),
            ("MISS", Some("Renamed through the proxy")),
            "{what}"
        );
        let errors = self.http.get(self.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let failed: Vec<&str> = errors
            .lines()
            .filter(|l| l.starts_with("cache_errors_total{") && !l.ends_with(" 0"))
            .collect();
        assert!(failed.is_empty(), "{what}: cache errors: {failed:?}");
        assert_eq!(self.app.state.cache.health(), "ok", "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_api_through_twemproxy_over_three_respites() {
    let Some(bin) = ["nutcracker", "/usr/sbin/nutcracker"].into_iter().find(|b| found(b)) else {
        eprintln!("nutcracker not found; twemproxy test skipped (.ci/run installs it)");
        return;
    };
    let mut backends = Vec::new();
    for _ in 0..3 {
        backends.push(start_respite(&[]).await);
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, b)| format!("   - {}:1 cache{i}\n", b.addr))
        .collect();
    // murmur: with fnv1a_64 every test key landed on one backend. hash_tag: a user's keys (all
    // tagged `{<user id>}`) on one backend, so a read's MGET is not split.
    let conf = format!(
        "review:\n  listen: 127.0.0.1:{port}\n  hash: murmur\n  hash_tag: \"{{}}\"\n  distribution: ketama\n  redis: true\n  auto_eject_hosts: false\n  timeout: 2000\n  servers:\n{servers}"
    );
    let conf_path = dir.path().join("nutcracker.yml");
    std::fs::write(&conf_path, conf).unwrap();
    let _proxy = Spawned(
        Command::new(bin)
            .args(["-c", conf_path.to_str().unwrap(), "-s", &free_port().to_string()])
            .args(["-o", dir.path().join("nutcracker.log").to_str().unwrap()])
            .stdout(Stdio::null())
            .spawn()
            .expect("nutcracker starts"),
    );
    wait_listening(port, "nutcracker");

    let api = Api::start(&format!("redis://127.0.0.1:{port}/0"), CacheMode::Twemproxy).await;
    api.exercise("twemproxy").await;
    let counts: Vec<usize> = backends.iter().map(|b| b.server.keyspace.dbsize(0)).collect();
    eprintln!("twemproxy: keys per respite instance: {counts:?}");
    assert!(counts.iter().filter(|&&n| n > 0).count() >= 2, "keys spread: {counts:?}");
    assert!(backends.iter().all(|b| b.server.keyspace.dbsize(1) == 0), "database 0 only");

    // A database other than 0 is refused up front, not left to fail at SELECT.
    let err = review_api::start(Settings {
        cache_mode: CacheMode::Twemproxy,
        ..Settings::local("sqlite::memory:", Some(format!("redis://127.0.0.1:{port}/1")))
    })
    .await
    .err()
    .expect("database 1 through twemproxy is refused");
    assert!(err.to_string().contains("only database 0"), "{err}");

    api.app.stop().await;
    for b in backends {
        b.stop().await;
    }
}

/// A three-node Redis Cluster from Debian's redis-server, killed on drop.
struct RedisCluster {
    _nodes: Vec<Spawned>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    fn start() -> RedisCluster {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..3 {
            let p = free_cluster_port();
            let conf = dir.path().join(format!("nodes-{p}.conf"));
            let child = Command::new("redis-server")
                .args(["--port", &p.to_string(), "--cluster-enabled", "yes"])
                .args(["--cluster-config-file", conf.to_str().unwrap()])
                .args(["--dir", dir.path().to_str().unwrap()])
                .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--daemonize", "no"])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            nodes.push(Spawned(child));
            ports.push(p);
        }
        for &p in &ports {
            wait_listening(p, "redis-server");
        }
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        for &p in &ports {
            loop {
                let info = Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "cluster", "info"])
                    .output()
                    .expect("redis-cli runs");
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "node {p} never reached cluster_state:ok");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        RedisCluster {
            _nodes: nodes,
            ports,
            _dir: dir,
        }
    }

    fn dbsize(&self, port: u16) -> usize {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "dbsize"])
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_api_on_a_real_redis_cluster() {
    if !found("redis-server") || !found("redis-cli") {
        eprintln!("redis-server/redis-cli not found; Redis Cluster test skipped (.ci/run installs them)");
        return;
    }
    let cluster = RedisCluster::start();
    // Configuration alone: every node named, as an operator would; the client finds the slot map.
    let url = format!(
        "redis+cluster://{}",
        cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
    );
    let api = Api::start(&url, CacheMode::Direct).await;
    assert_eq!(
        api.app.state.cache.mode(),
        CacheMode::Cluster,
        "a redis+cluster:// URL selects cluster mode"
    );
    api.exercise("redis cluster").await;
    let counts: Vec<usize> = cluster.ports.iter().map(|&p| cluster.dbsize(p)).collect();
    eprintln!("redis cluster: keys per node: {counts:?}");
    assert!(
        counts.iter().filter(|&&n| n > 0).count() >= 2,
        "keys spread over the nodes: {counts:?}"
    );
    api.app.stop().await;
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_api_on_respite_in_cluster_mode() {
    let node = start_respite(&[("cluster-enabled", "yes")]).await;
    let addr: SocketAddr = node.addr;
    // `--cache-mode cluster` with a plain node URL works as well as redis+cluster://.
    let api = Api::start(&format!("redis://{addr}"), CacheMode::Cluster).await;
    api.exercise("respite cluster-enabled").await;
    assert!(node.server.keyspace.dbsize(0) > 0);
    api.app.stop().await;
    node.stop().await;
}
