//! redis-py's own test suite (the PyPI sdist's tests/, strings, keys, expiry, scan, info, config,
//! client, pipelines/transactions, connection handshakes in RESP2 and RESP3) against the
//! respite-server binary, compared test by test with tests/compat/redis_py_expected.txt by
//! tests/compat/redis_py_suite.py. Skips with a notice when pytest or the sdist is missing.

#[path = "compat/runner.rs"]
mod runner;

#[test]
fn redis_py_own_suite_gives_the_expected_outcomes() {
    runner::run_suite("redis_py_suite.py", "redis-py's own test suite");
}
