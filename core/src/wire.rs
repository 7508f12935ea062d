//! Frames: fixed-layout, big-endian, encoded into and decoded from caller buffers.
//!
//! Every frame starts with a 16-byte header; the kind and the header's last four bytes
//! fix the body's length, so a TCP reader knows how much to read after the header and a
//! UDP datagram must be exactly that long. No frame exceeds [`MAX_DATAGRAM`] bytes.
//!
//! | bytes | field |
//! | --- | --- |
//! | 0-1 | magic `0x4F46` ("OF") |
//! | 2 | version (1) |
//! | 3 | kind ([`Kind`]) |
//! | 4-7 | job id |
//! | 8-11 | sequence number (data), cumulative ack (ack), 0 otherwise |
//! | 12-15 | kind-specific, see [`Frame`] |
//!
//! The byte positions are written once, in [`field`]; encoding, decoding and tests all
//! use them.
//!
//! Decoding is strict: reserved bytes must be zero and every code must be known, so any
//! frame that decodes re-encodes to the same bytes.

use crate::op::Op;
use crate::wide::{I192, I192_BYTES};
use core::fmt;

/// First two bytes of every frame.
pub const MAGIC: u16 = 0x4F46;
/// Protocol version this crate speaks: 2 since acks carry a 512-bit SACK (80 bytes; 48
/// with the 256-bit SACK of version 1), so the two never mistake each other's acks.
pub const VERSION: u8 = 2;
/// Header length in bytes.
pub const HEADER_LEN: usize = 16;
/// Largest datagram: Ethernet MTU 1500 - IPv4 header 20 - UDP header 8.
pub const MAX_DATAGRAM: usize = 1472;
/// Numbers per data frame: (1472 - 16) / 8.
pub const MAX_VALUES: usize = (MAX_DATAGRAM - HEADER_LEN) / 8;
/// Bytes of selective-acknowledgement bitmap in an ack frame.
pub const SACK_BYTES: usize = 64;
/// Sequence numbers a selective ack can describe beyond the cumulative one.
pub const SACK_BITS: usize = SACK_BYTES * 8;
/// The longest datagram a back-end sends: an ack (80 bytes; results are 48, errors 16).
/// A buffer of this size holds any reply.
pub const MAX_REPLY: usize = field::ACK_SACK.end;

/// Byte positions of every field, the one place they are written down (smoltcp's
/// `field` modules are the model). Ranges index a whole frame.
pub mod field {
    use core::ops::Range;

    /// A run of bytes in a frame.
    pub type Field = Range<usize>;

    /// Magic number `0x4F46`.
    pub const MAGIC: Field = 0..2;
    /// Protocol version.
    pub const VERSION: usize = 2;
    /// Frame kind.
    pub const KIND: usize = 3;
    /// Job id.
    pub const JOB: Field = 4..8;
    /// Sequence number (data) or cumulative ack (ack); zero for other kinds.
    pub const SEQ: Field = 8..12;
    /// The four kind-specific header bytes.
    pub const AUX: Field = 12..16;
    /// Where the body starts.
    pub const BODY: usize = 16;

    /// Request, result: the operation code.
    pub const OP: usize = 12;
    /// Data: how many numbers the body holds.
    pub const DATA_COUNT: Field = 12..14;
    /// Data: the operation code.
    pub const DATA_OP: usize = 14;
    /// Data: flags (bit 0: last frame, bit 1: acknowledge at once).
    pub const DATA_FLAGS: usize = 15;
    /// Ack: flags (bit 0: stream complete, bit 1: answers a frame flagged ack-now).
    pub const ACK_FLAGS: usize = 12;
    /// Ack, result: the sending back-end's epoch (u16; zero from the AWS).
    pub const EPOCH: Field = 13..15;
    /// Error: the error code.
    pub const ERROR_CODE: Field = 12..14;
    /// Error: the argument (a back-end's part index).
    pub const ERROR_ARG: Field = 14..16;

    /// Request: the count of numbers that follow.
    pub const REQUEST_TOTAL: Field = 16..24;
    /// Ack: the selective-acknowledgement bitmap.
    pub const ACK_SACK: Field = BODY..BODY + super::SACK_BYTES;
    /// Result: numbers reduced.
    pub const RESULT_COUNT: Field = 16..24;
    /// Result: the value, 24-byte two's complement.
    pub const RESULT_VALUE: Field = 24..48;
}

