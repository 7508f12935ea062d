//! The client: validates `nums.csv`, streams it to the AWS over TCP, prints the answer.
//!
//! The file is read twice in large chunks: the first pass checks every line and counts
//! the numbers (no values are made: `LineReader::feed_check`), so a bad file sends
//! nothing; the second parses and streams data frames. Both digest the bytes they read.
//! Neither pass holds more than one chunk.
//!
//! The last data frame commits the job, so it is held back until the second pass has
//! proved that it sent exactly what the first validated: the same bytes (the digests
//! match), the whole file and no more (end of file at the validated size, the validated
//! count of numbers), and the same file (device, inode, size, modification and change
//! times, of the open file and of the name). Otherwise the client closes the connection
//! without it and the AWS abandons the job: no answer is ever given for bytes that were
//! not checked.

use crate::config::Config;
use crate::messages::{client_boot, client_received, client_sent_numbers, client_sent_op, say};
use crate::net::{
    is_interrupted, is_timeout, write_all_within, write_all_within_armed, FrameReader, Polled,
};
use offload_core::csv::{LineError, LineReader};
use offload_core::split::Part;
use offload_core::wire::{
    emit_data_header, ErrorCode, Frame, JobId, HEADER_LEN, MAX_DATAGRAM, MAX_VALUES,
};
use offload_core::{Op, I192};
use std::fmt;
use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io;
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The input file, in the client's working directory.
pub const INPUT: &str = "nums.csv";
/// Bytes per file read: small enough that the buffer the kernel copies into stays in
/// the core's L2 cache for the parse that follows (64 KiB against 256 KiB: client CPU on
/// 3e7 lines 0.79 -> 0.69 s; 32 KiB is no better, 1 MiB worse).
const CHUNK: usize = 64 << 10;
/// Data frames batched into one TCP write.
const FRAMES_PER_WRITE: usize = 44;
/// Chunks the sending pass reads between two looks at the file's metadata (1 MiB): a
/// change stops the stream that soon; the commit looks again, and compares the digests.
const CHECK_EVERY: u32 = 16;

const USAGE: &str = "usage: ./client <min|max|sum|sos>";

/// Why a job failed; printed on stderr as `client: <this>`.
#[derive(Debug)]
pub enum ClientError {
    /// Wrong command line.
    Usage(String),
    /// Bad environment.
    Config(String),
    /// The file could not be opened or read.
    File(io::Error),
    /// The name is not a regular file (what it is instead).
    NotRegular(&'static str),
    /// A bad line (already formatted `LINE: reason`).
    Line(String),
    /// No numbers in the file.
    Empty,
    /// What the second pass read is not what the first validated: the file was
    /// edited, replaced, grown or cut after validation began.
    Changed,
    /// The AWS could not be reached.
    Connect(String, io::Error),
    /// The connection failed mid-job.
    Lost(io::Error),
    /// The AWS did not take one batch of our data (64 KiB) in this long: it is hung or
    /// stopped.
    Stalled(Duration),
    /// The AWS closed the connection after we sent nothing for this long (the client
    /// was stopped, e.g. by Ctrl-Z, past the AWS's idle limit).
    DroppedIdle(Duration),
    /// The AWS reported a failure.
    Remote(ErrorCode, u16),
    /// The AWS answered something that makes no sense.
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Usage(m) => write!(f, "{m}\n{USAGE}"),
            ClientError::Config(m) => f.write_str(m),
            ClientError::File(e) => write!(f, "cannot read {INPUT}: {e}"),
            ClientError::NotRegular(kind) => {
                write!(f, "{INPUT} is {kind}, not a regular file; refusing to read it")
            }
            ClientError::Line(m) => write!(f, "{INPUT}:{m}"),
            ClientError::Empty => write!(f, "{INPUT}: no numbers"),
            ClientError::Changed => write!(f, "{INPUT} changed while it was being sent"),
            ClientError::Connect(addr, e) => write!(f, "cannot reach the AWS at {addr}: {e}"),
            ClientError::Lost(e) => write!(f, "connection to the AWS lost: {e}"),
            ClientError::Stalled(d) => write!(
                f,
                "the AWS stopped reading: it took less than 64 KiB in {} ms (OFFLOAD_TIMEOUT_MS); job abandoned",
                d.as_millis()
            ),
            ClientError::DroppedIdle(d) => write!(
                f,
                "the AWS dropped this client for being idle: it sent nothing for {:.1} s, longer than the AWS waits (OFFLOAD_IDLE_MS); was it stopped?",
                d.as_secs_f64()
            ),
            ClientError::Remote(code, arg) => f.write_str(&describe_remote(*code, *arg)),
            ClientError::Protocol(m) => write!(f, "the AWS sent an invalid answer: {m}"),
        }
    }
}

