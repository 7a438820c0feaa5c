//! HyperLogLog: PFADD PFCOUNT PFMERGE (Redis's hyperloglog.c), in Redis's own string format: a
//! 16-byte header ("HYLL", encoding, 3 unused bytes, the cached cardinality with its invalid bit)
//! and 16384 six-bit registers, sparse (run-length opcodes, while small) or dense. An HLL copied
//! from Redis with GET/SET counts the same here, and the reverse; GET shows the same bytes.

use bytes::Bytes;

use super::strings::string_of;
use super::{CmdError, CmdResult, Ctx};
use crate::keyspace::notify::class;
use crate::keyspace::{Lookup, Ttl};

const P: u32 = 14;
const REGISTERS: usize = 1 << P;
const Q: usize = 64 - P as usize;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
const HDR: usize = 16;
const DENSE_SIZE: usize = HDR + (REGISTERS * BITS).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
/// 0.5 / ln(2): the estimator's constant for m -> infinity.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

const NOT_HLL: CmdError = CmdError(std::borrow::Cow::Borrowed("WRONGTYPE Key is not a valid HyperLogLog string value."));
const CORRUPT: CmdError = CmdError(std::borrow::Cow::Borrowed("INVALIDOBJ Corrupted HLL object detected"));

/// A sparse representation that does not add up to 16384 registers.
struct Corrupt;

/// A corrupt HLL as the error Redis answers.
fn checked<T>(r: Result<T, Corrupt>) -> Result<T, CmdError> {
    r.map_err(|Corrupt| CORRUPT)
}

/// Austin Appleby's MurmurHash64A, as Redis uses it (little-endian words).
fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut k = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls in and the length of its run of zero bits plus one.
fn pattern(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// A new, empty HLL: sparse, one XZERO run over every register, cached cardinality 0.
fn new_hll() -> Vec<u8> {
    let mut s = Vec::with_capacity(HDR + 2);
    s.extend_from_slice(b"HYLL");
    s.push(SPARSE);
    s.extend_from_slice(&[0; 11]);
    let l = XZERO_MAX_LEN - 1;
    s.extend_from_slice(&[0x40 | (l >> 8) as u8, (l & 0xff) as u8]);
    s
}

fn is_hll(s: &[u8]) -> bool {
    s.len() >= HDR && &s[..4] == b"HYLL" && s[4] <= SPARSE && (s[4] != DENSE || s.len() == DENSE_SIZE)
}

fn invalidate_cache(s: &mut [u8]) {
    s[15] |= 0x80;
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = regs[byte] as u16;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u16;
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX as u16) as u8
}

fn dense_set(regs: &mut [u8], i: usize, v: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = v as u16;
    regs[byte] &= !((REGISTER_MAX as u16) << fb) as u8;
    regs[byte] |= (v << fb) as u8;
    if let Some(next) = regs.get_mut(byte + 1) {
        *next &= !((REGISTER_MAX as u16) >> (8 - fb)) as u8;
        *next |= (v >> (8 - fb)) as u8;
    }
}

/// One opcode of the sparse form: (registers it covers, its value, its length in bytes).
fn opcode(s: &[u8], p: usize) -> Result<(usize, u8, usize), Corrupt> {
    let b = s[p];
    Ok(if b & 0xc0 == 0 {
        ((b & 0x3f) as usize + 1, 0, 1)
    } else if b & 0xc0 == 0x40 {
        let lo = *s.get(p + 1).ok_or(Corrupt)? as usize;
        ((((b & 0x3f) as usize) << 8 | lo) + 1, 0, 2)
    } else {
        ((b & 0x3) as usize + 1, ((b >> 2) & 0x1f) + 1, 1)
    })
}

fn val_op(value: u8, len: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (len - 1) as u8
}

fn push_zeros(seq: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        let l = len - 1;
        seq.extend_from_slice(&[0x40 | (l >> 8) as u8, (l & 0xff) as u8]);
    } else {
        seq.push((len - 1) as u8);
    }
}

