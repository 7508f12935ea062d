//! The whole system on one chip: a client's numbers go into the AWS's `Dispatch`, its
//! datagrams cross seeded lossy links to three `Backend`s, their acks and results cross
//! back, and the answer comes out. Links deliver at once or drop; time jumps to the
//! earliest timer whenever nothing else can move.
use crate::rng::SplitMix64;
use offload_core::backend::{Backend, Handled};
use offload_core::dispatch::{Dispatch, PartEvent};
use offload_core::split::Part;
use offload_core::transfer::Instant;
use offload_core::wire::{Frame, MAX_VALUES};
use offload_core::Reduction;

/// Simulated time a job may take before it counts as hung (microseconds).
const JOB_LIMIT_US: u64 = 600_000_000;

/// Datagrams that crossed (or were lost on) the links.
#[derive(Clone, Copy, Default)]
pub struct Counts {
    /// Data datagrams the AWS sent, first sends and retransmissions.
    pub data: u64,
    /// Acks and results the back-ends sent.
    pub replies: u64,
    /// Datagrams the links dropped, both ways.
    pub dropped: u64,
    /// Retransmission timeouts the AWS waited for.
    pub waits: u64,
}

/// Why a job did not give an answer.
#[derive(Clone, Copy, Debug)]
pub enum SimError {
    /// A back-end failed its part.
    Failed(Part),
    /// Nothing to send and no timer: the protocol is stuck.
    Stuck,
    /// The job ran past its simulated time limit.
    TooLong,
    /// The client had fewer numbers than it announced.
    ShortInput,
}

/// The links between the AWS and the back-ends, with the simulated clock.
pub struct Net {
    rng: SplitMix64,
    loss_percent: u32,
    now: Instant,
    /// What crossed so far in this job.
    pub counts: Counts,
}

impl Net {
    /// Links that drop `loss_percent` of datagrams each way, decided by `seed`.
    pub const fn new(seed: u64, loss_percent: u32) -> Net {
        Net {
            rng: SplitMix64(seed),
            loss_percent,
            now: Instant(0),
            counts: Counts {
                data: 0,
                replies: 0,
                dropped: 0,
                waits: 0,
            },
        }
    }

    /// The simulated clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    fn lost(&mut self) -> bool {
        let lost = self.rng.chance(self.loss_percent);
        if lost {
            self.counts.dropped += 1;
        }
        lost
    }
}

fn reply_len(h: Handled) -> usize {
    match h {
        Handled::Taken { reply }
        | Handled::Completed { reply, .. }
        | Handled::Repeated { reply }
        | Handled::Busy { reply } => reply,
        Handled::Abandoned { .. } | Handled::Discarded(_) => 0,
    }
}

/// Runs one job to its answer: `next` yields the client's numbers (as many as the
/// dispatch was created for), `reply` is the back-ends' one outgoing datagram buffer.
pub fn run<const W: usize>(
    d: &mut Dispatch<W>,
    backends: &mut [Backend<'_, u8, W>; 3],
    net: &mut Net,
    mut next: impl FnMut() -> Option<i64>,
    reply: &mut [u8],
) -> Result<Reduction, SimError> {
    net.counts = Counts::default();
    let start = net.now;
    loop {
        while !d.all_received() && d.has_room() {
            for _ in 0..MAX_VALUES {
                if d.all_received() {
                    break;
                }
                let x = next().ok_or(SimError::ShortInput)?;
                if d.push(x).is_err() {
                    return Err(SimError::Stuck);
                }
            }
        }
        let mut moved = false;
        loop {
            let now = net.now;
            // The AWS's next datagram goes straight to its back-end (or is lost); the
            // borrow of the dispatch's buffer ends with the back-end's reply written.
            let sent = d.poll_transmit(now).map(|(part, bytes)| {
                net.counts.data += 1;
                if net.lost() {
                    return (part, 0);
                }
                let len = match backends.get_mut(part.index()) {
                    Some(b) => reply_len(b.handle_datagram(now, 0, bytes, reply)),
                    None => 0,
                };
                (part, len)
            });
            let Some((part, len)) = sent else { break };
            moved = true;
            if len == 0 {
                continue;
            }
            net.counts.replies += 1;
            if net.lost() {
                continue;
            }
            if let Some(Ok(frame)) = reply.get(..len).map(Frame::parse) {
                if let PartEvent::Failed(p, _) = d.handle_frame(now, part, &frame) {
                    return Err(SimError::Failed(p));
                }
            }
        }
        if let Some(r) = d.final_result() {
            return Ok(r);
        }
        let client_can_send = !d.all_received() && d.has_room();
        if !moved && !client_can_send {
            let t = d.poll_timeout().ok_or(SimError::Stuck)?;
            net.now = net.now.max(t);
            net.counts.waits += 1;
            d.handle_timeout(net.now);
        }
        if net.now.since(start) > JOB_LIMIT_US {
            return Err(SimError::TooLong);
        }
    }
}
