//! The one cache-aside module every endpoint goes through: key building, TTL per endpoint, JSON
//! serialisation, invalidation by key and by pattern, and what the seed's version lacked:
//!
//! * **No stale data after a write returns.** Each (user, scope) has a generation key holding a
//!   random value; every cached value carries the generation it was computed under, and a reader
//!   fetches both in one MGET. A writer commits, then sets a new random generation. A reader that
//!   loaded the old row before the commit may still store its value afterwards, but that value carries
//!   the old generation, so no later reader accepts it. A missing generation (expired, evicted, cache
//!   restarted) is replaced by a fresh random one, so old values can never match it again.
//! * **Stampede.** Loads are single-flight per process, keyed by (key, generation): 100 concurrent
//!   misses on one key run one query. Hot keys are recomputed before they expire by XFetch
//!   (Vattani et al.): recompute early with probability rising as expiry nears, scaled by how long
//!   the value took to compute; the hit is still served and the refresh runs in the background.
//! * **Cache down or slow.** Every cache call has a short deadline (tens of ms). A failure opens a
//!   breaker for a moment: requests skip the cache and answer from the DB with X-Cache: BYPASS,
//!   then the next request tries again, and the redis ConnectionManager reconnects by itself.
//!   Invalidations that failed are kept and replayed before the cache is read again, so an outage
//!   cannot resurrect data written during it.
//!
//! Values are stored as `"{gen} {delta_ms} {expiry_ms}\n{json}"`: a hit is served as the stored JSON
//! bytes, never decoded and re-encoded.
//!
//! **Where the cache runs** ([`CacheMode`]): one Redis-protocol server (`direct`, the default),
//! twemproxy in front of several (`twemproxy`), or a Redis Cluster (`cluster`). Every key of a user
//! carries the user id as a hash tag (`review:today:{42}:...`, `gen:review:{42}`), so the two-key
//! MGET of a read and the generation bumps of a write stay in one cluster slot. Correctness never
//! depends on deleting old values (the generations do that), so the two modes without SCAN
//! (twemproxy refuses it; in a cluster it sees one node) skip the pattern deletes after a write:
//! the next miss overwrites a key in place and the rest expire by their TTL.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use md5::{Digest, Md5};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, IntoConnectionInfo, RedisFuture};
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::near::Near;

/// What a user's write can make stale. Each scope has its own generation per user, so completing a
/// review does not throw away that user's cached content lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Review,
    Stats,
    Content,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Review => "review",
            Scope::Stats => "stats",
            Scope::Content => "content",
        }
    }

    /// The key namespace whose values this scope covers (the pattern invalidation target).
    fn namespace(self) -> &'static str {
        match self {
            Scope::Review => "review:today",
            Scope::Stats => "analytics:stats",
            Scope::Content => "content:user",
        }
    }
}

/// A cacheable endpoint: its metric label, the scope a write invalidates, and its TTL (the seed's).
pub struct Endpoint {
    pub name: &'static str,
    pub scope: Scope,
    pub ttl: Duration,
}

pub const REVIEW_TODAY: Endpoint = Endpoint {
    name: "review_today",
    scope: Scope::Review,
    ttl: Duration::from_secs(3600),
};
pub const ANALYTICS_STATS: Endpoint = Endpoint {
    name: "analytics_stats",
    scope: Scope::Stats,
    ttl: Duration::from_secs(300),
};
pub const CONTENT_LIST: Endpoint = Endpoint {
    name: "content_list",
    scope: Scope::Content,
    ttl: Duration::from_secs(600),
};
pub const CONTENT_DETAIL: Endpoint = Endpoint {
    name: "content_detail",
    scope: Scope::Content,
    ttl: Duration::from_secs(600),
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Bypass => "BYPASS",
        }
    }
}

/// Longest key tail kept readable; longer ones are replaced by their MD5 as in the seed. Only the
/// part after the user id is hashed, so `{namespace}:{user}:*` still matches every key of the user.
const MAX_KEY_DATA: usize = 200;

/// Generation keys outlive every value (longest TTL 1 h); a lost one is recreated at random anyway.
const GEN_TTL_SECS: u64 = 86_400;

/// XFetch's beta: 1.0 is the paper's optimum for "recompute once, just before expiry".
const XFETCH_BETA: f64 = 1.0;