/// Calls `f(first register, registers covered, value)` for each run of the sparse form.
fn for_each_run(s: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<(), Corrupt> {
    let (mut p, mut first) = (HDR, 0);
    while p < s.len() {
        let (span, value, len) = opcode(s, p)?;
        if first + span > REGISTERS {
            return Err(Corrupt);
        }
        f(first, span, value);
        first += span;
        p += len;
    }
    if first == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// Redis's hllSparseToDense: the same header (cached cardinality included), dense registers.
fn to_dense(s: &mut Vec<u8>) -> Result<(), Corrupt> {
    if s[4] == DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(&s[..HDR]);
    dense[4] = DENSE;
    let regs = &mut dense[HDR..];
    for_each_run(s, |first, span, value| {
        if value > 0 {
            (first..first + span).for_each(|i| dense_set(regs, i, value));
        }
    })?;
    *s = dense;
    Ok(())
}

/// Redis's hllSparseSet, step for step (so the bytes come out as Redis's do): raises register
/// `index` to `count` if lower, splitting the run that covers it, then merging equal neighbours.
/// Promotes to dense when a value exceeds what the sparse form holds or it would pass
/// `max_bytes`. Ok(true) if the register changed.
fn sparse_set(s: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote(s, index, count);
    }
    // Step 1: the opcode covering `index`, and the one before it.
    let (mut p, mut first, mut prev) = (HDR, 0, None);
    let (span, value, oplen) = loop {
        if p >= s.len() {
            return Err(Corrupt);
        }
        let (span, value, len) = opcode(s, p)?;
        if index < first + span {
            break (span, value, len);
        }
        prev = Some(p);
        p += len;
        first += span;
    };
    let is_val = s[p] & 0x80 != 0;
    // Step 2: the cases changed in place.
    if is_val {
        if value >= count {
            return Ok(false);
        }
        if span == 1 {
            s[p] = val_op(count, 1);
            merge_runs(s, prev.unwrap_or(HDR));
            return Ok(true);
        }
    } else if oplen == 1 && span == 1 {
        s[p] = val_op(count, 1);
        merge_runs(s, prev.unwrap_or(HDR));
        return Ok(true);
    }
    // Step 3: the general case, the run split in up to three.
    let last = first + span - 1;
    let mut seq = Vec::with_capacity(5);
    if is_val {
        if index != first {
            seq.push(val_op(value, index - first));
        }
        seq.push(val_op(count, 1));
        if index != last {
            seq.push(val_op(value, last - index));
        }
    } else {
        if index != first {
            push_zeros(&mut seq, index - first);
        }
        seq.push(val_op(count, 1));
        if index != last {
            push_zeros(&mut seq, last - index);
        }
    }
    if seq.len() > oplen && s.len() + seq.len() - oplen > max_bytes {
        return promote(s, index, count);
    }
    s.splice(p..p + oplen, seq);
    merge_runs(s, prev.unwrap_or(HDR));
    Ok(true)
}

fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(s)?;
    let regs = &mut s[HDR..];
    let changed = dense_get(regs, index) < count;
    if changed {
        dense_set(regs, index, count);
    }
    Ok(changed)
}

/// Step 4 of hllSparseSet: from `p`, up to five opcodes on, two adjacent VAL runs of one value
/// become one while the length fits.
fn merge_runs(s: &mut Vec<u8>, mut p: usize) {
    let mut scan = 5;
    while p < s.len() && scan > 0 {
        scan -= 1;
        let b = s[p];
        if b & 0xc0 == 0x40 {
            p += 2;
            continue;
        }
        if b & 0xc0 == 0 {
            p += 1;
            continue;
        }
        if p + 1 < s.len() && s[p + 1] & 0x80 != 0 {
            let (v1, l1) = (((b >> 2) & 0x1f) + 1, (b & 3) as usize + 1);
            let n = s[p + 1];
            let (v2, l2) = (((n >> 2) & 0x1f) + 1, (n & 3) as usize + 1);
            if v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                s[p + 1] = val_op(v1, l1 + l2);
                s.remove(p);
                // Merged: try again with the next run, without moving on.
                continue;
            }
        }
        p += 1;
    }
}

