//! IPv6 (issue 12 §3): the whole system on ::1 with the host settings bare (`::1`) or
//! bracketed (`[::1]`); every function exact, every on-screen line checked
//! (`check_job`). Skips, saying so, on a machine without IPv6. Names that resolve to
//! IPv6, and back-ends of both families at once, are tested in `hosts.rs`, whose
//! namespaces have their own hosts files.
mod support;

use std::time::Duration;
use support::*;

/// The seed's file, N = 10 (split 4/3/3), and 3,000 full-range numbers.
fn cases() -> Vec<Vec<i64>> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../nums.csv")).unwrap();
    let mut r = Rng(6);
    vec![
        text.lines().map(|l| l.parse().unwrap()).collect(),
        (1..=10).map(|i| i * 7 - 30).collect(),
        (0..3000).map(|_| r.next() as i64).collect(),
    ]
}

fn all_exact(c: &Cluster) {
    for xs in &cases() {
        for f in FUNCS {
            check_job(c, f, xs);
        }
    }
}

/// The client's debug line names the AWS address it connected to.
fn client_connects_to(c: &Cluster, want: &str) {
    let mut envs = c.envs.clone();
    envs.push(("OFFLOAD_LOG".into(), "debug".into()));
    let dir = tempdir::TempDir::new("ipv6");
    write_file(dir.path(), b"5\n6\n7\n");
    let run = run_client(dir.path(), &["sum"], &envs, Duration::from_secs(30));
    assert_eq!(run.stdout, client_lines("sum", 3, "18"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(" to {want}")),
        "the client did not connect to {want}: {}",
        run.stderr
    );
}

fn skip_without_ipv6(test: &str) -> bool {
    if has_ipv6() {
        return false;
    }
    eprintln!("SKIPPED {test}: this machine cannot bind ::1 (no IPv6)");
    true
}

#[test]
fn whole_system_on_ipv6_loopback() {
    if skip_without_ipv6("whole_system_on_ipv6_loopback") {
        return;
    }
    let c = Cluster::start_with(
        &SERVERS,
        &[
            ("OFFLOAD_HOST_AWS", "[::1]"),
            ("OFFLOAD_HOST_A", "::1"),
            ("OFFLOAD_HOST_B", "[::1]"),
            ("OFFLOAD_HOST_C", "::1"),
        ],
    );
    all_exact(&c);
    client_connects_to(&c, &format!("[::1]:{}", 25000 + c.id));
}
