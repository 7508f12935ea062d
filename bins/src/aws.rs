//! The AWS front-end: TCP from clients, UDP to the back-ends, many jobs at once.
//!
//! Every protocol decision is the core's [`Dispatch`]; this file only moves bytes and
//! time between it and the sockets, and prints what it announces. Each connection gets
//! a thread: it waits (bounded by `OFFLOAD_REQUEST_TIMEOUT_MS`, not counted as a job)
//! for the client's request, answers it at once with accept or busy, then runs the job's
//! poll loop. One reader thread owns the receiving side of the UDP socket and hands each
//! back-end reply to its job over a bounded channel; a full channel drops the reply,
//! which the transfer layer treats as a lost datagram.

use crate::config::{Config, ConfigError};
use crate::messages::{
    aws_answered, aws_boot, aws_received, aws_reduced, aws_result, aws_sent, say,
};
use crate::net::{
    bind_reply_socket, enable_gso, is_timeout, now, random_job_id, segments_fit, tune_udp,
    write_aws_bind_error, FrameReader, Polled,
};
use offload_core::dispatch::{
    parse_request, Dispatch, Event, Limits, Refusal, Request, CLIENT_FRAME_MAX,
};
use offload_core::split::Part;
use offload_core::wire::{Header, JobId, MAX_DATAGRAM, MAX_REPLY};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Frames in flight per back-end per job: the core's window, shared with the back-ends.
pub const WINDOW: usize = offload_core::WINDOW;
/// Longest a job thread blocks on the client's socket before serving its timers.
const POLL: Duration = Duration::from_millis(2);
/// Longest a job thread sleeps when it waits only for back-ends.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// Bytes buffered from a client per read.
const CLIENT_BUFFER: usize = 256 << 10;
/// Back-end replies queued per job before further ones are dropped.
const REPLY_QUEUE: usize = 1024;
/// How long a refused client's remaining bytes are drained so it can read our error.
const DRAIN: Duration = Duration::from_secs(2);
/// Connections waiting for their request at once; more are closed at once.
const MAX_WAITING: usize = 1024;
/// Frames per offloaded send: 44 x 1472 = 64,768 bytes, under UDP's 65,507-byte limit.
const GSO_FRAMES: usize = 44;
/// Finished jobs' state (2.3 MiB each: the frame slots) kept for the next jobs. A fresh
/// one is 2.3 MiB the thread must fault in before it can accept its client (page faults
/// were most of the job threads' samples in `perf record` of 300 six-number jobs); kept
/// ones skip that. Two cover jobs run one after another with one more starting while one
/// ends; more concurrent jobs allocate their own and free them at the end.
const SPARE_STATES: usize = 2;

