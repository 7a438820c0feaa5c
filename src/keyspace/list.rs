//! A list's elements (Redis's quicklist): a deque of chunks, each holding up to about 8 kB of
//! elements back to back (a LEB128 length, then the bytes), as Redis's listpack nodes do under the
//! default list-max-listpack-size -2.
//!
//! Packing keeps a small element at its length plus a byte or two instead of a pointer, a length
//! and an allocation each (200,000 elements of 11 bytes: about 2.6 MB, as Redis, against 6.4 MB as
//! a deque of boxed strings). Pushes and pops at the ends touch one chunk; an index walks the chunk
//! counts from the nearer end and then one chunk. An element larger than a chunk gets a chunk of
//! its own. Redis 7.0 reports every list as "quicklist" whatever its size.

use std::collections::VecDeque;

/// One element, exact size, as a pop hands it out.
pub type Elem = Box<[u8]>;

/// Which end of a list (Redis's LIST_HEAD / LIST_TAIL; LEFT / RIGHT in commands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

/// Encoded bytes a chunk takes before the next push starts a new one.
const CHUNK_BYTES: usize = 8 * 1024;

#[derive(Default, Clone)]
struct Chunk {
    /// Elements back to back, each a LEB128 length then its bytes.
    buf: Vec<u8>,
    count: usize,
}

fn varint_len(mut n: usize) -> usize {
    let mut k = 1;
    while n >= 0x80 {
        n >>= 7;
        k += 1;
    }
    k
}

/// `n` as LEB128: the bytes and how many of them count.
fn varint(mut n: usize) -> ([u8; 10], usize) {
    let (mut b, mut k) = ([0u8; 10], 0);
    while n >= 0x80 {
        b[k] = n as u8 | 0x80;
        n >>= 7;
        k += 1;
    }
    b[k] = n as u8;
    (b, k + 1)
}

fn put_varint(out: &mut Vec<u8>, n: usize) {
    let (b, k) = varint(n);
    out.extend_from_slice(&b[..k]);
}

fn encode(v: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(varint_len(v.len()) + v.len());
    put_varint(&mut e, v.len());
    e.extend_from_slice(v);
    e
}

/// The element whose entry starts at byte `at`: where its bytes start, and how many.
#[inline]
fn read_at(buf: &[u8], at: usize) -> (usize, usize) {
    let (mut n, mut shift, mut i) = (0usize, 0, at);
    loop {
        let b = buf[i];
        i += 1;
        n |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            return (i, n);
        }
        shift += 7;
    }
}

struct ChunkIter<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.buf.len() {
            return None;
        }
        let (d, n) = read_at(self.buf, self.at);
        self.at = d + n;
        Some(&self.buf[d..d + n])
    }
}

impl Chunk {
    fn iter(&self) -> ChunkIter<'_> {
        ChunkIter { buf: &self.buf, at: 0 }
    }

    /// Where element `i` starts (`count` gives the end of the buffer).
    fn offset(&self, i: usize) -> usize {
        let mut at = 0;
        for _ in 0..i {
            let (d, n) = read_at(&self.buf, at);
            at = d + n;
        }
        at
    }

    /// Where each element starts, for walking backwards.
    fn starts(&self) -> Vec<usize> {
        let mut v = Vec::with_capacity(self.count);
        let mut at = 0;
        while at < self.buf.len() {
            v.push(at);
            let (d, n) = read_at(&self.buf, at);
            at = d + n;
        }
        v
    }

    fn elem_at(&self, at: usize) -> &[u8] {
        let (d, n) = read_at(&self.buf, at);
        &self.buf[d..d + n]
    }

    /// The elements from the last to the first.
    fn iter_rev(&self) -> impl Iterator<Item = &[u8]> {
        self.starts().into_iter().rev().map(move |at| self.elem_at(at))
    }

    /// Room for an entry of `need` bytes (an empty chunk takes anything).
    fn fits(&self, need: usize) -> bool {
        self.count == 0 || self.buf.len() + need <= CHUNK_BYTES
    }

    /// Keeps the elements `keep` says yes to (called in order with each element's position).
    fn retain(&mut self, mut keep: impl FnMut(usize, &[u8]) -> bool) -> usize {
        let mut buf = Vec::with_capacity(self.buf.len());
        let mut kept = 0;
        for (i, e) in self.iter().enumerate() {
            if keep(i, e) {
                put_varint(&mut buf, e.len());
                buf.extend_from_slice(e);
                kept += 1;
            }
        }
        buf.shrink_to_fit();
        let removed = self.count - kept;
        self.buf = buf;
        self.count = kept;
        removed
    }
}

