//! Sockets, the clock and the TCP frame reader: the OS-facing pieces the programs share.
//!
//! Signals are ordinary events: a process stopped and continued (Ctrl-Z, fg) sees its
//! blocking socket calls that have a timeout fail with `Interrupted`. Every helper here
//! retries them, and the ones that take a deadline keep it across retries.

use offload_core::transfer::Instant;
use offload_core::wire::{Frame, Header, WireError, HEADER_LEN, MAX_DATAGRAM};
use std::io::{self, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::OnceLock;
use std::time::Duration;

/// Receive and send buffer asked for on every UDP socket. The default (about 208 KiB)
/// loses most of a burst of 1,000 full datagrams; 4 MiB holds every window in flight.
pub const UDP_BUFFER: usize = 4 << 20;

/// Microseconds since the process started: the time the core's state machines run on.
pub fn now() -> Instant {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    Instant(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// Asks for [`UDP_BUFFER`]-sized kernel buffers. As root the `FORCE` variants pass the
/// system limit; otherwise the kernel caps the request at `net.core.rmem_max`.
/// Returns the receive buffer size the kernel granted.
pub fn tune_udp(sock: &UdpSocket) -> usize {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    let size = UDP_BUFFER as libc::c_int;
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if setsockopt_int(fd, force, size).is_err() {
            let _ = setsockopt_int(fd, plain, size);
        }
    }
    getsockopt_at(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)
        .map_or(0, |v| usize::try_from(v).unwrap_or(0))
}

/// Linux's UDP segmentation offload option (`linux/udp.h`); the libc crate defines it
/// only for some C libraries.
const UDP_SEGMENT: libc::c_int = 103;

/// Turns on UDP segmentation offload: a send of several `segment`-byte datagrams laid end
/// to end leaves as that many separate datagrams, cut by the kernel (one system call
/// instead of many). False where the kernel lacks it (before Linux 4.18).
pub fn enable_gso(sock: &UdpSocket, segment: usize) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(size) = libc::c_int::try_from(segment) else {
        return false;
    };
    setsockopt_at(sock.as_raw_fd(), libc::IPPROTO_UDP, UDP_SEGMENT, size).is_ok()
}

/// Linux's UDP generic receive offload option (`linux/udp.h`), as [`UDP_SEGMENT`].
const UDP_GRO: libc::c_int = 104;

/// Bytes one receive may return with generic receive offload on: a whole offloaded
/// send (at most 64 KiB).
pub const GRO_BUFFER: usize = 1 << 16;

/// Turns on UDP generic receive offload: datagrams that left one segmentation-offload
/// send (or that the kernel merged on the way in) may arrive as one read of them laid
/// end to end, with their size ([`recv_batch`] splits them again). False where the
/// kernel lacks it (before Linux 5.0).
pub fn enable_gro(sock: &UdpSocket) -> bool {
    use std::os::fd::AsRawFd;
    setsockopt_at(sock.as_raw_fd(), libc::IPPROTO_UDP, UDP_GRO, 1).is_ok()
}

/// One receive on a socket that may have generic receive offload on: the bytes read
/// into `buf`, the sender, and the size of each datagram in them, all but the last of
/// which have that size (`None`: the bytes are one datagram). A datagram longer than
/// `buf` is cut, as `recv_from` cuts it.
///
/// # Errors
/// As `recv_from` (a timeout, an interrupted call, an ICMP error).
pub fn recv_batch(
    sock: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<usize>)> {
    use std::mem::{size_of, size_of_val, zeroed};
    use std::os::fd::AsRawFd;
    // SAFETY: all-zero bytes are a valid value of these plain C structs.
    let mut from: libc::sockaddr_storage = unsafe { zeroed() };
    let mut msg: libc::msghdr = unsafe { zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for the one control message asked for; u64s keep it aligned for cmsghdr.
    let mut control = [0u64; 8];
    msg.msg_name = (&mut from as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: every pointer in `msg` points at a live local or at `buf`, with the
    // lengths of what it points at; the kernel writes only within them.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    let peer = socket_addr(&from)?;
    let mut segment = None;
    // SAFETY: the CMSG_* functions walk the control buffer the kernel filled, within
    // the msg_controllen it set; the data of a UDP_GRO message is one c_int, copied out
    // unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::IPPROTO_UDP && (*cmsg).cmsg_type == UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                segment = usize::try_from(size).ok().filter(|&s| s > 0 && s < n);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n, peer, segment))
}

/// The address the kernel wrote into `from`.
fn socket_addr(from: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    use std::net::{Ipv4Addr, SocketAddrV4, SocketAddrV6};
    match libc::c_int::from(from.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large
            // and aligned enough for.
            let a =
                unsafe { &*(from as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Ok(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a =
                unsafe { &*(from as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        family => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a datagram from address family {family}"),
        )),
    }
}

fn setsockopt_int(fd: libc::c_int, opt: libc::c_int, value: libc::c_int) -> io::Result<()> {
    setsockopt_at(fd, libc::SOL_SOCKET, opt, value)
}

fn setsockopt_at(
    fd: libc::c_int,
    level: libc::c_int,
    opt: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `fd` is an open socket owned by the caller for the call's duration, and
    // the option value points at a live c_int whose size we pass.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_at(fd: libc::c_int, level: libc::c_int, opt: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: as above; `value` and `len` are live and `len` holds value's size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            opt,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// True for the errors a read with a timeout returns when nothing arrived in time.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// True for an interrupted call (a signal arrived, e.g. the SIGCONT of `fg`): retry it.
pub fn is_interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

/// Runs `call` again while it fails with `Interrupted`. For calls whose own socket
/// timeout bounds each try (a poll loop that checks its deadline itself).
///
/// # Errors
/// The call's first error that is not `Interrupted`.
pub fn retry<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if is_interrupted(&e) => continue,
            other => return other,
        }
    }
}

/// The time left until `deadline`.
///
/// # Errors
/// `TimedOut` once the deadline has passed.
pub fn time_left(deadline: std::time::Instant) -> io::Result<Duration> {
    match deadline.checked_duration_since(std::time::Instant::now()) {
        Some(left) if !left.is_zero() => Ok(left),
        _ => Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed")),
    }
}

/// How long a read past its deadline still waits: a process stopped (Ctrl-Z) beyond
/// its deadline still takes what arrived meanwhile.
const LAST_LOOK: Duration = Duration::from_millis(1);

/// The wait for one try before `deadline`, and whether it is the last look.
fn next_wait(deadline: std::time::Instant) -> (Duration, bool) {
    time_left(deadline).map_or((LAST_LOOK, true), |left| (left, false))
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "deadline passed")
}

/// Reads once from `stream`, waiting at most until `deadline`; an interrupted or early
/// woken wait is resumed for the time that is left, and a deadline that passed while
/// the process was stopped still takes what already arrived.
///
/// # Errors
/// `TimedOut` at the deadline; otherwise the read's error.
pub fn read_by(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: std::time::Instant,
) -> io::Result<usize> {
    loop {
        let (wait, last) = next_wait(deadline);
        stream.set_read_timeout(Some(wait))?;
        match stream.read(buf) {
            Err(e) if is_interrupted(&e) || is_timeout(&e) => {
                if last {
                    return Err(timed_out());
                }
            }
            other => return other,
        }
    }
}

/// Receives one datagram on `sock`, waiting at most until `deadline` (see [`read_by`]).
///
/// # Errors
/// `TimedOut` at the deadline; otherwise the receive's error.
pub fn recv_from_by(
    sock: &UdpSocket,
    buf: &mut [u8],
    deadline: std::time::Instant,
) -> io::Result<(usize, SocketAddr)> {
    loop {
        let (wait, last) = next_wait(deadline);
        sock.set_read_timeout(Some(wait))?;
        match sock.recv_from(buf) {
            Err(e) if is_interrupted(&e) || is_timeout(&e) => {
                if last {
                    return Err(timed_out());
                }
            }
            other => return other,
        }
    }
}

/// A call that returns this much later than its own timeout allowed was stopped
/// (Ctrl-Z) while inside it: far above any scheduling delay of a loaded machine, far
/// below how long a person keeps a program stopped.
const STOPPED: Duration = Duration::from_millis(500);

/// Writes all of `buf` within `limit`, or gives up: a peer that takes no bytes, or takes
/// them a trickle at a time (a stopped reader whose kernel buffer is compacting), ends
/// the wait at the same bound. Time this process spent stopped (Ctrl-Z, then fg) is not
/// the peer's fault: a call a signal interrupted, or one that returned long after its
/// own timeout, starts the bound again.
///
/// # Errors
/// `TimedOut` when `buf` was not all taken within `limit`; otherwise the write's error.
pub fn write_all_within(stream: &mut TcpStream, buf: &[u8], limit: Duration) -> io::Result<()> {
    write_all_within_armed(stream, buf, limit, &mut None)
}

/// [`write_all_within`] for many writes on one stream: `armed` is the write timeout the
/// stream has (`None`: not known), so that it is set only when it changes. A batch of
/// frames usually goes in one call whose timeout is the whole `limit`, the same each
/// time: one `setsockopt` less per 64 KiB (3,750 a 3e7-number job).
///
/// # Errors
/// As [`write_all_within`].
pub fn write_all_within_armed(
    stream: &mut TcpStream,
    mut buf: &[u8],
    limit: Duration,
    armed: &mut Option<Duration>,
) -> io::Result<()> {
    let mut left = limit;
    while !buf.is_empty() {
        if *armed != Some(left) {
            // Unknown again if this fails.
            *armed = None;
            stream.set_write_timeout(Some(left))?;
            *armed = Some(left);
        }
        let started = std::time::Instant::now();
        let r = stream.write(buf);
        let spent = started.elapsed();
        let stopped = spent > left + STOPPED;
        match r {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = buf.get(n..).unwrap_or(&[]),
            Err(e) if is_interrupted(&e) => {
                left = limit;
                continue;
            }
            Err(e) if is_timeout(&e) && !stopped => return Err(timed_out()),
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e),
        }
        left = if stopped {
            limit
        } else {
            match left.checked_sub(spent) {
                Some(l) if !l.is_zero() => l,
                _ if buf.is_empty() => break,
                _ => return Err(timed_out()),
            }
        };
    }
    Ok(())
}

/// The end of a "cannot bind" message: only an address in use can mean that another
/// instance is running; an address no interface has means the host setting is wrong.
/// `program` is the one that failed, `host_var` the variable naming its host.
pub fn bind_hint(e: &io::Error, program: &str, host_var: &str) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => format!(" (is another {program} still running?)"),
        io::ErrorKind::AddrNotAvailable => {
            format!(" (no interface of this machine has that address: check {host_var})")
        }
        io::ErrorKind::PermissionDenied => " (a port below 1024 needs root)".to_string(),
        _ => String::new(),
    }
}

