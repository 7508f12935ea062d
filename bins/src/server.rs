//! Back-end servers A, B and C: one UDP socket, one thread, many jobs at once.
//!
//! All protocol decisions are the core's [`Backend`]; this loop only moves datagrams
//! between the socket and it, prints the Table 4-6 lines, and expires silent jobs.
//! Only the AWS (its UDP address, 24000+xxx on `OFFLOAD_HOST_AWS`) may start or touch
//! a job; datagrams from anyone else are ignored (and logged as strangers).

use crate::config::Config;
use crate::messages::{say, server_boot, server_received, server_reduced, server_sent};
use crate::net::{bind_hint, enable_gro, is_timeout, now, recv_batch, tune_udp, GRO_BUFFER};
use offload_core::backend::{Backend, Discard, Handled, JobSlot};
use offload_core::split::Part;
use offload_core::wire::{Epoch, Header, MAX_DATAGRAM, MAX_REPLY};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

/// The send window the AWS uses, as far as a back-end cares: it keeps no frames (its
/// receiver is a 257-bit bitmap whatever the window), this only sets how often it acks.
pub const WINDOW: usize = offload_core::transfer::MAX_WINDOW;
/// A job silent this long (no datagram) is dropped to free its slot.
pub const JOB_EXPIRY: Duration = Duration::from_secs(30);

