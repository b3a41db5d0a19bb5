#!/usr/bin/env bash
# The agent's /metrics against an earlier commit of itself, side by side in one run: both release
# binaries run at once on loopback (defaults, host root /), and wrk alternates between them for
# ROUNDS rounds (the order flips every round, so drift on a shared machine falls on both). Prints
# per-round requests/s, the medians with their spread, the bodies' sizes and each process's RSS
# after the runs, as a Markdown table.
#
#   benches/load/against_commit.sh                 # against 43e5e2b, 7 rounds of 10 s, 8 connections
#   BASE=<commit> ROUNDS=9 DURATION=15s benches/load/against_commit.sh
#   SAME_CHECKS=1 benches/load/against_commit.sh   # this tree runs only the checks 43e5e2b had
#   LEAN=1 benches/load/against_commit.sh          # this tree as the DaemonSet ships it (no aggregator)
#   TARGET=x86_64-unknown-linux-musl LEAN=1 ...     # both static musl, as the image and packages ship
#   REST_STARTS=5 ...                               # RSS at rest over 5 fresh starts (default 3)
#
# Checks added since the earlier commit add metric families, so by default the bodies differ;
# SAME_CHECKS=1 turns the newer checks off (gluten_runtime, limits) so both serve the same
# families and the same body size.
#
# RSS at rest is taken after the runs, from REST_STARTS fresh starts of both side by side, each
# read REST_SECONDS (default 5) after start, once the first rounds are done: one sample of a
# dynamically linked build moves by 100-200 KiB from start to start (which code pages the
# start-up faulted in); the static musl builds are steady to a few KiB.
#
# Needs: wrk (Debian package), git; for TARGET, its rustup target. The earlier commit is built
# once into target/bench-base/ (a git worktree and its own target dir); traffic goes to
# 127.0.0.1 only and the script kills what it started.
set -euo pipefail
cd "$(dirname "$0")/../.."

BASE=${BASE:-43e5e2b}
ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-8}
THREADS=${THREADS:-2}
BASE_PORT=${BASE_PORT:-19897}
HEAD_PORT=${HEAD_PORT:-19898}
OUT=${OUT:-target/bench-against-commit.md}

command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 2; }
mkdir -p target

base_rev=$(git rev-parse --short "$BASE^{commit}")
head_rev=$(git rev-parse --short HEAD)
wt=target/bench-base/src
if [ "$(git -C "$wt" rev-parse --short HEAD 2>/dev/null || true)" != "$base_rev" ]; then
  rm -rf "$wt"
  git worktree prune
  git worktree add -q --detach "$wt" "$base_rev"
fi
echo "building $base_rev (earlier) and $head_rev (this tree)${TARGET:+ for $TARGET}" >&2
target_args=(); target_dir=release
if [ -n "${TARGET:-}" ]; then
  target_args=(--target "$TARGET"); target_dir="$TARGET/release"
fi
(cd "$wt" && CARGO_TARGET_DIR=../target cargo build --release -q -p gluten-node-agent "${target_args[@]}")
BASE_BIN=target/bench-base/target/$target_dir/gluten-node-agent
if [ "${LEAN:-0}" = 1 ]; then
  cargo build --release -q --no-default-features -p gluten-node-agent --target-dir target/lean "${target_args[@]}"
  HEAD_BIN=target/lean/$target_dir/gluten-node-agent
else
  cargo build --release -q -p gluten-node-agent "${target_args[@]}"
  HEAD_BIN=target/$target_dir/gluten-node-agent
fi
head_args=()
if [ "${SAME_CHECKS:-0}" = 1 ]; then
  printf '[gluten_runtime]\nenabled = false\n\n[limits]\nenabled = false\n' >target/bench-same-checks.toml
  head_args=(--config target/bench-same-checks.toml)
fi

