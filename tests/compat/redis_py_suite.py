#!/usr/bin/env python3
"""redis-py's own test suite (from the PyPI sdist of redis==REDIS_PY_VERSION) against respite.

Runs the modules in MODULES twice, with --protocol=2 and --protocol=3 (RESP2 and RESP3 handshakes),
each against its own respite-server on a free loopback port, in parallel, and compares every test's
outcome with tests/compat/redis_py_expected.txt (format and policy: compat_runner.py).

    python3 tests/compat/fetch_suites.py            # once: sdists into target/compat-suites/
    python3 tests/compat/redis_py_suite.py [--server target/debug/respite-server]
    python3 tests/compat/redis_py_suite.py --update --redis-server /usr/bin/redis-server
                                                     # rewrite the expected file, marking the failures
                                                     # that real Redis shares

Exit status: 0 when every outcome is as expected, 1 otherwise, 77 when pytest or the sdist is missing.
`cargo test --workspace` runs it through tests/redis_py_suite.rs.
"""
import argparse
import os
import re
import shutil
import sys
import time

import compat_runner as cr

REDIS_PY_VERSION = "8.1.0"
# The command families respite implements are spread over these modules; the rest of redis-py's
# suite is cluster, sentinel, modules (search/json/timeseries/bloom), TLS, caching.
MODULES = [
    "tests/test_commands.py",  # strings, keys, expiry, scan, info, config, client, command, acl, ...
    "tests/test_pipeline.py",  # pipelines, MULTI/EXEC, WATCH
    # SUBSCRIBE/PSUBSCRIBE/SSUBSCRIBE, messages, RESP3 pushes, keyspace events. Its
    # TestPubSubRedisDown expects nothing listening on localhost:6390 (it fails while a server runs
    # there; the review-api README runs its respite on 6399 for that reason).
    "tests/test_pubsub.py",
    "tests/test_connection.py",  # handshake (HELLO, RESP3), parsers, reconnects
    "tests/test_connection_pool.py",  # pools, health checks, URL options, error replies
    "tests/test_encoding.py",
    "tests/test_client.py",
    "tests/test_asyncio/test_commands.py",  # the asyncio client, single connection and pool
    "tests/test_asyncio/test_pipeline.py",
    "tests/test_asyncio/test_connection.py",
    "tests/test_scripting.py",  # EVAL, EVALSHA, SCRIPT, redis-py's Script objects
    "tests/test_lock.py",  # Lock: SET NX PX to take, Lua scripts to release and extend
    "tests/test_asyncio/test_scripting.py",
    "tests/test_asyncio/test_lock.py",
    "tests/test_monitor.py",  # MONITOR's lines as redis-py parses them
    "tests/test_asyncio/test_monitor.py",
]
RUNS = ["resp2", "resp3"]
DEADLINE_S = 420  # a run takes ~200 s here since test_pubsub.py joined (its tests sleep)
NEEDS = ["pytest", "pytest_asyncio", "pytest_timeout", "packaging"]
EXPECTED = os.path.join(cr.HERE, "redis_py_expected.txt")

FAMILIES = [
    (r"^(SUBSCRIBE|PSUBSCRIBE|SSUBSCRIBE|PUBLISH|PUBSUB)$", "pub/sub (issue 8)"),
    (r"^(SETBIT|GETBIT|BITCOUNT|BITPOS|BITOP|BITFIELD|BITFIELD_RO)$", "bitmaps (not implemented)"),
    (r"^(H[A-Z]+)$", "hashes (issue 8)"),
    (r"^(LPUSH|RPUSH|LPUSHX|RPUSHX|LPOP|RPOP|LLEN|LRANGE|LINDEX|LSET|LINSERT|LREM|LTRIM|LPOS|LMOVE|RPOPLPUSH|LMPOP"
     r"|BLPOP|BRPOP|BLMOVE|BRPOPLPUSH|BLMPOP)$", "lists (issue 8)"),
    (r"^(S[A-Z]+)$", "sets (issue 8)"),
    (r"^(Z[A-Z]+|BZPOPMIN|BZPOPMAX|BZMPOP)$", "sorted sets (issue 8)"),
    (r"^(X[A-Z]+)$", "streams (not implemented)"),
    (r"^(GEO[A-Z]+)$", "geo (not implemented)"),
    (r"^(PF[A-Z]+)$", "HyperLogLog (not implemented)"),
    (r"^(EVAL|EVALSHA|EVAL_RO|SCRIPT|FCALL|FCALL_RO)$", "scripting (not implemented)"),
    (r"^(DUMP|RESTORE)$", "DUMP/RESTORE serialization (not implemented)"),
    (r"^(ROLE|REPLICAOF|SLAVEOF|SYNC|PSYNC|WAIT|WAITAOF|FAILOVER)$", "replication (respite has none)"),
    (r"^(BGSAVE|SAVE|BGREWRITEAOF)$", "persistence (respite does not persist)"),
    (r"^(MONITOR)$", "MONITOR (not implemented)"),
    (r"^(MODULE)$", "modules (not implemented)"),
]


def needs(cmd):
    cmd = cmd.upper()
    for pattern, family in FAMILIES:
        if re.match(pattern, cmd):
            return f"needs {cmd}: {family}"
    return f"needs {cmd} (not implemented)"


