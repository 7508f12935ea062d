//! The real programs over a hostile network: a seeded relay between the AWS and each
//! back-end drops, duplicates, reorders and truncates datagrams in both directions.
mod support;

use offload_core::wire::{field, Frame, JobId, Kind, Values};
use offload_core::Op;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::relay::{side_host, Faults, Relay};
use support::*;

/// A cluster whose AWS reaches each back-end through a relay on 127.0.0.2 (which sends
/// to back-end i from the AWS's port on `side_host(i)`).
fn lossy(faults: Faults, seed: u64, extra: &[(&str, &str)]) -> (Cluster, Vec<Relay>) {
    for _ in 0..20 {
        let id = free_id();
        let relays: Result<Vec<Relay>, _> = [21000u16, 22000, 23000]
            .iter()
            .enumerate()
            .map(|(i, base)| {
                let port = base + id;
                let front: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
                let back: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
                let side: SocketAddr = format!("{}:{}", side_host(i), 24000 + id).parse().unwrap();
                Relay::start(front, back, side, faults, seed * 7 + i as u64)
            })
            .collect();
        let Ok(relays) = relays else { continue };
        let sides: Vec<String> = (0..3).map(side_host).collect();
        let only = [
            ("aws", "OFFLOAD_HOST_A", "127.0.0.2"),
            ("aws", "OFFLOAD_HOST_B", "127.0.0.2"),
            ("aws", "OFFLOAD_HOST_C", "127.0.0.2"),
            ("serverA", "OFFLOAD_HOST_AWS", sides[0].as_str()),
            ("serverB", "OFFLOAD_HOST_AWS", sides[1].as_str()),
            ("serverC", "OFFLOAD_HOST_AWS", sides[2].as_str()),
        ];
        return (Cluster::start_each(id, &SERVERS, extra, &only), relays);
    }
    panic!("no free relay ports");
}

const HOSTILE: Faults = Faults {
    drop: 30,
    dup: 10,
    reorder: 30,
    truncate: 5,
};

#[test]
fn every_case_is_exact_through_loss_duplication_and_reordering() {
    let seed_text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../nums.csv")).unwrap();
    let seed: Vec<i64> = seed_text.lines().map(|l| l.parse().unwrap()).collect();
    let mut r = Rng(77);
    let full: Vec<i64> = (0..3000).map(|_| r.next() as i64).collect();
    let extremes = vec![i64::MIN, i64::MAX, 0, i64::MIN, -1, i64::MAX, 1];
    let cases: Vec<Vec<i64>> = vec![
        seed,
        vec![5],
        vec![-3, 8],
        (1..=10).collect(),
        (1..=11).collect(),
        extremes,
        full,
    ];
    // Each case on its own cluster and relays, all cases at once: these small jobs
    // spend their time waiting on retransmission timers (23 s one after another on
    // one cluster), so side by side they take about a case's time, every job kept.
    std::thread::scope(|s| {
        for (i, xs) in cases.iter().enumerate() {
            s.spawn(move || {
                let (c, _relays) = lossy(HOSTILE, 1 + 10 * i as u64, &[]);
                for f in FUNCS {
                    check_job(&c, f, xs);
                }
            });
        }
    });
}

#[test]
fn large_jobs_are_exact_through_a_hostile_network() {
    let (c, relays) = lossy(HOSTILE, 2, &[]);
    check_large_jobs(&c, 1234, 1_000_000);
    let faulted: u64 = relays
        .iter()
        .map(|r| r.stats.faulted.load(std::sync::atomic::Ordering::SeqCst))
        .sum();
    assert!(faulted > 1000, "the relay injected only {faulted} faults");
}

/// Datagrams sent per distinct data frame, through a relay that only drops.
fn storm_ratio(drop: u64, xs: &[i64]) -> (f64, Duration) {
    let (c, relays) = lossy(
        Faults {
            drop,
            ..Faults::NONE
        },
        3 + drop,
        &[("OFFLOAD_LOG", "debug")],
    );
    let t = Instant::now();
    let run = c.run("sum", &csv(xs));
    let elapsed = t.elapsed();
    // The AWS's counters say where any excess came from (SACK resends or timeouts),
    // should a bound below fail.
    std::thread::sleep(Duration::from_millis(50));
    for line in c.proc("aws").errs() {
        if line.contains("data frames") {
            eprintln!("storm: {drop}% drop: {line}");
        }
    }
    assert_eq!(
        run.stdout,
        client_lines("sum", xs.len(), &expect("sum", xs)),
        "{}",
        run.stderr
    );
    let sent: u64 = relays
        .iter()
        .map(|r| r.stats.data_sent.load(std::sync::atomic::Ordering::SeqCst))
        .sum();
    let unique: usize = relays
        .iter()
        .map(|r| r.stats.unique.lock().unwrap().len())
        .sum();
    (sent as f64 / unique as f64, elapsed)
}

