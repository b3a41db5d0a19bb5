# shellcheck shell=bash
# Sourced by the load benches: start the servers under test, wait until they answer, read their
# RSS, and kill what was started when the bench exits.

pids=()
# cleanup: kills and reaps every server started so far; later starts begin a new list.
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap cleanup EXIT

# start LOG CMD...: runs CMD in the background with its stderr in LOG; its pid goes to $started.
start() {
  local log=$1
  shift
  "$@" 2>"$log" &
  started=$!
  pids+=("$started")
}

# wait_up URL...: waits (10 s at most) until every URL answers, then fails naming the logs if a
# server started here has exited (a port taken, a bad flag).
wait_up() {
  local url ok
  for _ in $(seq 100); do
    ok=1
    for url in "$@"; do curl -sf "$url" >/dev/null || { ok=0; break; }; done
    ((ok)) && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "a server did not start (port taken?): see its log under target/" >&2; exit 1; }
  done
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
