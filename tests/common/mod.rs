//! Shared test helpers: a respite server in this process on 127.0.0.1:0, raw RESP connections,
//! and a redis-server from PATH for differential tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use respite::{Config, Handle};

/// Starts respite in-process with default settings plus `directives` (as on the command line).
pub async fn start_with(directives: &[(&str, &str)]) -> Handle {
    let lines: Vec<Vec<String>> = directives.iter().map(|(k, v)| vec![k.to_string(), v.to_string()]).collect();
    let config = Config::load(None, &lines).expect("valid test config");
    respite::start(config).await.expect("server starts")
}

pub async fn start() -> Handle {
    start_with(&[]).await
}

/// An async redis-rs connection to `addr`.
pub async fn client(addr: SocketAddr) -> redis::aio::MultiplexedConnection {
    let c = redis::Client::open(format!("redis://{addr}/")).unwrap();
    c.get_multiplexed_async_connection().await.unwrap()
}

/// A raw TCP connection for byte-level assertions.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads until `n` bytes arrived, or 5 s passed, or nothing more came for 200 ms after some did.
    pub async fn read_n(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while got < n && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(200), self.stream.read(&mut buf[got..])).await {
                Ok(Ok(0)) => break,
                Ok(Ok(k)) => got += k,
                Ok(Err(_)) => break,
                Err(_) if got > 0 => break,
                Err(_) => {}
            }
        }
        buf.truncate(got);
        buf
    }

    /// Sends `request` and asserts the reply bytes are exactly `expected`.
    pub async fn roundtrip(&mut self, request: &[u8], expected: &[u8]) {
        self.send(request).await;
        let got = self.read_n(expected.len()).await;
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "reply to {:?}",
            String::from_utf8_lossy(request)
        );
    }

    /// True once the server has closed the connection (read returns 0 within 2 s).
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(2), self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A real redis-server on a free loopback port, if one is on PATH.
pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    pub fn start() -> Option<RedisServer> {
        Command::new("redis-server").arg("--version").output().ok()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(RedisServer { port, child });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound and released; fine for tests that start a server on it at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The respite-server binary, started as harnesses start redis-server, on a free loopback port;
/// killed on drop.
pub struct RespiteProcess {
    pub port: u16,
    child: Child,
}

impl RespiteProcess {
    pub fn start() -> RespiteProcess {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_respite-server"))
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn respite-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("respite-server did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        RespiteProcess { port, child }
    }
}

impl Drop for RespiteProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `redis-cli` printed.
pub struct CliOutput {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `redis-cli -h 127.0.0.1 -p PORT args...` feeding `stdin`; killed (and the test failed) after
/// `limit`. Blocking: call it from a plain test or `spawn_blocking`.
pub fn redis_cli(port: u16, args: &[&str], stdin: &str, limit: Duration) -> CliOutput {
    use std::io::{Read, Write};
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("redis-cli {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    writer.join().unwrap();
    CliOutput {
        stdout: String::from_utf8(out.join().unwrap()).expect("utf-8 output"),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
    }
}
