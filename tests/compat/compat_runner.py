"""Shared machinery of the compat suite runners (redis_py_suite.py, django_redis_suite.py).

A runner starts a server (respite-server, or redis-server for comparison) on a free loopback port,
runs a third-party pytest suite against it with the pytest_outcomes plugin, and compares each test's
outcome with an expected-results file kept in the repo.

Expected-results file, one line per test whose outcome is not "pass":

    OUTCOME  RUNS  NODEID  -- REASON

OUTCOME is fail (failed or error), skip, xfail, or flaky (pass and fail both accepted: a race that is
listed as a respite bug). RUNS is * (every run of the suite) or a comma list of run names (resp2,resp3).
A test that is not listed must pass. Lines starting with # are comments. `--update` rewrites the
entries from the outcomes of the current run, keeping the reasons of entries whose outcome did not
change and deriving a reason for new ones; `--redis-server PATH` runs the same selection against a real
redis-server and marks the listed failures that fail there too with "[also fails on Redis X]".

Policy: any difference fails the run, in both directions. A new failure is a regression; a test that
newly passes means respite gained a feature and the file (and the README's counts) must be updated with
`--update`, so the file never claims more failures than there are.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SKIP_EXIT = 77  # prerequisites missing: the Rust test prints a notice and passes

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SUITES_DIR = os.environ.get("RESPITE_COMPAT_SUITES") or os.path.join(REPO, "target", "compat-suites")

CATEGORY = {
    "passed": "pass",
    "xpassed": "pass",
    "failed": "fail",
    "error": "fail",
    "skipped": "skip",
    "xfailed": "xfail",
}
ALSO_ON_REDIS = re.compile(r"\s*\[also fails on Redis [^\]]*\]")


def missing_modules(modules):
    """The python modules among `modules` that python3 cannot import."""
    code = (
        "import importlib.util, sys\n"
        "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    )
    out = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True)
    return out.stdout.split()


def skip(msg):
    print(f"SKIPPED: {msg}", flush=True)
    sys.exit(SKIP_EXIT)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class Server:
    """respite-server or redis-server on a free loopback port, started the redis-server way."""

    def __init__(self, binary, workdir, extra_args=()):
        self.binary = binary
        for _ in range(5):
            self.port = free_port()
            self.log_path = os.path.join(workdir, f"server-{self.port}.log")
            args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--enable-debug-command", "yes", "--dir", workdir, *extra_args]
            self.log = open(self.log_path, "w")
            self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _ping(self.port):
                    return
                time.sleep(0.05)
            self.stop()  # port taken by someone else meanwhile, or a slow start: try another port
        raise RuntimeError(f"{binary} did not answer PING; log:\n{open(self.log_path).read()[-2000:]}")

    def version(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            data = b""
            while b"redis_version:" not in data or not data.endswith(b"\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        m = re.search(rb"redis_version:(\S+)", data)
        return m.group(1).decode() if m else "?"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_pytest(cwd, args, outcomes_path, log_path, extra_env=None):
    """pytest with the outcomes plugin, in the background; returns the Popen."""
    env = dict(os.environ)
    env.update(extra_env or {})
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    env["COMPAT_OUTCOMES"] = outcomes_path
    env["COMPAT_NO_TRACEMALLOC"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "pytest_outcomes",
           "-q", "--tb=no", "-W", "ignore", "--timeout", "30", *args]
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log = log
    proc.log_path = log_path
    proc.outcomes_path = outcomes_path
    return proc


def wait_all(procs, deadline):
    """Wait for the pytest processes until `deadline` (monotonic); kill what is still running."""
    timed_out = False
    for p in procs:
        try:
            p.wait(max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            p.kill()
            p.wait()
        p.log.close()
    return timed_out


def read_outcomes(path):
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            nodeid, outcome, detail = line.rstrip("\n").split("\t", 2)
            out[nodeid] = (CATEGORY.get(outcome, outcome), detail)
    return out


def tail(path, n=40):
    try:
        with open(path) as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


class Expected:
    """The expected-results file: header comments kept verbatim, entries keyed by (nodeid, run)."""

    def __init__(self, path, runs):
        self.path = path
        self.runs = runs
        self.header = []
        self.entries = {}  # (nodeid, run) -> (outcome, reason)
        if not os.path.exists(path):
            return
        in_header = True
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line.strip() or line.startswith("#"):
                    if in_header:
                        self.header.append(line)
                    continue
                in_header = False
                m = re.match(r"(\S+)\s+(\S+)\s+(.+?)\s+--(?:\s+(.*))?$", line)
                if not m or m.group(1) not in ("fail", "skip", "xfail", "flaky"):
                    raise SystemExit(f"{path}:{lineno}: cannot parse: {line}")
                outcome, run_list, nodeid, reason = m.groups()
                reason = reason or ""
                for run in runs if run_list == "*" else run_list.split(","):
                    self.entries[(nodeid, run)] = (outcome, reason)

    def expected(self, nodeid, run):
        return self.entries.get((nodeid, run), ("pass", ""))[0]

    def reason(self, nodeid, run):
        return self.entries.get((nodeid, run), ("pass", ""))[1]

    def write(self, order):
        """Write the entries, tests in `order` (first-seen order of the runs), runs merged to * when
        a test has the same outcome and reason in every run."""
        lines = list(self.header)
        while lines and not lines[-1].strip():
            lines.pop()
        lines.append("")
        seen = set()
        for nodeid in order:
            if nodeid in seen:
                continue
            seen.add(nodeid)
            per_run = [(run, self.entries.get((nodeid, run))) for run in self.runs]
            listed = [(run, e) for run, e in per_run if e is not None]
            if not listed:
                continue
            if len(listed) == len(self.runs) and len({e for _, e in listed}) == 1:
                outcome, reason = listed[0][1]
                lines.append(f"{outcome:5} *  {nodeid}  -- {reason}")
                continue
            groups = {}
            for run, e in listed:
                groups.setdefault(e, []).append(run)
            for (outcome, reason), runs in groups.items():
                lines.append(f"{outcome:5} {','.join(runs)}  {nodeid}  -- {reason}")
        with open(self.path, "w") as f:
            f.write("\n".join(lines) + "\n")


def compare(expected, results, runs):
    """results: run -> {nodeid: (category, detail)}. Returns (problems, counts)."""
    problems = []
    counts = {}
    for run in runs:
        got = results.get(run, {})
        c = counts.setdefault(run, {"pass": 0, "fail": 0, "skip": 0, "xfail": 0, "flaky": 0})
        for nodeid, (cat, detail) in got.items():
            want = expected.expected(nodeid, run)
            # A listed race counts apart from passes and failures, so the counts do not wobble.
            c["flaky" if want == "flaky" and cat in ("pass", "fail") else cat] += 1
            if want == cat or (want == "flaky" and cat in ("pass", "fail")):
                continue
            if want == "pass":
                problems.append(f"[{run}] NEW {cat.upper()}: {nodeid}: {detail}")
            elif cat == "pass":
                problems.append(f"[{run}] NOW PASSES (expected {want}: {expected.reason(nodeid, run)}): {nodeid}")
            else:
                problems.append(f"[{run}] {cat.upper()} instead of {want}: {nodeid}: {detail}")
        for (nodeid, r), (want, reason) in expected.entries.items():
            if r == run and nodeid not in got:
                problems.append(f"[{run}] LISTED BUT NOT RUN ({want}: {reason}): {nodeid}")
    return problems, counts


def update(expected, results, runs, derive_reason, order, rederive=None):
    """Rewrite expected.entries from the results, keeping reasons of unchanged entries (except those
    matching the regex `rederive`, stale once the feature they name exists: derived afresh)."""
    new = {}
    for run in runs:
        for nodeid, (cat, detail) in results.get(run, {}).items():
            old = expected.entries.get((nodeid, run))
            if old and old[0] == "flaky" and cat in ("pass", "fail"):
                new[(nodeid, run)] = old
            elif cat == "pass":
                continue
            elif old and old[0] == cat and not (rederive and re.search(rederive, old[1])):
                new[(nodeid, run)] = old
            else:
                new[(nodeid, run)] = (cat, derive_reason(cat, detail))
    expected.entries = new
    expected.write(order)


def mark_also_on_redis(expected, redis_results, runs, redis_version):
    """Append/remove the "[also fails on Redis X]" note on listed failures."""
    note = f" [also fails on Redis {redis_version}]"
    for (nodeid, run), (outcome, reason) in list(expected.entries.items()):
        base = ALSO_ON_REDIS.sub("", reason)
        rcat = redis_results.get(run, {}).get(nodeid, ("?", ""))[0]
        if outcome in ("fail", "flaky") and rcat == "fail":
            base += note
        expected.entries[(nodeid, run)] = (outcome, base)


def summarize(counts, runs, label):
    lines = []
    for run in runs:
        c = counts.get(run, {})
        total = sum(c.values())
        flaky = f", {c['flaky']} flaky (listed races)" if c.get("flaky") else ""
        lines.append(f"{label} [{run}]: {total} tests: {c.get('pass', 0)} passed, {c.get('fail', 0)} failed, "
                     f"{c.get('skip', 0)} skipped, {c.get('xfail', 0)} xfailed{flaky}")
    return lines


def add_common_args(ap, expected):
    """The options both suite runners take."""
    ap.add_argument("--server", default=os.path.join(REPO, "target", "debug", "respite-server"))
    ap.add_argument("--redis-server", help="also run against this redis-server and report/mark shared failures")
    ap.add_argument("--suites-dir", default=DEFAULT_SUITES_DIR)
    ap.add_argument("--expected", default=expected)
    ap.add_argument("--update", action="store_true", help="rewrite the expected file from this run")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, outcomes)")
    ap.add_argument("--rederive", metavar="REGEX",
                    help="with --update: derive afresh the reasons that match REGEX (e.g. 'issue 8' once it landed)")


def preflight(args, sdist, needs):
    """Skips (exit 77) without the sdist's tests or the Python modules; fails without the server."""
    if not os.path.isdir(os.path.join(sdist, "tests")):
        skip(f"{sdist}/tests not found (python3 tests/compat/fetch_suites.py downloads the sdist from PyPI)")
    missing = missing_modules(needs)
    if missing:
        skip(f"python3 lacks {' '.join(missing)} (pip install -r tests/compat/requirements.txt)")
    if not os.access(args.server, os.X_OK):
        sys.exit(f"no server binary at {args.server} (cargo build -p respite --bin respite-server)")


def fresh_workdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def remove_workdir(path, keep):
    if keep:
        print(f"work directory kept: {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)
