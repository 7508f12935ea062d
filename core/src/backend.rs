//! A back-end server (A, B or C) as a sans-IO state machine: datagrams in, replies and
//! events out, over a job table whose storage the caller supplies.
//!
//! A back-end reduces each data frame the moment it arrives: MIN, MAX, SUM and SOS are
//! commutative and exact in [`Accumulator`], so it needs no reorder buffer, only a
//! bitmap [`Receiver`] that counts each sequence number once. A job's whole state is a
//! [`JobSlot`] of about a hundred bytes, whatever the sender's window. Every piece of
//! state is built in place (`const fn` constructors), so a microcontroller can keep
//! the table in a `static`.

use crate::op::Op;
use crate::reduce::{Accumulator, Reduction};
use crate::transfer::{Accepted, Instant, Receiver, ReceiverStats};
use crate::wire::{Epoch, ErrorCode, Frame, JobId, Values, WireError};

/// Storage for one job. Lend a slice of these to [`Backend::new`]; its length bounds
/// the jobs served at once. A slot whose job finished keeps the job's result (to answer
/// a retransmission when the result datagram was lost) until a new job needs the slot.
pub struct JobSlot<P, const W: usize> {
    state: State<P>,
    rx: Receiver<W>,
}

impl<P, const W: usize> JobSlot<P, W> {
    /// An unused slot: `[JobSlot::EMPTY; N]` builds a table in place.
    pub const EMPTY: Self = Self::new();

    /// An unused slot (the same as [`JobSlot::EMPTY`]).
    pub const fn new() -> Self {
        JobSlot {
            state: State::Free,
            rx: Receiver::new(),
        }
    }
}

impl<P, const W: usize> Default for JobSlot<P, W> {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Copy)]
enum State<P> {
    Free,
    Active {
        peer: P,
        job: JobId,
        acc: Accumulator,
        last_seen: Instant,
    },
    Done {
        peer: P,
        job: JobId,
        result: Reduction,
        at: Instant,
    },
}

impl<P: Copy + Eq> State<P> {
    fn is(&self, who: P, id: JobId) -> bool {
        match *self {
            State::Free => false,
            State::Active { peer, job, .. } | State::Done { peer, job, .. } => {
                peer == who && job == id
            }
        }
    }
}

/// What became of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// A data frame of a job in flight: counted, or recognised as a duplicate or as too
    /// far ahead. When `reply` is non-zero, that many bytes of the output buffer (an
    /// ack) are to be sent back.
    Taken {
        /// Reply length (0: no ack due yet).
        reply: usize,
    },
    /// The job's last missing frame arrived: `reply` holds its result frame. Print,
    /// then send.
    Completed {
        /// Reply length.
        reply: usize,
        /// The job.
        job: JobId,
        /// Its reduction.
        result: Reduction,
        /// What arrived of its stream.
        stats: ReceiverStats,
    },
    /// A data frame of a job already finished (its result was lost, or crossed the
    /// sender's probe): `reply` holds the result again.
    Repeated {
        /// Reply length.
        reply: usize,
    },
    /// No room for a new job: `reply` holds a busy error.
    Busy {
        /// Reply length.
        reply: usize,
    },
    /// The AWS abandoned `job` (an abort frame): it is forgotten and nothing is sent.
    Abandoned {
        /// The job.
        job: JobId,
        /// What had arrived of its stream.
        stats: ReceiverStats,
    },
    /// Discarded without a reply.
    Discarded(Discard),
}

/// Why a datagram was discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discard {
    /// Not a valid frame.
    Malformed(WireError),
    /// A kind a back-end never receives.
    UnexpectedKind,
    /// Data whose operation differs from its job's.
    WrongOp,
    /// Data that contradicts its stream (see [`crate::transfer::Accepted`]).
    Inconsistent,
    /// An abort for a job this back-end does not hold.
    UnknownJob,
    /// From a peer other than the AWS (see [`Backend::accept_only_from`]).
    Stranger,
}

/// A back-end's protocol state: a borrowed job table and a few words.
pub struct Backend<'s, P, const W: usize> {
    slots: &'s mut [JobSlot<P, W>],
    expiry_us: u64,
    epoch: Epoch,
    aws: Option<P>,
}

