//! Eviction: keeping used memory under `maxmemory` as Redis's evict.c does. Before a command that
//! may add memory, keys are evicted until the allocator's count is under the limit.
//!
//! Approximated LRU/LFU/TTL as in Redis: sample `maxmemory-samples` keys per database into a
//! 16-entry pool ordered by how good a victim each is, evict the best, repeat. Two things differ on
//! purpose: the LRU clock has millisecond resolution (Redis's is one second, so keys touched within
//! the same second look equally old), and the pool survives between evictions as in Redis.

use parking_lot::Mutex;

use super::{memory, Keyspace, SHARDS};
use crate::config::EvictionPolicy;

const POOL_SIZE: usize = 16;

/// LFU parameters (lfu-log-factor, lfu-decay-time), read per access.
#[derive(Clone, Copy)]
pub struct LfuParams {
    pub log_factor: u32,
    pub decay_minutes: u32,
}

pub const LFU_INIT: u8 = 5;

/// Redis's LFULogIncr: the counter grows logarithmically with accesses.
pub fn lfu_incr(counter: u8, log_factor: u32, rng: &mut fastrand::Rng) -> u8 {
    if counter == 255 {
        return 255;
    }
    let base = (counter as f64 - LFU_INIT as f64).max(0.0);
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    if rng.f64() < p {
        counter + 1
    } else {
        counter
    }
}

/// Redis's LFUDecrAndReturn: one decrement per `decay` minutes since the last one.
pub fn lfu_decayed(counter: u8, last_minutes: u16, now_minutes: u16, decay: u32) -> u8 {
    if decay == 0 {
        return counter;
    }
    let elapsed = now_minutes.wrapping_sub(last_minutes) as u32;
    let periods = elapsed / decay;
    counter.saturating_sub(periods.min(255) as u8)
}

struct Candidate {
    score: u64,
    db: usize,
    key: Box<[u8]>,
}

#[derive(Default)]
pub struct Evictor {
    pool: Mutex<Vec<Candidate>>,
}

/// What happened when memory was over the limit.
#[derive(Debug, PartialEq, Eq)]
pub enum EvictOutcome {
    /// Under the limit (possibly after evicting).
    Ok,
    /// Still over the limit and nothing (more) can be evicted.
    OutOfMemory,
}

impl Keyspace {
    /// Evicts until used memory is at most `maxmemory`. Called before commands that may grow
    /// memory and after CONFIG SET maxmemory.
    pub fn evict_to_limit(&self, maxmemory: u64, policy: EvictionPolicy, samples: usize) -> EvictOutcome {
        if maxmemory == 0 || memory::used_memory() as u64 <= maxmemory {
            return EvictOutcome::Ok;
        }
        if policy == EvictionPolicy::NoEviction {
            return EvictOutcome::OutOfMemory;
        }
        let mut pool = self.evictor.pool.lock();
        let mut rng = fastrand::Rng::new();
        // Bounded: a pathological state cannot spin here forever.
        for _ in 0..1_000_000 {
            if memory::used_memory() as u64 <= maxmemory {
                return EvictOutcome::Ok;
            }
            let evicted = match policy {
                EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom => {
                    self.evict_random(&mut rng, policy == EvictionPolicy::VolatileRandom)
                }
                _ => self.evict_from_pool(&mut pool, &mut rng, policy, samples.max(1)),
            };
            if !evicted {
                return EvictOutcome::OutOfMemory;
            }
        }
        EvictOutcome::OutOfMemory
    }

    fn score(&self, policy: EvictionPolicy, e: &super::Entry) -> u64 {
        match policy {
            EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru => self.lru_clock().wrapping_sub(e.lru()) as u64,
            EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu => {
                let c = lfu_decayed(e.lfu_counter(), e.lru() as u16, self.lfu_minutes(), self.lfu_params().decay_minutes);
                255 - c as u64
            }
            // Sooner expiry is the better victim.
            _ => u64::MAX - e.expire_at().max(0) as u64,
        }
    }

