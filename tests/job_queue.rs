//! A real job-queue pattern across many clients, as rq/Sidekiq-style workers use Redis: producers
//! LPUSH jobs, workers wait in BRPOP, and a reliable variant moves each job to a per-worker
//! processing list with BLMOVE and acknowledges it with LREM. Every job must be processed exactly
//! once, nothing may be left in flight, and the server must end with no blocked clients.

mod common;
use common::*;

use std::collections::HashSet;
use std::time::{Duration, Instant};

const PRODUCERS: usize = 4;
const WORKERS: usize = 8;
const JOBS_PER_PRODUCER: usize = 500;

async fn produce(addr: std::net::SocketAddr, queue: &'static str, producer: usize) {
    let mut c = client(addr).await;
    for j in 0..JOBS_PER_PRODUCER {
        let _: i64 = redis::cmd("LPUSH")
            .arg(queue)
            .arg(format!("job:{producer}:{j}"))
            .query_async(&mut c)
            .await
            .unwrap();
        if j % 50 == 0 {
            // Let workers drain and block again, so pushes keep waking blocked clients.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

fn all_jobs() -> HashSet<String> {
    (0..PRODUCERS)
        .flat_map(|p| (0..JOBS_PER_PRODUCER).map(move |j| format!("job:{p}:{j}")))
        .collect()
}

/// Runs workers until the queue stays empty for a while (bounded overall), returning what each did.
async fn run<F, Fut>(addr: std::net::SocketAddr, worker: F) -> Vec<String>
where
    F: Fn(std::net::SocketAddr, usize) -> Fut,
    Fut: std::future::Future<Output = Vec<String>> + Send + 'static,
{
    let workers: Vec<_> = (0..WORKERS).map(|w| tokio::spawn(worker(addr, w))).collect();
    let mut done = Vec::new();
    for w in workers {
        done.extend(
            tokio::time::timeout(Duration::from_secs(60), w)
                .await
                .expect("worker finished")
                .unwrap(),
        );
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brpop_workers_process_every_job_once() {
    let h = start().await;
    let producers: Vec<_> = (0..PRODUCERS).map(|p| tokio::spawn(produce(h.addr, "jobs", p))).collect();
    let done = run(h.addr, |addr, _| async move {
        let mut c = client(addr).await;
        let mut mine = Vec::new();
        let started = Instant::now();
        // Stop after the queue stayed empty for one 0.5 s wait.
        while started.elapsed() < Duration::from_secs(50) {
            let got: Option<(String, String)> = redis::cmd("BRPOP").arg("jobs").arg(0.5).query_async(&mut c).await.unwrap();
            match got {
                Some((queue, job)) => {
                    assert_eq!(queue, "jobs");
                    mine.push(job);
                }
                None => break,
            }
        }
        mine
    })
    .await;
    for p in producers {
        p.await.unwrap();
    }
    let unique: HashSet<String> = done.iter().cloned().collect();
    assert_eq!(done.len(), PRODUCERS * JOBS_PER_PRODUCER, "every job exactly once");
    assert_eq!(unique, all_jobs());
    let mut c = client(h.addr).await;
    let left: i64 = redis::cmd("LLEN").arg("jobs").query_async(&mut c).await.unwrap();
    assert_eq!(left, 0);
    let info: String = redis::cmd("INFO").arg("clients").query_async(&mut c).await.unwrap();
    assert!(info.contains("blocked_clients:0"), "{info}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliable_queue_with_blmove_and_lrem_acks() {
    let h = start().await;
    let producers: Vec<_> = (0..PRODUCERS).map(|p| tokio::spawn(produce(h.addr, "rq", p))).collect();
    let done = run(h.addr, |addr, w| async move {
        let mut c = client(addr).await;
        let processing = format!("rq:processing:{w}");
        let mut mine = Vec::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(50) {
            let job: Option<String> = redis::cmd("BLMOVE")
                .arg("rq")
                .arg(&processing)
                .arg("RIGHT")
                .arg("LEFT")
                .arg(0.5)
                .query_async(&mut c)
                .await
                .unwrap();
            let Some(job) = job else { break };
            // The job is visible in this worker's processing list until acknowledged.
            let inflight: Vec<String> = redis::cmd("LRANGE")
                .arg(&processing)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
                .unwrap();
            assert_eq!(inflight, std::slice::from_ref(&job));
            let acked: i64 = redis::cmd("LREM")
                .arg(&processing)
                .arg(1)
                .arg(&job)
                .query_async(&mut c)
                .await
                .unwrap();
            assert_eq!(acked, 1);
            mine.push(job);
        }
        mine
    })
    .await;
    for p in producers {
        p.await.unwrap();
    }
    let unique: HashSet<String> = done.iter().cloned().collect();
    assert_eq!(done.len(), PRODUCERS * JOBS_PER_PRODUCER);
    assert_eq!(unique, all_jobs());
    let mut c = client(h.addr).await;
    let keys: Vec<String> = redis::cmd("KEYS").arg("rq*").query_async(&mut c).await.unwrap();
    assert!(keys.is_empty(), "nothing left queued or in flight: {keys:?}");
    h.stop().await;
}
