//! `review-api loadtest`: a mixed dashboard workload over loopback HTTP against the API started in
//! this process, once with the cache and once without (`--no-cache` mode of the same binary), on the
//! same seeded database. Bounded by a request count and a time limit per run. Prints p50/p95/p99
//! per endpoint, requests/s, hit rate (client-side X-Cache and the cache's INFO keyspace_hits /
//! keyspace_misses) and DB queries per minute (counted by the app), side by side; `--json` prints
//! the same figures as one JSON object.

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
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::ReviewToday => "GET /api/review/today/",
            Op::Stats => "GET /api/analytics/stats/",
            Op::ContentList => "GET /api/content/",
            Op::Complete => "POST /api/review/complete/",
            Op::ContentUpdate => "PATCH /api/content/{id}/",
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
    pub db_queries: u64,
    pub db_queries_per_min: f64,
    pub db_queries_per_1000_requests: f64,
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
    /// Content ids seen per user (from review/today answers), for the writes.
    known: Mutex<HashMap<usize, Vec<i64>>>,
    issued: AtomicU64,
    limit: u64,
    deadline: Instant,
    started: Instant,
    rate: u64,
}

async fn one_request(sh: &Shared, rng: &mut fastrand::Rng, tally: &mut Tally) {
    let user = rng.usize(..sh.tokens.len());
    let token = &sh.tokens[user];
    let mut op = pick_op(rng);
    let target = if matches!(op, Op::Complete | Op::ContentUpdate) {
        let mut known = sh.known.lock().unwrap();
        known
            .get_mut(&user)
            .filter(|ids| !ids.is_empty())
            .map(|ids| ids.swap_remove(rng.usize(..ids.len())))
    } else {
        None
    };
    if target.is_none() && !op.cacheable() {
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
    if !ok {
        *tally.errors.entry(op).or_default() += 1;
    }
    if op.cacheable() {
        tally.cacheable += 1;
        tally.hits += (x_cache == "HIT") as u64;
    }
    if op == Op::ReviewToday && ok {
        // Remember due content ids for later writes (whole-list answers only, cheap enough).
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

async fn info_keyspace(conn: &mut redis::aio::ConnectionManager) -> Option<(u64, u64)> {
    let info: String = redis::cmd("INFO").arg("stats").query_async(conn).await.ok()?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<u64>().ok())
    };
    Some((field("keyspace_hits")?, field("keyspace_misses")?))
}

async fn run_once(settings: Settings, opts: &Options, tokens: &[String]) -> anyhow::Result<RunFigures> {
    let cache_on = settings.cache_url.is_some();
    let app = crate::start(settings).await?;
    let mut conn = None;
    if cache_on {
        anyhow::ensure!(app.state.cache.wait_connected(Duration::from_secs(5)).await, "cache not reachable");
        let c = app.state.cache.connection().expect("connected");
        // Start cold: drop whatever an earlier run left under the prefix.
        app.state.cache.invalidate_pattern(c.clone(), "*").await;
        conn = Some(c);
    }
    let before_info = match conn.as_mut() {
        Some(c) => info_keyspace(c).await,
        None => None,
    };
    let before_db = app.state.metrics.db_queries_total();
    let shared = Arc::new(Shared {
        base: format!("http://{}", app.addr),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(opts.concurrency)
            .timeout(Duration::from_secs(30))
            .build()?,
        tokens: tokens.to_vec(),
        known: Mutex::new(HashMap::new()),
        issued: AtomicU64::new(0),
        limit: opts.requests,
        deadline: Instant::now() + Duration::from_secs(opts.max_secs),
        started: Instant::now(),
        rate: opts.rate,
    });
    let started = shared.started;
    let workers: Vec<_> = (0..opts.concurrency)
        .map(|w| {
            let sh = shared.clone();
            tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(w as u64 * 7919 + 1);
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
    let db_queries = app.state.metrics.db_queries_total() - before_db;
    let after_info = match conn.as_mut() {
        Some(c) => info_keyspace(c).await,
        None => None,
    };
    app.stop().await;

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
    let ratio = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            (a as f64 * 1000.0 / b as f64).round() / 1000.0
        }
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
        keyspace_hits: hits,
        keyspace_misses: misses,
        db_queries,
        db_queries_per_min: (db_queries as f64 / seconds * 60.0).round(),
        db_queries_per_1000_requests: (db_queries as f64 * 1000.0 / requests.max(1) as f64).round(),
    })
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
    let with = runs.iter().find(|r| r.cache).cloned();
    let without = runs.iter().find(|r| !r.cache).cloned();
    if opts.json {
        let workload = json!({
            "requests": opts.requests, "rate": opts.rate, "max_secs": opts.max_secs, "concurrency": opts.concurrency, "active_users": tokens.len(),
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

fn print_table(with: Option<&RunFigures>, without: Option<&RunFigures>) {
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
}
