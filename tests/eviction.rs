//! maxmemory and the eviction policies, against the real binary: used_memory is process-wide, so
//! each test gets its own server process and nothing else allocates in it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::Commands;

const BIN: &str = env!("CARGO_BIN_EXE_respite-server");

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut all = vec!["--port".to_string(), port.to_string(), "--bind".into(), "127.0.0.1".into()];
        all.extend(args.iter().map(|s| s.to_string()));
        let mut child = Command::new(BIN)
            .args(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match lines.next() {
                Some(Ok(l)) if l.contains("Ready to accept connections") => break,
                Some(_) => {}
                None => break,
            }
        }
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Server { child, port }
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn info_field(c: &mut redis::Connection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("all").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO"))
        .trim()
        .parse()
        .unwrap()
}

fn fill(c: &mut redis::Connection, prefix: &str, n: usize, ttl: Option<u64>) -> redis::RedisResult<()> {
    let value = "x".repeat(200);
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut p = redis::pipe();
        for i in chunk {
            match ttl {
                Some(t) => p.cmd("SET").arg(format!("{prefix}{i}")).arg(&value).arg("EX").arg(t).ignore(),
                None => p.cmd("SET").arg(format!("{prefix}{i}")).arg(&value).ignore(),
            };
        }
        p.query::<()>(c)?;
    }
    Ok(())
}

/// Base used memory of an empty server plus `extra` bytes: the limit for a test.
fn limit_above_baseline(c: &mut redis::Connection, extra: u64) -> u64 {
    info_field(c, "used_memory") + extra
}

#[test]
fn allkeys_lru_holds_the_limit_and_keeps_recently_used_keys() {
    let s = Server::start(&["--maxmemory-policy", "allkeys-lru"]);
    let mut c = s.conn();
    let limit = limit_above_baseline(&mut c, 2 << 20);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut c).unwrap();
    fill(&mut c, "hot:", 1000, None).unwrap();
    let mut max_seen = 0;
    for round in 0..20 {
        // Keep the hot keys recently used, flood with cold ones.
        for i in 0..1000 {
            let _: Option<String> = c.get(format!("hot:{i}")).unwrap();
        }
        fill(&mut c, &format!("cold{round}:"), 2000, None).unwrap();
        max_seen = max_seen.max(info_field(&mut c, "used_memory"));
    }
    assert!(info_field(&mut c, "evicted_keys") > 10_000);
    // Within one command's worth (plus this test's own request buffers) of the limit.
    assert!(max_seen <= limit + 64 * 1024, "used {max_seen} > limit {limit}");
    let hot: usize = (0..1000).filter(|i| c.exists::<_, bool>(format!("hot:{i}")).unwrap()).count();
    assert!(hot >= 990, "only {hot} of 1000 hot keys survived");
}

#[test]
fn noeviction_refuses_writes_with_oom_but_serves_reads_and_del() {
    let s = Server::start(&["--maxmemory-policy", "noeviction"]);
    let mut c = s.conn();
    let limit = limit_above_baseline(&mut c, 512 * 1024);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut c).unwrap();
    let err = fill(&mut c, "k", 10_000, None).unwrap_err();
    assert_eq!(err.to_string(), "OOM: command not allowed when used memory > 'maxmemory'.");
    let v: Option<String> = c.get("k0").unwrap();
    assert!(v.is_some());
    let n: i64 = c.del("k0").unwrap();
    assert_eq!(n, 1);
    assert_eq!(info_field(&mut c, "evicted_keys"), 0);
    let mut raw = c;
    let r: redis::RedisResult<()> = redis::cmd("MULTI").query(&mut raw);
    r.unwrap();
    let queued: redis::RedisResult<()> = redis::cmd("SET").arg("x").arg("y".repeat(600 * 1024)).query(&mut raw);
    assert!(queued.unwrap_err().to_string().starts_with("OOM"));
    let exec: redis::RedisResult<()> = redis::cmd("EXEC").query(&mut raw);
    let e = exec.unwrap_err();
    assert_eq!(e.code(), Some("EXECABORT"), "{e}");
}

#[test]
fn volatile_policies_spare_keys_without_ttl() {
    for policy in ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"] {
        let s = Server::start(&["--maxmemory-policy", policy]);
        let mut c = s.conn();
        let limit = limit_above_baseline(&mut c, 1 << 20);
        let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut c).unwrap();
        fill(&mut c, "keep:", 1000, None).unwrap();
        fill(&mut c, "vol:", 20_000, Some(1000)).unwrap();
        assert!(info_field(&mut c, "evicted_keys") > 0, "{policy} evicted nothing");
        let kept: usize = (0..1000).filter(|i| c.exists::<_, bool>(format!("keep:{i}")).unwrap()).count();
        assert_eq!(kept, 1000, "{policy} evicted keys without a TTL");
        // Once only keys without TTL are left, writes get OOM as in Redis.
        let r = fill(&mut c, "more:", 50_000, None);
        assert!(r.is_err(), "{policy}: writes beyond the limit with nothing evictable must fail");
    }
}

#[test]
fn volatile_ttl_evicts_soonest_expiring_first() {
    let s = Server::start(&["--maxmemory-policy", "volatile-ttl", "--maxmemory-samples", "10"]);
    let mut c = s.conn();
    let limit = limit_above_baseline(&mut c, 1 << 20);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut c).unwrap();
    fill(&mut c, "late:", 1000, Some(100_000)).unwrap();
    fill(&mut c, "soon:", 20_000, Some(1000)).unwrap();
    let late: usize = (0..1000).filter(|i| c.exists::<_, bool>(format!("late:{i}")).unwrap()).count();
    assert!(late >= 950, "only {late} long-TTL keys survived");
}

