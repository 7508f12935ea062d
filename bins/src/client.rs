//! The client: validates `nums.csv`, streams it to the AWS over TCP, prints the answer.
//!
//! The file is read twice in large chunks: the first pass checks every line and counts
//! the numbers, so a bad file sends nothing; the second streams data frames while
//! parsing. Neither pass holds more than one chunk.

use crate::config::Config;
use crate::messages::{client_boot, client_received, client_sent_numbers, client_sent_op, say};
use crate::net::{is_timeout, FrameReader};
use offload_core::csv::{LineError, LineReader};
use offload_core::split::Part;
use offload_core::wire::{emit_data, ErrorCode, Frame, JobId, MAX_DATAGRAM, MAX_VALUES};
use offload_core::Op;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// The input file, in the client's working directory.
pub const INPUT: &str = "nums.csv";
/// Bytes per file read.
const CHUNK: usize = 256 << 10;
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
    /// A bad line (already formatted `LINE: reason`).
    Line(String),
    /// No numbers in the file.
    Empty,
    /// The file changed between the two passes.
    Changed,
    /// The AWS could not be reached.
    Connect(String, io::Error),
    /// The connection failed mid-job.
    Lost(io::Error),
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
            ClientError::Line(m) => write!(f, "{INPUT}:{m}"),
            ClientError::Empty => write!(f, "{INPUT}: no numbers"),
            ClientError::Changed => write!(f, "{INPUT} changed while it was being sent"),
            ClientError::Connect(addr, e) => write!(f, "cannot reach the AWS at {addr}: {e}"),
            ClientError::Lost(e) => write!(f, "connection to the AWS lost: {e}"),
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
    let total = validate()?;
    let addr = cfg.aws_tcp_addr().map_err(|e| ClientError::Config(e.0))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| ClientError::Connect(addr.to_string(), e))?;
    let _ = stream.set_nodelay(true);
    if let Ok(local) = stream.local_addr() {
        // The dynamic port, as getsockname() reports it (not an on-screen message).
        crate::debug!(cfg, "client: connected from {local} to {addr}");
    }
    let mut frame = [0u8; MAX_DATAGRAM];
    let n = Frame::Request {
        job: JobId(0),
        op,
        total,
    }
    .emit(&mut frame)
    .map_err(|e| ClientError::Protocol(e.to_string()))?;
    stream.write_all(&frame[..n]).map_err(ClientError::Lost)?;
    say(&client_sent_op(op));
    // Answer wait: the AWS reports a silent back-end after backend_timeout; this bound
    // only guards against a hung AWS.
    let answer_wait = cfg.backend_timeout * 2 + Duration::from_secs(10);
    if let Err(e) = stream_numbers(&mut stream, op, total) {
        // The AWS may have refused the job while we were sending: prefer its reason.
        return Err(read_error_after_failure(&mut stream).unwrap_or(e));
    }
    let _ = stream.shutdown(Shutdown::Write);
    say(&client_sent_numbers(total));
    crate::debug!(
        cfg,
        "client: allocations so far: {}",
        crate::alloc::allocations()
    );
    let _ = stream.set_read_timeout(Some(answer_wait));
    let mut reader = FrameReader::new(MAX_DATAGRAM);
    let len = match reader.next_blocking(&mut stream) {
        Ok(Some(len)) => len,
        Ok(None) => {
            return Err(ClientError::Protocol(
                "connection closed without an answer".into(),
            ))
        }
        Err(e) if is_timeout(&e) => {
            return Err(ClientError::Lost(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {} s", answer_wait.as_secs()),
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
        }) if rop == op && count == total => {
            say(&client_received(op, value));
            Ok(())
        }
        Ok(Frame::Error { code, arg, .. }) => Err(ClientError::Remote(code, arg)),
        Ok(other) => Err(ClientError::Protocol(format!("{other:?}"))),
        Err(e) => Err(ClientError::Protocol(e.to_string())),
    }
}

fn read_error_after_failure(stream: &mut TcpStream) -> Option<ClientError> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reader = FrameReader::new(MAX_DATAGRAM);
    let len = reader.next_blocking(stream).ok()??;
    match reader.frame(len) {
        Ok(Frame::Error { code, arg, .. }) => Some(ClientError::Remote(code, arg)),
        _ => None,
    }
}

/// Where the numbers of a pass go.
trait Sink {
    /// One number, in file order.
    fn number(&mut self, x: i64);
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

/// Reads `file` from its position, `len` bytes or to the end, in [`CHUNK`]-byte reads,
/// handing every number to `sink`; returns the lines read. A range must start at a
/// line's start; one that stops early must stop just after a line end.
fn read_range<S: Sink>(mut file: File, len: Option<u64>, sink: &mut S) -> Result<u64, RangeError> {
    let mut buf = vec![0u8; CHUNK];
    // A byte order mark is skipped only at the start of the file, not of its second half.
    let mut lines = match file.stream_position() {
        Ok(0) => LineReader::new(),
        _ => LineReader::mid_file(),
    };
    let mut left = len.unwrap_or(u64::MAX);
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(RangeError::Other(ClientError::File(e))),
        };
        left -= n as u64;
        lines
            .feed(&buf[..n], |_, x| sink.number(x))
            .map_err(RangeError::Line)?;
        sink.check().map_err(RangeError::Other)?;
    }
    lines
        .finish(|_, x| sink.number(x))
        .map_err(RangeError::Line)?;
    sink.check().map_err(RangeError::Other)?;
    Ok(lines.lines())
}

