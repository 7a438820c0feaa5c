#!/usr/bin/env python3
"""respite vs real Redis, side by side, on this machine (issues 3 and 4).

Run through benches/compare-redis.sh, which checks the tools, raises the fd limit
and puts a hard timeout around this script.  Python 3.11 standard library only.

Method
* Both servers are started here with identical arguments on free 127.0.0.1 ports,
  each in its own process group (new session) with a temp dir as cwd, and stopped by
  PID/process group at the end.  Nothing but loopback is used.
* Every figure is a ratio respite/redis of medians over rounds.  Within a round each
  workload runs on both servers back to back; the order alternates per round
  (A B, B A, A B, ...).
* Throughput rows use redis-benchmark --csv (rps, p50, p99) and the server's CPU
  time (utime+stime over all threads, /proc/PID/stat) per request.  CPU used by
  everything else on the box (from /proc/stat, minus the server, redis-benchmark and
  this script) is the "foreign load"; a pair that saw more than FOREIGN_LOAD cores of
  it is re-run while the time budget allows, and the least disturbed attempt kept.
* Loading, memory, eviction and write-flood workloads use a small hand-written RESP2
  client over a plain socket, pipelined in batches.
* Every loop is bounded in count and in time; the run has a time budget (quick:
  ~105 s, full: ~560 s) and drops later rounds rather than overrun it.
"""
import argparse
import collections
import datetime
import itertools
import json
import math
import os
import platform
import random
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"

# --------------------------------------------------------------- workloads ---
KEYSPACE = 100_000   # redis-benchmark -r; prefilled keys are key:%012d like redis-benchmark's
# (row name, redis-benchmark -t, extra args, requests in a full run, prefill value size)
# Request counts give ~1.2-1.5 s per row for Redis 7 on the idle 2-core box (2-3x that when busy).
TPUT_ROWS = [
    ("SET d64 P1 c50", "set", ["-c", "50", "-d", "64", "-P", "1"], 100_000, 64),
    ("GET d64 P1 c50", "get", ["-c", "50", "-d", "64", "-P", "1"], 100_000, 64),
    ("SET d64 P16 c50", "set", ["-c", "50", "-d", "64", "-P", "16"], 1_000_000, 64),
    ("GET d64 P16 c50", "get", ["-c", "50", "-d", "64", "-P", "16"], 1_000_000, 64),
    ("SET d1024 P1 c50", "set", ["-c", "50", "-d", "1024", "-P", "1"], 100_000, 1024),
    ("GET d1024 P1 c50", "get", ["-c", "50", "-d", "1024", "-P", "1"], 100_000, 1024),
    ("SET d1024 P16 c50", "set", ["-c", "50", "-d", "1024", "-P", "16"], 600_000, 1024),
    ("GET d1024 P16 c50", "get", ["-c", "50", "-d", "1024", "-P", "16"], 600_000, 1024),
    ("GET d64 P1 c1000", "get", ["-c", "1000", "-d", "64", "-P", "1"], 100_000, 64),
    ("MSET(10 keys) d64 P1 c50", "mset", ["-c", "50", "-d", "64", "-P", "1"], 100_000, None),
    ("INCR P1 c50", "incr", ["-c", "50", "-P", "1"], 100_000, None),
]
QUICK_TPUT_SCALE = 0.35
BENCH_TIMEOUT = 120          # seconds per redis-benchmark invocation

MEM_KEYS = 1_000_000         # key:%012d (16 B), 32-byte values
MEM_CHUNK = 10_000

IDLE_CONNS = 5_000
IDLE_SETTLE = 0.5            # seconds after the last PONG

MAXMEMORY = 16 * 1024 * 1024
EVICT_ARGS = ["--maxmemory", "16mb", "--maxmemory-policy", "allkeys-lru"]
EVICT_KEYSPACE = 200_000
EVICT_VALUE = 200
EVICT_REQUESTS = 1_500_000
QUICK_EVICT_REQUESTS = 500_000
EVICT_BATCH = 100
EVICT_SKEWS = (0.99, 0.8)
EVICT_SEED = 20240611
EVICT_TIME_LIMIT = 90.0      # per server run; if hit, the exact LRU uses the same prefix

FLOOD_VALUE = 1024
FLOOD_KEYS = 160_000         # 160k x 1 KiB = 10x maxmemory in values alone
FLOOD_BATCH = 100
FLOOD_PAUSE = 1.0            # seconds after the flood for the last RSS sample
FLOOD_TIME_LIMIT = 90.0

FOREIGN_LOAD = 0.15          # cores of foreign CPU load during a measurement that we flag
MAX_RETRIES = 2              # per throughput pair
RETRY_BUDGET = 30            # per run

GROUPS = ("tput", "mem", "idle", "evict", "flood")
# rough seconds per round per group (full sizes); replaced by measured values after round 1
# (on a busy box; quick mode scales tput and evict down)
EST_GROUP_S = {"tput": 90.0, "mem": 12.0, "idle": 6.0, "evict": 55.0, "flood": 8.0}

SERVERS = ("respite", "redis")


class Interrupted(Exception):
    pass


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


PROBLEMS = []   # things that looked wrong (errors, crashes, mismatches), printed at the end


def problem(msg):
    PROBLEMS.append(msg)
    log("  !! " + msg)


# ------------------------------------------------------------ RESP client ---
class RespError(Exception):
    pass


