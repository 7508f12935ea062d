//! Back-end servers A, B and C: one UDP socket, one thread, many jobs at once.
//!
//! All protocol decisions are the core's [`Backend`]; this loop only moves datagrams
//! between the socket and it, prints the Table 4-6 lines, and expires silent jobs.

use crate::config::Config;
use crate::messages::{say, server_boot, server_received, server_reduced, server_sent};
use crate::net::{is_timeout, now, tune_udp};
use offload_core::backend::{Backend, Handled, JobSlot};
use offload_core::split::Part;
use offload_core::wire::MAX_DATAGRAM;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

/// Frames a back-end buffers per job beyond the next expected one (shared with the AWS).
pub const WINDOW: usize = offload_core::WINDOW;
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
    let addr = match cfg.backend_addr(part) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sock = match UdpSocket::bind(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "{name}: cannot bind UDP {addr}: {e} (is another server{} still running?)",
                part.letter()
            );
            return ExitCode::FAILURE;
        }
    };
    let granted = tune_udp(&sock);
    crate::debug!(cfg, "{name}: UDP receive buffer {granted} bytes");
    say(&server_boot(part, cfg.backend_port(part)));
    serve(&cfg, part, &sock);
    ExitCode::FAILURE
}

/// The receive loop. Returns only if the socket fails for good.
pub fn serve(cfg: &Config, part: Part, sock: &UdpSocket) {
    let mut slots: Vec<JobSlot<SocketAddr, WINDOW>> =
        (0..cfg.backend_jobs).map(|_| JobSlot::default()).collect();
    let mut backend = Backend::new(&mut slots, JOB_EXPIRY.as_micros() as u64);
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut out = vec![0u8; MAX_DATAGRAM];
    let _ = sock.set_read_timeout(Some(Duration::from_secs(1)));
    let mut failures = 0u32;
    loop {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if is_timeout(&e) => {
                backend.expire(now());
                continue;
            }
            Err(e) => {
                // ICMP errors from earlier sends surface here on Linux: not fatal.
                failures += 1;
                crate::debug!(cfg, "server{}: receive error: {e}", part.letter());
                if failures > 1000 {
                    eprintln!(
                        "server{}: giving up after repeated receive errors: {e}",
                        part.letter()
                    );
                    return;
                }
                continue;
            }
        };
        failures = 0;
        let datagram = &buf[..n];
        match backend.handle_datagram(now(), peer, datagram, &mut out) {
            Handled::Ok { reply } | Handled::Busy { reply } => {
                if reply > 0 {
                    let _ = sock.send_to(&out[..reply], peer);
                }
            }
            Handled::Completed { reply, job, result } => {
                crate::debug!(
                    cfg,
                    "server{}: job {job} from {peer} complete",
                    part.letter()
                );
                say(&server_received(part, result.count));
                say(&server_reduced(part, result.op, result.value));
                match sock.send_to(&out[..reply], peer) {
                    Ok(_) => say(&server_sent(part)),
                    Err(e) => eprintln!(
                        "server{}: cannot send the result to {peer}: {e}",
                        part.letter()
                    ),
                }
                let allocs = crate::alloc::allocations();
                crate::debug!(cfg, "server{}: allocations so far: {allocs}", part.letter());
            }
            Handled::Dropped(why) => {
                crate::debug!(
                    cfg,
                    "server{}: dropped {n} bytes from {peer}: {why:?}",
                    part.letter()
                );
            }
        }
    }
}
