//! In-memory parse-and-reduce throughput of the core, for `make bench`.
//!
//! Reads each file named on the command line into memory first, so no I/O is timed (with
//! no file named, it makes two in memory: 10,000,000 lines in [-1e6, 1e6] and 5,000,000
//! full-range `i64` lines, from a fixed seed). Then for each of the four operations it
//! times `offload_core::csv::LineReader::feed_reduce` over the buffer in 64 KiB chunks
//! (the way the client streams a file), which folds every number into an
//! `offload_core::Accumulator` inside the parse loop; then all four at once in a single pass (four
//! accumulators), the parse alone (every value made, xored into one), and the check alone
//! (`LineReader::feed_check`: lines checked and counted, no values, as the client's checking
//! pass does). `seconds` is wall time; `cpu_seconds` is the time the thread was on a CPU
//! (Linux only), which a busy machine does not inflate. Each figure is the best (fastest)
//! of `THROUGHPUT_RUNS` runs (default 5), as every timing of `make bench` is: noise on a
//! shared machine only ever adds time; `median_seconds` is the median, for comparison.
//! The runs are taken round the operations (one run of each, then the next) so that a
//! busy spell hits all alike; `THROUGHPUT_OPS=PARSE,SUM` runs only the
//! jobs named (for profiling).
//!
//! Output, one line per operation and data set, as `key=value` pairs that
//! `bins/bench/bench.py` parses:
//!
//! ```text
//! op=SUM data=nums.csv bytes=222222222 lines=30000000 numbers=30000000 seconds=0.123456 gbps=1.800 ns_per_line=4.12 lines_per_s=243000000 median_seconds=0.125000 cpu_seconds=0.120000 cpu_gbps=1.852 value=123
//! op=ALL4 data=nums.csv bytes=222222222 lines=30000000 numbers=30000000 seconds=0.493827 gbps=0.450 ns_per_line=16.46 lines_per_s=60750000 median_seconds=0.500000 cpu_seconds=0.480000 cpu_gbps=0.463
//! ```
//!
//! Run: `cargo run --release -p offload-bins --example throughput -- [path/to/nums.csv ...]`.

use std::process::ExitCode;
use std::time::Instant;

use offload_core::csv::LineReader;
use offload_core::{Accumulator, Op};

/// Chunk size handed to the line reader, as a streaming reader would.
const CHUNK: usize = 64 * 1024;

/// Parses the whole buffer once, handing every number to `sink`; returns the lines read.
/// The first bad line is an error.
fn parse<F: FnMut(i64)>(data: &[u8], mut sink: F) -> Result<u64, String> {
    let mut reader = LineReader::new();
    for chunk in data.chunks(CHUNK) {
        reader
            .feed(chunk, |_, v| sink(v))
            .map_err(|e| e.to_string())?;
    }
    reader.finish(|_, v| sink(v)).map_err(|e| e.to_string())?;
    Ok(reader.lines())
}

/// What one pass computes.
#[derive(Clone, Copy)]
enum Job {
    One(Op),
    AllFour,
    ParseOnly,
    CheckOnly,
}

impl Job {
    fn label(self) -> &'static str {
        match self {
            Job::One(op) => op.name(),
            Job::AllFour => "ALL4",
            Job::ParseOnly => "PARSE",
            Job::CheckOnly => "CHECK",
        }
    }
}

/// One pass: lines read, numbers, and the reduction (for one operation).
fn pass(data: &[u8], job: Job) -> Result<(u64, u64, Option<String>), String> {
    match job {
        Job::One(op) => {
            let mut acc = Accumulator::new(op);
            let mut reader = LineReader::new();
            for chunk in data.chunks(CHUNK) {
                reader
                    .feed_reduce(chunk, &mut acc)
                    .map_err(|e| e.to_string())?;
            }
            reader.finish_reduce(&mut acc).map_err(|e| e.to_string())?;
            let lines = reader.lines();
            let r = acc.finish();
            Ok((lines, r.count, Some(r.value.to_string())))
        }
        Job::AllFour => {
            let mut accs = Op::ALL.map(Accumulator::new);
            let lines = parse(data, |v| accs.iter_mut().for_each(|a| a.push(v)))?;
            Ok((lines, accs[0].finish().count, None))
        }
        Job::ParseOnly => {
            // Every value is used (xored into one), or the compiler drops their making
            // and the pass only checks the lines: then it measured 1.75 GB/s here, where
            // making the values too takes the time of a SUM.
            let (mut n, mut x) = (0u64, 0i64);
            let lines = parse(data, |v| {
                n += 1;
                x ^= v;
            })?;
            Ok((lines, n, Some(std::hint::black_box(x).to_string())))
        }
        Job::CheckOnly => {
            let mut reader = LineReader::new();
            for chunk in data.chunks(CHUNK) {
                reader.feed_check(chunk).map_err(|e| e.to_string())?;
            }
            reader.finish(|_, _| {}).map_err(|e| e.to_string())?;
            Ok((reader.lines(), reader.numbers(), None))
        }
    }
}

