//! Configuration from the environment: the assignment allows no command-line
//! arguments except the client's function name.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `EE450_ID` | last three digits of the student ID: the port offset | `319` |
//! | `OFFLOAD_HOST_AWS`, `OFFLOAD_HOST_A`, `_B`, `_C` | host of each server | `localhost` |
//! | `OFFLOAD_TIMEOUT_MS` | how long a silent back-end may keep a job waiting | `10000` |
//! | `OFFLOAD_IDLE_MS` | how long the AWS waits on a silent client | `30000` |
//! | `OFFLOAD_REQUEST_TIMEOUT_MS` | how long a new connection may take to send its request | `3000` |
//! | `OFFLOAD_MAX_JOBS` | jobs the AWS serves at once | `64` |
//! | `OFFLOAD_JOBS` | jobs each back-end holds at once | `32` |
//! | `OFFLOAD_GSO` | `0` sends one datagram per system call (no segmentation offload) | on |
//! | `OFFLOAD_LOG` | `debug` for diagnostics on stderr | off |

use offload_core::split::Part;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The static ports of Table 3 of the assignment, as offsets added to the ID.
pub mod ports {
    /// Back-end server A, UDP.
    pub const SERVER_A: u16 = 21000;
    /// Back-end server B, UDP.
    pub const SERVER_B: u16 = 22000;
    /// Back-end server C, UDP.
    pub const SERVER_C: u16 = 23000;
    /// AWS, UDP (talks to the back-ends).
    pub const AWS_UDP: u16 = 24000;
    /// AWS, TCP (talks to the client).
    pub const AWS_TCP: u16 = 25000;
}

/// A configuration problem, reported on stderr before anything starts.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything the environment decides.
#[derive(Clone, Debug)]
pub struct Config {
    /// Last three digits of the student ID, 0 to 999.
    pub id: u16,
    /// Host names of the AWS and of servers A, B, C.
    pub host_aws: String,
    /// Host of each back-end, in part order.
    pub host_backend: [String; 3],
    /// Longest a back-end may owe an answer.
    pub backend_timeout: Duration,
    /// Longest the AWS waits on a silent client.
    pub idle_timeout: Duration,
    /// Longest a new connection may wait before sending its request.
    pub request_timeout: Duration,
    /// Concurrent jobs the AWS accepts.
    pub max_jobs: usize,
    /// Jobs a back-end holds in flight at once.
    pub backend_jobs: usize,
    /// Use UDP segmentation offload where the kernel has it.
    pub gso: bool,
    /// Diagnostics on stderr.
    pub debug: bool,
}

fn env_ms(name: &str, default: u64) -> Result<Duration, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(Duration::from_millis(default)),
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis)
            .ok_or_else(|| {
                ConfigError(format!(
                    "{name}={v:?} is not a positive number of milliseconds"
                ))
            }),
    }
}

fn env_count(name: &str, default: usize) -> Result<usize, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| (1..=4096).contains(&n))
            .ok_or_else(|| ConfigError(format!("{name}={v:?} must be a number from 1 to 4096"))),
    }
}

fn env_host(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

impl Config {
    /// Reads the environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable that is wrong.
    pub fn from_env() -> Result<Config, ConfigError> {
        let id = match std::env::var("EE450_ID") {
            Err(_) => 319,
            Ok(v) => {
                let t = v.trim();
                match t.parse::<u16>() {
                    Ok(n) if n <= 999 && !t.is_empty() && t.len() <= 3 => n,
                    _ => {
                        return Err(ConfigError(format!(
                            "EE450_ID={v:?} must be the last three digits of the student ID (000 to 999)"
                        )))
                    }
                }
            }
        };
        let max_jobs = env_count("OFFLOAD_MAX_JOBS", 64)?;
        let backend_jobs = env_count("OFFLOAD_JOBS", 32)?;
        Ok(Config {
            id,
            host_aws: env_host("OFFLOAD_HOST_AWS"),
            host_backend: [
                env_host("OFFLOAD_HOST_A"),
                env_host("OFFLOAD_HOST_B"),
                env_host("OFFLOAD_HOST_C"),
            ],
            backend_timeout: env_ms("OFFLOAD_TIMEOUT_MS", 10_000)?,
            idle_timeout: env_ms("OFFLOAD_IDLE_MS", 30_000)?,
            request_timeout: env_ms("OFFLOAD_REQUEST_TIMEOUT_MS", 3_000)?,
            max_jobs,
            backend_jobs,
            gso: std::env::var("OFFLOAD_GSO").map_or(true, |v| v.trim() != "0"),
            debug: std::env::var("OFFLOAD_LOG").is_ok_and(|v| v.eq_ignore_ascii_case("debug")),
        })
    }

    /// UDP port of back-end `part`.
    pub fn backend_port(&self, part: Part) -> u16 {
        let base = match part {
            Part::A => ports::SERVER_A,
            Part::B => ports::SERVER_B,
            Part::C => ports::SERVER_C,
        };
        base + self.id
    }

    /// The AWS's UDP port.
    pub fn aws_udp_port(&self) -> u16 {
        ports::AWS_UDP + self.id
    }

    /// The AWS's TCP port.
    pub fn aws_tcp_port(&self) -> u16 {
        ports::AWS_TCP + self.id
    }

    /// Socket address of back-end `part`.
    ///
    /// # Errors
    /// When its host name does not resolve.
    pub fn backend_addr(&self, part: Part) -> Result<SocketAddr, ConfigError> {
        resolve(&self.host_backend[part.index()], self.backend_port(part))
    }

    /// The AWS's UDP address.
    ///
    /// # Errors
    /// When its host name does not resolve.
    pub fn aws_udp_addr(&self) -> Result<SocketAddr, ConfigError> {
        resolve(&self.host_aws, self.aws_udp_port())
    }

    /// The AWS's TCP address.
    ///
    /// # Errors
    /// When its host name does not resolve.
    pub fn aws_tcp_addr(&self) -> Result<SocketAddr, ConfigError> {
        resolve(&self.host_aws, self.aws_tcp_port())
    }
}

/// Resolves `host:port`, preferring IPv4 (the servers bind where their name resolves).
///
/// # Errors
/// When the name does not resolve.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| ConfigError(format!("cannot resolve host {host:?}: {e}")))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| ConfigError(format!("host {host:?} has no address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_id(id: u16) -> Config {
        Config {
            id,
            host_aws: "localhost".into(),
            host_backend: ["localhost".into(), "localhost".into(), "localhost".into()],
            backend_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            max_jobs: 1,
            backend_jobs: 1,
            gso: true,
            debug: false,
        }
    }

    #[test]
    fn ports_follow_table_3() {
        let c = with_id(319);
        assert_eq!(c.backend_port(Part::A), 21319);
        assert_eq!(c.backend_port(Part::B), 22319);
        assert_eq!(c.backend_port(Part::C), 23319);
        assert_eq!(c.aws_udp_port(), 24319);
        assert_eq!(c.aws_tcp_port(), 25319);
        assert_eq!(with_id(0).aws_tcp_port(), 25000);
        assert_eq!(with_id(999).backend_port(Part::A), 21999);
    }

    #[test]
    fn localhost_resolves_to_ipv4_loopback() {
        let a = resolve("localhost", 21319).unwrap();
        assert_eq!(a.to_string(), "127.0.0.1:21319");
        assert!(resolve("no-such-host.invalid", 1).is_err());
    }
}
