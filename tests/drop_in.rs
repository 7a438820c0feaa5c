//! respite-server as a drop-in for harnesses that start a Redis binary themselves
//! (redis-memory-server and the like): started with exactly the arguments they pass,
//! `--save "" --appendonly no --bind 127.0.0.1 --port N`, it prints `Ready to accept connections`
//! on stdout, answers PING, and does so quickly. A port already in use is reported with
//! `Address already in use` on stdout (what redis-memory-server watches for to pick another port).
//!
//! The start-up test measures 20 starts (spawn -> ready line, spawn -> first PONG), prints the
//! medians (and redis-server's, when on PATH, for scale) and asserts a generous bound.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_respite-server");
const STARTS: usize = 20;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn harness_args(port: u16) -> Vec<String> {
    [
        "--save",
        "",
        "--appendonly",
        "no",
        "--bind",
        "127.0.0.1",
        "--port",
        &port.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One PING on a fresh connection; true on +PONG.
fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

fn stop(mut child: Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts `program` as a harness does; returns (spawn -> ready line, spawn -> first PONG) and
/// the stdout lines up to the ready line.
fn timed_start(program: &str) -> (Duration, Duration, Vec<String>) {
    let port = free_port();
    let t0 = Instant::now();
    let mut child = Command::new(program)
        .args(harness_args(port))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let deadline = t0 + Duration::from_secs(10);
    let mut pong = None;
    while pong.is_none() {
        assert!(Instant::now() < deadline, "{program} did not answer PING within 10 s");
        if ping(port) {
            pong = Some(t0.elapsed());
        } else {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let mut lines = Vec::new();
    let ready = loop {
        let (at, line) = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("{program}: no `Ready to accept connections` on stdout: {lines:?}"));
        let is_ready = line.contains("Ready to accept connections");
        lines.push(line);
        if is_ready {
            break at - t0;
        }
    };
    stop(child);
    (ready, pong.unwrap(), lines)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[test]
fn starts_like_redis_server_for_harnesses_and_quickly() {
    let (mut ready, mut pong) = (Vec::new(), Vec::new());
    for i in 0..STARTS {
        let (r, p, lines) = timed_start(BIN);
        if i == 0 {
            let log = lines.join("\n");
            assert!(log.contains("Ready to accept connections"), "{log}");
        }
        ready.push(r);
        pong.push(p);
    }
    let (ready, pong) = (median(ready), median(pong));
    eprintln!(
        "respite-server start-up ({}, median of {STARTS}): ready line {}, first PONG {}",
        if cfg!(debug_assertions) { "debug build" } else { "release build" },
        ms(ready),
        ms(pong)
    );
    if Command::new("redis-server").arg("--version").output().is_ok() {
        let (mut r2, mut p2) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let (r, p, _) = timed_start("redis-server");
            r2.push(r);
            p2.push(p);
        }
        eprintln!(
            "redis-server start-up (median of 5): ready line {}, first PONG {}",
            ms(median(r2)),
            ms(median(p2))
        );
    }
    // The target is well under 50 ms; the bound leaves room for a loaded CI machine.
    assert!(ready < Duration::from_millis(500), "median start to ready line {}", ms(ready));
    assert!(pong < Duration::from_millis(500), "median start to first PONG {}", ms(pong));
}

#[test]
fn port_in_use_is_reported_on_stdout() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(BIN).args(harness_args(port)).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("Address already in use"), "stdout: {stdout}");
    assert!(!stdout.contains("Ready to accept connections"), "{stdout}");
}
