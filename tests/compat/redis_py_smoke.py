#!/usr/bin/env python3
"""redis-py against a server at 127.0.0.1:PORT, RESP2 and RESP3: the calls a Django/Celery-style
app makes. Exits non-zero with the failing check on the first difference from Redis semantics."""
import sys
import time

import redis

port = int(sys.argv[1])

for protocol in (2, 3):
    r = redis.Redis(host="127.0.0.1", port=port, db=1, protocol=protocol, decode_responses=True)
    r.flushdb()
    assert r.ping() is True
    assert r.set("page", "<html>", ex=60) is True
    assert r.get("page") == "<html>"
    assert r.ttl("page") == 60
    assert r.set("page", "x", nx=True) is None
    assert r.set("new", "1", nx=True) is True
    assert r.incr("new", 5) == 6
    assert r.incrbyfloat("f", 1.5) == 1.5
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget(["a", "b", "missing"]) == ["1", "2", None]
    assert r.getex("a", px=5000) == "1" and 0 < r.pttl("a") <= 5000
    assert r.getdel("b") == "2" and r.exists("b") == 0
    assert r.expire("a", 100, gt=True) is True
    assert r.persist("a") is True and r.ttl("a") == -1
    assert r.type("a") == "string"
    assert r.delete("a", "nope") == 1
    assert sorted(r.scan_iter(match="p*", count=2)) == ["page"]
    assert sorted(r.keys("*")) == ["f", "new", "page"]
    assert r.dbsize() == 3
    assert r.rename("page", "page2") is True
    assert r.copy("page2", "page3") is True
    assert r.object("encoding", "new") == "int"

    with r.pipeline(transaction=True) as p:
        p.set("t1", "a").incr("t2").get("t1")
        assert p.execute() == [True, 1, "a"]

    # Optimistic locking: another client changes the watched key, the transaction retries.
    other = redis.Redis(host="127.0.0.1", port=port, db=1, protocol=protocol, decode_responses=True)
    with r.pipeline() as p:
        p.watch("t2")
        other.incr("t2")
        p.multi()
        p.incr("t2")
        try:
            p.execute()
            raise AssertionError("EXEC should have been aborted by WATCH")
        except redis.WatchError:
            pass

    info = r.info()
    assert info["redis_version"].startswith("7.") and "used_memory" in info and "keyspace_hits" in info
    assert r.info("keyspace")["db1"]["keys"] == r.dbsize()
    assert r.config_get("maxmemory-policy") == {"maxmemory-policy": r.config_get("maxmemory-policy")["maxmemory-policy"]}
    assert r.client_setname("smoke") is True and r.client_getname() == "smoke"
    assert any(c["name"] == "smoke" for c in r.client_list())

    try:
        r.execute_command("NOSUCH", "x")
        raise AssertionError("unknown command accepted")
    except redis.ResponseError as e:
        assert "unknown command 'NOSUCH'" in str(e)

    r.set("short", "v", px=50)
    time.sleep(0.12)
    assert r.get("short") is None
    print(f"redis-py {redis.__version__} RESP{protocol}: ok")
