#!/usr/bin/env python3
"""Writes the seed corpus of both fuzz targets: fuzz/corpus/{decode,dispatch}/.

    python3 fuzz/make_corpus.py            # scripts and hand-written frames
    python3 fuzz/make_corpus.py --capture  # also record redis-cli and redis-benchmark traffic

Three sources, all real requests a server sees:

* tests/differential/*.redis: every script as one connection's bytes, its commands as RESP arrays
  (as the differential test sends them) and its `!raw` lines verbatim; `!reconnect` starts a new file.
* representative frames: inline commands with quotes and escapes, pipelines, split and malformed
  frames, RESP3 HELLO, MULTI/EXEC, the limits of issue 6.
* with --capture: what redis-cli and redis-benchmark send, recorded by a relaying proxy in front of
  a real redis-server from PATH (one file per client connection, cut at 4 KiB so libFuzzer's default
  input size stays small).

Files are named by content hash, so re-running adds nothing twice.
"""

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
MAX = 4096


def resp(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def unescape_one(s, i, out):
    c = s[i]
    i += 1
    table = {"n": b"\n", "r": b"\r", "t": b"\t", "b": b"\x08", "a": b"\x07", "0": b"\x00"}
    if c in table:
        out += table[c]
    elif c == "x":
        out.append(int(s[i : i + 2], 16))
        i += 2
    else:
        out += c.encode()
    return i


def unescape(s):
    out = bytearray()
    i = 0
    while i < len(s):
        if s[i] == "\\":
            i = unescape_one(s, i + 1, out)
        else:
            out += s[i].encode()
            i += 1
    return bytes(out)


def split_args(line):
    """The differential test's shell-like split (tests/differential.rs)."""
    args, i = [], 0
    while True:
        while i < len(line) and line[i].isspace():
            i += 1
        if i == len(line):
            return args
        cur = bytearray()
        while i < len(line) and not line[i].isspace():
            c = line[i]
            if c == '"':
                i += 1
                while line[i] != '"':
                    if line[i] == "\\":
                        i = unescape_one(line, i + 1, cur)
                    else:
                        cur += line[i].encode()
                        i += 1
                i += 1
            elif c == "'":
                i += 1
                while line[i] != "'":
                    if line[i] == "\\" and line[i + 1] == "'":
                        cur += b"'"
                        i += 2
                    else:
                        cur += line[i].encode()
                        i += 1
                i += 1
            else:
                cur += c.encode()
                i += 1
        args.append(bytes(cur))


def script_streams(text):
    streams, cur = [], bytearray()
    for raw in text.splitlines():
        t = raw.strip()
        if not t or t.startswith("#"):
            continue
        if t == "!reconnect":
            streams.append(bytes(cur))
            cur = bytearray()
        elif t.startswith("!sleep"):
            continue
        elif t.startswith("!rawn "):
            cur += unescape(t[len("!rawn ") :].split(" ", 1)[1])
        elif t.startswith("!raw "):
            cur += unescape(t[len("!raw ") :])
        elif t.startswith("!scanall"):
            cur += resp([b"SCAN", b"0"] + split_args(t[len("!scanall") :]))
        else:
            t = re.sub(r"^!(sort|anyint) ", "", t)
            cur += resp(split_args(t))
    streams.append(bytes(cur))
    return [s for s in streams if s]


def handwritten():
    r = resp
    seeds = [
        b"PING\r\n",
        b"PING\n",
        b'SET k "a b\\x41\\n" EX 10\r\nGET k\r\n',
        b"SET 'it\\'s' x\r\nGET 'it\\'s'\r\n",
        b'SET a "b\r\n',
        b"\r\n\r\n   \r\n",
        r([b"PING"]) * 8,
        r([b"SET", b"key:1", b"x" * 100]) + r([b"GET", b"key:1"]) + r([b"DEL", b"key:1"]),
        r([b"INCR", b"ctr"]) * 4 + r([b"INCRBY", b"ctr", b"-9223372036854775808"]),
        r([b"INCRBYFLOAT", b"f", b"1.5e300"]) + r([b"INCRBYFLOAT", b"f", b"1e308"]),
        r([b"MSET", b"a", b"1", b"b", b"2"]) + r([b"MGET", b"a", b"b", b"c"]),
        r([b"SET", b"t", b"v", b"PX", b"1"]) + r([b"PTTL", b"t"]) + r([b"EXPIRE", b"t", b"9223372036854775807"]),
        r([b"MULTI"]) + r([b"SET", b"m", b"1"]) + r([b"INCR", b"m"]) + r([b"EXEC"]),
        r([b"WATCH", b"w"]) + r([b"MULTI"]) + r([b"GET", b"w"]) + r([b"DISCARD"]),
        r([b"HELLO", b"3"]) + r([b"GET", b"nokey"]) + r([b"CONFIG", b"GET", b"max*"]) + r([b"HELLO", b"2"]),
        r([b"HELLO", b"3", b"AUTH", b"default", b"pw", b"SETNAME", b"fuzz"]),
        r([b"CLIENT", b"REPLY", b"OFF"]) + r([b"PING"]) + r([b"CLIENT", b"REPLY", b"ON"]),
        r([b"CLIENT", b"LIST"]) + r([b"CLIENT", b"INFO"]) + r([b"CLIENT", b"KILL", b"ID", b"1"]),
        r([b"SCAN", b"0", b"MATCH", b"*[a-", b"COUNT", b"1000000"]) + r([b"KEYS", b"[\\"]),
        r([b"SETRANGE", b"s", b"100", b"x"]) + r([b"GETRANGE", b"s", b"-9223372036854775808", b"9223372036854775807"]),
        r([b"COMMAND", b"DOCS", b"get"]) + r([b"COMMAND", b"INFO", b"set"]) + r([b"COMMAND", b"GETKEYS", b"mset", b"a", b"b"]),
        r([b"INFO", b"all"]) + r([b"MEMORY", b"USAGE", b"a", b"SAMPLES", b"0"]) + r([b"OBJECT", b"FREQ", b"a"]),
        r([b"CONFIG", b"SET", b"maxmemory", b"1"]) + r([b"SET", b"x", b"y"]) + r([b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lru"]),
        r([b"DEBUG", b"OBJECT", b"a"]) + r([b"DEBUG", b"SET-ACTIVE-EXPIRE", b"0"]),
        r([b"SELECT", b"15"]) + r([b"SWAPDB", b"0", b"15"]) + r([b"MOVE", b"a", b"1"]) + r([b"COPY", b"a", b"b", b"DB", b"2"]),
        r([b"AUTH", b"default", b"nopass"]) + r([b"RESET"]),
        r([b"GETEX", b"a", b"PERSIST"]) + r([b"SET", b"a", b"b", b"KEEPTTL", b"GET"]),
        # Malformed and limit-probing frames.
        b"*1\r\n$-5\r\n",
        b"*x\r\n",
        b"*1\r\n+PING\r\n",
        b"*1\r\n$536870912\r\nabc",
        b"*1073741825\r\n",
        b"*2\r\n$4\r\nECHO\r\n$5\r\nhel",
        b"*1\r\n$4\r\nPINGxx",
        b"*-1\r\n*0\r\n" + r([b"PING"]),
        b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$0\r\n\r\n",
    ]
    return seeds


class Recorder:
    """A relaying proxy in front of redis-server that keeps what each client sent."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.captured = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.upstream))
            buf = bytearray()
            with self.lock:
                self.captured.append(buf)
            threading.Thread(target=self.pipe, args=(c, u, buf), daemon=True).start()
            threading.Thread(target=self.pipe, args=(u, c, None), daemon=True).start()

    @staticmethod
    def pipe(src, dst, keep):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if keep is not None and len(keep) < MAX:
                    keep += data[: MAX - len(keep)]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def capture():
    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        if not shutil.which(tool):
            sys.exit(f"--capture needs {tool} on PATH")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tempfile.mkdtemp()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", tmp],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        rec = Recorder(port)
        p = str(rec.port)
        bench = ["redis-benchmark", "-p", p, "-q", "-c", "1", "-n", "40"]
        runs = [
            bench + ["-t", "ping,set,get,incr,mset"],
            bench + ["-t", "set,get", "-P", "16", "-d", "64"],
            bench + ["-t", "set,get", "-r", "1000", "-d", "3"],
            bench + ["-3", "-t", "get,incr"],
            bench + ["--", "SET", "key:__rand_int__", "v", "EX", "100"],
        ]
        cli_input = b"SET a 1\nINCR a\nGET a\nSET 'b c' \"d\\te\"\nMGET a 'b c'\nEXPIRE a 100\nTTL a\nDEL a\nSCAN 0\nINFO keyspace\n"
        for run in runs:
            subprocess.run(run, stdout=subprocess.DEVNULL, check=False)
        for flags in ([], ["--no-raw"], ["-3"]):
            subprocess.run(["redis-cli", "-p", p] + flags, input=cli_input, stdout=subprocess.DEVNULL, check=False)
        subprocess.run(["redis-cli", "-p", p, "--scan"], stdout=subprocess.DEVNULL, check=False)
        time.sleep(0.3)
        with rec.lock:
            return [bytes(b) for b in rec.captured if b]
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def write(target, data, prefix):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = f"{prefix}-{hashlib.sha1(data).hexdigest()[:16]}"
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    seeds = []
    scripts = os.path.join(ROOT, "tests", "differential")
    for name in sorted(os.listdir(scripts)):
        if name.endswith(".redis"):
            with open(os.path.join(scripts, name)) as f:
                for s in script_streams(f.read()):
                    # Long scripts become several inputs, each a run of whole lines' bytes.
                    for i in range(0, len(s), MAX):
                        seeds.append(("script", s[i : i + MAX]))
    seeds += [("frame", s) for s in handwritten()]
    if "--capture" in sys.argv:
        seeds += [("capture", s) for s in capture()]
    for prefix, data in seeds:
        for target in ("decode", "dispatch"):
            write(target, data, prefix)
    print(f"{len(seeds)} seeds in {CORPUS}/{{decode,dispatch}}")


if __name__ == "__main__":
    main()
