//! Graceful shutdown under load: the respite-server binary gets SIGTERM while 1,000 clients
//! pipeline commands. Every byte a client received must parse as complete replies, in the order
//! of its commands (a frame cut at the end of a stream fails the test), and the process exits 0
//! within a few seconds.
//!
//! Needs about 1,000 file descriptors in this process and as many in the server (`ulimit -n`);
//! with fewer the client count is lowered and said so.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_respite-server");
const CLIENTS: usize = 1000;
/// Commands per pipelined write: SET, INCR, GET repeated.
const ROUNDS_PER_BATCH: usize = 20;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn open_files_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    }
}

/// Starts the binary, waits for "Ready to accept connections", and keeps draining its log.
fn spawn(port: u16) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(BIN)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("Ready to accept connections") {
                let _ = tx.send(());
            }
            lines.lock().unwrap().push(line);
        }
    });
    if rx.recv_timeout(Duration::from_secs(10)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("server did not become ready: {:?}", log.lock().unwrap());
    }
    (child, log)
}

fn batch(client: usize, round: &mut u64) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..ROUNDS_PER_BATCH {
        let key = format!("k:{client}");
        let val = format!("v{round}");
        for args in [vec!["SET", &key, &val], vec!["INCR", &format!("c:{client}")], vec!["GET", &key]] {
            out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in args {
                out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
            }
        }
        *round += 1;
    }
    out
}

/// What one client saw.
struct Seen {
    sent_commands: u64,
    bytes: Vec<u8>,
    reset: bool,
}

/// Pipelines batches of commands, at most two batches ahead of the replies, reading everything
/// the server sends until it closes the connection.
async fn client(id: usize, port: u16, started: Arc<AtomicU64>, mut go: tokio::sync::watch::Receiver<bool>) -> Seen {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let _ = stream.set_nodelay(true);
    // Connected and served before the load starts: a slow (debug) server under load is slow to
    // pick up new connections, which is not what this test is about.
    stream.write_all(b"PING\r\n").await.expect("ping");
    let mut pong = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(20), stream.read_exact(&mut pong))
        .await
        .expect("PONG within 20 s")
        .expect("PONG");
    assert_eq!(&pong, b"+PONG\r\n");
    started.fetch_add(1, Relaxed);
    go.wait_for(|g| *g).await.unwrap();
    let per_batch = 3 * ROUNDS_PER_BATCH as u64;
    let (mut round, mut sent_commands, mut replies, mut pos) = (0u64, 0u64, 0u64, 0usize);
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut reset = false;
    let mut writable = true;
    loop {
        while writable && sent_commands < replies + 2 * per_batch {
            if stream.write_all(&batch(id, &mut round)).await.is_err() {
                writable = false;
                break;
            }
            sent_commands += per_batch;
        }
        match tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                bytes.extend_from_slice(&buf[..n]);
                // Count the replies complete so far; `check_stream` judges them at the end.
                while let Ok(Some((_, used))) = decode(&bytes[pos..]) {
                    pos += used;
                    replies += 1;
                }
            }
            Ok(Err(_)) => {
                reset = true;
                break;
            }
            Err(_) => panic!("client {id}: nothing for 20 s"),
        }
    }
    Seen {
        sent_commands,
        bytes,
        reset,
    }
}

/// Parses a client's stream: whole frames only, each the reply its command expects.
fn check_stream(id: usize, seen: &Seen) -> Result<u64, String> {
    let mut pos = 0;
    let mut n = 0u64;
    while pos < seen.bytes.len() {
        let (frame, used) = match decode(&seen.bytes[pos..]) {
            Ok(Some(f)) => f,
            Ok(None) => {
                return Err(format!(
                    "client {id}: truncated reply after {n} complete ones: {:?}",
                    String::from_utf8_lossy(&seen.bytes[pos..seen.bytes.len().min(pos + 80)])
                ))
            }
            Err(e) => return Err(format!("client {id}: unparseable reply after {n}: {e:?}")),
        };
        let ok = match (n % 3, &frame) {
            (0, OwnedFrame::SimpleString(s)) => s == b"OK",
            (1, OwnedFrame::Integer(i)) => *i == (n / 3 + 1) as i64,
            (2, OwnedFrame::BulkString(v)) => v == format!("v{}", n / 3).as_bytes(),
            _ => false,
        };
        if !ok {
            return Err(format!("client {id}: reply {n} is {frame:?}"));
        }
        pos += used;
        n += 1;
    }
    if n > seen.sent_commands {
        return Err(format!("client {id}: {n} replies to {} commands", seen.sent_commands));
    }
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_1000_clients_pipeline() {
    // Each client needs a descriptor here and one in the server; keep headroom for the rest.
    let limit = open_files_limit();
    let clients = CLIENTS.min(limit.saturating_sub(100) as usize);
    if clients < CLIENTS {
        println!("ulimit -n is {limit}: running {clients} clients instead of {CLIENTS}");
    }
    let port = free_port();
    let (mut child, log) = spawn(port);
    let started = Arc::new(AtomicU64::new(0));
    let (go_tx, go) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(clients);
    for id in 0..clients {
        tasks.push(tokio::spawn(client(id, port, started.clone(), go.clone())));
        if id % 100 == 99 {
            // Stay under the listen backlog while connecting.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Every client is connected and has been served once; then all start pipelining.
    let deadline = Instant::now() + Duration::from_secs(20);
    while started.load(Relaxed) < clients as u64 {
        assert!(
            Instant::now() < deadline,
            "only {} of {clients} clients connected",
            started.load(Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    go_tx.send_replace(true);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // SAFETY: signalling the child we started.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(8) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no exit 8 s after SIGTERM; log: {:?}", log.lock().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let exit_after = signalled.elapsed();

    let mut failures = Vec::new();
    let (mut replies, mut commands, mut resets) = (0u64, 0u64, 0usize);
    for (id, t) in tasks.into_iter().enumerate() {
        let seen = t.await.unwrap();
        commands += seen.sent_commands;
        resets += seen.reset as usize;
        match check_stream(id, &seen) {
            Ok(n) => replies += n,
            Err(e) => failures.push(e),
        }
    }
    println!(
        "{clients} clients, {commands} commands sent, {replies} complete replies, {resets} connections reset; exit {:?} {:.2} s after SIGTERM",
        status.code(),
        exit_after.as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {clients} clients saw an incomplete or wrong reply stream:\n{}",
        failures.len(),
        failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM; log: {:?}", log.lock().unwrap());
    assert!(exit_after < Duration::from_secs(5), "exit took {exit_after:?}");
    assert!(replies > 0);
}
