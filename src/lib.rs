//! respite: a Redis-compatible caching server.
//!
//! Data flows one way: socket -> [`connection`] -> [`protocol`] -> [`commands`] -> [`keyspace`],
//! and replies come back through one output buffer per connection.
//!
//! Embedding (tests, tools): [`start`] runs a server on a listener of your choice and returns a
//! handle that stops it.

pub mod acl;
pub mod client;
pub mod commands;
pub mod config;
pub mod connection;
pub mod glob;
pub mod keyspace;
pub mod protocol;
pub mod pubsub;
pub mod server;
pub mod stats;

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
    let task = tokio::spawn(server::serve(server.clone(), vec![listener], std::future::pending()));
    Ok(Handle { addr, server, task })
}

/// Starts a server on 127.0.0.1 with an ephemeral port.
pub async fn start(config: Config) -> std::io::Result<Handle> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    start_on(config, listener)
}
