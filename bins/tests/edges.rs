//! Issue 9's edges, over the real programs: files edited while they are sent, Ctrl-Z and
//! fg (SIGSTOP/SIGCONT sent to the processes), an AWS that stops reading, files that are
//! not regular files, settings out of range, a screen that cannot be written, and the
//! messages for an idle client and a bind to a foreign address.
//!
//! Timing is made deterministic by stopping programs, never by sleeping and hoping: a
//! client is stopped mid-stream only once the back-ends are stopped too (so the AWS
//! cannot take the whole stream and the client cannot finish), and only after
//! /proc/PID/io shows it has written its first mebibyte of frames.
mod support;

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// Sends `sig` to process `pid` (one of ours).
fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) takes two integers; `pid` is a child this test spawned and waits for.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

fn stop(p: u32) {
    signal(p, libc::SIGSTOP);
}

fn cont(p: u32) {
    signal(p, libc::SIGCONT);
}

/// The three back-ends' PIDs.
fn backends(c: &Cluster) -> Vec<u32> {
    ["serverA", "serverB", "serverC"]
        .iter()
        .map(|n| c.proc(n).pid())
        .collect()
}

/// A client running in the background, its stdout lines collected as they come.
struct Client {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    err: Option<std::thread::JoinHandle<String>>,
}

