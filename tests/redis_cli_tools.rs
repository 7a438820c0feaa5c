//! redis-cli's tools and interactive mode against the respite-server binary, compared with a real
//! redis-server where the output is deterministic (numbers and timings normalised where not):
//!
//! - interactive mode in a pseudo-terminal: redis-cli fetches COMMAND DOCS at start and shows
//!   argument hints while a command is typed, and `help SET` prints its docs;
//! - `-n DB`, `-3` (RESP3 maps, COMMAND DOCS), `--scan --pattern`, `--bigkeys`, `--memkeys`,
//!   `--stat` (a few `-i 0.1` rows, then stopped), `--latency` (ends by itself when stdout is not a
//!   terminal), `INFO` (section and field names).
//!
//! Skipped (passing, with a notice) without redis-cli; without redis-server only respite's side is
//! checked (shapes, no errors).

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::RedisServer;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// `redis-cli -p PORT args...` with `stdin`, at most 20 s.
fn cli(port: u16, args: &[&str], stdin: &str) -> common::CliOutput {
    common::redis_cli(port, args, stdin, Duration::from_secs(20))
}

/// Output of a command that must not write to stderr.
fn ok(port: u16, args: &[&str]) -> String {
    let o = cli(port, args, "");
    assert!(o.stderr.is_empty(), "redis-cli {args:?} wrote to stderr: {}", o.stderr);
    o.stdout
}

/// The same dataset on both servers: strings of distinct lengths (so --bigkeys has one answer),
/// some with a TTL, a few keys in db 2.
fn load_dataset(port: u16) {
    let mut script = String::from("FLUSHALL\n");
    for (i, len) in [1usize, 7, 30, 120, 700].iter().enumerate() {
        script.push_str(&format!("SET user:{i} {}\n", "u".repeat(*len)));
    }
    script.push_str(&format!("SET big {}\n", "b".repeat(5000)));
    script.push_str("SET counter 12345\nSET session:a x EX 1000\nSET session:b yy EX 1000\n");
    script.push_str("SELECT 2\nSET other:1 one\nSET other:2 two\n");
    let o = cli(port, &["--no-raw"], &script);
    assert!(!o.stdout.contains("ERR") && o.stderr.is_empty(), "{}{}", o.stdout, o.stderr);
}

fn sorted_lines(s: &str) -> String {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v.join("\n")
}

/// Digits to `N` (memory sizes, ids, timings differ between servers by design).
fn digits_to_n(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_num = false;
    for ch in s.chars() {
        if ch.is_ascii_digit() || (in_num && ch == '.') {
            if !in_num {
                out.push('N');
                in_num = true;
            }
        } else {
            in_num = false;
            out.push(ch);
        }
    }
    out
}

/// --bigkeys/--memkeys without the "[xx.xx%] Biggest ... so far" progress lines, whose order
/// follows the SCAN order.
fn summary(s: &str) -> String {
    s.lines().filter(|l| !l.starts_with('[')).collect::<Vec<_>>().join("\n")
}

fn diff(expected: &str, got: &str) -> String {
    let (e, g): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), got.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(g.len()) {
        let (a, b) = (e.get(i).copied(), g.get(i).copied());
        if a != b {
            out.push_str(&format!("line {}:\n    redis:   {:?}\n    respite: {:?}\n", i + 1, a, b));
        }
    }
    out
}

/// Collects `name` outputs from respite and, when present, Redis; records a failure when they
/// differ after `norm`.
struct Compare<'a> {
    respite: u16,
    redis: Option<&'a RedisServer>,
    failures: String,
    checked: usize,
}

impl Compare<'_> {
    fn check(&mut self, name: &str, run: impl Fn(u16) -> String) -> String {
        let got = run(self.respite);
        if let Some(r) = self.redis {
            let want = run(r.port);
            self.checked += 1;
            if got != want {
                self.failures.push_str(&format!("{name}: output differs\n{}\n", diff(&want, &got)));
            }
        }
        got
    }
}

