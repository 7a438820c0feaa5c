//! review-api: the seed's spaced-repetition API (Django + django-redis) rebuilt in Rust, with
//! cache-aside on respite. `start` runs it on a listener of your choice; the binary's `serve`,
//! the loadtest and the tests all go through it.

pub mod app;
pub mod auth;
pub mod cache;
pub mod db;
pub mod error;
pub mod loadtest;
pub mod metrics;
pub mod near;
pub mod seed;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use app::AppState;
use auth::TokenCache;
use cache::{Cache, CacheConfig, CacheMode};
use db::Db;
use metrics::Metrics;

#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    /// None disables the cache (`--no-cache`).
    pub cache_url: Option<String>,
    /// What the cache URL points at: one server, twemproxy, or a Redis Cluster.
    pub cache_mode: CacheMode,
    pub key_prefix: String,
    pub cache_timeout: Duration,
    pub cache_retry_after: Duration,
    pub db_max_connections: u32,
    /// See [`CacheConfig::load_delay`]; zero outside tests and demos.
    pub load_delay: Duration,
    /// How long an authenticated token is remembered in-process (see [`auth`]); zero: never.
    pub token_ttl: Duration,
    /// Hot values also kept in this process, coherent by CLIENT TRACKING (see [`near`]).
    pub near_cache: bool,
}

impl Settings {
    /// Defaults for an app on an ephemeral loopback port (tests, loadtest).
    pub fn local(database_url: &str, cache_url: Option<String>) -> Settings {
        Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: database_url.to_string(),
            cache_url,
            cache_mode: CacheMode::Direct,
            key_prefix: "api:".into(),
            cache_timeout: Duration::from_millis(40),
            cache_retry_after: Duration::from_millis(250),
            db_max_connections: 8,
            load_delay: Duration::ZERO,
            token_ttl: Duration::from_secs(60),
            near_cache: true,
        }
    }
}

/// A running API.
pub struct AppHandle {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl AppHandle {
    /// Stops accepting, lets requests in progress finish, and closes the DB pool.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
        self.state.db.pool.close().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Connects the database (running migrations), starts connecting the cache, binds and serves.
pub async fn start(settings: Settings) -> anyhow::Result<AppHandle> {
    let cache_config = CacheConfig {
        url: settings.cache_url.clone(),
        mode: settings.cache_mode,
        prefix: settings.key_prefix.clone(),
        op_timeout: settings.cache_timeout,
        retry_after: settings.cache_retry_after,
        load_delay: settings.load_delay,
        near: settings.near_cache,
    };
    cache_config.check().map_err(|e| anyhow::anyhow!(e))?;
    let metrics = Arc::new(Metrics::new());
    let db = Db::connect(&settings.database_url, settings.db_max_connections, metrics.clone()).await?;
    let cache = Cache::new(cache_config, metrics.clone());
    let state = Arc::new(AppState {
        db,
        cache,
        metrics,
        tokens: TokenCache::new(settings.token_ttl),
    });
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    let addr = listener.local_addr()?;
    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    let router = app::router(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(AppHandle {
        addr,
        state,
        shutdown,
        task,
    })
}