/// Identifies one job end to end (client request to back-end result).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct JobId(pub u32);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// The frame kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Client to AWS: the operation and how many numbers follow.
    Request = 1,
    /// A batch of numbers.
    Data = 2,
    /// Receiver to sender: cumulative and selective acknowledgement.
    Ack = 3,
    /// A reduction result.
    Result = 4,
    /// A failure, with a code.
    Error = 5,
    /// AWS to back-end: forget this job.
    Abort = 6,
    /// AWS to client: the request is taken; send the numbers (carries the job id).
    Accept = 7,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Request,
            2 => Kind::Data,
            3 => Kind::Ack,
            4 => Kind::Result,
            5 => Kind::Error,
            6 => Kind::Abort,
            7 => Kind::Accept,
            _ => return None,
        })
    }
}

/// Why a job failed, as an error frame reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request was malformed (bad operation, zero numbers, broken stream).
    BadRequest = 1,
    /// The receiver has no room for another job now; try again later.
    Busy = 2,
    /// A back-end did not answer in time; the argument is its part index.
    BackendTimeout = 3,
    /// A back-end was busy; the argument is its part index.
    BackendBusy = 4,
    /// A back-end reported an error; the argument is its part index.
    BackendFailed = 5,
    /// The data did not match the request (wrong count, wrong operation).
    ProtocolViolation = 6,
    /// A back-end restarted during the job (its epoch changed) and so lost its part;
    /// the argument is its part index.
    BackendLost = 7,
}

impl ErrorCode {
    fn from_u16(v: u16) -> Option<ErrorCode> {
        Some(match v {
            1 => ErrorCode::BadRequest,
            2 => ErrorCode::Busy,
            3 => ErrorCode::BackendTimeout,
            4 => ErrorCode::BackendBusy,
            5 => ErrorCode::BackendFailed,
            6 => ErrorCode::ProtocolViolation,
            7 => ErrorCode::BackendLost,
            _ => return None,
        })
    }
}

/// A back-end process's random, non-zero 16-bit identity (bytes 13-14 of its acks and
/// results). A back-end that restarts picks a new one, so the AWS can tell that a part
/// in flight was lost rather than merely slow. 0 means "no back-end" (AWS to client).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Epoch(pub u16);

/// Selective-acknowledgement bitmap: bit `i` set means sequence `cum + 1 + i` arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sack(pub [u8; SACK_BYTES]);

impl Default for Sack {
    fn default() -> Self {
        Sack([0; SACK_BYTES])
    }
}

impl Sack {
    /// Whether bit `i` is set (false past the end).
    pub fn get(&self, i: usize) -> bool {
        self.0
            .get(i / 8)
            .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
    }

    /// Sets bit `i` (ignored past the end).
    pub fn set(&mut self, i: usize) {
        if let Some(b) = self.0.get_mut(i / 8) {
            *b |= 0x80 >> (i % 8);
        }
    }
}

/// The numbers of a data frame, as big-endian bytes borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Values<'a> {
    bytes: &'a [u8],
}

impl<'a> Values<'a> {
    /// Views big-endian bytes as numbers.
    ///
    /// # Errors
    /// `None` unless the length is a multiple of 8 and at most [`MAX_VALUES`] numbers.
    pub fn from_be_bytes(bytes: &'a [u8]) -> Option<Values<'a>> {
        (bytes.len() % 8 == 0 && bytes.len() / 8 <= MAX_VALUES).then_some(Values { bytes })
    }

    /// How many numbers.
    pub fn len(&self) -> usize {
        self.bytes.len() / 8
    }

    /// True for no numbers.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The raw big-endian bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The numbers in order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + 'a {
        // `first_chunk` rather than `copy_from_slice`: no length check left to panic.
        self.bytes
            .chunks_exact(8)
            .map(|c| i64::from_be_bytes(c.first_chunk().copied().unwrap_or_default()))
    }
}

