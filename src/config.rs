//! Configuration: a redis.conf-style file, then `--directive value` overrides, as redis-server
//! takes them. Every Redis 7 parameter name is known (defaults captured from redis-server 7.0.15,
//! see tools/capture-redis-spec.py) so CONFIG GET/SET work for tools that tune Redis; the ones
//! respite acts on are validated and mirrored into typed fields the server reads without locks.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};

use parking_lot::RwLock;

use crate::glob::glob_match;

const REDIS_DEFAULTS: &[u8] = include_bytes!("config-defaults.resp2");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EvictionPolicy {
    NoEviction,
    AllKeysLru,
    VolatileLru,
    AllKeysLfu,
    VolatileLfu,
    AllKeysRandom,
    VolatileRandom,
    VolatileTtl,
}

impl EvictionPolicy {
    pub const ALL: [EvictionPolicy; 8] = [
        EvictionPolicy::NoEviction,
        EvictionPolicy::AllKeysLru,
        EvictionPolicy::VolatileLru,
        EvictionPolicy::AllKeysLfu,
        EvictionPolicy::VolatileLfu,
        EvictionPolicy::AllKeysRandom,
        EvictionPolicy::VolatileRandom,
        EvictionPolicy::VolatileTtl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::NoEviction => "noeviction",
            EvictionPolicy::AllKeysLru => "allkeys-lru",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::AllKeysLfu => "allkeys-lfu",
            EvictionPolicy::VolatileLfu => "volatile-lfu",
            EvictionPolicy::AllKeysRandom => "allkeys-random",
            EvictionPolicy::VolatileRandom => "volatile-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(s))
    }
}

/// What went wrong reading a directive; `Display` gives the reason Redis would print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

fn bad(reason: impl Into<String>) -> ConfigError {
    ConfigError { reason: reason.into() }
}

/// A config file error with its place, printed like redis-server's FATAL CONFIG FILE ERROR.
#[derive(Debug)]
pub struct LoadError {
    pub source: String,
    pub line: usize,
    pub text: String,
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "*** FATAL CONFIG FILE ERROR (respite {}) ***\nReading the configuration file {}, at line {}\n>>> '{}'\n{}",
            env!("CARGO_PKG_VERSION"),
            self.source,
            self.line,
            self.text,
            self.reason
        )
    }
}

/// Redis 7 keeps old names as aliases of new ones; setting either sets both.
fn alias_of(name: &str) -> Option<String> {
    const PAIRS: &[(&str, &str)] = &[("replica", "slave"), ("listpack", "ziplist")];
    for (new, old) in PAIRS {
        if name.contains(new) {
            return Some(name.replacen(new, old, 1));
        }
        if name.contains(old) {
            return Some(name.replacen(old, new, 1));
        }
    }
    None
}

/// client-output-buffer-limit: `<class> <hard> <soft> <seconds>` groups, merged into the current
/// setting and reported in bytes for all three classes, as Redis does.
pub fn normalize_output_limits(current: &str, value: &str) -> Result<String, ConfigError> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if !words.len().is_multiple_of(4) {
        return Err(bad("Wrong number of arguments in buffer limit configuration."));
    }
    let mut classes: Vec<(&str, [u64; 3])> = Vec::new();
    let cur: Vec<&str> = current.split_whitespace().collect();
    for chunk in cur.chunks_exact(4).chain(words.chunks_exact(4)) {
        let class = match chunk[0].to_ascii_lowercase().as_str() {
            "normal" => "normal",
            "slave" | "replica" => "slave",
            "pubsub" => "pubsub",
            _ => return Err(bad("Invalid client class specified in buffer limit configuration.")),
        };
        let (Some(hard), Some(soft), Ok(secs)) = (parse_memory(chunk[1]), parse_memory(chunk[2]), chunk[3].parse::<u64>()) else {
            return Err(bad("Error in hard, soft or soft_seconds setting in buffer limit configuration."));
        };
        match classes.iter_mut().find(|(c, _)| *c == class) {
            Some(entry) => entry.1 = [hard, soft, secs],
            None => classes.push((class, [hard, soft, secs])),
        }
    }
    let order = ["normal", "slave", "pubsub"];
    classes.sort_by_key(|(c, _)| order.iter().position(|o| o == c));
    Ok(classes
        .iter()
        .map(|(c, [h, s, t])| format!("{c} {h} {s} {t}"))
        .collect::<Vec<_>>()
        .join(" "))
}

