//! Counters behind INFO. Hot counters are striped per thread (see keyspace::memory::thread_slot)
//! so the two worker threads do not fight over one cache line; INFO sums the stripes.
//! CONFIG RESETSTAT records a baseline instead of zeroing, so no increment is lost to a race.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::keyspace::memory::{thread_slot, STRIPES};

#[repr(align(64))]
#[derive(Default)]
struct Stripe(AtomicU64);

#[derive(Default)]
pub struct Counter {
    stripes: [Stripe; STRIPES],
    baseline: AtomicU64,
}

impl Counter {
    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }
    #[inline]
    pub fn add(&self, n: u64) {
        self.stripes[thread_slot()].0.fetch_add(n, Relaxed);
    }
    fn total(&self) -> u64 {
        self.stripes.iter().map(|s| s.0.load(Relaxed)).sum()
    }
    pub fn get(&self) -> u64 {
        self.total().saturating_sub(self.baseline.load(Relaxed))
    }
    pub fn reset(&self) {
        self.baseline.store(self.total(), Relaxed);
    }
}

/// Per-command figures (INFO commandstats), one block per thread stripe to avoid false sharing.
pub struct CommandStats {
    blocks: Box<[Box<[CmdCounters]>]>,
    baseline: parking_lot::Mutex<Vec<[u64; 4]>>,
}

#[derive(Default)]
struct CmdCounters {
    calls: AtomicU64,
    usec: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
}

#[derive(Clone, Copy, Default)]
pub struct CmdFigures {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
}

impl CommandStats {
    pub fn new(commands: usize) -> Self {
        let blocks = (0..STRIPES)
            .map(|_| (0..commands).map(|_| CmdCounters::default()).collect())
            .collect();
        CommandStats {
            blocks,
            baseline: parking_lot::Mutex::new(vec![[0; 4]; commands]),
        }
    }

    #[inline]
    pub fn record(&self, cmd: usize, usec: u64, failed: bool) {
        let c = &self.blocks[thread_slot()][cmd];
        c.calls.fetch_add(1, Relaxed);
        c.usec.fetch_add(usec, Relaxed);
        if failed {
            c.failed.fetch_add(1, Relaxed);
        }
    }

    /// A command refused before it ran (arity, NOAUTH, OOM ...).
    pub fn reject(&self, cmd: usize) {
        self.blocks[thread_slot()][cmd].rejected.fetch_add(1, Relaxed);
    }

    fn totals(&self, cmd: usize) -> [u64; 4] {
        let mut t = [0u64; 4];
        for b in self.blocks.iter() {
            let c = &b[cmd];
            t[0] += c.calls.load(Relaxed);
            t[1] += c.usec.load(Relaxed);
            t[2] += c.rejected.load(Relaxed);
            t[3] += c.failed.load(Relaxed);
        }
        t
    }

    pub fn get(&self, cmd: usize) -> CmdFigures {
        let t = self.totals(cmd);
        let b = self.baseline.lock()[cmd];
        CmdFigures {
            calls: t[0] - b[0],
            usec: t[1] - b[1],
            rejected: t[2] - b[2],
            failed: t[3] - b[3],
        }
    }

    pub fn reset(&self) {
        let mut base = self.baseline.lock();
        for (i, b) in base.iter_mut().enumerate() {
            *b = self.totals(i);
        }
    }
}

/// Server-wide counters for INFO stats.
#[derive(Default)]
pub struct Stats {
    pub connections_received: Counter,
    pub commands_processed: Counter,
    pub rejected_connections: Counter,
    pub net_input_bytes: Counter,
    pub net_output_bytes: Counter,
    pub reads_processed: Counter,
    pub writes_processed: Counter,
    pub total_error_replies: Counter,
    pub auth_failures: Counter,
    /// errorstats: error code (first word of the error) -> count.
    pub errors: parking_lot::Mutex<std::collections::BTreeMap<String, u64>>,
    pub ops_sampler: parking_lot::Mutex<OpsSampler>,
}

impl Stats {
    pub fn count_error(&self, message: &[u8]) {
        self.total_error_replies.incr();
        let code = message.split(|&b| b == b' ').next().unwrap_or(b"ERR");
        let code = String::from_utf8_lossy(code).into_owned();
        *self.errors.lock().entry(code).or_insert(0) += 1;
    }

    pub fn reset(&self) {
        for c in [
            &self.connections_received,
            &self.commands_processed,
            &self.rejected_connections,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.reads_processed,
            &self.writes_processed,
            &self.total_error_replies,
            &self.auth_failures,
        ] {
            c.reset();
        }
        self.errors.lock().clear();
    }
}

/// instantaneous_ops_per_sec: samples the command counter every 100 ms over the last 16 samples,
/// as Redis's trackInstantaneousMetric does.
#[derive(Default)]
pub struct OpsSampler {
    last_ms: i64,
    last_count: u64,
    samples: [u64; 16],
    idx: usize,
}

impl OpsSampler {
    pub fn sample(&mut self, now_ms: i64, count: u64) {
        let dt = now_ms - self.last_ms;
        if self.last_ms != 0 && dt > 0 {
            let ops = count.saturating_sub(self.last_count) * 1000 / dt as u64;
            self.samples[self.idx] = ops;
            self.idx = (self.idx + 1) % self.samples.len();
        }
        self.last_ms = now_ms;
        self.last_count = count;
    }
    pub fn per_sec(&self) -> u64 {
        self.samples.iter().sum::<u64>() / self.samples.len() as u64
    }
}
