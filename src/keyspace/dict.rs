//! The hash table under every shard: separate chaining over a power-of-two bucket array.
//!
//! Written by hand (rather than hashbrown) for the two things Redis clients rely on that a general
//! map does not give: SCAN's reverse-binary cursor, which returns every key present for the whole
//! iteration even when the table grows or shrinks between calls, and cheap random sampling
//! (RANDOMKEY, eviction, active expiry). Resizes happen at once; a shard is small enough that the
//! pause stays short.

use std::hash::BuildHasher;

pub type Hasher = foldhash::fast::FixedState;

type Link<V> = Option<Box<Node<V>>>;

pub struct Node<V> {
    next: Link<V>,
    /// Low 32 bits of the key's hash: most mismatches in a chain are rejected on this alone.
    tag: u32,
    pub key: Key,
    pub value: V,
}

/// A key, stored inside the node when it is short (most cache keys are), so a lookup compares it
/// without another cache miss; longer keys live on the heap.
pub enum Key {
    Inline { len: u8, data: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

pub const INLINE_KEY: usize = 22;

impl Key {
    pub fn new(bytes: &[u8]) -> Key {
        if bytes.len() <= INLINE_KEY {
            let mut data = [0u8; INLINE_KEY];
            data[..bytes.len()].copy_from_slice(bytes);
            Key::Inline {
                len: bytes.len() as u8,
                data,
            }
        } else {
            Key::Heap(bytes.into())
        }
    }

    /// Heap bytes this key owns (0 when inline), at allocator size classes.
    pub fn heap_size(&self) -> usize {
        match self {
            Key::Inline { .. } => 0,
            Key::Heap(b) => super::memory::size_class(b.len()),
        }
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Key::Inline { len, data } => &data[..*len as usize],
            Key::Heap(b) => b,
        }
    }
}

/// Asks the CPU to start loading the cache line at `p`, so that a lookup a little later finds it
/// there instead of stalling on memory: a pipelined batch's keys are looked up this way first
/// (several loads in flight at once), then run. A hint only; any address is allowed.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 reads nothing architecturally and never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

pub struct Dict<V> {
    buckets: Box<[Link<V>]>,
    len: usize,
    hasher: Hasher,
}

const MIN_BUCKETS: usize = 4;

impl<V> Dict<V> {
    pub fn new(hasher: Hasher) -> Self {
        Dict {
            buckets: Box::new([]),
            len: 0,
            hasher,
        }
    }

    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    #[inline]
    fn index(&self, hash: u64) -> usize {
        hash as usize & (self.buckets.len() - 1)
    }

    pub fn get(&self, hash: u64, key: &[u8]) -> Option<&Node<V>> {
        if self.len == 0 {
            return None;
        }
        let tag = hash as u32;
        let mut cur = self.buckets[self.index(hash)].as_deref();
        while let Some(node) = cur {
            if node.tag == tag && *node.key == *key {
                return Some(node);
            }
            cur = node.next.as_deref();
        }
        None
    }

    /// Starts loading the bucket slot `hash` falls in (see [`prefetch`]).
    #[inline]
    pub fn prefetch_bucket(&self, hash: u64) {
        if !self.buckets.is_empty() {
            prefetch(&self.buckets[self.index(hash)]);
        }
    }

    /// The first node of the bucket `hash` falls in, whatever its key.
    #[inline]
    pub fn head(&self, hash: u64) -> Option<&Node<V>> {
        if self.buckets.is_empty() {
            return None;
        }
        self.buckets[self.index(hash)].as_deref()
    }

    /// Whether `node` may hold the key of `hash` (its tag matches).
    #[inline]
    pub fn tag_matches(node: &Node<V>, hash: u64) -> bool {
        node.tag == hash as u32
    }

    pub fn get_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut Node<V>> {
        if self.len == 0 {
            return None;
        }
        let idx = self.index(hash);
        let tag = hash as u32;
        let mut cur = self.buckets[idx].as_deref_mut();
        while let Some(node) = cur {
            if node.tag == tag && *node.key == *key {
                return Some(node);
            }
            cur = node.next.as_deref_mut();
        }
        None
    }

