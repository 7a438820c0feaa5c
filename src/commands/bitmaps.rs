//! Bitmaps: bit-level commands on strings (Redis's bitops.c): SETBIT GETBIT BITCOUNT BITPOS
//! BITOP BITFIELD BITFIELD_RO. Bit 0 is the most significant bit of the first byte; reads past
//! the end see zeros, writes grow the string with zeros.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::strings::{clamp_range, string_of};
use super::{eq_ic, parse_i64, parse_i64_strict, CmdError, CmdResult, Ctx};
use crate::keyspace::notify::class;
use crate::keyspace::{Entry, Lookup, Slot, Ttl, Value};

const OFFSET_ERR: &str = "ERR bit offset is not an integer or out of range";
const BIT_ERR: &str = "ERR bit is not an integer or out of range";
const TYPE_ERR: &str = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// A bit offset argument (Redis's getBitOffsetFromArgument): below proto-max-bulk-len bytes.
/// `width` given, BITFIELD's `#N` form means N fields of that width.
fn bit_offset(ctx: &Ctx<'_>, arg: &[u8], width: Option<u32>) -> Result<u64, CmdError> {
    let err = || CmdError::msg(OFFSET_ERR);
    let (digits, scale) = match (arg.first(), width) {
        (Some(b'#'), Some(w)) => (&arg[1..], w as i64),
        _ => (arg, 1),
    };
    let n = parse_i64_strict(digits).and_then(|n| n.checked_mul(scale)).ok_or_else(err)?;
    let max_bytes = ctx.server.config.proto_max_bulk_len.load(Relaxed);
    if n < 0 || (n as u64 >> 3) >= max_bytes {
        return Err(err());
    }
    Ok(n as u64)
}

fn bit_at(s: &[u8], pos: u64) -> u8 {
    s.get((pos >> 3) as usize).map_or(0, |b| (b >> (7 - (pos & 7))) & 1)
}

/// The string under the slot's key, created or zero-padded so that byte `min_len - 1` exists.
/// Returns the length it had before (None: the key was created).
fn grow_for_bits(slot: &mut Slot<'_>, min_len: usize) -> Result<Option<usize>, CmdError> {
    let old_len = match slot.get() {
        Some(e) => Some(string_of(e)?.len()),
        None => None,
    };
    match old_len {
        None => slot.set(Value::StrBuf(vec![0; min_len]), Ttl::Clear),
        Some(len) if len < min_len => {
            let entry = slot.get_mut().expect("exists");
            entry.set_raw_hint();
            entry.string_buf().ok_or(CmdError::WRONGTYPE)?.resize(min_len, 0);
        }
        Some(_) => {}
    }
    Ok(old_len)
}

/// The string to change in place (the key exists and is a string: `grow_for_bits` ran).
fn bits_mut<'s>(slot: &'s mut Slot<'_>) -> &'s mut Vec<u8> {
    let entry = slot.get_mut().expect("grown");
    entry.set_raw_hint();
    entry.string_buf().expect("a string")
}

pub fn setbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(ctx, &args[2], None)?;
    let on = match parse_i64_strict(&args[3]) {
        Some(v @ (0 | 1)) => v as u8,
        _ => return Err(CmdError::msg(BIT_ERR)),
    };
    let byte = (offset >> 3) as usize;
    let mask = 1u8 << (7 - (offset & 7));
    let (old, changed) = ctx.server.keyspace.write(ctx.client.db, &args[1], ctx.now, |slot| {
        let before = grow_for_bits(slot, byte + 1)?;
        let current = slot.get().and_then(|e| e.value.as_str()).map_or(0, |s| s[byte] & mask);
        let old = u8::from(current != 0);
        // As Redis: a new or grown string, or a flipped bit, is a change (event, WATCH).
        let changed = before.is_none_or(|len| len <= byte) || old != on;
        if changed {
            let s = bits_mut(slot);
            s[byte] = if on == 1 { s[byte] | mask } else { s[byte] & !mask };
        }
        Ok::<_, CmdError>((old, changed))
    })?;
    if changed {
        ctx.notify(class::STRING, "setbit", &args[1]);
    }
    ctx.out.int(old as i64);
    Ok(())
}

