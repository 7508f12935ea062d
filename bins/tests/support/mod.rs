//! End-to-end harness: the real five programs on loopback, each test with its own
//! EE450_ID whose ports are checked free, every process ended by its PID on drop.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SERVERS: [&str; 4] = ["serverA", "serverB", "serverC", "aws"];
pub const FUNCS: [&str; 4] = ["min", "max", "sum", "sos"];
const LONG: Duration = Duration::from_secs(60);

pub mod frames;
pub mod relay;

#[allow(unused_imports)] // each test binary uses its own subset
pub use frames::*;

pub fn exe(name: &str) -> PathBuf {
    match name {
        "client" => env!("CARGO_BIN_EXE_client").into(),
        "aws" => env!("CARGO_BIN_EXE_aws").into(),
        "serverA" => env!("CARGO_BIN_EXE_serverA").into(),
        "serverB" => env!("CARGO_BIN_EXE_serverB").into(),
        "serverC" => env!("CARGO_BIN_EXE_serverC").into(),
        other => panic!("no program {other}"),
    }
}

/// The ID's five ports are free on 127.0.0.1, and on ::1 where the machine has IPv6
/// (the IPv6 tests run their servers there).
fn ports_free(id: u16) -> bool {
    let v6 = has_ipv6();
    let hosts: &[&str] = if v6 {
        &["127.0.0.1", "::1"]
    } else {
        &["127.0.0.1"]
    };
    hosts.iter().all(|&h| {
        [21000u16, 22000, 23000, 24000]
            .iter()
            .all(|b| UdpSocket::bind((h, b + id)).is_ok())
            && TcpListener::bind((h, 25000 + id)).is_ok()
    })
}

/// Whether this machine can use IPv6 loopback (a kernel without IPv6 cannot bind ::1).
pub fn has_ipv6() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| UdpSocket::bind("[::1]:0").is_ok())
}

/// An EE450_ID no other test of any run is using now: starts at a per-process offset
/// and skips IDs whose ports are taken.
pub fn free_id() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(u16::MAX);
    let _ = NEXT.compare_exchange(
        u16::MAX,
        (std::process::id() % 700) as u16 + 100,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..1000 {
        let id = NEXT.fetch_add(1, Ordering::SeqCst) % 1000;
        if id != 319 && ports_free(id) {
            return id;
        }
    }
    panic!("no free EE450_ID");
}

/// A running program whose stdout lines are collected as they come.
pub struct Proc {
    pub name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    errs: Arc<Mutex<Vec<String>>>,
}

fn collect<R: std::io::Read + Send + 'static>(r: R, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    });
}

impl Proc {
    pub fn spawn(name: &str, envs: &[(String, String)], dir: &Path) -> Proc {
        Proc::spawn_in(None, name, envs, dir)
    }