/// A person-readable sentence for an error frame from the AWS.
pub fn describe_remote(code: ErrorCode, arg: u16) -> String {
    let server = Part::from_index(usize::from(arg)).map_or_else(
        || "a back-end".to_string(),
        |p| format!("Backend-Server {}", p.letter()),
    );
    match code {
        ErrorCode::BadRequest => "the AWS rejected the request as malformed".to_string(),
        ErrorCode::Busy => "the AWS is busy with other jobs; try again".to_string(),
        ErrorCode::BackendTimeout => format!("{server} did not answer (is it running?)"),
        ErrorCode::BackendBusy => format!("{server} is busy with other jobs; try again"),
        ErrorCode::BackendFailed => format!("{server} failed the job"),
        ErrorCode::BackendLost => format!("{server} lost the job (it restarted)"),
        ErrorCode::ProtocolViolation => {
            "the AWS saw data that did not match the request".to_string()
        }
    }
}

/// Entry point of `./client`.
pub fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("client: {e}");
            match e {
                ClientError::Usage(_) | ClientError::Config(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn parse_args() -> Result<Op, ClientError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Err(ClientError::Usage("no function given".into())),
        [f] => Op::parse(f).ok_or_else(|| ClientError::Usage(format!("unknown function {f:?}"))),
        _ => Err(ClientError::Usage("expected exactly one argument".into())),
    }
}

