//! The server: shared state, the accept loop (maxclients, protected mode), background cycles
//! (active expiry, stats sampling) and graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::client::Clients;
use crate::commands;
use crate::config::Config;
use crate::keyspace::expire::ExpireCursor;
use crate::keyspace::Keyspace;
use crate::stats::{CommandStats, Stats};

pub struct Server {
    pub config: Config,
    pub keyspace: Keyspace,
    pub stats: Stats,
    pub command_stats: CommandStats,
    pub clients: Clients,
    pub pubsub: Arc<crate::pubsub::PubSub>,
    pub started: Instant,
    pub started_unix: i64,
    pub run_id: String,
    /// CLUSTER MYID: this node's 40-hex-digit name (new on every start; nothing is persisted).
    pub node_id: String,
    /// The port actually bound (the configured one may be 0).
    pub port: u16,
    shutdown: watch::Sender<bool>,
    pub active_expire: std::sync::atomic::AtomicBool,
    peak_memory: std::sync::atomic::AtomicU64,
    /// used_memory once the server was set up, before any data (INFO's used_memory_startup).
    pub startup_memory: usize,
}

impl Server {
    pub fn new(config: Config, port: u16) -> Arc<Server> {
        let keyspace = Keyspace::new(config.databases);
        let run_id: String = (0..40).map(|_| fastrand::alphanumeric().to_ascii_lowercase()).collect();
        let (shutdown, _) = watch::channel(false);
        let started_unix = keyspace.clock.now_ms() / 1000;
        let server = Arc::new(Server {
            config,
            keyspace,
            stats: Stats::default(),
            command_stats: CommandStats::new(commands::table().len()),
            clients: Clients::default(),
            pubsub: Arc::new(crate::pubsub::PubSub::new()),
            started: Instant::now(),
            started_unix,
            run_id,
            node_id: (0..40).map(|_| fastrand::digit(16)).collect(),
            port,
            shutdown,
            active_expire: std::sync::atomic::AtomicBool::new(true),
            peak_memory: std::sync::atomic::AtomicU64::new(0),
            startup_memory: crate::keyspace::memory::used_memory(),
        });
        server.keyspace.notifier.set_sink(server.pubsub.clone());
        server.apply_config();
        server
    }

    /// Records `used` as a candidate peak and returns the peak so far.
    pub fn note_peak(&self, used: u64) -> u64 {
        self.peak_memory.fetch_max(used, std::sync::atomic::Ordering::Relaxed).max(used)
    }

    /// Mirrors the settings the keyspace reads on every access (policy kind, LFU knobs).
    pub fn apply_config(&self) {
        use crate::config::EvictionPolicy::*;
        let t = &self.keyspace.tracking;
        t.lfu.store(
            matches!(self.config.policy(), AllKeysLfu | VolatileLfu),
            std::sync::atomic::Ordering::Relaxed,
        );
        let num = |name: &str, default: u32| self.config.get(name).and_then(|v| v.parse().ok()).unwrap_or(default);
        t.lfu_log_factor
            .store(num("lfu-log-factor", 10), std::sync::atomic::Ordering::Relaxed);
        t.lfu_decay_minutes
            .store(num("lfu-decay-time", 1), std::sync::atomic::Ordering::Relaxed);
        // client-output-buffer-limit "normal 0 0 0 replica ... pubsub 33554432 8388608 60": the
        // pubsub hard limit bounds each subscriber's mailbox.
        let limits = self.config.get("client-output-buffer-limit").unwrap_or_default();
        let words: Vec<&str> = limits.split_whitespace().collect();
        if let Some(pubsub) = words.chunks_exact(4).find(|c| c[0] == "pubsub") {
            let hard = pubsub[1].parse().unwrap_or(32 << 20);
            self.pubsub.hard_limit.store(hard, std::sync::atomic::Ordering::Relaxed);
        }
        let events = self.config.keyspace_events.load(std::sync::atomic::Ordering::Relaxed);
        self.keyspace.notifier.set_flags(events);
        crate::keyspace::memory::set_background_thread(self.config.get("jemalloc-bg-thread").as_deref() != Some("no"));
    }

