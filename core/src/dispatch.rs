//! The AWS side of one job, sans-IO: every decision the AWS makes, none of its I/O.
//!
//! A [`Dispatch`] checks the client's request and data frames, splits the numbers into
//! three parts and sends each to its back-end reliably, routes each back-end reply to its
//! part, notices a stalled back-end or a silent client, decides which error the client is
//! told and which back-ends must be told to forget the job, and announces Table 7's events
//! in the table's order however they happen.
//!
//! The caller (quinn's I/O loop is the model) only moves bytes and time:
//! [`Dispatch::handle_client`] / [`Dispatch::handle_backend`] / [`Dispatch::handle_timeout`]
//! in, [`Dispatch::poll_transmit`] (datagrams for the back-ends), [`Dispatch::poll_client`]
//! (frames for the client), [`Dispatch::poll_event`] (what to print) and
//! [`Dispatch::poll_timeout`] (when to call again) out.
//!
//! The last frame of every part is withheld until the client's last data frame has
//! arrived, so no back-end can finish a part of a job the client then abandons.

use crate::op::Op;
use crate::reduce::Reduction;
use crate::split::{split, Part};
use crate::transfer::{Instant, Sender, SenderStats};
use crate::wire::{
    Epoch, ErrorCode, Frame, JobId, Sack, WireError, HEADER_LEN, MAX_DATAGRAM, MAX_VALUES,
};
use arrayvec::ArrayVec;
use core::fmt;
use core::time::Duration;

/// Bytes of a full data frame's numbers.
const PACK_BYTES: usize = MAX_VALUES * 8;

/// Microseconds in `d`, saturating instead of wrapping for durations beyond 584,000 years.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// How long the AWS waits on each side of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest a back-end may owe an answer without progress.
    pub backend_timeout: Duration,
    /// Longest the client may stay silent while it owes numbers.
    pub client_idle: Duration,
}

/// A client's request, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The operation.
    pub op: Op,
    /// How many numbers follow.
    pub total: u64,
}

/// Why the AWS turns a client away before its job starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The first frame was not a valid request.
    Malformed(WireError),
    /// The first frame was valid but not a request.
    NotARequest,
    /// A request for zero numbers.
    NoNumbers,
    /// Too many jobs running; the client may try again later.
    Busy,
}

impl Refusal {
    /// The error code the client is told.
    pub const fn code(self) -> ErrorCode {
        match self {
            Refusal::Busy => ErrorCode::Busy,
            _ => ErrorCode::BadRequest,
        }
    }

    /// Encodes the error frame that tells the client; returns its length (0 if `buf`
    /// is shorter than a header).
    pub fn emit(self, buf: &mut [u8]) -> usize {
        let frame = Frame::Error {
            job: JobId(0),
            code: self.code(),
            arg: 0,
        };
        frame.emit(buf).unwrap_or(0)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed(e) => write!(f, "sent no valid request ({e})"),
            Refusal::NotARequest => f.write_str("sent no valid request (not a request frame)"),
            Refusal::NoNumbers => f.write_str("sent an invalid request (zero numbers)"),
            Refusal::Busy => f.write_str("refused: the AWS is running its maximum of jobs"),
        }
    }
}

/// Checks a client's first frame.
///
/// # Errors
/// The [`Refusal`] to send back when it is not a request for at least one number.
pub fn parse_request(frame: &[u8]) -> Result<Request, Refusal> {
    match Frame::parse(frame) {
        Ok(Frame::Request { total: 0, .. }) => Err(Refusal::NoNumbers),
        Ok(Frame::Request { op, total, .. }) => Ok(Request { op, total }),
        Ok(_) => Err(Refusal::NotARequest),
        Err(e) => Err(Refusal::Malformed(e)),
    }
}

