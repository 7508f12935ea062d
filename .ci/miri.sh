#!/usr/bin/env bash
# `make miri`: offload-core's unit tests under Miri (nightly), which checks every step for
# undefined behaviour, out-of-bounds access and arithmetic overflow. Long simulations are
# shortened under cfg(miri) so the run takes a few minutes, not seventeen.
# Installs nightly and its miri and rust-src components when missing; fails loudly if not.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1
start=$SECONDS
die() { printf 'miri: FAIL: %s\n' "$*" >&2; exit 1; }

rustup toolchain list | grep -q '^nightly' ||
    rustup toolchain install nightly --profile minimal || die "rustup toolchain install nightly"
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup component add --toolchain nightly miri rust-src || die "rustup component add miri rust-src"
fi
cargo +nightly miri setup >/dev/null 2>&1 || cargo +nightly miri setup || die "cargo miri setup"
# A separate target dir: Miri's artefacts must not replace the normal build's.
CARGO_TARGET_DIR="$root/target/miri" cargo +nightly miri test --locked -p offload-core "$@" ||
    die "cargo +nightly miri test -p offload-core"
echo "miri: offload-core's unit tests pass under Miri in $((SECONDS - start)) s"
