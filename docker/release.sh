#!/usr/bin/env bash
# docker/release.sh: the release artifacts, from one command, into target/release-artifacts/:
#
#   gluten-node-agent-VERSION-linux-ARCH.tar.gz   static binary (bin/), systemd units, sysusers
#                                                 entry and example configs; units run
#                                                 /usr/local/bin/gluten-node-agent
#   gluten-node-agent_VERSION-1_DEBARCH.deb       cargo-deb: /usr/bin/gluten-node-agent, units in
#                                                 /lib/systemd/system, /usr/lib/sysusers.d,
#                                                 /etc/gluten-node-agent/agent.toml (conffile)
#   gluten-node-agent-VERSION-1.ARCH.rpm          cargo-generate-rpm: the same files, units in
#                                                 /usr/lib/systemd/system, config %noreplace
#   SHA256SUMS                                    `sha256sum -c SHA256SUMS` checks them all
#
# for ARCH x86_64 and aarch64 (x86_64-/aarch64-unknown-linux-musl: static, no glibc, so one
# package serves every distribution). aarch64 is cross-built with Debian's gcc-aarch64-linux-gnu
# as .cargo/config.toml sets it up; without that config (a [target.aarch64-unknown-linux-musl]
# linker) or without the cross gcc it is skipped with a message, and x86_64 is still built.
# ARCHES="x86_64" (or "aarch64") builds fewer; an asked-for arch that cannot be built fails.
#
# Every package ships the default build (agent + `aggregator` subcommand): on bare metal one
# package serves both units, and the aggregator's code costs a few MiB of disk, not a node's
# memory (the agent never runs it). The lean `--no-default-features` build is for the DaemonSet
# image, pulled by every node of a cluster.
#
# Needs: rustup targets (added when missing), cargo-deb and cargo-generate-rpm (installed with
# `cargo install --locked` when missing), readelf, tar, gzip, sha256sum. File times in the
# archives and packages are the last commit's (or SOURCE_DATE_EPOCH's), owners root.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${RELEASE_DIR:-$root/target/release-artifacts}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
# File times in the archives and packages: the last commit's. Given to the packaging steps only:
# ring's build script watches SOURCE_DATE_EPOCH, and the build must stay the one docker/build.sh
# made (the image tests run first in CI), not be redone for every commit.
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
# The packaging tools' versions, pinned: the packages' layout is theirs.
deb_version=3.8.0
rpm_version=0.21.1

say() { echo "release.sh: $*" >&2; }
die() { say "$*"; exit 1; }

version="$(cargo pkgid -p gluten-node-agent | sed 's/.*[#@]//')"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || die "cannot read the version of gluten-node-agent (cargo pkgid said: $version)"

# The tools, installed once per machine into ~/.cargo/bin like cargo-deny in .ci/run.
tool() { # tool SUBCOMMAND CRATE VERSION
    if [ "$(cargo "$1" --version 2>/dev/null | awk '{print $NF}')" != "$3" ]; then
        say "installing $2 $3 (cargo install --locked; minutes, once per machine)"
        env -u CARGO_TARGET_DIR cargo install -q --locked "$2" --version "$3"
    fi
}

# Which arches: asked for (ARCHES) or all that this machine can build.
aarch64_missing() {
    grep -qs '^\[target\.aarch64-unknown-linux-musl\]' "$root/.cargo/config.toml" \
        || { echo "no [target.aarch64-unknown-linux-musl] in .cargo/config.toml (its cross linker)"; return; }
    command -v aarch64-linux-gnu-gcc >/dev/null \
        || { echo "no aarch64-linux-gnu-gcc (apt-get install gcc-aarch64-linux-gnu)"; return; }
}
arches=()
for arch in ${ARCHES:-x86_64 aarch64}; do
    case "$arch" in
        x86_64) arches+=(x86_64) ;;
        aarch64)
            why="$(aarch64_missing)"
            if [ -z "$why" ]; then
                arches+=(aarch64)
            elif [ -n "${ARCHES:-}" ]; then
                die "aarch64 asked for (ARCHES) but cannot be built: $why"
            else
                say "SKIPPING aarch64: $why; building x86_64 only"
            fi ;;
        *) die "unknown arch '$arch' in ARCHES (x86_64, aarch64)" ;;
    esac
done

tool deb cargo-deb "$deb_version"
tool generate-rpm cargo-generate-rpm "$rpm_version"

rm -rf "$out"
mkdir -p "$out"

