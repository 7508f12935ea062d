//! A real `Sender` -> `Receiver` exchange over a network the fuzzer controls (drops,
//! duplicates, reordering, time steps), plus forged acks and arbitrary bytes parsed as
//! frames. Nothing panics; the sender's window stays within capacity; the receiver
//! counts each pushed frame at most once (and only frames that were pushed), its
//! cumulative point is the first frame not yet counted; and when nothing was forged, a
//! bounded clean run afterwards completes the stream with every frame counted once.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use offload_core::transfer::{Accepted, Instant, PushError, Receiver, Sender};
use offload_core::wire::{Frame, JobId, Sack, Values, MAX_DATAGRAM, MAX_VALUES};
use offload_core::Op;
use std::collections::BTreeMap;

#[derive(Arbitrary, Debug)]
enum Action {
    /// Push a frame of `n` numbers (mod MAX_VALUES + 1).
    Push { n: u8, last: bool },
    /// Ask the sender for up to `k` datagrams; they go onto the forward link.
    Transmit { k: u8 },
    /// Deliver forward datagram `i` (mod queue length); keep a copy if `dup`.
    Deliver { i: u8, dup: bool },
    /// Deliver back-link ack `i`; keep a copy if `dup`.
    DeliverAck { i: u8, dup: bool },
    /// Lose forward datagram `i`.
    Drop { i: u8 },
    /// Lose back-link ack `i`.
    DropAck { i: u8 },
    /// The receiver emits its ack if one is due (or unconditionally if `force`).
    Ack { force: bool },
    /// Time passes; the sender's timer fires if due.
    Advance { us: u32 },
    /// Jump to the sender's deadline and fire it.
    Timeout,
    /// Arbitrary bytes arrive at both ends.
    Garbage(Vec<u8>),
    /// A forged ack reaches the sender.
    ForgedAck { cum: u32, sack: [u8; 4], shift: u8 },
    /// A forged data frame reaches a second, unrelated receiver.
    StrayData { seq: u32, last: bool, n: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    window: u8,
    actions: Vec<Action>,
}

const JOB: JobId = JobId(0x5eed);
const OP: Op = Op::Sum;

/// The numbers of frame `seq`: recognisable, so a misdelivery cannot go unnoticed.
fn numbers(seq: usize, n: usize) -> Vec<i64> {
    (0..n).map(|i| ((seq as i64) << 32) | i as i64).collect()
}

fn pick<T>(q: &mut Vec<T>, i: u8, keep: bool) -> Option<T>
where
    T: Clone,
{
    if q.is_empty() {
        return None;
    }
    let i = usize::from(i) % q.len();
    Some(if keep { q[i].clone() } else { q.remove(i) })
}

struct World<const W: usize> {
    now: Instant,
    tx: Sender<W>,
    rx: Receiver<W>,
    stray: Receiver<W>,
    forward: Vec<Vec<u8>>,
    back: Vec<Vec<u8>>,
    pushed: Vec<Vec<i64>>,
    /// What the receiver counted, by sequence number.
    counted: BTreeMap<u32, Vec<i64>>,
    finished: bool,
    forged: bool,
}

impl<const W: usize> World<W> {
    fn new() -> Self {
        World {
            now: Instant(0),
            tx: Sender::new(JOB, OP, Instant(0)),
            rx: Receiver::new(),
            stray: Receiver::new(),
            forward: Vec::new(),
            back: Vec::new(),
            pushed: Vec::new(),
            counted: BTreeMap::new(),
            finished: false,
            forged: false,
        }
    }

