//! The whole system as one deterministic simulation, sans-IO: a client's numbers ->
//! [`Dispatch`] -> three [`Backend`]s -> results -> the answer, over seeded links that
//! drop, duplicate, reorder and truncate datagrams (smoltcp's fault injector and quinn's
//! simulated `Pair` are the models).
//!
//! Time jumps to the earliest thing that can happen (a reply's arrival, a held-back
//! datagram, [`Dispatch::poll_timeout`]) instead of ticking, so a job of any size runs in
//! a bounded number of steps and a silent back-end's timeout costs nothing to wait for.
//!
//! Everything lives in a caller's [`World`] (a `const fn` constructor, so it can be a
//! `static` on a microcontroller); nothing big is built on the stack or copied by value.
//! Data datagrams reach their back-end the moment they are sent; replies travel with a
//! seeded latency (the round trip); the client's TCP stream is reliable and in order.

use crate::backend::{Backend, Handled, JobSlot};
use crate::dispatch::{Dispatch, Event, JobError, Limits, Request, CLIENT_FRAME_MAX};
use crate::op::Op;
use crate::reduce::Reduction;
use crate::split::Part;
use crate::transfer::{Instant, SenderStats};
use crate::wire::{emit_data, Epoch, Frame, JobId, MAX_DATAGRAM, MAX_REPLY, MAX_VALUES};
use core::time::Duration;

/// Percent chances (0 to 100) of each fault, per datagram and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Faults {
    /// Lost.
    pub drop: u8,
    /// Delivered twice.
    pub duplicate: u8,
    /// Delivered late, after datagrams sent after it.
    pub reorder: u8,
    /// Cut short by a few bytes.
    pub truncate: u8,
}

impl Faults {
    /// A perfect network.
    pub const NONE: Faults = Faults {
        drop: 0,
        duplicate: 0,
        reorder: 0,
        truncate: 0,
    };

    /// Only loss, `percent` of datagrams each way.
    pub const fn loss(percent: u8) -> Faults {
        Faults {
            drop: percent,
            ..Faults::NONE
        }
    }
}

/// A back-end that misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trouble {
    /// All three work.
    None,
    /// This back-end never answers (it is not running).
    Silent(Part),
    /// This back-end restarts (forgets every job, takes a new epoch) once it has
    /// received `after` data datagrams.
    Restart {
        /// Which one.
        part: Part,
        /// Data datagrams it takes before it restarts.
        after: u32,
    },
}

/// One job to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// The operation.
    pub op: Op,
    /// How many numbers the client sends (at least 1).
    pub count: u64,
    /// Seeds every random choice (faults, latencies, ids, epochs).
    pub seed: u64,
    /// Faults on the AWS-to-back-end datagrams and on the replies.
    pub faults: Faults,
    /// A back-end that misbehaves.
    pub trouble: Trouble,
    /// The AWS's limits (the back-end timeout is what a silent back-end costs).
    pub limits: Limits,
    /// One-way delay of a reply, in microseconds (jittered up to twice that).
    pub latency_us: u64,
    /// Simulated time after which the run stops as [`Outcome::TimeUp`].
    pub deadline_us: u64,
}

impl Scenario {
    /// `count` numbers reduced with `op`, seeded with `seed`, on a perfect network, a
    /// 1 s back-end timeout and a 200 µs reply latency.
    pub const fn new(op: Op, count: u64, seed: u64) -> Scenario {
        Scenario {
            op,
            count,
            seed,
            faults: Faults::NONE,
            trouble: Trouble::None,
            limits: Limits {
                backend_timeout: Duration::from_secs(1),
                client_idle: Duration::from_secs(30),
            },
            latency_us: 200,
            deadline_us: 3_600_000_000,
        }
    }
}

/// How a simulated job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The client got this answer.
    Answer(Reduction),
    /// The job failed; the client was told (or not, for client-side failures).
    Failed(JobError),
    /// The deadline passed first.
    TimeUp,
    /// Nothing could happen any more and the job had not ended (a bug).
    Stuck,
    /// The client saw something the protocol does not allow (a bug).
    Broken,
}

/// What a simulated job did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// Simulated time at the end, in microseconds.
    pub elapsed_us: u64,
    /// Data and abort datagrams the AWS sent, per back-end.
    pub sent: [u64; 3],
    /// Replies the back-ends sent.
    pub replies: u64,
    /// Table 7 lines announced (in the table's order, by construction of [`Dispatch`]).
    pub lines: u32,
    /// Steps the simulation took.
    pub steps: u64,
    /// The AWS's sender statistics per back-end.
    pub stats: [SenderStats; 3],
    /// Each part's result as the AWS received it.
    pub parts: [Option<Reduction>; 3],
}

