//! INFO in Redis's exact text format: `# Section` headers, `field:value` lines, CRLF, sections
//! separated by an empty line.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{CmdResult, Ctx};
use crate::keyspace::memory::{rss_bytes, used_memory};
use crate::server::Server;

const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];
const ALL: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "cluster",
    "keyspace",
];

pub fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut sections: Vec<String> = Vec::new();
    if args.len() == 1 {
        sections.extend(DEFAULT.iter().map(|s| s.to_string()));
    }
    for a in &args[1..] {
        let s = String::from_utf8_lossy(a).to_ascii_lowercase();
        match s.as_str() {
            "default" => sections.extend(DEFAULT.iter().map(|s| s.to_string())),
            "all" | "everything" => sections.extend(ALL.iter().map(|s| s.to_string())),
            _ => sections.push(s),
        }
    }
    let text = render(ctx.server, &sections, ctx.now);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// Redis's bytesToHuman.
pub fn human(n: u64) -> String {
    let n = n as f64;
    let k = 1024.0;
    if n < k {
        format!("{}B", n as u64)
    } else if n < k * k {
        format!("{:.2}K", n / k)
    } else if n < k * k * k {
        format!("{:.2}M", n / (k * k))
    } else if n < k * k * k * k {
        format!("{:.2}G", n / (k * k * k))
    } else {
        format!("{:.2}T", n / (k * k * k * k))
    }
}

fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_stime), t(ru.ru_utime))
}