/// Adds one element; Ok(true) if a register changed.
fn add(s: &mut Vec<u8>, ele: &[u8], max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, count) = pattern(ele);
    if s[4] == DENSE {
        let regs = &mut s[HDR..];
        if dense_get(regs, index) < count {
            dense_set(regs, index, count);
            return Ok(true);
        }
        return Ok(false);
    }
    sparse_set(s, index, count, max_bytes)
}

/// Raises `max[i]` to the HLL's register i.
fn merge_into(max: &mut [u8], s: &[u8]) -> Result<(), Corrupt> {
    if s[4] == DENSE {
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(&s[HDR..], i));
        }
        return Ok(());
    }
    for_each_run(s, |first, span, value| {
        for m in &mut max[first..first + span] {
            *m = (*m).max(value);
        }
    })
}

fn registers(s: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let mut regs = vec![0u8; REGISTERS];
    merge_into(&mut regs, s)?;
    Ok(regs)
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

/// Otmar Ertl's estimator over the register histogram, as Redis's hllCount.
fn estimate(regs: &[u8]) -> u64 {
    let mut histo = [0u32; 64];
    regs.iter().for_each(|&r| histo[r as usize] += 1);
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histo[Q + 1] as f64) / m);
    for j in (1..=Q).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sparse_max_bytes(ctx: &Ctx<'_>) -> usize {
    ctx.server
        .config
        .get("hll-sparse-max-bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

pub fn pfadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let max_bytes = sparse_max_bytes(ctx);
    let updated = ctx.server.keyspace.write(ctx.client.db, &args[1], ctx.now, |slot| {
        let (mut hll, created) = match slot.get() {
            Some(e) => {
                let s = string_of(e)?;
                if !is_hll(s) {
                    return Err(NOT_HLL);
                }
                (s.to_vec(), false)
            }
            None => (new_hll(), true),
        };
        let mut changed = false;
        for ele in &args[2..] {
            changed |= checked(add(&mut hll, ele, max_bytes))?;
        }
        if changed || created {
            invalidate_cache(&mut hll);
            slot.set_built_string(hll, Ttl::Keep);
        }
        Ok::<_, CmdError>(changed || created)
    })?;
    if updated {
        ctx.notify(class::STRING, "pfadd", &args[1]);
    }
    ctx.out.int(i64::from(updated));
    Ok(())
}

/// The registers of the union of `keys` (missing keys are empty HLLs), and whether any of them
/// was dense.
fn union_of(ctx: &Ctx<'_>, keys: &[Bytes]) -> Result<(Vec<u8>, bool), CmdError> {
    let mut max = vec![0u8; REGISTERS];
    let mut any_dense = false;
    for key in keys {
        ctx.server
            .keyspace
            .read(ctx.client.db, key, ctx.now, Lookup::Read, |e| -> CmdResult {
                let Some(e) = e else { return Ok(()) };
                let s = string_of(e)?;
                if !is_hll(s) {
                    return Err(NOT_HLL);
                }
                any_dense |= s[4] == DENSE;
                checked(merge_into(&mut max, s))
            })?;
    }
    Ok((max, any_dense))
}

pub fn pfcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let ks = &ctx.server.keyspace;
    if args.len() > 2 {
        // The union of several: counted, nothing cached.
        let (max, _) = union_of(ctx, &args[1..])?;
        ctx.out.int(estimate(&max) as i64);
        return Ok(());
    }
    let card = ks.write(ctx.client.db, &args[1], ctx.now, |slot| -> Result<u64, CmdError> {
        let Some(e) = slot.get() else { return Ok(0) };
        let s = string_of(e)?;
        if !is_hll(s) {
            return Err(NOT_HLL);
        }
        if s[15] & 0x80 == 0 {
            return Ok(u64::from_le_bytes(s[8..16].try_into().expect("8 bytes")));
        }
        let card = estimate(&checked(registers(s))?);
        // The count is cached in the value, as Redis caches it (a change WATCH sees).
        let entry = slot.get_mut().expect("exists");
        let buf = entry.string_buf().ok_or(CmdError::WRONGTYPE)?;
        buf[8..16].copy_from_slice(&card.to_le_bytes());
        Ok(card)
    })?;
    ctx.out.int(card as i64);
    Ok(())
}