/// How a client's data frame broke the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A frame of another kind than data.
    NotData,
    /// Data for another job.
    WrongJob(JobId),
    /// Data of another operation than the request's.
    WrongOp(Op),
    /// Not the next sequence number.
    OutOfSequence {
        /// The sequence number due.
        expected: u32,
        /// The one that came.
        got: u32,
    },
    /// A data frame without numbers.
    Empty,
    /// More numbers than the request announced.
    TooMany,
    /// The last-frame flag on a frame that does not end the numbers.
    EarlyLast,
    /// The frame that ends the numbers lacks the last-frame flag.
    MissingLast,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NotData => f.write_str("a frame that is not data"),
            Violation::WrongJob(j) => write!(f, "data for job {j}"),
            Violation::WrongOp(op) => write!(f, "data for {op}, not the requested operation"),
            Violation::OutOfSequence { expected, got } => {
                write!(f, "data frame {got} where {expected} was due")
            }
            Violation::Empty => f.write_str("a data frame without numbers"),
            Violation::TooMany => f.write_str("more numbers than announced"),
            Violation::EarlyLast => f.write_str("a last-frame flag before the last number"),
            Violation::MissingLast => f.write_str("no last-frame flag on the last number"),
        }
    }
}

/// Why a job ended without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobError {
    /// The client closed the connection (or it failed) before the answer.
    ClientClosed {
        /// Numbers received.
        received: u64,
        /// Numbers announced.
        total: u64,
    },
    /// The client owed numbers and sent nothing for this long.
    ClientIdle(Duration),
    /// The client's stream was not frames.
    ClientMalformed(WireError),
    /// The client's frames broke the protocol.
    ClientViolation(Violation),
    /// A back-end owed an answer and made no progress for this long.
    BackendTimeout(Part, Duration),
    /// A back-end had no room for the job.
    BackendBusy(Part),
    /// A back-end reported another failure.
    BackendFailed(Part, ErrorCode),
    /// A back-end answered with a new epoch: it restarted and forgot the job.
    BackendLost(Part),
}

impl JobError {
    /// The error frame's code and argument the client is told, or `None` when the
    /// client is gone or broke the stream (nothing useful can reach it).
    pub const fn client_error(self) -> Option<(ErrorCode, u16)> {
        match self {
            JobError::ClientClosed { .. }
            | JobError::ClientIdle(_)
            | JobError::ClientMalformed(_) => None,
            JobError::ClientViolation(_) => Some((ErrorCode::ProtocolViolation, 0)),
            JobError::BackendTimeout(p, _) => Some((ErrorCode::BackendTimeout, p.index() as u16)),
            JobError::BackendBusy(p) => Some((ErrorCode::BackendBusy, p.index() as u16)),
            JobError::BackendFailed(p, _) => Some((ErrorCode::BackendFailed, p.index() as u16)),
            JobError::BackendLost(p) => Some((ErrorCode::BackendLost, p.index() as u16)),
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            JobError::ClientClosed { received, total } if received < total => {
                write!(f, "client closed after {received} of {total} numbers")
            }
            JobError::ClientClosed { .. } => f.write_str("client closed before the answer"),
            JobError::ClientIdle(d) => {
                write!(f, "client sent nothing for {} ms", d.as_millis())
            }
            JobError::ClientMalformed(e) => write!(f, "client sent a malformed stream ({e})"),
            JobError::ClientViolation(v) => write!(f, "client broke the protocol: {v}"),
            JobError::BackendTimeout(p, d) => write!(
                f,
                "Backend-Server {} did not answer within {} ms",
                p.letter(),
                d.as_millis()
            ),
            JobError::BackendBusy(p) => write!(f, "Backend-Server {} is busy", p.letter()),
            JobError::BackendFailed(p, code) => {
                write!(f, "Backend-Server {} failed the job ({code:?})", p.letter())
            }
            JobError::BackendLost(p) => {
                write!(
                    f,
                    "Backend-Server {} lost the job (it restarted)",
                    p.letter()
                )
            }
        }
    }
}

/// Table 7's events, in the table's order. Each is announced once, when it happened
/// and every event before it in the table was announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Every number came from the client.
    Received {
        /// How many.
        count: u64,
    },
    /// A part was sent and fully acknowledged by its back-end.
    Sent {
        /// The part.
        part: Part,
        /// Its numbers.
        count: u64,
    },
    /// A part's result arrived.
    PartResult {
        /// The part.
        part: Part,
        /// Its reduction.
        result: Reduction,
    },
    /// The final reduction is computed; the answer frame is ready for the client.
    Reduced {
        /// The answer.
        result: Reduction,
    },
    /// The caller reported the answer written to the client ([`Dispatch::handle_answer_written`]).
    Answered,
    /// The job ended without an answer (announced after any earlier events that did happen).
    Failed(JobError),
}

