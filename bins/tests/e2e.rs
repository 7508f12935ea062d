//! The whole system on loopback: exact answers and every on-screen line.
mod support;

use support::*;

#[test]
fn seed_example_word_for_word() {
    let c = Cluster::start();
    let id = c.id;
    assert_eq!(
        c.proc("serverA").lines(),
        [format!(
            "The Server A is up and running using UDP on port {}.",
            21000 + id
        )]
    );
    assert_eq!(
        c.proc("serverB").lines(),
        [format!(
            "The Server B is up and running using UDP on port {}.",
            22000 + id
        )]
    );
    assert_eq!(
        c.proc("serverC").lines(),
        [format!(
            "The Server C is up and running using UDP on port {}.",
            23000 + id
        )]
    );
    assert_eq!(c.proc("aws").lines(), ["The AWS is up and running."]);
    // The shipped nums.csv: thirds summing to 1000, 1001 and 1002.
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../nums.csv")).unwrap();
    let xs: Vec<i64> = text.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(xs.len(), 90);
    let parts = thirds(&xs);
    assert_eq!(
        [
            expect("sum", parts[0]),
            expect("sum", parts[1]),
            expect("sum", parts[2])
        ],
        ["1000", "1001", "1002"]
    );
    for f in FUNCS {
        check_job(&c, f, &xs);
    }
    // Any case works for the function name.
    let run = c.run("SuM", text.as_bytes());
    assert_eq!(
        run.stdout.last().unwrap(),
        "The client has received reduction SUM: 3003"
    );
}

#[test]
fn small_counts_split_ceil_first() {
    let c = Cluster::start();
    for n in [1usize, 2, 3, 10, 11] {
        let xs: Vec<i64> = (0..n as i64).map(|i| (i * 37 % 11) - 5).collect();
        for f in FUNCS {
            check_job(&c, f, &xs);
        }
    }
}

#[test]
fn extremes_and_wide_results_are_exact() {
    let c = Cluster::start();
    let mixed = [
        i64::MIN,
        i64::MAX,
        -1,
        0,
        1,
        i64::MIN,
        i64::MIN,
        i64::MAX,
        i64::MAX,
    ];
    for f in FUNCS {
        check_job(&c, f, &mixed);
    }
    // SUM far beyond i64 and SOS beyond 2^128.
    let big = vec![i64::MAX; 30];
    assert!(expect("sos", &big).len() > 39);
    check_job(&c, "sum", &big);
    check_job(&c, "sos", &big);
    let low = vec![i64::MIN; 33];
    check_job(&c, "sum", &low);
    check_job(&c, "sos", &low);
    let mut r = Rng(0x5eed);
    let full: Vec<i64> = (0..3000).map(|_| r.next() as i64).collect();
    for f in FUNCS {
        check_job(&c, f, &full);
    }
}

#[test]
fn three_hundred_thousand_numbers() {
    check_large_jobs(&Cluster::start(), 42, 1_000_000_000);
}

#[test]
fn one_datagram_per_send_without_offload() {
    // OFFLOAD_GSO=0: the path for kernels without UDP segmentation offload.
    let c = Cluster::start_with(&SERVERS, &[("OFFLOAD_GSO", "0")]);
    check_large_jobs(&c, 9, 1_000);
}

#[test]
fn friendly_input_forms() {
    let c = Cluster::start();
    let text = b"  12\t\r\n\n+7\r\n-3  \n\n\t-0\n5";
    let run = c.run("sum", text);
    assert_eq!(run.stdout, client_lines("sum", 5, "21"), "{}", run.stderr);
}