fn run() -> Result<(), ClientError> {
    let op = parse_args()?;
    let cfg = Config::from_env().map_err(|e| ClientError::Config(e.0))?;
    say(&client_boot());
    // Both passes' read buffers, allocated once: the client's memory is the same for
    // every file and every run.
    let mut bufs = [vec![0u8; CHUNK], vec![0u8; CHUNK]];
    let (file, valid) = validate(&mut bufs)?;
    let total = valid.count;
    let mut stream = connect(&cfg)?;
    send_request(&mut stream, &cfg, op, total)?;
    say(&client_sent_op(op));
    // Answer wait: the AWS reports a silent back-end after backend_timeout; this bound
    // only guards against a hung AWS.
    let answer_wait = cfg.backend_timeout * 2 + Duration::from_secs(10);
    let job = await_accept(&mut stream, answer_wait)?;
    crate::debug!(cfg, "client: the AWS accepted the request as job {job}");
    match stream_numbers(&mut stream, &cfg, op, &file, &mut bufs[0], &valid) {
        Ok(()) => {}
        // Close without the last frame: the AWS abandons the job.
        Err(e @ ClientError::Changed) => return Err(e),
        // The AWS may have refused the job while we were sending: prefer its reason.
        Err(e @ ClientError::Stalled(_)) => {
            return Err(
                read_error_after_failure(&mut stream, Duration::from_millis(100)).unwrap_or(e),
            )
        }
        Err(e) => {
            return Err(read_error_after_failure(&mut stream, Duration::from_secs(2)).unwrap_or(e))
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    say(&client_sent_numbers(total));
    crate::debug!(
        cfg,
        "client: allocations so far: {}",
        crate::alloc::allocations()
    );
    let value = await_answer(&mut stream, op, total, answer_wait)?;
    say(&client_received(op, value));
    Ok(())
}

/// Connects to the AWS's TCP port, within 5 seconds.
fn connect(cfg: &Config) -> Result<TcpStream, ClientError> {
    let addr = cfg.aws_tcp_addr().map_err(|e| ClientError::Config(e.0))?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| ClientError::Connect(addr.to_string(), e))?;
    let _ = stream.set_nodelay(true);
    if let Ok(local) = stream.local_addr() {
        // The dynamic port, as getsockname() reports it (not an on-screen message).
        crate::debug!(cfg, "client: connected from {local} to {addr}");
    }
    Ok(stream)
}

/// Sends the request frame: `op` over `total` numbers.
fn send_request(
    stream: &mut TcpStream,
    cfg: &Config,
    op: Op,
    total: u64,
) -> Result<(), ClientError> {
    let mut frame = [0u8; MAX_DATAGRAM];
    let n = Frame::Request {
        job: JobId(0),
        op,
        total,
    }
    .emit(&mut frame)
    .map_err(|e| ClientError::Protocol(e.to_string()))?;
    write_all_within(stream, &frame[..n], cfg.backend_timeout)
        .map_err(|e| write_failed(e, cfg.backend_timeout, Duration::ZERO, cfg.idle_timeout))
}

/// The AWS's answer after the last number: the result of `op` over `total` numbers, or
/// the error it reports; waits at most `wait`.
fn await_answer(
    stream: &mut TcpStream,
    op: Op,
    total: u64,
    wait: Duration,
) -> Result<I192, ClientError> {
    let mut reader = FrameReader::new(MAX_DATAGRAM);
    let len = match reader.next_by(stream, Instant::now() + wait) {
        Ok(Some(len)) => len,
        Ok(None) => {
            return Err(ClientError::Protocol(
                "connection closed without an answer".into(),
            ))
        }
        Err(e) if is_timeout(&e) => {
            return Err(ClientError::Lost(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {} s", wait.as_secs()),
            )))
        }
        Err(e) => return Err(ClientError::Lost(e)),
    };
    match reader.frame(len) {
        Ok(Frame::Result {
            op: rop,
            count,
            value,
            ..
        }) if rop == op && count == total => Ok(value),
        Ok(Frame::Error { code, arg, .. }) => Err(ClientError::Remote(code, arg)),
        Ok(other) => Err(ClientError::Protocol(format!("{other:?}"))),
        Err(e) => Err(ClientError::Protocol(e.to_string())),
    }
}

/// The handshake: the AWS answers the request at once with accept (numbers may
/// follow) or an error (busy, bad request). Waits at most `limit`, whatever signals
/// interrupt the reads.
fn await_accept(stream: &mut TcpStream, limit: Duration) -> Result<JobId, ClientError> {
    let deadline = std::time::Instant::now() + limit;
    let mut reader = FrameReader::new(MAX_DATAGRAM);
    let len = loop {
        match reader.poll() {
            Ok(Polled::Frame(len)) => break len,
            Ok(Polled::Closed) => {
                return Err(ClientError::Protocol(
                    "connection closed without accepting the request".into(),
                ))
            }
            Err(e) => return Err(ClientError::Protocol(e.to_string())),
            Ok(Polled::More) => {}
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(ClientError::Lost(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the AWS did not accept the request within {} s",
                    limit.as_secs()
                ),
            )));
        }
        let _ = stream.set_read_timeout(Some(left));
        match reader.fill(stream) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted || is_timeout(&e) => {}
            Err(e) => return Err(ClientError::Lost(e)),
        }
    };
    match reader.frame(len) {
        Ok(Frame::Accept { job }) => Ok(job),
        Ok(Frame::Error { code, arg, .. }) => Err(ClientError::Remote(code, arg)),
        Ok(other) => Err(ClientError::Protocol(format!("{other:?}"))),
        Err(e) => Err(ClientError::Protocol(e.to_string())),
    }
}

