//! Link-time audit of `offload-core` (see `Cargo.toml` and `.ci/audit.sh`).
//!
//! * No global allocator is defined, so linking proves the core never allocates.
//! * The panic handler calls [`offload_core_audit_panic_is_reachable`], which nothing
//!   defines, so a release build links only if every panic path was optimised away.
//!   When the link fails, the linker names the function that still references it.
//! * Inputs come from [`INPUT`] through volatile reads and results go out through
//!   `core::hint::black_box`, so nothing is constant-folded or discarded.
//!
//! Entry point: `_start`, the default entry symbol of `rust-lld` for both
//! `thumbv7em-none-eabihf` and `x86_64-unknown-none`; no crt objects and no linker
//! script are needed because the binary only has to link, never to run.
#![no_std]
#![no_main]
// A single-role build (see Cargo.toml) leaves the other roles' helpers unused.
#![cfg_attr(
    not(all(
        feature = "role-backend",
        feature = "role-aws",
        feature = "role-client"
    )),
    allow(dead_code)
)]

use core::fmt::{self, Write};
use core::panic::PanicInfo;

use core::time::Duration;
use offload_core::backend::{Backend, JobSlot};
use offload_core::csv::{parse_line, LineReader};
use offload_core::dispatch::{micros, parse_request, Dispatch, Event, Limits, Request};
#[cfg(feature = "sim")]
use offload_core::sim::{Faults, Scenario, Trouble, World};
use offload_core::split::{split, Part};
use offload_core::transfer::{Instant, Receiver, Sender};
use offload_core::wide::{DECIMAL_LEN, I192, I192_BYTES};
use offload_core::wire::{
    emit_data, set_ack_now, Epoch, ErrorCode, Frame, Header, JobId, Sack, Values, WireError,
    MAX_DATAGRAM, MAX_VALUES,
};
use offload_core::{Accumulator, Op, Reduction};

#[cfg(not(audit_locate))]
extern "C" {
    /// Deliberately undefined: any reachable panic makes the link fail on this name.
    fn offload_core_audit_panic_is_reachable() -> !;
}

#[cfg(not(audit_locate))]
#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    // SAFETY: never executed in a build that links; its only purpose is to fail the link.
    unsafe { offload_core_audit_panic_is_reachable() }
}

/// With `--cfg audit_locate` the program links even with panic paths, so that
/// `.ci/audit.sh` can disassemble it and name the functions that still call into
/// `core::panicking`.
#[cfg(audit_locate)]
#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Opaque input, read only through volatile loads so its contents are unknown to the
/// optimiser. Mutable so it lands in `.bss`, not in the text the size report counts.
#[no_mangle]
static mut INPUT: [u8; INPUT_LEN] = [0; INPUT_LEN];
const INPUT_LEN: usize = 4096;

/// Reads input bytes one at a time, as if from a device.
struct Source {
    at: usize,
}

impl Source {
    #[inline(never)] // one copy, so the size report reflects the core, not this harness
    fn u8(&mut self) -> u8 {
        let i = self.at % INPUT_LEN;
        self.at = self.at.wrapping_add(1);
        // SAFETY: `i < INPUT_LEN`, so the read stays inside `INPUT`; nothing writes it.
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!(INPUT).cast::<u8>().add(i)) }
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.u8();
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn i64(&mut self) -> i64 {
        self.u64() as i64
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }
    fn len(&mut self, max: usize) -> usize {
        usize::from(self.u16()) % (max + 1)
    }
    fn op(&mut self) -> Op {
        Op::from_code(self.u8()).unwrap_or(Op::Sum)
    }
    fn part(&mut self) -> Part {
        Part::from_index(usize::from(self.u8())).unwrap_or(Part::C)
    }
    fn now(&mut self) -> Instant {
        Instant(self.u64())
    }
}

/// Marks a result as used, so the code computing it is kept.
#[inline(always)]
fn keep<T>(v: T) {
    core::hint::black_box(v);
}

/// Counts what `Display` impls write, so formatting code is linked in and kept.
struct Counter(usize);

impl Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 = self.0.wrapping_add(s.len());
        Ok(())
    }
}

fn show(d: &dyn fmt::Display) {
    let mut c = Counter(0);
    let _ = write!(c, "{d}");
    keep(c.0);
}

const W: usize = 4;