#[derive(Default, Clone)]
pub struct List {
    chunks: VecDeque<Chunk>,
    len: usize,
}

/// Redis's index convention: negative counts from the tail (-1 is the last element).
fn normalize(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { len.checked_add(index)? } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

/// An inclusive `start..=stop` range in Redis's convention (LRANGE, LTRIM), clamped to the list:
/// None when empty.
pub fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 { llen + start } else { start };
    let mut stop = if stop < 0 { llen + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= llen {
        return None;
    }
    if stop >= llen {
        stop = llen - 1;
    }
    Some((start as usize, stop as usize))
}

impl List {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, end: End, value: &[u8]) {
        let need = varint_len(value.len()) + value.len();
        match end {
            End::Tail => {
                if !self.chunks.back().is_some_and(|c| c.fits(need)) {
                    // The full chunk is done growing: give back its spare room.
                    if let Some(c) = self.chunks.back_mut() {
                        c.buf.shrink_to_fit();
                    }
                    self.chunks.push_back(Chunk::default());
                }
                let c = self.chunks.back_mut().expect("a chunk");
                put_varint(&mut c.buf, value.len());
                c.buf.extend_from_slice(value);
                c.count += 1;
            }
            End::Head => {
                if !self.chunks.front().is_some_and(|c| c.fits(need)) {
                    if let Some(c) = self.chunks.front_mut() {
                        c.buf.shrink_to_fit();
                    }
                    self.chunks.push_front(Chunk::default());
                }
                let c = self.chunks.front_mut().expect("a chunk");
                // Shift the chunk up and write the entry in front, without a temporary.
                let old = c.buf.len();
                c.buf.resize(old + need, 0);
                c.buf.copy_within(0..old, need);
                let (header, hlen) = varint(value.len());
                c.buf[..hlen].copy_from_slice(&header[..hlen]);
                c.buf[hlen..need].copy_from_slice(value);
                c.count += 1;
            }
        }
        self.len += 1;
    }

    pub fn push_elem(&mut self, end: End, value: Elem) {
        self.push(end, &value);
    }

    pub fn pop(&mut self, end: End) -> Option<Elem> {
        self.pop_many(end, 1).pop()
    }

    /// Up to `n` elements from `end`, in the order they come off (a tail pop reads backwards).
    pub fn pop_many(&mut self, end: End, n: usize) -> Vec<Elem> {
        let n = n.min(self.len);
        let popped: Vec<Elem> = match end {
            End::Head => self.iter().take(n).map(Into::into).collect(),
            End::Tail => {
                // Chunk by chunk from the back: the last k of a chunk, read forwards, reversed.
                let mut out = Vec::with_capacity(n);
                let mut left = n;
                for c in self.chunks.iter().rev() {
                    if left == 0 {
                        break;
                    }
                    let k = left.min(c.count);
                    let start = out.len();
                    let at = c.offset(c.count - k);
                    out.extend(ChunkIter { buf: &c.buf, at }.map(Elem::from));
                    out[start..].reverse();
                    left -= k;
                }
                out
            }
        };
        self.drop_from(end, n);
        popped
    }

    /// Removes `n` elements (at most the whole list) from `end`.
    fn drop_from(&mut self, end: End, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let c = match end {
                End::Head => self.chunks.front_mut(),
                End::Tail => self.chunks.back_mut(),
            }
            .expect("counted elements are in chunks");
            if c.count <= n {
                n -= c.count;
                match end {
                    End::Head => self.chunks.pop_front(),
                    End::Tail => self.chunks.pop_back(),
                };
                continue;
            }
            match end {
                End::Head => {
                    let at = c.offset(n);
                    c.buf.drain(..at);
                }
                End::Tail => {
                    let at = c.offset(c.count - n);
                    c.buf.truncate(at);
                }
            }
            c.count -= n;
            n = 0;
            // A chunk popped down to a quarter gives back room (a few times over its life).
            if c.buf.capacity() > 4 * c.buf.len() + 64 {
                c.buf.shrink_to(2 * c.buf.len());
            }
        }
        self.compact();
    }

    /// The chunk holding position `i` and the element's place in it, walking from the nearer end.
    fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut i = i;
            for (ci, c) in self.chunks.iter().enumerate() {
                if i < c.count {
                    return (ci, i);
                }
                i -= c.count;
            }
        } else {
            let mut from_end = self.len - 1 - i;
            for (ci, c) in self.chunks.iter().enumerate().rev() {
                if from_end < c.count {
                    return (ci, c.count - 1 - from_end);
                }
                from_end -= c.count;
            }
        }
        unreachable!("position {i} within the list's length")
    }

    /// The element at a Redis index (negative from the tail).
    pub fn get(&self, index: i64) -> Option<&[u8]> {
        let i = normalize(index, self.len)?;
        let (ci, pos) = self.locate(i);
        let c = &self.chunks[ci];
        Some(c.elem_at(c.offset(pos)))
    }

    /// Replaces the element at a Redis index; false if out of range.
    pub fn set(&mut self, index: i64, value: &[u8]) -> bool {
        let Some(i) = normalize(index, self.len) else {
            return false;
        };
        let (ci, pos) = self.locate(i);
        let c = &mut self.chunks[ci];
        let at = c.offset(pos);
        let (d, n) = read_at(&c.buf, at);
        c.buf.splice(at..d + n, encode(value));
        self.split_if_big(ci);
        true
    }

    /// Every element, head to tail.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks.iter().flat_map(Chunk::iter)
    }

    /// Every element, tail to head.
    pub fn iter_rev(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks.iter().rev().flat_map(Chunk::iter_rev)
    }

    /// The elements of an inclusive position range (from [`clamp_range`]).
    pub fn range(&self, start: usize, stop: usize) -> impl Iterator<Item = &[u8]> {
        let (ci, pos) = if start < self.len {
            self.locate(start)
        } else {
            (self.chunks.len(), 0)
        };
        self.chunks
            .range(ci..)
            .flat_map(Chunk::iter)
            .skip(pos)
            .take((stop + 1).saturating_sub(start))
    }

    /// Inserts `value` before or after the first `pivot` from the head; false if there is none.
    pub fn insert(&mut self, pivot: &[u8], after: bool, value: &[u8]) -> bool {
        let found = self
            .chunks
            .iter()
            .enumerate()
            .find_map(|(ci, c)| c.iter().position(|e| e == pivot).map(|pos| (ci, pos)));
        let Some((ci, pos)) = found else {
            return false;
        };
        let c = &mut self.chunks[ci];
        let at = c.offset(pos + after as usize);
        c.buf.splice(at..at, encode(value));
        c.count += 1;
        self.len += 1;
        self.split_if_big(ci);
        true
    }

    /// A chunk grown well past its size by edits in the middle is cut in two.
    fn split_if_big(&mut self, ci: usize) {
        let c = &mut self.chunks[ci];
        if c.buf.len() <= 2 * CHUNK_BYTES || c.count < 2 {
            return;
        }
        let mid = c.count / 2;
        let at = c.offset(mid);
        let second = Chunk {
            buf: c.buf[at..].to_vec(),
            count: c.count - mid,
        };
        c.buf.truncate(at);
        c.buf.shrink_to_fit();
        c.count = mid;
        self.chunks.insert(ci + 1, second);
    }

    /// LREM: removes elements equal to `value`, at most `count` of them (0: all), scanning from the
    /// head, or from the tail when `from_tail`. Returns how many went.
    pub fn remove(&mut self, value: &[u8], count: u64, from_tail: bool) -> usize {
        let mut budget = if count == 0 { u64::MAX } else { count };
        let mut removed = 0;
        let order: Vec<usize> = if from_tail {
            (0..self.chunks.len()).rev().collect()
        } else {
            (0..self.chunks.len()).collect()
        };
        for ci in order {
            if budget == 0 {
                break;
            }
            let c = &mut self.chunks[ci];
            let matches = c.iter().filter(|e| *e == value).count() as u64;
            if matches == 0 {
                continue;
            }
            // Within the chunk, the `take` matches nearest the end the scan comes from go.
            let take = matches.min(budget);
            budget -= take;
            let first_gone = if from_tail { matches - take } else { 0 };
            let mut seen = 0u64;
            removed += c.retain(|_, e| {
                if e != value {
                    return true;
                }
                seen += 1;
                !(seen > first_gone && seen <= first_gone + take)
            });
        }
        self.chunks.retain(|c| c.count > 0);
        self.len -= removed;
        self.compact();
        removed
    }

    /// LTRIM: keeps the inclusive range, or nothing when it is None. Returns how many went.
    pub fn trim(&mut self, keep: Option<(usize, usize)>) -> usize {
        let before = self.len;
        match keep {
            None => {
                self.chunks.clear();
                self.len = 0;
                self.compact();
            }
            Some((start, stop)) => {
                self.drop_from(End::Tail, self.len - 1 - stop);
                self.drop_from(End::Head, start);
            }
        }
        before - self.len
    }

    /// Gives back the chunk deque's spare room once a list is down to a quarter of it.
    fn compact(&mut self) {
        let cap = self.chunks.capacity();
        if cap > 16 && self.chunks.len() < cap / 4 {
            self.chunks.shrink_to(self.chunks.len() * 2);
        }
    }

    /// Heap bytes owned, at allocator size classes (the box holding the list included).
    pub fn heap_size(&self) -> usize {
        use super::memory::size_class;
        use std::mem::size_of;
        let own = size_class(size_of::<List>());
        let slots = match self.chunks.capacity() {
            0 => 0,
            c => size_class(c * size_of::<Chunk>()),
        };
        own + slots
            + self
                .chunks
                .iter()
                .map(|c| if c.buf.capacity() == 0 { 0 } else { size_class(c.buf.capacity()) })
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> List {
        let mut l = List::default();
        for i in items {
            l.push(End::Tail, i.as_bytes());
        }
        l
    }

    fn items(l: &List) -> Vec<String> {
        l.iter().map(|e| String::from_utf8_lossy(e).into_owned()).collect()
    }

    #[test]
    fn push_pop_both_ends() {
        let mut l = List::default();
        l.push(End::Head, b"b");
        l.push(End::Head, b"a");
        l.push(End::Tail, b"c");
        assert_eq!(items(&l), ["a", "b", "c"]);
        assert_eq!(l.pop(End::Tail).as_deref(), Some(&b"c"[..]));
        assert_eq!(l.pop(End::Head).as_deref(), Some(&b"a"[..]));
        assert_eq!(l.len(), 1);
        let mut l = list(&["1", "2", "3", "4"]);
        let p: Vec<_> = l.pop_many(End::Tail, 3).into_iter().map(|e| e.to_vec()).collect();
        assert_eq!(p, [b"4".to_vec(), b"3".to_vec(), b"2".to_vec()]);
        assert_eq!(l.pop_many(End::Head, 10).len(), 1);
        assert!(l.is_empty());
    }

    #[test]
    fn indexes_follow_redis() {
        let mut l = list(&["a", "b", "c"]);
        assert_eq!(l.get(0), Some(&b"a"[..]));
        assert_eq!(l.get(-1), Some(&b"c"[..]));
        assert_eq!(l.get(-3), Some(&b"a"[..]));
        assert_eq!(l.get(-4), None);
        assert_eq!(l.get(3), None);
        assert_eq!(l.get(i64::MIN), None);
        assert_eq!(l.get(i64::MAX), None);
        assert!(l.set(-1, b"z"));
        assert!(!l.set(5, b"z"));
        assert_eq!(items(&l), ["a", "b", "z"]);
    }

    #[test]
    fn ranges_clamp() {
        assert_eq!(clamp_range(0, -1, 3), Some((0, 2)));
        assert_eq!(clamp_range(-100, 100, 3), Some((0, 2)));
        assert_eq!(clamp_range(2, 1, 3), None);
        assert_eq!(clamp_range(3, 5, 3), None);
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 3), Some((0, 2)));
        assert_eq!(clamp_range(0, i64::MIN, 3), None);
        assert_eq!(clamp_range(0, 0, 0), None);
        assert_eq!(clamp_range(-2, -1, 5), Some((3, 4)));
    }

    #[test]
    fn remove_counts_from_either_end() {
        let base = ["x", "a", "x", "b", "x", "c", "x"];
        let mut l = list(&base);
        assert_eq!(l.remove(b"x", 2, false), 2);
        assert_eq!(items(&l), ["a", "b", "x", "c", "x"]);
        let mut l = list(&base);
        assert_eq!(l.remove(b"x", 2, true), 2);
        assert_eq!(items(&l), ["x", "a", "x", "b", "c"]);
        let mut l = list(&base);
        assert_eq!(l.remove(b"x", 0, false), 4);
        assert_eq!(items(&l), ["a", "b", "c"]);
        let mut l = list(&base);
        assert_eq!(l.remove(b"x", 100, true), 4);
        assert_eq!(l.remove(b"nope", 1, true), 0);
        assert_eq!(items(&l), ["a", "b", "c"]);
    }

    #[test]
    fn insert_and_trim() {
        let mut l = list(&["a", "b", "b"]);
        assert!(l.insert(b"b", false, b"1"));
        assert!(l.insert(b"b", true, b"2"));
        assert!(!l.insert(b"zz", true, b"3"));
        assert_eq!(items(&l), ["a", "1", "b", "2", "b"]);
        assert_eq!(l.trim(clamp_range(1, -2, l.len())), 2);
        assert_eq!(items(&l), ["1", "b", "2"]);
        assert_eq!(l.trim(None), 3);
        assert!(l.is_empty());
    }

    /// Random operations against a plain deque, with elements from empty to several chunks long
    /// so chunks fill, split and empty.
    #[test]
    fn matches_a_plain_deque() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut max_chunks = 0;
        for round in 0..40 {
            let mut l = List::default();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            let big = round % 4 == 0;
            for _ in 0..600 {
                let len = match rng.u8(..20) {
                    0 if big => rng.usize(CHUNK_BYTES..3 * CHUNK_BYTES),
                    1..=3 => rng.usize(100..2000),
                    _ => rng.usize(0..6),
                };
                // Few distinct values, so LREM and LINSERT find matches.
                let v: Vec<u8> = if len < 6 {
                    vec![b'a' + rng.u8(..3); len]
                } else {
                    vec![rng.u8(..); len]
                };
                let end = if rng.bool() { End::Head } else { End::Tail };
                match rng.u8(..12) {
                    0..=4 => {
                        l.push(end, &v);
                        match end {
                            End::Head => m.push_front(v),
                            End::Tail => m.push_back(v),
                        }
                    }
                    5 => {
                        let n = rng.usize(0..5);
                        let got: Vec<Vec<u8>> = l.pop_many(end, n).into_iter().map(|e| e.to_vec()).collect();
                        let want: Vec<Vec<u8>> = (0..n.min(m.len()))
                            .map(|_| match end {
                                End::Head => m.pop_front().unwrap(),
                                End::Tail => m.pop_back().unwrap(),
                            })
                            .collect();
                        assert_eq!(got, want);
                    }
                    6 => {
                        let i = rng.i64(-(m.len() as i64) - 2..m.len() as i64 + 2);
                        let want = normalize(i, m.len());
                        assert_eq!(l.set(i, &v), want.is_some());
                        if let Some(i) = want {
                            m[i] = v;
                        }
                    }
                    7 => {
                        let pivot = vec![b'a' + rng.u8(..3); rng.usize(0..6)];
                        let after = rng.bool();
                        let want = m.iter().position(|e| *e == pivot);
                        assert_eq!(l.insert(&pivot, after, &v), want.is_some());
                        if let Some(i) = want {
                            m.insert(i + after as usize, v);
                        }
                    }
                    8 => {
                        let target = vec![b'a' + rng.u8(..3); rng.usize(0..6)];
                        let count = rng.u64(0..4);
                        let from_tail = rng.bool();
                        let mut gone = 0u64;
                        let mut keep: Vec<bool> = vec![true; m.len()];
                        let idx: Vec<usize> = if from_tail {
                            (0..m.len()).rev().collect()
                        } else {
                            (0..m.len()).collect()
                        };
                        for i in idx {
                            if m[i] == target && (count == 0 || gone < count) {
                                keep[i] = false;
                                gone += 1;
                            }
                        }
                        let mut k = keep.iter();
                        m.retain(|_| *k.next().unwrap());
                        assert_eq!(l.remove(&target, count, from_tail), gone as usize);
                    }
                    9 if rng.u8(..10) == 0 => {
                        let (a, b) = (rng.i64(-5..m.len() as i64 + 3), rng.i64(-5..m.len() as i64 + 3));
                        let keep = clamp_range(a, b, m.len());
                        l.trim(keep);
                        match keep {
                            None => m.clear(),
                            Some((a, b)) => {
                                m.truncate(b + 1);
                                m.drain(..a);
                            }
                        }
                    }
                    _ => {
                        if let Some((a, b)) = clamp_range(rng.i64(-8..8), rng.i64(-8..8), m.len()) {
                            let got: Vec<&[u8]> = l.range(a, b).collect();
                            let want: Vec<&[u8]> = m.range(a..=b).map(|e| &e[..]).collect();
                            assert_eq!(got, want);
                        }
                    }
                }
                assert_eq!(l.len(), m.len());
                if !m.is_empty() {
                    let i = rng.usize(..m.len());
                    assert_eq!(l.get(i as i64), Some(&m[i][..]));
                }
            }
            let fwd: Vec<&[u8]> = l.iter().collect();
            let want: Vec<&[u8]> = m.iter().map(|e| &e[..]).collect();
            assert_eq!(fwd, want);
            let rev: Vec<&[u8]> = l.iter_rev().collect();
            assert_eq!(rev, want.into_iter().rev().collect::<Vec<_>>());
            assert!(l.chunks.iter().all(|c| c.count > 0 && c.count == c.iter().count()));
            max_chunks = max_chunks.max(l.chunks.len());
            assert_eq!(l.chunks.iter().map(|c| c.count).sum::<usize>(), l.len());
        }
        assert!(max_chunks > 3, "only {max_chunks} chunks at most");
    }

    #[test]
    fn edits_in_the_middle_split_chunks() {
        let mut l = List::default();
        let mut m = Vec::new();
        for i in 0..50u32 {
            let v = format!("{i:04}").repeat(250);
            l.push(End::Tail, v.as_bytes());
            m.push(v);
        }
        let pivot = m[20].clone();
        for i in 0..60u32 {
            let v = format!("n{i:03}").repeat(250);
            assert!(l.insert(pivot.as_bytes(), true, v.as_bytes()));
            m.insert(21, v);
        }
        for i in (0..m.len()).step_by(7) {
            let v = format!("s{i:03}").repeat(300);
            assert!(l.set(i as i64, v.as_bytes()));
            m[i] = v;
        }
        assert!(l.chunks.iter().all(|c| c.buf.len() <= 2 * CHUNK_BYTES + 1300));
        assert_eq!(l.iter().collect::<Vec<_>>(), m.iter().map(|s| s.as_bytes()).collect::<Vec<_>>());
        for (i, v) in m.iter().enumerate() {
            assert_eq!(l.get(i as i64), Some(v.as_bytes()));
        }
    }

    #[test]
    fn small_elements_pack_tightly() {
        let mut l = List::default();
        for i in 0..200_000 {
            l.push(End::Tail, format!("item:{i:06}").as_bytes());
        }
        // 12 bytes an element (length byte and 11 bytes), plus chunk overhead.
        let size = l.heap_size();
        assert!(size < 200_000 * 13, "{size}");
        assert_eq!(l.get(123_456), Some(&b"item:123456"[..]));
        assert_eq!(l.range(199_998, 199_999).collect::<Vec<_>>(), [b"item:199998", b"item:199999"]);
    }

    #[test]
    fn shrinking_gives_memory_back() {
        let mut l = List::default();
        for i in 0..10_000 {
            l.push(End::Tail, format!("{i}").as_bytes());
        }
        let big = l.heap_size();
        l.pop_many(End::Head, 9_990);
        assert!(l.heap_size() < big / 100, "{} vs {big}", l.heap_size());
        assert_eq!(l.get(0), Some(&b"9990"[..]));
    }
}
