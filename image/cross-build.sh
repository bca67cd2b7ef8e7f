#!/usr/bin/env bash
# Cross-builds plugnode for the Raspberry Pi (aarch64-unknown-linux-gnu) without Docker,
# from Debian bookworm's own packages: rustc-web, cargo-web, libstd-rust-web-dev:arm64 and
# gcc-aarch64-linux-gnu. (Where Docker is available, `cross` works too: see ../cross.toml.)
#
#   image/cross-build.sh              the production binary (no demo feature, no simulator)
#   image/cross-build.sh --with-sim   also regtest-sim, the bitcoind stand-in the image's
#                                     test profile installs (never in a production image)
#   image/cross-build.sh --from-git REV
#       builds a clean export of commit REV (e.g. HEAD) instead of the working tree: what a
#       release is built from, and safe while others edit the checkout
#
# Outputs: image/out/aarch64/plugnode (and regtest-sim). The build directory is
# $PLUGNODE_CROSS_TARGET_DIR (default /var/tmp/plugnode-cross): Debian's rustc is another
# compiler than rustup's, and sharing the workspace's target/ would make both rebuild
# everything each time.
#
# Run it under `nice -n 19` on a shared machine; the first build takes a long while (the
# Lightning stack, fat LTO).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
target=aarch64-unknown-linux-gnu
target_dir="${PLUGNODE_CROSS_TARGET_DIR:-/var/tmp/plugnode-cross}"
out="${PLUGNODE_OUT:-$here/out}/aarch64"
with_sim=0
from_git=""

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
    case "$1" in
        --with-sim) with_sim=1; shift ;;
        --from-git) from_git="${2:-}"; shift 2 || { usage >&2; exit 2; } ;;
        -h | --help) usage; exit 0 ;;
        *) echo "cross-build.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

# --- the toolchain: Debian's packages, installed when missing -------------------------
# rustup's rustc (in ~/.cargo/bin) comes first on PATH and has no aarch64 standard
# library, so Debian's compiler is named explicitly everywhere.
DEB_RUSTC=/usr/bin/rustc
DEB_CARGO=/usr/bin/cargo
packages=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "cross-build.sh: missing Debian packages: ${missing[*]}" >&2
        echo "  install them with: sudo dpkg --add-architecture arm64 && sudo apt-get update && sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "== installing ${missing[*]}"
    dpkg --add-architecture arm64
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
for tool in "$DEB_RUSTC" "$DEB_CARGO" aarch64-linux-gnu-gcc; do
    command -v "$tool" >/dev/null || { echo "cross-build.sh: $tool not found" >&2; exit 1; }
done

export RUSTC="$DEB_RUSTC"
export RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_DIR="$target_dir"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# C code built by build scripts (the bundled SQLite, ring's assembly) for the target:
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# A rustup override must not leak into Debian's cargo.
unset RUSTUP_TOOLCHAIN RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER

echo "== $("$DEB_RUSTC" --version) / $("$DEB_CARGO" --version), target $target, build dir $target_dir"
src="$repo"
if [[ -n $from_git ]]; then
    commit=$(git -C "$repo" rev-parse --verify "$from_git^{commit}")
    src="$target_dir/source"
    rm -rf "$src"
    mkdir -p "$src"
    git -C "$repo" archive "$commit" | tar -x -C "$src"
    echo "== building commit $commit (a clean export in $src)"
fi
cd "$src"
mkdir -p "$out"

build() { # package, extra cargo args...
    local started=$SECONDS
    "$DEB_CARGO" build --locked --release --target "$target" "$@"
    echo "== built $* in $((SECONDS - started)) s"
}

# The production binary: without the `demo` feature, so regtest-sim is not linked in.
build -p plugnode --no-default-features --bin plugnode
install -m 0755 "$target_dir/$target/release/plugnode" "$out/plugnode"

rm -f "$out/regtest-sim"
if ((with_sim)); then
    build -p plugnode-testkit --bin regtest-sim
    install -m 0755 "$target_dir/$target/release/regtest-sim" "$out/regtest-sim"
fi

for bin in "$out"/plugnode "$out"/regtest-sim; do
    [[ -f $bin ]] || continue
    # Refuse anything that is not an aarch64 executable (a host binary slipping through
    # would only show up as "Exec format error" on the Pi).
    if ! od -An -tx1 -j18 -N2 "$bin" | grep -q 'b7 00'; then
        echo "cross-build.sh: $bin is not an aarch64 ELF file" >&2
        exit 1
    fi
    printf '== %s: %s bytes (%s MiB)\n' "$bin" "$(stat -c %s "$bin")" \
        "$(awk -v b="$(stat -c %s "$bin")" 'BEGIN { printf "%.1f", b / 1048576 }')"
done
