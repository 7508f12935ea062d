//! Every on-screen line of the assignment's Tables 4 to 8, in one place. Stdout carries
//! these lines and nothing else; each is written whole and flushed at once.
//!
//! A program whose screen cannot be written has lost its one output: [`say`] then
//! says so on stderr and ends the program with a non-zero status.

use offload_core::split::Part;
use offload_core::{Op, I192};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static PROGRAM: OnceLock<&'static str> = OnceLock::new();

/// Status of a program that could not write its on-screen lines.
pub const STDOUT_FAILED: i32 = 1;

/// Set before `main` when the program started with stdout closed (see [`start`]).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Runs before `main`, so before Rust's runtime replaces a closed stdout with
/// `/dev/null` (which would hide that the on-screen lines go nowhere).
extern "C" fn note_closed_stdout() {
    // SAFETY: F_GETFD only queries descriptor 1's flags; no memory is passed.
    if unsafe { libc::fcntl(1, libc::F_GETFD) } == -1 {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

#[used]
#[link_section = ".init_array"]
static NOTE_CLOSED_STDOUT: extern "C" fn() = note_closed_stdout;

/// Names the running program for [`say`]'s error message and checks that stdout was
/// open when the program started: `./client sum >&-` would print its answer nowhere.
/// Call first thing in `main`.
///
/// # Errors
/// [`StdoutClosed`], to print on stderr before exiting non-zero.
pub fn start(program: &'static str) -> Result<(), StdoutClosed> {
    let _ = PROGRAM.set(program);
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Err(StdoutClosed(program));
    }
    Ok(())
}

/// The program (named) started with stdout closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdoutClosed(pub &'static str);

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: stdout is closed: the on-screen lines would be lost",
            self.0
        )
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes one whole line to stdout and flushes it, so lines of concurrent jobs never
/// interleave mid-line and a watching terminal sees each event as it happens. When
/// stdout cannot be written (a full disk, a closed pipe), says so on stderr and exits
/// with [`STDOUT_FAILED`]: an answer nobody can see is not an answer.
pub fn say(line: &str) {
    if let Err(e) = write_line(&mut io::stdout().lock(), line) {
        let program = PROGRAM.get().copied().unwrap_or("offload");
        let _ = writeln!(io::stderr(), "{program}: cannot write to stdout: {e}");
        std::process::exit(STDOUT_FAILED);
    }
}

fn write_line(out: &mut impl Write, line: &str) -> io::Result<()> {
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Table 4-6: a back-end's boot line.
pub fn server_boot(part: Part, port: u16) -> String {
    format!(
        "The Server {} is up and running using UDP on port {port}.",
        part.letter()
    )
}

/// Table 4-6: numbers received.
pub fn server_received(part: Part, count: u64) -> String {
    format!("The Server {} has received {count} numbers", part.letter())
}

/// Table 4-6: reduction computed.
pub fn server_reduced(part: Part, op: Op, value: I192) -> String {
    format!(
        "The Server {} has successfully finished the reduction {op}: {value}",
        part.letter()
    )
}

/// Table 4-6: result sent.
pub fn server_sent(part: Part) -> String {
    format!(
        "The Server {} has successfully finished sending the reduction value to AWS server.",
        part.letter()
    )
}

/// Table 7: AWS boot line.
pub fn aws_boot() -> String {
    "The AWS is up and running.".to_string()
}

/// Table 7: numbers received from the client.
pub fn aws_received(count: u64, tcp_port: u16) -> String {
    format!("The AWS has received {count} numbers from the client using TCP over port {tcp_port}")
}

/// Table 7: a part sent to its back-end. (The table's wording; the seed's example
/// says "has sent", see the README.)
pub fn aws_sent(count: u64, part: Part) -> String {
    format!(
        "The AWS sent {count} numbers to Backend-Server {}",
        part.letter()
    )
}

/// Table 7: a back-end's result received.
pub fn aws_result(op: Op, part: Part, udp_port: u16, value: I192) -> String {
    format!(
        "The AWS received reduction result of {op} from Backend-Server {} using UDP over port {udp_port} and it is {value}",
        part.letter()
    )
}

/// Table 7: final reduction computed.
pub fn aws_reduced(op: Op, value: I192) -> String {
    format!("The AWS has successfully finished the reduction {op}: {value}")
}

/// Table 7: answer sent to the client.
pub fn aws_answered() -> String {
    "The AWS has successfully finished sending the reduction value to client.".to_string()
}

/// Table 8: client boot line.
pub fn client_boot() -> String {
    "The client is up and running.".to_string()
}

/// Table 8: reduction type sent.
pub fn client_sent_op(op: Op) -> String {
    format!("The client has sent the reduction type {op} to AWS.")
}

/// Table 8: numbers sent.
pub fn client_sent_numbers(count: u64) -> String {
    format!("The client has sent {count} numbers to AWS")
}

/// Table 8: answer received.
pub fn client_received(op: Op, value: I192) -> String {
    format!("The client has received reduction {op}: {value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's example output, word for word.
    #[test]
    fn lines_match_the_seed_example() {
        let v = |x| I192::from_i64(x);
        assert_eq!(
            server_boot(Part::A, 21319),
            "The Server A is up and running using UDP on port 21319."
        );
        assert_eq!(
            server_received(Part::B, 30),
            "The Server B has received 30 numbers"
        );
        assert_eq!(
            server_reduced(Part::C, Op::Sum, v(1002)),
            "The Server C has successfully finished the reduction SUM: 1002"
        );
        assert_eq!(
            server_sent(Part::A),
            "The Server A has successfully finished sending the reduction value to AWS server."
        );
        assert_eq!(aws_boot(), "The AWS is up and running.");
        assert_eq!(
            aws_received(90, 25319),
            "The AWS has received 90 numbers from the client using TCP over port 25319"
        );
        assert_eq!(
            aws_sent(30, Part::B),
            "The AWS sent 30 numbers to Backend-Server B"
        );
        assert_eq!(
            aws_result(Op::Sum, Part::A, 24319, v(1000)),
            "The AWS received reduction result of SUM from Backend-Server A using UDP over port 24319 and it is 1000"
        );
        assert_eq!(
            aws_reduced(Op::Sum, v(3003)),
            "The AWS has successfully finished the reduction SUM: 3003"
        );
        assert_eq!(
            aws_answered(),
            "The AWS has successfully finished sending the reduction value to client."
        );
        assert_eq!(client_boot(), "The client is up and running.");
        assert_eq!(
            client_sent_op(Op::Sum),
            "The client has sent the reduction type SUM to AWS."
        );
        assert_eq!(
            client_sent_numbers(90),
            "The client has sent 90 numbers to AWS"
        );
        assert_eq!(
            client_received(Op::Sum, v(3003)),
            "The client has received reduction SUM: 3003"
        );
    }
}
