#!/usr/bin/env bash
# Runs make targets as named stages, one after another, with their output as it comes,
# and ends with a table: each stage, its wall-clock time, the CPU time it used (user +
# system, all its processes: on a shared machine the wall time grows with others' load,
# the CPU time much less), passed or FAILED.
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
# Sets CPU to the CPU seconds used so far by finished child processes (`times`, second
# line). The builtin must run in this shell, not in a $(...) subshell: hence the file
# and the variable.
times_file="$(mktemp)"
trap 'rm -f "$times_file"' EXIT
cpu() {
    times >"$times_file"
    CPU=$(awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); t += p[1] * 60 + p[2] }
        printf "%.1f", t
    }' "$times_file")
}
cpus=()

all_start=$(now)
cpu
all_cpu=$CPU
for spec in "$@"; do
    name="${spec%%=*}"
    target="${spec#*=}"
    printf '\n==== %s: stage %s (make %s)\n' "$title" "$name" "$target"
    start=$(now)
    cpu
    cpu_start=$CPU
    if make --no-print-directory "$target"; then
        result=passed
    else
        result=FAILED
        failed=$((failed + 1))
    fi
    names+=("$name")
    times+=("$(secs "$start" "$(now)")")
    cpu
    cpus+=("$(secs "$cpu_start" "$CPU")")
    results+=("$result")
done
total="$(secs "$all_start" "$(now)")"
cpu
total_cpu="$(secs "$all_cpu" "$CPU")"

printf '\n%s\n' "$title: where the time went"
row() { printf '  %-12s %9s %9s  %s\n' "$@"; }
row stage "wall s" "cpu s" result
for i in "${!names[@]}"; do
    row "${names[$i]}" "${times[$i]}" "${cpus[$i]}" "${results[$i]}"
done
if ((failed)); then
    row total "$total" "$total_cpu" "FAILED ($failed of ${#names[@]} stages)"
    exit 1
fi
row total "$total" "$total_cpu" "passed (${#names[@]} stages)"
