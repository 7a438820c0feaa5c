//! INFO-based monitoring: Debian's prometheus-redis-exporter scraping the respite-server binary.
//!
//! - The commands the exporter sends (CLIENT SETNAME, CONFIG GET *, INFO ALL, LATENCY LATEST,
//!   SLOWLOG LEN, SLOWLOG GET 1) answer with the reply shapes a real redis-server gives.
//! - After known work (SETs with and without TTL in two databases, hits, misses, an expired key,
//!   then evictions under a lowered maxmemory) the exporter logs no error, reports `redis_up 1`,
//!   and the metrics Grafana's standard Redis dashboard reads carry the right values; the same run
//!   against redis-server must give the same values where they are deterministic.
//! - The set of metric names exported for respite is compared with Redis's (differences printed).
//!
//! Prometheus text is parsed with the prometheus-parse crate. Skipped (passing, with a notice)
//! without the exporter; without redis-server only respite's side is checked.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::RedisServer;
use prometheus_parse::{Scrape, Value as PromValue};
use redis::Value;

const EXPORTER: &str = "prometheus-redis-exporter";

fn connect(port: u16, db: u8) -> redis::Connection {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/{db}")).unwrap();
    c.get_connection_with_timeout(Duration::from_secs(5)).expect("connect")
}

fn query(con: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

/// The reply's type structure: values dropped, lengths kept.
fn shape(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Int(_) => "int".into(),
        Value::BulkString(_) => "bulk".into(),
        Value::Okay => "+OK".into(),
        Value::SimpleString(s) => format!("+{s}"),
        Value::Array(items) => format!("[{}]", items.iter().map(shape).collect::<Vec<_>>().join(",")),
        other => format!("{other:?}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".into(),
        other => format!("{other:?}"),
    }
}

/// INFO text as section -> field names, in order.
fn info_fields(info: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in info.lines() {
        if let Some(sec) = line.strip_prefix("# ") {
            out.push((sec.trim().to_string(), Vec::new()));
        } else if let (Some((k, _)), Some(last)) = (line.split_once(':'), out.last_mut()) {
            last.1.push(k.to_string());
        }
    }
    out
}

fn info_value(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
}

/// The replies to the exporter's commands, reduced to what a client relies on.
fn exporter_command_shapes(port: u16) -> BTreeMap<&'static str, String> {
    let mut con = connect(port, 0);
    let mut m = BTreeMap::new();
    m.insert(
        "CLIENT SETNAME",
        shape(&query(&mut con, &["CLIENT", "SETNAME", "redis_exporter"]).unwrap()),
    );
    let cfg = query(&mut con, &["CONFIG", "GET", "*"]).unwrap();
    let Value::Array(items) = &cfg else {
        panic!("CONFIG GET * on {port}: {cfg:?}")
    };
    assert!(items.len() % 2 == 0, "CONFIG GET * on {port}: odd length {}", items.len());
    assert!(
        items.iter().all(|v| matches!(v, Value::BulkString(_))),
        "CONFIG GET * on {port}: not all bulk strings"
    );
    let names: BTreeSet<String> = items.iter().step_by(2).map(text).collect();
    m.insert("CONFIG GET * (names)", names.into_iter().collect::<Vec<_>>().join(" "));
    let info = query(&mut con, &["INFO", "ALL"]).unwrap();
    assert!(matches!(info, Value::BulkString(_)), "INFO ALL on {port}: {info:?}");
    let sections: Vec<String> = info_fields(&text(&info)).into_iter().map(|(s, _)| s).collect();
    m.insert("INFO ALL (sections)", sections.join(","));
    m.insert("LATENCY LATEST", shape(&query(&mut con, &["LATENCY", "LATEST"]).unwrap()));
    m.insert("SLOWLOG LEN", shape(&query(&mut con, &["SLOWLOG", "LEN"]).unwrap()));
    m.insert("SLOWLOG GET 1", shape(&query(&mut con, &["SLOWLOG", "GET", "1"]).unwrap()));
    m
}

