#!/usr/bin/env bash
# Side-by-side load benchmark, one run, one host: gluten-node-agent's /metrics and /health against
# Debian's prometheus-node-exporter /metrics, with wrk on loopback. Prints a Markdown table of
# requests/s, p50, p99 and resident memory for both, and the ratios. Then, optionally, the CPU
# cost of running each at a 15 s scrape/round interval (IDLE_SECONDS > 0).
#
#   benches/load/side_by_side.sh                       # 10 s per endpoint, 8 connections
#   DURATION=30s CONNS=8 IDLE_SECONDS=300 benches/load/side_by_side.sh
#
# Two views of latency: wrk at saturation (as many requests as 8 connections can push: the
# tail there is queueing on a box shared with the load generator) and hey at fixed rates (8
# connections x RATE req/s: the latency a scraper actually sees).
#
# Needs: wrk, hey, prometheus-node-exporter (Debian packages). Traffic goes to 127.0.0.1 only;
# every load run is bounded by DURATION and the script kills what it started.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10s}
CONNS=${CONNS:-8}
THREADS=${THREADS:-2}
IDLE_SECONDS=${IDLE_SECONDS:-0}
AGENT_PORT=${AGENT_PORT:-19899}
NE_PORT=${NE_PORT:-19100}
OUT=${OUT:-target/bench-side-by-side.md}

command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 2; }
command -v hey >/dev/null || { echo "hey missing: apt-get install hey" >&2; exit 2; }
NE=$(command -v prometheus-node-exporter || true)
[ -n "$NE" ] || { echo "prometheus-node-exporter missing: apt-get install prometheus-node-exporter" >&2; exit 2; }

cargo build --release -q -p gluten-node-agent
AGENT=target/release/gluten-node-agent

# shellcheck source=benches/load/servers.sh
. benches/load/servers.sh
start target/bench-agent.log "$AGENT" run --listen "127.0.0.1:$AGENT_PORT" --interval-seconds 15 --log-format json
agent_pid=$started
start target/bench-node-exporter.log "$NE" --web.listen-address="127.0.0.1:$NE_PORT"
ne_pid=$started
wait_up "http://127.0.0.1:$AGENT_PORT/readyz" "http://127.0.0.1:$NE_PORT/metrics"

cpu_seconds() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

# wrk output -> "requests_per_second p50_ms p99_ms requests"
run_wrk() {
  local url=$1 out
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$url")
  echo "$out" >>target/bench-wrk.log
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /requests in/ { n = $1 }
    END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, n }' <<<"$out"
}

: >target/bench-wrk.log
echo "warming up" >&2
wrk -t1 -c2 -d2s "http://127.0.0.1:$AGENT_PORT/metrics" >/dev/null
wrk -t1 -c2 -d2s "http://127.0.0.1:$NE_PORT/metrics" >/dev/null

read -r a_rps a_p50 a_p99 a_n < <(run_wrk "http://127.0.0.1:$AGENT_PORT/metrics")
read -r h_rps h_p50 h_p99 h_n < <(run_wrk "http://127.0.0.1:$AGENT_PORT/health")
read -r n_rps n_p50 n_p99 n_n < <(run_wrk "http://127.0.0.1:$NE_PORT/metrics")
a_rss=$(rss_kib "$agent_pid"); n_rss=$(rss_kib "$ne_pid")
a_bytes=$(curl -s "http://127.0.0.1:$AGENT_PORT/metrics" | wc -c)
n_bytes=$(curl -s "http://127.0.0.1:$NE_PORT/metrics" | wc -c)

# hey at a fixed rate -> "requests_per_second p50_ms p99_ms"
fixed_rate() {
  local url=$1 per_conn=$2 out
  out=$(hey -z "$DURATION" -c "$CONNS" -q "$per_conn" "$url")
  echo "$out" >>target/bench-hey.log
  awk '
    /Requests\/sec:/ { rps = $2 }
    /^ +50% in/ { p50 = $3 * 1000 }
    /^ +99% in/ { p99 = $3 * 1000 }
    END { printf "%.0f %.2f %.2f\n", rps, p50, p99 }' <<<"$out"
}
: >target/bench-hey.log
read -r fa_rps fa_p50 fa_p99 < <(fixed_rate "http://127.0.0.1:$AGENT_PORT/metrics" 10)
read -r fn_rps fn_p50 fn_p99 < <(fixed_rate "http://127.0.0.1:$NE_PORT/metrics" 10)
read -r fh_rps fh_p50 fh_p99 < <(fixed_rate "http://127.0.0.1:$AGENT_PORT/metrics" 500)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }

{
  echo "Side by side on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), wrk -t$THREADS -c$CONNS -d$DURATION on 127.0.0.1"
  echo "(agent: release build, default config, host root /; node_exporter: Debian $(dpkg-query -W -f='${Version}' prometheus-node-exporter 2>/dev/null || echo '?'), default collectors)."
  echo
  echo "| endpoint | requests/s | p50 | p99 | body | requests served |"
  echo "|---|---:|---:|---:|---:|---:|"
  echo "| gluten-node-agent \`/metrics\` | $a_rps | ${a_p50} ms | ${a_p99} ms | $a_bytes B | $a_n |"
  echo "| gluten-node-agent \`/health\` | $h_rps | ${h_p50} ms | ${h_p99} ms | | $h_n |"
  echo "| node_exporter \`/metrics\` | $n_rps | ${n_p50} ms | ${n_p99} ms | $n_bytes B | $n_n |"
  echo
  echo "| \`/metrics\` at a fixed rate (hey, $CONNS connections) | requests/s | p50 | p99 |"
  echo "|---|---:|---:|---:|"
  echo "| gluten-node-agent, $CONNS x 10 req/s | $fa_rps | ${fa_p50} ms | ${fa_p99} ms |"
  echo "| node_exporter, $CONNS x 10 req/s | $fn_rps | ${fn_p50} ms | ${fn_p99} ms |"
  echo "| gluten-node-agent, $CONNS x 500 req/s | $fh_rps | ${fh_p50} ms | ${fh_p99} ms |"
  echo
  echo "| ratio | value |"
  echo "|---|---:|"
  echo "| \`/metrics\` requests/s, agent / node_exporter | $(ratio "$a_rps" "$n_rps") |"
  echo "| \`/metrics\` p99 at saturation, node_exporter / agent (how many times lower) | $(ratio "$n_p99" "$a_p99") |"
  echo "| \`/metrics\` p99 at $CONNS x 10 req/s, node_exporter / agent (how many times lower) | $(ratio "$fn_p99" "$fa_p99") |"
  echo "| resident memory after the runs ($((a_n + h_n)) vs $n_n requests), agent / node_exporter | $(ratio "$a_rss" "$n_rss") ($a_rss KiB vs $n_rss KiB) |"
} | tee "$OUT"

if [ "$IDLE_SECONDS" -gt 0 ]; then
  # CPU at rest: the agent runs its 15 s rounds; both are scraped every 15 s, as by Prometheus.
  a0=$(cpu_seconds "$agent_pid"); n0=$(cpu_seconds "$ne_pid")
  end=$((SECONDS + IDLE_SECONDS))
  while [ $SECONDS -lt $end ]; do
    curl -s "http://127.0.0.1:$AGENT_PORT/metrics" >/dev/null
    curl -s "http://127.0.0.1:$NE_PORT/metrics" >/dev/null
    sleep 15
  done
  a1=$(cpu_seconds "$agent_pid"); n1=$(cpu_seconds "$ne_pid")
  per_hour() { awk -v a="$1" -v b="$2" -v s="$IDLE_SECONDS" 'BEGIN { printf "%.2f", (b - a) * 3600 / s }'; }
  core_pct() { awk -v a="$1" -v b="$2" -v s="$IDLE_SECONDS" 'BEGIN { printf "%.4f", (b - a) * 100 / s }'; }
  {
    echo
    echo "| at rest, ${IDLE_SECONDS} s, 15 s interval and scrapes | CPU s/hour | % of one core | RSS |"
    echo "|---|---:|---:|---:|"
    echo "| gluten-node-agent | $(per_hour "$a0" "$a1") | $(core_pct "$a0" "$a1") % | $(rss_kib "$agent_pid") KiB |"
    echo "| node_exporter | $(per_hour "$n0" "$n1") | $(core_pct "$n0" "$n1") % | $(rss_kib "$ne_pid") KiB |"
  } | tee -a "$OUT"
fi
