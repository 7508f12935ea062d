//! Reliable delivery over datagrams, sans-IO.
//!
//! A [`Sender`] holds up to `W` data frames in flight and retransmits what is not
//! acknowledged; a [`Receiver`] counts each frame exactly once in whatever order it
//! arrives, keeping only a bitmap of sequence numbers (no frames), and acknowledges
//! cumulatively plus selectively (SACK).
//! Neither touches a socket or a clock: the caller hands in datagrams and the current
//! [`Instant`], and asks what to transmit and when to wake up next.
//!
//! Loss recovery has two paths, both bounded so loss does not turn into a storm:
//! a frame that three later frames have overtaken (per SACK) is resent at once, and
//! again at most once per round trip while it stays missing ("fast retransmit");
//! anything still unacknowledged when the retransmission timeout (RTO, adaptive as in
//! RFC 6298, doubling on each expiry) fires is resent.

use crate::op::Op;
use crate::wire::{
    emit_data, emit_data_be, set_ack_now, JobId, Sack, WireError, MAX_DATAGRAM, MAX_VALUES,
    SACK_BITS,
};

/// A point in time in microseconds since an epoch of the caller's choosing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    /// `self` plus `us` microseconds, saturating.
    pub const fn plus(self, us: u64) -> Instant {
        Instant(self.0.saturating_add(us))
    }

    /// Microseconds from `earlier` to `self`, or 0 if `earlier` is later.
    pub const fn since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Retransmission timeout before any round trip has been measured.
pub const INITIAL_RTO_US: u64 = 100_000;
/// Smallest retransmission timeout: covers scheduling delays on a loaded host.
pub const MIN_RTO_US: u64 = 2_000;
/// Largest retransmission timeout after backoff.
pub const MAX_RTO_US: u64 = 1_000_000;
/// A timeout backs off (doubling) to at most this many times the measured one: each
/// expiry costs one or two probe datagrams, and a peer that answers again after a run of
/// lost probes is heard from within this many round-trip timeouts, not seconds later.
pub const MAX_BACKOFF: u64 = 16;
/// The largest useful send window: one ack's SACK describes `SACK_BITS` frames beyond
/// the cumulative point, so a receiver accepts at most this many frames at once.
pub const MAX_WINDOW: usize = SACK_BITS + 1;
/// A frame overtaken by this many selectively acknowledged frames counts as lost.
pub const DUP_THRESHOLD: u32 = 3;
/// Missing frames a timeout resends at the end of a stream ([`Sender::handle_timeout`]).
pub const TAIL_BURST: u32 = 4;
/// Copies of a timeout's probe, sent back to back: the probe is answered (and the stream
/// unblocked) only if a copy and its ack both arrive, which on a path losing 30% each way
/// is 49% for one copy and 74% for two; each lost round doubles the next timeout, so one
/// datagram per timeout buys off most of the chains of 16, 33, 66, 131 ms seen through
/// the relay at 30% drop.
pub const PROBE_COPIES: u8 = 2;

/// Why [`Sender::push`] refused a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushError {
    /// The window is full; wait for acknowledgements.
    WindowFull,
    /// The last frame was already pushed.
    Finished,
    /// More than [`MAX_VALUES`] numbers.
    TooMany,
}

/// Why [`Sender::handle_ack`] ignored an acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckError {
    /// It acknowledges frames that were never sent.
    Impossible,
}

/// Counters for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Data frames pushed.
    pub frames: u64,
    /// Datagrams handed to the caller, first sends and retransmissions.
    pub datagrams: u64,
    /// Of those, retransmissions and result probes.
    pub retransmits: u64,
    /// Retransmissions of frames that later frames' selective acks showed missing.
    pub sack_resent: u64,
    /// Retransmissions after a timeout: its probe, and what the probe showed missing.
    pub timeout_resent: u64,
    /// Retransmission timeouts that fired.
    pub timeouts: u64,
    /// Acknowledgements taken.
    pub acks: u64,
    /// Of those, ones that told nothing new (duplicated, reordered or repeated).
    pub stale_acks: u64,
}

#[derive(Clone)]
struct SendSlot {
    buf: [u8; MAX_DATAGRAM],
    len: u16,
    sent_at: Instant,
    tx: u16,
    sacked: bool,
    retx: bool,
    /// `retx` was set by a timeout (for the counters).
    by_timeout: bool,
}

impl SendSlot {
    const EMPTY: SendSlot = SendSlot {
        buf: [0; MAX_DATAGRAM],
        len: 0,
        sent_at: Instant(0),
        tx: 0,
        sacked: false,
        retx: false,
        by_timeout: false,
    };
}