/// Where the AWS binds its one UDP socket, and the back-ends' addresses as that socket
/// names them (it recognises replies by source address). When the AWS's host and the
/// three back-ends share a family, that is the AWS host's own address, unchanged. When
/// the families mix, it is `[::]`: an IPv6 socket on every address, which on Linux
/// (net.ipv6.bindv6only = 0, the default) also carries IPv4, with the IPv4 back-ends
/// written as IPv4-mapped addresses (`::ffff:10.0.0.2`), as that socket reports them.
pub fn reply_socket(own: SocketAddr, backends: [SocketAddr; 3]) -> (SocketAddr, [SocketAddr; 3]) {
    if backends.iter().all(|b| b.is_ipv4() == own.is_ipv4()) {
        return (own, backends);
    }
    let mapped = backends.map(|b| match b {
        SocketAddr::V4(v4) => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
        v6 => v6,
    });
    (
        SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), own.port()),
        mapped,
    )
}

/// The MTU of the route to `peer` as the kernel knows it (IP_MTU / IPV6_MTU of a UDP
/// socket connected there; nothing is sent), or `None` when it cannot tell.
pub fn route_mtu(peer: SocketAddr) -> Option<usize> {
    use std::os::fd::AsRawFd;
    let peer = match peer {
        SocketAddr::V6(a) => a
            .ip()
            .to_ipv4_mapped()
            .map_or(peer, |v4| SocketAddr::new(v4.into(), a.port())),
        v4 => v4,
    };
    let (any, level, opt) = match peer {
        SocketAddr::V4(_) => ("0.0.0.0:0", libc::IPPROTO_IP, libc::IP_MTU),
        SocketAddr::V6(_) => ("[::]:0", libc::IPPROTO_IPV6, libc::IPV6_MTU),
    };
    let probe = UdpSocket::bind(any).ok()?;
    probe.connect(peer).ok()?;
    let mtu = getsockopt_at(probe.as_raw_fd(), level, opt).ok()?;
    usize::try_from(mtu).ok()
}