#[inline(never)]
fn csv(src: &mut Source) {
    let mut line = [0u8; 160];
    let n = src.len(line.len());
    src.fill(&mut line);
    let line = line.get(..n).unwrap_or(&[]);
    match parse_line(line) {
        Ok(v) => {
            keep(v);
        }
        Err(e) => show(&e),
    }
    let mut reader = LineReader::new();
    let mut sum = 0i64;
    let mut chunk = [0u8; 64];
    for _ in 0..src.len(8) {
        let n = src.len(chunk.len());
        src.fill(&mut chunk);
        let r = reader.feed(chunk.get(..n).unwrap_or(&[]), |l, v| {
            sum = sum.wrapping_add(v).wrapping_add(l as i64)
        });
        if let Err(e) = r {
            show(&e);
            keep(e.excerpt.len());
        }
    }
    let mut copy = reader.clone();
    keep(
        copy.finish(|_, v| sum = sum.wrapping_sub(v))
            .map_err(|e| e.line),
    );
    if let Err(e) = reader.finish(|_, v| sum = sum.wrapping_add(v)) {
        show(&e);
    }
    keep((sum, reader.lines()));
}

#[inline(never)]
fn op_and_wide(src: &mut Source) {
    let op = src.op();
    keep((op.name(), op.code(), Op::ALL.len()));
    show(&op);
    let mut name = [0u8; 8];
    let n = src.len(name.len());
    src.fill(&mut name);
    if let Ok(s) = core::str::from_utf8(name.get(..n).unwrap_or(&[])) {
        keep(Op::parse(s));
    }

    let a = I192::from_i64(src.i64());
    let b = I192::from_i128(i128::from(src.i64()) << 60);
    let c = I192::from_parts(
        u128::from(src.u64()) << 64 | u128::from(src.u64()),
        src.u64(),
    );
    let sum = a.wrapping_add(b).wrapping_add(c.wrapping_neg());
    let mut bytes = [0u8; I192_BYTES];
    src.fill(&mut bytes);
    let d = I192::from_be_bytes(bytes);
    keep((
        sum.is_negative(),
        sum.to_i128(),
        d.to_be_bytes(),
        sum.cmp(&d),
        a < c,
    ));
    let mut buf = [0u8; DECIMAL_LEN];
    keep(d.format(&mut buf).len());
    show(&sum);

    let mut acc = Accumulator::new(op);
    for _ in 0..src.len(16) {
        acc.push(src.i64());
    }
    let mut more = [0i64; 8];
    for x in &mut more {
        *x = src.i64();
    }
    acc.extend(more.iter().copied());
    let mut other = Accumulator::new(src.op());
    other.push(src.i64());
    let merged = acc
        .finish()
        .merge(other.finish())
        .unwrap_or(Reduction::empty(op));
    keep((merged, acc.op(), acc.count()));

    let sizes = split(src.u64());
    let p = src.part();
    keep((sizes, p.letter(), p.index(), Part::ALL.len()));
}

#[inline(never)]
fn wire(src: &mut Source) {
    let mut dgram = [0u8; MAX_DATAGRAM + 8];
    let n = src.len(dgram.len());
    src.fill(&mut dgram);
    let dgram = dgram.get(..n).unwrap_or(&[]);
    if let Ok(h) = Header::parse(dgram) {
        keep((h.body_len(), h.frame_len(), h.kind, h.job, h.seq, h.aux));
    }
    let mut out = [0u8; MAX_DATAGRAM];
    match Frame::parse(dgram) {
        Ok(f) => {
            let room = src.len(out.len());
            let r = f.emit(out.get_mut(..room).unwrap_or(&mut []));
            keep((r, f.len(), f.is_empty(), f.job()));
            if let Frame::Data { values, .. } = f {
                let s: i64 = values.iter().fold(0, i64::wrapping_add);
                keep((s, values.len(), values.is_empty(), values.as_bytes().len()));
            }
        }
        Err(e) => show(&e),
    }
    let mut xs = [0i64; MAX_VALUES + 1];
    let k = src.len(xs.len());
    for x in xs.iter_mut().take(k) {
        *x = src.i64();
    }
    let job = JobId(src.u32());
    show(&job);
    let r = emit_data(
        &mut out,
        job,
        src.u32(),
        src.op(),
        src.bool(),
        xs.get(..k).unwrap_or(&[]),
    );
    keep(r);
    set_ack_now(
        out.get_mut(..src.len(MAX_DATAGRAM)).unwrap_or(&mut []),
        src.bool(),
    );
    let mut sack = Sack::default();
    sack.set(usize::from(src.u16()));
    keep(sack.get(usize::from(src.u16())));
    let vb = [src.u8(); 24];
    keep(Values::from_be_bytes(vb.get(..src.len(24)).unwrap_or(&[])));
    let f = Frame::Error {
        job,
        code: ErrorCode::BackendBusy,
        arg: src.u16(),
    };
    keep(f.emit(&mut out));
}

