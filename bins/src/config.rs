//! Configuration from the environment: the assignment allows no command-line
//! arguments except the client's function name.
//!
//! Every value has a range; a value outside it, or not written as the table says, stops
//! the program at start-up with a message naming the variable and the range (never a
//! silent clamp or wrap).
//!
//! | variable | meaning | accepted | default |
//! | --- | --- | --- | --- |
//! | `EE450_ID` | last three digits of the student ID: the port offset | exactly three digits, `000` to `999` | [`DEFAULT_ID`] (`319`) |
//! | `OFFLOAD_HOST_AWS`, `OFFLOAD_HOST_A`, `_B`, `_C` | host of each server | a host name or address; empty means the default | `localhost` |
//! | `OFFLOAD_TIMEOUT_MS` | how long a silent back-end may keep a job waiting; how long the client waits for the AWS to take its data | `1` to `3600000` | `10000` |
//! | `OFFLOAD_IDLE_MS` | how long the AWS waits on a silent client | `1` to `3600000` | `30000` |
//! | `OFFLOAD_REQUEST_TIMEOUT_MS` | how long the AWS waits for a new connection's request | `1` to `3600000` | `3000` |
//! | `OFFLOAD_MAX_JOBS` | jobs the AWS serves at once | `1` to `4096` | `64` |
//! | `OFFLOAD_JOBS` | job slots of each back-end (live jobs plus kept results): twice `OFFLOAD_MAX_JOBS`, so every admitted job finds a slot | `1` to `4096` | `128` |
//! | `OFFLOAD_GSO` | `0`: the AWS sends one datagram per system call (no segmentation offload) and the back-ends read one per call (no receive offload) | `0` or `1` | `1` |
//! | `OFFLOAD_LOG` | `debug` for diagnostics on stderr | `debug`, `off` or empty | off |

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
    /// Longest the AWS waits for a new connection's request frame.
    pub request_timeout: Duration,
    /// Concurrent jobs the AWS accepts.
    pub max_jobs: usize,
    /// Jobs a back-end holds in flight at once.
    pub backend_jobs: usize,
    /// Use UDP segmentation offload (AWS) and receive offload (back-ends) where the
    /// kernel has them.
    pub gso: bool,
    /// Diagnostics on stderr.
    pub debug: bool,
}

/// The student ID used when `EE450_ID` is not set: the assignment's example. The
/// submitting student writes the last three digits of their own ID here.
pub const DEFAULT_ID: u16 = 319;

/// Longest accepted time setting, in milliseconds (one hour): far beyond any real
/// need, and small enough that no time computed from it can overflow.
pub const MAX_MS: u64 = 3_600_000;
/// Largest accepted job count for the AWS and for each back-end.
pub const MAX_COUNT: usize = 4096;

/// Reads a millisecond setting in `1..=MAX_MS`.
fn env_ms(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
) -> Result<Duration, ConfigError> {
    let Some(v) = get(name) else {
        return Ok(Duration::from_millis(default));
    };
    digits(&v)
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|ms| (1..=MAX_MS).contains(ms))
        .map(Duration::from_millis)
        .ok_or_else(|| {
            ConfigError(format!(
                "{name}={v:?} must be a whole number of milliseconds from 1 to {MAX_MS}"
            ))
        })
}

/// Reads a count setting in `1..=MAX_COUNT`.
fn env_count(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: usize,
) -> Result<usize, ConfigError> {
    let Some(v) = get(name) else {
        return Ok(default);
    };
    digits(&v)
        .and_then(|t| t.parse::<usize>().ok())
        .filter(|n| (1..=MAX_COUNT).contains(n))
        .ok_or_else(|| {
            ConfigError(format!(
                "{name}={v:?} must be a whole number from 1 to {MAX_COUNT}"
            ))
        })
}

/// `v` without surrounding blanks when what is left is all ASCII digits (no sign).
fn digits(v: &str) -> Option<&str> {
    let t = v.trim();
    (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then_some(t)
}

/// Reads a switch: `0` or `1`.
fn env_flag(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(name).as_deref().map(str::trim) {
        None => Ok(default),
        Some("1") => Ok(true),
        Some("0") => Ok(false),
        Some(v) => Err(ConfigError(format!("{name}={v:?} must be 0 or 1"))),
    }
}

fn env_host(get: &impl Fn(&str) -> Option<String>, name: &str) -> Result<String, ConfigError> {
    match get(name) {
        None => Ok("localhost".to_string()),
        Some(h) if h.trim().is_empty() => Ok("localhost".to_string()),
        Some(h)
            if h.trim()
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) =>
        {
            Err(ConfigError(format!(
                "{name}={h:?} must be one host name or address"
            )))
        }
        Some(h) => Ok(h.trim().to_string()),
    }
}

