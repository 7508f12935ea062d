//! A structured frame value survives emit then parse unchanged, and `emit_data` (and
//! `emit_data_be`, from the numbers' bytes) writes the same bytes as emitting the
//! equivalent `Frame::Data`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use offload_core::wide::I192;
use offload_core::wire::{
    emit_data, emit_data_be, Epoch, ErrorCode, Frame, Header, JobId, Sack, Values, WireError, MAX_DATAGRAM,
    MAX_VALUES, SACK_BYTES,
};
use offload_core::Op;

#[derive(Arbitrary, Debug)]
enum Spec {
    Request {
        job: u32,
        op: u8,
        total: u64,
    },
    Data {
        job: u32,
        seq: u32,
        op: u8,
        last: bool,
        values: Vec<i64>,
    },
    Ack {
        job: u32,
        cum: u32,
        complete: bool,
        answer: bool,
        sack: [u8; SACK_BYTES],
        epoch: u16,
    },
    Result {
        job: u32,
        op: u8,
        count: u64,
        value: (u128, u64),
        negate: bool,
        epoch: u16,
    },
    Error {
        job: u32,
        code: u8,
        arg: u16,
    },
    Abort {
        job: u32,
    },
}

const CODES: [ErrorCode; 7] = [
    ErrorCode::BadRequest,
    ErrorCode::Busy,
    ErrorCode::BackendTimeout,
    ErrorCode::BackendBusy,
    ErrorCode::BackendFailed,
    ErrorCode::ProtocolViolation,
    ErrorCode::BackendLost,
];

fn op(b: u8) -> Op {
    Op::ALL[usize::from(b) % Op::ALL.len()]
}

fn check(frame: Frame<'_>) {
    let mut buf = [0u8; MAX_DATAGRAM];
    let n = frame.emit(&mut buf).expect("every frame fits a datagram");
    assert_eq!(n, frame.len());
    assert!(!frame.is_empty());
    assert_eq!(Frame::parse(&buf[..n]), Ok(frame));
    assert_eq!(Header::parse(&buf[..n]).and_then(|h| h.frame_len()), Ok(n));
    assert_eq!(Frame::parse(&buf[..n - 1]), Err(WireError::Truncated));
    assert_eq!(
        frame.emit(&mut buf[..n - 1]),
        Err(WireError::BufferTooSmall)
    );
}

fuzz_target!(|spec: Spec| {
    let bytes;
    let frame = match spec {
        Spec::Request { job, op: o, total } => Frame::Request {
            job: JobId(job),
            op: op(o),
            total,
        },
        Spec::Data {
            job,
            seq,
            op: o,
            last,
            mut values,
        } => {
            values.truncate(MAX_VALUES);
            bytes = values
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect::<Vec<u8>>();
            let view = Values::from_be_bytes(&bytes).expect("at most MAX_VALUES numbers");
            assert!(view.iter().eq(values.iter().copied()));
            assert_eq!(view.is_empty(), values.is_empty());
            let frame = Frame::Data {
                job: JobId(job),
                seq,
                op: op(o),
                last,
                ack_now: false,
                values: view,
            };
            // emit_data writes what emit writes.
            let mut a = [0u8; MAX_DATAGRAM];
            let mut b = [0u8; MAX_DATAGRAM];
            let n = emit_data(&mut a, JobId(job), seq, op(o), last, &values).unwrap();
            assert_eq!(frame.emit(&mut b), Ok(n));
            assert_eq!(a[..n], b[..n]);
            // And so does emit_data_be, from the numbers' bytes as a forwarder has them.
            let mut c = [0u8; MAX_DATAGRAM];
            let m = emit_data_be(&mut c, JobId(job), seq, op(o), last, view.as_bytes());
            assert_eq!(m, Ok(n));
            assert_eq!(a[..n], c[..n]);
            frame
        }
        Spec::Ack {
            job,
            cum,
            complete,
            answer,
            sack,
            epoch,
        } => {
            let sack = Sack(sack);
            let mut rebuilt = Sack::default();
            for i in 0..SACK_BYTES * 8 + 8 {
                if sack.get(i) {
                    rebuilt.set(i);
                }
            }
            assert_eq!(rebuilt, sack);
            Frame::Ack {
                job: JobId(job),
                cum,
                complete,
                answer,
                sack,
                epoch: Epoch(epoch),
            }
        }
        Spec::Result {
            job,
            op: o,
            count,
            value: (lo, hi),
            negate,
            epoch,
        } => {
            let v = I192::from_parts(lo, hi);
            let value = if negate { v.wrapping_neg() } else { v };
            assert_eq!(I192::from_be_bytes(value.to_be_bytes()), value);
            Frame::Result {
                job: JobId(job),
                op: op(o),
                count,
                value,
                epoch: Epoch(epoch),
            }
        }
        Spec::Error { job, code, arg } => Frame::Error {
            job: JobId(job),
            code: CODES[usize::from(code) % CODES.len()],
            arg,
        },
        Spec::Abort { job } => Frame::Abort { job: JobId(job) },
    };
    check(frame);
});