def derive_reason(cat, detail):
    if cat == "skip":
        return detail.removeprefix("Skipped: ") or "skipped"
    if cat == "xfail":
        return "marked xfail by redis-py: " + (detail or "?")
    m = re.search(r"unknown command '([^']*)'", detail)
    if m:
        return needs(m.group(1))
    m = re.search(r"unknown subcommand '([^']*)'\. Try (\w+) HELP", detail)
    if m:
        return f"needs {m.group(2)} {m.group(1).upper()} (not implemented)"
    m = re.search(r"wrong number of arguments for '(\w+)'\. Try (\w+) HELP", detail)
    if m:
        return f"needs {m.group(2)} {m.group(1).upper()} (not implemented)"
    if "respite has only the 'default' user" in detail:
        return "needs ACL users other than 'default' (not implemented)"
    m = re.search(r"connecting to localhost:(\d+)", detail)
    if m:
        return f"environment: needs a server on localhost:{m.group(1)} (redis-py's own docker setup)"
    # Object ids and addresses differ from run to run; keep the reason stable.
    detail = re.sub(r"(id|addr|laddr)='[^']*'", r"\1=...", re.sub(r"0x[0-9a-f]+", "0x...", detail))
    return "TODO explain: " + detail


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cr.add_common_args(ap, EXPECTED)
    ap.add_argument("-k", dest="keyword", help="pytest -k filter (for debugging; compares only what ran)")
    args = ap.parse_args()
    if args.update and args.keyword:
        sys.exit("--update needs the whole selection (no -k)")

    sdist = os.path.join(args.suites_dir, f"redis-{REDIS_PY_VERSION}")
    cr.preflight(args, sdist, NEEDS)

    started = time.monotonic()
    work = cr.fresh_workdir("respite-redis-py-")
    suite = os.path.join(work, "suite")
    shutil.copytree(sdist, suite)

    def run_all(binary, label):
        servers, procs = [], []
        try:
            for run in RUNS:
                srv = cr.Server(binary, work)
                servers.append(srv)
                pytest_args = [*MODULES, f"--redis-url=redis://127.0.0.1:{srv.port}", f"--protocol={run[-1]}"]
                if args.keyword:
                    pytest_args += ["-k", args.keyword]
                procs.append(cr.start_pytest(suite, pytest_args, os.path.join(work, f"{label}-{run}.tsv"),
                                             os.path.join(work, f"{label}-{run}.log")))
            version = servers[0].version()
            timed_out = cr.wait_all(procs, time.monotonic() + DEADLINE_S)
        finally:
            for srv in servers:
                srv.stop()
        results = {run: cr.read_outcomes(p.outcomes_path) for run, p in zip(RUNS, procs)}
        for run, p in zip(RUNS, procs):
            if timed_out or not results[run]:
                print(f"{label} [{run}]: pytest {'timed out' if timed_out else 'reported nothing'}; "
                      f"log tail:\n{cr.tail(p.log_path)}")
        return results, version, timed_out

    results, version, timed_out = run_all(args.server, "respite")
    expected = cr.Expected(args.expected, RUNS)
    order = [n for run in RUNS for n in results[run]]
    ok = not timed_out and all(results[run] for run in RUNS)

    redis_results = None
    if args.redis_server:
        redis_results, redis_version, _ = run_all(args.redis_server, "redis")
        _, redis_counts = cr.compare(cr.Expected(os.devnull, RUNS), redis_results, RUNS)
        for line in cr.summarize(redis_counts, RUNS, f"redis-server {redis_version}"):
            print(line)
        for run in RUNS:
            worse = [n for n, (c, _) in redis_results[run].items()
                     if c == "fail" and results[run].get(n, ("?",))[0] != "fail"]
            for n in worse:
                print(f"[{run}] fails on redis-server but not on respite: {n}: {redis_results[run][n][1]}")

    if args.update:
        if not ok:
            sys.exit("not updating the expected file from an incomplete run")
        cr.update(expected, results, RUNS, derive_reason, order, args.rederive)
        if redis_results is not None:
            cr.mark_also_on_redis(expected, redis_results, RUNS, redis_version)
            expected.write(order)
        print(f"wrote {args.expected}")
        todo = sum(1 for _, r in expected.entries.values() if r.startswith("TODO"))
        if todo:
            print(f"{todo} entries need a reason written by hand (TODO explain)")

    problems, counts = cr.compare(expected, results, RUNS)
    if args.keyword:
        problems = [p for p in problems if "LISTED BUT NOT RUN" not in p]
    for line in cr.summarize(counts, RUNS, f"redis-py {REDIS_PY_VERSION} suite on respite ({version})"):
        print(line)
    elapsed = time.monotonic() - started
    print(f"took {elapsed:.0f} s")
    cr.remove_workdir(work, args.keep or not ok or bool(problems))
    if problems:
        print(f"\n{len(problems)} outcome(s) differ from {os.path.relpath(args.expected, cr.REPO)}:")
        for p in problems:
            print("  " + p)
        print("\nA new failure is a regression in respite (or the environment). A test that now passes means "
              "the expected file\nis stale: run `python3 tests/compat/redis_py_suite.py --update` and update the "
              "README's counts.")
        sys.exit(1)
    if not ok:
        sys.exit(1)
    print("all outcomes as expected")


if __name__ == "__main__":
    main()
