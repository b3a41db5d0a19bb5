#!/usr/bin/env bash
# Ingest benchmark of the fleet aggregator (embedded store): wrk POSTs real reports for NODES
# distinct node names, then measures GET /api/v1/fleet with all of them stored, and the RSS.
# Needs Debian's `wrk`. Usage: benches/fleet/run.sh [seconds] (default 20).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-20}
export NODES=${NODES:-20000}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
PORT=${PORT:-19900}
cargo build -q --release -p gluten-node-agent --bin gluten-node-agent
BIN=target/release/gluten-node-agent
WORK=$(mktemp -d)
trap 'kill "$AGG" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# A real report: one round of the checks on a fixture tree, node name templated.
"$BIN" check --output json --host-root tests/fixtures/upstream/node-exporter-upstream \
  --node-name __NODE__ > "$WORK/report.json" || true
export REPORT_TEMPLATE="$WORK/report.json"
echo "report: $(wc -c < "$WORK/report.json") bytes, $NODES node names, $CONNS connections, ${SECS}s"

"$BIN" aggregator --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" 2> "$WORK/aggregator.log" &
AGG=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" > /dev/null && break; sleep 0.1; done

echo "== ingest: POST /api/v1/reports"
wrk -t "$THREADS" -c "$CONNS" -d "${SECS}s" --latency -s benches/fleet/report.lua "http://127.0.0.1:$PORT"

echo "== stored nodes: $(curl -s "http://127.0.0.1:$PORT/api/v1/fleet" | grep -o '"nodes_total": [0-9]*')"
echo "== GET /api/v1/fleet with all nodes stored (1 connection, 10s)"
wrk -t 1 -c 1 -d 10s --latency "http://127.0.0.1:$PORT/api/v1/fleet"
echo "== GET /api/v1/nodes (1 connection, 5s)"
wrk -t 1 -c 1 -d 5s --latency "http://127.0.0.1:$PORT/api/v1/nodes" | grep -E "Latency|99%|Requests/sec"
echo "== aggregator memory: $(grep -E 'VmRSS|VmHWM' /proc/$AGG/status | tr -s ' \n' ' ')"
echo "== store file: $(du -h "$WORK/data/fleet.redb" | cut -f1)"
