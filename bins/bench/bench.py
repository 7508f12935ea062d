#!/usr/bin/env python3
"""`make bench`: offload end to end against the tools people would use instead.

Python 3.11 standard library only (plus gcc for the scalar C baseline). Run from anywhere;
paths are relative to the repository root (two levels above this file), where `make all`
leaves ./serverA ./serverB ./serverC ./aws ./client. The machine is shared and absolute
times vary, so every goal is a ratio of two figures taken in the same run.

What it does, in one run:

1. Data, generated once, deterministically, into `.bench-cache/<name>/nums.csv`
   (git-ignored), reused while the marker `meta.json` matches; the exact MIN/MAX/SUM/SOS of
   every file are computed in Python while generating:
     uniform-3e5 .. uniform-3e8   3e5, 3e6, 3e7, 3e8 integers uniform in [-1e6, 1e6]
                                  (3e8 is the 3e7 file ten times over: 2.2 GB, made by
                                  copying, with exactly known answers)
     i64-3e6                      3e6 integers over all of i64, plus i64::MIN and i64::MAX
                                  (i64-3e5 in quick mode)
   Before generating, it checks the free disk: a size that does not fit (with 1 GiB to
   spare) is left out and its cached copy, if any, deleted.
2. Per size, fresh servers (EE450_ID=BENCH_ID), then `./client sum` and `./client sos`
   timed from spawn to exit, interleaved run by run with the scalar C program
   (`bins/bench/scalar.c`, built here with gcc -O2 -march=native, as ours is built for the
   machine's CPU) on the same file; every answer is checked
   exactly. Then the peers on the same file: `wc -l` (the floor for reading it), mawk, gawk,
   `gawk -M`, datamash, Python and DuckDB (`make bench-deps` installs them; a missing one
   is "not installed"). Peak memory: each server's VmHWM from /proc just before it is
   stopped, the client's ru_maxrss through /usr/bin/time (median of 5 runs).
   Growth (sizes 3e6 and up, full mode): fresh servers again, then 3 rounds of SUM and SOS
   jobs (8 of each at 3e6, 2 at 3e7, 1 at 3e8, each size's and function's jobs spread over
   the round), best run per size: the time-per-line goal and table compare these, so that
   a slow spell of the machine during one size's session does not count against that size.
3. 16 clients at once on one file with fresh servers, then every server's VmHWM.
4. Loss: a 3e6-number job through the fault-injecting relay (target/release/examples/relay)
   at 0%, 10% and 30% drop in both directions, with datagrams sent per data frame. The
   paths (and the direct one) run side by side and their jobs are taken in turn, so the
   ratios compare runs made at the same moments.
5. The core's in-memory throughput (target/release/examples/throughput) on the [-1e6, 1e6]
   file and the full-range file: best of 5 runs, with the median beside it.
6. With BENCH_BASE=<commit>: the same `./client sum`/`sos` with all five programs built from
   that commit (once, into target/bench/base-<commit>), interleaved with ours on the same
   files up to 3e7 lines: the before/after of a change (e.g. the change detection of
   issue 9).
7. The table, the goals of issue 11 as ratios (met / MISSED), and a chart:
   target/bench/bench.svg (seconds and peak memory against lines, log-log), copied to
   bins/bench/bench.svg by a full run; target/bench/results.json holds every figure.

Environment:
  BENCH_QUICK=1      CI mode: 3e5 and 3e6 only, loss run on 3e5, peers run once, about
                     a minute
  BENCH_RUNS=N       runs per figure (default 5; twice that up to 3e6 lines outside
                     quick mode, 3 at 3e8, 3 for the peers); the best (fastest) run
                     is reported: on a shared machine it is the one
                     least slowed by others (the loss run judges the median of at least
                     15, 7 in quick mode, because its slow runs are what it measures)
  BENCH_ID=xxx       EE450_ID for the bench servers (default 777; BENCH_BASE uses xxx+1,
                     the loss run's four paths xxx+2 to xxx+5)
  BENCH_BUILD=0      do not (re)build the throughput example / the base commit with cargo
  BENCH_PEERS=0      skip the peers
  BENCH_LOSS=0       skip the loss run
  BENCH_SIZES=a,b    only these line counts, e.g. 3e5,3e7
  BENCH_SLOW=S       a peer whose run takes (or, from the size below, would take) longer
                     than S seconds (default 10) is run once only
  BENCH_SKIP=S       a peer that would take longer than S seconds (from its time at the
                     size below, times the growth in lines) is skipped (default 30; for
                     DuckDB and wc -l, the peers of the goals, 5 x S)
  BENCH_BASE=commit  also time the five programs of that commit (see 6)

Exit status: 0 when every answer of ours is right and every program of ours worked,
1 otherwise, 2 for a setup problem (missing binaries, busy ports, ...). Missed goals do not
fail the run; they are reported.
"""

from __future__ import annotations

import array
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import chart  # noqa: E402  (bins/bench/chart.py, beside this file)

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".bench-cache"
LOGS = CACHE / "logs"
OUT = REPO / "target" / "bench"

GEN_VERSION = 1
SEED = 450_319
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
RESERVE = 1 << 30  # disk left free after generating

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
RUNS = max(1, int(os.environ.get("BENCH_RUNS", "5") or 5))
best = min  # the statistic of every timing but the loss run's
BENCH_ID = os.environ.get("BENCH_ID", "777")
BUILD = os.environ.get("BENCH_BUILD", "1") != "0"
RELAY_HOST = "127.0.0.2"
PEERS = os.environ.get("BENCH_PEERS", "1") != "0"
SLOW = float(os.environ.get("BENCH_SLOW", "10") or 10)
SKIP = float(os.environ.get("BENCH_SKIP", "30") or 30)
BASE = os.environ.get("BENCH_BASE", "").strip()

CLIENT_TIMEOUT = 300.0
PEER_TIMEOUT = 300.0
BOOT_TIMEOUT = 10.0
CONCURRENT = 16
LOADS: list[str] = []  # load average at the start and end of the run
# Loss timings are short and spread more (a job that meets a few timeouts in a row takes
# twice the median): more runs, still under half a minute. Medians of 20 runs of the same
# programs differed by 13% from one minute to the next at 30% drop; of 7, by more.
LOSS_RUNS = max(RUNS, 7 if QUICK else 15)

SERVERS = [
    # (program, boot line, (proto, base port))
    ("serverA", "The Server A is up and running using UDP on port {p}.", ("udp", 21000)),
    ("serverB", "The Server B is up and running using UDP on port {p}.", ("udp", 22000)),
    ("serverC", "The Server C is up and running using UDP on port {p}.", ("udp", 23000)),
    ("aws", "The AWS is up and running.", ("udp", 24000)),
]
AWS_TCP_BASE = 25000
PROGRAMS = ["client", "aws", "serverA", "serverB", "serverC"]
BACKENDS = ["serverA", "serverB", "serverC"]


class SetupError(Exception):
    """Something around the programs is wrong (exit 2)."""


class Failure(Exception):
    """One of our programs failed or answered wrongly (exit 1)."""


def log(msg: str = "") -> None:
    print(msg, flush=True)


def lines_label(n: int) -> str:
    """3e7 for 30,000,000."""
    e = len(str(n)) - 1
    m = n / 10**e
    return f"{m:g}e{e}"


# --------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Dataset:
    name: str
    lines: int
    kind: str  # "uniform" ([-1e6, 1e6]) or "i64" (full range)
    copies_of: "Dataset | None" = None  # made as 10 copies of this one

    @property
    def dir(self) -> Path:
        return CACHE / self.name

    @property
    def path(self) -> Path:
        return self.dir / "nums.csv"

    @property
    def estimate(self) -> int:
        """Bytes on disk, roughly (for the free-space check)."""
        return self.lines * (8 if self.kind == "uniform" else 21)


D3E5 = Dataset("uniform-3e5", 300_000, "uniform")
D3E6 = Dataset("uniform-3e6", 3_000_000, "uniform")
D3E7 = Dataset("uniform-3e7", 30_000_000, "uniform")
D3E8 = Dataset("uniform-3e8", 300_000_000, "uniform", copies_of=D3E7)
DI64 = Dataset("i64-3e5" if QUICK else "i64-3e6", 300_000 if QUICK else 3_000_000, "i64")
SIZES = [D3E5, D3E6, D3E7, D3E8]

