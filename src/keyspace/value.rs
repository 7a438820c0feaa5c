//! What a key holds: the value plus the metadata expiry and eviction need, packed so a table node
//! (next pointer, key, entry) is one 64-byte allocation.

use super::dict::{Dict, Hasher};
use super::set::Set;

pub enum Value {
    /// A string as set; exact size, no spare capacity.
    Str(Box<[u8]>),
    /// A string grown by APPEND/SETRANGE, with room to grow again (Redis's "raw" encoding).
    StrBuf(Vec<u8>),
    /// A hash (boxed so the entry stays small).
    Hash(Box<Hash>),
    /// A set (boxed so the entry stays small).
    Set(Box<Set>),
    /// A list (boxed so the entry stays small).
    List(Box<super::list::List>),
    /// A sorted set.
    ZSet(Box<super::zset::ZSet>),
}

/// Redis's hash-max-listpack-entries / hash-max-listpack-value (512 and 64 by default): a hash
/// stays in the compact, insertion-ordered form ("listpack") until it has more fields than
/// `entries` or a field or value longer than `value`, then becomes a hash table for good, as in
/// Redis 7.0.
#[derive(Clone, Copy)]
pub struct ListpackLimits {
    pub entries: usize,
    pub value: usize,
}

/// A hash's fields: a small vector in insertion order (Redis's listpack: HGETALL answers in the
/// order fields were added) or, once big, a hash table with HSCAN's reverse-binary cursor.
/// A field name or value, exact size.
pub type Bytes = Box<[u8]>;

/// What removing members by name needs of a container (HDEL, SREM, ZREM share one command body).
pub trait Members {
    fn has(&self, member: &[u8]) -> bool;
    /// Removes `member`; true if it was there.
    fn take(&mut self, member: &[u8]) -> bool;
    fn is_empty(&self) -> bool;
}

impl Members for Hash {
    fn has(&self, member: &[u8]) -> bool {
        self.get(member).is_some()
    }
    fn take(&mut self, member: &[u8]) -> bool {
        self.remove(member)
    }
    fn is_empty(&self) -> bool {
        Hash::is_empty(self)
    }
}

impl Members for super::set::Set {
    fn has(&self, member: &[u8]) -> bool {
        self.contains(member)
    }
    fn take(&mut self, member: &[u8]) -> bool {
        self.remove(member)
    }
    fn is_empty(&self) -> bool {
        super::set::Set::is_empty(self)
    }
}

impl Members for super::zset::ZSet {
    fn has(&self, member: &[u8]) -> bool {
        self.score(member).is_some()
    }
    fn take(&mut self, member: &[u8]) -> bool {
        self.remove(member)
    }
    fn is_empty(&self) -> bool {
        super::zset::ZSet::is_empty(self)
    }
}

pub enum Hash {
    Listpack(Vec<(Bytes, Bytes)>),
    Table(Dict<Box<[u8]>>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Listpack(Vec::new())
    }
}