impl Client {
    fn spawn(dir: &Path, func: &str, envs: &[(String, String)]) -> Client {
        let mut cmd = Command::new(exe("client"));
        cmd.current_dir(dir)
            .arg(func)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("OFFLOAD_LOG");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                l2.lock().unwrap().push(line);
            }
        });
        let err = child.stderr.take().unwrap();
        let err = Some(std::thread::spawn(move || {
            std::io::read_to_string(err).unwrap_or_default()
        }));
        Client { child, lines, err }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_lines(&self, n: usize) {
        let t = Instant::now();
        while self.lines.lock().unwrap().len() < n {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "client printed {:?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until the client has read `bytes` of its file in all (/proc/PID/io: socket
    /// sends are not counted there, file reads are). The client writes a chunk's frames
    /// before it reads the next chunk, so a second pass that has read two chunks has
    /// sent the file's first lines.
    fn wait_read(&self, bytes: u64) {
        let t = Instant::now();
        loop {
            let io = std::fs::read_to_string(format!("/proc/{}/io", self.pid())).unwrap();
            let w: u64 = io
                .lines()
                .find_map(|l| l.strip_prefix("rchar: "))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            if w >= bytes {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "client read {w} bytes"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until the client's main thread sleeps in a TCP send because the AWS's side
    /// is full: /proc/PID/syscall names the system call a blocked task is in, twice in
    /// a row 5 ms apart.
    fn wait_blocked_in_send(&self) {
        let t = Instant::now();
        let path = format!("/proc/{}/syscall", self.pid());
        let in_send = || {
            let s = std::fs::read_to_string(&path).unwrap_or_default();
            s.split_whitespace().next() == Some(libc::SYS_sendto.to_string().as_str())
        };
        loop {
            if in_send() {
                std::thread::sleep(Duration::from_millis(5));
                if in_send() {
                    return;
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "client is in {:?}",
                std::fs::read_to_string(&path)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits for the exit (at most `limit`): status, stdout lines, stderr.
    fn finish(mut self, limit: Duration) -> (ExitStatus, Vec<String>, String) {
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("client still running after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let err = self.err.take().unwrap().join().unwrap();
        // Let the stdout reader take the last lines.
        std::thread::sleep(Duration::from_millis(20));
        let lines = self.lines.lock().unwrap().clone();
        (status, lines, err)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` one-digit numbers: 2 bytes of text but 8 bytes of frame each, so the stream is
/// four times the file and the kernel's TCP buffers (4 MiB + 32 MiB here) cannot take
/// all of a 6,000,000-number stream while the AWS does not read.
fn small_numbers(n: usize, seed: u64) -> (Vec<i64>, Vec<u8>) {
    let mut r = Rng(seed);
    let xs: Vec<i64> = (0..n).map(|_| r.range(1, 9)).collect();
    let text = csv(&xs);
    (xs, text)
}

const BIG: usize = 6_000_000;

fn envs_with(c: &Cluster, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut e = c.envs.clone();
    e.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    e
}

/// Starts a client on `text` with the back-ends stopped, and stops the client once it
/// is mid-stream: the second pass has read its first MiB, and it sleeps in a send that
/// the AWS, whose windows are full, cannot take (so it cannot have finished).
fn client_stopped_mid_stream(c: &Cluster, dir: &Path, text: &[u8], func: &str) -> Client {
    std::fs::write(dir.join("nums.csv"), text).unwrap();
    for p in backends(c) {
        stop(p);
    }
    let client = Client::spawn(dir, func, &c.envs);
    client.wait_lines(2);
    client.wait_read(text.len() as u64 + (1 << 20));
    client.wait_blocked_in_send();
    stop(client.pid());
    for p in backends(c) {
        cont(p);
    }
    client
}

/// Waits (at most 30 s) for a stderr line of `name` that contains `what`.
fn wait_err(c: &Cluster, name: &str, what: &str) {
    c.proc(name).wait_err(what, Duration::from_secs(30));
}

/// One story on every screen: no server printed a line (of success or progress) for
/// the abandoned job, since they had printed `before` lines each.
fn servers_printed_nothing_since(c: &Cluster, before: &[usize]) {
    std::thread::sleep(Duration::from_millis(300));
    for (name, &n) in SERVERS.iter().zip(before) {
        let lines = c.proc(name).lines();
        assert_eq!(
            lines[n..],
            [] as [String; 0],
            "{name} printed for an abandoned job"
        );
    }
}

#[test]
fn a_file_changed_while_sent_is_never_answered() {
    let c = Cluster::start();
    let (_, text) = small_numbers(BIG, 9);
    // Every way to change the file while the client is stopped mid-stream.
    type Edit = fn(&Path, &[u8]);
    let edits: [(&str, Edit); 6] = [
        (
            "same count: line 1 (sent) and the last line (unread) rewritten in place",
            |p, text| {
                let f = OpenOptions::new().write(true).open(p).unwrap();
                let first = if text[0] == b'9' { b"1" } else { b"9" };
                f.write_at(first, 0).unwrap();
                let last_at = text.len() as u64 - 2;
                let last = if text[text.len() - 2] == b'9' {
                    b"1"
                } else {
                    b"9"
                };
                f.write_at(last, last_at).unwrap();
            },
        ),
        (
            "same count: only the unread last line rewritten in place",
            |p, text| {
                let f = OpenOptions::new().write(true).open(p).unwrap();
                let last = if text[text.len() - 2] == b'9' {
                    b"1"
                } else {
                    b"9"
                };
                f.write_at(last, text.len() as u64 - 2).unwrap();
            },
        ),
        ("a line appended", |p, _| {
            use std::io::Write;
            let mut f = OpenOptions::new().append(true).open(p).unwrap();
            f.write_all(b"5\n").unwrap();
        }),
        ("truncated by its last line", |p, text| {
            let f = OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(text.len() as u64 - 2).unwrap();
        }),
        ("replaced with cp (same size, same count)", |p, text| {
            let other = p.with_file_name("other.csv");
            let mut t = text.to_vec();
            t.swap(0, 2);
            t[4] = if t[4] == b'3' { b'4' } else { b'3' };
            std::fs::write(&other, &t).unwrap();
            let st = Command::new("cp").arg(&other).arg(p).status().unwrap();
            assert!(st.success());
        }),
        ("replaced by rename with the same bytes", |p, text| {
            let other = p.with_file_name("other.csv");
            std::fs::write(&other, text).unwrap();
            std::fs::rename(&other, p).unwrap();
        }),
    ];
    for (what, edit) in edits {
        let dir = tempdir::TempDir::new("changed");
        let before: Vec<usize> = SERVERS.iter().map(|n| c.proc(n).lines().len()).collect();
        let client = client_stopped_mid_stream(&c, dir.path(), &text, "sum");
        edit(&dir.path().join("nums.csv"), &text);
        cont(client.pid());
        let (status, lines, err) = client.finish(Duration::from_secs(60));
        assert_eq!(status.code(), Some(1), "{what}: {lines:?} {err}");
        assert_eq!(
            err.trim_end(),
            "client: nums.csv changed while it was being sent",
            "{what}"
        );
        assert_eq!(
            lines,
            [
                "The client is up and running.",
                "The client has sent the reduction type SUM to AWS."
            ],
            "{what}"
        );
        servers_printed_nothing_since(&c, &before);
    }
    // The servers are unharmed and exact.
    let xs: Vec<i64> = (1..=3001).map(|i| i * 37 - 50_000).collect();
    check_job(&c, "sum", &xs);
    check_job(&c, "sos", &xs);
}

#[test]
fn an_unchanged_big_file_is_exact_after_a_stop_mid_stream() {
    // The same path without an edit: the checks pass and the answer is exact.
    let c = Cluster::start();
    let (xs, text) = small_numbers(BIG, 21);
    let dir = tempdir::TempDir::new("unchanged");
    let client = client_stopped_mid_stream(&c, dir.path(), &text, "sum");
    std::thread::sleep(Duration::from_millis(200));
    cont(client.pid());
    let (status, lines, err) = client.finish(Duration::from_secs(60));
    assert!(status.success(), "{err}");
    assert_eq!(lines, client_lines("sum", xs.len(), &expect("sum", &xs)));
}

#[test]
fn a_client_stopped_mid_stream_longer_than_its_timeout_carries_on() {
    // Ctrl-Z for 2.5 s with OFFLOAD_TIMEOUT_MS=1000, then fg: the AWS was never the one
    // that stopped, so the job goes on and is exact.
    let c = Cluster::start_with(&SERVERS, &[("OFFLOAD_TIMEOUT_MS", "1000")]);
    let (xs, text) = small_numbers(BIG, 17);
    let dir = tempdir::TempDir::new("longstop");
    let client = client_stopped_mid_stream(&c, dir.path(), &text, "max");
    std::thread::sleep(Duration::from_millis(2500));
    cont(client.pid());
    let (status, lines, err) = client.finish(Duration::from_secs(60));
    assert!(status.success(), "{err}");
    assert_eq!(lines, client_lines("max", xs.len(), &expect("max", &xs)));
}

#[test]
fn a_client_stopped_while_waiting_for_its_answer_gets_it() {
    let c = Cluster::start();
    let xs: Vec<i64> = (0..3000).map(|i| i * 11 - 7000).collect();
    let dir = tempdir::TempDir::new("ctrlz");
    write_file(dir.path(), &csv(&xs));
    // C stopped: the answer cannot come until it is continued.
    let server_c = c.proc("serverC").pid();
    stop(server_c);
    let client = Client::spawn(dir.path(), "sos", &c.envs);
    client.wait_lines(3);
    // Ctrl-Z, half a second, fg: the client is blocked reading its answer.
    std::thread::sleep(Duration::from_millis(50));
    stop(client.pid());
    std::thread::sleep(Duration::from_millis(500));
    cont(client.pid());
    std::thread::sleep(Duration::from_millis(100));
    cont(server_c);
    let (status, lines, err) = client.finish(Duration::from_secs(30));
    assert!(status.success(), "{err}");
    assert_eq!(lines, client_lines("sos", xs.len(), &expect("sos", &xs)));
}

#[test]
fn an_aws_stopped_while_reading_a_stream_keeps_the_job() {
    let c = Cluster::start();
    let (xs, text) = small_numbers(1_000_000, 5);
    let dir = tempdir::TempDir::new("awsstop");
    write_file(dir.path(), &text);
    let client = Client::spawn(dir.path(), "sum", &c.envs);
    client.wait_lines(2);
    client.wait_read(text.len() as u64 + (1 << 20));
    // The client stopped mid-stream: the AWS drains it and waits in its read.
    stop(client.pid());
    std::thread::sleep(Duration::from_millis(200));
    let aws = c.proc("aws").pid();
    for _ in 0..3 {
        stop(aws);
        std::thread::sleep(Duration::from_millis(300));
        cont(aws);
        std::thread::sleep(Duration::from_millis(50));
    }
    cont(client.pid());
    let (status, lines, err) = client.finish(Duration::from_secs(60));
    assert!(status.success(), "{err}");
    assert_eq!(lines, client_lines("sum", xs.len(), &expect("sum", &xs)));
}

#[test]
fn a_client_gives_up_on_an_aws_that_stopped_reading_and_the_aws_serves_the_next() {
    let c = Cluster::start();
    let (_, text) = small_numbers(BIG, 3);
    let dir = tempdir::TempDir::new("stall");
    write_file(dir.path(), &text);
    let envs = envs_with(&c, &[("OFFLOAD_TIMEOUT_MS", "1500")]);
    let nodes = backends(&c);
    let before: Vec<usize> = SERVERS.iter().map(|n| c.proc(n).lines().len()).collect();
    for &p in &nodes {
        stop(p);
    }
    let client = Client::spawn(dir.path(), "sum", &envs);
    client.wait_lines(2);
    client.wait_read(text.len() as u64 + (1 << 20));
    // The AWS stops mid-stream (Ctrl-Z in its terminal).
    let aws = c.proc("aws").pid();
    stop(aws);
    for &p in &nodes {
        cont(p);
    }
    let stopped = Instant::now();
    let (status, lines, err) = client.finish(Duration::from_secs(20));
    let took = stopped.elapsed();
    cont(aws);
    assert_eq!(status.code(), Some(1), "{lines:?} {err}");
    assert_eq!(
        err.trim_end(),
        "client: the AWS stopped reading: it took less than 64 KiB in 1500 ms (OFFLOAD_TIMEOUT_MS); job abandoned"
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(took < Duration::from_millis(1500 + 1500), "took {took:?}");
    // Continued, the AWS abandons the job; nobody prints anything for it.
    wait_err(&c, "aws", "abandoned");
    servers_printed_nothing_since(&c, &before);
    // Continued, the AWS drops the abandoned job and serves the next one exactly.
    let xs: Vec<i64> = (1..=999).collect();
    check_job(&c, "max", &xs);
}

#[test]
fn a_client_dropped_for_being_idle_is_told_so() {
    let c = Cluster::start_with(&SERVERS, &[("OFFLOAD_IDLE_MS", "1000")]);
    let (_, text) = small_numbers(BIG, 4);
    let before: Vec<usize> = SERVERS.iter().map(|n| c.proc(n).lines().len()).collect();
    let dir = tempdir::TempDir::new("idle");
    let client = client_stopped_mid_stream(&c, dir.path(), &text, "min");
    // Stopped past the AWS's idle limit: the AWS drains the stream and drops it.
    wait_err(&c, "aws", "sent nothing for");
    cont(client.pid());
    let (status, lines, err) = client.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{lines:?} {err}");
    assert!(
        err.starts_with("client: the AWS dropped this client for being idle: it sent nothing for "),
        "{err}"
    );
    assert!(
        !err.contains("Broken pipe") && !err.contains("reset"),
        "{err}"
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    servers_printed_nothing_since(&c, &before);
}

#[test]
fn files_that_are_not_regular_are_refused_at_once() {
    // No AWS at all: the client must stop before connecting.
    let envs = [("EE450_ID".to_string(), format!("{:03}", free_id()))];
    type Make = fn(&Path);
    let cases: [(&str, Make); 3] = [
        ("a FIFO (named pipe)", |p| {
            let st = Command::new("mkfifo").arg(p).status().unwrap();
            assert!(st.success());
        }),
        ("a character device", |p| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap();
        }),
        ("a directory", |p| std::fs::create_dir(p).unwrap()),
    ];
    for (kind, make) in cases {
        let dir = tempdir::TempDir::new("notfile");
        make(&dir.path().join("nums.csv"));
        let run = run_client(dir.path(), &["sum"], &envs, Duration::from_secs(10));
        assert_eq!(run.status.code(), Some(1), "{kind}: {run:?}");
        assert_eq!(
            run.stderr.trim_end(),
            format!("client: nums.csv is {kind}, not a regular file; refusing to read it")
        );
        assert_eq!(run.stdout, ["The client is up and running."]);
        assert!(
            run.elapsed < Duration::from_secs(3),
            "{kind}: {:?}",
            run.elapsed
        );
    }
}

/// Runs `program` (args, extra env) with stdin closed to /dev/null, for at most 10 s.
fn run_program(
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    stdout: Stdio,
) -> (Option<i32>, String, String) {
    let dir = tempdir::TempDir::new("prog");
    write_file(dir.path(), b"1\n2\n");
    let mut cmd = Command::new(exe(program));
    cmd.current_dir(dir.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .env_remove("OFFLOAD_LOG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} {envs:?} still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut e = String::new();
    let _ = err.read_to_string(&mut e);
    let mut o = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut o);
    }
    (status.code(), o, e)
}

#[test]
fn settings_out_of_range_stop_every_program_at_start_up() {
    let id = format!("{:03}", free_id());
    let cases: [(&str, &str, &str); 7] = [
        (
            "OFFLOAD_TIMEOUT_MS",
            "18446744073709552",
            "OFFLOAD_TIMEOUT_MS=\"18446744073709552\" must be a whole number of milliseconds from 1 to 3600000",
        ),
        (
            "OFFLOAD_IDLE_MS",
            "0",
            "OFFLOAD_IDLE_MS=\"0\" must be a whole number of milliseconds from 1 to 3600000",
        ),
        (
            "OFFLOAD_MAX_JOBS",
            "100000",
            "OFFLOAD_MAX_JOBS=\"100000\" must be a whole number from 1 to 4096",
        ),
        ("OFFLOAD_GSO", "yes", "OFFLOAD_GSO=\"yes\" must be 0 or 1"),
        (
            "EE450_ID",
            "+10",
            "EE450_ID=\"+10\" must be the last three digits of the student ID, written as three digits (000 to 999)",
        ),
        (
            "EE450_ID",
            "10",
            "EE450_ID=\"10\" must be the last three digits of the student ID, written as three digits (000 to 999)",
        ),
        (
            "EE450_ID",
            "1000",
            "EE450_ID=\"1000\" must be the last three digits of the student ID, written as three digits (000 to 999)",
        ),
    ];
    for (var, value, message) in cases {
        for program in ["client", "aws", "serverA", "serverB", "serverC"] {
            let args: &[&str] = if program == "client" { &["sum"] } else { &[] };
            let mut envs = vec![(var, value)];
            if var != "EE450_ID" {
                envs.push(("EE450_ID", &id));
            }
            let (code, out, err) = run_program(program, args, &envs, Stdio::piped());
            assert!(
                matches!(code, Some(c) if c != 0),
                "{program} {var}={value}: {code:?}"
            );
            assert_eq!(err.trim_end(), format!("{program}: {message}"));
            assert!(out.is_empty(), "{program}: {out}");
        }
    }
}

#[test]
fn a_screen_that_cannot_be_written_is_an_error() {
    let id = format!("{:03}", free_id());
    let full = || Stdio::from(OpenOptions::new().write(true).open("/dev/full").unwrap());
    for (program, args) in [
        ("client", &["sum"][..]),
        ("aws", &[][..]),
        ("serverA", &[][..]),
        ("serverB", &[][..]),
        ("serverC", &[][..]),
    ] {
        let (code, _, err) = run_program(program, args, &[("EE450_ID", &id)], full());
        assert_eq!(code, Some(1), "{program}: {err}");
        assert_eq!(
            err.trim_end(),
            format!("{program}: cannot write to stdout: No space left on device (os error 28)")
        );
    }
    // stdout closed altogether (`./client sum >&-`).
    let dir = tempdir::TempDir::new("closed");
    write_file(dir.path(), b"1\n");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("exec '{}' sum >&-", exe("client").display()))
        .current_dir(dir.path())
        .env("EE450_ID", &id)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "client: stdout is closed: the on-screen lines would be lost"
    );
}

#[test]
fn a_foreign_address_is_not_blamed_on_another_server() {
    let id = format!("{:03}", free_id());
    // 192.0.2.1 (TEST-NET-1) is no interface of this machine.
    for (program, var) in [("serverB", "OFFLOAD_HOST_B"), ("aws", "OFFLOAD_HOST_AWS")] {
        let (code, _, err) = run_program(
            program,
            &[],
            &[("EE450_ID", &id), (var, "192.0.2.1")],
            Stdio::piped(),
        );
        assert_eq!(code, Some(1), "{program}: {err}");
        assert!(err.contains("Cannot assign requested address"), "{err}");
        assert!(
            err.trim_end().ends_with(&format!(
                "(no interface of this machine has that address: check {var})"
            )),
            "{err}"
        );
        assert!(!err.contains("still running"), "{err}");
    }
    // A port in use still points at the other instance.
    let c = Cluster::start_with(&["serverA"], &[]);
    let id = format!("{:03}", c.id);
    let (code, _, err) = run_program("serverA", &[], &[("EE450_ID", &id)], Stdio::piped());
    assert_eq!(code, Some(1));
    assert!(err.contains("(is another serverA still running?)"), "{err}");
}
