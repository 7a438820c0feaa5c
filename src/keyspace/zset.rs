//! Sorted sets (Redis's t_zset.c data side): a member -> score hash table plus a skiplist with
//! span counts ordered by (score, member bytes), so rank, rank-to-element and range lookups are
//! O(log n) as in Redis.
//!
//! The skiplist lives in an arena (a `Vec` of nodes linked by `u32` indices, freed slots reused
//! and compacted when they outnumber the live ones): safe Rust, no pointers. It is Redis's
//! algorithm (Pugh's skiplist with spans, a backward link at level 0, P = 1/4, 32 levels)
//! translated node for node, so the same descents find the same first/last elements.
//!
//! Redis 7.0 keeps a small sorted set in a listpack and converts it to skiplist + dict once it has
//! more than zset-max-listpack-entries members or a member longer than zset-max-listpack-value;
//! respite always uses the skiplist and keeps only the encoding's name and its observable traits:
//! ZSCAN answers a "listpack" set whole with cursor 0, and a listpack stores -0 as 0.

use super::dict::{Dict, Hasher};
use super::ListpackLimits;

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
const MAX_LEVEL: usize = 32;

#[derive(Clone, Copy)]
struct Level {
    forward: u32,
    span: u32,
}

struct Node {
    member: Box<[u8]>,
    score: f64,
    backward: u32,
    levels: Box<[Level]>,
}

/// Orders (score, member) as Redis does: score, then member bytes (memcmp, shorter first).
#[inline]
fn less(score: f64, member: &[u8], than_score: f64, than_member: &[u8]) -> bool {
    score < than_score || (score == than_score && member < than_member)
}

struct SkipList {
    /// nodes[0] is the header; its levels grow with the list's level.
    nodes: Vec<Node>,
    free: Vec<u32>,
    tail: u32,
    length: usize,
    level: usize,
}

impl SkipList {
    fn new() -> SkipList {
        SkipList {
            nodes: vec![Node {
                member: Box::default(),
                score: 0.0,
                backward: NIL,
                levels: vec![Level { forward: NIL, span: 0 }].into_boxed_slice(),
            }],
            free: Vec::new(),
            tail: NIL,
            length: 0,
            level: 1,
        }
    }

    #[inline]
    fn lv(&self, x: u32, i: usize) -> Level {
        self.nodes[x as usize].levels[i]
    }

    #[inline]
    fn lv_mut(&mut self, x: u32, i: usize) -> &mut Level {
        &mut self.nodes[x as usize].levels[i]
    }

    #[inline]
    fn node(&self, x: u32) -> &Node {
        &self.nodes[x as usize]
    }

    fn random_level() -> usize {
        let mut level = 1;
        while level < MAX_LEVEL && fastrand::u32(..4) == 0 {
            level += 1;
        }
        level
    }

