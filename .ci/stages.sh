#!/usr/bin/env bash
# Runs make targets as named stages, one after another, with their output as it comes,
# and ends with a table: each stage, its wall-clock time, passed or FAILED.
# Every stage runs even after one has failed, so the table is always complete (a failed
# build makes the stages that compile fail too, each saying why); exits 1 if any failed.
#
#   bash .ci/stages.sh build=all lint unit e2e audit    # stage NAME=TARGET, or TARGET
#   STAGES_TITLE="make test" bash .ci/stages.sh ...     # the table's heading
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

title="${STAGES_TITLE:-stages}"
names=()
times=()
results=()
failed=0
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

all_start=$(now)
for spec in "$@"; do
    name="${spec%%=*}"
    target="${spec#*=}"
    printf '\n==== %s: stage %s (make %s)\n' "$title" "$name" "$target"
    start=$(now)
    if make --no-print-directory "$target"; then
        result=passed
    else
        result=FAILED
        failed=$((failed + 1))
    fi
    names+=("$name")
    times+=("$(secs "$start" "$(now)")")
    results+=("$result")
done
total="$(secs "$all_start" "$(now)")"

printf '\n%s\n' "$title: where the time went"
printf '  %-12s %9s  %s\n' stage seconds result
for i in "${!names[@]}"; do
    printf '  %-12s %9s  %s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}"
done
if ((failed)); then
    printf '  %-12s %9s  %s\n' total "$total" "FAILED ($failed of ${#names[@]} stages)"
    exit 1
fi
printf '  %-12s %9s  %s\n' total "$total" "passed (${#names[@]} stages)"
