#!/usr/bin/env python3
"""`make bench`: offload end to end against the tools people would use instead.

Python 3.11 standard library only. Run from anywhere; paths are relative to the
repository root (two levels above this file), where `make all` leaves ./serverA ./serverB
./serverC ./aws ./client.

What it does, in one run:

1. Generates the data once, deterministically, into `.bench-cache/<name>/nums.csv`
   (git-ignored) and reuses it while the marker `meta.json` matches:
     uniform-3e7  30,000,000 integers uniform in [-1e6, 1e6] (~222 MB)
     i64-3e6       3,000,000 integers uniform over all of i64 (plus i64::MIN and MAX)
     uniform-3e5, uniform-3e4
   The exact MIN/MAX/SUM/SOS of every file are computed in Python while generating.
2. For each size, starts the four servers fresh (EE450_ID=BENCH_ID, default 777, after
   checking that the five ports are free), waits for their boot lines, times `./client sum`
   and `./client sos` from process start to exit (median of BENCH_RUNS, default 3) and checks
   every answer exactly; then reads each server's VmHWM from /proc just before stopping it.
   The client's peak memory is ru_maxrss from os.wait4.
3. Times the peers on the same file: `wc -l` (the floor for reading the file), mawk, gawk
   (doubles: inexact once a value passes 2^53), `gawk -M` (bignum), `datamash sum 1`,
   Python exact, and DuckDB (via the `duckdb` Python module, hugeint). A peer that is not
   installed is listed as such; peers never fail the run.
4. Reports the core's in-memory parse-and-reduce throughput
   (target/release/examples/throughput) next to `wc -l` on the same file.

Environment:
  BENCH_QUICK=1      only the 3e5 file for timing (3e4 and 3e5 for memory); for CI, ~1 minute
  BENCH_RUNS=N       runs per figure (default 3)
  BENCH_ID=xxx       EE450_ID for the bench servers (default 777)
  BENCH_BUILD=0      do not (re)build the throughput example with cargo
  BENCH_PEERS=0      skip the peers
  BENCH_OURS=0       skip our programs (to try the peers alone; no memory report)
  BENCH_LOSS=0       skip the loss run (a job through the fault-injecting relay)
  BENCH_SLOW=S       a peer whose first run takes longer than S seconds (default 60) is
                     run once only, so `make bench` stays within its time budget

Exit status: 0 when every answer of ours is right and every program of ours worked,
1 otherwise, 2 for a setup problem (missing binaries, busy ports, ...).
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

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".bench-cache"
LOGS = CACHE / "logs"

GEN_VERSION = 1
SEED = 450_319
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
RUNS = max(1, int(os.environ.get("BENCH_RUNS", "3") or 3))
BENCH_ID = os.environ.get("BENCH_ID", "777")
BUILD = os.environ.get("BENCH_BUILD", "1") != "0"
RELAY_HOST = "127.0.0.2"
PEERS = os.environ.get("BENCH_PEERS", "1") != "0"
OURS = os.environ.get("BENCH_OURS", "1") != "0"
SLOW = float(os.environ.get("BENCH_SLOW", "60") or 60)

CLIENT_TIMEOUT = 300.0
PEER_TIMEOUT = 300.0
BOOT_TIMEOUT = 10.0

SERVERS = [
    # (program, boot line, ports it needs as (proto, base))
    ("serverA", "The Server A is up and running using UDP on port {p}.", ("udp", 21000)),
    ("serverB", "The Server B is up and running using UDP on port {p}.", ("udp", 22000)),
    ("serverC", "The Server C is up and running using UDP on port {p}.", ("udp", 23000)),
    ("aws", "The AWS is up and running.", ("udp", 24000)),
]
AWS_TCP_BASE = 25000
PROGRAMS = ["serverA", "serverB", "serverC", "aws", "client"]


class SetupError(Exception):
    """Something around the programs is wrong (exit 2)."""


class Failure(Exception):
    """One of our programs failed or answered wrongly (exit 1)."""


def log(msg: str = "") -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Dataset:
    name: str
    lines: int
    kind: str  # "uniform" ([-1e6, 1e6]) or "i64" (full range)

    @property
    def dir(self) -> Path:
        return CACHE / self.name

    @property
    def path(self) -> Path:
        return self.dir / "nums.csv"


D3E4 = Dataset("uniform-3e4", 30_000, "uniform")
D3E5 = Dataset("uniform-3e5", 300_000, "uniform")
D3E7 = Dataset("uniform-3e7", 30_000_000, "uniform")
DI64 = Dataset("i64-3e6", 3_000_000, "i64")

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


def ensure_data(ds: Dataset) -> dict:
    """The dataset's marker (with its exact answers), generating the file if needed."""
    meta = _meta(ds)
    if meta is not None:
        return meta
    t0 = time.perf_counter()
    ds.dir.mkdir(parents=True, exist_ok=True)
    (ds.dir / "meta.json").unlink(missing_ok=True)
    rng = random.Random(f"offload-bench/{ds.kind}/{ds.lines}/{SEED}")
    total = sos = 0
    lo, hi = I64_MAX, I64_MIN
    size = 0
    tmp = ds.dir / "nums.csv.tmp"
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
    mtmp = ds.dir / "meta.json.tmp"
    mtmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(mtmp, ds.dir / "meta.json")
    log(f"generated {ds.path.relative_to(REPO)}: {ds.lines:,} lines, {size:,} bytes "
        f"in {time.perf_counter() - t0:.1f} s")
    return meta