def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = b"%d" % a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def parse_reply(buf, pos):
    """One RESP2 reply at buf[pos:] -> (value, next_pos), next_pos = -1 if incomplete.
    Bulk/simple strings come back as bytes, nil as None, errors as RespError."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None, -1
    t = buf[pos]
    if t == 36:                                   # $ bulk
        n = int(buf[pos + 1:end])
        if n < 0:
            return None, end + 2
        stop = end + 2 + n
        if len(buf) < stop + 2:
            return None, -1
        return buf[end + 2:stop], stop + 2
    if t == 43:                                   # + simple
        return buf[pos + 1:end], end + 2
    if t == 58:                                   # : integer
        return int(buf[pos + 1:end]), end + 2
    if t == 45:                                   # - error
        return RespError(buf[pos + 1:end].decode(errors="replace")), end + 2
    if t == 42:                                   # * array
        n = int(buf[pos + 1:end])
        if n < 0:
            return None, end + 2
        p = end + 2
        items = []
        for _ in range(n):
            v, p = parse_reply(buf, p)
            if p < 0:
                return None, -1
            items.append(v)
        return items, p
    raise ConnectionError("unexpected RESP type byte %r" % chr(t))


class Conn:
    def __init__(self, port, timeout=30.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.pos = 0

    def _recv(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("server closed the connection")
        if self.pos >= len(self.buf):
            self.buf = data
        else:
            self.buf = self.buf[self.pos:] + data
        self.pos = 0

    def read(self, n):
        """n replies of any type."""
        out = []
        append = out.append
        buf, pos = self.buf, self.pos
        while len(out) < n:
            v, p = parse_reply(buf, pos)
            if p < 0:
                self.pos = pos
                self._recv()
                buf, pos = self.buf, 0
                continue
            append(v)
            pos = p
        self.buf, self.pos = buf, pos
        return out

    def read_hits(self, n):
        """n replies to GETs -> list with True (value), False (nil) or RespError."""
        out = []
        append = out.append
        buf, pos = self.buf, self.pos
        size = len(buf)
        while len(out) < n:
            if size - pos >= 5 and buf[pos] == 36:            # $
                if buf[pos + 1] == 45:                          # $-1\r\n
                    append(False)
                    pos += 5
                    continue
                end = buf.find(b"\r\n", pos)
                if end > 0:
                    stop = end + 4 + int(buf[pos + 1:end])
                    if stop <= size:
                        append(True)
                        pos = stop
                        continue
            elif size - pos >= 3:
                v, p = parse_reply(buf, pos)
                if p > 0:
                    append(v if isinstance(v, RespError) else v is not None)
                    pos = p
                    continue
            self.pos = pos
            self._recv()
            buf, pos = self.buf, 0
            size = len(buf)
        self.buf, self.pos = buf, pos
        return out

    def read_lines(self, n):
        """n single-line replies (+OK / -ERR / :N), the replies to a batch of SETs.
        Returns (number of error replies, first error text or None)."""
        if self.pos < len(self.buf):        # leftovers: rare, use the general parser
            reps = self.read(n)
            errs = [r for r in reps if isinstance(r, RespError)]
            return len(errs), (str(errs[0]) if errs else None)
        chunks = []
        lines = 0
        last = b""
        while lines < n:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            lines += data.count(b"\r\n")
            if last == b"\r" and data[:1] == b"\n":
                lines += 1
            last = data[-1:]
            chunks.append(data)
        blob = b"".join(chunks)
        if lines > n or not blob.endswith(b"\r\n"):
            # more than n lines (a multi-line reply or extra data): parse properly
            self.buf, self.pos = blob, 0
            reps = self.read(n)
            errs = [r for r in reps if isinstance(r, RespError)]
            return len(errs), (str(errs[0]) if errs else None)
        self.buf, self.pos = b"", 0
        nerr = blob.count(b"\r\n-") + (1 if blob.startswith(b"-") else 0)
        first = None
        if nerr:
            i = 0 if blob.startswith(b"-") else blob.find(b"\r\n-") + 2
            first = blob[i + 1:blob.find(b"\r\n", i)].decode(errors="replace")
        return nerr, first

    def cmd(self, *args):
        self.sock.sendall(enc(*args))
        return self.read(1)[0]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def parse_info(raw):
    d = {}
    if not isinstance(raw, bytes):
        return d
    for line in raw.decode(errors="replace").splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            d[k.strip()] = v.strip()
    return d


def info(port, section=None):
    try:
        c = Conn(port, timeout=10)
        r = c.cmd("INFO", section) if section else c.cmd("INFO")
        c.close()
    except (OSError, ConnectionError):
        return {}
    return parse_info(r)


def ival(d, key):
    try:
        return int(d[key])
    except (KeyError, ValueError, TypeError):
        return None


def simple(port, *args, timeout=60):
    c = Conn(port, timeout=timeout)
    try:
        return c.cmd(*args)
    finally:
        c.close()


def load_keys(port, n, keyfmt, value_fn, chunk=MEM_CHUNK, time_limit=120.0):
    """Pipelined SETs of keyfmt % i for i in range(n). Returns (errors, first error, seconds)."""
    c = Conn(port, timeout=60)
    errors, first = 0, None
    t0 = time.time()
    for start in range(0, n, chunk):
        end = min(n, start + chunk)
        parts = []
        for i in range(start, end):
            k = keyfmt % i
            v = value_fn(i)
            parts.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
        c.sock.sendall(b"".join(parts))
        e, f = c.read_lines(end - start)
        errors += e
        first = first or f
        if time.time() - t0 > time_limit:
            raise RuntimeError("loading %d keys took over %.0f s (stopped at %d)" % (n, time_limit, end))
    c.close()
    return errors, first, time.time() - t0


# ----------------------------------------------------------------- procfs ---
CLK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """utime+stime of a process (all its threads), seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLK
    except (OSError, ValueError, IndexError):
        return None


def proc_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def sys_busy():
    """CPU seconds spent busy by the whole box (all CPUs, without idle/iowait/steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    v += [0] * (8 - len(v))
    return (sum(v[:8]) - v[3] - v[4] - v[7]) / CLK


def own_cpu():
    """CPU seconds of this script plus its waited-for children (redis-benchmark)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


class CpuWindow:
    """Server CPU, client CPU and foreign load over a measurement."""

    def __init__(self, srv):
        self.srv = srv
        self.t0 = time.time()
        self.s0 = srv.cpu()
        self.b0 = sys_busy()
        self.c0 = own_cpu()

    def end(self):
        wall = max(1e-6, time.time() - self.t0)
        s1 = self.srv.cpu()
        server = (s1 - self.s0) if (s1 is not None and self.s0 is not None) else None
        client = own_cpu() - self.c0
        busy = sys_busy() - self.b0
        return {"wall_s": wall, "server_cpu_s": server,
                "server_cores": server / wall if server is not None else None,
                "client_cores": client / wall,
                "foreign_cores": max(0.0, busy - (server or 0.0) - client) / wall}


# ----------------------------------------------------------------- server ---
def free_port(taken):
    for _ in range(200):
        s = socket.socket()
        try:
            s.bind((HOST, 0))
            p = s.getsockname()[1]
        finally:
            s.close()
        if p > 10000 and p not in taken and p not in (6379, 6380):
            return p
    raise RuntimeError("no free port found")


