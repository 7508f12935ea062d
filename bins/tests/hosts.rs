//! The five programs on five separate hosts: network namespaces joined by veth pairs
//! to a bridge in a hub namespace. Needs root (CI runs as root); elsewhere it says why
//! it skipped. Everything it creates lives in its own namespaces and is deleted.
mod support;

use std::process::Command;
use std::time::Duration;
use support::*;

/// Namespaces created by this test, deleted on drop (which also removes their links).
struct Netns(Vec<String>);

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Builds hub + hosts; host k gets 10.231.0.(k+1)/24.
fn build(tag: &str, hosts: &[&str]) -> Result<Netns, String> {
    let hub = format!("{tag}hub");
    let mut made = Netns(Vec::new());
    ip(&["netns", "add", &hub])?;
    made.0.push(hub.clone());
    ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", &hub, "link", "set", "br0", "up"])?;
    for (k, h) in hosts.iter().enumerate() {
        let ns = format!("{tag}{h}");
        ip(&["netns", "add", &ns])?;
        made.0.push(ns.clone());
        let (host_if, hub_if) = (format!("eth{k}"), format!("port{k}"));
        ip(&[
            "link", "add", &host_if, "netns", &ns, "type", "veth", "peer", "name", &hub_if,
            "netns", &hub,
        ])?;
        ip(&["-n", &hub, "link", "set", &hub_if, "master", "br0"])?;
        ip(&["-n", &hub, "link", "set", &hub_if, "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("10.231.0.{}/24", k + 1),
            "dev",
            &host_if,
        ])?;
        ip(&["-n", &ns, "link", "set", &host_if, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
    }
    Ok(made)
}

#[test]
fn five_programs_on_five_hosts() {
    let tag = format!("ofl{}", std::process::id() % 100_000);
    let hosts = ["aws", "a", "b", "c", "cl"];
    let netns = match build(&tag, &hosts) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("SKIPPED five_programs_on_five_hosts: cannot create network namespaces here ({e}); needs root and iproute2");
            return;
        }
    };
    let envs: Vec<(String, String)> = [
        ("EE450_ID", "450"),
        ("OFFLOAD_HOST_AWS", "10.231.0.1"),
        ("OFFLOAD_HOST_A", "10.231.0.2"),
        ("OFFLOAD_HOST_B", "10.231.0.3"),
        ("OFFLOAD_HOST_C", "10.231.0.4"),
        ("OFFLOAD_TIMEOUT_MS", "5000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let dir = tempdir::TempDir::new("hosts");
    let procs: Vec<Proc> = [
        ("serverA", "a"),
        ("serverB", "b"),
        ("serverC", "c"),
        ("aws", "aws"),
    ]
    .iter()
    .map(|(prog, h)| Proc::spawn_in(Some(&format!("{tag}{h}")), prog, &envs, dir.path()))
    .collect();
    for p in &procs {
        p.wait_lines(1, Duration::from_secs(10));
    }
    let mut r = Rng(450);
    let xs: Vec<i64> = (0..20_000).map(|_| r.next() as i64).collect();
    write_file(dir.path(), &csv(&xs));
    let client_ns = format!("{tag}cl");
    for f in FUNCS {
        let run = run_client_in(
            Some(&client_ns),
            dir.path(),
            &[f],
            &envs,
            Duration::from_secs(60),
        );
        assert_eq!(
            run.stdout,
            client_lines(f, xs.len(), &expect(f, &xs)),
            "{}",
            run.stderr
        );
    }
    // The AWS heard each back-end from its own host, and reports its own ports.
    let aws = procs[3].wait_lines(1 + 4 * 9, Duration::from_secs(10));
    assert!(aws.contains(
        &"The AWS has received 20000 numbers from the client using TCP over port 25450".to_string()
    ));
    let parts = thirds(&xs);
    assert!(aws.contains(&format!(
        "The AWS received reduction result of SUM from Backend-Server C using UDP over port 24450 and it is {}",
        expect("sum", parts[2])
    )));
    drop(procs);
    drop(netns);
}