#[test]
fn retransmission_stays_proportionate_to_loss() {
    let mut r = Rng(5);
    let xs: Vec<i64> = (0..300_000).map(|_| r.next() as i64).collect();
    for drop in [0u64, 10, 30] {
        let (ratio, took) = storm_ratio(drop, &xs);
        eprintln!("storm: {drop}% drop: {ratio:.3} data datagrams sent per frame delivered ({took:?} for 300,000 numbers)");
        // Ideal is 1/(1-p); allow twice the excess for lost acks and timer slack.
        let ideal = 1.0 / (1.0 - drop as f64 / 100.0);
        assert!(
            ratio <= 1.0 + 2.0 * (ideal - 1.0) + 0.05,
            "{drop}% drop: ratio {ratio:.3}"
        );
    }
}

#[test]
fn three_million_numbers_at_ten_percent_loss() {
    let mut r = Rng(3);
    let xs: Vec<i64> = (0..3_000_000)
        .map(|_| r.range(-1_000_000, 1_000_000))
        .collect();
    let (_, clean) = storm_ratio(0, &xs);
    let (ratio, lossy) = storm_ratio(10, &xs);
    eprintln!(
        "3e6 numbers: clean {clean:?}, 10% drop {lossy:?} ({:.2}x), {ratio:.3} sends per frame",
        lossy.as_secs_f64() / clean.as_secs_f64()
    );
}

