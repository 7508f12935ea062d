//! Frames for tests that talk to the programs directly, built through the core's
//! `wire` (never byte literals), and a raw client that stops after its request.

use offload_core::wire::{emit_data, Frame, JobId, MAX_DATAGRAM};
use offload_core::Op;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The bytes of `f`.
pub fn frame(f: Frame<'_>) -> Vec<u8> {
    let mut b = [0u8; MAX_DATAGRAM];
    let n = f.emit(&mut b).unwrap();
    b[..n].to_vec()
}

/// A client's data frame.
pub fn data_frame(seq: u32, op: Op, last: bool, xs: &[i64]) -> Vec<u8> {
    let mut b = [0u8; MAX_DATAGRAM];
    let n = emit_data(&mut b, JobId(0), seq, op, last, xs).unwrap();
    b[..n].to_vec()
}

/// Reads one whole frame's bytes from `s` (header first, then the length it names).
pub fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = vec![0u8; 16];
    s.read_exact(&mut b).unwrap();
    let len = offload_core::wire::Header::parse(&b)
        .unwrap()
        .frame_len()
        .unwrap();
    b.resize(len, 0);
    s.read_exact(&mut b[16..]).unwrap();
    b
}

/// Connects to the AWS of EE450_ID `id`, sends a request, and returns the stream with
/// the AWS's answer to it (accept or error).
pub fn request(id: u16, op: Op, total: u64) -> (TcpStream, Frame<'static>) {
    let mut s = TcpStream::connect(("127.0.0.1", 25000 + id)).unwrap();
    s.write_all(&frame(Frame::Request {
        job: JobId(0),
        op,
        total,
    }))
    .unwrap();
    let answer = read_frame(&mut s);
    let f = match Frame::parse(&answer).unwrap() {
        Frame::Accept { job } => Frame::Accept { job },
        Frame::Error { job, code, arg } => Frame::Error { job, code, arg },
        other => panic!("not an answer to a request: {other:?}"),
    };
    (s, f)
}