/// A decoded frame. Layout of bytes 12-15 and the body, by kind:
///
/// | kind | bytes 12-15 | body |
/// | --- | --- | --- |
/// | Request | op, 0, 0, 0 | total count (u64) |
/// | Data | count (u16), op, flags (bit 0: last, bit 1: ack now) | count x i64 |
/// | Ack | flags (bit 0: complete, bit 1: answer), epoch (u16), 0 | 32-byte SACK bitmap |
/// | Result | op, epoch (u16), 0 | count (u64), value (24-byte two's complement) |
///
/// The epoch is the sending back-end's [`Epoch`]: random and non-zero per back-end
/// process, so a change in the middle of a job means the back-end restarted. The AWS
/// sends its result to the client with epoch 0.
/// | Error | code (u16), argument (u16) | none |
/// | Abort | 0, 0, 0, 0 | none |
/// | Accept | 0, 0, 0, 0 | none |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Start of a job: reduce `total` numbers with `op`.
    Request {
        /// Job id (0 from a client; the AWS assigns its own).
        job: JobId,
        /// Operation.
        op: Op,
        /// How many numbers follow.
        total: u64,
    },
    /// Numbers `seq * MAX_VALUES ..` of a stream.
    Data {
        /// Job.
        job: JobId,
        /// Position in the stream, from 0.
        seq: u32,
        /// Operation of the job.
        op: Op,
        /// The final frame of the stream.
        last: bool,
        /// The sender asks for an acknowledgement at once, not after the receiver's
        /// usual count of in-order frames, flagged as the answer: set on a timeout's
        /// probe (and a probe for a lost result), whose answer says what is lost.
        ack_now: bool,
        /// The numbers.
        values: Values<'a>,
    },
    /// Everything before `cum` arrived, plus what `sack` marks.
    Ack {
        /// Job.
        job: JobId,
        /// Next sequence number expected.
        cum: u32,
        /// The whole stream arrived.
        complete: bool,
        /// Sent on a data frame flagged ack-now: it tells the state after that frame
        /// arrived, which an ack already on its way (sent before) does not.
        answer: bool,
        /// Arrivals beyond `cum`.
        sack: Sack,
        /// The sending back-end's epoch.
        epoch: Epoch,
    },
    /// The reduction of a job or part.
    Result {
        /// Job.
        job: JobId,
        /// Operation.
        op: Op,
        /// Numbers reduced.
        count: u64,
        /// Exact value.
        value: I192,
        /// The sending back-end's epoch (0 from the AWS to a client).
        epoch: Epoch,
    },
    /// A failure.
    Error {
        /// Job.
        job: JobId,
        /// What failed.
        code: ErrorCode,
        /// Detail, such as the part index of a back-end.
        arg: u16,
    },
    /// Forget a job.
    Abort {
        /// Job.
        job: JobId,
    },
    /// The AWS took the client's request as this job; the numbers may follow.
    Accept {
        /// Job.
        job: JobId,
    },
}

/// Why bytes are not a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the header or the body needs.
    Truncated,
    /// More bytes than the frame's length.
    TrailingBytes,
    /// Not our magic number.
    BadMagic,
    /// A version this build does not speak.
    BadVersion(u8),
    /// An unknown kind byte.
    BadKind(u8),
    /// An unknown operation code.
    BadOp(u8),
    /// An unknown error code.
    BadErrorCode(u16),
    /// A data frame claiming more than [`MAX_VALUES`] numbers.
    BadCount(u16),
    /// Reserved bits or bytes that are not zero.
    Reserved,
    /// The output buffer is too small.
    BufferTooSmall,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("truncated frame"),
            WireError::TrailingBytes => f.write_str("bytes past the end of the frame"),
            WireError::BadMagic => f.write_str("not an offload frame (bad magic)"),
            WireError::BadVersion(v) => write!(f, "unsupported protocol version {v}"),
            WireError::BadKind(k) => write!(f, "unknown frame kind {k}"),
            WireError::BadOp(o) => write!(f, "unknown operation code {o}"),
            WireError::BadErrorCode(c) => write!(f, "unknown error code {c}"),
            WireError::BadCount(c) => {
                write!(f, "data frame claims {c} numbers (at most {MAX_VALUES})")
            }
            WireError::Reserved => f.write_str("reserved bits set"),
            WireError::BufferTooSmall => f.write_str("buffer too small"),
        }
    }
}

/// A validated 16-byte header, enough to know how long the frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Kind of frame.
    pub kind: Kind,
    /// Job.
    pub job: JobId,
    /// Sequence or cumulative-ack field.
    pub seq: u32,
    /// Kind-specific bytes 12-15.
    pub aux: [u8; 4],
}

// These helpers are written so that no length check is left for the optimiser to prove
// (`.ci/audit.sh` links the core with a panic handler that must stay unreferenced).

/// The `N` bytes at `at`, or zeros past the end.
fn array_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b.get(at..)
        .and_then(|s| s.first_chunk())
        .copied()
        .unwrap_or([0; N])
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array_at(b, at))
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(array_at(b, at))
}

/// Copies `bytes` to `buf[at..]` if they fit. A zipped loop, not `copy_from_slice`, whose
/// length check stays out of line, and so a panic path, at `opt-level = "z"`.
pub(crate) fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..).and_then(|s| s.get_mut(..bytes.len())) {
        dst.iter_mut().zip(bytes).for_each(|(d, s)| *d = *s);
    }
}

impl Header {
    /// Decodes and checks the first [`HEADER_LEN`] bytes.
    ///
    /// # Errors
    /// [`WireError`] for short input, wrong magic or version, or an unknown kind.
    pub fn parse(buf: &[u8]) -> Result<Header, WireError> {
        let [m0, m1, version, kind, ..] = *buf else {
            return Err(WireError::Truncated);
        };
        if buf.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if u16::from_be_bytes([m0, m1]) != MAGIC {
            return Err(WireError::BadMagic);
        }
        if version != VERSION {
            return Err(WireError::BadVersion(version));
        }
        let kind = Kind::from_u8(kind).ok_or(WireError::BadKind(kind))?;
        Ok(Header {
            kind,
            job: JobId(be_u32(buf, field::JOB.start)),
            seq: be_u32(buf, field::SEQ.start),
            aux: array_at(buf, field::AUX.start),
        })
    }

