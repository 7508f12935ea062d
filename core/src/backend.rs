//! A back-end server (A, B or C) as a sans-IO state machine: datagrams in, replies and
//! events out, over a job table whose storage the caller supplies.

use crate::op::Op;
use crate::reduce::{Accumulator, Reduction};
use crate::transfer::{Instant, Receiver};
use crate::wire::{ErrorCode, Frame, JobId, WireError};
use heapless::Deque;

/// Finished results kept to answer retransmitted data (a lost result datagram).
pub const FINISHED_KEPT: usize = 64;

/// Storage for one job in flight. Allocate a slice of these once and lend it to
/// [`Backend::new`]; its length bounds the jobs served at once.
pub struct JobSlot<P, const W: usize> {
    active: Option<Active<P>>,
    rx: Receiver<W>,
}

impl<P, const W: usize> Default for JobSlot<P, W> {
    fn default() -> Self {
        JobSlot {
            active: None,
            rx: Receiver::new(),
        }
    }
}

#[derive(Clone, Copy)]
struct Active<P> {
    peer: P,
    job: JobId,
    acc: Accumulator,
    last_seen: Instant,
}

#[derive(Clone, Copy)]
struct Finished<P> {
    peer: P,
    job: JobId,
    result: Reduction,
}

/// What became of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Taken; `reply` bytes of the output buffer are to be sent back (0: none).
    Ok {
        /// Reply length.
        reply: usize,
    },
    /// The job's last number arrived: `reply` holds its result frame. Print, then send.
    Completed {
        /// Reply length.
        reply: usize,
        /// The job.
        job: JobId,
        /// Its reduction.
        result: Reduction,
    },
    /// No room for a new job: `reply` holds a busy error.
    Busy {
        /// Reply length.
        reply: usize,
    },
    /// Dropped without a reply.
    Dropped(Drop),
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// Not a valid frame.
    Malformed(WireError),
    /// A kind a back-end never receives.
    UnexpectedKind,
    /// Data whose operation differs from its job's.
    WrongOp,
    /// Data that contradicts its stream (see [`crate::transfer::Accepted`]).
    Inconsistent,
}

/// A back-end's protocol state.
pub struct Backend<'s, P, const W: usize> {
    slots: &'s mut [JobSlot<P, W>],
    finished: Deque<Finished<P>, FINISHED_KEPT>,
    expiry_us: u64,
}

impl<'s, P: Copy + Eq, const W: usize> Backend<'s, P, W> {
    /// A back-end over `slots`; a job silent for `expiry_us` microseconds is dropped
    /// when its slot is needed.
    pub fn new(slots: &'s mut [JobSlot<P, W>], expiry_us: u64) -> Self {
        Backend {
            slots,
            finished: Deque::new(),
            expiry_us,
        }
    }

    /// Jobs in flight now.
    pub fn active(&self) -> usize {
        self.slots.iter().filter(|s| s.active.is_some()).count()
    }

    /// Frees the slots of jobs silent for the expiry time; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let expiry = self.expiry_us;
        let mut n = 0;
        for s in self.slots.iter_mut() {
            if s.active.is_some_and(|a| now.since(a.last_seen) >= expiry) {
                s.active = None;
                n += 1;
            }
        }
        n
    }

    /// Handles one datagram from `peer`, writing any reply into `out`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        peer: P,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Handled {
        let frame = match Frame::parse(datagram) {
            Ok(f) => f,
            Err(e) => return Handled::Dropped(Drop::Malformed(e)),
        };
        match frame {
            Frame::Data {
                job,
                seq,
                op,
                last,
                values,
            } => self.data(now, peer, job, seq, op, last, values, out),
            Frame::Abort { job } => {
                if let Some(s) = self.find(peer, job) {
                    s.active = None;
                }
                Handled::Ok { reply: 0 }
            }
            _ => Handled::Dropped(Drop::UnexpectedKind),
        }
    }

    fn find(&mut self, peer: P, job: JobId) -> Option<&mut JobSlot<P, W>> {
        self.slots
            .iter_mut()
            .find(|s| s.active.is_some_and(|a| a.peer == peer && a.job == job))
    }

    #[allow(clippy::too_many_arguments)] // one frame's fields, unpacked once
    fn data(
        &mut self,
        now: Instant,
        peer: P,
        job: JobId,
        seq: u32,
        op: Op,
        last: bool,
        values: crate::wire::Values<'_>,
        out: &mut [u8],
    ) -> Handled {
        if let Some(done) = self
            .finished
            .iter()
            .find(|f| f.peer == peer && f.job == job)
        {
            if done.result.op != op {
                return Handled::Dropped(Drop::WrongOp);
            }
            return Handled::Ok {
                reply: result_frame(job, done.result, out),
            };
        }
        let expiry = self.expiry_us;
        let index = match self
            .slots
            .iter()
            .position(|s| s.active.is_some_and(|a| a.peer == peer && a.job == job))
        {
            Some(i) => i,
            None => {
                let free = self.slots.iter().position(|s| match s.active {
                    None => true,
                    Some(a) => now.since(a.last_seen) >= expiry,
                });
                let Some(i) = free else {
                    let f = Frame::Error {
                        job,
                        code: ErrorCode::Busy,
                        arg: 0,
                    };
                    return Handled::Busy {
                        reply: f.emit(out).unwrap_or(0),
                    };
                };
                if let Some(s) = self.slots.get_mut(i) {
                    s.rx.reset();
                    s.active = Some(Active {
                        peer,
                        job,
                        acc: Accumulator::new(op),
                        last_seen: now,
                    });
                }
                i
            }
        };
        let Some(slot) = self.slots.get_mut(index) else {
            return Handled::Dropped(Drop::Inconsistent);
        };
        let Some(active) = slot.active.as_mut() else {
            return Handled::Dropped(Drop::Inconsistent);
        };
        if active.acc.op() != op {
            return Handled::Dropped(Drop::WrongOp);
        }
        active.last_seen = now;
        let acc = &mut active.acc;
        let accepted = slot.rx.handle(seq, last, values, |v| acc.extend(v.iter()));
        if accepted == crate::transfer::Accepted::Inconsistent {
            return Handled::Dropped(Drop::Inconsistent);
        }
        if slot.rx.is_complete() {
            let result = active.acc.finish();
            slot.active = None;
            if self.finished.is_full() {
                self.finished.pop_front();
            }
            let _ = self.finished.push_back(Finished { peer, job, result });
            return Handled::Completed {
                reply: result_frame(job, result, out),
                job,
                result,
            };
        }
        let reply = slot.rx.poll_ack().map_or(0, |a| {
            Frame::Ack {
                job,
                cum: a.cum,
                complete: a.complete,
                sack: a.sack,
            }
            .emit(out)
            .unwrap_or(0)
        });
        Handled::Ok { reply }
    }
}