/// An error frame the AWS sent before the failure, if one arrives within `wait`.
fn read_error_after_failure(stream: &mut TcpStream, wait: Duration) -> Option<ClientError> {
    let mut reader = FrameReader::new(MAX_DATAGRAM);
    let len = reader.next_by(stream, Instant::now() + wait).ok()??;
    match reader.frame(len) {
        Ok(Frame::Error { code, arg, .. }) => Some(ClientError::Remote(code, arg)),
        _ => None,
    }
}

/// Names a failed write: the AWS took nothing for `stall`; or it closed on us after we
/// had been silent for `silent` (at least its idle limit `idle`); or the link failed.
fn write_failed(e: io::Error, stall: Duration, silent: Duration, idle: Duration) -> ClientError {
    use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    if is_timeout(&e) {
        ClientError::Stalled(stall)
    } else if matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted) && silent >= idle
    {
        ClientError::DroppedIdle(silent)
    } else {
        ClientError::Lost(e)
    }
}

/// Where the numbers of a pass go.
trait Sink {
    /// Whether the pass only checks and counts the lines, making no values (the first).
    const CHECK: bool = false;
    /// The next numbers, in file order (a run of up to 64 from one block of the file).
    fn numbers(&mut self, xs: &[i64]);
    /// Called after every chunk: an error stops the pass.
    fn check(&mut self) -> Result<(), ClientError>;
}

/// Why reading part of the file stopped.
enum RangeError {
    /// A bad line, numbered from the start of the range.
    Line(LineError),
    /// Anything else.
    Other(ClientError),
}

/// What reading part of the file found.
struct Range {
    /// Lines read.
    lines: u64,
    /// Numbers on them.
    numbers: u64,
    /// Bytes read.
    bytes: u64,
    /// Of those bytes.
    digest: Digest,
}

/// Reads `file` from byte `start`, `len` bytes or to the end, in [`CHUNK`]-byte reads,
/// handing every number to `sink` (or only checking the lines, for a [`Sink::CHECK`]
/// sink) and digesting every byte; `spare` lets the line reader take each chunk's two
/// halves at once (`LineReader::feed_runs_with`; unused by a checking pass). A range
/// must start at a line's start; one that stops early must stop just after a line end.
/// Positioned reads: two threads may read one open file at once.
fn read_range<S: Sink>(
    file: &File,
    buf: &mut [u8],
    spare: &mut [i64],
    start: u64,
    len: Option<u64>,
    sink: &mut S,
) -> Result<Range, RangeError> {
    let mut digest = Digest::EMPTY;
    // A byte order mark is skipped only at the start of the file, not of its second half.
    let mut lines = if start == 0 {
        LineReader::new()
    } else {
        LineReader::mid_file()
    };
    let mut at = start;
    let end = len.map_or(u64::MAX, |l| start.saturating_add(l));
    while at < end {
        let want = buf
            .len()
            .min(usize::try_from(end - at).unwrap_or(usize::MAX));
        let n = match file.read_at(&mut buf[..want], at) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if is_interrupted(&e) => continue,
            Err(e) => return Err(RangeError::Other(ClientError::File(e))),
        };
        digest.push_bytes(at, &buf[..n]);
        at += n as u64;
        crate::progress::advance(n);
        if S::CHECK {
            lines.feed_check(&buf[..n])
        } else {
            lines.feed_runs_with(&buf[..n], spare, |_, xs| sink.numbers(xs))
        }
        .map_err(RangeError::Line)?;
        sink.check().map_err(RangeError::Other)?;
    }
    lines
        .finish(|_, x| sink.numbers(&[x]))
        .map_err(RangeError::Line)?;
    sink.check().map_err(RangeError::Other)?;
    Ok(Range {
        lines: lines.lines(),
        numbers: lines.numbers(),
        bytes: at - start,
        digest,
    })
}