/// Reads `EE450_ID`: exactly three ASCII digits.
fn env_id(get: &impl Fn(&str) -> Option<String>) -> Result<u16, ConfigError> {
    let Some(v) = get("EE450_ID") else {
        return Ok(DEFAULT_ID);
    };
    match v.as_bytes() {
        [a, b, c] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
            Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => Err(ConfigError(format!(
            "EE450_ID={v:?} must be the last three digits of the student ID, written as three digits (000 to 999)"
        ))),
    }
}

impl Config {
    /// Reads the environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable that is wrong and what it accepts.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Reads the settings from `get` (the environment, or a test's table).
    ///
    /// # Errors
    /// As [`Config::from_env`].
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let debug = match get("OFFLOAD_LOG") {
            None => false,
            Some(v) if v.trim().eq_ignore_ascii_case("debug") => true,
            Some(v) if v.trim().is_empty() || v.trim().eq_ignore_ascii_case("off") => false,
            Some(v) => {
                return Err(ConfigError(format!(
                    "OFFLOAD_LOG={v:?} must be debug, off or empty"
                )))
            }
        };
        Ok(Config {
            id: env_id(&get)?,
            host_aws: env_host(&get, "OFFLOAD_HOST_AWS")?,
            host_backend: [
                env_host(&get, "OFFLOAD_HOST_A")?,
                env_host(&get, "OFFLOAD_HOST_B")?,
                env_host(&get, "OFFLOAD_HOST_C")?,
            ],
            backend_timeout: env_ms(&get, "OFFLOAD_TIMEOUT_MS", 10_000)?,
            idle_timeout: env_ms(&get, "OFFLOAD_IDLE_MS", 30_000)?,
            request_timeout: env_ms(&get, "OFFLOAD_REQUEST_TIMEOUT_MS", 3_000)?,
            max_jobs: env_count(&get, "OFFLOAD_MAX_JOBS", 64)?,
            backend_jobs: env_count(&get, "OFFLOAD_JOBS", 128)?,
            gso: env_flag(&get, "OFFLOAD_GSO", true)?,
            debug,
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

    /// The AWS's UDP address as the back-end bound at `own` sees it: of `own`'s family
    /// when the AWS's host has an address of it (a name with IPv4 and IPv6 addresses),
    /// because the AWS reaches each back-end over that back-end's family.
    ///
    /// # Errors
    /// When its host name does not resolve.
    pub fn aws_udp_addr_seen_from(&self, own: SocketAddr) -> Result<SocketAddr, ConfigError> {
        resolve_preferring(&self.host_aws, self.aws_udp_port(), own.is_ipv6())
    }

    /// The AWS's TCP address.
    ///
    /// # Errors
    /// When its host name does not resolve.
    pub fn aws_tcp_addr(&self) -> Result<SocketAddr, ConfigError> {
        resolve(&self.host_aws, self.aws_tcp_port())
    }
}

/// Resolves `host:port`: `host` is a name, an IPv4 address, or an IPv6 address bare
/// (`::1`) or in brackets (`[::1]`). A name with addresses of both families resolves to
/// its IPv4 one (`localhost` is 127.0.0.1), a name with only IPv6 ones to the first.
/// The servers bind where their host resolves.
///
/// # Errors
/// When the name does not resolve.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    resolve_preferring(host, port, false)
}

/// [`resolve`], preferring IPv6 addresses over IPv4 ones when `v6` is true.
///
/// # Errors
/// When the name does not resolve.
pub fn resolve_preferring(host: &str, port: u16, v6: bool) -> Result<SocketAddr, ConfigError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| ConfigError(format!("cannot resolve host {host:?}: {e}")))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv6() == v6)
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

    fn lookup(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        lookup(pairs).expect_err("should be refused").0
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = lookup(&[]).unwrap();
        assert_eq!(c.id, DEFAULT_ID);
        assert_eq!(c.backend_timeout, Duration::from_millis(10_000));
        assert_eq!(c.idle_timeout, Duration::from_millis(30_000));
        assert_eq!(c.request_timeout, Duration::from_millis(3_000));
        assert_eq!(
            (c.max_jobs, c.backend_jobs, c.gso, c.debug),
            (64, 128, true, false)
        );
        assert_eq!(c.host_backend[1], "localhost");
    }

    #[test]
    fn student_id_is_exactly_three_digits() {
        assert_eq!(lookup(&[("EE450_ID", "007")]).unwrap().id, 7);
        assert_eq!(lookup(&[("EE450_ID", "999")]).unwrap().id, 999);
        for bad in [
            "+10", "10", "1000", "12345", " 10", "-01", "1e2", "", "abc", "٣١٩",
        ] {
            let e = error(&[("EE450_ID", bad)]);
            assert!(
                e.starts_with(&format!("EE450_ID={bad:?} must be the last three digits")),
                "{bad}: {e}"
            );
            assert!(e.ends_with("(000 to 999)"), "{e}");
        }
    }

    #[test]
    fn times_have_a_range_and_never_wrap() {
        for name in [
            "OFFLOAD_TIMEOUT_MS",
            "OFFLOAD_IDLE_MS",
            "OFFLOAD_REQUEST_TIMEOUT_MS",
        ] {
            let max = MAX_MS.to_string();
            assert!(lookup(&[(name, "1")]).is_ok());
            assert!(lookup(&[(name, max.as_str())]).is_ok());
            let over = (MAX_MS + 1).to_string();
            for bad in [
                "0",
                "18446744073709552",
                "18446744073709551616",
                over.as_str(),
                "-5",
                "+5",
                "1.5",
                "10s",
                "",
            ] {
                assert_eq!(
                    error(&[(name, bad)]),
                    format!(
                        "{name}={bad:?} must be a whole number of milliseconds from 1 to 3600000"
                    )
                );
            }
        }
        // The largest accepted time, in microseconds, fits a u64 many times over.
        assert!(u64::try_from(Duration::from_millis(MAX_MS).as_micros()).is_ok());
    }

    #[test]
    fn counts_flags_and_log_have_a_range() {
        assert_eq!(
            lookup(&[("OFFLOAD_MAX_JOBS", "4096")]).unwrap().max_jobs,
            4096
        );
        for bad in ["0", "4097", "-1", "+3", "x"] {
            for name in ["OFFLOAD_MAX_JOBS", "OFFLOAD_JOBS"] {
                assert_eq!(
                    error(&[(name, bad)]),
                    format!("{name}={bad:?} must be a whole number from 1 to 4096")
                );
            }
        }
        assert!(!lookup(&[("OFFLOAD_GSO", "0")]).unwrap().gso);
        assert!(lookup(&[("OFFLOAD_GSO", "1")]).unwrap().gso);
        assert_eq!(
            error(&[("OFFLOAD_GSO", "no")]),
            "OFFLOAD_GSO=\"no\" must be 0 or 1"
        );
        assert!(lookup(&[("OFFLOAD_LOG", "DEBUG")]).unwrap().debug);
        assert!(!lookup(&[("OFFLOAD_LOG", "")]).unwrap().debug);
        assert_eq!(
            error(&[("OFFLOAD_LOG", "verbose")]),
            "OFFLOAD_LOG=\"verbose\" must be debug, off or empty"
        );
        assert_eq!(
            error(&[("OFFLOAD_HOST_B", "a b")]),
            "OFFLOAD_HOST_B=\"a b\" must be one host name or address"
        );
    }

    #[test]
    fn localhost_resolves_to_ipv4_loopback() {
        let a = resolve("localhost", 21319).unwrap();
        assert_eq!(a.to_string(), "127.0.0.1:21319");
        assert!(resolve("no-such-host.invalid", 1).is_err());
    }

    #[test]
    fn ipv6_literals_bare_or_bracketed() {
        for host in ["::1", "[::1]"] {
            assert_eq!(resolve(host, 21319).unwrap().to_string(), "[::1]:21319");
        }
        assert_eq!(
            resolve("[fd00:231::2]", 22319).unwrap().to_string(),
            "[fd00:231::2]:22319"
        );
        assert_eq!(resolve("10.0.0.1", 1).unwrap().to_string(), "10.0.0.1:1");
        assert!(resolve("[::1", 1).is_err());
    }
}