/// Whether `segment`-byte datagrams fit one packet on the route to every back-end, as
/// segmentation offload needs: the kernel refuses every send, offloaded or not, on a
/// socket whose segment size does not fit the route, so no frame would get through.
/// A full frame fits Ethernet's 1500 bytes over IPv4 (1472 + 28) but not over IPv6
/// (1472 + 48); there the frames go one per send and the kernel fragments them.
pub fn segments_fit(backends: &[SocketAddr], segment: usize) -> bool {
    backends.iter().all(|b| {
        let v4 = match b {
            SocketAddr::V4(_) => true,
            SocketAddr::V6(a) => a.ip().to_ipv4_mapped().is_some(),
        };
        let headers = if v4 { 20 + 8 } else { 40 + 8 };
        route_mtu(*b).is_some_and(|mtu| segment + headers <= mtu)
    })
}

/// Why the AWS's UDP socket could not be made.
#[derive(Debug)]
pub enum ReplySocketError {
    /// The hosts mix families and an IPv6 socket (at this address) does not carry IPv4
    /// on this system.
    MixedFamilies(SocketAddr),
    /// The bind at this address failed.
    Bind(SocketAddr, io::Error),
}

impl std::fmt::Display for ReplySocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplySocketError::MixedFamilies(at) => write!(
                f,
                "the hosts mix IPv4 and IPv6 addresses, but an IPv6 socket ({at}) does not \
                 carry IPv4 here (net.ipv6.bindv6only = 1): give the AWS and the back-ends one family"
            ),
            ReplySocketError::Bind(at, e) => write_aws_bind_error(f, "UDP", *at, e),
        }
    }
}

