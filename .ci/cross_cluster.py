#!/usr/bin/env python3
"""A live cluster of the five programs, each given by its command line (so a back-end can
run under qemu-user, built for another architecture), on loopback with a free EE450_ID.
Runs the seed example and a seeded full-range job of --count numbers for all four
functions and checks the exact answers (Python integers) and every program's exact lines.
Ends only the processes it started. Used by .ci/cross.sh."""
import argparse
import os
import random
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

FUNCS = ["min", "max", "sum", "sos"]
REDUCE = {
    "min": min,
    "max": max,
    "sum": sum,
    "sos": lambda xs: sum(x * x for x in xs),
}
SERVERS = ["serverA", "serverB", "serverC"]


def thirds(xs):
    base, extra = divmod(len(xs), 3)
    sizes = [base + (1 if i < extra else 0) for i in range(3)]
    return [xs[: sizes[0]], xs[sizes[0] : sizes[0] + sizes[1]], xs[sizes[0] + sizes[1] :]]


def port_free(kind, port):
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            s = socket.socket(family, kind)
        except OSError:
            continue
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno != 99:  # EADDRNOTAVAIL: no ::1 here, which is fine
                return False
        finally:
            s.close()
    return True


def free_id():
    ids = list(range(1000))
    random.shuffle(ids)
    for i in ids:
        udp = [21000 + i, 22000 + i, 23000 + i, 24000 + i]
        if all(port_free(socket.SOCK_DGRAM, p) for p in udp) and port_free(
            socket.SOCK_STREAM, 25000 + i
        ):
            return i
    sys.exit("cross: no free EE450_ID")


class Program:
    def __init__(self, name, argv, env, work):
        self.name = name
        self.out_path = os.path.join(work, name + ".out")
        self.err_path = os.path.join(work, name + ".err")
        self.proc = subprocess.Popen(
            argv,
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=open(self.out_path, "wb"),
            stderr=open(self.err_path, "wb"),
            start_new_session=True,
        )

    def lines(self):
        with open(self.out_path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()

    def wait_lines(self, n, limit=30.0):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            got = self.lines()
            if len(got) >= n or self.proc.poll() is not None:
                return got
            time.sleep(0.02)
        return self.lines()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def expected_lines(func, xs, ident):
    op = func.upper()
    parts = thirds(xs)
    client = [
        "The client is up and running.",
        f"The client has sent the reduction type {op} to AWS.",
        f"The client has sent {len(xs)} numbers to AWS",
        f"The client has received reduction {op}: {REDUCE[func](xs)}",
    ]
    aws = [f"The AWS has received {len(xs)} numbers from the client using TCP over port {25000 + ident}"]
    servers = {}
    for i, (name, p) in enumerate(zip(SERVERS, parts)):
        letter = "ABC"[i]
        servers[name] = []
        if p:
            aws.append(f"The AWS sent {len(p)} numbers to Backend-Server {letter}")
            servers[name] = [
                f"The Server {letter} has received {len(p)} numbers",
                f"The Server {letter} has successfully finished the reduction {op}: {REDUCE[func](p)}",
                f"The Server {letter} has successfully finished sending the reduction value to AWS server.",
            ]
    for i, p in enumerate(parts):
        if p:
            aws.append(
                f"The AWS received reduction result of {op} from Backend-Server {'ABC'[i]} "
                f"using UDP over port {24000 + ident} and it is {REDUCE[func](p)}"
            )
    aws.append(f"The AWS has successfully finished the reduction {op}: {REDUCE[func](xs)}")
    aws.append("The AWS has successfully finished sending the reduction value to client.")
    return client, aws, servers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--program", action="append", required=True, help="name=command line")
    ap.add_argument("--nums", required=True)
    ap.add_argument("--count", type=int, default=300000)
    ap.add_argument("--seed", type=int, default=0x5EED10)
    args = ap.parse_args()
    cmds = dict(p.split("=", 1) for p in args.program)
    ident = free_id()
    env = dict(os.environ, EE450_ID=f"{ident:03d}")
    work = tempfile.mkdtemp(prefix="offload-cross-")
    failures = []
    started = []
    try:
        for name in SERVERS + ["aws"]:
            started.append(Program(name, shlex.split(cmds[name]), env, work))
            if name != "aws":
                continue
        boot = {
            "serverA": f"The Server A is up and running using UDP on port {21000 + ident}.",
            "serverB": f"The Server B is up and running using UDP on port {22000 + ident}.",
            "serverC": f"The Server C is up and running using UDP on port {23000 + ident}.",
            "aws": "The AWS is up and running.",
        }
        progs = {p.name: p for p in started}
        for name, line in boot.items():
            got = progs[name].wait_lines(1)
            if got[:1] != [line]:
                sys.exit(f"cross: {name} did not start: {got[:3]} {open(progs[name].err_path).read()[-500:]}")
        print(f"cluster up on EE450_ID={ident:03d}: " + ", ".join(f"{k}: {cmds[k]}" for k in SERVERS))
        seen = {name: 1 for name in progs}
        seed_text = open(args.nums, "rb").read()
        seed_xs = [int(l) for l in seed_text.decode().splitlines() if l.strip()]
        rng = random.Random(args.seed)
        full_xs = [rng.randrange(-(1 << 63), 1 << 63) for _ in range(args.count)]
        jobs = [("seed example", seed_text, seed_xs)]
        jobs.append((f"{args.count} full-range numbers", "".join(f"{x}\n" for x in full_xs).encode(), full_xs))
        for label, text, xs in jobs:
            jobdir = tempfile.mkdtemp(dir=work)
            with open(os.path.join(jobdir, "nums.csv"), "wb") as f:
                f.write(text)
            for func in FUNCS:
                client, aws, servers = expected_lines(func, xs, ident)
                t0 = time.monotonic()
                run = subprocess.run(
                    shlex.split(cmds["client"]) + [func],
                    cwd=jobdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=300,
                )
                took = time.monotonic() - t0
                out = run.stdout.decode(errors="replace").splitlines()
                problems = []
                if run.returncode != 0:
                    problems.append(f"client exit {run.returncode}: {run.stderr.decode(errors='replace')[-400:]}")
                if out != client:
                    problems.append(f"client lines {out} != {client}")
                for name, want in [("aws", aws)] + list(servers.items()):
                    got = progs[name].wait_lines(seen[name] + len(want), limit=10)
                    new = got[seen[name] : seen[name] + len(want)]
                    seen[name] = len(got)
                    if new != want or len(got) != seen[name]:
                        problems.append(f"{name} lines {new} != {want}")
                status = "ok  " if not problems else "FAIL"
                answer = out[-1] if out else "(none)"
                print(f"{status} {label}, {func}: {answer} ({took:.2f} s)")
                for p in problems:
                    print(f"     {p}")
                failures += problems
        for p in started:
            if p.proc.poll() is not None:
                failures.append(f"{p.name} exited early ({p.proc.returncode})")
    finally:
        for p in started:
            p.stop()
        if failures:
            for p in started:
                err = open(p.err_path, encoding="utf-8", errors="replace").read()
                if err.strip():
                    print(f"--- {p.name} stderr (last lines):\n{err[-800:]}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        sys.exit(f"cross: {len(failures)} check(s) failed")
    print("cross: the mixed-architecture cluster gave exact answers and exact lines")


main()
