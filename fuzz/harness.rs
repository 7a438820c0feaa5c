//! What the two fuzz targets run on one input, shared by `fuzz/fuzz_targets/*.rs` (cargo-fuzz,
//! nightly) and `tests/fuzz_campaign.rs` (stable, part of `cargo test --workspace`) through
//! `#[path]`, so the CI campaign and the libFuzzer campaign check the same things.
//!
//! * [`decode`]: the request decoder over arbitrary bytes, fed whole and in small pieces, with the
//!   default limits, with small limits and as an unauthenticated client. Every decoded command must
//!   take bytes off the buffer (no endless loop), and how the bytes are split must not change the
//!   commands decoded when no error occurs.
//! * [`dispatch`]: the connection's loop in-process: decode, then `commands::execute` on a fresh
//!   server, until a protocol error or a command that closes the connection. Every reply written
//!   must be one complete RESP2 or RESP3 frame (whichever the client speaks), and a new client must
//!   still get `+PONG` afterwards.
//!
//! Commands that would stall a campaign are not run: SHUTDOWN, DEBUG SLEEP, and SETRANGE past
//! 1 MiB (Redis allows 512 MB, which is memory, not a bug).
#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use respite::client::Client;
use respite::protocol::{Decoder, Limits, Reply};

/// Decodes `data` every way the server may see it; panics on a broken invariant.
pub fn decode(data: &[u8]) {
    let small = Limits {
        max_bulk_len: 16,
        max_multibulk: 8,
        ..Limits::default()
    };
    let unauthenticated = Limits {
        unauthenticated: true,
        ..Limits::default()
    };
    for limits in [Limits::default(), small, unauthenticated] {
        let whole = decode_in_pieces(data, limits, data.len().max(1));
        for piece in [1, 2, 3 + data.len() % 61] {
            let split = decode_in_pieces(data, limits, piece);
            if let (Ok(a), Ok(b)) = (&whole, &split) {
                assert_eq!(a, b, "commands differ when the input arrives in pieces of {piece} bytes");
            }
        }
    }
}

type Commands = Vec<Vec<Vec<u8>>>;

/// Appends `data` to the decoder's buffer `piece` bytes at a time, decoding after each read as the
/// connection does. Ok: every command decoded (empty ones skipped); Err: the protocol error.
fn decode_in_pieces(data: &[u8], limits: Limits, piece: usize) -> Result<Commands, String> {
    let mut decoder = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut args: Vec<Bytes> = Vec::new();
    let mut commands = Vec::new();
    for chunk in data.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf, &mut args) {
                Ok(true) => {
                    assert!(buf.len() < before, "a decoded command consumed no bytes");
                    if !args.is_empty() {
                        commands.push(args.iter().map(|a| a.to_vec()).collect());
                    }
                }
                Ok(false) => {
                    assert_eq!(buf.len(), before, "an incomplete command consumed bytes");
                    break;
                }
                Err(e) => return Err(e.0),
            }
        }
    }
    Ok(commands)
}

/// Everything one dispatch input did, for tests that want to look.
#[derive(Debug, Default)]
pub struct Outcome {
    pub commands: usize,
    pub skipped: usize,
    pub protocol_error: bool,
}

/// A server for one input: defaults, plus DEBUG enabled so its subcommands are reached too.
pub fn server() -> std::sync::Arc<respite::Server> {
    let directives = vec![vec!["enable-debug-command".to_string(), "yes".to_string()]];
    let config = respite::Config::load(None, &directives).expect("fuzz config");
    respite::Server::new(config, 0)
}

/// Runs `data` as one connection's byte stream on a fresh server; panics on a broken invariant.
pub fn dispatch(data: &[u8]) -> Outcome {
    let server = server();
    let addr: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let laddr: SocketAddr = "127.0.0.1:6379".parse().unwrap();
    let info = server.clients.register(addr, laddr, server.keyspace.clock.now_ms());
    let mut client = Client::new(info.clone(), true);
    let mut out = Reply::new(false);
    let mut decoder = Decoder::new(Limits::default());
    let mut buf = BytesMut::from(data);
    let mut args: Vec<Bytes> = Vec::new();
    let mut outcome = Outcome::default();
    loop {
        decoder.limits.unauthenticated = !client.authenticated;
        let mark = out.buf.len();
        match decoder.decode(&mut buf, &mut args) {
            Ok(true) => {
                if args.is_empty() {
                    continue;
                }
                if stalls(&args) {
                    outcome.skipped += 1;
                    continue;
                }
                let subscribed_before = client.subscriptions.active();
                respite::commands::execute(&server, &mut client, &mut out, &args);
                outcome.commands += 1;
                // One reply per command, except where pub/sub answers several: (UN)SUBSCRIBE
                // confirms each channel, and a subscriber gets messages its own commands raise.
                let several = subscribed_before || client.subscriptions.active() || answers_per_channel(&args);
                check_replies(&out.buf[mark..], out.resp3, &args, several);
                if client.close_after_reply || info.killed.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
            }
            Ok(false) => break,
            Err(e) => {
                out.error(format!("ERR Protocol error: {}", e.0).as_bytes());
                check_replies(&out.buf[mark..], out.resp3, &[], false);
                outcome.protocol_error = true;
                break;
            }
        }
        // The connection writes (and forgets) replies past 64 KiB; so may we.
        if out.buf.len() > 64 * 1024 {
            out.buf.clear();
        }
    }
    respite::commands::disconnect(&server, &mut client);
    server.clients.unregister(info.id);
    assert_answers_ping(&server);
    outcome
}

