//! The AWS side of one job: split the client's stream into three parts, send each to
//! its back-end reliably, and collect the partial results.

use crate::op::Op;
use crate::reduce::Reduction;
use crate::split::{split, Part};
use crate::transfer::{Instant, Sender};
use crate::wire::{ErrorCode, Frame, JobId, MAX_VALUES};
use arrayvec::ArrayVec;

/// Why a number or a frame could not be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DispatchError {
    /// More numbers than the request announced.
    TooMany,
    /// The part's send window is full; call [`Dispatch::has_room`] first.
    WindowFull,
}

/// What a frame from a back-end meant for the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartEvent {
    /// Nothing the caller needs to act on (an ack, a duplicate).
    Nothing,
    /// The part's result arrived.
    Result(Part),
    /// The back-end failed the part.
    Failed(Part, ErrorCode),
    /// The frame was not valid for this part and was dropped.
    Ignored,
}

/// One job in flight at the AWS.
pub struct Dispatch<const W: usize> {
    job: JobId,
    op: Op,
    sizes: [u64; 3],
    senders: [Sender<W>; 3],
    /// Part being filled: numbers go to parts in order.
    part: usize,
    filled: u64,
    received: u64,
    pack: ArrayVec<i64, MAX_VALUES>,
    results: [Option<Reduction>; 3],
}

impl<const W: usize> Dispatch<W> {
    /// A job reducing `total` numbers with `op`, created at `now`.
    pub fn new(job: JobId, op: Op, total: u64, now: Instant) -> Self {
        let mut d = Dispatch {
            job,
            op,
            sizes: split(total),
            senders: core::array::from_fn(|_| Sender::new(job, op, now)),
            part: 0,
            filled: 0,
            received: 0,
            pack: ArrayVec::new(),
            results: [None; 3],
        };
        d.skip_full_parts();
        d
    }

    /// The job id.
    pub fn job(&self) -> JobId {
        self.job
    }

    /// The operation.
    pub fn op(&self) -> Op {
        self.op
    }

    /// Numbers per part.
    pub fn sizes(&self) -> [u64; 3] {
        self.sizes
    }

    /// Numbers taken from the client so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// True once the client's numbers are all in.
    pub fn all_received(&self) -> bool {
        self.part >= 3
    }

    fn skip_full_parts(&mut self) {
        while self.sizes.get(self.part).is_some_and(|&s| self.filled >= s) {
            self.part += 1;
            self.filled = 0;
        }
    }

    /// True when up to [`MAX_VALUES`] more numbers can be taken without overrunning
    /// any send window.
    pub fn has_room(&self) -> bool {
        // One client frame can close at most two frames of any one part.
        self.senders
            .iter()
            .enumerate()
            .all(|(i, s)| i < self.part || s.free() >= 2)
    }

    /// Takes the next number from the client.
    ///
    /// # Errors
    /// [`DispatchError::TooMany`] past the announced total; [`DispatchError::WindowFull`]
    /// if the caller ignored [`Dispatch::has_room`] (the number is not taken).
    pub fn push(&mut self, x: i64) -> Result<(), DispatchError> {
        let size = *self.sizes.get(self.part).ok_or(DispatchError::TooMany)?;
        let sender = self
            .senders
            .get_mut(self.part)
            .ok_or(DispatchError::TooMany)?;
        if self.pack.is_full() || (self.pack.is_empty() && sender.free() == 0) {
            return Err(DispatchError::WindowFull);
        }
        // Not `push`: its capacity check would be a panic path (checked above anyway).
        self.pack
            .try_push(x)
            .map_err(|_| DispatchError::WindowFull)?;
        self.filled += 1;
        self.received += 1;
        let last = self.filled == size;
        if last || self.pack.is_full() {
            sender
                .push(&self.pack, last)
                .map_err(|_| DispatchError::WindowFull)?;
            self.pack.clear();
            self.skip_full_parts();
        }
        Ok(())
    }

