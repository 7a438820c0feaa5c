//! respite: a Redis-compatible caching server.
//!
//! Data flows one way: socket -> [`connection`] -> [`protocol`] -> [`commands`] -> [`keyspace`],
//! and replies come back through one output buffer per connection.
//!
//! Embedding (tests, tools): [`start`] runs a server inside your tokio runtime and returns a
//! [`Handle`] that stops it; [`spawn`] runs one on a thread of its own for plain `#[test]`s. Both
//! listen on 127.0.0.1 with an ephemeral port and are ready when they return.
//!
//! ```
//! use std::time::Duration;
//! use redis::Commands;
//!
//! let server = respite::spawn(respite::Config::default()).unwrap();
//! let mut con = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
//! let _: () = con.set_ex("session", "abc", 60).unwrap();
//! // Time control, respite only: no sleeping for TTLs.
//! server.handle().advance_clock(Duration::from_secs(61));
//! let gone: Option<String> = con.get("session").unwrap();
//! assert_eq!(gone, None);
//! let _: () = con.hset("user:1", "name", "ada").unwrap();
//! server.handle().flushall(); // between tests
//! assert_eq!(con.hlen::<_, i64>("user:1").unwrap(), 0);
//! // dropping `server` stops it
//! ```

pub mod acl;
pub mod client;
pub mod commands;
pub mod config;
pub mod connection;
pub mod glob;
pub mod keyspace;
pub mod monitor;
pub mod pause;
pub mod protocol;
pub mod pubsub;
pub mod server;
pub mod slowlog;
pub mod stats;
pub mod tracking;

use std::net::SocketAddr;
use std::sync::Arc;

pub use config::Config;
pub use server::Server;

/// jemalloc with byte counting: INFO's used_memory and maxmemory read this count, so it is installed
/// for every user of the library (the binary, tests, embedders).
#[global_allocator]
static ALLOC: keyspace::memory::CountingJemalloc = keyspace::memory::CountingJemalloc;

/// The Redis version respite reports (HELLO, INFO), so clients enable Redis 7 features.
pub const REDIS_VERSION: &str = "7.0.15";

/// A server running in this process.
pub struct Handle {
    pub addr: SocketAddr,
    pub server: Arc<Server>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Handle {
    /// `redis://127.0.0.1:PORT`, for client libraries.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Empties every database (FLUSHALL), e.g. between tests sharing one server.
    pub fn flushall(&self) {
        let _world = self.server.keyspace.world.write();
        self.server.keyspace.flush_all();
    }

    /// Moves the server's clock forward: keys whose TTL falls within `by` expire as if that time
    /// had passed (respite only; `DEBUG ADVANCE-CLOCK <ms>` does the same over the wire).
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.server.keyspace.clock.advance(by.as_millis() as i64);
    }

    /// Stops the server and waits until it has closed its connections.
    pub async fn stop(self) {
        self.server.request_shutdown();
        let _ = self.task.await;
    }
}

/// Starts a server on `listener` inside the current tokio runtime.
pub fn start_on(config: Config, listener: tokio::net::TcpListener) -> std::io::Result<Handle> {
    let addr = listener.local_addr()?;
    let server = Server::new(config, addr.port());
    let task = tokio::spawn(server::serve(server.clone(), vec![listener.into()], std::future::pending()));
    Ok(Handle { addr, server, task })
}

/// Starts a server on 127.0.0.1 with an ephemeral port.
pub async fn start(config: Config) -> std::io::Result<Handle> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    start_on(config, listener)
}

/// A server on its own thread and runtime, for tests that are not async (a plain `#[test]` with a
/// blocking Redis client). Stopped when dropped.
pub struct Background {
    handle: Option<Handle>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Background {
    pub fn addr(&self) -> SocketAddr {
        self.handle().addr
    }

    pub fn url(&self) -> String {
        self.handle().url()
    }

    pub fn handle(&self) -> &Handle {
        self.handle.as_ref().expect("running until dropped")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let (Some(handle), Some(runtime)) = (self.handle.take(), self.runtime.take()) {
            runtime.block_on(handle.stop());
        }
    }
}

/// Starts a server on 127.0.0.1 with an ephemeral port on a thread of its own.
pub fn spawn(config: Config) -> std::io::Result<Background> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("respite")
        .enable_all()
        .build()?;
    let handle = runtime.block_on(start(config))?;
    Ok(Background {
        handle: Some(handle),
        runtime: Some(runtime),
    })
}
