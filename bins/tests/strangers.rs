//! A back-end takes jobs only from the AWS's address and UDP port (issue 9 §5): forged
//! data frames with new job ids, from any other address or port, cannot fill its job
//! table, and its debug log tells those strangers apart from the AWS.
mod support;

use offload_core::wire::{emit_data, JobId, MAX_DATAGRAM};
use offload_core::Op;
use std::net::UdpSocket;
use std::time::{Duration, Instant};
use support::*;

#[test]
fn forged_jobs_from_strangers_cannot_fill_a_backend() {
    // Two slots per back-end: two forged jobs would be enough to lock it if it took them.
    let c = Cluster::start_with(&SERVERS, &[("OFFLOAD_JOBS", "2"), ("OFFLOAD_LOG", "debug")]);
    // Strangers: any port on the AWS's address, and the AWS's own port on another address.
    let socks = [
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind(("127.0.0.2", 24000 + c.id)).unwrap(),
    ];
    let mut buf = [0u8; MAX_DATAGRAM];
    const FORGED: u32 = 40;
    for i in 0..FORGED {
        let n = emit_data(&mut buf, JobId(0x1000 + i), 0, Op::Sum, false, &[7]).unwrap();
        for base in [21000u16, 22000, 23000] {
            let sock = &socks[i as usize % socks.len()];
            sock.send_to(&buf[..n], ("127.0.0.1", base + c.id)).unwrap();
        }
    }
    // The back-ends have read them once they log them (bounded wait).
    let servers = ["serverA", "serverB", "serverC"];
    let strangers = |name: &str| {
        c.proc(name)
            .errs()
            .iter()
            .filter(|l| l.contains("from stranger"))
            .count()
    };
    let start = Instant::now();
    while servers.iter().any(|s| strangers(s) < FORGED as usize) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "stranger lines: {:?}",
            servers.map(strangers)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Real jobs still find room at every back-end.
    let xs: Vec<i64> = (1..=30).collect();
    for f in FUNCS {
        let run = c.run(f, &csv(&xs));
        assert_eq!(
            run.stdout,
            client_lines(f, 30, &expect(f, &xs)),
            "{}",
            run.stderr
        );
    }
    for name in servers {
        // The AWS's jobs are logged as finished jobs, with their frame counts (the last
        // job's line may not have been read yet when its client is done: a bounded wait).
        let finished = |e: &[String]| {
            e.iter()
                .filter(|l| {
                    l.contains("complete: 1 frames received, 0 duplicates, 0 out-of-window drops")
                })
                .count()
        };
        let errs = c
            .proc(name)
            .wait_errs(Duration::from_secs(5), |e| finished(e) >= FUNCS.len());
        assert_eq!(strangers(name), FORGED as usize, "{name}: {errs:?}");
        assert_eq!(finished(&errs), FUNCS.len(), "{name}: {errs:?}");
    }
}
