//! The fuzz targets on stable, as part of `cargo test`: replay every corpus entry and every kept
//! crash input through both targets, then a bounded mutational campaign over the corpus.
//!
//! The targets themselves live in `fuzz/harness.rs` (shared with the cargo-fuzz project in `fuzz/`):
//! `decode` runs the request decoder over the bytes whole and in pieces, with default and small
//! limits; `dispatch` decodes and runs the commands in-process on a fresh server, checks every reply
//! is complete RESP and that a new client still gets `+PONG`.
//!
//! * `fuzz/corpus/{decode,dispatch}/`: seeds (differential scripts, hand-written frames, captured
//!   redis-cli / redis-benchmark traffic; `fuzz/make_corpus.py`) and what libFuzzer campaigns added.
//! * `fuzz/regressions/`: every input that ever made a target panic. Each one runs through both
//!   targets on every `cargo test`; the campaign below writes new ones there itself.
//!
//! Budget: `RESPITE_FUZZ_SECS` seconds in all (default 60 in release builds, 24 in debug builds) and
//! at most `RESPITE_FUZZ_EXECS` inputs (default 1,000,000). `RESPITE_FUZZ_SEED` repeats a run (the
//! seed is printed).

#[path = "../fuzz/harness.rs"]
mod harness;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Files directly in `dir` (sorted; none if it does not exist), skipping dotfiles and READMEs.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .collect();
    paths.sort();
    paths.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Decode,
    Dispatch,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Decode => "decode",
            Target::Dispatch => "dispatch",
        }
    }

    fn run(self, data: &[u8]) -> Result<(), String> {
        catch_unwind(AssertUnwindSafe(|| match self {
            Target::Decode => harness::decode(data),
            Target::Dispatch => {
                harness::dispatch(data);
            }
        }))
        .map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into())
        })
    }
}

#[test]
fn corpus_and_regressions_replay_without_panic() {
    let dir = fuzz_dir();
    let mut inputs = Vec::new();
    for target in [Target::Decode, Target::Dispatch] {
        for (path, data) in files(&dir.join("corpus").join(target.name())) {
            inputs.push((target, path, data));
        }
    }
    // A crash input found by either target runs through both.
    for sub in ["decode", "dispatch"] {
        for (path, data) in files(&dir.join("regressions").join(sub)) {
            inputs.push((Target::Decode, path.clone(), data.clone()));
            inputs.push((Target::Dispatch, path, data));
        }
    }
    assert!(
        inputs.len() > 100,
        "the corpus is missing: {} inputs under {}",
        inputs.len(),
        dir.display()
    );
    let mut failures = Vec::new();
    for (target, path, data) in &inputs {
        if let Err(msg) = target.run(data) {
            failures.push(format!("{} on {}: {msg}", target.name(), path.display()));
        }
    }
    println!("replayed {} inputs", inputs.len());
    assert!(
        failures.is_empty(),
        "{} inputs panic (a panic here is a crash a client can cause; fix src/, keep the input):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// libFuzzer-style mutations of corpus entries, with RESP tokens from `fuzz/resp.dict`.
struct Mutator {
    rng: fastrand::Rng,
    dict: Vec<Vec<u8>>,
}

impl Mutator {
    fn mutate(&mut self, seed: &[u8], other: &[u8]) -> Vec<u8> {
        let mut data = seed.to_vec();
        let rounds = 1 + self.rng.usize(..4);
        for _ in 0..rounds {
            let len = data.len();
            let at = self.rng.usize(..=len);
            match self.rng.u8(..9) {
                0 if len > 0 => {
                    let i = self.rng.usize(..len);
                    data[i] ^= 1 << self.rng.u8(..8);
                }
                1 if len > 0 => {
                    let i = self.rng.usize(..len);
                    data[i] = self.rng.u8(..);
                }
                2 => {
                    let token = self.dict[self.rng.usize(..self.dict.len())].clone();
                    data.splice(at..at, token);
                }
                3 if len > 0 => {
                    let end = (at + 1 + self.rng.usize(..16)).min(len);
                    data.drain(at.min(end)..end);
                }
                4 if len > 0 => {
                    // Duplicate a slice (a repeated frame, a pipeline).
                    let start = self.rng.usize(..len);
                    let end = (start + 1 + self.rng.usize(..64)).min(len);
                    let piece = data[start..end].to_vec();
                    data.splice(at..at, piece);
                }
                5 if !other.is_empty() => {
                    // Splice: our head, the other input's tail.
                    let from = self.rng.usize(..other.len());
                    data.truncate(at);
                    data.extend_from_slice(&other[from..]);
                }
                6 => {
                    // Replace a run of digits with an interesting number (lengths, counts, TTLs).
                    const NUMBERS: &[&[u8]] = &[
                        b"0",
                        b"-1",
                        b"1",
                        b"2147483647",
                        b"2147483648",
                        b"-2147483649",
                        b"9223372036854775807",
                        b"-9223372036854775808",
                        b"18446744073709551615",
                        b"536870912",
                        b"1073741824",
                        b"65536",
                    ];
                    if let Some(start) = (at..len).find(|&i| data[i].is_ascii_digit()) {
                        let end = (start..len).find(|&i| !data[i].is_ascii_digit()).unwrap_or(len);
                        let n = NUMBERS[self.rng.usize(..NUMBERS.len())];
                        data.splice(start..end, n.iter().copied());
                    }
                }
                7 => data.truncate(at),
                _ => {
                    let n = 1 + self.rng.usize(..8);
                    let bytes: Vec<u8> = (0..n).map(|_| self.rng.u8(..)).collect();
                    data.splice(at..at, bytes);
                }
            }
        }
        data.truncate(16 * 1024);
        data
    }
}

/// The dictionary in libFuzzer's format: one `"token"` per line, `\xNN`, `\\` and `\"` escapes.
fn load_dict(path: &Path) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut dict = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(body) = line.strip_prefix('"').and_then(|l| l.strip_suffix('"')) else {
            continue;
        };
        let b = body.as_bytes();
        let mut token = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 3 < b.len() {
                token.push(u8::from_str_radix(&body[i + 2..i + 4], 16).unwrap());
                i += 4;
            } else if b[i] == b'\\' && i + 1 < b.len() {
                token.push(b[i + 1]);
                i += 2;
            } else {
                token.push(b[i]);
                i += 1;
            }
        }
        dict.push(token);
    }
    if dict.is_empty() {
        dict.push(b"\r\n".to_vec());
    }
    dict
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Keeps `data` in fuzz/regressions/<target>/ so it stays a test, and returns the path.
fn keep_crash(target: Target, data: &[u8]) -> PathBuf {
    let dir = fuzz_dir().join("regressions").join(target.name());
    std::fs::create_dir_all(&dir).unwrap();
    // FNV-1a: a stable name for the same bytes.
    let hash = data
        .iter()
        .fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    let path = dir.join(format!("crash-{hash:016x}"));
    std::fs::write(&path, data).unwrap();
    path
}

