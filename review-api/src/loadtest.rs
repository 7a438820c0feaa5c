//! `review-api loadtest`: a mixed dashboard workload over loopback HTTP against the API started in
//! this process, once with the cache and once without (`--no-cache` mode of the same binary), on the
//! same seeded database. Bounded by a request count and a time limit per run. Prints p50/p95/p99
//! per endpoint, requests/s, hit rate (client-side X-Cache and the cache's INFO keyspace_hits /
//! keyspace_misses) and DB queries per minute (counted by the app), side by side; `--json` prints
//! the same figures as one JSON object.
//!
//! `--warmup N` sends N requests of the same workload first and reports them apart: every key's
//! first miss (the cold start) falls there. The table shows the measured requests, then the warm-up
//! and the whole run (warm-up included) on their own rows, so both readings are there.
//! Each run's writes are undone afterwards (schedules, history rows, content edits of the active
//! users), so the run without the cache starts from the same data as the run with it: completed
//! reviews leave the due lists, and otherwise the second run would query shorter lists.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};

use crate::Settings;

#[derive(clap::Args, Clone, Debug)]
pub struct Options {
    /// Tokens file written by `review-api seed`.
    #[arg(long, default_value = "tokens.txt")]
    pub tokens: PathBuf,
    /// Requests per run (with cache, then without).
    #[arg(long, default_value_t = 30_000)]
    pub requests: u64,
    /// Time limit per run, in seconds; a run stops at whichever bound comes first.
    #[arg(long, default_value_t = 120)]
    pub max_secs: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Target requests/s over all clients (open loop, same traffic in both runs); 0 = as fast as
    /// the clients can go (closed loop).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Users active during the run (the first N tokens of the file).
    #[arg(long, default_value_t = 500)]
    pub active_users: usize,
    /// Only the run with the cache.
    #[arg(long, conflicts_with = "no_cache_only")]
    pub cache_only: bool,
    /// Only the run without the cache.
    #[arg(long)]
    pub no_cache_only: bool,
    /// Requests of the same workload sent before the measured ones in each run, reported apart
    /// (the cold start: every key's first miss). Bounded by --max-secs as well.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// Keep each run's writes in the database (by default they are undone after the run, so both
    /// runs start from the same data).
    #[arg(long)]
    pub keep_writes: bool,
    /// After the measured requests, this many GETs of an unknown route (404: routing, middleware
    /// and HTTP on both sides, no auth, cache or DB), at the same rate and concurrency: the floor
    /// under every endpoint's latency, shown as its own row.
    #[arg(long, default_value_t = 0)]
    pub floor: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The workload: what a dashboard does. Weights in percent.
const MIX: [(Op, u32); 5] = [
    (Op::ReviewToday, 72),
    (Op::Stats, 12),
    (Op::ContentList, 12),
    (Op::Complete, 3),
    (Op::ContentUpdate, 1),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Op {
    ReviewToday,
    Stats,
    ContentList,
    Complete,
    ContentUpdate,
    /// Not in the mix: the `--floor` phase's GET of an unknown route.
    Floor,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::ReviewToday => "GET /api/review/today/",
            Op::Stats => "GET /api/analytics/stats/",
            Op::ContentList => "GET /api/content/",
            Op::Complete => "POST /api/review/complete/",
            Op::ContentUpdate => "PATCH /api/content/{id}/",
            Op::Floor => "GET unknown route (404, HTTP floor)",
        }
    }

    fn cacheable(self) -> bool {
        matches!(self, Op::ReviewToday | Op::Stats | Op::ContentList)
    }
}

fn pick_op(rng: &mut fastrand::Rng) -> Op {
    let mut roll = rng.u32(0..100);
    for (op, weight) in MIX {
        if roll < weight {
            return op;
        }
        roll -= weight;
    }
    Op::ReviewToday
}

