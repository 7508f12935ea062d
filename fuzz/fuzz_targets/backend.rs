//! A `Backend` over a small slot table, fed datagrams from arbitrary peers: raw bytes
//! and well-formed frames with colliding job ids, sequence numbers and operations.
//! It never panics, `active()` never exceeds the slot count, and every reply it asks
//! for is a well-formed frame of the kind the outcome names.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use offload_core::backend::{Backend, Discard, Handled, JobSlot};
use offload_core::transfer::Instant;
use offload_core::wire::{emit_data, Epoch, ErrorCode, Frame, JobId, MAX_DATAGRAM};
use offload_core::Op;

#[derive(Arbitrary, Debug)]
enum Event {
    Raw {
        peer: u8,
        bytes: Vec<u8>,
    },
    Data {
        peer: u8,
        job: u8,
        seq: u8,
        op: u8,
        last: bool,
        n: u8,
    },
    Abort {
        peer: u8,
        job: u8,
    },
    Other {
        peer: u8,
        job: u8,
        kind: u8,
    },
    Advance {
        us: u16,
    },
    Expire,
}

#[derive(Arbitrary, Debug)]
struct Input {
    slots: u8,
    expiry: u16,
    small_out: bool,
    /// Take datagrams only from peer 0 (the AWS).
    only_aws: bool,
    events: Vec<Event>,
}

const W: usize = 4;

fuzz_target!(|input: Input| {
    let n_slots = usize::from(input.slots % 4);
    let mut slots: Vec<JobSlot<u8, W>> = (0..n_slots).map(|_| JobSlot::default()).collect();
    let epoch = Epoch(0xe0c4);
    let mut be = Backend::new(&mut slots, u64::from(input.expiry), epoch);
    if input.only_aws {
        be.accept_only_from(0);
    }
    let mut now = Instant(0);
    let mut out = [0u8; MAX_DATAGRAM];
    // A reply buffer too small for any reply must not cause a panic either.
    let out_len = if input.small_out { 20 } else { MAX_DATAGRAM };
    let mut frame = [0u8; MAX_DATAGRAM];

    for ev in &input.events {
        let (peer, datagram): (u8, &[u8]) = match ev {
            Event::Raw { peer, bytes } => (*peer, bytes),
            Event::Data {
                peer,
                job,
                seq,
                op,
                last,
                n,
            } => {
                let xs: Vec<i64> = (0..i64::from(*n % 5)).map(|i| i - 2).collect();
                let op = Op::ALL[usize::from(op % 8).min(3)];
                let len = emit_data(
                    &mut frame,
                    JobId(u32::from(job % 4)),
                    u32::from(seq % 8),
                    op,
                    *last,
                    &xs,
                )
                .unwrap();
                (peer % 3, &frame[..len])
            }
            Event::Abort { peer, job } => {
                let f = Frame::Abort {
                    job: JobId(u32::from(job % 4)),
                };
                let len = f.emit(&mut frame).unwrap();
                (peer % 3, &frame[..len])
            }
            Event::Other { peer, job, kind } => {
                let job = JobId(u32::from(job % 4));
                let f = match kind % 4 {
                    0 => Frame::Request {
                        job,
                        op: Op::Sum,
                        total: 3,
                    },
                    1 => Frame::Ack {
                        job,
                        cum: 0,
                        complete: false,
                        answer: false,
                        sack: Default::default(),
                        epoch: Epoch(3),
                    },
                    2 => Frame::Result {
                        job,
                        op: Op::Min,
                        count: 1,
                        value: Default::default(),
                        epoch: Epoch(3),
                    },
                    _ => Frame::Error {
                        job,
                        code: ErrorCode::Busy,
                        arg: 1,
                    },
                };
                let len = f.emit(&mut frame).unwrap();
                (peer % 3, &frame[..len])
            }
            Event::Advance { us } => {
                now = now.plus(u64::from(*us));
                continue;
            }
            Event::Expire => {
                let before = be.active();
                let freed = be.expire(now);
                assert_eq!(be.active(), before - freed);
                continue;
            }
        };
        let parsed_job = Frame::parse(datagram).ok().map(|f| f.job());
        let h = be.handle_datagram(now, peer, datagram, &mut out[..out_len]);
        assert!(be.active() <= n_slots, "{} > {n_slots}", be.active());
        if input.only_aws && peer != 0 {
            assert_eq!(h, Handled::Discarded(Discard::Stranger));
        }
        let reply = match h {
            Handled::Taken { reply } | Handled::Repeated { reply } | Handled::Busy { reply } => {
                reply
            }
            Handled::Completed {
                reply,
                job,
                result,
                stats,
            } => {
                assert!(stats.frames >= 1);
                assert_eq!(Some(job), parsed_job);
                if reply > 0 {
                    assert_eq!(
                        Frame::parse(&out[..reply]),
                        Ok(Frame::Result {
                            job,
                            op: result.op,
                            count: result.count,
                            value: result.value,
                            epoch,
                        })
                    );
                }
                reply
            }
            Handled::Abandoned { job, .. } => {
                assert_eq!(Some(job), parsed_job);
                0
            }
            Handled::Discarded(_) => 0,
        };
        assert!(reply <= out_len);
        if reply > 0 {
            let f = Frame::parse(&out[..reply]).expect("replies are well formed");
            assert_eq!(Some(f.job()), parsed_job);
            match (h, f) {
                (Handled::Busy { .. }, Frame::Error { code, .. }) => {
                    assert_eq!(code, ErrorCode::Busy)
                }
                (Handled::Taken { .. }, Frame::Ack { epoch: e, .. })
                | (Handled::Repeated { .. }, Frame::Result { epoch: e, .. })
                | (Handled::Completed { .. }, Frame::Result { epoch: e, .. }) => {
                    assert_eq!(e, epoch)
                }
                (h, f) => panic!("{h:?} replied with {f:?}"),
            }
        }
    }
});