/// Why the AWS could not start.
#[derive(Debug)]
pub enum StartError {
    /// A bad environment variable or host name.
    Config(ConfigError),
    /// A socket could not be bound.
    Bind(&'static str, SocketAddr, io::Error),
    /// The back-ends' reply socket could not be set up (as `net` explains).
    ReplySocket(crate::net::ReplySocketError),
    /// The UDP reader thread could not start.
    Thread(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Bind(proto, addr, e) => write_aws_bind_error(f, proto, *addr, e),
            StartError::ReplySocket(e) => write!(f, "{e}"),
            StartError::Thread(e) => write!(f, "cannot start the UDP reader: {e}"),
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> StartError {
        StartError::Config(e)
    }
}

/// A back-end's datagram for one job, as the reader thread received it.
struct Reply {
    part: Part,
    len: usize,
    bytes: [u8; MAX_REPLY],
}

type Registry = Mutex<HashMap<JobId, SyncSender<Reply>>>;

/// What every connection thread shares.
struct Shared {
    cfg: Config,
    udp: UdpSocket,
    /// Segmentation offload is on: one send may carry many full frames.
    gso: bool,
    backends: [SocketAddr; 3],
    registry: Registry,
    jobs: AtomicUsize,
    waiting: AtomicUsize,
    /// Up to [`SPARE_STATES`] finished jobs' state, for reuse (its capacity is reserved
    /// at start, so keeping one allocates nothing).
    spare: Mutex<Vec<Box<Dispatch<WINDOW>>>>,
}

/// Entry point of `aws`.
pub fn main() -> ExitCode {
    if std::env::args().len() > 1 {
        eprintln!("aws: takes no arguments (configure with EE450_ID and OFFLOAD_HOST_*)");
        return ExitCode::from(2);
    }
    match start() {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("aws: {e}");
            ExitCode::FAILURE
        }
    }
}

enum Never {}

fn start() -> Result<Never, StartError> {
    let cfg = Config::from_env()?;
    let backends = [
        cfg.backend_addr(Part::A)?,
        cfg.backend_addr(Part::B)?,
        cfg.backend_addr(Part::C)?,
    ];
    let (udp_addr, tcp_addr) = (cfg.aws_udp_addr()?, cfg.aws_tcp_addr()?);
    // One socket for the three back-ends, of their family (dual-stack if they mix).
    let (udp, backends) = bind_reply_socket(udp_addr, backends).map_err(StartError::ReplySocket)?;
    let listener = TcpListener::bind(tcp_addr).map_err(|e| StartError::Bind("TCP", tcp_addr, e))?;
    let granted = tune_udp(&udp);
    // Offload only where a full frame fits the route to every back-end (IPv6 on a
    // 1500-byte link does not): on such a socket the kernel would refuse every send.
    let gso = cfg.gso && segments_fit(&backends, MAX_DATAGRAM) && enable_gso(&udp, MAX_DATAGRAM);
    crate::debug!(
        cfg,
        "aws: UDP receive buffer {granted} bytes; segmentation offload {gso}; back-ends {backends:?}"
    );
    let shared = Arc::new(Shared {
        cfg,
        udp,
        gso,
        backends,
        registry: Mutex::new(HashMap::new()),
        jobs: AtomicUsize::new(0),
        waiting: AtomicUsize::new(0),
        spare: Mutex::new(Vec::with_capacity(SPARE_STATES)),
    });
    say(&aws_boot());
    let reader = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("udp-reader".into())
        .spawn(move || read_replies(&reader))
        .map_err(StartError::Thread)?;
    accept_loop(&shared, &listener)
}

/// A counter held for as long as the guard lives.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    /// Takes one of `limit` places, or `None` when all are taken.
    fn take(counter: &'a AtomicUsize, limit: usize) -> Option<Counted<'a>> {
        if counter.fetch_add(1, Ordering::SeqCst) >= limit {
            counter.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Counted(counter))
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) -> Result<Never, StartError> {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Out of descriptors and the like: wait and keep serving.
                eprintln!("aws: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if shared.waiting.load(Ordering::SeqCst) >= MAX_WAITING {
            crate::debug!(
                shared.cfg,
                "aws: {peer} closed: {MAX_WAITING} connections waiting"
            );
            continue;
        }
        let sh = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("client-{peer}"))
            .stack_size(8 << 20)
            .spawn(move || serve_connection(&sh, stream, peer));
        if let Err(e) = spawned {
            eprintln!("aws: cannot start a thread for {peer}: {e}");
        }
    }
}

/// The UDP reader: find the part by the sender's address and the job by the header,
/// hand the bytes over. Never blocks on a job.
fn read_replies(shared: &Shared) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let (n, src) = match shared.udp.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) => {
                crate::debug!(shared.cfg, "aws: UDP receive error: {e}");
                continue;
            }
        };
        let part = shared.backends.iter().position(|a| *a == src);
        let Some(part) = part.and_then(Part::from_index) else {
            crate::debug!(shared.cfg, "aws: dropped {n} bytes from stranger {src}");
            continue;
        };
        let job = match Header::parse(&buf[..n]) {
            Ok(h) if n <= MAX_REPLY => h.job,
            Ok(_) => {
                crate::debug!(shared.cfg, "aws: dropped a {n}-byte datagram from {src}");
                continue;
            }
            Err(e) => {
                crate::debug!(shared.cfg, "aws: dropped datagram from {src}: {e}");
                continue;
            }
        };
        let mut reply = Reply {
            part,
            len: n,
            bytes: [0; MAX_REPLY],
        };
        reply.bytes[..n].copy_from_slice(&buf[..n]);
        let sender = shared
            .registry
            .lock()
            .ok()
            .and_then(|r| r.get(&job).cloned());
        match sender.map(|tx| tx.try_send(reply)) {
            None => crate::debug!(shared.cfg, "aws: reply for unknown job {job} from {src}"),
            Some(Err(TrySendError::Full(_))) => {
                crate::debug!(shared.cfg, "aws: job {job} queue full; reply dropped")
            }
            Some(_) => {}
        }
    }
}

/// A client's TCP connection and the frames buffered from it.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    reader: FrameReader,
}

/// Why a connection ended before its request was read.
enum Unasked {
    Closed,
    Silent,
    Failed(io::Error),
    Refused(Refusal),
}

