//! The whole system in the core's simulation, with arbitrary numbers, operation, seed,
//! fault rates and a misbehaving back-end. The job must end within bounded simulated
//! time with the answer a one-pass reduction gives, or with the error the trouble
//! explains (a silent back-end: its timeout; a restarted one: lost the job).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use offload_core::dispatch::JobError;
use offload_core::reduce::Accumulator;
use offload_core::sim::{Faults, Outcome, Scenario, Trouble, World};
use offload_core::split::{split, Part};
use offload_core::transfer::MAX_RTO_US;
use offload_core::Op;

#[derive(Arbitrary, Debug)]
struct Input {
    op: u8,
    seed: u64,
    drop: u8,
    duplicate: u8,
    reorder: u8,
    truncate: u8,
    trouble: u8,
    part: u8,
    after: u16,
    latency: u16,
    /// Repeat the numbers to reach larger jobs cheaply.
    repeat: u8,
    numbers: Vec<i64>,
}

/// Window 8, as on a chip; reused between runs, never moved.
static mut WORLD: World<8, 32> = World::new();

fuzz_target!(|input: Input| {
    if input.numbers.is_empty() {
        return;
    }
    let op = Op::ALL[usize::from(input.op % 4)];
    let reps = usize::from(input.repeat % 8) + 1;
    let xs: Vec<i64> = input
        .numbers
        .iter()
        .copied()
        .cycle()
        .take(input.numbers.len() * reps)
        .collect();
    let n = xs.len() as u64;
    let part = Part::ALL[usize::from(input.part % 3)];
    let mut sc = Scenario::new(op, n, input.seed);
    // At most 40% of anything: beyond that a real network is down, not lossy.
    sc.faults = Faults {
        drop: input.drop % 41,
        duplicate: input.duplicate % 41,
        reorder: input.reorder % 41,
        truncate: input.truncate % 41,
    };
    sc.trouble = match input.trouble % 3 {
        0 => Trouble::None,
        1 => Trouble::Silent(part),
        _ => Trouble::Restart {
            part,
            after: u32::from(input.after % 64),
        },
    };
    sc.latency_us = u64::from(input.latency % 20_000) + 1;
    // A back-end is declared silent after so long without progress that a working one
    // times out with a chance under 1 in 10^12. Truncation loses a datagram as surely as a
    // drop, so a round trip succeeds with q = ((1 - drop)(1 - truncate))^2 (13% at 40% of
    // each, ignoring the help of duplicates), and tries come at most one per MAX_RTO
    // (no round trip measured yet): n tries fail together with (1 - q)^n.
    sc.limits.backend_timeout = silent_after(sc.faults);
    sc.deadline_us = 3_600_000_000;
    // SAFETY: libFuzzer runs the target on one thread; WORLD has no other user.
    let world = unsafe { &mut *core::ptr::addr_of_mut!(WORLD) };
    let r = world.run(&sc, xs.iter().copied());
    let mut acc = Accumulator::new(op);
    acc.extend(xs.iter().copied());
    let want = acc.finish();
    let empty = split(n)[part.index()] == 0;
    match (sc.trouble, r.outcome) {
        (_, Outcome::Answer(got)) => {
            assert_eq!(got, want, "{sc:?}");
            assert!(
                !matches!(sc.trouble, Trouble::Silent(p) if p == part && !empty),
                "an answer without a silent back-end's part: {sc:?}"
            );
        }
        (Trouble::Silent(p), Outcome::Failed(JobError::BackendTimeout(q, d))) => {
            assert_eq!((p, d), (q, sc.limits.backend_timeout), "{sc:?}");
        }
        (Trouble::Restart { part: p, .. }, Outcome::Failed(JobError::BackendLost(q))) => {
            assert_eq!(p, q, "{sc:?}");
        }
        (_, other) => panic!("{sc:?}: {other:?} after {} us", r.elapsed_us),
    }
});

/// The back-end timeout for these faults: enough tries at one per `MAX_RTO_US` that all
/// failing has a chance under 1 in 10^12; never under 60 s.
fn silent_after(f: Faults) -> std::time::Duration {
    let keep = |p: u8| 1.0 - f64::from(p) / 100.0;
    let q = (keep(f.drop) * keep(f.truncate)).powi(2);
    let tries = (1e-12f64.ln() / (1.0 - q).ln()).ceil();
    let secs = tries * MAX_RTO_US as f64 / 1e6;
    std::time::Duration::from_secs((secs as u64).max(60))
}
