//! The request decoder: hand-written because it is the hot path (the redis-protocol crate's decoder
//! measured about 3.5x slower here and does not take inline commands); redis-protocol stays its
//! oracle in the property tests.
//!
//! Mirrors Redis's processMultibulkBuffer/processInlineBuffer: same limits, same error texts, and
//! a declared bulk length never reserves memory before the bytes arrive.

use bytes::{Bytes, BytesMut};

/// Redis's PROTO_INLINE_MAX_SIZE: longest inline command or length line.
pub const INLINE_MAX: usize = 64 * 1024;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// proto-max-bulk-len
    pub max_bulk_len: usize,
    /// Largest multibulk element count accepted (Redis: INT_MAX; 1024*1024 in later versions).
    pub max_multibulk: usize,
    /// Before AUTH, Redis accepts only small commands (10 elements, 16 KB bulks).
    pub unauthenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk: i32::MAX as usize,
            unauthenticated: false,
        }
    }
}

/// The text after `-ERR Protocol error: ` that Redis sends before closing the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(s: &str) -> Self {
        ProtocolError(s.to_string())
    }
}

#[derive(Default)]
pub struct Decoder {
    pub limits: Limits,
    spans: Vec<(usize, usize)>,
    /// A multibulk frame read up to here by an earlier call (elements still to read, position),
    /// so a frame arriving in many reads is parsed once, not again from its start on every read.
    /// Valid because between calls the caller only appends to the buffer.
    partial: Option<(i64, usize)>,
}

enum Parsed {
    Incomplete,
    /// A complete command of `consumed` bytes whose arguments are in `spans` (empty: nothing to run).
    Spans(usize),
    /// An inline command whose arguments had quotes or escapes to undo.
    Owned(usize, Vec<Vec<u8>>),
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            spans: Vec::new(),
            partial: None,
        }
    }

    /// Takes the next complete command off the front of `buf` into `args`.
    /// Ok(false): more bytes needed; until the next call, only append to `buf`.
    /// Ok(true) with empty `args`: an empty command, skip it.
    pub fn decode(&mut self, buf: &mut BytesMut, args: &mut Vec<Bytes>) -> Result<bool, ProtocolError> {
        args.clear();
        if buf.is_empty() {
            return Ok(false);
        }
        let parsed = if buf[0] == b'*' { self.multibulk(buf)? } else { inline(buf)? };
        match parsed {
            Parsed::Incomplete => Ok(false),
            Parsed::Spans(consumed) => {
                let frame = buf.split_to(consumed).freeze();
                args.extend(self.spans.iter().map(|&(s, e)| frame.slice(s..e)));
                Ok(true)
            }
            Parsed::Owned(consumed, owned) => {
                let _ = buf.split_to(consumed);
                args.extend(owned.into_iter().map(Bytes::from));
                Ok(true)
            }
        }
    }

    fn multibulk(&mut self, buf: &[u8]) -> Result<Parsed, ProtocolError> {
        let (count, mut pos) = match self.partial.take() {
            Some((left, pos)) if pos <= buf.len() => (left, pos),
            _ => {
                self.spans.clear();
                let Some((count, pos)) = length_line(buf, 0, "too big mbulk count string")? else {
                    return Ok(Parsed::Incomplete);
                };
                let count = match count {
                    Some(n) if n <= self.limits.max_multibulk as i64 => n,
                    _ => return Err(ProtocolError::new("invalid multibulk length")),
                };
                if self.limits.unauthenticated && count > 10 {
                    return Err(ProtocolError::new("unauthenticated multibulk length"));
                }
                if count <= 0 {
                    return Ok(Parsed::Spans(pos));
                }
                // Reserve for what is plausibly here, not for what the client declares.
                self.spans.reserve((count as usize).min(1024));
                (count, pos)
            }
        };
        for left in (1..=count).rev() {
            if pos >= buf.len() {
                self.partial = Some((left, pos));
                return Ok(Parsed::Incomplete);
            }
            if buf[pos] != b'$' {
                let got = buf[pos] as char;
                return Err(ProtocolError(format!("expected '$', got '{got}'")));
            }
            let Some((len, body)) = length_line(buf, pos, "too big bulk count string")? else {
                self.partial = Some((left, pos));
                return Ok(Parsed::Incomplete);
            };
            let len = match len {
                Some(n) if n >= 0 && n as u64 <= self.limits.max_bulk_len as u64 => n as usize,
                _ => return Err(ProtocolError::new("invalid bulk length")),
            };
            if self.limits.unauthenticated && len > 16384 {
                return Err(ProtocolError::new("unauthenticated bulk length"));
            }
            // Like Redis, the two bytes after the payload are skipped, not checked.
            if buf.len() - body < len + 2 {
                self.partial = Some((left, pos));
                return Ok(Parsed::Incomplete);
            }
            self.spans.push((body, body + len));
            pos = body + len + 2;
        }
        Ok(Parsed::Spans(pos))
    }
}