fn serve_connection(shared: &Shared, stream: TcpStream, peer: SocketAddr) {
    let cfg = &shared.cfg;
    let Some(waiting) = Counted::take(&shared.waiting, MAX_WAITING) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let mut conn = Conn {
        stream,
        peer,
        reader: FrameReader::new(CLIENT_BUFFER),
    };
    let asked = read_request(&mut conn, Instant::now() + cfg.request_timeout);
    drop(waiting);
    let request = match asked {
        Ok(r) => r,
        Err(Unasked::Closed) => return crate::debug!(cfg, "aws: {peer} closed without a request"),
        Err(Unasked::Silent) => {
            let ms = cfg.request_timeout.as_millis();
            return crate::debug!(cfg, "aws: {peer} closed: no request within {ms} ms");
        }
        Err(Unasked::Failed(e)) => return eprintln!("aws: client {peer} failed: {e}"),
        Err(Unasked::Refused(r @ Refusal::Malformed(_))) => {
            return eprintln!("aws: client {peer} {r}");
        }
        Err(Unasked::Refused(r)) => {
            eprintln!("aws: client {peer} {r}");
            return refuse(conn, r);
        }
    };
    let Some(_job_place) = Counted::take(&shared.jobs, cfg.max_jobs) else {
        eprintln!(
            "aws: client {peer} refused: {} jobs already running",
            cfg.max_jobs
        );
        return refuse(conn, Refusal::Busy);
    };
    run_job(shared, conn, request);
}

/// Reads the first frame, within `deadline` whatever signals interrupt the reads.
fn read_request(conn: &mut Conn, deadline: Instant) -> Result<Request, Unasked> {
    loop {
        match conn.reader.poll() {
            Ok(Polled::Frame(len)) => {
                let request = parse_request(conn.reader.frame_bytes(len));
                conn.reader.consume(len);
                return request.map_err(Unasked::Refused);
            }
            Ok(Polled::Closed) => return Err(Unasked::Closed),
            Err(e) => return Err(Unasked::Refused(Refusal::Malformed(e))),
            Ok(Polled::More) => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Unasked::Silent);
        }
        let _ = conn.stream.set_read_timeout(Some(left));
        match conn.reader.fill(&mut conn.stream) {
            Ok(_) => {}
            Err(e) if retry(&e) => {}
            Err(e) => return Err(Unasked::Failed(e)),
        }
    }
}

/// True for errors after which the same call may simply be made again: a signal
/// interrupted it, or its timeout passed (the caller checks its own deadline).
fn retry(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted || is_timeout(e)
}

/// Writes all of `bytes` by `deadline`, retrying after signals.
fn write_until(stream: &mut TcpStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ));
        }
        let _ = stream.set_write_timeout(Some(left));
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if retry(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Tells a client why it is turned away, then drains what it still sends (briefly)
/// so it reads the error instead of a connection reset.
fn refuse(mut conn: Conn, refusal: Refusal) {
    let mut b = [0u8; CLIENT_FRAME_MAX];
    let n = refusal.emit(&mut b);
    let _ = write_until(&mut conn.stream, &b[..n], Instant::now() + DRAIN);
    drain(conn.stream);
}

fn drain(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + DRAIN;
    let mut sink = [0u8; 16 << 10];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = stream.set_read_timeout(Some(left.min(Duration::from_millis(200))));
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if retry(&e) => {}
            Err(_) => break,
        }
    }
}

/// One job from accept to answer (or failure), then the clean-up.
fn run_job(shared: &Shared, mut conn: Conn, request: Request) {
    let cfg = &shared.cfg;
    let (tx, rx) = sync_channel(REPLY_QUEUE);
    let Some(job) = register(shared, tx) else {
        return refuse(conn, Refusal::Busy);
    };
    let limits = Limits {
        backend_timeout: cfg.backend_timeout,
        client_idle: cfg.idle_timeout,
    };
    crate::debug!(
        cfg,
        "aws: job {job}: {} of {} numbers from {}",
        request.op,
        request.total,
        conn.peer
    );
    // `start` sets every field a job reads (a finished job's state is as good as new).
    let spare = shared.spare.lock().ok().and_then(|mut s| s.pop());
    let mut d = spare.unwrap_or_else(fresh_state);
    d.start(job, request, limits, now());
    let told = poll_job(shared, &mut conn, &mut d, &rx);
    if let Ok(mut reg) = shared.registry.lock() {
        reg.remove(&job);
    }
    log_stats(shared, &d);
    let failed = d.error().is_some();
    if let Ok(mut spare) = shared.spare.lock() {
        if spare.len() < SPARE_STATES {
            spare.push(d);
        }
    }
    if told && failed {
        drain(conn.stream);
    }
}