/// A datagram [`Dispatch::poll_transmit`] wrote: `len` bytes for `part`'s back-end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The back-end it is for.
    pub part: Part,
    /// Its length at the start of the buffer.
    pub len: usize,
}

/// Why [`Dispatch::handle_backend`] dropped a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// Not a frame.
    Malformed(WireError),
    /// A frame for another job.
    OtherJob(JobId),
    /// A kind a back-end never sends.
    UnexpectedKind,
    /// An ack of frames never sent, or a result that does not match the part.
    Inconsistent,
    /// The job is over (or its part already finished).
    NotRunning,
}

/// Why [`Dispatch::handle_client`] did not take a frame now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotNow {
    /// The windows are full: call again after [`Dispatch::wants_client`] turns true.
    WindowFull,
    /// The job no longer takes client frames.
    NotReceiving,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Idle,
    Receiving,
    Collecting,
    Answering,
    Done,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientOut {
    Answer(Reduction),
    Error(ErrorCode, u16),
}

/// Table 7 has nine lines: received, sent A-C, result A-C, reduced, answered.
const SENT: usize = 1;
const RESULT: usize = 4;
const REDUCED: usize = 7;
const ANSWERED: usize = 8;
const LINES: usize = 9;

/// One job at the AWS, with `W` frames in flight per back-end.
pub struct Dispatch<const W: usize> {
    job: JobId,
    op: Op,
    total: u64,
    limits: Limits,
    phase: Phase,
    sizes: [u64; 3],
    senders: [Sender<W>; 3],
    /// Part being filled: numbers go to parts in order.
    part: usize,
    filled: u64,
    received: u64,
    next_seq: u32,
    /// The numbers of the frame being filled, as they came: big-endian bytes, copied
    /// from the client's frames into the back-ends' without being decoded.
    pack: ArrayVec<u8, PACK_BYTES>,
    /// Last frames of parts A and B, withheld until the client's last frame.
    /// (Part C's last number is the client's last number: it is never withheld.)
    held: [ArrayVec<u8, PACK_BYTES>; 2],
    results: [Option<Reduction>; 3],
    /// The first epoch each back-end sent in this job.
    epochs: [Option<Epoch>; 3],
    aborts: [bool; 3],
    /// The accept is owed (it goes first, even when the job fails at once).
    accept_due: bool,
    client_out: Option<ClientOut>,
    error: Option<JobError>,
    /// Next Table 7 line to announce; [`LINES`] once all are, `LINES + 1` after `Failed`.
    cursor: usize,
    last_client: Instant,
    /// The latest time any call passed in.
    clock: Instant,
    started: Instant,
}

impl<const W: usize> Default for Dispatch<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize> Dispatch<W> {
    /// An idle dispatcher; [`Dispatch::start`] begins a job in place. `const`, so it
    /// can live in a `static` or be built straight into caller storage.
    pub const fn new() -> Self {
        let limits = Limits {
            backend_timeout: Duration::ZERO,
            client_idle: Duration::ZERO,
        };
        Dispatch {
            job: JobId(0),
            op: Op::Sum,
            total: 0,
            limits,
            phase: Phase::Idle,
            sizes: [0; 3],
            senders: [
                Sender::new(JobId(0), Op::Sum, Instant(0)),
                Sender::new(JobId(0), Op::Sum, Instant(0)),
                Sender::new(JobId(0), Op::Sum, Instant(0)),
            ],
            part: 0,
            filled: 0,
            received: 0,
            next_seq: 0,
            pack: ArrayVec::new_const(),
            held: [ArrayVec::new_const(), ArrayVec::new_const()],
            results: [None; 3],
            epochs: [None; 3],
            aborts: [false; 3],
            accept_due: false,
            client_out: None,
            error: None,
            cursor: 0,
            last_client: Instant(0),
            clock: Instant(0),
            started: Instant(0),
        }
    }

