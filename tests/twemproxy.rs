//! twemproxy (Debian's nutcracker, ketama over murmur; fnv1a_64 put all 60 test keys on one
//! instance) in front of three respite instances: GET/SET/MGET/DEL
//! through the proxy, keys spread over all three. Skips with a notice when nutcracker is absent.
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{resp, Raw};

fn nutcracker() -> Option<String> {
    ["nutcracker", "/usr/sbin/nutcracker"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .stderr(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .is_ok()
        })
        .map(str::to_string)
}

struct Proxy(std::process::Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_set_mget_del_through_twemproxy_over_three_instances() {
    let Some(bin) = nutcracker() else {
        eprintln!("nutcracker not found; twemproxy test skipped (.ci/run installs it)");
        return;
    };
    let mut backends = Vec::new();
    for _ in 0..3 {
        backends.push(common::start().await);
    }
    let port = common::free_port();
    let dir = std::env::temp_dir().join(format!("respite-twemproxy-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, b)| format!("   - {}:1 cache{i}\n", b.addr))
        .collect();
    let conf = format!(
        "alpha:\n  listen: 127.0.0.1:{port}\n  hash: murmur\n  distribution: ketama\n  redis: true\n  auto_eject_hosts: false\n  servers:\n{servers}"
    );
    let conf_path = dir.join("nutcracker.yml");
    std::fs::write(&conf_path, conf).unwrap();
    let _proxy = Proxy(
        Command::new(&bin)
            .args([
                "-c",
                conf_path.to_str().unwrap(),
                "-s",
                &common::free_port().to_string(),
                "-o",
                dir.join("log").to_str().unwrap(),
            ])
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nutcracker did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut c = Raw::connect(addr).await;
    for i in 0..60 {
        let (k, v) = (format!("user:{i}"), format!("value-{i}"));
        c.roundtrip(&resp(&[b"SET", k.as_bytes(), v.as_bytes()]), b"+OK\r\n").await;
    }
    c.roundtrip(&resp(&[b"GET", b"user:7"]), b"$7\r\nvalue-7\r\n").await;
    c.roundtrip(
        &resp(&[b"MGET", b"user:1", b"user:2", b"nosuch", b"user:59"]),
        b"*4\r\n$7\r\nvalue-1\r\n$7\r\nvalue-2\r\n$-1\r\n$8\r\nvalue-59\r\n",
    )
    .await;
    c.roundtrip(&resp(&[b"DEL", b"user:1", b"user:2", b"nosuch"]), b":2\r\n").await;
    c.roundtrip(&resp(&[b"EXISTS", b"user:1"]), b":0\r\n").await;
    c.roundtrip(&resp(&[b"INCR", b"counter"]), b":1\r\n").await;
    c.roundtrip(&resp(&[b"EXPIRE", b"counter", b"100"]), b":1\r\n").await;
    c.roundtrip(&resp(&[b"TTL", b"counter"]), b":100\r\n").await;
    // Ketama spread the keys over the instances; each key lives on exactly one.
    let counts: Vec<usize> = backends.iter().map(|b| b.server.keyspace.dbsize(0)).collect();
    eprintln!("keys per instance: {counts:?}");
    assert!(counts.iter().filter(|&&n| n > 0).count() >= 2, "{counts:?}");
    assert_eq!(counts.iter().sum::<usize>(), 59);
    for b in backends {
        b.stop().await;
    }
}