    /// Applies a frame that came from part `part`'s back-end.
    pub fn handle_frame(&mut self, now: Instant, part: Part, frame: &Frame<'_>) -> PartEvent {
        if frame.job() != self.job {
            return PartEvent::Ignored;
        }
        let i = part.index();
        let (Some(sender), Some(size)) = (self.senders.get_mut(i), self.sizes.get(i)) else {
            return PartEvent::Ignored;
        };
        match *frame {
            Frame::Ack { cum, sack, .. } => match sender.handle_ack(now, cum, &sack) {
                Ok(()) => PartEvent::Nothing,
                Err(_) => PartEvent::Ignored,
            },
            Frame::Result {
                op, count, value, ..
            } => {
                if op != self.op || count != *size {
                    return PartEvent::Ignored;
                }
                // A result means every frame arrived: it acknowledges the whole part,
                // whose last ack may have been lost or never sent.
                let everything = sender.pushed();
                if !sender.is_acked() {
                    let _ = sender.handle_ack(now, everything, &crate::wire::Sack::default());
                }
                if !sender.is_acked() {
                    return PartEvent::Ignored;
                }
                let first = !sender.is_closed();
                sender.close();
                if let Some(slot) = self.results.get_mut(i) {
                    *slot = Some(Reduction { op, count, value });
                }
                if first {
                    PartEvent::Result(part)
                } else {
                    PartEvent::Nothing
                }
            }
            Frame::Error { code, .. } if !sender.is_closed() => {
                sender.close();
                PartEvent::Failed(part, code)
            }
            _ => PartEvent::Ignored,
        }
    }