    /// Starts job `job` for an accepted `request` at `now`, reusing this storage. The
    /// client is owed an accept frame at once ([`Dispatch::poll_client`]).
    pub fn start(&mut self, job: JobId, request: Request, limits: Limits, now: Instant) {
        let Request { op, total } = request;
        self.job = job;
        self.op = op;
        self.total = total;
        self.limits = limits;
        self.phase = Phase::Receiving;
        self.sizes = split(total);
        for s in self.senders.iter_mut() {
            s.reset(job, op, now);
        }
        self.part = 0;
        self.filled = 0;
        self.received = 0;
        self.next_seq = 0;
        self.pack.clear();
        self.held.iter_mut().for_each(ArrayVec::clear);
        self.results = [None; 3];
        self.epochs = [None; 3];
        self.aborts = [false; 3];
        self.accept_due = true;
        self.client_out = None;
        self.error = None;
        self.cursor = 0;
        self.last_client = now;
        self.clock = now;
        self.started = now;
        self.skip_full_parts();
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

    /// When the job started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// True once the client's numbers are all in.
    pub fn all_received(&self) -> bool {
        self.phase != Phase::Idle && self.received == self.total
    }

    /// Why the job failed, once it did.
    pub fn error(&self) -> Option<JobError> {
        self.error
    }

    /// True when nothing is left to do: the job answered or failed, and every event,
    /// client frame and abort was polled. The storage may then be reused.
    pub fn is_finished(&self) -> bool {
        let ended = matches!(self.phase, Phase::Done | Phase::Failed | Phase::Idle);
        let announced = self.phase == Phase::Idle || self.cursor > LINES;
        let owed = self.accept_due || self.client_out.is_some();
        ended && announced && !owed && !self.aborts.iter().any(|a| *a)
    }

    /// True when a client frame would be taken now: the job is receiving and every
    /// send window has room for a whole frame's numbers.
    pub fn wants_client(&self) -> bool {
        self.phase == Phase::Receiving && self.has_room()
    }

    fn has_room(&self) -> bool {
        // One client frame can close at most two frames of any one part.
        self.senders
            .iter()
            .enumerate()
            .all(|(i, s)| i < self.part || s.free() >= 2)
    }

    fn skip_full_parts(&mut self) {
        while self.sizes.get(self.part).is_some_and(|&s| self.filled >= s) {
            self.part += 1;
            self.filled = 0;
        }
    }

    fn tick(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        if self.phase == Phase::Receiving && !self.has_room() {
            // Not reading the client is not the client's silence.
            self.last_client = self.clock;
        }
    }

    /// Takes one whole frame from the client's stream.
    ///
    /// # Errors
    /// [`NotNow`] when the frame cannot be taken now (nothing changed; offer it again
    /// later, or drop it when the job is over). A frame that breaks the protocol is not
    /// an error here: it fails the job, as [`Dispatch::poll_event`] will tell.
    pub fn handle_client(&mut self, now: Instant, frame: &[u8]) -> Result<(), NotNow> {
        self.tick(now);
        if self.phase != Phase::Receiving {
            return Err(NotNow::NotReceiving);
        }
        if !self.has_room() {
            return Err(NotNow::WindowFull);
        }
        self.last_client = now;
        let frame = match Frame::parse(frame) {
            Ok(f) => f,
            Err(e) => {
                self.fail(JobError::ClientMalformed(e));
                return Ok(());
            }
        };
        if let Err(v) = self.take_data(&frame) {
            self.fail(JobError::ClientViolation(v));
        }
        Ok(())
    }

    fn take_data(&mut self, frame: &Frame<'_>) -> Result<(), Violation> {
        let Frame::Data {
            job,
            seq,
            op,
            last,
            values,
            ..
        } = *frame
        else {
            return Err(Violation::NotData);
        };
        if job != JobId(0) && job != self.job {
            return Err(Violation::WrongJob(job));
        }
        if op != self.op {
            return Err(Violation::WrongOp(op));
        }
        if seq != self.next_seq {
            return Err(Violation::OutOfSequence {
                expected: self.next_seq,
                got: seq,
            });
        }
        let count = values.len() as u64;
        let left = self.total.saturating_sub(self.received);
        if count == 0 {
            return Err(Violation::Empty);
        }
        if count > left {
            return Err(Violation::TooMany);
        }
        match (last, count == left) {
            (true, false) => return Err(Violation::EarlyLast),
            (false, true) => return Err(Violation::MissingLast),
            _ => {}
        }
        self.next_seq = seq.wrapping_add(1);
        let mut rest = values.as_bytes();
        while !rest.is_empty() {
            let Some(&size) = self.sizes.get(self.part) else {
                break;
            };
            // The part has room (full parts are skipped) and so has the pack (full ones
            // are sent at once): `n` is never 0.
            let room = size
                .saturating_sub(self.filled)
                .min((self.pack.remaining_capacity() / 8) as u64);
            let n = (rest.len() / 8).min(room as usize);
            let Some((now, after)) = rest.split_at_checked(n * 8).filter(|_| n > 0) else {
                break;
            };
            let _ = self.pack.try_extend_from_slice(now);
            rest = after;
            self.filled += n as u64;
            self.received += n as u64;
            self.send_pack(size);
        }
        if last {
            self.release_held();
            self.phase = Phase::Collecting;
        }
        Ok(())
    }

    /// Sends the pack of the part being filled (of `size` numbers) if it is full or the
    /// part's last. The caller has checked the count against the total and the windows'
    /// room.
    fn send_pack(&mut self, size: u64) {
        let last = self.filled == size;
        if !(last || self.pack.is_full()) {
            return;
        }
        let withhold = last && self.received < self.total;
        match (withhold, self.held.get_mut(self.part)) {
            (true, Some(held)) => {
                // `pack` and `held` have the same capacity: this cannot fail.
                let _ = held.try_extend_from_slice(&self.pack);
            }
            _ => {
                if let Some(sender) = self.senders.get_mut(self.part) {
                    let _ = sender.push_be(&self.pack, last);
                }
            }
        }
        self.pack.clear();
        self.skip_full_parts();
    }

    /// The client's last frame is in: the withheld last frames may go.
    fn release_held(&mut self) {
        for (held, sender) in self.held.iter_mut().zip(self.senders.iter_mut()) {
            if !held.is_empty() {
                // The window kept a slot free for it (see `has_room`).
                let _ = sender.push_be(held, true);
                held.clear();
            }
        }
    }

    /// The client's stream ended or failed before the job did.
    pub fn handle_client_closed(&mut self, now: Instant) {
        self.tick(now);
        if matches!(
            self.phase,
            Phase::Receiving | Phase::Collecting | Phase::Answering
        ) {
            self.fail(JobError::ClientClosed {
                received: self.received,
                total: self.total,
            });
        }
    }

    /// The client's stream held bytes that are not a frame.
    pub fn handle_client_malformed(&mut self, now: Instant, error: WireError) {
        self.tick(now);
        if self.phase == Phase::Receiving {
            self.fail(JobError::ClientMalformed(error));
        }
    }

    /// The answer frame from [`Dispatch::poll_client`] was written to the client.
    pub fn handle_answer_written(&mut self, now: Instant) {
        self.tick(now);
        if self.phase == Phase::Answering && self.client_out.is_none() {
            self.phase = Phase::Done;
        }
    }

    /// Takes one datagram that came from `part`'s back-end.
    ///
    /// # Errors
    /// [`Ignored`] when the datagram was dropped (no state changed).
    pub fn handle_backend(
        &mut self,
        now: Instant,
        part: Part,
        datagram: &[u8],
    ) -> Result<(), Ignored> {
        self.tick(now);
        let frame = Frame::parse(datagram).map_err(Ignored::Malformed)?;
        if frame.job() != self.job {
            return Err(Ignored::OtherJob(frame.job()));
        }
        if !matches!(self.phase, Phase::Receiving | Phase::Collecting) {
            return Err(Ignored::NotRunning);
        }
        let i = part.index();
        let size = self.sizes.get(i).copied().unwrap_or(0);
        if !self.senders.get(i).is_some_and(|s| !s.is_closed()) {
            return Err(Ignored::NotRunning);
        }
        if let Frame::Ack { epoch, .. } | Frame::Result { epoch, .. } = frame {
            let first = self.epochs.get_mut(i).ok_or(Ignored::Inconsistent)?;
            if *first.get_or_insert(epoch) != epoch {
                // Another process answers on that port: the one that had the part is gone.
                self.fail(JobError::BackendLost(part));
                return Ok(());
            }
        }
        let sender = self.senders.get_mut(i).ok_or(Ignored::Inconsistent)?;
        match frame {
            Frame::Ack {
                cum, sack, answer, ..
            } => sender
                .handle_ack_frame(now, cum, &sack, answer)
                .map_err(|_| Ignored::Inconsistent),
            Frame::Result {
                op, count, value, ..
            } => {
                if op != self.op || count != size {
                    return Err(Ignored::Inconsistent);
                }
                // A result means every frame arrived: it acknowledges the whole part,
                // whose last ack may have been lost or never sent.
                if !sender.is_acked() {
                    let _ = sender.handle_ack(now, sender.pushed(), &Sack::default());
                }
                if !sender.is_acked() {
                    return Err(Ignored::Inconsistent);
                }
                sender.close();
                if let Some(slot) = self.results.get_mut(i) {
                    *slot = Some(Reduction { op, count, value });
                }
                self.maybe_answer();
                Ok(())
            }
            Frame::Error { code, .. } => {
                self.fail(match code {
                    ErrorCode::Busy => JobError::BackendBusy(part),
                    ErrorCode::BackendLost => JobError::BackendLost(part),
                    other => JobError::BackendFailed(part, other),
                });
                Ok(())
            }
            _ => Err(Ignored::UnexpectedKind),
        }
    }

    fn maybe_answer(&mut self) {
        if self.phase != Phase::Collecting {
            return;
        }
        if let Some(result) = self.final_result() {
            self.phase = Phase::Answering;
            self.client_out = Some(ClientOut::Answer(result));
        }
    }

    fn fail(&mut self, error: JobError) {
        if matches!(self.phase, Phase::Done | Phase::Failed | Phase::Idle) {
            return;
        }
        self.phase = Phase::Failed;
        self.error = Some(error);
        self.client_out = error.client_error().map(|(c, a)| ClientOut::Error(c, a));
        for (i, s) in self.senders.iter_mut().enumerate() {
            let size = self.sizes.get(i).copied().unwrap_or(0);
            let unfinished = size > 0 && self.results.get(i).is_some_and(Option::is_none);
            if let Some(a) = self.aborts.get_mut(i) {
                // Only a back-end that may hold the job needs to be told.
                *a = unfinished && s.stats().datagrams > 0;
            }
            s.close();
        }
    }

    /// Writes the next datagram for a back-end into `buf`, which must hold
    /// [`MAX_DATAGRAM`] bytes (aborts go out first); call until `None`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.tick(now);
        for (i, abort) in self.aborts.iter_mut().enumerate() {
            if core::mem::take(abort) {
                let len = Frame::Abort { job: self.job }.emit(buf).ok()?;
                return Part::from_index(i).map(|part| Transmit { part, len });
            }
        }
        if buf.len() < MAX_DATAGRAM {
            return None;
        }
        for (i, s) in self.senders.iter_mut().enumerate() {
            if let Some(d) = s.poll_transmit(now) {
                let len = d.len();
                crate::wire::put(buf, 0, d);
                return Part::from_index(i).map(|part| Transmit { part, len });
            }
        }
        None
    }

