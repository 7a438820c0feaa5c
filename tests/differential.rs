//! Differential tests: replay command scripts against respite and a real redis-server and compare
//! the reply bytes.
//!
//! Every `tests/differential/*.redis` script runs on a fresh respite (in this process) and a fresh
//! redis-server (from PATH), over one raw TCP connection per server, so connection state (SELECT,
//! MULTI, WATCH, HELLO) carries through the script. If redis-server is not on PATH the test prints
//! a notice and passes. All mismatches of all scripts are collected and reported at the end.
//!
//! Script format, one directive per line:
//!
//! * `SET k "a b"` — a command, split like a shell: `"double quotes"` understand `\n \r \t \b \a
//!   \\ \" \xHH`, `'single quotes'` only `\'`; an empty quoted string is an empty argument. It is
//!   sent as a RESP array of bulk strings; exactly one reply is read from each server and the bytes
//!   are compared.
//! * blank lines and lines starting with `#` are ignored.
//! * `!sort CMD ...` — as a command, but aggregate replies are compared as multisets: the elements of
//!   every array / set (recursively, so SCAN's inner key list too) and the pairs of every map are
//!   sorted before comparing.
//! * `!anyint CMD ...` — as a command, but every integer reply (`:N`) in it compares as equal (HELLO's
//!   connection id, CLIENT ID).
//! * `!scanall ARGS...` — runs `SCAN <cursor> ARGS...` from cursor 0 until the cursor is 0 again
//!   on each server and compares the sorted, de-duplicated union of the keys (errors compare as
//!   bytes).
//! * `!sleep MS` — pauses MS milliseconds.
//! * `!reconnect` — closes both connections and opens new ones (a new, unauthenticated client).
//! * `!raw BYTES` — sends BYTES verbatim (escapes as in double quotes, no surrounding quotes; the
//!   rest of the line after one space) and compares one reply. `!rawn N BYTES` reads N replies
//!   (N may be 0). A protocol error closes the connection, so such lines go last in a script.
//!
//! `RESPITE_DIFF_ONLY=hashes,acl` runs only the scripts whose names start with those words.
//!
//! Writing scripts: a line must be deterministic on Redis itself. `RESPITE_DIFF_REDIS_VS_REDIS=1 cargo
//! test --test differential` runs every script against two redis-servers instead; it must pass.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{resp, RedisServer};

/// How long one reply may take before the connection counts as stuck.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// Script parsing

#[derive(Debug)]
enum Step {
    Cmd { args: Vec<Vec<u8>>, sort: bool, anyint: bool },
    ScanAll(Vec<Vec<u8>>),
    Sleep(u64),
    Reconnect,
    Raw { bytes: Vec<u8>, replies: usize },
}

struct Line {
    no: usize,
    text: String,
    step: Step,
}

/// Decodes one backslash escape inside double quotes (or `!raw`); `i` points after the backslash.
fn unescape_one(s: &[u8], i: &mut usize, out: &mut Vec<u8>) -> Result<(), String> {
    let Some(&c) = s.get(*i) else {
        return Err("trailing backslash".into());
    };
    *i += 1;
    match c {
        b'n' => out.push(b'\n'),
        b'r' => out.push(b'\r'),
        b't' => out.push(b'\t'),
        b'b' => out.push(8),
        b'a' => out.push(7),
        b'0' => out.push(0),
        b'x' => {
            let hex = s.get(*i..*i + 2).ok_or("short \\x escape")?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).map_err(|e| e.to_string())?, 16).map_err(|e| e.to_string())?;
            out.push(v);
            *i += 2;
        }
        other => out.push(other),
    }
    Ok(())
}

fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let s = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' {
            i += 1;
            unescape_one(s, &mut i, &mut out)?;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Splits a line into arguments, shell-like (see the module comment).
fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let s = line.as_bytes();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == s.len() {
            return Ok(args);
        }
        let mut cur = Vec::new();
        while i < s.len() && !s[i].is_ascii_whitespace() {
            match s[i] {
                b'"' => {
                    i += 1;
                    loop {
                        match s.get(i) {
                            None => return Err("unterminated double quote".into()),
                            Some(b'"') => {
                                i += 1;
                                break;
                            }
                            Some(b'\\') => {
                                i += 1;
                                unescape_one(s, &mut i, &mut cur)?;
                            }
                            Some(&c) => {
                                cur.push(c);
                                i += 1;
                            }
                        }
                    }
                }
                b'\'' => {
                    i += 1;
                    loop {
                        match s.get(i) {
                            None => return Err("unterminated single quote".into()),
                            Some(b'\'') => {
                                i += 1;
                                break;
                            }
                            Some(b'\\') if s.get(i + 1) == Some(&b'\'') => {
                                cur.push(b'\'');
                                i += 2;
                            }
                            Some(&c) => {
                                cur.push(c);
                                i += 1;
                            }
                        }
                    }
                }
                c => {
                    cur.push(c);
                    i += 1;
                }
            }
        }
        args.push(cur);
    }
}

fn parse_script(text: &str) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let no = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let err = |e: String| format!("line {no}: {e}: {t}");
        let step = if let Some(rest) = t.strip_prefix("!sort ") {
            Step::Cmd {
                args: split_args(rest).map_err(err)?,
                sort: true,
                anyint: false,
            }
        } else if let Some(rest) = t.strip_prefix("!anyint ") {
            Step::Cmd {
                args: split_args(rest).map_err(err)?,
                sort: false,
                anyint: true,
            }
        } else if let Some(rest) = t.strip_prefix("!scanall") {
            Step::ScanAll(split_args(rest).map_err(err)?)
        } else if t == "!reconnect" {
            Step::Reconnect
        } else if let Some(rest) = t.strip_prefix("!sleep ") {
            Step::Sleep(rest.trim().parse().map_err(|e: std::num::ParseIntError| err(e.to_string()))?)
        } else if let Some(rest) = t.strip_prefix("!rawn ") {
            let (n, bytes) = rest.split_once(' ').ok_or_else(|| err("!rawn N BYTES".into()))?;
            Step::Raw {
                bytes: unescape(bytes).map_err(err)?,
                replies: n.parse().map_err(|e: std::num::ParseIntError| err(e.to_string()))?,
            }
        } else if let Some(rest) = raw.trim_start().strip_prefix("!raw ") {
            Step::Raw {
                bytes: unescape(rest).map_err(err)?,
                replies: 1,
            }
        } else if t.starts_with('!') {
            return Err(err("unknown directive".into()));
        } else {
            Step::Cmd {
                args: split_args(t).map_err(err)?,
                sort: false,
                anyint: false,
            }
        };
        if let Step::Cmd { args, .. } = &step {
            if args.is_empty() {
                return Err(err("empty command".into()));
            }
        }
        lines.push(Line {
            no,
            text: t.to_string(),
            step,
        });
    }
    Ok(lines)
}

// ---------------------------------------------------------------------------------------------
// RESP2/RESP3 reply framing

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Frame {
    /// A non-aggregate frame, kept as its exact bytes.
    Leaf(Vec<u8>),
    /// An aggregate: its header line (e.g. `*3\r\n`) and children (maps: keys and values interleaved).
    Agg { kind: u8, header: Vec<u8>, items: Vec<Frame> },
}

impl Frame {
    fn to_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Leaf(b) => out.extend_from_slice(b),
            Frame::Agg { header, items, .. } => {
                out.extend_from_slice(header);
                for i in items {
                    i.to_bytes(out);
                }
            }
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.to_bytes(&mut v);
        v
    }

    /// Replaces every integer frame by `:?`.
    fn mask_ints(self) -> Frame {
        match self {
            Frame::Leaf(b) if b.first() == Some(&b':') => Frame::Leaf(b":?\r\n".to_vec()),
            Frame::Leaf(b) => Frame::Leaf(b),
            Frame::Agg { kind, header, items } => Frame::Agg {
                kind,
                header,
                items: items.into_iter().map(Frame::mask_ints).collect(),
            },
        }
    }

    /// Sorts arrays, sets and pushes elementwise and maps pairwise, recursively.
    fn canonical(self) -> Frame {
        match self {
            Frame::Leaf(b) => Frame::Leaf(b),
            Frame::Agg { kind, header, items } => {
                let items: Vec<Frame> = items.into_iter().map(Frame::canonical).collect();
                let items = if kind == b'%' || kind == b'|' {
                    let mut pairs: Vec<(Frame, Frame)> = Vec::new();
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    pairs.sort();
                    pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()
                } else {
                    let mut items = items;
                    items.sort_by_key(|f| f.bytes());
                    items
                };
                Frame::Agg { kind, header, items }
            }
        }
    }
}

