extern crate std;

use super::*;
use crate::wide::I192;
use crate::wire::{emit_data, MAX_DATAGRAM};
use std::vec::Vec;

const LIMITS: Limits = Limits {
    backend_timeout: Duration::from_millis(100),
    client_idle: Duration::from_millis(300),
};
const JOB: JobId = JobId(77);
/// The back-ends' epoch in these tests.
const EPOCH: Epoch = Epoch(0x0a0b);

fn request(op: Op, total: u64) -> Vec<u8> {
    let mut b = [0u8; MAX_DATAGRAM];
    let n = Frame::Request {
        job: JobId(0),
        op,
        total,
    }
    .emit(&mut b)
    .unwrap();
    b[..n].to_vec()
}

fn data(seq: u32, op: Op, last: bool, xs: &[i64]) -> Vec<u8> {
    let mut b = [0u8; MAX_DATAGRAM];
    let n = emit_data(&mut b, JobId(0), seq, op, last, xs).unwrap();
    b[..n].to_vec()
}

fn frame(f: Frame<'_>) -> Vec<u8> {
    let mut b = [0u8; MAX_DATAGRAM];
    let n = f.emit(&mut b).unwrap();
    b[..n].to_vec()
}

fn ack(cum: u32) -> Vec<u8> {
    frame(Frame::Ack {
        epoch: EPOCH,
        job: JOB,
        cum,
        complete: false,
        answer: false,
        sack: Sack::default(),
    })
}

fn result(op: Op, count: u64, v: i64) -> Vec<u8> {
    frame(Frame::Result {
        epoch: EPOCH,
        job: JOB,
        op,
        count,
        value: I192::from_i64(v),
    })
}

fn started(op: Op, total: u64) -> Dispatch<8> {
    let mut d = Dispatch::new();
    d.start(JOB, Request { op, total }, LIMITS, Instant(0));
    let mut b = [0u8; CLIENT_FRAME_MAX];
    let n = d.poll_client(&mut b).unwrap();
    assert_eq!(Frame::parse(&b[..n]), Ok(Frame::Accept { job: JOB }));
    assert_eq!(d.poll_client(&mut b), None);
    d
}

/// A data frame's sequence number, last flag and numbers.
type DataSent = (u32, bool, Vec<i64>);

/// Every datagram due now, decoded as (part, data) or (part, None) for an abort.
fn sent(d: &mut Dispatch<8>, now: u64) -> Vec<(Part, Option<DataSent>)> {
    let mut b = [0u8; MAX_DATAGRAM];
    let mut out = Vec::new();
    while let Some(t) = d.poll_transmit(Instant(now), &mut b) {
        match Frame::parse(&b[..t.len]).unwrap() {
            Frame::Data {
                seq, last, values, ..
            } => out.push((t.part, Some((seq, last, values.iter().collect())))),
            Frame::Abort { job } => {
                assert_eq!(job, JOB);
                out.push((t.part, None));
            }
            other => panic!("{other:?}"),
        }
    }
    out
}

fn events(d: &mut Dispatch<8>) -> Vec<Event> {
    core::iter::from_fn(|| d.poll_event()).collect()
}

fn client_frame(d: &mut Dispatch<8>) -> Option<Frame<'static>> {
    let mut b = [0u8; CLIENT_FRAME_MAX];
    let n = d.poll_client(&mut b)?;
    // Leak-free 'static: re-encode the owned fields.
    Some(match Frame::parse(&b[..n]).unwrap() {
        Frame::Result {
            job,
            epoch,
            op,
            count,
            value,
        } => Frame::Result {
            job,
            epoch,
            op,
            count,
            value,
        },
        Frame::Error { job, code, arg } => Frame::Error { job, code, arg },
        other => panic!("{other:?}"),
    })
}

