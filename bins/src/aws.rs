//! The AWS front-end: TCP from clients, UDP to the back-ends, many jobs at once.
//!
//! Each client connection gets a thread that owns its job's [`Dispatch`] (the core's
//! sans-IO splitter and reliable senders). One reader thread owns the receiving side of
//! the UDP socket and hands each back-end reply to its job over a bounded channel; a
//! full channel drops the reply, which the transfer layer treats as a lost datagram.

use crate::config::Config;
use crate::messages::{
    aws_answered, aws_boot, aws_received, aws_reduced, aws_result, aws_sent, say,
};
use crate::net::{
    bind_hint, enable_gso, is_timeout, now, random_job_id, tune_udp, FrameReader, Polled,
};
use offload_core::dispatch::{Dispatch, DispatchError, PartEvent};
use offload_core::split::Part;
use offload_core::wire::{ErrorCode, Frame, JobId, Sack, MAX_DATAGRAM};
use offload_core::{Op, I192};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Frames in flight per back-end per job (a back-end accepts any window up to
/// `offload_core::transfer::MAX_WINDOW` at no cost to its memory).
pub const WINDOW: usize = 64;
/// How long a job thread blocks on one socket before serving its timers.
const POLL: Duration = Duration::from_millis(2);
/// Bytes buffered from a client per read.
const CLIENT_BUFFER: usize = 256 << 10;
/// Back-end replies queued per job before further ones are dropped.
const REPLY_QUEUE: usize = 1024;
/// How long a refused client's remaining bytes are drained so it can read our error.
const DRAIN: Duration = Duration::from_secs(2);

/// A back-end's reply, decoded by the reader thread, for one job.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Ack {
        cum: u32,
        complete: bool,
        sack: Sack,
    },
    Result {
        op: Op,
        count: u64,
        value: I192,
    },
    Error {
        code: ErrorCode,
        arg: u16,
    },
}

impl Reply {
    fn frame(self, job: JobId) -> Frame<'static> {
        match self {
            Reply::Ack {
                cum,
                complete,
                sack,
            } => Frame::Ack {
                epoch: Default::default(),
                job,
                cum,
                complete,
                sack,
            },
            Reply::Result { op, count, value } => Frame::Result {
                epoch: Default::default(),
                job,
                op,
                count,
                value,
            },
            Reply::Error { code, arg } => Frame::Error { job, code, arg },
        }
    }
}

type Registry = Arc<Mutex<HashMap<JobId, SyncSender<(Part, Reply)>>>>;