#[test]
fn bounded_mutation_campaign() {
    let dir = fuzz_dir();
    let default_secs = if cfg!(debug_assertions) { 24 } else { 60 };
    let budget = Duration::from_secs(env_u64("RESPITE_FUZZ_SECS").unwrap_or(default_secs));
    let max_execs = env_u64("RESPITE_FUZZ_EXECS").unwrap_or(1_000_000);
    let seed = env_u64("RESPITE_FUZZ_SEED").unwrap_or_else(|| fastrand::u64(..));
    let mut mutator = Mutator {
        rng: fastrand::Rng::with_seed(seed),
        dict: load_dict(&dir.join("resp.dict")),
    };
    // Dispatch is the slower and richer target: it gets two thirds of the time and inputs.
    let plan = [
        (Target::Decode, budget / 3, max_execs / 3),
        (Target::Dispatch, budget - budget / 3, max_execs - max_execs / 3),
    ];
    quiet_panics(true);
    let mut report = Vec::new();
    let mut crash = None;
    'targets: for (target, time, count) in plan {
        let mut pool: Vec<Vec<u8>> = files(&dir.join("corpus").join(target.name())).into_iter().map(|(_, d)| d).collect();
        pool.extend(files(&dir.join("regressions").join(target.name())).into_iter().map(|(_, d)| d));
        assert!(!pool.is_empty(), "no corpus for {}", target.name());
        let start = Instant::now();
        let mut execs = 0u64;
        while execs < count && start.elapsed() < time {
            let a = mutator.rng.usize(..pool.len());
            let b = mutator.rng.usize(..pool.len());
            let input = mutator.mutate(&pool[a], &pool[b]);
            execs += 1;
            if let Err(msg) = target.run(&input) {
                crash = Some((target, keep_crash(target, &input), msg));
                break 'targets;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        report.push(format!(
            "{}: {execs} inputs in {secs:.1} s ({:.0}/s)",
            target.name(),
            execs as f64 / secs.max(1e-9)
        ));
    }
    quiet_panics(false);
    println!("fuzz campaign, seed {seed}: {}", report.join("; "));
    if let Some((target, path, msg)) = crash {
        panic!(
            "{} panicked on a mutated input (seed {seed}); kept as {} so it stays a test:\n{msg}",
            target.name(),
            path.display()
        );
    }
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Caught panics of the campaign are reported once, by the test; other threads' panics still print.
fn quiet_panics(on: bool) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info)
            }
        }));
    });
    QUIET.with(|q| q.set(on));
}
