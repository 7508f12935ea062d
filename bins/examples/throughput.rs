//! In-memory parse-and-reduce throughput of the core, for `make bench`.
//!
//! Reads the whole file (default `nums.csv`) into memory first, so no I/O is timed, then
//! for each of the four operations times `offload_core::csv::LineReader::feed` over the
//! buffer in 64 KiB chunks (the way the client streams a file) with every number folded
//! into an `offload_core::Accumulator`, and finally all four at once in a single pass (four
//! accumulators). Each figure is the median of `THROUGHPUT_RUNS` runs (default 3).
//!
//! Output, one line per operation and one for all four, as `key=value` pairs that
//! `bins/bench/bench.py` parses:
//!
//! ```text
//! op=SUM bytes=222222222 numbers=30000000 seconds=0.123456 gbps=1.800 value=123
//! op=ALL4 bytes=222222222 numbers=30000000 seconds=0.493827 gbps=0.450
//! ```
//!
//! Run: `cargo run --release -p offload-bins --example throughput -- path/to/nums.csv`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use offload_core::csv::LineReader;
use offload_core::{Accumulator, Op, Reduction};

/// Chunk size handed to the line reader, as a streaming reader would.
const CHUNK: usize = 64 * 1024;

/// Parses the whole buffer once, folding every number into each of `accs`; the first bad
/// line is an error.
fn reduce(data: &[u8], accs: &mut [Accumulator]) -> Result<(), String> {
    let mut reader = LineReader::new();
    let mut sink = |_, v| accs.iter_mut().for_each(|a| a.push(v));
    for chunk in data.chunks(CHUNK) {
        reader.feed(chunk, &mut sink).map_err(|e| e.to_string())?;
    }
    reader.finish(&mut sink).map_err(|e| e.to_string())
}

/// Median seconds of `runs` passes over `data` with one accumulator per op, and the
/// reductions of the last pass.
fn time_ops(data: &[u8], ops: &[Op], runs: usize) -> Result<(f64, Vec<Reduction>), String> {
    let mut times = Vec::with_capacity(runs);
    let mut last = Vec::new();
    for _ in 0..runs {
        let mut accs: Vec<Accumulator> = ops.iter().map(|&op| Accumulator::new(op)).collect();
        let start = Instant::now();
        reduce(std::hint::black_box(data), &mut accs)?;
        times.push(start.elapsed().as_secs_f64());
        last = std::hint::black_box(accs)
            .iter()
            .map(Accumulator::finish)
            .collect();
    }
    Ok((median(times), last))
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().unwrap_or(0.0)
}

fn main() -> ExitCode {
    let path = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("nums.csv"), PathBuf::from);
    let runs = std::env::var("THROUGHPUT_RUNS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("throughput: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let bytes = data.len();
    let gbps = |secs: f64| {
        if secs > 0.0 {
            bytes as f64 / secs / 1e9
        } else {
            0.0
        }
    };
    let mut jobs: Vec<(String, Vec<Op>)> = Op::ALL
        .iter()
        .map(|&op| (op.name().to_owned(), vec![op]))
        .collect();
    jobs.push(("ALL4".to_owned(), Op::ALL.to_vec()));
    for (label, ops) in jobs {
        let (secs, results) = match time_ops(&data, &ops, runs) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("throughput: {}:{e}", path.display());
                return ExitCode::FAILURE;
            }
        };
        let numbers = results.first().map_or(0, |r| r.count);
        let value = match results.as_slice() {
            [only] => format!(" value={}", only.value),
            _ => String::new(),
        };
        println!(
            "op={label} bytes={bytes} numbers={numbers} seconds={secs:.6} gbps={:.3}{value}",
            gbps(secs)
        );
    }
    ExitCode::SUCCESS
}