def warm(path: Path) -> None:
    """Reads the file once so every timed tool finds it in the page cache."""
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


def run_timed(argv: list[str], cwd: Path, env: dict | None = None,
              timeout: float = PEER_TIMEOUT) -> Run:
    """Runs argv to completion; wall time from just before spawn to just after reaping."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=err)
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
                   timed_out.is_set())


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


def program_env() -> dict:
    env = dict(os.environ)
    env["EE450_ID"] = BENCH_ID
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

    def __init__(self, tag: str, relay_drop: int | None = None):
        self.tag = tag
        self.relay_drop = relay_drop
        self.procs: dict[str, subprocess.Popen] = {}
        self.files: list = []
        self.hwm: dict[str, int | None] = {}

    def start(self) -> None:
        xxx = int(BENCH_ID)
        busy = [f"{proto.upper()} {base + xxx}"
                for proto, base in [s[2] for s in SERVERS] + [("tcp", AWS_TCP_BASE)]
                if not port_free(proto, base + xxx)]
        if busy:
            raise SetupError(f"ports in use for EE450_ID={BENCH_ID}: {', '.join(busy)} "
                             "(set BENCH_ID to another 3-digit id)")
        LOGS.mkdir(parents=True, exist_ok=True)
        env = program_env()
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
            if name.startswith("server") and self.relay_drop is not None:
                # Back-ends take jobs only from the AWS's address: the relay sends to
                # server A, B, C from the AWS's port on 127.0.0.3, .4, .5.
                penv["OFFLOAD_HOST_AWS"] = f"127.0.0.{3 + 'ABC'.index(name[-1])}"
            self.procs[name] = subprocess.Popen(
                [str(REPO / name)], cwd=REPO, env=penv, stdin=subprocess.DEVNULL,
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
        outp = LOGS / f"{self.tag}.relay.out"
        out = open(outp, "wb")
        self.files.append(out)
        self.procs["relay"] = subprocess.Popen(
            [str(exe)], cwd=REPO, env=renv, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while b"relay ready" not in outp.read_bytes():
            if self.procs["relay"].poll() is not None or time.monotonic() > deadline:
                raise Failure(f"relay did not start: {outp.read_text(errors='replace')[-300:]}")
            time.sleep(0.01)

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
        self.procs.clear()
        for f in self.files:
            f.close()
        self.files.clear()


# --------------------------------------------------------------------------------------
# Our programs


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
    client_rss_kb: int = 0
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
CLIENT_RSS_HOW = ""


def client_peak_kb(ds: Dataset, func: str, meta: dict) -> int:
    """Peak RSS of one extra, untimed `./client func` run, in KiB.

    Linux folds the parent's memory into a child's ru_maxrss when the child is spawned
    from a big process (the pre-exec address space counts), so os.wait4 on a child of this
    Python reports at least Python's own ~15 MB. GNU time forks the client from a ~2 MB
    process and reads the same ru_maxrss with wait4, so that figure is the client's own.
    Without /usr/bin/time we fall back to os.wait4 here, an upper bound.
    """
    global CLIENT_RSS_HOW
    argv = [str(REPO / "client"), func]
    with tempfile.NamedTemporaryFile("r") as t:
        use_time = GNU_TIME.exists()
        if use_time:
            argv = [str(GNU_TIME), "-f", "%M", "-o", t.name] + argv
        r = run_timed(argv, ds.dir, program_env(), CLIENT_TIMEOUT)
        got = r.out.rstrip("\n").split("\n")
        want = client_transcript(func, ds.lines, meta[func])[-1]
        if r.rc != 0 or got[-1] != want:
            raise Failure(f"./client {func} on {ds.name} (memory run): exit {r.rc}, "
                          f"last line {got[-1]!r}, expected {want!r}")
        if use_time:
            try:
                CLIENT_RSS_HOW = "ru_maxrss via /usr/bin/time (wait4 in a small parent)"
                return int(t.read().split()[-1])
            except (ValueError, IndexError):
                pass
        CLIENT_RSS_HOW = "os.wait4 ru_maxrss (upper bound: includes Python's RSS at spawn)"
        return r.maxrss_kb


def run_ours(ds: Dataset, meta: dict, funcs: list[str], runs: int) -> Session:
    """A fresh server session on one file: times and checks each function."""
    global _warned_transcript
    sess = Session(ds)
    servers = Servers(ds.name)
    try:
        servers.start()
        for func in funcs:
            want = client_transcript(func, ds.lines, meta[func])
            secs = []
            for _ in range(runs):
                r = run_timed([str(REPO / "client"), func], ds.dir, program_env(),
                              CLIENT_TIMEOUT)
                got = r.out.rstrip("\n").split("\n")
                if r.timed_out or r.rc != 0 or not got or got[-1] != want[-1]:
                    servers.check_alive()
                    raise Failure(
                        f"./client {func} on {ds.name}: exit {r.rc}"
                        f"{' (timed out)' if r.timed_out else ''}, last line "
                        f"{got[-1] if got else ''!r}, expected {want[-1]!r}; "
                        f"stderr: {r.err.strip()[-500:]!r}")
                if got != want and not _warned_transcript:
                    _warned_transcript = True
                    log(f"warning: client transcript differs from Table 8:\n  got  {got}\n"
                        f"  want {want}")
                secs.append(r.seconds)
            sess.times[func] = statistics.median(secs)
            sess.client_rss_kb = max(sess.client_rss_kb, client_peak_kb(ds, func, meta))
            log(f"  ours {func} on {ds.name}: {fmt_s(sess.times[func])} s "
                f"(runs: {', '.join(f'{s:.3f}' for s in secs)}), answer exact")
        servers.check_alive()
    finally:
        servers.stop()
        sess.hwm = dict(servers.hwm)
    return sess


def loss_run(ds: Dataset) -> list[str]:
    """SUM of one file directly, through the relay at 0% drop, and at 10% drop."""
    if os.environ.get("BENCH_LOSS", "1") == "0" or not OURS:
        return ["loss run: skipped (BENCH_LOSS=0)"]
    meta = ensure_data(ds)
    warm(ds.path)
    times = {}
    for label, drop in [("direct", None), ("relay, 0% drop", 0), ("relay, 10% drop", 10)]:
        servers = Servers(f"loss-{drop}", relay_drop=drop)
        want = client_transcript("sum", ds.lines, meta["sum"])[-1]
        try:
            servers.start()
            secs = []
            for _ in range(RUNS):
                r = run_timed([str(REPO / "client"), "sum"], ds.dir, program_env(),
                              CLIENT_TIMEOUT)
                last = r.out.rstrip("\n").split("\n")[-1]
                if r.rc != 0 or last != want:
                    raise Failure(f"loss run ({label}): exit {r.rc}, {last!r}, expected "
                                  f"{want!r}; stderr {r.err.strip()[-300:]!r}")
                secs.append(r.seconds)
            times[label] = statistics.median(secs)
        finally:
            servers.stop()
    clean, lossy = times["relay, 0% drop"], times["relay, 10% drop"]
    return [f"loss run, ./client sum on {ds.name} ({RUNS} runs each, answers exact):",
            f"  direct {fmt_s(times['direct'])} s; through the relay: 0% drop "
            f"{fmt_s(clean)} s, 10% drop {fmt_s(lossy)} s = {lossy / clean:.2f}x its clean time"]


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


def have_duckdb() -> bool:
    r = subprocess.run([sys.executable, "-c", "import duckdb"], capture_output=True)
    return r.returncode == 0


@dataclass
class Peer:
    tool: str
    func: str  # "sum", "sos" or "read"
    argv: list[str] | None  # None: not installed
    note: str = ""


def peers_for(path: Path) -> list[Peer]:
    mawk, gawk, datamash, wc = (shutil.which(t) for t in ("mawk", "gawk", "datamash", "wc"))
    duck = have_duckdb()
    p = str(path)
    py = sys.executable
    inexact = "double: exact only below 2^53"
    out = [Peer("wc -l", "read", [wc, "-l", p] if wc else None, "floor: reading only")]
    for func, prog in (("sum", AWK_SUM), ("sos", AWK_SOS)):
        out.append(Peer("mawk", func, [mawk, prog, p] if mawk else None, inexact))
        out.append(Peer("gawk", func, [gawk, prog, p] if gawk else None, inexact))
        out.append(Peer("gawk -M", func, [gawk, "-M", prog, p] if gawk else None,
                        "MPFR bignum"))
        if func == "sum":
            out.append(Peer("datamash sum 1", func,
                            [datamash, "sum", "1"] if datamash else None,
                            "long double, prints 14 digits"))
        out.append(Peer("python3 int", func,
                        [py, "-c", PY_SUM if func == "sum" else PY_SOS, p],
                        "sum(int(l) for l in f), incl. start-up"))
        out.append(Peer("duckdb hugeint", func,
                        [py, "-c", DUCK, p, func] if duck else None,
                        "python module, incl. start-up"))
    return out


def run_peer(peer: Peer, ds: Dataset, meta: dict, ours: dict[str, float],
             runs: int) -> Row:
    our = ours.get("sum" if peer.func == "read" else peer.func)
    if peer.argv is None:
        return Row(ds.name, peer.func, peer.tool, None, our, "-", "not installed")
    want = str(ds.lines) if peer.func == "read" else meta[peer.func]
    secs = []
    answers = set()
    note = peer.note
    for i in range(runs):
        stdin_path = ds.path if peer.tool.startswith("datamash") else None
        if stdin_path is not None:
            r = run_stdin(peer.argv, ds.dir, stdin_path)
        else:
            r = run_timed(peer.argv, ds.dir)
        if r.rc != 0 or r.timed_out:
            why = "timed out" if r.timed_out else f"exit {r.rc}"
            msg = (r.err.strip().splitlines() or [""])[-1][:80]
            return Row(ds.name, peer.func, peer.tool, r.seconds, our, "no",
                       f"failed ({why}): {msg}")
        # The last line's first word: wc -l prints "N file"; progress output comes first.
        answer = (r.out.strip().splitlines() or [""])[-1].split(" ")[0]
        answers.add(answer)
        secs.append(r.seconds)
        if i == 0 and r.seconds > SLOW and runs > 1:
            note = (note + "; " if note else "") + f"1 run only (> {SLOW:.0f} s)"
            break
    exact = "yes" if answers == {want} else "no"
    if exact == "no":
        shown = sorted(answers)[0]
        if len(shown) > 24:
            shown = f"{shown[:18]}... ({len(shown)} chars)"
        note = (note + "; " if note else "") + f"printed {shown}"
    return Row(ds.name, peer.func, peer.tool, statistics.median(secs), our, exact, note)


def run_stdin(argv: list[str], cwd: Path, path: Path) -> Run:
    """run_timed with the file on stdin (datamash reads stdin)."""
    with open(path, "rb") as f:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            p = subprocess.Popen(argv, cwd=cwd, stdin=f, stdout=out, stderr=err)
            try:
                rc = p.wait(timeout=PEER_TIMEOUT)
                timed_out = False
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
                timed_out = True
            t1 = time.perf_counter()
            out.seek(0)
            err.seek(0)
            return Run(t1 - t0, rc, out.read().decode(errors="replace"),
                       err.read().decode(errors="replace"), 0, timed_out)


# --------------------------------------------------------------------------------------
# Throughput of the core


def throughput(ds: Dataset, meta: dict) -> list[str]:
    """Lines to print; raises Failure if the core computes a wrong value."""
    exe = REPO / "target" / "release" / "examples" / "throughput"
    src = REPO / "bins" / "examples" / "throughput.rs"
    lines = []
    if BUILD and src.exists() and shutil.which("cargo"):
        r = subprocess.run(["cargo", "build", "--release", "--locked", "--quiet",
                            "-p", "offload-bins", "--example", "throughput"],
                           cwd=REPO, capture_output=True, text=True)
        if r.returncode != 0:
            lines.append("throughput example: cargo build failed: "
                         + (r.stderr.strip().splitlines() or [""])[-1][:100])
    if not exe.exists():
        lines.append("core throughput: not available (target/release/examples/throughput "
                     "not built)")
        return lines
    r = run_timed([str(exe), str(ds.path)], REPO, timeout=PEER_TIMEOUT)
    if r.rc != 0:
        raise Failure(f"throughput example failed (exit {r.rc}): {r.err.strip()[-300:]}")
    results = {}
    for line in r.out.splitlines():
        kv = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if "op" in kv:
            results[kv["op"]] = kv
    for op in ("MIN", "MAX", "SUM", "SOS"):
        kv = results.get(op)
        if kv is None:
            raise Failure(f"throughput example printed no {op} line")
        if kv.get("value") != meta[op.lower()]:
            raise Failure(f"throughput example: {op} = {kv.get('value')}, "
                          f"expected {meta[op.lower()]}")
    wc = shutil.which("wc")
    wc_s = None
    if wc:
        wc_s = statistics.median(run_timed([wc, "-l", str(ds.path)], REPO).seconds
                                 for _ in range(max(3, RUNS)))
    size = meta["bytes"]
    lines.append(f"core in-memory parse + exact reduce, {ds.name} ({size / 1e6:.0f} MB, "
                 "file read into memory first, fed in 64 KiB chunks, median of 3):")
    for op in ("MIN", "MAX", "SUM", "SOS", "ALL4"):
        kv = results.get(op)
        if kv:
            label = "all four, one pass" if op == "ALL4" else op
            lines.append(f"  {label:<18} {float(kv['seconds']):8.3f} s  "
                         f"{float(kv['gbps']):6.2f} GB/s")
    if wc_s:
        lines.append(f"  {'wc -l':<18} {wc_s:8.3f} s  {size / wc_s / 1e9:6.2f} GB/s  "
                     "(process, file in page cache)")
    return lines


# --------------------------------------------------------------------------------------
# Output


def fmt_s(s: float | None) -> str:
    return "-" if s is None else f"{s:.3f}"


def print_table(rows: list[Row]) -> None:
    head = ["file", "func", "tool", "seconds", "x ours", "exact", "note"]
    body = []
    for r in rows:
        ratio = "-"
        if r.seconds is not None and r.ours and r.tool != "offload (ours)":
            ratio = f"{r.seconds / r.ours:.2f}"
        elif r.tool == "offload (ours)":
            ratio = "1.00"
        body.append([r.data, r.func, r.tool, fmt_s(r.seconds), ratio, r.exact, r.note])
    widths = [max(len(x[i]) for x in body + [head]) for i in range(len(head))]
    right = {3, 4}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    log(line(head))
    log(line(["-" * w for w in widths]))
    prev = None
    for cells in body:
        if prev is not None and cells[0] != prev:
            log("")
        prev = cells[0]
        log(line(cells))
    log("x ours = peer seconds / our seconds for the same function (wc -l: vs our SUM); "
        "all times are whole processes, start to exit, on a file in the page cache.")


def mem_report(small: Session, big: Session) -> None:
    log(f"peak resident memory in KiB, {small.ds.name} vs {big.ds.name}, fresh servers per "
        f"size (servers: VmHWM read just before stop, after {2 * RUNS} jobs; client: "
        f"{CLIENT_RSS_HOW}, max of a sum and a sos run):")
    head = ["process", small.ds.name, big.ds.name, "difference"]
    rows = []
    for name in PROGRAMS:
        if name == "client":
            a, b = small.client_rss_kb, big.client_rss_kb
        else:
            a, b = small.hwm.get(name), big.hwm.get(name)
        diff = "-" if a is None or b is None else f"{b - a:+d}"
        rows.append([name, "-" if a is None else str(a), "-" if b is None else str(b), diff])
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
    for r in [head] + rows:
        log("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))))


# --------------------------------------------------------------------------------------


def main() -> int:
    t_start = time.perf_counter()
    missing = [p for p in PROGRAMS if not os.access(REPO / p, os.X_OK)]
    if missing and OURS:
        raise SetupError(f"missing programs (run `make all` first): {', '.join(missing)}")
    if not (len(BENCH_ID) == 3 and BENCH_ID.isdigit()):
        raise SetupError(f"BENCH_ID must be 3 digits, not {BENCH_ID!r}")

    main_ds = D3E5 if QUICK else D3E7
    extra = [] if QUICK else [DI64]
    mem_small = D3E4
    log(f"offload bench ({'quick' if QUICK else 'full'}; {RUNS} run(s) per figure, "
        f"EE450_ID={BENCH_ID}, {os.cpu_count()} CPUs)")

    metas = {ds.name: ensure_data(ds) for ds in [mem_small, main_ds] + extra}

    # Our programs: 3e4 first (memory baseline), then the timed files, each with fresh
    # servers so every VmHWM is per size.
    small = run_ours(mem_small, metas[mem_small.name], ["sum", "sos"], RUNS) if OURS else None
    sessions = []
    rows: list[Row] = []
    for ds in [main_ds] + extra:
        warm(ds.path)
        sess = run_ours(ds, metas[ds.name], ["sum", "sos"], RUNS) if OURS else Session(ds)
        sessions.append(sess)
        for func in sess.times:
            rows.append(Row(ds.name, func, "offload (ours)", sess.times[func],
                            sess.times[func], "yes", "client start to exit"))
        if PEERS:
            for peer in peers_for(ds.path):
                row = run_peer(peer, ds, metas[ds.name], sess.times, RUNS)
                rows.append(row)
                log(f"  {row.tool} {row.func} on {ds.name}: {fmt_s(row.seconds)} s, "
                    f"exact {row.exact} {row.note}")
    log("")
    print_table(rows)
    log("")
    if small is not None:
        mem_report(small, sessions[0])
        log("")
    for line in throughput(main_ds, metas[main_ds.name]):
        log(line)
    log("")
    for line in loss_run(D3E5 if QUICK else DI64):
        log(line)
    log("")
    log(f"bench finished in {time.perf_counter() - t_start:.0f} s"
        + ("; all our answers exact" if OURS else "; our programs skipped (BENCH_OURS=0)"))
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