#[derive(Serialize, Clone, Debug)]
pub struct EndpointFigures {
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

#[derive(Serialize, Clone, Debug)]
pub struct RunFigures {
    pub cache: bool,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub requests_per_sec: f64,
    pub endpoints: BTreeMap<String, EndpointFigures>,
    /// Cacheable GETs answered HIT / all cacheable GETs (null without the cache).
    pub hit_rate_client: Option<f64>,
    /// keyspace_hits / (hits + misses) from the cache's INFO over the run; counts every key lookup,
    /// generation keys included (null without the cache).
    pub hit_rate_info: Option<f64>,
    pub keyspace_hits: Option<u64>,
    pub keyspace_misses: Option<u64>,
    /// Hits served from the API's near cache (never sent to the cache server, so not in INFO).
    pub near_hits: Option<u64>,
    /// The INFO hit rate had each near-cache hit been sent as its MGET (two key hits): what
    /// the server would count without the near cache.
    pub hit_rate_info_with_near: Option<f64>,
    /// Cacheable GETs sent, and how many answered HIT (null without the cache).
    pub cacheable_requests: u64,
    pub hits_client: Option<u64>,
    pub db_queries: u64,
    pub db_queries_per_min: f64,
    pub db_queries_per_1000_requests: f64,
    /// db_queries by statement name (see `Db`), to see where the remaining queries go.
    pub db_queries_by_name: BTreeMap<String, u64>,
    /// Median of the API's cache reads (the MGET of generation and value) over the run, read off
    /// the cache_call_duration_seconds buckets (null without the cache): how much of a hit is the
    /// round trip to the cache.
    pub cache_read_p50_ms: Option<f64>,
}

/// One run (with or without the cache): the measured requests, the warm-up before them, and the
/// two together.
#[derive(Serialize, Clone, Debug)]
pub struct RunReport {
    pub measured: RunFigures,
    pub warmup: Option<RunFigures>,
    pub whole_run: Totals,
}

/// Warm-up and measured requests together.
#[derive(Serialize, Clone, Debug)]
pub struct Totals {
    pub requests: u64,
    pub seconds: f64,
    pub hit_rate_client: Option<f64>,
    pub hit_rate_info: Option<f64>,
    pub db_queries: u64,
    pub db_queries_per_1000_requests: f64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        (a as f64 * 1000.0 / b as f64).round() / 1000.0
    }
}

impl Totals {
    fn of(phases: &[&RunFigures]) -> Totals {
        let sum = |f: &dyn Fn(&RunFigures) -> u64| phases.iter().map(|p| f(p)).sum::<u64>();
        let requests = sum(&|p| p.requests);
        let db_queries = sum(&|p| p.db_queries);
        let cache_on = phases.iter().all(|p| p.cache);
        let (hits, misses) = (sum(&|p| p.keyspace_hits.unwrap_or(0)), sum(&|p| p.keyspace_misses.unwrap_or(0)));
        Totals {
            requests,
            seconds: (phases.iter().map(|p| p.seconds).sum::<f64>() * 100.0).round() / 100.0,
            hit_rate_client: cache_on.then(|| ratio(sum(&|p| p.hits_client.unwrap_or(0)), sum(&|p| p.cacheable_requests))),
            hit_rate_info: (cache_on && phases.iter().all(|p| p.keyspace_hits.is_some())).then(|| ratio(hits, hits + misses)),
            db_queries,
            db_queries_per_1000_requests: (db_queries as f64 * 1000.0 / requests.max(1) as f64).round(),
        }
    }
}

#[derive(Default)]
struct Tally {
    hist: HashMap<Op, Histogram<u64>>,
    errors: HashMap<Op, u64>,
    hits: u64,
    cacheable: u64,
}

struct Shared {
    base: String,
    http: reqwest::Client,
    tokens: Vec<String>,
    /// Content ids seen per user (from review/today answers), for the writes; kept from the
    /// warm-up into the measured phase.
    known: Arc<Mutex<HashMap<usize, Vec<i64>>>>,
    issued: AtomicU64,
    limit: u64,
    deadline: Instant,
    started: Instant,
    rate: u64,
    /// The `--floor` phase: every request is Op::Floor.
    floor: bool,
}

