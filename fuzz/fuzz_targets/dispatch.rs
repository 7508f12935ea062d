//! A `Dispatch` fed arbitrary client frames (well-formed or not), arbitrary back-end
//! datagrams (forged acks, results, errors with any fields, or raw bytes), timers and
//! closes. It never panics, and whatever happens:
//! - Table 7's events come in the table's order, each at most once, `Failed` last;
//! - the client gets an accept first, then at most one result or error, and a result
//!   only for the whole count;
//! - no back-end gets the last frame of part A or B before the client's last frame;
//! - aborts go out only after a failure.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use offload_core::dispatch::{parse_request, Dispatch, Event, Limits, Request, CLIENT_FRAME_MAX};
use offload_core::split::Part;
use offload_core::transfer::Instant;
use offload_core::wide::I192;
use offload_core::wire::{emit_data, Epoch, ErrorCode, Frame, JobId, Sack, MAX_DATAGRAM};
use offload_core::Op;
use std::time::Duration;

#[derive(Arbitrary, Debug)]
enum Step {
    /// The next well-formed data frame of `n` numbers (flagged last if it ends them).
    Data {
        n: u8,
        value: i64,
    },
    /// A data frame with chosen fields.
    Forged {
        seq: u8,
        op: u8,
        last: bool,
        n: u8,
    },
    Raw(Vec<u8>),
    /// Arbitrary bytes as a client's first frame: the AWS's request check.
    Request(Vec<u8>),
    /// A client frame the AWS's reader could not frame (a bad header).
    Malformed(u8),
    Ack {
        part: u8,
        cum: u16,
        sack: [u8; 4],
        epoch: u8,
    },
    Result {
        part: u8,
        op: u8,
        count: u16,
        value: i64,
        epoch: u8,
    },
    Error {
        part: u8,
        code: u8,
    },
    Junk {
        part: u8,
        bytes: Vec<u8>,
    },
    Advance {
        us: u32,
    },
    Close,
    AnswerWritten,
}

#[derive(Arbitrary, Debug)]
struct Input {
    op: u8,
    total: u16,
    timeout_us: u32,
    idle_us: u32,
    steps: Vec<Step>,
}

const W: usize = 4;

fn line(e: &Event) -> usize {
    match e {
        Event::Received { .. } => 0,
        Event::Sent { part, .. } => 1 + part.index(),
        Event::PartResult { part, .. } => 4 + part.index(),
        Event::Reduced { .. } => 7,
        Event::Answered => 8,
        Event::Failed(_) => 9,
    }
}