    fn evict_from_pool(&self, pool: &mut Vec<Candidate>, rng: &mut fastrand::Rng, policy: EvictionPolicy, samples: usize) -> bool {
        let volatile = matches!(
            policy,
            EvictionPolicy::VolatileLru | EvictionPolicy::VolatileLfu | EvictionPolicy::VolatileTtl
        );
        loop {
            let mut sampled_any = false;
            for db in 0..self.databases() {
                // A random non-empty shard of this database, then a run of keys from it.
                let start = rng.usize(..SHARDS);
                for off in 0..SHARDS {
                    let shard = self.shards(db)[(start + off) % SHARDS].lock();
                    let main = &shard.main;
                    let mut consider = |key: &[u8]| {
                        if let Some(node) = main.get(main.hash(key), key) {
                            sampled_any = true;
                            let score = self.score(policy, &node.value);
                            insert_candidate(
                                pool,
                                Candidate {
                                    score,
                                    db,
                                    key: key.into(),
                                },
                            );
                        }
                    };
                    if volatile {
                        if shard.expires.is_empty() {
                            continue;
                        }
                        shard.expires.sample(rng, samples, |n| consider(&n.key));
                    } else {
                        if main.is_empty() {
                            continue;
                        }
                        main.sample(rng, samples, |n| consider(&n.key));
                    }
                    break;
                }
            }
            if !sampled_any && pool.is_empty() {
                return false;
            }
            // Best victim first; entries whose key is gone are skipped.
            while let Some(c) = pool.pop() {
                if self.evict_key(c.db, &c.key) {
                    return true;
                }
            }
            if !sampled_any {
                return false;
            }
        }
    }

    fn evict_random(&self, rng: &mut fastrand::Rng, volatile: bool) -> bool {
        for db in 0..self.databases() {
            let start = rng.usize(..SHARDS);
            for off in 0..SHARDS {
                let victim = {
                    let shard = self.shards(db)[(start + off) % SHARDS].lock();
                    let picked = if volatile {
                        shard.expires.random(rng).map(|n| Box::<[u8]>::from(&*n.key))
                    } else {
                        shard.main.random(rng).map(|n| Box::<[u8]>::from(&*n.key))
                    };
                    match picked {
                        Some(key) => key,
                        None => continue,
                    }
                };
                if self.evict_key(db, &victim) {
                    return true;
                }
            }
        }
        false
    }

    fn evict_key(&self, db: usize, key: &[u8]) -> bool {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        let mut shard = self.shards(db)[(hash >> (64 - super::SHARD_BITS)) as usize].lock();
        match shard.main.remove(hash, key) {
            Some(node) => {
                if node.value.expire_at() != 0 {
                    shard.expires.remove(hash, key);
                }
                drop(shard);
                drop(node);
                self.stats.evicted.incr();
                self.signal_modified(db, key);
                self.notifier.notify(super::notify::class::EVICTED, "evicted", db, key);
                true
            }
            None => false,
        }
    }
}

/// Keeps the pool sorted by score ascending (best victim last), at most POOL_SIZE entries.
fn insert_candidate(pool: &mut Vec<Candidate>, c: Candidate) {
    if let Some(existing) = pool.iter().position(|p| p.db == c.db && p.key == c.key) {
        pool.remove(existing);
    }
    if pool.len() == POOL_SIZE && pool[0].score >= c.score {
        return;
    }
    let at = pool.partition_point(|p| p.score < c.score);
    pool.insert(at, c);
    if pool.len() > POOL_SIZE {
        pool.remove(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut c = LFU_INIT;
        for _ in 0..100 {
            c = lfu_incr(c, 10, &mut rng);
        }
        let after_100 = c;
        for _ in 0..100_000 {
            c = lfu_incr(c, 10, &mut rng);
        }
        assert!(after_100 > LFU_INIT && after_100 < 20, "{after_100}");
        assert!(c > after_100 && c < 255, "{c}");
        assert_eq!(lfu_decayed(10, 100, 103, 1), 7);
        assert_eq!(lfu_decayed(10, 100, 103, 0), 10);
        assert_eq!(lfu_decayed(2, 0, 50, 1), 0);
    }

    #[test]
    fn pool_keeps_the_best_victims() {
        let mut pool = Vec::new();
        for s in [5u64, 1, 9, 3, 7] {
            insert_candidate(
                &mut pool,
                Candidate {
                    score: s,
                    db: 0,
                    key: s.to_string().into_bytes().into(),
                },
            );
        }
        assert_eq!(pool.last().unwrap().score, 9);
        for s in 100..130u64 {
            insert_candidate(
                &mut pool,
                Candidate {
                    score: s,
                    db: 0,
                    key: s.to_string().into_bytes().into(),
                },
            );
        }
        assert_eq!(pool.len(), POOL_SIZE);
        assert_eq!(pool[0].score, 114);
    }
}
