//! Soak: thousands of concurrent clients against one respite-server on loopback, well-behaved and
//! hostile at once, then checks that nothing crashed, leaked or lost a confirmed write.
//!
//! ```sh
//! cargo bench --bench soak                          # starts the release binary on a free port
//! cargo bench --bench soak -- --clients 5000 --secs 45
//! cargo bench --bench soak -- --port 6379           # an already running server (no maxmemory!)
//! ```
//!
//! Options: `--clients N` (default 2000: 80% well-behaved, 20% hostile), `--secs S` (load phase,
//! default 25), `--max-commands N` (stop the load after N confirmed commands, default 20,000,000),
//! `--port P` (use a running server instead of starting one; it must be on this host, without
//! maxmemory, and its data is flushed at the end).
//!
//! The clients:
//! * well-behaved (80%): pipelines of 1-16 mixed commands (SET, GET, INCR, DEL, EXPIRE 3600, MSET,
//!   SET EX 1) on keys of their own, each reply checked against a model of what the client wrote;
//! * hostile (20%, reconnecting after each attempt), in five kinds: disconnect mid-pipeline,
//!   disconnect mid-frame (including a huge declared bulk length trickled a few bytes at a time),
//!   garbage and malformed frames, pipelining and never reading, and client-side caching that
//!   never reads its invalidations (RESP3 tracking, BCAST on every key or the keys it read).
//!
//! Afterwards: the server answers PING, `connected_clients` is back to 1, every key whose write got
//! a confirmed reply holds its last confirmed value (keys with a 1 s TTL excepted), and, once the
//! data is flushed, RSS and used_memory are back near where they started. It prints the figures
//! and exits non-zero if any check fails.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IO_TIMEOUT: Duration = Duration::from_secs(15);

struct Options {
    clients: usize,
    secs: u64,
    max_commands: u64,
    port: Option<u16>,
}