/// notify-keyspace-events in Redis's canonical spelling ("KEA" is reported as "AKE").
pub fn keyspace_events_canonical(value: &str) -> Result<String, ConfigError> {
    const CLASSES: &str = "g$lshzxetdn";
    const ALL: &str = "g$lshzxetd";
    let mut set = std::collections::BTreeSet::new();
    for c in value.chars() {
        match c {
            'A' => set.extend(ALL.chars()),
            c if CLASSES.contains(c) || "KEm".contains(c) => {
                set.insert(c);
            }
            _ => return Err(bad("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")),
        }
    }
    let mut out = String::new();
    if ALL.chars().all(|c| set.contains(&c)) {
        // Redis 7.0's keyspaceEventsFlagsToString writes `n` only in the branch without `A`:
        // "KEAn" reads back as "AKE" (and still sends new-key events).
        out.push('A');
    } else {
        out.extend(CLASSES.chars().filter(|c| set.contains(c)));
    }
    out.extend("KEm".chars().filter(|c| set.contains(c)));
    Ok(out)
}

/// Parameters whose values are sizes with units (Redis's MEMORY_CONFIG).
const MEMORY_PARAMS: &[&str] = &[
    "maxmemory",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "repl-backlog-size",
    "active-defrag-ignore-bytes",
];

/// Parameters fixed at start (Redis's IMMUTABLE_CONFIG ones that respite acts on).
const IMMUTABLE: &[&str] = &[
    "databases",
    "daemonize",
    "supervised",
    "pidfile",
    "unixsocket",
    "logfile",
    "cluster-enabled",
    "io-threads",
];

pub struct Config {
    /// Every parameter as CONFIG GET shows it.
    params: RwLock<BTreeMap<String, String>>,
    pub maxmemory: AtomicU64,
    policy: AtomicU8,
    pub maxmemory_samples: AtomicU32,
    pub timeout_secs: AtomicU64,
    pub maxclients: AtomicU64,
    pub hz: AtomicU32,
    pub proto_max_bulk_len: AtomicU64,
    /// Microseconds from which a command goes to the slow log; negative: none does.
    pub slowlog_log_slower_than: AtomicI64,
    pub slowlog_max_len: AtomicU64,
    /// hash-max-listpack-entries / -value: when a hash stops being a listpack.
    pub hash_max_listpack_entries: AtomicU64,
    pub hash_max_listpack_value: AtomicU64,
    /// set-max-intset-entries: when an all-integer set stops being an intset.
    pub set_max_intset_entries: AtomicU64,
    /// zset-max-listpack-entries / -value: when a sorted set stops being a listpack.
    pub zset_max_listpack_entries: AtomicU64,
    pub zset_max_listpack_value: AtomicU64,
    /// client-query-buffer-limit: a client whose unparsed input passes this is closed.
    pub client_query_buffer_limit: AtomicU64,
    /// client-output-buffer-limit for normal clients: hard bytes, soft bytes, soft seconds (0: none).
    pub output_limit_normal: [AtomicU64; 3],
    /// notify-keyspace-events as class flags (keyspace::notify::class), from the value as set:
    /// CONFIG GET's spelling does not show every class (Redis 7.0 omits `n` after `A`).
    pub keyspace_events: AtomicU32,
    pub protected_mode: AtomicBool,
    /// The default user, which `requirepass` and ACL SETUSER both edit.
    pub user: RwLock<crate::acl::DefaultUser>,
    pub databases: usize,
    /// cluster-enabled: respite answers as a Redis Cluster of one node owning every slot.
    pub cluster_enabled: bool,
    /// The config file read at start, if any (INFO's config_file).
    pub file: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        let mut params = redis_defaults();
        // The captured server ran with test settings; put Redis's shipped defaults back.
        for (k, v) in [
            ("port", "6379"),
            ("save", "3600 1 300 100 60 10000"),
            ("appendonly", "no"),
            ("daemonize", "no"),
            ("enable-debug-command", "no"),
            ("pidfile", ""),
            ("dir", "."),
            ("bind", "* -::*"),
        ] {
            params.insert(k.to_string(), v.to_string());
        }
        if let Ok(dir) = std::env::current_dir() {
            params.insert("dir".into(), dir.display().to_string());
        }
        params.insert("io-threads".into(), default_io_threads().to_string());
        let cfg = Config {
            params: RwLock::new(BTreeMap::new()),
            maxmemory: AtomicU64::new(0),
            policy: AtomicU8::new(EvictionPolicy::NoEviction as u8),
            maxmemory_samples: AtomicU32::new(5),
            timeout_secs: AtomicU64::new(0),
            maxclients: AtomicU64::new(10000),
            hz: AtomicU32::new(10),
            proto_max_bulk_len: AtomicU64::new(512 * 1024 * 1024),
            slowlog_log_slower_than: AtomicI64::new(10_000),
            slowlog_max_len: AtomicU64::new(128),
            hash_max_listpack_entries: AtomicU64::new(512),
            hash_max_listpack_value: AtomicU64::new(64),
            set_max_intset_entries: AtomicU64::new(512),
            zset_max_listpack_entries: AtomicU64::new(128),
            zset_max_listpack_value: AtomicU64::new(64),
            client_query_buffer_limit: AtomicU64::new(1 << 30),
            output_limit_normal: Default::default(),
            keyspace_events: AtomicU32::new(0),
            protected_mode: AtomicBool::new(true),
            user: RwLock::new(crate::acl::DefaultUser::default()),
            databases: 16,
            cluster_enabled: false,
            file: None,
        };
        for (k, v) in &params {
            // Defaults are valid by construction.
            let _ = cfg.apply(k, v);
        }
        *cfg.params.write() = params;
        cfg
    }
}

