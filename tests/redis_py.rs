//! redis-py against respite (tests/compat/redis_py_smoke.py), when python3 has the redis package
//! (.ci/run installs it from PyPI); otherwise a notice and a skip.

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_smoke_in_resp2_and_resp3() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import redis"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("python3 with the redis package not found; redis-py test skipped (.ci/run installs it)");
        return;
    }
    let h = common::start().await;
    let port = h.addr.port().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/redis_py_smoke.py");
    let out = tokio::process::Command::new("timeout")
        .args(["60", "python3", script, &port])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("RESP2: ok") && text.contains("RESP3: ok"), "{text}");
    h.stop().await;
}