/// The second element (for most commands, the first key) of each complete bulk array at the
/// front of `buf`, as byte ranges into `buf`, up to `out.len()` of them; returns how many were
/// found. A look-ahead for the keyspace's prefetch only: nothing is consumed, an element-less or
/// one-element array counts as an empty range, and anything else (an inline command, an incomplete
/// or malformed frame, an array of more than `PEEK_MAX_ARGS`) ends it where it is.
pub fn peek_keys(buf: &[u8], out: &mut [(usize, usize)]) -> usize {
    const PEEK_MAX_ARGS: i64 = 64;
    let mut found = 0;
    let mut pos = 0;
    'frames: while found < out.len() && buf.get(pos) == Some(&b'*') {
        let Ok(Some((Some(count @ 0..=PEEK_MAX_ARGS), mut at))) = length_line(buf, pos, "") else {
            break;
        };
        let mut key = (0, 0);
        for i in 0..count {
            if buf.get(at) != Some(&b'$') {
                break 'frames;
            }
            let Ok(Some((Some(len @ 0..), body))) = length_line(buf, at, "") else {
                break 'frames;
            };
            let end = body.saturating_add(len as usize);
            if end.saturating_add(2) > buf.len() {
                break 'frames;
            }
            if i == 1 {
                key = (body, end);
            }
            at = end + 2;
        }
        out[found] = key;
        found += 1;
        pos = at;
    }
    found
}

/// Parses `<prefix><integer>\r\n` at `start`. Ok(None): incomplete. The integer is None when it is
/// not a valid integer. Returns the position after the line.
fn length_line(buf: &[u8], start: usize, too_big: &str) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
    let rest = &buf[start..];
    let Some(cr) = memchr(b'\r', rest) else {
        if rest.len() > INLINE_MAX {
            return Err(ProtocolError::new(too_big));
        }
        return Ok(None);
    };
    if cr + 1 >= rest.len() {
        return Ok(None);
    }
    Ok(Some((parse_int(&rest[1..cr]), start + cr + 2)))
}

#[inline]
fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Redis's string2ll: optional '-', digits, no leading zeros or '+', fits in i64.
pub fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

fn inline(buf: &[u8]) -> Result<Parsed, ProtocolError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > INLINE_MAX {
            return Err(ProtocolError::new("too big inline request"));
        }
        return Ok(Parsed::Incomplete);
    };
    let mut line = &buf[..nl];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    let args = split_args(line).ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))?;
    Ok(Parsed::Owned(nl + 1, args))
}