impl std::error::Error for ReplySocketError {}

/// The AWS's message for a socket it could not bind: `cannot bind TCP|UDP ADDR: ERROR`
/// and what to check ([`bind_hint`]).
pub fn write_aws_bind_error(
    f: &mut std::fmt::Formatter<'_>,
    proto: &str,
    at: SocketAddr,
    e: &io::Error,
) -> std::fmt::Result {
    let hint = bind_hint(e, "aws", "OFFLOAD_HOST_AWS");
    write!(f, "cannot bind {proto} {at}: {e}{hint}")
}

/// Binds the AWS's UDP socket where [`reply_socket`] says; returns it with the
/// back-ends' addresses as it names them.
///
/// # Errors
/// [`ReplySocketError`]: the bind failed, or the back-ends mix families and this
/// system's IPv6 sockets do not carry IPv4.
pub fn bind_reply_socket(
    own: SocketAddr,
    backends: [SocketAddr; 3],
) -> Result<(UdpSocket, [SocketAddr; 3]), ReplySocketError> {
    let (at, backends) = reply_socket(own, backends);
    // A new IPv6 socket carries IPv4 too unless this system setting says otherwise.
    let v6_only =
        std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|v| v.trim() == "1");
    if at != own && v6_only {
        return Err(ReplySocketError::MixedFamilies(at));
    }
    let sock = UdpSocket::bind(at).map_err(|e| ReplySocketError::Bind(at, e))?;
    Ok((sock, backends))
}