/// A new job state. Built on this call's stack and moved to the heap, so its 2.3 MiB
/// frame (which the stack probe touches page by page on entry) is paid only when no spare
/// is kept, and not by every job thread's [`serve_connection`].
#[cold]
#[inline(never)]
fn fresh_state() -> Box<Dispatch<WINDOW>> {
    Box::default()
}

fn register(shared: &Shared, tx: SyncSender<Reply>) -> Option<JobId> {
    let mut reg = shared.registry.lock().ok()?;
    let mut job = random_job_id();
    while reg.contains_key(&job) {
        job = random_job_id();
    }
    reg.insert(job, tx);
    Some(job)
}

/// The job's poll loop: replies in, timers, datagrams out, events printed, the client
/// answered, client frames in, then wait. Returns whether the client was sent an error.
fn poll_job(
    shared: &Shared,
    conn: &mut Conn,
    d: &mut Dispatch<WINDOW>,
    rx: &Receiver<Reply>,
) -> bool {
    let mut batch = Batch::new(shared.gso);
    let mut told = false;
    loop {
        let t = now();
        while let Ok(r) = rx.try_recv() {
            let _ = d.handle_backend(t, r.part, &r.bytes[..r.len]);
        }
        d.handle_timeout(t);
        feed_client(conn, d);
        batch.send_all(shared, d);
        announce_all(shared, d, conn.peer);
        told |= answer(shared, conn, d);
        // Writing the answer is itself an event (the table's last line).
        announce_all(shared, d, conn.peer);
        if d.is_finished() {
            return told;
        }
        wait(conn, d, rx);
    }
}

fn announce_all(shared: &Shared, d: &mut Dispatch<WINDOW>, peer: SocketAddr) {
    while let Some(event) = d.poll_event() {
        announce(shared, d, peer, event);
    }
}

/// Prints one of Table 7's lines, or the reason a job was abandoned.
fn announce(shared: &Shared, d: &Dispatch<WINDOW>, peer: SocketAddr, event: Event) {
    let cfg = &shared.cfg;
    let op = d.op();
    match event {
        Event::Received { count } => say(&aws_received(count, cfg.aws_tcp_port())),
        Event::Sent { part, count } => say(&aws_sent(count, part)),
        Event::PartResult { part, result } => {
            say(&aws_result(op, part, cfg.aws_udp_port(), result.value))
        }
        Event::Reduced { result } => say(&aws_reduced(op, result.value)),
        Event::Answered => {
            say(&aws_answered());
            let allocs = crate::alloc::allocations();
            crate::debug!(
                cfg,
                "aws: job {} done; allocations so far: {allocs}",
                d.job()
            );
        }
        Event::Failed(why) => eprintln!("aws: job {} from {peer} abandoned: {why}", d.job()),
    }
}

/// Writes what the job owes the client (accept, answer or error). Returns whether it
/// was an error frame.
fn answer(shared: &Shared, conn: &mut Conn, d: &mut Dispatch<WINDOW>) -> bool {
    let mut b = [0u8; CLIENT_FRAME_MAX];
    let Some(n) = d.poll_client(&mut b) else {
        return false;
    };
    let deadline = Instant::now() + shared.cfg.idle_timeout;
    match write_until(&mut conn.stream, &b[..n], deadline) {
        // Only an answer's write moves the job on; an accept's or an error's does not.
        Ok(()) => d.handle_answer_written(now()),
        Err(e) => {
            let (job, peer) = (d.job(), conn.peer);
            crate::debug!(shared.cfg, "aws: job {job}: write to {peer} failed: {e}");
            d.handle_client_closed(now());
        }
    }
    d.error().is_some()
}

/// Hands every buffered client frame to the job while it has room.
fn feed_client(conn: &mut Conn, d: &mut Dispatch<WINDOW>) {
    while d.wants_client() {
        let t = now();
        match conn.reader.poll() {
            Ok(Polled::Frame(len)) => {
                let _ = d.handle_client(t, conn.reader.frame_bytes(len));
                conn.reader.consume(len);
            }
            Ok(Polled::More) => return,
            Ok(Polled::Closed) => return d.handle_client_closed(t),
            Err(e) => return d.handle_client_malformed(t, e),
        }
    }
}