impl From<RangeError> for ClientError {
    fn from(e: RangeError) -> ClientError {
        match e {
            RangeError::Line(e) => ClientError::Line(e.to_string()),
            RangeError::Other(e) => e,
        }
    }
}

/// A digest of a file's bytes that depends on every byte and its place: the sum, over
/// the file's 8-byte words `w_i` (little-endian, at offsets `8 i`), of `w_i * m_i`
/// modulo 2^64, with `m_i` odd and different for every word. It is a sum, so the digests
/// of any pieces of the file, cut anywhere (the two halves the first pass checks on two
/// threads, the chunks of each read), add up to the digest of the whole; and a change of
/// any one byte always changes it (the change times an odd number and a power of two
/// below 2^64 is never 0 modulo 2^64). It guards against accidents (a file edited while
/// it is read), not against someone crafting a collision on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest(u64);

/// Spreads the words' multipliers: `m_i = i * DIGEST_STEP | 1`.
const DIGEST_STEP: u64 = 0x9E37_79B9_7F4A_7C15;

impl Digest {
    /// The digest of no bytes.
    pub const EMPTY: Digest = Digest(0);

    /// Adds `bytes`, which are the file's from byte `offset` on.
    pub fn push_bytes(&mut self, offset: u64, bytes: &[u8]) {
        let mut word = offset / 8;
        let mut sum = self.0;
        let mut add = |word: u64, w: u64| {
            sum = sum.wrapping_add(w.wrapping_mul(word.wrapping_mul(DIGEST_STEP) | 1));
        };
        // A word the piece starts or ends inside: its other bytes count as zeros here
        // (they are another piece's), so the pieces' sums add up to the word's.
        let partial = |at: usize, part: &[u8]| {
            let mut w = [0u8; 8];
            for (to, from) in w.iter_mut().skip(at).zip(part) {
                *to = *from;
            }
            u64::from_le_bytes(w)
        };
        let skip = (offset % 8) as usize;
        let mut rest = bytes;
        if skip != 0 {
            let (head, tail) = rest.split_at(rest.len().min(8 - skip));
            add(word, partial(skip, head));
            word += 1;
            rest = tail;
        }
        let words = rest.chunks_exact(8);
        let tail = words.remainder();
        for w in words {
            let w = w.first_chunk::<8>().map_or(0, |w| u64::from_le_bytes(*w));
            add(word, w);
            word += 1;
        }
        if !tail.is_empty() {
            add(word, partial(0, tail));
        }
        self.0 = sum;
    }

    /// The digest of this piece and the (disjoint) piece `other` digested.
    pub fn and(self, other: Digest) -> Digest {
        Digest(self.0.wrapping_add(other.0))
    }
}

/// The first pass's sink: no values, the lines only checked.
struct Checker;

impl Sink for Checker {
    const CHECK: bool = true;
    fn numbers(&mut self, _: &[i64]) {}
    fn check(&mut self) -> Result<(), ClientError> {
        Ok(())
    }
}

/// What identifies one version of a file: any write, truncation or replacement of the
/// file changes at least one of these (the change time cannot be set back by anyone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileId {
    fn of(m: &Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// What a file that is not a regular file is, for the message.
fn kind_of(t: FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "something else"
    }
}

/// Opens [`INPUT`] if it is a regular file. A FIFO, a device (a link to /dev/zero) or a
/// directory is refused at once: reading one would block or never end, and it could not
/// give the same bytes twice.
fn open_input() -> Result<(File, FileId), ClientError> {
    // stat before open: opening a FIFO waits for a writer.
    let m = std::fs::metadata(INPUT).map_err(ClientError::File)?;
    if !m.is_file() {
        return Err(ClientError::NotRegular(kind_of(m.file_type())));
    }
    // Non-blocking in case it was swapped for a FIFO since; a regular file ignores it.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(INPUT)
        .map_err(ClientError::File)?;
    let m = file.metadata().map_err(ClientError::File)?;
    if !m.is_file() {
        return Err(ClientError::NotRegular(kind_of(m.file_type())));
    }
    Ok((file, FileId::of(&m)))
}

