#!/usr/bin/env bash
# `make mcu`: the core on a Cortex-M3 (issue 10 §3). Builds core/mcu for thumbv7m-none-eabi
# and runs its three programs under QEMU's lm3s6965evb (256 KiB flash, 64 KiB RAM):
#   backend  a back-end alone, 4 job slots, 4 jobs interleaved with reordering and duplicates
#   aws      the AWS role alone (Dispatch) against scripted back-ends
#   system   the whole system (client numbers, Dispatch, three Backends) over seeded links
#            that drop 10%: the seed example and a 30,000-number full-range job, all four
#            operations, plus instructions per number for parse, reduce and the pipeline
# Each program compares its answers with expected.py's (Python big integers, computed on
# the host at build time) and exits non-zero on any mismatch, stack overflow or fault.
# -icount shift=0 makes QEMU's virtual clock count instructions, which SysTick reads.
# Installs qemu-system-arm (Debian) and the rustup target when missing; fails loudly if
# it cannot. MCU_WINDOW (default 8) sets the send window; MCU_MEMORY=big links for the
# 4 MiB mps2-an385 instead, to measure builds that do not fit the LM3S6965.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1
start=$SECONDS

die() { printf 'mcu: FAIL: %s\n' "$*" >&2; exit 1; }

if ! command -v qemu-system-arm >/dev/null; then
    echo "mcu: installing qemu-system-arm"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm; } >&2 ||
        die "qemu-system-arm is missing and could not be installed (apt-get install qemu-system-arm)"
fi
command -v qemu-system-arm >/dev/null || die "qemu-system-arm is missing"
command -v python3 >/dev/null || die "python3 is missing (the expected answers come from core/mcu/expected.py)"
target=thumbv7m-none-eabi
rustup target list --installed | grep -qx "$target" || rustup target add "$target" ||
    die "rustup target add $target"
sysroot="$(rustc --print sysroot)"
size_tool="$(compgen -G "$sysroot/lib/rustlib/*/bin/llvm-size" | head -n 1)"
if [[ -z "$size_tool" ]]; then
    rustup component add llvm-tools >/dev/null 2>&1 || rustup component add llvm-tools-preview >/dev/null 2>&1
    size_tool="$(compgen -G "$sysroot/lib/rustlib/*/bin/llvm-size" | head -n 1)"
fi

machine=lm3s6965evb
[[ "${MCU_MEMORY:-}" == big ]] && machine=mps2-an385
export MCU_WINDOW="${MCU_WINDOW:-8}"
manifest=core/mcu/Cargo.toml
cargo build --quiet --locked --release --manifest-path "$manifest" --target "$target" ||
    die "cargo build --manifest-path $manifest --target $target"
bins="core/mcu/target/$target/release"

status=0
for prog in backend aws system; do
    printf '\n== %s (qemu-system-arm -machine %s, window %s)\n' "$prog" "$machine" "$MCU_WINDOW"
    [[ -n "$size_tool" ]] && "$size_tool" "$bins/$prog" | sed 's/^/  /'
    # QEMU prints "Timer with period zero" once: SysTick's clock starts late (see meter.rs).
    timeout 600 qemu-system-arm -machine "$machine" -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -icount shift=0 \
        -kernel "$bins/$prog" 2> >(grep -v 'Timer with period zero' >&2)
    rc=$?
    if ((rc != 0)); then
        echo "mcu: FAIL: $prog exited $rc on the chip" >&2
        status=1
    fi
done
echo
echo "mcu: $((SECONDS - start)) s wall time"
if ((status)); then
    echo "mcu: FAILED" >&2
    exit 1
fi
echo "mcu: all programs exact on the chip"