# shellcheck source=benches/load/servers.sh
. benches/load/servers.sh
# start_both: both binaries, answering; their pids in $base_pid and $head_pid.
start_both() {
  start target/bench-base.log "$BASE_BIN" run --listen "127.0.0.1:$BASE_PORT"
  base_pid=$started
  start target/bench-head.log "$HEAD_BIN" run "${head_args[@]}" --listen "127.0.0.1:$HEAD_PORT"
  head_pid=$started
  wait_up "http://127.0.0.1:$BASE_PORT/readyz" "http://127.0.0.1:$HEAD_PORT/readyz"
}
start_both

rps() { wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "$1" | awk '/Requests\/sec:/ { printf "%.0f\n", $2 }'; }
# median, min, max of the numbers on stdin
stats() { sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f %d %d\n", m, v[1], v[NR] }'; }

echo "warming up" >&2
wrk -t1 -c2 -d2s "http://127.0.0.1:$BASE_PORT/metrics" >/dev/null
wrk -t1 -c2 -d2s "http://127.0.0.1:$HEAD_PORT/metrics" >/dev/null

base_runs=(); head_runs=()
for r in $(seq "$ROUNDS"); do
  if ((r % 2)); then
    base_runs+=("$(rps "http://127.0.0.1:$BASE_PORT/metrics")"); head_runs+=("$(rps "http://127.0.0.1:$HEAD_PORT/metrics")")
  else
    head_runs+=("$(rps "http://127.0.0.1:$HEAD_PORT/metrics")"); base_runs+=("$(rps "http://127.0.0.1:$BASE_PORT/metrics")")
  fi
  echo "round $r: $base_rev ${base_runs[-1]} req/s, $head_rev ${head_runs[-1]} req/s" >&2
done
read -r bm bmin bmax < <(printf '%s\n' "${base_runs[@]}" | stats)
read -r hm hmin hmax < <(printf '%s\n' "${head_runs[@]}" | stats)
b_rss=$(rss_kib "$base_pid"); h_rss=$(rss_kib "$head_pid")
b_bytes=$(curl -s "http://127.0.0.1:$BASE_PORT/metrics" | wc -c)
h_bytes=$(curl -s "http://127.0.0.1:$HEAD_PORT/metrics" | wc -c)
cleanup

# RSS at rest: fresh starts of both, side by side.
b_rest=(); h_rest=()
for r in $(seq "${REST_STARTS:-3}"); do
  start_both
  sleep "${REST_SECONDS:-5}"
  b_rest+=("$(rss_kib "$base_pid")"); h_rest+=("$(rss_kib "$head_pid")")
  echo "at rest, start $r: $base_rev ${b_rest[-1]} KiB, $head_rev ${h_rest[-1]} KiB" >&2
  cleanup
done
read -r b_rss0 b_rss0min b_rss0max < <(printf '%s\n' "${b_rest[@]}" | stats)
read -r h_rss0 h_rss0min h_rss0max < <(printf '%s\n' "${h_rest[@]}" | stats)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

{
  echo "\`/metrics\`, $head_rev (LEAN=${LEAN:-0}, SAME_CHECKS=${SAME_CHECKS:-0}, ${TARGET:-host target}) against $base_rev: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), $ROUNDS interleaved rounds of wrk -t$THREADS -c$CONNS -d$DURATION on 127.0.0.1"
  echo
  echo "| binary | requests/s, median | min | max | body | RSS at rest, median of ${#b_rest[@]} starts (min-max) | RSS after the runs |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  echo "| $base_rev (earlier) | $bm | $bmin | $bmax | $b_bytes B | $b_rss0 KiB ($b_rss0min-$b_rss0max) | $b_rss KiB |"
  echo "| $head_rev (this tree) | $hm | $hmin | $hmax | $h_bytes B | $h_rss0 KiB ($h_rss0min-$h_rss0max) | $h_rss KiB |"
  echo
  echo "Ratio of medians, this tree / earlier: requests/s $(ratio "$hm" "$bm"), RSS at rest $(ratio "$h_rss0" "$b_rss0"), after the runs $(ratio "$h_rss" "$b_rss")."
  echo "Rounds: earlier ${base_runs[*]}; this tree ${head_runs[*]}."
} | tee "$OUT"
