//! A set's members (Redis's t_set.c encodings as of 7.0): an "intset" — a sorted array of
//! integers — while every member is an integer (as Redis's string2ll reads it) and there are at
//! most set-max-intset-entries of them, then a hash table for good.
//!
//! The table keeps an upper bound on its longest chain so that a random member (SPOP,
//! SRANDMEMBER) is chosen exactly uniformly, by rejection: a random bucket, a random position
//! below the bound, retried until the position holds a member.

use super::dict::{Dict, Hasher};
use super::memory::size_class;

/// One member as a set holds it: an intset's integer or a table's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Member<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Member<'_> {
    /// The member's bytes (an integer in decimal).
    pub fn to_bytes(self) -> Box<[u8]> {
        match self {
            Member::Int(n) => itoa::Buffer::new().format(n).as_bytes().into(),
            Member::Str(s) => s.into(),
        }
    }

    /// Calls `f` with the member's bytes, without allocating.
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Member::Int(n) => f(itoa::Buffer::new().format(n).as_bytes()),
            Member::Str(s) => f(s),
        }
    }
}

/// An integer member's value, as Redis's isSdsRepresentableAsLongLong.
#[inline]
fn as_int(m: &[u8]) -> Option<i64> {
    crate::protocol::decode::parse_int(m)
}

pub enum Set {
    /// Sorted ascending, no duplicates.
    Intset(Vec<i64>),
    Table(Table),
}

/// The hash-table form: members are the dict's keys.
pub struct Table {
    dict: Dict<()>,
    /// No chain is longer than this (it may be stale-high after removals).
    max_chain: usize,
}

impl Table {
    fn new() -> Table {
        Table {
            dict: Dict::new(Hasher::with_seed(fastrand::u64(..))),
            max_chain: 0,
        }
    }

    fn chain_len(&self, bucket: usize) -> usize {
        let mut n = 0;
        self.dict.scan_step(bucket as u64, |_| n += 1);
        n
    }

    fn recompute_max_chain(&mut self) {
        self.max_chain = (0..self.dict.bucket_count()).map(|b| self.chain_len(b)).max().unwrap_or(0);
    }

    fn contains(&self, m: &[u8]) -> bool {
        self.dict.get(self.dict.hash(m), m).is_some()
    }

    /// Adds a member; true if it is new.
    fn add(&mut self, m: &[u8]) -> bool {
        let h = self.dict.hash(m);
        if self.dict.get(h, m).is_some() {
            return false;
        }
        let buckets = self.dict.bucket_count();
        self.dict.insert_new(h, m, ());
        if self.dict.bucket_count() != buckets {
            self.recompute_max_chain();
        } else {
            let len = self.chain_len(h as usize & (buckets - 1));
            self.max_chain = self.max_chain.max(len);
        }
        true
    }

    fn remove(&mut self, m: &[u8]) -> bool {
        let buckets = self.dict.bucket_count();
        let removed = self.dict.remove(self.dict.hash(m), m).is_some();
        if removed && self.dict.bucket_count() != buckets {
            self.recompute_max_chain();
        }
        removed
    }

    /// A member chosen uniformly, by rejection over (bucket, position below max_chain).
    fn random(&self, rng: &mut fastrand::Rng) -> Option<&[u8]> {
        if self.dict.is_empty() {
            return None;
        }
        let buckets = self.dict.bucket_count();
        loop {
            let bucket = rng.usize(..buckets);
            let pos = rng.usize(..self.max_chain.max(1));
            let mut i = 0;
            let mut found = None;
            self.dict.scan_step(bucket as u64, |n| {
                if i == pos {
                    found = Some(&*n.key);
                }
                i += 1;
            });
            if let Some(m) = found {
                return Some(m);
            }
        }
    }
}

impl Set {
    /// An empty set of the form Redis creates for a first member `m` (setTypeCreate).
    pub fn for_member(m: &[u8]) -> Set {
        if as_int(m).is_some() {
            Set::Intset(Vec::new())
        } else {
            Set::Table(Table::new())
        }
    }

    /// An empty intset (what SUNIONSTORE & co. start from).
    pub fn new_intset() -> Set {
        Set::Intset(Vec::new())
    }

