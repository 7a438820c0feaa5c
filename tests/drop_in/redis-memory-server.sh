#!/usr/bin/env bash
# redis-memory-server (npm) starting respite-server instead of redis-server, through its
# `binary.systemBinary` option (REDISMS_SYSTEM_BINARY in the environment does the same).
# Not part of CI: needs node and npm and the npm registry. Usage:
#   tests/drop_in/redis-memory-server.sh [path/to/respite-server]   (default: a debug build)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-}"
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --quiet --bin respite-server)
  bin="$root/target/debug/respite-server"
fi
bin="$(realpath "$bin")"
work="$(mktemp -d /tmp/respite-redisms.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
# --ignore-scripts: skip the postinstall that would download and build a Redis of its own.
npm install --silent --no-audit --no-fund --ignore-scripts redis-memory-server@0.17 >/dev/null
cat > probe.js <<'JS'
const { RedisMemoryServer } = require('redis-memory-server');
const net = require('net');
function send(port, line) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(line));
    let buf = '';
    s.on('data', (d) => { buf += d; if (buf.endsWith('\r\n')) { s.end(); resolve(buf); } });
    s.on('error', reject);
  });
}
(async () => {
  const t0 = process.hrtime.bigint();
  const server = await RedisMemoryServer.create({ binary: { systemBinary: process.argv[2] } });
  const host = await server.getHost();
  const port = await server.getPort();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`redis-memory-server started ${process.argv[2]} on ${host}:${port} in ${ms.toFixed(1)} ms`);
  const set = await send(port, 'SET greeting hello\r\n');
  const get = await send(port, 'GET greeting\r\n');
  if (set !== '+OK\r\n' || get !== '$5\r\nhello\r\n') throw new Error(`unexpected replies ${JSON.stringify([set, get])}`);
  console.log('SET/GET through it: ok');
  if (!(await server.stop())) throw new Error('stop() returned false');
  console.log('stopped: ok');
})().catch((e) => { console.error(e); process.exit(1); });
JS
node probe.js "$bin"
