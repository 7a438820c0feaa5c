#!/usr/bin/env python3
"""django-redis's own test suite (from the PyPI sdist of django-redis==DJANGO_REDIS_VERSION) against
respite: the cache backend of the seed system, through the installed redis-py (RESP3 by default).

The suite's settings modules (tests/settings/*.py) point at 127.0.0.1:6379; the runner copies the
sdist to a temporary directory and points them at a respite-server on a free loopback port instead.
Its conftest parametrizes every cache test over the settings modules, but Django reads its settings
once per process, so each settings module gets its own pytest process (run in parallel: the suite is
sleep-bound by its TTL tests; each module uses its own database number). Not run: sqlite_sentinel and
sqlite_sentinel_opts (they need a Redis Sentinel on 26379) and sqlite_usock (a unix socket; respite
listens on TCP only). The outcomes are compared with tests/compat/django_redis_expected.txt (format
and policy: compat_runner.py).

    python3 tests/compat/fetch_suites.py
    python3 tests/compat/django_redis_suite.py [--server target/debug/respite-server]
    python3 tests/compat/django_redis_suite.py --update --redis-server /usr/bin/redis-server

Exit status: 0 when every outcome is as expected, 1 otherwise, 77 when Django, django-redis's test
dependencies or the sdist are missing. `cargo test --workspace` runs it via tests/django_redis_suite.rs.
"""
import argparse
import os
import re
import shutil
import sys
import time

import compat_runner as cr

DJANGO_REDIS_VERSION = "7.0.0"
CONFIGS = ["sqlite", "sqlite_gzip", "sqlite_herd", "sqlite_json", "sqlite_lz4", "sqlite_msgpack",
           "sqlite_sharding", "sqlite_zlib", "sqlite_zstd"]
NOT_RUN = ["sqlite_sentinel", "sqlite_sentinel_opts", "sqlite_usock"]
RUNS = ["default"]
DEADLINE_S = 240
NEEDS = ["pytest", "pytest_timeout", "pytest_mock", "xdist", "django", "redis", "msgpack", "lz4", "pyzstd"]
EXPECTED = os.path.join(cr.HERE, "django_redis_expected.txt")
PYTEST_INI = "[pytest]\npythonpath = tests\ntestpaths = tests\nxfail_strict = true\n"


def derive_reason(cat, detail):
    if cat == "skip":
        return detail.removeprefix("Skipped: ") or "skipped"
    m = re.search(r"unknown command '([^']*)'", detail)
    if m:
        cmd = m.group(1).upper()
        if cmd in ("EVAL", "EVALSHA", "SCRIPT"):
            return f"needs {cmd}: scripting (not implemented)"
        return f"needs {cmd} (not implemented; issue 8 for hashes, lists, sets, sorted sets)"
    return "TODO explain: " + detail


def prepare(sdist, suite, port):
    shutil.copytree(sdist, suite)
    settings = os.path.join(suite, "tests", "settings")
    for name in os.listdir(settings):
        path = os.path.join(settings, name)
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(re.sub(r"127\.0\.0\.1:6379\b", f"127.0.0.1:{port}", text))
    # The sdist's [tool.pytest] adds coverage, doctests and xdist options; replace it (pytest.ini wins).
    with open(os.path.join(suite, "pytest.ini"), "w") as f:
        f.write(PYTEST_INI)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cr.add_common_args(ap, EXPECTED)
    args = ap.parse_args()

    sdist = os.path.join(args.suites_dir, f"django_redis-{DJANGO_REDIS_VERSION}")
    cr.preflight(args, sdist, NEEDS)

    started = time.monotonic()
    work = cr.fresh_workdir("respite-django-redis-")

    def run_all(binary, label):
        srv = cr.Server(binary, work)
        suite = os.path.join(work, f"suite-{label}")
        prepare(sdist, suite, srv.port)
        groups = [(c, f"{c} and not {c}_" if c == "sqlite" else c) for c in CONFIGS]
        # The tests that take no cache settings; some read Django settings all the same, which in the
        # suite's own single-process run some earlier test has configured: give them the plain one.
        groups.append(("plain", "not sqlite"))
        procs = []
        try:
            version = srv.version()
            for name, keyword in groups:
                procs.append(cr.start_pytest(suite, ["tests", "-k", keyword],
                                             os.path.join(work, f"{label}-{name}.tsv"),
                                             os.path.join(work, f"{label}-{name}.log"),
                                             {"DJANGO_SETTINGS_MODULE": "settings.sqlite"} if name == "plain" else {}))
            timed_out = cr.wait_all(procs, time.monotonic() + DEADLINE_S)
        finally:
            srv.stop()
        results, complete = {}, not timed_out
        for (name, _), p in zip(groups, procs):
            got = cr.read_outcomes(p.outcomes_path)
            if not got:
                complete = False
                print(f"{label} [{name}]: pytest {'timed out' if timed_out else 'reported nothing'}; "
                      f"log tail:\n{cr.tail(p.log_path)}")
            results.update(got)
        return {"default": results}, version, complete

    results, version, ok = run_all(args.server, "respite")
    expected = cr.Expected(args.expected, RUNS)
    order = list(results["default"])

    redis_results = None
    if args.redis_server:
        redis_results, redis_version, _ = run_all(args.redis_server, "redis")
        _, redis_counts = cr.compare(cr.Expected(os.devnull, RUNS), redis_results, RUNS)
        for line in cr.summarize(redis_counts, RUNS, f"redis-server {redis_version}"):
            print(line)
        for n, (c, d) in redis_results["default"].items():
            if c == "fail" and results["default"].get(n, ("?",))[0] != "fail":
                print(f"fails on redis-server but not on respite: {n}: {d}")

    if args.update:
        if not ok:
            sys.exit("not updating the expected file from an incomplete run")
        cr.update(expected, results, RUNS, derive_reason, order, args.rederive)
        if redis_results is not None:
            cr.mark_also_on_redis(expected, redis_results, RUNS, redis_version)
            expected.write(order)
        print(f"wrote {args.expected}")

    problems, counts = cr.compare(expected, results, RUNS)
    for line in cr.summarize(counts, RUNS, f"django-redis {DJANGO_REDIS_VERSION} suite on respite ({version})"):
        print(line)
    print(f"took {time.monotonic() - started:.0f} s")
    cr.remove_workdir(work, args.keep or not ok or bool(problems))
    if problems:
        print(f"\n{len(problems)} outcome(s) differ from {os.path.relpath(args.expected, cr.REPO)}:")
        for p in problems:
            print("  " + p)
        print("\nA new failure is a regression in respite (or the environment). A test that now passes means "
              "the expected file\nis stale: run `python3 tests/compat/django_redis_suite.py --update` and update "
              "the README's counts.")
        sys.exit(1)
    if not ok:
        sys.exit(1)
    print("all outcomes as expected")


if __name__ == "__main__":
    main()
