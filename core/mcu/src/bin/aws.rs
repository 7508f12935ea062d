//! The AWS role alone on the chip: `Dispatch` for the seed example and the seeded
//! full-range job, all four operations, fed the client's data frames, against scripted
//! back-ends that acknowledge in order and answer with the host's partial results.
//! Reports the AWS role's memory and instructions per number.
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;
use core::time::Duration;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use offload_core::dispatch::{Dispatch, Event, Limits, Request};
use offload_core::transfer::Instant;
use offload_core::wide::I192;
use offload_core::wire::{
    emit_data, Epoch, Frame, JobId, Sack, MAX_DATAGRAM, MAX_REPLY, MAX_VALUES,
};
use offload_core::Op;
use offload_mcu::expected::{Expect, FULL_JOB, FULL_SEED, SEED_JOB, SEED_NUMBERS};
use offload_mcu::rng::SplitMix64;
use offload_mcu::{check, finish, meter, report, WINDOW};

const W: usize = WINDOW;
const LIMITS: Limits = Limits {
    backend_timeout: Duration::from_secs(10),
    client_idle: Duration::from_secs(30),
};

static mut DISPATCH: Dispatch<W> = Dispatch::new();
/// The client's frame, the AWS's datagram, and the replies (`MAX_REPLY` bytes at most).
static mut CLIENT: [u8; MAX_DATAGRAM] = [0; MAX_DATAGRAM];
static mut DATAGRAM: [u8; MAX_DATAGRAM] = [0; MAX_DATAGRAM];
static mut REPLY: [u8; MAX_REPLY] = [0; MAX_REPLY];
static mut VALUES: [i64; MAX_VALUES] = [0; MAX_VALUES];

struct Bufs {
    client: &'static mut [u8; MAX_DATAGRAM],
    datagram: &'static mut [u8; MAX_DATAGRAM],
    reply: &'static mut [u8; MAX_REPLY],
    values: &'static mut [i64; MAX_VALUES],
}

#[entry]
fn main() -> ! {
    meter::paint_stack();
    meter::start_clock();
    let per_kilotick = meter::calibrate();
    let size = core::mem::size_of::<Dispatch<W>>();
    hprintln!("aws: window {} frames; Dispatch {} B", W, size);
    report::memory("aws", size);
    // SAFETY: main runs once; these statics are touched only here.
    let (d, mut bufs) = unsafe {
        (
            &mut *addr_of_mut!(DISPATCH),
            Bufs {
                client: &mut *addr_of_mut!(CLIENT),
                datagram: &mut *addr_of_mut!(DATAGRAM),
                reply: &mut *addr_of_mut!(REPLY),
                values: &mut *addr_of_mut!(VALUES),
            },
        )
    };
    let mut job = 0x300;
    for e in &SEED_JOB {
        job += 1;
        let mut xs = SEED_NUMBERS.iter().copied();
        run(
            d,
            JobId(job),
            e,
            || xs.next(),
            &mut bufs,
            "seed",
            per_kilotick,
        );
    }
    for e in &FULL_JOB {
        job += 1;
        let mut rng = SplitMix64(FULL_SEED);
        let next = || Some(rng.next_u64() as i64);
        run(d, JobId(job), e, next, &mut bufs, "full", per_kilotick);
    }
    report::peak("aws");
    finish()
}

fn run(
    d: &mut Dispatch<W>,
    job: JobId,
    e: &Expect,
    mut next: impl FnMut() -> Option<i64>,
    b: &mut Bufs,
    name: &str,
    per_kilotick: u64,
) {
    let op = Op::parse(e.op).unwrap_or(Op::Sum);
    let t0 = meter::ticks();
    let now = Instant(1);
    d.start(job, Request { op, total: e.count }, LIMITS, now);
    let (mut sent, mut seq, mut datagrams) = (0u64, 0u32, 0u64);
    let mut answer = None;
    let mut failed = false;
    let mut guard = 0u32;
    while answer.is_none() && !failed && guard < 1_000_000 {
        guard += 1;
        while sent < e.count && d.wants_client() {
            let k = (e.count - sent).min(MAX_VALUES as u64) as usize;
            for x in b.values.iter_mut().take(k) {
                *x = next().unwrap_or(0);
            }
            let last = sent + k as u64 == e.count;
            let len = emit_data(b.client, job, seq, op, last, &b.values[..k]).unwrap_or(0);
            let _ = d.handle_client(now, &b.client[..len]);
            sent += k as u64;
            seq += 1;
        }
        // The scripted back-ends: an in-order ack per frame, the host's result after
        // the last one.
        while let Some(t) = d.poll_transmit(now, b.datagram) {
            datagrams += 1;
            let Ok(Frame::Data { seq, last, .. }) = Frame::parse(&b.datagram[..t.len]) else {
                continue;
            };
            let ack = Frame::Ack {
                job,
                cum: seq + 1,
                complete: last,
                answer: false,
                sack: Sack::default(),
                epoch: Epoch(7),
            };
            let len = ack.emit(b.reply).unwrap_or(0);
            let _ = d.handle_backend(now, t.part, &b.reply[..len]);
            if last {
                let (count, lo, hi) = e.parts[t.part.index()];
                let value = I192::from_parts(lo, hi);
                let r = Frame::Result {
                    job,
                    op,
                    count,
                    value,
                    epoch: Epoch(7),
                };
                let len = r.emit(b.reply).unwrap_or(0);
                let _ = d.handle_backend(now, t.part, &b.reply[..len]);
            }
        }
        while let Some(ev) = d.poll_event() {
            failed |= matches!(ev, Event::Failed(_));
        }
        while let Some(len) = d.poll_client(b.reply) {
            if let Ok(Frame::Result { count, value, .. }) = Frame::parse(&b.reply[..len]) {
                answer = Some((count, value));
                d.handle_answer_written(now);
            }
        }
    }
    while d.poll_event().is_some() {}
    let insns = meter::insns(meter::ticks() - t0, per_kilotick);
    match answer {
        Some((count, value)) => {
            hprintln!(
                "aws {} {}: {} over {} numbers; {} data datagrams; {} instructions per number",
                name,
                e.op,
                report::decimal(value),
                count,
                datagrams,
                insns / e.count
            );
            let ok = report::same(value, e.answer) && count == e.count;
            check("aws answer equals the host's", ok);
        }
        None => {
            hprintln!("aws {} {}: no answer", name, e.op);
            check("aws answer", false);
        }
    }
}