/// What the cache URL points at. Chosen by `--cache-mode`; a `redis+cluster://` URL means
/// `cluster` by itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// One server (respite or Redis), any database; invalidation also deletes the old values by
    /// SCAN MATCH + UNLINK.
    #[default]
    Direct,
    /// twemproxy (nutcracker): database 0 only, no SCAN, no CLIENT SETINFO; invalidation by the
    /// generation keys alone.
    Twemproxy,
    /// Redis Cluster through redis-rs's cluster-async client; `url` is one or more node URLs
    /// separated by commas. Database 0 only; invalidation by the generation keys alone.
    Cluster,
}

impl std::str::FromStr for CacheMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "direct" => Ok(CacheMode::Direct),
            "twemproxy" | "nutcracker" => Ok(CacheMode::Twemproxy),
            "cluster" => Ok(CacheMode::Cluster),
            _ => Err(format!("unknown cache mode {s:?} (direct, twemproxy or cluster)")),
        }
    }
}

impl CacheMode {
    /// The mode in force for `url`: a `redis+cluster://` URL is a cluster whatever was asked.
    pub fn for_url(self, url: &str) -> CacheMode {
        if url.trim_start().starts_with("redis+cluster://") {
            CacheMode::Cluster
        } else {
            self
        }
    }

    /// Whether the server answers SCAN over the whole keyspace (pattern deletes possible).
    fn scans(self) -> bool {
        self == CacheMode::Direct
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CacheMode::Direct => "direct",
            CacheMode::Twemproxy => "twemproxy",
            CacheMode::Cluster => "cluster",
        }
    }
}

/// The node URLs of a cluster `url`: comma-separated, `redis+cluster://` read as `redis://`, a bare
/// `host:port` taken as `redis://host:port`.
pub fn cluster_nodes(url: &str) -> Vec<String> {
    url.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            if let Some(rest) = n.strip_prefix("redis+cluster://") {
                format!("redis://{rest}")
            } else if n.contains("://") {
                n.to_string()
            } else {
                format!("redis://{n}")
            }
        })
        .collect()
}

/// A connection to the cache: one server (or twemproxy) through a ConnectionManager, or a cluster.
/// Both reconnect by themselves.
// As large as the ConnectionManager it wraps, which this module always cloned per call; a Box
// would add an allocation to every clone.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum CacheConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for CacheConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            CacheConn::Single(c) => c.req_packed_command(cmd),
            CacheConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, cmd: &'a redis::Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            CacheConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            CacheConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            CacheConn::Single(c) => c.get_db(),
            CacheConn::Cluster(c) => c.get_db(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// None: caching disabled (every request answers BYPASS), as `--no-cache`.
    pub url: Option<String>,
    /// What `url` points at (see [`CacheMode::for_url`]).
    pub mode: CacheMode,
    pub prefix: String,
    /// Deadline of one cache call.
    pub op_timeout: Duration,
    /// How long the cache is skipped after a failure before it is tried again.
    pub retry_after: Duration,
    /// Extra time between a miss's DB load and its store; zero in production. Tests and demos widen
    /// the invalidation race and the stampede window with it.
    pub load_delay: Duration,
    /// Keep hot values in this process too, coherent through the server's invalidations (see
    /// [`crate::near`]). `direct` mode only: twemproxy has no CLIENT TRACKING, and a cluster would
    /// need a tracking connection per node.
    pub near: bool,
}

impl CacheConfig {
    /// Refuses what the mode cannot work with before anything connects: a database other than 0
    /// behind twemproxy or in a cluster (neither has SELECT), an unparsable URL.
    pub fn check(&self) -> Result<(), String> {
        let Some(url) = &self.url else { return Ok(()) };
        let mode = self.mode.for_url(url);
        let nodes = match mode {
            CacheMode::Cluster => cluster_nodes(url),
            _ => vec![url.clone()],
        };
        if nodes.is_empty() {
            return Err(format!("cache URL {url:?} names no server"));
        }
        for node in nodes {
            let info = node
                .as_str()
                .into_connection_info()
                .map_err(|e| format!("cache URL {node:?}: {e}"))?;
            if mode != CacheMode::Direct && info.redis.db != 0 {
                return Err(format!(
                    "cache mode {} has only database 0, but {node:?} asks for database {} (end the URL with /0)",
                    mode.as_str(),
                    info.redis.db
                ));
            }
        }
        Ok(())
    }
}