    /// Length of the body that follows this header.
    ///
    /// # Errors
    /// [`WireError::BadCount`] for a data frame claiming too many numbers.
    pub fn body_len(&self) -> Result<usize, WireError> {
        Ok(match self.kind {
            Kind::Request => 8,
            Kind::Data => {
                let count = u16::from_be_bytes([self.aux[0], self.aux[1]]);
                if usize::from(count) > MAX_VALUES {
                    return Err(WireError::BadCount(count));
                }
                usize::from(count) * 8
            }
            Kind::Ack => SACK_BYTES,
            Kind::Result => 8 + I192_BYTES,
            Kind::Error | Kind::Abort | Kind::Accept => 0,
        })
    }

    /// Whole frame length: header plus body.
    ///
    /// # Errors
    /// As [`Header::body_len`].
    pub fn frame_len(&self) -> Result<usize, WireError> {
        Ok(HEADER_LEN + self.body_len()?)
    }
}

fn parse_op(b: u8) -> Result<Op, WireError> {
    Op::from_code(b).ok_or(WireError::BadOp(b))
}

impl<'a> Frame<'a> {
    /// Decodes one frame that fills `buf` exactly (a datagram, or a TCP frame whose
    /// length came from [`Header::frame_len`]).
    ///
    /// # Errors
    /// [`WireError`] for anything malformed; never panics.
    pub fn parse(buf: &'a [u8]) -> Result<Frame<'a>, WireError> {
        let h = Header::parse(buf)?;
        let len = h.frame_len()?;
        if buf.len() < len {
            return Err(WireError::Truncated);
        }
        if buf.len() > len {
            return Err(WireError::TrailingBytes);
        }
        let body = buf.get(field::BODY..).unwrap_or(&[]);
        let [a0, a1, a2, a3] = h.aux;
        let job = h.job;
        let seq_zero = |f: Frame<'a>| {
            if h.seq == 0 {
                Ok(f)
            } else {
                Err(WireError::Reserved)
            }
        };
        match h.kind {
            Kind::Request => {
                if [a1, a2, a3] != [0; 3] {
                    return Err(WireError::Reserved);
                }
                seq_zero(Frame::Request {
                    job,
                    op: parse_op(a0)?,
                    total: be_u64(buf, field::REQUEST_TOTAL.start),
                })
            }
            Kind::Data => {
                if a3 & !(DATA_LAST | DATA_ACK_NOW) != 0 {
                    return Err(WireError::Reserved);
                }
                Ok(Frame::Data {
                    job,
                    seq: h.seq,
                    op: parse_op(a2)?,
                    last: a3 & DATA_LAST != 0,
                    ack_now: a3 & DATA_ACK_NOW != 0,
                    values: Values::from_be_bytes(body).ok_or(WireError::Truncated)?,
                })
            }
            Kind::Ack => {
                if a0 & !(ACK_COMPLETE | ACK_ANSWER) != 0 || a3 != 0 {
                    return Err(WireError::Reserved);
                }
                Ok(Frame::Ack {
                    job,
                    cum: h.seq,
                    complete: a0 & ACK_COMPLETE != 0,
                    answer: a0 & ACK_ANSWER != 0,
                    sack: Sack(array_at(buf, field::ACK_SACK.start)),
                    epoch: Epoch(u16::from_be_bytes([a1, a2])),
                })
            }
            Kind::Result => {
                if a3 != 0 {
                    return Err(WireError::Reserved);
                }
                seq_zero(Frame::Result {
                    job,
                    op: parse_op(a0)?,
                    count: be_u64(buf, field::RESULT_COUNT.start),
                    value: I192::from_be_bytes(array_at(buf, field::RESULT_VALUE.start)),
                    epoch: Epoch(u16::from_be_bytes([a1, a2])),
                })
            }
            Kind::Error => {
                let code = u16::from_be_bytes([a0, a1]);
                seq_zero(Frame::Error {
                    job,
                    code: ErrorCode::from_u16(code).ok_or(WireError::BadErrorCode(code))?,
                    arg: u16::from_be_bytes([a2, a3]),
                })
            }
            Kind::Abort => {
                if h.aux != [0; 4] {
                    return Err(WireError::Reserved);
                }
                seq_zero(Frame::Abort { job })
            }
            Kind::Accept => {
                if h.aux != [0; 4] {
                    return Err(WireError::Reserved);
                }
                seq_zero(Frame::Accept { job })
            }
        }
    }