#[test]
fn redis_cli_tools_match_redis() {
    if !have("redis-cli") {
        eprintln!("redis-cli not found; redis-cli tools test skipped (.ci/run installs redis-tools)");
        return;
    }
    let respite = common::RespiteProcess::start();
    let redis = RedisServer::start();
    if redis.is_none() {
        eprintln!("redis-server not found; checking respite's side only");
    }
    load_dataset(respite.port);
    if let Some(r) = &redis {
        load_dataset(r.port);
    }
    let mut c = Compare {
        respite: respite.port,
        redis: redis.as_ref(),
        failures: String::new(),
        checked: 0,
    };

    // -n: the database chosen on the command line, and an out-of-range one (redis-cli reports the
    // failed SELECT on stderr and goes on in db 0).
    c.check("-n 2 DBSIZE / GET", |p| {
        ok(p, &["-n", "2", "DBSIZE"]) + &ok(p, &["-n", "2", "GET", "other:1"])
    });
    c.check("-n 0 DBSIZE", |p| ok(p, &["-n", "0", "DBSIZE"]));
    c.check("-n 20 DBSIZE", |p| {
        let o = cli(p, &["-n", "20", "DBSIZE"], "");
        format!("stdout: {}stderr: {}", o.stdout, o.stderr)
    });

    // -3: RESP3 replies as redis-cli prints them. Map order of CONFIG GET with a pattern is not
    // defined (sorted here); HELLO's client id differs.
    c.check("-3 CONFIG GET maxmemory*", |p| {
        sorted_lines(&digits_to_n(&ok(p, &["-3", "--no-raw", "CONFIG", "GET", "maxmemory*"])))
    });
    let hello = c.check("-3 HELLO 3", |p| {
        let out = ok(p, &["-3", "--no-raw", "HELLO", "3"]);
        out.lines()
            .map(|l| if l.contains("\"id\"") { digits_to_n(l) } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n")
    });
    assert!(hello.contains("\"proto\" => (integer) 3"), "{hello}");
    c.check("-3 COMMAND DOCS GET SET GETEX", |p| {
        ok(p, &["-3", "--no-raw", "COMMAND", "DOCS", "GET", "SET", "GETEX"])
    });
    c.check("COMMAND DOCS GET SET GETEX (RESP2)", |p| {
        ok(p, &["--no-raw", "COMMAND", "DOCS", "GET", "SET", "GETEX"])
    });
    c.check("-3 MGET / TTL / INCRBYFLOAT", |p| {
        ok(p, &["-3", "--no-raw", "MGET", "user:0", "nokey", "counter"])
            + &ok(p, &["-3", "--no-raw", "TTL", "nokey"])
            + &ok(p, &["-3", "--no-raw", "INCRBYFLOAT", "counter", "0.5"])
    });

    // --scan --pattern (order is not defined: sorted), in db 0 and, with -n, db 2.
    let scanned = c.check("--scan --pattern user:*", |p| {
        sorted_lines(&ok(p, &["--scan", "--pattern", "user:*"]))
    });
    assert_eq!(scanned, "user:0\nuser:1\nuser:2\nuser:3\nuser:4", "--scan on respite");
    c.check("--scan --pattern 'session:[ab]'", |p| {
        sorted_lines(&ok(p, &["--scan", "--pattern", "session:[ab]"]))
    });
    c.check("-n 2 --scan --pattern *", |p| {
        sorted_lines(&ok(p, &["-n", "2", "--scan", "--pattern", "*"]))
    });

    // --bigkeys: SCAN + TYPE + STRLEN; the summary is deterministic (distinct lengths).
    let big = c.check("--bigkeys", |p| summary(&ok(p, &["--bigkeys"])));
    assert!(big.contains("Biggest string found '\"big\"' has 5000 bytes"), "{big}");
    assert!(big.contains("Sampled 9 keys in the keyspace!"), "{big}");
    // --memkeys: SCAN + TYPE + MEMORY USAGE; byte counts are each server's own accounting.
    let mem = c.check("--memkeys", |p| digits_to_n(&summary(&ok(p, &["--memkeys"]))));
    assert!(mem.contains("Biggest string found '\"big\"' has N bytes"), "{mem}");
    let raw_mem = summary(&ok(respite.port, &["--memkeys"]));
    let big_usage: u64 = ok(respite.port, &["MEMORY", "USAGE", "big"]).trim().parse().unwrap();
    assert!(
        (5000..6000).contains(&big_usage) && raw_mem.contains(&format!("has {big_usage} bytes")),
        "MEMORY USAGE big = {big_usage}; --memkeys:\n{raw_mem}"
    );

    // --stat -i 0.1: a header and one row per INFO. keys, clients, blocked and the per-row request
    // delta are deterministic; memory, totals and connection counts are not.
    c.check("--stat -i 0.1", |p| stat_rows(p, 4));

    // --latency ends by itself after about a second when stdout is not a terminal, printing
    // "min max avg samples".
    for (name, port) in std::iter::once(("respite", respite.port)).chain(redis.as_ref().map(|r| ("redis", r.port))) {
        let out = ok(port, &["--latency"]);
        let f: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(f.len(), 4, "{name} --latency: {out:?}");
        let (min, max, avg, n): (u64, u64, f64, u64) = (
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
        );
        assert!(
            n > 10 && min <= max && (min as f64) <= avg && avg <= max as f64,
            "{name} --latency: {out:?}"
        );
    }

    // INFO: default sections and their field names; Keyspace lines with avg_ttl normalised.
    let info_names = |p: u16| {
        let out = ok(p, &["INFO"]);
        out.lines()
            .filter(|l| l.starts_with('#') || l.contains(':'))
            .map(|l| l.split(':').next().unwrap().trim_end_matches('\r').to_string())
            .collect::<Vec<_>>()
    };
    let sections = |names: &[String]| names.iter().filter(|l| l.starts_with('#')).cloned().collect::<Vec<_>>();
    let ours = info_names(respite.port);
    for f in [
        "connected_clients",
        "used_memory",
        "total_commands_processed",
        "keyspace_hits",
        "db0",
    ] {
        assert!(ours.iter().any(|n| n == f), "INFO lacks {f}: {ours:?}");
    }
    if let Some(r) = &redis {
        let theirs = info_names(r.port);
        c.checked += 1;
        if sections(&ours) != sections(&theirs) {
            c.failures.push_str(&format!(
                "INFO sections: redis {:?}, respite {:?}\n",
                sections(&theirs),
                sections(&ours)
            ));
        }
        let (a, b): (BTreeSet<&String>, BTreeSet<&String>) = (theirs.iter().collect(), ours.iter().collect());
        let missing: Vec<_> = a.difference(&b).collect();
        let extra: Vec<_> = b.difference(&a).collect();
        eprintln!("note: INFO fields Redis has and respite lacks: {missing:?}; respite only: {extra:?}");
    }
    c.check("INFO keyspace", |p| {
        let out = ok(p, &["INFO", "keyspace"]);
        out.lines()
            .map(|l| l.split(",avg_ttl=").next().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    });

    let (failures, checked) = (c.failures, c.checked);
    eprintln!("redis-cli tools: {checked} outputs compared with redis-server");
    assert!(failures.is_empty(), "{failures}");
}

/// `redis-cli --stat -i 0.1` for `rows` data rows (stdout line-buffered via stdbuf, then killed),
/// with the columns that vary replaced: keys, clients, blocked and the request delta stay.
fn stat_rows(port: u16, rows: usize) -> String {
    let mut child = Command::new("stdbuf")
        .args([
            "-oL",
            "redis-cli",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--stat",
            "-i",
            "0.1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stdbuf redis-cli --stat");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines.len() < rows + 2 && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(l);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(lines.len(), rows + 2, "--stat printed {lines:?}");
    let mut out = vec![lines[0].clone(), lines[1].clone()];
    for (i, l) in lines[2..].iter().enumerate() {
        // keys mem clients blocked requests (+delta) connections
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f.len(), 7, "--stat row {l:?}");
        let delta = if i == 0 { "(first)" } else { f[5] };
        out.push(format!("keys={} clients={} blocked={} delta={delta}", f[0], f[2], f[3]));
    }
    out.join("\n")
}

/// A program in a pseudo-terminal (250 columns, so linenoise shows whole hints).
struct Pty {
    child: Child,
    master: File,
    rx: mpsc::Receiver<Vec<u8>>,
    transcript: Vec<u8>,
}

impl Pty {
    fn spawn(program: &str, args: &[&str]) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let ws = libc::winsize {
            ws_row: 50,
            ws_col: 250,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two fds it opened; we take ownership of both.
        let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY as _, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn in pty");
        drop(cmd); // closes our copies of the slave side
        let master = File::from(master);
        let mut reader = master.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child has exited and the slave is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Pty {
            child,
            master,
            rx,
            transcript: Vec::new(),
        }
    }

    /// Reads until the output after byte `from` ends with `suffix` (at most 10 s).
    fn wait_for_suffix(&mut self, from: usize, suffix: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.transcript[from.min(self.transcript.len())..].ends_with(suffix) {
            assert!(
                Instant::now() < deadline,
                "no {:?} in pty output: {:?}",
                String::from_utf8_lossy(suffix),
                String::from_utf8_lossy(&self.transcript)
            );
            if let Ok(chunk) = self.rx.recv_timeout(Duration::from_millis(50)) {
                self.transcript.extend_from_slice(&chunk);
            }
        }
    }

    fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    /// Waits for the program to exit and collects the rest of its output.
    fn finish(mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("pty program did not exit: {:?}", String::from_utf8_lossy(&self.transcript));
            }
            if let Ok(chunk) = self.rx.recv_timeout(Duration::from_millis(10)) {
                self.transcript.extend_from_slice(&chunk);
            }
        }
        while let Ok(chunk) = self.rx.recv_timeout(Duration::from_millis(200)) {
            self.transcript.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&self.transcript).into_owned()
    }
}