    /// Writes the next frame for the client into `buf` (at least [`CLIENT_FRAME_MAX`]
    /// bytes): the accept, then the answer or the error. Returns its length.
    pub fn poll_client(&mut self, buf: &mut [u8]) -> Option<usize> {
        let job = self.job;
        if self.accept_due {
            let n = Frame::Accept { job }.emit(buf).ok()?;
            self.accept_due = false;
            return Some(n);
        }
        let frame = match self.client_out? {
            ClientOut::Answer(r) => Frame::Result {
                job,
                epoch: Epoch(0),
                op: r.op,
                count: r.count,
                value: r.value,
            },
            ClientOut::Error(code, arg) => Frame::Error { job, code, arg },
        };
        let n = frame.emit(buf).ok()?;
        self.client_out = None;
        Some(n)
    }

    /// The next of Table 7's events, in the table's order, then [`Event::Failed`] once
    /// if the job failed.
    pub fn poll_event(&mut self) -> Option<Event> {
        while self.cursor < LINES {
            match self.line(self.cursor) {
                Line::Skip => self.cursor += 1,
                Line::Ready(e) => {
                    self.cursor += 1;
                    return Some(e);
                }
                Line::Pending => break,
            }
        }
        if self.phase == Phase::Failed && self.cursor <= LINES {
            self.cursor = LINES + 1;
            return self.error.map(Event::Failed);
        }
        if self.cursor == LINES && self.phase == Phase::Done {
            self.cursor = LINES + 1;
        }
        None
    }

