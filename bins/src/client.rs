//! The client: validates `nums.csv`, streams it to the AWS over TCP, prints the answer.
//!
//! The file is read twice in large chunks: the first pass checks every line, counts
//! the numbers and digests them, so a bad file sends nothing; the second streams data
//! frames while parsing and digesting again. Neither pass holds more than one chunk.
//!
//! The last data frame commits the job, so it is held back until the second pass has
//! proved that it sent exactly what the first validated: the same numbers in the same
//! order (the digests match), the whole file and no more (end of file at the validated
//! size), and the same file (device, inode, size, modification and change times, of the
//! open file and of the name). Otherwise the client closes the connection without it and
//! the AWS abandons the job: no answer is ever given for bytes that were not checked.

use crate::config::Config;
use crate::messages::{client_boot, client_received, client_sent_numbers, client_sent_op, say};
use crate::net::{is_interrupted, is_timeout, write_all_within, FrameReader, Polled};
use offload_core::csv::{LineError, LineReader};
use offload_core::split::Part;
use offload_core::wire::{emit_data, ErrorCode, Frame, JobId, MAX_DATAGRAM, MAX_VALUES};
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
    let total = valid.digest.count;
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

/// Reads `file` from byte `start`, `len` bytes or to the end, in [`CHUNK`]-byte reads,
/// handing every number to `sink`; returns the lines and the bytes read. A range must
/// start at a line's start; one that stops early must stop just after a line end.
/// Positioned reads: two threads may read one open file at once.
fn read_range<S: Sink>(
    file: &File,
    buf: &mut [u8],
    start: u64,
    len: Option<u64>,
    sink: &mut S,
) -> Result<(u64, u64), RangeError> {
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
        at += n as u64;
        crate::progress::advance(n);
        lines
            .feed_runs(&buf[..n], |_, xs| sink.numbers(xs))
            .map_err(RangeError::Line)?;
        sink.check().map_err(RangeError::Other)?;
    }
    lines
        .finish(|_, x| sink.numbers(&[x]))
        .map_err(RangeError::Line)?;
    sink.check().map_err(RangeError::Other)?;
    Ok((lines.lines(), at - start))
}

impl From<RangeError> for ClientError {
    fn from(e: RangeError) -> ClientError {
        match e {
            RangeError::Line(e) => ClientError::Line(e.to_string()),
            RangeError::Other(e) => e,
        }
    }
}

/// A digest of a sequence of numbers that depends on every number and its position:
/// `h = h * K + mix(x)` over the 64-bit integers, for the numbers in file order. Two
/// digests of consecutive pieces combine into the digest of the whole (see
/// [`Digest::then`]), so the two halves checked on two threads give the same digest
/// as one pass. It guards against accidents (a file edited while it is read), not
/// against someone crafting a collision on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    /// The polynomial hash.
    hash: u64,
    /// How many numbers went in.
    pub count: u64,
}

/// The polynomial's base: odd, so every power of it is invertible modulo 2^64 and a
/// change of any one number always changes the digest.
const DIGEST_BASE: u64 = 0x9E37_79B9_7F4A_7C15;

impl Digest {
    /// The digest of no numbers.
    pub const EMPTY: Digest = Digest { hash: 0, count: 0 };

    /// Appends `x`.
    #[inline]
    pub fn push(&mut self, x: i64) {
        self.push_all(&[x]);
    }

