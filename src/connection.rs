//! One client connection: read, decode every complete command in the buffer, run them, and send
//! all their replies in one write. Knows the protocol, not the commands.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::client::Client;
use crate::commands;
use crate::protocol::{Decoder, Limits, Reply};
use crate::server::Server;

/// Read sizes: start small (most requests are small), double while reads fill the buffer.
const MIN_READ: usize = 4 * 1024;
const MAX_READ: usize = 64 * 1024;
/// Flush replies mid-batch past this size, so one huge pipeline does not build a huge buffer.
const FLUSH_AT: usize = 64 * 1024;

const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

pub async fn handle(server: Arc<Server>, mut socket: TcpStream, addr: SocketAddr, laddr: SocketAddr) {
    server.stats.connections_received.incr();
    if server.clients.len() as u64 >= server.config.maxclients.load(Relaxed) {
        server.stats.rejected_connections.incr();
        let _ = socket.write_all(b"-ERR max number of clients reached\r\n").await;
        return;
    }
    let password = server.config.requirepass();
    if server.config.protected_mode.load(Relaxed) && password.is_none() && !addr.ip().is_loopback() {
        server.stats.rejected_connections.incr();
        let _ = socket.write_all(PROTECTED_MODE_DENIED).await;
        return;
    }
    let _ = socket.set_nodelay(true);
    let info = server.clients.register(addr, laddr, server.keyspace.clock.now_ms());
    let mut client = Client::new(info.clone(), password.is_none());
    let _ = serve(&server, &mut socket, &mut client).await;
    commands::disconnect(&server, &mut client);
    server.clients.unregister(info.id);
}

async fn serve(server: &Server, socket: &mut TcpStream, client: &mut Client) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    let mut out = Reply::new(false);
    let mut args = Vec::new();
    let mut shutdown = server.shutdown_signal();
    let info = client.info.clone();
    let mut decoder = Decoder::new(Limits::default());
    let mut read_size = MIN_READ;
    loop {
        // Wait holding at most small buffers: an idle connection costs its task and 4 KB, as an
        // idle Redis client costs little once its buffers shrink; big ones go back at once.
        if buf.is_empty() && buf.capacity() > MIN_READ {
            buf = BytesMut::new();
        }
        if out.buf.capacity() > MIN_READ {
            out.buf = Vec::new();
        }
        let timeout = server.config.timeout_secs.load(Relaxed);
        let idle = async {
            if timeout == 0 {
                std::future::pending::<()>().await
            } else {
                tokio::time::sleep(Duration::from_secs(timeout)).await
            }
        };
        tokio::select! {
            r = socket.readable() => r?,
            _ = info.kill.notified() => return Ok(()),
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
            _ = idle => return Ok(()),
        }
        // Grow the read size while reads fill it (big pipelines), shrink it back when they don't.
        buf.reserve(read_size);
        let spare = buf.capacity() - buf.len();
        let n = match socket.try_read_buf(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        if n == spare {
            read_size = (read_size * 2).min(MAX_READ);
        } else if n < read_size / 4 {
            read_size = (read_size / 2).max(MIN_READ);
        }
        server.stats.net_input_bytes.add(n as u64);
        decoder.limits.max_bulk_len = server.config.proto_max_bulk_len.load(Relaxed) as usize;
        loop {
            decoder.limits.unauthenticated = !client.authenticated;
            match decoder.decode(&mut buf, &mut args) {
                Ok(true) => {
                    if args.is_empty() {
                        continue;
                    }
                    commands::execute(server, client, &mut out, &args);
                    if client.close_after_reply || info.killed.load(Relaxed) {
                        break;
                    }
                    if out.buf.len() >= FLUSH_AT {
                        write_out(server, socket, &mut out).await?;
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    let msg = format!("ERR Protocol error: {}", e.0);
                    out.error(msg.as_bytes());
                    server.stats.count_error(msg.as_bytes());
                    client.close_after_reply = true;
                    break;
                }
            }
        }
        // Release the read buffer's shared frames before the next read reuses it.
        args.clear();
        info.qbuf.store(buf.len(), Relaxed);
        write_out(server, socket, &mut out).await?;
        if client.close_after_reply || info.killed.load(Relaxed) {
            return Ok(());
        }
        if server.is_shutting_down() {
            return Ok(());
        }
    }
}

async fn write_out(server: &Server, socket: &mut TcpStream, out: &mut Reply) -> std::io::Result<()> {
    if out.buf.is_empty() {
        return Ok(());
    }
    socket.write_all(&out.buf).await?;
    server.stats.net_output_bytes.add(out.buf.len() as u64);
    out.buf.clear();
    Ok(())
}
