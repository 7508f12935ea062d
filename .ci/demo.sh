#!/usr/bin/env bash
# make demo: start the four servers in the background, run ./client for min, max,
# sum and sos on ./nums.csv, print every program's transcript under its name, and
# stop exactly the processes this script started.
set -u
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$logs"
}
trap cleanup EXIT INT TERM

for prog in serverA serverB serverC aws; do
    ./"$prog" >"$logs/$prog.out" 2>"$logs/$prog.err" &
    pids+=($!)
done
# Wait for the four boot lines (at most 5 s each); a server that exits early fails.
i=0
for prog in serverA serverB serverC aws; do
    for _ in $(seq 100); do
        [ -s "$logs/$prog.out" ] && break
        kill -0 "${pids[$i]}" 2>/dev/null || break
        sleep 0.05
    done
    if [ ! -s "$logs/$prog.out" ]; then
        echo "demo: $prog did not start:" >&2
        cat "$logs/$prog.err" >&2
        exit 1
    fi
    i=$((i + 1))
done

status=0
for fn in min max sum sos; do
    ./client "$fn" >>"$logs/client.out" 2>>"$logs/client.err" || status=1
done
sleep 0.2
for prog in serverA serverB serverC aws client; do
    echo "==== $prog"
    cat "$logs/$prog.out"
    if [ -s "$logs/$prog.err" ]; then
        echo "---- $prog (stderr)"
        cat "$logs/$prog.err"
    fi
done
exit $status