    /// Spawns `name`, inside network namespace `netns` when given (`ip netns exec`
    /// execs the program, so the PID is still the program's).
    pub fn spawn_in(
        netns: Option<&str>,
        name: &str,
        envs: &[(String, String)],
        dir: &Path,
    ) -> Proc {
        let mut cmd = piped(netns, name, dir, &[], envs);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let errs = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().unwrap(), lines.clone());
        collect(child.stderr.take().unwrap(), errs.clone());
        Proc {
            name: name.into(),
            child,
            lines,
            errs,
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn errs(&self) -> Vec<String> {
        self.errs.lock().unwrap().clone()
    }

    /// Waits (at most `limit`, then fails) until `done` holds for the stderr lines read
    /// so far, and returns them. They are read on a thread of their own, so a line a
    /// program wrote before its last datagram may not be here yet when a client is done.
    pub fn wait_errs(&self, limit: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let start = Instant::now();
        loop {
            let errs = self.errs();
            if done(&errs) {
                return errs;
            }
            assert!(start.elapsed() < limit, "{}: {errs:?}", self.name);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most `limit`) for a stderr line containing `what`, and returns it.
    pub fn wait_err(&self, what: &str, limit: Duration) -> String {
        let errs = self.wait_errs(limit, |e| e.iter().any(|l| l.contains(what)));
        errs.into_iter()
            .find(|l| l.contains(what))
            .unwrap_or_default()
    }

    /// Waits until at least `n` stdout lines arrived.
    pub fn wait_lines(&self, n: usize, limit: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let l = self.lines();
            if l.len() >= n {
                return l;
            }
            assert!(
                start.elapsed() < limit,
                "{}: wanted {n} lines within {limit:?}, have {l:?}; stderr {:?}",
                self.name,
                self.errs()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The four servers of one test.
pub struct Cluster {
    pub id: u16,
    pub envs: Vec<(String, String)>,
    pub procs: Vec<Proc>,
    pub dir: tempdir::TempDir,
}

pub mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory removed on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let p = std::env::temp_dir().join(format!("offload-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Cluster {
    /// Starts A, B, C and the AWS (those in `which`), waiting for their boot lines.
    pub fn start_with(which: &[&str], extra: &[(&str, &str)]) -> Cluster {
        Cluster::start_at(free_id(), which, extra, &[])
    }

    /// As [`Cluster::start_with`] at a chosen ID, with `aws_only` set for the AWS alone
    /// (e.g. back-end hosts that point it at a relay).
    pub fn start_at(
        id: u16,
        which: &[&str],
        extra: &[(&str, &str)],
        aws_only: &[(&str, &str)],
    ) -> Cluster {
        let only: Vec<(&str, &str, &str)> = aws_only.iter().map(|(k, v)| ("aws", *k, *v)).collect();
        Cluster::start_each(id, which, extra, &only)
    }

    /// As [`Cluster::start_at`], with `only` = (program, variable, value) set for that
    /// program alone (e.g. each back-end told where its relay sends from).
    pub fn start_each(
        id: u16,
        which: &[&str],
        extra: &[(&str, &str)],
        only: &[(&str, &str, &str)],
    ) -> Cluster {
        let mut envs = vec![("EE450_ID".to_string(), format!("{id:03}"))];
        envs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let dir = tempdir::TempDir::new("cluster");
        let procs: Vec<Proc> = which
            .iter()
            .map(|n| {
                let mut own = envs.clone();
                own.extend(
                    only.iter()
                        .filter(|(p, _, _)| p == n)
                        .map(|(_, k, v)| (k.to_string(), v.to_string())),
                );
                Proc::spawn(n, &own, dir.path())
            })
            .collect();
        for p in &procs {
            p.wait_lines(1, Duration::from_secs(10));
        }
        Cluster {
            id,
            envs,
            procs,
            dir,
        }
    }

    pub fn start() -> Cluster {
        Cluster::start_with(&SERVERS, &[])
    }

    pub fn proc(&self, name: &str) -> &Proc {
        self.procs.iter().find(|p| p.name == name).unwrap()
    }

    pub fn proc_mut(&mut self, name: &str) -> &mut Proc {
        self.procs.iter_mut().find(|p| p.name == name).unwrap()
    }

    /// Writes nums.csv into a fresh directory and runs the client there.
    pub fn run(&self, func: &str, nums: &[u8]) -> Run {
        let dir = tempdir::TempDir::new("client");
        std::fs::write(dir.path().join("nums.csv"), nums).unwrap();
        self.run_in(dir.path(), &[func])
    }

    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Run {
        run_client(dir, args, &self.envs, Duration::from_secs(60))
    }

    pub fn all_running(&mut self) -> bool {
        self.procs.iter_mut().all(|p| p.is_running())
    }
}

/// What a client run left behind.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: String,
    pub elapsed: Duration,
}

pub fn run_client(dir: &Path, args: &[&str], envs: &[(String, String)], limit: Duration) -> Run {
    run_client_in(None, dir, args, envs, limit)
}

/// Program `name` with `args` in `dir`, stdout and stderr piped, exactly `envs` added
/// to an environment without OFFLOAD_LOG, inside `netns` when given.
fn piped(
    netns: Option<&str>,
    name: &str,
    dir: &Path,
    args: &[&str],
    envs: &[(String, String)],
) -> Command {
    let mut cmd = command_in(netns, &exe(name));
    cmd.current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.env_remove("OFFLOAD_LOG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// A command for `program`, run inside `netns` when given.
pub fn command_in(netns: Option<&str>, program: &Path) -> Command {
    match netns {
        None => Command::new(program),
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
    }
}

pub fn run_client_in(
    netns: Option<&str>,
    dir: &Path,
    args: &[&str],
    envs: &[(String, String)],
    limit: Duration,
) -> Run {
    let start = Instant::now();
    let mut cmd = piped(netns, "client", dir, args, envs);
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());
    let e = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("client {args:?} hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = o.join().unwrap().lines().map(str::to_string).collect();
    Run {
        status,
        stdout,
        stderr: e.join().unwrap(),
        elapsed: start.elapsed(),
    }
}

/// The file text for numbers, one per line.
pub fn csv(xs: &[i64]) -> Vec<u8> {
    let mut s = String::new();
    for x in xs {
        s.push_str(&x.to_string());
        s.push('\n');
    }
    s.into_bytes()
}

/// Ceil-first thirds, computed here independently of the code under test.
pub fn thirds(xs: &[i64]) -> Vec<&[i64]> {
    let n = xs.len();
    let a = n.div_ceil(3);
    let b = (n - a).div_ceil(2);
    vec![&xs[..a], &xs[a..a + b], &xs[a + b..]]
}

/// Expected decimal answer of `func` over `xs`, with independent wide arithmetic:
/// i128 for SUM, base-10^9 limbs for SOS.
pub fn expect(func: &str, xs: &[i64]) -> String {
    match func {
        "min" => xs.iter().min().unwrap().to_string(),
        "max" => xs.iter().max().unwrap().to_string(),
        "sum" => xs.iter().map(|&x| x as i128).sum::<i128>().to_string(),
        "sos" => {
            // Decimal limbs, least significant first, each < 10^9.
            let mut acc: Vec<u64> = vec![0];
            for &x in xs {
                let sq = (x.unsigned_abs() as u128) * (x.unsigned_abs() as u128);
                let mut carry = sq;
                let mut i = 0;
                while carry > 0 {
                    if i == acc.len() {
                        acc.push(0);
                    }
                    let v = acc[i] as u128 + carry % 1_000_000_000;
                    carry /= 1_000_000_000;
                    acc[i] = (v % 1_000_000_000) as u64;
                    carry += v / 1_000_000_000;
                    i += 1;
                }
            }
            let mut s = acc.last().unwrap().to_string();
            for limb in acc.iter().rev().skip(1) {
                s.push_str(&format!("{limb:09}"));
            }
            s
        }
        other => panic!("{other}"),
    }
}

pub fn upper(func: &str) -> String {
    func.to_ascii_uppercase()
}

/// The client's four lines for a successful job.
pub fn client_lines(func: &str, n: usize, answer: &str) -> Vec<String> {
    let f = upper(func);
    vec![
        "The client is up and running.".to_string(),
        format!("The client has sent the reduction type {f} to AWS."),
        format!("The client has sent {n} numbers to AWS"),
        format!("The client has received reduction {f}: {answer}"),
    ]
}

/// xorshift for reproducible test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}

pub fn write_file(dir: &Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(dir.join("nums.csv")).unwrap();
    f.write_all(bytes).unwrap();
}

/// Runs `func` over `xs` and checks the client's lines, then every server's lines
/// for that job (each server has printed `before[i]` lines earlier).
pub fn check_job(c: &Cluster, func: &str, xs: &[i64]) {
    let before: Vec<usize> = SERVERS.iter().map(|s| c.proc(s).lines().len()).collect();
    let run = c.run(func, &csv(xs));
    let answer = expect(func, xs);
    assert!(run.status.success(), "{func} {}: {run:?}", xs.len());
    assert_eq!(
        run.stdout,
        client_lines(func, xs.len(), &answer),
        "stderr: {}",
        run.stderr
    );
    let f = upper(func);
    let parts = thirds(xs);
    for (i, letter) in ["A", "B", "C"].iter().enumerate() {
        let p = c.proc(SERVERS[i]);
        if parts[i].is_empty() {
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(
                p.lines().len(),
                before[i],
                "server {letter} printed for an empty part"
            );
            continue;
        }
        let lines = p.wait_lines(before[i] + 3, LONG);
        assert_eq!(
            lines[before[i]..],
            [
                format!("The Server {letter} has received {} numbers", parts[i].len()),
                format!("The Server {letter} has successfully finished the reduction {f}: {}", expect(func, parts[i])),
                format!("The Server {letter} has successfully finished sending the reduction value to AWS server."),
            ]
        );
    }
    let live: Vec<usize> = (0..3).filter(|&i| !parts[i].is_empty()).collect();
    let mut want = vec![format!(
        "The AWS has received {} numbers from the client using TCP over port {}",
        xs.len(),
        25000 + c.id
    )];
    for &i in &live {
        want.push(format!(
            "The AWS sent {} numbers to Backend-Server {}",
            parts[i].len(),
            ["A", "B", "C"][i]
        ));
    }
    for &i in &live {
        want.push(format!(
            "The AWS received reduction result of {f} from Backend-Server {} using UDP over port {} and it is {}",
            ["A", "B", "C"][i],
            24000 + c.id,
            expect(func, parts[i])
        ));
    }
    want.push(format!(
        "The AWS has successfully finished the reduction {f}: {answer}"
    ));
    want.push(
        "The AWS has successfully finished sending the reduction value to client.".to_string(),
    );
    let aws = c.proc("aws").wait_lines(before[3] + want.len(), LONG);
    assert_eq!(aws[before[3]..], want[..]);
}

/// 300,000 numbers in `[-range, range]` for every function, then 300,000 full-range
/// numbers for SOS and SUM, each checked line by line.
pub fn check_large_jobs(c: &Cluster, seed: u64, range: i64) {
    let mut r = Rng(seed);
    let xs: Vec<i64> = (0..300_000).map(|_| r.range(-range, range)).collect();
    for f in FUNCS {
        check_job(c, f, &xs);
    }
    let full: Vec<i64> = (0..300_000).map(|_| r.next() as i64).collect();
    check_job(c, "sos", &full);
    check_job(c, "sum", &full);
}