    fn alloc(&mut self, member: Box<[u8]>, score: f64, level: usize) -> u32 {
        let node = Node {
            member,
            score,
            backward: NIL,
            levels: vec![Level { forward: NIL, span: 0 }; level].into_boxed_slice(),
        };
        match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    /// zslInsert: the member must not be present.
    fn insert(&mut self, score: f64, member: Box<[u8]>) -> u32 {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i == self.level - 1 { 0 } else { rank[i + 1] };
            loop {
                let f = self.lv(x, i).forward;
                if f != NIL && less(self.node(f).score, &self.node(f).member, score, &member) {
                    rank[i] += self.lv(x, i).span;
                    x = f;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let level = Self::random_level();
        if level > self.level {
            if self.nodes[0].levels.len() < level {
                let mut v = self.nodes[0].levels.to_vec();
                v.resize(level, Level { forward: NIL, span: 0 });
                self.nodes[0].levels = v.into_boxed_slice();
            }
            for i in self.level..level {
                rank[i] = 0;
                update[i] = HEAD;
                *self.lv_mut(HEAD, i) = Level {
                    forward: NIL,
                    span: self.length as u32,
                };
            }
            self.level = level;
        }
        let x = self.alloc(member, score, level);
        for i in 0..level {
            let u = update[i];
            let ul = self.lv(u, i);
            *self.lv_mut(x, i) = Level {
                forward: ul.forward,
                span: ul.span - (rank[0] - rank[i]),
            };
            *self.lv_mut(u, i) = Level {
                forward: x,
                span: (rank[0] - rank[i]) + 1,
            };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(level) {
            self.lv_mut(u, i).span += 1;
        }
        self.nodes[x as usize].backward = if update[0] == HEAD { NIL } else { update[0] };
        let next = self.lv(x, 0).forward;
        if next != NIL {
            self.nodes[next as usize].backward = x;
        } else {
            self.tail = x;
        }
        self.length += 1;
        x
    }

    /// zslDeleteNode: unlinks x given its predecessors; the slot is freed.
    fn delete_node(&mut self, x: u32, update: &[u32; MAX_LEVEL]) -> (Box<[u8]>, f64) {
        for (i, &u) in update.iter().enumerate().take(self.level) {
            if self.lv(u, i).forward == x {
                let xl = self.lv(x, i);
                let ul = self.lv_mut(u, i);
                ul.span = ul.span + xl.span - 1;
                ul.forward = xl.forward;
            } else {
                self.lv_mut(u, i).span -= 1;
            }
        }
        let next = self.lv(x, 0).forward;
        let back = self.node(x).backward;
        if next != NIL {
            self.nodes[next as usize].backward = back;
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.lv(HEAD, self.level - 1).forward == NIL {
            self.level -= 1;
        }
        self.length -= 1;
        let node = &mut self.nodes[x as usize];
        let member = std::mem::take(&mut node.member);
        let score = node.score;
        node.levels = Box::default();
        self.free.push(x);
        (member, score)
    }

    /// The predecessors of (score, member) at every level.
    fn find_update(&self, score: f64, member: &[u8]) -> ([u32; MAX_LEVEL], u32) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.lv(x, i).forward;
                if f != NIL && less(self.node(f).score, &self.node(f).member, score, member) {
                    x = f;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        (update, self.lv(x, 0).forward)
    }

    /// zslDelete: true if (score, member) was there.
    fn delete(&mut self, score: f64, member: &[u8]) -> bool {
        let (update, x) = self.find_update(score, member);
        if x != NIL && self.node(x).score == score && *self.node(x).member == *member {
            self.delete_node(x, &update);
            self.maybe_compact();
            true
        } else {
            false
        }
    }

    /// zslUpdateScore: moves an existing element to its new score.
    fn update_score(&mut self, cur: f64, member: &[u8], new: f64) {
        let (update, x) = self.find_update(cur, member);
        assert!(x != NIL && self.node(x).score == cur && *self.node(x).member == *member);
        let back = self.node(x).backward;
        let next = self.lv(x, 0).forward;
        if (back == NIL || self.node(back).score < new) && (next == NIL || self.node(next).score > new) {
            self.nodes[x as usize].score = new;
            return;
        }
        let (member, _) = self.delete_node(x, &update);
        self.insert(new, member);
    }

    /// zslGetRank: 1-based rank of an element present in the list, 0 if absent.
    fn rank_of(&self, score: f64, member: &[u8]) -> usize {
        let mut rank = 0usize;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.lv(x, i).forward;
                if f != NIL {
                    let n = self.node(f);
                    if n.score < score || (n.score == score && *n.member <= *member) {
                        rank += self.lv(x, i).span as usize;
                        x = f;
                        continue;
                    }
                }
                break;
            }
            if x != HEAD && *self.node(x).member == *member {
                return rank;
            }
        }
        0
    }

    /// zslGetElementByRank: the node at 1-based `rank`.
    fn by_rank(&self, rank: usize) -> u32 {
        let mut traversed = 0usize;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = self.lv(x, i);
                if l.forward != NIL && traversed + l.span as usize <= rank {
                    traversed += l.span as usize;
                    x = l.forward;
                } else {
                    break;
                }
            }
            if traversed == rank {
                return x;
            }
        }
        NIL
    }

    /// Descends to the last node for which `before(node)` holds (HEAD if none), assuming
    /// `before` holds on a prefix of the list, as Redis's range descents do.
    fn descend(&self, before: impl Fn(&Node) -> bool) -> u32 {
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.lv(x, i).forward;
                if f != NIL && before(self.node(f)) {
                    x = f;
                } else {
                    break;
                }
            }
        }
        x
    }

    fn descend_update(&self, before: impl Fn(&Node) -> bool) -> ([u32; MAX_LEVEL], u32) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.lv(x, i).forward;
                if f != NIL && before(self.node(f)) {
                    x = f;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        (update, x)
    }

    #[inline]
    fn first(&self) -> u32 {
        self.lv(HEAD, 0).forward
    }

    /// Rebuilds the arena without free slots once they outnumber the live nodes.
    fn maybe_compact(&mut self) {
        if self.free.len() < 64 || self.free.len() < self.length {
            return;
        }
        let mut map = vec![NIL; self.nodes.len()];
        map[0] = HEAD;
        let mut order = Vec::with_capacity(self.length + 1);
        order.push(HEAD);
        let mut x = self.first();
        while x != NIL {
            map[x as usize] = order.len() as u32;
            order.push(x);
            x = self.lv(x, 0).forward;
        }
        let remap = |i: u32| if i == NIL { NIL } else { map[i as usize] };
        let mut old: Vec<Option<Node>> = std::mem::take(&mut self.nodes).into_iter().map(Some).collect();
        let mut nodes = Vec::with_capacity(order.len());
        for &o in &order {
            let mut n = old[o as usize].take().expect("live node");
            n.backward = remap(n.backward);
            for l in n.levels.iter_mut() {
                l.forward = remap(l.forward);
            }
            nodes.push(n);
        }
        self.nodes = nodes;
        self.tail = remap(self.tail);
        self.free.clear();
    }
}

