//! The whole system on the chip: client, AWS role and three back-ends, all four
//! operations, the seed example and a seeded 30,000-number full-range job at 10% loss.
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use offload_core::csv::LineReader;
use offload_core::dispatch::Dispatch;
use offload_core::sim::{Faults, Outcome, Report, Scenario, World};
use offload_core::wire::MAX_VALUES;
use offload_core::{Accumulator, Op};
use offload_mcu::expected::{Expect, FULL_JOB, FULL_N, FULL_SEED, SEED_JOB, SEED_NUMBERS};
use offload_mcu::rng::SplitMix64;
use offload_mcu::{check, finish, meter, report, NUMS_CSV, WINDOW};

const W: usize = WINDOW;
/// Replies in flight at once on the simulated links.
const IN_FLIGHT: usize = 16;
/// Loss on each link for the full-range job.
const LOSS_PERCENT: u8 = 10;
/// Seed of the links' faults, latencies, job ids and epochs.
const LINK_SEED: u64 = 0x11_0055;

/// The whole system's storage, built at compile time (`World::new` is a `const fn`):
/// the AWS's Dispatch, one job slot per back-end, the links, the frame buffers.
static mut WORLD: World<W, IN_FLIGHT> = World::new();

fn op_of(e: &Expect) -> Op {
    Op::parse(e.op).unwrap_or(Op::Sum)
}

#[entry]
fn main() -> ! {
    meter::paint_stack();
    meter::start_clock();
    let per_kilotick = meter::calibrate();
    let state = core::mem::size_of::<World<W, IN_FLIGHT>>();
    hprintln!(
        "system: window {} frames, one job slot per back-end; World {} B (of it Dispatch {} B)",
        W,
        state,
        core::mem::size_of::<Dispatch<W>>()
    );
    report::memory("system", state);
    // SAFETY: main runs once and is the only user of WORLD.
    let world = unsafe { &mut *addr_of_mut!(WORLD) };

    // The client's file, parsed on the chip.
    let mut parsed = [0i64; SEED_NUMBERS.len()];
    let mut n = 0usize;
    let mut reader = LineReader::new();
    let mut sink = |_, v| {
        if let Some(slot) = parsed.get_mut(n) {
            *slot = v;
        }
        n += 1;
    };
    let ok = reader.feed(NUMS_CSV, &mut sink).is_ok() && reader.finish(&mut sink).is_ok();
    check(
        "nums.csv parses to the host's numbers",
        ok && n == SEED_NUMBERS.len() && parsed == SEED_NUMBERS,
    );

    for (k, e) in SEED_JOB.iter().enumerate() {
        let sc = Scenario::new(op_of(e), e.count, LINK_SEED + k as u64);
        let r = world.run(&sc, parsed.iter().copied());
        report_job("seed", e, &r, 0, per_kilotick);
    }
    for (k, e) in FULL_JOB.iter().enumerate() {
        let mut sc = Scenario::new(op_of(e), e.count, LINK_SEED + 16 + k as u64);
        sc.faults = Faults::loss(LOSS_PERCENT);
        let mut rng = SplitMix64(FULL_SEED);
        let numbers = core::iter::repeat_with(move || rng.next_u64() as i64);
        let t0 = meter::ticks();
        let r = world.run(&sc, numbers);
        let dt = meter::ticks() - t0;
        report_job("full", e, &r, dt, per_kilotick);
    }

    parse_cost(per_kilotick);
    reduce_cost(per_kilotick);
    report::peak("system");
    finish()
}

fn report_job(name: &str, e: &Expect, r: &Report, ticks: u64, per_kilotick: u64) {
    let data: u64 = r.stats.iter().map(|s| s.datagrams).sum();
    let retransmits: u64 = r.stats.iter().map(|s| s.retransmits).sum();
    match r.outcome {
        Outcome::Answer(a) => {
            hprintln!(
                "{} {}: {} over {} numbers; datagrams: {} data ({} resent), {} replies; {} ms simulated",
                name,
                e.op,
                report::decimal(a.value),
                a.count,
                data,
                retransmits,
                r.replies,
                r.elapsed_us / 1000
            );
            if ticks > 0 && per_kilotick > 0 {
                let insns = meter::insns(ticks, per_kilotick);
                hprintln!(
                    "{} {}: whole pipeline {} instructions, {} per number",
                    name,
                    e.op,
                    insns,
                    insns / e.count.max(1)
                );
            }
            check(name, report::same(a.value, e.answer) && a.count == e.count);
        }
        other => {
            hprintln!("{} {}: no answer: {:?}", name, e.op, other);
            check(name, false);
        }
    }
}

/// Writes `x` in decimal followed by a newline; returns the bytes written.
fn write_line(x: i64, out: &mut [u8; 24]) -> usize {
    let mut digits = [0u8; 20];
    let mut m = x.unsigned_abs();
    let mut k = 0;
    loop {
        digits[k] = b'0' + (m % 10) as u8;
        m /= 10;
        k += 1;
        if m == 0 {
            break;
        }
    }
    let mut n = 0;
    if x < 0 {
        out[0] = b'-';
        n = 1;
    }
    while k > 0 {
        k -= 1;
        out[n] = digits[k];
        n += 1;
    }
    out[n] = b'\n';
    n + 1
}

/// Instructions per number of the client's parser, over the full job's numbers as text.
fn parse_cost(per_kilotick: u64) {
    let mut rng = SplitMix64(FULL_SEED);
    let mut reader = LineReader::new();
    let mut chunk = [0u8; 512];
    let mut line = [0u8; 24];
    let (mut count, mut sum, mut want) = (0u64, 0i64, 0i64);
    let mut ticks = 0u64;
    let mut made = 0u64;
    while made < FULL_N {
        let mut used = 0;
        while made < FULL_N && used + line.len() <= chunk.len() {
            let x = rng.next_u64() as i64;
            want = want.wrapping_add(x);
            let n = write_line(x, &mut line);
            chunk[used..used + n].copy_from_slice(&line[..n]);
            used += n;
            made += 1;
        }
        let t0 = meter::ticks();
        let r = reader.feed(&chunk[..used], |_, v| {
            count += 1;
            sum = sum.wrapping_add(v);
        });
        ticks += meter::ticks() - t0;
        if r.is_err() {
            break;
        }
    }
    let insns = meter::insns(ticks, per_kilotick);
    hprintln!(
        "parse: {} instructions, {} per number",
        insns,
        insns / FULL_N
    );
    check(
        "parse of the full job's text",
        count == FULL_N && sum == want,
    );
}

/// Instructions per number of each accumulator, over the full job's numbers.
fn reduce_cost(per_kilotick: u64) {
    for e in &FULL_JOB {
        let mut rng = SplitMix64(FULL_SEED);
        let mut acc = Accumulator::new(op_of(e));
        let mut batch = [0i64; MAX_VALUES];
        let mut ticks = 0u64;
        let mut left = FULL_N;
        while left > 0 {
            let k = left.min(MAX_VALUES as u64) as usize;
            for x in batch.iter_mut().take(k) {
                *x = rng.next_u64() as i64;
            }
            let t0 = meter::ticks();
            acc.extend(batch[..k].iter().copied());
            ticks += meter::ticks() - t0;
            left -= k as u64;
        }
        let insns = meter::insns(ticks, per_kilotick);
        hprintln!("reduce {}: {} per number", e.op, insns / FULL_N);
        check(
            "reduce of the full job",
            report::same(acc.finish().value, e.answer),
        );
    }
}