/// The exporter's commands answer with Redis's reply shapes. Needs only redis-server.
#[test]
fn exporter_commands_answer_as_redis_does() {
    let respite = common::RespiteProcess::start();
    let ours = exporter_command_shapes(respite.port);
    assert_eq!(ours["CLIENT SETNAME"], "+OK");
    assert_eq!(ours["LATENCY LATEST"], "[]");
    assert_eq!(ours["SLOWLOG LEN"], "int");
    // SLOWLOG may be real or empty, never malformed: with every command logged, an entry has
    // Redis's six fields (id, timestamp, microseconds, arguments, client address, client name).
    let mut con = connect(respite.port, 0);
    query(&mut con, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]).unwrap();
    query(&mut con, &["PING"]).unwrap();
    let entry = shape(&query(&mut con, &["SLOWLOG", "GET", "1"]).unwrap());
    assert!(
        entry == "[]" || entry == "[[int,int,int,[bulk],bulk,bulk]]",
        "SLOWLOG GET 1 after PING: {entry}"
    );
    if entry == "[]" {
        eprintln!("note: respite's SLOWLOG is empty even with slowlog-log-slower-than 0 (Redis logs every command)");
    }
    let Some(redis) = RedisServer::start() else {
        eprintln!("redis-server not found; exporter command shapes not compared with Redis");
        return;
    };
    let theirs = exporter_command_shapes(redis.port);
    let mut failures = String::new();
    for (k, want) in &theirs {
        let got = &ours[k];
        if k.starts_with("INFO") {
            if got != want {
                eprintln!("note: INFO ALL sections differ:\n    redis:   {want}\n    respite: {got}");
            }
        } else if got != want {
            failures.push_str(&format!("{k}:\n    redis:   {want}\n    respite: {got}\n"));
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// prometheus-redis-exporter on a free port, scraping `redis_port`; its log is kept.
struct Exporter {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Exporter {
    fn start(redis_port: u16) -> Exporter {
        for _ in 0..3 {
            let port = common::free_port();
            let mut child = Command::new(EXPORTER)
                .args([
                    "-debug",
                    "-redis-only-metrics",
                    "-redis.addr",
                    &format!("redis://127.0.0.1:{redis_port}"),
                    "-web.listen-address",
                    &format!("127.0.0.1:{port}"),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn prometheus-redis-exporter");
            let log = Arc::new(Mutex::new(Vec::new()));
            for pipe in [
                Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
                Box::new(child.stderr.take().unwrap()),
            ] {
                let log = log.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                        log.lock().unwrap().push(line);
                    }
                });
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Exporter { child, port, log };
                }
                if child.try_wait().unwrap().is_some() {
                    break; // most likely the port was taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("exporter did not start: {:?}", log.lock().unwrap());
        }
        panic!("prometheus-redis-exporter did not start");
    }

    /// GET /metrics, parsed.
    fn scrape(&self) -> Metrics {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").expect("HTTP response");
        assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{head}");
        let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
        Metrics(scrape)
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Metrics(Scrape);

impl Metrics {
    /// The sample `name` with `labels` (a subset of its labels).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0.samples.iter().find_map(|s| {
            if s.metric != name || !labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)) {
                return None;
            }
            match s.value {
                PromValue::Counter(v) | PromValue::Gauge(v) | PromValue::Untyped(v) => Some(v),
                _ => None,
            }
        })
    }

    fn must(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| panic!("no metric {name}{labels:?}"))
    }

    fn names(&self) -> BTreeSet<String> {
        self.0.samples.iter().map(|s| s.metric.clone()).collect()
    }

    fn sum(&self, name: &str) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .map(|s| match s.value {
                PromValue::Counter(v) | PromValue::Gauge(v) | PromValue::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    }
}

/// What Grafana's standard Redis dashboard (grafana.com 763, the exporter's contrib dashboard)
/// queries, plus per-command durations.
const DASHBOARD: &[&str] = &[
    "redis_up",
    "redis_uptime_in_seconds",
    "redis_connected_clients",
    "redis_memory_used_bytes",
    "redis_memory_max_bytes",
    "redis_commands_processed_total",
    "redis_commands_total",
    "redis_commands_duration_seconds_total",
    "redis_keyspace_hits_total",
    "redis_keyspace_misses_total",
    "redis_db_keys",
    "redis_db_keys_expiring",
    "redis_expired_keys_total",
    "redis_evicted_keys_total",
    "redis_net_input_bytes_total",
    "redis_net_output_bytes_total",
];

/// The values a run produced, for comparing respite with Redis.
#[derive(Debug, Default)]
struct Run {
    exact: BTreeMap<String, f64>,
    names: BTreeSet<String>,
    /// The `cmd` labels of redis_commands_total (Redis 7 names subcommands: `config|get`).
    cmd_labels: BTreeSet<String>,
    commands_sent: BTreeSet<String>,
}

