#!/usr/bin/env bash
# Fleet benchmark of the aggregator at 100,000 nodes, side by side on a throwaway PostgreSQL
# (started here, fsync on) and on the embedded store: full-report ingest, steady state (every node
# one message per 15 s: heartbeats, 1% of the nodes sending a changed full report per interval),
# GET /api/v1/fleet and /api/v1/nodes with every node stored, RSS per node, and the CPU of the
# aggregator and of PostgreSQL. The load generator is benches/fleet/load.rs (one core at most).
# Needs Debian's postgresql. Usage: benches/fleet/run.sh (env: NODES, CONNS, INGEST_SECS,
# STEADY_SECS, INTERVAL, CHANGE, STORES="postgres embedded").
set -euo pipefail
cd "$(dirname "$0")/../.."
NODES=${NODES:-100000}
CONNS=${CONNS:-16}
INGEST_SECS=${INGEST_SECS:-20}
STEADY_SECS=${STEADY_SECS:-60}
INTERVAL=${INTERVAL:-15}
CHANGE=${CHANGE:-0.01}
STORES=${STORES:-"postgres embedded"}
cargo build -q --release -p gluten-node-agent --bin gluten-node-agent -p gluten-node-benches --bin fleet-load
BIN=target/release/gluten-node-agent
LOAD=target/release/fleet-load
WORK=$(mktemp -d)
chmod 755 "$WORK"
AGG=""
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
cleanup() {
  [ -n "$AGG" ] && kill "$AGG" 2>/dev/null || true
  [ -d "$WORK/pg" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop > /dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
TCK=$(getconf CLK_TCK)
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
pct() { awk -v d="$1" -v s="$2" -v t="$TCK" 'BEGIN { printf "%.1f%% of one core", 100 * d / t / s }'; }

"$BIN" check --output json --host-root tests/fixtures/upstream/node-exporter-upstream \
  --node-name __NODE__ > "$WORK/report.json" || true
echo "report: $(wc -c < "$WORK/report.json") bytes; $NODES node names; $CONNS connections; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"

for STORE in $STORES; do
  PORT=$((20000 + RANDOM % 20000))
  PGPIDS=()
  if [ "$STORE" = postgres ]; then
    PGPORT=$((40000 + RANDOM % 20000))
    mkdir -p "$WORK/pg" "$WORK/pgrun" && chown postgres "$WORK/pg" "$WORK/pgrun"
    runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg" -A trust -U postgres > /dev/null
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pgrun/pg.log" -w \
      -o "-p $PGPORT -k $WORK/pgrun -c listen_addresses=127.0.0.1 -c fsync=on" start > /dev/null
    PM=$(head -1 "$WORK/pg/postmaster.pid")
    STORE_ARGS=(--database-url "postgresql://postgres@127.0.0.1:$PGPORT/postgres")
  else
    STORE_ARGS=(--data-dir "$WORK/data")
  fi
  "$BIN" aggregator --listen "127.0.0.1:$PORT" "${STORE_ARGS[@]}" --stale-after-seconds 600 2> "$WORK/aggregator-$STORE.log" &
  AGG=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/readyz" > /dev/null && break; sleep 0.1; done
  BASE=$(rss_kb "$AGG")
  echo "== $STORE"
  pgpids() { if [ "$STORE" = postgres ]; then echo "$PM" $(pgrep -P "$PM"); fi; }
  A0=$(ticks "$AGG"); P0=$(ticks $(pgpids)); T0=$(date +%s.%N)
  "$LOAD" ingest "127.0.0.1:$PORT" "$WORK/report.json" "$NODES" "$CONNS" "$INGEST_SECS"
  A1=$(ticks "$AGG"); P1=$(ticks $(pgpids)); T1=$(date +%s.%N)
  SECS=$(awk -v a="$T0" -v b="$T1" 'BEGIN { print b - a }')
  echo "ingest CPU: aggregator $(pct $((A1 - A0)) "$SECS")$( [ "$STORE" = postgres ] && echo ", PostgreSQL $(pct $((P1 - P0)) "$SECS")")"
  STORED=$(curl -s "http://127.0.0.1:$PORT/api/v1/fleet" | grep -o '"nodes_total":[0-9]*' | cut -d: -f2)
  RSS=$(rss_kb "$AGG")
  echo "stored nodes: $STORED; aggregator RSS $((RSS / 1024)) MB ($(( (RSS - BASE) * 1024 / STORED )) bytes per node over the empty process's $((BASE / 1024)) MB)"
  A0=$(ticks "$AGG"); P0=$(ticks $(pgpids)); T0=$(date +%s.%N)
  "$LOAD" steady "127.0.0.1:$PORT" "$WORK/report.json" "$NODES" "$CONNS" "$STEADY_SECS" "$INTERVAL" "$CHANGE"
  A1=$(ticks "$AGG"); P1=$(ticks $(pgpids)); T1=$(date +%s.%N)
  SECS=$(awk -v a="$T0" -v b="$T1" 'BEGIN { print b - a }')
  echo "steady state CPU: aggregator $(pct $((A1 - A0)) "$SECS")$( [ "$STORE" = postgres ] && echo ", PostgreSQL $(pct $((P1 - P0)) "$SECS")")"
  "$LOAD" get "127.0.0.1:$PORT" /api/v1/fleet 10
  "$LOAD" get "127.0.0.1:$PORT" "/api/v1/nodes?limit=500" 5
  "$LOAD" get "127.0.0.1:$PORT" "/api/v1/nodes?status=fail&limit=500" 5
  echo "aggregator RSS at the end: $(( $(rss_kb "$AGG") / 1024 )) MB, peak $(( $(awk '/VmHWM/ {print $2}' "/proc/$AGG/status") / 1024 )) MB"
  [ "$STORE" = embedded ] && echo "fleet.redb: $(du -h "$WORK/data/fleet.redb" | cut -f1)"
  kill "$AGG"; wait "$AGG" 2>/dev/null || true; AGG=""
  if [ "$STORE" = postgres ]; then
    echo "PostgreSQL tables: $(runuser -u postgres -- psql -h "$WORK/pgrun" -p "$PGPORT" -At -c "select pg_size_pretty(pg_total_relation_size('gluten_fleet_node'))" postgres)"
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast stop > /dev/null
    rm -rf "$WORK/pg"
  fi
done