/// Sending side of one stream of data frames (one job's part, AWS to back-end).
///
/// After the last frame is acknowledged the sender waits for the peer's result: it
/// resends the last frame as a probe on each timeout until [`Sender::close`] is called.
pub struct Sender<const W: usize> {
    job: JobId,
    op: Op,
    slots: [SendSlot; W],
    /// Oldest unacknowledged sequence number.
    base: u32,
    /// Next sequence number to assign.
    next: u32,
    /// Next sequence number never transmitted.
    fresh: u32,
    retx_pending: u32,
    highest_sacked: Option<u32>,
    finished: bool,
    closed: bool,
    probe_due: bool,
    srtt: Option<u64>,
    rttvar: u64,
    rto: u64,
    backoff: u32,
    deadline: Option<Instant>,
    /// When the first timeout since the last answer sent its probe, until an answer.
    probed_at: Option<Instant>,
    /// The frame a timeout chose as its probe, until it is sent (flagged ack-now).
    probe_seq: Option<u32>,
    /// When the last probe went, until its answer comes.
    probe_sent: Option<Instant>,
    /// Copies of the current probe still to send after the next ([`PROBE_COPIES`]).
    probe_copies: u8,
    /// When a resent frame that later frames' acks still show missing is due to be
    /// resent again (a round trip after its last send), so that a lost resend is
    /// repaired then, and not by the retransmission timeout once acks stop coming (RACK's
    /// reordering timer, RFC 8985 6.2).
    rack_at: Option<Instant>,
    /// When the last ack arrived: a resend is resent again on [`Sender::rack_at`] only
    /// if the peer was heard from after it, so a silent peer gets the backed-off
    /// timeout's probes, not a copy of every missing frame each round trip.
    last_ack_at: Instant,
    last_progress: Instant,
    stats: SenderStats,
}

impl<const W: usize> Sender<W> {
    /// Frames in flight at most: `W`, but no more than one ack's SACK can describe.
    pub const CAPACITY: u32 = if W < SACK_BITS + 1 {
        W as u32
    } else {
        SACK_BITS as u32 + 1
    };

    /// While a loss is being repaired (the peer acknowledged a frame beyond the oldest
    /// missing one), fresh frames go out only while fewer than this many are in flight
    /// beyond the newest acknowledged frame: a quarter of the window (at least four
    /// [`Receiver::ACK_BEYOND_GAP`], so the peer always has frames enough to ack; the
    /// whole window for narrow ones). The frames of a wide window queue in the path (the
    /// relay, a socket buffer), and a resend waits behind them: with all 512 in flight a
    /// repair took a queue's round trip while the missing frame held the window, which
    /// stalled (at 30% drop the window filled behind a lost resend over and over). A
    /// quarter in flight keeps the queue short and three quarters of the window for the
    /// frames a repair keeps waiting. With no loss the cap does not apply: a clean
    /// stream fills the whole window. Through the relay, 3e6 numbers, medians of 13 jobs
    /// interleaved: at 30% drop 0.323 s with the cap against 0.380 s without, 0.200 s
    /// clean either way (a cap at all times, 128 frames, made clean jobs 6-10% slower).
    pub const RECOVERY_PIPE: u32 = {
        let quarter = Self::CAPACITY / 4;
        let least = 4 * Receiver::<W>::ACK_BEYOND_GAP;
        let pipe = if quarter > least { quarter } else { least };
        if pipe < Self::CAPACITY {
            pipe
        } else {
            Self::CAPACITY
        }
    };

    /// A sender for `job`'s frames of `op`, created at `now`. A `const fn`, so it can
    /// initialise a `static`; [`Sender::reset`] reuses one in place.
    pub const fn new(job: JobId, op: Op, now: Instant) -> Self {
        Sender {
            job,
            op,
            slots: [SendSlot::EMPTY; W],
            base: 0,
            next: 0,
            fresh: 0,
            retx_pending: 0,
            highest_sacked: None,
            finished: false,
            closed: false,
            probe_due: false,
            srtt: None,
            rttvar: 0,
            rto: INITIAL_RTO_US,
            backoff: 0,
            deadline: None,
            probed_at: None,
            probe_seq: None,
            probe_sent: None,
            probe_copies: 0,
            rack_at: None,
            last_ack_at: now,
            last_progress: now,
            stats: SenderStats {
                frames: 0,
                datagrams: 0,
                retransmits: 0,
                sack_resent: 0,
                timeout_resent: 0,
                timeouts: 0,
                acks: 0,
                stale_acks: 0,
            },
        }
    }

    /// Makes this sender a new one for `job` and `op` in place, as [`Sender::new`]
    /// would, without building a second window on the stack.
    pub fn reset(&mut self, job: JobId, op: Op, now: Instant) {
        // The slots need no clearing: `push` rewrites every field of a slot it fills.
        self.job = job;
        self.op = op;
        self.base = 0;
        self.next = 0;
        self.fresh = 0;
        self.retx_pending = 0;
        self.highest_sacked = None;
        self.finished = false;
        self.closed = false;
        self.probe_due = false;
        self.srtt = None;
        self.rttvar = 0;
        self.rto = INITIAL_RTO_US;
        self.backoff = 0;
        self.deadline = None;
        self.probed_at = None;
        self.probe_seq = None;
        self.probe_sent = None;
        self.probe_copies = 0;
        self.rack_at = None;
        self.last_ack_at = now;
        self.last_progress = now;
        self.stats = SenderStats::default();
    }

    fn slot(&self, seq: u32) -> Option<&SendSlot> {
        self.slots.get((seq as usize).checked_rem(W)?)
    }

    fn slot_mut(&mut self, seq: u32) -> Option<&mut SendSlot> {
        self.slots.get_mut((seq as usize).checked_rem(W)?)
    }

    /// True while a loss is being repaired and [`Sender::RECOVERY_PIPE`] fresh frames
    /// are in flight beyond the newest frame the peer acknowledged.
    fn pipe_full(&self) -> bool {
        self.highest_sacked
            .is_some_and(|h| self.fresh.wrapping_sub(h.wrapping_add(1)) >= Self::RECOVERY_PIPE)
    }