#[test]
fn full_backend_answers_busy_and_recovers() {
    let (mut c, _relays) = lossy(Faults::NONE, 9, &[("OFFLOAD_JOBS", "2")]);
    // Occupy both of server B's slots with jobs that never finish. B takes jobs only
    // from the AWS, so they go through B's relay, which B sees as the AWS.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for job in [11u32, 12] {
        let d = frame(Frame::Data {
            job: JobId(job),
            seq: 0,
            op: Op::Sum,
            last: false,
            ack_now: false,
            values: Values::from_be_bytes(&7i64.to_be_bytes()).unwrap(),
        });
        sock.send_to(&d, ("127.0.0.2", 22000 + c.id)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    let run = c.run("sum", b"1\n2\n3\n");
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("Backend-Server B is busy with other jobs; try again"),
        "{}",
        run.stderr
    );
    assert!(c.all_running());
    // Abort frames free the slots (as the AWS sends for abandoned jobs).
    for job in [11u32, 12] {
        let d = frame(Frame::Abort { job: JobId(job) });
        sock.send_to(&d, ("127.0.0.2", 22000 + c.id)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    let run = c.run("sum", b"1\n2\n3\n");
    assert_eq!(run.stdout, client_lines("sum", 3, "6"), "{}", run.stderr);
}

#[test]
fn full_aws_answers_busy_before_any_number_is_sent() {
    let c = Cluster::start_with(&SERVERS, &[("OFFLOAD_MAX_JOBS", "1")]);
    // A job the AWS accepted and that waits for numbers holds the only place.
    let (_hog, accepted) = request(c.id, Op::Sum, 1000);
    assert!(matches!(accepted, Frame::Accept { .. }), "{accepted:?}");
    let run = c.run("sum", b"1\n2\n3\n");
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("the AWS is busy with other jobs; try again"),
        "{}",
        run.stderr
    );
    // Refused before the numbers: no "has sent 3 numbers" line.
    assert_eq!(
        run.stdout,
        client_lines("sum", 3, "6")[..2],
        "{}",
        run.stderr
    );
}

fn vm_hwm_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn memory_stays_bounded_under_concurrency_and_floods() {
    let c = Cluster::start();
    // Flood every port with forged frames and random bytes while 16 jobs run.
    let id = c.id;
    let flood = std::thread::spawn(move || {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut r = Rng(8);
        for i in 0..20_000u32 {
            let mut d: Vec<u8> = (0..(r.next() % 1500) as usize)
                .map(|_| r.next() as u8)
                .collect();
            if d.len() >= 16 && i % 2 == 0 {
                // A valid header start (magic, version, data kind), forged fields after.
                let h = frame(Frame::Abort { job: JobId(0) });
                d[..field::JOB.start].copy_from_slice(&h[..field::JOB.start]);
                d[field::KIND] = Kind::Data as u8;
            }
            let port = [21000u16, 22000, 23000, 24000][i as usize % 4] + id;
            let _ = sock.send_to(&d, ("127.0.0.1", port));
        }
    });
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let envs = c.envs.clone();
            std::thread::spawn(move || {
                let mut r = Rng(50 + i);
                let xs: Vec<i64> = (0..30_000).map(|_| r.next() as i64).collect();
                let d = tempdir::TempDir::new("mem");
                write_file(d.path(), &csv(&xs));
                let run = run_client(d.path(), &["sos"], &envs, Duration::from_secs(60));
                assert_eq!(
                    run.stdout,
                    client_lines("sos", xs.len(), &expect("sos", &xs)),
                    "{}",
                    run.stderr
                );
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    flood.join().unwrap();
    for name in SERVERS {
        let kb = vm_hwm_kb(c.proc(name).pid());
        eprintln!("VmHWM after 16 concurrent jobs and a 20,000-datagram flood: {name} {kb} kB");
        assert!(kb < 64 * 1024, "{name} peaked at {kb} kB");
    }
}

/// The whole numbers of a debug line, in order, leaving out the trailing seconds:
/// "550 data frames, 612 datagrams, ..., job 0.031 s" gives [550, 612, ...].
fn numbers_in(line: &str) -> Vec<u64> {
    let (counters, _seconds) = line.rsplit_once(", job ").unwrap_or((line, ""));
    counters
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[test]
fn debug_counters_explain_a_lossy_job() {
    let (c, relays) = lossy(
        Faults {
            drop: 10,
            ..Faults::NONE
        },
        41,
        &[("OFFLOAD_LOG", "debug")],
    );
    let mut r = Rng(41);
    let xs: Vec<i64> = (0..54_600).map(|_| r.next() as i64).collect();
    let run = c.run("sum", &csv(&xs));
    assert_eq!(
        run.stdout,
        client_lines("sum", xs.len(), &expect("sum", xs.as_slice()))
    );
    // 54,600 numbers: 18,200 a part, 100 frames of 182 each.
    let counters = |l: &String| l.contains(" server ") && l.contains("data frames");
    let aws_lines: Vec<String> = c
        .proc("aws")
        .wait_errs(Duration::from_secs(5), |e| {
            e.iter().filter(|l| counters(l)).count() == 3
        })
        .into_iter()
        .filter(counters)
        .collect();
    assert_eq!(aws_lines.len(), 3, "{aws_lines:?}");
    let relayed: u64 = relays
        .iter()
        .map(|r| r.stats.data_sent.load(std::sync::atomic::Ordering::SeqCst))
        .sum();
    let mut datagrams = 0;
    for (line, letter) in aws_lines.iter().zip(["A", "B", "C"]) {
        let (_, counters) = line
            .split_once(&format!(" server {letter}: "))
            .unwrap_or_else(|| panic!("{line}"));
        assert!(line.contains("resent") && line.contains("srtt") && line.contains("rto"));
        // frames, datagrams, SACK resends, timeout resends, timeouts, acks, stale acks,
        // srtt, rto.
        let n = numbers_in(counters);
        assert_eq!(n.len(), 9, "{line}");
        assert_eq!(n[0], 100, "{line}");
        // Every datagram is a first send, a resend, or a probe for the result.
        assert!(n[1] >= n[0] + n[2] + n[3], "{line}");
        assert!(n[2] + n[3] > 0, "10% loss and nothing resent? {line}");
        assert!(n[6] <= n[5], "{line}");
        datagrams += n[1];
    }
    // The AWS's count of data datagrams is the relay's.
    assert_eq!(datagrams, relayed);
    // Each back-end logs what it received: 100 distinct frames. (It writes the line before
    // it sends its result, but the harness may not have read it yet: a bounded wait.)
    for name in ["serverA", "serverB", "serverC"] {
        let done = c.proc(name).wait_err("complete: ", Duration::from_secs(5));
        assert!(done.contains("complete: 100 frames received"), "{done}");
    }
}