class Server:
    def __init__(self, name, path, logdir):
        self.name = name
        self.path = path
        self.logdir = logdir
        self.workdir = tempfile.mkdtemp(prefix="compare-redis-%s-" % name)
        self.proc = None
        self.port = None
        self.starts = 0
        self.taken = set()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, extra=(), timeout=30.0):
        self.stop()
        self.port = free_port(self.taken)
        self.taken.add(self.port)
        self.starts += 1
        argv = [self.path, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        argv += list(extra)
        logpath = os.path.join(self.logdir, "%s-%02d.log" % (self.name, self.starts))
        with open(logpath, "wb") as logf:
            logf.write(("$ %s\n" % shlex.join(argv)).encode())
            logf.flush()
            self.proc = subprocess.Popen(argv, cwd=self.workdir, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise RuntimeError("%s exited with code %s at startup; see %s" % (self.name, rc, logpath))
            try:
                if simple(self.port, "PING", timeout=2) == b"PONG":
                    return self.port
            except (OSError, ConnectionError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("%s did not answer PING within %.0f s" % (self.name, timeout))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self, where):
        if self.proc is not None and self.proc.poll() is not None:
            problem("%s died (exit code %s) during %s" % (self.name, self.proc.returncode, where))
            self.proc = None
            return False
        return self.proc is not None

    def rss(self):
        return proc_kb(self.pid, "VmRSS") if self.alive() else None

    def hwm(self):
        return proc_kb(self.pid, "VmHWM") if self.alive() else None

    def cpu(self):
        return proc_cpu(self.pid) if self.alive() else None

    def stop(self):
        p = self.proc
        if p is None:
            return
        self.proc = None
        if p.poll() is None:
            # the server leads its own session/process group (start_new_session)
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                problem("%s did not exit within 10 s of SIGTERM; killed" % self.name)
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=10)
        else:
            try:
                os.killpg(p.pid, signal.SIGKILL)   # leftovers of our own group, if any
            except (ProcessLookupError, PermissionError):
                pass


# -------------------------------------------------------------- throughput ---
def parse_bench_csv(text):
    import csv
    import io
    rows = list(csv.reader(io.StringIO(text)))
    out = {}
    if not rows:
        return out
    hdr = rows[0]
    for r in rows[1:]:
        if len(r) != len(hdr):
            continue
        d = dict(zip(hdr, r))
        try:
            out[d["test"]] = {"rps": float(d["rps"]), "p50": float(d["p50_latency_ms"]),
                              "p99": float(d["p99_latency_ms"])}
        except (KeyError, ValueError):
            pass
    return out


def prefill(srv, size):
    r = simple(srv.port, "FLUSHALL")
    if isinstance(r, RespError):
        raise RuntimeError("FLUSHALL: %s" % r)
    if size:
        val = b"x" * size
        errs, first, _s = load_keys(srv.port, KEYSPACE, b"key:%012d", lambda i: val)
        if errs:
            problem("%s: %d error replies while prefilling (%s)" % (srv.name, errs, first))


def run_bench(ctx, srv, name, test, extra, n):
    argv = [ctx.bench, "-h", HOST, "-p", str(srv.port), "-t", test, "-r", str(KEYSPACE),
            "-n", str(n), "--csv"] + extra
    win = CpuWindow(srv)
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=BENCH_TIMEOUT,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        problem("%s: redis-benchmark timed out after %d s on %s" % (srv.name, BENCH_TIMEOUT, name))
        return None, None
    cpu = win.end()
    with open(os.path.join(ctx.logdir, "redis-benchmark.log"), "a") as f:
        f.write("# %s %s\n$ %s\n%s%s\n" % (srv.name, name, shlex.join(argv), p.stdout, p.stderr))
    res = parse_bench_csv(p.stdout)
    if p.returncode != 0 or not res:
        problem("%s: redis-benchmark failed on %s (rc=%d): %s" % (
            srv.name, name, p.returncode, (p.stderr or p.stdout).strip()[-200:]))
        return None, cpu
    err_lines = [ln for ln in p.stderr.splitlines() if "rror" in ln]
    if err_lines:
        problem("%s: redis-benchmark reported errors on %s: %s" % (srv.name, name, err_lines[0][:200]))
    m = dict(list(res.values())[0])
    if cpu["server_cpu_s"] is not None:
        m["us"] = cpu["server_cpu_s"] / n * 1e6
    return m, cpu


def tput_round(ctx, order):
    seen = ctx.foreign_seen
    for ri, (name, test, extra, n_full, fill) in enumerate(TPUT_ROWS):
        n = max(1000, int(n_full * ctx.tput_scale))
        rest_of_group = ctx.group_s["tput"] * (len(TPUT_ROWS) - ri - 1) / len(TPUT_ROWS)
        best = None
        for attempt in range(MAX_RETRIES + 1):
            pair = {}
            t_pair = time.time()
            for who in order:
                srv = ctx.servers[who]
                if not srv.check_alive("throughput (before %s)" % name):
                    srv.start()
                try:
                    prefill(srv, fill)
                    m, cpu = run_bench(ctx, srv, name, test, extra, n)
                except (OSError, ConnectionError, RuntimeError) as e:
                    problem("%s: %s failed: %r" % (who, name, e))
                    m, cpu = None, None
                srv.check_alive("throughput %s" % name)
                if m:
                    pair[who] = (m, cpu)
                    log("  %-7s %-26s %9.0f rps  p50 %.3f  p99 %.3f ms  %5.2f us/req  cores srv %.2f cli %.2f foreign %.2f" % (
                        who, name, m["rps"], m["p50"], m["p99"], m.get("us", float("nan")),
                        cpu["server_cores"] or 0, cpu["client_cores"], cpu["foreign_cores"]))
            foreign = max([c["foreign_cores"] for _m, c in pair.values()] or [0.0])
            if best is None or foreign < best[0]:
                best = (foreign, pair)
            # re-run a pair hit by a burst of foreign load; when the box is busy all the time
            # (another build running), re-runs would not find a quieter moment: only bursts
            # well above the load seen so far count
            seen.extend(c["foreign_cores"] for _m, c in pair.values())
            limit = max(FOREIGN_LOAD, statistics.median(seen) + FOREIGN_LOAD) if seen else FOREIGN_LOAD
            if foreign <= limit or attempt == MAX_RETRIES:
                break
            if not ctx.may_retry(1.2 * (time.time() - t_pair) + rest_of_group):
                break
            ctx.reruns += 1
            log("  foreign load %.2f cores during %s: re-running the pair" % (foreign, name))
        # one entry per server per round (None if it failed) so rounds stay paired
        for who in SERVERS:
            m, cpu = best[1].get(who, ({}, None))
            for k in ("rps", "p50", "p99", "us"):
                ctx.tput[name][k][who].append(m.get(k))
            if cpu:
                ctx.tput[name]["cpu"][who].append(cpu)
                ctx.foreign.append(cpu["foreign_cores"])


# ------------------------------------------------------------------ memory ---
def mem_run(ctx, srv):
    srv.start()
    time.sleep(0.3)
    rss0 = srv.rss()
    um0 = ival(info(srv.port, "memory"), "used_memory")
    win = CpuWindow(srv)
    errs, first, secs = load_keys(srv.port, MEM_KEYS, b"key:%012d", lambda i: b"val:%028d" % i)
    cpu = win.end()
    time.sleep(0.5)
    n = simple(srv.port, "DBSIZE")
    rss1 = srv.rss()
    um1 = ival(info(srv.port, "memory"), "used_memory")
    srv.check_alive("memory run")
    srv.stop()
    if errs:
        problem("%s: %d error replies loading %d keys (%s)" % (srv.name, errs, MEM_KEYS, first))
    if n != MEM_KEYS:
        problem("%s: DBSIZE %r after loading %d keys" % (srv.name, n, MEM_KEYS))
    if not isinstance(n, int) or n <= 0 or rss0 is None or rss1 is None:
        return None
    r = {"keys": n, "errors": errs, "load_s": secs, "rss_start": rss0, "rss_end": rss1,
         "rss_per_key": (rss1 - rss0) / n, "used_memory_start": um0, "used_memory_end": um1,
         "used_memory_per_key": (um1 - um0) / n if (um0 is not None and um1 is not None) else None,
         "foreign_cores": cpu["foreign_cores"]}
    log("  %-7s memory: %d keys, RSS %.1f B/key, used_memory %s B/key, loaded in %.1f s" % (
        srv.name, n, r["rss_per_key"], "%.1f" % r["used_memory_per_key"] if r["used_memory_per_key"] else "n/a", secs))
    return r


# -------------------------------------------------------------------- idle ---
def idle_run(ctx, srv):
    srv.start()
    time.sleep(0.3)
    rss0 = srv.rss()
    socks = []
    ok = 0
    t_limit = time.time() + 60
    try:
        for _ in range(IDLE_CONNS):
            s = socket.create_connection((HOST, srv.port), timeout=10)
            socks.append(s)
            if time.time() > t_limit:
                raise RuntimeError("opening %d connections took over 60 s" % IDLE_CONNS)
        ping = b"*1\r\n$4\r\nPING\r\n"
        for s in socks:
            s.sendall(ping)
        for s in socks:
            got = b""
            while not got.endswith(b"\r\n") and len(got) < 64:
                d = s.recv(64)
                if not d:
                    break
                got += d
            if got == b"+PONG\r\n":
                ok += 1
        time.sleep(IDLE_SETTLE)
        rss1 = srv.rss()
        cc = ival(info(srv.port, "clients"), "connected_clients")
    finally:
        for s in socks:
            s.close()
    srv.check_alive("idle connections")
    srv.stop()
    if ok != IDLE_CONNS:
        problem("%s: only %d of %d connections got +PONG" % (srv.name, ok, IDLE_CONNS))
    if cc is not None and cc < ok:
        problem("%s: connected_clients %d with %d open connections" % (srv.name, cc, ok))
    if not ok or rss0 is None or rss1 is None:
        return None
    r = {"conns": ok, "connected_clients": cc, "rss_start": rss0, "rss_end": rss1,
         "rss_per_conn": (rss1 - rss0) / ok}
    log("  %-7s idle: %d connections, RSS %.0f B/conn (connected_clients %s)" % (srv.name, ok, r["rss_per_conn"], cc))
    return r


# ---------------------------------------------------------------- eviction ---
def zipf_trace(s, n_keys, n_req, seed):
    """Seeded Zipf(s) ranks over n_keys, mapped through a seeded permutation so the
    hot keys are scattered over the key space.  Pure Python, deterministic."""
    rng = random.Random("%s/%s/%s/%s" % (seed, s, n_keys, n_req))
    cum = list(itertools.accumulate(1.0 / (k ** s) for k in range(1, n_keys + 1)))
    ranks = rng.choices(range(n_keys), cum_weights=cum, k=n_req)
    perm = list(range(n_keys))
    rng.shuffle(perm)
    return [perm[r] for r in ranks]


def exact_lru_hits(trace, cap, batch):
    """Hits of an exact LRU cache of `cap` keys on `trace`, with the client's batch
    semantics: a batch of GETs (a hit refreshes the key), then a SET for each miss
    in order (which inserts, or refreshes a key already SET earlier in the batch)."""
    od = collections.OrderedDict()
    touch = od.move_to_end
    evict = od.popitem
    hits = 0
    for i in range(0, len(trace), batch):
        misses = []
        for k in trace[i:i + batch]:
            if k in od:
                touch(k)
                hits += 1
            else:
                misses.append(k)
        for k in misses:
            if k in od:
                touch(k)
            else:
                od[k] = None
                if len(od) > cap:
                    evict(last=False)
    return hits


def evict_run(ctx, srv, s):
    trace = ctx.trace(s)
    get_cmd, set_cmd = ctx.evict_cmds()
    srv.start(EVICT_ARGS)
    mm = ival(info(srv.port, "memory"), "maxmemory")
    if mm != MAXMEMORY:
        problem("%s: maxmemory is %r, expected %d" % (srv.name, mm, MAXMEMORY))
    time.sleep(0.2)
    rss0 = srv.rss()
    c = Conn(srv.port, timeout=30)
    win = CpuWindow(srv)
    hits = errors = done = 0
    first_err = None
    n = len(trace)
    B = EVICT_BATCH
    t0 = time.time()
    sendall = c.sock.sendall
    for i in range(0, n, B):
        ks = trace[i:i + B]
        sendall(b"".join([get_cmd[k] for k in ks]))
        reps = c.read_hits(len(ks))
        misses = [k for k, r in zip(ks, reps) if r is not True]
        bad = [r for r in reps if isinstance(r, RespError)]
        if bad:
            errors += len(bad)
            first_err = first_err or str(bad[0])
        hits += len(ks) - len(misses)
        if misses:
            sendall(b"".join([set_cmd[k] for k in misses]))
            e, f = c.read_lines(len(misses))
            if e:
                errors += e
                first_err = first_err or f
        done = i + len(ks)
        if time.time() - t0 > EVICT_TIME_LIMIT:
            problem("%s: eviction run (zipf %.2f) hit the %.0f s limit after %d of %d requests" % (
                srv.name, s, EVICT_TIME_LIMIT, done, n))
            break
    elapsed = time.time() - t0
    cpu = win.end()
    c.close()
    time.sleep(0.2)
    inf = info(srv.port)
    held = simple(srv.port, "DBSIZE")
    rss1, hwm = srv.rss(), srv.hwm()
    srv.check_alive("eviction run")
    srv.stop()
    if errors:
        problem("%s: %d error replies in the eviction run, zipf %.2f (%s)" % (srv.name, errors, s, first_err))
    ks_h, ks_m = ival(inf, "keyspace_hits"), ival(inf, "keyspace_misses")
    r = {"s": s, "requests": done, "elapsed_s": elapsed, "req_per_s": done / elapsed,
         "hit_ratio": hits / done, "errors": errors, "keys_held": held if isinstance(held, int) else None,
         "keyspace_hits": ks_h, "keyspace_misses": ks_m,
         "info_hit_ratio": ks_h / (ks_h + ks_m) if (ks_h is not None and ks_m is not None and ks_h + ks_m) else None,
         "evicted_keys": ival(inf, "evicted_keys"), "used_memory": ival(inf, "used_memory"),
         "maxmemory": ival(inf, "maxmemory"), "rss_start": rss0, "rss_end": rss1, "rss_peak": hwm,
         "foreign_cores": cpu["foreign_cores"], "server_cores": cpu["server_cores"]}
    if r["info_hit_ratio"] is not None and abs(r["info_hit_ratio"] - r["hit_ratio"]) > 0.001:
        problem("%s: INFO hit ratio %.4f differs from the client's %.4f (zipf %.2f)" % (
            srv.name, r["info_hit_ratio"], r["hit_ratio"], s))
    if r["keys_held"]:
        lru = ctx.exact_lru(s, done, r["keys_held"])
        r["lru_hit_ratio"] = lru / done
        r["hit_vs_lru"] = r["hit_ratio"] / r["lru_hit_ratio"] if lru else None
        r["hit_minus_lru_points"] = (r["hit_ratio"] - r["lru_hit_ratio"]) * 100
    log("  %-7s zipf %.2f: hit %.4f (INFO %s), exact LRU %.4f, keys %s, evicted %s, used_memory %s, %.0f req/s" % (
        srv.name, s, r["hit_ratio"], "%.4f" % r["info_hit_ratio"] if r["info_hit_ratio"] is not None else "n/a",
        r.get("lru_hit_ratio", float("nan")), r["keys_held"], r["evicted_keys"], r["used_memory"], r["req_per_s"]))
    return r


# ------------------------------------------------------------- write flood ---
def flood_run(ctx, srv):
    srv.start(EVICT_ARGS)
    time.sleep(0.2)
    rss0 = srv.rss()
    c = Conn(srv.port, timeout=30)
    value = b"f" * FLOOD_VALUE
    info_cmd = enc("INFO", "memory")
    used0 = ival(parse_info(c.cmd("INFO", "memory")), "used_memory")
    per_set = None
    nbatches = FLOOD_KEYS // FLOOD_BATCH
    batch_bytes = 0
    max_excess = None
    max_excess_at = None
    max_used = 0
    errors = 0
    first_err = None
    rss_half = rss_full = None
    done = 0
    t0 = time.time()
    win = CpuWindow(srv)
    for b in range(nbatches):
        parts = []
        for i in range(b * FLOOD_BATCH, (b + 1) * FLOOD_BATCH):
            k = b"flood:%010d" % i
            parts.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(value), value))
        payload = b"".join(parts)
        batch_bytes = len(payload)
        c.sock.sendall(payload)
        e, f = c.read_lines(FLOOD_BATCH)
        if e:
            errors += e
            first_err = first_err or f
        c.sock.sendall(info_cmd)
        used = ival(parse_info(c.read(1)[0]), "used_memory")
        if b == 0 and used is not None and used0 is not None:
            per_set = (used - used0) / FLOOD_BATCH     # what one SET adds, before any eviction
        if used is not None:
            max_used = max(max_used, used)
            ex = used - MAXMEMORY
            if max_excess is None or ex > max_excess:
                max_excess, max_excess_at = ex, (b + 1) * FLOOD_BATCH
        done = (b + 1) * FLOOD_BATCH
        if b + 1 == nbatches // 2:
            rss_half = srv.rss()
        if time.time() - t0 > FLOOD_TIME_LIMIT:
            problem("%s: write flood hit the %.0f s limit after %d of %d SETs" % (
                srv.name, FLOOD_TIME_LIMIT, done, FLOOD_KEYS))
            break
    elapsed = time.time() - t0
    cpu = win.end()
    rss_full = srv.rss()
    c.close()
    time.sleep(FLOOD_PAUSE)
    rss_after = srv.rss()
    inf = info(srv.port)
    held = simple(srv.port, "DBSIZE")
    srv.check_alive("write flood")
    srv.stop()
    if errors:
        problem("%s: %d error replies in the write flood (%s)" % (srv.name, errors, first_err))
    r = {"sets": done, "elapsed_s": elapsed, "bytes_written": done * (FLOOD_VALUE + 16),
         "batch_payload_bytes": batch_bytes, "errors": errors, "first_error": first_err,
         "max_excess_bytes": max_excess, "max_used_memory": max_used, "used_memory_per_set": per_set,
         "max_excess_after_sets": max_excess_at,
         "used_memory_end": ival(inf, "used_memory"), "evicted_keys": ival(inf, "evicted_keys"),
         "keys_held": held if isinstance(held, int) else None,
         "rss_start": rss0, "rss_50": rss_half, "rss_100": rss_full, "rss_after_pause": rss_after,
         "rss_change_50_100": (rss_full - rss_half) if (rss_full and rss_half) else None,
         "rss_change_after_pause": (rss_after - rss_full) if (rss_after and rss_full) else None,
         "foreign_cores": cpu["foreign_cores"]}
    log("  %-7s flood: %d SETs, max used_memory excess %s B (after %s SETs), errors %d, RSS 50%% %.1f MB 100%% %.1f MB +%.1fs %.1f MB, evicted %s" % (
        srv.name, done, max_excess, max_excess_at, errors, (rss_half or 0) / 2**20, (rss_full or 0) / 2**20, FLOOD_PAUSE,
        (rss_after or 0) / 2**20, r["evicted_keys"]))
    return r