pub fn pfmerge(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let ks = &ctx.server.keyspace;
    // The destination counts as a source too.
    let (max, use_dense) = union_of(ctx, &args[1..])?;
    let max_bytes = sparse_max_bytes(ctx);
    ks.write(ctx.client.db, &args[1], ctx.now, |slot| -> CmdResult {
        let mut hll = match slot.get() {
            Some(e) => string_of(e)?.to_vec(),
            None => new_hll(),
        };
        if use_dense {
            checked(to_dense(&mut hll))?;
        }
        for (i, &m) in max.iter().enumerate() {
            if m == 0 {
                continue;
            }
            if hll[4] == DENSE {
                let regs = &mut hll[HDR..];
                if dense_get(regs, i) < m {
                    dense_set(regs, i, m);
                }
            } else {
                checked(sparse_set(&mut hll, i, m, max_bytes))?;
            }
        }
        invalidate_cache(&mut hll);
        slot.set_built_string(hll, Ttl::Keep);
        Ok(())
    })?;
    ctx.notify(class::STRING, "pfadd", &args[1]);
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_land_in_the_registers_redis_puts_them_in() {
        // Read back from redis-server 7.0.15: PFADD v1 a, PFADD v2 "hello world, a longer
        // element" (more than one 8-byte word), GET, decoded.
        assert_eq!(pattern(b"a"), (12711, 2));
        assert_eq!(pattern(b"hello world, a longer element"), (8811, 1));
        assert_eq!(murmur64a(b"", 0), 0);
    }

    #[test]
    fn registers_round_trip_in_both_forms() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR];
        for i in [0, 1, 2, 3, 4, 16382, 16383] {
            dense_set(&mut regs, i, (i % 63) as u8 + 1);
        }
        for i in [0, 1, 2, 3, 4, 16382, 16383] {
            assert_eq!(dense_get(&regs, i), (i % 63) as u8 + 1);
        }
        let mut s = new_hll();
        assert!(sparse_set(&mut s, 100, 5, 3000).ok().unwrap());
        assert!(!sparse_set(&mut s, 100, 3, 3000).ok().unwrap());
        assert!(sparse_set(&mut s, 101, 5, 3000).ok().unwrap());
        let r = registers(&s).ok().unwrap();
        assert_eq!((r[99], r[100], r[101], r[102]), (0, 5, 5, 0));
        // XZERO(100), one VAL run of 5 over two registers (the neighbours merged), XZERO(16282).
        assert_eq!(s.len(), HDR + 5);
        to_dense(&mut s).ok().unwrap();
        assert_eq!(registers(&s).ok().unwrap(), r);
    }

    #[test]
    fn the_estimate_is_close_and_zero_when_empty() {
        assert_eq!(estimate(&[0u8; REGISTERS]), 0);
        let mut s = new_hll();
        for i in 0..10_000 {
            add(&mut s, format!("e{i}").as_bytes(), 3000).ok().unwrap();
        }
        let n = estimate(&registers(&s).ok().unwrap()) as f64;
        assert!((n - 10_000.0).abs() < 10_000.0 * 0.03, "{n}");
    }
}
