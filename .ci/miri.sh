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
# Miri interprets on one host thread, so the tests run as two Miri processes, one per core,
# each with its own target dir (Miri's artefacts must not replace the normal build's, and
# two cargos must not wait on one build lock). The groups take about the same time (from
# `--report-time`, warm): the back-end, transfer and dispatch tests and the csv tests of
# long lines (about 100 s), and the rest (sim 55 s, csv 35 s, the others 2 s). Extra
# arguments (e.g. `-- -Zunstable-options --report-time`) go to both.
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
group() { # NAME, then the test filter after `--`
    local name=$1
    shift
    CARGO_TARGET_DIR="$root/target/miri-$name" cargo +nightly miri test --locked -p offload-core \
        "$@" >"$logs/$name.log" 2>&1
}
split=(backend:: transfer:: dispatch:: csv::tests::long_line)
extra=("$@")
if ((${#extra[@]})) && [[ ${extra[0]} == -- ]]; then extra=("${extra[@]:1}"); fi
group first --lib -- "${split[@]}" "${extra[@]}" &
first=$!
group rest -- "${split[@]/#/--skip=}" "${extra[@]}" &
rest=$!
wait "$first"; first_status=$?
wait "$rest"; rest_status=$?
for name in first rest; do
    printf '==== miri: %s\n' "$name"
    cat "$logs/$name.log"
done
((first_status == 0)) || die "cargo +nightly miri test -p offload-core --lib -- ${split[*]}"
((rest_status == 0)) || die "cargo +nightly miri test -p offload-core -- --skip ${split[*]}"
# Each group must have run tests: a filter that matched nothing would pass silently.
for name in first rest; do
    grep -Eq '^test result: ok\. [1-9][0-9]* passed' "$logs/$name.log" ||
        die "the $name group ran no test"
done
echo "miri: offload-core's unit tests pass under Miri in $((SECONDS - start)) s"
