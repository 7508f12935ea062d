//! Bad files and bad command lines: a clear error on stderr, a non-zero exit, nothing
//! sent, servers untouched, and the next good job still exact.
mod support;

use support::*;

fn assert_refused(
    c: &mut Cluster,
    args: &[&str],
    file: Option<&[u8]>,
    stderr_has: &str,
    code: i32,
) -> Run {
    let aws_before = c.proc("aws").lines().len();
    let dir = tempdir::TempDir::new("bad");
    if let Some(bytes) = file {
        write_file(dir.path(), bytes);
    }
    let run = c.run_in(dir.path(), args);
    assert_eq!(run.status.code(), Some(code), "{args:?}: {run:?}");
    assert!(
        run.stderr.contains(stderr_has),
        "{args:?}: stderr {:?} lacks {stderr_has:?}",
        run.stderr
    );
    assert!(run.stderr.starts_with("client: "), "{:?}", run.stderr);
    // Nothing but (at most) the boot line on stdout.
    assert!(run.stdout.len() <= 1, "{:?}", run.stdout);
    if let Some(l) = run.stdout.first() {
        assert_eq!(l, "The client is up and running.");
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(
        c.proc("aws").lines().len(),
        aws_before,
        "the AWS heard from a refused client"
    );
    assert!(c.all_running());
    let good = c.run("sum", b"1\n2\n3\n-10\n");
    assert_eq!(good.stdout, client_lines("sum", 4, "-4"), "{}", good.stderr);
    // The AWS prints its last line after the client has its answer: wait for all nine
    // (three parts), so the next case's count starts after this job on a loaded machine.
    let aws = c
        .proc("aws")
        .wait_lines(aws_before + 9, std::time::Duration::from_secs(10));
    assert_eq!(aws.len(), aws_before + 9, "{aws:?}");
    run
}

#[test]
fn bad_files_are_rejected_before_anything_is_sent() {
    let mut c = Cluster::start();
    let cases: [(&[u8], &str); 9] = [
        (b"1\n2\nabc\n4\n", "nums.csv:3: \"abc\" is not an integer"),
        (
            b"1\n2.5\n",
            "nums.csv:2: \"2.5\" is not written as an integer (no decimal point or exponent)",
        ),
        (
            b"9223372036854775808\n",
            "nums.csv:1: \"9223372036854775808\" is outside the 64-bit signed range",
        ),
        (
            b"5\n-9223372036854775809\n",
            "nums.csv:2: \"-9223372036854775809\" is outside the 64-bit signed range",
        ),
        (b"1,2\n", "nums.csv:1: \"1,2\" holds more than one value"),
        (b"3 4\n", "nums.csv:1: \"3 4\" holds more than one value"),
        (
            b"1\n\x00\x01\xff\n",
            "nums.csv:2: \"\\x00\" contains the non-text byte 0x00 at byte 1",
        ),
        (b"", "nums.csv: no numbers"),
        (b"\n \n\r\n", "nums.csv: no numbers"),
    ];
    for (bytes, msg) in cases {
        assert_refused(&mut c, &["sum"], Some(bytes), msg, 1);
    }
    assert_refused(
        &mut c,
        &["sum"],
        None,
        "cannot read nums.csv: No such file or directory",
        1,
    );
}

#[test]
fn bad_command_lines_print_usage() {
    let mut c = Cluster::start();
    let usage = "usage: ./client <min|max|sum|sos>";
    assert_refused(&mut c, &[], Some(b"1\n"), usage, 2);
    assert_refused(
        &mut c,
        &["avg"],
        Some(b"1\n"),
        "unknown function \"avg\"",
        2,
    );
    assert_refused(&mut c, &["avg"], Some(b"1\n"), usage, 2);
    assert_refused(&mut c, &["sum", "max"], Some(b"1\n"), usage, 2);
}

#[test]
fn bad_environment_is_named() {
    let dir = tempdir::TempDir::new("env");
    write_file(dir.path(), b"1\n");
    let envs = [("EE450_ID".to_string(), "12345".to_string())];
    let run = run_client(
        dir.path(),
        &["sum"],
        &envs,
        std::time::Duration::from_secs(10),
    );
    assert_eq!(run.status.code(), Some(2));
    assert!(
        run.stderr
            .contains("EE450_ID=\"12345\" must be the last three digits"),
        "{}",
        run.stderr
    );
    // Servers refuse arguments: configuration is by environment only.
    let out = std::process::Command::new(exe("serverA"))
        .arg("21319")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("takes no arguments"));
}

