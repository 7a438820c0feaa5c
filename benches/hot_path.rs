//! Hot-path pieces without a server, so a regression shows without the network:
//! request decoding, reply encoding, command dispatch, keyspace get/set.
//! `cargo bench --bench hot_path`

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

use respite::client::Client;
use respite::keyspace::{Keyspace, Lookup, Ttl, Value};
use respite::protocol::{Decoder, Reply};

fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn pipeline(n: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    for i in 0..n {
        buf.extend(resp(&[b"SET", format!("key:{i:012}").as_bytes(), &[b'v'; 64]]));
    }
    buf
}

fn decoding(c: &mut Criterion) {
    let input = pipeline(16);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(16));
    g.bench_function("respite 16x SET d64", |b| {
        let mut d = Decoder::default();
        let mut args = Vec::new();
        b.iter(|| {
            let mut buf = BytesMut::from(&input[..]);
            let mut n = 0;
            while d.decode(&mut buf, &mut args).unwrap() {
                n += args.len();
            }
            black_box(n)
        })
    });
    // The redis-protocol crate on the same bytes, for reference.
    g.bench_function("redis-protocol 16x SET d64", |b| {
        b.iter(|| {
            let buf = Bytes::from(input.clone());
            let mut pos = 0;
            let mut n = 0;
            while let Some((frame, len)) = redis_protocol::resp2::decode::decode_bytes(&buf.slice(pos..)).unwrap() {
                pos += len;
                n += 1;
                black_box(frame);
            }
            black_box(n)
        })
    });
    g.bench_function("respite inline PING", |b| {
        let mut d = Decoder::default();
        let mut args = Vec::new();
        b.iter(|| {
            let mut buf = BytesMut::from(&b"PING\r\n"[..]);
            black_box(d.decode(&mut buf, &mut args).unwrap())
        })
    });
    g.finish();
}

fn encoding(c: &mut Criterion) {
    let value = vec![b'v'; 64];
    c.bench_function("encode 16 bulk replies + ints", |b| {
        let mut r = Reply::new(false);
        b.iter(|| {
            r.buf.clear();
            for i in 0..16 {
                r.bulk(&value);
                r.int(i);
            }
            r.ok();
            black_box(r.buf.len())
        })
    });
}

fn keyspace(c: &mut Criterion) {
    let ks = Keyspace::new(16);
    let keys: Vec<Vec<u8>> = (0..100_000).map(|i| format!("key:{i:012}").into_bytes()).collect();
    for k in &keys {
        ks.write(0, k, 0, |slot| slot.set(Value::string(&[b'v'; 64]), Ttl::Clear));
    }
    let mut g = c.benchmark_group("keyspace");
    let mut i = 0usize;
    g.bench_function("get hit", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            ks.read(0, &keys[i], 0, Lookup::Read, |e| {
                black_box(e.map(|e| e.value.as_str().map(|s| s.len())))
            })
        })
    });
    g.bench_function("set overwrite", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            ks.write(0, &keys[i], 0, |slot| slot.set(Value::string(&[b'w'; 64]), Ttl::Clear))
        })
    });
    // A pipelined batch over a keyspace far larger than the CPU caches: the lookups stall on
    // memory unless their loads are started together first (Keyspace::prefetch).
    let big = Keyspace::new(1);
    let n = 1_000_000;
    let big_keys: Vec<Vec<u8>> = (0..n).map(|i| format!("key:{i:012}").into_bytes()).collect();
    for k in &big_keys {
        big.write(0, k, 0, |slot| slot.set(Value::string(&[b'v'; 64]), Ttl::Clear));
    }
    let mut rng = 12345u64;
    let mut batch = || -> [&[u8]; 16] {
        std::array::from_fn(|_| {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            &big_keys[(rng >> 33) as usize % n][..]
        })
    };
    let mut out = Vec::with_capacity(16 * 64);
    for prefetch in [false, true] {
        let name = if prefetch {
            "16 gets over 1M keys, prefetched"
        } else {
            "16 gets over 1M keys"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let keys = batch();
                if prefetch {
                    big.prefetch(0, &keys);
                }
                out.clear();
                for k in keys {
                    big.read(0, k, 0, Lookup::Read, |e| {
                        out.extend_from_slice(e.and_then(|e| e.value.as_str()).unwrap_or_default())
                    });
                }
                black_box(out.len())
            })
        });
    }
    g.finish();
}

fn dispatch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = rt.enter();
    let server = respite::Server::new(respite::Config::default(), 0);
    let addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let info = server.clients.register(addr, addr, 0);
    let mut client = Client::new(info, true);
    let mut out = Reply::new(false);
    let set: Vec<Bytes> = vec![
        Bytes::from_static(b"SET"),
        Bytes::from_static(b"key:000000000001"),
        Bytes::from(vec![b'v'; 64]),
    ];
    let get: Vec<Bytes> = vec![Bytes::from_static(b"GET"), Bytes::from_static(b"key:000000000001")];
    let mut g = c.benchmark_group("dispatch");
    g.bench_function("SET", |b| {
        b.iter(|| {
            out.buf.clear();
            respite::commands::execute(&server, &mut client, &mut out, &set);
        })
    });
    g.bench_function("GET", |b| {
        b.iter(|| {
            out.buf.clear();
            respite::commands::execute(&server, &mut client, &mut out, &get);
        })
    });
    g.finish();
}

criterion_group!(benches, decoding, encoding, keyspace, dispatch);
criterion_main!(benches);