    /// The job this frame belongs to.
    pub fn job(&self) -> JobId {
        match *self {
            Frame::Request { job, .. }
            | Frame::Data { job, .. }
            | Frame::Ack { job, .. }
            | Frame::Result { job, .. }
            | Frame::Error { job, .. }
            | Frame::Abort { job }
            | Frame::Accept { job } => job,
        }
    }

    /// Encoded length in bytes.
    pub fn len(&self) -> usize {
        HEADER_LEN
            + match self {
                Frame::Request { .. } => 8,
                Frame::Data { values, .. } => values.as_bytes().len(),
                Frame::Ack { .. } => SACK_BYTES,
                Frame::Result { .. } => 8 + I192_BYTES,
                Frame::Error { .. } | Frame::Abort { .. } | Frame::Accept { .. } => 0,
            }
    }

    /// Never true: every frame has a header. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Encodes the frame at the start of `buf`; returns its length.
    ///
    /// # Errors
    /// [`WireError::BufferTooSmall`] if it does not fit.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.len();
        if buf.len() < len {
            return Err(WireError::BufferTooSmall);
        }
        let (kind, job, seq, aux) = match *self {
            Frame::Request { job, op, total } => {
                put(buf, field::REQUEST_TOTAL.start, &total.to_be_bytes());
                (Kind::Request, job, 0, [op.code(), 0, 0, 0])
            }
            Frame::Data {
                job,
                seq,
                op,
                last,
                ack_now,
                values,
            } => {
                put(buf, field::BODY, values.as_bytes());
                let [c0, c1] = (values.len() as u16).to_be_bytes();
                (
                    Kind::Data,
                    job,
                    seq,
                    [c0, c1, op.code(), data_flags(last, ack_now)],
                )
            }
            Frame::Ack {
                job,
                cum,
                complete,
                answer,
                sack,
                epoch,
            } => {
                put(buf, field::ACK_SACK.start, &sack.0);
                let [e0, e1] = epoch.0.to_be_bytes();
                let flags = bit(complete, ACK_COMPLETE) | bit(answer, ACK_ANSWER);
                (Kind::Ack, job, cum, [flags, e0, e1, 0])
            }
            Frame::Result {
                job,
                op,
                count,
                value,
                epoch,
            } => {
                put(buf, field::RESULT_COUNT.start, &count.to_be_bytes());
                put(buf, field::RESULT_VALUE.start, &value.to_be_bytes());
                let [e0, e1] = epoch.0.to_be_bytes();
                (Kind::Result, job, 0, [op.code(), e0, e1, 0])
            }
            Frame::Error { job, code, arg } => {
                let [c0, c1] = (code as u16).to_be_bytes();
                let [g0, g1] = arg.to_be_bytes();
                (Kind::Error, job, 0, [c0, c1, g0, g1])
            }
            Frame::Abort { job } => (Kind::Abort, job, 0, [0; 4]),
            Frame::Accept { job } => (Kind::Accept, job, 0, [0; 4]),
        };
        put_header(buf, kind, job, seq, aux);
        Ok(len)
    }
}

/// Encodes a data frame straight from numbers (no intermediate byte copy); returns its
/// length.
///
/// # Errors
/// [`WireError::BadCount`] for more than [`MAX_VALUES`] numbers,
/// [`WireError::BufferTooSmall`] if the frame does not fit in `buf`.
pub fn emit_data(
    buf: &mut [u8],
    job: JobId,
    seq: u32,
    op: Op,
    last: bool,
    values: &[i64],
) -> Result<usize, WireError> {
    let body = data_frame(buf, job, seq, op, last, values.len())?;
    for (dst, v) in body.chunks_exact_mut(8).zip(values) {
        if let Some(dst) = dst.first_chunk_mut() {
            *dst = v.to_be_bytes();
        }
    }
    Ok(HEADER_LEN + body.len())
}

/// Encodes a data frame from numbers already in wire order (8 big-endian bytes each, as
/// [`Values::as_bytes`] gives them): a forwarder's copy, with no number decoded and
/// encoded again. Returns its length.
///
/// # Errors
/// [`WireError::BadCount`] unless `be` is a whole number of numbers, at most
/// [`MAX_VALUES`]; [`WireError::BufferTooSmall`] if the frame does not fit in `buf`.
pub fn emit_data_be(
    buf: &mut [u8],
    job: JobId,
    seq: u32,
    op: Op,
    last: bool,
    be: &[u8],
) -> Result<usize, WireError> {
    if be.len() % 8 != 0 {
        return Err(WireError::BadCount(u16::MAX));
    }
    let body = data_frame(buf, job, seq, op, last, be.len() / 8)?;
    // Same lengths; a zip, not `copy_from_slice`, leaves no length check to panic.
    for (to, from) in body.iter_mut().zip(be) {
        *to = *from;
    }
    Ok(HEADER_LEN + body.len())
}

