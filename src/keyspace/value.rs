//! What a key holds: the value plus the metadata expiry and eviction need, packed so a table node
//! (next pointer, key, entry) is one 64-byte allocation.

pub enum Value {
    /// A string as set; exact size, no spare capacity.
    Str(Box<[u8]>),
    /// A string grown by APPEND/SETRANGE, with room to grow again (Redis's "raw" encoding).
    StrBuf(Vec<u8>),
}

impl Value {
    pub fn string(bytes: &[u8]) -> Value {
        Value::Str(bytes.into())
    }

    pub fn as_str(&self) -> Option<&[u8]> {
        match self {
            Value::Str(b) => Some(b),
            Value::StrBuf(v) => Some(v),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) | Value::StrBuf(_) => "string",
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
            Value::Str(_) => None,
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