/// A reply in flight to the AWS (acks, results and errors: at most `MAX_REPLY` bytes).
#[derive(Clone, Copy)]
struct InFlight {
    at: Instant,
    part: Part,
    len: u8,
    bytes: [u8; MAX_REPLY],
}

impl InFlight {
    const NONE: Option<InFlight> = None;
}

/// The storage of a whole simulated system: the AWS's dispatcher with window `W`, one
/// job slot per back-end, up to `Q` replies in flight, one data datagram held back
/// for reordering, and two frame buffers. Build it once (`const`), reuse it per run.
pub struct World<const W: usize, const Q: usize> {
    dispatch: Dispatch<W>,
    slots: [[JobSlot<u8, W>; 1]; 3],
    replies: [Option<InFlight>; Q],
    held: Option<(Instant, Part, usize)>,
    held_bytes: [u8; MAX_DATAGRAM],
    buf: [u8; MAX_DATAGRAM],
    client: [u8; MAX_DATAGRAM],
}

impl<const W: usize, const Q: usize> Default for World<W, Q> {
    fn default() -> Self {
        Self::new()
    }
}

/// The AWS as the back-ends see it (one peer).
const AWS: u8 = 1;
/// Back-end job expiry: longer than any simulated job.
const EXPIRY_US: u64 = u64::MAX;
/// Steps after which a run is declared stuck (a job of 2^32 numbers needs far fewer
/// steps than this per frame).
const MAX_STEPS: u64 = 1 << 40;

/// Seeded xorshift64*: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn chance(&mut self, percent: u8) -> bool {
        percent > 0 && self.next() % 100 < u64::from(percent)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next().checked_rem(n).unwrap_or(0)
    }

    fn epoch(&mut self) -> Epoch {
        Epoch((self.next() as u16).max(1))
    }
}

/// Per-run state that is small: counters, epochs, the client's position.
struct Run<'a, const Q: usize> {
    sc: &'a Scenario,
    rng: Rng,
    now: Instant,
    epochs: [Epoch; 3],
    taken: [u32; 3],
    report: Report,
    seq: u32,
    pushed: u64,
    /// A client frame is encoded and waits for room.
    pending: Option<usize>,
}

impl<const W: usize, const Q: usize> World<W, Q> {
    /// Empty storage.
    pub const fn new() -> Self {
        World {
            dispatch: Dispatch::new(),
            slots: [[JobSlot::EMPTY], [JobSlot::EMPTY], [JobSlot::EMPTY]],
            replies: [InFlight::NONE; Q],
            held: None,
            held_bytes: [0; MAX_DATAGRAM],
            buf: [0; MAX_DATAGRAM],
            client: [0; MAX_DATAGRAM],
        }
    }