/// A score range of ZRANGEBYSCORE and friends: `(1.5` is exclusive.
#[derive(Clone, Copy, Debug)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

impl ScoreRange {
    #[inline]
    pub fn gte_min(&self, v: f64) -> bool {
        if self.minex {
            v > self.min
        } else {
            v >= self.min
        }
    }
    #[inline]
    pub fn lte_max(&self, v: f64) -> bool {
        if self.maxex {
            v < self.max
        } else {
            v <= self.max
        }
    }
    /// Ranges that can hold nothing (zslIsInRange's first test).
    pub fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// One end of a lex range: `-`, `+`, `[member` or `(member`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

impl LexBound {
    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Incl(_))
    }
}

/// A value or a bound as Redis's sdscmplex sees it: `-` and `+` are the smallest and largest
/// strings.
#[derive(Clone, Copy)]
enum LexKey<'a> {
    Min,
    Max,
    Val(&'a [u8]),
}

impl LexBound {
    fn key(&self) -> LexKey<'_> {
        match self {
            LexBound::Min => LexKey::Min,
            LexBound::Max => LexKey::Max,
            LexBound::Incl(v) | LexBound::Excl(v) => LexKey::Val(v),
        }
    }
}

fn cmp_lex(a: LexKey<'_>, b: LexKey<'_>) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    use LexKey::*;
    match (a, b) {
        (Min, Min) | (Max, Max) => Equal,
        (Min, _) | (_, Max) => Less,
        (Max, _) | (_, Min) => Greater,
        (Val(x), Val(y)) => x.cmp(y),
    }
}

#[derive(Clone, Debug)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn gte_min(&self, v: &[u8]) -> bool {
        let c = cmp_lex(LexKey::Val(v), self.min.key());
        if self.min.exclusive() {
            c.is_gt()
        } else {
            c.is_ge()
        }
    }
    pub fn lte_max(&self, v: &[u8]) -> bool {
        let c = cmp_lex(LexKey::Val(v), self.max.key());
        if self.max.exclusive() {
            c.is_lt()
        } else {
            c.is_le()
        }
    }
    pub fn is_empty(&self) -> bool {
        let c = cmp_lex(self.min.key(), self.max.key());
        c.is_gt() || (c.is_eq() && (self.min.exclusive() || self.max.exclusive()))
    }
}

/// A position in the set's order, for walking it (valid until the set changes).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Pos(u32);

/// ZADD's options as they reach one element.
#[derive(Clone, Copy, Default, Debug)]
pub struct AddFlags {
    pub incr: bool,
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

/// What zsetAdd did with one element.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum AddOutcome {
    /// The resulting score is NaN: nothing changed.
    Nan,
    /// NX/XX/GT/LT said no.
    Nop,
    Added(f64),
    Updated(f64),
    /// Processed, but the score stayed the same.
    Same(f64),
}

pub struct ZSet {
    dict: Dict<f64>,
    zsl: SkipList,
    listpack: bool,
}

impl ZSet {
    /// An empty set, "listpack" until an insert passes the limits.
    pub fn new() -> ZSet {
        ZSet {
            dict: Dict::new(Hasher::with_seed(fastrand::u64(..))),
            zsl: SkipList::new(),
            listpack: true,
        }
    }

    pub fn len(&self) -> usize {
        self.zsl.length
    }

    pub fn is_empty(&self) -> bool {
        self.zsl.length == 0
    }

    pub fn is_listpack(&self) -> bool {
        self.listpack
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.dict.get(self.dict.hash(member), member).map(|n| n.value)
    }

    /// A listpack keeps scores as text where "-0" reads back as integer 0.
    #[inline]
    fn stored(&self, score: f64) -> f64 {
        if self.listpack && score == 0.0 {
            0.0
        } else {
            score
        }
    }

    /// Adds a member known to be absent (converting to skiplist first if the listpack limits
    /// would be passed, as zsetAdd does).
    pub fn insert_new(&mut self, member: &[u8], score: f64, limits: ListpackLimits) {
        if self.listpack && (self.len() + 1 > limits.entries || member.len() > limits.value) {
            self.listpack = false;
        }
        let score = self.stored(score);
        let h = self.dict.hash(member);
        self.dict.insert_new(h, member, score);
        self.zsl.insert(score, member.into());
    }

