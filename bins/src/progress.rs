//! One progress line on stderr while the client checks and sends a big file.
//!
//! Drawn only when stderr is a terminal and the file is at least [`THRESHOLD`] bytes;
//! stdout is never touched. The hot loop pays one relaxed atomic add per file chunk
//! ([`advance`]); a separate thread redraws the line every [`REDRAW`] and erases it when
//! the pass ends, so the stdout line printed next starts on a clean row.
//! Hand-written rather than indicatif: this is all we draw, and it adds no dependency.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Files smaller than this finish before a progress line could help.
pub const THRESHOLD: u64 = 64 << 20;
/// Time between redraws.
pub const REDRAW: Duration = Duration::from_millis(200);
/// Back to the start of the row and erase it (ANSI EL2): what ends every drawing.
pub const ERASE: &str = "\r\x1b[2K";

/// Bytes of the file the current pass has read (both threads of a split check add here).
static DONE: AtomicU64 = AtomicU64::new(0);

/// Counts `bytes` more of the current pass: one relaxed add per chunk read.
#[inline]
pub fn advance(bytes: usize) {
    DONE.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// The progress line of one pass; erased when dropped.
pub struct Bar {
    drawer: Option<(Sender<()>, JoinHandle<()>)>,
}

impl Bar {
    /// Starts the line `label` for a pass over `total` bytes: drawn at once and then
    /// every [`REDRAW`], only if stderr is a terminal and `total` >= [`THRESHOLD`].
    pub fn start(label: &'static str, total: u64) -> Bar {
        DONE.store(0, Ordering::Relaxed);
        if total < THRESHOLD || !std::io::stderr().is_terminal() {
            return Bar { drawer: None };
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let started = Instant::now();
        let drawer = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let mut line = String::with_capacity(128);
                loop {
                    let done = DONE.load(Ordering::Relaxed).min(total);
                    line.clear();
                    line.push_str(ERASE);
                    render(&mut line, label, done, total, started.elapsed());
                    draw(&line);
                    match stopped.recv_timeout(REDRAW) {
                        Err(RecvTimeoutError::Timeout) => continue,
                        _ => break,
                    }
                }
                draw(ERASE);
            });
        // No thread, no line: the job goes on without it.
        Bar {
            drawer: drawer.ok().map(|h| (stop, h)),
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some((stop, drawer)) = self.drawer.take() {
            let _ = stop.send(());
            // The line is erased once this returns.
            let _ = drawer.join();
        }
    }
}

fn draw(s: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(s.as_bytes());
    let _ = err.flush();
}

/// Appends the line's text, under 80 columns so it does not wrap on a terminal:
/// `sending nums.csv   96.0 / 222.0 MiB  43%  512.0 MiB/s  0:01 left`.
pub fn render(out: &mut String, label: &str, done: u64, total: u64, elapsed: Duration) {
    const MIB: f64 = (1u64 << 20) as f64;
    let pct = (done * 100).checked_div(total).unwrap_or(100);
    let _ = write!(
        out,
        "{label} nums.csv {:7.1} / {:.1} MiB {pct:3}%",
        done as f64 / MIB,
        total as f64 / MIB
    );
    let secs = elapsed.as_secs_f64();
    if done == 0 || secs < 0.05 {
        out.push_str("  -- MiB/s  -:-- left");
        return;
    }
    let rate = done as f64 / secs;
    let left = ((total - done) as f64 / rate).ceil() as u64;
    let _ = write!(out, "  {:.1} MiB/s  ", rate / MIB);
    if left >= 3600 {
        let _ = write!(
            out,
            "{}:{:02}:{:02} left",
            left / 3600,
            left / 60 % 60,
            left % 60
        );
    } else {
        let _ = write!(out, "{}:{:02} left", left / 60, left % 60);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(done: u64, total: u64, ms: u64) -> String {
        let mut s = String::new();
        render(&mut s, "sending", done, total, Duration::from_millis(ms));
        s
    }

    #[test]
    fn line_shows_done_total_rate_and_time_left() {
        // 96 of 224 MiB in 0.5 s: 192 MiB/s, 128 MiB to go = 0.67 s, shown as 0:01.
        assert_eq!(
            text(96 << 20, 224 << 20, 500),
            "sending nums.csv    96.0 / 224.0 MiB  42%  192.0 MiB/s  0:01 left"
        );
        // 1 MiB/s with 5000 MiB to go.
        assert_eq!(
            text(1 << 20, 5001 << 20, 1000),
            "sending nums.csv     1.0 / 5001.0 MiB   0%  1.0 MiB/s  1:23:20 left"
        );
        assert_eq!(
            text(64 << 20, 64 << 20, 2000),
            "sending nums.csv    64.0 / 64.0 MiB 100%  32.0 MiB/s  0:00 left"
        );
    }

    #[test]
    fn no_rate_before_any_bytes() {
        assert_eq!(
            text(0, 64 << 20, 0),
            "sending nums.csv     0.0 / 64.0 MiB   0%  -- MiB/s  -:-- left"
        );
    }

    #[test]
    fn lines_fit_a_narrow_terminal() {
        let t = text(123_456 << 20, 999_999 << 20, 3_600_000);
        assert!(t.len() < 80, "{t} is {} columns", t.len());
    }

    #[test]
    fn nothing_is_drawn_below_the_threshold_or_off_a_terminal() {
        // Below the threshold no thread is started, whatever stderr is.
        assert!(Bar::start("checking", THRESHOLD - 1).drawer.is_none());
        // When this test's stderr is not a terminal (CI, `make test` piped), neither.
        if !std::io::stderr().is_terminal() {
            assert!(Bar::start("checking", THRESHOLD).drawer.is_none());
        }
    }
}