impl From<RangeError> for ClientError {
    fn from(e: RangeError) -> ClientError {
        match e {
            RangeError::Line(e) => ClientError::Line(e.to_string()),
            RangeError::Other(e) => e,
        }
    }
}

/// Reads all of [`INPUT`], handing every number to `sink`.
fn read_file<S: Sink>(sink: &mut S) -> Result<(), ClientError> {
    let file = File::open(INPUT).map_err(ClientError::File)?;
    read_range(file, None, sink)?;
    Ok(())
}

/// First pass: counts.
struct Counter(u64);

impl Sink for Counter {
    fn number(&mut self, _: i64) {
        self.0 += 1;
    }
    fn check(&mut self) -> Result<(), ClientError> {
        Ok(())
    }
}

/// Files from this size on are checked by two threads, one half each: the servers are
/// idle during this pass, so the second core is free.
const PARALLEL_FROM: u64 = 8 << 20;

/// Where the second half starts: just after the first line end at or past the middle.
fn split_point(len: u64) -> Option<u64> {
    let mut f = File::open(INPUT).ok()?;
    let mid = len / 2;
    f.seek(SeekFrom::Start(mid)).ok()?;
    let mut probe = vec![0u8; 64 << 10];
    let n = f.read(&mut probe).ok()?;
    let nl = probe[..n].iter().position(|&b| b == b'\n')?;
    Some(mid + nl as u64 + 1)
}

/// First pass: every line valid, and how many numbers.
fn validate() -> Result<u64, ClientError> {
    let file = File::open(INPUT).map_err(ClientError::File)?;
    let len = file.metadata().map_err(ClientError::File)?.len();
    let split = if len >= PARALLEL_FROM {
        split_point(len)
    } else {
        None
    };
    let count = match split {
        None => {
            let mut c = Counter(0);
            read_range(file, None, &mut c)?;
            c.0
        }
        Some(at) => {
            let mut second = File::open(INPUT).map_err(ClientError::File)?;
            second
                .seek(SeekFrom::Start(at))
                .map_err(ClientError::File)?;
            let (first, rest) = std::thread::scope(|s| {
                let h = s.spawn(move || {
                    let mut c = Counter(0);
                    read_range(second, None, &mut c).map(|_| c.0)
                });
                let mut c = Counter(0);
                let first = read_range(file, Some(at), &mut c).map(|lines| (lines, c.0));
                (first, h.join())
            });
            // The first half's error comes first; the second's is renumbered after it.
            let (lines, n1) = first?;
            let n2 = match rest {
                Ok(Ok(n)) => n,
                Ok(Err(RangeError::Line(mut e))) => {
                    e.line += lines;
                    return Err(ClientError::Line(e.to_string()));
                }
                Ok(Err(RangeError::Other(e))) => return Err(e),
                Err(_) => return Err(ClientError::Protocol("validation thread failed".into())),
            };
            n1 + n2
        }
    };
    if count == 0 {
        return Err(ClientError::Empty);
    }
    Ok(count)
}

/// Second pass: packs numbers into data frames, many frames per TCP write.
struct Streamer<'a> {
    stream: &'a mut TcpStream,
    op: Op,
    total: u64,
    sent: u64,
    seq: u32,
    pack: Vec<i64>,
    out: Vec<u8>,
    used: usize,
    failed: Option<ClientError>,
}

impl Streamer<'_> {
    fn flush(&mut self) {
        if self.used > 0 && self.failed.is_none() {
            if let Err(e) = self.stream.write_all(&self.out[..self.used]) {
                self.failed = Some(ClientError::Lost(e));
            }
        }
        self.used = 0;
    }
}

impl Sink for Streamer<'_> {
    #[inline]
    fn number(&mut self, x: i64) {
        if self.sent == self.total {
            // More numbers than the first pass counted.
            self.failed.get_or_insert(ClientError::Changed);
            return;
        }
        self.pack.push(x);
        self.sent += 1;
        let last = self.sent == self.total;
        if self.pack.len() == MAX_VALUES || last {
            match emit_data(
                &mut self.out[self.used..],
                JobId(0),
                self.seq,
                self.op,
                last,
                &self.pack,
            ) {
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
    }

    fn check(&mut self) -> Result<(), ClientError> {
        self.failed.take().map_or(Ok(()), Err)
    }
}

/// Second pass: data frames of up to [`MAX_VALUES`] numbers.
fn stream_numbers(stream: &mut TcpStream, op: Op, total: u64) -> Result<(), ClientError> {
    let mut s = Streamer {
        stream,
        op,
        total,
        sent: 0,
        seq: 0,
        pack: Vec::with_capacity(MAX_VALUES),
        out: vec![0u8; FRAMES_PER_WRITE * MAX_DATAGRAM],
        used: 0,
        failed: None,
    };
    read_file(&mut s)?;
    if s.sent != s.total {
        return Err(ClientError::Changed);
    }
    s.flush();
    s.check()
}