/// Known work on the server at `port`, two scrapes through a fresh exporter, and the checks that
/// hold for any Redis-compatible server. Returns the deterministic values for comparison.
fn scenario(label: &str, port: u16) -> Run {
    let mut con0 = connect(port, 0);
    let mut con1 = connect(port, 1);
    query(&mut con0, &["FLUSHALL"]).unwrap();
    query(&mut con0, &["CONFIG", "RESETSTAT"]).unwrap();
    query(&mut con0, &["CONFIG", "SET", "maxmemory", "64mb"]).unwrap();
    query(&mut con0, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]).unwrap();
    let value = "v".repeat(100);
    // db0: 20 keys, 5 of them with a TTL; one more that expires at once.
    for i in 0..20 {
        let key = format!("key:{i}");
        if i % 4 == 0 {
            query(&mut con0, &["SET", &key, &value, "EX", "1000"]).unwrap();
        } else {
            query(&mut con0, &["SET", &key, &value]).unwrap();
        }
    }
    query(&mut con0, &["SET", "gone", "x", "PX", "50"]).unwrap();
    // db1: 3 keys, 1 with a TTL.
    query(&mut con1, &["SET", "a", "1"]).unwrap();
    query(&mut con1, &["SET", "b", "2"]).unwrap();
    query(&mut con1, &["SET", "c", "3", "EX", "1000"]).unwrap();
    // 10 hits, 5 misses, and after its expiry one more miss on `gone`.
    for i in 0..10 {
        assert!(matches!(
            query(&mut con0, &["GET", &format!("key:{i}")]).unwrap(),
            Value::BulkString(_)
        ));
    }
    for i in 0..5 {
        assert_eq!(query(&mut con0, &["GET", &format!("missing:{i}")]).unwrap(), Value::Nil);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(query(&mut con0, &["GET", "gone"]).unwrap(), Value::Nil);

    let exporter = Exporter::start(port);
    let m = exporter.scrape();
    let info = text(&query(&mut con0, &["INFO", "ALL"]).unwrap());
    let info_num = |f: &str| -> f64 { info_value(&info, f).unwrap_or_else(|| panic!("INFO {f}")).parse().unwrap() };

    let mut run = Run {
        names: m.names(),
        cmd_labels: m
            .0
            .samples
            .iter()
            .filter(|s| s.metric == "redis_commands_total")
            .filter_map(|s| s.labels.get("cmd").map(str::to_string))
            .collect(),
        ..Run::default()
    };
    let mut exact = |name: &str, labels: &[(&str, &str)], want: f64| {
        let got = m.must(name, labels);
        assert_eq!(got, want, "{label}: {name}{labels:?}");
        run.exact.insert(format!("{name}{labels:?}"), got);
    };
    exact("redis_up", &[], 1.0);
    exact("redis_exporter_last_scrape_error", &[], 0.0);
    // Our two connections and the exporter's.
    exact("redis_connected_clients", &[], 3.0);
    exact("redis_memory_max_bytes", &[], 64.0 * 1024.0 * 1024.0);
    exact("redis_keyspace_hits_total", &[], 10.0);
    exact("redis_keyspace_misses_total", &[], 6.0);
    exact("redis_db_keys", &[("db", "db0")], 20.0);
    exact("redis_db_keys_expiring", &[("db", "db0")], 5.0);
    exact("redis_db_keys", &[("db", "db1")], 3.0);
    exact("redis_db_keys_expiring", &[("db", "db1")], 1.0);
    exact("redis_db_keys", &[("db", "db2")], 0.0);
    exact("redis_expired_keys_total", &[], 1.0);
    exact("redis_evicted_keys_total", &[], 0.0);
    exact("redis_commands_total", &[("cmd", "set")], 24.0);
    exact("redis_commands_total", &[("cmd", "get")], 16.0);
    for name in DASHBOARD {
        assert!(m.get(name, &[]).is_some(), "{label}: no {name}");
    }
    let used = m.must("redis_memory_used_bytes", &[]);
    assert!(used > 0.0 && used < 64.0 * 1024.0 * 1024.0, "{label}: used memory {used}");
    let set_secs = m.must("redis_commands_duration_seconds_total", &[("cmd", "set")]);
    assert!(set_secs > 0.0 && set_secs < 1.0, "{label}: SET took {set_secs} s in all");
    // Every command is in one cmd label; the total counts each once (the INFO being answered is
    // counted in neither).
    let processed = m.must("redis_commands_processed_total", &[]);
    assert_eq!(
        processed,
        m.sum("redis_commands_total"),
        "{label}: commands processed vs per-command calls"
    );
    assert!(processed >= 24.0 + 16.0, "{label}: {processed} commands processed");
    // Bytes: at least what our commands and their replies took, and INFO agrees (read after the
    // scrape, so at least as large).
    let net_in = m.must("redis_net_input_bytes_total", &[]);
    let net_out = m.must("redis_net_output_bytes_total", &[]);
    let sent = 24 * 40 + 16 * 20;
    let received = 24 * 5 + 10 * (100 + 8) + 6 * 5;
    assert!(net_in >= sent as f64 && net_in < 20_000.0, "{label}: net input {net_in}");
    assert!(net_out >= received as f64, "{label}: net output {net_out}");
    assert!(
        info_num("total_net_input_bytes") >= net_in,
        "{label}: INFO net input below the scrape's"
    );

    // Evictions: a maxmemory a little above what is used, then 2,000 more 1 KB values in db1.
    let limit = (info_num("used_memory") as u64 + 256 * 1024).to_string();
    query(&mut con0, &["CONFIG", "SET", "maxmemory", &limit]).unwrap();
    let big = "w".repeat(1024);
    for i in 0..2000 {
        query(&mut con1, &["SET", &format!("fill:{i}"), &big]).unwrap();
    }
    let m = exporter.scrape();
    let info = text(&query(&mut con0, &["INFO", "ALL"]).unwrap());
    let evicted: f64 = info_value(&info, "evicted_keys").unwrap().parse().unwrap();
    assert!(evicted > 0.0, "{label}: nothing evicted under maxmemory {limit}");
    assert_eq!(m.must("redis_evicted_keys_total", &[]), evicted, "{label}: evicted keys");
    assert_eq!(m.must("redis_memory_max_bytes", &[]), limit.parse::<f64>().unwrap(), "{label}");
    let used = m.must("redis_memory_used_bytes", &[]);
    assert!(
        used <= limit.parse::<f64>().unwrap() * 1.05,
        "{label}: used {used} over maxmemory {limit}"
    );
    let keys: f64 = ["db0", "db1"].iter().map(|db| m.must("redis_db_keys", &[("db", db)])).sum();
    assert_eq!(keys, 20.0 + 3.0 + 2000.0 - evicted, "{label}: keys left after evicting {evicted}");
    assert_eq!(m.must("redis_commands_total", &[("cmd", "set")]), 2024.0, "{label}");
    query(&mut con0, &["CONFIG", "SET", "maxmemory", "0"]).unwrap();

    // The exporter's log: no error or warning, and the commands it sent.
    let log = exporter.log();
    let bad: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("level=error") || l.contains("level=warn") || l.contains("level=fatal"))
        .collect();
    assert!(bad.is_empty(), "{label}: exporter logged {bad:#?}");
    run.commands_sent = log
        .iter()
        .filter_map(|l| l.split("running command: ").nth(1))
        .map(|c| c.trim_end_matches('"').to_string())
        .collect();
    for c in [
        "CLIENT [SETNAME redis_exporter]",
        "CONFIG [GET *]",
        "INFO [ALL]",
        "LATENCY [LATEST]",
        "SLOWLOG [LEN]",
        "SLOWLOG [GET 1]",
    ] {
        assert!(
            run.commands_sent.contains(c),
            "{label}: exporter did not send {c}: {:?}",
            run.commands_sent
        );
    }
    run
}