    fn check(&self) {
        let cap = Sender::<W>::CAPACITY;
        assert!(cap >= 1 && cap as usize <= W.max(1));
        assert!(self.tx.free() <= cap);
        assert!(
            self.tx.in_flight() <= cap,
            "{} > {cap}",
            self.tx.in_flight()
        );
        assert_eq!(self.tx.pushed() as usize, self.pushed.len());
        assert!(self.counted.len() <= self.pushed.len());
        for (seq, d) in &self.counted {
            assert_eq!(
                Some(d),
                self.pushed.get(*seq as usize),
                "frame {seq} counted wrong"
            );
        }
        let first_missing = (0u32..).find(|s| !self.counted.contains_key(s)).unwrap();
        assert_eq!(self.rx.cum(), first_missing);
        assert_eq!(self.rx.stats().frames as usize, self.counted.len());
        if self.rx.is_complete() {
            assert!(self.finished);
            assert_eq!(self.counted.len(), self.pushed.len());
        }
        if let Some(t) = self.tx.poll_timeout() {
            // A timer is never set in the past relative to when it was armed by more
            // than the maximum RTO; just make sure it is a sane value.
            assert!(t.0 <= self.now.0.saturating_add(2_000_000_000));
        }
    }

    fn push(&mut self, n: usize, last: bool) {
        let seq = self.pushed.len();
        let xs = numbers(seq, n);
        let free = self.tx.free();
        match self.tx.push(&xs, last) {
            Ok(s) => {
                assert!(!self.finished && free > 0 && n <= MAX_VALUES);
                assert_eq!(s as usize, seq);
                self.pushed.push(xs);
                self.finished = last;
            }
            Err(PushError::Finished) => assert!(self.finished),
            Err(PushError::TooMany) => assert!(n > MAX_VALUES),
            Err(PushError::WindowFull) => assert_eq!(free, 0),
        }
    }

    fn transmit(&mut self, k: usize) -> usize {
        let mut sent = 0;
        while sent < k {
            let Some(d) = self.tx.poll_transmit(self.now) else {
                break;
            };
            assert!(d.len() <= MAX_DATAGRAM);
            match Frame::parse(d) {
                Ok(Frame::Data { job, seq, op, .. }) => {
                    assert_eq!((job, op), (JOB, OP));
                    assert!((seq as usize) < self.pushed.len());
                }
                other => panic!("sender emitted {other:?}"),
            }
            self.forward.push(d.to_vec());
            sent += 1;
        }
        sent
    }

    fn receive(&mut self, d: &[u8]) {
        let Ok(Frame::Data {
            job,
            seq,
            last,
            ack_now,
            values,
            ..
        }) = Frame::parse(d)
        else {
            return;
        };
        let rx = if job == JOB {
            &mut self.rx
        } else {
            &mut self.stray
        };
        let accepted = rx.handle_data(seq, last, ack_now);
        if job == JOB && accepted == Accepted::New {
            let fresh = self.counted.insert(seq, values.iter().collect()).is_none();
            assert!(fresh, "frame {seq} counted twice");
        }
    }

    fn ack(&mut self, force: bool) {
        let info = if force {
            Some(self.rx.ack())
        } else {
            self.rx.poll_ack()
        };
        if let Some(a) = info {
            let mut buf = [0u8; MAX_DATAGRAM];
            let f = Frame::Ack {
                job: JOB,
                cum: a.cum,
                complete: a.complete,
                answer: a.answer,
                sack: a.sack,
                epoch: Default::default(),
            };
            let n = f.emit(&mut buf).unwrap();
            self.back.push(buf[..n].to_vec());
        }
    }

    fn sender_gets(&mut self, d: &[u8]) {
        if let Ok(Frame::Ack {
            job,
            cum,
            sack,
            answer,
            ..
        }) = Frame::parse(d)
        {
            if job == JOB {
                // Acks from our own receiver are never impossible.
                assert!(self
                    .tx
                    .handle_ack_frame(self.now, cum, &sack, answer)
                    .is_ok());
            }
        }
    }

    fn timeout(&mut self) {
        if let Some(t) = self.tx.poll_timeout() {
            self.now = self.now.max(t);
        }
        self.tx.handle_timeout(self.now);
    }

