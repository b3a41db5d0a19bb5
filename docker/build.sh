#!/usr/bin/env bash
# docker/build.sh [TAG]: builds the two images, each for linux/amd64 and linux/arm64, on a machine
# with a Docker engine and a Rust toolchain but no registry (TAG default: latest):
#
#   gluten-node-agent       the DaemonSet's agent: `--no-default-features`, no aggregator inside
#   gluten-node-aggregator  the default build: the fleet aggregator (and `run`, `check`)
#
# The binaries are built here, static (x86_64- and aarch64-unknown-linux-musl: no glibc, no NSS;
# musl's resolver reads /etc/hosts and /etc/resolv.conf, which Docker provides, so names like
# `aggregator` resolve); aarch64 is cross-compiled with Debian's gcc-aarch64-linux-gnu (see
# .cargo/config.toml). Each is copied with docker/rootfs into a staging context and
# `docker build --platform linux/<arch> --target <image>-local` only COPYs it: nothing is pulled
# or run, so the arm64 variant needs no emulation to build.
#
# Left behind:
#   * in the Docker engine: IMAGE:TAG-amd64 and IMAGE:TAG-arm64, and IMAGE:TAG for the engine's
#     own platform (the classic image store holds one platform per tag);
#   * one OCI image layout per image, $CARGO_TARGET_DIR/oci/IMAGE/ (target/oci/IMAGE/ without
#     CARGO_TARGET_DIR), whose ref TAG is an image index over both platforms (refs TAG-amd64 and
#     TAG-arm64 name the variants): `skopeo copy --all oci:target/oci/IMAGE:TAG docker://...`
#     pushes it as one multi-platform image.
#
# PLATFORMS="amd64" (or "arm64") builds fewer variants; the OCI index then lists those.
# With a registry, docker/Dockerfile also builds the amd64 images from source (see there).
set -euo pipefail

tag="${1:-latest}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${CARGO_TARGET_DIR:-$root/target}"
platforms="${PLATFORMS:-amd64 arm64}"
images=(gluten-node-agent gluten-node-aggregator)

need() { command -v "$1" >/dev/null || { echo "build.sh: $1 is needed ($2)" >&2; exit 1; }; }
need skopeo "Debian package skopeo: it writes the OCI layouts"
need jq "Debian package jq"

rust_target() {
    case "$1" in
        amd64) echo x86_64-unknown-linux-musl ;;
        arm64) need aarch64-linux-gnu-gcc "Debian package gcc-aarch64-linux-gnu"
               echo aarch64-unknown-linux-musl ;;
        *) echo "build.sh: unknown platform $1 in PLATFORMS (amd64, arm64)" >&2; exit 1 ;;
    esac
}

case "$(docker info --format '{{.Architecture}}')" in
    x86_64) native=amd64 ;;
    aarch64) native=arm64 ;;
    *) native="" ;;
esac

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT

# Builds the binary for one image and platform and stages it in $ctx/IMAGE-ARCH/.
stage() {
    local image="$1" arch="$2" target features=()
    target="$(rust_target "$arch")"
    [ "$image" = gluten-node-agent ] && features=(--no-default-features)
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        echo "build.sh: adding the Rust target $target" >&2
        rustup target add "$target"
    fi
    (cd "$root" && cargo build --release --locked --target "$target" \
        -p gluten-node-agent --bin gluten-node-agent "${features[@]}")
    local bin="$out/$target/release/gluten-node-agent"
    # A dynamic binary would die in a scratch image with a confusing "no such file or directory".
    if readelf -lW "$bin" | grep -q 'INTERP'; then
        echo "build.sh: $bin is dynamically linked; refusing to put it in a scratch image" >&2
        exit 1
    fi
    local dir="$ctx/$image-$arch"
    mkdir -p "$dir/rootfs/usr/local/bin" "$dir/data"
    cp -a "$root/docker/rootfs/." "$dir/rootfs/"
    install -m 0755 "$bin" "$dir/rootfs/usr/local/bin/gluten-node-agent"
}

# The image index over the variants in layout $1 (refs $2-ARCH), written as a blob and named $2
# in the layout's index.json beside the variants' own refs.
write_index() {
    local layout="$1" tag="$2" manifests="[]" arch entry
    for arch in $platforms; do
        entry="$(jq -c --arg ref "$tag-$arch" --arg arch "$arch" \
            '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $ref)
             | {mediaType, digest, size, platform: {architecture: $arch, os: "linux"}}' \
            "$layout/index.json")"
        [ -n "$entry" ] || { echo "build.sh: no ref $tag-$arch in $layout/index.json" >&2; exit 1; }
        manifests="$(jq -c --argjson e "$entry" '. + [$e]' <<<"$manifests")"
    done
    local blob digest size
    blob="$(jq -c -n --argjson m "$manifests" \
        '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: $m}')"
    digest="$(printf '%s' "$blob" | sha256sum | cut -d' ' -f1)"
    size="$(printf '%s' "$blob" | wc -c)"
    printf '%s' "$blob" > "$layout/blobs/sha256/$digest"
    jq --arg d "sha256:$digest" --argjson s "$size" --arg ref "$tag" \
        '.manifests = ([.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] != $ref)]
         + [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
             annotations: {"org.opencontainers.image.ref.name": $ref}}])' \
        "$layout/index.json" > "$layout/index.json.new"
    mv "$layout/index.json.new" "$layout/index.json"
}

# Cargo builds per target (amd64 then arm64), the lean agent before the full one.
for arch in $platforms; do
    for image in "${images[@]}"; do
        stage "$image" "$arch"
    done
done

for image in "${images[@]}"; do
    layout="$out/oci/$image"
    rm -rf "$layout"
    mkdir -p "$layout"
    for arch in $platforms; do
        ref="$image:$tag-$arch"
        # --no-cache: the classic builder's cache ignores --platform, and would hand back the
        # other platform's image for identical layers.
        if ! docker build -q --no-cache --platform "linux/$arch" \
            --target "${image#gluten-node-}-local" -f "$root/docker/Dockerfile" -t "$ref" \
            "$ctx/$image-$arch" >"$ctx/docker-build.log" 2>&1; then
            cat "$ctx/docker-build.log" >&2
            exit 1
        fi
        got="$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$ref")"
        if [ "$got" != "linux/$arch" ]; then
            echo "build.sh: $ref is $got, not linux/$arch" >&2
            exit 1
        fi
        [ "$arch" = "$native" ] && docker tag "$ref" "$image:$tag"
        size=$(docker image inspect -f '{{.Size}}' "$ref")
        echo "build.sh: built $ref, $((size / 1024 / 1024)) MiB"
        if [ "$size" -ge $((40 * 1000 * 1000)) ]; then
            echo "build.sh: $ref is over 40 MB" >&2
            exit 1
        fi
        skopeo copy -q "docker-daemon:$ref" "oci:$layout:$tag-$arch"
    done
    write_index "$layout" "$tag"
    echo "build.sh: $layout: ref $tag is an index over $(echo $platforms | tr ' ' ,)"
done