# --------------------------------------------------------------------- run ---
class Ctx:
    def __init__(self, args):
        self.args = args
        self.bench = args.bench
        self.logdir = os.path.join(args.out, "logs")
        os.makedirs(self.logdir, exist_ok=True)
        self.servers = {"respite": Server("respite", args.respite, self.logdir),
                        "redis": Server("redis", args.redis, self.logdir)}
        self.tput_scale = (QUICK_TPUT_SCALE if args.quick else 1.0) * args.scale
        self.evict_requests = max(10_000, int((QUICK_EVICT_REQUESTS if args.quick else EVICT_REQUESTS) * args.scale))
        self.tput = collections.defaultdict(lambda: collections.defaultdict(lambda: {"respite": [], "redis": []}))
        self.mem, self.idle, self.evict, self.flood = [], [], [], []
        self.foreign = []
        self.foreign_seen = []   # every attempt's foreign load, for the re-run threshold
        self.reruns = 0
        self.t_start = time.time()
        self.budget = args.budget
        self.group_s = dict(EST_GROUP_S)
        self.group_s["tput"] = 25.0 + (EST_GROUP_S["tput"] - 25.0) * self.tput_scale
        self.group_s["evict"] *= self.evict_requests / EVICT_REQUESTS
        self.pending_s = 0.0     # estimated seconds of work still to do (set per group)
        self._traces = {}
        self._lru = {}
        self._cmds = None

    def elapsed(self):
        return time.time() - self.t_start

    def may_retry(self, cost):
        if self.reruns >= RETRY_BUDGET:
            return False
        return self.elapsed() + cost + self.pending_s < self.budget

    def trace(self, s):
        key = (s, self.evict_requests)
        if key not in self._traces:
            t0 = time.time()
            self._traces[key] = zipf_trace(s, EVICT_KEYSPACE, self.evict_requests, EVICT_SEED)
            log("  zipf %.2f trace of %d requests built in %.1f s" % (s, self.evict_requests, time.time() - t0))
        return self._traces[key]

    def exact_lru(self, s, n, cap):
        key = (s, n, cap)
        if key not in self._lru:
            self._lru[key] = exact_lru_hits(self.trace(s)[:n], cap, EVICT_BATCH)
        return self._lru[key]

    def evict_cmds(self):
        if self._cmds is None:
            keys = [b"key:%012d" % i for i in range(EVICT_KEYSPACE)]
            value = (b"v%015d" % 7) * (EVICT_VALUE // 16) + b"v" * (EVICT_VALUE % 16)
            get = [b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k) for k in keys]
            tail = b"$%d\r\n%s\r\n" % (len(value), value)
            put = [b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n%s" % (len(k), k, tail) for k in keys]
            self._cmds = (get, put)
        return self._cmds

    def stop_all(self):
        for s in self.servers.values():
            try:
                s.stop()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass


def guarded(ctx, fn, who, *a):
    srv = ctx.servers[who]
    try:
        return fn(ctx, srv, *a)
    except Interrupted:
        raise
    except Exception as e:  # noqa: BLE001 - report and go on with the next workload
        problem("%s: %s failed: %r" % (who, fn.__name__, e))
        srv.check_alive(fn.__name__)
        srv.stop()
        return None


def run_rounds(ctx, groups, rounds):
    names = [g for g in GROUPS if g in groups]
    for rnd in range(rounds):
        order = list(SERVERS) if rnd % 2 == 0 else list(reversed(SERVERS))
        log("=== round %d/%d, order %s" % (rnd + 1, rounds, " -> ".join(order)))
        for gi, g in enumerate(names):
            # estimated work after this group: the rest of this round and the later rounds
            ctx.pending_s = (sum(ctx.group_s[x] for x in names[gi + 1:]) +
                             (rounds - rnd - 1) * sum(ctx.group_s[x] for x in names))
            if rnd > 0 and ctx.elapsed() + ctx.group_s[g] > ctx.budget:
                problem("time budget: skipped %s in round %d (needs ~%.0f s, %.0f s left of %.0f)" % (
                    g, rnd + 1, ctx.group_s[g], ctx.budget - ctx.elapsed(), ctx.budget))
                continue
            t0 = time.time()
            if g == "tput":
                try:
                    for who in order:
                        ctx.servers[who].start()
                    tput_round(ctx, order)
                except Interrupted:
                    raise
                except Exception as e:  # noqa: BLE001
                    problem("throughput round %d failed: %r" % (rnd + 1, e))
                for who in order:
                    ctx.servers[who].check_alive("throughput")
                    ctx.servers[who].stop()
            elif g == "mem":
                ctx.mem.append({w: guarded(ctx, mem_run, w) for w in order})
            elif g == "idle":
                ctx.idle.append({w: guarded(ctx, idle_run, w) for w in order})
            elif g == "evict":
                for s in EVICT_SKEWS:
                    d = {"s": s}
                    for w in order:
                        d[w] = guarded(ctx, evict_run, w, s)
                    ctx.evict.append(d)
            elif g == "flood":
                ctx.flood.append({w: guarded(ctx, flood_run, w) for w in order})
            took = time.time() - t0
            if rnd == 0:
                # later rounds reuse cached traces and exact-LRU results, and retries are rarer
                ctx.group_s[g] = took * (0.8 if g == "evict" else 1.0)
            log("  (%s took %.0f s; %.0f s elapsed)" % (g, took, ctx.elapsed()))


# ------------------------------------------------------------------ report ---
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, kind):
    if v is None:
        return "n/a"
    if kind == "rps":
        return "%.0f" % v
    if kind in ("ms", "us"):
        return "%.3f" % v if v < 10 else "%.2f" % v
    if kind == "ratio":
        return "%.4f" % v
    if kind == "pts":
        return "%+.2f" % v
    if kind == "int":
        return "%d" % round(v)
    if kind == "b":
        return "%.1f" % v if abs(v) < 1000 else "%.0f" % v
    if kind == "mb":
        return "%.1f" % v
    if kind == "kb":
        return "%.1f" % v
    return "%.4g" % v


