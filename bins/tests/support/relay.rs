//! A fault-injecting UDP relay for tests and the bench: it sits between the AWS and one
//! back-end and drops, duplicates, delays (reorders) and truncates datagrams in both
//! directions, seeded so every run is reproducible. The programs are unchanged: the
//! AWS is simply told (by OFFLOAD_HOST_A/B/C in its own environment) that the back-end
//! lives at the relay's address, and each back-end (by OFFLOAD_HOST_AWS in its own) that
//! the AWS lives at the relay's `side` address: a back-end takes jobs only from the
//! AWS's address and port, so the relay sends to it from the AWS's port on a host of
//! its own ([`side_host`]).
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Percentages of datagrams each fault applies to, per direction.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub drop: u64,
    pub dup: u64,
    pub reorder: u64,
    pub truncate: u64,
}

impl Faults {
    pub const NONE: Faults = Faults {
        drop: 0,
        dup: 0,
        reorder: 0,
        truncate: 0,
    };
}

/// What the relay saw.
#[derive(Default)]
pub struct Stats {
    /// Data datagrams the AWS sent (first sends and retransmissions).
    pub data_sent: AtomicU64,
    /// Distinct (job, sequence) data frames among them.
    pub unique: Mutex<HashSet<(u32, u32)>>,
    /// Datagrams the back-end sent back.
    pub replies: AtomicU64,
    /// Datagrams dropped or truncated by the relay.
    pub faulted: AtomicU64,
}

impl Stats {
    /// Data datagrams sent per distinct data frame delivered.
    pub fn ratio(&self) -> f64 {
        let u = self.unique.lock().unwrap().len().max(1) as f64;
        self.data_sent.load(Ordering::SeqCst) as f64 / u
    }
}

pub struct Relay {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub stats: Arc<Stats>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

const MAX_HOLD_US: u64 = 3_000;
/// How long an idle relay sleeps before it looks whether it was told to stop.
const IDLE_WAIT: Duration = Duration::from_millis(20);
/// How often a relay holding datagrams looks whether one is due.
const HELD_WAIT: Duration = Duration::from_micros(500);

/// One direction of a relay link.
struct Direction {
    rx: UdpSocket,
    tx: UdpSocket,
    /// Where datagrams go (the AWS's address is learned from its first datagram).
    dest: Arc<Mutex<Option<SocketAddr>>>,
    /// Set to the sender of every datagram received (the AWS side only).
    learn: Option<Arc<Mutex<Option<SocketAddr>>>>,
    faults: Faults,
    seed: u64,
    from_aws: bool,
}

fn pump(dir: Direction, stop: Arc<AtomicBool>, stats: Arc<Stats>) {
    let Direction {
        rx,
        tx,
        dest,
        learn,
        faults,
        seed,
        from_aws,
    } = dir;
    let mut rng = Rng(seed | 1);
    let mut held: Vec<(Instant, Vec<u8>)> = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut wait = None;
    while !stop.load(Ordering::SeqCst) {
        // Holding datagrams, it looks every HELD_WAIT whether one is due; idle, it sleeps
        // in the kernel until a datagram comes (or IDLE_WAIT, to look at `stop`): a relay
        // that woke every 500 us whatever it held cost its host 12,000 wake-ups a second.
        let timeout = if held.is_empty() {
            IDLE_WAIT
        } else {
            HELD_WAIT
        };
        if wait != Some(timeout) {
            rx.set_read_timeout(Some(timeout)).unwrap();
            wait = Some(timeout);
        }
        if let Ok((n, src)) = rx.recv_from(&mut buf) {
            if let Some(l) = &learn {
                *l.lock().unwrap() = Some(src);
            }
            let d = &buf[..n];
            if from_aws {
                if n >= 16 && d[3] == 2 {
                    stats.data_sent.fetch_add(1, Ordering::SeqCst);
                    let job = u32::from_be_bytes(d[4..8].try_into().unwrap());
                    let seq = u32::from_be_bytes(d[8..12].try_into().unwrap());
                    stats.unique.lock().unwrap().insert((job, seq));
                }
            } else {
                stats.replies.fetch_add(1, Ordering::SeqCst);
            }
            if rng.percent(faults.drop) {
                stats.faulted.fetch_add(1, Ordering::SeqCst);
            } else {
                let mut d = d.to_vec();
                if rng.percent(faults.truncate) && !d.is_empty() {
                    stats.faulted.fetch_add(1, Ordering::SeqCst);
                    let keep = (rng.next() as usize) % d.len();
                    d.truncate(keep);
                }
                let copies = if rng.percent(faults.dup) { 2 } else { 1 };
                for _ in 0..copies {
                    let hold = if rng.percent(faults.reorder) {
                        rng.next() % MAX_HOLD_US
                    } else {
                        0
                    };
                    held.push((Instant::now() + Duration::from_micros(hold), d.clone()));
                }
            }
        }
        let now = Instant::now();
        if let Some(to) = *dest.lock().unwrap() {
            let mut i = 0;
            while i < held.len() {
                if held[i].0 <= now {
                    let (_, d) = held.swap_remove(i);
                    let _ = tx.send_to(&d, to);
                } else {
                    i += 1;
                }
            }
        }
    }
}

/// The loopback host relay `i` (0 for A, 1 for B, 2 for C) sends from, at the AWS's UDP
/// port: the back-end behind it runs with OFFLOAD_HOST_AWS set to this.
pub fn side_host(i: usize) -> String {
    format!("127.0.0.{}", 3 + i)
}

impl Relay {
    /// Relays between clients of `front` (the AWS) and the back-end at `back`, sending
    /// to the back-end from `side`.
    pub fn start(
        front: SocketAddr,
        back: SocketAddr,
        side: SocketAddr,
        faults: Faults,
        seed: u64,
    ) -> std::io::Result<Relay> {
        let front_sock = UdpSocket::bind(front)?;
        let side = UdpSocket::bind(side)?;
        for s in [&front_sock, &side] {
            offload_bins::net::tune_udp(s);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let aws = Arc::new(Mutex::new(None));
        let backend = Arc::new(Mutex::new(Some(back)));
        let forward = Direction {
            rx: front_sock.try_clone()?,
            tx: side.try_clone()?,
            dest: backend,
            learn: Some(aws.clone()),
            faults,
            seed,
            from_aws: true,
        };
        let back_dir = Direction {
            rx: side,
            tx: front_sock,
            dest: aws,
            learn: None,
            faults,
            seed: seed ^ 0xabcdef,
            from_aws: false,
        };
        let threads = [forward, back_dir]
            .map(|dir| {
                let (stop, stats) = (stop.clone(), stats.clone());
                std::thread::spawn(move || pump(dir, stop, stats))
            })
            .into();
        Ok(Relay {
            stop,
            threads,
            stats,
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
