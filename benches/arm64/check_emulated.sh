#!/usr/bin/env bash
# benches/arm64/check_emulated.sh: warm `check` time of the arm64 agent under qemu-aarch64-static
# beside the amd64 agent's, each on its own platform's copy of the same real library: PyPI's
# pyarrow 26.0.1 wheels (manylinux_2_28_aarch64 and _x86_64; libarrow.so.2600 and
# libparquet.so.2600 as the checked libraries, their bundled deps beside them, the platform's C
# and C++ runtime from Debian in /lib/<triplet>), in a host tree made of node-exporter's fixture
# (with tests/fixtures/arm64-graviton3 over it for arm64). Wheels are cached under
# $GLUTEN_TEST_CACHE (default /var/tmp/gluten-node-agent-test-cache).
#
# Needs the release musl binaries docker/build.sh builds (both platforms) and Debian's
# qemu-user-static and libc6-dev-arm64-cross (gcc-aarch64-linux-gnu pulls it in). Prints the
# median wall time of RUNS (default 7) runs after one untimed run that warms the page cache.
# Emulated times only compare with the amd64 time of the same run, never with real arm64 machines.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${CARGO_TARGET_DIR:-$root/target}"
cache="${GLUTEN_TEST_CACHE:-/var/tmp/gluten-node-agent-test-cache}"
runs="${RUNS:-7}"
version=26.0.1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# wheel PLATFORM: the unpacked wheel's directory.
wheel() {
    local dir="$cache/pyarrow-$1"
    if [ ! -f "$dir/pyarrow/libarrow.so.2600" ]; then
        mkdir -p "$dir"
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --platform "manylinux_2_28_$1" "pyarrow==$version" -d "$dir"
        python3 -m zipfile -e "$dir"/pyarrow-"$version"-*.whl "$dir"
    fi
    echo "$dir"
}

# host ARCH TRIPLET RUNTIME_DIR: a host tree with pyarrow at /opt/pyarrow.
host() {
    local h="$tmp/$1" w
    w="$(wheel "$1")"
    cp -a "$root/tests/fixtures/upstream/node-exporter-upstream/." "$h"
    [ "$1" = aarch64 ] && cp -a "$root/tests/fixtures/arm64-graviton3/proc" \
        "$root/tests/fixtures/arm64-graviton3/sys" "$h"
    mkdir -p "$h/opt" "$h/lib/$2" "$h/etc"
    cp -a "$w/pyarrow" "$h/opt/pyarrow"
    [ -d "$w/pyarrow.libs" ] && cp -a "$w/pyarrow.libs" "$h/opt/pyarrow.libs"
    # The runtime in /lib/<triplet>, also linked from the loader's default dirs (no ld.so.cache).
    for l in libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1 libz.so.1 libpthread.so.0 \
             libdl.so.2 librt.so.1 ld-linux-x86-64.so.2 ld-linux-aarch64.so.1; do
        [ -e "$3/$l" ] && cp -L "$3/$l" "$h/lib/$2/"
    done
    mkdir -p "$h/usr"
    for d in lib64 usr/lib usr/lib64; do [ -e "$h/$d" ] || ln -s "/lib/$2" "$h/$d"; done
    for l in "$h/lib/$2"/*; do ln -s "$2/$(basename "$l")" "$h/lib/"; done
    echo "/lib/$2" > "$h/etc/ld.so.conf"
    echo "$h"
}

# median COMMAND...: the median wall time in ms of $runs runs (after one warm-up run).
median() {
    "$@" >/dev/null || [ $? -eq 1 ]
    for _ in $(seq "$runs"); do
        local t0 t1
        t0=$(date +%s%N)
        "$@" >/dev/null || [ $? -eq 1 ]
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000000))
    done | sort -n | sed -n "$(((runs + 1) / 2))p"
}

set_paths='velox_library.paths=["/opt/pyarrow/libarrow.so.2600","/opt/pyarrow/libparquet.so.2600"]'
amd64_bin="$out/x86_64-unknown-linux-musl/release/gluten-node-agent"
arm64_bin="$out/aarch64-unknown-linux-musl/release/gluten-node-agent"
for b in "$amd64_bin" "$arm64_bin"; do
    [ -x "$b" ] || { echo "check_emulated.sh: $b missing: run docker/build.sh" >&2; exit 1; }
done
amd64_host="$(host x86_64 x86_64-linux-gnu /lib/x86_64-linux-gnu)"
arm64_host="$(host aarch64 aarch64-linux-gnu /usr/aarch64-linux-gnu/lib)"

# What was checked, so a broken tree shows (the velox_library summary of each).
for p in "amd64 $amd64_bin $amd64_host" "arm64 qemu-aarch64-static $arm64_bin $arm64_host"; do
    set -- $p
    name="$1"; shift; h="${*: -1}"; cmd=("${@:1:$#-1}")
    "${cmd[@]}" check --host-root "$h" --set "$set_paths" --output json | jq -r \
        --arg n "$name" '.checks[] | select(.name == "velox_library")
        | "\($n): velox_library \(.status), host_arch \(.facts.host_arch), \(.facts.libraries | length) libraries, \([.facts.libraries[].resolved | length] | add) deps resolved: \(.summary)"' \
        || true
done
amd=$(median "$amd64_bin" check --host-root "$amd64_host" --set "$set_paths")
arm=$(median qemu-aarch64-static "$arm64_bin" check --host-root "$arm64_host" --set "$set_paths")
echo "warm check, median of $runs: amd64 native ${amd} ms, arm64 under qemu-aarch64-static ${arm} ms ($(awk "BEGIN{printf \"%.1f\", $arm/$amd}")x)"