    /// Room for this many more frames now.
    pub fn free(&self) -> u32 {
        Self::CAPACITY.saturating_sub(self.next.wrapping_sub(self.base))
    }

    /// Frames pushed so far.
    pub fn pushed(&self) -> u32 {
        self.next
    }

    /// Queues a data frame of `values`; `last` marks the end of the stream.
    ///
    /// # Errors
    /// [`PushError`] when the window is full, the stream has ended, or there are too
    /// many values; nothing is queued then.
    pub fn push(&mut self, values: &[i64], last: bool) -> Result<u32, PushError> {
        self.push_with(values.len() > MAX_VALUES, last, |buf, job, seq, op| {
            emit_data(buf, job, seq, op, last, values)
        })
    }

    /// [`Sender::push`] for numbers already in wire order, 8 big-endian bytes each (as a
    /// data frame's [`Values::as_bytes`](crate::wire::Values::as_bytes)): copied, not
    /// decoded and encoded again.
    ///
    /// # Errors
    /// As [`Sender::push`]; [`PushError::TooMany`] also for a length that is not a
    /// multiple of 8.
    pub fn push_be(&mut self, be: &[u8], last: bool) -> Result<u32, PushError> {
        let bad = be.len() % 8 != 0 || be.len() / 8 > MAX_VALUES;
        self.push_with(bad, last, |buf, job, seq, op| {
            emit_data_be(buf, job, seq, op, last, be)
        })
    }

    fn push_with<F>(&mut self, too_many: bool, last: bool, emit: F) -> Result<u32, PushError>
    where
        F: FnOnce(&mut [u8], JobId, u32, Op) -> Result<usize, WireError>,
    {
        if self.finished {
            return Err(PushError::Finished);
        }
        if too_many {
            return Err(PushError::TooMany);
        }
        if self.free() == 0 {
            return Err(PushError::WindowFull);
        }
        let seq = self.next;
        let (job, op) = (self.job, self.op);
        let slot = self.slot_mut(seq).ok_or(PushError::WindowFull)?;
        let len = emit(&mut slot.buf, job, seq, op).map_err(|_| PushError::TooMany)?;
        slot.len = len as u16;
        slot.tx = 0;
        slot.sacked = false;
        slot.retx = false;
        self.next = seq.wrapping_add(1);
        self.finished = last;
        self.stats.frames += 1;
        Ok(seq)
    }

