//! The AWS role alone on the chip: `Dispatch` for the seed example and the seeded
//! full-range job, all four operations, with scripted back-ends that acknowledge in
//! order and answer with the host's partial results. Reports the AWS role's memory and
//! instructions per number.
#![no_std]
#![no_main]

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use offload_core::dispatch::{Dispatch, PartEvent};
use offload_core::transfer::Instant;
use offload_core::wide::I192;
use offload_core::wire::{Epoch, Frame, JobId, Sack, MAX_VALUES};
use offload_core::Op;
use offload_mcu::expected::{Expect, FULL_JOB, FULL_SEED, SEED_JOB, SEED_NUMBERS};
use offload_mcu::rng::SplitMix64;
use offload_mcu::{check, finish, meter, report, WINDOW};

const W: usize = WINDOW;

static mut DISPATCH: MaybeUninit<Dispatch<W>> = MaybeUninit::uninit();
static mut REPLY: [u8; 64] = [0; 64];

#[entry]
fn main() -> ! {
    meter::paint_stack();
    meter::start_clock();
    let per_kilotick = meter::calibrate();
    hprintln!(
        "aws: window {} frames; Dispatch {} B",
        W,
        core::mem::size_of::<Dispatch<W>>()
    );
    report::memory("aws", core::mem::size_of::<Dispatch<W>>());
    // SAFETY: main runs once; these statics are touched only here, initialised before use.
    let (d, reply) = unsafe {
        let d = (*addr_of_mut!(DISPATCH)).write(Dispatch::new(JobId(1), Op::Sum, 0, Instant(0)));
        (d, &mut *addr_of_mut!(REPLY))
    };
    let mut job = 0x300;
    for e in &SEED_JOB {
        job += 1;
        let mut xs = SEED_NUMBERS.iter().copied();
        run(d, JobId(job), e, || xs.next(), reply, "seed", per_kilotick);
    }
    for e in &FULL_JOB {
        job += 1;
        let mut rng = SplitMix64(FULL_SEED);
        run(
            d,
            JobId(job),
            e,
            || Some(rng.next_u64() as i64),
            reply,
            "full",
            per_kilotick,
        );
    }
    report::peak("aws");
    finish()
}

fn run(
    d: &mut Dispatch<W>,
    job: JobId,
    e: &Expect,
    mut next: impl FnMut() -> Option<i64>,
    reply: &mut [u8; 64],
    name: &str,
    per_kilotick: u64,
) {
    let op = Op::parse(e.op).unwrap_or(Op::Sum);
    let t0 = meter::ticks();
    *d = Dispatch::new(job, op, e.count, Instant(0));
    let now = Instant(1);
    let mut datagrams = 0u64;
    let mut guard = 0u32;
    while d.final_result().is_none() && guard < 1_000_000 {
        guard += 1;
        while !d.all_received() && d.has_room() {
            for _ in 0..MAX_VALUES {
                if d.all_received() {
                    break;
                }
                let _ = d.push(next().unwrap_or(0));
            }
        }
        // The scripted back-ends: an in-order ack per frame, the host's result after
        // the last one.
        while let Some((part, len, last)) = d.poll_transmit(now).map(|(part, bytes)| {
            let (len, last) = match Frame::parse(bytes) {
                Ok(Frame::Data { seq, last, .. }) => {
                    let ack = Frame::Ack {
                        job,
                        cum: seq + 1,
                        complete: last,
                        sack: Sack::default(),
                        epoch: Epoch(7),
                    };
                    (ack.emit(reply).unwrap_or(0), last)
                }
                _ => (0, false),
            };
            (part, len, last)
        }) {
            datagrams += 1;
            if let Ok(f) = Frame::parse(&reply[..len]) {
                d.handle_frame(now, part, &f);
            }
            if last {
                let (count, lo, hi) = e.parts[part.index()];
                let r = Frame::Result {
                    job,
                    op,
                    count,
                    value: I192::from_parts(lo, hi),
                    epoch: Epoch(7),
                };
                let len = r.emit(reply).unwrap_or(0);
                if let Ok(f) = Frame::parse(&reply[..len]) {
                    if let PartEvent::Failed(..) = d.handle_frame(now, part, &f) {
                        break;
                    }
                }
            }
        }
    }
    let insns = meter::insns(meter::ticks() - t0, per_kilotick);
    match d.final_result() {
        Some(r) => {
            hprintln!(
                "aws {} {}: {} over {} numbers; {} data datagrams; {} instructions per number",
                name,
                e.op,
                report::decimal(r.value),
                r.count,
                datagrams,
                insns / e.count
            );
            check(
                "aws answer equals the host's",
                report::same(r.value, e.answer) && r.count == e.count,
            );
        }
        None => {
            hprintln!("aws {} {}: no answer", name, e.op);
            check("aws answer", false);
        }
    }
}