pub struct Cache {
    cfg: CacheConfig,
    conn: Arc<OnceCell<CacheConn>>,
    /// The cache is skipped until this instant (breaker open).
    down_until: Mutex<Option<Instant>>,
    /// The last cache call failed (cleared by the next one that succeeds): `health` keeps saying
    /// "down" after the breaker's pause until the cache has actually answered again.
    last_failed: AtomicBool,
    /// Generation bumps that failed: replayed before the cache is trusted again.
    pending: Mutex<HashSet<(i64, Scope)>>,
    /// Per-process write counters per (user, scope): the generation of single-flight loads while
    /// the cache is down, so a read that starts after a write never joins a load from before it.
    local_gen: Mutex<HashMap<(i64, Scope), u64>>,
    /// Loads in flight, by cache key + generation.
    inflight: Mutex<HashMap<String, Arc<OnceCell<Bytes>>>>,
    /// Values held in this process, kept coherent by the server's invalidations.
    pub near: Arc<Near>,
    metrics: Arc<Metrics>,
}

struct Envelope<'a> {
    gen: &'a str,
    delta_ms: u64,
    expiry_ms: u64,
    /// Where the JSON starts in the stored value.
    json_at: usize,
}

fn parse_envelope(raw: &[u8]) -> Option<Envelope<'_>> {
    let nl = raw.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&raw[..nl]).ok()?;
    let mut it = header.split(' ');
    let env = Envelope {
        gen: it.next()?,
        delta_ms: it.next()?.parse().ok()?,
        expiry_ms: it.next()?.parse().ok()?,
        json_at: nl + 1,
    };
    Some(env)
}