/// Redis's sdssplitargs: whitespace-separated words, "double quotes" with C escapes and \xHH,
/// 'single quotes' with \' only. None on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut p = 0;
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            if in_dq {
                if p >= line.len() {
                    return None;
                }
                let c = line[p];
                if c == b'\\' && p + 3 < line.len() && line[p + 1] == b'x' && is_hex(line[p + 2]) && is_hex(line[p + 3]) {
                    cur.push(hex(line[p + 2]) * 16 + hex(line[p + 3]));
                    p += 3;
                } else if c == b'\\' && p + 1 < line.len() {
                    p += 1;
                    cur.push(match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    // The closing quote must be followed by a space or nothing.
                    if p + 1 < line.len() && !is_space(line[p + 1]) {
                        return None;
                    }
                    in_dq = false;
                    p += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                if p >= line.len() {
                    return None;
                }
                let c = line[p];
                if c == b'\\' && p + 1 < line.len() && line[p + 1] == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if p + 1 < line.len() && !is_space(line[p + 1]) {
                        return None;
                    }
                    in_sq = false;
                    p += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if p >= line.len() {
                    break;
                }
                match line[p] {
                    c if is_space(c) => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
            }
            p += 1;
        }
        debug_assert!(!in_dq && !in_sq);
        args.push(cur);
    }
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(input);
        let mut args = Vec::new();
        let mut out = Vec::new();
        while d.decode(&mut buf, &mut args)? {
            out.push(args.iter().map(|a| a.to_vec()).collect());
        }
        Ok(out)
    }

    #[test]
    fn bulk_arrays_and_pipelines() {
        let got = decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET").unwrap();
        assert_eq!(got, vec![vec![b"GET".to_vec(), b"k".to_vec()], vec![b"PING".to_vec()]]);
    }

    #[test]
    fn inline_commands_with_quotes() {
        let got = decode_all(b"PING\r\nset k \"a b\\x41\\n\"\nset 'it\\'s' x\r\n\r\n").unwrap();
        assert_eq!(got[0], vec![b"PING".to_vec()]);
        assert_eq!(got[1], vec![b"set".to_vec(), b"k".to_vec(), b"a bA\n".to_vec()]);
        assert_eq!(got[2], vec![b"set".to_vec(), b"it's".to_vec(), b"x".to_vec()]);
        assert!(got[3].is_empty());
    }

    #[test]
    fn redis_error_texts() {
        let err = |b: &[u8]| decode_all(b).unwrap_err().0;
        assert_eq!(err(b"*x\r\n"), "invalid multibulk length");
        assert_eq!(err(b"*1\r\n$-5\r\n"), "invalid bulk length");
        assert_eq!(err(b"*1\r\n$9999999999\r\n"), "invalid bulk length");
        assert_eq!(err(b"*1\r\n+PING\r\n"), "expected '$', got '+'");
        assert_eq!(err(b"set k \"abc\r\n"), "unbalanced quotes in request");
        assert_eq!(err(b"set k \"abc\"x\r\n"), "unbalanced quotes in request");
        assert_eq!(err(&vec![b'a'; INLINE_MAX + 1]), "too big inline request");
        let mut big = b"*".to_vec();
        big.extend(vec![b'1'; INLINE_MAX + 1]);
        assert_eq!(err(&big), "too big mbulk count string");
    }

    #[test]
    fn huge_declared_length_reserves_nothing() {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&b"*1\r\n$536870912\r\nabc"[..]);
        let mut args = Vec::new();
        assert!(!d.decode(&mut buf, &mut args).unwrap());
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn parse_int_matches_string2ll() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-1"), Some(-1));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        for bad in [&b""[..], b"-", b"01", b"-0", b"+1", b" 1", b"1a"] {
            assert_eq!(parse_int(bad), None, "{:?}", bad);
        }
    }

    /// A frame fed a byte at a time resumes where the last call stopped and decodes as if whole.
    #[test]
    fn frames_split_anywhere_decode_the_same() {
        let input: &[u8] = b"*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\nPING\r\n";
        let whole = decode_all(input).unwrap();
        let mut d = Decoder::default();
        let mut buf = BytesMut::new();
        let mut args = Vec::new();
        let mut got = Vec::new();
        for &b in input {
            buf.extend_from_slice(&[b]);
            while d.decode(&mut buf, &mut args).unwrap() {
                got.push(args.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
            }
        }
        assert_eq!(got, whole);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn peek_keys_finds_complete_frames_only() {
        let buf =
            b"*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$2\r\nk3\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$2\r\nk4";
        let mut out = [(0, 0); 8];
        let n = peek_keys(buf, &mut out);
        let keys: Vec<&[u8]> = out[..n].iter().map(|&(s, e)| &buf[s..e]).collect();
        assert_eq!(keys, vec![&b"k1"[..], b"", b"k3"]);
        // Bounded by `out`, stopped by inline commands, bad lengths and huge arrays.
        assert_eq!(peek_keys(buf, &mut out[..1]), 1);
        assert_eq!(peek_keys(b"GET k\r\n", &mut out), 0);
        assert_eq!(peek_keys(b"*2\r\n$-5\r\nGET\r\n", &mut out), 0);
        assert_eq!(peek_keys(b"*2\r\n$99999999999999999999\r\n", &mut out), 0);
        assert_eq!(peek_keys(b"*65\r\n$3\r\nGET\r\n", &mut out), 0);
        assert_eq!(peek_keys(b"*0\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", &mut out), 2);
    }
}