#[test]
fn requests_are_checked_before_a_job_starts() {
    assert_eq!(
        parse_request(&request(Op::Sos, 5)),
        Ok(Request {
            op: Op::Sos,
            total: 5
        })
    );
    assert_eq!(parse_request(&request(Op::Sum, 0)), Err(Refusal::NoNumbers));
    assert_eq!(
        parse_request(&data(0, Op::Sum, true, &[1])),
        Err(Refusal::NotARequest)
    );
    assert!(matches!(
        parse_request(b"GET / HTTP/1.0\r\n"),
        Err(Refusal::Malformed(_))
    ));
    let mut b = [0u8; 16];
    let n = Refusal::Busy.emit(&mut b);
    assert_eq!(
        Frame::parse(&b[..n]),
        Ok(Frame::Error {
            job: JobId(0),
            code: ErrorCode::Busy,
            arg: 0
        })
    );
    assert_eq!(Refusal::NoNumbers.code(), ErrorCode::BadRequest);
    assert_eq!(Refusal::Busy.emit(&mut b[..3]), 0);
}

#[test]
fn numbers_go_to_parts_ceil_first_and_last_frames_wait_for_the_client() {
    let mut d = started(Op::Sum, 10);
    assert_eq!(d.sizes(), [4, 3, 3]);
    // Parts A and B complete inside the first client frame, which is not the last.
    d.handle_client(Instant(1), &data(0, Op::Sum, false, &[0, 1, 2, 3, 4, 5, 6]))
        .unwrap();
    assert_eq!(sent(&mut d, 1), [], "A's and B's last frames are withheld");
    assert!(!d.all_received());
    d.handle_client(Instant(2), &data(1, Op::Sum, true, &[7, 8, 9]))
        .unwrap();
    assert!(d.all_received());
    let mut got = sent(&mut d, 2);
    got.sort_by_key(|(p, _)| p.index());
    assert_eq!(
        got,
        [
            (Part::A, Some((0, true, std::vec![0, 1, 2, 3]))),
            (Part::B, Some((0, true, std::vec![4, 5, 6]))),
            (Part::C, Some((0, true, std::vec![7, 8, 9]))),
        ]
    );
    assert_eq!(
        d.handle_client(Instant(3), &data(2, Op::Sum, true, &[1])),
        Err(NotNow::NotReceiving)
    );
    assert_eq!(events(&mut d), [Event::Received { count: 10 }]);
    // Results before acks: each result acknowledges its whole part. C answers first,
    // but the lines come in the table's order.
    d.handle_backend(Instant(4), Part::C, &result(Op::Sum, 3, 24))
        .unwrap();
    assert_eq!(events(&mut d), []);
    assert_eq!(
        d.handle_backend(Instant(4), Part::A, &result(Op::Sum, 3, 6)),
        Err(Ignored::Inconsistent),
        "wrong count"
    );
    d.handle_backend(Instant(4), Part::A, &result(Op::Sum, 4, 6))
        .unwrap();
    assert_eq!(
        events(&mut d),
        [Event::Sent {
            part: Part::A,
            count: 4
        }]
    );
    d.handle_backend(Instant(5), Part::B, &ack(1)).unwrap();
    assert_eq!(client_frame(&mut d), None);
    d.handle_backend(Instant(5), Part::B, &result(Op::Sum, 3, 15))
        .unwrap();
    assert_eq!(
        d.handle_backend(Instant(5), Part::B, &result(Op::Sum, 3, 15)),
        Err(Ignored::NotRunning),
        "a duplicate result"
    );
    let r = |count, v| Reduction {
        op: Op::Sum,
        count,
        value: I192::from_i64(v),
    };
    assert_eq!(
        events(&mut d),
        [
            Event::Sent {
                part: Part::B,
                count: 3
            },
            Event::Sent {
                part: Part::C,
                count: 3
            },
            Event::PartResult {
                part: Part::A,
                result: r(4, 6)
            },
            Event::PartResult {
                part: Part::B,
                result: r(3, 15)
            },
            Event::PartResult {
                part: Part::C,
                result: r(3, 24)
            },
            Event::Reduced { result: r(10, 45) },
        ]
    );
    assert_eq!(
        client_frame(&mut d),
        Some(Frame::Result {
            epoch: Epoch(0),
            job: JOB,
            op: Op::Sum,
            count: 10,
            value: I192::from_i64(45)
        })
    );
    assert!(!d.is_finished());
    d.handle_answer_written(Instant(6));
    assert_eq!(events(&mut d), [Event::Answered]);
    assert!(d.is_finished());
    assert_eq!(sent(&mut d, 7), [], "no aborts for a finished job");
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn empty_parts_have_no_lines_and_are_not_sent() {
    let mut d = started(Op::Max, 1);
    assert_eq!(d.sizes(), [1, 0, 0]);
    d.handle_client(Instant(1), &data(0, Op::Max, true, &[-4]))
        .unwrap();
    assert_eq!(sent(&mut d, 1), [(Part::A, Some((0, true, std::vec![-4])))]);
    d.handle_backend(Instant(2), Part::A, &result(Op::Max, 1, -4))
        .unwrap();
    let r = Reduction {
        op: Op::Max,
        count: 1,
        value: I192::from_i64(-4),
    };
    assert_eq!(
        events(&mut d),
        [
            Event::Received { count: 1 },
            Event::Sent {
                part: Part::A,
                count: 1
            },
            Event::PartResult {
                part: Part::A,
                result: r
            },
            Event::Reduced { result: r },
        ]
    );
}

/// Starts a 1000-number job, sends the first frame, and fails it with `bad`.
fn violated(bad: Vec<u8>) -> (Dispatch<8>, Vec<Event>) {
    let mut d = started(Op::Min, 1000);
    let xs: Vec<i64> = (0..182).collect();
    d.handle_client(Instant(1), &data(0, Op::Min, false, &xs))
        .unwrap();
    assert_eq!(sent(&mut d, 1).len(), 1);
    d.handle_client(Instant(2), &bad).unwrap();
    let ev = events(&mut d);
    (d, ev)
}

#[test]
fn a_broken_client_stream_fails_the_job_and_aborts_what_was_sent() {
    let xs: Vec<i64> = (0..182).collect();
    let cases = [
        (request(Op::Min, 3), Violation::NotData),
        (data(1, Op::Max, false, &xs), Violation::WrongOp(Op::Max)),
        (
            data(2, Op::Min, false, &xs),
            Violation::OutOfSequence {
                expected: 1,
                got: 2,
            },
        ),
        (data(1, Op::Min, false, &[]), Violation::Empty),
        (data(1, Op::Min, true, &xs), Violation::EarlyLast),
    ];
    for (bad, why) in cases {
        let (mut d, ev) = violated(bad);
        assert_eq!(ev, [Event::Failed(JobError::ClientViolation(why))]);
        assert_eq!(
            client_frame(&mut d),
            Some(Frame::Error {
                job: JOB,
                code: ErrorCode::ProtocolViolation,
                arg: 0
            })
        );
        assert_eq!(sent(&mut d, 3), [(Part::A, None)], "A got data: abort it");
        assert!(d.is_finished());
    }
    let mut d = started(Op::Min, 200);
    d.handle_client(Instant(1), &data(0, Op::Min, false, &xs))
        .unwrap();
    d.handle_client(Instant(2), &data(1, Op::Min, false, &xs))
        .unwrap();
    assert_eq!(
        events(&mut d),
        [Event::Failed(JobError::ClientViolation(Violation::TooMany))]
    );
    let mut d = started(Op::Min, 2);
    d.handle_client(Instant(1), &data(0, Op::Min, false, &[1, 2]))
        .unwrap();
    assert_eq!(
        events(&mut d),
        [Event::Failed(JobError::ClientViolation(
            Violation::MissingLast
        ))]
    );
    // Nothing was transmitted, so no back-end needs an abort.
    assert_eq!(sent(&mut d, 1), []);
    let mut wrong_job = data(0, Op::Min, true, &[1, 2]);
    crate::wire::put(
        &mut wrong_job,
        crate::wire::field::JOB.start,
        &5u32.to_be_bytes(),
    );
    let mut d = started(Op::Min, 2);
    d.handle_client(Instant(1), &wrong_job).unwrap();
    assert_eq!(
        events(&mut d),
        [Event::Failed(JobError::ClientViolation(
            Violation::WrongJob(JobId(5))
        ))]
    );
}

#[test]
fn a_client_that_leaves_gets_nothing_and_no_back_end_finishes() {
    let mut d = started(Op::Sum, 600);
    let xs: Vec<i64> = (0..182).collect();
    for seq in 0..3 {
        d.handle_client(Instant(1), &data(seq, Op::Sum, false, &xs))
            .unwrap();
    }
    // 546 numbers in: A (200) and B (200) are complete, but their last frames wait.
    let got = sent(&mut d, 1);
    assert!(got.iter().all(|(_, f)| f.as_ref().is_some_and(|f| !f.1)));
    d.handle_client_closed(Instant(2));
    assert_eq!(
        events(&mut d),
        [Event::Failed(JobError::ClientClosed {
            received: 546,
            total: 600
        })]
    );
    assert_eq!(client_frame(&mut d), None, "nobody to tell");
    // C's numbers never filled a frame: it never heard of the job.
    let mut aborted: Vec<Part> = sent(&mut d, 2).into_iter().map(|(p, _)| p).collect();
    aborted.sort_by_key(|p| p.index());
    assert_eq!(aborted, [Part::A, Part::B]);
    assert!(d.is_finished());
    assert_eq!(
        std::format!("{}", d.error().unwrap()),
        "client closed after 546 of 600 numbers"
    );
}

#[test]
fn a_silent_client_times_out_and_a_malformed_one_fails_at_once() {
    let mut d = started(Op::Sum, 5);
    assert_eq!(d.poll_timeout(), Some(Instant(300_000)));
    d.handle_timeout(Instant(299_999));
    assert_eq!(events(&mut d), []);
    d.handle_timeout(Instant(300_000));
    assert_eq!(
        events(&mut d),
        [Event::Failed(JobError::ClientIdle(LIMITS.client_idle))]
    );
    let mut d = started(Op::Sum, 5);
    d.handle_client_malformed(Instant(1), WireError::BadMagic);
    assert_eq!(
        events(&mut d),
        [Event::Failed(JobError::ClientMalformed(
            WireError::BadMagic
        ))]
    );
    let mut d = started(Op::Sum, 5);
    d.handle_client(Instant(1), b"0123456789abcdefgh").unwrap();
    assert!(matches!(
        events(&mut d)[..],
        [Event::Failed(JobError::ClientMalformed(_))]
    ));
}

#[test]
fn a_silent_back_end_is_named_after_the_timeout() {
    let mut d = started(Op::Min, 3);
    d.handle_client(Instant(0), &data(0, Op::Min, true, &[5, 6, 7]))
        .unwrap();
    assert_eq!(sent(&mut d, 0).len(), 3);
    for (p, v) in [(Part::A, 5), (Part::C, 7)] {
        d.handle_backend(Instant(5), p, &result(Op::Min, 1, v))
            .unwrap();
    }
    // B's silence: retransmissions until the 100 ms limit, which poll_timeout names.
    let mut now = 0;
    while let Some(t) = d.poll_timeout() {
        assert!(
            t.0 > now || t.0 == now && now == 100_000,
            "time goes forward"
        );
        now = t.0;
        d.handle_timeout(Instant(now));
        if d.error().is_some() {
            break;
        }
        for (p, _) in sent(&mut d, now) {
            assert_eq!(p, Part::B);
        }
    }
    assert_eq!(now, 100_000);
    let ev = events(&mut d);
    assert_eq!(
        ev.last(),
        Some(&Event::Failed(JobError::BackendTimeout(
            Part::B,
            LIMITS.backend_timeout
        )))
    );
    assert_eq!(
        client_frame(&mut d),
        Some(Frame::Error {
            job: JOB,
            code: ErrorCode::BackendTimeout,
            arg: 1
        })
    );
    assert_eq!(sent(&mut d, now), [(Part::B, None)]);
    assert_eq!(
        std::format!("{}", d.error().unwrap()),
        "Backend-Server B did not answer within 100 ms"
    );
}

#[test]
fn a_huge_timeout_never_wraps() {
    let limits = Limits {
        backend_timeout: Duration::from_millis(18_446_744_073_709_552),
        client_idle: Duration::MAX,
    };
    let mut d: Dispatch<8> = Dispatch::new();
    d.start(
        JOB,
        Request {
            op: Op::Sum,
            total: 1,
        },
        limits,
        Instant(0),
    );
    d.handle_client(Instant(0), &data(0, Op::Sum, true, &[1]))
        .unwrap();
    assert_eq!(sent(&mut d, 0).len(), 1);
    d.handle_timeout(Instant(10_000_000_000));
    assert_eq!(d.error(), None);
    assert_eq!(micros(Duration::MAX), u64::MAX);
}

#[test]
fn back_end_errors_are_named_and_the_others_aborted() {
    for (code, want, told) in [
        (
            ErrorCode::Busy,
            JobError::BackendBusy(Part::C),
            ErrorCode::BackendBusy,
        ),
        (
            ErrorCode::BackendLost,
            JobError::BackendLost(Part::C),
            ErrorCode::BackendLost,
        ),
        (
            ErrorCode::BadRequest,
            JobError::BackendFailed(Part::C, ErrorCode::BadRequest),
            ErrorCode::BackendFailed,
        ),
    ] {
        let mut d = started(Op::Sos, 3);
        d.handle_client(Instant(0), &data(0, Op::Sos, true, &[1, 2, 3]))
            .unwrap();
        sent(&mut d, 0);
        d.handle_backend(Instant(1), Part::A, &result(Op::Sos, 1, 1))
            .unwrap();
        let err = frame(Frame::Error {
            job: JOB,
            code,
            arg: 0,
        });
        d.handle_backend(Instant(1), Part::C, &err).unwrap();
        assert_eq!(events(&mut d).last(), Some(&Event::Failed(want)));
        assert_eq!(
            client_frame(&mut d),
            Some(Frame::Error {
                job: JOB,
                code: told,
                arg: 2
            })
        );
        let mut aborted: Vec<Part> = sent(&mut d, 2).into_iter().map(|(p, _)| p).collect();
        aborted.sort_by_key(|p| p.index());
        assert_eq!(aborted, [Part::B, Part::C], "A finished: no abort");
        assert_eq!(
            d.handle_backend(Instant(3), Part::B, &result(Op::Sos, 1, 4)),
            Err(Ignored::NotRunning)
        );
    }
}

#[test]
fn stray_datagrams_are_ignored() {
    let mut d = started(Op::Sum, 3);
    d.handle_client(Instant(0), &data(0, Op::Sum, true, &[1, 2, 3]))
        .unwrap();
    sent(&mut d, 0);
    assert!(matches!(
        d.handle_backend(Instant(1), Part::A, b"junk"),
        Err(Ignored::Malformed(_))
    ));
    let other = frame(Frame::Abort { job: JobId(1) });
    assert_eq!(
        d.handle_backend(Instant(1), Part::A, &other),
        Err(Ignored::OtherJob(JobId(1)))
    );
    let abort = frame(Frame::Abort { job: JOB });
    assert_eq!(
        d.handle_backend(Instant(1), Part::A, &abort),
        Err(Ignored::UnexpectedKind)
    );
    assert_eq!(
        d.handle_backend(Instant(1), Part::A, &ack(9)),
        Err(Ignored::Inconsistent)
    );
    assert_eq!(
        d.handle_backend(Instant(1), Part::A, &result(Op::Max, 1, 1)),
        Err(Ignored::Inconsistent)
    );
    assert_eq!(d.error(), None);
}

#[test]
fn a_full_window_holds_the_client_back() {
    let mut d = started(Op::Sum, 10_000);
    let xs: Vec<i64> = (0..182).collect();
    let mut seq = 0;
    while d.wants_client() {
        d.handle_client(Instant(0), &data(seq, Op::Sum, false, &xs))
            .unwrap();
        seq += 1;
    }
    assert_eq!(
        d.handle_client(Instant(0), &data(seq, Op::Sum, false, &xs)),
        Err(NotNow::WindowFull)
    );
    assert_eq!(d.received(), u64::from(seq) * 182);
    assert_eq!(sent(&mut d, 0).len(), seq as usize);
    d.handle_backend(Instant(1), Part::A, &ack(seq)).unwrap();
    assert!(d.wants_client());
}

#[test]
fn display_names_every_error() {
    let all = [
        JobError::ClientClosed {
            received: 3,
            total: 3,
        },
        JobError::ClientIdle(Duration::from_secs(2)),
        JobError::ClientMalformed(WireError::BadMagic),
        JobError::ClientViolation(Violation::Empty),
        JobError::BackendBusy(Part::A),
        JobError::BackendFailed(Part::B, ErrorCode::BadRequest),
        JobError::BackendLost(Part::C),
    ];
    let text: Vec<std::string::String> = all.iter().map(|e| std::format!("{e}")).collect();
    assert_eq!(
        text,
        [
            "client closed before the answer",
            "client sent nothing for 2000 ms",
            "client sent a malformed stream (not an offload frame (bad magic))",
            "client broke the protocol: a data frame without numbers",
            "Backend-Server A is busy",
            "Backend-Server B failed the job (BadRequest)",
            "Backend-Server C lost the job (it restarted)",
        ]
    );
    assert_eq!(
        std::format!("{}", Refusal::Busy),
        "refused: the AWS is running its maximum of jobs"
    );
}

#[test]
fn a_new_epoch_means_the_back_end_lost_the_job() {
    let mut d = started(Op::Sum, 3000);
    let xs: Vec<i64> = (0..182).collect();
    d.handle_client(Instant(0), &data(0, Op::Sum, false, &xs))
        .unwrap();
    sent(&mut d, 0);
    d.handle_backend(Instant(1), Part::A, &ack(1)).unwrap();
    // Epochs are per back-end: B's differs from A's and that is fine.
    let b_ack = frame(Frame::Ack {
        epoch: Epoch(0x0c0d),
        job: JOB,
        cum: 0,
        complete: false,
        answer: false,
        sack: Sack::default(),
    });
    d.handle_backend(Instant(1), Part::B, &b_ack).unwrap();
    assert_eq!(d.error(), None);
    // A answers with another epoch: a new process on A's port.
    let restarted = frame(Frame::Ack {
        epoch: Epoch(0x0e0f),
        job: JOB,
        cum: 0,
        complete: false,
        answer: false,
        sack: Sack::default(),
    });
    d.handle_backend(Instant(2), Part::A, &restarted).unwrap();
    assert_eq!(
        events(&mut d),
        [Event::Failed(JobError::BackendLost(Part::A))]
    );
    assert_eq!(
        client_frame(&mut d),
        Some(Frame::Error {
            job: JOB,
            code: ErrorCode::BackendLost,
            arg: 0
        })
    );
    assert_eq!(sent(&mut d, 3), [(Part::A, None)]);
}

#[test]
fn built_in_a_static() {
    // `new` is const: the whole state can sit in a static, never on a stack.
    static IDLE: Dispatch<4> = Dispatch::new();
    assert!(IDLE.is_finished());
    assert_eq!(IDLE.final_result(), None);
}

#[test]
fn the_accept_goes_first_even_when_the_job_fails_at_once() {
    let mut d: Dispatch<8> = Dispatch::new();
    d.start(
        JOB,
        Request {
            op: Op::Sum,
            total: 5,
        },
        LIMITS,
        Instant(0),
    );
    d.handle_client(Instant(0), &data(0, Op::Sum, false, &[]))
        .unwrap();
    let mut b = [0u8; CLIENT_FRAME_MAX];
    let n = d.poll_client(&mut b).unwrap();
    assert_eq!(Frame::parse(&b[..n]), Ok(Frame::Accept { job: JOB }));
    assert!(!d.is_finished());
    assert_eq!(
        client_frame(&mut d),
        Some(Frame::Error {
            job: JOB,
            code: ErrorCode::ProtocolViolation,
            arg: 0
        })
    );
}