/// The stored form of a value: its generation, how long it took to compute (ms) and when it
/// expires (unix ms), then the JSON.
pub fn envelope(gen: &str, delta_ms: u64, expiry_ms: u64, json: &[u8]) -> Vec<u8> {
    let mut value = format!("{gen} {delta_ms} {expiry_ms}\n").into_bytes();
    value.extend_from_slice(json);
    value
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn new_gen() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// XFetch: recompute early when `now - delta * beta * ln(rand) >= expiry`. ln(rand) is negative, so
/// the slower the value was to compute and the nearer its expiry, the likelier an early refresh.
fn xfetch_due(now_ms: u64, delta_ms: u64, expiry_ms: u64, rand01: f64) -> bool {
    let gap = delta_ms.max(1) as f64 * XFETCH_BETA * -(rand01.max(f64::MIN_POSITIVE)).ln();
    now_ms as f64 + gap >= expiry_ms as f64
}

impl Cache {
    /// Creates the cache and connects in the background: the API starts (answering BYPASS) even
    /// when the cache server is not up yet.
    pub fn new(cfg: CacheConfig, metrics: Arc<Metrics>) -> Arc<Cache> {
        let cache = Arc::new(Cache {
            cfg,
            conn: Arc::new(OnceCell::new()),
            down_until: Mutex::new(None),
            last_failed: AtomicBool::new(false),
            pending: Mutex::new(HashSet::new()),
            local_gen: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            near: Near::new(),
            metrics,
        });
        if let Some(url) = cache.cfg.url.clone() {
            let (conn, metrics, timeout) = (cache.conn.clone(), cache.metrics.clone(), cache.cfg.op_timeout);
            let mode = cache.cfg.mode.for_url(&url);
            if cache.cfg.near && mode == CacheMode::Direct {
                tokio::spawn(cache.near.clone().keep_connected(url.clone(), timeout));
            }
            tokio::spawn(async move {
                loop {
                    match connect(mode, &url, timeout).await {
                        Ok(c) => {
                            let _ = conn.set(c);
                            return;
                        }
                        Err(e) => {
                            metrics.cache_errors.with_label_values(&["connect"]).inc();
                            tracing::warn!("cache {url} unavailable ({e}), retrying");
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    }
                }
            });
        }
        cache
    }

    pub fn enabled(&self) -> bool {
        self.cfg.url.is_some()
    }

    /// The mode in force (a `redis+cluster://` URL makes it `cluster`).
    pub fn mode(&self) -> CacheMode {
        self.cfg.url.as_deref().map_or(self.cfg.mode, |u| self.cfg.mode.for_url(u))
    }

    /// Waits up to `within` for the first connection (startup, tests).
    pub async fn wait_connected(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.conn.get().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.conn.get().is_some()
    }

    /// `{namespace}:{<user>}:{parts joined by ':'}`, with the parts hashed when longer than 200
    /// bytes. The user id is in braces, a hash tag: a user's keys and generation keys share one
    /// Redis Cluster slot.
    pub fn key(namespace: &str, user: i64, parts: &[&str]) -> String {
        let data = parts.join(":");
        if data.len() > MAX_KEY_DATA {
            format!("{namespace}:{{{user}}}:h:{:x}", Md5::digest(data.as_bytes()))
        } else {
            format!("{namespace}:{{{user}}}:{data}")
        }
    }

    /// The key as stored in the cache (with the prefix).
    pub fn full(&self, key: &str) -> String {
        format!("{}{key}", self.cfg.prefix)
    }

    /// The generation key of (user, scope), prefixed, with the user's hash tag.
    pub fn gen_key(&self, user: i64, scope: Scope) -> String {
        format!("{}gen:{}:{{{user}}}", self.cfg.prefix, scope.name())
    }

    /// A connection when the cache may be used now: configured, connected, breaker closed, and no
    /// failed invalidation left to replay.
    async fn usable(&self) -> Option<CacheConn> {
        let conn = self.conn.get()?.clone();
        if let Some(until) = *self.down_until.lock().unwrap() {
            if Instant::now() < until {
                return None;
            }
        }
        let has_pending = !self.pending.lock().unwrap().is_empty();
        if has_pending && !self.replay_pending(conn.clone()).await {
            return None;
        }
        Some(conn)
    }

    fn failed(&self, op: &str, err: &str) {
        self.metrics.cache_errors.with_label_values(&[op]).inc();
        self.last_failed.store(true, Ordering::Relaxed);
        let mut down = self.down_until.lock().unwrap();
        if down.is_none_or(|t| Instant::now() >= t) {
            tracing::warn!("cache {op} failed ({err}); bypassing the cache for {:?}", self.cfg.retry_after);
        }
        *down = Some(Instant::now() + self.cfg.retry_after);
    }

    /// Runs one cache call under the deadline; errors and timeouts open the breaker.
    async fn call<T>(&self, op: &str, fut: impl Future<Output = redis::RedisResult<T>>) -> Option<T> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.cfg.op_timeout, fut).await;
        self.metrics
            .cache_call
            .with_label_values(&[op])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(Ok(v)) => {
                self.last_failed.store(false, Ordering::Relaxed);
                Some(v)
            }
            Ok(Err(e)) => {
                self.failed(op, &e.to_string());
                None
            }
            Err(_) => {
                self.failed(op, "timeout");
                None
            }
        }
    }

    /// Cache-aside read: the cached JSON for `key` if its generation is current, else `load()` once
    /// per process, stored with the endpoint's TTL. Never fails because of the cache.
    pub async fn fetch<T, F, Fut>(
        self: &Arc<Self>,
        ep: &'static Endpoint,
        user: i64,
        key: &str,
        load: F,
    ) -> Result<(Bytes, CacheStatus), ApiError>
    where
        T: Serialize,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ApiError>> + Send,
    {
        let result = self.fetch_inner(ep, user, key, load).await;
        if let Ok((_, status)) = &result {
            let label = match status {
                CacheStatus::Hit => "hit",
                CacheStatus::Miss => "miss",
                CacheStatus::Bypass => "bypass",
            };
            self.metrics.cache_requests.with_label_values(&[ep.name, label]).inc();
        }
        result
    }

    /// [`fetch`](Self::fetch) for a value that others are cut from (a user's full due list, of
    /// which each category's list is a filter): the same read, single-flight load and store,
    /// counted under the request being served, not as one of its own.
    pub async fn fetch_base<T, F, Fut>(self: &Arc<Self>, ep: &'static Endpoint, user: i64, key: &str, load: F) -> Result<Bytes, ApiError>
    where
        T: Serialize,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ApiError>> + Send,
    {
        self.fetch_inner(ep, user, key, load).await.map(|(json, _)| json)
    }

    async fn fetch_inner<T, F, Fut>(
        self: &Arc<Self>,
        ep: &'static Endpoint,
        user: i64,
        key: &str,
        load: F,
    ) -> Result<(Bytes, CacheStatus), ApiError>
    where
        T: Serialize,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ApiError>> + Send,
    {
        if !self.enabled() {
            // --no-cache: the plain database path, the loadtest's baseline.
            return Ok((to_json(&load().await?)?, CacheStatus::Bypass));
        }
        let full = self.full(key);
        let Some(mut conn) = self.usable().await else {
            return self.bypass(ep, user, &full, load).await;
        };
        let gen_key = self.gen_key(user, ep.scope);
        if let Some(raw) = self.near.get(&full, &gen_key) {
            if let Some(env) = parse_envelope(&raw).filter(|e| now_ms() < e.expiry_ms) {
                if xfetch_due(now_ms(), env.delta_ms, env.expiry_ms, fastrand::f64()) {
                    self.refresh_in_background(ep, full.clone(), env.gen.to_string(), env.expiry_ms, load);
                }
                self.metrics.cache_near_hits.with_label_values(&[ep.name]).inc();
                let json_at = env.json_at;
                return Ok((raw.slice(json_at..), CacheStatus::Hit));
            }
        }
        // Read on the tracking connection when there is one, so a hit can be kept here too.
        let near = self.near.begin_read(&full, &gen_key);
        let got: Option<(Option<String>, Option<Bytes>)> = match &near {
            Some((tracked, _)) => self.call("get", tracked.clone().mget(&[&gen_key, &full])).await,
            None => self.call("get", conn.mget(&[&gen_key, &full])).await,
        };
        let Some((gen, raw)) = got else {
            return self.bypass(ep, user, &full, load).await;
        };
        let gen = match gen {
            Some(g) => g,
            None => match self.init_gen(&mut conn, &gen_key).await {
                Some(g) => g,
                None => return self.bypass(ep, user, &full, load).await,
            },
        };
        if let Some(raw) = raw {
            if let Some(env) = parse_envelope(&raw).filter(|e| e.gen == gen) {
                if xfetch_due(now_ms(), env.delta_ms, env.expiry_ms, fastrand::f64()) {
                    self.refresh_in_background(ep, full.clone(), gen.clone(), env.expiry_ms, load);
                }
                // The stored JSON is the body: sliced out of the reply, not copied or re-encoded.
                let json_at = env.json_at;
                if let Some((_, ticket)) = near {
                    self.near.fill(ticket, &full, &gen_key, raw.clone());
                }
                return Ok((raw.slice(json_at..), CacheStatus::Hit));
            }
        }
        self.load_once(ep, &full, &gen, None, load).await.map(|b| (b, CacheStatus::Miss))
    }

    /// The cache is unreachable: answer from the DB, still one load per key at a time (an outage
    /// must not turn into a stampede on the database), nothing stored.
    async fn bypass<T, F, Fut>(
        self: &Arc<Self>,
        ep: &'static Endpoint,
        user: i64,
        full: &str,
        load: F,
    ) -> Result<(Bytes, CacheStatus), ApiError>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let local = *self.local_gen.lock().unwrap().get(&(user, ep.scope)).unwrap_or(&0);
        let flight_key = format!("bypass\n{full}\n{local}");
        let cell = self.inflight.lock().unwrap().entry(flight_key.clone()).or_default().clone();
        let result = cell.get_or_try_init(|| async { to_json(&load().await?) }).await.cloned();
        self.forget_flight(&flight_key, &cell);
        result.map(|b| (b, CacheStatus::Bypass))
    }

    fn forget_flight(&self, flight_key: &str, cell: &Arc<OnceCell<Bytes>>) {
        let mut inflight = self.inflight.lock().unwrap();
        if inflight.get(flight_key).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            inflight.remove(flight_key);
        }
    }

    /// Sets a fresh random generation unless another request just did; returns the one in force.
    async fn init_gen(&self, conn: &mut CacheConn, gen_key: &str) -> Option<String> {
        let fresh = new_gen();
        let set: Option<Option<String>> = self
            .call(
                "gen",
                redis::cmd("SET")
                    .arg(gen_key)
                    .arg(&fresh)
                    .arg("NX")
                    .arg("EX")
                    .arg(GEN_TTL_SECS)
                    .query_async(conn),
            )
            .await;
        match set? {
            Some(_) => Some(fresh),
            None => self.call("gen", conn.get::<_, Option<String>>(gen_key)).await?,
        }
    }

    /// Single-flight load: the first caller for (key, gen) queries and stores; the others wait for
    /// its bytes. A different generation is a different flight, so a request that starts after a
    /// write never joins a load that began before it.
    /// `replacing` (XFetch): the expiry of the value being refreshed. The second look then accepts
    /// only a newer value: another refresh may have stored one and left between our MGET and the
    /// in-flight check, and loading again would cost a second query.
    async fn load_once<T, F, Fut>(
        self: &Arc<Self>,
        ep: &'static Endpoint,
        full: &str,
        gen: &str,
        replacing: Option<u64>,
        load: F,
    ) -> Result<Bytes, ApiError>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let flight_key = format!("{full}\n{gen}");
        let cell = self.inflight.lock().unwrap().entry(flight_key.clone()).or_default().clone();
        let mut led = false;
        let result = cell
            .get_or_try_init(|| async {
                led = true;
                // A flight for this key may have finished between our MGET and now (its entry is
                // gone once stored): look again before querying, or the burst costs two queries.
                if let Some(json) = self.peek(full, gen, replacing).await {
                    return Ok(json);
                }
                let started = Instant::now();
                let json = to_json(&load().await?)?;
                if !self.cfg.load_delay.is_zero() {
                    tokio::time::sleep(self.cfg.load_delay).await;
                }
                self.store(ep, full, gen, started.elapsed(), &json).await;
                Ok::<_, ApiError>(json)
            })
            .await
            .cloned();
        if !led && result.is_ok() {
            self.metrics.cache_coalesced.with_label_values(&[ep.name]).inc();
        }
        // The value is stored before the flight is forgotten: later callers find it in the cache.
        self.forget_flight(&flight_key, &cell);
        result
    }

    /// The stored JSON for `full` if it carries generation `gen` (and, when `newer_than` is given,
    /// expires after that instant: a value stored after the one being refreshed).
    async fn peek(&self, full: &str, gen: &str, newer_than: Option<u64>) -> Option<Bytes> {
        let mut conn = self.conn.get()?.clone();
        let raw: Option<Bytes> = self.call("get", conn.get(full)).await?;
        let raw = raw?;
        let env = parse_envelope(&raw).filter(|e| e.gen == gen && newer_than.is_none_or(|t| e.expiry_ms > t))?;
        let json_at = env.json_at;
        Some(raw.slice(json_at..))
    }

    fn refresh_in_background<T, F, Fut>(self: &Arc<Self>, ep: &'static Endpoint, full: String, gen: String, expiry_ms: u64, load: F)
    where
        T: Serialize,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ApiError>> + Send,
    {
        // One early refresh per key at a time; a flight already running will store a fresh value.
        if self.inflight.lock().unwrap().contains_key(&format!("{full}\n{gen}")) {
            return;
        }
        self.metrics.cache_early_refresh.with_label_values(&[ep.name]).inc();
        let cache = self.clone();
        tokio::spawn(async move {
            if let Err(e) = cache.load_once(ep, &full, &gen, Some(expiry_ms), load).await {
                tracing::warn!("early refresh of {full} failed: {e:?}");
            }
        });
    }

    async fn store(&self, ep: &Endpoint, full: &str, gen: &str, took: Duration, json: &[u8]) {
        let Some(mut conn) = self.conn.get().cloned() else { return };
        let ttl_ms = ep.ttl.as_millis() as u64;
        let value = envelope(gen, took.as_millis().max(1) as u64, now_ms() + ttl_ms, json);
        let _: Option<()> = self.call("set", conn.pset_ex(full, value, ttl_ms)).await;
    }

    /// After a write: new generations for `scopes` of `user`, so nothing cached before the write is
    /// served again (one round trip, before the write answers); then, in the background, the
    /// now-unreachable values are deleted (UNLINK, by SCAN MATCH pattern for the namespaces with
    /// many keys) to give their memory back. SCAN walks the whole keyspace, which would make every
    /// write as slow as the keyspace is large. Without SCAN (twemproxy, cluster) only the exact
    /// stats key is deleted; the other old values are overwritten by the next miss or expire.
    /// Call after the DB commit.
    pub async fn invalidate_user(self: &Arc<Self>, user: i64, scopes: &[Scope]) {
        {
            let mut local = self.local_gen.lock().unwrap();
            for scope in scopes {
                *local.entry((user, *scope)).or_insert(0) += 1;
            }
        }
        if !self.enabled() {
            return;
        }
        let bumped = match self.usable().await {
            Some(c) if self.bump(c.clone(), user, scopes).await => Some(c),
            _ => None,
        };
        // After the server's generations changed (a read noting epochs before this refuses to
        // fill), before the write returns: this process holds no copy from before the write.
        let gen_keys: Vec<String> = scopes.iter().map(|s| self.gen_key(user, *s)).collect();
        self.near.invalidate_local(&gen_keys);
        let Some(conn) = bumped else {
            // Replayed before the next read that uses the cache (see `usable`).
            self.pending.lock().unwrap().extend(scopes.iter().map(|s| (user, *s)));
            return;
        };
        let (cache, scopes) = (self.clone(), scopes.to_vec());
        tokio::spawn(async move {
            for scope in scopes {
                match scope {
                    Scope::Stats => {
                        let key = Cache::key(scope.namespace(), user, &[&crate::app::today().to_string()]);
                        cache.invalidate_keys(conn.clone(), &[key]).await
                    }
                    _ if cache.mode().scans() => {
                        cache
                            .invalidate_pattern(conn.clone(), &format!("{}:{{{user}}}:*", scope.namespace()))
                            .await
                    }
                    _ => 0,
                };
            }
        });
    }

    /// One pipeline of SETs, all keys of one user (one slot): a cluster routes it to one node.
    async fn bump(&self, mut conn: CacheConn, user: i64, scopes: &[Scope]) -> bool {
        let mut pipe = redis::pipe();
        for scope in scopes {
            pipe.cmd("SET")
                .arg(self.gen_key(user, *scope))
                .arg(new_gen())
                .arg("EX")
                .arg(GEN_TTL_SECS)
                .ignore();
        }
        self.call("invalidate", pipe.query_async::<()>(&mut conn)).await.is_some()
    }

    async fn replay_pending(&self, conn: CacheConn) -> bool {
        let todo: Vec<(i64, Scope)> = self.pending.lock().unwrap().iter().copied().collect();
        for (user, scope) in todo {
            if !self.bump(conn.clone(), user, &[scope]).await {
                return false;
            }
            self.pending.lock().unwrap().remove(&(user, scope));
        }
        true
    }

    /// Deletes exact keys (unprefixed, as built by [`Cache::key`]). In a cluster one UNLINK per key:
    /// keys of different users are in different slots.
    pub async fn invalidate_keys(&self, mut conn: CacheConn, keys: &[String]) -> usize {
        let full: Vec<String> = keys.iter().map(|k| self.full(k)).collect();
        if self.mode() == CacheMode::Cluster {
            let mut deleted = 0;
            for key in &full {
                deleted += self.call("invalidate", conn.unlink::<_, usize>(key)).await.unwrap_or(0);
            }
            return deleted;
        }
        self.call("invalidate", conn.unlink::<_, usize>(&full)).await.unwrap_or(0)
    }

    /// Deletes every key matching a glob (unprefixed) with SCAN MATCH + UNLINK: never KEYS, which
    /// would block the server on a large keyspace. `direct` mode only (twemproxy refuses SCAN; in
    /// a cluster it would see one node).
    pub async fn invalidate_pattern(&self, mut conn: CacheConn, pattern: &str) -> usize {
        let pattern = self.full(pattern);
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        // Bounded: a keyspace under constant insertion could otherwise keep the loop going.
        for _ in 0..10_000 {
            let page: Option<(u64, Vec<String>)> = self
                .call(
                    "invalidate",
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn),
                )
                .await;
            let Some((next, keys)) = page else { break };
            if !keys.is_empty() {
                deleted += self.call("invalidate", conn.unlink::<_, usize>(&keys)).await.unwrap_or(0);
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        deleted
    }

    /// "ok", "down" (not connected, breaker open, or the last call failed and none has succeeded
    /// since) or "disabled". Time alone does not bring it back: the breaker's pause ending says
    /// nothing about the cache until a request tries it.
    pub fn health(&self) -> &'static str {
        if !self.enabled() {
            "disabled"
        } else if self.conn.get().is_none()
            || self.last_failed.load(Ordering::Relaxed)
            || self.down_until.lock().unwrap().is_some_and(|t| Instant::now() < t)
        {
            "down"
        } else {
            "ok"
        }
    }

    /// A connection for tools (loadtest's INFO, flushing the namespace), if connected.
    pub fn connection(&self) -> Option<CacheConn> {
        self.conn.get().cloned()
    }
}