impl<'s, P: Copy + Eq, const W: usize> Backend<'s, P, W> {
    /// A back-end over `slots`, sending `epoch` (random and non-zero per process, see
    /// [`Epoch`]) in its acks and results. A job silent for `expiry_us` microseconds
    /// loses its slot when the slot is needed. The back-end itself is a few words (the
    /// table is the caller's), so it is cheap to return by value.
    pub fn new(slots: &'s mut [JobSlot<P, W>], expiry_us: u64, epoch: Epoch) -> Self {
        Backend {
            slots,
            expiry_us,
            epoch,
            aws: None,
        }
    }

    /// From now on, takes datagrams only from `aws` (the AWS's address and port);
    /// anything else is [`Discard::Stranger`], so no one else can fill the job table.
    pub fn accept_only_from(&mut self, aws: P) {
        self.aws = Some(aws);
    }

    /// The epoch this back-end sends.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Jobs in flight now.
    pub fn active(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, State::Active { .. }))
            .count()
    }

    /// Frees the slots of jobs silent for the expiry time; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let expiry = self.expiry_us;
        let mut n = 0;
        for s in self.slots.iter_mut() {
            if let State::Active { last_seen, .. } = s.state {
                if now.since(last_seen) >= expiry {
                    s.state = State::Free;
                    n += 1;
                }
            }
        }
        n
    }

    /// Handles one datagram from `peer`, writing any reply into `out`
    /// ([`crate::wire::MAX_REPLY`] bytes hold every reply a back-end sends).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        peer: P,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Handled {
        if self.aws.is_some_and(|a| a != peer) {
            return Handled::Discarded(Discard::Stranger);
        }
        let frame = match Frame::parse(datagram) {
            Ok(f) => f,
            Err(e) => return Handled::Discarded(Discard::Malformed(e)),
        };
        match frame {
            Frame::Data {
                job,
                seq,
                op,
                last,
                ack_now,
                values,
            } => {
                let epoch = self.epoch;
                match self.slot_for(now, peer, job, op) {
                    Some(slot) => slot.data(now, epoch, (job, seq, op, last, ack_now), values, out),
                    None => {
                        let f = Frame::Error {
                            job,
                            code: ErrorCode::Busy,
                            arg: 0,
                        };
                        Handled::Busy {
                            reply: f.emit(out).unwrap_or(0),
                        }
                    }
                }
            }
            Frame::Abort { job } => match self.slots.iter_mut().find(|s| s.state.is(peer, job)) {
                Some(s) => {
                    s.state = State::Free;
                    Handled::Abandoned {
                        job,
                        stats: s.rx.stats(),
                    }
                }
                None => Handled::Discarded(Discard::UnknownJob),
            },
            _ => Handled::Discarded(Discard::UnexpectedKind),
        }
    }

    /// The slot holding `peer`'s `job`, or else one taken for it as a new job: a free
    /// slot, else the one whose result is oldest, else one whose job expired. `None`
    /// when every slot holds a live job.
    fn slot_for(
        &mut self,
        now: Instant,
        peer: P,
        job: JobId,
        op: Op,
    ) -> Option<&mut JobSlot<P, W>> {
        let expiry = self.expiry_us;
        let mut best: Option<(usize, (u8, Instant))> = None;
        for (i, s) in self.slots.iter().enumerate() {
            let rank = match s.state {
                _ if s.state.is(peer, job) => (0, Instant(0)),
                State::Free => (1, Instant(0)),
                State::Done { at, .. } => (2, at),
                State::Active { last_seen, .. } if now.since(last_seen) >= expiry => (3, last_seen),
                State::Active { .. } => continue,
            };
            if best.map_or(true, |(_, b)| rank < b) {
                best = Some((i, rank));
            }
            if rank.0 == 0 {
                break;
            }
        }
        let (i, (rank, _)) = best?;
        let slot = self.slots.get_mut(i)?;
        if rank != 0 {
            slot.rx.reset();
            slot.state = State::Active {
                peer,
                job,
                acc: Accumulator::new(op),
                last_seen: now,
            };
        }
        Some(slot)
    }
}

