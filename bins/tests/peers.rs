//! Dead, slow and hostile peers, and many clients at once.
mod support;

use offload_core::wire::{field, Frame, JobId};
use offload_core::Op;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use support::*;

#[test]
fn no_aws_fails_at_once_naming_the_address() {
    let id = free_id();
    let dir = tempdir::TempDir::new("noaws");
    write_file(dir.path(), b"1\n2\n3\n");
    let envs = [("EE450_ID".to_string(), format!("{id:03}"))];
    let run = run_client(dir.path(), &["sum"], &envs, Duration::from_secs(10));
    assert_eq!(run.status.code(), Some(1));
    assert!(
        run.stderr
            .contains(&format!("cannot reach the AWS at 127.0.0.1:{}", 25000 + id)),
        "{}",
        run.stderr
    );
    assert!(run.elapsed < Duration::from_secs(5));
}

#[test]
fn dead_backend_is_named_in_bounded_time_and_recovery_is_exact() {
    let mut c = Cluster::start_with(
        &["serverA", "serverC", "aws"],
        &[("OFFLOAD_TIMEOUT_MS", "1500")],
    );
    let xs: Vec<i64> = (1..=30).collect();
    let run = c.run("sum", &csv(&xs));
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(
        run.stderr.contains("Backend-Server B did not answer"),
        "{}",
        run.stderr
    );
    assert!(
        run.elapsed < Duration::from_secs(8),
        "took {:?}",
        run.elapsed
    );
    // The client printed what it did before the failure, and no answer.
    assert_eq!(run.stdout.len(), 3);
    assert!(c.all_running());
    // B comes back: the next job is exact.
    let b = Proc::spawn("serverB", &c.envs, c.dir.path());
    b.wait_lines(1, Duration::from_secs(5));
    c.procs.push(b);
    let run = c.run("sum", &csv(&xs));
    assert_eq!(run.stdout, client_lines("sum", 30, "465"), "{}", run.stderr);
}

#[test]
fn silent_dying_and_garbage_clients_do_not_block_others() {
    let mut c = Cluster::start_with(&SERVERS, &[("OFFLOAD_IDLE_MS", "1000")]);
    let addr = format!("127.0.0.1:{}", 25000 + c.id);
    // Connects and says nothing.
    let _silent = TcpStream::connect(&addr).unwrap();
    // Sends garbage.
    let mut garbage = TcpStream::connect(&addr).unwrap();
    garbage.write_all(&[0x55; 4000]).unwrap();
    // Announces 1,000,000 numbers, sends one frame's worth, and dies.
    {
        let mut dying = TcpStream::connect(&addr).unwrap();
        let req = frame(Frame::Request {
            job: JobId(0),
            op: Op::Sum,
            total: 1_000_000,
        });
        dying.write_all(&req).unwrap();
        dying
            .write_all(&data_frame(0, Op::Sum, false, &[5, 6]))
            .unwrap();
    }
    // A good job is served at once all the same.
    let t = Instant::now();
    let run = c.run("max", b"4\n-9\n17\n3\n");
    assert_eq!(run.stdout, client_lines("max", 4, "17"), "{}", run.stderr);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // The garbage client is dropped; the silent one is dropped after the idle limit.
    let mut buf = [0u8; 64];
    garbage
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(matches!(garbage.read(&mut buf), Ok(0) | Err(_)));
    std::thread::sleep(Duration::from_millis(1500));
    let errs = c.proc("aws").errs().join("\n");
    assert!(errs.contains("sent no valid request"), "{errs}");
    assert!(errs.contains("closed after 2 of 1000000 numbers"), "{errs}");
    assert!(c.all_running());
    // Stdout of the AWS carries only its boot line and the good job's lines.
    assert_eq!(c.proc("aws").lines().len(), 1 + 9);
}

#[test]
fn garbage_datagrams_at_every_port_are_harmless() {
    let mut c = Cluster::start();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut r = Rng(99);
    let ports = [21000u16, 22000, 23000, 24000].map(|p| p + c.id);
    for i in 0..2000u32 {
        let len = (r.next() % 1600) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
        if i % 3 == 0 && d.len() >= 16 {
            // Valid header, forged fields: random kinds, job ids, counts.
            let h = frame(Frame::Abort { job: JobId(0) });
            d[..field::KIND].copy_from_slice(&h[..field::KIND]);
            d[field::KIND] = (r.next() % 8) as u8;
        }
        let _ = sock.send_to(&d, ("127.0.0.1", ports[i as usize % 4]));
    }
    let run = c.run("sos", b"1\n2\n3\n4\n5\n6\n");
    assert_eq!(run.stdout, client_lines("sos", 6, "91"), "{}", run.stderr);
    assert!(c.all_running());
}

#[test]
fn sixteen_clients_at_once_all_exact() {
    let c = Cluster::start();
    let funcs = ["min", "max", "sum", "sos"];
    let jobs: Vec<(String, Vec<i64>)> = (0..16)
        .map(|i| {
            let mut r = Rng(1000 + i as u64);
            let n = [1usize, 2, 30, 999, 10_000, 30_000][i % 6];
            let xs = (0..n)
                .map(|_| (r.next() as i64) >> ((i % 3) * 20))
                .collect();
            (funcs[i % 4].to_string(), xs)
        })
        .collect();
    let dirs: Vec<tempdir::TempDir> = jobs
        .iter()
        .map(|(_, xs)| {
            let d = tempdir::TempDir::new("many");
            write_file(d.path(), &csv(xs));
            d
        })
        .collect();
    let handles: Vec<_> = jobs
        .iter()
        .zip(&dirs)
        .map(|((f, _), d)| {
            let (f, p, envs) = (f.clone(), d.path().to_path_buf(), c.envs.clone());
            std::thread::spawn(move || run_client(&p, &[&f], &envs, Duration::from_secs(60)))
        })
        .collect();
    for ((f, xs), h) in jobs.iter().zip(handles) {
        let run = h.join().unwrap();
        assert_eq!(
            run.stdout,
            client_lines(f, xs.len(), &expect(f, xs)),
            "{}",
            run.stderr
        );
    }
    // Every AWS line stays whole: each is one of Table 7's forms.
    for l in c.proc("aws").lines() {
        assert!(
            l.starts_with("The AWS ") && !l[1..].contains("The AWS"),
            "{l}"
        );
    }
}