    /// Runs one whole job: the client sends `numbers` (the first `sc.count` of them)
    /// and the run ends when the client has its answer or its error, or at the deadline.
    pub fn run<I: Iterator<Item = i64>>(&mut self, sc: &Scenario, mut numbers: I) -> Report {
        let mut rng = Rng::new(sc.seed);
        let job = JobId((rng.next() as u32).max(1));
        let epochs = [rng.epoch(), rng.epoch(), rng.epoch()];
        let mut run: Run<'_, Q> = Run {
            sc,
            rng,
            now: Instant(0),
            epochs,
            taken: [0; 3],
            report: Report {
                outcome: Outcome::Stuck,
                elapsed_us: 0,
                sent: [0; 3],
                replies: 0,
                lines: 0,
                steps: 0,
                stats: [SenderStats::default(); 3],
                parts: [None; 3],
            },
            seq: 0,
            pushed: 0,
            pending: None,
        };
        self.reset();
        let request = Request {
            op: sc.op,
            total: sc.count,
        };
        self.dispatch.start(job, request, sc.limits, run.now);
        let outcome = self.drive(&mut run, &mut numbers);
        run.report.outcome = outcome;
        run.report.elapsed_us = run.now.0;
        run.report.stats = self.dispatch.stats();
        run.report.parts = Part::ALL.map(|p| self.dispatch.result(p));
        run.report
    }

    fn reset(&mut self) {
        for s in self.slots.iter_mut().flatten() {
            *s = JobSlot::EMPTY;
        }
        self.replies.iter_mut().for_each(|r| *r = None);
        self.held = None;
    }

    fn drive<I: Iterator<Item = i64>>(&mut self, run: &mut Run<'_, Q>, numbers: &mut I) -> Outcome {
        let mut answer = None;
        loop {
            run.report.steps += 1;
            if run.report.steps > MAX_STEPS {
                return Outcome::Stuck;
            }
            self.feed_client(run, numbers);
            self.dispatch.handle_timeout(run.now);
            self.transmit(run);
            while let Some(e) = self.dispatch.poll_event() {
                run.report.lines += 1;
                if let Event::Failed(why) = e {
                    answer = Some(Outcome::Failed(why));
                }
            }
            let mut to_client = [0u8; CLIENT_FRAME_MAX];
            if let Some(n) = self.dispatch.poll_client(&mut to_client) {
                match Frame::parse(to_client.get(..n).unwrap_or(&[])) {
                    Ok(Frame::Accept { .. }) => {}
                    Ok(Frame::Result {
                        op, count, value, ..
                    }) if op == run.sc.op && count == run.sc.count => {
                        answer = Some(Outcome::Answer(Reduction { op, count, value }));
                        self.dispatch.handle_answer_written(run.now);
                    }
                    Ok(Frame::Error { .. }) if answer.is_some() => {}
                    _ => return Outcome::Broken,
                }
                continue;
            }
            if self.dispatch.is_finished() {
                return answer.unwrap_or(Outcome::Broken);
            }
            if run.pending.is_some() && self.dispatch.wants_client() {
                continue;
            }
            let Some(next) = self.next_wake() else {
                return Outcome::Stuck;
            };
            run.now = run.now.max(next);
            if run.now.0 > run.sc.deadline_us {
                return Outcome::TimeUp;
            }
            self.arrive(run);
        }
    }

    /// Encodes client frames and hands them over while the AWS takes them.
    fn feed_client<I: Iterator<Item = i64>>(&mut self, run: &mut Run<'_, Q>, numbers: &mut I) {
        loop {
            if run.pending.is_none() {
                if run.pushed >= run.sc.count {
                    return;
                }
                let mut pack = [0i64; MAX_VALUES];
                let want = (run.sc.count - run.pushed).min(MAX_VALUES as u64) as usize;
                let mut n = 0;
                for (slot, x) in pack.iter_mut().zip(numbers.by_ref().take(want)) {
                    *slot = x;
                    n += 1;
                }
                run.pushed += n as u64;
                let last = run.pushed >= run.sc.count || n < want;
                let values = pack.get(..n).unwrap_or(&[]);
                let len = emit_data(&mut self.client, JobId(0), run.seq, run.sc.op, last, values);
                run.seq = run.seq.wrapping_add(1);
                run.pending = len.ok();
                if n < want {
                    // The iterator ran dry: the AWS sees a short stream.
                    run.pushed = run.sc.count;
                }
            }
            let Some(len) = run.pending else { return };
            let frame = self.client.get(..len).unwrap_or(&[]);
            match self.dispatch.handle_client(run.now, frame) {
                Ok(()) => run.pending = None,
                Err(_) => return,
            }
        }
    }

    /// Every datagram the AWS has to send now, through the faulty link.
    fn transmit(&mut self, run: &mut Run<'_, Q>) {
        while let Some(t) = self.dispatch.poll_transmit(run.now, &mut self.buf) {
            if let Some(s) = run.report.sent.get_mut(t.part.index()) {
                *s += 1;
            }
            let f = run.sc.faults;
            if run.rng.chance(f.drop) {
                continue;
            }
            let mut len = t.len;
            if run.rng.chance(f.truncate) {
                len = len.saturating_sub(1 + run.rng.below(8) as usize);
            }
            if self.held.is_none() && run.rng.chance(f.reorder) {
                // Held back: it arrives after the next datagram, or after a while.
                let at = run.now.plus(run.sc.latency_us.max(1) * 2);
                crate::wire::put(&mut self.held_bytes, 0, self.buf.get(..len).unwrap_or(&[]));
                self.held = Some((at, t.part, len));
                continue;
            }
            let copies = if run.rng.chance(f.duplicate) { 2 } else { 1 };
            for _ in 0..copies {
                self.deliver(run, t.part, len, false);
            }
            self.release_held(run, false);
        }
    }

    fn release_held(&mut self, run: &mut Run<'_, Q>, due_only: bool) {
        if let Some((at, part, len)) = self.held {
            if !due_only || at <= run.now {
                self.held = None;
                self.deliver(run, part, len, true);
            }
        }
    }

    /// Hands `len` bytes of `buf` (or of the held datagram) to back-end `part`, and
    /// puts its reply on the way back.
    fn deliver(&mut self, run: &mut Run<'_, Q>, part: Part, len: usize, held: bool) {
        let i = part.index();
        match run.sc.trouble {
            Trouble::Silent(p) if p == part => return,
            Trouble::Restart { part: p, after } if p == part => {
                let taken = run.taken.get_mut(i).map_or(0, |t| {
                    *t = t.saturating_add(1);
                    *t
                });
                if taken == after.saturating_add(1) {
                    // A new process on the same port: no jobs, a new epoch.
                    if let Some(slots) = self.slots.get_mut(i) {
                        slots.iter_mut().for_each(|s| *s = JobSlot::EMPTY);
                    }
                    let fresh = run.rng.epoch();
                    if let Some(e) = run.epochs.get_mut(i) {
                        *e = Epoch(fresh.0 ^ e.0).max(Epoch(1));
                    }
                }
            }
            _ => {}
        }
        let (Some(slots), Some(&epoch)) = (self.slots.get_mut(i), run.epochs.get(i)) else {
            return;
        };
        let mut out = [0u8; MAX_REPLY];
        let source = if held { &self.held_bytes } else { &self.buf };
        let datagram = source.get(..len).unwrap_or(&[]);
        let mut backend = Backend::new(slots, EXPIRY_US, epoch);
        backend.accept_only_from(AWS);
        let reply = match backend.handle_datagram(run.now, AWS, datagram, &mut out) {
            Handled::Taken { reply }
            | Handled::Completed { reply, .. }
            | Handled::Repeated { reply }
            | Handled::Busy { reply } => reply,
            Handled::Abandoned { .. } | Handled::Discarded(_) => 0,
        };
        if reply > 0 {
            self.reply(run, part, out.get(..reply).unwrap_or(&[]));
        }
    }

    /// Puts a back-end's reply on the faulty way back.
    fn reply(&mut self, run: &mut Run<'_, Q>, part: Part, bytes: &[u8]) {
        run.report.replies += 1;
        let f = run.sc.faults;
        if run.rng.chance(f.drop) {
            return;
        }
        let mut len = bytes.len();
        if run.rng.chance(f.truncate) {
            len = len.saturating_sub(1 + run.rng.below(8) as usize);
        }
        let copies = if run.rng.chance(f.duplicate) { 2 } else { 1 };
        for _ in 0..copies {
            let lat = run.sc.latency_us;
            let mut delay = lat + run.rng.below(lat.max(1));
            if run.rng.chance(f.reorder) {
                delay += run.rng.below(lat.max(1) * 4);
            }
            let mut slot = InFlight {
                at: run.now.plus(delay),
                part,
                len: len as u8,
                bytes: [0; MAX_REPLY],
            };
            crate::wire::put(&mut slot.bytes, 0, bytes.get(..len).unwrap_or(&[]));
            // A full queue drops the reply, as a full socket buffer would.
            if let Some(free) = self.replies.iter_mut().find(|r| r.is_none()) {
                *free = Some(slot);
            }
        }
    }

    /// The earliest time something can happen.
    fn next_wake(&self) -> Option<Instant> {
        let replies = self.replies.iter().flatten().map(|r| r.at);
        let held = self.held.map(|(at, ..)| at);
        replies
            .chain(held)
            .chain(self.dispatch.poll_timeout())
            .min()
    }

    /// Delivers everything due by now, earliest first.
    fn arrive(&mut self, run: &mut Run<'_, Q>) {
        self.release_held(run, true);
        loop {
            let due = self
                .replies
                .iter_mut()
                .filter(|r| r.is_some_and(|r| r.at <= run.now))
                .min_by_key(|r| r.map(|r| r.at));
            let Some(r) = due.and_then(Option::take) else {
                return;
            };
            let bytes = r.bytes.get(..usize::from(r.len)).unwrap_or(&[]);
            let _ = self.dispatch.handle_backend(run.now, r.part, bytes);
        }
    }
}

#[cfg(test)]
mod tests;