fuzz_target!(|input: Input| {
    let op = Op::ALL[usize::from(input.op % 4)];
    let total = u64::from(input.total.max(1));
    let job = JobId(0x5eed);
    let limits = Limits {
        backend_timeout: Duration::from_micros(u64::from(input.timeout_us)),
        client_idle: Duration::from_micros(u64::from(input.idle_us)),
    };
    let mut d: Box<Dispatch<W>> = Box::default();
    d.start(job, Request { op, total }, limits, Instant(0));
    let mut now = Instant(0);
    let mut seq = 0u32;
    let mut sent = 0u64; // numbers of the well-formed Data steps
    let mut client_done = false;
    let mut last_line = None;
    let mut failed = false;
    let mut client_frames = 0;
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut out = [0u8; MAX_DATAGRAM];
    for step in input.steps.iter().take(256) {
        match step {
            Step::Data { n, value } => {
                let left = total - sent;
                let n = u64::from(*n % 183).min(left).max(1);
                let xs = vec![*value; n as usize];
                let last = sent + n == total;
                let len = emit_data(&mut buf, JobId(0), seq, op, last, &xs).unwrap();
                if d.handle_client(now, &buf[..len]).is_ok() {
                    seq += 1;
                    sent += n;
                    client_done |= last;
                }
            }
            Step::Forged { seq, op, last, n } => {
                let op = Op::ALL[usize::from(op % 4)];
                let xs = vec![1i64; usize::from(*n % 183)];
                let len = emit_data(&mut buf, JobId(0), u32::from(*seq), op, *last, &xs).unwrap();
                let _ = d.handle_client(now, &buf[..len]);
                // A forged frame that happens to be valid counts like any other.
                client_done |= d.received() == total;
            }
            Step::Raw(bytes) => {
                let _ = d.handle_client(now, bytes);
            }
            Step::Request(bytes) => match parse_request(bytes) {
                Ok(r) => {
                    assert!(matches!(
                        Frame::parse(bytes),
                        Ok(Frame::Request { op, total, .. }) if op == r.op && total == r.total && total > 0
                    ));
                }
                Err(refusal) => {
                    assert!(!refusal.to_string().is_empty());
                    let len = refusal.emit(&mut buf);
                    assert!(matches!(
                        Frame::parse(&buf[..len]),
                        Ok(Frame::Error { code, .. }) if code == refusal.code()
                    ));
                }
            },
            Step::Malformed(kind) => {
                let e = [
                    offload_core::wire::WireError::Truncated,
                    offload_core::wire::WireError::BadMagic,
                    offload_core::wire::WireError::Reserved,
                ][usize::from(kind % 3)];
                d.handle_client_malformed(now, e);
            }
            Step::Ack {
                part,
                cum,
                sack,
                epoch,
            } => {
                let mut s = Sack::default();
                s.0[..4].copy_from_slice(sack);
                let f = Frame::Ack {
                    job,
                    epoch: Epoch(u16::from(*epoch % 2) + 1),
                    cum: u32::from(*cum),
                    complete: false,
                    answer: *cum & 1 == 1,
                    sack: s,
                };
                let len = f.emit(&mut buf).unwrap();
                let _ = d.handle_backend(now, Part::ALL[usize::from(part % 3)], &buf[..len]);
            }
            Step::Result {
                part,
                op,
                count,
                value,
                epoch,
            } => {
                let f = Frame::Result {
                    job,
                    epoch: Epoch(u16::from(*epoch % 2) + 1),
                    op: Op::ALL[usize::from(op % 4)],
                    count: u64::from(*count),
                    value: I192::from_i64(*value),
                };
                let len = f.emit(&mut buf).unwrap();
                let _ = d.handle_backend(now, Part::ALL[usize::from(part % 3)], &buf[..len]);
            }
            Step::Error { part, code } => {
                let code = [
                    ErrorCode::Busy,
                    ErrorCode::BackendLost,
                    ErrorCode::BadRequest,
                ][usize::from(code % 3)];
                let f = Frame::Error { job, code, arg: 0 };
                let len = f.emit(&mut buf).unwrap();
                let _ = d.handle_backend(now, Part::ALL[usize::from(part % 3)], &buf[..len]);
            }
            Step::Junk { part, bytes } => {
                let _ = d.handle_backend(now, Part::ALL[usize::from(part % 3)], bytes);
            }
            Step::Advance { us } => {
                now = now.plus(u64::from(*us));
                d.handle_timeout(now);
            }
            Step::Close => d.handle_client_closed(now),
            Step::AnswerWritten => d.handle_answer_written(now),
        }
        while let Some(t) = d.poll_transmit(now, &mut out) {
            match Frame::parse(&out[..t.len]).unwrap() {
                Frame::Data { last, .. } => {
                    assert!(
                        !last || client_done || t.part == Part::C,
                        "part {:?}'s last frame before the client's",
                        t.part
                    );
                    assert!(!failed, "data after the failure");
                }
                Frame::Abort { job: j } => {
                    assert_eq!(j, job);
                    assert!(d.error().is_some(), "abort without a failure");
                }
                other => panic!("{other:?}"),
            }
        }
        while let Some(e) = d.poll_event() {
            let l = line(&e);
            assert!(
                last_line.map_or(true, |p| l > p),
                "{e:?} after line {last_line:?}"
            );
            last_line = Some(l);
            if let Event::Reduced { result } = e {
                assert_eq!(result.count, total);
            }
            failed |= matches!(e, Event::Failed(_));
        }
        let mut to_client = [0u8; CLIENT_FRAME_MAX];
        if let Some(n) = d.poll_client(&mut to_client) {
            client_frames += 1;
            match Frame::parse(&to_client[..n]).unwrap() {
                Frame::Accept { job: j } => assert!(client_frames == 1 && j == job),
                Frame::Result { count, .. } => {
                    assert!(client_frames == 2 && count == total && d.received() == total)
                }
                Frame::Error { .. } => {
                    assert!(client_frames == 2);
                    // What the AWS prints for it names the cause.
                    let e = d.error().expect("an error frame without a failure");
                    assert!(!e.to_string().is_empty());
                }
                other => panic!("{other:?}"),
            }
        }
        if let Some(t) = d.poll_timeout() {
            assert!(t >= Instant(0));
        }
    }
});
