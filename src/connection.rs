//! One client connection: read, decode every complete command in the buffer, run them, and send
//! all their replies in one write. Knows the protocol, not the commands.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tracing::warn;

use crate::client::{Client, Peer};
use crate::commands;
use crate::keyspace::PREFETCH_BATCH;
use crate::protocol::decode::peek_keys;
use crate::protocol::{Decoder, Limits, Reply};
use crate::server::Server;

/// Read sizes: start small (most requests are small), double while reads fill the buffer.
const MIN_READ: usize = 4 * 1024;
const MAX_READ: usize = 64 * 1024;
/// Flush replies mid-batch past this size, so one huge pipeline does not build a huge buffer.
const FLUSH_AT: usize = 64 * 1024;

const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// The stream a connection runs on, TCP or the Unix socket. Both tokio types offer readiness and
/// non-blocking reads and writes under the same names, which is all the loop needs.
pub trait Socket: AsyncRead + AsyncWrite + Unpin + Send + Sync + Sized + 'static {
    /// The std form, in which an accepted socket moves to another event loop's reactor.
    type Std: Send + 'static;
    fn into_std(self) -> io::Result<Self::Std>;
    fn from_std(std: Self::Std) -> io::Result<Self>;
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize>;
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
}

macro_rules! socket_for {
    ($t:ty, $std:ty) => {
        impl Socket for $t {
            type Std = $std;
            fn into_std(self) -> io::Result<$std> {
                <$t>::into_std(self)
            }
            fn from_std(std: $std) -> io::Result<Self> {
                <$t>::from_std(std)
            }
            fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$t>::poll_read_ready(self, cx)
            }
            fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$t>::poll_write_ready(self, cx)
            }
            fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
                <$t>::try_read_buf(self, buf)
            }
            fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                <$t>::try_write(self, buf)
            }
        }
    };
}
socket_for!(TcpStream, std::net::TcpStream);
socket_for!(UnixStream, std::os::unix::net::UnixStream);

/// Redis's protected mode: refuse remote clients while the default user needs no password.
fn protected_mode_refuses(config: &crate::Config, addr: &Peer) -> bool {
    config.protected_mode.load(Relaxed) && config.user.read().nopass && !addr.is_local()
}

pub async fn handle<S: Socket>(server: Arc<Server>, mut socket: S, addr: Peer, laddr: Peer) {
    server.stats.connections_received.incr();
    if server.clients.len() as u64 >= server.config.maxclients.load(Relaxed) {
        server.stats.rejected_connections.incr();
        let _ = socket.write_all(b"-ERR max number of clients reached\r\n").await;
        return;
    }
    if protected_mode_refuses(&server.config, &addr) {
        server.stats.rejected_connections.incr();
        let _ = socket.write_all(PROTECTED_MODE_DENIED).await;
        return;
    }
    let info = server.clients.register(addr, laddr, server.keyspace.clock.now_ms());
    let mut client = Client::new(info.clone(), server.config.open_access());
    let _ = serve(&server, &mut socket, &mut client).await;
    commands::disconnect(&server, &mut client);
    server.clients.unregister(info.id);
}

/// How much of its replies a client may leave unread, from client-output-buffer-limit normal.
struct OutputLimits {
    hard: usize,
    soft: usize,
    soft_secs: u64,
}

impl OutputLimits {
    fn load(server: &Server) -> Self {
        let [hard, soft, secs] = &server.config.output_limit_normal;
        OutputLimits {
            hard: hard.load(Relaxed) as usize,
            soft: soft.load(Relaxed) as usize,
            soft_secs: secs.load(Relaxed),
        }
    }

    /// Unsent output past which the connection stops running commands until the client reads.
    /// With a limit set, output may grow to it (and the client is closed there, as in Redis);
    /// without one, a small window: a client that never reads stalls instead of growing a buffer.
    fn window(&self) -> usize {
        match (self.hard, self.soft) {
            (0, 0) => FLUSH_AT,
            (0, soft) => soft + 1,
            (hard, _) => hard + 1,
        }
    }
}

/// One connection's output: the replies not yet written, written without blocking the loop.
struct Output {
    reply: Reply,
    /// Bytes at the front of `reply.buf` already written.
    sent: usize,
    /// When unsent output first went over the soft limit.
    over_soft_since: Option<Instant>,
}

impl Output {
    fn pending(&self) -> usize {
        self.reply.buf.len() - self.sent
    }

