//! No allocation per number or per datagram in any program: a job of 300,000 numbers
//! (1,650 datagrams per back-end) allocates no more than a job of 3,000, in each of
//! the five processes, as their counting allocators report with OFFLOAD_LOG=debug.
mod support;

use std::time::Duration;
use support::*;

/// The running allocation counts a process logged, in order.
fn counts(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| l.split("allocations so far: ").nth(1))
        .map(|n| n.trim().parse().unwrap())
        .collect()
}

#[test]
fn hot_paths_allocate_nothing_per_number_or_datagram() {
    let c = Cluster::start_with(&SERVERS, &[("OFFLOAD_LOG", "debug")]);
    // Proc::spawn clears OFFLOAD_LOG for the client; pass it explicitly.
    let mut envs = c.envs.clone();
    envs.push(("OFFLOAD_LOG".into(), "debug".into()));
    let mut r = Rng(11);
    let mut client_counts = Vec::new();
    // Warm-up, small, large, small again: per-job deltas of small and large must match.
    for n in [3_000usize, 3_000, 300_000, 3_000] {
        let xs: Vec<i64> = (0..n).map(|_| r.next() as i64).collect();
        let d = tempdir::TempDir::new("alloc");
        write_file(d.path(), &csv(&xs));
        let run = run_client_in(None, d.path(), &["sos"], &envs, Duration::from_secs(60));
        assert_eq!(
            run.stdout,
            client_lines("sos", n, &expect("sos", &xs)),
            "{}",
            run.stderr
        );
        let lines: Vec<String> = run.stderr.lines().map(str::to_string).collect();
        client_counts.push(counts(&lines)[0]);
    }
    // The client is a new process per job: whole-process counts compare directly.
    let (small, large) = (client_counts[1], client_counts[2]);
    eprintln!("client allocations: {client_counts:?}");
    assert!(
        large <= small + 2,
        "client: {small} allocations at 3e3 numbers, {large} at 3e5"
    );
    for name in SERVERS {
        let p = c.proc(name);
        let mut seen = counts(&p.errs());
        for _ in 0..100 {
            if seen.len() >= 4 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            seen = counts(&p.errs());
        }
        assert_eq!(seen.len(), 4, "{name}: {:?}", p.errs());
        let deltas: Vec<u64> = seen.windows(2).map(|w| w[1] - w[0]).collect();
        eprintln!("{name} allocations per job (3e3, 3e5, 3e3): {deltas:?}");
        assert!(
            deltas[1] <= deltas[0] + 2 && deltas[1] <= deltas[2] + 2,
            "{name}: {deltas:?}"
        );
    }
}