    /// Inserts a key the caller knows is absent.
    pub fn insert_new(&mut self, hash: u64, key: &[u8], value: V) -> &mut Node<V> {
        if self.len >= self.buckets.len() {
            self.resize((self.len + 1).next_power_of_two().max(MIN_BUCKETS));
        }
        let idx = self.index(hash);
        let next = self.buckets[idx].take();
        self.len += 1;
        self.buckets[idx].insert(Box::new(Node {
            next,
            tag: hash as u32,
            key: Key::new(key),
            value,
        }))
    }

    pub fn remove(&mut self, hash: u64, key: &[u8]) -> Option<Box<Node<V>>> {
        if self.len == 0 {
            return None;
        }
        let idx = self.index(hash);
        let tag = hash as u32;
        let mut link = &mut self.buckets[idx];
        while link.as_ref().is_some_and(|n| n.tag != tag || *n.key != *key) {
            link = &mut link.as_mut().expect("checked above").next;
        }
        let mut node = link.take()?;
        *link = node.next.take();
        self.len -= 1;
        self.maybe_shrink();
        Some(node)
    }

    fn maybe_shrink(&mut self) {
        // Redis shrinks below 10% fill; 1/8 keeps the arithmetic to a shift.
        if self.buckets.len() > MIN_BUCKETS && self.len * 8 < self.buckets.len() {
            self.resize(self.len.next_power_of_two().max(MIN_BUCKETS));
        }
    }

    fn resize(&mut self, size: usize) {
        let mut new: Box<[Link<V>]> = (0..size).map(|_| None).collect();
        let mask = size - 1;
        for bucket in self.buckets.iter_mut() {
            let mut cur = bucket.take();
            while let Some(mut node) = cur {
                cur = node.next.take();
                let idx = self.hasher.hash_one(&*node.key) as usize & mask;
                node.next = new[idx].take();
                new[idx] = Some(node);
            }
        }
        self.buckets = new;
    }

    pub fn clear(&mut self) {
        // Unlink iteratively so a long chain cannot recurse deeply on drop.
        for bucket in self.buckets.iter_mut() {
            let mut cur = bucket.take();
            while let Some(mut node) = cur {
                cur = node.next.take();
            }
        }
        self.buckets = Box::new([]);
        self.len = 0;
    }

    pub fn iter(&self) -> impl Iterator<Item = &Node<V>> {
        self.buckets.iter().flat_map(|b| {
            let mut cur = b.as_deref();
            std::iter::from_fn(move || {
                let node = cur?;
                cur = node.next.as_deref();
                Some(node)
            })
        })
    }

    /// One HSCAN/SSCAN/ZSCAN call over this table, as Redis's scanGenericCommand: bucket steps from
    /// `cursor` until `count` nodes were visited, 10 * `count` steps were taken, or the table is
    /// done. Returns the next cursor (0 when done).
    pub fn scan_batch<'a>(&'a self, mut cursor: u64, count: usize, mut f: impl FnMut(&'a Node<V>)) -> u64 {
        let mut steps = count.saturating_mul(10);
        let mut seen = 0;
        loop {
            cursor = self.scan_step(cursor, |n| {
                seen += 1;
                f(n);
            });
            steps = steps.saturating_sub(1);
            if cursor == 0 || steps == 0 || seen >= count {
                return cursor;
            }
        }
    }