def build_rows(ctx):
    """[(workload, metric, respite values, redis values, direction, kind, tags)]"""
    rows = []
    for name, _t, _e, _n, _f in TPUT_ROWS:
        if name not in ctx.tput:
            continue
        d = ctx.tput[name]
        tags = {"tput"} | ({"pipelined"} if "P16" in name else set())
        rows.append((name, "rps", d["rps"]["respite"], d["rps"]["redis"], "higher", "rps", tags))
        rows.append((name, "p50 ms", d["p50"]["respite"], d["p50"]["redis"], "lower", "ms", set()))
        rows.append((name, "p99 ms", d["p99"]["respite"], d["p99"]["redis"], "lower", "ms", set()))
        rows.append((name, "server CPU us/req", d["us"]["respite"], d["us"]["redis"], "lower", "us", set()))

    def col(lst, who, key, scale=1.0):
        out = []
        for p in lst:
            v = (p.get(who) or {}).get(key)
            out.append(v / scale if v is not None else None)
        return out

    if ctx.mem:
        wl = "memory 1M keys k16 v32"
        rows.append((wl, "RSS B/key", col(ctx.mem, "respite", "rss_per_key"), col(ctx.mem, "redis", "rss_per_key"),
                     "lower", "b", set()))
        rows.append((wl, "used_memory B/key", col(ctx.mem, "respite", "used_memory_per_key"),
                     col(ctx.mem, "redis", "used_memory_per_key"), "lower", "b", set()))
    if ctx.idle:
        wl = "%d idle connections" % IDLE_CONNS
        rows.append((wl, "RSS B/conn @%.1fs" % IDLE_SETTLE, col(ctx.idle, "respite", "rss_per_conn"),
                     col(ctx.idle, "redis", "rss_per_conn"), "lower", "b", set()))
    for s in EVICT_SKEWS:
        ev = [p for p in ctx.evict if p["s"] == s]
        if not ev:
            continue
        wl = "evict zipf %.2f 16mb lru" % s
        for key, label, direction, kind, scale in [
                ("hit_ratio", "hit ratio", "higher", "ratio", 1),
                ("info_hit_ratio", "INFO hit ratio (check)", "check", "ratio", 1),
                ("lru_hit_ratio", "exact LRU, same #keys", "ref", "ratio", 1),
                ("hit_vs_lru", "hit / exact LRU", "higher", "ratio", 1),
                ("hit_minus_lru_points", "hit - exact LRU (pts)", "higher", "pts", 1),
                ("keys_held", "keys held at end", "higher", "int", 1),
                ("evicted_keys", "evicted_keys", "info", "int", 1),
                ("used_memory", "used_memory end MB", "info", "mb", 2**20),
                ("rss_peak", "peak RSS MB", "lower", "mb", 2**20)]:
            rows.append((wl, label, col(ev, "respite", key, scale), col(ev, "redis", key, scale),
                         direction, kind, {"noratio"} if kind == "pts" else set()))
    if ctx.flood:
        wl = "write flood 10x 16mb lru"
        fl = ctx.flood
        for key, label, direction, kind, scale in [
                ("max_excess_bytes", "max used_memory-maxmem B", "lower", "int", 1),
                ("errors", "OOM/error replies", "lower", "int", 1),
                ("keys_held", "keys held at end", "info", "int", 1),
                ("evicted_keys", "evicted_keys", "info", "int", 1),
                ("rss_50", "RSS @50% MB", "lower", "mb", 2**20),
                ("rss_100", "RSS @100% MB", "lower", "mb", 2**20),
                ("rss_after_pause", "RSS +%.0fs after MB" % FLOOD_PAUSE, "lower", "mb", 2**20),
                ("rss_change_50_100", "RSS change 50->100% MB", "info", "mb", 2**20),
                ("rss_change_after_pause", "RSS change after pause MB", "info", "mb", 2**20)]:
            rows.append((wl, label, col(fl, "respite", key, scale), col(fl, "redis", key, scale),
                         direction, kind, {"noratio"} if key in ("errors", "max_excess_bytes") or "change" in key else set()))
    return rows


