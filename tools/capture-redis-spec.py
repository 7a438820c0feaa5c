#!/usr/bin/env python3
"""Capture Redis's own COMMAND INFO / COMMAND DOCS replies (RESP3, raw bytes) and CONFIG GET *
for the commands respite implements, so respite's COMMAND and CONFIG answer from Redis's data.

usage: tools/capture-redis-spec.py PORT   (a redis-server 7.0 on 127.0.0.1:PORT)
"""
import socket, sys, time

port = int(sys.argv[1])
COMMANDS = open("src/commands/supported.txt").read().split()

def raw(sock, *args):
    req = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in map(str.encode, args))
    sock.sendall(req)
    data = b""
    sock.settimeout(0.5)
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data

def sets_as_push(data):
    """Re-encode RESP3 sets ('~') as push frames ('>'): the redis-protocol crate decodes sets into
    a HashSet and refuses members it cannot hash (Redis nests arrays in sets); respite writes
    these push frames back out as sets."""
    out = bytearray()
    def frame(pos):
        t = data[pos:pos + 1]
        end = data.index(b"\r\n", pos)
        head = data[pos + 1:end]
        nxt = end + 2
        if t in (b"$", b"=", b"!"):
            n = int(head)
            out.extend(data[pos:nxt + n + 2])
            return nxt + n + 2
        if t in (b"*", b"~", b">", b"%", b"|"):
            n = int(head) * (2 if t in (b"%", b"|") else 1)
            out.extend((b">" if t == b"~" else t) + head + b"\r\n")
            for _ in range(n):
                nxt = frame(nxt)
            return nxt
        out.extend(data[pos:nxt])
        return nxt
    frame(0)
    return bytes(out)

s = socket.create_connection(("127.0.0.1", port))
raw(s, "HELLO", "3")
open("src/commands/redis-command-info.resp3", "wb").write(sets_as_push(raw(s, "COMMAND", "INFO", *COMMANDS)))
open("src/commands/redis-command-docs.resp3", "wb").write(sets_as_push(raw(s, "COMMAND", "DOCS", *COMMANDS)))
s2 = socket.create_connection(("127.0.0.1", port))
open("src/config-defaults.resp2", "wb").write(raw(s2, "CONFIG", "GET", "*"))
