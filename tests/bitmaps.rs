//! Bitmaps against a real redis-server: random SETBIT, BITFIELD (every type, offset form and
//! overflow mode), BITCOUNT, BITPOS (BIT and BYTE ranges), BITOP and LCS calls, each sent to
//! respite and to Redis, every reply and the final values compared. The fixed cases are in
//! tests/differential/bitmaps.redis; this finds what no one thought to write down. Without
//! redis-server on PATH the test prints a notice and passes.

mod common;

use redis::aio::MultiplexedConnection;

use common::RedisServer;

const KEYS: [&str; 3] = ["k1", "k2", "k3"];

fn pick<'a>(rng: &mut fastrand::Rng, from: &[&'a str]) -> &'a str {
    from[rng.usize(..from.len())]
}

fn value(rng: &mut fastrand::Rng) -> i64 {
    match rng.u8(..8) {
        0 => 0,
        1 => 1,
        2 => -1,
        3 => rng.i64(-300..300),
        4 => rng.i64(..),
        5 => i64::MAX,
        6 => i64::MIN,
        _ => rng.i64(-(1 << 20)..1 << 20),
    }
}

/// One random bit command, as its arguments.
fn random_call(rng: &mut fastrand::Rng) -> Vec<String> {
    let key = pick(rng, &KEYS).to_string();
    let n = |rng: &mut fastrand::Rng, lo: i64, hi: i64| rng.i64(lo..=hi).to_string();
    match rng.u8(..100) {
        0..=49 => {
            let mut args = vec!["BITFIELD".to_string(), key];
            for _ in 0..rng.usize(1..=4) {
                let sub = pick(rng, &["GET", "SET", "INCRBY", "OVERFLOW"]);
                if sub == "OVERFLOW" {
                    args.extend([sub.to_string(), pick(rng, &["WRAP", "SAT", "FAIL"]).to_string()]);
                    continue;
                }
                let signed = rng.bool();
                let bits = rng.u32(1..=if signed { 64 } else { 63 });
                let ty = format!("{}{bits}", if signed { "i" } else { "u" });
                let offset = if rng.u8(..5) < 4 {
                    n(rng, 0, 200)
                } else {
                    format!("#{}", rng.u8(..=20))
                };
                args.extend([sub.to_string(), ty, offset]);
                if sub != "GET" {
                    args.push(value(rng).to_string());
                }
            }
            args
        }
        50..=59 => vec!["SETBIT".into(), key, n(rng, 0, 300), n(rng, 0, 1)],
        60..=74 => {
            let mut args = vec!["BITCOUNT".into(), key];
            if rng.u8(..10) < 7 {
                args.extend([n(rng, -50, 50), n(rng, -50, 50)]);
                if rng.bool() {
                    args.push(pick(rng, &["BIT", "BYTE"]).into());
                }
            }
            args
        }
        75..=89 => {
            let mut args = vec!["BITPOS".into(), key, n(rng, 0, 1)];
            let extra = rng.u8(..4);
            if extra >= 1 {
                args.push(n(rng, -60, 60));
            }
            if extra >= 2 {
                args.push(n(rng, -60, 60));
            }
            if extra >= 3 {
                args.push(pick(rng, &["BIT", "BYTE"]).into());
            }
            args
        }
        90..=96 => {
            let op = pick(rng, &["AND", "OR", "XOR", "NOT"]);
            let mut args = vec!["BITOP".into(), op.into(), pick(rng, &KEYS).into(), key];
            if op != "NOT" || rng.u8(..10) == 0 {
                args.push(pick(rng, &["k1", "k2", "k3", "none"]).into());
            }
            args
        }
        _ => vec![
            "LCS".into(),
            key,
            pick(rng, &KEYS).into(),
            "IDX".into(),
            "WITHMATCHLEN".into(),
            "MINMATCHLEN".into(),
            n(rng, 0, 3),
        ],
    }
}

/// A reply as comparable text: the value, or the server's error.
async fn call(con: &mut MultiplexedConnection, args: &[String]) -> String {
    let mut cmd = redis::cmd(&args[0]);
    args[1..].iter().for_each(|a| {
        cmd.arg(a);
    });
    match cmd.query_async::<redis::Value>(con).await {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error: {e}"),
    }
}

#[tokio::test]
async fn random_bit_commands_answer_as_redis_does() {
    let Some(redis) = RedisServer::start() else {
        eprintln!("redis-server not on PATH: skipping the bitmap comparison");
        return;
    };
    let respite = common::start().await;
    let mut ours = common::client(respite.addr).await;
    let mut theirs = common::client(redis.addr()).await;
    let mut mismatches = Vec::new();
    for seed in 1..=3u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        for i in 0..3_000 {
            let args = random_call(&mut rng);
            let (a, b) = (call(&mut ours, &args).await, call(&mut theirs, &args).await);
            if a != b {
                mismatches.push(format!("seed {seed} call {i}: {args:?}\n  respite: {a}\n  redis:   {b}"));
            }
        }
        for key in KEYS {
            let get = vec!["GET".to_string(), key.to_string()];
            let (a, b) = (call(&mut ours, &get).await, call(&mut theirs, &get).await);
            if a != b {
                mismatches.push(format!("seed {seed}: final value of {key}\n  respite: {a}\n  redis:   {b}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches, first ones:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
}
