#!/usr/bin/env bash
# `make cross` (issue 10 §4): the core on big-endian and 32-bit machines, then a live
# mixed-architecture cluster.
#   1. offload-core's unit tests on s390x-unknown-linux-gnu (big-endian, 64-bit) and
#      armv7-unknown-linux-gnueabihf (32-bit), run under qemu-user;
#   2. serverA built for armv7 and serverB for s390x, each under qemu-user, serverC, the AWS
#      and the client native, on loopback with a free EE450_ID: the seed example and a
#      300,000-number full-range job, all four functions, exact answers and exact lines on
#      every program's screen (.ci/cross_cluster.py; expected values from Python integers).
# Installs (Debian) qemu-user, gcc-s390x-linux-gnu, gcc-arm-linux-gnueabihf and their
# libc6-dev-*-cross, and the rustup targets, when missing; fails loudly if it cannot.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1
start=$SECONDS
die() { printf 'cross: FAIL: %s\n' "$*" >&2; exit 1; }

# target triple, gcc prefix, qemu-user program, Debian libc package suffix
arches=(
    "s390x-unknown-linux-gnu s390x-linux-gnu qemu-s390x s390x"
    "armv7-unknown-linux-gnueabihf arm-linux-gnueabihf qemu-arm armhf"
)

missing=()
for a in "${arches[@]}"; do
    read -r _ gcc qemu deb <<<"$a"
    command -v "$gcc-gcc" >/dev/null || missing+=("gcc-$gcc")
    [[ -f "/usr/$gcc/lib/crt1.o" ]] || missing+=("libc6-dev-$deb-cross")
    command -v "$qemu" >/dev/null || missing+=(qemu-user)
done
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
    echo "cross: installing ${missing[*]}"
    { apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(printf '%s\n' "${missing[@]}" | sort -u); } >&2 ||
        die "could not install ${missing[*]} (apt-get)"
fi
installed="$(rustup target list --installed)"
for a in "${arches[@]}"; do
    read -r triple gcc qemu _ <<<"$a"
    command -v "$gcc-gcc" >/dev/null || die "$gcc-gcc is missing"
    command -v "$qemu" >/dev/null || die "$qemu is missing (Debian qemu-user)"
    grep -qx "$triple" <<<"$installed" || rustup target add "$triple" || die "rustup target add $triple"
    env="$(tr 'a-z-' 'A-Z_' <<<"$triple")"
    export "CARGO_TARGET_${env}_LINKER=$gcc-gcc"
    export "CARGO_TARGET_${env}_RUNNER=$qemu -L /usr/$gcc"
done
# Cross builds in their own target dir, so they never replace the native programs.
cross_dir="$root/target/cross"

step() { printf '\n== %s\n' "$*"; }
for a in "${arches[@]}"; do
    read -r triple _ <<<"$a"
    step "offload-core unit tests on $triple (qemu-user)"
    CARGO_TARGET_DIR="$cross_dir" cargo test --locked --release -p offload-core --target "$triple" ||
        die "offload-core's tests fail on $triple"
done

step "mixed-architecture cluster: serverA armv7, serverB s390x, serverC/aws/client native"
CARGO_TARGET_DIR="$cross_dir" cargo build --locked --release -p offload-bins --bin serverA \
    --target armv7-unknown-linux-gnueabihf || die "build serverA for armv7"
CARGO_TARGET_DIR="$cross_dir" cargo build --locked --release -p offload-bins --bin serverB \
    --target s390x-unknown-linux-gnu || die "build serverB for s390x"
cargo build --locked --release -p offload-bins || die "native build"
# Proof that the back-ends are what they claim: the ELF header's byte order and machine.
elf() { python3 -c 'import sys; h = open(sys.argv[1], "rb").read(20)
print("big-endian" if h[5] == 2 else "little-endian", int.from_bytes(h[18:20], "big" if h[5] == 2 else "little"))' "$1"; }
[[ "$(elf "$cross_dir/armv7-unknown-linux-gnueabihf/release/serverA")" == "little-endian 40" ]] ||
    die "serverA is not a 32-bit ARM (EM_ARM) program"
[[ "$(elf "$cross_dir/s390x-unknown-linux-gnu/release/serverB")" == "big-endian 22" ]] ||
    die "serverB is not a big-endian s390x (EM_S390) program"
echo "serverA: 32-bit ARM ELF; serverB: big-endian s390x ELF"
python3 .ci/cross_cluster.py \
    --program "serverA=qemu-arm -L /usr/arm-linux-gnueabihf $cross_dir/armv7-unknown-linux-gnueabihf/release/serverA" \
    --program "serverB=qemu-s390x -L /usr/s390x-linux-gnu $cross_dir/s390x-unknown-linux-gnu/release/serverB" \
    --program "serverC=$root/target/release/serverC" \
    --program "aws=$root/target/release/aws" \
    --program "client=$root/target/release/client" \
    --nums "$root/nums.csv" --count 300000 ||
    die "the mixed-architecture cluster"
echo
echo "cross: all checks passed in $((SECONDS - start)) s"