    /// What zsetAdd would do with one element, without doing it.
    pub fn probe(&self, member: &[u8], score: f64, flags: AddFlags) -> AddOutcome {
        if score.is_nan() {
            return AddOutcome::Nan;
        }
        match self.score(member) {
            Some(cur) => {
                if flags.nx {
                    return AddOutcome::Nop;
                }
                let mut score = score;
                if flags.incr {
                    score += cur;
                    if score.is_nan() {
                        return AddOutcome::Nan;
                    }
                }
                if (flags.lt && score >= cur) || (flags.gt && score <= cur) {
                    AddOutcome::Nop
                } else if score != cur {
                    AddOutcome::Updated(score)
                } else {
                    AddOutcome::Same(score)
                }
            }
            None if flags.xx => AddOutcome::Nop,
            None => AddOutcome::Added(score),
        }
    }

    /// Redis's zsetAdd for one element.
    pub fn add(&mut self, member: &[u8], score: f64, flags: AddFlags, limits: ListpackLimits) -> AddOutcome {
        let outcome = self.probe(member, score, flags);
        match outcome {
            AddOutcome::Updated(new) => {
                let cur = self.score(member).expect("present");
                let stored = self.stored(new);
                let h = self.dict.hash(member);
                self.dict.get_mut(h, member).expect("present").value = stored;
                self.zsl.update_score(cur, member, stored);
            }
            AddOutcome::Added(new) => self.insert_new(member, new, limits),
            AddOutcome::Nan | AddOutcome::Nop | AddOutcome::Same(_) => {}
        }
        outcome
    }