def row_cells(row, ctx):
    wl, metric, rs, bs, direction, kind, tags = row
    mr, mb = med(rs), med(bs)
    ratio = None
    if "noratio" not in tags:
        # median over rounds of the paired (back to back) ratios: robust to the load on the
        # box changing between rounds, unlike the ratio of the two medians
        paired = [r / b for r, b in zip(rs, bs) if r is not None and b is not None and b > 0 and r >= 0]
        ratio = med(paired)
    better = "-"
    if direction in ("higher", "lower") and mr is not None and mb is not None:
        if (ratio == 1.0) if ratio is not None else (mr == mb):
            better = "tie"
        elif ((ratio > 1.0) if ratio is not None else (mr > mb)) == (direction == "higher"):
            better = "respite"
        else:
            better = "redis"
        better += " (%s)" % direction
    elif direction == "check":
        # INFO hit ratio must equal the client's hit ratio for each server
        ok = True
        for who, vals in (("respite", rs), ("redis", bs)):
            cl = [((p.get(who) or {}).get("hit_ratio")) for p in ctx.evict
                  if "evict zipf %.2f" % p["s"] in wl]
            for a, b in zip(vals, cl):
                if a is None or b is None or abs(a - b) > 0.001:
                    ok = False
        better = "match" if ok else "MISMATCH"
    elif direction == "ref":
        better = "(reference)"
    elif direction == "info":
        better = "(info)"
    return [wl, metric, fmt(mr, kind), fmt(mb, kind), "%.3f" % ratio if ratio is not None else "n/a", better], ratio