/// What every job thread shares.
struct Shared {
    cfg: Config,
    udp: UdpSocket,
    /// Segmentation offload is on: one send may carry many full frames.
    gso: bool,
    backends: [SocketAddr; 3],
    registry: Registry,
    active: AtomicUsize,
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

fn start() -> Result<Never, String> {
    let cfg = Config::from_env().map_err(|e| e.0)?;
    let backends = [Part::A, Part::B, Part::C].map(|p| cfg.backend_addr(p));
    let backends = match backends {
        [Ok(a), Ok(b), Ok(c)] => [a, b, c],
        [a, b, c] => {
            return Err([a.err(), b.err(), c.err()]
                .into_iter()
                .flatten()
                .map(|e| e.0)
                .collect::<Vec<_>>()
                .join("; "))
        }
    };
    let udp_addr = cfg.aws_udp_addr().map_err(|e| e.0)?;
    let tcp_addr = cfg.aws_tcp_addr().map_err(|e| e.0)?;
    // One socket for the three back-ends, of their family (dual-stack if they mix).
    let (udp, backends) = crate::net::bind_reply_socket(udp_addr, backends)?;
    let listener = TcpListener::bind(tcp_addr).map_err(|e| {
        format!(
            "cannot bind TCP {tcp_addr}: {e}{}",
            bind_hint(&e, "aws", "OFFLOAD_HOST_AWS")
        )
    })?;
    let granted = tune_udp(&udp);
    // Offload only where a full frame fits the route to every back-end (IPv6 on a
    // 1500-byte link does not): on such a socket the kernel would refuse every send.
    let gso = cfg.gso
        && crate::net::segments_fit(&backends, MAX_DATAGRAM)
        && enable_gso(&udp, MAX_DATAGRAM);
    crate::debug!(
        cfg,
        "aws: UDP receive buffer {granted} bytes; segmentation offload {gso}; back-ends {backends:?}"
    );
    let shared = Arc::new(Shared {
        cfg,
        udp,
        gso,
        backends,
        registry: Arc::new(Mutex::new(HashMap::new())),
        active: AtomicUsize::new(0),
    });
    say(&aws_boot());
    let reader = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("udp-reader".into())
        .spawn(move || read_replies(&reader))
        .map_err(|e| format!("cannot start the UDP reader: {e}"))?;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: wait and keep serving.
                eprintln!("aws: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let shared2 = Arc::clone(&shared);
        if shared.active.fetch_add(1, Ordering::SeqCst) >= shared.cfg.max_jobs {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            eprintln!(
                "aws: client {peer} refused: {} jobs already running",
                shared.cfg.max_jobs
            );
            let _ = std::thread::Builder::new()
                .spawn(move || refuse(stream, JobId(0), ErrorCode::Busy, 0));
            continue;
        }
        let spawned = std::thread::Builder::new()
            .name(format!("client-{peer}"))
            .stack_size(8 << 20)
            .spawn(move || {
                serve_client(&shared2, stream, peer);
                shared2.active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            eprintln!("aws: cannot start a thread for {peer}: {e}");
        }
    }
}

/// The UDP reader: decode, find the job, hand over. Never blocks on a job.
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
        let Some(part) = shared
            .backends
            .iter()
            .position(|a| *a == src)
            .and_then(Part::from_index)
        else {
            crate::debug!(shared.cfg, "aws: dropped {n} bytes from stranger {src}");
            continue;
        };
        let frame = match Frame::parse(&buf[..n]) {
            Ok(f) => f,
            Err(e) => {
                crate::debug!(shared.cfg, "aws: dropped datagram from {src}: {e}");
                continue;
            }
        };
        let reply = match frame {
            Frame::Ack {
                cum,
                complete,
                sack,
                ..
            } => Reply::Ack {
                cum,
                complete,
                sack,
            },
            Frame::Result {
                op, count, value, ..
            } => Reply::Result { op, count, value },
            Frame::Error { code, arg, .. } => Reply::Error { code, arg },
            other => {
                crate::debug!(shared.cfg, "aws: dropped datagram from {src}: {other:?}");
                continue;
            }
        };
        let job = frame.job();
        let sender = shared
            .registry
            .lock()
            .ok()
            .and_then(|r| r.get(&job).cloned());
        match sender.map(|tx| tx.try_send((part, reply))) {
            None => crate::debug!(shared.cfg, "aws: reply for unknown job {job} from {src}"),
            Some(Err(TrySendError::Full(_))) => {
                crate::debug!(shared.cfg, "aws: job {job} queue full; reply dropped")
            }
            Some(_) => {}
        }
    }
}

/// Why a job ended early.
enum JobEnd {
    /// The client vanished or misbehaved: nothing to tell it.
    ClientGone(String),
    /// Tell the client this, then close.
    Report(ErrorCode, u16, String),
}

/// Lines of Table 7 for one job, printed in the table's order however events arrive.
struct Lines {
    slots: [Option<String>; 9],
    skip: [bool; 9],
    next: usize,
}

const RECEIVED: usize = 0;
const SENT: usize = 1;
const RESULT: usize = 4;
const FINAL: usize = 7;
const ANSWERED: usize = 8;

impl Lines {
    fn new(sizes: [u64; 3]) -> Lines {
        let mut skip = [false; 9];
        for (i, &n) in sizes.iter().enumerate() {
            // An empty part is not sent and has no result.
            skip[SENT + i] = n == 0;
            skip[RESULT + i] = n == 0;
        }
        Lines {
            slots: Default::default(),
            skip,
            next: 0,
        }
    }

    fn is_set(&self, i: usize) -> bool {
        i < self.next || self.slots[i].is_some()
    }

    fn set(&mut self, i: usize, line: String) {
        if !self.is_set(i) {
            self.slots[i] = Some(line);
        }
        while self.next < self.slots.len() {
            if self.skip[self.next] {
                self.next += 1;
            } else if let Some(l) = self.slots[self.next].take() {
                say(&l);
                self.next += 1;
            } else {
                break;
            }
        }
    }
}