fn redis_defaults() -> BTreeMap<String, String> {
    let mut decoder = crate::protocol::Decoder::default();
    let mut buf = bytes::BytesMut::from(REDIS_DEFAULTS);
    let mut args = Vec::new();
    let mut map = BTreeMap::new();
    if let Ok(true) = decoder.decode(&mut buf, &mut args) {
        for pair in args.chunks_exact(2) {
            map.insert(
                String::from_utf8_lossy(&pair[0]).into_owned(),
                String::from_utf8_lossy(&pair[1]).into_owned(),
            );
        }
    }
    map
}

/// One event loop per core, less one core for the clients: on the 2-core machines this runs on,
/// a second loop made p99 latency 2-4x worse (the load generator lost its core) without raising
/// throughput; see the README's speed section.
fn default_io_threads() -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    cores.saturating_sub(1).clamp(1, 128)
}

/// Redis's memtoll: "1k" is 1000, "1kb" is 1024, likewise m/mb and g/gb; case does not matter.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return Some(0);
    }
    let (num, mul) = [
        ("gb", 1u64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suffix, mul)| lower.strip_suffix(suffix).map(|n| (n.to_string(), *mul)))
    .unwrap_or((lower.clone(), 1));
    let n: i64 = num.parse().ok()?;
    if n < 0 {
        return None;
    }
    (n as u64).checked_mul(mul)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