    pub fn len(&self) -> usize {
        match self {
            Set::Intset(v) => v.len(),
            Set::Table(t) => t.dict.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_intset(&self) -> bool {
        matches!(self, Set::Intset(_))
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            Set::Intset(v) => as_int(m).is_some_and(|n| v.binary_search(&n).is_ok()),
            Set::Table(t) => t.contains(m),
        }
    }

    /// Membership of a member of another set.
    pub fn contains_member(&self, m: Member<'_>) -> bool {
        match (self, m) {
            (Set::Intset(v), Member::Int(n)) => v.binary_search(&n).is_ok(),
            (_, m) => m.with_bytes(|b| self.contains(b)),
        }
    }

    /// Adds a member; true if it is new. An intset becomes a table when `m` is not an integer or
    /// when it grows past `max_intset` members (set-max-intset-entries).
    pub fn add(&mut self, m: &[u8], max_intset: usize) -> bool {
        if let Set::Intset(_) = self {
            match as_int(m) {
                Some(n) => return self.add_int(n, max_intset),
                None => self.convert(),
            }
        }
        match self {
            Set::Table(t) => t.add(m),
            Set::Intset(_) => unreachable!("converted above"),
        }
    }

    /// Adds a member of another set (no formatting when both are intsets).
    pub fn add_member(&mut self, m: Member<'_>, max_intset: usize) -> bool {
        match (&*self, m) {
            (Set::Intset(_), Member::Int(n)) => self.add_int(n, max_intset),
            (_, m) => m.with_bytes(|b| self.add(b, max_intset)),
        }
    }

    fn add_int(&mut self, n: i64, max_intset: usize) -> bool {
        let Set::Intset(v) = self else {
            return self.add(itoa::Buffer::new().format(n).as_bytes(), max_intset);
        };
        match v.binary_search(&n) {
            Ok(_) => false,
            Err(i) => {
                v.insert(i, n);
                if v.len() > max_intset {
                    self.convert();
                }
                true
            }
        }
    }

    /// Removes a member; true if it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            Set::Intset(v) => match as_int(m).map(|n| v.binary_search(&n)) {
                Some(Ok(i)) => {
                    v.remove(i);
                    true
                }
                _ => false,
            },
            Set::Table(t) => t.remove(m),
        }
    }

    pub fn remove_member(&mut self, m: Member<'_>) -> bool {
        match (&mut *self, m) {
            (Set::Intset(v), Member::Int(n)) => match v.binary_search(&n) {
                Ok(i) => {
                    v.remove(i);
                    true
                }
                Err(_) => false,
            },
            (_, m) => m.with_bytes(|b| self.remove(b)),
        }
    }

    /// Intset to table (never back, as in Redis).
    fn convert(&mut self) {
        if let Set::Intset(v) = self {
            let mut t = Table::new();
            let mut buf = itoa::Buffer::new();
            for &n in v.iter() {
                t.add(buf.format(n).as_bytes());
            }
            *self = Set::Table(t);
        }
    }

    /// Every member: ascending for an intset, table order otherwise.
    pub fn iter(&self) -> impl Iterator<Item = Member<'_>> + '_ {
        let (ints, strs) = match self {
            Set::Intset(v) => (Some(v.iter().map(|&n| Member::Int(n))), None),
            Set::Table(t) => (None, Some(t.dict.iter().map(|n| Member::Str(&n.key)))),
        };
        ints.into_iter().flatten().chain(strs.into_iter().flatten())
    }

    /// One member chosen uniformly (None when empty).
    pub fn random(&self, rng: &mut fastrand::Rng) -> Option<Member<'_>> {
        match self {
            Set::Intset(v) if v.is_empty() => None,
            Set::Intset(v) => Some(Member::Int(v[rng.usize(..v.len())])),
            Set::Table(t) => t.random(rng).map(Member::Str),
        }
    }

    /// Removes and returns one member chosen uniformly.
    pub fn pop_random(&mut self, rng: &mut fastrand::Rng) -> Option<Box<[u8]>> {
        let m = self.random(rng)?.to_bytes();
        self.remove(&m);
        Some(m)
    }

    /// The table form, for SSCAN's cursor (None while an intset).
    pub fn table(&self) -> Option<&Dict<()>> {
        match self {
            Set::Table(t) => Some(&t.dict),
            Set::Intset(_) => None,
        }
    }

    pub fn heap_size(&self) -> usize {
        use std::mem::size_of;
        let own = size_class(size_of::<Set>());
        match self {
            Set::Intset(v) if v.capacity() == 0 => own,
            Set::Intset(v) => own + size_class(v.capacity() * size_of::<i64>()),
            Set::Table(t) => {
                let d = &t.dict;
                let buckets = if d.bucket_count() == 0 {
                    0
                } else {
                    size_class(d.bucket_count() * 8)
                };
                let node = size_class(size_of::<super::dict::Node<()>>());
                own + buckets + d.iter().map(|n| node + n.key.heap_size()).sum::<usize>()
            }
        }
    }

    pub fn deep_clone(&self) -> Set {
        match self {
            Set::Intset(v) => Set::Intset(v.clone()),
            Set::Table(t) => {
                let mut c = Table::new();
                for n in t.dict.iter() {
                    c.add(&n.key);
                }
                Set::Table(c)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn members(s: &Set) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = s.iter().map(|m| m.to_bytes().into_vec()).collect();
        v.sort();
        v
    }

    #[test]
    fn intset_stays_sorted_and_converts_on_a_string() {
        let mut s = Set::for_member(b"5");
        assert!(s.is_intset());
        for m in ["5", "-3", "10", "5", "0"] {
            s.add(m.as_bytes(), 512);
        }
        assert_eq!(s.len(), 4);
        let order: Vec<_> = s.iter().collect();
        assert_eq!(order, vec![Member::Int(-3), Member::Int(0), Member::Int(5), Member::Int(10)]);
        assert!(s.contains(b"10"));
        assert!(!s.contains(b"010"));
        assert!(!s.contains(b"+10"));
        assert!(s.add(b"x", 512));
        assert!(!s.is_intset());
        assert!(s.contains(b"10") && s.contains(b"x") && s.contains(b"-3"));
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn non_canonical_integers_are_strings() {
        for m in ["-0", "007", "+1", " 1", "1 ", "9223372036854775808", ""] {
            assert!(!Set::for_member(m.as_bytes()).is_intset(), "{m:?}");
        }
        for m in ["0", "-1", "9223372036854775807", "-9223372036854775808"] {
            assert!(Set::for_member(m.as_bytes()).is_intset(), "{m:?}");
        }
    }

    #[test]
    fn intset_converts_past_the_limit() {
        let mut s = Set::new_intset();
        for i in 0..4 {
            s.add(i.to_string().as_bytes(), 4);
        }
        assert!(s.is_intset());
        s.add(b"4", 4);
        assert!(!s.is_intset());
        assert_eq!(members(&s).len(), 5);
        // Removing does not convert back.
        s.remove(b"4");
        assert!(!s.is_intset());
    }

    #[test]
    fn table_add_remove_and_bound_tracking() {
        let mut s = Set::for_member(b"a");
        for i in 0..5000 {
            assert!(s.add(format!("m{i}").as_bytes(), 512));
        }
        assert!(!s.add(b"m7", 512));
        let Set::Table(t) = &s else { panic!() };
        let real = (0..t.dict.bucket_count()).map(|b| t.chain_len(b)).max().unwrap();
        assert!(t.max_chain >= real);
        for i in 0..4990 {
            assert!(s.remove(format!("m{i}").as_bytes()));
        }
        assert!(!s.remove(b"m0"));
        assert_eq!(s.len(), 10);
        let Set::Table(t) = &s else { panic!() };
        let real = (0..t.dict.bucket_count()).map(|b| t.chain_len(b)).max().unwrap();
        assert!(t.max_chain >= real);
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..100 {
            let m = s.random(&mut rng).unwrap().to_bytes();
            assert!(s.contains(&m));
        }
    }

    /// Each of 40 members drawn 40,000 times: every count must fall within 1000 ± 250. For a
    /// uniform draw the standard deviation of a count is about 31, so the bound is 8 sigma
    /// (a chance below 1e-14 per member); a chain-biased draw misses it by far.
    #[test]
    fn random_is_uniform_in_both_forms() {
        for table in [false, true] {
            let mut s = Set::new_intset();
            for i in 0..40 {
                s.add(i.to_string().as_bytes(), 512);
            }
            if table {
                s.add(b"x", 512);
                s.remove(b"x");
                assert!(!s.is_intset());
            }
            let mut rng = fastrand::Rng::new();
            let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
            for _ in 0..40_000 {
                *counts.entry(s.random(&mut rng).unwrap().to_bytes().into_vec()).or_default() += 1;
            }
            assert_eq!(counts.len(), 40);
            for (m, n) in counts {
                assert!((750..=1250).contains(&n), "{} drawn {n} times", String::from_utf8_lossy(&m));
            }
        }
    }

    #[test]
    fn pop_empties_and_clone_is_deep() {
        let mut rng = fastrand::Rng::with_seed(9);
        let mut s = Set::for_member(b"a");
        for m in ["a", "b", "c"] {
            s.add(m.as_bytes(), 512);
        }
        let c = s.deep_clone();
        let mut popped = Vec::new();
        while let Some(m) = s.pop_random(&mut rng) {
            popped.push(m.into_vec());
        }
        popped.sort();
        assert_eq!(popped, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert!(s.is_empty());
        assert_eq!(members(&c).len(), 3);
        assert!(c.heap_size() > 0);
    }
}