impl<P: Copy + Eq, const W: usize> JobSlot<P, W> {
    /// One data frame for the job this slot holds.
    fn data(
        &mut self,
        now: Instant,
        epoch: Epoch,
        (job, seq, op, last, ack_now): (JobId, u32, Op, bool, bool),
        values: Values<'_>,
        out: &mut [u8],
    ) -> Handled {
        let (acc, last_seen) = match &mut self.state {
            State::Done { result, .. } => {
                if result.op != op {
                    return Handled::Discarded(Discard::WrongOp);
                }
                return Handled::Repeated {
                    reply: result_frame(job, *result, epoch, out),
                };
            }
            State::Free => return Handled::Discarded(Discard::Inconsistent),
            State::Active { acc, last_seen, .. } => (acc, last_seen),
        };
        if acc.op() != op {
            return Handled::Discarded(Discard::WrongOp);
        }
        *last_seen = now;
        match self.rx.handle_data(seq, last, ack_now) {
            Accepted::New => acc.extend(values.iter()),
            Accepted::Inconsistent => return Handled::Discarded(Discard::Inconsistent),
            Accepted::Duplicate | Accepted::OutOfWindow => {}
        }
        if self.rx.is_complete() {
            let result = acc.finish();
            if let State::Active { peer, .. } = self.state {
                self.state = State::Done {
                    peer,
                    job,
                    result,
                    at: now,
                };
            }
            return Handled::Completed {
                reply: result_frame(job, result, epoch, out),
                job,
                result,
                stats: self.rx.stats(),
            };
        }
        let reply = self.rx.poll_ack().map_or(0, |a| {
            Frame::Ack {
                job,
                cum: a.cum,
                complete: a.complete,
                answer: a.answer,
                sack: a.sack,
                epoch,
            }
            .emit(out)
            .unwrap_or(0)
        });
        Handled::Taken { reply }
    }
}

