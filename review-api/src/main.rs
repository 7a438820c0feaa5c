//! review-api: `serve` the API, `seed` a database, or `loadtest` it with and without the cache.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use review_api::cache::CacheMode;
use review_api::{loadtest, seed, Settings};

#[derive(Parser)]
#[command(name = "review-api", version, about = "Spaced-repetition review API with cache-aside on respite")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// SQLite file (sqlite://path or a plain path; created and migrated) or postgres://...
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://review-api.db")]
    database_url: String,
    /// Redis-protocol cache (respite); database 1 as in the seed. With `--cache-mode cluster`, one
    /// or more node URLs separated by commas; `redis+cluster://host:port,...` selects cluster mode.
    #[arg(long, env = "CACHE_URL", default_value = "redis://127.0.0.1:6379/1")]
    cache_url: String,
    /// direct (one server), twemproxy (nutcracker: database 0, no SCAN; invalidation by
    /// generation keys only) or cluster (Redis Cluster, database 0).
    #[arg(long, env = "CACHE_MODE", default_value = "direct")]
    cache_mode: CacheMode,
    /// Prefix of every cache key.
    #[arg(long, env = "CACHE_KEY_PREFIX", default_value = "api:")]
    key_prefix: String,
    /// Deadline of one cache call, in milliseconds: past it the request answers from the DB.
    #[arg(long, env = "CACHE_TIMEOUT_MS", default_value_t = 40)]
    cache_timeout_ms: u64,
    /// Maximum database connections.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 8)]
    db_max_connections: u32,
    /// How long an authenticated token is remembered in-process, in seconds (0: look it up on
    /// every request). A revoked token is refused within this time.
    #[arg(long, env = "TOKEN_TTL_SECS", default_value_t = 60)]
    token_ttl_secs: u64,
    /// Keep hot values in this process as well, coherent through the cache server's invalidations
    /// (CLIENT TRACKING); a hit then costs no round trip. Sound within one process; another
    /// process's write reaches this copy one invalidation later, not before it returns. Default:
    /// false for `serve` (any number of API processes may share the cache), true for `loadtest`
    /// (one process by construction).
    #[arg(long, env = "NEAR_CACHE", action = clap::ArgAction::Set)]
    near_cache: Option<bool>,
}

impl Common {
    /// `near_default`: whether the near cache is on unless `--near-cache` says otherwise.
    fn settings(&self, listen: SocketAddr, no_cache: bool, near_default: bool) -> Settings {
        Settings {
            cache_url: (!no_cache).then(|| self.cache_url.clone()),
            cache_mode: self.cache_mode,
            key_prefix: self.key_prefix.clone(),
            cache_timeout: Duration::from_millis(self.cache_timeout_ms),
            db_max_connections: self.db_max_connections,
            token_ttl: Duration::from_secs(self.token_ttl_secs),
            near_cache: self.near_cache.unwrap_or(near_default),
            listen,
            ..Settings::local(&self.database_url, None)
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API.
    Serve {
        #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8000")]
        listen: SocketAddr,
        /// Do not use the cache (every cacheable GET answers X-Cache: BYPASS).
        #[arg(long)]
        no_cache: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Fill the database with realistic users, contents, schedules and history.
    Seed {
        #[arg(long, default_value_t = 2000)]
        users: usize,
        /// Contents in total, spread over the users (each with a review schedule).
        #[arg(long, default_value_t = 60_000)]
        contents: usize,
        /// Where to write the new users' API tokens, one per line.
        #[arg(long, default_value = "tokens.txt")]
        tokens: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Drive a mixed workload against the API in this process, with and without the cache.
    Loadtest {
        #[command(flatten)]
        opts: loadtest::Options,
        #[command(flatten)]
        common: Common,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()))
        .init();
    match Cli::parse().command {
        Command::Serve { listen, no_cache, common } => {
            let app = review_api::start(common.settings(listen, no_cache, false)).await?;
            tracing::info!(
                "review-api listening on http://{} (cache: {}, {}, near cache {})",
                app.addr,
                if no_cache { "off" } else { &common.cache_url },
                app.state.cache.mode().as_str(),
                if common.near_cache == Some(true) { "on" } else { "off" }
            );
            tokio::signal::ctrl_c().await?;
            app.stop().await;
        }
        Command::Seed {
            users,
            contents,
            tokens,
            common,
        } => {
            let report = seed::run(&common.database_url, users, contents, &tokens).await?;
            println!("{report}");
        }
        Command::Loadtest { opts, common } => {
            let settings = common.settings("127.0.0.1:0".parse().unwrap(), false, true);
            loadtest::run(settings, common.cache_url.clone(), opts).await?;
        }
    }
    Ok(())
}