CHUNK = 1_000_000


def _chunk_values(rng: random.Random, kind: str, n: int) -> list[int]:
    """n pseudo-random integers, bulk-generated from random bytes (fast and seeded)."""
    if kind == "uniform":
        a = array.array("Q")
        a.frombytes(rng.randbytes(8 * n))
        if sys.byteorder != "little":
            a.byteswap()
        # 64 random bits mod 2000001: the bias is below 2^-42, uniform for our purposes.
        return [x % 2_000_001 - 1_000_000 for x in a]
    a = array.array("q")
    a.frombytes(rng.randbytes(8 * n))
    if sys.byteorder != "little":
        a.byteswap()
    return a.tolist()


def _meta(ds: Dataset) -> dict | None:
    try:
        meta = json.loads((ds.dir / "meta.json").read_text())
        ok = (
            meta.get("version") == GEN_VERSION
            and meta.get("seed") == SEED
            and meta.get("lines") == ds.lines
            and meta.get("kind") == ds.kind
            and ds.path.stat().st_size == meta.get("bytes")
        )
        return meta if ok else None
    except (OSError, ValueError):
        return None


def _write_meta(ds: Dataset, meta: dict) -> None:
    mtmp = ds.dir / "meta.json.tmp"
    mtmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(mtmp, ds.dir / "meta.json")


def ensure_data(ds: Dataset) -> dict:
    """The dataset's marker (with its exact answers), generating the file if needed."""
    meta = _meta(ds)
    if meta is not None:
        return meta
    t0 = time.perf_counter()
    ds.dir.mkdir(parents=True, exist_ok=True)
    (ds.dir / "meta.json").unlink(missing_ok=True)
    tmp = ds.dir / "nums.csv.tmp"
    if ds.copies_of is not None:
        src = ensure_data(ds.copies_of)
        k = ds.lines // ds.copies_of.lines
        with open(tmp, "wb") as f:
            for _ in range(k):
                with open(ds.copies_of.path, "rb") as g:
                    shutil.copyfileobj(g, f, 1 << 22)
        os.replace(tmp, ds.path)
        meta = dict(src, lines=ds.lines, bytes=src["bytes"] * k,
                    sum=str(int(src["sum"]) * k), sos=str(int(src["sos"]) * k),
                    copies_of=ds.copies_of.name)
        _write_meta(ds, meta)
        log(f"generated {ds.path.relative_to(REPO)}: {k} copies of {ds.copies_of.name}, "
            f"{meta['bytes']:,} bytes in {time.perf_counter() - t0:.1f} s")
        return meta
    rng = random.Random(f"offload-bench/{ds.kind}/{ds.lines}/{SEED}")
    total = sos = 0
    lo, hi = I64_MAX, I64_MIN
    size = 0
    with open(tmp, "wb") as f:
        left = ds.lines
        first = True
        while left:
            n = min(CHUNK, left)
            vals = _chunk_values(rng, ds.kind, n)
            if first and ds.kind == "i64" and n >= 2:
                # The extremes, so the exactness of the i64 file is really tested.
                vals[0], vals[1] = I64_MIN, I64_MAX
            first = False
            total += sum(vals)
            sos += sum(map(int.__mul__, vals, vals))
            lo = min(lo, min(vals))
            hi = max(hi, max(vals))
            data = (("%d\n" * n) % tuple(vals)).encode()
            f.write(data)
            size += len(data)
            left -= n
    os.replace(tmp, ds.path)
    meta = {
        "version": GEN_VERSION,
        "seed": SEED,
        "kind": ds.kind,
        "lines": ds.lines,
        "bytes": size,
        "min": str(lo),
        "max": str(hi),
        "sum": str(total),
        "sos": str(sos),
    }
    _write_meta(ds, meta)
    log(f"generated {ds.path.relative_to(REPO)}: {ds.lines:,} lines, {size:,} bytes "
        f"in {time.perf_counter() - t0:.1f} s")
    return meta


def fit_to_disk(sets: list[Dataset]) -> tuple[list[Dataset], list[str]]:
    """The datasets that fit on the disk (largest dropped first), and what was dropped."""
    CACHE.mkdir(parents=True, exist_ok=True)
    kept = list(sets)
    notes = []
    while kept:
        need = sum(d.estimate for d in kept if _meta(d) is None)
        free = shutil.disk_usage(CACHE).free
        if need + RESERVE <= free:
            break
        big = max(kept, key=lambda d: d.lines)
        kept.remove(big)
        shutil.rmtree(big.dir, ignore_errors=True)
        notes.append(f"{big.name} left out: needs ~{need / 1e9:.1f} GB, "
                     f"{free / 1e9:.1f} GB free (cached copy deleted)")
    return kept, notes


def warm(path: Path) -> None:
    """Reads the file once so every timed tool finds it in the page cache. (Not for long:
    these machines run DAMON's pageout scheme, which evicts file pages left unread for
    about a minute; `fincore` showed 0.27 of 2.1 GB of the 3e8 file resident after a run.
    Each timed phase warms its files when it starts.)"""
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 22):
            pass


# --------------------------------------------------------------------------------------
# Running processes


@dataclass
class Run:
    seconds: float
    rc: int
    out: str
    err: str
    maxrss_kb: int
    timed_out: bool = False
    cpu: float = 0.0  # user + system seconds of the process itself