async fn connect(mode: CacheMode, url: &str, timeout: Duration) -> redis::RedisResult<CacheConn> {
    if mode == CacheMode::Cluster {
        // The client learns the slot map from the first node that answers and follows MOVED;
        // its own retries stay few and short for the same reason as below.
        let client = redis::cluster::ClusterClient::builder(cluster_nodes(url))
            .connection_timeout(timeout.max(Duration::from_millis(100)))
            .response_timeout(timeout)
            .retries(2)
            .min_retry_wait(5)
            .max_retry_wait(50)
            .build()?;
        return Ok(CacheConn::Cluster(client.get_async_connection().await?));
    }
    let client = redis::Client::open(url)?;
    // Short timeouts and few, quick reconnect retries: an outage must cost tens of milliseconds per
    // request, not the seed's 5 s socket timeout. Our own deadline in `call` bounds it anyway.
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(timeout.max(Duration::from_millis(100)))
        .set_response_timeout(timeout)
        .set_number_of_retries(1)
        .set_factor(10)
        .set_max_delay(100);
    Ok(CacheConn::Single(ConnectionManager::new_with_config(client, config).await?))
}

pub fn to_json<T: Serialize>(value: &T) -> Result<Bytes, ApiError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_readable_until_200_bytes_then_hashed_after_the_user() {
        assert_eq!(Cache::key("review:today", 7, &["math"]), "review:today:{7}:math");
        assert_eq!(Cache::key("analytics:stats", 7, &[]), "analytics:stats:{7}:");
        let long = "x".repeat(250);
        let k = Cache::key("content:user", 7, &[&long]);
        assert!(k.starts_with("content:user:{7}:h:"), "{k}");
        assert_eq!(k.len(), "content:user:{7}:h:".len() + 32);
        assert_ne!(k, Cache::key("content:user", 7, &[&"y".repeat(250)]));
    }

    #[test]
    fn cache_modes_and_cluster_urls() {
        assert_eq!("twemproxy".parse::<CacheMode>(), Ok(CacheMode::Twemproxy));
        assert!("scan".parse::<CacheMode>().is_err());
        assert_eq!(CacheMode::Direct.for_url("redis+cluster://a:1"), CacheMode::Cluster);
        assert_eq!(CacheMode::Twemproxy.for_url("redis://a:1/0"), CacheMode::Twemproxy);
        assert_eq!(
            cluster_nodes("redis+cluster://127.0.0.1:7000,127.0.0.1:7001, redis://h:7002/"),
            ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001", "redis://h:7002/"]
        );
        let cfg = |mode, url: &str| CacheConfig {
            url: Some(url.into()),
            mode,
            prefix: "api:".into(),
            op_timeout: Duration::from_millis(40),
            retry_after: Duration::from_millis(250),
            load_delay: Duration::ZERO,
            near: true,
        };
        assert!(cfg(CacheMode::Direct, "redis://127.0.0.1:6379/1").check().is_ok());
        assert!(cfg(CacheMode::Twemproxy, "redis://127.0.0.1:22121/0").check().is_ok());
        let err = cfg(CacheMode::Twemproxy, "redis://127.0.0.1:22121/1").check().unwrap_err();
        assert!(err.contains("only database 0"), "{err}");
        assert!(cfg(CacheMode::Direct, "redis+cluster://127.0.0.1:7000/1").check().is_err());
    }

    #[test]
    fn envelope_round_trip() {
        let raw = b"00ff 12 1700000000000\n{\"a\":1}";
        let env = parse_envelope(raw).unwrap();
        assert_eq!(
            (env.gen, env.delta_ms, env.expiry_ms, &raw[env.json_at..]),
            ("00ff", 12, 1_700_000_000_000, &b"{\"a\":1}"[..])
        );
        assert!(parse_envelope(b"garbage").is_none());
    }

    #[test]
    fn xfetch_refreshes_only_near_expiry() {
        // A value that took 50 ms, one hour from expiry: never (needs ln(r) < -72000).
        assert!(!xfetch_due(0, 50, 3_600_000, 0.5));
        // Past expiry: always.
        assert!(xfetch_due(1000, 50, 1000, 0.999));
        // 50 ms before expiry with delta 50 ms: refresh when -ln(r) >= 1, i.e. r <= 1/e.
        assert!(xfetch_due(950, 50, 1000, 0.30));
        assert!(!xfetch_due(950, 50, 1000, 0.40));
    }
}
