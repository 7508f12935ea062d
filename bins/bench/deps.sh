#!/bin/sh
# `make bench-deps`: installs the peers that `make bench` compares offload against
# (mawk, gawk, datamash from apt; DuckDB's Python module from pip), plus gcc for the scalar
# C baseline and GNU time for the client's peak memory. Every step may fail
# (no root, no network, no pip): the bench lists a missing peer as "not installed", so
# this script reports what failed and still exits 0.

status=0

if command -v apt-get >/dev/null 2>&1; then
    SUDO=
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO="sudo"
        else
            echo "bench-deps: not root and no sudo: skipping apt-get (mawk gawk datamash gcc time)" >&2
            SUDO=skip
        fi
    fi
    if [ "$SUDO" != skip ]; then
        if ! $SUDO apt-get update; then
            echo "bench-deps: apt-get update failed; trying the install anyway" >&2
        fi
        if ! $SUDO apt-get install -y mawk gawk datamash gcc time; then
            echo "bench-deps: apt-get install mawk gawk datamash gcc time FAILED" >&2
            status=1
        fi
    fi
else
    echo "bench-deps: no apt-get here: install mawk, gawk and datamash yourself" >&2
    status=1
fi

PY=${PYTHON:-python3}
if "$PY" -c 'import duckdb' 2>/dev/null; then
    echo "bench-deps: duckdb Python module already installed"
elif "$PY" -m pip --version >/dev/null 2>&1; then
    if ! "$PY" -m pip install duckdb; then
        # Debian's externally managed Python refuses plain pip installs.
        if ! "$PY" -m pip install --user --break-system-packages duckdb; then
            echo "bench-deps: pip install duckdb FAILED (DuckDB row will say not installed)" >&2
            status=1
        fi
    fi
else
    echo "bench-deps: no pip for $PY: skipping duckdb (DuckDB row will say not installed)" >&2
    status=1
fi

for tool in mawk gawk datamash; do
    if command -v "$tool" >/dev/null 2>&1; then
        echo "bench-deps: $tool: $(command -v "$tool")"
    else
        echo "bench-deps: $tool: not installed"
    fi
done
if "$PY" -c 'import duckdb' 2>/dev/null; then
    echo "bench-deps: duckdb: $("$PY" -c 'import duckdb; print(duckdb.__version__)')"
else
    echo "bench-deps: duckdb: not installed"
fi
if [ "$status" -ne 0 ]; then
    echo "bench-deps: some peers could not be installed; make bench will skip them" >&2
fi
exit 0
