//! Prometheus metrics, one registry per running app (not the global default) so that several apps in
//! one process, as in the tests and the loadtest, each count only their own traffic.

use prometheus::core::Metric;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    pub registry: Registry,
    /// endpoint, result = hit | miss | bypass
    pub cache_requests: IntCounterVec,
    /// op = get | set | gen | invalidate | connect
    pub cache_errors: IntCounterVec,
    /// endpoint: hot keys recomputed early by XFetch
    pub cache_early_refresh: IntCounterVec,
    /// endpoint: requests that waited for another request's load instead of querying (single-flight)
    pub cache_coalesced: IntCounterVec,
    /// endpoint: hits served from the near cache (in process, no round trip)
    pub cache_near_hits: IntCounterVec,
    /// query name
    pub db_queries: IntCounterVec,
    /// endpoint
    pub latency: HistogramVec,
    /// op = get | set | gen | invalidate: one cache call's round trip as the API sees it
    pub cache_call: HistogramVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("metric registered once");
            c
        };
        let cache_requests = counter(
            "cache_requests_total",
            "Cacheable requests by cache outcome",
            &["endpoint", "result"],
        );
        let cache_errors = counter("cache_errors_total", "Cache operations that failed or timed out", &["op"]);
        let cache_early_refresh = counter(
            "cache_early_refresh_total",
            "Hot keys recomputed before expiry (XFetch)",
            &["endpoint"],
        );
        let cache_near_hits = counter(
            "cache_near_hits_total",
            "Hits served from the in-process near cache, kept coherent by CLIENT TRACKING",
            &["endpoint"],
        );
        let cache_coalesced = counter(
            "cache_coalesced_total",
            "Misses served by another request's load (single-flight)",
            &["endpoint"],
        );
        let db_queries = counter("db_queries_total", "SQL statements sent to the database", &["query"]);
        // Buckets from 100 us: cache hits on loopback live well under a millisecond.
        let buckets = vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ];
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "Handler latency by endpoint").buckets(buckets),
            &["endpoint"],
        )
        .expect("valid histogram");
        registry.register(Box::new(latency.clone())).expect("metric registered once");
        // Finer at the bottom: a loopback round trip is tens to hundreds of microseconds, and
        // the loadtest reads its median from these buckets.
        let buckets = vec![
            0.000025, 0.00005, 0.000075, 0.0001, 0.000125, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0025, 0.005,
            0.01, 0.025, 0.05,
        ];
        let cache_call = HistogramVec::new(
            HistogramOpts::new("cache_call_duration_seconds", "One cache call as the API sees it, by operation").buckets(buckets),
            &["op"],
        )
        .expect("valid histogram");
        registry.register(Box::new(cache_call.clone())).expect("metric registered once");
        Metrics {
            registry,
            cache_requests,
            cache_errors,
            cache_early_refresh,
            cache_coalesced,
            cache_near_hits,
            db_queries,
            latency,
            cache_call,
        }
    }

    /// The Prometheus text exposition of everything registered.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }

    /// The cumulative bucket counts of `cache_call_duration_seconds{op}`: (upper bound in seconds,
    /// calls at most that long), ending with +Inf.
    pub fn cache_call_buckets(&self, op: &str) -> Vec<(f64, u64)> {
        let m = self.cache_call.with_label_values(&[op]).metric();
        let h = m.get_histogram();
        let mut v: Vec<(f64, u64)> = h.get_bucket().iter().map(|b| (b.upper_bound(), b.cumulative_count())).collect();
        v.push((f64::INFINITY, h.get_sample_count()));
        v
    }

    /// Hits served from the near cache, all endpoints.
    pub fn near_hits_total(&self) -> u64 {
        sum_counter(&self.registry, "cache_near_hits_total")
    }

    /// Sum of db_queries_total over all queries (the loadtest's DB load figure).
    pub fn db_queries_total(&self) -> u64 {
        sum_counter(&self.registry, "db_queries_total")
    }

    /// db_queries_total by its `query` label (the loadtest's breakdown of where queries go).
    pub fn db_queries_by_name(&self) -> std::collections::BTreeMap<String, u64> {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == "db_queries_total")
            .flat_map(|f| f.get_metric().iter())
            .map(|m| {
                let name = m
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "query")
                    .map(|l| l.value().to_string())
                    .unwrap_or_default();
                (name, m.get_counter().get_value() as u64)
            })
            .collect()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn sum_counter(registry: &Registry, name: &str) -> u64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter().map(|m| m.get_counter().get_value() as u64))
        .sum()
}