/// What the first pass proved: this file, these bytes, this many numbers.
struct Validated {
    id: FileId,
    digest: Digest,
    count: u64,
}

/// Where the second half starts: just after the first line end at or past the middle.
fn split_point(file: &File, probe: &mut [u8], len: u64) -> Option<u64> {
    let mid = len / 2;
    let n = file.read_at(probe, mid).ok()?;
    let nl = probe[..n].iter().position(|&b| b == b'\n')?;
    Some(mid + nl as u64 + 1)
}

/// First pass: every line valid; how many numbers, and the bytes' digest.
fn validate(bufs: &mut [Vec<u8>; 2]) -> Result<(File, Validated), ClientError> {
    let (file, id) = open_input()?;
    let _bar = crate::progress::Bar::start("checking", id.size);
    // Two threads check one half each, whatever the size: the servers are idle during
    // this pass, so the second core is free, and the client's memory (a second stack
    // and read buffer) is then the same for every file, not larger from some size on.
    // Only a file with no line end past its middle is checked by one thread.
    let [buf, buf2] = bufs;
    let split = split_point(&file, buf, id.size);
    let (digest, count) = match split {
        None => {
            let r = read_range(&file, buf, &mut [], 0, None, &mut Checker)?;
            (r.digest, r.numbers)
        }
        Some(at) => {
            let (first, rest) = std::thread::scope(|s| {
                let h = s.spawn(|| read_range(&file, buf2, &mut [], at, None, &mut Checker));
                (
                    read_range(&file, buf, &mut [], 0, Some(at), &mut Checker),
                    h.join(),
                )
            });
            // The first half's error comes first; the second's is renumbered after it.
            let first = first?;
            let rest = match rest {
                Ok(Ok(r)) => r,
                Ok(Err(RangeError::Line(mut e))) => {
                    e.line += first.lines;
                    return Err(ClientError::Line(e.to_string()));
                }
                Ok(Err(RangeError::Other(e))) => return Err(e),
                Err(_) => return Err(ClientError::Protocol("validation thread failed".into())),
            };
            (first.digest.and(rest.digest), first.numbers + rest.numbers)
        }
    };
    if count == 0 {
        return Err(ClientError::Empty);
    }
    Ok((file, Validated { id, digest, count }))
}

/// Second pass: packs numbers into data frames, many frames per TCP write, and holds
/// back the last frame until [`stream_numbers`] has checked the pass.
struct Streamer<'a> {
    stream: &'a mut TcpStream,
    op: Op,
    total: u64,
    sent: u64,
    seq: u32,
    /// Frames being batched for one write: `used` bytes of whole frames, then the open
    /// frame, whose `open` numbers are written in place after room for its header.
    out: Vec<u8>,
    used: usize,
    open: usize,
    /// The last frame, encoded but not sent.
    held: [u8; MAX_DATAGRAM],
    held_len: usize,
    /// How long the AWS may take to accept one batch of frames (at most 64 KiB).
    stall: Duration,
    /// The AWS's idle limit, to name a drop for silence.
    idle: Duration,
    /// When a write last started or ended, and the longest time between two such.
    last_io: Instant,
    silent: Duration,
    /// The socket's write timeout, as last set.
    armed: Option<Duration>,
    /// Chunks read since the file's metadata was last compared.
    unchecked: u32,
    /// The file being read and what it was when validated: checked every
    /// [`CHECK_EVERY`] chunks, so a change stops the stream early (the commit checks
    /// again).
    file: &'a File,
    valid: FileId,
    failed: Option<ClientError>,
}