#[test]
fn allkeys_lfu_keeps_frequently_used_keys_and_reports_freq() {
    let s = Server::start(&["--maxmemory-policy", "allkeys-lfu"]);
    let mut c = s.conn();
    fill(&mut c, "freq:", 200, None).unwrap();
    for _ in 0..50 {
        for i in 0..200 {
            let _: Option<String> = c.get(format!("freq:{i}")).unwrap();
        }
    }
    let f: i64 = redis::cmd("OBJECT").arg("FREQ").arg("freq:1").query(&mut c).unwrap();
    assert!(f > 5, "freq {f}");
    let limit = limit_above_baseline(&mut c, 1 << 20);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut c).unwrap();
    fill(&mut c, "once:", 30_000, None).unwrap();
    let kept: usize = (0..200).filter(|i| c.exists::<_, bool>(format!("freq:{i}")).unwrap()).count();
    assert!(kept >= 190, "only {kept} frequent keys survived");
    let e: redis::RedisResult<i64> = redis::cmd("OBJECT").arg("IDLETIME").arg("freq:1").query(&mut c);
    assert!(e.unwrap_err().to_string().contains("An LFU maxmemory policy is selected"));
}

#[test]
fn allkeys_random_evicts_and_object_idletime_tracks_lru() {
    let s = Server::start(&["--maxmemory-policy", "allkeys-random"]);
    let mut c = s.conn();
    let limit = limit_above_baseline(&mut c, 1 << 20);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut c).unwrap();
    fill(&mut c, "r:", 20_000, None).unwrap();
    assert!(info_field(&mut c, "evicted_keys") > 5000);
    assert!(info_field(&mut c, "used_memory") <= limit + 64 * 1024);
    let idle: i64 = redis::cmd("OBJECT").arg("IDLETIME").arg("r:19999").query(&mut c).unwrap();
    assert!((0..=2).contains(&idle));
    let e: redis::RedisResult<i64> = redis::cmd("OBJECT").arg("FREQ").arg("r:19999").query(&mut c);
    assert!(e.unwrap_err().to_string().contains("An LFU maxmemory policy is not selected"));
}

#[test]
fn config_set_lower_maxmemory_evicts_down_at_once() {
    let s = Server::start(&["--maxmemory-policy", "allkeys-lru"]);
    let mut c = s.conn();
    let base = info_field(&mut c, "used_memory");
    fill(&mut c, "k", 20_000, None).unwrap();
    let used = info_field(&mut c, "used_memory");
    assert!(used > base + (4 << 20));
    let limit = base + (used - base) / 4;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(format!("{limit}"))
        .query(&mut c)
        .unwrap();
    let after = info_field(&mut c, "used_memory");
    assert!(after <= limit + 64 * 1024, "used {after} > {limit}");
    let keys: u64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert!(keys < 8000, "{keys} keys left");
    assert_eq!(info_field(&mut c, "evicted_keys"), 20_000 - keys);
    let info: String = redis::cmd("INFO").arg("memory").query(&mut c).unwrap();
    assert!(info.contains(&format!("maxmemory:{limit}\r\n")));
    assert!(info.contains("maxmemory_policy:allkeys-lru\r\n"));
    for f in [
        "used_memory_human:",
        "used_memory_rss_human:",
        "used_memory_peak_human:",
        "maxmemory_human:",
        "used_memory_dataset:",
        "mem_fragmentation_ratio:",
    ] {
        assert!(info.contains(f), "{f}");
    }
}

/// used_memory is the allocator's own count; MEMORY USAGE, an estimate from respite's layout, must
/// agree with it within 5% over many keys.
#[test]
fn memory_usage_agrees_with_the_allocator_within_5_percent() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let before = info_field(&mut c, "used_memory");
    let n = 50_000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut p = redis::pipe();
        for i in chunk {
            p.cmd("SET").arg(format!("key:{i:012}")).arg("v".repeat(32)).ignore();
        }
        p.query::<()>(&mut c).unwrap();
    }
    let after = info_field(&mut c, "used_memory");
    let mut estimated = 0u64;
    for i in (0..n).step_by(100) {
        let u: u64 = redis::cmd("MEMORY").arg("USAGE").arg(format!("key:{i:012}")).query(&mut c).unwrap();
        estimated += u * 100;
    }
    let real = after - before;
    let ratio = estimated as f64 / real as f64;
    assert!(
        (0.95..=1.05).contains(&ratio),
        "MEMORY USAGE sum {estimated} vs allocator {real} (ratio {ratio:.3})"
    );
}

#[test]
fn stats_counters_count_where_redis_counts() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let _: () = c.set("a", "1").unwrap();
    let _: Option<String> = c.get("a").unwrap();
    let _: Option<String> = c.get("missing").unwrap();
    let _: i64 = c.exists("a").unwrap();
    let _: () = c.set("b", "1").unwrap(); // writes count neither
    let _: i64 = c.incr("a", 1).unwrap();
    assert_eq!(info_field(&mut c, "keyspace_hits"), 2);
    assert_eq!(info_field(&mut c, "keyspace_misses"), 1);
    let _: () = redis::cmd("SET").arg("t").arg("v").arg("PX").arg(1).query(&mut c).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    let _: Option<String> = c.get("t").unwrap();
    assert_eq!(info_field(&mut c, "expired_keys"), 1);
    assert_eq!(info_field(&mut c, "keyspace_misses"), 2);
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    assert_eq!(info_field(&mut c, "keyspace_hits"), 0);
    assert_eq!(info_field(&mut c, "expired_keys"), 0);
}