fn serve_client(shared: &Shared, mut stream: TcpStream, peer: SocketAddr) {
    let cfg = &shared.cfg;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(cfg.idle_timeout));
    let mut reader = FrameReader::new(CLIENT_BUFFER);
    let request = match reader.next_blocking(&mut stream) {
        Ok(Some(len)) => {
            let r = match reader.frame(len) {
                Ok(Frame::Request { op, total, .. }) => Ok((op, total)),
                Ok(other) => Err(format!("{other:?}")),
                Err(e) => Err(e.to_string()),
            };
            reader.consume(len);
            r
        }
        Ok(None) => return crate::debug!(cfg, "aws: {peer} closed without a request"),
        Err(e) => return eprintln!("aws: client {peer} sent no valid request: {e}"),
    };
    let (op, total) = match request {
        Ok((op, total)) if total > 0 => (op, total),
        other => {
            eprintln!("aws: client {peer} sent an invalid request: {other:?}");
            return refuse(stream, JobId(0), ErrorCode::BadRequest, 0);
        }
    };
    let (tx, rx) = sync_channel(REPLY_QUEUE);
    let job = {
        let Ok(mut reg) = shared.registry.lock() else {
            return refuse(stream, JobId(0), ErrorCode::Busy, 0);
        };
        let mut job = random_job_id();
        while reg.contains_key(&job) {
            job = random_job_id();
        }
        reg.insert(job, tx);
        job
    };
    crate::debug!(cfg, "aws: job {job}: {op} of {total} numbers from {peer}");
    let mut dispatch: Box<Dispatch<WINDOW>> = Box::new(Dispatch::new(job, op, total, now()));
    let outcome = run_job(shared, &mut stream, &mut reader, &mut dispatch, &rx);
    if let Ok(mut reg) = shared.registry.lock() {
        reg.remove(&job);
    }
    // Free the back-ends' slots for parts that never finished.
    for part in Part::ALL {
        if dispatch.sizes()[part.index()] > 0 && dispatch.result(part).is_none() {
            let mut b = [0u8; 16];
            if let Ok(n) = (Frame::Abort { job }).emit(&mut b) {
                let _ = shared.udp.send_to(&b[..n], shared.backends[part.index()]);
            }
        }
    }
    match outcome {
        Ok(()) => crate::debug!(
            cfg,
            "aws: job {job} done; allocations so far: {}",
            crate::alloc::allocations()
        ),
        Err(JobEnd::ClientGone(why)) => {
            eprintln!("aws: job {job}: client {peer} {why}; job abandoned")
        }
        Err(JobEnd::Report(code, arg, why)) => {
            eprintln!("aws: job {job} for client {peer} failed: {why}");
            refuse(stream, job, code, arg);
        }
    }
}