def geomean(xs):
    xs = [x for x in xs if x]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def report(ctx, header_lines, complete):
    rows = build_rows(ctx)
    table = []
    gm_all, gm_pipe = [], []
    for row in rows:
        cells, ratio = row_cells(row, ctx)
        table.append(cells)
        if "tput" in row[6] and ratio:
            gm_all.append(ratio)
            if "pipelined" in row[6]:
                gm_pipe.append(ratio)
    g_all, g_pipe = geomean(gm_all), geomean(gm_pipe)
    gm_lines = []
    if gm_all:
        gm_lines.append("geomean throughput ratio respite/redis, all %d rows: %.3f" % (len(gm_all), g_all))
        gm_lines.append("geomean throughput ratio respite/redis, pipelined -P 16 rows (%d): %s" % (
            len(gm_pipe), "%.3f" % g_pipe if g_pipe else "n/a"))

    hdr = ["workload", "metric", "respite", "redis", "ratio", "better"]
    widths = [max(len(r[i]) for r in table + [hdr]) for i in range(len(hdr))]
    out = []
    fmt_line = lambda cells: " | ".join(  # noqa: E731
        c.ljust(widths[i]) if i in (0, 1, 5) else c.rjust(widths[i]) for i, c in enumerate(cells)).rstrip()
    out.append(fmt_line(hdr))
    out.append("-+-".join("-" * w for w in widths))
    prev = None
    for cells in table:
        out.append(fmt_line(cells if cells[0] != prev else [""] + cells[1:]))
        prev = cells[0]

    notes = notes_lines(ctx)
    summary = evict_summary(ctx) + flood_summary(ctx)
    bars = bars_lines(ctx, rows, g_pipe)
    text = []
    text += header_lines
    if not complete:
        text.append("*** INCOMPLETE RUN: interrupted or out of time; the table holds what was measured ***")
    text.append("")
    text += summary
    text += cpu_lines(ctx)
    text.append("")
    text += out
    text.append("")
    text += gm_lines
    text.append("")
    text += bars
    text += notes
    print("\n".join(text), flush=True)

    md = []
    md += ["<!-- generated by benches/compare-redis.sh -->"]
    md += ["- " + h for h in header_lines]
    md.append("")
    md.append("| " + " | ".join(hdr) + " |")
    md.append("|" + "|".join(["---", "---", "---:", "---:", "---:", "---"]) + "|")
    for cells in table:
        md.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    md.append("")
    md += ["- " + g for g in gm_lines]
    for block in (summary, bars, notes):
        for line in block:
            if not line.strip():
                continue
            md.append(("- " + line.strip()) if line.startswith(" ") else ("\n" + line.strip() + "\n"))
    with open(os.path.join(ctx.args.out, "table.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    return rows, g_all, g_pipe


def bars_lines(ctx, rows, g_pipe):
    """The bars of issues 3 and 4, judged strictly on this run's medians."""
    med_of, ratio_of = {}, {}
    for row in rows:
        med_of[(row[0], row[1])] = (med(row[2]), med(row[3]))
        ratio_of[(row[0], row[1])] = row_cells(row, ctx)[1]
    out = ["bars (issues 3 and 4; judged strictly on the ratios above, so rows within noise can flip):"]

    def verdict(ok):
        return "met" if ok else "NOT MET"

    def per_row(metric, want_higher, label):
        checked, bad = 0, []
        for name, _t, _e, _n, _f in TPUT_ROWS:
            q = ratio_of.get((name, metric))
            if q is None:
                continue
            checked += 1
            if (q < 1.0) if want_higher else (q > 1.0):
                bad.append("%s %.3f" % (name, q))
        if checked:
            out.append("  %-46s %s%s" % (label, verdict(not bad), (": " + ", ".join(bad)) if bad else ""))
    per_row("rps", True, "throughput >= redis on every row")
    if g_pipe is not None:
        out.append("  %-46s %s (%.3f)" % ("pipelined geomean >= 1.3", verdict(g_pipe >= 1.3), g_pipe))
    per_row("server CPU us/req", False, "server CPU per request <= redis on every row")
    per_row("p99 ms", False, "p99 latency <= redis on every row")
    for metric in ("RSS B/key", "used_memory B/key"):
        r, b = med_of.get(("memory 1M keys k16 v32", metric), (None, None))
        if r is not None and b is not None:
            out.append("  %-46s %s (%.1f vs %.1f)" % ("memory per key <= redis (%s)" % metric, verdict(r <= b), r, b))
    r, b = med_of.get(("%d idle connections" % IDLE_CONNS, "RSS B/conn @%.1fs" % IDLE_SETTLE), (None, None))
    if r is not None and b is not None:
        out.append("  %-46s %s (%.0f vs %.0f)" % ("RSS per idle connection <= redis", verdict(r <= b), r, b))
    for sk in EVICT_SKEWS:
        wl = "evict zipf %.2f 16mb lru" % sk
        r, b = med_of.get((wl, "hit ratio"), (None, None))
        if r is not None and b is not None:
            out.append("  %-46s %s (%.4f vs %.4f)" % ("zipf %.2f hit ratio >= redis" % sk, verdict(r >= b), r, b))
        d, _x = med_of.get((wl, "hit - exact LRU (pts)"), (None, None))
        if d is not None:
            out.append("  %-46s %s (%+.2f points)" % ("zipf %.2f within 1 point of exact LRU" % sk, verdict(d >= -1.0), d))
    fl = [p.get("respite") for p in ctx.flood if p.get("respite")]
    if fl:
        worst = max(x["max_excess_bytes"] if x["max_excess_bytes"] is not None else 0 for x in fl)
        per_key = med([x.get("used_memory_per_set") for x in fl])
        batch = fl[0]["batch_payload_bytes"]
        out.append("  %-46s %s (max %d B over; one SET adds ~%s B of used_memory; one batch %d B)" % (
            "flood: used_memory <= maxmemory + one SET", verdict(per_key is not None and worst <= per_key),
            worst, "%.0f" % per_key if per_key else "?", batch))
        out.append("  %-46s %s (max %d B over)" % ("flood: used_memory <= maxmemory + one batch", verdict(worst <= batch), worst))
        errs = sum(x["errors"] for x in fl)
        out.append("  %-46s %s (%d)" % ("flood: no OOM/error replies", verdict(errs == 0), errs))
        flat = all(x["rss_50"] and x["rss_after_pause"] and abs(x["rss_after_pause"] - x["rss_50"]) <= 0.1 * x["rss_50"]
                   for x in fl)
        out.append("  %-46s %s (50%% -> after pause: %s)" % (
            "flood: RSS flat (within 10% from 50% on)", verdict(flat),
            ", ".join("%+.1f MB" % ((x["rss_after_pause"] - x["rss_50"]) / 2**20) for x in fl
                      if x["rss_50"] and x["rss_after_pause"])))
    return out if len(out) > 1 else []


def evict_summary(ctx):
    lines = []
    for s in EVICT_SKEWS:
        ev = [p for p in ctx.evict if p["s"] == s]
        if not ev:
            continue
        if not lines:
            lines.append("eviction hit ratio (16mb allkeys-lru, %d keys x %d B, %d cache-aside requests, GETs in batches of %d):" % (
                EVICT_KEYSPACE, EVICT_VALUE, ctx.evict_requests, EVICT_BATCH))

        def m(who, key):
            return med([(p.get(who) or {}).get(key) for p in ev])
        hr, hb = m("respite", "hit_ratio"), m("redis", "hit_ratio")
        lr, lb = m("respite", "lru_hit_ratio"), m("redis", "lru_hit_ratio")
        kr, kb = m("respite", "keys_held"), m("redis", "keys_held")
        if hr is None or hb is None:
            lines.append("  zipf %.2f: incomplete (respite %s, redis %s)" % (s, hr, hb))
            continue
        lines.append("  zipf %.2f: respite %.4f, redis %.4f, exact LRU %s (at respite's %s keys), respite/exact %s (%s points); "
                     "redis/exact %s (exact LRU at redis's %s keys %s)" % (
                         s, hr, hb, "%.4f" % lr if lr else "n/a", fmt(kr, "int"),
                         "%.3f" % (hr / lr) if lr else "n/a", "%+.2f" % ((hr - lr) * 100) if lr else "n/a",
                         "%.3f" % (hb / lb) if lb else "n/a", fmt(kb, "int"), "%.4f" % lb if lb else "n/a"))
    return lines


def flood_summary(ctx):
    if not ctx.flood:
        return []
    lines = ["write flood (16mb allkeys-lru, %d SETs of %d B = %.0f MB, %d per batch, INFO used_memory after each batch):" % (
        FLOOD_KEYS, FLOOD_VALUE, FLOOD_KEYS * FLOOD_VALUE / 2**20, FLOOD_BATCH)]
    for who in SERVERS:
        rs = [p.get(who) for p in ctx.flood if p.get(who)]
        if not rs:
            lines.append("  %-7s n/a" % who)
            continue
        worst = max(rs, key=lambda r: r["max_excess_bytes"] if r["max_excess_bytes"] is not None else -1)
        lines.append("  %-7s max over maxmemory %s B (one SET adds ~%s B of used_memory; one batch = %d B of payload), errors %d, "
                     "RSS 50%% %.1f MB -> 100%% %.1f MB -> +%.0fs %.1f MB" % (
                         who, worst["max_excess_bytes"], fmt(worst.get("used_memory_per_set"), "int"),
                         worst["batch_payload_bytes"], sum(r["errors"] for r in rs),
                         (worst["rss_50"] or 0) / 2**20, (worst["rss_100"] or 0) / 2**20, FLOOD_PAUSE,
                         (worst["rss_after_pause"] or 0) / 2**20))
    return lines


def cpu_lines(ctx):
    if not ctx.tput:
        return []
    lines = ["CPU during throughput rows, cores (medians; box has %d): server / client (redis-benchmark) / foreign" % os.cpu_count()]
    for name, _t, _e, _n, _f in TPUT_ROWS:
        if name not in ctx.tput:
            continue
        d = ctx.tput[name]["cpu"]

        def m(who, k):
            v = med([c.get(k) for c in d[who]])
            return "%.2f" % v if v is not None else "n/a"
        lines.append("  %-26s respite %s/%s/%s   redis %s/%s/%s" % (
            name, m("respite", "server_cores"), m("respite", "client_cores"), m("respite", "foreign_cores"),
            m("redis", "server_cores"), m("redis", "client_cores"), m("redis", "foreign_cores")))
    return lines


def notes_lines(ctx):
    lines = [""]
    fl = ctx.foreign + [p[w]["foreign_cores"] for lst in (ctx.mem, ctx.flood) for p in lst
                        for w in SERVERS if p.get(w)]
    fl += [p[w]["foreign_cores"] for p in ctx.evict for w in SERVERS if p.get(w)]
    if fl:
        busy = [x for x in fl if x > FOREIGN_LOAD]
        lines.append("foreign CPU load (other processes) during measurements: median %.2f, max %.2f cores; "
                     "%d of %d measurements above %.2f; throughput pairs re-run: %d" % (
                         statistics.median(fl), max(fl), len(busy), len(fl), FOREIGN_LOAD, ctx.reruns))
        if busy:
            lines.append("  the box was shared: rows within ~10-15% of 1.0 are within noise; rerun with --rounds 5 to decide one")
    lines.append("problems seen: %s" % ("none" if not PROBLEMS else ""))
    for p in PROBLEMS:
        lines.append("  - " + p)
    return lines


def scan_logs(ctx):
    """Panics, errors and warnings in the server logs (one line per log file)."""
    pats = {"respite": ("panicked", "ERROR", "WARN"),
            "redis": ("crashed", "Guru Meditation", "# Error")}
    for fn in sorted(os.listdir(ctx.logdir)):
        who = fn.split("-", 1)[0]
        if who not in pats or fn.startswith("redis-benchmark"):
            continue
        try:
            with open(os.path.join(ctx.logdir, fn), errors="replace") as f:
                for line in f:
                    if any(p in line for p in pats[who]):
                        problem("log %s: %s" % (fn, line.strip()[:200]))
                        break
        except OSError:
            pass


# -------------------------------------------------------------------- main ---
def main():
    ap = argparse.ArgumentParser(description="respite vs Redis side by side (run via benches/compare-redis.sh)")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--quick", action="store_true", help="1 round, fewer requests (< 2 min)")
    ap.add_argument("--rounds", type=int, help="rounds (default 3, --quick 1)")
    ap.add_argument("--only", default=",".join(GROUPS), help="comma list of: " + ",".join(GROUPS))
    ap.add_argument("--respite", default=os.path.join(os.path.dirname(here), "target", "release", "respite-server"))
    ap.add_argument("--redis", default="redis-server")
    ap.add_argument("--bench", default="redis-benchmark", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help="directory for results.json, table.md and logs")
    ap.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)   # smoke tests only
    ap.add_argument("--budget", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        ap.error("unknown group(s) in --only: %s (known: %s)" % (",".join(bad), ",".join(GROUPS)))
    rounds = args.rounds or (1 if args.quick else 3)
    if rounds < 1:
        ap.error("--rounds must be >= 1")
    if args.budget is None:
        args.budget = 105.0 if args.quick and rounds == 1 else max(560.0, 40.0 + 175.0 * rounds)
    for attr in ("respite", "redis", "bench"):
        p = getattr(args, attr)
        if os.sep not in p:
            import shutil
            p = shutil.which(p) or p
        setattr(args, attr, os.path.abspath(p))
        if not os.access(getattr(args, attr), os.X_OK):
            sys.exit("compare_redis.py: %s not found or not executable: %s" % (attr, getattr(args, attr)))
    if args.out is None:
        args.out = tempfile.mkdtemp(prefix="compare-redis-%s-" % time.strftime("%Y%m%d-%H%M%S"))
    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE_CONNS + 2000
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000) if hard != resource.RLIM_INFINITY else 20000, hard))
        except (ValueError, OSError):
            pass
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft < want and "idle" in groups:
            log("warning: fd limit %d is below %d; the idle-connection row may fail" % (soft, want))

    ctx = Ctx(args)

    def on_signal(signum, _frame):
        raise Interrupted("signal %d" % signum)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    cmdline = os.environ.get("COMPARE_CMDLINE") or shlex.join([sys.executable] + sys.argv)
    redis_ver = subprocess.run([args.redis, "--version"], capture_output=True, text=True).stdout.strip()
    try:
        st = os.stat(args.respite)
        respite_built = datetime.datetime.fromtimestamp(st.st_mtime).strftime("%Y-%m-%d %H:%M")
    except OSError:
        respite_built = "?"
    stale = None
    root = os.path.dirname(here)
    if os.path.abspath(args.respite).startswith(os.path.join(root, "target") + os.sep):
        try:
            built = os.stat(args.respite).st_mtime
            cands = [os.path.join(root, "Cargo.toml")] + [
                os.path.join(d, f) for d, _s, fs in os.walk(os.path.join(root, "src")) for f in fs]
            newer = [c for c in cands if os.path.exists(c) and os.stat(c).st_mtime > built]
            if newer:
                stale = os.path.relpath(newer[0], root)
        except OSError:
            pass
    git_rev = subprocess.run(["git", "-C", here, "describe", "--always", "--dirty"], capture_output=True,
                             text=True).stdout.strip() or "?"
    loadavg0 = open("/proc/loadavg").read().split()[:3]
    header = [
        "date: %s" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine: nproc %d, %s %s, Python %s, load average at start %s" % (
            os.cpu_count(), platform.system(), platform.release(), platform.python_version(), " ".join(loadavg0)),
        "command: %s" % cmdline,
        "respite: %s (built %s, tree %s%s)" % (
            args.respite, respite_built, git_rev,
            ("; NOTE %s is newer than the binary" % stale) if stale else ""),
        "redis:   %s (%s)" % (args.redis, redis_ver.split(" sha=")[0]),
        "rounds: %d, order alternating A B / B A; respite, redis = medians over rounds; ratio = median of the per-round respite/redis ratios; groups: %s" % (
            rounds, ",".join(groups)),
    ]
    for h in header:
        log(h)
    log("output: %s" % args.out)

    complete = True
    try:
        run_rounds(ctx, groups, rounds)
    except Interrupted as e:
        complete = False
        problem("run interrupted (%s) after %.0f s" % (e, ctx.elapsed()))
    finally:
        ctx.stop_all()
    # from here on, finish the report even if another signal comes
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    scan_logs(ctx)
    duration = ctx.elapsed()
    header.append("runtime: %.0f s; load average at end %s; raw results: %s" % (
        duration, " ".join(open("/proc/loadavg").read().split()[:3]), os.path.join(args.out, "results.json")))
    rows, g_all, g_pipe = report(ctx, header, complete)

    def plain(x):
        if isinstance(x, dict):
            return {str(k): plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"header": header, "complete": complete, "duration_s": duration, "rounds": rounds,
                   "groups": groups, "quick": args.quick, "tput_scale": ctx.tput_scale,
                   "evict_requests": ctx.evict_requests,
                   "throughput": plain(ctx.tput), "memory": ctx.mem, "idle": ctx.idle,
                   "eviction": ctx.evict, "flood": ctx.flood, "foreign_cores": ctx.foreign,
                   "pair_reruns": ctx.reruns, "problems": PROBLEMS,
                   "table": [[r[0], r[1], r[2], r[3], r[4]] for r in rows],
                   "geomean_throughput_ratio": g_all, "geomean_pipelined_ratio": g_pipe}, f, indent=1)
    for s in ctx.servers.values():
        try:
            os.rmdir(s.workdir)
        except OSError:
            pass
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