#[test]
fn files_checked_in_two_halves_keep_true_line_numbers() {
    let mut c = Cluster::start();
    // Every file is checked by two threads, one half each (split at the first line end
    // past the middle), small ones too.
    for (file, error) in [
        (&b"1\n2\n3\nx\n"[..], "nums.csv:4: \"x\" is not an integer"),
        (b"1\n2\nx\n4\n", "nums.csv:3: \"x\" is not an integer"),
        (b"1\nx\n3\n4\n", "nums.csv:2: \"x\" is not an integer"),
        (b"1\n\n\n\n\n\n\n+\n", "nums.csv:8: \"+\" is not an integer"),
    ] {
        assert_refused(&mut c, &["sum"], Some(file), error, 1);
    }
    // A byte order mark is skipped at the start of the file, and only there.
    let bom = c.run("sum", b"\xef\xbb\xbf5\n6\n7\n");
    assert_eq!(bom.stdout, client_lines("sum", 3, "18"), "{}", bom.stderr);
    assert_refused(
        &mut c,
        &["sum"],
        Some(b"5\n6\n\xef\xbb\xbf7\n"),
        "nums.csv:3:",
        1,
    );
    let n = 1_200_000usize;
    let mut text: Vec<u8> = Vec::with_capacity(n * 8);
    for i in 0..n {
        text.extend_from_slice(format!("{:07}\n", i % 9_999_999).as_bytes());
    }
    let line_at = |text: &mut Vec<u8>, line: usize, what: &[u8; 7]| {
        let at = (line - 1) * 8;
        text[at..at + 7].copy_from_slice(what);
    };
    // An error in the second half only: numbered from the top of the file.
    let mut second = text.clone();
    line_at(&mut second, 1_000_000, b"  12x  ");
    assert_refused(
        &mut c,
        &["sum"],
        Some(&second),
        "nums.csv:1000000: \"12x\" is not an integer",
        1,
    );
    // Errors in both halves: the first one in the file is reported.
    let mut both = second.clone();
    line_at(&mut both, 17, b"1.5    ");
    assert_refused(
        &mut c,
        &["sum"],
        Some(&both),
        "nums.csv:17: \"1.5\" is not written as an integer (no decimal point or exponent)",
        1,
    );
    // A good big file still counts every number once.
    let good = c.run("max", &text);
    assert_eq!(
        good.stdout,
        client_lines("max", n, "1199999"),
        "{}",
        good.stderr
    );
}

/// The client's stderr has exactly the line `client: {msg}`.
fn assert_stderr_line(run: &Run, msg: &str) {
    let want = format!("client: {msg}");
    assert!(
        run.stderr.lines().any(|l| l == want),
        "stderr {:?} lacks the line {want:?}",
        run.stderr
    );
}

#[test]
fn csv_mistakes_are_named_exactly() {
    let mut c = Cluster::start();
    let mut padded = vec![b' '; 126];
    padded.extend_from_slice(b"123");
    padded.extend_from_slice(&[b' '; 100]);
    padded.push(b'\n');
    let mut late_nul = b"7\n".to_vec();
    late_nul.extend_from_slice(b"  12345");
    late_nul.push(0);
    late_nul.extend_from_slice(b"6\n");
    let cases: [(&[u8], &str); 6] = [
        (
            b"5\n1.0\n",
            "nums.csv:2: \"1.0\" is not written as an integer (no decimal point or exponent)",
        ),
        (
            b"1e3\n",
            "nums.csv:1: \"1e3\" is not written as an integer (no decimal point or exponent)",
        ),
        (
            &padded,
            "nums.csv:1: line longer than 128 bytes: \"123\" at bytes 127-129",
        ),
        (
            b"1\n\xef\xbb\xbf2\n",
            "nums.csv:2: \"\\xef\" contains the non-text byte 0xef at byte 1",
        ),
        (
            &late_nul,
            "nums.csv:2: \"12345\\x00\" contains the non-text byte 0x00 at byte 8",
        ),
        (
            b"\xef\xbb",
            "nums.csv:1: \"\\xef\" contains the non-text byte 0xef at byte 1",
        ),
    ];
    for (bytes, msg) in cases {
        let run = assert_refused(&mut c, &["sum"], Some(bytes), msg, 1);
        assert_stderr_line(&run, msg);
    }
}

#[test]
fn endless_lines_fail_at_once_without_a_newline() {
    let mut c = Cluster::start();
    // 100 MB of spaces and no newline: named as blank up to the limit, not "...".
    let spaces = vec![b' '; 100_000_000];
    let dir = tempdir::TempDir::new("spaces");
    write_file(dir.path(), &spaces);
    let msg = "nums.csv:1: line longer than 128 bytes, blank up to byte 129";
    let run = c.run_in(dir.path(), &["max"]);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert_stderr_line(&run, msg);
    drop(dir);
    // A regular file of a terabyte of zero bytes (sparse: nothing is written) is not
    // read to its end: the first byte decides it.
    let dir = tempdir::TempDir::new("zeros");
    std::fs::File::create(dir.path().join("nums.csv"))
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let started = std::time::Instant::now();
    let run = run_client(
        dir.path(),
        &["sum"],
        &c.envs,
        std::time::Duration::from_secs(20),
    );
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert_stderr_line(
        &run,
        "nums.csv:1: \"\\x00\" contains the non-text byte 0x00 at byte 1",
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(c.all_running());
    assert!(c.proc("aws").lines().len() <= 1, "the AWS heard from it");
}

#[test]
fn crlf_long_lines_and_byte_order_marks_are_accepted() {
    let c = Cluster::start();
    // A 128-character number line is accepted with LF and with CRLF alike.
    let value: i64 = -4_611_686_018_427_387_904;
    let text = format!("-{:0>127}", value.unsigned_abs());
    assert_eq!(text.len(), 128);
    for ending in ["\n", "\r\n"] {
        let file = format!("{text}{ending}7{ending}");
        let run = c.run("sum", file.as_bytes());
        let sum = (i128::from(value) + 7).to_string();
        assert_eq!(
            run.stdout,
            client_lines("sum", 2, &sum),
            "{ending:?}: {}",
            run.stderr
        );
    }
    // A UTF-8 byte order mark at the start of the file is skipped.
    let run = c.run("sos", b"\xef\xbb\xbf3\r\n-4\r\n");
    assert_eq!(run.stdout, client_lines("sos", 2, "25"), "{}", run.stderr);
}