/// Sends an error frame, then drains what the client still sends (briefly) so it
/// reads the error instead of a connection reset.
fn refuse(mut stream: TcpStream, job: JobId, code: ErrorCode, arg: u16) {
    let mut b = [0u8; 16];
    if let Ok(n) = (Frame::Error { job, code, arg }).emit(&mut b) {
        let _ = stream.set_write_timeout(Some(DRAIN));
        let _ = stream.write_all(&b[..n]);
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let started = std::time::Instant::now();
    let mut sink = [0u8; 64 << 10];
    while started.elapsed() < DRAIN {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
}

fn run_job(
    shared: &Shared,
    stream: &mut TcpStream,
    reader: &mut FrameReader,
    d: &mut Dispatch<WINDOW>,
    rx: &Receiver<(Part, Reply)>,
) -> Result<(), JobEnd> {
    let cfg = &shared.cfg;
    let job = d.job();
    let op = d.op();
    let sizes = d.sizes();
    let timeout_us = cfg.backend_timeout.as_micros() as u64;
    let mut lines = Lines::new(sizes);
    let mut next_seq = 0u32;
    let mut last_heard = std::time::Instant::now();
    let mut batch = Batch::new(shared.gso);
    let _ = stream.set_read_timeout(Some(POLL));
    loop {
        // Back-end replies first: they free window space.
        while let Ok((part, reply)) = rx.try_recv() {
            on_reply(shared, d, &mut lines, part, reply)?;
        }
        let t = now();
        d.handle_timeout(t);
        while let Some((part, bytes)) = d.poll_transmit(t) {
            batch.push(shared, part, bytes);
        }
        batch.flush(shared);
        for part in Part::ALL {
            if sizes[part.index()] > 0 && d.part_sent(part) && !lines.is_set(SENT + part.index()) {
                lines.set(SENT + part.index(), aws_sent(sizes[part.index()], part));
            }
        }
        if let Some(part) = d.stalled(t, timeout_us) {
            let letter = part.letter();
            return Err(JobEnd::Report(
                ErrorCode::BackendTimeout,
                part.index() as u16,
                format!(
                    "Backend-Server {letter} did not answer within {} ms",
                    cfg.backend_timeout.as_millis()
                ),
            ));
        }
        if !d.all_received() {
            if !d.has_room() {
                wait_reply(shared, d, &mut lines, rx, POLL)?;
                continue;
            }
            // Take every buffered frame the windows have room for, then transmit them
            // together (one offloaded send can carry many).
            let mut took = false;
            loop {
                match reader.poll() {
                    Ok(Polled::Frame(len)) => {
                        take_data(d, reader, len, op, &mut next_seq)?;
                        reader.consume(len);
                        took = true;
                        if d.all_received() {
                            lines.set(
                                RECEIVED,
                                aws_received(d.received(), shared.cfg.aws_tcp_port()),
                            );
                            break;
                        }
                        if !d.has_room() {
                            break;
                        }
                    }
                    Ok(Polled::More) => break,
                    Ok(Polled::Closed) => {
                        return Err(JobEnd::ClientGone(format!(
                            "closed after {} of {} numbers",
                            d.received(),
                            sizes.iter().sum::<u64>()
                        )))
                    }
                    Err(e) => {
                        return Err(JobEnd::ClientGone(format!("sent a malformed stream ({e})")))
                    }
                }
            }
            if took {
                continue;
            }
            match reader.fill(stream) {
                Ok(_) => last_heard = std::time::Instant::now(),
                Err(e) if is_timeout(&e) => {
                    if last_heard.elapsed() >= cfg.idle_timeout {
                        return Err(JobEnd::ClientGone(format!(
                            "sent nothing for {} s",
                            cfg.idle_timeout.as_secs()
                        )));
                    }
                }
                Err(e) => return Err(JobEnd::ClientGone(format!("failed: {e}"))),
            }
            continue;
        }
        if let Some(result) = d.final_result() {
            lines.set(FINAL, aws_reduced(op, result.value));
            let mut b = [0u8; MAX_DATAGRAM];
            let n = (Frame::Result {
                epoch: Default::default(),
                job,
                op,
                count: result.count,
                value: result.value,
            })
            .emit(&mut b)
            .map_err(|e| JobEnd::ClientGone(e.to_string()))?;
            let _ = stream.set_write_timeout(Some(cfg.idle_timeout));
            stream
                .write_all(&b[..n])
                .map_err(|e| JobEnd::ClientGone(format!("could not be sent the answer: {e}")))?;
            lines.set(ANSWERED, aws_answered());
            return Ok(());
        }
        let wait = d
            .poll_timeout()
            .map_or(Duration::from_millis(50), |at| {
                Duration::from_micros(at.since(now()))
            })
            .clamp(Duration::from_micros(200), Duration::from_millis(50));
        wait_reply(shared, d, &mut lines, rx, wait)?;
    }
}

/// Full frames for one back-end, laid end to end for a single segmentation-offload send:
/// the kernel cuts it back into one datagram per frame, so nothing on the wire changes.
struct Batch {
    buf: Vec<u8>,
    part: Option<Part>,
    frames: usize,
    gso: bool,
}

/// Frames per offloaded send: 44 x 1472 = 64,768 bytes, under UDP's 65,507-byte limit.
const GSO_FRAMES: usize = 44;

impl Batch {
    fn new(gso: bool) -> Batch {
        Batch {
            buf: Vec::with_capacity(if gso { GSO_FRAMES * MAX_DATAGRAM } else { 0 }),
            part: None,
            frames: 0,
            gso,
        }
    }

    fn push(&mut self, shared: &Shared, part: Part, frame: &[u8]) {
        if !self.gso {
            // A send error is a lost datagram: the timers recover it.
            let _ = shared.udp.send_to(frame, shared.backends[part.index()]);
            return;
        }
        if self.part != Some(part) {
            self.flush(shared);
        }
        self.part = Some(part);
        self.buf.extend_from_slice(frame);
        self.frames += 1;
        // Only the last segment of an offloaded send may be shorter than the rest.
        if frame.len() < MAX_DATAGRAM || self.frames == GSO_FRAMES {
            self.flush(shared);
        }
    }

    fn flush(&mut self, shared: &Shared) {
        if let (Some(part), false) = (self.part, self.buf.is_empty()) {
            let to = shared.backends[part.index()];
            if shared.udp.send_to(&self.buf, to).is_err() && self.frames > 1 {
                // Offload refused (a device without it): send one by one from now on.
                self.gso = false;
                for frame in self.buf.chunks(MAX_DATAGRAM) {
                    let _ = shared.udp.send_to(frame, to);
                }
            }
        }
        self.buf.clear();
        self.part = None;
        self.frames = 0;
    }
}

fn take_data(
    d: &mut Dispatch<WINDOW>,
    reader: &FrameReader,
    len: usize,
    op: Op,
    next_seq: &mut u32,
) -> Result<(), JobEnd> {
    let violation = |why: String| JobEnd::Report(ErrorCode::ProtocolViolation, 0, why);
    match reader.frame(len) {
        Ok(Frame::Data {
            seq,
            op: fop,
            values,
            ..
        }) if fop == op && seq == *next_seq => {
            *next_seq = seq.wrapping_add(1);
            for x in values.iter() {
                match d.push(x) {
                    Ok(()) => {}
                    Err(DispatchError::TooMany) => {
                        return Err(violation("client sent more numbers than announced".into()))
                    }
                    Err(DispatchError::WindowFull) => {
                        return Err(violation("internal window overrun".into()))
                    }
                }
            }
            Ok(())
        }
        Ok(other) => Err(violation(format!(
            "unexpected frame from client: {other:?}"
        ))),
        Err(e) => Err(JobEnd::ClientGone(format!("sent a malformed frame ({e})"))),
    }
}

fn wait_reply(
    shared: &Shared,
    d: &mut Dispatch<WINDOW>,
    lines: &mut Lines,
    rx: &Receiver<(Part, Reply)>,
    wait: Duration,
) -> Result<(), JobEnd> {
    match rx.recv_timeout(wait) {
        Ok((part, reply)) => on_reply(shared, d, lines, part, reply),
        Err(RecvTimeoutError::Timeout) => Ok(()),
        Err(RecvTimeoutError::Disconnected) => Err(JobEnd::Report(
            ErrorCode::Busy,
            0,
            "reply channel closed".into(),
        )),
    }
}

fn on_reply(
    shared: &Shared,
    d: &mut Dispatch<WINDOW>,
    lines: &mut Lines,
    part: Part,
    reply: Reply,
) -> Result<(), JobEnd> {
    let frame = reply.frame(d.job());
    match d.handle_frame(now(), part, &frame) {
        PartEvent::Result(p) => {
            if let Some(r) = d.result(p) {
                // Held by `lines` until the part's "sent" line, which the job loop sets
                // on its next turn (a result acknowledges the whole part), is printed.
                lines.set(
                    RESULT + p.index(),
                    aws_result(r.op, p, shared.cfg.aws_udp_port(), r.value),
                );
            }
            Ok(())
        }
        PartEvent::Failed(p, code) => {
            let letter = p.letter();
            let code = match code {
                ErrorCode::Busy => ErrorCode::BackendBusy,
                _ => ErrorCode::BackendFailed,
            };
            Err(JobEnd::Report(
                code,
                p.index() as u16,
                format!("Backend-Server {letter} refused the job ({code:?})"),
            ))
        }
        PartEvent::Nothing | PartEvent::Ignored => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_table_order_and_skip_empty_parts() {
        let mut l = Lines::new([1, 1, 0]);
        l.set(RESULT, "r".into());
        assert_eq!(l.next, 0);
        l.set(RECEIVED, "x".into());
        l.set(SENT, "a".into());
        assert_eq!(l.next, 2);
        l.set(SENT + 1, "b".into());
        // C is empty: its sent line is skipped, then A's result flushes.
        assert_eq!(l.next, RESULT + 1);
        assert!(l.is_set(RESULT));
        l.set(RESULT + 1, "rb".into());
        assert_eq!(l.next, FINAL);
    }
}