    /// The next datagram to send now, if any. Call until it returns `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<&[u8]> {
        if self.closed {
            return None;
        }
        let (seq, probe) = if let Some((seq, by_timeout)) = self.take_retransmit() {
            self.stats.retransmits += 1;
            if by_timeout {
                self.stats.timeout_resent += 1;
            } else {
                self.stats.sack_resent += 1;
            }
            let probe = self.probe_seq == Some(seq);
            if probe {
                if self.probe_copies > 0 {
                    // Its next copy goes right after this one.
                    self.probe_copies -= 1;
                    self.mark(seq, true);
                } else {
                    self.probe_seq = None;
                }
            }
            // Should this copy be lost too, it is due again `resend_after` from now.
            let again = now.plus(self.resend_after());
            if self.rack_at.map_or(true, |r| again < r) {
                self.rack_at = Some(again);
            }
            (seq, probe)
        } else if self.fresh != self.next && !self.pipe_full() {
            if self.base == self.fresh {
                // Going from idle to busy: the peer's silence counts from here.
                self.last_progress = now;
            }
            let seq = self.fresh;
            self.fresh = seq.wrapping_add(1);
            (seq, false)
        } else if self.probe_due && self.awaiting_result() {
            if self.probe_copies > 0 {
                self.probe_copies -= 1;
            } else {
                self.probe_due = false;
            }
            self.stats.retransmits += 1;
            (self.next.wrapping_sub(1), true)
        } else {
            return None;
        };
        if self.deadline.is_none() {
            self.deadline = Some(now.plus(self.rto));
        }
        self.stats.datagrams += 1;
        if probe {
            self.probe_sent = Some(now);
        }
        // The oldest missing frame holds the window. While the window is more than three
        // quarters full, a resend of it goes twice, back to back (every other send of it
        // is a second copy): a lost resend there costs a round trip or a timeout with
        // nothing else to send, and at 30% drop both copies are lost 9% of the time, one
        // 30% (through the relay, 3e6 numbers at 30% drop: 0.292 s against 0.344, with
        // the same 1.47 data datagrams per frame; a probe has copies of its own).
        let holds_window = seq == self.base && !probe && self.free() < Self::CAPACITY / 4;
        let slot = self.slot_mut(seq)?;
        slot.sent_at = now;
        slot.tx = slot.tx.saturating_add(1);
        if holds_window && slot.tx % 2 == 0 {
            self.mark(seq, false);
        }
        let slot = self.slot_mut(seq)?;
        let frame = slot.buf.get_mut(..usize::from(slot.len))?;
        // A probe asks the receiver to ack at once rather than after its usual count of
        // in-order frames, and to flag that ack as the answer (`handle_answer`); any
        // other send of the frame does not.
        set_ack_now(frame, probe);
        Some(frame)
    }

    /// The oldest frame marked for retransmission, and whether a timeout marked it.
    fn take_retransmit(&mut self) -> Option<(u32, bool)> {
        if self.retx_pending == 0 {
            return None;
        }
        let mut seq = self.base;
        while seq != self.fresh {
            if let Some(slot) = self.slot_mut(seq) {
                if slot.retx {
                    slot.retx = false;
                    let by_timeout = slot.by_timeout;
                    self.retx_pending -= 1;
                    return Some((seq, by_timeout));
                }
            }
            seq = seq.wrapping_add(1);
        }
        self.retx_pending = 0;
        None
    }

    fn rtt_sample(&mut self, sample: u64) {
        // RFC 6298: SRTT and RTTVAR with gains 1/8 and 1/4, RTO = SRTT + 4 RTTVAR.
        let (srtt, rttvar) = match self.srtt {
            None => (sample, sample / 2),
            Some(s) => {
                let dev = s.abs_diff(sample);
                ((7 * s + sample) / 8, (3 * self.rttvar + dev) / 4)
            }
        };
        self.srtt = Some(srtt);
        self.rttvar = rttvar;
        self.rto = self.measured_rto();
    }

    /// RFC 6298's RTO = SRTT + 4 RTTVAR, within bounds; the initial RTO before any sample.
    fn measured_rto(&self) -> u64 {
        self.srtt.map_or(INITIAL_RTO_US, |srtt| {
            (srtt + 4 * self.rttvar).clamp(MIN_RTO_US, MAX_RTO_US)
        })
    }

    /// Applies an acknowledgement from the receiver.
    ///
    /// # Errors
    /// [`AckError::Impossible`] for an ack of frames never sent (ignored).
    pub fn handle_ack(&mut self, now: Instant, cum: u32, sack: &Sack) -> Result<(), AckError> {
        self.handle_ack_frame(now, cum, sack, false)
    }

    /// Applies an acknowledgement flagged as the answer to a frame flagged ack-now (a
    /// timeout's probe). Only such an ack, made after the probe arrived,
    /// shows what of the frames sent before the probe is lost; an ordinary one may have
    /// been on its way already, and resending on it would resend frames that arrived.
    ///
    /// # Errors
    /// As [`Sender::handle_ack`].
    pub fn handle_answer(&mut self, now: Instant, cum: u32, sack: &Sack) -> Result<(), AckError> {
        self.handle_ack_frame(now, cum, sack, true)
    }

    /// Applies an ack frame's fields as they came: [`Sender::handle_answer`] if its
    /// `answer` flag is set, [`Sender::handle_ack`] if not.
    ///
    /// # Errors
    /// As [`Sender::handle_ack`].
    pub fn handle_ack_frame(
        &mut self,
        now: Instant,
        cum: u32,
        sack: &Sack,
        answer: bool,
    ) -> Result<(), AckError> {
        let in_flight = self.fresh.wrapping_sub(self.base);
        let advance = cum.wrapping_sub(self.base);
        self.stats.acks += 1;
        self.last_ack_at = now;
        if advance > in_flight {
            // Either stale (cum below base, wrapped) or beyond anything sent.
            return if self.base.wrapping_sub(cum) <= Self::CAPACITY.saturating_mul(4) {
                self.stats.stale_acks += 1;
                Ok(())
            } else {
                Err(AckError::Impossible)
            };
        }
        let mut progress = advance > 0;
        // One round-trip sample per ack, from the newest frame it newly acknowledges
        // (QUIC's rule, RFC 9002 5.1): an older one waited in the receiver for later
        // frames, or for an ack after a lost one, which is not the path's round trip.
        let mut newest = None;
        while self.base != cum {
            let base = self.base;
            if let Some(slot) = self.slot_mut(base) {
                let sample = (slot.tx == 1 && !slot.sacked).then(|| now.since(slot.sent_at));
                if slot.retx {
                    slot.retx = false;
                    self.retx_pending = self.retx_pending.saturating_sub(1);
                }
                newest = sample.or(newest);
            }
            self.base = base.wrapping_add(1);
        }
        // Selective acknowledgements beyond the cumulative point.
        for i in 0..SACK_BITS as u32 {
            let seq = cum.wrapping_add(1).wrapping_add(i);
            if seq.wrapping_sub(self.base) >= self.fresh.wrapping_sub(self.base) {
                break;
            }
            if !sack.get(i as usize) {
                continue;
            }
            let mut sample = None;
            let mut cleared = false;
            if let Some(slot) = self.slot_mut(seq) {
                if !slot.sacked {
                    slot.sacked = true;
                    progress = true;
                    sample = (slot.tx == 1).then(|| now.since(slot.sent_at));
                    cleared = core::mem::take(&mut slot.retx);
                }
            }
            if cleared {
                self.retx_pending = self.retx_pending.saturating_sub(1);
            }
            newest = sample.or(newest);
            let above = self.highest_sacked.map_or(true, |h| {
                seq.wrapping_sub(self.base) > h.wrapping_sub(self.base)
            });
            if above {
                self.highest_sacked = Some(seq);
            }
        }
        if let Some(h) = self.highest_sacked {
            if h.wrapping_sub(self.base) >= in_flight {
                self.highest_sacked = None;
            }
        }
        // The answer to a probe times the probe itself (the flag makes it unambiguous,
        // though a resend): it alone says how long the path takes now.
        let probe_rtt = if answer {
            self.probe_sent.take().map(|at| now.since(at))
        } else {
            None
        };
        if let Some(s) = probe_rtt.or(newest) {
            self.rtt_sample(s);
        }
        if !progress {
            self.stats.stale_acks += 1;
        }
        if answer {
            if let Some(at) = self.probed_at.take() {
                // The peer answered a timeout's probe: what it still lacks of the frames
                // sent before that timeout is lost, and is resent now.
                self.mark_sent_before(at);
            }
        }
        self.fast_retransmit(now);
        if progress {
            self.last_progress = now;
            // The peer is answering again: the timeout returns from its backoff to what
            // the round trips say (as Linux does), rather than staying doubled until a
            // fresh frame's round trip is measured, which after a loss can be never.
            if self.backoff > 0 {
                self.rto = self.measured_rto();
            }
            self.backoff = 0;
            self.deadline =
                (self.base != self.fresh || self.awaiting_result()).then(|| now.plus(self.rto));
        }
        if self.base == self.fresh && !self.awaiting_result() {
            self.deadline = None;
        }
        Ok(())
    }

    fn fast_retransmit(&mut self, now: Instant) {
        self.rack_at = None;
        let Some(high) = self.highest_sacked else {
            return;
        };
        let span = high.wrapping_sub(self.base);
        let after = self.resend_after();
        for off in 0..span.saturating_sub(DUP_THRESHOLD - 1) {
            let seq = self.base.wrapping_add(off);
            let Some(slot) = self.slot(seq) else {
                continue;
            };
            if slot.sacked || slot.retx {
                continue;
            }
            // A first loss is resent at once; a resent frame still missing is resent
            // again a round trip after its last copy (`resend_after`), if an ack came
            // after that copy went (the peer is there, and has not acked it): one loss
            // costs at most one copy per round trip. The timer makes sure that happens
            // when no ack comes at that moment, as when the window is full behind the
            // missing frame.
            let again = slot.sent_at.plus(after);
            let heard_since = self.last_ack_at > slot.sent_at;
            if slot.tx <= 1 || (again <= now && heard_since) {
                self.mark(seq, false);
            } else if again > now && self.rack_at.map_or(true, |r| again < r) {
                self.rack_at = Some(again);
            }
        }
    }

    /// How long after its last copy a resent frame still missing counts as lost again:
    /// the smoothed round trip and a quarter (RACK's reordering window, RFC 8985 6.2,
    /// is a quarter of the least round trip). The round trip through a queue varies
    /// with the queue, and at exactly one smoothed round trip a copy still on its way
    /// was resent: through the relay at 10% drop, 1.134 datagrams per frame against
    /// 1.120 with the quarter, where 1.111 is what the drops themselves cost.
    fn resend_after(&self) -> u64 {
        let rtt = self.srtt.unwrap_or(self.rto);
        rtt + rtt / 4
    }

    /// When [`Sender::handle_timeout`] should next be called, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            None
        } else {
            match (self.deadline, self.rack_at) {
                (Some(d), Some(r)) => Some(d.min(r)),
                (d, r) => d.or(r),
            }
        }
    }

    /// Fires the timers that are due: a lost resend's round trip (resent again, no
    /// backoff), then the retransmission timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.closed && self.rack_at.is_some_and(|r| r <= now) {
            self.fast_retransmit(now);
        }
        match self.deadline {
            Some(d) if d <= now && !self.closed => {}
            _ => return,
        }
        self.stats.timeouts += 1;
        self.probe_copies = PROBE_COPIES.saturating_sub(1);
        if self.awaiting_result() {
            self.probe_due = true;
        } else {
            // A timeout is more often a silent peer (a back-end acks in-order frames only
            // every `Receiver::ACK_EVERY`, and a sender waiting for its client's next
            // numbers sends no more) or a stall of this host than a lost window. So it
            // resends not the window but one probe, the oldest missing frame, flagged
            // ack-now (in `PROBE_COPIES` copies): the peer acks it at once, lost before or
            // not, and that answer says what is really lost (`handle_answer`). A lost probe
            // or ack is probed again after the doubled timeout.
            self.probe_seq = self.first_missing();
            if let Some(oldest) = self.probe_seq {
                self.mark(oldest, true);
                if self.finished {
                    self.mark_tail(oldest);
                }
            }
            if self.backoff > 0 {
                // The last probe went unanswered: the path is losing, not stalled. The
                // newest missing frame goes too, a second chance at an ack before the
                // doubled timeout (a part of two frames at 30% loss otherwise went a
                // second without one).
                if let Some(newest) = self.last_missing() {
                    self.mark(newest, true);
                }
            }
            // The first unanswered probe's time: an answer to any probe since covers every
            // frame sent before that one (they went ahead of it), but maybe not those sent
            // between it and a later probe (an answer to the first can come after the
            // second timeout, as after a stall: it resent 127 frames that had arrived).
            self.probed_at.get_or_insert(now);
        }
        self.backoff = self.backoff.saturating_add(1);
        let cap = self
            .measured_rto()
            .saturating_mul(MAX_BACKOFF)
            .min(MAX_RTO_US);
        self.rto = self.rto.saturating_mul(2).min(cap);
        self.deadline = Some(now.plus(self.rto));
    }

    /// The oldest frame in flight that the peer has not acknowledged.
    fn first_missing(&self) -> Option<u32> {
        let mut seq = self.base;
        while seq != self.fresh {
            if !self.slot(seq)?.sacked {
                return Some(seq);
            }
            seq = seq.wrapping_add(1);
        }
        None
    }

    /// The newest frame in flight that the peer has not acknowledged.
    fn last_missing(&self) -> Option<u32> {
        let mut seq = self.fresh;
        while seq != self.base {
            seq = seq.wrapping_sub(1);
            if !self.slot(seq)?.sacked {
                return Some(seq);
            }
        }
        None
    }

    /// At the end of the stream (the last frame pushed), a timeout resends with its
    /// probe the next `TAIL_BURST - 1` missing frames after `oldest` as well: no new
    /// frames are coming whose acks would report those, and one probe whose copy or answer
    /// is lost (half the time at 30% loss) costs a doubled timeout per round.
    fn mark_tail(&mut self, oldest: u32) {
        let mut seq = oldest.wrapping_add(1);
        let mut left = TAIL_BURST - 1;
        while left > 0 && seq != self.fresh {
            if self.slot(seq).is_some_and(|s| !s.sacked) {
                self.mark(seq, true);
                left -= 1;
            }
            seq = seq.wrapping_add(1);
        }
    }

    /// Marks in-flight frame `seq` for retransmission, unless acknowledged or marked.
    fn mark(&mut self, seq: u32, by_timeout: bool) {
        if seq.wrapping_sub(self.base) >= self.fresh.wrapping_sub(self.base) {
            return;
        }
        if let Some(slot) = self.slot_mut(seq) {
            if !slot.sacked && !slot.retx {
                slot.retx = true;
                slot.by_timeout = by_timeout;
                self.retx_pending += 1;
            }
        }
    }

    /// Marks every unacknowledged frame in flight that was last sent before `at`.
    fn mark_sent_before(&mut self, at: Instant) {
        let mut seq = self.base;
        while seq != self.fresh {
            if self.slot(seq).is_some_and(|slot| slot.sent_at < at) {
                self.mark(seq, true);
            }
            seq = seq.wrapping_add(1);
        }
    }

    /// True once the last frame was pushed and every frame was acknowledged.
    pub fn is_acked(&self) -> bool {
        self.finished && self.base == self.next
    }

    fn awaiting_result(&self) -> bool {
        self.is_acked() && !self.closed && self.next != 0
    }

    /// Stops all transmission: the peer's result arrived (or the job ended).
    pub fn close(&mut self) {
        self.closed = true;
        self.deadline = None;
    }

    /// True after [`Sender::close`].
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// How long the peer has owed us an answer without progress, or `None` when
    /// nothing is outstanding.
    pub fn stalled_for(&self, now: Instant) -> Option<u64> {
        let outstanding = !self.closed && (self.base != self.fresh || self.awaiting_result());
        outstanding.then(|| now.since(self.last_progress))
    }

    /// Counters so far.
    pub fn stats(&self) -> SenderStats {
        self.stats
    }

    /// The current retransmission timeout in microseconds.
    pub fn rto(&self) -> u64 {
        self.rto
    }

    /// The smoothed round-trip time in microseconds, once one was measured.
    pub fn srtt(&self) -> Option<u64> {
        self.srtt
    }

    /// Whether a frame has been transmitted and not yet acknowledged.
    pub fn in_flight(&self) -> u32 {
        self.fresh.wrapping_sub(self.base)
    }

    /// The stored bytes of frame `seq`.
    #[cfg(test)]
    fn frame(&self, seq: u32) -> Option<&[u8]> {
        self.slot(seq).and_then(|s| s.buf.get(..usize::from(s.len)))
    }
}