#[inline(never)]
fn transfer(src: &mut Source) {
    let t0 = src.now();
    let mut tx = Sender::<W>::new(JobId(src.u32()), src.op(), t0);
    let mut rx = Receiver::<W>::default();
    let mut now = t0;
    let mut xs = [0i64; MAX_VALUES];
    for _ in 0..src.len(12) {
        now = now.plus(u64::from(src.u16()));
        let k = src.len(MAX_VALUES);
        for x in xs.iter_mut().take(k) {
            *x = src.i64();
        }
        keep(tx.push(xs.get(..k).unwrap_or(&[]), src.bool()));
        while let Some(d) = tx.poll_transmit(now) {
            if let Ok(Frame::Data {
                seq,
                last,
                ack_now,
                values,
                ..
            }) = Frame::parse(d)
            {
                let a = rx.handle_data(seq, last, ack_now);
                let total = values.iter().fold(0i64, i64::wrapping_add);
                keep((a, total));
            }
        }
        if let Some(a) = rx.poll_ack() {
            keep(tx.handle_ack_frame(now, a.cum, &a.sack, a.answer));
        }
        let mut sack = Sack::default();
        src.fill(&mut sack.0);
        keep(tx.handle_ack(now, src.u32(), &sack));
        if let Some(t) = tx.poll_timeout() {
            keep(t.since(now));
        }
        tx.handle_timeout(src.now());
        keep((
            tx.free(),
            tx.pushed(),
            tx.in_flight(),
            tx.rto(),
            tx.is_acked(),
        ));
        keep((
            tx.stalled_for(now),
            tx.stats(),
            rx.cum(),
            rx.is_complete(),
            rx.ack(),
            rx.stats(),
        ));
    }
    if src.bool() {
        tx.close();
    }
    tx.reset(JobId(src.u32()), src.op(), src.now());
    rx.reset();
    keep((tx.is_closed(), rx.cum()));
}

#[inline(never)]
fn dispatch(src: &mut Source) {
    let mut frame = [0u8; MAX_DATAGRAM];
    let n = src.len(64);
    src.fill(&mut frame);
    let request = parse_request(frame.get(..n).unwrap_or(&[]));
    if let Err(r) = request {
        show(&r);
        keep((r.code(), r.emit(&mut frame)));
    }
    let request = request.unwrap_or(Request {
        op: src.op(),
        total: src.u64(),
    });
    let limits = Limits {
        backend_timeout: Duration::from_micros(src.u64()),
        client_idle: Duration::from_micros(src.u64()),
    };
    let mut d = Dispatch::<W>::new();
    d.start(JobId(src.u32()), request, limits, src.now());
    keep((d.job(), d.op(), d.sizes(), d.started()));
    let mut out = [0u8; MAX_DATAGRAM];
    for _ in 0..src.len(8) {
        let now = src.now();
        for _ in 0..src.len(4) {
            let n = src.len(MAX_DATAGRAM);
            src.fill(&mut frame);
            keep((
                d.wants_client(),
                d.handle_client(now, frame.get(..n).unwrap_or(&[])),
            ));
        }
        while let Some(t) = d.poll_transmit(now, &mut out) {
            keep(t);
        }
        let n = src.len(64);
        src.fill(&mut frame);
        keep(d.handle_backend(now, src.part(), frame.get(..n).unwrap_or(&[])));
        d.handle_timeout(src.now());
        match src.u8() % 4 {
            0 => d.handle_client_closed(now),
            1 => d.handle_client_malformed(now, WireError::Truncated),
            2 => d.handle_answer_written(now),
            _ => {}
        }
        keep(d.poll_client(&mut out));
        while let Some(e) = d.poll_event() {
            if let Event::Failed(err) = e {
                show(&err);
                keep(err.client_error());
            }
            keep(e);
        }
        let p = src.part();
        keep((d.poll_timeout(), d.part_sent(p), d.result(p), d.received()));
        keep((
            d.all_received(),
            d.final_result(),
            d.is_finished(),
            d.error(),
        ));
        keep((d.stats(), d.timers(), micros(limits.backend_timeout)));
    }
}

#[inline(never)]
fn backend(src: &mut Source) {
    let mut slots: [JobSlot<u32, W>; 2] = [JobSlot::EMPTY; 2];
    let mut be = Backend::new(&mut slots, src.u64(), Epoch(src.u16()));
    if src.bool() {
        be.accept_only_from(src.u32());
    }
    keep(be.epoch());
    let mut dgram = [0u8; MAX_DATAGRAM];
    let mut out = [0u8; MAX_DATAGRAM];
    for _ in 0..src.len(8) {
        let n = src.len(dgram.len());
        src.fill(&mut dgram);
        let now = src.now();
        let h = be.handle_datagram(now, src.u32(), dgram.get(..n).unwrap_or(&[]), &mut out);
        keep(h);
        keep((be.active(), be.expire(src.now())));
    }
}