fn options() -> Options {
    let mut o = Options {
        clients: 2000,
        secs: 25,
        max_commands: 20_000_000,
        port: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match args[i].as_str() {
            "--clients" => o.clients = value().expect("--clients N") as usize,
            "--secs" => o.secs = value().expect("--secs S"),
            "--max-commands" => o.max_commands = value().expect("--max-commands N"),
            "--port" => o.port = Some(value().expect("--port P") as u16),
            // `cargo bench` passes --bench (and filters); nothing to do with them.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

#[derive(Default)]
struct Counters {
    commands: AtomicU64,
    bad_inputs: AtomicU64,
    hostile_connections: AtomicU64,
    /// A well-behaved client's reply that did not match what it had written.
    wrong_replies: AtomicU64,
    /// A well-behaved client whose connection failed.
    dropped_clients: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    fn error(&self, e: String) {
        let mut first = self.first_error.lock().unwrap();
        if first.is_none() {
            *first = Some(e);
        }
    }
}

fn cmd(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn connect(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        tokio::time::timeout(IO_TIMEOUT, self.stream.write_all(bytes))
            .await
            .map_err(|_| std::io::Error::other("write timed out"))?
    }

    async fn reply(&mut self) -> std::io::Result<OwnedFrame> {
        loop {
            match decode(&self.buf) {
                Ok(Some((frame, used))) => {
                    self.buf.drain(..used);
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(format!("bad reply: {e:?}"))),
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = tokio::time::timeout(IO_TIMEOUT, self.stream.read(&mut chunk))
                .await
                .map_err(|_| std::io::Error::other("reply timed out"))??;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn call(&mut self, args: &[&[u8]]) -> std::io::Result<OwnedFrame> {
        let mut b = Vec::new();
        cmd(&mut b, args);
        self.send(&b).await?;
        self.reply().await
    }
}

/// What a well-behaved client knows it wrote: key -> Some(value) or None (deleted), counter value.
#[derive(Default)]
struct Model {
    id: usize,
    keys: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Keys given a 1 s TTL: not checked (TTL may have removed them).
    volatile: std::collections::HashSet<Vec<u8>>,
    counter: i64,
}

enum Op {
    Set(Vec<u8>, Vec<u8>),
    SetEx(Vec<u8>),
    Get(Vec<u8>),
    Incr,
    Del(Vec<u8>),
    Expire(Vec<u8>),
    Mset(Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>),
}

async fn well_behaved(id: usize, port: u16, stop: Arc<AtomicBool>, c: Arc<Counters>) -> Model {
    let mut model = Model { id, ..Model::default() };
    let mut conn = match Conn::connect(port).await {
        Ok(conn) => conn,
        Err(e) => {
            c.dropped_clients.fetch_add(1, Relaxed);
            c.error(format!("client {id}: connect: {e}"));
            return model;
        }
    };
    let mut rng = fastrand::Rng::with_seed(id as u64);
    let ctr = format!("soak:{id}:ctr").into_bytes();
    let mut seq = 0u64;
    while !stop.load(Relaxed) {
        let n = rng.usize(1..=16);
        let mut ops = Vec::with_capacity(n);
        let mut bytes = Vec::new();
        for _ in 0..n {
            let key = format!("soak:{id}:{}", rng.usize(..48)).into_bytes();
            seq += 1;
            let val = format!("v{id}:{seq}:{}", "x".repeat(rng.usize(..64))).into_bytes();
            let op = match rng.u8(..10) {
                0..=2 => Op::Set(key, val),
                3 | 4 => Op::Get(key),
                5 => Op::Incr,
                6 => Op::Del(key),
                7 => Op::Expire(key),
                8 => {
                    let key2 = format!("soak:{id}:{}", rng.usize(..48)).into_bytes();
                    Op::Mset(key, val.clone(), key2, val)
                }
                _ => Op::SetEx(key),
            };
            match &op {
                Op::Set(k, v) => cmd(&mut bytes, &[b"SET", k, v]),
                Op::SetEx(k) => cmd(&mut bytes, &[b"SET", k, b"short-lived", b"EX", b"1"]),
                Op::Get(k) => cmd(&mut bytes, &[b"GET", k]),
                Op::Incr => cmd(&mut bytes, &[b"INCR", &ctr]),
                Op::Del(k) => cmd(&mut bytes, &[b"DEL", k]),
                Op::Expire(k) => cmd(&mut bytes, &[b"EXPIRE", k, b"3600"]),
                Op::Mset(k1, v1, k2, v2) => cmd(&mut bytes, &[b"MSET", k1, v1, k2, v2]),
            }
            ops.push(op);
        }
        if let Err(e) = conn.send(&bytes).await {
            c.dropped_clients.fetch_add(1, Relaxed);
            c.error(format!("client {id}: send: {e}"));
            return model;
        }
        for op in ops {
            let reply = match conn.reply().await {
                Ok(r) => r,
                Err(e) => {
                    c.dropped_clients.fetch_add(1, Relaxed);
                    c.error(format!("client {id}: reply: {e}"));
                    return model;
                }
            };
            c.commands.fetch_add(1, Relaxed);
            let ok = |r: &OwnedFrame| matches!(r, OwnedFrame::SimpleString(s) if s == b"OK");
            let good = match op {
                Op::Set(k, v) => {
                    let good = ok(&reply);
                    if good {
                        model.volatile.remove(&k);
                        model.keys.insert(k, Some(v));
                    }
                    good
                }
                Op::SetEx(k) => {
                    model.keys.remove(&k);
                    model.volatile.insert(k);
                    ok(&reply)
                }
                Op::Get(k) => {
                    if model.volatile.contains(&k) {
                        true
                    } else {
                        match (model.keys.get(&k), &reply) {
                            (Some(Some(v)), OwnedFrame::BulkString(got)) => v == got,
                            (None | Some(None), OwnedFrame::Null) => true,
                            _ => false,
                        }
                    }
                }
                Op::Incr => {
                    model.counter += 1;
                    matches!(reply, OwnedFrame::Integer(n) if n == model.counter)
                }
                Op::Del(k) => {
                    let was_there = matches!(model.keys.get(&k), Some(Some(_)));
                    let good = match (&reply, model.volatile.contains(&k)) {
                        (OwnedFrame::Integer(n), true) => *n == 0 || *n == 1,
                        (OwnedFrame::Integer(n), false) => *n == was_there as i64,
                        _ => false,
                    };
                    model.volatile.remove(&k);
                    model.keys.insert(k, None);
                    good
                }
                Op::Expire(_) => matches!(reply, OwnedFrame::Integer(0 | 1)),
                Op::Mset(k1, v1, k2, v2) => {
                    let good = ok(&reply);
                    if good {
                        model.volatile.remove(&k1);
                        model.volatile.remove(&k2);
                        model.keys.insert(k1, Some(v1));
                        model.keys.insert(k2, Some(v2));
                    }
                    good
                }
            };
            if !good {
                c.wrong_replies.fetch_add(1, Relaxed);
                c.error(format!("client {id}: unexpected reply {reply:?}"));
            }
        }
    }
    model
}

/// Malformed or hostile requests; each ends with the server closing or the client leaving.
const GARBAGE: &[&[u8]] = &[
    b"*x\r\n",
    b"*1\r\n$-5\r\n",
    b"*1\r\n$abc\r\n",
    b"*1\r\n+PING\r\n",
    b"*-1\r\n*2\r\n$3\r\nGET\r\n:1\r\n",
    b"*2147483648\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$99999999999999999999\r\n",
    b"SET k \"unbalanced\r\n",
    b"SET k 'x'y\r\n",
    b"\x00\x01\x02\xff\xfe\r\n",
    b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",
    b"HELLO 4\r\nAUTH nobody nothing\r\nSELECT 99\r\nFOO bar\r\n",
];

async fn hostile(id: usize, port: u16, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let mut rng = fastrand::Rng::with_seed(0x5eed ^ id as u64);
    let kind = id % 5;
    while !stop.load(Relaxed) {
        let Ok(mut conn) = Conn::connect(port).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        c.hostile_connections.fetch_add(1, Relaxed);
        match kind {
            // Disconnect mid-pipeline: a pipeline of writes, a few replies read, then gone.
            0 => {
                let mut b = Vec::new();
                for i in 0..rng.usize(10..200) {
                    cmd(&mut b, &[b"SET", format!("x:{id}:{i}").as_bytes(), b"value"]);
                    cmd(&mut b, &[b"INCR", format!("x:{id}:n").as_bytes()]);
                }
                let _ = conn.send(&b).await;
                for _ in 0..rng.usize(0..5) {
                    if conn.reply().await.is_err() {
                        break;
                    }
                }
            }
            // Disconnect mid-frame, or declare a huge bulk and trickle bytes of it.
            1 => {
                let mut b = Vec::new();
                cmd(&mut b, &[b"SET", format!("y:{id}").as_bytes(), b"0123456789"]);
                if rng.bool() {
                    let cut = rng.usize(1..b.len());
                    let _ = conn.send(&b[..cut]).await;
                } else {
                    let _ = conn.send(b"*2\r\n$3\r\nGET\r\n$536870000\r\n").await;
                    for _ in 0..rng.usize(1..10) {
                        let _ = conn.send(b"abcdefgh").await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                c.bad_inputs.fetch_add(1, Relaxed);
            }
            // Garbage: a malformed frame from the list, or random bytes, then read until closed.
            2 => {
                let b: Vec<u8> = if rng.bool() {
                    GARBAGE[rng.usize(..GARBAGE.len())].to_vec()
                } else {
                    (0..rng.usize(1..512)).map(|_| rng.u8(..)).collect()
                };
                let _ = conn.send(&b).await;
                c.bad_inputs.fetch_add(1, Relaxed);
                let mut sink = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(300), async {
                    while let Ok(n) = conn.stream.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
            }
            // Client-side caching that never reads: every change (BCAST), or the keys it read, is
            // sent to it while it stays silent; its mail may grow only to the output limit.
            4 => {
                let mut b = Vec::new();
                cmd(&mut b, &[b"HELLO", b"3"]);
                if rng.bool() {
                    cmd(&mut b, &[b"CLIENT", b"TRACKING", b"on", b"BCAST"]);
                } else {
                    cmd(&mut b, &[b"CLIENT", b"TRACKING", b"on"]);
                    // Keys the well-behaved clients write (soak:{id}:{0..48}).
                    for _ in 0..rng.usize(10..200) {
                        let key = format!("soak:{}:{}", rng.usize(..1600), rng.usize(..48));
                        cmd(&mut b, &[b"GET", key.as_bytes()]);
                    }
                }
                let _ = conn.send(&b).await;
                let until = Instant::now() + Duration::from_secs(rng.u64(1..4));
                while Instant::now() < until && !stop.load(Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                c.bad_inputs.fetch_add(1, Relaxed);
            }
            // Pipeline and never read: GETs of a 16 KB value until the socket stops taking bytes.
            _ => {
                let key = format!("big:{id}");
                if conn.call(&[b"SET", key.as_bytes(), &[b'z'; 16 * 1024]]).await.is_err() {
                    continue;
                }
                let mut b = Vec::new();
                for _ in 0..200 {
                    cmd(&mut b, &[b"GET", key.as_bytes()]);
                }
                let until = Instant::now() + Duration::from_secs(2);
                while Instant::now() < until && !stop.load(Relaxed) {
                    match tokio::time::timeout(Duration::from_millis(200), conn.stream.write_all(&b)).await {
                        Ok(Ok(())) => {}
                        _ => break,
                    }
                }
                c.bad_inputs.fetch_add(1, Relaxed);
            }
        }
        drop(conn);
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn info_field(conn: &mut Conn, field: &str) -> Option<u64> {
    let OwnedFrame::BulkString(text) = conn.call(&[b"INFO", b"everything"]).await.ok()? else {
        return None;
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

fn start_server() -> (Child, u16, Arc<Mutex<Vec<String>>>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_respite-server"))
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
        .args(["--maxclients", "20000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start respite-server");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let (log, tx) = (log.clone(), tx.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections") {
                    let _ = tx.send(());
                }
                log.lock().unwrap().push(line);
            }
        });
    }
    if rx.recv_timeout(Duration::from_secs(10)).is_err() {
        let _ = child.kill();
        panic!("respite-server did not start: {:?}", log.lock().unwrap());
    }
    (child, port, log)
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

fn main() {
    let o = options();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let ok = runtime.block_on(run(o));
    std::process::exit(if ok { 0 } else { 1 });
}

async fn run(o: Options) -> bool {
    let (mut child, port, log) = match o.port {
        Some(p) => (None, p, Arc::new(Mutex::new(Vec::new()))),
        None => {
            let (child, port, log) = start_server();
            (Some(child), port, log)
        }
    };
    let mut admin = Conn::connect(port).await.expect("connect to the server");
    let pid = info_field(&mut admin, "process_id").await.expect("INFO process_id") as u32;
    let rss_before = rss_kb(pid).unwrap_or(0);
    let used_before = info_field(&mut admin, "used_memory").await.unwrap_or(0);

    let good = o.clients * 4 / 5;
    let bad = o.clients - good;
    println!(
        "soak: {} clients ({good} well-behaved, {bad} hostile) for up to {} s on port {port}",
        o.clients, o.secs
    );
    let stop = Arc::new(AtomicBool::new(false));
    let c = Arc::new(Counters::default());
    let started = Instant::now();
    let mut good_tasks = Vec::new();
    let mut bad_tasks = Vec::new();
    for id in 0..o.clients {
        if id % 5 == 4 {
            bad_tasks.push(tokio::spawn(hostile(id, port, stop.clone(), c.clone())));
        } else {
            good_tasks.push(tokio::spawn(well_behaved(id, port, stop.clone(), c.clone())));
        }
        if id % 200 == 199 {
            // Under the listen backlog while connecting.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut peak_rss = rss_before;
    let mut peak_clients = 0;
    while started.elapsed() < Duration::from_secs(o.secs) && c.commands.load(Relaxed) < o.max_commands {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak_rss = peak_rss.max(rss_kb(pid).unwrap_or(0));
        if let Some(n) = info_field(&mut admin, "connected_clients").await {
            peak_clients = peak_clients.max(n);
        }
        if child.as_mut().is_some_and(|ch| ch.try_wait().ok().flatten().is_some()) {
            break;
        }
    }
    stop.store(true, Relaxed);
    let mut models = Vec::new();
    for t in good_tasks {
        models.push(t.await.unwrap());
    }
    for t in bad_tasks {
        let _ = t.await;
    }
    let load_secs = started.elapsed().as_secs_f64();

    // Did the server survive?
    let mut crashes = 0;
    if let Some(ch) = child.as_mut() {
        if let Ok(Some(status)) = ch.try_wait() {
            crashes += 1;
            println!("server exited: {status}");
        }
    }
    let panics = log.lock().unwrap().iter().filter(|l| l.contains("panicked")).count();
    crashes += panics;
    drop(admin);
    let mut admin = match Conn::connect(port).await {
        Ok(conn) => conn,
        Err(e) => {
            println!("cannot reconnect: {e}");
            return false;
        }
    };
    let pong = matches!(admin.call(&[b"PING"]).await, Ok(OwnedFrame::SimpleString(s)) if s == b"PONG");

    // Every confirmed write is there.
    let (mut checked, mut missing, mut wrong) = (0u64, 0u64, 0u64);
    for m in &models {
        let ctr = format!("soak:{}:ctr", m.id).into_bytes();
        let mut expect: Vec<(&[u8], Option<Vec<u8>>)> = m.keys.iter().map(|(k, v)| (k.as_slice(), v.clone())).collect();
        if m.counter > 0 {
            expect.push((&ctr, Some(m.counter.to_string().into_bytes())));
        }
        let mut b = Vec::new();
        for (k, _) in &expect {
            cmd(&mut b, &[b"GET", k]);
        }
        if admin.send(&b).await.is_err() {
            println!("lost the checking connection");
            return false;
        }
        for (k, v) in &expect {
            let got = admin.reply().await.expect("GET reply");
            checked += 1;
            match (v, got) {
                (Some(v), OwnedFrame::BulkString(g)) if *v == g => {}
                (None, OwnedFrame::Null) => {}
                (Some(_), OwnedFrame::Null) => {
                    missing += 1;
                    if missing <= 5 {
                        println!("missing: {}", String::from_utf8_lossy(k));
                    }
                }
                (_, g) => {
                    wrong += 1;
                    if wrong <= 5 {
                        println!("wrong value for {}: {g:?}", String::from_utf8_lossy(k));
                    }
                }
            }
        }
    }

    // All connections gone (the server notices closes within moments).
    let mut connected = 0;
    for _ in 0..100 {
        connected = info_field(&mut admin, "connected_clients").await.unwrap_or(0);
        if connected == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_loaded = rss_kb(pid).unwrap_or(0);
    let used_loaded = info_field(&mut admin, "used_memory").await.unwrap_or(0);

    // Memory back near the baseline once the data is gone. MEMORY PURGE asks the allocator to
    // return freed pages (as Redis's jemalloc purge); otherwise jemalloc returns them after its
    // decay time, driven by allocator activity, so keep the server lightly busy meanwhile.
    let _ = admin.call(&[b"FLUSHALL"]).await;
    let _ = admin.call(&[b"MEMORY", b"PURGE"]).await;
    let mut rss_after = rss_kb(pid).unwrap_or(0);
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(15) {
        for _ in 0..20 {
            let _ = admin.call(&[b"SET", b"soak:tick", &[b't'; 4096]]).await;
            let _ = admin.call(&[b"DEL", b"soak:tick"]).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        rss_after = rss_kb(pid).unwrap_or(0);
        if rss_after <= near(rss_before) {
            break;
        }
    }
    let used_after = info_field(&mut admin, "used_memory").await.unwrap_or(0);

    let commands = c.commands.load(Relaxed);
    let bad_inputs = c.bad_inputs.load(Relaxed);
    let wrong_replies = c.wrong_replies.load(Relaxed);
    let dropped = c.dropped_clients.load(Relaxed);
    println!(
        "clients:            {} concurrent ({good} well-behaved, {bad} hostile), peak connected_clients {peak_clients}",
        o.clients
    );
    println!("hostile connections: {}", c.hostile_connections.load(Relaxed));
    println!(
        "commands:           {commands} confirmed in {load_secs:.1} s ({:.0}/s)",
        commands as f64 / load_secs
    );
    println!("bad inputs tried:   {bad_inputs}");
    println!("crashes:            {crashes}");
    println!("PING afterwards:    {}", if pong { "PONG" } else { "no answer" });
    println!("connected_clients:  {connected} after all clients left");
    println!("confirmed keys:     {checked} checked, {missing} missing, {wrong} wrong");
    println!("wrong replies:      {wrong_replies}; well-behaved clients dropped: {dropped}");
    println!(
        "memory (RSS):       before {}, peak {}, after load {}, after FLUSHALL {}",
        mb(rss_before),
        mb(peak_rss),
        mb(rss_loaded),
        mb(rss_after)
    );
    println!(
        "used_memory:        before {}, after load {}, after FLUSHALL {}",
        mb(used_before / 1024),
        mb(used_loaded / 1024),
        mb(used_after / 1024)
    );
    if let Some(e) = c.first_error.lock().unwrap().as_ref() {
        println!("first client error: {e}");
    }
    let rss_ok = rss_after <= near(rss_before);
    let used_ok = used_after <= used_before + used_before / 4 + 1024 * 1024;
    let ok =
        crashes == 0 && pong && connected == 1 && missing == 0 && wrong == 0 && wrong_replies == 0 && dropped == 0 && rss_ok && used_ok;
    if !rss_ok || !used_ok {
        println!("memory did not return near its baseline (RSS limit {})", mb(near(rss_before)));
    }
    println!("result:             {}", if ok { "PASS" } else { "FAIL" });
    if let Some(mut ch) = child {
        // SAFETY: signalling the child we started.
        unsafe { libc::kill(ch.id() as libc::pid_t, libc::SIGTERM) };
        let _ = ch.wait();
    }
    ok
}

/// "Near the baseline": within 25% or 8 MB of it, whichever is more.
fn near(before_kb: u64) -> u64 {
    before_kb + (before_kb / 4).max(8 * 1024)
}
