//! A list's elements (Redis's quicklist): a ring buffer of exact-size byte strings, so pushes and
//! pops at both ends are O(1) and an index is one step away.
//!
//! Redis 7.0 reports every list as "quicklist" whatever its size, so there is no compact form to
//! switch from; the buffer gives back spare room when a list shrinks a lot.

use std::collections::VecDeque;

/// One element, exact size.
pub type Elem = Box<[u8]>;

/// Which end of a list (Redis's LIST_HEAD / LIST_TAIL; LEFT / RIGHT in commands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

#[derive(Default, Clone)]
pub struct List {
    items: VecDeque<Elem>,
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
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn push(&mut self, end: End, value: &[u8]) {
        self.push_elem(end, value.into());
    }

    pub fn push_elem(&mut self, end: End, value: Elem) {
        match end {
            End::Head => self.items.push_front(value),
            End::Tail => self.items.push_back(value),
        }
    }

    pub fn pop(&mut self, end: End) -> Option<Elem> {
        let e = match end {
            End::Head => self.items.pop_front(),
            End::Tail => self.items.pop_back(),
        };
        self.compact();
        e
    }

    /// Up to `n` elements from `end`, in the order they come off (a tail pop reads backwards).
    pub fn pop_many(&mut self, end: End, n: usize) -> Vec<Elem> {
        let n = n.min(self.items.len());
        let popped = match end {
            End::Head => self.items.drain(..n).collect(),
            End::Tail => {
                let at = self.items.len() - n;
                self.items.drain(at..).rev().collect()
            }
        };
        self.compact();
        popped
    }

    /// The element at a Redis index (negative from the tail).
    pub fn get(&self, index: i64) -> Option<&[u8]> {
        normalize(index, self.len()).map(|i| &*self.items[i])
    }

    /// Replaces the element at a Redis index; false if out of range.
    pub fn set(&mut self, index: i64, value: &[u8]) -> bool {
        match normalize(index, self.len()) {
            Some(i) => {
                self.items[i] = value.into();
                true
            }
            None => false,
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(|e| &**e)
    }

    /// The elements of an inclusive position range (from [`clamp_range`]).
    pub fn range(&self, start: usize, stop: usize) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.range(start..=stop).map(|e| &**e)
    }

    /// Inserts `value` before or after the first `pivot` from the head; false if there is none.
    pub fn insert(&mut self, pivot: &[u8], after: bool, value: &[u8]) -> bool {
        match self.items.iter().position(|e| **e == *pivot) {
            Some(i) => {
                self.items.insert(i + after as usize, value.into());
                true
            }
            None => false,
        }
    }

    /// LREM: removes elements equal to `value`, at most `count` of them (0: all), scanning from the
    /// head, or from the tail when `from_tail`. Returns how many went.
    pub fn remove(&mut self, value: &[u8], count: u64, from_tail: bool) -> usize {
        let before = self.items.len();
        if from_tail && count != 0 {
            // Only matches at or after the count-th match from the tail go.
            let mut seen = 0;
            let mut first = 0;
            for (i, e) in self.items.iter().enumerate().rev() {
                if **e == *value {
                    seen += 1;
                    first = i;
                    if seen == count {
                        break;
                    }
                }
            }
            let mut i = 0;
            self.items.retain(|e| {
                let keep = i < first || **e != *value;
                i += 1;
                keep
            });
        } else {
            let mut removed = 0;
            self.items.retain(|e| {
                if (count == 0 || removed < count) && **e == *value {
                    removed += 1;
                    false
                } else {
                    true
                }
            });
        }
        self.compact();
        before - self.items.len()
    }

    /// LTRIM: keeps the inclusive range, or nothing when it is None. Returns how many went.
    pub fn trim(&mut self, keep: Option<(usize, usize)>) -> usize {
        let before = self.items.len();
        match keep {
            None => self.items.clear(),
            Some((start, stop)) => {
                self.items.truncate(stop + 1);
                self.items.drain(..start);
            }
        }
        self.compact();
        before - self.items.len()
    }

    /// Gives back spare room once a list is down to a quarter of its buffer.
    fn compact(&mut self) {
        let cap = self.items.capacity();
        if cap > 32 && self.items.len() < cap / 4 {
            self.items.shrink_to(self.items.len() * 2);
        }
    }

    /// Heap bytes owned, at allocator size classes (the box holding the list included).
    pub fn heap_size(&self) -> usize {
        use super::memory::size_class;
        use std::mem::size_of;
        let own = size_class(size_of::<List>());
        let slots = match self.items.capacity() {
            0 => 0,
            c => size_class(c * size_of::<Elem>()),
        };
        own + slots
            + self
                .items
                .iter()
                .map(|e| if e.is_empty() { 0 } else { size_class(e.len()) })
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