    fn line(&self, line: usize) -> Line {
        let part = |base: usize| Part::from_index(line.wrapping_sub(base));
        let size = |p: Part| self.sizes.get(p.index()).copied().unwrap_or(0);
        match line {
            0 if self.received == self.total && self.phase > Phase::Receiving => {
                Line::Ready(Event::Received { count: self.total })
            }
            0 => Line::Pending,
            SENT..RESULT => match part(SENT) {
                Some(p) if size(p) == 0 => Line::Skip,
                Some(p) if self.part_sent(p) => Line::Ready(Event::Sent {
                    part: p,
                    count: size(p),
                }),
                _ => Line::Pending,
            },
            RESULT..REDUCED => match part(RESULT) {
                Some(p) if size(p) == 0 => Line::Skip,
                Some(p) => match self.result(p) {
                    Some(result) => Line::Ready(Event::PartResult { part: p, result }),
                    None => Line::Pending,
                },
                None => Line::Pending,
            },
            REDUCED => match (self.phase, self.final_result()) {
                (Phase::Answering | Phase::Done, Some(result)) => {
                    Line::Ready(Event::Reduced { result })
                }
                _ => Line::Pending,
            },
            ANSWERED if self.phase == Phase::Done => Line::Ready(Event::Answered),
            _ => Line::Pending,
        }
    }

