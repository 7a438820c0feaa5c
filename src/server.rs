//! The server: shared state, the accept loop (maxclients, protected mode), background cycles
//! (active expiry, stats sampling) and graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::client::{Clients, Peer};
use crate::commands;
use crate::config::Config;
use crate::connection::Socket;
use crate::keyspace::expire::ExpireCursor;
use crate::keyspace::Keyspace;
use crate::stats::{CommandStats, Stats};

pub struct Server {
    pub config: Config,
    pub keyspace: Keyspace,
    pub stats: Stats,
    pub command_stats: CommandStats,
    pub clients: Arc<Clients>,
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
    /// Lua scripts by SHA-1 (EVAL, SCRIPT LOAD).
    pub scripts: crate::commands::scripting::ScriptCache,
    /// Clients in MONITOR mode.
    pub monitors: crate::monitor::Monitors,
    pub slowlog: crate::slowlog::SlowLog,
    pub pause: crate::pause::Pause,
    /// CLIENT TRACKING: who tracks which keys, and the invalidations.
    pub tracking: Arc<crate::tracking::Tracking>,
}

impl Server {
    pub fn new(config: Config, port: u16) -> Arc<Server> {
        let keyspace = Keyspace::new(config.databases);
        let run_id: String = (0..40).map(|_| fastrand::alphanumeric().to_ascii_lowercase()).collect();
        let (shutdown, _) = watch::channel(false);
        let started_unix = keyspace.clock.now_ms() / 1000;
        let clients = Arc::new(Clients::default());
        let pubsub = Arc::new(crate::pubsub::PubSub::new());
        let tracking = Arc::new(crate::tracking::Tracking::new(
            clients.clone(),
            keyspace.invalidation.on.clone(),
            pubsub.clone(),
        ));
        let server = Arc::new(Server {
            config,
            keyspace,
            stats: Stats::default(),
            command_stats: CommandStats::new(commands::stat_names().len()),
            clients,
            pubsub,
            started: Instant::now(),
            started_unix,
            run_id,
            node_id: (0..40).map(|_| fastrand::digit(16)).collect(),
            port,
            shutdown,
            active_expire: std::sync::atomic::AtomicBool::new(true),
            scripts: Default::default(),
            monitors: Default::default(),
            slowlog: Default::default(),
            pause: Default::default(),
            tracking,
            peak_memory: std::sync::atomic::AtomicU64::new(0),
            startup_memory: crate::keyspace::memory::used_memory(),
        });
        server.keyspace.notifier.set_sink(server.pubsub.clone());
        server.keyspace.invalidation.set_sink(server.tracking.clone());
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
        let max_keys = self.config.get("tracking-table-max-keys").and_then(|v| v.parse().ok());
        self.tracking
            .max_keys
            .store(max_keys.unwrap_or(1_000_000), std::sync::atomic::Ordering::Relaxed);
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

/// Where clients connect: a TCP address (`bind`, `port`) or the Unix socket (`unixsocket`).
pub enum Listener {
    Tcp(TcpListener),
    /// The socket file is removed when the server stops, as Redis does.
    Unix(UnixListener, PathBuf),
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Listener {
        Listener::Tcp(l)
    }
}

impl Listener {
    /// The TCP port, if this is a TCP listener.
    pub fn port(&self) -> Option<u16> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(..) => None,
        }
    }
}