pub fn getbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(ctx, &args[2], None)?;
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| {
        let bit = match e {
            Some(e) => bit_at(string_of(e)?, offset),
            None => 0,
        };
        out.int(bit as i64);
        Ok(())
    })
}

/// A BITCOUNT/BITPOS range argument's unit.
fn unit_is_bit(arg: &[u8]) -> Result<bool, CmdError> {
    if eq_ic(arg, "bit") {
        Ok(true)
    } else if eq_ic(arg, "byte") {
        Ok(false)
    } else {
        Err(CmdError::SYNTAX)
    }
}

/// A BITCOUNT/BITPOS range as bit positions (from, to), both included: clamped in bits, or in
/// bytes and then widened to whole bytes.
fn bit_range(start: i64, end: i64, len: i64, unit_bit: bool) -> (i64, i64) {
    if unit_bit {
        clamp_range(start, end, len * 8)
    } else {
        let (s, e) = clamp_range(start, end, len);
        (s * 8, e * 8 + 7)
    }
}

/// Set bits of `s` between bit positions `from` and `to`, both included.
fn count_bits(s: &[u8], from: u64, to: u64) -> u64 {
    let (first, last) = ((from >> 3) as usize, (to >> 3) as usize);
    let bytes = &s[first..=last];
    let mut n: u64 = bytes
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()).count_ones() as u64)
        .sum();
    n += bytes.chunks_exact(8).remainder().iter().map(|b| b.count_ones() as u64).sum::<u64>();
    // Take off the bits of the edge bytes that lie outside the range.
    let head = s[first] & !(0xffu8 >> (from & 7));
    let tail = s[last] & (0x7fu8 >> (to & 7));
    n - head.count_ones() as u64 - tail.count_ones() as u64
}

pub fn bitcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| {
        // As Redis 7.0: a missing key answers 0 before the arguments are looked at.
        let Some(e) = e else {
            out.int(0);
            return Ok(());
        };
        let s = string_of(e)?;
        let len = s.len() as i64;
        let (from, to) = match args.len() {
            2 => (0, len * 8 - 1),
            4 | 5 => {
                let start = parse_i64(&args[2])?;
                let end = parse_i64(&args[3])?;
                let bit = match args.get(4) {
                    Some(a) => unit_is_bit(a)?,
                    None => false,
                };
                if start < 0 && end < 0 && start > end {
                    out.int(0);
                    return Ok(());
                }
                bit_range(start, end, len, bit)
            }
            _ => return Err(CmdError::SYNTAX),
        };
        out.int(if from > to || len == 0 {
            0
        } else {
            count_bits(s, from as u64, to as u64) as i64
        });
        Ok(())
    })
}

/// The first bit equal to `bit` between positions `from` and `to` (both included).
fn find_bit(s: &[u8], from: u64, to: u64, bit: u8) -> Option<u64> {
    // A byte holding no wanted bit: all zeros when looking for a one, all ones for a zero.
    let skip: u8 = if bit == 1 { 0 } else { 0xff };
    let mut pos = from;
    while pos <= to {
        let i = (pos >> 3) as usize;
        if pos & 7 == 0 && to - pos >= 63 && s[i..i + 8] == [skip; 8] {
            pos += 64;
        } else if pos & 7 == 0 && to - pos >= 7 && s[i] == skip {
            pos += 8;
        } else if bit_at(s, pos) == bit {
            return Some(pos);
        } else {
            pos += 1;
        }
    }
    None
}