async fn one_request(sh: &Shared, rng: &mut fastrand::Rng, tally: &mut Tally) {
    let user = rng.usize(..sh.tokens.len());
    let token = &sh.tokens[user];
    let mut op = if sh.floor { Op::Floor } else { pick_op(rng) };
    let target = if matches!(op, Op::Complete | Op::ContentUpdate) {
        let mut known = sh.known.lock().unwrap();
        known
            .get_mut(&user)
            .filter(|ids| !ids.is_empty())
            .map(|ids| ids.swap_remove(rng.usize(..ids.len())))
    } else {
        None
    };
    if target.is_none() && matches!(op, Op::Complete | Op::ContentUpdate) {
        // Nothing known to write to yet for this user: read first, as a dashboard would.
        op = Op::ReviewToday;
    }
    let req = match op {
        Op::ReviewToday => {
            // Mostly the whole list; sometimes one category.
            let q = if rng.u32(0..10) == 0 {
                format!("?category_slug={}", crate::seed::CATEGORIES[rng.usize(..2)].0)
            } else {
                String::new()
            };
            sh.http.get(format!("{}/api/review/today/{q}", sh.base))
        }
        Op::Stats => sh.http.get(format!("{}/api/analytics/stats/", sh.base)),
        Op::ContentList => {
            let page = [1, 1, 1, 1, 1, 1, 2, 2, 3][rng.usize(..9)];
            sh.http.get(format!("{}/api/content/?page={page}", sh.base))
        }
        Op::Complete => sh
            .http
            .post(format!("{}/api/review/complete/", sh.base))
            .json(&json!({"content_id": target, "remembered": rng.f64() < 0.8})),
        Op::ContentUpdate => sh
            .http
            .patch(format!("{}/api/content/{}/", sh.base, target.unwrap()))
            .json(&json!({"title": format!("edited {}", rng.u32(..))})),
        Op::Floor => sh.http.get(format!("{}/api/floor-probe/", sh.base)),
    };
    let started = Instant::now();
    let result = req.bearer_auth(token).send().await;
    let (ok, x_cache, body) = match result {
        Ok(resp) => {
            let ok = resp.status().is_success();
            let x = resp
                .headers()
                .get("x-cache")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (ok, x, resp.bytes().await.ok())
        }
        Err(_) => (false, String::new(), None),
    };
    let micros = started.elapsed().as_micros() as u64;
    tally
        .hist
        .entry(op)
        .or_insert_with(|| Histogram::new_with_bounds(1, 60_000_000, 3).unwrap())
        .saturating_record(micros.max(1));
    // The floor probe is meant to answer 404.
    if !ok && op != Op::Floor {
        *tally.errors.entry(op).or_default() += 1;
    }
    if op.cacheable() {
        tally.cacheable += 1;
        tally.hits += (x_cache == "HIT") as u64;
    }
    // Remember due content ids for later writes, only when the user has run short: decoding every
    // 11 KB answer into a serde_json Value took the load generator's CPU from the same two cores
    // as the API it measures.
    let short = || sh.known.lock().unwrap().get(&user).is_none_or(|ids| ids.len() < 2);
    if op == Op::ReviewToday && ok && short() {
        if let Some(v) = body.and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
            let ids: Vec<i64> = v["results"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["content"]["id"].as_i64())
                .take(8)
                .collect();
            if !ids.is_empty() {
                sh.known.lock().unwrap().insert(user, ids);
            }
        }
    }
}

async fn info_keyspace(conn: &mut crate::cache::CacheConn) -> Option<(u64, u64)> {
    let info: String = redis::cmd("INFO").arg("stats").query_async(conn).await.ok()?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<u64>().ok())
    };
    Some((field("keyspace_hits")?, field("keyspace_misses")?))
}

/// What the workload writes, for the active users, as it was before a run: `restore` puts it
/// back. Read and written on the pool directly, so none of it counts as the app's DB queries (and
/// it happens outside the measured phases anyway).
struct Snapshot {
    history_max_id: i64,
    users: Vec<i64>,
    /// schedule id -> (interval_index, next_review_date)
    schedules: HashMap<i64, (i64, String)>,
    /// content id -> (title, body, category_id, updated_at)
    contents: HashMap<i64, (String, String, Option<i64>, i64)>,
}

type ScheduleRows = HashMap<i64, (i64, String)>;
type ContentRows = HashMap<i64, (String, String, Option<i64>, i64)>;

