#!/usr/bin/env python3
"""Capture Redis's own replies for COMMAND INFO / COMMAND DOCS (per command and subcommand, in
RESP2 and RESP3, byte for byte) and CONFIG GET *, so respite answers these from Redis's data.

usage: tools/capture-redis-spec.py PORT   (a redis-server 7.0 on 127.0.0.1:PORT started with
       --cluster-enabled yes, so CLUSTER HELP answers)
       tools/capture-redis-spec.py PORT --append NAME...   (adds the records of commands new to
       src/commands/supported.txt to the spec file, leaving the rest as it is)

Writes src/commands/redis-commands.spec: a sequence of records
    <name> <info|docs|help> <2|3> <length>\\n<length bytes: one RESP frame>\\n
and src/config-defaults.resp2 (the raw CONFIG GET * reply).
"""
import socket, sys

port = int(sys.argv[1])
APPEND = sys.argv[2:3] == ["--append"]
COMMANDS = sys.argv[3:] if APPEND else open("src/commands/supported.txt").read().split()
CONTAINERS = ["client", "command", "config", "object", "memory", "function", "latency", "slowlog", "acl", "cluster", "script",
              "pubsub"]


def connect(proto):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    if proto == 3:
        request(s, f, "HELLO", "3")
    return s, f


def frame(f):
    """Reads one RESP2/RESP3 frame and returns its raw bytes."""
    line = f.readline()
    t, head = line[:1], line[1:-2]
    if t in (b"$", b"=", b"!"):
        n = int(head)
        return line if n < 0 else line + f.read(n + 2)
    if t in (b"*", b"~", b">", b"%", b"|"):
        n = int(head)
        if n < 0:
            return line
        out = line
        for _ in range(n * (2 if t in (b"%", b"|") else 1)):
            out += frame(f)
        return out
    return line


def request(s, f, *args):
    s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in map(str.encode, args)))
    return frame(f)


def strip_header(reply, skip_elements):
    """Drops the aggregate header line and `skip_elements` leading simple elements (the name)."""
    pos = reply.index(b"\r\n") + 2
    for _ in range(skip_elements):
        hdr_end = reply.index(b"\r\n", pos)
        n = int(reply[pos + 1:hdr_end])
        pos = hdr_end + 2 + n + 2
    return reply[pos:]


def names():
    s, f = connect(2)
    out = []
    for c in COMMANDS:
        out.append(c)
        reply = request(s, f, "COMMAND", "LIST", "FILTERBY", "PATTERN", c + "|*")
        lines = reply.split(b"\r\n")
        out.extend(l.decode() for l in lines[2::2] if l)
    return out


records = []
for proto in (2, 3):
    s, f = connect(proto)
    for name in [c for c in CONTAINERS if c in COMMANDS]:
        records.append((name, "help", proto, request(s, f, name.upper(), "HELP")))
    for name in names():
        info = request(s, f, "COMMAND", "INFO", name)
        docs = request(s, f, "COMMAND", "DOCS", name)
        records.append((name, "info", proto, strip_header(info, 0)))
        if docs[:2] not in (b"*0", b"%0"):
            records.append((name, "docs", proto, strip_header(docs, 1)))

with open("src/commands/redis-commands.spec", "ab" if APPEND else "wb") as out:
    for name, kind, proto, data in records:
        out.write(b"%s %s %d %d\n" % (name.encode(), kind.encode(), proto, len(data)) + data + b"\n")

if APPEND:
    sys.exit(0)
s, f = connect(2)
open("src/config-defaults.resp2", "wb").write(request(s, f, "CONFIG", "GET", "*"))