pub fn bitpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let bit = match parse_i64(&args[2])? {
        b @ (0 | 1) => b as u8,
        _ => return Err(CmdError::msg("ERR The bit argument must be 1 or 0.")),
    };
    let out = &mut *ctx.out;
    ctx.server.keyspace.read(ctx.client.db, &args[1], ctx.now, Lookup::Read, |e| {
        // A missing key is an endless run of zeros (Redis 7.0 answers before parsing the range).
        let Some(e) = e else {
            out.int(if bit == 1 { -1 } else { 0 });
            return Ok(());
        };
        let s = string_of(e)?;
        let len = s.len() as i64;
        let end_given = args.len() >= 5;
        let (from, to) = match args.len() {
            3 => (0, len * 8 - 1),
            4..=6 => {
                let start = parse_i64(&args[3])?;
                let unit_bit = match args.get(5) {
                    Some(a) => unit_is_bit(a)?,
                    None => false,
                };
                let end = match args.get(4) {
                    Some(a) => parse_i64(a)?,
                    None => len - 1,
                };
                bit_range(start, end, len, unit_bit)
            }
            _ => return Err(CmdError::SYNTAX),
        };
        let pos = if from > to {
            -1
        } else {
            match find_bit(s, from as u64, to as u64, bit) {
                Some(p) => p as i64,
                // Looking for a zero without an end: the string goes on with zeros.
                None if bit == 0 && !end_given => to + 1,
                None => -1,
            }
        };
        out.int(pos);
        Ok(())
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

pub fn bitop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let name = &args[1];
    let op = if eq_ic(name, "and") {
        BitOp::And
    } else if eq_ic(name, "or") {
        BitOp::Or
    } else if eq_ic(name, "xor") {
        BitOp::Xor
    } else if eq_ic(name, "not") {
        BitOp::Not
    } else {
        return Err(CmdError::SYNTAX);
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err(CmdError::msg("ERR BITOP NOT must be called with a single source key."));
    }
    let ks = &ctx.server.keyspace;
    // Missing keys are empty strings; any other type fails the whole command.
    let mut sources: Vec<Vec<u8>> = Vec::with_capacity(args.len() - 3);
    for key in &args[3..] {
        let s = ks.read(ctx.client.db, key, ctx.now, Lookup::Read, |e| match e {
            Some(e) => string_of(e).map(<[u8]>::to_vec),
            None => Ok(Vec::new()),
        })?;
        sources.push(s);
    }
    let len = sources.iter().map(Vec::len).max().unwrap_or(0);
    // Source by source over the whole result (a loop the compiler vectorises); a shorter source
    // counts as zeros past its end.
    let mut result = vec![0u8; len];
    result[..sources[0].len()].copy_from_slice(&sources[0]);
    match op {
        BitOp::Not => result.iter_mut().for_each(|b| *b = !*b),
        BitOp::And => {
            for s in &sources[1..] {
                result.iter_mut().zip(s).for_each(|(r, b)| *r &= b);
                result[s.len()..].fill(0);
            }
        }
        BitOp::Or => sources[1..]
            .iter()
            .for_each(|s| result.iter_mut().zip(s).for_each(|(r, b)| *r |= b)),
        BitOp::Xor => sources[1..]
            .iter()
            .for_each(|s| result.iter_mut().zip(s).for_each(|(r, b)| *r ^= b)),
    }
    let dest = &args[2];
    if len > 0 {
        ks.write(ctx.client.db, dest, ctx.now, |slot| slot.set_built_string(result, Ttl::Clear));
        ctx.notify(class::STRING, "set", dest);
    } else if ks.write(ctx.client.db, dest, ctx.now, |slot| slot.remove().is_some()) {
        ctx.notify(class::GENERIC, "del", dest);
    }
    ctx.out.int(len as i64);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// One BITFIELD operation: a signed or unsigned integer of `bits` bits at bit `offset`.
#[derive(Clone, Copy)]
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

/// `i1`..`i64` or `u1`..`u63` (a u64 could not be answered as a RESP integer).
fn field_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let err = || CmdError::msg(TYPE_ERR);
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    let bits = parse_i64_strict(&arg[1..]).ok_or_else(err)?;
    if bits < 1 || bits > if signed { 64 } else { 63 } {
        return Err(err());
    }
    Ok((signed, bits as u32))
}

fn parse_fields(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<Vec<Field>, CmdError> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let sub = &args[j];
        let more = args.len() - j - 1;
        if eq_ic(sub, "overflow") && more >= 1 {
            let kind = &args[j + 1];
            overflow = if eq_ic(kind, "wrap") {
                Overflow::Wrap
            } else if eq_ic(kind, "sat") {
                Overflow::Sat
            } else if eq_ic(kind, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::msg("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        }
        let get = eq_ic(sub, "get") && more >= 2;
        let set = eq_ic(sub, "set") && more >= 3;
        let incr = eq_ic(sub, "incrby") && more >= 3;
        if !(get || set || incr) {
            return Err(CmdError::SYNTAX);
        }
        let (signed, bits) = field_type(&args[j + 1])?;
        let offset = bit_offset(ctx, &args[j + 2], Some(bits))?;
        let op = if get {
            FieldOp::Get
        } else {
            let n = parse_i64(&args[j + 3])?;
            if set {
                FieldOp::Set(n)
            } else {
                FieldOp::IncrBy(n)
            }
        };
        fields.push(Field {
            op,
            signed,
            bits,
            offset,
            overflow,
        });
        j += if get { 3 } else { 4 };
    }
    Ok(fields)
}

fn get_unsigned(s: &[u8], offset: u64, bits: u32) -> u64 {
    (0..bits as u64).fold(0, |v, i| (v << 1) | bit_at(s, offset + i) as u64)
}

fn get_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(s, offset, bits);
    // Extend the sign bit over the high bits.
    if bits < 64 && v >> (bits - 1) & 1 == 1 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

fn set_bits(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for i in 0..bits as u64 {
        let pos = offset + i;
        let mask = 1u8 << (7 - (pos & 7));
        let byte = &mut s[(pos >> 3) as usize];
        if value >> (bits as u64 - 1 - i) & 1 == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// Redis's checkUnsignedBitfieldOverflow: whether `value + incr` leaves a `bits`-bit unsigned
/// integer, and the value to store instead under WRAP or SAT.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max = (1u64 << bits) - 1;
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & max;
    if value > max || (incr > 0 && incr > max_incr) {
        Some(if ow == Overflow::Sat { max } else { wrap() })
    } else if incr < 0 && incr < min_incr {
        Some(if ow == Overflow::Sat { 0 } else { wrap() })
    } else {
        None
    }
}

/// Redis's checkSignedBitfieldOverflow, with its exact conditions.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let high = u64::MAX << bits;
            c = if c >> (bits - 1) & 1 == 1 { c | high } else { c & !high };
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr) {
        Some(if ow == Overflow::Sat { max } else { wrap() })
    } else if value < min || (bits != 64 && incr < min_incr) || (value < 0 && incr < 0 && incr < min_incr) {
        Some(if ow == Overflow::Sat { min } else { wrap() })
    } else {
        None
    }
}

/// Runs one SET or INCRBY on `s`: the reply (None: FAIL refused it) and whether the bits changed.
fn write_field(s: &mut [u8], f: &Field) -> (Option<i64>, bool) {
    let (old, new, reply, overflowed);
    let incr = match f.op {
        FieldOp::IncrBy(n) => n,
        _ => 0,
    };
    if f.signed {
        let o = get_signed(s, f.offset, f.bits);
        let value = match f.op {
            FieldOp::Set(n) => n,
            _ => o,
        };
        let ov = signed_overflow(value, incr, f.bits, f.overflow);
        let n = ov.unwrap_or_else(|| value.wrapping_add(incr));
        overflowed = ov.is_some();
        (old, new) = (o as u64, n as u64);
        reply = if matches!(f.op, FieldOp::IncrBy(_)) { n } else { o };
    } else {
        let o = get_unsigned(s, f.offset, f.bits);
        let value = match f.op {
            FieldOp::Set(n) => n as u64,
            _ => o,
        };
        let ov = unsigned_overflow(value, incr, f.bits, f.overflow);
        let n = ov.unwrap_or_else(|| value.wrapping_add(incr as u64));
        overflowed = ov.is_some();
        (old, new) = (o, n);
        reply = if matches!(f.op, FieldOp::IncrBy(_)) { n as i64 } else { o as i64 };
    }
    if overflowed && f.overflow == Overflow::Fail {
        return (None, false);
    }
    set_bits(s, f.offset, f.bits, new);
    (Some(reply), old != new)
}

fn read_field(s: &[u8], f: &Field) -> i64 {
    if f.signed {
        get_signed(s, f.offset, f.bits)
    } else {
        get_unsigned(s, f.offset, f.bits) as i64
    }
}

fn bitfield_generic(ctx: &mut Ctx<'_>, args: &[Bytes], read_only: bool) -> CmdResult {
    let fields = parse_fields(ctx, args)?;
    let key = &args[1];
    let out = &mut *ctx.out;
    if fields.iter().all(|f| f.op == FieldOp::Get) {
        return ctx
            .server
            .keyspace
            .read(ctx.client.db, key, ctx.now, Lookup::Read, |e: Option<&Entry>| {
                let s = match e {
                    Some(e) => string_of(e)?,
                    None => &[][..],
                };
                out.array(fields.len());
                fields.iter().for_each(|f| out.int(read_field(s, f)));
                Ok(())
            });
    }
    if read_only {
        return Err(CmdError::msg("ERR BITFIELD_RO only supports the GET subcommand"));
    }
    let highest = fields
        .iter()
        .filter(|f| f.op != FieldOp::Get)
        .map(|f| f.offset + f.bits as u64 - 1)
        .max()
        .unwrap_or(0);
    let changed = ctx.server.keyspace.write(ctx.client.db, key, ctx.now, |slot| {
        let before = grow_for_bits(slot, (highest >> 3) as usize + 1)?;
        let grew = before.is_none_or(|len| len <= (highest >> 3) as usize);
        // As Redis: the key is created or grown even when FAIL then refuses every write.
        let s = bits_mut(slot);
        let mut changes = 0;
        out.array(fields.len());
        for f in &fields {
            if f.op == FieldOp::Get {
                out.int(read_field(s, f));
                continue;
            }
            let (reply, changed) = write_field(s, f);
            match reply {
                Some(v) => {
                    out.int(v);
                    changes += usize::from(grew || changed);
                }
                None => out.null(),
            }
        }
        Ok::<_, CmdError>(changes > 0)
    })?;
    if changed {
        ctx.notify(class::STRING, "setbit", key);
    }
    Ok(())
}

pub fn bitfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

pub fn bitfield_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_and_write_most_significant_bit_first() {
        let mut s = vec![0u8; 3];
        set_bits(&mut s, 4, 8, 0xab);
        assert_eq!(s, [0x0a, 0xb0, 0]);
        assert_eq!(get_unsigned(&s, 4, 8), 0xab);
        assert_eq!(get_signed(&s, 4, 8), 0xab_u8 as i8 as i64);
        assert_eq!(get_signed(&s, 0, 64), 0x0ab0_0000_0000_0000);
        // Past the end reads zeros.
        assert_eq!(get_unsigned(&s, 20, 12), 0);
    }

    #[test]
    fn overflow_matches_redis_for_the_documented_cases() {
        // BITFIELD's docs: u2 at 3 INCRBY 1 wraps to 0, saturates at 3, fails.
        assert_eq!(unsigned_overflow(3, 1, 2, Overflow::Wrap), Some(0));
        assert_eq!(unsigned_overflow(3, 1, 2, Overflow::Sat), Some(3));
        assert!(unsigned_overflow(2, 1, 2, Overflow::Fail).is_none());
        assert_eq!(signed_overflow(127, 1, 8, Overflow::Wrap), Some(-128));
        assert_eq!(signed_overflow(-128, -1, 8, Overflow::Sat), Some(-128));
        assert_eq!(signed_overflow(i64::MAX, 1, 64, Overflow::Wrap), Some(i64::MIN));
        assert_eq!(signed_overflow(5, 0, 8, Overflow::Wrap), None);
    }

    #[test]
    fn counting_and_searching_respect_bit_ranges() {
        let s = [0xff, 0xf0, 0x00, 0x01];
        assert_eq!(count_bits(&s, 0, 31), 13);
        assert_eq!(count_bits(&s, 4, 11), 8);
        assert_eq!(count_bits(&s, 12, 30), 0);
        assert_eq!(find_bit(&s, 0, 31, 0), Some(12));
        assert_eq!(find_bit(&s, 12, 31, 1), Some(31));
        assert_eq!(find_bit(&s, 0, 7, 0), None);
        let long = [0u8; 100];
        assert_eq!(find_bit(&long, 3, 799, 1), None);
        assert_eq!(find_bit(&long, 3, 799, 0), Some(3));
    }
}