impl Hash {
    pub fn len(&self) -> usize {
        match self {
            Hash::Listpack(v) => v.len(),
            Hash::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self, Hash::Listpack(_))
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Listpack(v) => v.iter().find(|(f, _)| **f == *field).map(|(_, v)| &**v),
            Hash::Table(d) => d.get(d.hash(field), field).map(|n| &*n.value),
        }
    }

    /// Sets a field; true if it is new. Converts to a table when the listpack limits are passed.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: ListpackLimits) -> bool {
        if let Hash::Listpack(_) = self {
            if field.len() > limits.value || value.len() > limits.value {
                self.convert();
            }
        }
        let added = match self {
            Hash::Listpack(v) => match v.iter_mut().find(|(f, _)| **f == *field) {
                Some(slot) => {
                    slot.1 = value.into();
                    false
                }
                None => {
                    v.push((field.into(), value.into()));
                    true
                }
            },
            Hash::Table(d) => {
                let h = d.hash(field);
                match d.get_mut(h, field) {
                    Some(n) => {
                        n.value = value.into();
                        false
                    }
                    None => {
                        d.insert_new(h, field, value.into());
                        true
                    }
                }
            }
        };
        if self.is_listpack() && self.len() > limits.entries {
            self.convert();
        }
        added
    }

    /// Removes a field; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Listpack(v) => match v.iter().position(|(f, _)| **f == *field) {
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            Hash::Table(d) => d.remove(d.hash(field), field).is_some(),
        }
    }

    /// Listpack to hash table (never back, as in Redis).
    fn convert(&mut self) {
        if let Hash::Listpack(v) = self {
            let mut d = Dict::new(Hasher::with_seed(fastrand::u64(..)));
            for (f, val) in std::mem::take(v) {
                d.insert_new(d.hash(&f), &f, val);
            }
            *self = Hash::Table(d);
        }
    }

    /// Every field and value: insertion order for a listpack, table order otherwise.
    pub fn for_each<'a>(&'a self, mut f: impl FnMut(&'a [u8], &'a [u8])) {
        match self {
            Hash::Listpack(v) => v.iter().for_each(|(k, v)| f(k, v)),
            Hash::Table(d) => d.iter().for_each(|n| f(&n.key, &n.value)),
        }
    }

    /// One field chosen uniformly (HRANDFIELD).
    pub fn random(&self, rng: &mut fastrand::Rng) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Listpack(v) if v.is_empty() => None,
            Hash::Listpack(v) => {
                let (k, v) = &v[rng.usize(..v.len())];
                Some((k, v))
            }
            Hash::Table(d) => d.random(rng).map(|n| (&*n.key, &*n.value)),
        }
    }

    /// The table form, for HSCAN's cursor (None while a listpack).
    pub fn table(&self) -> Option<&Dict<Box<[u8]>>> {
        match self {
            Hash::Table(d) => Some(d),
            Hash::Listpack(_) => None,
        }
    }

    pub fn heap_size(&self) -> usize {
        use super::memory::size_class;
        use std::mem::size_of;
        let bytes = |b: &[u8]| if b.is_empty() { 0 } else { size_class(b.len()) };
        let own = size_class(size_of::<Hash>());
        match self {
            Hash::Listpack(v) => {
                let slots = if v.capacity() == 0 {
                    0
                } else {
                    size_class(v.capacity() * size_of::<(Bytes, Bytes)>())
                };
                own + slots + v.iter().map(|(f, v)| bytes(f) + bytes(v)).sum::<usize>()
            }
            Hash::Table(d) => {
                let buckets = if d.bucket_count() == 0 {
                    0
                } else {
                    size_class(d.bucket_count() * 8)
                };
                let node = size_class(size_of::<super::dict::Node<Box<[u8]>>>());
                own + buckets + d.iter().map(|n| node + n.key.heap_size() + bytes(&n.value)).sum::<usize>()
            }
        }
    }

    pub fn deep_clone(&self) -> Hash {
        match self {
            Hash::Listpack(v) => Hash::Listpack(v.clone()),
            Hash::Table(d) => {
                let mut c = Dict::new(Hasher::with_seed(fastrand::u64(..)));
                for n in d.iter() {
                    c.insert_new(c.hash(&n.key), &n.key, n.value.clone());
                }
                Hash::Table(c)
            }
        }
    }
}

impl Value {
    pub fn string(bytes: &[u8]) -> Value {
        Value::Str(bytes.into())
    }