/// What [`Receiver::handle`] made of a data frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Seen for the first time: the caller takes its numbers now (order does not matter
    /// to MIN, MAX, SUM and SOS, so nothing is held back).
    New,
    /// Already counted; dropped.
    Duplicate,
    /// More than [`SACK_BITS`] frames beyond the next expected one; dropped.
    OutOfWindow,
    /// Contradicts the stream's end (a second last frame, or data past it); dropped.
    Inconsistent,
}

/// What an acknowledgement says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckInfo {
    /// Next sequence number expected.
    pub cum: u32,
    /// The whole stream arrived.
    pub complete: bool,
    /// It answers a frame flagged ack-now ([`Receiver::request_ack`]): it was made after
    /// that frame arrived.
    pub answer: bool,
    /// Frames counted beyond `cum`.
    pub sack: Sack,
}

/// What a [`Receiver`] saw of its stream, for logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Distinct data frames counted.
    pub frames: u32,
    /// Data frames that had been counted already.
    pub duplicates: u32,
    /// Data frames too far ahead of the cumulative point.
    pub out_of_window: u32,
}

/// Which of the [`SACK_BITS`] sequence numbers after the cumulative point arrived:
/// bit `i` (most significant first, as in [`Sack`]) stands for `cum + 1 + i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen([u64; SACK_BITS / 64]);