async fn user_rows(db: &crate::db::Db, user: i64) -> anyhow::Result<(ScheduleRows, ContentRows)> {
    use sqlx::Row;
    let mut schedules = HashMap::new();
    for r in sqlx::query("SELECT id, interval_index, next_review_date FROM review_schedules WHERE user_id = $1")
        .bind(user)
        .fetch_all(&db.pool)
        .await?
    {
        schedules.insert(r.try_get("id")?, (r.try_get("interval_index")?, r.try_get("next_review_date")?));
    }
    let mut contents = HashMap::new();
    for r in sqlx::query("SELECT id, title, body, category_id, updated_at FROM contents WHERE author_id = $1")
        .bind(user)
        .fetch_all(&db.pool)
        .await?
    {
        contents.insert(
            r.try_get("id")?,
            (
                r.try_get("title")?,
                r.try_get("body")?,
                r.try_get("category_id")?,
                r.try_get("updated_at")?,
            ),
        );
    }
    Ok((schedules, contents))
}

impl Snapshot {
    async fn take(db: &crate::db::Db, tokens: &[String]) -> anyhow::Result<Snapshot> {
        use sqlx::Row;
        let history_max_id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM review_history")
            .fetch_one(&db.pool)
            .await?
            .try_get("m")?;
        let mut snap = Snapshot {
            history_max_id,
            users: Vec::new(),
            schedules: HashMap::new(),
            contents: HashMap::new(),
        };
        for token in tokens {
            let Some(row) = sqlx::query("SELECT id FROM users WHERE token = $1")
                .bind(token)
                .fetch_optional(&db.pool)
                .await?
            else {
                continue;
            };
            let user: i64 = row.try_get("id")?;
            let (schedules, contents) = user_rows(db, user).await?;
            snap.users.push(user);
            snap.schedules.extend(schedules);
            snap.contents.extend(contents);
        }
        Ok(snap)
    }