/// A job id nobody off the path can guess: 32 bits from the OS-seeded hasher.
pub fn random_job_id() -> offload_core::JobId {
    use std::hash::{BuildHasher, Hasher};
    loop {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(now().0);
        let v = h.finish() as u32;
        if v != 0 {
            return offload_core::JobId(v);
        }
    }
}

/// What [`FrameReader::poll`] found.
pub enum Polled {
    /// A whole frame of this many bytes is at the front of [`FrameReader::frame_bytes`].
    Frame(usize),
    /// Need more bytes; read again.
    More,
    /// The peer closed the stream cleanly between frames.
    Closed,
}

/// Reads frames back to back from a byte stream, with large reads into one reused
/// buffer (no allocation per frame).
pub struct FrameReader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
}

impl FrameReader {
    /// A reader with a `capacity`-byte buffer (at least one whole frame).
    pub fn new(capacity: usize) -> FrameReader {
        FrameReader {
            buf: vec![0u8; capacity.max(MAX_DATAGRAM)].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// Checks the buffer for a whole frame.
    ///
    /// # Errors
    /// A malformed header, or a stream that ended inside a frame.
    pub fn poll(&mut self) -> Result<Polled, WireError> {
        let avail = &self.buf[self.start..self.end];
        if avail.len() >= HEADER_LEN {
            let len = Header::parse(avail)?.frame_len()?;
            if avail.len() >= len {
                return Ok(Polled::Frame(len));
            }
        }
        if self.eof {
            return if avail.is_empty() {
                Ok(Polled::Closed)
            } else {
                Err(WireError::Truncated)
            };
        }
        Ok(Polled::More)
    }

    /// The bytes of the frame [`FrameReader::poll`] announced.
    pub fn frame_bytes(&self, len: usize) -> &[u8] {
        &self.buf[self.start..self.start + len]
    }

    /// Decodes the announced frame.
    ///
    /// # Errors
    /// As [`Frame::parse`].
    pub fn frame(&self, len: usize) -> Result<Frame<'_>, WireError> {
        Frame::parse(self.frame_bytes(len))
    }

    /// Drops the announced frame from the buffer.
    pub fn consume(&mut self, len: usize) {
        self.start = (self.start + len).min(self.end);
    }

    /// Reads once from `src` (again if a signal interrupted the read; the source's own
    /// timeout bounds each try). Returns the bytes read (0 at end of stream).
    ///
    /// # Errors
    /// The read's error, including the timeout kinds (see [`is_timeout`]).
    pub fn fill<R: Read>(&mut self, src: &mut R) -> io::Result<usize> {
        self.fill_with(|buf| retry(|| src.read(buf)))
    }

    fn fill_with(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.start > 0 && (self.start == self.end || self.buf.len() - self.end < MAX_DATAGRAM) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = read(&mut self.buf[self.end..])?;
        if n == 0 {
            self.eof = true;
        }
        self.end += n;
        Ok(n)
    }

    /// Reads until a whole frame is buffered, `stream` ends or fails, or `deadline`
    /// passes; signals do not end the wait early.
    ///
    /// # Errors
    /// `TimedOut` at the deadline, other I/O errors, and malformed frames (as
    /// `InvalidData`).
    pub fn next_by(
        &mut self,
        stream: &mut TcpStream,
        deadline: std::time::Instant,
    ) -> io::Result<Option<usize>> {
        loop {
            match self.poll() {
                Ok(Polled::Frame(len)) => return Ok(Some(len)),
                Ok(Polled::Closed) => return Ok(None),
                Ok(Polled::More) => {
                    self.fill_with(|buf| read_by(stream, buf, deadline))?;
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            }
        }
    }

    /// Reads until a whole frame is buffered or `src` ends or fails.
    ///
    /// # Errors
    /// I/O errors (including timeouts) and malformed frames, as [`io::Error`]s.
    pub fn next_blocking<R: Read>(&mut self, src: &mut R) -> io::Result<Option<usize>> {
        loop {
            match self.poll() {
                Ok(Polled::Frame(len)) => return Ok(Some(len)),
                Ok(Polled::Closed) => return Ok(None),
                Ok(Polled::More) => {
                    self.fill(src)?;
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            }
        }
    }
}

/// Diagnostics on stderr, only with `OFFLOAD_LOG=debug`.
#[macro_export]
macro_rules! debug {
    ($cfg:expr, $($arg:tt)*) => {
        if $cfg.debug {
            eprintln!($($arg)*);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use offload_core::wire::{emit_data, JobId};
    use offload_core::Op;

    /// A reader that hands out its bytes a few at a time.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(self.0.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn frames_split_across_reads_reassemble() {
        let mut stream = Vec::new();
        let mut b = [0u8; MAX_DATAGRAM];
        for seq in 0..5u32 {
            let vals: Vec<i64> = (0..(seq as i64 * 40)).collect();
            let n = emit_data(&mut b, JobId(1), seq, Op::Sum, seq == 4, &vals).unwrap();
            stream.extend_from_slice(&b[..n]);
        }
        for step in [1, 7, 1000] {
            let mut r = FrameReader::new(2 * MAX_DATAGRAM);
            let mut src = Trickle(&stream, step);
            let mut seqs = Vec::new();
            while let Some(len) = r.next_blocking(&mut src).unwrap() {
                match r.frame(len).unwrap() {
                    Frame::Data { seq, values, .. } => {
                        assert_eq!(values.len(), seq as usize * 40);
                        seqs.push(seq);
                    }
                    other => panic!("{other:?}"),
                }
                r.consume(len);
            }
            assert_eq!(seqs, [0, 1, 2, 3, 4]);
        }
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_an_error() {
        let mut b = [0u8; MAX_DATAGRAM];
        let n = emit_data(&mut b, JobId(1), 0, Op::Sum, true, &[1, 2, 3]).unwrap();
        let mut r = FrameReader::new(MAX_DATAGRAM);
        let mut src = Trickle(&b[..n - 1], 100);
        assert!(r.next_blocking(&mut src).is_err());
        let mut r = FrameReader::new(MAX_DATAGRAM);
        assert!(r
            .next_blocking(&mut Trickle(b"garbage garbage garbage", 100))
            .is_err());
    }

    #[test]
    fn segmentation_offload_sends_separate_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        if !enable_gso(&tx, MAX_DATAGRAM) {
            eprintln!("no UDP_SEGMENT on this kernel; nothing to check");
            return;
        }
        let mut batch = vec![1u8; MAX_DATAGRAM * 3];
        batch.extend_from_slice(&[2u8; 100]);
        tx.send_to(&batch, rx.local_addr().unwrap()).unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 65536];
        let sizes: Vec<usize> = (0..4).map(|_| rx.recv(&mut buf).unwrap()).collect();
        assert_eq!(sizes, [MAX_DATAGRAM, MAX_DATAGRAM, MAX_DATAGRAM, 100]);
    }

    #[test]
    fn receive_offload_reads_a_batch_and_its_datagram_size() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let to = rx.local_addr().unwrap();
        let mut buf = vec![0u8; GRO_BUFFER];
        // Without offload on either end: one datagram per read, no size.
        tx.send_to(&[7u8; 300], to).unwrap();
        let (n, from, segment) = recv_batch(&rx, &mut buf).unwrap();
        assert_eq!((n, from, segment), (300, tx.local_addr().unwrap(), None));
        if !(enable_gso(&tx, MAX_DATAGRAM) && enable_gro(&rx)) {
            eprintln!("no UDP_SEGMENT or UDP_GRO on this kernel; nothing more to check");
            return;
        }
        let mut batch = Vec::new();
        for i in 0..3u8 {
            batch.extend_from_slice(&[i; MAX_DATAGRAM]);
        }
        batch.extend_from_slice(&[9u8; 100]);
        tx.send_to(&batch, to).unwrap();
        // Over loopback the offloaded send arrives whole, with its datagram size.
        let (n, from, segment) = recv_batch(&rx, &mut buf).unwrap();
        assert_eq!(
            (n, from, segment),
            (batch.len(), tx.local_addr().unwrap(), Some(MAX_DATAGRAM))
        );
        assert_eq!(&buf[..n], &batch[..]);
        // A lone datagram still reads as one, with no size.
        tx.send_to(&[5u8; 40], to).unwrap();
        assert_eq!(recv_batch(&rx, &mut buf).unwrap().2, None);
        // And so does one over IPv6, where the host has it.
        if let (Ok(rx6), Ok(tx6)) = (UdpSocket::bind("[::1]:0"), UdpSocket::bind("[::1]:0")) {
            rx6.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            tx6.send_to(&[3u8; 12], rx6.local_addr().unwrap()).unwrap();
            let (n, from, segment) = recv_batch(&rx6, &mut buf).unwrap();
            assert_eq!((n, from, segment), (12, tx6.local_addr().unwrap(), None));
        }
    }

    /// A reader whose first calls are interrupted, as after Ctrl-Z and fg.
    struct Interrupted<'a>(u32, &'a [u8]);

    impl Read for Interrupted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 > 0 {
                self.0 -= 1;
                return Err(io::ErrorKind::Interrupted.into());
            }
            Trickle(self.1, 1000).read(buf)
        }
    }

    #[test]
    fn interrupted_reads_are_retried() {
        let mut b = [0u8; MAX_DATAGRAM];
        let n = emit_data(&mut b, JobId(1), 0, Op::Sum, true, &[7]).unwrap();
        let mut r = FrameReader::new(MAX_DATAGRAM);
        let mut src = Interrupted(3, &b[..n]);
        assert_eq!(r.next_blocking(&mut src).unwrap(), Some(n));
        let mut calls = 0;
        let v = retry(|| {
            calls += 1;
            if calls < 4 {
                Err(io::Error::from(io::ErrorKind::Interrupted))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(v.unwrap(), 4);
    }

    #[test]
    fn deadlines_bound_reads_and_writes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        // Nothing to read: TimedOut at the deadline, not before.
        let t = std::time::Instant::now();
        let mut r = FrameReader::new(MAX_DATAGRAM);
        let e = r
            .next_by(&mut client, t + Duration::from_millis(100))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(100));
        // A peer that never reads: the write gives up within its limit.
        let big = vec![0u8; 64 << 20];
        let t = std::time::Instant::now();
        let e = write_all_within(&mut client, &big, Duration::from_millis(300)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn an_armed_write_sets_the_timeout_only_when_it_changes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let limit = Duration::from_secs(3);
        let mut armed = None;
        write_all_within_armed(&mut client, b"first", limit, &mut armed).unwrap();
        assert_eq!(armed, Some(limit));
        assert_eq!(client.write_timeout().unwrap(), Some(limit));
        // Armed as the stream is said to be: no setsockopt, so a timeout set behind its
        // back stays (which is how the call is seen not to set it).
        let other = Duration::from_secs(7);
        client.set_write_timeout(Some(other)).unwrap();
        write_all_within_armed(&mut client, b"second", limit, &mut armed).unwrap();
        assert_eq!(client.write_timeout().unwrap(), Some(other));
        // Not known: set again.
        armed = None;
        write_all_within_armed(&mut client, b"third", limit, &mut armed).unwrap();
        assert_eq!(client.write_timeout().unwrap(), Some(limit));
        let mut got = [0u8; 16];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"firstsecondthird");
    }

    #[test]
    fn only_an_address_in_use_suggests_another_instance() {
        let hint = |k: io::ErrorKind| bind_hint(&k.into(), "serverA", "OFFLOAD_HOST_A");
        assert_eq!(
            hint(io::ErrorKind::AddrInUse),
            " (is another serverA still running?)"
        );
        assert_eq!(
            hint(io::ErrorKind::AddrNotAvailable),
            " (no interface of this machine has that address: check OFFLOAD_HOST_A)"
        );
        assert_eq!(hint(io::ErrorKind::Other), "");
    }

    #[test]
    fn udp_buffers_grow() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Root gets 4 MiB (doubled by Linux); others at least the system default.
        assert!(tune_udp(&s) >= 200_000);
    }

    #[test]
    fn reply_socket_keeps_one_family_and_goes_dual_stack_for_a_mix() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let v4 = [
            a("10.0.0.2:21319"),
            a("10.0.0.3:22319"),
            a("10.0.0.4:23319"),
        ];
        assert_eq!(
            reply_socket(a("10.0.0.1:24319"), v4),
            (a("10.0.0.1:24319"), v4)
        );
        let v6 = [a("[::1]:21319"), a("[fd00::3]:22319"), a("[::1]:23319")];
        assert_eq!(reply_socket(a("[::1]:24319"), v6), (a("[::1]:24319"), v6));
        // IPv4 AWS, one IPv6 back-end: every address, IPv4 back-ends mapped.
        let mixed = [a("127.0.0.1:21319"), a("[::1]:22319"), a("10.0.0.4:23319")];
        assert_eq!(
            reply_socket(a("127.0.0.1:24319"), mixed),
            (
                a("[::]:24319"),
                [
                    a("[::ffff:127.0.0.1]:21319"),
                    a("[::1]:22319"),
                    a("[::ffff:10.0.0.4]:23319")
                ]
            )
        );
        // IPv6 AWS, IPv4 back-ends.
        assert_eq!(reply_socket(a("[::1]:24319"), v4).0, a("[::]:24319"));
    }

    #[test]
    fn a_dual_stack_reply_socket_hears_both_families_as_planned() {
        if UdpSocket::bind("[::1]:0").is_err() {
            return eprintln!("SKIPPED: no IPv6 on this machine");
        }
        let b4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b6 = UdpSocket::bind("[::1]:0").unwrap();
        let own: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let backs = [
            b4.local_addr().unwrap(),
            b6.local_addr().unwrap(),
            b4.local_addr().unwrap(),
        ];
        let (sock, named) = bind_reply_socket(own, backs).unwrap();
        let port = sock.local_addr().unwrap().port();
        for (i, b) in [&b4, &b6].into_iter().enumerate() {
            sock.send_to(&[i as u8], named[i]).unwrap();
            let mut buf = [0u8; 4];
            let (_, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!(from.port(), port);
            b.send_to(&[7], from).unwrap();
            let (_, src) = sock.recv_from(&mut buf).unwrap();
            assert_eq!(src, named[i], "a reply names its back-end as planned");
        }
    }

    #[test]
    fn full_frames_fit_loopback_routes_of_both_families() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        // Loopback's MTU is 65536: a full frame fits with either header.
        assert!(route_mtu(a("127.0.0.1:9")).is_some_and(|m| m >= 1500));
        assert!(segments_fit(
            &[a("127.0.0.1:9"), a("[::ffff:127.0.0.1]:9")],
            MAX_DATAGRAM
        ));
        if UdpSocket::bind("[::1]:0").is_ok() {
            assert!(segments_fit(&[a("[::1]:9")], MAX_DATAGRAM));
        }
        // Nothing fits a datagram bigger than the route.
        assert!(!segments_fit(&[a("127.0.0.1:9")], 1 << 20));
    }
}