/// A new client on `server` sends PING and must get +PONG.
pub fn assert_answers_ping(server: &respite::Server) {
    let addr: SocketAddr = "127.0.0.1:50001".parse().unwrap();
    let info = server.clients.register(addr, addr, server.keyspace.clock.now_ms());
    let mut client = Client::new(info.clone(), true);
    let mut out = Reply::new(false);
    respite::commands::execute(server, &mut client, &mut out, &[Bytes::from_static(b"PING")]);
    server.clients.unregister(info.id);
    assert_eq!(out.buf, b"+PONG\r\n", "the server no longer answers PING");
}

/// Commands left out of a campaign because they stop or stall the process, not because they fail.
fn stalls(args: &[Bytes]) -> bool {
    let is = |i: usize, word: &str| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()));
    if is(0, "shutdown") || (is(0, "debug") && is(1, "sleep")) {
        return true;
    }
    if is(0, "setrange") && args.len() == 4 {
        let offset = std::str::from_utf8(&args[2]).ok().and_then(|s| s.parse::<u64>().ok());
        return offset.is_some_and(|o| o > 1 << 20);
    }
    // Filtered before execute, so MULTI never queues them for EXEC either.
    false
}

/// (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE answer once per channel (EXEC may run them).
fn answers_per_channel(args: &[Bytes]) -> bool {
    let name = args[0].to_ascii_lowercase();
    name == b"exec" || name.ends_with(b"subscribe")
}

/// The replies one command wrote must be whole RESP frames (at most one unless `several`, RESP3
/// pushes aside), in the protocol the client speaks after it.
fn check_replies(bytes: &[u8], resp3: bool, args: &[Bytes], several: bool) {
    let mut pos = 0;
    let mut frames = 0;
    while pos < bytes.len() {
        // RESP3 pushes are out of band (a tracking client's own invalidations follow its reply):
        // only the replies proper are counted.
        let push = resp3 && bytes[pos] == b'>';
        match frame_len(&bytes[pos..], resp3) {
            Ok(used) => pos += used,
            Err(e) => {
                let shown = &bytes[pos..bytes.len().min(pos + 300)];
                panic!(
                    "bad {} reply to {:?}: {e}; reply starts {:?}",
                    if resp3 { "RESP3" } else { "RESP2" },
                    show_args(args),
                    String::from_utf8_lossy(shown)
                )
            }
        }
        if !push {
            frames += 1;
        }
    }
    assert!(frames <= 1 || several, "{frames} replies to one command {:?}", show_args(args));
}

/// The length of the one complete frame at the start of `b`, checking its framing: type bytes the
/// protocol has, CRLF where it belongs, lengths and counts that match, integers that parse.
/// Hand-written rather than redis-protocol's decoder, which refuses aggregates inside RESP3 sets
/// (COMMAND DOCS sends its history that way, as Redis does).
pub fn frame_len(b: &[u8], resp3: bool) -> Result<usize, String> {
    fn line(b: &[u8]) -> Result<(&[u8], usize), String> {
        let end = b.windows(2).position(|w| w == b"\r\n").ok_or("incomplete line")?;
        let body = &b[1..end];
        if body.contains(&b'\r') || body.contains(&b'\n') {
            return Err("CR or LF inside a line".into());
        }
        Ok((body, end + 2))
    }
    fn int(s: &[u8]) -> Result<i64, String> {
        std::str::from_utf8(s)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad integer {:?}", String::from_utf8_lossy(s)))
    }
    let kind = *b.first().ok_or("empty frame")?;
    let (body, mut used) = line(b)?;
    let aggregate = |n: i64, used: &mut usize| -> Result<(), String> {
        for _ in 0..n {
            *used += frame_len(&b[*used..], resp3)?;
        }
        Ok(())
    };
    match (kind, resp3) {
        (b'+' | b'-', _) => {}
        (b':', _) => {
            int(body)?;
        }
        (b'$', _) | (b'!' | b'=', true) => {
            let n = int(body)?;
            if n == -1 && kind == b'$' && !resp3 {
                return Ok(used);
            }
            let n = usize::try_from(n).map_err(|_| format!("bad length {n}"))?;
            let payload = b.get(used..used + n).ok_or("incomplete bulk")?;
            if kind == b'=' && (n < 4 || payload[3] != b':') {
                return Err("verbatim string without its format".into());
            }
            if b.get(used + n..used + n + 2) != Some(&b"\r\n"[..]) {
                return Err("bulk not followed by CRLF".into());
            }
            used += n + 2;
        }
        (b'*', _) | (b'~' | b'>', true) => {
            let n = int(body)?;
            if n == -1 && kind == b'*' && !resp3 {
                return Ok(used);
            }
            if n < 0 {
                return Err(format!("bad count {n}"));
            }
            aggregate(n, &mut used)?;
        }
        (b'%' | b'|', true) => {
            let n = int(body)?;
            if n < 0 {
                return Err(format!("bad count {n}"));
            }
            aggregate(2 * n, &mut used)?;
            if kind == b'|' {
                // Attributes precede the frame they describe.
                used += frame_len(&b[used..], resp3)?;
            }
        }
        (b'_', true) if body.is_empty() => {}
        (b'#', true) if body == b"t" || body == b"f" => {}
        (b',', true) => {
            let s = std::str::from_utf8(body).map_err(|_| "bad double")?;
            if !matches!(s, "inf" | "-inf" | "nan") && s.parse::<f64>().is_err() {
                return Err(format!("bad double {s:?}"));
            }
        }
        (b'(', true) => {
            let digits = body.strip_prefix(b"-").unwrap_or(body);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err("bad big number".into());
            }
        }
        _ => return Err(format!("unexpected type byte {:?}", kind as char)),
    }
    Ok(used)
}

fn show_args(args: &[Bytes]) -> Vec<String> {
    args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}