/// Parses one frame from the front of `buf`; Ok(None) if incomplete; returns the frame and its length.
fn parse_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
    let Some(nl) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line_end = nl + 2;
    if buf.is_empty() {
        return Ok(None);
    }
    let kind = buf[0];
    let num = || -> Result<i64, String> {
        std::str::from_utf8(&buf[1..nl])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad length line {:?}", esc(&buf[..line_end])))
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some((Frame::Leaf(buf[..line_end].to_vec()), line_end))),
        b'$' | b'!' | b'=' => {
            let n = num()?;
            if n < 0 {
                return Ok(Some((Frame::Leaf(buf[..line_end].to_vec()), line_end)));
            }
            let total = line_end + n as usize + 2;
            if buf.len() < total {
                return Ok(None);
            }
            if &buf[total - 2..total] != b"\r\n" {
                return Err(format!("bulk not terminated by CRLF: {}", esc(&buf[..total])));
            }
            Ok(Some((Frame::Leaf(buf[..total].to_vec()), total)))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = num()?;
            if n < 0 {
                return Ok(Some((Frame::Leaf(buf[..line_end].to_vec()), line_end)));
            }
            let count = if kind == b'%' || kind == b'|' { 2 * n as usize } else { n as usize };
            let mut pos = line_end;
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                match parse_frame(&buf[pos..])? {
                    None => return Ok(None),
                    Some((f, len)) => {
                        items.push(f);
                        pos += len;
                    }
                }
            }
            // An attribute (`|`) is followed by the actual reply, which belongs to the same frame.
            if kind == b'|' {
                match parse_frame(&buf[pos..])? {
                    None => return Ok(None),
                    Some((f, len)) => {
                        items.push(f);
                        pos += len;
                    }
                }
            }
            Ok(Some((
                Frame::Agg {
                    kind,
                    header: buf[..line_end].to_vec(),
                    items,
                },
                pos,
            )))
        }
        other => Err(format!("unknown RESP type byte {:?} in {}", other as char, esc(&buf[..line_end]))),
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

struct Conn {
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

/// What a server answered to one line, rendered for comparison and display.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Frame(Frame),
    Closed(Vec<u8>),
    Timeout(Vec<u8>),
    Garbage(String),
}

impl Reply {
    fn render(&self) -> String {
        match self {
            Reply::Frame(f) => esc(&f.bytes()),
            Reply::Closed(rest) if rest.is_empty() => "<connection closed>".into(),
            Reply::Closed(rest) => format!("<connection closed after partial bytes {}>", esc(rest)),
            Reply::Timeout(rest) if rest.is_empty() => "<no reply within timeout>".into(),
            Reply::Timeout(rest) => format!("<timeout after partial bytes {}>", esc(rest)),
            Reply::Garbage(e) => format!("<unparsable reply: {e}>"),
        }
    }
}