fn result_frame(job: JobId, r: Reduction, epoch: Epoch, out: &mut [u8]) -> usize {
    Frame::Result {
        job,
        op: r.op,
        count: r.count,
        value: r.value,
        epoch,
    }
    .emit(out)
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::wide::I192;
    use crate::wire::{emit_data, MAX_DATAGRAM, MAX_REPLY, SACK_BITS};
    use std::vec::Vec;

    const EPOCH: Epoch = Epoch(0x5a5a);

    fn data(job: u32, seq: u32, op: Op, last: bool, xs: &[i64]) -> Vec<u8> {
        let mut b = [0u8; MAX_DATAGRAM];
        let n = emit_data(&mut b, JobId(job), seq, op, last, xs).unwrap();
        b[..n].to_vec()
    }

    #[test]
    fn reduces_jobs_side_by_side_and_answers_again() {
        let mut slots: [JobSlot<u8, 8>; 2] = [JobSlot::EMPTY; 2];
        let mut be = Backend::new(&mut slots, 1_000, EPOCH);
        let mut out = [0u8; MAX_REPLY];
        let t = Instant(0);
        assert_eq!(
            be.handle_datagram(t, 1, &data(10, 0, Op::Sum, false, &[1, 2]), &mut out),
            Handled::Taken { reply: 0 }
        );
        assert_eq!(
            be.handle_datagram(t, 2, &data(10, 0, Op::Min, false, &[7]), &mut out),
            Handled::Taken { reply: 0 }
        );
        assert_eq!(be.active(), 2);
        // A third job finds no room.
        let busy = be.handle_datagram(t, 3, &data(11, 0, Op::Max, true, &[1]), &mut out);
        let Handled::Busy { reply } = busy else {
            panic!("{busy:?}")
        };
        assert!(matches!(
            Frame::parse(&out[..reply]),
            Ok(Frame::Error {
                code: ErrorCode::Busy,
                ..
            })
        ));
        let h = be.handle_datagram(t, 1, &data(10, 1, Op::Sum, true, &[3]), &mut out);
        let Handled::Completed {
            reply,
            result,
            stats,
            ..
        } = h
        else {
            panic!("{h:?}")
        };
        assert_eq!((result.count, result.value), (3, I192::from_i64(6)));
        assert_eq!(
            stats,
            ReceiverStats {
                frames: 2,
                duplicates: 0,
                out_of_window: 0
            }
        );
        assert_eq!(
            Frame::parse(&out[..reply]),
            Ok(Frame::Result {
                job: JobId(10),
                op: Op::Sum,
                count: 3,
                value: I192::from_i64(6),
                epoch: EPOCH,
            })
        );
        // A retransmission after completion gets the same result again.
        let h = be.handle_datagram(t, 1, &data(10, 1, Op::Sum, true, &[3]), &mut out);
        let Handled::Repeated { reply } = h else {
            panic!("{h:?}")
        };
        assert!(matches!(
            Frame::parse(&out[..reply]),
            Ok(Frame::Result { count: 3, .. })
        ));
        assert_eq!(be.active(), 1);
        // Abort frees the other job; expiry frees silent ones.
        let mut abort = [0u8; 16];
        Frame::Abort { job: JobId(10) }.emit(&mut abort).unwrap();
        assert_eq!(
            be.handle_datagram(t, 2, &abort, &mut out),
            Handled::Abandoned {
                job: JobId(10),
                stats: ReceiverStats {
                    frames: 1,
                    ..Default::default()
                }
            }
        );
        assert_eq!(
            be.handle_datagram(t, 2, &abort, &mut out),
            Handled::Discarded(Discard::UnknownJob)
        );
        assert_eq!(be.active(), 0);
        be.handle_datagram(t, 2, &data(12, 0, Op::Min, false, &[7]), &mut out);
        assert_eq!(be.expire(Instant(999)), 0);
        assert_eq!(be.expire(Instant(1_000)), 1);
    }

    #[test]
    fn garbage_and_contradictions_are_dropped() {
        let mut slots = [JobSlot::<u8, 8>::EMPTY];
        let mut be = Backend::new(&mut slots, 1_000, EPOCH);
        let mut out = [0u8; MAX_REPLY];
        let t = Instant(0);
        assert!(matches!(
            be.handle_datagram(t, 1, b"hello", &mut out),
            Handled::Discarded(Discard::Malformed(_))
        ));
        let mut ack = [0u8; MAX_REPLY];
        Frame::Ack {
            job: JobId(1),
            cum: 0,
            complete: false,
            answer: false,
            sack: Default::default(),
            epoch: Epoch(1),
        }
        .emit(&mut ack)
        .unwrap();
        assert_eq!(
            be.handle_datagram(t, 1, &ack, &mut out),
            Handled::Discarded(Discard::UnexpectedKind)
        );
        be.handle_datagram(t, 1, &data(5, 1, Op::Sum, true, &[1]), &mut out);
        assert_eq!(
            be.handle_datagram(t, 1, &data(5, 0, Op::Max, false, &[1]), &mut out),
            Handled::Discarded(Discard::WrongOp)
        );
        assert_eq!(
            be.handle_datagram(t, 1, &data(5, 2, Op::Sum, false, &[1]), &mut out),
            Handled::Discarded(Discard::Inconsistent)
        );
    }

    #[test]
    fn only_the_aws_may_start_jobs() {
        let mut slots = [JobSlot::<u8, 8>::EMPTY; 2];
        let mut be = Backend::new(&mut slots, 1_000, EPOCH);
        be.accept_only_from(7);
        let mut out = [0u8; MAX_REPLY];
        for stranger in [1u8, 2, 3] {
            let d = data(u32::from(stranger), 0, Op::Sum, false, &[1]);
            assert_eq!(
                be.handle_datagram(Instant(0), stranger, &d, &mut out),
                Handled::Discarded(Discard::Stranger)
            );
        }
        assert_eq!(be.active(), 0);
        let d = data(9, 0, Op::Sum, true, &[4]);
        assert!(matches!(
            be.handle_datagram(Instant(0), 7, &d, &mut out),
            Handled::Completed { .. }
        ));
    }

    /// Frames in any order, each several times, with a window of 257 in flight: every
    /// number counted once, and the acks and the result carry the epoch.
    #[test]
    fn counts_each_frame_once_in_any_order_with_tiny_state() {
        const FRAMES: u32 = SACK_BITS as u32 + 1;
        let xs: Vec<i64> = (0..FRAMES as i64 * 3).map(|i| i * i - 500).collect();
        let mut slots = [JobSlot::<u8, 512>::EMPTY];
        let mut be = Backend::new(&mut slots, 1_000, EPOCH);
        let mut out = [0u8; MAX_REPLY];
        // Reverse order, then everything again: the first frame arrives last. (Miri takes
        // 50 ms a datagram here: it repeats only the first 16 after completion.)
        let again = if cfg!(miri) { 16 } else { FRAMES };
        let order: Vec<u32> = (0..FRAMES).rev().chain(0..again).collect();
        let mut completed = None;
        for (k, &seq) in order.iter().enumerate() {
            let chunk = &xs[seq as usize * 3..seq as usize * 3 + 3];
            let d = data(3, seq, Op::Sos, seq == FRAMES - 1, chunk);
            match be.handle_datagram(Instant(k as u64), 1, &d, &mut out) {
                Handled::Taken { reply } if reply > 0 => {
                    let Ok(Frame::Ack { epoch, .. }) = Frame::parse(&out[..reply]) else {
                        panic!("not an ack")
                    };
                    assert_eq!(epoch, EPOCH);
                }
                Handled::Completed { result, stats, .. } => {
                    assert!(completed.is_none());
                    completed = Some((result, stats));
                }
                Handled::Taken { .. } | Handled::Repeated { .. } => {}
                h => panic!("{h:?}"),
            }
        }
        let (result, stats) = completed.unwrap();
        let sos: i128 = xs.iter().map(|&x| i128::from(x) * i128::from(x)).sum();
        assert_eq!(
            (result.count, result.value),
            (xs.len() as u64, I192::from_i128(sos))
        );
        assert_eq!(stats.frames, FRAMES);
        // Per-job state is bytes, not a window of frames.
        // The receiver's bitmap (SACK_BYTES) and under 150 bytes besides, at any window.
        let slot = core::mem::size_of::<JobSlot<u8, 512>>();
        assert!(slot < crate::wire::SACK_BYTES + 150, "{slot}");
        assert_eq!(slot, core::mem::size_of::<JobSlot<u8, 4>>());
    }

    #[test]
    fn a_frame_flagged_ack_now_is_acknowledged_at_once() {
        let mut slots = [JobSlot::<u8, 64>::EMPTY];
        let mut be = Backend::new(&mut slots, 1_000, EPOCH);
        let mut out = [0u8; MAX_REPLY];
        // In order and under the ack interval: no ack.
        let h = be.handle_datagram(Instant(0), 1, &data(5, 0, Op::Sum, false, &[1]), &mut out);
        assert_eq!(h, Handled::Taken { reply: 0 });
        // The next frame flagged ack-now, as a timeout's probe is: an ack at once, of both.
        let mut probe = data(5, 1, Op::Sum, false, &[2]);
        crate::wire::set_ack_now(&mut probe, true);
        let h = be.handle_datagram(Instant(1), 1, &probe, &mut out);
        assert_eq!(h, Handled::Taken { reply: MAX_REPLY });
        assert!(matches!(
            Frame::parse(&out),
            Ok(Frame::Ack {
                job: JobId(5),
                cum: 2,
                complete: false,
                ..
            })
        ));
        // Counted once: a repeat of it is a duplicate, acked at once too.
        let h = be.handle_datagram(Instant(2), 1, &probe, &mut out);
        assert_eq!(h, Handled::Taken { reply: MAX_REPLY });
        let d = data(5, 2, Op::Sum, true, &[3]);
        let Handled::Completed { result, .. } = be.handle_datagram(Instant(3), 1, &d, &mut out)
        else {
            panic!("not completed");
        };
        assert_eq!((result.count, result.value), (3, I192::from_i64(6)));
    }

    #[test]
    fn frames_beyond_the_bitmap_are_dropped_and_counted() {
        let mut slots = [JobSlot::<u8, 8>::EMPTY];
        let mut be = Backend::new(&mut slots, 1_000, EPOCH);
        let mut out = [0u8; MAX_REPLY];
        let far = SACK_BITS as u32 + 1;
        let h = be.handle_datagram(
            Instant(0),
            1,
            &data(4, far, Op::Max, false, &[99]),
            &mut out,
        );
        assert!(matches!(h, Handled::Taken { reply: MAX_REPLY }), "{h:?}");
        let d = data(4, far - 1, Op::Max, true, &[5]);
        be.handle_datagram(Instant(0), 1, &d, &mut out);
        let mut done = None;
        for seq in 0..far - 1 {
            let d = data(4, seq, Op::Max, false, &[seq as i64]);
            if let Handled::Completed { result, stats, .. } =
                be.handle_datagram(Instant(0), 1, &d, &mut out)
            {
                done = Some((result, stats));
            }
        }
        let (result, stats) = done.unwrap();
        // 99 was beyond the window: dropped, not counted.
        assert_eq!(result.value, I192::from_i64(i64::from(far) - 2));
        assert_eq!(result.count, u64::from(far));
        assert_eq!((stats.frames, stats.out_of_window), (far, 1));
    }
}
