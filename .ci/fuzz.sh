#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for FUZZ_SECONDS (default 60) seconds each and
# prints, per target, the executions libFuzzer completed and their rate. Exits non-zero
# if any target crashes, hangs (FUZZ_UNIT_TIMEOUT seconds per input, default 10) or fails
# to build. Installs a nightly toolchain and cargo-fuzz only when they are missing.
#
#   FUZZ_SECONDS=20 bash .ci/fuzz.sh            # all targets, 20 s each
#   FUZZ_TARGETS="csv_line transfer" bash .ci/fuzz.sh
set -uo pipefail

seconds="${FUZZ_SECONDS:-60}"
unit_timeout="${FUZZ_UNIT_TIMEOUT:-10}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz" || exit 1

say() { printf 'fuzz: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

command -v rustup >/dev/null || die "rustup not found; install Rust from https://rustup.rs"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    say "installing the nightly toolchain (cargo-fuzz needs -Z sanitizer flags)"
    rustup toolchain install nightly --profile minimal || die "could not install nightly"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo +nightly install cargo-fuzz --locked || die "could not install cargo-fuzz"
fi

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo +nightly fuzz list) || die "cargo fuzz list failed"
fi
((${#targets[@]})) || die "no fuzz targets found"

# Build everything first so the timed runs measure fuzzing, not compiling.
start=$SECONDS
cargo +nightly fuzz build || die "building the fuzz targets failed"
say "built ${#targets[@]} targets in $((SECONDS - start)) s"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=()
printf '%-16s %14s %12s %8s  %s\n' target executions "execs/s" seconds result
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log="$logs/$t.log"
    cargo +nightly fuzz run "$t" -- \
        -max_total_time="$seconds" -timeout="$unit_timeout" -print_final_stats=1 \
        >"$log" 2>&1
    status=$?
    # libFuzzer's closing lines: "Done N runs in S second(s)" and "stat::..." lines.
    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    if [[ -z "$runs" ]]; then
        runs=$(sed -n 's/^Done \([0-9]*\) runs in .*/\1/p' "$log" | tail -n 1)
    fi
    if [[ -z "$rate" && -n "$runs" && -n "$secs" && "$secs" -gt 0 ]]; then
        rate=$((runs / secs))
    fi
    if ((status == 0)); then
        result=ok
    else
        result="FAILED (exit $status)"
        failed+=("$t")
    fi
    printf '%-16s %14s %12s %8s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "${secs:-?}" "$result"
    if ((status != 0)); then
        # Show why: the panic message and where the reproducer was written.
        grep -E "panicked|assertion|left:|right:|ERROR: libFuzzer|SUMMARY|Test unit written|timeout" "$log" \
            | head -n 20 | sed 's/^/    /'
        say "reproduce with: cd fuzz && cargo +nightly fuzz run $t artifacts/$t/<crash file>"
    fi
done

if ((${#failed[@]})); then
    die "crashed: ${failed[*]}"
fi
say "all ${#targets[@]} targets ran ${seconds} s each without a crash"