    pub fn as_str(&self) -> Option<&[u8]> {
        match self {
            Value::Str(b) => Some(b),
            Value::StrBuf(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_zset(&self) -> Option<&super::zset::ZSet> {
        match self {
            Value::ZSet(z) => Some(z),
            _ => None,
        }
    }

    pub fn as_set(&self) -> Option<&Set> {
        match self {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&super::list::List> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_set_mut(&mut self) -> Option<&mut Set> {
        match self {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_list_mut(&mut self) -> Option<&mut super::list::List> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_zset_mut(&mut self) -> Option<&mut super::zset::ZSet> {
        match self {
            Value::ZSet(z) => Some(z),
            _ => None,
        }
    }

    pub fn as_hash(&self) -> Option<&Hash> {
        match self {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }

    pub fn as_hash_mut(&mut self) -> Option<&mut Hash> {
        match self {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) | Value::StrBuf(_) => "string",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::List(_) => "list",
            Value::ZSet(_) => "zset",
        }
    }

    /// Heap bytes this value owns beyond the entry itself, at allocator size classes.
    pub fn heap_size(&self) -> usize {
        use super::memory::size_class;
        match self {
            Value::Str(b) if b.is_empty() => 0,
            Value::Str(b) => size_class(b.len()),
            Value::StrBuf(v) if v.capacity() == 0 => 0,
            Value::StrBuf(v) => size_class(v.capacity()),
            Value::Hash(h) => h.heap_size(),
            Value::Set(s) => s.heap_size(),
            Value::List(l) => l.heap_size(),
            Value::ZSet(z) => z.heap_size(),
        }
    }
}

pub struct Entry {
    pub value: Value,
    /// Unix ms; 0 means no TTL.
    expire_at: i64,
    /// LRU clock at last access (ms since start, wrapping).
    lru: u32,
    /// Low 8 bits: LFU counter; bit 8: forced "raw" encoding.
    meta: u32,
}

const RAW_HINT: u32 = 1 << 8;
const LFU_INIT: u32 = super::evict::LFU_INIT as u32;

impl Entry {
    pub fn new(value: Value, lru: u32) -> Self {
        Entry {
            value,
            expire_at: 0,
            lru,
            meta: LFU_INIT,
        }
    }

    #[inline]
    pub fn expire_at(&self) -> i64 {
        self.expire_at
    }

    pub(crate) fn set_expire_at(&mut self, at: i64) {
        self.expire_at = at;
    }

    #[inline]
    pub fn is_expired(&self, now: i64) -> bool {
        self.expire_at != 0 && self.expire_at <= now
    }

    #[inline]
    pub fn touch(&mut self, lru: u32) {
        self.lru = lru;
    }

    pub fn lru(&self) -> u32 {
        self.lru
    }

    pub fn lfu_counter(&self) -> u8 {
        (self.meta & 0xff) as u8
    }

    /// Under an LFU policy `lru` holds the minute of the last decay, as in Redis.
    pub fn set_lfu(&mut self, counter: u8, minutes: u16) {
        self.meta = (self.meta & !0xff) | counter as u32;
        self.lru = minutes as u32;
    }

    /// Marks the string as modified in place, which Redis reports as the "raw" encoding.
    pub fn set_raw_hint(&mut self) {
        self.meta |= RAW_HINT;
    }

    pub(crate) fn clear_encoding_hint(&mut self) {
        self.meta &= !RAW_HINT;
    }

    /// OBJECT ENCODING, as Redis 7 would report it.
    pub fn encoding(&self) -> &'static str {
        match &self.value {
            Value::Str(_) | Value::StrBuf(_) => {
                let s = self.value.as_str().unwrap_or_default();
                if self.meta & RAW_HINT == 0 && crate::commands::parse_i64_strict(s).is_some() && s.len() <= 20 {
                    "int"
                } else if self.meta & RAW_HINT == 0 && s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            Value::Hash(h) if h.is_listpack() => "listpack",
            Value::Hash(_) => "hashtable",
            Value::Set(s) if s.is_intset() => "intset",
            Value::Set(_) => "hashtable",
            // Redis 7.0 stores every list as a quicklist (listpack lists came in 7.2).
            Value::List(_) => "quicklist",
            Value::ZSet(z) if z.is_listpack() => "listpack",
            Value::ZSet(_) => "skiplist",
        }
    }

    /// A string value to mutate in place, switched to the growable form.
    pub fn string_buf(&mut self) -> Option<&mut Vec<u8>> {
        if let Value::Str(b) = &mut self.value {
            let v = std::mem::take(b).into_vec();
            self.value = Value::StrBuf(v);
        }
        match &mut self.value {
            Value::StrBuf(v) => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_table_node_is_one_64_byte_allocation() {
        assert_eq!(std::mem::size_of::<super::Entry>(), 40);
        // next + tag + inline key + entry: jemalloc's 80-byte class exactly.
        assert_eq!(std::mem::size_of::<super::super::dict::Node<super::Entry>>(), 80);
    }
}