pub fn render(server: &Server, sections: &[String], now: i64) -> String {
    let mut out = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for section in sections {
        if seen.contains(&section.as_str()) {
            continue;
        }
        seen.push(section);
        let mut s = String::new();
        if write_section(server, section, now, &mut s).is_none() {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str(&s);
    }
    out
}

macro_rules! line {
    ($s:expr, $($arg:tt)*) => {{
        let _ = write!($s, $($arg)*);
        $s.push_str("\r\n");
    }};
}

fn write_section(server: &Server, section: &str, now: i64, s: &mut String) -> Option<()> {
    let ks = &server.keyspace;
    let cfg = &server.config;
    match section {
        "server" => {
            let uptime = server.started.elapsed().as_secs();
            line!(s, "# Server");
            line!(s, "redis_version:{}", crate::REDIS_VERSION);
            line!(s, "redis_git_sha1:00000000");
            line!(s, "redis_git_dirty:0");
            line!(s, "redis_build_id:0");
            line!(s, "redis_mode:standalone");
            line!(s, "respite_version:{}", env!("CARGO_PKG_VERSION"));
            line!(s, "os:{} {}", std::env::consts::OS, std::env::consts::ARCH);
            line!(s, "arch_bits:64");
            line!(s, "monotonic_clock:POSIX clock_gettime");
            line!(s, "multiplexing_api:epoll");
            line!(s, "process_id:{}", std::process::id());
            line!(s, "process_supervised:no");
            line!(s, "run_id:{}", server.run_id);
            line!(s, "tcp_port:{}", server.port);
            line!(s, "server_time_usec:{}", now * 1000);
            line!(s, "uptime_in_seconds:{uptime}");
            line!(s, "uptime_in_days:{}", uptime / 86400);
            line!(s, "hz:{}", cfg.hz.load(Relaxed));
            line!(s, "configured_hz:{}", cfg.hz.load(Relaxed));
            line!(s, "lru_clock:{}", (now / 1000) & ((1 << 24) - 1));
            line!(
                s,
                "executable:{}",
                std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default()
            );
            line!(
                s,
                "config_file:{}",
                cfg.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
            );
            line!(s, "io_threads_active:0");
        }
        "clients" => {
            line!(s, "# Clients");
            line!(s, "connected_clients:{}", server.clients.len());
            line!(s, "cluster_connections:0");
            line!(s, "maxclients:{}", cfg.maxclients.load(Relaxed));
            line!(s, "client_recent_max_input_buffer:0");
            line!(s, "client_recent_max_output_buffer:0");
            line!(s, "blocked_clients:{}", server.keyspace.blocking.waiting());
            line!(s, "tracking_clients:{}", server.tracking.counts().0);
            line!(s, "clients_in_timeout_table:0");
        }
        "memory" => {
            let used = used_memory() as u64;
            let rss = rss_bytes() as u64;
            let peak = server.note_peak(used);
            let maxmemory = cfg.maxmemory.load(Relaxed);
            let startup = server.startup_memory as u64;
            line!(s, "# Memory");
            line!(s, "used_memory:{used}");
            line!(s, "used_memory_human:{}", human(used));
            line!(s, "used_memory_rss:{rss}");
            line!(s, "used_memory_rss_human:{}", human(rss));
            line!(s, "used_memory_peak:{peak}");
            line!(s, "used_memory_peak_human:{}", human(peak));
            line!(s, "used_memory_peak_perc:{:.2}%", used as f64 * 100.0 / peak.max(1) as f64);
            line!(s, "used_memory_overhead:{startup}");
            line!(s, "used_memory_startup:{startup}");
            line!(s, "used_memory_dataset:{}", used.saturating_sub(startup));
            line!(
                s,
                "used_memory_dataset_perc:{:.2}%",
                used.saturating_sub(startup) as f64 * 100.0 / used.max(1) as f64
            );
            line!(s, "total_system_memory:{}", total_system_memory());
            line!(s, "total_system_memory_human:{}", human(total_system_memory()));
            let scripts = &server.scripts;
            let lua = scripts.lua_memory.load(std::sync::atomic::Ordering::Relaxed);
            let script_bytes = scripts.bytes() as u64;
            line!(s, "used_memory_lua:{lua}");
            line!(s, "used_memory_lua_human:{}", human(lua));
            line!(s, "used_memory_scripts_eval:{script_bytes}");
            line!(s, "number_of_cached_scripts:{}", scripts.len());
            line!(s, "used_memory_scripts:{script_bytes}");
            line!(s, "used_memory_scripts_human:{}", human(script_bytes));
            line!(s, "maxmemory:{maxmemory}");
            line!(s, "maxmemory_human:{}", human(maxmemory));
            line!(s, "maxmemory_policy:{}", cfg.policy().name());
            line!(s, "mem_fragmentation_ratio:{:.2}", rss as f64 / used.max(1) as f64);
            line!(s, "mem_allocator:jemalloc-5.3.0");
            line!(s, "lazyfree_pending_objects:0");
        }
        "persistence" => {
            line!(s, "# Persistence");
            line!(s, "loading:0");
            line!(s, "async_loading:0");
            line!(s, "rdb_changes_since_last_save:0");
            line!(s, "rdb_bgsave_in_progress:0");
            line!(s, "rdb_last_save_time:{}", server.started_unix);
            line!(s, "rdb_last_bgsave_status:ok");
            line!(s, "rdb_last_bgsave_time_sec:-1");
            line!(s, "rdb_current_bgsave_time_sec:-1");
            line!(s, "aof_enabled:0");
            line!(s, "aof_rewrite_in_progress:0");
            line!(s, "aof_rewrite_scheduled:0");
            line!(s, "aof_last_rewrite_time_sec:-1");
            line!(s, "aof_current_rewrite_time_sec:-1");
            line!(s, "aof_last_bgrewrite_status:ok");
            line!(s, "aof_last_write_status:ok");
        }
        "stats" => {
            let st = &server.stats;
            line!(s, "# Stats");
            line!(s, "total_connections_received:{}", st.connections_received.get());
            line!(s, "total_commands_processed:{}", st.commands_processed.get());
            line!(s, "instantaneous_ops_per_sec:{}", st.ops_sampler.lock().per_sec());
            line!(s, "total_net_input_bytes:{}", st.net_input_bytes.get());
            line!(s, "total_net_output_bytes:{}", st.net_output_bytes.get());
            line!(s, "instantaneous_input_kbps:0.00");
            line!(s, "instantaneous_output_kbps:0.00");
            line!(s, "rejected_connections:{}", st.rejected_connections.get());
            line!(s, "sync_full:0");
            line!(s, "sync_partial_ok:0");
            line!(s, "sync_partial_err:0");
            line!(s, "expired_keys:{}", ks.stats.expired.get());
            line!(s, "expired_stale_perc:0.00");
            line!(s, "expired_time_cap_reached_count:0");
            line!(s, "evicted_keys:{}", ks.stats.evicted.get());
            line!(s, "evicted_clients:0");
            line!(s, "keyspace_hits:{}", ks.stats.hits.get());
            line!(s, "keyspace_misses:{}", ks.stats.misses.get());
            line!(s, "pubsub_channels:{}", server.pubsub.len(crate::pubsub::Kind::Channel));
            line!(s, "pubsub_patterns:{}", server.pubsub.len(crate::pubsub::Kind::Pattern));
            line!(s, "pubsubshard_channels:{}", server.pubsub.len(crate::pubsub::Kind::Shard));
            line!(s, "latest_fork_usec:0");
            line!(s, "total_forks:0");
            let (_, keys, items, prefixes) = server.tracking.counts();
            line!(s, "tracking_total_keys:{keys}");
            line!(s, "tracking_total_items:{items}");
            line!(s, "tracking_total_prefixes:{prefixes}");
            line!(s, "acl_access_denied_auth:{}", st.auth_failures.get());
            line!(s, "unexpected_error_replies:0");
            line!(s, "total_error_replies:{}", st.total_error_replies.get());
            line!(s, "total_reads_processed:{}", st.reads_processed.get());
            line!(s, "total_writes_processed:{}", st.writes_processed.get());
        }
        "replication" => {
            line!(s, "# Replication");
            line!(s, "role:master");
            line!(s, "connected_slaves:0");
            line!(s, "master_failover_state:no-failover");
            line!(s, "master_replid:{}", server.run_id);
            line!(s, "master_replid2:0000000000000000000000000000000000000000");
            line!(s, "master_repl_offset:0");
            line!(s, "second_repl_offset:-1");
            line!(s, "repl_backlog_active:0");
            line!(s, "repl_backlog_size:1048576");
            line!(s, "repl_backlog_first_byte_offset:0");
            line!(s, "repl_backlog_histlen:0");
        }
        "cpu" => {
            let (sys, user) = cpu_times();
            line!(s, "# CPU");
            line!(s, "used_cpu_sys:{sys:.6}");
            line!(s, "used_cpu_user:{user:.6}");
            line!(s, "used_cpu_sys_children:0.000000");
            line!(s, "used_cpu_user_children:0.000000");
        }
        "modules" => {
            line!(s, "# Modules");
        }
        "cluster" => {
            line!(s, "# Cluster");
            line!(s, "cluster_enabled:{}", server.config.cluster_enabled as u8);
        }
        "commandstats" => {
            line!(s, "# Commandstats");
            for (i, name) in super::stat_names().iter().enumerate() {
                let f = server.command_stats.get(i);
                if f.calls == 0 && f.rejected == 0 && f.failed == 0 {
                    continue;
                }
                let per = if f.calls == 0 { 0.0 } else { f.usec as f64 / f.calls as f64 };
                line!(
                    s,
                    "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}",
                    name,
                    f.calls,
                    f.usec,
                    per,
                    f.rejected,
                    f.failed
                );
            }
        }
        "errorstats" => {
            line!(s, "# Errorstats");
            for (code, n) in server.stats.errors.lock().iter() {
                line!(s, "errorstat_{code}:count={n}");
            }
        }
        "keyspace" => {
            line!(s, "# Keyspace");
            for db in 0..ks.databases() {
                let keys = ks.dbsize(db);
                if keys == 0 {
                    continue;
                }
                line!(
                    s,
                    "db{db}:keys={keys},expires={},avg_ttl={}",
                    ks.expires_count(db),
                    ks.avg_ttl(db, now)
                );
            }
        }
        _ => return None,
    }
    Some(())
}

fn total_system_memory() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
