//! The client's progress line (issue 12 §2): under a pseudo-terminal, a file of 64 MiB
//! or more gets one line on stderr, redrawn in place and erased at the end, while stdout
//! carries exactly the assignment's lines; a file one byte smaller, or a piped stderr,
//! gets nothing. The pseudo-terminal comes from util-linux `script` (CI installs it).
mod support;

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use support::*;

/// The size from which the line is drawn, as the issue states it.
const THRESHOLD: usize = 64 << 20;
/// What ends every drawing: carriage return, erase the row.
const ERASE: &str = "\r\x1b[2K";

fn have_script() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `./client func` in `dir` with its stderr on a pseudo-terminal and its stdout
/// redirected to a file; returns the exit status, the stdout lines and everything the
/// terminal received (that is, the client's stderr).
fn run_on_terminal(c: &Cluster, dir: &Path, func: &str) -> (ExitStatus, Vec<String>, String) {
    let client = exe("client");
    let cmd = format!("exec '{}' {func} >stdout.txt", client.display());
    let mut script = Command::new("script");
    script
        .args(["-qfec", &cmd, "/dev/null"])
        .current_dir(dir)
        .env_remove("OFFLOAD_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &c.envs {
        script.env(k, v);
    }
    let out = script.output().expect("run script");
    let stdout = std::fs::read_to_string(dir.join("stdout.txt")).unwrap_or_default();
    (
        out.status,
        stdout.lines().map(str::to_string).collect(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Numbers whose file is exactly `THRESHOLD` bytes: lines of varied width, padded
/// with blank lines (skipped by the client) to the byte.
fn threshold_file() -> (Vec<i64>, Vec<u8>) {
    let mut r = Rng(64);
    let mut xs = Vec::new();
    let mut text = Vec::with_capacity(THRESHOLD);
    while text.len() + 40 < THRESHOLD {
        let x = r.range(-1_000_000_000_000, 1_000_000_000_000) >> (r.next() % 40);
        text.extend_from_slice(format!("{x}\n").as_bytes());
        xs.push(x);
    }
    text.resize(THRESHOLD, b'\n');
    (xs, text)
}

#[test]
fn progress_line_on_a_terminal_only_from_64_mib_and_stdout_unchanged() {
    if !have_script() {
        eprintln!("SKIPPED progress test: util-linux `script` is not installed (apt-get install bsdutils)");
        return;
    }
    let c = Cluster::start();
    let (xs, mut text) = threshold_file();
    let want = client_lines("sum", xs.len(), &expect("sum", &xs));
    let dir = tempdir::TempDir::new("progress");
    write_file(dir.path(), &text);

    // Exactly 64 MiB on a terminal: the line, for both passes, each drawing starting
    // with the erase sequence and the whole ending with it.
    let (status, stdout, tty) = run_on_terminal(&c, dir.path(), "sum");
    assert!(status.success(), "{status:?}: {tty:?}");
    assert_eq!(stdout, want);
    assert!(tty.ends_with(ERASE), "not erased at the end: {tty:?}");
    let drawings: Vec<&str> = tty.split(ERASE).filter(|d| !d.is_empty()).collect();
    for label in ["checking", "sending"] {
        assert!(
            drawings.iter().any(|d| d.starts_with(label)),
            "no {label} line in {tty:?}"
        );
    }
    for d in &drawings {
        assert!(
            (d.starts_with("checking nums.csv ") || d.starts_with("sending nums.csv "))
                && d.contains(" / 64.0 MiB ")
                && d.contains(" left")
                && !d.contains('\n'),
            "unexpected drawing {d:?} in {tty:?}"
        );
    }
    eprintln!("progress drawings under a pseudo-terminal: {drawings:?}");

    // The same file piped: stderr stays empty.
    let run = c.run_in(dir.path(), &["sum"]);
    assert_eq!(run.stdout, want, "{}", run.stderr);
    assert_eq!(run.stderr, "", "piped stderr got something");

    // One byte less (the last blank line), on a terminal: nothing drawn.
    text.pop();
    assert_eq!(text.len(), THRESHOLD - 1);
    write_file(dir.path(), &text);
    let (status, stdout, tty) = run_on_terminal(&c, dir.path(), "sum");
    assert!(status.success(), "{status:?}: {tty:?}");
    assert_eq!(stdout, want);
    assert_eq!(tty, "", "drawn below the threshold");
}
