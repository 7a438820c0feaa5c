//! Shared test setup: respite in this process on 127.0.0.1:0, review-api on another ephemeral port,
//! a temporary SQLite file (or the PostgreSQL server named by REVIEW_API_TEST_POSTGRES_URL), seeded
//! users, and a TCP proxy between the API and respite that a test can cut or stall.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use review_api::{AppHandle, Settings};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub const PG_ENV: &str = "REVIEW_API_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `case` once per backend: `$name` on SQLite always, `${name}_postgres` when
/// REVIEW_API_TEST_POSTGRES_URL is set (else it prints that it skipped).
#[macro_export]
macro_rules! both_backends {
    ($case:ident) => {
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$case($crate::common::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if std::env::var($crate::common::PG_ENV).is_err() {
                    eprintln!(
                        "skipped: {} on PostgreSQL ({} is not set)",
                        stringify!($case),
                        $crate::common::PG_ENV
                    );
                    return;
                }
                super::$case($crate::common::Backend::Postgres).await;
            }
        }
    };
}

pub struct Env {
    pub respite: Option<respite::Handle>,
    pub respite_addr: SocketAddr,
    pub proxy: Proxy,
    pub app: AppHandle,
    pub http: reqwest::Client,
    pub tokens: Vec<String>,
    pub db_url: String,
    _dir: tempfile::TempDir,
}

pub struct Options {
    pub users: usize,
    pub contents: usize,
    pub load_delay: Duration,
    /// The app's deadline per cache call (production default 40 ms).
    pub cache_timeout: Duration,
    /// How long the app remembers an authenticated token (production default 60 s).
    pub token_ttl: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            users: 2,
            contents: 60,
            load_delay: Duration::ZERO,
            cache_timeout: Duration::from_millis(40),
            token_ttl: Duration::from_secs(60),
        }
    }
}

pub async fn start_respite() -> respite::Handle {
    respite::start(respite::Config::load(None, &[]).unwrap())
        .await
        .expect("respite starts")
}

/// A new respite on the port the stopped one used (the OS may need a moment to release it).
pub async fn restart_respite_on(addr: SocketAddr) -> respite::Handle {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return respite::start_on(respite::Config::load(None, &[]).unwrap(), listener).expect("respite starts"),
            Err(e) if Instant::now() < deadline => {
                eprintln!("rebinding {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot rebind {addr}: {e}"),
        }
    }
}

pub async fn start(backend: Backend, opts: Options) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("review.db").display()),
        Backend::Postgres => std::env::var(PG_ENV).unwrap(),
    };
    let tokens_file = dir.path().join("tokens.txt");
    review_api::seed::run(&db_url, opts.users, opts.contents, &tokens_file)
        .await
        .expect("seed");
    let tokens: Vec<String> = std::fs::read_to_string(&tokens_file).unwrap().lines().map(String::from).collect();
    assert_eq!(tokens.len(), opts.users);

    let respite = start_respite().await;
    let respite_addr = respite.addr;
    let proxy = Proxy::start(respite_addr).await;
    let settings = Settings {
        load_delay: opts.load_delay,
        cache_timeout: opts.cache_timeout,
        token_ttl: opts.token_ttl,
        ..Settings::local(&db_url, Some(format!("redis://{}/1", proxy.addr)))
    };
    let app = review_api::start(settings).await.expect("app starts");
    assert!(app.state.cache.wait_connected(Duration::from_secs(5)).await, "cache connects");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    Env {
        respite: Some(respite),
        respite_addr,
        proxy,
        app,
        http,
        tokens,
        db_url,
        _dir: dir,
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
    pub elapsed: Duration,
}

impl Reply {
    pub fn x_cache(&self) -> &str {
        self.headers.get("x-cache").and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

impl Env {
    pub async fn request(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.http.request(method, self.app.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let started = Instant::now();
        let resp = req.send().await.expect("request answered");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body, got {text:?}"))
        };
        Reply {
            status,
            headers,
            json,
            elapsed: started.elapsed(),
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.request(reqwest::Method::GET, path, Some(token), None).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, token: &str, body: Value) -> Reply {
        self.request(method, path, Some(token), Some(body)).await
    }

    pub async fn user_id(&self, token: &str) -> i64 {
        self.app.state.db.user_by_token(token).await.unwrap().unwrap().id
    }

    /// A redis connection straight to respite (not through the proxy).
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(format!("redis://{}/1", self.respite_addr))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// db_queries_total{query="<query>"} as /metrics reports it.
    pub async fn db_queries(&self, query: &str) -> u64 {
        let text = self.http.get(self.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        metric(&text, &format!("db_queries_total{{query=\"{query}\"}}"))
    }

    pub async fn metrics_text(&self) -> String {
        self.http.get(self.app.url("/metrics")).send().await.unwrap().text().await.unwrap()
    }

    pub async fn stop(mut self) {
        self.app.stop().await;
        if let Some(r) = self.respite.take() {
            r.stop().await;
        }
        self.proxy.stop();
    }
}

/// The value of one sample line (`name{labels} value`) in Prometheus text, 0 when absent.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse::<f64>().ok()))
        .map(|v| v as u64)
        .unwrap_or(0)
}

const PASS: u8 = 0;
const CUT: u8 = 1;
const STALL: u8 = 2;

/// A TCP proxy in front of respite. `cut()` closes every connection and refuses new ones (the
/// cache is unreachable but keeps its data); `stall()` accepts and never answers (a hung cache);
/// `pass()` restores forwarding.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (m, c) = (mode.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                match m.load(Ordering::SeqCst) {
                    CUT => drop(client),
                    STALL => c.lock().unwrap().push(tokio::spawn(async move {
                        // Hold the socket open, never reply.
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        drop(client);
                    })),
                    _ => c.lock().unwrap().push(tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            // Without NODELAY a forwarded tail segment waits for a delayed ACK (40 ms).
                            let _ = (client.set_nodelay(true), server.set_nodelay(true));
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    })),
                }
            }
        });
        Proxy { addr, mode, conns, accept }
    }

    fn drop_connections(&self) {
        for task in self.conns.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub fn cut(&self) {
        self.mode.store(CUT, Ordering::SeqCst);
        self.drop_connections();
    }

    pub fn stall(&self) {
        self.mode.store(STALL, Ordering::SeqCst);
        self.drop_connections();
    }

    pub fn pass(&self) {
        self.mode.store(PASS, Ordering::SeqCst);
    }

    pub fn stop(&self) {
        self.drop_connections();
        self.accept.abort();
    }
}