/// Nanoseconds this thread has run on a CPU (Linux's schedstat), so that time spent
/// waiting for a CPU on a busy machine is not counted; `None` where there is none.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().unwrap_or(0.0)
}

fn best(times: &[f64]) -> f64 {
    times.iter().copied().fold(f64::INFINITY, f64::min)
}

/// xorshift64*, for the generated data sets.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// `lines` numbers, one per line, each from `value`.
fn generate(lines: usize, mut value: impl FnMut(&mut u64) -> i64) -> Vec<u8> {
    use std::io::Write;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::with_capacity(lines * 21);
    for _ in 0..lines {
        let _ = writeln!(out, "{}", value(&mut state));
    }
    out
}

fn main() -> ExitCode {
    let runs = std::env::var("THROUGHPUT_RUNS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    let mut sets: Vec<(String, Vec<u8>)> = Vec::new();
    for path in std::env::args_os().skip(1) {
        match std::fs::read(&path) {
            Ok(d) => sets.push((path.to_string_lossy().into_owned(), d)),
            Err(e) => {
                eprintln!("throughput: {}: {e}", path.to_string_lossy());
                return ExitCode::FAILURE;
            }
        }
    }
    if sets.is_empty() {
        let uniform = generate(10_000_000, |s| (next(s) % 2_000_001) as i64 - 1_000_000);
        let full = generate(5_000_000, |s| next(s) as i64);
        sets.push(("generated-uniform-1e6".to_owned(), uniform));
        sets.push(("generated-full-i64".to_owned(), full));
    }
    let mut jobs: Vec<Job> = Op::ALL.iter().map(|&op| Job::One(op)).collect();
    jobs.push(Job::AllFour);
    jobs.push(Job::ParseOnly);
    jobs.push(Job::CheckOnly);
    if let Ok(only) = std::env::var("THROUGHPUT_OPS") {
        // For profiling one job at a time, e.g. THROUGHPUT_OPS=PARSE,SUM.
        jobs.retain(|j| only.split(',').any(|o| o.eq_ignore_ascii_case(j.label())));
    }
    for (name, data) in &sets {
        let bytes = data.len();
        // The runs go round the jobs (each job's first run, then each one's second, ...),
        // so a busy spell of this shared machine slows every job alike instead of all
        // runs of one (a run with one job at a time read MIN 0.80 GB/s, MAX 1.20).
        let mut times = vec![Vec::with_capacity(runs); jobs.len()];
        let mut cpu_times = vec![Vec::with_capacity(runs); jobs.len()];
        let mut last = vec![(0, 0, None); jobs.len()];
        for _ in 0..runs {
            for (i, &job) in jobs.iter().enumerate() {
                let cpu_start = cpu_ns();
                let start = Instant::now();
                match pass(std::hint::black_box(data), job) {
                    Ok(r) => last[i] = std::hint::black_box(r),
                    Err(e) => {
                        eprintln!("throughput: {name}:{e}");
                        return ExitCode::FAILURE;
                    }
                }
                times[i].push(start.elapsed().as_secs_f64());
                if let (Some(a), Some(b)) = (cpu_start, cpu_ns()) {
                    cpu_times[i].push(b.saturating_sub(a) as f64 / 1e9);
                }
            }
        }
        for (i, &job) in jobs.iter().enumerate() {
            let wall = std::mem::take(&mut times[i]);
            let secs = best(&wall).max(1e-9);
            let med = median(wall).max(1e-9);
            let cpu_runs = std::mem::take(&mut cpu_times[i]);
            let cpu = if cpu_runs.len() == runs {
                let c = best(&cpu_runs).max(1e-9);
                format!(" cpu_seconds={c:.6} cpu_gbps={:.3}", bytes as f64 / c / 1e9)
            } else {
                String::new()
            };
            let (lines, numbers, value) = std::mem::take(&mut last[i]);
            let value = value.map(|v| format!(" value={v}")).unwrap_or_default();
            println!(
                "op={} data={name} bytes={bytes} lines={lines} numbers={numbers} \
                 seconds={secs:.6} gbps={:.3} ns_per_line={:.2} lines_per_s={:.0} \
                 median_seconds={med:.6}{cpu}{value}",
                job.label(),
                bytes as f64 / secs / 1e9,
                secs * 1e9 / lines.max(1) as f64,
                lines as f64 / secs,
            );
        }
    }
    ExitCode::SUCCESS
}