fn result_frame(job: JobId, r: Reduction, out: &mut [u8]) -> usize {
    Frame::Result {
        job,
        op: r.op,
        count: r.count,
        value: r.value,
    }
    .emit(out)
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::wide::I192;
    use crate::wire::{emit_data, MAX_DATAGRAM};
    use std::vec::Vec;

    fn data(job: u32, seq: u32, op: Op, last: bool, xs: &[i64]) -> Vec<u8> {
        let mut b = [0u8; MAX_DATAGRAM];
        let n = emit_data(&mut b, JobId(job), seq, op, last, xs).unwrap();
        b[..n].to_vec()
    }

    #[test]
    fn reduces_jobs_side_by_side_and_answers_again() {
        let mut slots: Vec<JobSlot<u8, 8>> = (0..2).map(|_| JobSlot::default()).collect();
        let mut be = Backend::new(&mut slots, 1_000);
        let mut out = [0u8; MAX_DATAGRAM];
        let t = Instant(0);
        assert_eq!(
            be.handle_datagram(t, 1, &data(10, 0, Op::Sum, false, &[1, 2]), &mut out),
            Handled::Ok { reply: 0 }
        );
        assert_eq!(
            be.handle_datagram(t, 2, &data(10, 0, Op::Min, false, &[7]), &mut out),
            Handled::Ok { reply: 0 }
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
        let Handled::Completed { reply, result, .. } = h else {
            panic!("{h:?}")
        };
        assert_eq!((result.count, result.value), (3, I192::from_i64(6)));
        assert_eq!(
            Frame::parse(&out[..reply]),
            Ok(Frame::Result {
                job: JobId(10),
                op: Op::Sum,
                count: 3,
                value: I192::from_i64(6)
            })
        );
        // A retransmission after completion gets the same result again.
        let h = be.handle_datagram(t, 1, &data(10, 1, Op::Sum, true, &[3]), &mut out);
        let Handled::Ok { reply } = h else { panic!() };
        assert!(matches!(
            Frame::parse(&out[..reply]),
            Ok(Frame::Result { count: 3, .. })
        ));
        assert_eq!(be.active(), 1);
        // Abort frees the other job; expiry frees silent ones.
        let mut abort = [0u8; 16];
        Frame::Abort { job: JobId(10) }.emit(&mut abort).unwrap();
        be.handle_datagram(t, 2, &abort, &mut out);
        assert_eq!(be.active(), 0);
        be.handle_datagram(t, 2, &data(12, 0, Op::Min, false, &[7]), &mut out);
        assert_eq!(be.expire(Instant(999)), 0);
        assert_eq!(be.expire(Instant(1_000)), 1);
    }

    #[test]
    fn garbage_and_contradictions_are_dropped() {
        let mut slots: Vec<JobSlot<u8, 8>> = (0..1).map(|_| JobSlot::default()).collect();
        let mut be = Backend::new(&mut slots, 1_000);
        let mut out = [0u8; MAX_DATAGRAM];
        let t = Instant(0);
        assert!(matches!(
            be.handle_datagram(t, 1, b"hello", &mut out),
            Handled::Dropped(Drop::Malformed(_))
        ));
        let mut ack = [0u8; 48];
        Frame::Ack {
            job: JobId(1),
            cum: 0,
            complete: false,
            sack: Default::default(),
        }
        .emit(&mut ack)
        .unwrap();
        assert_eq!(
            be.handle_datagram(t, 1, &ack, &mut out),
            Handled::Dropped(Drop::UnexpectedKind)
        );
        be.handle_datagram(t, 1, &data(5, 1, Op::Sum, true, &[1]), &mut out);
        assert_eq!(
            be.handle_datagram(t, 1, &data(5, 0, Op::Max, false, &[1]), &mut out),
            Handled::Dropped(Drop::WrongOp)
        );
        assert_eq!(
            be.handle_datagram(t, 1, &data(5, 2, Op::Sum, false, &[1]), &mut out),
            Handled::Dropped(Drop::Inconsistent)
        );
    }
}
