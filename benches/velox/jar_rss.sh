#!/usr/bin/env bash
# Cold check of the official Gluten 1.7.0 bundle jar (PyPI velox-spark 1.7.0.1, 183 MB, 293 MB of
# native libraries inside): wall time and peak RSS of the release agent, measured by
# /usr/bin/time -v. The root is built here: this system's C runtime, zoneinfo, the jar.
# Usage: benches/velox/jar_rss.sh [AGENT_BIN]   (default target/release/gluten-node-agent)
set -euo pipefail
root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${1:-$root_dir/target/release/gluten-node-agent}"
cache="$root_dir/target/velox-spark-cache"
jar="$cache/velox_spark/jars/gluten-velox-bundle-spark3.5_2.12-linux_amd64-1.7.0.jar"
if [ ! -f "$jar" ]; then
    mkdir -p "$cache"
    python3 -m pip download --no-deps velox-spark==1.7.0.1 -d "$cache" >/dev/null
    python3 -c 'import zipfile,sys,glob; zipfile.ZipFile(glob.glob(sys.argv[1]+"/*.whl")[0]).extract(sys.argv[2], sys.argv[1])' \
        "$cache" "velox_spark/jars/$(basename "$jar")"
fi
work="$(mktemp -d "$root_dir/target/jar-rss.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lib/x86_64-linux-gnu" "$work/lib64" "$work/opt/spark/jars" "$work/usr/share/zoneinfo" "$work/proc"
for l in libc.so.6 libm.so.6 librt.so.1 libpthread.so.0 libdl.so.2 ld-linux-x86-64.so.2; do
    cp "$(readlink -f "/lib/x86_64-linux-gnu/$l")" "$work/lib/x86_64-linux-gnu/$l"
done
ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$work/lib64/ld-linux-x86-64.so.2"
ln "$jar" "$work/opt/spark/jars/gluten.jar" 2>/dev/null || cp "$jar" "$work/opt/spark/jars/gluten.jar"
cp /proc/cpuinfo "$work/proc/cpuinfo"
# Only velox_library, with the jar: the figure is the jar's cost, not the other checks'.
/usr/bin/time -v "$bin" check --output json --host-root "$work" \
    --set 'velox_library.paths=[]' --set 'velox_library.jars=["/opt/spark/jars/gluten.jar"]' \
    --set hugepages.enabled=false --set numa.enabled=false --set scratch.enabled=false \
    --set memory.enabled=false >"$work/out.json" 2>"$work/time.txt" || true
python3 - "$work/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = [c for c in r["checks"] if c["name"] == "velox_library"][0]
libs = [(l["library"], len(l["resolved"]), l.get("identity")) for l in c["facts"]["libraries"]]
print(f"status {c['status']}: {c['summary'][:160]}")
print(f"libraries {libs}")
PY
grep -E "User time|System time|Elapsed|Maximum resident" "$work/time.txt"
