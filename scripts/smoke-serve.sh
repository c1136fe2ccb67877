#!/usr/bin/env bash
# Starts `periscope serve` on the embedded demo cluster (as the README's first command
# does), waits for it to answer, checks that it streams the demo, and stops it.
# Usage: scripts/smoke-serve.sh [path/to/periscope]
set -euo pipefail
bin="${1:-target/release/periscope}"
port="${SMOKE_PORT:-18080}"
log="$(mktemp)"
"$bin" serve --listen "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "periscope serve exited:"; cat "$log"; exit 1; fi
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/api/clusters/demo/pods" | grep -q '"pods":\[{' \
  || { echo "the demo's pods did not come back"; cat "$log"; exit 1; }
snapshot="$(curl -fsS -N --max-time 5 "http://127.0.0.1:$port/api/clusters/demo/pods/watch" 2>/dev/null | head -c 200 || true)"
[[ "$snapshot" == "event: snapshot"* ]] || { echo "no snapshot on the watch route: $snapshot"; cat "$log"; exit 1; }
echo "periscope serve answered on 127.0.0.1:$port; start-up said:"
sed -n '1,12p' "$log"