impl Seen {
    const NONE: Seen = Seen([0; SACK_BITS / 64]);

    fn get(&self, i: u32) -> bool {
        self.0
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (63 - i % 64)) != 0)
    }

    fn set(&mut self, i: u32) {
        if let Some(w) = self.0.get_mut((i / 64) as usize) {
            *w |= 1 << (63 - i % 64);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// Consecutive set bits from bit 0.
    fn leading_ones(&self) -> u32 {
        let mut n = 0;
        for w in self.0 {
            n += w.leading_ones();
            if w != u64::MAX {
                break;
            }
        }
        n
    }

    /// True if any bit at index `from` or later is set.
    fn any_from(&self, from: u32) -> bool {
        self.0.iter().enumerate().any(|(k, &w)| {
            let first = k as u32 * 64;
            if from <= first {
                w != 0
            } else if from < first + 64 {
                w << (from - first) != 0
            } else {
                false
            }
        })
    }

    /// Drops the first `k` bits; bit `i + k` becomes bit `i`.
    fn shift(&mut self, k: u32) {
        let (q, r) = ((k / 64) as usize, k % 64);
        let old = self.0;
        let word = |i: usize| old.get(i).copied().unwrap_or(0);
        for (i, w) in self.0.iter_mut().enumerate() {
            let hi = word(i + q);
            *w = if r == 0 {
                hi
            } else {
                (hi << r) | (word(i + q + 1) >> (64 - r))
            };
        }
    }

    fn to_sack(self) -> Sack {
        let mut sack = Sack::default();
        for (dst, w) in sack.0.chunks_exact_mut(8).zip(self.0) {
            if let Some(d) = dst.first_chunk_mut::<8>() {
                *d = w.to_be_bytes();
            }
        }
        sack
    }
}

/// `x` within `lo..=hi` (`Ord::clamp` is not `const`).
const fn clamp(x: u32, lo: u32, hi: u32) -> u32 {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// Receiving side of one stream: counts each data frame exactly once, in any order.
///
/// It keeps no frames, only which sequence numbers arrived: the cumulative point plus
/// a bitmap of the [`SACK_BITS`] after it, so it accepts any sender window up to
/// `SACK_BITS + 1` frames and its size (tens of bytes) does not depend on `W`. `W` is
/// the window its sender uses; it only sets how often in-order frames are acknowledged
/// ([`Receiver::ACK_EVERY`]), so a small-window sender never waits for an ack.
pub struct Receiver<const W: usize> {
    cum: u32,
    seen: Seen,
    last_seq: Option<u32>,
    since_ack: u32,
    /// Frames that arrived in order, with no gap open, since the last sign of trouble (a
    /// gap, a duplicate, a probe): from [`Receiver::CALM_AFTER`] on, acks are sparser.
    calm: u32,
    /// Frames that arrived beyond a gap since the last ack.
    out_of_order: u32,
    ack_due: bool,
    answer_due: bool,
    stats: ReceiverStats,
}

impl<const W: usize> Default for Receiver<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize> Receiver<W> {
    /// Sequence numbers accepted at once, from the next expected one on.
    pub const CAPACITY: u32 = SACK_BITS as u32 + 1;
    /// In-order frames between acknowledgements when nothing is amiss: a quarter of
    /// the sender's window, 1 to 16.
    pub const ACK_EVERY: u32 = clamp(Sender::<W>::CAPACITY / 4, 1, 16);

    /// While a gap is open, frames beyond it (and repairs of it) between
    /// acknowledgements: one per 16 frames of window, at least `DUP_THRESHOLD` (when the
    /// sender resends what they overtook) and at most 32 (from 512). At 10% loss a gap is
    /// open almost all the time, so this sets the ack rate of a wide window: one per
    /// `DUP_THRESHOLD` frames was five times the acks of a clean job (1,800 per
    /// 5,500-frame part, through a relay whose every datagram costs time); one per 8,
    /// with every repair acked at once, still 7 times (780); one per 32 with repairs
    /// counted in, twice (220-290), and each ack the sender does not take is a wake-up of
    /// its job spared (the AWS's CPU for a 3e6 job at 10% drop: 0.092-0.099 s, then
    /// 0.059-0.063).
    /// The sender learns of a loss at most 32 frames later, a small part of its window.
    /// A narrow window (8 on a chip) has no frames to spare: waiting for 8 there left
    /// losses to the timeout (in 300 seeded simulated 30%-loss jobs at window 8, 120 hit
    /// the 1 s back-end timeout, against 56 with 3).
    pub const ACK_BEYOND_GAP: u32 = clamp(Sender::<W>::CAPACITY / 16, DUP_THRESHOLD, 32);

    /// A repair of the oldest gap is acknowledged at once when the frames seen reach this
    /// far beyond the cumulative point: the sender's window is then nearly full behind
    /// the gap and waits for word of it. The window less the sender's
    /// [`Sender::RECOVERY_PIPE`]: 384 of 512; 0 for a narrow window, whose every repair
    /// is acknowledged at once.
    pub const CROWDED: u32 = Sender::<W>::CAPACITY - Sender::<W>::RECOVERY_PIPE;

    /// In-order frames between acknowledgements once the stream is calm: an eighth of the
    /// sender's window, at least [`Receiver::ACK_EVERY`] and at most 64. A clean stream of
    /// a wide window needs few acks, and each costs a datagram here and a wake-up at the
    /// sender (a clean 3e7-number job sent over 10,000 acks at one per 16 frames); any
    /// trouble brings back [`Receiver::ACK_EVERY`] at once, since a sender recovering
    /// from a loss waits for news (as Linux TCP's quick acks after a loss; through the
    /// relay at 10% and 30% drop, one ack per 64 frames throughout made jobs 9% slower).
    pub const ACK_EVERY_CALM: u32 = clamp(Sender::<W>::CAPACITY / 8, Self::ACK_EVERY, 64);

    /// In-order frames, with no gap, duplicate or probe among them, after which the
    /// stream is calm: a window's worth (never at 10% loss, where a window of 512 frames
    /// without one loss has a chance of 10^-23).
    pub const CALM_AFTER: u32 = Sender::<W>::CAPACITY;

    /// A receiver expecting sequence number 0.
    pub const fn new() -> Self {
        Receiver {
            cum: 0,
            seen: Seen::NONE,
            last_seq: None,
            since_ack: 0,
            calm: 0,
            out_of_order: 0,
            ack_due: false,
            answer_due: false,
            stats: ReceiverStats {
                frames: 0,
                duplicates: 0,
                out_of_window: 0,
            },
        }
    }

    /// Forgets everything, ready for a new stream, in place.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Next sequence number expected.
    pub fn cum(&self) -> u32 {
        self.cum
    }

    /// True once every frame up to the last arrived.
    pub fn is_complete(&self) -> bool {
        self.last_seq.is_some_and(|l| self.cum == l.wrapping_add(1))
    }

    /// What arrived so far.
    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    /// Takes data frame `seq` (`last` if flagged as the stream's end). On
    /// [`Accepted::New`] the caller reduces its numbers; on anything else it drops them.
    pub fn handle(&mut self, seq: u32, last: bool) -> Accepted {
        let ahead = seq.wrapping_sub(self.cum);
        if self.is_complete() || ahead > u32::MAX / 2 {
            self.ack_due = true;
            self.calm = 0;
            self.stats.duplicates = self.stats.duplicates.saturating_add(1);
            return Accepted::Duplicate;
        }
        if ahead >= Self::CAPACITY {
            self.ack_due = true;
            self.calm = 0;
            self.stats.out_of_window = self.stats.out_of_window.saturating_add(1);
            return Accepted::OutOfWindow;
        }
        let contradicts = match self.last_seq {
            Some(l) => (last && l != seq) || (!last && ahead >= l.wrapping_sub(self.cum)),
            None => last && self.seen.any_from(ahead),
        };
        if contradicts {
            return Accepted::Inconsistent;
        }
        // `Some(news)` for a frame beyond a gap or repairing one, `news` if it is to be
        // told at once; `None` for one in order with no gap open.
        let gap = if ahead > 0 {
            // A gap, or a duplicate beyond one: trouble.
            self.calm = 0;
            if self.seen.get(ahead - 1) {
                // A duplicate: the sender resent it for nothing, or probes; say so now.
                self.ack_due = true;
                self.stats.duplicates = self.stats.duplicates.saturating_add(1);
                return Accepted::Duplicate;
            }
            // A gap before it: counted now, and told when the gap opens and when the
            // stream's last frame comes.
            let opens = self.seen.is_empty();
            self.seen.set(ahead - 1);
            Some(opens || last)
        } else if self.seen.is_empty() {
            self.calm = self.calm.saturating_add(1);
            self.since_ack = self.since_ack.saturating_add(1);
            self.cum = self.cum.wrapping_add(1);
            None
        } else {
            // Filling the oldest gap: a repair. TCP acknowledges each at once (RFC 5681
            // 4.2), but a wide window at 10% loss repairs a gap every ten frames, and
            // the sender needs word of one only when its window is nearly full behind
            // the gap (`CROWDED`). (`seen` is not empty: it holds frames beyond the gap.)
            let crowded = self.seen.any_from(Self::CROWDED.saturating_sub(1));
            let run = self.seen.leading_ones();
            self.seen.shift(run + 1);
            self.cum = self.cum.wrapping_add(run + 1);
            Some(crowded)
        };
        if let Some(news) = gap {
            // The rest are told every `ACK_BEYOND_GAP`, and every one once the last frame
            // is known: what still comes then repairs the stream's tail, and no later
            // frames will come to carry the news before the sender's timeout.
            self.out_of_order = self.out_of_order.saturating_add(1);
            if news || self.out_of_order >= Self::ACK_BEYOND_GAP || self.last_seq.is_some() {
                self.ack_due = true;
            }
        }
        if last {
            self.last_seq = Some(seq);
        }
        self.stats.frames = self.stats.frames.saturating_add(1);
        let every = if self.calm >= Self::CALM_AFTER {
            Self::ACK_EVERY_CALM
        } else {
            Self::ACK_EVERY
        };
        if self.since_ack >= every || self.is_complete() {
            self.ack_due = true;
        }
        Accepted::New
    }

    /// [`Receiver::handle`] for a data frame as it came: if its ack-now flag is set and
    /// it is not inconsistent, an ack flagged as the answer is due at once.
    pub fn handle_data(&mut self, seq: u32, last: bool, ack_now: bool) -> Accepted {
        let accepted = self.handle(seq, last);
        if ack_now && accepted != Accepted::Inconsistent {
            self.request_ack();
        }
        accepted
    }

    /// Makes an acknowledgement due now, whatever the count of in-order frames: the
    /// sender asked for one (a data frame's ack-now flag, set on a timeout's probe).
    pub fn request_ack(&mut self) {
        self.ack_due = true;
        self.answer_due = true;
        self.calm = 0;
    }

    /// The acknowledgement to send now, if one is due.
    pub fn poll_ack(&mut self) -> Option<AckInfo> {
        if !self.ack_due {
            return None;
        }
        let ack = self.ack();
        self.ack_due = false;
        self.answer_due = false;
        self.since_ack = 0;
        self.out_of_order = 0;
        Some(ack)
    }

    /// The current acknowledgement, due or not.
    pub fn ack(&self) -> AckInfo {
        AckInfo {
            cum: self.cum,
            complete: self.is_complete(),
            answer: self.answer_due,
            sack: self.seen.to_sack(),
        }
    }
}

#[cfg(test)]
mod tests;