def run_timed(argv: list[str], cwd: Path, env: dict | None = None,
              timeout: float = PEER_TIMEOUT, stdin_path: Path | None = None) -> Run:
    """Runs argv to completion; wall time from just before spawn to just after reaping."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            open(stdin_path or os.devnull, "rb") as inp:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=inp, stdout=out, stderr=err)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            while True:
                try:
                    _, status, usage = os.wait4(p.pid, 0)
                    break
                except InterruptedError:
                    continue
        except BaseException:
            kill()
            p.wait()
            raise
        finally:
            timer.cancel()
        t1 = time.perf_counter()
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(t1 - t0, p.returncode, out.read().decode(errors="replace"),
                   err.read().decode(errors="replace"), usage.ru_maxrss,
                   timed_out.is_set(), usage.ru_utime + usage.ru_stime)


def port_free(proto: str, port: int) -> bool:
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    for host in ("0.0.0.0", "127.0.0.1"):
        with socket.socket(socket.AF_INET, kind) as s:
            if proto == "tcp":
                # As the programs do (Rust's TcpListener sets it): TIME_WAIT is not "busy".
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def vm_hwm_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def program_env(xxx: str = BENCH_ID) -> dict:
    env = dict(os.environ)
    env["EE450_ID"] = xxx
    env.pop("OFFLOAD_LOG", None)
    for k in ("OFFLOAD_HOST_AWS", "OFFLOAD_HOST_A", "OFFLOAD_HOST_B", "OFFLOAD_HOST_C"):
        env.pop(k, None)
    return env


def _die_with_parent() -> None:
    """In the forked server: SIGTERM it if the bench dies without cleaning up (SIGKILL)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Servers:
    """The four servers of one bench session; always stopped in `stop` (idempotent)."""

    def __init__(self, tag: str, relay_drop: int | None = None, bindir: Path = REPO,
                 xxx: str = BENCH_ID):
        self.tag = tag
        self.relay_drop = relay_drop
        self.bindir = bindir
        self.xxx = xxx
        self.procs: dict[str, subprocess.Popen] = {}
        self.files: list = []
        self.hwm: dict[str, int | None] = {}

    def start(self) -> None:
        xxx = int(self.xxx)
        busy = [f"{proto.upper()} {base + xxx}"
                for proto, base in [s[2] for s in SERVERS] + [("tcp", AWS_TCP_BASE)]
                if not port_free(proto, base + xxx)]
        if busy:
            raise SetupError(f"ports in use for EE450_ID={self.xxx}: {', '.join(busy)} "
                             "(set BENCH_ID to another 3-digit id)")
        LOGS.mkdir(parents=True, exist_ok=True)
        env = program_env(self.xxx)
        if self.relay_drop is not None:
            self.start_relay(env)
        for name, boot, (_, base) in SERVERS:
            outp = LOGS / f"{self.tag}.{name}.out"
            errp = LOGS / f"{self.tag}.{name}.err"
            out, err = open(outp, "wb"), open(errp, "wb")
            self.files += [out, err]
            penv = dict(env)
            if name == "aws" and self.relay_drop is not None:
                penv.update({k: RELAY_HOST for k in ("OFFLOAD_HOST_A", "OFFLOAD_HOST_B",
                                                     "OFFLOAD_HOST_C")})
            if name in BACKENDS and self.relay_drop is not None:
                # A back-end takes jobs only from the AWS's address: the relay sends to
                # back-end i from 127.0.0.(3+i) at the AWS's port (bins/examples/relay.rs).
                penv["OFFLOAD_HOST_AWS"] = f"127.0.0.{3 + BACKENDS.index(name)}"
            if name.startswith("server") and self.relay_drop is not None:
                # Back-ends take jobs only from the AWS's address: the relay sends to
                # server A, B, C from the AWS's port on 127.0.0.3, .4, .5.
                penv["OFFLOAD_HOST_AWS"] = f"127.0.0.{3 + 'ABC'.index(name[-1])}"
            self.procs[name] = subprocess.Popen(
                [str(self.bindir / name)], cwd=REPO, env=penv, stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True, preexec_fn=_die_with_parent)
            want = boot.format(p=base + xxx)
            deadline = time.monotonic() + BOOT_TIMEOUT
            while True:
                text = outp.read_bytes().decode(errors="replace")
                if "\n" in text:
                    first = text.split("\n", 1)[0]
                    if first != want:
                        raise Failure(f"{name}: boot line {first!r}, expected {want!r}")
                    break
                if self.procs[name].poll() is not None:
                    raise Failure(f"{name} exited ({self.procs[name].returncode}) before "
                                  f"booting; stderr: {errp.read_text(errors='replace')[-500:]}")
                if time.monotonic() > deadline:
                    raise Failure(f"{name}: no boot line within {BOOT_TIMEOUT:.0f} s")
                time.sleep(0.01)

    def start_relay(self, env: dict) -> None:
        exe = REPO / "target" / "release" / "examples" / "relay"
        if not exe.exists():
            raise SetupError("target/release/examples/relay missing (make bench-tools)")
        renv = dict(env, RELAY_DROP=str(self.relay_drop), RELAY_HOST=RELAY_HOST)
        self.procs["relay"] = subprocess.Popen(
            [str(exe)], cwd=REPO, env=renv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
            preexec_fn=_die_with_parent)
        # The relay prints one line when ready; a thread keeps the wait bounded.
        first: list[str] = []
        t = threading.Thread(target=lambda: first.append(
            self.procs["relay"].stdout.readline()), daemon=True)
        t.start()
        t.join(BOOT_TIMEOUT)
        if not first or "relay ready" not in first[0]:
            raise Failure(f"relay did not start: {first[0] if first else 'no output'!r}")

    def relay_stats(self) -> dict[str, int]:
        """What the relay has forwarded so far (see bins/examples/relay.rs)."""
        p = self.procs["relay"]
        p.stdin.write("\n")
        p.stdin.flush()
        line = p.stdout.readline()
        return {k: int(v) for k, v in
                (part.split("=", 1) for part in line.split() if "=" in part)}

    def check_alive(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise Failure(f"{name} died (exit {p.returncode}); see "
                              f"{(LOGS / f'{self.tag}.{name}.err').relative_to(REPO)}")

    def stop(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is None:
                self.hwm[name] = vm_hwm_kb(p.pid)
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            for s in (p.stdin, p.stdout):
                if s is not None:
                    s.close()
        self.procs.clear()
        for f in self.files:
            f.close()
        self.files.clear()


# --------------------------------------------------------------------------------------
# Our programs and the scalar C program


@dataclass
class Row:
    data: str
    func: str
    tool: str
    seconds: float | None
    ours: float | None  # our time for the same function (for the ratio)
    exact: str  # "yes", "no", "-"
    note: str = ""


@dataclass
class Session:
    ds: Dataset
    times: dict[str, float] = field(default_factory=dict)
    runs: dict[str, list[float]] = field(default_factory=dict)
    scalar: dict[str, float] = field(default_factory=dict)
    base: dict[str, float] = field(default_factory=dict)
    # The client's own CPU seconds (user + system, best run): less moved by other load than
    # wall time, and what a client-side change (e.g. the digest) costs.
    cpu: dict[str, float] = field(default_factory=dict)
    base_cpu: dict[str, float] = field(default_factory=dict)
    client_kb: int | None = None
    hwm: dict[str, int | None] = field(default_factory=dict)


def client_transcript(func: str, lines: int, value: str) -> list[str]:
    up = func.upper()
    return [
        "The client is up and running.",
        f"The client has sent the reduction type {up} to AWS.",
        f"The client has sent {lines} numbers to AWS",
        f"The client has received reduction {up}: {value}",
    ]


_warned_transcript = False
GNU_TIME = Path("/usr/bin/time")
CLIENT_RSS_HOW = "client: ru_maxrss via /usr/bin/time (wait4 in a small parent)"


def run_client(ds: Dataset, func: str, meta: dict, bindir: Path = REPO,
               xxx: str = BENCH_ID, rss: bool = False) -> Run:
    """One checked `./client func` in the dataset's directory."""
    global _warned_transcript, CLIENT_RSS_HOW
    argv = [str(bindir / "client"), func]
    with tempfile.NamedTemporaryFile("r") as t:
        use_time = rss and GNU_TIME.exists()
        if use_time:
            argv = [str(GNU_TIME), "-f", "%M", "-o", t.name] + argv
        r = run_timed(argv, ds.dir, program_env(xxx), CLIENT_TIMEOUT)
        got = r.out.rstrip("\n").split("\n")
        want = client_transcript(func, ds.lines, meta[func])
        if r.timed_out or r.rc != 0 or not got or got[-1] != want[-1]:
            raise Failure(
                f"{bindir / 'client'} {func} on {ds.name}: exit {r.rc}"
                f"{' (timed out)' if r.timed_out else ''}, last line "
                f"{got[-1] if got else ''!r}, expected {want[-1]!r}; "
                f"stderr: {r.err.strip()[-500:]!r}")
        if got != want and not _warned_transcript and bindir == REPO:
            _warned_transcript = True
            log(f"warning: client transcript differs from Table 8:\n  got  {got}\n"
                f"  want {want}")
        if rss:
            r.maxrss_kb = 0
            if use_time:
                try:
                    r.maxrss_kb = int(t.read().split()[-1])
                except (ValueError, IndexError):
                    pass
            if not r.maxrss_kb:
                CLIENT_RSS_HOW = ("client: os.wait4 ru_maxrss (an upper bound: it includes "
                                  "Python's RSS at spawn)")
                r.maxrss_kb = r.maxrss_kb or 0
        return r


SCALAR_SRC = Path(__file__).resolve().parent / "scalar.c"
SCALAR_EXE = OUT / "scalar"
# The flags it was built with (set by build_scalar).
SCALAR_FLAGS = "-O2"


def build_scalar() -> Path | None:
    """bins/bench/scalar.c built with gcc -O2 for this machine's CPU, as `make all` builds
    ours (.cargo/config.toml): the same instructions open to both. Plain -O2 if the
    compiler knows no -march=native. None, with a message, if it cannot be built."""
    global SCALAR_FLAGS
    gcc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if gcc is None:
        log("scalar C program: no gcc/cc: not installed")
        return None
    OUT.mkdir(parents=True, exist_ok=True)
    for flags in (["-O2", "-march=native"], ["-O2"]):
        r = subprocess.run([gcc, *flags, "-o", str(SCALAR_EXE), str(SCALAR_SRC)],
                           capture_output=True, text=True)
        if r.returncode == 0:
            SCALAR_FLAGS = " ".join(flags)
            return SCALAR_EXE
    log(f"scalar C program: build failed: {r.stderr.strip()[-300:]}")
    return None


def run_scalar(exe: Path, ds: Dataset, func: str, meta: dict) -> float:
    r = run_timed([str(exe), func, str(ds.path)], ds.dir)
    got = r.out.strip()
    if r.rc != 0 or got != meta[func]:
        # The baseline is not ours, but a wrong baseline makes every ratio meaningless.
        raise Failure(f"scalar C program {func} on {ds.name}: exit {r.rc}, printed "
                      f"{got[:40]!r}, expected {meta[func][:40]!r}: {r.err.strip()[-200:]}")
    return r.seconds


def runs_for(ds: Dataset) -> int:
    """Runs per figure of ours (and of the scalar C program) on `ds`: RUNS; twice as many
    for the jobs of under a tenth of a second (3e6 lines and fewer), which a millisecond of
    the machine's noise moves by percents; 3 at most for the four-second jobs of 3e8."""
    if ds.lines > 30_000_000:
        return min(RUNS, 3)
    return 2 * RUNS if ds.lines <= 3_000_000 and not QUICK else RUNS


def run_ours(ds: Dataset, meta: dict, scalar: Path | None, base: Path | None) -> Session:
    """A fresh server session on one file: ours, the scalar C program and (if asked) the
    base commit's programs, interleaved run by run so a busy moment hits all alike."""
    sess = Session(ds)
    servers = Servers(ds.name)
    base_servers = (Servers(f"{ds.name}.base", bindir=base, xxx=base_id())
                    if base is not None else None)
    try:
        servers.start()
        if base_servers is not None:
            base_servers.start()
        # All four functions up to 3e7 lines; SUM and SOS (the goals') at 3e8.
        funcs = ["sum", "sos", "min", "max"] if ds.lines <= 30_000_000 else ["sum", "sos"]
        for func in funcs:
            ours, sc, bs, cpu, bcpu = [], [], [], [], []
            for _ in range(runs_for(ds)):
                r = run_client(ds, func, meta)
                ours.append(r.seconds)
                cpu.append(r.cpu)
                if scalar is not None:
                    sc.append(run_scalar(scalar, ds, func, meta))
                if base_servers is not None:
                    r = run_client(ds, func, meta, base, base_id())
                    bs.append(r.seconds)
                    bcpu.append(r.cpu)
            sess.runs[func] = ours
            sess.cpu[func] = best(cpu)
            sess.times[func] = best(ours)
            extra = ""
            if sc:
                sess.scalar[func] = best(sc)
                extra += f"; scalar C {fmt_s(sess.scalar[func])} s"
            if bs:
                sess.base[func] = best(bs)
                sess.base_cpu[func] = best(bcpu)
                extra += (f"; base {BASE} {fmt_s(sess.base[func])} s; client CPU ours "
                          f"{fmt_s(sess.cpu[func])} s, base {fmt_s(sess.base_cpu[func])} s")
            log(f"  ours {func} on {ds.name}: {fmt_s(sess.times[func])} s "
                f"(runs: {', '.join(f'{s:.3f}' for s in ours)}), answer exact{extra}")
        # The median of 5: the kernel counts a process's pages in per-thread batches, so
        # one run's ru_maxrss of the same client on the same file moves by up to 250 KiB
        # (1.35-1.60 MiB in nine runs on one file).
        rss = sorted(run_client(ds, "sos", meta, rss=True).maxrss_kb for _ in range(5))
        sess.client_kb = rss[2]
        servers.check_alive()
    finally:
        servers.stop()
        sess.hwm = dict(servers.hwm)
        if base_servers is not None:
            base_servers.stop()
    return sess


# Rounds of the growth run, and jobs per size in each. More of the short jobs: a 3e6 job
# takes 0.033 to 0.055 s on an idle machine (24 in a row), so the best of 12 read 0.039
# to 0.040 s in all rounds of one run (13.3 ns a line against 9.8 at 3e7 and 3e8); a 3e7
# job moves by about 10%, a 3e8 job by less.
GROWTH_ROUNDS = 3
GROWTH_JOBS = {3_000_000: 8, 30_000_000: 2, 300_000_000: 1}


def growth_order(sets: list[Dataset]) -> list[tuple[Dataset, str]]:
    """One round's jobs, SUM and SOS, with each size's and function's jobs spread over the
    round rather than run in a row: the machine's slow spells last a second or so, longer
    than eight 3e6 jobs (in one run all 24 3e6 SOS jobs, taken eight in a row after a 3e8
    job, read 0.041 s or more; 0.034 s in the size's own session). Job i of n is placed
    at (i + 1/2) / n of the round (SOS a quarter step after SUM), the round's jobs are
    taken in that order."""
    at = []
    for k, ds in enumerate(sets):
        for f, func in enumerate(("sum", "sos")):
            n = GROWTH_JOBS.get(ds.lines, 1)
            # A tie goes to the larger size, then SUM: a fixed order.
            at += [((i + 0.5) / n + f / (4 * n), -k, f, ds, func) for i in range(n)]
    return [(ds, func) for *_, ds, func in sorted(at, key=lambda a: a[:3])]


def growth_run(sets: list[Dataset], metas: dict) -> dict[str, dict[str, float]]:
    """Time per line across sizes, for the growth goal: one server session, rounds in which
    every size and function takes its turns (spread over the round: `growth_order`), the
    best run per size and function. The per-size sessions run one size for a minute or
    more, so a slow spell of this shared machine can fall on one size alone; here it falls
    on every size of its round. Returns {data set name: {func: seconds}}."""
    best_s: dict[str, dict[str, float]] = {ds.name: {} for ds in sets}
    servers = Servers("growth")
    try:
        servers.start()
        for rnd in range(GROWTH_ROUNDS):
            # Back into the page cache: this machine pages out file pages left unread for
            # a minute (DAMON's pageout scheme), and the peers' runs took longer than that.
            for ds in sets:
                warm(ds.path)
            for ds, func in growth_order(sets):
                r = run_client(ds, func, metas[ds.name])
                prev = best_s[ds.name].get(func)
                best_s[ds.name][func] = r.seconds if prev is None else min(prev, r.seconds)
            log(f"  growth round {rnd + 1} of {GROWTH_ROUNDS}: " + "; ".join(
                f"{ds.name} " + " ".join(f"{f} {best_s[ds.name][f] / ds.lines * 1e9:.1f}"
                                         for f in ("sum", "sos")) + " ns/line" for ds in sets))
        servers.check_alive()
    finally:
        servers.stop()
    return best_s


def concurrent_run(ds: Dataset, meta: dict) -> dict[str, int | None]:
    """CONCURRENT clients at once (half sum, half sos) on fresh servers; the VmHWM of
    every server afterwards."""
    servers = Servers(f"concurrent-{ds.name}")
    try:
        servers.start()
        errors: list[str] = []

        def one(i: int) -> None:
            try:
                run_client(ds, "sum" if i % 2 else "sos", meta)
            except Failure as e:
                errors.append(str(e))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(CONCURRENT)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        secs = time.perf_counter() - t0
        if errors:
            raise Failure(f"{len(errors)} of {CONCURRENT} concurrent jobs failed: {errors[0]}")
        servers.check_alive()
        log(f"  {CONCURRENT} concurrent jobs on {ds.name}: all exact, {secs:.2f} s in all")
    finally:
        servers.stop()
    return dict(servers.hwm)


def loss_run(ds: Dataset, meta: dict) -> dict | None:
    """SUM of one file through the relay at 0, 10 and 30% drop (and directly).

    The four paths run side by side, each with its own servers (and relay) under its own
    EE450_ID, and their jobs are taken in turn: the goals are ratios between the paths,
    and a machine whose speed drifts over the run (a shared one does) then slows every
    path alike instead of whichever ran last."""
    if os.environ.get("BENCH_LOSS", "1") == "0":
        return None
    warm(ds.path)
    res: dict = {"data": ds.name, "drops": {}}
    drops = [None, 0, 10, 30]
    paths = {drop: Servers(f"loss-{drop}", relay_drop=drop, xxx=loss_id(i))
             for i, drop in enumerate(drops)}
    secs: dict = {drop: [] for drop in drops}
    per_frame: dict = {drop: [] for drop in drops}
    try:
        for servers in paths.values():
            servers.start()
        for _ in range(LOSS_RUNS):
            for drop, servers in paths.items():
                before = servers.relay_stats() if drop is not None else None
                secs[drop].append(run_client(ds, "sum", meta, xxx=servers.xxx).seconds)
                if before is not None:
                    after = servers.relay_stats()
                    frames = after["unique"] - before["unique"]
                    if frames > 0:
                        per_frame[drop].append((after["data_sent"] - before["data_sent"])
                                               / frames)
    finally:
        for servers in paths.values():
            servers.stop()
    for drop in drops:
        key = "direct" if drop is None else str(drop)
        res["drops"][key] = {"seconds": statistics.median(secs[drop]),
                             "best": min(secs[drop]), "runs": secs[drop],
                             "per_frame": (statistics.median(per_frame[drop])
                                           if per_frame[drop] else None)}
        log(f"  loss run {key}{'' if drop is None else '% drop'}: "
            f"{fmt_s(res['drops'][key]['seconds'])} s")
    return res


def loss_id(i: int) -> str:
    """The EE450_ID of the loss run's i-th path: after the bench's own and the base's."""
    return f"{(int(BENCH_ID) + 2 + i) % 1000:03d}"


# --------------------------------------------------------------------------------------
# The base commit (before/after)


def base_id() -> str:
    return f"{(int(BENCH_ID) + 1) % 1000:03d}"


def build_base() -> Path | None:
    """The five programs of BENCH_BASE, built once into target/bench/base-<commit>."""
    if not BASE:
        return None
    r = subprocess.run(["git", "rev-parse", "--verify", f"{BASE}^{{commit}}"], cwd=REPO,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SetupError(f"BENCH_BASE={BASE}: not a commit here")
    sha = r.stdout.strip()
    tree = OUT / f"base-{sha[:12]}"
    bins = tree / "target" / "release"
    stamp = tree / ".bench-rustflags"
    flags = own_rustflags(sha)
    if (all((bins / p).exists() for p in PROGRAMS) and stamp.exists()
            and stamp.read_text() == flags):
        return bins
    if not BUILD:
        raise SetupError(f"BENCH_BASE={BASE} is not built in {tree} and BENCH_BUILD=0")
    log(f"building {BASE} ({sha[:12]}) into {tree.relative_to(REPO)} (once)")
    if not (tree / "Cargo.toml").exists():
        # A plain export (git archive), not a worktree: nothing is registered in the
        # repository, and `make clean` removes it with the rest of target/.
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(["git", "archive", sha], cwd=REPO, stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SetupError(f"git archive {sha} failed")
    # RUSTFLAGS, set even when empty, replaces every config file's flags: the tree lies
    # inside this repository, so cargo would otherwise add this checkout's
    # .cargo/config.toml (found above the tree) to the base's own.
    r = subprocess.run(["cargo", "build", "--release", "--locked", "-p", "offload-bins"],
                       cwd=tree, capture_output=True, text=True,
                       env=dict(os.environ, RUSTFLAGS=flags))
    if r.returncode != 0:
        raise SetupError(f"building {BASE} failed: {r.stderr.strip()[-300:]}")
    stamp.write_text(flags)
    return bins


def own_rustflags(sha: str) -> str:
    """The host's rustflags in commit `sha`'s own .cargo/config.toml (target table first,
    then build, as cargo takes them), space-separated; "" if it sets none."""
    import tomllib
    cfg = subprocess.run(["git", "show", f"{sha}:.cargo/config.toml"], cwd=REPO,
                         capture_output=True, text=True)
    if cfg.returncode != 0:
        return ""
    data = tomllib.loads(cfg.stdout)
    host = subprocess.run(["rustc", "-vV"], capture_output=True, text=True).stdout
    triple = next((l.split(":", 1)[1].strip() for l in host.splitlines()
                   if l.startswith("host:")), "")
    flags = (data.get("target", {}).get(triple, {}).get("rustflags")
             or data.get("build", {}).get("rustflags") or [])
    return " ".join(flags) if isinstance(flags, list) else str(flags)


# --------------------------------------------------------------------------------------
# Peers

PY_SUM = "import sys\nwith open(sys.argv[1], 'rb') as f:\n    print(sum(int(l) for l in f))\n"
PY_SOS = ("import sys\nwith open(sys.argv[1], 'rb') as f:\n"
          "    print(sum(x * x for x in (int(l) for l in f)))\n")
DUCK = ("import sys, duckdb\n"
        "expr = {'sum': 'sum(column0::HUGEINT)',\n"
        "        'sos': 'sum(column0::HUGEINT * column0::HUGEINT)'}[sys.argv[2]]\n"
        "q = (f\"SELECT {expr}::VARCHAR FROM read_csv('{sys.argv[1]}', header=false, \"\n"
        "     \"columns={'column0': 'BIGINT'})\")\n"
        "con = duckdb.connect()\n"
        "con.execute('SET enable_progress_bar = false')\n"
        "print(con.execute(q).fetchone()[0])\n")
AWK_SUM = '{ s += $1 } END { printf "%.0f\\n", s }'
AWK_SOS = '{ s += $1 * $1 } END { printf "%.0f\\n", s }'

_duck: bool | None = None


def have_duckdb() -> bool:
    global _duck
    if _duck is None:
        r = subprocess.run([sys.executable, "-c", "import duckdb"], capture_output=True)
        _duck = r.returncode == 0
    return _duck


@dataclass
class Peer:
    tool: str
    func: str  # "sum", "sos" or "read"
    argv: list[str] | None  # None: not installed
    note: str = ""
    stdin: bool = False


def peers_for(path: Path) -> list[Peer]:
    mawk, gawk, datamash, wc = (shutil.which(t) for t in ("mawk", "gawk", "datamash", "wc"))
    duck = have_duckdb()
    p = str(path)
    py = sys.executable
    inexact = "double: exact only below 2^53"
    out = [Peer("wc -l", "read", [wc, "-l", p] if wc else None, "floor: reading only")]
    for func, prog in (("sum", AWK_SUM), ("sos", AWK_SOS)):
        out.append(Peer("duckdb hugeint", func,
                        [py, "-c", DUCK, p, func] if duck else None,
                        "python module, incl. start-up"))
        out.append(Peer("mawk", func, [mawk, prog, p] if mawk else None, inexact))
        out.append(Peer("gawk", func, [gawk, prog, p] if gawk else None, inexact))
        out.append(Peer("gawk -M", func, [gawk, "-M", prog, p] if gawk else None,
                        "MPFR bignum"))
        if func == "sum":
            out.append(Peer("datamash sum 1", func,
                            [datamash, "sum", "1"] if datamash else None,
                            "long double, prints 14 digits", stdin=True))
        out.append(Peer("python3 int", func,
                        [py, "-c", PY_SUM if func == "sum" else PY_SOS, p],
                        "sum(int(l) for l in f), incl. start-up"))
    return out


def run_peer(peer: Peer, ds: Dataset, meta: dict, our: float | None,
             predicted: float | None) -> Row:
    if peer.argv is None:
        return Row(ds.name, peer.func, peer.tool, None, our, "-", "not installed")
    budget = SKIP * 5 if peer.tool.startswith(("duckdb", "wc")) else SKIP
    if predicted is not None and predicted > budget:
        return Row(ds.name, peer.func, peer.tool, None, our, "-",
                   f"skipped: would take ~{predicted:.0f} s (> {budget:.0f} s)")
    want = str(ds.lines) if peer.func == "read" else meta[peer.func]
    warm(ds.path)  # a peer that ran a minute after our jobs would read the disk
    runs = 1 if QUICK or (predicted or 0) > SLOW else min(RUNS, 3)
    secs = []
    answers = set()
    note = peer.note
    for i in range(runs):
        r = run_timed(peer.argv, ds.dir, stdin_path=ds.path if peer.stdin else None)
        if r.rc != 0 or r.timed_out:
            why = "timed out" if r.timed_out else f"exit {r.rc}"
            msg = (r.err.strip().splitlines() or [""])[-1][:80]
            return Row(ds.name, peer.func, peer.tool, r.seconds, our, "no",
                       f"failed ({why}): {msg}")
        # The last line's first word: wc -l prints "N file"; progress output comes first.
        answer = (r.out.strip().splitlines() or [""])[-1].split(" ")[0]
        answers.add(answer)
        secs.append(r.seconds)
        if i == 0 and r.seconds > SLOW:
            break
    if len(secs) < min(RUNS, 3):
        note = (note + "; " if note else "") + "1 run"
    exact = "yes" if answers == {want} else "no"
    if exact == "no":
        shown = sorted(answers)[0]
        if len(shown) > 24:
            shown = f"{shown[:18]}... ({len(shown)} chars)"
        note = (note + "; " if note else "") + f"printed {shown}"
    return Row(ds.name, peer.func, peer.tool, best(secs), our, exact, note)


# --------------------------------------------------------------------------------------
# Throughput of the core


def build_throughput() -> str | None:
    src = REPO / "bins" / "examples" / "throughput.rs"
    if BUILD and src.exists() and shutil.which("cargo"):
        r = subprocess.run(["cargo", "build", "--release", "--locked", "--quiet",
                            "-p", "offload-bins", "--example", "throughput"],
                           cwd=REPO, capture_output=True, text=True)
        if r.returncode != 0:
            return ("throughput example: cargo build failed: "
                    + (r.stderr.strip().splitlines() or [""])[-1][:100])
    return None


def throughput(ds: Dataset, meta: dict) -> dict:
    """The example's figures per operation; raises Failure on a wrong value.

    Reads `key=value` lines with at least op= and either gbps= or seconds= (bytes=,
    numbers=, ns_per_line=, lines_per_s= are used when present)."""
    exe = REPO / "target" / "release" / "examples" / "throughput"
    if not exe.exists():
        return {}
    r = run_timed([str(exe), str(ds.path)], REPO, timeout=PEER_TIMEOUT)
    if r.rc != 0:
        raise Failure(f"throughput example failed (exit {r.rc}): {r.err.strip()[-300:]}")
    results = {}
    for line in r.out.splitlines():
        kv = dict(part.split("=", 1) for part in line.split() if "=" in part)
        op = kv.get("op")
        if not op:
            continue
        if op.lower() in ("min", "max", "sum", "sos") and "value" in kv \
                and kv["value"] != meta[op.lower()]:
            raise Failure(f"throughput example on {ds.name}: {op} = {kv['value']}, "
                          f"expected {meta[op.lower()]}")
        size = float(kv.get("bytes", meta["bytes"]))
        lines = float(kv.get("numbers", kv.get("lines", meta["lines"])))
        secs = float(kv["seconds"]) if "seconds" in kv else None
        gbps = float(kv["gbps"]) if "gbps" in kv else (size / secs / 1e9 if secs else None)
        if secs is None and gbps:
            secs = size / (gbps * 1e9)
        ns = float(kv.get("ns_per_line", kv.get("ns_line", 0))) or (
            secs / lines * 1e9 if secs else None)
        lps = float(kv.get("lines_per_s", kv.get("lines_s", 0))) or (
            lines / secs if secs else None)
        med = float(kv["median_seconds"]) if "median_seconds" in kv else None
        results[op] = {"seconds": secs, "gbps": gbps, "ns_per_line": ns, "lines_per_s": lps,
                       "median_gbps": size / med / 1e9 if med else None}
    return results


# --------------------------------------------------------------------------------------
# Output


def loadavg() -> str:
    """The 1-minute load average: how shared the machine was (2 CPUs, load 14: each
    process gets about a seventh of a core, and every absolute time is that much longer)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except (OSError, IndexError):
        return "?"


def fmt_s(s: float | None) -> str:
    return "-" if s is None else f"{s:.3f}"


def print_table(head: list[str], body: list[list[str]], right: set[int],
                group: int | None = 0) -> None:
    widths = [max(len(x[i]) for x in body + [head]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    log(line(head))
    log(line(["-" * w for w in widths]))
    prev = None
    for cells in body:
        if group is not None and prev is not None and cells[group] != prev:
            log("")
        prev = cells[group] if group is not None else None
        log(line(cells))


def time_table(rows: list[Row]) -> None:
    body = []
    for r in rows:
        ratio = "-"
        if r.seconds is not None and r.ours:
            ratio = f"{r.seconds / r.ours:.2f}"
        body.append([r.data, r.func, r.tool, fmt_s(r.seconds), ratio, r.exact, r.note])
    print_table(["file", "func", "tool", "seconds", "x ours", "exact", "note"], body, {3, 4})
    log("x ours = seconds / our seconds for the same function (wc -l: vs our SUM); all "
        "times are whole processes, start to exit, on a file in the page cache.")


def mib(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.2f}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def growth_note(growth: dict[str, dict[str, float]]) -> str:
    """Where the growth table's seconds come from (the log's table and the README's)."""
    sized = sorted(ds.lines for ds in SIZES if ds.name in growth)
    return (f"seconds from {', '.join(lines_label(n) for n in sized)} lines: the best of "
            f"{GROWTH_ROUNDS} rounds with every size's jobs spread over each (jobs of each "
            "function per round: "
            + ", ".join(f"{GROWTH_JOBS.get(n, 1)} at {lines_label(n)}" for n in sized)
            + "), so a slow spell of the machine falls on all sizes alike; smaller sizes "
            "from their own sessions.")


def growth_times(s: Session, growth: dict[str, dict[str, float]]) -> dict[str, float]:
    """SUM and SOS seconds for the growth table: the growth run's where it ran the size,
    else the size's own session's."""
    g = growth.get(s.ds.name, {})
    return {f: g.get(f, s.times[f]) for f in ("sum", "sos")}


def summary_md(rows: list[Row], big: Session, uni: list[Session], conc: dict,
               loss: dict | None, tput: dict, goals: list,
               growth: dict[str, dict[str, float]]) -> str:
    """The run in Markdown, for the README: times at the goals' size, growth, goals."""
    out = [f"One `make bench` run ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs shared "
           f"with other work: load average {LOADS[0]} at the start, {LOADS[-1]} at the end; "
           "seconds, start to exit, best of "
           f"{runs_for(big.ds)} (peers: of 3, or 1 above 10 s); x = seconds / offload's):", "",
           f"| {lines_label(big.ds.lines)} lines in [-1e6, 1e6] | SUM | x | SOS | x | exact |",
           "| --- | ---: | ---: | ---: | ---: | --- |"]
    tools: dict[str, dict[str, Row]] = {}
    for r in rows:
        if r.data == big.ds.name:
            tools.setdefault(r.tool, {})[r.func] = r
    for tool, by in tools.items():
        cells = []
        for func in ("sum", "sos"):
            r = by.get(func) or (by.get("read") if func == "sum" else None)
            if r is None or r.seconds is None:
                cells += [(r.note if r else "-"), ""]
            else:
                cells += [f"{r.seconds:.3f}", f"{r.seconds / r.ours:.2f}" if r.ours else ""]
        ex = {f: r.exact for f, r in by.items() if r.exact != "-"}
        exact = ("yes" if set(ex.values()) == {"yes"} else "no" if set(ex.values()) <= {"no"}
                 else " ".join(f.upper() for f, e in ex.items() if e == "yes") + " only")
        out.append(f"| {tool} | " + " | ".join(cells) + f" | {exact} |")
    if growth:
        out += ["", "How cost grows, " + growth_note(growth)]
    out += ["", "| lines | SUM s | SOS s | SUM ns/line | SOS ns/line | client MiB | aws MiB | "
            "A MiB | B MiB | C MiB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in uni:
        t = growth_times(s, growth)
        out.append(f"| {lines_label(s.ds.lines)} | {t['sum']:.3f} | {t['sos']:.3f} | "
                   f"{t['sum'] / s.ds.lines * 1e9:.1f} | {t['sos'] / s.ds.lines * 1e9:.1f} | "
                   f"{mib(s.client_kb)} | " + " | ".join(mib(s.hwm.get(p)) for p in PROGRAMS[1:])
                   + " |")
    if conc:
        out.append(f"| {CONCURRENT} jobs at once | | | | | | "
                   + " | ".join(mib(conc.get(p)) for p in PROGRAMS[1:]) + " |")
    if loss:
        d = loss["drops"]
        out += ["", f"Loss ({loss['data']}, SUM): " + "; ".join(
            f"{k}% drop {d[k]['seconds']:.3f} s ({d[k]['seconds'] / d['0']['seconds']:.2f}x; "
            f"best run {d[k]['best']:.3f} s, {d[k]['best'] / d['0']['best']:.2f}x; "
            f"{d[k]['per_frame']:.2f} datagrams per frame)" for k in ("0", "10", "30")
            if d[k]["per_frame"] is not None) + "."]
    for name, res in tput.items():
        out += ["", f"Core in memory, {name}, best of 5 (median): " + "; ".join(
            f"{op} {v['gbps']:.2f} GB/s ({v.get('median_gbps') or 0:.2f}; "
            f"{v['ns_per_line']:.1f} ns/line)"
            for op, v in res.items() if v.get("gbps")) + "."]
    out += ["", "| goal (issue 11) | target | measured | |", "| --- | --- | --- | --- |"]
    out += [f"| {g[0]} | {g[1]} | {g[2]} | {g[3]} |" for g in goals]
    return "\n".join(out) + "\n"


def main() -> int:
    t_start = time.perf_counter()
    missing = [p for p in PROGRAMS if not os.access(REPO / p, os.X_OK)]
    if missing:
        raise SetupError(f"missing programs (run `make all` first): {', '.join(missing)}")
    if not (len(BENCH_ID) == 3 and BENCH_ID.isdigit()):
        raise SetupError(f"BENCH_ID must be 3 digits, not {BENCH_ID!r}")

    sizes = [D3E5, D3E6] if QUICK else list(SIZES)
    if os.environ.get("BENCH_SIZES"):
        want = {int(float(x)) for x in os.environ["BENCH_SIZES"].split(",") if x.strip()}
        sizes = [d for d in SIZES if d.lines in want]
    sizes, dropped = fit_to_disk(sizes + [DI64])
    full_range = [DI64] if DI64 in sizes else []
    sizes = [d for d in sizes if d is not DI64]
    if not sizes:
        raise SetupError("no data set fits on the disk: " + "; ".join(dropped))
    log(f"offload bench ({'quick' if QUICK else 'full'}; best of {RUNS} run(s) per figure "
        f"of ours ({runs_for(D3E6)} up to 3e6 lines, {runs_for(D3E8)} at 3e8), "
        f"EE450_ID={BENCH_ID}, {os.cpu_count()} CPUs, load average {loadavg()})")
    LOADS.append(loadavg())
    for note in dropped:
        log(f"  {note}")
    metas = {ds.name: ensure_data(ds) for ds in sizes + full_range}
    scalar = build_scalar()
    base = build_base()
    tp_note = build_throughput()

    sessions: list[Session] = []
    rows: list[Row] = []
    peer_times: dict[tuple[str, str], tuple[int, float]] = {}  # (tool, func) -> (lines, s)
    for ds in sizes + full_range:
        meta = metas[ds.name]
        warm(ds.path)
        # The base commit is timed up to 3e7 lines: enough for a before/after, and the
        # 3e8 size stays within its time budget.
        sess = run_ours(ds, meta, scalar, base if ds.lines <= 30_000_000 else None)
        sessions.append(sess)
        for func in sess.times:
            rows.append(Row(ds.name, func, "offload (ours)", sess.times[func],
                            sess.times[func], "yes", "client start to exit"))
            if func in sess.base:
                rows.append(Row(ds.name, func, f"offload at {BASE}", sess.base[func],
                                sess.times[func], "yes",
                                f"before/after, same run; client CPU {sess.base_cpu[func]:.3f}"
                                f" s vs ours {sess.cpu[func]:.3f} s"))
            if scalar is not None:
                rows.append(Row(ds.name, func, f"scalar C (gcc {SCALAR_FLAGS})", sess.scalar[func],
                                sess.times[func], "yes", "bins/bench/scalar.c"))
        if PEERS:
            for peer in peers_for(ds.path):
                prev = peer_times.get((peer.tool, peer.func))
                predicted = (prev[1] * ds.lines / prev[0]
                             if prev and ds.kind == "uniform" else None)
                our = sess.times["sum" if peer.func == "read" else peer.func]
                row = run_peer(peer, ds, meta, our, predicted)
                rows.append(row)
                if row.seconds is not None and ds.kind == "uniform":
                    peer_times[(peer.tool, peer.func)] = (ds.lines, row.seconds)
                log(f"  {row.tool} {row.func} on {ds.name}: {fmt_s(row.seconds)} s, "
                    f"exact {row.exact} {row.note}")

    uni = [s for s in sessions if s.ds.kind == "uniform"]
    # The end-to-end goals are stated for 3e7 lines (the largest size up to that here).
    big = max((s for s in uni if s.ds.lines <= 30_000_000),
              key=lambda s: s.ds.lines, default=uni[0])
    growth_sets = [s.ds for s in uni if s.ds.lines >= 3_000_000]
    growth = growth_run(growth_sets, metas) if len(growth_sets) >= 2 else {}
    conc_ds = D3E6 if QUICK or D3E7 not in sizes else D3E7
    conc = concurrent_run(conc_ds, metas[conc_ds.name]) if conc_ds in sizes else {}
    loss_ds = D3E5 if QUICK else D3E6
    loss = loss_run(loss_ds, metas[loss_ds.name]) if loss_ds in sizes else None
    tput = {}
    if not tp_note:
        tp_uni = D3E6 if QUICK or D3E7 not in sizes else D3E7
        for ds in (tp_uni, DI64):
            if ds.name in metas:
                tput[ds.name] = throughput(ds, metas[ds.name])

    # ---------------------------------------------------------------- report
    log("")
    time_table(rows)

    log("")
    log("How cost grows (ours; seconds per line from 3e6 up should agree within 15%):")
    body = []
    for s in uni:
        t = growth_times(s, growth)
        body.append([lines_label(s.ds.lines), f"{s.ds.lines:,}"]
                    + [f"{t[f]:.3f}" for f in ("sum", "sos")]
                    + [f"{t[f] / s.ds.lines * 1e9:.1f}" for f in ("sum", "sos")]
                    + [mib(s.client_kb)] + [mib(s.hwm.get(p)) for p in PROGRAMS[1:]])
    print_table(["lines", "", "sum s", "sos s", "sum ns/line", "sos ns/line",
                 "client MiB", "aws MiB", "A MiB", "B MiB", "C MiB"], body,
                set(range(1, 11)), group=None)
    if growth:
        log(growth_note(growth))
    log(f"peak memory: servers' VmHWM read from /proc just before stopping them (fresh "
        f"servers per size, after all jobs of that size); {CLIENT_RSS_HOW}.")
    if conc:
        log(f"after {CONCURRENT} concurrent jobs on {conc_ds.name} (fresh servers): "
            + ", ".join(f"{p} {mib(conc.get(p))} MiB" for p in PROGRAMS[1:]))
        one = next((s.hwm.get("aws") for s in uni if s.ds is conc_ds), None)
        if one and conc.get("aws"):
            log(f"  the AWS's memory per job: ({mib(conc['aws'])} - {mib(one)} MiB) / "
                f"{CONCURRENT - 1} = {(conc['aws'] - one) / (CONCURRENT - 1) / 1024:.2f} MiB "
                "per extra concurrent job")

    log("")
    if loss:
        d = loss["drops"]
        log(f"Loss: ./client sum on {loss['data']} through the relay, drop in both directions "
            f"between the AWS and the back-ends ({LOSS_RUNS} runs each, answers exact):")
        body = []
        for key in ("direct", "0", "10", "30"):
            e = d[key]
            body.append(["no relay" if key == "direct" else f"{key}% drop",
                         fmt_s(e["seconds"]),
                         f"{e['seconds'] / d['0']['seconds']:.2f}",
                         fmt_s(e["best"]), f"{e['best'] / d['0']['best']:.2f}",
                         "-" if e["per_frame"] is None else f"{e['per_frame']:.3f}",
                         " ".join(f"{x:.2f}" for x in e["runs"])])
        print_table(["path", "median s", "x 0%", "best s", "x 0%", "datagrams per data frame",
                     "runs"], body, {1, 2, 3, 4, 5}, group=None)
        log("")

    if tp_note:
        log(tp_note)
    for name, res in tput.items():
        log(f"Core in-memory parse + exact reduce (target/release/examples/throughput), "
            f"{name} ({metas[name]['bytes'] / 1e6:.0f} MB):")
        body = [[op, fmt_s(v["seconds"]), f"{v['gbps']:.2f}" if v["gbps"] else "-",
                 f"{v['ns_per_line']:.2f}" if v["ns_per_line"] else "-",
                 f"{v['lines_per_s'] / 1e6:.0f}" if v["lines_per_s"] else "-",
                 f"{v['median_gbps']:.2f}" if v.get("median_gbps") else "-"]
                for op, v in res.items()]
        print_table(["op", "seconds", "GB/s", "ns/line", "M lines/s", "median GB/s"], body,
                    {1, 2, 3, 4, 5}, group=None)
        log("(best of 5 runs taken round the operations, as every timing here; the median "
            "beside it)")
    log("")

    # ---------------------------------------------------------------- goals
    goals = []
    rows_by = {(r.data, r.func, r.tool): r for r in rows}
    duck = rows_by.get((big.ds.name, "sos", "duckdb hugeint"))
    sc = big.scalar.get("sos")
    ours_sos = big.times["sos"]
    at = f"sos, {lines_label(big.ds.lines)} lines"
    goals.append((f"./client vs scalar C ({at})", "<= 0.80",
                  f"{ours_sos / sc:.2f}" if sc else "no C compiler",
                  verdict(ours_sos / sc <= 0.8 if sc else None)))
    others = [f"{f} {big.times[f] / big.scalar[f]:.2f}" for f in ("sum", "min", "max")
              if f in big.times and big.scalar.get(f)]
    if others:
        goals.append((f"  the same, other functions ({lines_label(big.ds.lines)})", "(report)",
                      ", ".join(others), "-"))
    dsecs = duck.seconds if duck and duck.exact == "yes" else None
    goals.append((f"./client vs DuckDB ({at})", "<= 0.40",
                  f"{ours_sos / dsecs:.2f}" if dsecs else (duck.note if duck else "not run"),
                  verdict(ours_sos / dsecs <= 0.4 if dsecs else None)))
    per_line = [s for s in uni if s.ds.lines >= 3_000_000]
    for func in ("sum", "sos"):
        if len(per_line) >= 2:
            v = [growth_times(s, growth)[func] / s.ds.lines for s in per_line]
            spread = max(v) / min(v) - 1
            goals.append((f"time per line, {func}, "
                          f"{lines_label(per_line[0].ds.lines)}..{lines_label(per_line[-1].ds.lines)}",
                          "spread <= 15%", f"{spread * 100:.0f}%", verdict(spread <= 0.15)))
    for p in PROGRAMS:
        v = [s.client_kb if p == "client" else s.hwm.get(p) for s in uni]
        v = [x for x in v if x]
        if len(v) >= 2:
            # "The same": within 10% (page-table, allocator and socket-buffer noise
            # moves a peak by a few hundred KiB from one session to the next).
            grow = max(v) - min(v)
            goals.append((f"peak memory of {p}, {lines_label(uni[0].ds.lines)}.."
                          f"{lines_label(uni[-1].ds.lines)}", "same at every size (10%)",
                          f"{min(v) / 1024:.2f}..{max(v) / 1024:.2f} MiB",
                          verdict(grow <= 0.10 * min(v))))
    worst_after = max((big.hwm.get(p) or 0) for p in BACKENDS)
    goals.append((f"back-end peak after {lines_label(big.ds.lines)} jobs", "<= 2.00 MiB",
                  f"{worst_after / 1024:.2f} MiB", verdict(worst_after <= 2048)))
    if conc:
        worst = max((conc.get(p) or 0) for p in BACKENDS)
        goals.append((f"back-end peak after {CONCURRENT} concurrent jobs", "<= 2.00 MiB",
                      f"{worst / 1024:.2f} MiB", verdict(worst <= 2048)))
    if loss:
        d = loss["drops"]
        for drop, limit in (("10", 1.25), ("30", 1.8)):
            x = d[drop]["seconds"] / d["0"]["seconds"]
            b = d[drop]["best"] / d["0"]["best"]
            goals.append((f"{drop}% drop vs 0% ({loss['data']}), median", f"<= {limit:.2f}",
                          f"{x:.2f} (best runs: {b:.2f})", verdict(x <= limit)))
    for name, res in tput.items():
        g = [v["gbps"] for op, v in res.items() if op in ("MIN", "MAX", "SUM", "SOS")
             and v["gbps"]]
        if g:
            goals.append((f"core parse+reduce GB/s, {name} (slowest op)", ">= 1.50",
                          f"{min(g):.2f}", verdict(min(g) >= 1.5)))
    if BASE:
        for func in ("sum", "sos"):
            if func in big.base:
                x = big.times[func] / big.base[func]
                c = big.cpu[func] / big.base_cpu[func] if big.base_cpu[func] else 0
                goals.append((f"./client {func} now / at {BASE} ({lines_label(big.ds.lines)})",
                              "small", f"wall {x:.2f}, client CPU {c:.2f} "
                              f"({big.cpu[func]:.3f} / {big.base_cpu[func]:.3f} s)", "-"))
    log("Goals (issue 11), each a ratio of figures from this run:")
    print_table(["goal", "target", "measured", "verdict"], [list(g) for g in goals], set(),
                group=None)

    # ---------------------------------------------------------------- chart + json
    OUT.mkdir(parents=True, exist_ok=True)
    series_t: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        ds = next((d for d in SIZES if d.name == r.data), None)
        if ds is None or r.seconds is None or r.note.startswith("failed"):
            continue
        if r.func == "sos" or r.func == "read" or r.tool.startswith("datamash"):
            label = r.tool if r.func == "sos" else f"{r.tool} ({r.func})"
            series_t.setdefault(label, []).append((ds.lines, r.seconds))
    series_m = {p: [(s.ds.lines, (s.client_kb if p == "client" else s.hwm.get(p)) or 0)
                    for s in uni] for p in PROGRAMS}
    svg = chart.render(series_t, series_m,
                       title=f"offload bench ({'quick' if QUICK else 'full'}), "
                             f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs",
                       limit_kb=2048,
                       mem_note=(f"after {CONCURRENT} concurrent {lines_label(conc_ds.lines)} jobs "
                                 "(not plotted): " + ", ".join(
                           f"{p} {mib(conc.get(p))}" for p in PROGRAMS[1:]) + " MiB")
                       if conc else "")
    (OUT / "bench.svg").write_text(svg)
    if not QUICK and not os.environ.get("BENCH_SIZES"):
        shutil.copyfile(OUT / "bench.svg", Path(__file__).resolve().parent / "bench.svg")
    (OUT / "results.json").write_text(json.dumps({
        "quick": QUICK, "runs": RUNS,
        "rows": [r.__dict__ for r in rows],
        "sessions": [{"data": s.ds.name, "times": s.times, "runs": s.runs,
                      "scalar": s.scalar, "base": s.base, "client_kb": s.client_kb,
                      "hwm": s.hwm} for s in sessions],
        "growth": growth, "concurrent": conc, "loss": loss, "throughput": tput,
        "goals": goals}, indent=1) + "\n")
    LOADS.append(loadavg())
    (OUT / "summary.md").write_text(summary_md(rows, big, uni, conc, loss, tput, goals,
                                                     growth))
    log("")
    log(f"chart: {(OUT / 'bench.svg').relative_to(REPO)}; figures: "
        f"{(OUT / 'results.json').relative_to(REPO)}; for the README: "
        f"{(OUT / 'summary.md').relative_to(REPO)}")
    log(f"bench finished in {time.perf_counter() - t_start:.0f} s; all our answers exact; "
        f"load average {LOADS[0]} at the start, {loadavg()} at the end")
    return 0


def _on_term(signum, frame):  # noqa: ARG001
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, _on_term)
    try:
        sys.exit(main())
    except SetupError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(2)
    except Failure as e:
        print(f"bench: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