    /// The next datagram to send and the part it is for.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(Part, &[u8])> {
        for (i, s) in self.senders.iter_mut().enumerate() {
            if let Some(d) = s.poll_transmit(now) {
                return Part::from_index(i).map(|p| (p, d));
            }
        }
        None
    }

    /// The earliest timer of the three senders.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.senders.iter().filter_map(|s| s.poll_timeout()).min()
    }

    /// Fires the senders' due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.senders.iter_mut().for_each(|s| s.handle_timeout(now));
    }

    /// True when part `part` was fully acknowledged (or is empty).
    pub fn part_sent(&self, part: Part) -> bool {
        let i = part.index();
        self.sizes.get(i) == Some(&0) || self.senders.get(i).is_some_and(|s| s.is_acked())
    }

    /// Part `part`'s result, once it arrived.
    pub fn result(&self, part: Part) -> Option<Reduction> {
        self.results.get(part.index()).copied().flatten()
    }

    /// The first part whose back-end has owed an answer for at least `limit_us`.
    pub fn stalled(&self, now: Instant, limit_us: u64) -> Option<Part> {
        let i = self
            .senders
            .iter()
            .position(|s| s.stalled_for(now).is_some_and(|t| t >= limit_us))?;
        Part::from_index(i)
    }

    /// The final reduction once every non-empty part reported.
    pub fn final_result(&self) -> Option<Reduction> {
        let mut total = Reduction::empty(self.op);
        for (i, size) in self.sizes.iter().enumerate() {
            if *size == 0 {
                continue;
            }
            total = total.merge((*self.results.get(i)?)?)?;
        }
        self.all_received().then_some(total)
    }

    /// Sender statistics of each part.
    pub fn stats(&self) -> [crate::transfer::SenderStats; 3] {
        [0, 1, 2].map(|i| self.senders.get(i).map(|s| s.stats()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wide::I192;
    use crate::wire::Sack;

    #[test]
    fn numbers_go_to_parts_in_order_ceil_first() {
        let mut d: Dispatch<8> = Dispatch::new(JobId(5), Op::Sum, 10, Instant(0));
        assert_eq!(d.sizes(), [4, 3, 3]);
        for x in 0..10 {
            assert!(d.has_room());
            d.push(x).unwrap();
        }
        assert!(d.all_received());
        assert_eq!(d.push(1), Err(DispatchError::TooMany));
        let mut seen = [0usize; 3];
        while let Some((p, bytes)) = d.poll_transmit(Instant(1)) {
            let Ok(Frame::Data { values, last, .. }) = Frame::parse(bytes) else {
                panic!()
            };
            assert!(last);
            let expect: &[i64] = match p {
                Part::A => &[0, 1, 2, 3],
                Part::B => &[4, 5, 6],
                Part::C => &[7, 8, 9],
            };
            assert!(values.iter().eq(expect.iter().copied()));
            seen[p.index()] += 1;
        }
        assert_eq!(seen, [1, 1, 1]);
        for p in Part::ALL {
            let ack = Frame::Ack {
                epoch: Default::default(),
                job: JobId(5),
                cum: 1,
                complete: true,
                sack: Sack::default(),
            };
            assert_eq!(d.handle_frame(Instant(2), p, &ack), PartEvent::Nothing);
            assert!(d.part_sent(p));
        }
        assert_eq!(d.final_result(), None);
        let res = |count, v| Frame::Result {
            epoch: Default::default(),
            job: JobId(5),
            op: Op::Sum,
            count,
            value: I192::from_i64(v),
        };
        assert_eq!(
            d.handle_frame(Instant(3), Part::A, &res(3, 6)),
            PartEvent::Ignored,
            "wrong count"
        );
        assert_eq!(
            d.handle_frame(Instant(3), Part::A, &res(4, 6)),
            PartEvent::Result(Part::A)
        );
        assert_eq!(
            d.handle_frame(Instant(3), Part::A, &res(4, 6)),
            PartEvent::Nothing
        );
        assert_eq!(
            d.handle_frame(Instant(3), Part::B, &res(3, 15)),
            PartEvent::Result(Part::B)
        );
        assert_eq!(
            d.handle_frame(Instant(3), Part::C, &res(3, 24)),
            PartEvent::Result(Part::C)
        );
        assert_eq!(
            d.final_result().map(|r| (r.count, r.value)),
            Some((10, I192::from_i64(45)))
        );
    }

    #[test]
    fn a_result_acknowledges_its_whole_part() {
        let mut d: Dispatch<8> = Dispatch::new(JobId(2), Op::Sum, 3, Instant(0));
        for x in [1, 2, 3] {
            d.push(x).unwrap();
        }
        while d.poll_transmit(Instant(1)).is_some() {}
        let res = |v| Frame::Result {
            epoch: Default::default(),
            job: JobId(2),
            op: Op::Sum,
            count: 1,
            value: I192::from_i64(v),
        };
        for (p, v) in Part::ALL.into_iter().zip([1, 2, 3]) {
            assert_eq!(d.handle_frame(Instant(2), p, &res(v)), PartEvent::Result(p));
            assert!(d.part_sent(p));
        }
        assert_eq!(d.final_result().map(|r| r.value), Some(I192::from_i64(6)));
        // A result for a part whose frames were never all sent is not believed.
        let mut e: Dispatch<8> = Dispatch::new(JobId(3), Op::Sum, 3, Instant(0));
        e.push(1).unwrap();
        let r = Frame::Result {
            epoch: Default::default(),
            job: JobId(3),
            op: Op::Sum,
            count: 1,
            value: I192::from_i64(1),
        };
        assert_eq!(e.handle_frame(Instant(2), Part::A, &r), PartEvent::Ignored);
    }

    #[test]
    fn empty_parts_are_skipped() {
        let mut d: Dispatch<8> = Dispatch::new(JobId(1), Op::Max, 1, Instant(0));
        assert!(d.part_sent(Part::B) && d.part_sent(Part::C));
        d.push(-4).unwrap();
        assert!(d.all_received());
        let (p, _) = d.poll_transmit(Instant(0)).unwrap();
        assert_eq!(p, Part::A);
        assert!(d.poll_transmit(Instant(0)).is_none());
        d.handle_frame(
            Instant(1),
            Part::A,
            &Frame::Ack {
                epoch: Default::default(),
                job: JobId(1),
                cum: 1,
                complete: true,
                sack: Sack::default(),
            },
        );
        let r = Frame::Result {
            epoch: Default::default(),
            job: JobId(1),
            op: Op::Max,
            count: 1,
            value: I192::from_i64(-4),
        };
        assert_eq!(
            d.handle_frame(Instant(1), Part::A, &r),
            PartEvent::Result(Part::A)
        );
        assert_eq!(d.final_result().map(|r| r.value), Some(I192::from_i64(-4)));
    }

    #[test]
    fn silence_is_reported_per_part() {
        let mut d: Dispatch<8> = Dispatch::new(JobId(1), Op::Min, 3, Instant(0));
        for x in 0..3 {
            d.push(x).unwrap();
        }
        while d.poll_transmit(Instant(0)).is_some() {}
        d.handle_frame(
            Instant(5),
            Part::A,
            &Frame::Ack {
                epoch: Default::default(),
                job: JobId(1),
                cum: 1,
                complete: true,
                sack: Sack::default(),
            },
        );
        let r = Frame::Result {
            epoch: Default::default(),
            job: JobId(1),
            op: Op::Min,
            count: 1,
            value: I192::from_i64(0),
        };
        d.handle_frame(Instant(5), Part::A, &r);
        assert_eq!(d.stalled(Instant(1_000), 10_000), None);
        assert_eq!(d.stalled(Instant(10_000), 10_000), Some(Part::B));
        let err = Frame::Error {
            job: JobId(1),
            code: ErrorCode::Busy,
            arg: 0,
        };
        assert_eq!(
            d.handle_frame(Instant(6), Part::C, &err),
            PartEvent::Failed(Part::C, ErrorCode::Busy)
        );
        let other = Frame::Abort { job: JobId(2) };
        assert_eq!(
            d.handle_frame(Instant(6), Part::C, &other),
            PartEvent::Ignored
        );
    }
}