#[test]
fn prometheus_exporter_scrapes_respite() {
    if Command::new(EXPORTER).arg("-version").output().is_err() {
        eprintln!("{EXPORTER} not found; exporter test skipped (.ci/run installs prometheus-redis-exporter)");
        return;
    }
    let respite = common::RespiteProcess::start();
    let ours = scenario("respite", respite.port);
    eprintln!("respite: {} values checked, {} metric names", ours.exact.len(), ours.names.len());
    let Some(redis) = RedisServer::start() else {
        eprintln!("redis-server not found; exporter values not compared with Redis");
        return;
    };
    let theirs = scenario("redis", redis.port);
    assert_eq!(ours.exact, theirs.exact, "deterministic metric values differ from Redis's");
    assert_eq!(ours.commands_sent, theirs.commands_sent, "the exporter sent different commands");
    let only_redis: Vec<_> = theirs.names.difference(&ours.names).collect();
    let only_respite: Vec<_> = ours.names.difference(&theirs.names).collect();
    eprintln!("metric names only for Redis ({}): {only_redis:?}", only_redis.len());
    eprintln!("metric names only for respite ({}): {only_respite:?}", only_respite.len());
    for name in DASHBOARD {
        assert!(ours.names.contains(*name), "respite lacks dashboard metric {name}");
    }
    if ours.cmd_labels != theirs.cmd_labels {
        eprintln!(
            "note: redis_commands_total cmd labels differ after the same work:\n    redis:   {:?}\n    respite: {:?}",
            theirs.cmd_labels, ours.cmd_labels
        );
    }
}