impl Config {
    /// Reads `file` (if any), then the command-line directives, as redis-server does.
    pub fn load(file: Option<&Path>, overrides: &[Vec<String>]) -> Result<Config, LoadError> {
        let cfg = Config::default();
        let mut databases = None;
        let mut lines: Vec<(String, usize, Vec<String>, String)> = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| LoadError {
                source: path.display().to_string(),
                line: 0,
                text: String::new(),
                reason: format!("Fatal error, can't open config file '{}': {e}", path.display()),
            })?;
            for (i, raw) in text.lines().enumerate() {
                let trimmed = raw.trim();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                let words = crate::protocol::decode::split_args(trimmed.as_bytes())
                    .map(|w| w.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect())
                    .unwrap_or_default();
                lines.push((path.display().to_string(), i + 1, words, trimmed.to_string()));
            }
        }
        for (i, words) in overrides.iter().enumerate() {
            lines.push(("(command line)".into(), i + 1, words.clone(), words.join(" ")));
        }
        for (source, line, words, text) in lines {
            let fail = |reason: String| LoadError {
                source: source.clone(),
                line,
                text: text.clone(),
                reason,
            };
            let Some((name, args)) = words.split_first() else {
                return Err(fail("Unbalanced quotes in configuration line".into()));
            };
            let name = name.to_ascii_lowercase();
            if name == "include" || name == "rename-command" || name == "user" || name == "loadmodule" {
                return Err(fail(format!("'{name}' is not supported by respite")));
            }
            let value = args.join(" ");
            if !cfg.params.read().contains_key(&name) {
                return Err(fail("Bad directive or wrong number of arguments".into()));
            }
            if args.is_empty() && name != "save" && name != "requirepass" {
                return Err(fail("Bad directive or wrong number of arguments".into()));
            }
            if name == "databases" {
                match value.parse::<usize>() {
                    Ok(n) if (1..=i32::MAX as usize).contains(&n) => databases = Some(n),
                    _ => return Err(fail("Invalid number of databases".into())),
                }
            }
            cfg.set_one(&name, &value, true).map_err(|e| fail(e.reason))?;
        }
        let mut cfg = cfg;
        if let Some(n) = databases {
            cfg.databases = n;
        }
        cfg.cluster_enabled = cfg.get("cluster-enabled").as_deref() == Some("yes");
        cfg.file = file.map(|f| std::fs::canonicalize(f).unwrap_or_else(|_| f.to_path_buf()));
        Ok(cfg)
    }

    /// CONFIG GET: every (name, value) whose name matches one of the glob patterns.
    pub fn get_matching(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let params = self.params.read();
        let mut out: Vec<(String, String)> = Vec::new();
        for pattern in patterns {
            let has_glob = pattern.iter().any(|c| matches!(c, b'*' | b'?' | b'['));
            if !has_glob {
                // Redis answers an exact name spelled as it was asked.
                let asked = String::from_utf8_lossy(pattern).into_owned();
                if let Some(v) = params.get(&asked.to_ascii_lowercase()) {
                    if !out.iter().any(|(k, _)| k.eq_ignore_ascii_case(&asked)) {
                        out.push((asked, v.clone()));
                    }
                }
                continue;
            }
            for (k, v) in params.iter() {
                if glob_match(pattern, k.as_bytes(), true) && !out.iter().any(|(n, _)| n == k) {
                    out.push((k.clone(), v.clone()));
                }
            }
        }
        out
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.params.read().get(name).cloned()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.params.read().contains_key(name)
    }

    /// CONFIG SET of several pairs: all are validated before any is applied.
    pub fn set_many(&self, pairs: &[(String, String)]) -> Result<(), (String, ConfigError)> {
        for (name, value) in pairs {
            if IMMUTABLE.contains(&name.as_str()) {
                return Err((name.clone(), bad("can't set immutable config")));
            }
            self.validate(name, value).map_err(|e| (name.clone(), e))?;
        }
        for (name, value) in pairs {
            self.set_one(name, value, false).map_err(|e| (name.clone(), e))?;
        }
        Ok(())
    }

    fn set_one(&self, name: &str, value: &str, _at_start: bool) -> Result<(), ConfigError> {
        self.validate(name, value)?;
        let stored = self.apply(name, value)?;
        let mut params = self.params.write();
        if let Some(alias) = alias_of(name).filter(|a| params.contains_key(a)) {
            params.insert(alias, stored.clone());
        }
        params.insert(name.to_string(), stored);
        Ok(())
    }

    /// Checks a value against the parameter's type (inferred from Redis's default for the ones
    /// respite does not act on).
    fn validate(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        let current = self.params.read().get(name).cloned();
        let Some(current) = current else {
            return Err(bad("Unknown option"));
        };
        match name {
            "maxmemory-policy" => EvictionPolicy::parse(value).map(|_| ()).ok_or_else(|| bad("argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction")),
            "proto-max-bulk-len" | "client-query-buffer-limit" => match parse_memory(value) {
                Some(n) if n >= 1 << 20 => Ok(()),
                Some(_) => Err(bad("argument must be between 1048576 and 9223372036854775807 inclusive")),
                None => Err(bad("argument must be a memory value")),
            },
            "notify-keyspace-events" => keyspace_events_canonical(value).map(|_| ()),
            _ if MEMORY_PARAMS.contains(&name) => parse_memory(value).map(|_| ()).ok_or_else(|| bad("argument must be a memory value")),
            "loglevel" => ["debug", "verbose", "notice", "warning", "nothing"].contains(&value).then_some(()).ok_or_else(|| bad("argument(s) must be one of the following: debug, verbose, notice, warning, nothing")),
            "port" => match value.parse::<u32>() {
                Ok(p) if p <= 65535 => Ok(()),
                _ => Err(bad("argument must be between 0 and 65535 inclusive")),
            },
                        "maxmemory-samples" => match value.parse::<i64>() {
                Ok(n) if (1..=i32::MAX as i64).contains(&n) => Ok(()),
                _ => Err(bad("argument must be between 1 and 2147483647 inclusive")),
            },
            "io-threads" => match value.parse::<i64>() {
                Ok(n) if (1..=128).contains(&n) => Ok(()),
                _ => Err(bad("argument must be between 1 and 128 inclusive")),
            },
            "lfu-log-factor" | "lfu-decay-time" => match value.parse::<i64>() {
                Ok(n) if (0..=i32::MAX as i64).contains(&n) => Ok(()),
                _ => Err(bad("argument must be between 0 and 2147483647 inclusive")),
            },
            "client-output-buffer-limit" => normalize_output_limits(&current, value).map(|_| ()),
            "hz" | "timeout" | "maxclients" | "databases" => match value.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(()),
                Ok(_) => Err(bad("argument must be between 0 and 2147483647 inclusive")),
                Err(_) => Err(bad("argument couldn't be parsed into an integer")),
            },
            _ if current == "yes" || current == "no" => parse_bool(value).map(|_| ()).ok_or_else(|| bad("argument must be 'yes' or 'no'")),
            _ if !current.is_empty() && current.parse::<i64>().is_ok() && !value.starts_with('-') => {
                parse_memory(value).map(|_| ()).ok_or_else(|| bad("argument couldn't be parsed into an integer"))
            }
            _ => Ok(()),
        }
    }

    /// Mirrors a parameter into the typed fields; returns the value as CONFIG GET shows it.
    fn apply(&self, name: &str, value: &str) -> Result<String, ConfigError> {
        let current = self.params.read().get(name).cloned().unwrap_or_default();
        let is_number = !current.is_empty() && current.parse::<i64>().is_ok();
        let stored = if is_number {
            parse_memory(value).map(|n| n.to_string()).unwrap_or_else(|| value.to_string())
        } else {
            value.to_string()
        };
        let num = || stored.parse::<u64>().unwrap_or(0);
        match name {
            "maxmemory" => self.maxmemory.store(num(), Relaxed),
            "maxmemory-policy" => {
                let p = EvictionPolicy::parse(value).ok_or_else(|| bad("bad policy"))?;
                self.policy.store(p as u8, Relaxed);
                return Ok(p.name().to_string());
            }
            "maxmemory-samples" => self.maxmemory_samples.store(num() as u32, Relaxed),
            "timeout" => self.timeout_secs.store(num(), Relaxed),
            "maxclients" => self.maxclients.store(num(), Relaxed),
            "hz" => {
                // Redis clamps hz into 1..=500 and reports the clamped value.
                let hz = stored.parse::<i64>().unwrap_or(10).clamp(1, 500);
                self.hz.store(hz as u32, Relaxed);
                return Ok(hz.to_string());
            }
            "client-output-buffer-limit" => {
                let canonical = normalize_output_limits(&current, value)?;
                let words: Vec<&str> = canonical.split_whitespace().collect();
                if let Some(normal) = words.chunks_exact(4).find(|c| c[0] == "normal") {
                    for (slot, word) in self.output_limit_normal.iter().zip(&normal[1..]) {
                        slot.store(word.parse().unwrap_or(0), Relaxed);
                    }
                }
                return Ok(canonical);
            }
            "client-query-buffer-limit" => self.client_query_buffer_limit.store(num(), Relaxed),
            "notify-keyspace-events" => {
                let canonical = keyspace_events_canonical(value)?;
                self.keyspace_events.store(crate::keyspace::notify::flags_of(value), Relaxed);
                return Ok(canonical);
            }
            "proto-max-bulk-len" => self.proto_max_bulk_len.store(num(), Relaxed),
            "slowlog-log-slower-than" => self.slowlog_log_slower_than.store(stored.parse::<i64>().unwrap_or(10_000), Relaxed),
            "slowlog-max-len" => self.slowlog_max_len.store(num(), Relaxed),
            "hash-max-listpack-entries" | "hash-max-ziplist-entries" => self.hash_max_listpack_entries.store(num(), Relaxed),
            "hash-max-listpack-value" | "hash-max-ziplist-value" => self.hash_max_listpack_value.store(num(), Relaxed),
            "set-max-intset-entries" => self.set_max_intset_entries.store(num(), Relaxed),
            "zset-max-listpack-entries" | "zset-max-ziplist-entries" => self.zset_max_listpack_entries.store(num(), Relaxed),
            "zset-max-listpack-value" | "zset-max-ziplist-value" => self.zset_max_listpack_value.store(num(), Relaxed),
            "protected-mode" => self.protected_mode.store(parse_bool(value).unwrap_or(true), Relaxed),
            "requirepass" => self.user.write().set_requirepass(value.as_bytes()),
            _ => {}
        }
        if current == "yes" || current == "no" {
            return Ok(value.to_ascii_lowercase());
        }
        Ok(stored)
    }

    pub fn policy(&self) -> EvictionPolicy {
        EvictionPolicy::ALL[self.policy.load(Relaxed) as usize]
    }

    /// Whether new connections start authenticated (the default user is on and has nopass).
    pub fn open_access(&self) -> bool {
        self.user.read().auto_authenticated()
    }

    /// Event loops serving connections (`io-threads`).
    pub fn io_threads(&self) -> usize {
        self.get("io-threads").and_then(|n| n.parse().ok()).unwrap_or(1)
    }

    pub fn port(&self) -> u16 {
        self.get("port").and_then(|p| p.parse().ok()).unwrap_or(6379)
    }

    /// `bind` addresses; a leading '-' marks one that may be unavailable.
    pub fn bind(&self) -> Vec<String> {
        self.get("bind")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units_as_redis() {
        assert_eq!(parse_memory("64mb"), Some(64 << 20));
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("1g"), Some(1_000_000_000));
        assert_eq!(parse_memory("100000"), Some(100_000));
        assert_eq!(parse_memory("2KB"), Some(2048));
        assert_eq!(parse_memory("abc"), None);
        assert_eq!(parse_memory("-1"), None);
    }

    #[test]
    fn defaults_know_redis_parameters() {
        let c = Config::default();
        assert_eq!(c.get("maxmemory-policy").as_deref(), Some("noeviction"));
        assert_eq!(c.get("hash-max-listpack-entries").as_deref(), Some("512"));
        assert_eq!(c.get("port").as_deref(), Some("6379"));
        assert!(c.get_matching(&[b"max*"]).len() >= 4);
    }

    #[test]
    fn file_then_overrides() {
        let dir = std::env::temp_dir().join(format!("respite-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.conf");
        std::fs::write(
            &f,
            "# comment\nport 7000\nmaxmemory 64mb\nmaxmemory-policy allkeys-lru\nsave \"\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&f), &[vec!["port".into(), "7001".into()]]).unwrap();
        assert_eq!(c.port(), 7001);
        assert_eq!(c.maxmemory.load(Relaxed), 64 << 20);
        assert_eq!(c.policy(), EvictionPolicy::AllKeysLru);
        assert_eq!(c.get("save").as_deref(), Some(""));
        std::fs::write(&f, "port 7000\nbogus-directive 1\n").unwrap();
        let err = Config::load(Some(&f), &[]).err().expect("a bad directive is an error");
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("a.conf"));
        assert!(err.to_string().contains("Bad directive"));
        std::fs::write(&f, "maxmemory-policy sometimes\n").unwrap();
        assert!(Config::load(Some(&f), &[]).is_err());
    }

    #[test]
    fn config_set_validates_before_applying() {
        let c = Config::default();
        assert!(c
            .set_many(&[("maxmemory".into(), "10mb".into()), ("appendonly".into(), "maybe".into())])
            .is_err());
        assert_eq!(c.maxmemory.load(Relaxed), 0);
        c.set_many(&[
            ("maxmemory".into(), "10mb".into()),
            ("hash-max-listpack-entries".into(), "256".into()),
        ])
        .unwrap();
        assert_eq!(c.get("maxmemory").as_deref(), Some("10485760"));
        assert_eq!(c.get("hash-max-listpack-entries").as_deref(), Some("256"));
        assert!(c.set_many(&[("databases".into(), "4".into())]).is_err());
    }
}
