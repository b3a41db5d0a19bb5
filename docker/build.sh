#!/usr/bin/env bash
# docker/build.sh [TAG]: builds the image gluten-node-agent:TAG (default: latest) on a machine
# with a Docker engine and a Rust toolchain but no registry. The binary is built here, static
# (x86_64-unknown-linux-musl: no glibc, no NSS; musl's resolver reads /etc/hosts and
# /etc/resolv.conf, which Docker provides, so names like `aggregator` resolve), and copied with
# docker/rootfs into a staging context; `docker build --target image-local` then only COPYs.
# With a registry, `docker build -f docker/Dockerfile .` from the repository root builds the same
# image from source instead (see docker/Dockerfile).
set -euo pipefail

tag="${1:-latest}"
image="gluten-node-agent:${tag}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target=x86_64-unknown-linux-musl

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "build.sh: adding the Rust target $target" >&2
    rustup target add "$target"
fi
# ring (rustls' crypto) compiles a little C and assembly; its code needs no libc, so the host's gcc
# serves for the musl target when no musl-gcc is installed.
export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-$(command -v musl-gcc || command -v x86_64-linux-musl-gcc || echo gcc)}"
(cd "$root" && cargo build --release --locked --target "$target" \
    -p gluten-node-agent --bin gluten-node-agent)
bin="$root/target/$target/release/gluten-node-agent"

# A dynamic binary would die in a scratch image with a confusing "no such file or directory".
if readelf -lW "$bin" | grep -q 'INTERP'; then
    echo "build.sh: $bin is dynamically linked; refusing to put it in a scratch image" >&2
    exit 1
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/data"
cp -a "$root/docker/rootfs/." "$ctx/rootfs/"
install -m 0755 "$bin" "$ctx/rootfs/usr/local/bin/gluten-node-agent"

docker build --target image-local -f "$root/docker/Dockerfile" -t "$image" "$ctx"

size=$(docker image inspect -f '{{.Size}}' "$image")
echo "build.sh: built $image, $((size / 1024 / 1024)) MiB"
if [ "$size" -ge $((40 * 1000 * 1000)) ]; then
    echo "build.sh: $image is over 40 MB" >&2
    exit 1
fi
