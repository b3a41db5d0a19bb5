#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer's coverage instrumentation (stable rustc: the same
# -Cpasses=sancov-module flags `cargo fuzz build -s none` passes, no nightly needed) and runs each
# for SECONDS (default 20) under a 512 MiB RSS and malloc limit, starting from seed corpora made
# of real files (tests/fixtures, compiler output, ld.so.cache written by ldconfig) plus the
# committed fuzz/corpus/<target>/. Fails on any crash, panic, leak, timeout or over-allocation;
# the input is left in fuzz/artifacts/<target>/.
#
#   fuzz/run.sh 20                 # every target, 20 s each (CI)
#   fuzz/run.sh 600 elf            # one target, 10 minutes
#   FUZZ_JOBS=2 fuzz/run.sh 60     # two targets at once
set -euo pipefail
seconds=${1:-20}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cd "$here"
all=(proc_files sys_files elf ld_so_cache spark_conf config_toml node_report)
[ $# -gt 0 ] && targets=("$@") || targets=("${all[@]}")
triple=$(rustc -vV | sed -n 's/^host: //p')

export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# The same dependency versions as the product: start from the workspace's lock file (cargo then
# adds only libfuzzer-sys).
cp "$repo/Cargo.lock" Cargo.lock
cargo build --release --target "$triple" --bins
bin="$here/target/$triple/release"

# Seeds from real files, made fresh each run (nothing large in git).
seeds="$here/work/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"
fx="$repo/tests/fixtures"
prefix() { # prefix BYTE TARGET FILE...: one seed per file, the selector byte first
    local byte=$1 target=$2
    shift 2
    mkdir -p "$seeds/$target"
    for f in "$@"; do
        [ -f "$f" ] || continue
        { printf "\\x$(printf %02x "$byte")"; head -c 65536 "$f"; } \
            > "$seeds/$target/$byte-$(echo "$f" | md5sum | cut -c1-12)"
    done
}
find_named() { find "$fx" -path '*/licenses' -prune -o -type f -name "$1" -print; }
# proc_files selectors: 0 meminfo, 1 flat keyed (memory.stat, memory.events), 2 vmstat,
# 3 cgroup limit/value, 4 /proc/self/cgroup, 5 cgroup mounts (mountinfo), 6 PSI, 7 mountinfo,
# 8 /proc/self/status, 9 meminfo hugepage fields (and node meminfo).
prefix 0 proc_files $(find_named meminfo)
prefix 1 proc_files $(find_named memory.stat) $(find_named memory.events) $(find_named memory.oom_control)
prefix 2 proc_files $(find_named vmstat)
prefix 3 proc_files $(find_named 'memory.max') $(find_named 'memory.current') $(find_named 'memory.*_in_bytes')
prefix 4 proc_files $(find_named cgroup)
prefix 5 proc_files $(find_named mountinfo)
prefix 6 proc_files $(find "$fx" -path '*/licenses' -prune -o -type f -path '*pressure*' -print) $(find_named memory.pressure)
prefix 7 proc_files $(find_named mountinfo)
prefix 8 proc_files $(find_named status)
prefix 9 proc_files $(find_named meminfo)
# sys_files selectors: 0 THP mode, 1 pool dir name, 2 count, 3 cpulist, 4 distance,
# 5 numa_balancing, 6 cpuinfo.
prefix 0 sys_files $(find_named enabled) $(find_named defrag)
mkdir -p "$seeds/sys_files"
for d in $(find "$fx" -type d -name 'hugepages-*kB' | head -20); do
    printf '\x01%s' "$(basename "$d")" > "$seeds/sys_files/1-$(basename "$d")"
done
prefix 2 sys_files $(find_named nr_hugepages | head -20) $(find_named free_hugepages | head -5)
prefix 3 sys_files $(find_named cpulist) $(find_named '*_list' | head -10) $(find_named online | head -5)
prefix 4 sys_files $(find_named distance)
prefix 5 sys_files $(find_named numa_balancing)
prefix 6 sys_files $(find_named cpuinfo)
# ELF: small shared objects from the C compiler (versioned libc references, RPATH/RUNPATH,
# execstack, a build id), whole and truncated.
mkdir -p "$seeds/elf" "$seeds/ld_so_cache" "$here/work/lib"
printf '#include <stdio.h>\nint tiny(void) { return puts("x"); }\n' > "$here/work/tiny.c"
cc -shared -fPIC -o "$here/work/lib/libtiny.so.1" -Wl,-soname,libtiny.so.1 -Wl,--build-id "$here/work/tiny.c"
cc -shared -fPIC -o "$here/work/lib/libtiny-rpath.so.1" -Wl,-soname,libtiny-rpath.so.1 -Wl,-rpath,'$ORIGIN/../lib' -Wl,--disable-new-dtags "$here/work/tiny.c"
cc -shared -fPIC -o "$here/work/lib/libtiny-runpath.so.1" -Wl,-soname,libtiny-runpath.so.1 -Wl,-rpath,/opt/gluten/lib -Wl,--enable-new-dtags -lm "$here/work/tiny.c"
cc -shared -fPIC -o "$here/work/lib/libtiny-execstack.so.1" -Wl,-z,execstack -s "$here/work/tiny.c"
for f in "$here"/work/lib/*.so.1; do
    cp "$f" "$seeds/elf/"
    head -c 1024 "$f" > "$seeds/elf/$(basename "$f").head"
done
# ld.so.cache: written by the real ldconfig for those libraries, and this host's own.
printf '%s\n' "$here/work/lib" > "$here/work/ld.so.conf"
if command -v ldconfig > /dev/null; then
    ldconfig -X -f "$here/work/ld.so.conf" -C "$seeds/ld_so_cache/new.cache" 2> /dev/null || true
fi
[ -r /etc/ld.so.cache ] && cp /etc/ld.so.cache "$seeds/ld_so_cache/host.cache"
[ -r /etc/ld.so.conf ] && cp /etc/ld.so.conf "$seeds/ld_so_cache/host.conf"
mkdir -p "$seeds/spark_conf" "$seeds/config_toml" "$seeds/node_report"
cp $(find_named spark-defaults.conf) "$seeds/spark_conf/" 2> /dev/null || true
find "$fx" -path '*/licenses' -prune -o -type f -name '*.properties' -print | head -5 | xargs -r cp -t "$seeds/spark_conf/"
find "$fx" -path '*/licenses' -prune -o -type f -name '*.toml' -print | head -20 | xargs -r cp -t "$seeds/config_toml/"
find "$fx/expected" -type f -name '*.json' | head -30 | xargs -r cp -t "$seeds/node_report/"

status=0
summary=()
for t in "${targets[@]}"; do
    work="$here/work/corpus/$t"
    mkdir -p "$work" "$here/artifacts/$t"
    dirs=("$work" "$seeds/$t")
    [ -d "$here/corpus/$t" ] && dirs+=("$here/corpus/$t")
    max_len=16384
    case $t in elf | ld_so_cache) max_len=131072 ;; esac
    log="$here/work/$t.log"
    set +e
    FUZZ_TMPDIR="$here/work" "$bin/$t" "${dirs[@]}" \
        -max_total_time="$seconds" -rss_limit_mb=512 -malloc_limit_mb=512 -timeout=10 \
        -max_len="$max_len" -print_final_stats=1 \
        -artifact_prefix="$here/artifacts/$t/" > "$log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    summary+=("$t: rc=$rc runs=${runs:-?} ${cov:-} corpus=$(ls "$work" | wc -l)")
    if [ $rc -ne 0 ]; then
        status=1
        echo "=== $t FAILED (rc $rc): last lines of $log" >&2
        tail -40 "$log" >&2
        ls -l "$here/artifacts/$t/" >&2
    fi
done
printf '%s\n' "${summary[@]}"
exit $status