impl Streamer<'_> {
    /// Writes `bytes` (from `out` or `held`), bounded by `stall`.
    fn write(&mut self, held: bool) -> Result<(), ClientError> {
        let bytes = if held {
            &self.held[..self.held_len]
        } else {
            &self.out[..self.used]
        };
        let started = Instant::now();
        self.silent = self.silent.max(started - self.last_io);
        let r = write_all_within_armed(self.stream, bytes, self.stall, &mut self.armed);
        self.last_io = Instant::now();
        self.silent = self.silent.max(self.last_io - started);
        r.map_err(|e| write_failed(e, self.stall, self.silent, self.idle))
    }

    /// Closes the open frame as the next data frame: its header in front of its
    /// numbers; the `last` is moved to `held`, any other stays in `out`, which is
    /// written when it has no room for another.
    fn emit(&mut self, last: bool) {
        let frame = self.out.get_mut(self.used..).unwrap_or_default();
        match emit_data_header(frame, JobId(0), self.seq, self.op, last, self.open) {
            Ok(n) if last => {
                self.held[..n].copy_from_slice(&frame[..n]);
                self.held_len = n;
            }
            Ok(n) => self.used += n,
            Err(e) => {
                self.failed
                    .get_or_insert(ClientError::Protocol(e.to_string()));
            }
        }
        self.seq = self.seq.wrapping_add(1);
        self.open = 0;
        if self.used + MAX_DATAGRAM > self.out.len() {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.used > 0 && self.failed.is_none() {
            if let Err(e) = self.write(false) {
                self.failed = Some(e);
            }
        }
        self.used = 0;
    }
}

impl Sink for Streamer<'_> {
    #[inline]
    fn numbers(&mut self, mut xs: &[i64]) {
        if xs.len() as u64 > self.total - self.sent {
            // More numbers than the first pass counted.
            self.failed.get_or_insert(ClientError::Changed);
            return;
        }
        while !xs.is_empty() {
            let room = MAX_VALUES - self.open;
            let (now, rest) = xs.split_at(room.min(xs.len()));
            xs = rest;
            // `out` always has room for a whole frame after `used`.
            let at = self.used + HEADER_LEN + 8 * self.open;
            let body = self.out.get_mut(at..at + 8 * now.len()).unwrap_or_default();
            for (to, x) in body.chunks_exact_mut(8).zip(now) {
                to.copy_from_slice(&x.to_be_bytes());
            }
            self.open += now.len();
            self.sent += now.len() as u64;
            let last = self.sent == self.total;
            if self.open == MAX_VALUES || last {
                self.emit(last);
            }
        }
    }

    fn check(&mut self) -> Result<(), ClientError> {
        self.unchecked += 1;
        if self.unchecked == CHECK_EVERY {
            self.unchecked = 0;
            if !same_file(self.file.metadata(), self.valid) {
                self.failed.get_or_insert(ClientError::Changed);
            }
        }
        self.failed.take().map_or(Ok(()), Err)
    }
}

/// True when `m` is the metadata of the file `id` describes, unchanged.
fn same_file(m: io::Result<Metadata>, id: FileId) -> bool {
    m.is_ok_and(|m| FileId::of(&m) == id)
}

