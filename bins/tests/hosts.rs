//! The five programs on five separate hosts: network namespaces joined by veth pairs
//! to a bridge in a hub namespace, over IPv4 addresses, over IPv6 host names (each
//! namespace's /etc/netns hosts file maps them to fd00:231::/64), and over names that
//! mix the families (back-ends of both at once behind one AWS). Needs
//! root (CI runs as root); elsewhere, or on a kernel without IPv6, it says why it
//! skipped. Everything it creates lives in its own namespaces and is deleted.
mod support;

use std::process::Command;
use std::time::Duration;
use support::*;

/// Namespaces created by this test, deleted on drop (which also removes their links),
/// with their /etc/netns/<name> directories.
struct Netns(Vec<String>);

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
        }
    }
}

/// How one run addresses its hosts: IPv4 literals; IPv6 host names; or every host with
/// both families and names that mix them (the AWS's name has both, A and C only IPv6,
/// B only IPv4), so the AWS's one UDP socket must carry both.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Net {
    V4,
    V6,
    Mixed,
}

/// Host k's IPv4 address, 10.231.0.(k+1)/24, and IPv6 address, fd00:231::(k+1)/64.
fn v4(k: usize) -> String {
    format!("10.231.0.{}", k + 1)
}
fn v6(k: usize) -> String {
    format!("fd00:231::{}", k + 1)
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

/// Builds hub + hosts; host k gets [`v4`]`(k)` and/or [`v6`]`(k)`. Errors say which
/// step failed; the second member is true when namespaces work but IPv6 does not.
fn build(tag: &str, hosts: &[&str], net: Net) -> Result<Netns, (String, bool)> {
    let ip = |args: &[&str]| ip(args).map_err(|e| (e, false));
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
        if net != Net::V6 {
            let a = format!("{}/24", v4(k));
            ip(&["-n", &ns, "addr", "add", &a, "dev", &host_if])?;
        }
        if net != Net::V4 {
            // nodad: usable at once, without duplicate address detection's wait.
            let a = format!("{}/64", v6(k));
            ip(&["-n", &ns, "-6", "addr", "add", &a, "dev", &host_if, "nodad"])
                .map_err(|(e, _)| (e, true))?;
        }
        ip(&["-n", &ns, "link", "set", &host_if, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
    }
    Ok(made)
}

/// The host settings (AWS, A, B, C) for `net`: IPv4 literals, or host names that each
/// namespace resolves from its own hosts file (`ip netns exec` mounts
/// /etc/netns/<name>/hosts over /etc/hosts), so names resolving to IPv6 are tested too.
fn host_settings(netns: &Netns, net: Net) -> Result<[String; 4], String> {
    if net == Net::V4 {
        return Ok([0, 1, 2, 3].map(v4));
    }
    let names = ["aws", "a", "b", "c"].map(|h| format!("{h}.offload.test"));
    let mut hosts = String::new();
    for (k, name) in names.iter().enumerate() {
        let (with_v4, with_v6) = match net {
            Net::V6 => (false, true),
            // The AWS's name has both families; A and C only IPv6, B only IPv4.
            _ => (k == 0 || k == 2, k != 2),
        };
        if with_v4 {
            hosts.push_str(&format!("{} {name}\n", v4(k)));
        }
        if with_v6 {
            hosts.push_str(&format!("{} {name}\n", v6(k)));
        }
    }
    for ns in &netns.0 {
        let dir = format!("/etc/netns/{ns}");
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(format!("{dir}/hosts"), &hosts))
            .map_err(|e| format!("cannot write {dir}/hosts: {e}"))?;
    }
    Ok(names)
}

fn five_programs_on_five_hosts(net: Net) {
    let test = format!("five_programs_on_five_hosts({net:?})");
    let tag = format!(
        "ofl{}{}",
        std::process::id() % 100_000,
        match net {
            Net::V4 => "",
            Net::V6 => "s",
            Net::Mixed => "m",
        }
    );
    let hosts = ["aws", "a", "b", "c", "cl"];
    let netns = match build(&tag, &hosts, net) {
        Ok(n) => n,
        Err((e, true)) => {
            eprintln!("SKIPPED {test}: the kernel lacks IPv6 here ({e})");
            return;
        }
        Err((e, false)) => {
            eprintln!("SKIPPED {test}: cannot create network namespaces here ({e}); needs root and iproute2");
            return;
        }
    };
    let settings = host_settings(&netns, net).unwrap_or_else(|e| panic!("{e}"));
    let envs: Vec<(String, String)> = [
        ("EE450_ID", "450"),
        ("OFFLOAD_HOST_AWS", settings[0].as_str()),
        ("OFFLOAD_HOST_A", settings[1].as_str()),
        ("OFFLOAD_HOST_B", settings[2].as_str()),
        ("OFFLOAD_HOST_C", settings[3].as_str()),
        ("OFFLOAD_TIMEOUT_MS", "5000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    // With OFFLOAD_LOG=debug the AWS names the back-end addresses it uses, and the
    // client the AWS address it reached.
    let mut debug_envs = envs.clone();
    debug_envs.push(("OFFLOAD_LOG".into(), "debug".into()));
    let dir = tempdir::TempDir::new("hosts");
    let procs: Vec<Proc> = [
        ("serverA", "a"),
        ("serverB", "b"),
        ("serverC", "c"),
        ("aws", "aws"),
    ]
    .iter()
    .map(|(prog, h)| {
        let envs = if *prog == "aws" { &debug_envs } else { &envs };
        Proc::spawn_in(Some(&format!("{tag}{h}")), prog, envs, dir.path())
    })
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
            &debug_envs,
            Duration::from_secs(60),
        );
        assert_eq!(
            run.stdout,
            client_lines(f, xs.len(), &expect(f, &xs)),
            "{}",
            run.stderr
        );
        // The client prefers IPv4 when the AWS's name has both.
        let aws = match net {
            Net::V6 => format!("[{}]:25450", v6(0)),
            _ => format!("{}:25450", v4(0)),
        };
        assert!(
            run.stderr.contains(&format!(" to {aws}")),
            "the client did not reach the AWS at {aws}: {}",
            run.stderr
        );
    }
    // The AWS heard each back-end from its own host, and reports its own ports.
    let aws = procs[3].wait_lines(1 + 4 * 9, Duration::from_secs(10));
    assert!(aws.contains(
        &"The AWS has received 20000 numbers from the client using TCP over port 25450".to_string()
    ));
    let parts = thirds(&xs);
    for (i, letter) in ["A", "B", "C"].iter().enumerate() {
        assert!(aws.contains(&format!(
            "The AWS received reduction result of SUM from Backend-Server {letter} using UDP over port 24450 and it is {}",
            expect("sum", parts[i])
        )));
    }
    // Each back-end over its own family: IPv4 ones as the dual-stack socket names them.
    let backends = match net {
        Net::V4 => format!("[{}:21450, {}:22450, {}:23450]", v4(1), v4(2), v4(3)),
        Net::V6 => format!("[[{}]:21450, [{}]:22450, [{}]:23450]", v6(1), v6(2), v6(3)),
        Net::Mixed => format!(
            "[[{}]:21450, [::ffff:{}]:22450, [{}]:23450]",
            v6(1),
            v4(2),
            v6(3)
        ),
    };
    let errs = procs[3].errs();
    assert!(
        errs.iter()
            .any(|l| l.contains(&format!("back-ends {backends}"))),
        "the AWS did not use back-ends {backends}: {errs:?}"
    );
    drop(procs);
    drop(netns);
}

#[test]
fn five_programs_on_five_hosts_ipv4() {
    five_programs_on_five_hosts(Net::V4);
}

#[test]
fn five_programs_on_five_hosts_ipv6_names() {
    five_programs_on_five_hosts(Net::V6);
}

#[test]
fn five_programs_on_five_hosts_ipv4_and_ipv6_mixed() {
    five_programs_on_five_hosts(Net::Mixed);
}
