//! The AWS's side of the protocol over the real programs: the accept handshake, idle
//! connections, abandoned jobs (withheld last frames, aborts), signals while it reads a
//! client, and a back-end that restarts mid-job.
mod support;

use offload_core::wire::{ErrorCode, Frame};
use offload_core::Op;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Sends `xs` as data frames, the last one flagged.
fn send_numbers(s: &mut TcpStream, op: Op, first_seq: u32, xs: &[i64], last: bool) -> u32 {
    let chunks: Vec<&[i64]> = xs.chunks(182).collect();
    for (i, c) in chunks.iter().enumerate() {
        let is_last = last && i + 1 == chunks.len();
        s.write_all(&data_frame(first_seq + i as u32, op, is_last, c))
            .unwrap();
    }
    first_seq + chunks.len() as u32
}

fn answer(s: &mut TcpStream) -> Frame<'static> {
    let b = read_frame(s);
    match Frame::parse(&b).unwrap() {
        Frame::Result {
            job,
            epoch,
            op,
            count,
            value,
        } => Frame::Result {
            job,
            epoch,
            op,
            count,
            value,
        },
        Frame::Error { job, code, arg } => Frame::Error { job, code, arg },
        other => panic!("{other:?}"),
    }
}

#[test]
fn idle_connections_neither_hold_jobs_nor_stay_open() {
    let c = Cluster::start_with(&SERVERS, &[("OFFLOAD_REQUEST_TIMEOUT_MS", "2000")]);
    let addr = ("127.0.0.1", 25000 + c.id);
    // More idle connections than OFFLOAD_MAX_JOBS (64): none of them is a job.
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let run = c.run("sum", b"1\n2\n3\n");
    assert_eq!(run.stdout, client_lines("sum", 3, "6"), "{}", run.stderr);
    // Served before any idle connection timed out.
    assert!(
        t.elapsed() < Duration::from_millis(1900),
        "{:?}",
        t.elapsed()
    );
    // Each idle connection is closed by the AWS after the request timeout.
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 16];
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
    }
    assert!(
        t.elapsed() >= Duration::from_millis(1800),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn an_abandoned_job_finishes_on_no_screen() {
    let c = Cluster::start();
    let (mut s, accepted) = request(c.id, Op::Sum, 1000);
    let Frame::Accept { job } = accepted else {
        panic!("{accepted:?}")
    };
    // 910 of 1000 numbers: parts A (334) and B (333) are complete but for the last
    // frames the AWS withholds until the client's last frame.
    send_numbers(&mut s, Op::Sum, 0, &[7; 910], false);
    std::thread::sleep(Duration::from_millis(300));
    drop(s);
    let line = c.proc("aws").wait_err("abandoned", Duration::from_secs(10));
    assert!(
        line.contains(&format!("job {job}"))
            && line.ends_with("abandoned: client closed after 910 of 1000 numbers"),
        "{line}"
    );
    std::thread::sleep(Duration::from_millis(300));
    for name in SERVERS {
        assert_eq!(
            c.proc(name).lines().len(),
            1,
            "{name}: {:?}",
            c.proc(name).lines()
        );
    }
    // The back-ends were told to forget it; the next job is exact.
    check_job(&c, "sum", &(1..=1000).collect::<Vec<i64>>());
}

#[test]
fn stopping_the_aws_while_it_reads_a_client_loses_nothing() {
    let c = Cluster::start();
    let aws = c.proc("aws").pid();
    let mut r = Rng(450);
    for round in 0..5 {
        let xs: Vec<i64> = (0..100_000).map(|_| r.next() as i64 >> 8).collect();
        let (mut s, accepted) = request(c.id, Op::Sos, xs.len() as u64);
        assert!(matches!(accepted, Frame::Accept { .. }), "{accepted:?}");
        let half = xs.len() / 2;
        let seq = send_numbers(&mut s, Op::Sos, 0, &xs[..half], false);
        // Ctrl-Z and fg while the AWS is in the middle of the stream.
        signal(aws, "-STOP");
        std::thread::sleep(Duration::from_millis(300));
        signal(aws, "-CONT");
        send_numbers(&mut s, Op::Sos, seq, &xs[half..], true);
        match answer(&mut s) {
            Frame::Result { count, value, .. } => {
                assert_eq!(count, xs.len() as u64, "round {round}");
                assert_eq!(value.to_string(), expect("sos", &xs), "round {round}");
            }
            other => panic!("round {round}: {other:?}; aws: {:?}", c.proc("aws").errs()),
        }
    }
    assert!(!c.proc("aws").errs().iter().any(|l| l.contains("abandoned")));
}

#[test]
fn a_back_end_that_restarts_mid_job_is_named_as_such() {
    let mut c = Cluster::start_with(&SERVERS, &[("OFFLOAD_TIMEOUT_MS", "30000")]);
    let aws = c.proc("aws").pid();
    let xs: Vec<i64> = (1..=30_000).collect();
    let (mut s, accepted) = request(c.id, Op::Sum, xs.len() as u64);
    let Frame::Accept { job } = accepted else {
        panic!("{accepted:?}")
    };
    // All of A's part but its last frame, and the start of B's.
    let seq = send_numbers(&mut s, Op::Sum, 0, &xs[..10_920], false);
    std::thread::sleep(Duration::from_millis(300));
    // Hold the AWS still while B dies and a new B (a new epoch) takes its port.
    signal(aws, "-STOP");
    c.proc_mut("serverB").stop();
    let b = Proc::spawn("serverB", &c.envs, c.dir.path());
    b.wait_lines(1, Duration::from_secs(10));
    signal(aws, "-CONT");
    let t = Instant::now();
    send_numbers(&mut s, Op::Sum, seq, &xs[10_920..], true);
    let got = answer(&mut s);
    assert_eq!(
        got,
        Frame::Error {
            job,
            code: ErrorCode::BackendLost,
            arg: 1
        }
    );
    // Told long before the 30 s silence limit.
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let line = c.proc("aws").wait_err("abandoned", Duration::from_secs(5));
    assert!(
        line.ends_with("abandoned: Backend-Server B lost the job (it restarted)"),
        "{line}"
    );
    // A and C may or may not finish their parts before the AWS learns of B: let their
    // lines (if any) come out before the next job is checked.
    std::thread::sleep(Duration::from_millis(500));
    c.procs.retain(|p| p.name != "serverB");
    c.procs.push(b);
    check_job(&c, "sum", &xs);
}