/// Runs back-end `part` until killed.
pub fn main(part: Part) -> ExitCode {
    let name = format!("server{}", part.letter());
    if std::env::args().len() > 1 {
        eprintln!(
            "{name}: takes no arguments (configure with EE450_ID and OFFLOAD_HOST_{})",
            part.letter()
        );
        return ExitCode::from(2);
    }
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    // The AWS as this back-end sees it: over this back-end's address family.
    let own = cfg.backend_addr(part);
    let (addr, aws) = match own.and_then(|a| Ok((a, cfg.aws_udp_addr_seen_from(a)?))) {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sock = match UdpSocket::bind(addr) {
        Ok(s) => s,
        Err(e) => {
            let host_var = format!("OFFLOAD_HOST_{}", part.letter());
            eprintln!(
                "{name}: cannot bind UDP {addr}: {e}{}",
                bind_hint(&e, &name, &host_var)
            );
            return ExitCode::FAILURE;
        }
    };
    let granted = tune_udp(&sock);
    // The AWS sends each back-end's frames in offloaded batches (OFFLOAD_GSO): with
    // receive offload on, a batch arrives in one read rather than one per frame.
    let gro = cfg.gso && enable_gro(&sock);
    crate::debug!(
        cfg,
        "{name}: UDP receive buffer {granted} bytes; receive offload {}",
        if gro { "on" } else { "off" }
    );
    say(&server_boot(part, cfg.backend_port(part)));
    serve(&cfg, part, &sock, aws);
    ExitCode::FAILURE
}

/// A random non-zero epoch from the OS-seeded hasher: a restarted back-end picks
/// another, so the AWS can tell that it lost the jobs it held.
pub fn random_epoch() -> Epoch {
    use std::hash::{BuildHasher, Hasher};
    loop {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(now().0);
        h.write_u32(std::process::id());
        let v = h.finish() as u16;
        if v != 0 {
            return Epoch(v);
        }
    }
}

/// Sends one datagram, retrying when a signal interrupts the call.
fn send(sock: &UdpSocket, bytes: &[u8], to: SocketAddr) -> std::io::Result<usize> {
    loop {
        match sock.send_to(bytes, to) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// The receive loop: datagrams only from `aws` start or touch jobs. Returns only if
/// the socket fails for good.
pub fn serve(cfg: &Config, part: Part, sock: &UdpSocket, aws: SocketAddr) {
    let name = format!("server{}", part.letter());
    let mut slots: Vec<JobSlot<SocketAddr, WINDOW>> =
        (0..cfg.backend_jobs).map(|_| JobSlot::new()).collect();
    let epoch = random_epoch();
    let mut backend = Backend::new(&mut slots, JOB_EXPIRY.as_micros() as u64, epoch);
    backend.accept_only_from(aws);
    crate::debug!(
        cfg,
        "{name}: epoch {:04x}; taking jobs only from the AWS at {aws}; {} job slots",
        epoch.0,
        cfg.backend_jobs
    );
    let me = Me {
        cfg,
        part,
        name: &name,
        sock,
        aws,
    };
    // One byte more than a datagram may hold, so that a longer one is seen whole (and
    // refused) rather than cut to a size that parses; or a whole offloaded batch.
    let mut buf = vec![0u8; GRO_BUFFER.max(MAX_DATAGRAM + 1)];
    let mut out = [0u8; MAX_REPLY];
    let _ = sock.set_read_timeout(Some(Duration::from_secs(1)));
    let mut failures = 0u32;
    loop {
        let (n, peer, segment) = match recv_batch(sock, &mut buf) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => {
                backend.expire(now());
                continue;
            }
            Err(e) => {
                // ICMP errors from earlier sends surface here on Linux: not fatal.
                failures += 1;
                crate::debug!(cfg, "{name}: receive error: {e}");
                if failures > 1000 {
                    eprintln!("{name}: giving up after repeated receive errors: {e}");
                    return;
                }
                continue;
            }
        };
        failures = 0;
        // The datagrams of an offloaded batch, each as if read alone.
        let t = now();
        let stride = datagram_size(&buf[..n], segment);
        let mut rest = &buf[..n];
        loop {
            let (datagram, after) = rest.split_at(stride.min(rest.len()));
            let handled = backend.handle_datagram(t, peer, datagram, &mut out);
            me.act(handled, &out, peer, datagram.len());
            rest = after;
            if rest.is_empty() {
                break;
            }
        }
    }
}

/// The size of each datagram in the bytes of one read: the size the kernel gave with
/// them, if any. Without it, bytes longer than any datagram of ours are a batch of
/// frames of the first one's length: so they are where receive offload is on but its
/// control message could not be read (qemu-user hands `UDP_GRO`'s on to a big-endian
/// guest unconverted, 1472 read as a negative size), and the kernel cuts every datagram
/// of a batch but the last to one size. Otherwise they are one datagram.
fn datagram_size(bytes: &[u8], segment: Option<usize>) -> usize {
    let first_frame = || {
        Header::parse(bytes)
            .and_then(|h| h.frame_len())
            .ok()
            .filter(|&len| len > 0 && len <= MAX_DATAGRAM)
    };
    match segment {
        Some(size) => size,
        None if bytes.len() > MAX_DATAGRAM => first_frame().unwrap_or(bytes.len()),
        None => bytes.len(),
    }
    .max(1)
}

/// A back-end's fixed facts, for acting on what its [`Backend`] decided.
struct Me<'a> {
    cfg: &'a Config,
    part: Part,
    name: &'a str,
    sock: &'a UdpSocket,
    aws: SocketAddr,
}

impl Me<'_> {
    /// Sends the reply the core wrote into `out`, prints Table 5's lines for a completed
    /// job, and logs the rest (with `OFFLOAD_LOG=debug`). `n`: the datagram's length.
    fn act(&self, handled: Handled, out: &[u8], peer: SocketAddr, n: usize) {
        let (cfg, name, part) = (self.cfg, self.name, self.part);
        match handled {
            Handled::Taken { reply } | Handled::Repeated { reply } | Handled::Busy { reply } => {
                if reply > 0 {
                    let _ = send(self.sock, &out[..reply], peer);
                }
            }
            Handled::Completed {
                reply,
                job,
                result,
                stats,
            } => {
                crate::debug!(
                    cfg,
                    "{name}: job {job} from {peer} complete: {} frames received, {} duplicates, {} out-of-window drops",
                    stats.frames,
                    stats.duplicates,
                    stats.out_of_window
                );
                say(&server_received(part, result.count));
                say(&server_reduced(part, result.op, result.value));
                match send(self.sock, &out[..reply], peer) {
                    Ok(_) => say(&server_sent(part)),
                    Err(e) => eprintln!("{name}: cannot send the result to {peer}: {e}"),
                }
                let allocs = crate::alloc::allocations();
                crate::debug!(cfg, "{name}: allocations so far: {allocs}");
            }
            Handled::Abandoned { job, stats } => {
                crate::debug!(
                    cfg,
                    "{name}: job {job} abandoned by the AWS ({} frames received, {} duplicates, {} out-of-window drops)",
                    stats.frames,
                    stats.duplicates,
                    stats.out_of_window
                );
            }
            Handled::Discarded(Discard::Stranger) => {
                let aws = self.aws;
                crate::debug!(
                    cfg,
                    "{name}: ignored {n} bytes from stranger {peer} (not the AWS at {aws})"
                );
            }
            Handled::Discarded(why) => {
                crate::debug!(
                    cfg,
                    "{name}: dropped {n} bytes from the AWS at {peer}: {why:?}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offload_core::wire::{emit_data, JobId};
    use offload_core::Op;

    #[test]
    fn a_batch_is_cut_at_the_size_given_else_at_its_first_frame() {
        let mut batch = vec![0u8; 3 * MAX_DATAGRAM];
        for seq in 0..3u32 {
            let at = seq as usize * MAX_DATAGRAM;
            let n = emit_data(&mut batch[at..], JobId(1), seq, Op::Sum, false, &[7; 182]);
            assert_eq!(n, Ok(MAX_DATAGRAM));
        }
        let n = emit_data(
            &mut [0u8; MAX_DATAGRAM],
            JobId(1),
            3,
            Op::Sum,
            true,
            &[7; 5],
        )
        .unwrap();
        let mut last = vec![0u8; n];
        emit_data(&mut last, JobId(1), 3, Op::Sum, true, &[7; 5]).unwrap();
        batch.extend_from_slice(&last);
        // The size the kernel gave wins.
        assert_eq!(datagram_size(&batch, Some(MAX_DATAGRAM)), MAX_DATAGRAM);
        assert_eq!(datagram_size(&batch, Some(100)), 100);
        // None given (or none readable): the first frame's length.
        assert_eq!(datagram_size(&batch, None), MAX_DATAGRAM);
        // One datagram of ours, or of anyone's up to that size, stays whole.
        assert_eq!(datagram_size(&last, None), last.len());
        assert_eq!(datagram_size(&batch[..MAX_DATAGRAM], None), MAX_DATAGRAM);
        // Longer bytes that do not start with a frame are one datagram (to be refused).
        assert_eq!(datagram_size(&[0xAB; 2000], None), 2000);
        assert_eq!(datagram_size(&[], None), 1);
    }
}
