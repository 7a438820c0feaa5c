//! Active expiry: keys nobody reads again must still go. Like Redis's activeExpireCycle: sample
//! keys that carry a TTL, delete the stale ones, repeat on a shard while more than 10% of a sample
//! was stale, and stop when the cycle's time budget is spent.

use std::time::{Duration, Instant};

use super::Keyspace;

const SAMPLE: usize = 20;
const ACCEPTABLE_STALE_PERCENT: usize = 10;

/// Where the previous cycle stopped, so each cycle continues round-robin over db/shard.
#[derive(Default)]
pub struct ExpireCursor {
    db: usize,
    shard: usize,
}

impl Keyspace {
    /// Runs one cycle for at most `budget`. Returns the number of keys expired.
    pub fn active_expire_cycle(&self, cursor: &mut ExpireCursor, budget: Duration) -> usize {
        let start = Instant::now();
        let mut rng = fastrand::Rng::new();
        let mut expired_total = 0;
        let total_shards = self.databases() * super::SHARDS;
        for _ in 0..total_shards {
            if cursor.db >= self.databases() {
                cursor.db = 0;
            }
            let (db, shard_idx) = (cursor.db, cursor.shard);
            cursor.shard += 1;
            if cursor.shard == super::SHARDS {
                cursor.shard = 0;
                cursor.db += 1;
            }
            let _world = self.world.read();
            loop {
                let now = self.clock.now_ms();
                let mut shard = self.shards(db)[shard_idx].lock();
                if shard.expires.is_empty() {
                    break;
                }
                let mut stale: Vec<Box<[u8]>> = Vec::new();
                let mut sampled = 0;
                let main = &shard.main;
                shard.expires.sample(&mut rng, SAMPLE, |node| {
                    sampled += 1;
                    let hash = main.hash(&node.key);
                    if main.get(hash, &node.key).is_none_or(|n| n.value.is_expired(now)) {
                        stale.push((*node.key).into());
                    }
                });
                for key in &stale {
                    let hash = shard.main.hash(key);
                    shard.main.remove(hash, key);
                    shard.expires.remove(hash, key);
                    self.stats.expired.incr();
                    self.signal_modified(db, key);
                    self.notifier.notify(super::notify::class::EXPIRED, "expired", db, key);
                }
                drop(shard);
                expired_total += stale.len();
                if stale.len() * 100 <= sampled * ACCEPTABLE_STALE_PERCENT || start.elapsed() >= budget {
                    break;
                }
            }
            if start.elapsed() >= budget {
                break;
            }
        }
        expired_total
    }
}