/// Serves `listeners` until `shutdown` resolves or a client sends SHUTDOWN.
pub async fn serve(server: Arc<Server>, listeners: Vec<Listener>, shutdown: impl std::future::Future<Output = ()>) -> io::Result<()> {
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
    listeners: Vec<Listener>,
    shutdown: impl std::future::Future<Output = ()>,
    workers: Workers,
) -> io::Result<()> {
    let cron = tokio::spawn(cron(server.clone()));
    let mut accepts = Vec::new();
    let mut socket_files = Vec::new();
    for listener in listeners {
        accepts.push(match listener {
            Listener::Tcp(l) => tokio::spawn(accept_tcp(server.clone(), l, workers.clone())),
            Listener::Unix(l, path) => {
                socket_files.push(path.clone());
                tokio::spawn(accept_unix(server.clone(), l, path, workers.clone()))
            }
        });
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
    for path in socket_files {
        info!("Removing the unix socket file.");
        if let Err(e) = std::fs::remove_file(&path) {
            warn!("Error removing the unix socket file: {e}");
        }
    }
    info!("respite is now ready to exit, bye bye...");
    Ok(())
}

async fn accept_tcp(server: Arc<Server>, listener: TcpListener, workers: Workers) {
    let mut next = 0usize;
    loop {
        let (socket, addr) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let laddr = socket.local_addr().unwrap_or(addr);
        dispatch(&server, &workers, &mut next, socket, addr.into(), laddr.into());
    }
}

async fn accept_unix(server: Arc<Server>, listener: UnixListener, path: PathBuf, workers: Workers) {
    // Redis shows both ends of a Unix socket client as `path:0`.
    let peer = Peer::Unix(path.to_string_lossy().into());
    let mut next = 0usize;
    loop {
        let socket = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        dispatch(&server, &workers, &mut next, socket, peer.clone(), peer.clone());
    }
}

/// Runs an accepted connection here or on the next event loop, moving the socket to that loop's
/// reactor through its std form.
fn dispatch<S: Socket>(server: &Arc<Server>, workers: &Workers, next: &mut usize, socket: S, addr: Peer, laddr: Peer) {
    match workers {
        Workers::Current => {
            tokio::spawn(crate::connection::handle(server.clone(), socket, addr, laddr));
        }
        Workers::EventLoops(handles) => {
            let Ok(std_socket) = socket.into_std() else { return };
            let server = server.clone();
            handles[*next % handles.len()].spawn(async move {
                if let Ok(socket) = S::from_std(std_socket) {
                    crate::connection::handle(server, socket, addr, laddr).await;
                }
            });
            *next = next.wrapping_add(1);
        }
    }
}

/// EMFILE and friends: back off instead of spinning.
async fn accept_failed(e: io::Error) {
    warn!("accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(10)).await;
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

/// Binds the configured addresses (`bind`, `port`; a '-' prefixed address may be unavailable;
/// port 0 means no TCP, as in Redis) and the Unix socket (`unixsocket`, `unixsocketperm`).
pub async fn bind(config: &Config) -> io::Result<Vec<Listener>> {
    let mut listeners: Vec<Listener> = bind_tcp(config).await?.into_iter().map(Listener::from).collect();
    if let Some(path) = config.get("unixsocket").filter(|p| !p.is_empty()) {
        listeners.push(bind_unix(config, PathBuf::from(path))?);
    }
    if listeners.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "Configured to not listen anywhere, exiting.",
        ));
    }
    Ok(listeners)
}

/// Redis's way: a file left at the path (a socket of a server that died) is removed first; the
/// permissions are set when `unixsocketperm` is not 0.
fn bind_unix(config: &Config, path: PathBuf) -> io::Result<Listener> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |e: io::Error| io::Error::new(e.kind(), format!("Failed opening Unix socket: {e}"));
    let perm_text = config.get("unixsocketperm").unwrap_or_default();
    let perm = u32::from_str_radix(perm_text.trim(), 8).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("Invalid unixsocketperm '{perm_text}': an octal mode such as 700"),
        )
    })?;
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(failed)?;
    if perm != 0 {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(perm)).map_err(failed)?;
    }
    Ok(Listener::Unix(listener, path))
}

async fn bind_tcp(config: &Config) -> io::Result<Vec<TcpListener>> {
    let port = config.port();
    let mut listeners = Vec::new();
    if port == 0 {
        return Ok(listeners);
    }
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