/// Second pass: data frames of up to [`MAX_VALUES`] numbers, the last one sent only if
/// everything read equals what [`validate`] checked.
fn stream_numbers(
    stream: &mut TcpStream,
    cfg: &Config,
    op: Op,
    file: &File,
    buf: &mut [u8],
    valid: &Validated,
) -> Result<(), ClientError> {
    let _bar = crate::progress::Bar::start("sending", valid.id.size);
    let mut s = Streamer {
        stream,
        op,
        total: valid.count,
        sent: 0,
        seq: 0,
        out: vec![0u8; FRAMES_PER_WRITE * MAX_DATAGRAM],
        used: 0,
        open: 0,
        held: [0u8; MAX_DATAGRAM],
        held_len: 0,
        stall: cfg.backend_timeout,
        idle: cfg.idle_timeout,
        last_io: Instant::now(),
        silent: Duration::ZERO,
        armed: None,
        unchecked: 0,
        file,
        valid: valid.id,
        failed: None,
    };
    // The numbers of a chunk's second half while its first half's are sent (see
    // `LineReader::feed_runs_with`): room for all of them on lines of 4 bytes or more.
    let mut spare = vec![0i64; CHUNK / 8];
    let read = match read_range(file, buf, &mut spare, 0, None, &mut s) {
        Ok(read) => read,
        // It was valid a moment ago.
        Err(RangeError::Line(_)) => return Err(ClientError::Changed),
        Err(RangeError::Other(e)) => return Err(e),
    };
    s.flush();
    s.check()?;
    // The last frame is held once the validated count is reached.
    let unchanged = s.held_len > 0
        && read.numbers == valid.count
        && read.digest == valid.digest
        && read.bytes == valid.id.size
        && same_file(file.metadata(), valid.id)
        && same_file(std::fs::metadata(INPUT), valid.id);
    if !unchanged {
        return Err(ClientError::Changed);
    }
    s.write(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(bytes: &[u8]) -> Digest {
        let mut d = Digest::EMPTY;
        d.push_bytes(0, bytes);
        d
    }

    fn sample() -> Vec<u8> {
        (0..300i64)
            .map(|i| format!("{}\n", i * 7919 - 40_000))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn digests_of_pieces_cut_anywhere_add_up_to_the_whole() {
        let file = sample();
        let whole = digest(&file);
        for at in 0..=file.len() {
            let mut d = Digest::EMPTY;
            d.push_bytes(0, &file[..at]);
            let mut e = Digest::EMPTY;
            // The second piece in reads of 5 bytes, as if read in small chunks.
            for (i, c) in file[at..].chunks(5).enumerate() {
                e.push_bytes((at + 5 * i) as u64, c);
            }
            assert_eq!(d.and(e), whole, "cut at {at}");
        }
        assert_ne!(whole, Digest::EMPTY);
    }

    #[test]
    fn digest_sees_every_change_that_keeps_the_size() {
        let file = sample();
        let d = digest(&file);
        for i in 0..file.len() {
            for b in [b'0', b'9', b'-', b'\n', b'\r', 0, 0xff] {
                if file[i] != b {
                    let mut g = file.clone();
                    g[i] = b;
                    assert_ne!(digest(&g), d, "byte {i} made {b}");
                }
            }
        }
        // Two neighbouring lines swapped; the file shifted by one byte.
        let lines: Vec<&[u8]> = file.split_inclusive(|&b| b == b'\n').collect();
        for i in 0..lines.len() - 1 {
            if lines[i] != lines[i + 1] {
                let mut g = lines.clone();
                g.swap(i, i + 1);
                assert_ne!(digest(&g.concat()), d, "lines {i} and {} swapped", i + 1);
            }
        }
        let mut g = vec![b'0'];
        g.extend_from_slice(&file[..file.len() - 1]);
        assert_ne!(digest(&g), d);
    }

    #[test]
    fn write_failures_name_their_cause() {
        let idle = Duration::from_secs(30);
        let stall = Duration::from_secs(10);
        let e = |k: io::ErrorKind| io::Error::from(k);
        assert!(matches!(
            write_failed(e(io::ErrorKind::WouldBlock), stall, Duration::ZERO, idle),
            ClientError::Stalled(d) if d == stall
        ));
        assert!(matches!(
            write_failed(
                e(io::ErrorKind::BrokenPipe),
                stall,
                Duration::from_secs(31),
                idle
            ),
            ClientError::DroppedIdle(_)
        ));
        assert!(matches!(
            write_failed(
                e(io::ErrorKind::BrokenPipe),
                stall,
                Duration::from_secs(1),
                idle
            ),
            ClientError::Lost(_)
        ));
    }
}