    /// Appends every number of `xs`, in order.
    #[inline]
    pub fn push_all(&mut self, xs: &[i64]) {
        let mut hash = self.hash;
        for &x in xs {
            // A bijection of x, so that numbers differing in a few high bits still
            // differ in the low bits the polynomial carries furthest.
            let x = x as u64;
            let mixed = (x ^ (x >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
            hash = hash.wrapping_mul(DIGEST_BASE).wrapping_add(mixed);
        }
        self.hash = hash;
        self.count += xs.len() as u64;
    }

    /// The digest of this sequence followed by the one `next` digested.
    pub fn then(self, next: Digest) -> Digest {
        // hash(a ++ b) = hash(a) * K^len(b) + hash(b).
        let mut power = 1u64;
        let mut base = DIGEST_BASE;
        let mut e = next.count;
        while e > 0 {
            if e & 1 == 1 {
                power = power.wrapping_mul(base);
            }
            base = base.wrapping_mul(base);
            e >>= 1;
        }
        Digest {
            hash: self.hash.wrapping_mul(power).wrapping_add(next.hash),
            count: self.count + next.count,
        }
    }
}

impl Sink for Digest {
    #[inline]
    fn numbers(&mut self, xs: &[i64]) {
        self.push_all(xs);
    }
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

/// What the first pass proved: this file, these numbers.
struct Validated {
    id: FileId,
    digest: Digest,
}

/// Where the second half starts: just after the first line end at or past the middle.
fn split_point(file: &File, probe: &mut [u8], len: u64) -> Option<u64> {
    let mid = len / 2;
    let n = file.read_at(probe, mid).ok()?;
    let nl = probe[..n].iter().position(|&b| b == b'\n')?;
    Some(mid + nl as u64 + 1)
}

/// First pass: every line valid; how many numbers, and their digest.
fn validate(bufs: &mut [Vec<u8>; 2]) -> Result<(File, Validated), ClientError> {
    let (file, id) = open_input()?;
    let _bar = crate::progress::Bar::start("checking", id.size);
    // Two threads check one half each, whatever the size: the servers are idle during
    // this pass, so the second core is free, and the client's memory (a second stack
    // and read buffer) is then the same for every file, not larger from some size on.
    // Only a file with no line end past its middle is checked by one thread.
    let [buf, buf2] = bufs;
    let split = split_point(&file, buf, id.size);
    let digest = match split {
        None => {
            let mut d = Digest::EMPTY;
            read_range(&file, buf, 0, None, &mut d)?;
            d
        }
        Some(at) => {
            let (first, rest) = std::thread::scope(|s| {
                let h = s.spawn(|| {
                    let mut d = Digest::EMPTY;
                    read_range(&file, buf2, at, None, &mut d).map(|_| d)
                });
                let mut d = Digest::EMPTY;
                let first =
                    read_range(&file, buf, 0, Some(at), &mut d).map(|(lines, _)| (lines, d));
                (first, h.join())
            });
            // The first half's error comes first; the second's is renumbered after it.
            let (lines, d1) = first?;
            let d2 = match rest {
                Ok(Ok(d)) => d,
                Ok(Err(RangeError::Line(mut e))) => {
                    e.line += lines;
                    return Err(ClientError::Line(e.to_string()));
                }
                Ok(Err(RangeError::Other(e))) => return Err(e),
                Err(_) => return Err(ClientError::Protocol("validation thread failed".into())),
            };
            d1.then(d2)
        }
    };
    if digest.count == 0 {
        return Err(ClientError::Empty);
    }
    Ok((file, Validated { id, digest }))
}

/// Second pass: packs numbers into data frames, many frames per TCP write, and holds
/// back the last frame until [`stream_numbers`] has checked the pass.
struct Streamer<'a> {
    stream: &'a mut TcpStream,
    op: Op,
    total: u64,
    sent: u64,
    seq: u32,
    digest: Digest,
    pack: Vec<i64>,
    out: Vec<u8>,
    used: usize,
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
    /// The file being read and what it was when validated: checked after every chunk,
    /// so a change stops the stream early (the commit checks again).
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
        let r = write_all_within(self.stream, bytes, self.stall);
        self.last_io = Instant::now();
        self.silent = self.silent.max(self.last_io - started);
        r.map_err(|e| write_failed(e, self.stall, self.silent, self.idle))
    }

    /// Encodes the packed numbers as the next data frame: into `held` if it is the
    /// `last`, else into `out`, which is written when it has no room for another.
    fn emit(&mut self, last: bool) {
        let into = if last {
            &mut self.held[..]
        } else {
            &mut self.out[self.used..]
        };
        match emit_data(into, JobId(0), self.seq, self.op, last, &self.pack) {
            Ok(n) if last => self.held_len = n,
            Ok(n) => self.used += n,
            Err(e) => {
                self.failed
                    .get_or_insert(ClientError::Protocol(e.to_string()));
            }
        }
        self.seq = self.seq.wrapping_add(1);
        self.pack.clear();
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
        self.digest.push_all(xs);
        while !xs.is_empty() {
            let room = MAX_VALUES - self.pack.len();
            let (now, rest) = xs.split_at(room.min(xs.len()));
            xs = rest;
            self.pack.extend_from_slice(now);
            self.sent += now.len() as u64;
            let last = self.sent == self.total;
            if self.pack.len() == MAX_VALUES || last {
                self.emit(last);
            }
        }
    }

    fn check(&mut self) -> Result<(), ClientError> {
        if !same_file(self.file.metadata(), self.valid) {
            self.failed.get_or_insert(ClientError::Changed);
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
        total: valid.digest.count,
        sent: 0,
        seq: 0,
        digest: Digest::EMPTY,
        pack: Vec::with_capacity(MAX_VALUES),
        out: vec![0u8; FRAMES_PER_WRITE * MAX_DATAGRAM],
        used: 0,
        held: [0u8; MAX_DATAGRAM],
        held_len: 0,
        stall: cfg.backend_timeout,
        idle: cfg.idle_timeout,
        last_io: Instant::now(),
        silent: Duration::ZERO,
        file,
        valid: valid.id,
        failed: None,
    };
    let bytes = match read_range(file, buf, 0, None, &mut s) {
        Ok((_, bytes)) => bytes,
        // It was valid a moment ago.
        Err(RangeError::Line(_)) => return Err(ClientError::Changed),
        Err(RangeError::Other(e)) => return Err(e),
    };
    s.flush();
    s.check()?;
    let unchanged = s.held_len > 0
        && s.digest == valid.digest
        && bytes == valid.id.size
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

    fn digest(xs: &[i64]) -> Digest {
        let mut d = Digest::EMPTY;
        for &x in xs {
            d.push(x);
        }
        d
    }

    #[test]
    fn digests_of_halves_combine_into_the_whole() {
        let xs: Vec<i64> = (0..1000).map(|i| i * 7919 - 40_000).collect();
        for at in [0, 1, 2, 499, 999, 1000] {
            assert_eq!(digest(&xs[..at]).then(digest(&xs[at..])), digest(&xs));
        }
        assert_eq!(digest(&xs).count, 1000);
    }

    #[test]
    fn digest_sees_every_change_that_keeps_the_count() {
        let xs: Vec<i64> = (0..200).map(|i| i * 3 - 100).collect();
        let d = digest(&xs);
        for i in 0..xs.len() {
            for delta in [1, -1, 1 << 40, i64::MIN] {
                let mut ys = xs.clone();
                ys[i] = ys[i].wrapping_add(delta);
                assert_ne!(digest(&ys), d, "change at {i}");
            }
            if i + 1 < xs.len() {
                let mut ys = xs.clone();
                ys.swap(i, i + 1);
                assert_ne!(digest(&ys), d, "swap at {i}");
            }
        }
        // A leading zero added at the front changes the position of every number.
        let mut ys = vec![0];
        ys.extend_from_slice(&xs[..xs.len() - 1]);
        assert_ne!(digest(&ys).hash, d.hash);
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