    fn run(&mut self, actions: &[Action]) {
        for a in actions {
            match a {
                Action::Push { n, last } => {
                    self.push(usize::from(*n) % (MAX_VALUES + 2), *last);
                }
                Action::Transmit { k } => {
                    self.transmit(usize::from(*k % 8) + 1);
                }
                Action::Deliver { i, dup } => {
                    if let Some(d) = pick(&mut self.forward, *i, *dup) {
                        self.receive(&d);
                    }
                }
                Action::DeliverAck { i, dup } => {
                    if let Some(d) = pick(&mut self.back, *i, *dup) {
                        self.sender_gets(&d);
                    }
                }
                Action::Drop { i } => {
                    pick(&mut self.forward, *i, false);
                }
                Action::DropAck { i } => {
                    pick(&mut self.back, *i, false);
                }
                Action::Ack { force } => self.ack(*force),
                Action::Advance { us } => {
                    self.now = self.now.plus(u64::from(*us));
                    self.tx.handle_timeout(self.now);
                }
                Action::Timeout => self.timeout(),
                Action::Garbage(bytes) => {
                    if let Ok(f) = Frame::parse(bytes) {
                        match f {
                            Frame::Ack {
                                cum, sack, answer, ..
                            } => {
                                self.forged = true;
                                let _ = self.tx.handle_ack_frame(self.now, cum, &sack, answer);
                            }
                            // Forged data for our stream is indistinguishable from the
                            // real thing (UDP checksums are the guard against
                            // corruption); send it to the stray receiver instead.
                            Frame::Data {
                                seq, last, values, ..
                            } => {
                                let _ = values;
                                self.stray.handle(seq, last);
                            }
                            _ => {}
                        }
                    }
                }
                Action::ForgedAck { cum, sack, shift } => {
                    self.forged = true;
                    let mut s = Sack::default();
                    let at = usize::from(*shift) % (s.0.len() - 3);
                    s.0[at..at + 4].copy_from_slice(sack);
                    // Near the real window half the time, anywhere otherwise.
                    let cum = if cum & 1 == 0 {
                        self.tx.pushed().wrapping_sub(cum % 16)
                    } else {
                        *cum
                    };
                    let _ = self.tx.handle_ack(self.now, cum, &s);
                }
                Action::StrayData { seq, last, n } => {
                    let bytes: Vec<u8> = numbers(0, usize::from(*n % 4))
                        .iter()
                        .flat_map(|v| v.to_be_bytes())
                        .collect();
                    assert!(Values::from_be_bytes(&bytes).is_some());
                    let seq = if seq & 1 == 0 { seq % 16 } else { *seq };
                    self.stray.handle(seq, *last);
                    let _ = self.stray.poll_ack();
                    let _ = self.stray.ack();
                }
            }
            self.check();
        }
    }

    /// A lossless, in-order network from here on: the stream must complete within a
    /// bounded number of rounds.
    fn drain(&mut self) {
        self.forward.clear();
        self.back.clear();
        for _ in 0..10_000 {
            if self.rx.is_complete() && self.tx.is_acked() {
                return;
            }
            if !self.finished && self.tx.free() > 0 {
                self.push(1, true);
            }
            let sent = self.transmit(usize::MAX);
            for d in std::mem::take(&mut self.forward) {
                self.receive(&d);
                self.ack(false);
            }
            for d in std::mem::take(&mut self.back) {
                self.sender_gets(&d);
            }
            self.check();
            if sent == 0 {
                self.timeout();
            }
        }
        panic!(
            "no progress on a clean network: pushed {}, counted {}, in flight {}, rto {}",
            self.pushed.len(),
            self.counted.len(),
            self.tx.in_flight(),
            self.tx.rto()
        );
    }
}

fn go<const W: usize>(actions: &[Action]) {
    let mut w = World::<W>::new();
    w.run(actions);
    if !w.forged {
        w.drain();
    }
}

fuzz_target!(|input: Input| {
    match input.window % 4 {
        0 => go::<1>(&input.actions),
        1 => go::<3>(&input.actions),
        2 => go::<8>(&input.actions),
        _ => go::<300>(&input.actions),
    }
});