    /// Undoes the run's writes: history rows added since, and schedule or content rows that
    /// differ from the snapshot. Returns how many rows it touched.
    async fn restore(&self, db: &crate::db::Db) -> anyhow::Result<u64> {
        let mut tx = db.begin_write().await?;
        let mut touched = sqlx::query("DELETE FROM review_history WHERE id > $1")
            .bind(self.history_max_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for &user in &self.users {
            let (schedules, contents) = user_rows(db, user).await?;
            for (id, now) in schedules {
                if let Some(before) = self.schedules.get(&id).filter(|b| **b != now) {
                    sqlx::query("UPDATE review_schedules SET interval_index = $1, next_review_date = $2 WHERE id = $3")
                        .bind(before.0)
                        .bind(&before.1)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    touched += 1;
                }
            }
            for (id, now) in contents {
                if let Some(before) = self.contents.get(&id).filter(|b| **b != now) {
                    sqlx::query("UPDATE contents SET title = $1, body = $2, category_id = $3, updated_at = $4 WHERE id = $5")
                        .bind(&before.0)
                        .bind(&before.1)
                        .bind(before.2)
                        .bind(before.3)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    touched += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(touched)
    }
}

/// A phase's size, its clients' random seed, and whether it is the `--floor` probe.
#[derive(Clone, Copy)]
struct PhaseSpec {
    limit: u64,
    seed: u64,
    floor: bool,
}

/// One phase of a run: `limit` requests (or `--max-secs`), measured on their own.
async fn phase(
    app: &crate::AppHandle,
    conn: &mut Option<crate::cache::CacheConn>,
    opts: &Options,
    tokens: &[String],
    known: Arc<Mutex<HashMap<usize, Vec<i64>>>>,
    spec: PhaseSpec,
) -> anyhow::Result<RunFigures> {
    let cache_on = conn.is_some();
    let before_info = match conn.as_mut() {
        Some(c) => info_keyspace(c).await,
        None => None,
    };
    let before_db = app.state.metrics.db_queries_by_name();
    let before_reads = app.state.metrics.cache_call_buckets("get");
    let before_near = app.state.metrics.near_hits_total();
    let shared = Arc::new(Shared {
        base: format!("http://{}", app.addr),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(opts.concurrency)
            .timeout(Duration::from_secs(30))
            .build()?,
        tokens: tokens.to_vec(),
        known,
        issued: AtomicU64::new(0),
        limit: spec.limit,
        deadline: Instant::now() + Duration::from_secs(opts.max_secs),
        started: Instant::now(),
        rate: opts.rate,
        floor: spec.floor,
    });
    let started = shared.started;
    let workers: Vec<_> = (0..opts.concurrency)
        .map(|w| {
            let sh = shared.clone();
            tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(w as u64 * 7919 + spec.seed);
                let mut tally = Tally::default();
                loop {
                    let i = sh.issued.fetch_add(1, Ordering::Relaxed);
                    if i >= sh.limit || Instant::now() >= sh.deadline {
                        break;
                    }
                    if sh.rate > 0 {
                        // Request i is due at i / rate: the same traffic whatever the latency.
                        tokio::time::sleep_until((sh.started + Duration::from_secs_f64(i as f64 / sh.rate as f64)).into()).await;
                    }
                    one_request(&sh, &mut rng, &mut tally).await;
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for w in workers {
        let t = w.await?;
        for (op, h) in t.hist {
            total
                .hist
                .entry(op)
                .or_insert_with(|| Histogram::new_with_bounds(1, 60_000_000, 3).unwrap())
                .add(h)?;
        }
        for (op, e) in t.errors {
            *total.errors.entry(op).or_default() += e;
        }
        total.hits += t.hits;
        total.cacheable += t.cacheable;
    }
    let seconds = started.elapsed().as_secs_f64();
    let db_by_name: BTreeMap<String, u64> = app
        .state
        .metrics
        .db_queries_by_name()
        .into_iter()
        .map(|(name, n)| {
            let d = n - before_db.get(&name).copied().unwrap_or(0);
            (name, d)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let db_queries: u64 = db_by_name.values().sum();
    let after_info = match conn.as_mut() {
        Some(c) => info_keyspace(c).await,
        None => None,
    };

    let ms = |h: &Histogram<u64>, q: f64| (h.value_at_quantile(q) as f64 / 10.0).round() / 100.0;
    let endpoints: BTreeMap<String, EndpointFigures> = total
        .hist
        .iter()
        .map(|(op, h)| {
            let f = EndpointFigures {
                requests: h.len(),
                errors: *total.errors.get(op).unwrap_or(&0),
                p50_ms: ms(h, 0.50),
                p95_ms: ms(h, 0.95),
                p99_ms: ms(h, 0.99),
                mean_ms: (h.mean() / 10.0).round() / 100.0,
            };
            (op.name().to_string(), f)
        })
        .collect();
    let requests: u64 = endpoints.values().map(|e| e.requests).sum();
    let (hits, misses) = match (before_info, after_info) {
        (Some(b), Some(a)) => (Some(a.0 - b.0), Some(a.1 - b.1)),
        _ => (None, None),
    };
    Ok(RunFigures {
        cache: cache_on,
        requests,
        errors: endpoints.values().map(|e| e.errors).sum(),
        seconds: (seconds * 100.0).round() / 100.0,
        requests_per_sec: (requests as f64 / seconds).round(),
        endpoints,
        hit_rate_client: cache_on.then(|| ratio(total.hits, total.cacheable)),
        hit_rate_info: hits.zip(misses).map(|(h, m)| ratio(h, h + m)),
        near_hits: cache_on.then(|| app.state.metrics.near_hits_total() - before_near),
        hit_rate_info_with_near: hits.zip(misses).map(|(h, m)| {
            let near = 2 * (app.state.metrics.near_hits_total() - before_near);
            ratio(h + near, h + m + near)
        }),
        keyspace_hits: hits,
        keyspace_misses: misses,
        cacheable_requests: total.cacheable,
        hits_client: cache_on.then_some(total.hits),
        db_queries,
        db_queries_per_min: (db_queries as f64 / seconds * 60.0).round(),
        db_queries_per_1000_requests: (db_queries as f64 * 1000.0 / requests.max(1) as f64).round(),
        db_queries_by_name: db_by_name,
        cache_read_p50_ms: cache_on
            .then(|| bucket_quantile(&before_reads, &app.state.metrics.cache_call_buckets("get"), 0.5))
            .flatten()
            .map(|s| (s * 100_000.0).round() / 100.0),
    })
}

async fn run_once(settings: Settings, opts: &Options, tokens: &[String]) -> anyhow::Result<RunReport> {
    let cache_on = settings.cache_url.is_some();
    let app = crate::start(settings).await?;
    // Flushing the namespace between runs is a SCAN MATCH, which twemproxy and a cluster lack.
    anyhow::ensure!(
        !cache_on || app.state.cache.mode() == crate::cache::CacheMode::Direct,
        "loadtest needs --cache-mode direct (it flushes the cache namespace with SCAN between runs)"
    );
    let mut conn = None;
    if cache_on {
        anyhow::ensure!(app.state.cache.wait_connected(Duration::from_secs(5)).await, "cache not reachable");
        let c = app.state.cache.connection().expect("connected");
        // Start cold: drop whatever an earlier run left under the prefix.
        app.state.cache.invalidate_pattern(c.clone(), "*").await;
        conn = Some(c);
    }
    let snapshot = if opts.keep_writes {
        None
    } else {
        Some(Snapshot::take(&app.state.db, tokens).await?)
    };
    let known = Arc::new(Mutex::new(HashMap::new()));
    let result = async {
        let warmup = if opts.warmup > 0 {
            Some(
                phase(
                    &app,
                    &mut conn,
                    opts,
                    tokens,
                    known.clone(),
                    PhaseSpec {
                        limit: opts.warmup,
                        seed: 1_000_003,
                        floor: false,
                    },
                )
                .await?,
            )
        } else {
            None
        };
        let mut measured = phase(
            &app,
            &mut conn,
            opts,
            tokens,
            known.clone(),
            PhaseSpec {
                limit: opts.requests,
                seed: 1,
                floor: false,
            },
        )
        .await?;
        if opts.floor > 0 {
            // Its own phase, so it changes none of the measured counts; only its latency row joins.
            let floor = phase(
                &app,
                &mut conn,
                opts,
                tokens,
                known.clone(),
                PhaseSpec {
                    limit: opts.floor,
                    seed: 2_000_003,
                    floor: true,
                },
            )
            .await?;
            measured.endpoints.extend(floor.endpoints);
        }
        let whole_run = Totals::of(&warmup.iter().chain([&measured]).collect::<Vec<_>>());
        anyhow::Ok(RunReport {
            measured,
            warmup,
            whole_run,
        })
    }
    .await;
    if let Some(snap) = snapshot {
        let touched = snap.restore(&app.state.db).await?;
        // The restore wrote behind the cache's back: drop what the run cached, or a later reader
        // would be served the run's data.
        if let Some(c) = conn.clone() {
            app.state.cache.invalidate_pattern(c, "*").await;
        }
        eprintln!("loadtest: undid the run's writes ({touched} rows)");
    }
    app.stop().await;
    result
}

/// Runs the workload with and without the cache and prints the comparison.
pub async fn run(settings: Settings, cache_url: String, opts: Options) -> anyhow::Result<()> {
    let all: Vec<String> = std::fs::read_to_string(&opts.tokens)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    anyhow::ensure!(
        !all.is_empty(),
        "no tokens in {} (run `review-api seed` first)",
        opts.tokens.display()
    );
    let tokens: Vec<String> = all.into_iter().take(opts.active_users.max(1)).collect();
    anyhow::ensure!(settings.listen.ip().is_loopback(), "the loadtest runs on loopback only");
    let mut runs = Vec::new();
    if !opts.no_cache_only {
        eprintln!(
            "loadtest: with cache ({cache_url}), {} requests, {} clients, {} users",
            opts.requests,
            opts.concurrency,
            tokens.len()
        );
        runs.push(
            run_once(
                Settings {
                    cache_url: Some(cache_url.clone()),
                    ..settings.clone()
                },
                &opts,
                &tokens,
            )
            .await?,
        );
    }
    if !opts.cache_only {
        eprintln!(
            "loadtest: without cache, {} requests, {} clients, {} users",
            opts.requests,
            opts.concurrency,
            tokens.len()
        );
        runs.push(
            run_once(
                Settings {
                    cache_url: None,
                    ..settings.clone()
                },
                &opts,
                &tokens,
            )
            .await?,
        );
    }
    let with = runs.iter().find(|r| r.measured.cache).cloned();
    let without = runs.iter().find(|r| !r.measured.cache).cloned();
    if opts.json {
        let workload = json!({
            "requests": opts.requests, "warmup": opts.warmup, "rate": opts.rate, "max_secs": opts.max_secs, "concurrency": opts.concurrency, "active_users": tokens.len(),
            "writes_undone_after_each_run": !opts.keep_writes,
            "mix_percent": MIX.iter().map(|(op, w)| (op.name(), *w)).collect::<BTreeMap<_, _>>(),
            "database": if settings.database_url.starts_with("postgres") { "postgres" } else { "sqlite" },
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "workload": workload, "with_cache": with, "without_cache": without }))?
        );
    } else {
        print_table(with.as_ref(), without.as_ref());
    }
    Ok(())
}

fn reduction(with: f64, without: f64) -> String {
    if without > 0.0 {
        format!("{:.0}%", (1.0 - with / without) * 100.0)
    } else {
        "-".into()
    }
}

/// The `q` quantile of the observations between two snapshots of a histogram's cumulative buckets
/// (see [`crate::metrics::Metrics::cache_call_buckets`]), interpolated linearly inside its bucket as
/// Prometheus's histogram_quantile does; None when nothing was observed.
fn bucket_quantile(before: &[(f64, u64)], after: &[(f64, u64)], q: f64) -> Option<f64> {
    let counts: Vec<(f64, u64)> = after
        .iter()
        .zip(before)
        .map(|(&(le, a), &(_, b))| (le, a.saturating_sub(b)))
        .collect();
    let total = counts.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let (mut lower, mut below) = (0.0, 0u64);
    for &(le, count) in &counts {
        if count as f64 >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let inside = (count - below) as f64;
            return Some(lower + (le - lower) * (rank - below as f64) / inside.max(1.0));
        }
        (lower, below) = (le, count);
    }
    Some(lower)
}

fn print_table(with_run: Option<&RunReport>, without_run: Option<&RunReport>) {
    let (with, without) = (with_run.map(|r| &r.measured), without_run.map(|r| &r.measured));
    let cell = |r: Option<&RunFigures>, f: &dyn Fn(&RunFigures) -> String| r.map(f).unwrap_or_else(|| "-".into());
    println!("| | with cache | without cache | change |");
    println!("|---|---|---|---|");
    let names: Vec<String> = with.or(without).map(|r| r.endpoints.keys().cloned().collect()).unwrap_or_default();
    for name in &names {
        let get = |r: Option<&RunFigures>| r.and_then(|r| r.endpoints.get(name)).cloned();
        let (w, wo) = (get(with), get(without));
        let show = |e: &Option<EndpointFigures>| {
            e.as_ref()
                .map(|e| format!("{:.2} / {:.2} / {:.2}", e.p50_ms, e.p95_ms, e.p99_ms))
                .unwrap_or("-".into())
        };
        let change = match (&w, &wo) {
            (Some(a), Some(b)) => format!("p50 {}", reduction(a.p50_ms, b.p50_ms)),
            _ => "-".into(),
        };
        println!("| {name} p50/p95/p99 ms | {} | {} | {change} lower |", show(&w), show(&wo));
    }
    let rps_change = match (with, without) {
        (Some(a), Some(b)) if b.requests_per_sec > 0.0 => format!("x{:.1}", a.requests_per_sec / b.requests_per_sec),
        _ => "-".into(),
    };
    println!(
        "| requests/s | {} | {} | {rps_change} |",
        cell(with, &|r| format!("{}", r.requests_per_sec)),
        cell(without, &|r| format!("{}", r.requests_per_sec))
    );
    println!(
        "| requests (errors) | {} | {} | |",
        cell(with, &|r| format!("{} ({})", r.requests, r.errors)),
        cell(without, &|r| format!("{} ({})", r.requests, r.errors))
    );
    let pct = |v: Option<f64>| v.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or("-".into());
    println!(
        "| hit rate, client (X-Cache) | {} | - | |",
        pct(with.and_then(|r| r.hit_rate_client))
    );
    println!(
        "| hit rate, INFO keyspace | {} | - | |",
        with.map(|r| format!(
            "{} ({} hits, {} misses)",
            pct(r.hit_rate_info),
            r.keyspace_hits.unwrap_or(0),
            r.keyspace_misses.unwrap_or(0)
        ))
        .unwrap_or("-".into())
    );
    if let Some(near) = with.and_then(|r| r.near_hits).filter(|n| *n > 0) {
        println!(
            "| served from the near cache (in process, not in INFO) | {near} hits, {} of all hits; INFO counting each as its MGET: {} | - | |",
            pct(with.and_then(|r| r.hits_client).map(|h| ratio(near, h))),
            pct(with.and_then(|r| r.hit_rate_info_with_near))
        );
    }
    println!(
        "| cache read in the API (MGET round trip) p50 ms | {} | - | |",
        cell(with, &|r| r.cache_read_p50_ms.map_or("-".into(), |v| format!("{v:.3}")))
    );
    let db_change = match (with, without) {
        (Some(a), Some(b)) => format!("{} fewer", reduction(a.db_queries_per_min, b.db_queries_per_min)),
        _ => "-".into(),
    };
    println!(
        "| DB queries/min (total) | {} | {} | {db_change} |",
        cell(with, &|r| format!("{} ({})", r.db_queries_per_min, r.db_queries)),
        cell(without, &|r| format!("{} ({})", r.db_queries_per_min, r.db_queries))
    );
    let per_k_change = match (with, without) {
        (Some(a), Some(b)) => format!(
            "{} fewer",
            reduction(a.db_queries_per_1000_requests, b.db_queries_per_1000_requests)
        ),
        _ => "-".into(),
    };
    println!(
        "| DB queries per 1000 requests | {} | {} | {per_k_change} |",
        cell(with, &|r| format!("{}", r.db_queries_per_1000_requests)),
        cell(without, &|r| format!("{}", r.db_queries_per_1000_requests))
    );
    let by_name = |r: &RunFigures| {
        let mut v: Vec<(&String, &u64)> = r.db_queries_by_name.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter().map(|(n, c)| format!("{n} {c}")).collect::<Vec<_>>().join(", ")
    };
    println!(
        "| DB queries by statement | {} | {} | |",
        cell(with, &by_name),
        cell(without, &by_name)
    );
    // The warm-up (cold start) and the whole run with it, so both readings are on the page.
    let warm = |r: Option<&RunReport>| r.and_then(|r| r.warmup.clone());
    let (ww, wwo) = (warm(with_run), warm(without_run));
    if ww.is_some() || wwo.is_some() {
        let show = |r: &RunFigures| {
            format!(
                "{} req, hit rate {} / INFO {}, {} DB queries per 1000",
                r.requests,
                pct(r.hit_rate_client),
                pct(r.hit_rate_info),
                r.db_queries_per_1000_requests
            )
        };
        println!(
            "| warm-up, not in the figures above | {} | {} | |",
            cell(ww.as_ref(), &show),
            cell(wwo.as_ref(), &show)
        );
        let whole = |r: Option<&RunReport>| r.map(|r| r.whole_run.clone());
        let (tw, two) = (whole(with_run), whole(without_run));
        let show = |t: &Totals| {
            format!(
                "{} req, hit rate {} / INFO {}, {} DB queries per 1000",
                t.requests,
                pct(t.hit_rate_client),
                pct(t.hit_rate_info),
                t.db_queries_per_1000_requests
            )
        };
        let change = match (&tw, &two) {
            (Some(a), Some(b)) => format!(
                "{} fewer",
                reduction(a.db_queries_per_1000_requests, b.db_queries_per_1000_requests)
            ),
            _ => "-".into(),
        };
        println!(
            "| whole run, warm-up included | {} | {} | {change} |",
            tw.as_ref().map(show).unwrap_or("-".into()),
            two.as_ref().map(show).unwrap_or("-".into())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_quantile;

    #[test]
    fn bucket_quantile_interpolates_inside_the_bucket_of_the_rank() {
        let inf = f64::INFINITY;
        let before = [(0.1, 5), (0.2, 5), (0.4, 5), (inf, 5)];
        // 10 new observations: 2 up to 0.1, 4 in (0.1, 0.2], 4 in (0.2, 0.4].
        let after = [(0.1, 7), (0.2, 11), (0.4, 15), (inf, 15)];
        // The 5th of 10 is the 3rd of the 4 in (0.1, 0.2]: 0.1 + 0.1 * 3/4.
        let p50 = bucket_quantile(&before, &after, 0.5).unwrap();
        assert!((p50 - 0.175).abs() < 1e-9, "{p50}");
        assert!((bucket_quantile(&before, &after, 1.0).unwrap() - 0.4).abs() < 1e-9);
        assert_eq!(bucket_quantile(&before, &before, 0.5), None);
        // Past the last finite bound: the bound is all that is known.
        let slow = [(0.1, 5), (0.2, 5), (0.4, 5), (inf, 9)];
        assert_eq!(bucket_quantile(&before, &slow, 0.5), Some(0.4));
    }
}