    /// The earliest time [`Dispatch::handle_timeout`] has work: a retransmission, a
    /// back-end's or the client's deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !matches!(self.phase, Phase::Receiving | Phase::Collecting) {
            return None;
        }
        let limit = micros(self.limits.backend_timeout);
        let stalls = self.senders.iter().filter_map(|s| {
            let owed = s.stalled_for(self.clock)?;
            Some(self.clock.plus(limit.saturating_sub(owed)))
        });
        let retransmits = self.senders.iter().filter_map(Sender::poll_timeout);
        let idle = (self.phase == Phase::Receiving && self.has_room())
            .then(|| self.last_client.plus(micros(self.limits.client_idle)));
        stalls.chain(retransmits).chain(idle).min()
    }

    /// Fires what is due at `now`: retransmissions, and the failure of a job whose
    /// back-end or client has been silent too long.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        if !matches!(self.phase, Phase::Receiving | Phase::Collecting) {
            return;
        }
        self.senders.iter_mut().for_each(|s| s.handle_timeout(now));
        let limit = micros(self.limits.backend_timeout);
        let stalled = self
            .senders
            .iter()
            .position(|s| s.stalled_for(now).is_some_and(|t| t >= limit))
            .and_then(Part::from_index);
        if let Some(p) = stalled {
            self.fail(JobError::BackendTimeout(p, self.limits.backend_timeout));
            return;
        }
        let idle = self.limits.client_idle;
        if self.wants_client() && now.since(self.last_client) >= micros(idle) {
            self.fail(JobError::ClientIdle(idle));
        }
    }

    /// True when part `part` was fully acknowledged (or is empty).
    pub fn part_sent(&self, part: Part) -> bool {
        let i = part.index();
        self.sizes.get(i) == Some(&0)
            || self.senders.get(i).is_some_and(|s| s.is_acked())
            || self.result(part).is_some()
    }

    /// Part `part`'s result, once it arrived.
    pub fn result(&self, part: Part) -> Option<Reduction> {
        self.results.get(part.index()).copied().flatten()
    }

    /// The final reduction once every non-empty part reported.
    pub fn final_result(&self) -> Option<Reduction> {
        if self.received != self.total || self.phase == Phase::Idle {
            return None;
        }
        let mut total = Reduction::empty(self.op);
        for (i, size) in self.sizes.iter().enumerate() {
            if *size > 0 {
                total = total.merge((*self.results.get(i)?)?)?;
            }
        }
        Some(total)
    }

    /// Sender statistics of each part.
    pub fn stats(&self) -> [SenderStats; 3] {
        [0, 1, 2].map(|i| self.senders.get(i).map(|s| s.stats()).unwrap_or_default())
    }

    /// Each part's sender's smoothed round-trip time (once measured) and current
    /// retransmission timeout, in microseconds.
    pub fn timers(&self) -> [(Option<u64>, u64); 3] {
        [0, 1, 2].map(|i| {
            self.senders
                .get(i)
                .map_or((None, 0), |s| (s.srtt(), s.rto()))
        })
    }
}

enum Line {
    Skip,
    Ready(Event),
    Pending,
}

/// Bytes a client frame from [`Dispatch::poll_client`] can take at most (a result).
pub const CLIENT_FRAME_MAX: usize = HEADER_LEN + 8 + crate::wide::I192_BYTES;

#[cfg(test)]
mod tests;
