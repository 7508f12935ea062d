extern crate std;

use super::*;
use crate::wide::I192;
use std::boxed::Box;
use std::vec::Vec;

type TestWorld = World<8, 64>;

fn world() -> Box<TestWorld> {
    Box::new(World::new())
}

/// The exact answer by a separate, plain implementation (not the core's Accumulator):
/// i128 for SUM, a 192-bit (u128, u64) pair for SOS.
fn reference(op: Op, xs: &[i64]) -> I192 {
    match op {
        Op::Min => I192::from_i64(*xs.iter().min().unwrap()),
        Op::Max => I192::from_i64(*xs.iter().max().unwrap()),
        Op::Sum => I192::from_i128(xs.iter().map(|&x| i128::from(x)).sum()),
        Op::Sos => {
            let (mut lo, mut hi) = (0u128, 0u64);
            for &x in xs {
                let a = u128::from(x.unsigned_abs());
                let (s, carry) = lo.overflowing_add(a * a);
                lo = s;
                hi += u64::from(carry);
            }
            I192::from_parts(lo, hi)
        }
    }
}

/// xorshift, separate from the simulation's own generator.
fn numbers(seed: u64, n: usize, shift: u32) -> Vec<i64> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s as i64) >> shift
        })
        .collect()
}

fn answer(w: &mut TestWorld, sc: &Scenario, xs: &[i64]) -> Report {
    let r = w.run(sc, xs.iter().copied());
    let want = Reduction {
        op: sc.op,
        count: xs.len() as u64,
        value: reference(sc.op, xs),
    };
    assert_eq!(r.outcome, Outcome::Answer(want), "{sc:?}: {r:?}");
    r
}

#[test]
fn the_seed_example() {
    let text = include_str!("../../../nums.csv");
    let xs: Vec<i64> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(xs.len(), 90);
    let mut w = world();
    for op in Op::ALL {
        let r = answer(&mut w, &Scenario::new(op, 90, 1), &xs);
        // Table 7: received, three sent, three results, reduced, answered.
        assert_eq!(r.lines, 9);
    }
    let r = answer(&mut w, &Scenario::new(Op::Sum, 90, 2), &xs);
    assert_eq!(
        r.parts.map(|p| p.map(|p| p.value)),
        [1000, 1001, 1002].map(|v| Some(I192::from_i64(v)))
    );
    assert_eq!(r.sent, [1, 1, 1], "one frame per part, nothing resent");
}

#[test]
fn small_counts_split_ceil_first() {
    let mut w = world();
    for n in [1usize, 2, 3, 10, 11] {
        let xs: Vec<i64> = (0..n as i64).map(|i| (i * 37 % 11) - 5).collect();
        for op in Op::ALL {
            let r = answer(&mut w, &Scenario::new(op, n as u64, n as u64), &xs);
            let live = n.min(3) as u32;
            assert_eq!(r.lines, 3 + 2 * live, "n = {n}: empty parts have no lines");
            let counts = r.parts.map(|p| p.map_or(0, |p| p.count));
            let want = crate::split::split(n as u64);
            assert_eq!(counts, want);
        }
    }
}

#[test]
fn full_range_sos_and_sum_are_exact() {
    let mut xs = numbers(7, if cfg!(miri) { 200 } else { 3000 }, 0);
    xs.extend([i64::MIN, i64::MAX, i64::MIN, 0, -1]);
    let mut w = world();
    for op in Op::ALL {
        answer(&mut w, &Scenario::new(op, xs.len() as u64, 3), &xs);
    }
    // SOS beyond 2^128.
    assert!(reference(Op::Sos, &xs) > I192::from_parts(u128::MAX, 0));
}

#[test]
fn thirty_thousand_numbers_through_loss() {
    // Miri's short job (600 numbers: parts of two frames, done before any round trip is
    // measured) runs natively too, so a change that only it would catch shows here.
    let sizes: &[usize] = if cfg!(miri) { &[600] } else { &[600, 30_000] };
    let mut w = world();
    for (&n, (loss, seed)) in sizes
        .iter()
        .flat_map(|n| core::iter::repeat(n).zip([(0u8, 5u64), (10, 6), (30, 7)]))
    {
        let xs = numbers(11, n, 20);
        let mut sc = Scenario::new(Op::Sos, n as u64, seed);
        sc.faults = Faults {
            drop: loss,
            duplicate: loss / 3,
            reorder: loss,
            truncate: loss / 6,
        };
        let r = answer(&mut w, &sc, &xs);
        let frames: u64 = r.stats.iter().map(|s| s.frames).sum();
        let sent: u64 = r.sent.iter().sum();
        if loss == 0 {
            assert_eq!(sent, frames, "nothing resent on a perfect network");
        } else {
            assert!(sent > frames, "{loss}%: losses were recovered by resending");
        }
        // Time jumps: a bounded number of steps per frame, whatever the timers.
        assert!(r.steps < frames * 40 + 1000, "{loss}%: {} steps", r.steps);
    }
}

#[test]
fn a_silent_back_end_is_named_after_the_timeout() {
    let n = if cfg!(miri) { 600 } else { 3000 };
    let xs = numbers(3, n, 0);
    let mut w = world();
    let mut sc = Scenario::new(Op::Max, n as u64, 9);
    sc.trouble = Trouble::Silent(Part::C);
    sc.faults = Faults::loss(10);
    let r = w.run(&sc, xs.iter().copied());
    assert_eq!(
        r.outcome,
        Outcome::Failed(JobError::BackendTimeout(Part::C, sc.limits.backend_timeout))
    );
    // Told one timeout after C went silent (it never spoke), not later.
    assert!(
        r.elapsed_us >= 1_000_000 && r.elapsed_us < 1_100_000,
        "{r:?}"
    );
    // And without ticking through that second.
    assert!(r.steps < 2000, "{r:?}");
}

#[test]
fn a_back_end_that_restarts_loses_the_job() {
    let n = if cfg!(miri) { 2000 } else { 30_000 };
    let xs = numbers(4, n, 0);
    let mut w = world();
    let mut sc = Scenario::new(Op::Sum, n as u64, 10);
    // B's part is 4 frames at n = 2000 (Miri) and 55 at 30,000: it restarts on the
    // third data datagram it takes, mid-part at either size.
    sc.trouble = Trouble::Restart {
        part: Part::B,
        after: 2,
    };
    let r = w.run(&sc, xs.iter().copied());
    assert_eq!(r.outcome, Outcome::Failed(JobError::BackendLost(Part::B)));
    // Well before the back-end timeout.
    assert!(r.elapsed_us < 1_000_000, "{r:?}");
    // The same world runs the next job exactly.
    answer(&mut w, &Scenario::new(Op::Sum, n as u64, 11), &xs);
}

#[test]
fn a_short_stream_is_a_protocol_violation() {
    let xs = numbers(5, 100, 0);
    let mut w = world();
    // The client announces 500 numbers and has only 100.
    let r = w.run(&Scenario::new(Op::Min, 500, 1), xs.iter().copied());
    assert!(
        matches!(r.outcome, Outcome::Failed(JobError::ClientViolation(_))),
        "{r:?}"
    );
}

#[test]
fn a_world_is_built_in_place() {
    // `const fn new`: a static holds the whole system, as on a microcontroller.
    static EMPTY: World<2, 4> = World::new();
    assert!(EMPTY.held.is_none());
    // Window 8, 16 replies in flight: the whole system in under 64 KiB.
    assert!(core::mem::size_of::<World<8, 16>>() < 60 * 1024);
}