    /// Writes what the socket takes now. Err only on a broken connection.
    fn try_flush(&mut self, server: &Server, socket: &impl Socket) -> std::io::Result<()> {
        while self.pending() > 0 {
            match socket.try_write(&self.reply.buf[self.sent..]) {
                Ok(n) => {
                    self.sent += n;
                    server.stats.net_output_bytes.add(n as u64);
                    server.stats.writes_processed.incr();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.pending() == 0 {
            self.reply.buf.clear();
            self.sent = 0;
        }
        Ok(())
    }

    /// Whether the unsent output breaks the limits: over the hard limit, or over the soft one
    /// for longer than its seconds.
    fn over_limit(&mut self, limits: &OutputLimits) -> bool {
        let pending = self.pending();
        if limits.hard > 0 && pending >= limits.hard {
            return true;
        }
        if limits.soft > 0 && pending >= limits.soft {
            let now = Instant::now();
            let since = *self.over_soft_since.get_or_insert(now);
            return now.duration_since(since).as_secs() > limits.soft_secs;
        }
        self.over_soft_since = None;
        false
    }
}

/// What ended a connection's wait.
#[derive(Default)]
struct Wake {
    readable: bool,
    writable: bool,
    mail: bool,
    /// Killed, or idle past `timeout`.
    closing: bool,
}

/// Sets a timer slot to fire at `at`, or empties it.
#[inline(always)]
fn arm(mut slot: Pin<&mut Option<tokio::time::Sleep>>, at: Option<Instant>) {
    match (at, slot.as_mut().as_pin_mut()) {
        (None, None) => {}
        (None, Some(_)) => slot.set(None),
        (Some(at), Some(timer)) => timer.reset(at.into()),
        (Some(at), None) => slot.set(Some(tokio::time::sleep_until(at.into()))),
    }
}

async fn serve(server: &Server, socket: &mut impl Socket, client: &mut Client) -> std::io::Result<()> {
    let mut input = Input {
        buf: BytesMut::new(),
        decoder: Decoder::new(Limits::default()),
        args: Vec::new(),
    };
    let mut out = Output {
        reply: Reply::new(false),
        sent: 0,
        over_soft_since: None,
    };
    let mut shutdown = server.shutdown_signal();
    let info = client.info.clone();
    // The futures for a kill and for shutdown live as long as the connection: made and dropped
    // on every wait, each cost a lock to register and one to unregister per request.
    let kill = info.kill.notified();
    tokio::pin!(kill);
    let mut shutdown_rx = server.shutdown_signal();
    let stop = async move {
        let _ = shutdown_rx.wait_for(|s| *s).await;
    };
    tokio::pin!(stop);
    let mut stop_done = false;
    let mut mail = std::pin::pin!(None::<tokio::sync::futures::Notified<'_>>);
    let mut idle = std::pin::pin!(None::<tokio::time::Sleep>);
    let mut soft = std::pin::pin!(None::<tokio::time::Sleep>);
    let mut read_size = MIN_READ;
    let mut postponed: Option<Postponed> = None;
    // Complete commands left in `input.buf` while the client was not reading its replies.
    let mut stalled = false;
    loop {
        let limits = OutputLimits::load(server);
        let backed_up = out.pending() >= limits.window();
        if let Some(cmd) = postponed.take() {
            if !wait_pause(server, client, &cmd, kill.as_mut(), &mut shutdown).await {
                return Ok(());
            }
            commands::execute(server, client, &mut out.reply, &cmd);
            out.try_flush(server, socket)?;
            // The commands behind it run next.
            stalled = true;
        } else if client.waiting.is_some() {
            if !wait_unblocked(server, socket, client, &mut input.buf, &mut out, kill.as_mut(), &mut shutdown).await? {
                return Ok(());
            }
            // Commands that arrived while it waited run now.
            stalled = true;
        } else if stalled && !backed_up {
            stalled = run_commands(server, socket, client, &mut input, &mut out, &limits, &mut postponed)?;
        } else {
            // Wait holding at most small buffers: an idle connection costs its task and 4 KB, as an
            // idle Redis client costs little once its buffers shrink; big ones go back at once.
            if out.pending() == 0 {
                if input.buf.is_empty() && input.buf.capacity() > MIN_READ {
                    input.buf = BytesMut::new();
                }
                if out.reply.buf.capacity() > MIN_READ {
                    out.reply.buf = Vec::new();
                }
            }
            let timeout = server.config.timeout_secs.load(Relaxed);
            // Timers only while they can fire: most connections have neither.
            let idle_at = (timeout > 0).then(|| Instant::now() + Duration::from_secs(timeout));
            arm(idle.as_mut(), idle_at);
            // While output waits over the soft limit, wake up to close the client when its time is up.
            arm(
                soft.as_mut(),
                out.over_soft_since.map(|since| since + Duration::from_secs(limits.soft_secs + 1)),
            );
            // Only a subscriber, monitor or client-side-caching client gets mail here (a blocked client waits in
            // wait_unblocked): others never register with the Notify, which costs a lock per wait.
            if !backed_up && (client.subscriptions.active() || info.monitor.load(Relaxed) || info.tracking.gets_mail()) {
                if mail.is_none() {
                    mail.set(Some(info.mailbox.wake.notified()));
                }
            } else if mail.is_some() {
                mail.set(None);
            }
            let want_read = !backed_up && !stalled;
            let want_write = out.pending() > 0;
            // Polled by hand rather than by select!: readiness polled in place costs no future
            // per wait, and the input is looked at first, the rest only when there is none.
            let wake = std::future::poll_fn(|cx| -> Poll<io::Result<Wake>> {
                let mut wake = Wake::default();
                if want_read {
                    if let Poll::Ready(r) = socket.poll_read_ready(cx) {
                        r?;
                        wake.readable = true;
                    }
                }
                if want_write {
                    if let Poll::Ready(r) = socket.poll_write_ready(cx) {
                        r?;
                        wake.writable = true;
                    }
                }
                if let Some(m) = mail.as_mut().as_pin_mut() {
                    wake.mail = m.poll(cx).is_ready();
                }
                if wake.readable || wake.writable || wake.mail {
                    return Poll::Ready(Ok(wake));
                }
                if kill.as_mut().poll(cx).is_ready() {
                    wake.closing = true;
                    return Poll::Ready(Ok(wake));
                }
                if !stop_done && stop.as_mut().poll(cx).is_ready() {
                    stop_done = true;
                    return Poll::Ready(Ok(wake));
                }
                let idle_fired = idle.as_mut().as_pin_mut().is_some_and(|t| t.poll(cx).is_ready());
                if idle_fired {
                    wake.closing = true;
                    return Poll::Ready(Ok(wake));
                }
                let soft_fired = soft.as_mut().as_pin_mut().is_some_and(|t| t.poll(cx).is_ready());
                if soft_fired {
                    soft.set(None);
                    return Poll::Ready(Ok(wake));
                }
                Poll::Pending
            })
            .await?;
            if wake.closing {
                return Ok(());
            }
            if wake.mail {
                mail.set(None);
                info.mailbox.drain_into(&mut out.reply.buf);
            }
            let (readable, writable) = (wake.readable, wake.writable || wake.mail);
            if writable {
                out.try_flush(server, socket)?;
            }
            if readable {
                // Grow the read size while reads fill it (big pipelines), shrink it back when they don't.
                input.buf.reserve(read_size);
                let spare = input.buf.capacity() - input.buf.len();
                let n = match socket.try_read_buf(&mut input.buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                    Err(e) => return Err(e),
                };
                if n == spare {
                    read_size = (read_size * 2).min(MAX_READ);
                } else if n < read_size / 4 {
                    read_size = (read_size / 2).max(MIN_READ);
                }
                server.stats.net_input_bytes.add(n as u64);
                if n > 0 {
                    stalled = run_commands(server, socket, client, &mut input, &mut out, &limits, &mut postponed)?;
                    if input.buf.len() as u64 > server.config.client_query_buffer_limit.load(Relaxed) {
                        warn!("Closing client that reached max query buffer length (qbuf={})", input.buf.len());
                        return Ok(());
                    }
                }
            }
        }
        info.qbuf.store(input.buf.len(), Relaxed);
        info.omem.store(out.pending(), Relaxed);
        if out.over_limit(&limits) {
            warn!(
                "Client id={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                info.id
            );
            return Ok(());
        }
        if info.killed.load(Relaxed) && !client.close_after_reply {
            // Killed by another client or for its output limit: closed at once with its unsent
            // replies dropped, as Redis frees such a client. Flushing would wait out `finish`'s
            // timeout on a client that does not read.
            return Ok(());
        }
        if client.close_after_reply || server.is_shutting_down() {
            return finish(server, socket, &mut out).await;
        }
    }
}

/// A call held by CLIENT PAUSE.
type Postponed = Vec<bytes::Bytes>;

/// Waits out a CLIENT PAUSE for `cmd`: until the pause ends or is lifted (a longer pause set
/// meanwhile is waited out too). False when the connection should close instead.
async fn wait_pause(
    server: &Server,
    client: &Client,
    cmd: &[bytes::Bytes],
    mut kill: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    loop {
        // Registered before the check, so an UNPAUSE in between is not missed.
        let lifted = server.pause.lifted.notified();
        tokio::pin!(lifted);
        lifted.as_mut().enable();
        let Some(until) = commands::paused_until(server, client, cmd) else {
            return true;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = lifted => {}
            _ = kill.as_mut() => return false,
            _ = shutdown.wait_for(|s| *s) => return false,
        }
    }
}

/// A client blocked in BLPOP and friends: waits for its answer (served by another client's push),
/// its timeout, or its end. Input that arrives meanwhile is kept for later, not run. Returns false
/// when the connection should close.
async fn wait_unblocked(
    server: &Server,
    socket: &mut impl Socket,
    client: &mut Client,
    buf: &mut BytesMut,
    out: &mut Output,
    mut kill: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<bool> {
    use commands::blocking::{end_wait, take_answer, write_timeout_reply};
    let Some((waiter, deadline)) = client.waiting.clone() else {
        return Ok(true);
    };
    let info = client.info.clone();
    let left = deadline.map(|d| (d - server.keyspace.clock.now_ms()).max(0) as u64);
    let timer = async {
        match left {
            Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(timer);
    let answer = loop {
        tokio::select! {
            _ = info.mailbox.wake.notified() => {
                info.mailbox.drain_into(&mut out.reply.buf);
                if let Some(bytes) = take_answer(&waiter) {
                    break Some(bytes);
                }
                out.try_flush(server, socket)?;
            }
            _ = &mut timer => {
                let mut reply = Reply::new_empty(waiter.resp3);
                write_timeout_reply(&mut reply, commands::blocking::TimeoutReply::NullArray);
                break end_wait(server, &waiter, reply.buf);
            }
            r = std::future::poll_fn(|cx| socket.poll_read_ready(cx)) => {
                r?;
                match socket.try_read_buf(buf) {
                    Ok(0) => break None,
                    Ok(n) => server.stats.net_input_bytes.add(n as u64),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break None,
                }
                if buf.len() as u64 > server.config.client_query_buffer_limit.load(Relaxed) {
                    break None;
                }
            }
            _ = kill.as_mut() => break None,
            _ = shutdown.wait_for(|s| *s) => break None,
        }
    };
    client.waiting = None;
    *info.blocked.lock() = None;
    let Some(bytes) = answer else {
        end_wait(server, &waiter, Vec::new());
        return Ok(false);
    };
    out.reply.buf.extend_from_slice(&bytes);
    out.try_flush(server, socket)?;
    Ok(true)
}

/// What a client sent and has not run yet: the bytes read, the decoder's place in a frame that
/// arrived in pieces, and the arguments being decoded (reused, so decoding allocates no Vec).
struct Input {
    buf: BytesMut,
    decoder: Decoder,
    args: Vec<bytes::Bytes>,
}

/// Decodes and runs every complete command in `input.buf`, writing replies as they pile up; stops early
/// (returning true) when the client is not reading and the output reached `limits.window()`.
fn run_commands(
    server: &Server,
    socket: &impl Socket,
    client: &mut Client,
    input: &mut Input,
    out: &mut Output,
    limits: &OutputLimits,
    postponed: &mut Option<Postponed>,
) -> std::io::Result<bool> {
    let Input { buf, decoder, args } = input;
    decoder.limits.max_bulk_len = server.config.proto_max_bulk_len.load(Relaxed) as usize;
    let mut stalled = false;
    let mut ran = 0usize;
    loop {
        decoder.limits.unauthenticated = !client.authenticated;
        match decoder.decode(buf, args) {
            Ok(true) => {
                if args.is_empty() {
                    continue;
                }
                // The commands behind this one, 16 at a time; a lone command (-P 1) pays one test.
                if ran.is_multiple_of(PREFETCH_BATCH) && !buf.is_empty() {
                    prefetch_keys(server, client, buf);
                }
                ran += 1;
                // Messages published before this command ran go out before its reply, as Redis
                // writes them into the subscriber's output at once (a PING after them answers
                // after them).
                if client.subscriptions.active() || client.info.monitor.load(Relaxed) {
                    client.info.mailbox.drain_into(&mut out.reply.buf);
                }
                // CLIENT PAUSE: the call waits, and the ones behind it stay in the buffer.
                if commands::paused_until(server, client, args).is_some() {
                    *postponed = Some(std::mem::take(args));
                    stalled = true;
                    break;
                }
                commands::execute(server, client, &mut out.reply, args);
                if client.close_after_reply || client.info.killed.load(Relaxed) || client.waiting.is_some() {
                    break;
                }
                if out.pending() >= FLUSH_AT {
                    out.try_flush(server, socket)?;
                    if out.pending() >= limits.window() || (limits.hard > 0 && out.pending() >= limits.hard) {
                        stalled = true;
                        break;
                    }
                }
            }
            Ok(false) => break,
            Err(e) => {
                let msg = format!("ERR Protocol error: {}", e.0);
                out.reply.error(msg.as_bytes());
                server.stats.count_error(msg.as_bytes());
                client.close_after_reply = true;
                break;
            }
        }
    }
    // Release the read buffer's shared frames before the next read reuses it.
    args.clear();
    out.try_flush(server, socket)?;
    Ok(stalled)
}

/// The keys of the next commands of a pipelined batch, still in `buf`, are prefetched together
/// (see [`Keyspace::prefetch`](crate::keyspace::Keyspace::prefetch)) while the one before them runs.
fn prefetch_keys(server: &Server, client: &Client, buf: &[u8]) {
    let mut spans = [(0, 0); PREFETCH_BATCH];
    let n = peek_keys(buf, &mut spans);
    if n == 0 {
        return;
    }
    let mut keys: [&[u8]; PREFETCH_BATCH] = [&[]; PREFETCH_BATCH];
    for (key, &(start, end)) in keys.iter_mut().zip(&spans[..n]) {
        *key = &buf[start..end];
    }
    server.keyspace.prefetch(client.db, &keys[..n]);
}

/// Sends what is left of the replies (bounded in time: a client that does not read is not waited
/// for), then closes politely: FIN first, and the client's unread input is read off for a moment,
/// because closing a socket that still holds input makes the kernel reset the connection, and a
/// reset can discard replies the client has not read yet.
async fn finish(server: &Server, socket: &mut impl Socket, out: &mut Output) -> std::io::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    if out.pending() > 0 {
        let rest = &out.reply.buf[out.sent..];
        if let Ok(Ok(())) = tokio::time::timeout_at(deadline, socket.write_all(rest)).await {
            server.stats.net_output_bytes.add(rest.len() as u64);
        }
    }
    let _ = tokio::time::timeout_at(deadline, socket.shutdown()).await;
    let drain = async {
        // On the heap: an array here would sit in every connection's task for its whole life.
        let mut scratch = vec![0u8; 16 * 1024];
        let mut left = 4usize << 20;
        while left > 0 {
            match socket.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(200), drain).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decided on the peer address alone (no remote network in tests): remote clients are refused
    /// until a password is set or protected-mode is off; loopback and Unix socket ones never.
    #[test]
    fn protected_mode_refuses_remote_clients_without_a_password() {
        let config = crate::Config::default();
        let tcp = |a: &str| Peer::Tcp(a.parse().unwrap());
        let (remote, local, local6) = (tcp("10.1.2.3:5000"), tcp("127.0.0.1:5000"), tcp("[::1]:5000"));
        let unix = Peer::Unix("/tmp/respite.sock".into());
        assert!(protected_mode_refuses(&config, &remote));
        assert!(!protected_mode_refuses(&config, &local) && !protected_mode_refuses(&config, &local6));
        assert!(!protected_mode_refuses(&config, &unix), "the Unix socket is local, as in Redis");
        let set = |k: &str, v: &str| config.set_many(&[(k.to_string(), v.to_string())]).unwrap();
        set("requirepass", "pw");
        assert!(!protected_mode_refuses(&config, &remote));
        set("requirepass", "");
        set("protected-mode", "no");
        assert!(!protected_mode_refuses(&config, &remote));
    }

    /// Every connection's task holds this future for its whole life: idle connections cost what
    /// it weighs (a 16 KB array that slipped into it once tripled RSS per idle connection).
    #[tokio::test]
    async fn a_connection_task_stays_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (socket, peer) = listener.accept().await.unwrap();
        let server = Server::new(crate::Config::default(), addr.port());
        let task = handle(server, socket, peer.into(), addr.into());
        let size = std::mem::size_of_val(&task);
        assert!(size < 4096, "connection future is {size} bytes");
    }
}