/// Waits for the next thing to do: client bytes (briefly) when the job wants them,
/// otherwise a back-end reply, at most until the job's next timer.
fn wait(conn: &mut Conn, d: &mut Dispatch<WINDOW>, rx: &Receiver<Reply>) {
    let t = now();
    let until = d
        .poll_timeout()
        .map_or(MAX_WAIT, |at| Duration::from_micros(at.since(t)));
    let until = until.clamp(Duration::from_micros(200), MAX_WAIT);
    if d.wants_client() {
        let _ = conn.stream.set_read_timeout(Some(until.min(POLL)));
        match conn.reader.fill(&mut conn.stream) {
            Ok(_) => {}
            Err(e) if retry(&e) => {}
            Err(_) => d.handle_client_closed(now()),
        }
        return;
    }
    match rx.recv_timeout(until) {
        Ok(r) => {
            let _ = d.handle_backend(now(), r.part, &r.bytes[..r.len]);
        }
        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
    }
}

/// With `OFFLOAD_LOG=debug`: one line per back-end of the job, what its sender did.
fn log_stats(shared: &Shared, d: &Dispatch<WINDOW>) {
    if !shared.cfg.debug {
        return;
    }
    let took = Duration::from_micros(now().since(d.started()));
    for ((part, s), (srtt, rto)) in Part::ALL.iter().zip(d.stats()).zip(d.timers()) {
        if d.sizes()[part.index()] == 0 {
            continue;
        }
        let srtt = srtt.map_or("-".to_string(), |us| format!("{us} us"));
        eprintln!(
            "aws: job {} server {}: {} data frames, {} datagrams, resent {} after a SACK and {} after {} timeouts, {} acks ({} duplicate or stale), srtt {srtt}, rto {rto} us, job {:.3} s",
            d.job(),
            part.letter(),
            s.frames,
            s.datagrams,
            s.sack_resent,
            s.timeout_resent,
            s.timeouts,
            s.acks,
            s.stale_acks,
            took.as_secs_f64()
        );
    }
}

/// Datagrams for one back-end laid end to end for a single segmentation-offload send:
/// the kernel cuts it back into one datagram per frame, so nothing on the wire changes.
struct Batch {
    buf: Box<[u8]>,
    used: usize,
    frames: usize,
    part: Option<Part>,
    gso: bool,
}

impl Batch {
    fn new(gso: bool) -> Batch {
        let frames = if gso { GSO_FRAMES } else { 1 };
        Batch {
            buf: vec![0u8; frames * MAX_DATAGRAM].into_boxed_slice(),
            used: 0,
            frames: 0,
            part: None,
            gso,
        }
    }

    /// Sends everything the job has to send now.
    fn send_all(&mut self, shared: &Shared, d: &mut Dispatch<WINDOW>) {
        let t = now();
        loop {
            if self.buf.len() - self.used < MAX_DATAGRAM {
                self.flush(shared);
            }
            let at = self.used;
            let Some(tx) = d.poll_transmit(t, &mut self.buf[at..]) else {
                break;
            };
            if self.part.is_some_and(|p| p != tx.part) {
                // Another back-end: send the batch, then move this frame to the front.
                self.flush(shared);
                self.buf.copy_within(at..at + tx.len, 0);
            }
            self.part = Some(tx.part);
            self.used += tx.len;
            self.frames += 1;
            // Only the last segment of an offloaded send may be shorter than the rest.
            if !self.gso || tx.len < MAX_DATAGRAM || self.frames == GSO_FRAMES {
                self.flush(shared);
            }
        }
        self.flush(shared);
    }

    fn flush(&mut self, shared: &Shared) {
        if let (Some(part), true) = (self.part, self.used > 0) {
            let to = shared.backends[part.index()];
            let bytes = &self.buf[..self.used];
            if send(&shared.udp, bytes, to).is_err() && self.frames > 1 {
                // Offload refused (a device without it): send one by one from now on.
                self.gso = false;
                for frame in bytes.chunks(MAX_DATAGRAM) {
                    let _ = send(&shared.udp, frame, to);
                }
            }
        }
        self.used = 0;
        self.frames = 0;
        self.part = None;
    }
}

/// One UDP send, again after a signal; any other failure is a lost datagram, which
/// the transfer layer recovers.
fn send(udp: &UdpSocket, bytes: &[u8], to: SocketAddr) -> io::Result<usize> {
    loop {
        match udp.send_to(bytes, to) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}