/// Writes a data frame's header for `count` numbers at the start of `buf`, whose
/// numbers the caller puts (8 big-endian bytes each) in the `count * 8` bytes after it:
/// an encoder that writes numbers straight into its output, with no copy. Returns the
/// frame's length.
///
/// # Errors
/// [`WireError::BadCount`] for more than [`MAX_VALUES`] numbers,
/// [`WireError::BufferTooSmall`] if the frame does not fit in `buf`.
pub fn emit_data_header(
    buf: &mut [u8],
    job: JobId,
    seq: u32,
    op: Op,
    last: bool,
    count: usize,
) -> Result<usize, WireError> {
    data_frame(buf, job, seq, op, last, count).map(|body| HEADER_LEN + body.len())
}

/// Writes a data frame's header for `count` numbers into `buf`; returns its body,
/// `count * 8` bytes, for the caller to fill.
fn data_frame(
    buf: &mut [u8],
    job: JobId,
    seq: u32,
    op: Op,
    last: bool,
    count: usize,
) -> Result<&mut [u8], WireError> {
    if count > MAX_VALUES {
        return Err(WireError::BadCount(
            u16::try_from(count).unwrap_or(u16::MAX),
        ));
    }
    let out = buf
        .get_mut(..HEADER_LEN + count * 8)
        .ok_or(WireError::BufferTooSmall)?;
    let (header, body) = out.split_at_mut(HEADER_LEN);
    let [c0, c1] = (count as u16).to_be_bytes();
    put_header(
        header,
        Kind::Data,
        job,
        seq,
        [c0, c1, op.code(), data_flags(last, false)],
    );
    Ok(body)
}

/// Ack flags: the whole stream arrived.
const ACK_COMPLETE: u8 = 1;
/// Ack flags: this ack answers a data frame flagged ack-now.
const ACK_ANSWER: u8 = 2;

/// Data flags: the last frame of its stream.
const DATA_LAST: u8 = 1;
/// Data flags: acknowledge this frame at once.
const DATA_ACK_NOW: u8 = 2;

/// `flag` if `on`, else no bit: flag bytes are built from these.
const fn bit(on: bool, flag: u8) -> u8 {
    if on {
        flag
    } else {
        0
    }
}

fn data_flags(last: bool, ack_now: bool) -> u8 {
    bit(last, DATA_LAST) | bit(ack_now, DATA_ACK_NOW)
}

/// Sets (`on`) or clears the ack-now flag of an encoded data frame in place (a sender
/// resending it as a probe, or not); anything that is not a data frame is left as it is.
pub fn set_ack_now(frame: &mut [u8], on: bool) {
    if frame.get(field::KIND) == Some(&(Kind::Data as u8)) {
        if let Some(flags) = frame.get_mut(field::DATA_FLAGS) {
            *flags = (*flags & !DATA_ACK_NOW) | bit(on, DATA_ACK_NOW);
        }
    }
}