    /// Asks the server to stop: no new connections, in-flight replies finish.
    pub fn request_shutdown(&self) {
        // send_replace stores the value even while nobody is subscribed yet.
        self.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Serves `listeners` until `shutdown` resolves or a client sends SHUTDOWN.
pub async fn serve(server: Arc<Server>, listeners: Vec<TcpListener>, shutdown: impl std::future::Future<Output = ()>) -> io::Result<()> {
    serve_on(server, listeners, shutdown, Workers::Current).await
}

/// Where accepted connections run.
#[derive(Clone)]
pub enum Workers {
    /// On the runtime that accepts (tests, embedders).
    Current,
    /// Round-robin over single-threaded runtimes: each connection stays on one thread with its
    /// own event loop, so serving a request never wakes another thread (Redis's event loop,
    /// `io-threads` times; measured cheaper than tokio's work-stealing scheduler).
    EventLoops(Arc<[tokio::runtime::Handle]>),
}

impl Workers {
    /// Starts `n` worker threads, each running a current-thread runtime until the process exits.
    pub fn event_loops(n: usize) -> io::Result<Workers> {
        let mut handles = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(rt.handle().clone());
            std::thread::Builder::new()
                .name(format!("respite-worker-{i}"))
                .spawn(move || rt.block_on(std::future::pending::<()>()))?;
        }
        Ok(Workers::EventLoops(handles.into()))
    }
}

/// Serves as [`serve`], running connections on `workers`.
pub async fn serve_on(
    server: Arc<Server>,
    listeners: Vec<TcpListener>,
    shutdown: impl std::future::Future<Output = ()>,
    workers: Workers,
) -> io::Result<()> {
    let cron = tokio::spawn(cron(server.clone()));
    let mut accepts = Vec::new();
    for listener in listeners {
        accepts.push(tokio::spawn(accept_loop(server.clone(), listener, workers.clone())));
    }
    let mut stop = server.shutdown_signal();
    tokio::select! {
        _ = shutdown => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    info!("Received shutdown request, closing connections");
    server.request_shutdown();
    for a in &accepts {
        a.abort();
    }
    cron.abort();
    // Connections finish the batch in hand and close; give them a bounded moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.clients.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    info!("respite is now ready to exit, bye bye...");
    Ok(())
}

async fn accept_loop(server: Arc<Server>, listener: TcpListener, workers: Workers) {
    let mut next = 0usize;
    loop {
        let (socket, addr) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let laddr = socket.local_addr().unwrap_or(addr);
        match &workers {
            Workers::Current => {
                tokio::spawn(crate::connection::handle(server.clone(), socket, addr, laddr));
            }
            Workers::EventLoops(handles) => {
                // Move the socket to the chosen worker's reactor.
                let Ok(std_socket) = socket.into_std() else { continue };
                let server = server.clone();
                handles[next % handles.len()].spawn(async move {
                    if let Ok(socket) = tokio::net::TcpStream::from_std(std_socket) {
                        crate::connection::handle(server, socket, addr, laddr).await;
                    }
                });
                next = next.wrapping_add(1);
            }
        }
    }
}

/// The server's periodic work, `hz` times a second, as Redis's serverCron.
async fn cron(server: Arc<Server>) {
    let mut cursor = ExpireCursor::default();
    loop {
        let hz = server.config.hz.load(std::sync::atomic::Ordering::Relaxed).max(1);
        let period = Duration::from_millis(1000 / hz as u64);
        tokio::time::sleep(period).await;
        if server.active_expire.load(std::sync::atomic::Ordering::Relaxed) {
            // Redis's budget: 25% of a cycle's period of CPU.
            server.keyspace.active_expire_cycle(&mut cursor, period / 4);
        }
        let now = server.keyspace.clock.now_ms();
        server.stats.ops_sampler.lock().sample(now, server.stats.commands_processed.get());
    }
}

/// Binds the configured addresses (`bind`, `port`); a '-' prefixed address may be unavailable.
pub async fn bind(config: &Config) -> io::Result<Vec<TcpListener>> {
    let port = config.port();
    let mut listeners = Vec::new();
    for addr in config.bind() {
        let (optional, addr) = match addr.strip_prefix('-') {
            Some(a) => (true, a.to_string()),
            None => (false, addr),
        };
        let host = match addr.as_str() {
            "*" => "0.0.0.0".to_string(),
            "::*" => "::".to_string(),
            _ => addr.clone(),
        };
        let sock: SocketAddr = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("invalid bind address '{addr}'"),
                ))
            }
        };
        let socket = if sock.is_ipv6() {
            tokio::net::TcpSocket::new_v6()?
        } else {
            tokio::net::TcpSocket::new_v4()?
        };
        socket.set_reuseaddr(true)?;
        if sock.is_ipv6() {
            // Like Redis: an IPv6 socket serves IPv6 only, so "* -::*" can bind both.
            let _ = set_v6only(&socket);
        }
        match socket.bind(sock).and_then(|_| socket.listen(511)) {
            Ok(l) => listeners.push(l),
            Err(e) if optional => warn!("Could not create server TCP listening socket {addr}:{port}: {e} (skipped)"),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("Could not create server TCP listening socket {addr}:{port}: {e}"),
                ))
            }
        }
    }
    Ok(listeners)
}

fn set_v6only(socket: &tokio::net::TcpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid fd and a correctly sized option value.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