/// Types `steps` at an interactive redis-cli. Keys within a step go in one write (linenoise
/// redraws line and hint per key, so the output does not depend on timing); a step that ends in
/// Enter waits for the next prompt, since keys typed while a command runs would be echoed by the
/// terminal instead. Returns the transcript with the port replaced by PORT.
fn interactive(port: u16, steps: &[&str]) -> String {
    let prompt = format!("127.0.0.1:{port}> ");
    let mut pty = Pty::spawn("redis-cli", &["-h", "127.0.0.1", "-p", &port.to_string()]);
    // The first prompt comes after redis-cli connected and read COMMAND DOCS.
    pty.wait_for_suffix(0, prompt.as_bytes());
    for step in steps {
        let from = pty.transcript.len();
        pty.type_keys(step);
        if step.ends_with('\r') {
            pty.wait_for_suffix(from, format!("\n{prompt}").as_bytes());
        }
    }
    pty.type_keys("\x15quit\r");
    pty.finish().replace(&port.to_string(), "PORT")
}

/// Ctrl-U: clear the line.
const CLEAR: &str = "\x15";

#[test]
fn redis_cli_interactive_hints_from_command_docs() {
    if !have("redis-cli") {
        eprintln!("redis-cli not found; interactive redis-cli test skipped (.ci/run installs redis-tools)");
        return;
    }
    let respite = common::RespiteProcess::start();
    let redis = RedisServer::start();
    let steps = [
        "SET ",
        CLEAR,
        "GETEX ",
        CLEAR,
        "EXPIRE k ",
        CLEAR,
        "CLIENT SETNAME ",
        CLEAR,
        "SCAN 0 ",
        CLEAR,
        "help SET\r",
        "help GETEX\r",
        "SET greeting hello\r",
        "GET greeting\r",
    ];
    let got = interactive(respite.port, &steps);
    // The hint for SET, in linenoise's grey, exactly as Redis 7.0's COMMAND DOCS renders.
    let set_hint =
        "SET \x1b[0;90;49mkey value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]\x1b[0m";
    assert!(got.contains(set_hint), "no SET hint in {got:?}");
    assert!(
        got.contains("summary:\x1b[0m Set the string value of a key"),
        "no `help SET` docs in {got:?}"
    );
    assert!(got.contains("\"hello\""), "GET greeting: {got:?}");
    assert!(!got.contains("ERR") && !got.contains("Error"), "error in {got:?}");
    if let Some(r) = &redis {
        let want = interactive(r.port, &steps);
        assert!(
            got == want,
            "interactive transcript differs from Redis's:\nredis:   {want:?}\nrespite: {got:?}"
        );
    } else {
        eprintln!("redis-server not found; interactive transcript not compared");
    }
    // redis-cli 7 builds its hints from the server's COMMAND DOCS (falling back to a built-in table
    // only when that fails). A command respite does not have therefore gets no hint from respite.
    let rpush_known = ok(respite.port, &["COMMAND", "INFO", "RPUSH"]).trim() != "";
    if !rpush_known {
        let t = interactive(respite.port, &["RPUSH "]);
        assert!(
            !t.contains("key element"),
            "RPUSH hint shown although respite's COMMAND DOCS has no RPUSH (built-in fallback?): {t:?}"
        );
    }
}