/// Writes the 16-byte header at the start of `buf` (ignored if it does not fit).
fn put_header(buf: &mut [u8], kind: Kind, job: JobId, seq: u32, aux: [u8; 4]) {
    put(buf, field::MAGIC.start, &MAGIC.to_be_bytes());
    put(buf, field::VERSION, &[VERSION]);
    put(buf, field::KIND, &[kind as u8]);
    put(buf, field::JOB.start, &job.0.to_be_bytes());
    put(buf, field::SEQ.start, &seq.to_be_bytes());
    put(buf, field::AUX.start, &aux);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(f: Frame<'_>) {
        let mut buf = [0u8; MAX_DATAGRAM];
        let n = f.emit(&mut buf).unwrap();
        assert_eq!(n, f.len());
        assert_eq!(Frame::parse(&buf[..n]), Ok(f));
        assert_eq!(Header::parse(&buf[..n]).unwrap().frame_len(), Ok(n));
        // Any shorter prefix is truncated, any longer buffer has trailing bytes.
        assert_eq!(Frame::parse(&buf[..n - 1]), Err(WireError::Truncated));
        assert_eq!(Frame::parse(&buf[..n + 1]), Err(WireError::TrailingBytes));
    }

    #[test]
    fn every_kind_round_trips() {
        let job = JobId(0xdead_beef);
        let mut sack = Sack::default();
        sack.set(0);
        sack.set(255);
        let bytes = [
            0u8, 0, 0, 0, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
        ];
        round_trip(Frame::Request {
            job,
            op: Op::Sos,
            total: u64::MAX,
        });
        round_trip(Frame::Data {
            job,
            seq: 9,
            op: Op::Min,
            last: true,
            ack_now: false,
            values: Values::from_be_bytes(&bytes).unwrap(),
        });
        round_trip(Frame::Data {
            job,
            seq: 10,
            op: Op::Max,
            last: false,
            ack_now: true,
            values: Values::from_be_bytes(&bytes).unwrap(),
        });
        round_trip(Frame::Ack {
            job,
            cum: 77,
            complete: false,
            answer: true,
            sack,
            epoch: Epoch(0xbeef),
        });
        round_trip(Frame::Result {
            job,
            op: Op::Sum,
            count: 3,
            value: I192::from_i128(-5),
            epoch: Epoch(1),
        });
        round_trip(Frame::Error {
            job,
            code: ErrorCode::BackendLost,
            arg: 1,
        });
        round_trip(Frame::Error {
            job,
            code: ErrorCode::BackendTimeout,
            arg: 2,
        });
        round_trip(Frame::Abort { job });
        round_trip(Frame::Accept { job });
    }

    #[test]
    fn fields_tile_the_header_and_bodies() {
        assert_eq!(field::MAGIC.end, field::VERSION);
        assert_eq!(field::KIND + 1, field::JOB.start);
        assert_eq!(field::JOB.end, field::SEQ.start);
        assert_eq!(field::SEQ.end, field::AUX.start);
        assert_eq!(field::AUX.end, HEADER_LEN);
        assert_eq!(field::BODY, HEADER_LEN);
        assert_eq!(field::ACK_SACK.len(), SACK_BYTES);
        assert_eq!(field::RESULT_VALUE.len(), I192_BYTES);
        assert_eq!(field::RESULT_COUNT.end, field::RESULT_VALUE.start);
        let mut b = [0u8; 64];
        let n = Frame::Accept {
            job: JobId(0x0102_0304),
        }
        .emit(&mut b)
        .unwrap();
        assert_eq!(n, HEADER_LEN);
        assert_eq!(b[field::KIND], Kind::Accept as u8);
        assert_eq!(b[field::JOB], [1, 2, 3, 4]);
        let n = Frame::Result {
            job: JobId(1),
            op: Op::Max,
            count: 9,
            value: I192::from_i64(-2),
            epoch: Epoch(0xBEEF),
        }
        .emit(&mut b)
        .unwrap();
        assert_eq!(n, field::RESULT_VALUE.end);
        assert_eq!(b[field::OP], Op::Max.code());
        assert_eq!(b[field::EPOCH], [0xBE, 0xEF]);
        assert_eq!(b[field::RESULT_COUNT], 9u64.to_be_bytes());
        assert_eq!(b[field::RESULT_VALUE], I192::from_i64(-2).to_be_bytes());
    }

    #[test]
    fn data_layout_is_big_endian_and_full_frames_fit() {
        let values = [1i64; MAX_VALUES];
        let mut buf = [0u8; MAX_DATAGRAM];
        let n = emit_data(&mut buf, JobId(1), 2, Op::Sum, false, &values).unwrap();
        assert_eq!(n, MAX_DATAGRAM);
        assert_eq!(MAX_VALUES, 182);
        // The layout as the README writes it, byte for byte (independent of `field`).
        assert_eq!(
            &buf[..16],
            &[0x4f, 0x46, 2, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 182, 3, 0]
        );
        assert_eq!(&buf[16..24], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(buf[field::DATA_COUNT], [0, 182]);
        assert_eq!(buf[field::DATA_OP], Op::Sum.code());
        assert_eq!(buf[field::DATA_FLAGS], 0);
        match Frame::parse(&buf[..n]).unwrap() {
            Frame::Data {
                values: v, ack_now, ..
            } => assert!(v.iter().eq(values.iter().copied()) && !ack_now),
            other => panic!("{other:?}"),
        }
        // A probe asks for an ack at once: bit 1 of the flags, nothing else changes.
        let sent = buf;
        set_ack_now(&mut buf[..n], true);
        assert_eq!(buf[15], 2);
        assert_eq!((&buf[..15], &buf[16..]), (&sent[..15], &sent[16..]));
        assert!(matches!(
            Frame::parse(&buf[..n]),
            Ok(Frame::Data {
                ack_now: true,
                last: false,
                seq: 2,
                ..
            })
        ));
        set_ack_now(&mut buf[..n], false);
        assert_eq!(buf, sent);
        set_ack_now(&mut buf[..n], true);
        // Bits 2-7 stay reserved.
        buf[15] = 4;
        assert_eq!(Frame::parse(&buf[..n]), Err(WireError::Reserved));
        assert_eq!(
            emit_data(&mut buf, JobId(1), 0, Op::Sum, false, &[0; 183]),
            Err(WireError::BadCount(183))
        );
        assert_eq!(
            emit_data(&mut buf[..20], JobId(1), 0, Op::Sum, false, &[0; 1]),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn forwarded_bytes_make_the_same_frame_as_the_numbers() {
        let values: [i64; 5] = [i64::MIN, -1, 0, 7, i64::MAX];
        let mut from_numbers = [0u8; MAX_DATAGRAM];
        let n = emit_data(&mut from_numbers, JobId(3), 9, Op::Sos, true, &values).unwrap();
        let Ok(Frame::Data { values: v, .. }) = Frame::parse(&from_numbers[..n]) else {
            panic!("not a data frame");
        };
        let mut from_bytes = [0u8; MAX_DATAGRAM];
        let m = emit_data_be(&mut from_bytes, JobId(3), 9, Op::Sos, true, v.as_bytes()).unwrap();
        assert_eq!(&from_bytes[..m], &from_numbers[..n]);
        assert_eq!(m, HEADER_LEN + 40);
        // A partial number, too many numbers, or too small a buffer is refused.
        let mut buf = [0u8; 2 * MAX_DATAGRAM];
        assert_eq!(
            emit_data_be(&mut buf, JobId(3), 0, Op::Sum, false, &[0; 12]),
            Err(WireError::BadCount(u16::MAX))
        );
        assert_eq!(
            emit_data_be(&mut buf, JobId(3), 0, Op::Sum, false, &[0; 183 * 8]),
            Err(WireError::BadCount(183))
        );
        assert_eq!(
            emit_data_be(&mut buf[..23], JobId(3), 0, Op::Sum, false, &[0; 8]),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let mut buf = [0u8; 16];
        Frame::Abort { job: JobId(3) }.emit(&mut buf).unwrap();
        let mut bad = buf;
        bad[field::MAGIC.start] = 0;
        assert_eq!(Frame::parse(&bad), Err(WireError::BadMagic));
        let mut bad = buf;
        bad[field::VERSION] = 9;
        assert_eq!(Frame::parse(&bad), Err(WireError::BadVersion(9)));
        let mut bad = buf;
        bad[field::KIND] = 0;
        assert_eq!(Frame::parse(&bad), Err(WireError::BadKind(0)));
        let mut bad = buf;
        bad[field::AUX.end - 1] = 1;
        assert_eq!(Frame::parse(&bad), Err(WireError::Reserved));
        assert_eq!(Frame::parse(&buf[..3]), Err(WireError::Truncated));
        assert_eq!(Frame::parse(&[]), Err(WireError::Truncated));
        let mut data = [0u8; 16];
        emit_data(&mut data, JobId(1), 0, Op::Sum, false, &[]).unwrap();
        data[field::DATA_COUNT.start] = 0xff; // count 0xff00
        assert_eq!(Frame::parse(&data), Err(WireError::BadCount(0xff00)));
        let mut err = [0u8; 16];
        Frame::Error {
            job: JobId(1),
            code: ErrorCode::Busy,
            arg: 0,
        }
        .emit(&mut err)
        .unwrap();
        err[field::ERROR_CODE.end - 1] = 99;
        assert_eq!(Frame::parse(&err), Err(WireError::BadErrorCode(99)));
    }

    #[test]
    fn epoch_sits_in_bytes_13_and_14_of_acks_and_results() {
        let mut buf = [0u8; MAX_DATAGRAM];
        let ack = Frame::Ack {
            job: JobId(1),
            cum: 2,
            complete: true,
            answer: false,
            sack: Sack::default(),
            epoch: Epoch(0x1234),
        };
        let n = ack.emit(&mut buf).unwrap();
        assert_eq!(&buf[12..16], &[1, 0x12, 0x34, 0]);
        buf[15] = 1;
        assert_eq!(Frame::parse(&buf[..n]), Err(WireError::Reserved));
        let result = Frame::Result {
            job: JobId(1),
            op: Op::Max,
            count: 1,
            value: I192::from_i64(9),
            epoch: Epoch(0xfffe),
        };
        let n = result.emit(&mut buf).unwrap();
        assert_eq!(&buf[12..16], &[2, 0xff, 0xfe, 0]);
        assert_eq!(Frame::parse(&buf[..n]), Ok(result));
        buf[15] = 1;
        assert_eq!(Frame::parse(&buf[..n]), Err(WireError::Reserved));
        let mut err = [0u8; 16];
        Frame::Error {
            job: JobId(1),
            code: ErrorCode::BackendLost,
            arg: 2,
        }
        .emit(&mut err)
        .unwrap();
        assert_eq!(&err[12..16], &[0, 7, 0, 2]);
    }

    #[test]
    fn sack_bits() {
        let mut s = Sack::default();
        s.set(3);
        s.set(511);
        s.set(512);
        assert!(s.get(3) && !s.get(2) && s.get(511) && !s.get(512));
        assert_eq!(s.0[SACK_BYTES - 1], 1);
        assert_eq!(s.0[0], 0b0001_0000);
    }
}
