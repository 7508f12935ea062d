#!/usr/bin/env python3
"""Names the functions of a disassembled binary that can reach a panic.

Reads `llvm-objdump -d --demangle` output on stdin. A function is "panicking" if it is
`core::panicking::*`, `rust_begin_unwind` or a known panic helper, or if it only exists to
call one (a cold helper); the report lists, for every panicking function, the
non-panicking functions that call it: those are the places to fix.
"""
import re
import sys
from collections import defaultdict

FUNC = re.compile(r"^[0-9a-f]+ <(.*)>:$")
CALL = re.compile(r"\s(?:bl|blx|b|b\.w|beq|bne|call|callq|jmp|jmpq|j[a-z]+)(?:\.w)?\s+(?:0x)?[0-9a-f]+ <([^>+]+)(?:\+0x[0-9a-f]+)?>")
SEED = re.compile(r"core::panicking::|rust_begin_unwind|begin_panic|unwrap_failed|expect_failed|"
                  r"len_mismatch_fail|slice_(?:start|end)_index|slice_index_order_fail|"
                  r"str_index_overflow_fail|extend_panic|panic_bounds_check|"
                  r"slice_error_fail|capacity_overflow|panic_const|\bpanic\b")

calls = defaultdict(set)  # callee -> callers
body = defaultdict(set)  # function -> callees
cur = None
for line in sys.stdin:
    m = FUNC.match(line.strip("\n"))
    if m:
        cur = m.group(1)
        continue
    m = CALL.search(line)
    if m and cur:
        callee = m.group(1).strip()
        if callee != cur:
            calls[callee].add(cur)
            body[cur].add(callee)

panicking = {f for f in set(calls) | set(body) if SEED.search(f)}
# A function all of whose calls go to panicking functions is a panic helper too.
changed = True
while changed:
    changed = False
    for f, callees in body.items():
        if f not in panicking and callees and callees <= panicking:
            panicking.add(f)
            changed = True

found = False
for p in sorted(panicking):
    sites = sorted(c for c in calls.get(p, ()) if c not in panicking)
    for c in sites:
        found = True
        print(f"  {c}\n      -> {p}")
sys.exit(1 if found else 0)
