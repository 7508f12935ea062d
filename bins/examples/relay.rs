//! The fault-injecting relay of the hostile-network tests, as a program for the bench:
//! three relays on RELAY_HOST (default 127.0.0.2) at the back-end ports of EE450_ID,
//! each forwarding to the back-end on 127.0.0.1, dropping RELAY_DROP percent of the
//! datagrams in each direction. Point an AWS at it with OFFLOAD_HOST_A/B/C=RELAY_HOST,
//! and start back-ends A, B and C with OFFLOAD_HOST_AWS=127.0.0.3, .4 and .5: the relay
//! sends to each from there, at the AWS's UDP port (back-ends take jobs only from it).
//! Prints "relay ready" once listening; runs until killed.
//! Each line read on stdin makes it print what the three relays have seen so far (the
//! bench's datagrams-per-frame figure): `stats data_sent=N unique=N replies=N faulted=N`.

#[path = "../tests/support/relay.rs"]
mod relay;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn main() -> std::process::ExitCode {
    let id = env_num("EE450_ID", 319);
    let drop = env_num("RELAY_DROP", 10);
    let host = std::env::var("RELAY_HOST").unwrap_or_else(|_| "127.0.0.2".into());
    let faults = relay::Faults {
        drop,
        ..relay::Faults::NONE
    };
    let mut relays = Vec::new();
    for (i, base) in [21000u64, 22000, 23000].into_iter().enumerate() {
        let port = base + id;
        let front: Result<SocketAddr, _> = format!("{host}:{port}").parse();
        let back: SocketAddr = ([127, 0, 0, 1], port as u16).into();
        let side: Result<SocketAddr, _> = format!("{}:{}", relay::side_host(i), 24000 + id).parse();
        match front.map_err(|e| e.to_string()).and_then(|f| {
            let side = side.map_err(|e| e.to_string())?;
            relay::Relay::start(f, back, side, faults, 1 + i as u64).map_err(|e| e.to_string())
        }) {
            Ok(r) => relays.push(r),
            Err(e) => {
                eprintln!("relay: cannot listen on {host}:{port}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    println!("relay ready");
    for line in std::io::stdin().lines() {
        if line.is_err() {
            break;
        }
        let (mut sent, mut unique, mut replies, mut faulted) = (0, 0, 0, 0);
        for r in &relays {
            sent += r.stats.data_sent.load(Ordering::SeqCst);
            unique += r.stats.unique.lock().map(|u| u.len()).unwrap_or(0);
            replies += r.stats.replies.load(Ordering::SeqCst);
            faulted += r.stats.faulted.load(Ordering::SeqCst);
        }
        println!("stats data_sent={sent} unique={unique} replies={replies} faulted={faulted}");
    }
    // stdin closed (e.g. started in the background): relay until killed.
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
