//! A back-end alone on the chip: four jobs at once (one per operation, four job slots),
//! each the first third of the seeded full-range job, their frames interleaved, some
//! held back past their successor and some duplicated, as a lossy network delivers
//! them. Checks each result against the host's, and reports the back-end's memory.
#![no_std]
#![no_main]

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use offload_core::backend::{Backend, Handled, JobSlot};
use offload_core::transfer::Instant;
use offload_core::wide::I192;
use offload_core::wire::{emit_data, Epoch, JobId, MAX_DATAGRAM, MAX_REPLY, MAX_VALUES};
use offload_core::Op;
use offload_mcu::expected::{FULL_JOB, FULL_SEED};
use offload_mcu::rng::SplitMix64;
use offload_mcu::{check, finish, meter, report, WINDOW};

const W: usize = WINDOW;
/// Jobs the back-end serves at once.
const SLOTS: usize = 4;
/// The back-end's RAM goal: state, stack and one datagram buffer.
const GOAL: usize = 8 * 1024;

static mut SLOT_TABLE: [JobSlot<u8, W>; SLOTS] = [JobSlot::EMPTY; SLOTS];
static mut BACKEND: MaybeUninit<Backend<'static, u8, W>> = MaybeUninit::uninit();
/// The one incoming datagram buffer, and the reply (`MAX_REPLY` bytes hold any).
static mut DATAGRAM: [u8; MAX_DATAGRAM] = [0; MAX_DATAGRAM];
static mut REPLY: [u8; MAX_REPLY] = [0; MAX_REPLY];
/// The test driver's numbers for one frame (not part of the back-end's budget).
static mut VALUES: [i64; MAX_VALUES] = [0; MAX_VALUES];

/// The `i`-th number of the seeded job (SplitMix64 is random access).
fn number(i: u64) -> i64 {
    SplitMix64(FULL_SEED.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))).next_u64() as i64
}

#[entry]
fn main() -> ! {
    meter::paint_stack();
    let state = core::mem::size_of::<[JobSlot<u8, W>; SLOTS]>()
        + core::mem::size_of::<Backend<'static, u8, W>>();
    let buffers = MAX_DATAGRAM + 64;
    hprintln!(
        "backend: window {} frames, {} job slots; JobSlot {} B, Backend {} B",
        W,
        SLOTS,
        core::mem::size_of::<JobSlot<u8, W>>(),
        core::mem::size_of::<Backend<'static, u8, W>>()
    );
    report::memory("backend", state);

    // SAFETY: main runs once; these statics are touched only here, initialised before use.
    let (be, dgram, reply, values) = unsafe {
        let slots = &mut *addr_of_mut!(SLOT_TABLE);
        let be = (*addr_of_mut!(BACKEND)).write(Backend::new(slots, 30_000_000, Epoch(0xB0B)));
        (
            be,
            &mut *addr_of_mut!(DATAGRAM),
            &mut *addr_of_mut!(REPLY),
            &mut *addr_of_mut!(VALUES),
        )
    };

    let part = FULL_JOB[0].parts[0].0;
    let frames = part.div_ceil(MAX_VALUES as u64) as u32;
    let mut rng = SplitMix64(0x0BAC_0E4D);
    let mut held: [Option<u32>; 4] = [None; 4];
    let mut done = [0u32; 4];
    let mut ok = [false; 4];
    let mut sent = 0u64;
    let mut now = Instant(0);
    let mut send = |j: usize, seq: u32, now: Instant, done: &mut [u32; 4], ok: &mut [bool; 4]| {
        let e = &FULL_JOB[j];
        let op = Op::parse(e.op).unwrap_or(Op::Sum);
        let first = u64::from(seq) * MAX_VALUES as u64;
        let k = (part - first).min(MAX_VALUES as u64) as usize;
        for (i, x) in values.iter_mut().take(k).enumerate() {
            *x = number(first + i as u64);
        }
        let last = seq + 1 == frames;
        let Ok(len) = emit_data(dgram, JobId(0x200 + j as u32), seq, op, last, &values[..k]) else {
            return;
        };
        if let Handled::Completed { result, .. } =
            be.handle_datagram(now, j as u8, &dgram[..len], reply)
        {
            let (count, lo, hi) = e.parts[0];
            done[j] += 1;
            ok[j] = result.count == count
                && result.value == I192::from_parts(lo, hi)
                && result.op == op;
        }
    };
    for seq in 0..frames {
        #[allow(clippy::needless_range_loop)] // j is the job, the peer and the index
        for j in 0..4 {
            now = now.plus(1);
            sent += 1;
            if seq + 1 < frames && held[j].is_none() && rng.chance(10) {
                held[j] = Some(seq);
                continue;
            }
            send(j, seq, now, &mut done, &mut ok);
            if let Some(h) = held[j].take() {
                sent += 1;
                send(j, h, now, &mut done, &mut ok);
            }
            if rng.chance(5) {
                sent += 1;
                send(j, seq, now, &mut done, &mut ok);
            }
        }
    }
    for (j, e) in FULL_JOB.iter().enumerate() {
        let (count, lo, hi) = e.parts[0];
        hprintln!(
            "backend {}: {} over {} numbers, completed {} time(s)",
            e.op,
            report::decimal(I192::from_parts(lo, hi)),
            count,
            done[j]
        );
        check("back-end result equals the host's", ok[j] && done[j] == 1);
    }
    hprintln!("backend: {} datagrams in, {} frames per job", sent, frames);
    let total = report::peak("backend");
    let own = state + buffers + meter::peak_stack();
    hprintln!(
        "backend: state + datagram buffers + stack = {} B (goal {} B: {}); whole program {} B",
        own,
        GOAL,
        if own <= GOAL { "met" } else { "NOT met" },
        total
    );
    check(
        "a back-end with 4 job slots needs at most 8 KiB",
        own <= GOAL,
    );
    finish()
}