impl Conn {
    async fn connect(addr: std::net::SocketAddr) -> Conn {
        let stream = tokio::time::timeout(REPLY_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timeout")
            .expect("connect");
        stream.set_nodelay(true).ok();
        Conn {
            stream: Some(stream),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        if let Some(s) = self.stream.as_mut() {
            if s.write_all(bytes).await.is_err() {
                self.stream = None;
            }
        }
    }

    async fn read_reply(&mut self) -> Reply {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            match parse_frame(&self.buf) {
                Err(e) => {
                    self.buf.clear();
                    return Reply::Garbage(e);
                }
                Ok(Some((frame, len))) => {
                    self.buf.drain(..len);
                    return Reply::Frame(frame);
                }
                Ok(None) => {}
            }
            let Some(stream) = self.stream.as_mut() else {
                return Reply::Closed(std::mem::take(&mut self.buf));
            };
            let now = Instant::now();
            if now >= deadline {
                return Reply::Timeout(std::mem::take(&mut self.buf));
            }
            let mut chunk = [0u8; 16 * 1024];
            match tokio::time::timeout(deadline - now, stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => self.stream = None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return Reply::Timeout(std::mem::take(&mut self.buf)),
            }
        }
    }

    /// Collects whatever arrives within 50 ms (replies nobody asked for).
    async fn read_pending(&mut self) {
        let Some(stream) = self.stream.as_mut() else { return };
        let mut chunk = [0u8; 16 * 1024];
        while let Ok(Ok(n @ 1..)) = tokio::time::timeout(Duration::from_millis(50), stream.read(&mut chunk)).await {
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a command and reads its reply.
    async fn call(&mut self, args: &[Vec<u8>]) -> Reply {
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        self.send(&resp(&refs)).await;
        self.read_reply().await
    }

    /// SCAN from cursor 0 to cursor 0; the sorted, de-duplicated key union rendered as a RESP array.
    async fn scan_all(&mut self, extra: &[Vec<u8>]) -> Reply {
        let mut cursor = b"0".to_vec();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for _ in 0..10_000 {
            let mut args = vec![b"SCAN".to_vec(), cursor.clone()];
            args.extend(extra.iter().cloned());
            let reply = self.call(&args).await;
            let Reply::Frame(Frame::Agg { items, .. }) = &reply else {
                return reply;
            };
            let (Some(Frame::Leaf(c)), Some(Frame::Agg { items: found, .. })) = (items.first(), items.get(1)) else {
                return reply;
            };
            // `$1\r\n0\r\n` -> `0`
            let c = c
                .split(|&b| b == b'\n')
                .nth(1)
                .map(|s| s.strip_suffix(b"\r").unwrap_or(s).to_vec())
                .unwrap_or_default();
            for f in found {
                keys.push(f.bytes());
            }
            if c == b"0" {
                keys.sort();
                keys.dedup();
                let mut out = format!("*{}\r\n", keys.len()).into_bytes();
                for k in keys {
                    out.extend_from_slice(&k);
                }
                return Reply::Frame(Frame::Leaf(out));
            }
            cursor = c;
        }
        Reply::Garbage("SCAN did not finish within 10000 calls".into())
    }
}

fn esc(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('"');
    s
}

// ---------------------------------------------------------------------------------------------
// Running scripts

struct Mismatch {
    script: String,
    line: usize,
    command: String,
    redis: String,
    respite: String,
}

async fn run_script(name: &str, lines: &[Line], redis: &RedisServer, respite_addr: std::net::SocketAddr) -> Vec<Mismatch> {
    // Start from an empty keyspace on both sides.
    let mut setup = Conn::connect(redis.addr()).await;
    let r = setup.call(&[b"FLUSHALL".to_vec()]).await;
    assert_eq!(r, Reply::Frame(Frame::Leaf(b"+OK\r\n".to_vec())), "FLUSHALL on redis-server");
    drop(setup);

    let mut a = Conn::connect(redis.addr()).await;
    let mut b = Conn::connect(respite_addr).await;
    let mut out = Vec::new();
    for line in lines {
        let (ra, rb) = match &line.step {
            Step::Reconnect => {
                a = Conn::connect(redis.addr()).await;
                b = Conn::connect(respite_addr).await;
                continue;
            }
            Step::Sleep(ms) => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                continue;
            }
            Step::Cmd { args, sort, anyint } => {
                let (mut ra, mut rb) = tokio::join!(a.call(args), b.call(args));
                for r in [&mut ra, &mut rb] {
                    if let Reply::Frame(f) = r {
                        if *anyint {
                            *f = f.clone().mask_ints();
                        }
                        if *sort {
                            *f = f.clone().canonical();
                        }
                    }
                }
                (vec![ra], vec![rb])
            }
            Step::ScanAll(extra) => {
                let (ra, rb) = tokio::join!(a.scan_all(extra), b.scan_all(extra));
                (vec![ra], vec![rb])
            }
            Step::Raw { bytes, replies } => {
                a.send(bytes).await;
                b.send(bytes).await;
                let mut ra = Vec::new();
                let mut rb = Vec::new();
                for _ in 0..*replies {
                    let (x, y) = tokio::join!(a.read_reply(), b.read_reply());
                    ra.push(x);
                    rb.push(y);
                }
                (ra, rb)
            }
        };
        if ra != rb {
            let join = |v: &[Reply]| v.iter().map(Reply::render).collect::<Vec<_>>().join(" + ");
            out.push(Mismatch {
                script: name.to_string(),
                line: line.no,
                command: line.text.clone(),
                redis: join(&ra),
                respite: join(&rb),
            });
        }
    }
    // Extra unsolicited bytes (more replies than commands) are a mismatch too.
    tokio::join!(a.read_pending(), b.read_pending());
    let extra = |c: &Conn| if c.buf.is_empty() { String::new() } else { esc(&c.buf) };
    let (ea, eb) = (extra(&a), extra(&b));
    if ea != eb {
        out.push(Mismatch {
            script: name.to_string(),
            line: 0,
            command: "<leftover bytes at end of script>".into(),
            redis: ea,
            respite: eb,
        });
    }
    out
}

fn scripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/differential exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "redis"))
        .collect();
    v.sort();
    v
}