# The packaged copies of the units run /usr/bin/gluten-node-agent and say where they came from;
# systemd/ keeps the /usr/local/bin ones for the archives and hand installs.
package_unit() { # package_unit SRC DEST
    awk 'NR == 1 { print; print "# Installed by the gluten-node-agent package (binary /usr/bin/gluten-node-agent). Local"; print "# changes: `systemctl edit " FILENAME "`, or a copy in /etc/systemd/system/."; next }
         /^\[Unit\]/ { body = 1 }
         body { print }' "$1" \
        | sed -e 's#/usr/local/bin/gluten-node-agent#/usr/bin/gluten-node-agent#g' \
              -e "s#systemctl edit .*/\\([^/]*\\)\`#systemctl edit \\1\`#" > "$2"
    grep -q '/usr/local/bin' "$2" && die "$2 still names /usr/local/bin"
    return 0
}

for arch in "${arches[@]}"; do
    target="$arch-unknown-linux-musl"
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        say "adding the Rust target $target"
        rustup target add "$target"
    fi
    say "building $target (release, default features)"
    # The x86_64 musl build needs no C toolchain of its own: ring's libc-free C compiles with gcc.
    # The same choice as docker/build.sh, so the image tests' release build is reused as it is.
    if [ "$arch" = x86_64 ]; then
        export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-$(command -v musl-gcc || command -v x86_64-linux-musl-gcc || echo gcc)}"
    fi
    cargo build --release --locked --target "$target" -p gluten-node-agent --bin gluten-node-agent
    rel="$target_dir/$target/release"
    bin="$rel/gluten-node-agent"
    if readelf -lW "$bin" | grep -q INTERP; then
        die "$bin is dynamically linked; the packages promise a static binary"
    fi
    machine="$(readelf -hW "$bin" | awk -F: '/Machine:/ { gsub(/^ +/, "", $2); print $2 }')"
    case "$arch:$machine" in
        x86_64:*X86-64*|aarch64:AArch64) ;;
        *) die "$bin is built for '$machine', not $arch" ;;
    esac

    # Files the package metadata (agent/Cargo.toml) names under target/release/package/, which
    # cargo-deb and cargo-generate-rpm read from this target's release folder.
    pkg="$rel/package"
    rm -rf "$pkg"
    mkdir -p "$pkg"
    package_unit systemd/gluten-node-agent.service "$pkg/gluten-node-agent.service"
    package_unit systemd/gluten-node-aggregator.service "$pkg/gluten-node-aggregator.service"
    date_rfc2822="$(date -u -R -d "@$epoch")"
    {
        echo "gluten-node-agent ($version-1) unstable; urgency=medium"
        echo
        echo "  * Release $version."
        echo
        echo " -- Gluten node agent maintainers <maintainers@example.invalid>  $date_rfc2822"
    } | gzip -n -9 > "$pkg/changelog.Debian.gz"

    # The archive: a folder with bin/, the units as in systemd/ (/usr/local/bin), the sysusers
    # entry and the example configs.
    name="gluten-node-agent-$version-linux-$arch"
    stage="$(mktemp -d)"
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage/$name/bin" "$stage/$name/systemd/sysusers.d" "$stage/$name/examples"
    install -m 0755 "$bin" "$stage/$name/bin/gluten-node-agent"
    install -m 0644 systemd/*.service "$stage/$name/systemd/"
    install -m 0644 systemd/sysusers.d/gluten-node-agent.conf "$stage/$name/systemd/sysusers.d/"
    install -m 0644 systemd/agent.toml systemd/gluten-node-agent.default docker/aggregator.token.example \
        "$stage/$name/examples/"
    cat > "$stage/$name/INSTALL" <<EOF
gluten-node-agent $version, static binary for Linux $arch (musl). By hand, as root:

  install -m 0755 bin/gluten-node-agent /usr/local/bin/
  install -m 0644 systemd/*.service /etc/systemd/system/
  install -D -m 0644 systemd/sysusers.d/gluten-node-agent.conf /etc/sysusers.d/gluten-node-agent.conf
  systemd-sysusers
  install -D -m 0644 examples/agent.toml /etc/gluten-node-agent/agent.toml
  install -m 0644 examples/gluten-node-agent.default /etc/default/gluten-node-agent
  systemctl daemon-reload && systemctl enable --now gluten-node-agent

The .deb and .rpm packages install the same files with the binary in /usr/bin.
EOF
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
        -cf - "$name" | gzip -n -9 > "$out/$name.tar.gz"
    rm -rf "$stage"
    trap - EXIT

    say "packaging $target: .deb"
    # The binary is stripped by the release profile; cargo-deb's strip would need the cross strip.
    SOURCE_DATE_EPOCH="$epoch" cargo deb -q -p gluten-node-agent --target "$target" --no-build --no-strip --output "$out/"
    say "packaging $target: .rpm"
    SOURCE_DATE_EPOCH="$epoch" cargo generate-rpm -p agent --target "$target" -o "$out/" \
        --payload-compress gzip
done

(cd "$out" && sha256sum -- *.tar.gz *.deb *.rpm > SHA256SUMS)
say "artifacts in $out:"
(cd "$out" && ls -l)