/// The line reader's other entry points, each fed the same chunks: checking only, runs,
/// runs with a spare (two halves at once) and a fold (two halves at once). Chunks of up
/// to 1 KiB, so that the two-halves paths (from 512 bytes) are linked, not folded away.
#[cfg(feature = "readers")]
#[inline(never)]
fn readers(src: &mut Source) {
    let mut chunk = [0u8; 1024];
    let mut spare = [0i64; 128];
    let (mut check, mut runs, mut spared) =
        (LineReader::new(), LineReader::new(), LineReader::new());
    let mut reduce = LineReader::new();
    let mut acc = Accumulator::new(src.op());
    let mut sum = 0i64;
    for _ in 0..src.len(8) {
        let n = src.len(chunk.len());
        src.fill(&mut chunk);
        let c = chunk.get(..n).unwrap_or(&[]);
        let mut add = |l: u64, vs: &[i64]| {
            sum = vs
                .iter()
                .fold(sum.wrapping_add(l as i64), |s, &v| s.wrapping_add(v));
        };
        keep(check.feed_check(c).map_err(|e| e.line));
        keep(runs.feed_runs(c, &mut add).map_err(|e| e.line));
        keep(
            spared
                .feed_runs_with(c, &mut spare, &mut add)
                .map_err(|e| e.line),
        );
        keep(reduce.feed_reduce(c, &mut acc).map_err(|e| e.line));
    }
    keep((check.numbers(), runs.lines(), spared.lines()));
    keep(reduce.finish_reduce(&mut acc).map_err(|e| e.line));
    keep((sum, acc.finish()));
}

#[cfg(feature = "sim")]
#[inline(never)]
fn sim(src: &mut Source) {
    let mut sc = Scenario::new(src.op(), u64::from(src.u16()), src.u64());
    sc.faults = Faults {
        drop: src.u8(),
        duplicate: src.u8(),
        reorder: src.u8(),
        truncate: src.u8(),
    };
    sc.trouble = match src.u8() % 3 {
        0 => Trouble::None,
        1 => Trouble::Silent(src.part()),
        _ => Trouble::Restart {
            part: src.part(),
            after: src.u32(),
        },
    };
    sc.latency_us = u64::from(src.u16());
    sc.deadline_us = src.u64();
    let seed = src.u64();
    let numbers = (0..).map(|i: i64| i.wrapping_mul(seed as i64));
    // SAFETY: the harness is single-threaded and `run` is its only user of WORLD.
    let world = unsafe { &mut *core::ptr::addr_of_mut!(WORLD) };
    keep(world.run(&sc, numbers));
    keep(Faults::loss(src.u8()));
}

/// The simulated system, in place (as a chip would keep it).
#[cfg(feature = "sim")]
static mut WORLD: World<W, 4> = World::new();

/// What a client runs: validate and parse the file, frame numbers, read the answer.
#[inline(never)]
fn client(src: &mut Source) {
    let mut out = [0u8; MAX_DATAGRAM];
    let mut xs = [0i64; MAX_VALUES];
    let k = src.len(xs.len());
    for x in xs.iter_mut().take(k) {
        *x = src.i64();
    }
    keep(emit_data(
        &mut out,
        JobId(0),
        src.u32(),
        src.op(),
        src.bool(),
        xs.get(..k).unwrap_or(&[]),
    ));
    let n = src.len(64);
    src.fill(&mut out);
    match Frame::parse(out.get(..n).unwrap_or(&[])) {
        Ok(Frame::Result { value, .. }) => {
            let mut buf = [0u8; DECIMAL_LEN];
            keep(value.format(&mut buf).len());
        }
        Ok(f) => keep(f.job()),
        Err(e) => show(&e),
    }
}

/// Calls the entry points of the roles this build was asked for (Cargo features), so
/// that the size of each role's code can be measured on its own.
fn run() {
    let mut src = Source { at: 0 };
    #[cfg(all(
        feature = "role-backend",
        feature = "role-aws",
        feature = "role-client"
    ))]
    {
        op_and_wide(&mut src);
        wire(&mut src);
        transfer(&mut src);
    }
    #[cfg(feature = "role-client")]
    {
        csv(&mut src);
        client(&mut src);
    }
    #[cfg(feature = "role-aws")]
    dispatch(&mut src);
    #[cfg(feature = "role-backend")]
    backend(&mut src);
    #[cfg(feature = "readers")]
    readers(&mut src);
    #[cfg(feature = "sim")]
    sim(&mut src);
}

/// The entry point `rust-lld` looks for by default on both targets.
#[no_mangle]
pub extern "C" fn _start() -> ! {
    loop {
        run();
    }
}