#[test]
fn script_parser() {
    assert_eq!(
        split_args(r#"SET k "a b\r\n\x41" 'it\'s' """#).unwrap(),
        vec![b"SET".to_vec(), b"k".to_vec(), b"a b\r\nA".to_vec(), b"it's".to_vec(), vec![]]
    );
    assert_eq!(split_args("a\"b c\"d").unwrap(), vec![b"ab cd".to_vec()]);
    assert!(split_args("\"open").is_err());
    assert_eq!(unescape(r"*1\r\n$x\r\n").unwrap(), b"*1\r\n$x\r\n".to_vec());
    // Every script parses.
    for p in scripts() {
        parse_script(&std::fs::read_to_string(&p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

#[test]
fn frame_reader() {
    let f = |b: &[u8]| parse_frame(b).unwrap().map(|(_, n)| n);
    assert_eq!(f(b"+OK\r\n"), Some(5));
    assert_eq!(f(b"$3\r\nab"), None);
    assert_eq!(f(b"$-1\r\n"), Some(5));
    assert_eq!(f(b"*2\r\n:1\r\n$1\r\na\r\n+x"), Some(15));
    assert_eq!(f(b"%1\r\n+a\r\n*1\r\n"), None);
    assert_eq!(f(b"%1\r\n+a\r\n_\r\n"), Some(11));
    assert_eq!(f(b"|1\r\n+a\r\n+b\r\n:1\r\n"), Some(16));
    let (unsorted, _) = parse_frame(b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n").unwrap().unwrap();
    assert_eq!(
        esc(&unsorted.canonical().bytes()),
        esc(b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differential() {
    let started = Instant::now();
    if std::process::Command::new("redis-server").arg("--version").output().is_err() {
        eprintln!("redis-server not found; differential test skipped");
        return;
    }
    let mut paths = scripts();
    assert!(!paths.is_empty(), "no scripts under tests/differential");
    // RESPITE_DIFF_ONLY=lists,sets runs only the scripts whose names start with one of those.
    if let Some(only) = std::env::var_os("RESPITE_DIFF_ONLY") {
        let only = only.to_string_lossy().into_owned();
        paths.retain(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            only.split(',').any(|o| name.starts_with(o))
        });
    }
    let mut mismatches = Vec::new();
    let mut total_lines = 0;
    for path in &paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let lines = parse_script(&std::fs::read_to_string(path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        total_lines += lines.len();
        let redis = RedisServer::start().expect("redis-server is on PATH but did not start");
        // RESPITE_DIFF_REDIS_VS_REDIS=1 compares two redis-servers instead: a check that new script
        // lines are deterministic.
        let twin = std::env::var_os("RESPITE_DIFF_REDIS_VS_REDIS").map(|_| RedisServer::start().expect("second redis-server"));
        let respite = match twin {
            None => Some(common::start().await),
            Some(_) => None,
        };
        let other = twin.as_ref().map_or_else(|| respite.as_ref().unwrap().addr, |t| t.addr());
        let found = tokio::time::timeout(Duration::from_secs(60), run_script(&name, &lines, &redis, other))
            .await
            .unwrap_or_else(|_| panic!("{name}: script timed out"));
        eprintln!("{name}: {} lines, {} mismatches", lines.len(), found.len());
        mismatches.extend(found);
        if let Some(respite) = respite {
            tokio::time::timeout(Duration::from_secs(10), respite.stop())
                .await
                .unwrap_or_else(|_| panic!("{name}: respite did not stop"));
        }
        drop(redis);
    }
    eprintln!("{} scripts, {total_lines} lines in {:?}", paths.len(), started.elapsed());
    if !mismatches.is_empty() {
        let mut report = format!("{} mismatches between redis-server and respite:\n", mismatches.len());
        for m in &mismatches {
            let _ = write!(
                report,
                "\n{}:{}: {}\n    redis:   {}\n    respite: {}\n",
                m.script, m.line, m.command, m.redis, m.respite
            );
        }
        panic!("{report}");
    }
}