    /// One step of Redis's `dictScan`: visits one bucket (as the table is now) and returns the
    /// next cursor, 0 when the iteration is complete.
    pub fn scan_step<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a Node<V>)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let mut cur = self.buckets[(cursor & mask) as usize].as_deref();
        while let Some(node) = cur {
            f(node);
            cur = node.next.as_deref();
        }
        let mut v = cursor | !mask;
        v = v.reverse_bits();
        v = v.wrapping_add(1);
        v.reverse_bits()
    }

    /// A uniformly chosen bucket's chain, then a uniformly chosen node of it (Redis's
    /// dictGetFairRandomKey is close to this).
    pub fn random(&self, rng: &mut fastrand::Rng) -> Option<&Node<V>> {
        if self.len == 0 {
            return None;
        }
        loop {
            let idx = rng.usize(..self.buckets.len());
            if let Some(head) = self.buckets[idx].as_deref() {
                let mut n = 1;
                let mut cur = head.next.as_deref();
                while let Some(node) = cur {
                    n += 1;
                    cur = node.next.as_deref();
                }
                let pick = rng.usize(..n);
                let mut node = head;
                for _ in 0..pick {
                    node = node.next.as_deref().expect("counted");
                }
                return Some(node);
            }
        }
    }

    /// Visits up to `count` nodes starting at a random bucket and walking forward (Redis's
    /// dictGetSomeKeys): cheap sampling for eviction and active expiry.
    pub fn sample(&self, rng: &mut fastrand::Rng, count: usize, mut f: impl FnMut(&Node<V>)) {
        if self.len == 0 || count == 0 {
            return;
        }
        let size = self.buckets.len();
        let mut idx = rng.usize(..size);
        let mut seen = 0;
        let mut empty_run = 0;
        for _ in 0..size {
            let mut cur = self.buckets[idx].as_deref();
            if cur.is_none() {
                empty_run += 1;
                // Jump away from long empty runs, as Redis does.
                if empty_run >= 5 && empty_run > count {
                    idx = rng.usize(..size);
                    empty_run = 0;
                    continue;
                }
            } else {
                empty_run = 0;
            }
            while let Some(node) = cur {
                f(node);
                seen += 1;
                if seen >= count {
                    return;
                }
                cur = node.next.as_deref();
            }
            idx = (idx + 1) & (size - 1);
        }
    }
}

impl<V> Drop for Dict<V> {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn dict() -> Dict<u32> {
        Dict::new(Hasher::with_seed(7))
    }

    fn put(d: &mut Dict<u32>, k: &str, v: u32) {
        let h = d.hash(k.as_bytes());
        d.insert_new(h, k.as_bytes(), v);
    }

    #[test]
    fn insert_get_remove_and_resize() {
        let mut d = dict();
        for i in 0..1000 {
            put(&mut d, &format!("k{i}"), i);
        }
        assert_eq!(d.len(), 1000);
        assert!(d.bucket_count() >= 1000);
        for i in 0..1000 {
            let k = format!("k{i}");
            assert_eq!(d.get(d.hash(k.as_bytes()), k.as_bytes()).unwrap().value, i);
        }
        for i in 0..990 {
            let k = format!("k{i}");
            assert!(d.remove(d.hash(k.as_bytes()), k.as_bytes()).is_some());
        }
        assert_eq!(d.len(), 10);
        assert!(d.bucket_count() <= 64, "shrunk, got {}", d.bucket_count());
        assert!(d.get(d.hash(b"k5"), b"k5").is_none());
        assert_eq!(d.iter().count(), 10);
    }

    #[test]
    fn scan_returns_every_stable_key_across_grow_and_shrink() {
        let mut d = dict();
        for i in 0..500 {
            put(&mut d, &format!("stable{i}"), i);
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            cursor = d.scan_step(cursor, |n| {
                seen.insert(n.key.to_vec());
            });
            step += 1;
            // Grow a lot, then shrink, while the iteration is under way.
            if step == 20 {
                for i in 0..5000 {
                    put(&mut d, &format!("tmp{i}"), i);
                }
            }
            if step == 200 {
                for i in 0..5000 {
                    let k = format!("tmp{i}");
                    d.remove(d.hash(k.as_bytes()), k.as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..500 {
            assert!(seen.contains(format!("stable{i}").as_bytes()), "missing stable{i}");
            let long = Key::new(&[b'x'; 40]);
            assert_eq!(long.len(), 40);
        }
    }

    #[test]
    fn random_and_sample_find_members() {
        let mut d = dict();
        let mut rng = fastrand::Rng::with_seed(1);
        assert!(d.random(&mut rng).is_none());
        for i in 0..100 {
            put(&mut d, &format!("k{i}"), i);
        }
        let mut hits = HashSet::new();
        for _ in 0..2000 {
            hits.insert(d.random(&mut rng).unwrap().value);
        }
        assert!(hits.len() > 90);
        let mut n = 0;
        d.sample(&mut rng, 5, |_| n += 1);
        assert_eq!(n, 5);
    }
}