    /// Removes a member; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let h = self.dict.hash(member);
        match self.dict.remove(h, member) {
            Some(node) => {
                let removed = self.zsl.delete(node.value, member);
                debug_assert!(removed);
                true
            }
            None => false,
        }
    }

    /// 0-based rank counting from the lowest score (or the highest with `reverse`).
    pub fn rank(&self, member: &[u8], reverse: bool) -> Option<usize> {
        let score = self.score(member)?;
        let r = self.zsl.rank_of(score, member);
        debug_assert!(r != 0);
        Some(if reverse { self.len() - r } else { r - 1 })
    }

    // ---- positions ----

    pub fn first(&self) -> Option<Pos> {
        Some(self.zsl.first()).filter(|&x| x != NIL).map(Pos)
    }

    pub fn last(&self) -> Option<Pos> {
        Some(self.zsl.tail).filter(|&x| x != NIL).map(Pos)
    }

    /// The element at 0-based rank `r` from the lowest score.
    pub fn at_rank(&self, r: usize) -> Option<Pos> {
        if r >= self.len() {
            return None;
        }
        if r == 0 {
            return self.first();
        }
        Some(Pos(self.zsl.by_rank(r + 1))).filter(|p| p.0 != NIL && p.0 != HEAD)
    }

    pub fn next(&self, p: Pos) -> Option<Pos> {
        Some(self.zsl.lv(p.0, 0).forward).filter(|&x| x != NIL).map(Pos)
    }

    pub fn prev(&self, p: Pos) -> Option<Pos> {
        Some(self.zsl.node(p.0).backward).filter(|&x| x != NIL).map(Pos)
    }

    /// The next element forward (or backward with `reverse`).
    pub fn step(&self, p: Pos, reverse: bool) -> Option<Pos> {
        if reverse {
            self.prev(p)
        } else {
            self.next(p)
        }
    }

    pub fn get(&self, p: Pos) -> (&[u8], f64) {
        let n = self.zsl.node(p.0);
        (&n.member, n.score)
    }

    /// 0-based rank of a position (O(log n)).
    pub fn rank_at(&self, p: Pos) -> usize {
        let (m, s) = self.get(p);
        self.zsl.rank_of(s, m) - 1
    }

    /// Elements in order from `p` (forward, or backward with `reverse`).
    pub fn iter_from(&self, p: Option<Pos>, reverse: bool) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        let mut cur = p;
        std::iter::from_fn(move || {
            let p = cur?;
            cur = self.step(p, reverse);
            Some(self.get(p))
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        self.iter_from(self.first(), false)
    }

    // ---- ranges ----

    fn in_range(&self, r: &ScoreRange) -> bool {
        if r.is_empty() {
            return false;
        }
        match (self.last(), self.first()) {
            (Some(l), Some(f)) => r.gte_min(self.get(l).1) && r.lte_max(self.get(f).1),
            _ => false,
        }
    }

    /// zslFirstInRange.
    pub fn first_in_range(&self, r: &ScoreRange) -> Option<Pos> {
        if !self.in_range(r) {
            return None;
        }
        let x = self.zsl.descend(|n| !r.gte_min(n.score));
        let x = self.zsl.lv(x, 0).forward;
        (x != NIL && r.lte_max(self.zsl.node(x).score)).then_some(Pos(x))
    }

    /// zslLastInRange.
    pub fn last_in_range(&self, r: &ScoreRange) -> Option<Pos> {
        if !self.in_range(r) {
            return None;
        }
        let x = self.zsl.descend(|n| r.lte_max(n.score));
        (x != HEAD && r.gte_min(self.zsl.node(x).score)).then_some(Pos(x))
    }

    fn in_lex_range(&self, r: &LexRange) -> bool {
        if r.is_empty() {
            return false;
        }
        match (self.last(), self.first()) {
            (Some(l), Some(f)) => r.gte_min(self.get(l).0) && r.lte_max(self.get(f).0),
            _ => false,
        }
    }

    /// zslFirstInLexRange (a listpack scans from the head, which differs only when members
    /// are not in lex order, i.e. their scores differ).
    pub fn first_in_lex_range(&self, r: &LexRange) -> Option<Pos> {
        if !self.in_lex_range(r) {
            return None;
        }
        if self.listpack {
            let p = self.linear_first(|m| r.gte_min(m))?;
            return r.lte_max(self.get(p).0).then_some(p);
        }
        let x = self.zsl.descend(|n| !r.gte_min(&n.member));
        let x = self.zsl.lv(x, 0).forward;
        (x != NIL && r.lte_max(&self.zsl.node(x).member)).then_some(Pos(x))
    }

    /// zslLastInLexRange.
    pub fn last_in_lex_range(&self, r: &LexRange) -> Option<Pos> {
        if !self.in_lex_range(r) {
            return None;
        }
        if self.listpack {
            let mut cur = self.last();
            while let Some(p) = cur {
                if r.lte_max(self.get(p).0) {
                    return r.gte_min(self.get(p).0).then_some(p);
                }
                cur = self.prev(p);
            }
            return None;
        }
        let x = self.zsl.descend(|n| r.lte_max(&n.member));
        (x != HEAD && r.gte_min(&self.zsl.node(x).member)).then_some(Pos(x))
    }

    fn linear_first(&self, pred: impl Fn(&[u8]) -> bool) -> Option<Pos> {
        let mut cur = self.first();
        while let Some(p) = cur {
            if pred(self.get(p).0) {
                return Some(p);
            }
            cur = self.next(p);
        }
        None
    }

    /// ZCOUNT.
    pub fn count_in_range(&self, r: &ScoreRange) -> usize {
        match (self.first_in_range(r), self.last_in_range(r)) {
            (Some(f), Some(l)) => self.rank_at(l) + 1 - self.rank_at(f),
            (Some(f), None) => self.len() - self.rank_at(f),
            _ => 0,
        }
    }

    /// ZLEXCOUNT.
    pub fn count_in_lex_range(&self, r: &LexRange) -> usize {
        let Some(f) = self.first_in_lex_range(r) else {
            return 0;
        };
        if self.listpack {
            return self.iter_from(Some(f), false).take_while(|(m, _)| r.lte_max(m)).count();
        }
        match self.last_in_lex_range(r) {
            Some(l) => (self.rank_at(l) + 1).saturating_sub(self.rank_at(f)),
            None => self.len() - self.rank_at(f),
        }
    }

    /// Removes the elements from `start` on (the predecessors at each level given) while
    /// `keep_going` holds, at most `limit` of them; returns how many went.
    fn delete_run(&mut self, update: [u32; MAX_LEVEL], start: u32, limit: usize, keep_going: impl Fn(&Node) -> bool) -> usize {
        let mut x = start;
        let mut removed = 0;
        // The predecessors stay the same: each node deleted is the successor of update[].
        while x != NIL && removed < limit && keep_going(self.zsl.node(x)) {
            let next = self.zsl.lv(x, 0).forward;
            let (member, _) = self.zsl.delete_node(x, &update);
            let h = self.dict.hash(&member);
            self.dict.remove(h, &member);
            removed += 1;
            x = next;
        }
        self.zsl.maybe_compact();
        removed
    }

    /// ZREMRANGEBYSCORE (zslDeleteRangeByScore).
    pub fn delete_range_by_score(&mut self, r: &ScoreRange) -> usize {
        let (update, x) = self.zsl.descend_update(|n| !r.gte_min(n.score));
        let start = self.zsl.lv(x, 0).forward;
        self.delete_run(update, start, usize::MAX, |n| r.lte_max(n.score))
    }

    /// ZREMRANGEBYLEX (zslDeleteRangeByLex; a listpack starts at its first element in range).
    pub fn delete_range_by_lex(&mut self, r: &LexRange) -> usize {
        if self.listpack {
            let Some(first) = self.first_in_lex_range(r) else {
                return 0;
            };
            let (m, s) = self.get(first);
            let (update, x) = self.zsl.find_update(s, m);
            return self.delete_run(update, x, usize::MAX, |n| r.lte_max(&n.member));
        }
        let (update, x) = self.zsl.descend_update(|n| !r.gte_min(&n.member));
        let start = self.zsl.lv(x, 0).forward;
        self.delete_run(update, start, usize::MAX, |n| r.lte_max(&n.member))
    }

    /// ZREMRANGEBYRANK: 0-based inclusive ranks, already clamped to the set.
    pub fn delete_range_by_rank(&mut self, start: usize, end: usize) -> usize {
        let mut update = [HEAD; MAX_LEVEL];
        let mut traversed = 0usize;
        let mut x = HEAD;
        for i in (0..self.zsl.level).rev() {
            loop {
                let l = self.zsl.lv(x, i);
                if l.forward != NIL && traversed + (l.span as usize) < start + 1 {
                    traversed += l.span as usize;
                    x = l.forward;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let first = self.zsl.lv(x, 0).forward;
        self.delete_run(update, first, end + 1 - start, |_| true)
    }

    /// Removes and returns the lowest (or highest) element.
    pub fn pop(&mut self, max: bool) -> Option<(Box<[u8]>, f64)> {
        let p = if max { self.last()? } else { self.first()? };
        let (m, s) = self.get(p);
        let (m, s) = (Box::<[u8]>::from(m), s);
        self.remove(&m);
        Some((m, s))
    }

    // ---- hash side ----

    /// The hash-table form, for ZSCAN's cursor (None while a listpack).
    pub fn table(&self) -> Option<&Dict<f64>> {
        (!self.listpack).then_some(&self.dict)
    }

    /// One member chosen uniformly (ZRANDMEMBER).
    pub fn random(&self, rng: &mut fastrand::Rng) -> Option<(&[u8], f64)> {
        if self.listpack {
            let r = rng.usize(..self.len().max(1));
            return self.at_rank(r).map(|p| self.get(p));
        }
        self.dict.random(rng).map(|n| (&*n.key, n.value))
    }

    /// A set built whole (Z*STORE) goes back to a listpack when small enough
    /// (zsetConvertToListpackIfNeeded).
    pub fn convert_if_small(&mut self, limits: ListpackLimits) {
        if self.listpack {
            return;
        }
        let maxlen = self.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
        if self.len() <= limits.entries && maxlen <= limits.value {
            self.set_listpack();
        }
    }

    /// Marks the set as a listpack, with a listpack's -0 -> 0.
    fn set_listpack(&mut self) {
        self.listpack = true;
        let zeros: Vec<Box<[u8]>> = self.iter().filter(|(_, s)| *s == 0.0).map(|(m, _)| m.into()).collect();
        for m in zeros {
            let h = self.dict.hash(&m);
            self.dict.get_mut(h, &m).expect("present").value = 0.0;
        }
        let mut x = self.zsl.first();
        while x != NIL {
            let n = &mut self.zsl.nodes[x as usize];
            if n.score == 0.0 {
                n.score = 0.0;
            }
            x = n.levels[0].forward;
        }
    }

    /// A set with the skiplist encoding from the start (zset-max-listpack-entries 0, or a first
    /// member too long).
    pub fn set_skiplist(&mut self) {
        self.listpack = false;
    }

    pub fn heap_size(&self) -> usize {
        use super::memory::size_class;
        use std::mem::size_of;
        let bytes = |b: &[u8]| if b.is_empty() { 0 } else { size_class(b.len()) };
        let own = size_class(size_of::<ZSet>());
        let arena = size_class(self.zsl.nodes.capacity().max(1) * size_of::<Node>()) + size_class(self.zsl.free.capacity().max(1) * 4);
        let nodes: usize = self
            .zsl
            .nodes
            .iter()
            .map(|n| {
                bytes(&n.member)
                    + if n.levels.is_empty() {
                        0
                    } else {
                        size_class(n.levels.len() * size_of::<Level>())
                    }
            })
            .sum();
        let buckets = if self.dict.bucket_count() == 0 {
            0
        } else {
            size_class(self.dict.bucket_count() * 8)
        };
        let dnode = size_class(size_of::<super::dict::Node<f64>>());
        let dict: usize = self.dict.iter().map(|n| dnode + n.key.heap_size()).sum();
        own + arena + nodes + buckets + dict
    }

    pub fn deep_clone(&self) -> ZSet {
        let mut c = ZSet::new();
        c.listpack = self.listpack;
        // From the highest down: each insert stops at the head (as zsetDup does).
        for (m, s) in self.iter_from(self.last(), true) {
            c.dict.insert_new(c.dict.hash(m), m, s);
            c.zsl.insert(s, m.into());
        }
        c
    }

    /// Checks the skiplist's links and spans (tests).
    #[cfg(test)]
    fn check(&self) {
        let zsl = &self.zsl;
        let mut x = zsl.first();
        let mut prev = NIL;
        let mut n = 0;
        let mut order = Vec::new();
        while x != NIL {
            assert_eq!(zsl.node(x).backward, prev);
            if prev != NIL {
                let (a, b) = (zsl.node(prev), zsl.node(x));
                assert!(less(a.score, &a.member, b.score, &b.member));
            }
            order.push(x);
            prev = x;
            x = zsl.lv(x, 0).forward;
            n += 1;
        }
        assert_eq!(zsl.tail, prev);
        assert_eq!(n, zsl.length);
        assert_eq!(self.dict.len(), n);
        let mut pos = vec![0usize; zsl.nodes.len()];
        for (i, &o) in order.iter().enumerate() {
            pos[o as usize] = i + 1;
        }
        for i in 0..zsl.level {
            let mut x = HEAD;
            let mut at = 0;
            loop {
                let l = zsl.lv(x, i);
                if l.forward == NIL {
                    break;
                }
                let to = pos[l.forward as usize];
                assert_eq!(l.span as usize, to - at, "span at level {i}");
                at = to;
                x = l.forward;
            }
        }
        for &o in &order {
            let nd = zsl.node(o);
            assert_eq!(self.score(&nd.member), Some(nd.score));
        }
    }
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const BIG: ListpackLimits = ListpackLimits { entries: 128, value: 64 };

    /// The naive model: a sorted Vec of (score, member).
    fn model_sorted(m: &BTreeMap<Vec<u8>, f64>) -> Vec<(f64, Vec<u8>)> {
        let mut v: Vec<(f64, Vec<u8>)> = m.iter().map(|(k, s)| (*s, k.clone())).collect();
        v.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then_with(|| a.1.cmp(&b.1)));
        v
    }

    fn ours(z: &ZSet) -> Vec<(f64, Vec<u8>)> {
        z.iter().map(|(m, s)| (s, m.to_vec())).collect()
    }

    #[test]
    fn random_operations_match_a_naive_model() {
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..20 {
            let mut z = ZSet::new();
            z.set_skiplist();
            let mut m: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
            let universe = 10 + round * 30;
            for step in 0..3000 {
                let member = format!("m{}", rng.usize(..universe)).into_bytes();
                let score = (rng.i32(-20..20) as f64) / 2.0;
                match rng.u8(..10) {
                    0..=4 => {
                        let out = z.add(&member, score, AddFlags::default(), BIG);
                        let was = m.insert(member.clone(), score);
                        match was {
                            None => assert_eq!(out, AddOutcome::Added(score)),
                            Some(s) if s == score => assert_eq!(out, AddOutcome::Same(score)),
                            Some(_) => assert_eq!(out, AddOutcome::Updated(score)),
                        }
                    }
                    5 => {
                        let flags = AddFlags {
                            incr: true,
                            ..Default::default()
                        };
                        let out = z.add(&member, score, flags, BIG);
                        let new = m.get(&member).copied().unwrap_or(0.0) + score;
                        let new = if m.contains_key(&member) { new } else { score };
                        m.insert(member.clone(), new);
                        assert!(matches!(out, AddOutcome::Added(s) | AddOutcome::Updated(s) | AddOutcome::Same(s) if s == new));
                    }
                    6 | 7 => {
                        assert_eq!(z.remove(&member), m.remove(&member).is_some());
                    }
                    8 => {
                        let sorted = model_sorted(&m);
                        if !sorted.is_empty() {
                            let a = rng.usize(..sorted.len());
                            let b = rng.usize(a..sorted.len());
                            assert_eq!(z.delete_range_by_rank(a, b), b - a + 1);
                            for (_, k) in &sorted[a..=b] {
                                m.remove(k);
                            }
                        }
                    }
                    _ => {
                        let lo = (rng.i32(-22..22) as f64) / 2.0;
                        let hi = lo + (rng.i32(0..10) as f64) / 2.0;
                        let r = ScoreRange {
                            min: lo,
                            max: hi,
                            minex: rng.bool(),
                            maxex: rng.bool(),
                        };
                        let expect: Vec<Vec<u8>> = model_sorted(&m)
                            .into_iter()
                            .filter(|(s, _)| r.gte_min(*s) && r.lte_max(*s))
                            .map(|(_, k)| k)
                            .collect();
                        assert_eq!(z.count_in_range(&r), expect.len());
                        if step % 2 == 0 {
                            assert_eq!(z.delete_range_by_score(&r), expect.len());
                            for k in &expect {
                                m.remove(k);
                            }
                        } else {
                            let got: Vec<Vec<u8>> = z
                                .iter_from(z.first_in_range(&r), false)
                                .take_while(|(_, s)| r.lte_max(*s))
                                .map(|(k, _)| k.to_vec())
                                .collect();
                            assert_eq!(got, expect);
                            let back: Vec<Vec<u8>> = z
                                .iter_from(z.last_in_range(&r), true)
                                .take_while(|(_, s)| r.gte_min(*s))
                                .map(|(k, _)| k.to_vec())
                                .collect();
                            assert_eq!(back, expect.iter().rev().cloned().collect::<Vec<_>>());
                        }
                    }
                }
                if step % 97 == 0 {
                    z.check();
                }
                let sorted = model_sorted(&m);
                assert_eq!(z.len(), sorted.len());
                if step % 13 == 0 {
                    assert_eq!(ours(&z), sorted);
                    for (i, (s, k)) in sorted.iter().enumerate() {
                        assert_eq!(z.rank(k, false), Some(i));
                        assert_eq!(z.rank(k, true), Some(sorted.len() - 1 - i));
                        assert_eq!(z.score(k), Some(*s));
                        let p = z.at_rank(i).unwrap();
                        assert_eq!(z.get(p).0, &k[..]);
                    }
                    assert!(z.at_rank(sorted.len()).is_none());
                }
            }
            z.check();
        }
    }

    #[test]
    fn lex_ranges_on_equal_scores() {
        let mut z = ZSet::new();
        z.set_skiplist();
        let words = ["a", "b", "c", "d", "e", "f", "g"];
        for w in words {
            z.add(w.as_bytes(), 0.0, AddFlags::default(), BIG);
        }
        let r = LexRange {
            min: LexBound::Incl(b"b".to_vec()),
            max: LexBound::Excl(b"f".to_vec()),
        };
        assert_eq!(z.count_in_lex_range(&r), 4);
        let all = LexRange {
            min: LexBound::Min,
            max: LexBound::Max,
        };
        assert_eq!(z.count_in_lex_range(&all), 7);
        assert!(LexRange {
            min: LexBound::Max,
            max: LexBound::Min
        }
        .is_empty());
        assert!(LexRange {
            min: LexBound::Min,
            max: LexBound::Min
        }
        .is_empty());
        assert!(!LexRange {
            min: LexBound::Incl(b"a".to_vec()),
            max: LexBound::Incl(b"a".to_vec())
        }
        .is_empty());
        assert_eq!(z.delete_range_by_lex(&r), 4);
        assert_eq!(
            ours(&z).into_iter().map(|(_, m)| m).collect::<Vec<_>>(),
            vec![b"a".to_vec(), b"f".to_vec(), b"g".to_vec()]
        );
        z.check();
    }

    #[test]
    fn listpack_flag_and_negative_zero() {
        let lim = ListpackLimits { entries: 3, value: 4 };
        let mut z = ZSet::new();
        z.add(b"a", -0.0, AddFlags::default(), lim);
        assert!(z.is_listpack());
        assert!(z.score(b"a").unwrap().is_sign_positive());
        z.add(b"b", 1.0, AddFlags::default(), lim);
        z.add(b"c", 2.0, AddFlags::default(), lim);
        assert!(z.is_listpack());
        z.add(b"d", -0.0, AddFlags::default(), lim);
        assert!(!z.is_listpack());
        assert!(z.score(b"d").unwrap().is_sign_negative());
        z.remove(b"a");
        z.remove(b"b");
        z.convert_if_small(lim);
        assert!(z.is_listpack());
        assert!(z.score(b"d").unwrap().is_sign_positive());
        let mut z = ZSet::new();
        z.add(b"longer", 1.0, AddFlags::default(), lim);
        assert!(!z.is_listpack());
    }

    #[test]
    fn big_set_compacts_and_stays_consistent() {
        let mut z = ZSet::new();
        z.set_skiplist();
        for i in 0..5000 {
            z.add(format!("{i:05}").as_bytes(), (i % 100) as f64, AddFlags::default(), BIG);
        }
        assert_eq!(z.delete_range_by_rank(0, 3999), 4000);
        z.check();
        assert!(z.zsl.nodes.len() < 2000);
        assert_eq!(z.len(), 1000);
        let c = z.deep_clone();
        c.check();
        assert_eq!(ours(&c), ours(&z));
        while z.pop(false).is_some() {}
        assert!(z.is_empty());
        z.check();
    }
}
