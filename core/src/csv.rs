//! `nums.csv`: one integer per line, parsed without allocation, streamed in chunks.
//!
//! Accepted: an optional `+` or `-` and decimal digits, with spaces or tabs around
//! them, a trailing `\r` (CRLF files), blank lines (skipped), a missing final newline
//! and a UTF-8 byte order mark at the start of the file. Everything else is a
//! [`ParseError`] naming what is wrong.
//!
//! A bad line is reported as soon as the bytes read so far decide it, newline or not: a
//! line that passes [`MAX_LINE`] bytes, or a non-text byte, ends the read at once, so
//! neither `/dev/zero` nor 100 MB of spaces is buffered or scanned to its end.
//!
//! [`LineReader::feed`] is word-at-a-time (SWAR, over `u64`) in safe Rust: it finds the
//! newlines of 64 bytes at once, then checks and converts each line's digits eight at a
//! time (Lemire's and Mula's multiply-shift reduction). Lines the fast path does not
//! take (blanks, signs other than `-`, CRLF, anything wrong) go through [`parse_line`].

use arrayvec::ArrayVec;

use crate::op::Op;
use crate::reduce::Accumulator;
use core::fmt;

/// Longest line accepted, counting neither its `\n` nor a final `\r`. An `i64` needs at
/// most 20 characters; the rest is room for padding and leading zeros.
pub const MAX_LINE: usize = 128;

/// How many bytes of a bad line an error keeps to show the user.
pub const EXCERPT_LEN: usize = 40;

/// The UTF-8 byte order mark, skipped at the start of a file.
pub const BYTE_ORDER_MARK: [u8; 3] = [0xef, 0xbb, 0xbf];

/// Bytes of a line that decide it: [`MAX_LINE`], a final `\r`, and one more. Any line
/// this long or longer is already an error (see [`prefix_error`]).
const DECIDED: usize = MAX_LINE + 2;

/// What is wrong with one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not a decimal integer (a word, a sign alone, stray characters).
    NotAnInteger,
    /// A number written with a decimal point or an exponent, such as `1.5`, `1.0` or
    /// `1e3`: some are whole numbers, but none is written as an integer.
    DecimalForm,
    /// Two or more values on one line, such as `1,2` or `3 4`.
    SeveralValues,
    /// A well-formed integer outside `i64::MIN..=i64::MAX`.
    OutOfRange,
    /// A byte that does not belong in a text file (control or non-ASCII), among the
    /// first [`MAX_LINE`] bytes of the line.
    NotText(u8),
    /// Longer than [`MAX_LINE`] bytes, not counting a final `\r`.
    TooLong,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotAnInteger => f.write_str("is not an integer"),
            ParseError::DecimalForm => {
                f.write_str("is not written as an integer (no decimal point or exponent)")
            }
            ParseError::SeveralValues => {
                f.write_str("holds more than one value (one integer per line)")
            }
            ParseError::OutOfRange => f.write_str("is outside the 64-bit signed range"),
            ParseError::NotText(b) => write!(f, "contains the non-text byte 0x{b:02x}"),
            ParseError::TooLong => write!(f, "is longer than {MAX_LINE} bytes"),
        }
    }
}

#[inline]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Printable ASCII or a tab.
#[inline]
fn is_text(b: u8) -> bool {
    b == b'\t' || (0x20..0x7f).contains(&b)
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_blank(*first) {
            break;
        }
        s = rest;
    }
    s
}

fn trim(s: &[u8]) -> &[u8] {
    let mut s = trim_start(s);
    while let [rest @ .., last] = s {
        if !is_blank(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// A line without its final `\r`.
fn strip_cr(line: &[u8]) -> &[u8] {
    match line {
        [rest @ .., b'\r'] => rest,
        other => other,
    }
}

/// Where a line first goes wrong in a way no later byte can undo: the first non-text
/// byte among its first [`MAX_LINE`] bytes, or else its length past [`MAX_LINE`].
///
/// `prefix` is the start of a line (or a whole line) without its `\n`. Its last byte,
/// when a `\r`, may still be the line's final `\r` and is not judged. `None`: nothing
/// decided yet. Whatever follows `prefix`, [`parse_line`] on the whole line gives the
/// same error, so a streaming reader may report it at once; every prefix of
/// [`MAX_LINE`] + 2 bytes or more is decided.
pub fn prefix_error(prefix: &[u8]) -> Option<ParseError> {
    let head = match prefix.get(..MAX_LINE) {
        Some(head) if head.len() < prefix.len() => head,
        _ => strip_cr(prefix),
    };
    if let Some(&b) = head.iter().find(|&&b| !is_text(b)) {
        return Some(ParseError::NotText(b));
    }
    (strip_cr(prefix).len() > MAX_LINE).then_some(ParseError::TooLong)
}

/// Parses one line (without its `\n`) into a number, or `None` for a blank line.
///
/// # Errors
/// A [`ParseError`] saying what is wrong with the line: the one [`prefix_error`] names,
/// if any, else what is wrong with its text.
pub fn parse_line(line: &[u8]) -> Result<Option<i64>, ParseError> {
    if let Some(e) = prefix_error(line) {
        return Err(e);
    }
    let text = trim(strip_cr(line));
    if text.is_empty() {
        return Ok(None);
    }
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        other => (false, other),
    };
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let (number, tail) = digits.split_at_checked(end).unwrap_or((digits, &[]));
    if number.is_empty() || !tail.is_empty() {
        return Err(classify(number, tail));
    }
    // Magnitude in u128 so that leading zeros and 2^63 need no special cases.
    let mut mag: u128 = 0;
    for &d in number {
        mag = mag * 10 + u128::from(d - b'0');
        if mag > 1 << 63 {
            return Err(ParseError::OutOfRange);
        }
    }
    if negative {
        // mag <= 2^63 here, so 0 - mag fits in i128 and then in i64.
        i64::try_from(-(mag as i128))
            .map(Some)
            .map_err(|_| ParseError::OutOfRange)
    } else {
        i64::try_from(mag)
            .map(Some)
            .map_err(|_| ParseError::OutOfRange)
    }
}

/// Names the mistake in a line that starts with `number` digits and goes on with `tail`.
fn classify(number: &[u8], tail: &[u8]) -> ParseError {
    let value_like = |s: &[u8]| {
        s.first()
            .is_some_and(|b| b.is_ascii_digit() || *b == b'-' || *b == b'+')
    };
    match tail {
        [b'.' | b'e' | b'E', rest @ ..]
            if !number.is_empty()
                && trim(rest)
                    .iter()
                    .all(|b| b.is_ascii_digit() || *b == b'-' || *b == b'+') =>
        {
            ParseError::DecimalForm
        }
        [b',' | b';', ..] if !number.is_empty() => ParseError::SeveralValues,
        [b' ' | b'\t', ..] if !number.is_empty() && value_like(trim(tail)) => {
            ParseError::SeveralValues
        }
        _ => ParseError::NotAnInteger,
    }
}

/// A bad line: where it is and what is wrong with it.
#[derive(Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong.
    pub error: ParseError,
    /// The bytes of the line that show the problem, blanks trimmed: the start of the
    /// text for most errors; for [`ParseError::NotText`] and [`ParseError::TooLong`],
    /// the non-blank text just before the point where the line went wrong. Empty when
    /// a too-long line is blank up to the limit.
    pub excerpt: ArrayVec<u8, EXCERPT_LEN>,
    /// 1-based byte column of the excerpt's first byte in the line (after a byte order
    /// mark); for an empty excerpt, the column where the line went wrong.
    pub column: usize,
    /// The line's text goes on past the excerpt (after it, or for a text shown up to the
    /// problem, before it).
    pub shortened: bool,
}

/// A copy of an `ArrayVec` of bytes without a panic path: arrayvec's own `Clone` goes
/// through `extend`, whose capacity check the optimiser cannot remove.
fn copy_bytes<const N: usize>(v: &ArrayVec<u8, N>) -> ArrayVec<u8, N> {
    let mut out = ArrayVec::new();
    let _ = out.try_extend_from_slice(v);
    out
}

impl Clone for LineError {
    fn clone(&self) -> Self {
        LineError {
            excerpt: copy_bytes(&self.excerpt),
            ..*self
        }
    }
}

impl LineError {
    /// The error for `text`, the line or the part of it read so far (for the errors
    /// [`prefix_error`] names, only the bytes that decided it are looked at, so the
    /// excerpt does not depend on how the file was chunked).
    fn new(line: u64, error: ParseError, text: &[u8]) -> LineError {
        // `shown` is the part of the line the excerpt comes from; `tail_first` says the
        // excerpt keeps the end of it (nearest the problem) rather than the start.
        let (shown, tail_first) = match error {
            ParseError::NotText(_) => {
                let at = text.iter().position(|&b| !is_text(b)).unwrap_or(text.len());
                (text.get(..=at).unwrap_or(text), true)
            }
            ParseError::TooLong => {
                let limit = text.get(..=MAX_LINE).unwrap_or(text);
                (strip_cr(limit), true)
            }
            _ => (strip_cr(text), false),
        };
        let trimmed = if tail_first && error != ParseError::TooLong {
            // The last byte is the bad one: trim the start only.
            trim_start(shown)
        } else {
            trim(shown)
        };
        let start = shown.len() - trim_start(shown).len();
        let (kept, column, shortened) = if trimmed.len() <= EXCERPT_LEN {
            (trimmed, start + 1, false)
        } else if tail_first {
            let cut = trimmed.len() - EXCERPT_LEN;
            (trimmed.get(cut..).unwrap_or(trimmed), start + cut + 1, true)
        } else {
            (
                trimmed.get(..EXCERPT_LEN).unwrap_or(trimmed),
                start + 1,
                true,
            )
        };
        let column = if kept.is_empty() && error == ParseError::TooLong {
            MAX_LINE + 1
        } else {
            column
        };
        let mut excerpt = ArrayVec::new();
        // `try_extend_from_slice` on a slice that fits, not `extend`, which can panic.
        let _ = excerpt.try_extend_from_slice(kept);
        LineError {
            line,
            error,
            excerpt,
            column,
            shortened,
        }
    }

    fn write_excerpt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail_first = matches!(self.error, ParseError::NotText(_) | ParseError::TooLong);
        f.write_str("\"")?;
        if self.shortened && tail_first {
            f.write_str("...")?;
        }
        for &b in &self.excerpt {
            if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.shortened && !tail_first {
            f.write_str("...")?;
        }
        f.write_str("\"")
    }
}

impl fmt::Display for LineError {
    /// `17: "abc" is not an integer`; the caller prefixes the file name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.line)?;
        match self.error {
            ParseError::TooLong if self.excerpt.is_empty() => write!(
                f,
                "line longer than {MAX_LINE} bytes, blank up to byte {}",
                self.column
            ),
            ParseError::TooLong => {
                write!(f, "line longer than {MAX_LINE} bytes: ")?;
                self.write_excerpt(f)?;
                let last = self.column + self.excerpt.len() - 1;
                write!(f, " at bytes {}-{last}", self.column)
            }
            ParseError::NotText(_) => {
                self.write_excerpt(f)?;
                let at = self.column + self.excerpt.len().saturating_sub(1);
                write!(f, " {} at byte {at}", self.error)
            }
            _ => {
                self.write_excerpt(f)?;
                write!(f, " {}", self.error)
            }
        }
    }
}

/// `bom` once the start of the file is behind the reader.
const PAST_START: u8 = u8::MAX;

/// Splits a file fed in chunks of any size into numbers with their line numbers,
/// holding at most one partial line ([`MAX_LINE`] + 2 bytes) between chunks.
///
/// After an error the reader stays failed: further calls return the same error.
#[derive(Debug, Default)]
pub struct LineReader {
    /// The start of a line that began in an earlier chunk; never decides an error.
    partial: ArrayVec<u8, DECIDED>,
    /// Lines completed so far.
    lines: u64,
    /// Of those, blank lines (no number).
    blanks: u64,
    /// Bytes of [`BYTE_ORDER_MARK`] seen at the start of the file, or [`PAST_START`].
    bom: u8,
    failed: Option<LineError>,
}

impl Clone for LineReader {
    fn clone(&self) -> Self {
        LineReader {
            partial: copy_bytes(&self.partial),
            lines: self.lines,
            blanks: self.blanks,
            bom: self.bom,
            failed: self.failed.clone(),
        }
    }
}

/// Bytes whose newlines are found at once.
const BLOCK: usize = 64;

impl LineReader {
    /// A reader at the start of a file (which may begin with a byte order mark).
    pub fn new() -> LineReader {
        LineReader::default()
    }

    /// A reader at the start of a line in the middle of a file (a byte order mark there
    /// is not skipped); its line numbers count from that line.
    pub fn mid_file() -> LineReader {
        LineReader {
            bom: PAST_START,
            ..LineReader::default()
        }
    }

    /// Lines completed so far (the line number of the last complete line).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Feeds the next chunk; calls `sink(line, value)` for every number it completes.
    ///
    /// # Errors
    /// The first bad line, as soon as the bytes fed decide it (see [`prefix_error`]);
    /// no number after it is passed to `sink`.
    pub fn feed<F: FnMut(u64, i64)>(&mut self, chunk: &[u8], mut sink: F) -> Result<(), LineError> {
        self.feed_into(chunk, &mut EachNumber(&mut sink), &mut [])
    }

    /// Feeds the next chunk as [`feed`] does, but hands its numbers over in runs:
    /// `sink(first, values)` for numbers on consecutive lines, `values[i]` on line
    /// `first + i` (at most 64 at a time), for a sink that does more per number than a
    /// fold and is faster over a slice.
    ///
    /// # Errors
    /// As [`feed`].
    ///
    /// [`feed`]: LineReader::feed
    pub fn feed_runs<F: FnMut(u64, &[i64])>(
        &mut self,
        chunk: &[u8],
        mut sink: F,
    ) -> Result<(), LineError> {
        self.feed_into(chunk, &mut EachRun(&mut sink), &mut [])
    }

    /// Feeds the next chunk as [`feed_runs`] does, the same runs in the same order, but
    /// faster on a long chunk of short lines: its two halves are read at once (as
    /// [`feed_reduce`] does), the second half's numbers kept in `spare` until the first
    /// half's are handed over. A `spare` of a quarter of the chunk's length holds all
    /// of them; a smaller one only shortens the part read two at a time (an empty one:
    /// [`feed_runs`]).
    ///
    /// # Errors
    /// As [`feed`]: no number after the first bad line reaches `sink`.
    ///
    /// [`feed`]: LineReader::feed
    /// [`feed_runs`]: LineReader::feed_runs
    /// [`feed_reduce`]: LineReader::feed_reduce
    pub fn feed_runs_with<F: FnMut(u64, &[i64])>(
        &mut self,
        chunk: &[u8],
        spare: &mut [i64],
        mut sink: F,
    ) -> Result<(), LineError> {
        self.feed_into(chunk, &mut EachRun(&mut sink), spare)
    }

    /// Feeds the next chunk as [`feed`] does, only checking and counting its lines (see
    /// [`LineReader::numbers`]): no values are made, and blocks of short plain lines are
    /// taken a block at a time, so a file is checked about twice as fast as it is parsed.
    ///
    /// # Errors
    /// As [`feed`].
    ///
    /// [`feed`]: LineReader::feed
    pub fn feed_check(&mut self, chunk: &[u8]) -> Result<(), LineError> {
        self.feed_into(chunk, &mut Checked, &mut [])
    }

    /// Numbers on the lines completed so far: the lines that are neither blank nor the
    /// bad line an error stopped at (always the last line counted).
    pub fn numbers(&self) -> u64 {
        self.lines - self.blanks - u64::from(self.failed.is_some())
    }

    /// Feeds the next chunk, folding every number it completes into `acc`: [`feed`]
    /// with the reduction specialised to `acc`'s operation, so that the fold's state
    /// stays in registers through the parse loop (parse and reduce in one pass).
    ///
    /// # Errors
    /// As [`feed`]; the numbers before the bad line are folded in.
    ///
    /// [`feed`]: LineReader::feed
    pub fn feed_reduce(&mut self, chunk: &[u8], acc: &mut Accumulator) -> Result<(), LineError> {
        let failed_before = self.failed.is_some();
        let (lines, blanks) = (self.lines, self.blanks);
        let mut a = *acc;
        // The loop folds values only; how many it folded follows from the lines it
        // completed (a count kept per number took a register the loop lacks: SUM 1.18
        // -> 1.39 GB/s without it).
        // Pairs of short numbers (see [`interleave`]) go to a partial result of their
        // own, folded in once a chunk.
        let r = match a.op() {
            Op::Min => self.feed_fold(chunk, &mut a, Accumulator::fold_min, MinPairs),
            Op::Max => self.feed_fold(chunk, &mut a, Accumulator::fold_max, MaxPairs),
            Op::Sum => self.feed_fold(chunk, &mut a, Accumulator::fold_sum, SumPairs),
            Op::Sos => self.feed_fold(chunk, &mut a, Accumulator::fold_sos, SosPairs),
        };
        // Every line completed here is a number, a blank, or the bad line that stopped it.
        let bad = u64::from(r.is_err() && !failed_before);
        let numbers = (self.lines - lines) - (self.blanks - blanks) - bad;
        a.add_count(numbers);
        *acc = a;
        r
    }

    /// Ends the file as [`LineReader::finish`] does, folding its last number into `acc`.
    ///
    /// # Errors
    /// As [`LineReader::finish`].
    pub fn finish_reduce(&mut self, acc: &mut Accumulator) -> Result<(), LineError> {
        self.finish(|_, v| acc.push(v))
    }

    /// [`LineReader::feed_into`] folding into `acc` with `fold`, or `pair` for two
    /// numbers at once.
    #[inline(always)]
    fn feed_fold<F, P>(
        &mut self,
        chunk: &[u8],
        acc: &mut Accumulator,
        fold: F,
        pair: P,
    ) -> Result<(), LineError>
    where
        F: Fn(&mut Accumulator, i64) + Copy,
        P: PairFold,
    {
        let mut sink = Fold {
            acc: *acc,
            fold,
            pair,
        };
        let r = self.feed_into(chunk, &mut sink, &mut []);
        *acc = sink.acc;
        r
    }

    #[inline(always)]
    fn feed_into<N: Numbers>(
        &mut self,
        chunk: &[u8],
        out: &mut N,
        spare: &mut [i64],
    ) -> Result<(), LineError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut rest = chunk;
        if self.bom != PAST_START {
            rest = self.skip_byte_order_mark(rest);
            if self.bom != PAST_START {
                return Ok(());
            }
        }
        if !self.partial.is_empty() {
            // Finish the line that straddles the previous chunk: only its first
            // DECIDED bytes matter.
            let room = self.partial.remaining_capacity();
            let window = rest.get(..room).unwrap_or(rest);
            match find_newline(window) {
                Some(nl) => {
                    self.hold(window.get(..nl).unwrap_or(window));
                    rest = rest.get(nl + 1..).unwrap_or(&[]);
                    if let Some(v) = self.complete_partial()? {
                        out.number(self.lines, v);
                    }
                }
                None => {
                    // A full window is always decided, so this returns only when the
                    // window was all of `rest`.
                    self.hold(window);
                    return self.check_partial();
                }
            }
        }
        self.whole_lines(rest, out, spare)
    }

    /// Ends the file: a last line without `\n` still counts.
    ///
    /// # Errors
    /// The last line's error, or an earlier one.
    pub fn finish<F: FnMut(u64, i64)>(&mut self, mut sink: F) -> Result<(), LineError> {
        self.finish_into(&mut EachNumber(&mut sink))
    }

    fn finish_into<N: Numbers>(&mut self, out: &mut N) -> Result<(), LineError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.bom != PAST_START {
            // The file is a part of a byte order mark: those bytes are its only line.
            let seen = usize::from(self.bom);
            self.hold(BYTE_ORDER_MARK.get(..seen).unwrap_or(&[]));
            self.bom = PAST_START;
        }
        if !self.partial.is_empty() {
            if let Some(v) = self.complete_partial()? {
                out.number(self.lines, v);
            }
        }
        Ok(())
    }

    /// Skips a byte order mark at the start of the file, which may come split over
    /// chunks. On a mismatch the bytes matched so far become the start of line 1.
    fn skip_byte_order_mark<'a>(&mut self, mut rest: &'a [u8]) -> &'a [u8] {
        while let Some((&b, tail)) = rest.split_first() {
            let seen = usize::from(self.bom);
            if BYTE_ORDER_MARK.get(seen) != Some(&b) {
                self.hold(BYTE_ORDER_MARK.get(..seen).unwrap_or(&[]));
                self.bom = PAST_START;
                return rest;
            }
            rest = tail;
            self.bom += 1;
            if usize::from(self.bom) == BYTE_ORDER_MARK.len() {
                self.bom = PAST_START;
                return rest;
            }
        }
        rest
    }

    /// Every line of `buf` that ends in it, then what is left as the partial line.
    /// The partial line is empty on entry.
    #[inline(always)]
    fn whole_lines<N: Numbers>(
        &mut self,
        buf: &[u8],
        out: &mut N,
        spare: &mut [i64],
    ) -> Result<(), LineError> {
        let first = self.lines;
        let mut at = Cursor {
            start: 0,
            next: 0,
            newlines: 0,
            lines: first,
        };
        // A fold takes the two halves of the buffer at once (see [`interleave`]); the
        // first then goes on alone to the middle, in order, so that the first bad line
        // is still found first and numbered; the second goes on from where it stopped.
        if let Some(before) = out.snapshot() {
            if let Some(mid) = halfway(buf) {
                let mut b = Cursor {
                    start: mid,
                    next: 0,
                    newlines: 0,
                    lines: 0,
                };
                out.interleave(buf, &mut at, mid, &mut b);
                if let Err(e) = self.lines_up_to(buf, &mut at, mid, out) {
                    // Numbers after the bad line were folded in: fold only the ones
                    // before it, again (an error ends the file: once a file at most).
                    *out = before;
                    refold(buf, e.line.saturating_sub(first + 1), out);
                    return Err(e);
                }
                at.lines += b.lines;
                at.start = b.start;
            }
        }
        // Runs take the halves at once too, the second half's numbers held in `spare`
        // until the first half's are handed over.
        if N::RUNS && spare.len() >= SPARE_MIN {
            if let Some(mid) = halfway(buf) {
                let mut b = Cursor {
                    start: mid,
                    next: 0,
                    newlines: 0,
                    lines: 0,
                };
                let kept = interleave_runs(buf, &mut at, mid, &mut b, out, spare);
                self.lines_up_to(buf, &mut at, mid, out)?;
                let kept = spare.get(..kept).unwrap_or(&[]);
                for (i, run) in kept.chunks(BLOCK).enumerate() {
                    out.run(at.lines + 1 + (i * BLOCK) as u64, run);
                }
                at.lines += b.lines;
                at.start = b.start;
            }
        }
        self.lines_up_to(buf, &mut at, buf.len(), out)?;
        self.lines = at.lines;
        let tail = buf.get(at.start..).unwrap_or(&[]);
        self.hold(tail.get(..DECIDED).unwrap_or(tail));
        self.check_partial()
    }

    /// The lines of `buf` from `at.start` that end before `limit` (a line start, or the
    /// end of `buf`).
    #[inline(always)]
    fn lines_up_to<N: Numbers>(
        &mut self,
        buf: &[u8],
        at: &mut Cursor,
        limit: usize,
        out: &mut N,
    ) -> Result<(), LineError> {
        // The scan stops only for a line the fast path declines, so that its loop makes
        // no call and the caller's sink state can stay in registers.
        while let Some(end) = if N::CHECK {
            scan(buf, at, out)
        } else {
            scan_lines(buf, at, limit, out)
        } {
            let line = buf.get(at.start..end).unwrap_or(&[]);
            // A line this long is decided by its start, as when it is held.
            let line = line.get(..DECIDED).unwrap_or(line);
            match parse_line(line) {
                Ok(Some(v)) => out.number(at.lines, v),
                Ok(None) => self.blanks += 1,
                Err(e) => {
                    self.lines = at.lines;
                    return self.fail(e, line);
                }
            }
            at.start = end + 1;
        }
        Ok(())
    }

    /// Appends to the partial line, as much as fits.
    fn hold(&mut self, bytes: &[u8]) {
        let room = self.partial.remaining_capacity();
        let _ = self
            .partial
            .try_extend_from_slice(bytes.get(..room).unwrap_or(bytes));
    }

    /// Fails at once if the partial line is already decided.
    fn check_partial(&mut self) -> Result<(), LineError> {
        match prefix_error(&self.partial) {
            None => Ok(()),
            Some(e) => {
                self.lines += 1;
                let partial = core::mem::take(&mut self.partial);
                self.fail(e, &partial)
            }
        }
    }

    /// Ends the partial line: its number, if any. (It does not take the [`Numbers`], so
    /// that they stay local to the inlined loop and in registers.)
    #[inline(never)]
    fn complete_partial(&mut self) -> Result<Option<i64>, LineError> {
        self.lines += 1;
        let partial = core::mem::take(&mut self.partial);
        match parse_line(&partial) {
            Ok(v) => {
                self.blanks += u64::from(v.is_none());
                Ok(v)
            }
            Err(e) => self.fail(e, &partial).map(|()| None),
        }
    }

    fn fail(&mut self, error: ParseError, text: &[u8]) -> Result<(), LineError> {
        let e = LineError::new(self.lines, error, text);
        self.failed = Some(e.clone());
        Err(e)
    }
}

/// Where a reader puts the numbers it completes.
trait Numbers {
    /// Whether the scan collects each block's numbers and hands them over in one
    /// [`Numbers::run`] rather than one by one: for sinks with more to do per number
    /// than a fold, which then work over a slice in a loop of their own.
    const RUNS: bool = false;

    /// Whether the sink ignores the values (the lines are only checked and counted):
    /// then [`scan`] may vouch for a whole block of short, plain lines at once, without
    /// converting them (see [`plain_lines`]).
    const CHECK: bool = false;

    fn number(&mut self, line: u64, value: i64);

    /// For a sink that may take its numbers in any order (a fold, which ignores the
    /// line numbers): a copy of it as it is, to go back to. `None`: numbers in file
    /// order only (and [`Numbers::interleave`] is never called).
    #[inline(always)]
    fn snapshot(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }

    /// For a sink that gives a [`Numbers::snapshot`]: [`interleave`] into it.
    #[inline(always)]
    fn interleave(&mut self, _buf: &[u8], _a: &mut Cursor, _mid: usize, _b: &mut Cursor) {}

    /// `values`, of the consecutive lines from `first` on.
    #[inline(always)]
    fn run(&mut self, first: u64, values: &[i64]) {
        for (line, &v) in (first..).zip(values) {
            self.number(line, v);
        }
    }
}

/// Each number to a callback, with its line.
struct EachNumber<'a, F>(&'a mut F);

impl<F: FnMut(u64, i64)> Numbers for EachNumber<'_, F> {
    #[inline(always)]
    fn number(&mut self, line: u64, value: i64) {
        (self.0)(line, value)
    }
}

/// Runs of numbers on consecutive lines to a callback, with the first one's line.
struct EachRun<'a, F>(&'a mut F);

impl<F: FnMut(u64, &[i64])> Numbers for EachRun<'_, F> {
    const RUNS: bool = true;

    #[inline(always)]
    fn number(&mut self, line: u64, value: i64) {
        (self.0)(line, &[value])
    }

    #[inline(always)]
    fn run(&mut self, first: u64, values: &[i64]) {
        if !values.is_empty() {
            (self.0)(first, values)
        }
    }
}

/// Every number folded into an accumulator, in any order: with `fold`, or two at once
/// with `pair`.
#[derive(Clone, Copy)]
struct Fold<F, P> {
    acc: Accumulator,
    fold: F,
    pair: P,
}

impl<F, P> Numbers for Fold<F, P>
where
    F: Fn(&mut Accumulator, i64) + Copy,
    P: PairFold,
{
    #[inline(always)]
    fn number(&mut self, _: u64, value: i64) {
        (self.fold)(&mut self.acc, value)
    }

    #[inline(always)]
    fn snapshot(&self) -> Option<Self> {
        Some(*self)
    }

    #[inline(always)]
    fn interleave(&mut self, buf: &[u8], a: &mut Cursor, mid: usize, b: &mut Cursor) {
        let partial = interleave(buf, a, mid, b, self.pair);
        self.pair.finish(&mut self.acc, partial);
    }
}

/// How [`interleave`] folds pairs of short numbers (below 10^7 in magnitude): into a
/// partial result of its own, which the loop keeps in registers (the accumulator's
/// 128- and 192-bit fields took more than the loop had), folded into the accumulator
/// after the loop.
trait PairFold: Copy {
    type Partial: Copy;
    fn start(self) -> Self::Partial;
    fn add(self, partial: &mut Self::Partial, a: Short, b: Short);
    fn finish(self, acc: &mut Accumulator, partial: Self::Partial);
}

#[derive(Clone, Copy)]
struct MinPairs;

impl PairFold for MinPairs {
    type Partial = i64;
    #[inline(always)]
    fn start(self) -> i64 {
        i64::MAX
    }
    #[inline(always)]
    fn add(self, partial: &mut i64, a: Short, b: Short) {
        *partial = (*partial).min(a.value().min(b.value()));
    }
    #[inline(always)]
    fn finish(self, acc: &mut Accumulator, partial: i64) {
        // i64::MAX when no pair was taken: the minimum's own start, so no change.
        acc.fold_min(partial);
    }
}

#[derive(Clone, Copy)]
struct MaxPairs;

impl PairFold for MaxPairs {
    type Partial = i64;
    #[inline(always)]
    fn start(self) -> i64 {
        i64::MIN
    }
    #[inline(always)]
    fn add(self, partial: &mut i64, a: Short, b: Short) {
        *partial = (*partial).max(a.value().max(b.value()));
    }
    #[inline(always)]
    fn finish(self, acc: &mut Accumulator, partial: i64) {
        acc.fold_max(partial);
    }
}

/// Sums of pairs, each below 2^25 in magnitude, in an `i64`: a buffer of at most
/// [`INTERLEAVE_MAX`] bytes gives at most 2^35 pairs, so the sum stays below 2^60.
#[derive(Clone, Copy)]
struct SumPairs;

impl PairFold for SumPairs {
    type Partial = i64;
    #[inline(always)]
    fn start(self) -> i64 {
        0
    }
    #[inline(always)]
    fn add(self, partial: &mut i64, a: Short, b: Short) {
        *partial = partial.wrapping_add(a.value().wrapping_add(b.value()));
    }
    #[inline(always)]
    fn finish(self, acc: &mut Accumulator, partial: i64) {
        acc.fold_sum(partial);
    }
}

/// Sums of squares, the signs dropped, each pair's below 2^48, in a `u128`.
#[derive(Clone, Copy)]
struct SosPairs;

impl PairFold for SosPairs {
    type Partial = u128;
    #[inline(always)]
    fn start(self) -> u128 {
        0
    }
    #[inline(always)]
    fn add(self, partial: &mut u128, a: Short, b: Short) {
        let square = |m: u64| m.wrapping_mul(m);
        let pair = square(a.magnitude).wrapping_add(square(b.magnitude));
        *partial = partial.wrapping_add(u128::from(pair));
    }
    #[inline(always)]
    fn finish(self, acc: &mut Accumulator, partial: u128) {
        acc.fold_squares(partial);
    }
}

/// No values: the lines are checked and counted only.
struct Checked;

impl Numbers for Checked {
    const CHECK: bool = true;

    #[inline(always)]
    fn number(&mut self, _: u64, _: i64) {}
}

/// Where [`scan`] is in a buffer.
struct Cursor {
    /// Start of the current line.
    start: usize,
    /// Start of the next block to search for newlines.
    next: usize,
    /// The newlines of the block before `next` not yet taken, one bit per byte.
    newlines: u64,
    /// Lines completed.
    lines: u64,
}

/// Passes every line the fast path takes to `sink`, block by block; stops at the end
/// of a line it does not take (returned, with `at.lines` counting it and `at.start` its
/// start), or with `None` at the end of `buf` or once the open line is long enough to
/// be decided, leaving `at.start` at the start of the unfinished line. The checking
/// sink's scan, for its blocks of plain lines taken at once; sinks of values go line
/// by line ([`scan_lines`]), which is faster when values are made.
#[inline(always)]
fn scan<N: Numbers>(buf: &[u8], at: &mut Cursor, out: &mut N) -> Option<usize> {
    // For a sink that takes runs, a block's numbers are gathered here first.
    let mut values = [0i64; BLOCK];
    // For a checking sink: the lines of the block after its first newline are all plain
    // (see [`plain_lines`]). Only for a block whose newlines are untouched, so never on
    // entry, when the block may be half taken.
    let mut vouched = false;
    loop {
        let base = at.next.wrapping_sub(BLOCK);
        let mut taken = 0usize;
        while at.newlines != 0 {
            let end = base.wrapping_add(at.newlines.trailing_zeros() as usize);
            at.newlines &= at.newlines - 1;
            match fast_number(buf, at.start, end) {
                // A block holds at most BLOCK / 2 numbers: the gathered ones are handed
                // over after it, never when full.
                Some(v) => take_value(out, at, &mut values, &mut taken, v),
                None => {
                    hand_over(out, at, &values, taken);
                    at.lines += 1;
                    return Some(end);
                }
            }
            at.start = end + 1;
            if N::CHECK && vouched {
                // The first line was taken above; the rest are plain, so valid numbers.
                vouched = false;
                if at.newlines != 0 {
                    let last = (BLOCK - 1) - at.newlines.leading_zeros() as usize;
                    at.lines += u64::from(at.newlines.count_ones());
                    at.start = base.wrapping_add(last) + 1;
                    at.newlines = 0;
                }
            }
        }
        hand_over(out, at, &values, taken);
        if at.next.saturating_sub(at.start) >= DECIDED {
            // A line this long with no newline yet is decided: do not scan on.
            return None;
        }
        if let Some(block) = buf.get(at.next..).and_then(|b| b.first_chunk::<BLOCK>()) {
            at.newlines = newline_mask(block);
            vouched = N::CHECK && plain_lines(block, at.newlines);
        } else {
            // The last, shorter block, padded with zeros (which are not newlines).
            let rest = buf.get(at.next..).unwrap_or(&[]);
            if rest.is_empty() {
                return None;
            }
            let mut padded = [0u8; BLOCK];
            for (to, from) in padded.iter_mut().zip(rest) {
                *to = *from;
            }
            at.newlines = newline_mask(&padded);
        }
        at.next += BLOCK;
    }
}

/// Bytes [`scan_lines`] reads from a line's start: the longest line it finds the end
/// of is 23 bytes (a full-range number is at most 20).
const WINDOW: usize = 24;

/// [`scan`]'s contract, for a sink that takes values and the lines that end before
/// `limit`: each line's end is found from its start, a word at a time (see
/// [`next_line`]), rather than from a block's newline mask, whose 64-bit gathers cost
/// more a line than the lines' own words when lines are short. Stops for a line of
/// [`WINDOW`] bytes or more, and for the lines of the buffer's last `WINDOW` bytes (a
/// handful a chunk), which [`parse_line`] takes.
#[inline(always)]
fn scan_lines<N: Numbers>(buf: &[u8], at: &mut Cursor, limit: usize, out: &mut N) -> Option<usize> {
    // For a sink that takes runs, up to a block of numbers are gathered here first.
    let mut values = [0i64; BLOCK];
    let mut taken = 0usize;
    while at.start < limit {
        let Some((len, value)) = next_line(buf, at.start) else {
            break;
        };
        let end = at.start + len;
        match value {
            Some(v) => take_value(out, at, &mut values, &mut taken, v),
            None => {
                hand_over(out, at, &values, taken);
                at.lines += 1;
                return Some(end);
            }
        }
        at.start = end + 1;
    }
    hand_over(out, at, &values, taken);
    // The last bytes before `limit`, or a line too long for the window.
    let nl = find_newline(buf.get(at.start..limit)?)?;
    at.lines += 1;
    Some(at.start + nl)
}

/// The line that starts at `buf[start]`, from the [`WINDOW`] bytes there: its length
/// (without the `\n`) and its number, if the fast path takes it (`-?[0-9]{1,19}` within
/// the `i64` range). `None` when fewer than `WINDOW` bytes are left or the line is
/// longer. A line of up to 7 bytes (every number in [-9999999, 9999999]) is converted
/// from its first word, which found its end ([`short_line_of`]); a longer one by
/// [`fast_number`].
#[inline(always)]
fn next_line(buf: &[u8], start: usize) -> Option<(usize, Option<i64>)> {
    let window = buf.get(start..)?.first_chunk::<WINDOW>()?;
    // The window's three words, each taken by position (a zip over `words` keeps, at
    // opt-level z, a panic path in the zip's set-up, which divides by the chunk size).
    let [w0, w1, w2] = [0, 8, 16].map(|at| word_at(window, at).unwrap_or(0));
    // Only the lowest flag of `newline_flags` is exact, and only that one is used.
    let z0 = newline_flags(w0);
    if z0 != 0 {
        let short = short_line_of(w0);
        let value = (short.bad == 0).then(|| short.number.value());
        return Some((short.len, value));
    }
    let (z1, z2) = (newline_flags(w1), newline_flags(w2));
    let len = if z1 != 0 {
        8 + (z1.trailing_zeros() / 8) as usize
    } else if z2 != 0 {
        16 + (z2.trailing_zeros() / 8) as usize
    } else {
        return None;
    };
    Some((len, fast_number(buf, start, start + len)))
}

/// Folds the numbers of the first `lines` lines of `buf` into `out`, in order, with
/// [`parse_line`]: the lines before a bad one, after [`interleave`] folded more.
fn refold<N: Numbers>(buf: &[u8], lines: u64, out: &mut N) {
    let mut rest = buf;
    for line in 1..=lines {
        let Some(nl) = find_newline(rest) else {
            return;
        };
        if let Ok(Some(v)) = parse_line(rest.get(..nl).unwrap_or(&[])) {
            out.number(line, v);
        }
        rest = rest.get(nl + 1..).unwrap_or(&[]);
    }
}

/// The word at `buf[start]`, little-endian.
#[inline(always)]
fn word_at(buf: &[u8], start: usize) -> Option<u64> {
    Some(u64::from_le_bytes(*buf.get(start..)?.first_chunk::<8>()?))
}

/// Smallest buffer a fold takes as two halves at once: below it, the halves' set-up
/// is not worth it (and small buffers stay the plain path's).
const INTERLEAVE_MIN: usize = 512;

/// Largest buffer taken as two halves at once: it bounds the pairs [`interleave`] folds
/// into one partial result (see [`SumPairs`]). Chunks are far smaller (and on 32-bit
/// targets no buffer reaches it).
const INTERLEAVE_MAX: u64 = 1 << 36;

/// Where a fold's second cursor starts in `buf`: just after the first newline at or
/// past its middle, if `buf` is long enough and there is one within [`DECIDED`] bytes.
fn halfway(buf: &[u8]) -> Option<usize> {
    if buf.len() < INTERLEAVE_MIN || buf.len() as u64 > INTERLEAVE_MAX {
        return None;
    }
    let mid = buf.len() / 2;
    let after = buf.get(mid..)?;
    let nl = find_newline(after.get(..DECIDED).unwrap_or(after))?;
    Some(mid + nl + 1)
}

/// Takes the lines of two parts of `buf` at once, one each a step: `a`'s, which end
/// before `mid`, and `b`'s from `mid` on, while both are numbers of at most 7 bytes
/// ([`short_line_of`]), and returns their fold by `pairs`. Finding a line's end from
/// its start is a chain of dependent steps (load, match, count, add) a line long; two
/// independent chains keep the core busy while each waits. Stops, with both cursors at
/// a line not yet taken, when either line is not one the fast path takes, or `a` is
/// within a word of `mid`.
#[inline(never)]
fn interleave<P: PairFold>(
    buf: &[u8],
    a: &mut Cursor,
    mid: usize,
    b: &mut Cursor,
    pairs: P,
) -> P::Partial {
    let mut partial = pairs.start();
    // Lines taken by each cursor, added to both once at the end (a fold ignores the
    // line numbers).
    let mut taken = 0u64;
    let (mut ia, mut ib) = (a.start, b.start);
    while ia < mid {
        let (Some(wa), Some(wb)) = (word_at(buf, ia), word_at(buf, ib)) else {
            break;
        };
        // Both lines read without a branch, then one test for the two.
        let (la, lb) = (short_line_of(wa), short_line_of(wb));
        if la.bad | lb.bad != 0 {
            break;
        }
        pairs.add(&mut partial, la.number, lb.number);
        ia += la.len + 1;
        ib += lb.len + 1;
        taken += 1;
    }
    a.start = ia;
    b.start = ib;
    a.lines += taken;
    b.lines += taken;
    partial
}

/// Smallest `spare` for which runs take a buffer's halves at once.
const SPARE_MIN: usize = BLOCK;

/// [`interleave`] for a sink of runs, in order: `a`'s numbers handed over as runs (a
/// block at a time), `b`'s kept in `spare`, while both lines are short numbers, `a` has
/// not reached `mid` and `spare` has room. Returns how many numbers `spare` holds.
#[inline(never)]
fn interleave_runs<N: Numbers>(
    buf: &[u8],
    a: &mut Cursor,
    mid: usize,
    b: &mut Cursor,
    out: &mut N,
    spare: &mut [i64],
) -> usize {
    let mut values = [0i64; BLOCK];
    let mut taken = 0usize;
    let mut kept = 0usize;
    let (mut ia, mut ib) = (a.start, b.start);
    while ia < mid && kept < spare.len() {
        let (Some(wa), Some(wb)) = (word_at(buf, ia), word_at(buf, ib)) else {
            break;
        };
        let (la, lb) = (short_line_of(wa), short_line_of(wb));
        if la.bad | lb.bad != 0 {
            break;
        }
        if let (Some(va), Some(vb)) = (values.get_mut(taken), spare.get_mut(kept)) {
            *va = la.number.value();
            *vb = lb.number.value();
        }
        ia += la.len + 1;
        ib += lb.len + 1;
        kept += 1;
        taken += 1;
        if taken == BLOCK {
            a.start = ia;
            hand_over(out, a, &values, taken);
            taken = 0;
        }
    }
    a.start = ia;
    hand_over(out, a, &values, taken);
    b.start = ib;
    b.lines += kept as u64;
    kept
}

/// The high bit of `x`'s first `\n` byte, with possibly false flags above it (the
/// short form of [`zero_bytes`]: a borrow only runs upward from a zero byte); 0 if
/// there is none.
#[inline(always)]
fn newline_flags(w: u64) -> u64 {
    let x = w ^ splat(b'\n');
    x.wrapping_sub(splat(1)) & !x & HIGH_BITS
}

/// A number of at most 7 digits, as [`short_line_of`] reads it: a magnitude below 10^7
/// and a sign.
#[derive(Clone, Copy)]
struct Short {
    magnitude: u64,
    /// All ones for a negative number, else 0.
    sign: u64,
}

impl Short {
    #[inline(always)]
    fn value(self) -> i64 {
        // Far inside the i64 range: negated by two's complement.
        (self.magnitude ^ self.sign).wrapping_sub(self.sign) as i64
    }
}

/// A line of at most 7 bytes read from the word `w` at its start, with no branch:
/// its length (up to the first newline), and the number if it is `-?[0-9]{1,7}`; any
/// other line (a longer one, one with other bytes, no newline in `w`) has a non-zero
/// `bad` and is left to the slower paths. As [`fast_number`] for the lines it takes.
#[derive(Clone, Copy)]
struct ShortLine {
    len: usize,
    number: Short,
    bad: u64,
}

#[inline(always)]
fn short_line_of(w: u64) -> ShortLine {
    // Bit 64 (no newline in `w`) makes `len` 8, which the length test below refuses.
    let tz = newline_flags(w).trailing_zeros();
    let len = (tz / 8) as usize;
    let negative = u64::from(w as u8 == b'-');
    let sign = negative.wrapping_neg();
    // 1 to 7 digits after the sign, and at most 7 bytes: 1 + sign <= len <= 7.
    let digits = len.wrapping_sub(negative as usize);
    let too_long_or_empty = digits.wrapping_sub(1) >= 7 - negative as usize;
    // The line's bytes as digit values, the sign's byte made a zero digit; shifted to
    // the top of the word, which drops the newline and what follows it and brings in
    // zero bytes (zero digits, which lead) from below (for a line that passes the
    // length test, `len` is 1 to 7 and the shift 8 to 56).
    let t = (w ^ splat(b'0') ^ (sign & u64::from(b'-' ^ b'0'))).wrapping_shl(71 - tz);
    // As in [`digit_word`]: a carry can add a false flag, never hide one.
    let not_digits = (t | t.wrapping_add(splat(0x76))) & HIGH_BITS;
    // [`eight_digits`], its last step by 32-bit halves: no 64-bit constant, of which
    // the interleaved loop has more than registers.
    let pairs = t.wrapping_mul(1 + (10 << 8)) >> 8;
    let fours = (pairs & 0x00ff_00ff_00ff_00ff).wrapping_mul(1 + (100 << 16)) >> 16;
    let magnitude = u64::from(fours as u16) * 10_000 + u64::from((fours >> 32) as u16);
    ShortLine {
        len,
        number: Short { magnitude, sign },
        bad: not_digits | u64::from(too_long_or_empty),
    }
}

/// Takes a number the fast path made, on the line after `at.lines`: for a sink that
/// takes runs, into `values` after the `taken` gathered there (handed over when full);
/// for any other, to the sink at once.
#[inline(always)]
fn take_value<N: Numbers>(
    out: &mut N,
    at: &mut Cursor,
    values: &mut [i64; BLOCK],
    taken: &mut usize,
    v: i64,
) {
    if N::RUNS {
        if let Some(slot) = values.get_mut(*taken) {
            *slot = v;
        }
        *taken += 1;
        if *taken == BLOCK {
            hand_over(out, at, values, *taken);
            *taken = 0;
        }
    } else {
        at.lines += 1;
        out.number(at.lines, v);
    }
}

/// Hands the first `taken` of a block's gathered numbers to a sink that takes runs, as
/// the lines after `at.lines`, and counts them (a sink that takes numbers one by one
/// has had them already).
#[inline(always)]
fn hand_over<N: Numbers>(out: &mut N, at: &mut Cursor, values: &[i64; BLOCK], taken: usize) {
    if N::RUNS {
        out.run(at.lines + 1, values.get(..taken).unwrap_or(values));
        at.lines += taken as u64;
    }
}

/// The first `\n` in a short slice.
fn find_newline(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b'\n')
}

/// Repeats a byte in every byte of a word.
const fn splat(b: u8) -> u64 {
    u64::from_le_bytes([b; 8])
}

const HIGH_BITS: u64 = splat(0x80);
const LOW_SEVEN: u64 = splat(0x7f);

/// The high bit of every zero byte of `x`, exactly (no false positives after a zero, as
/// the shorter `(x - 0x01..) & !x & 0x80..` has): `(b & 0x7f) + 0x7f` sets the high bit
/// of every byte but zero and never carries into the next byte.
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW_SEVEN) + LOW_SEVEN) | x) & HIGH_BITS
}

/// The 8-byte words of a block, little-endian (a block is a whole number of them).
#[inline(always)]
fn words(block: &[u8]) -> impl Iterator<Item = u64> + '_ {
    block
        .chunks_exact(8)
        .map(|w| w.first_chunk::<8>().map_or(0, |w| u64::from_le_bytes(*w)))
}

/// `mask` (one bit per byte of the words so far) with the next word's bytes added: the
/// high bit of each byte of `high`, the word's first byte the lowest new bit.
#[inline(always)]
fn gather(mask: u64, high: u64) -> u64 {
    // Gathers the eight high bits into the top byte: each lands at bit 56 + its byte
    // index and no two partial products meet. Shifting the mask down a byte per word
    // (rather than each byte up to its place) keeps the compiler from vectorising this
    // with emulated 64-bit multiplies, which is slower.
    let byte = (high >> 7).wrapping_mul(0x0102_0408_1020_4080) & (0xff << 56);
    (mask >> 8) | byte
}

/// One bit per byte of `block` (at most 64 bytes, the first byte the lowest bit): set
/// where the byte is `\n`.
#[inline(always)]
fn newline_mask(block: &[u8]) -> u64 {
    words(block).fold(0, |mask, w| gather(mask, zero_bytes(w ^ splat(b'\n'))))
}

/// For a checking scan: whether every line of `block` that starts after its first
/// newline and ends in it is plain: `-?[0-9]{1,18}` (at most 18 bytes, so within the
/// `i64` range whatever its digits), with `newlines` the block's [`newline_mask`]. Such
/// lines need no other check and, for a sink that takes no values, no conversion.
/// `false` (the lines then go one by one) also for a block with any byte but a digit,
/// `-` or `\n` anywhere in it.
#[inline(always)]
fn plain_lines(block: &[u8; BLOCK], newlines: u64) -> bool {
    let rest = newlines & newlines.wrapping_sub(1);
    // Every newline after the first has a newline 1 to 19 bytes before it: a line of at
    // most 18 bytes. Decided first, from the newlines alone: longer lines are common
    // (full-range numbers), and then the block's bytes are not worth classifying.
    let s2 = (newlines << 1) | (newlines << 2);
    let s4 = s2 | (s2 << 2);
    let s8 = s4 | (s4 << 4);
    let near = (s8 | (s8 << 8)) | (s4 << 15);
    if rest == 0 || rest & !near != 0 {
        return false;
    }
    let mut minus = 0u64;
    let mut other = 0u64;
    for w in words(block) {
        let nl = zero_bytes(w ^ splat(b'\n'));
        let mi = zero_bytes(w ^ splat(b'-'));
        // As in [`digit_word`]: a carry can add a false flag, never hide one.
        let t = w ^ splat(b'0');
        let not_digit = (t | t.wrapping_add(splat(0x76))) & HIGH_BITS;
        other |= not_digit & !nl & !mi;
        minus = gather(minus, mi);
    }
    if other != 0 {
        return false;
    }
    // The signs after the first newline, through the last one.
    let first = newlines & newlines.wrapping_neg();
    let last = 1u64 << (63 - newlines.leading_zeros());
    let minus = minus & (last | (last - 1)) & !(first | (first - 1));
    // A sign only first on its line; the byte before each newline a digit (no other
    // bytes are left), so no line is empty or just a sign, and a sign has a digit after.
    (minus & !(newlines << 1)) | (rest & ((newlines | minus) << 1)) == 0
}

/// Bytes of a little-endian word, the last `n` of which (1 to 8) are meant to be ASCII
/// digits: the bytes that are not digits there (high bit set), and the digit values
/// with the other bytes cleared.
#[inline(always)]
fn digit_word(w: u64, n: usize) -> (u64, u64) {
    let keep = u64::MAX.wrapping_shl(8 * (8 - n as u32));
    let t = w ^ splat(b'0');
    // A byte of t is a digit's value iff below 10: its high bit, or 0x76 added to it,
    // says it is not. The add carries out of a byte only from t >= 0x8a, whose own high
    // bit is set: a carry can add a false flag above a true one but never hide one, so
    // "some kept byte is not a digit" is exact (and a carry from the bytes before the
    // line, which are digits, `\n` or `-` in real files, only sends it the slow way).
    let not_digit = (t | t.wrapping_add(splat(0x76))) & HIGH_BITS & keep;
    (not_digit, t & keep)
}

/// The number written by eight digit values, one per byte, the first (most
/// significant) in the lowest byte: pairs, then fours, then all eight, each step one
/// multiply (Lemire, "Fast integer parsing", 2018; Mula's SWAR digit reduction).
#[inline(always)]
fn eight_digits(v: u64) -> u64 {
    let pairs = v.wrapping_mul(10).wrapping_add(v >> 8);
    let lo = pairs & 0x0000_00ff_0000_00ff;
    let hi = (pairs >> 16) & 0x0000_00ff_0000_00ff;
    (lo.wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add(hi.wrapping_mul(1 + (10_000 << 32))))
        >> 32
}

/// The common case, for the line `buf[start..end]`: `-?[0-9]{1,19}` within the `i64`
/// range. `None` leaves the line to [`parse_line`]. Reads up to 24 bytes before `end`,
/// earlier lines included, and masks off what is not the line's; the first lines of a
/// buffer, with fewer bytes before them, are left to [`parse_line`] too.
#[inline(always)]
fn fast_number(buf: &[u8], start: usize, end: usize) -> Option<i64> {
    let negative = buf.get(start) == Some(&b'-');
    let digits = end.wrapping_sub(start).wrapping_sub(usize::from(negative));
    // The words ending at `end`, 8 and 16 bytes before it (`word_at` of a start that
    // wraps below 0 is `None`, as is one whose word passes the end of `buf`).
    let w0 = word_at(buf, end.wrapping_sub(8))?;
    let magnitude = if digits.wrapping_sub(1) < 8 {
        let (bad, v) = digit_word(w0, digits);
        if bad != 0 {
            return None;
        }
        eight_digits(v)
    } else if digits.wrapping_sub(9) < 8 {
        let w1 = word_at(buf, end.wrapping_sub(16))?;
        let (bad0, v0) = digit_word(w0, 8);
        let (bad1, v1) = digit_word(w1, digits - 8);
        if bad0 | bad1 != 0 {
            return None;
        }
        eight_digits(v1) * 100_000_000 + eight_digits(v0)
    } else if digits.wrapping_sub(17) < 3 {
        let w1 = word_at(buf, end.wrapping_sub(16))?;
        let w2 = word_at(buf, end.wrapping_sub(24))?;
        let (bad0, v0) = digit_word(w0, 8);
        let (bad1, v1) = digit_word(w1, 8);
        let (bad2, v2) = digit_word(w2, digits - 16);
        if bad0 | bad1 | bad2 != 0 {
            return None;
        }
        // At most 19 digits: below 10^19 < 2^64, exact in u64.
        let m = eight_digits(v2) * 10_000_000_000_000_000
            + eight_digits(v1) * 100_000_000
            + eight_digits(v0);
        let limit = if negative {
            1u64 << 63
        } else {
            i64::MAX as u64
        };
        if m > limit {
            return None;
        }
        m
    } else {
        return None;
    };
    // 2^63 casts to i64::MIN, which wrapping_neg leaves as it is.
    let v = magnitude as i64;
    Some(if negative { v.wrapping_neg() } else { v })
}

/// A plain, obviously correct parser of whole files, for tests and fuzzing to hold the
/// fast path to: one line at a time, each decided by the format's rules written out
/// directly, values by `i64::from_str`. Not for use: it is slow on purpose.
#[doc(hidden)]
pub mod reference {
    use super::{ParseError, BYTE_ORDER_MARK, MAX_LINE};

    /// Calls `sink(line, value)` for each number of `data`, a whole file; stops at the
    /// first bad line and returns its number and error.
    ///
    /// # Errors
    /// The first bad line's number and what is wrong with it.
    pub fn parse_file<F: FnMut(u64, i64)>(
        data: &[u8],
        mut sink: F,
    ) -> Result<(), (u64, ParseError)> {
        let mut rest = data.strip_prefix(&BYTE_ORDER_MARK[..]).unwrap_or(data);
        let mut number = 0;
        while !rest.is_empty() {
            number += 1;
            let (line, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(nl) => (
                    rest.get(..nl).unwrap_or(&[]),
                    rest.get(nl + 1..).unwrap_or(&[]),
                ),
                None => (rest, &[][..]),
            };
            match parse(line) {
                Ok(Some(v)) => sink(number, v),
                Ok(None) => {}
                Err(e) => return Err((number, e)),
            }
            rest = next;
        }
        Ok(())
    }

    /// One line without its `\n`.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn parse(line: &[u8]) -> Result<Option<i64>, ParseError> {
        // A final '\r' is not part of the line.
        let body = line.strip_suffix(b"\r").unwrap_or(line);
        // The first non-text byte within the limit, else the length, else the text.
        for (i, &b) in body.iter().enumerate() {
            let text = b == b'\t' || (b' '..=b'~').contains(&b);
            if i < MAX_LINE && !text {
                return Err(ParseError::NotText(b));
            }
        }
        if body.len() > MAX_LINE {
            return Err(ParseError::TooLong);
        }
        let blank = |b: &u8| *b == b' ' || *b == b'\t';
        let first = body.iter().position(|b| !blank(b));
        let last = body.iter().rposition(|b| !blank(b));
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(None);
        };
        let text = body.get(first..=last).unwrap_or(&[]);
        let unsigned = match text {
            [b'-' | b'+', rest @ ..] => rest,
            _ => text,
        };
        if !unsigned.is_empty() && unsigned.iter().all(u8::is_ascii_digit) {
            let s = core::str::from_utf8(text).map_err(|_| ParseError::NotAnInteger)?;
            return s
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ParseError::OutOfRange);
        }
        // Which mistake: digits, then what comes after them.
        let digits = unsigned.iter().take_while(|b| b.is_ascii_digit()).count();
        let after = unsigned.get(digits..).unwrap_or(&[]);
        if digits == 0 {
            return Err(ParseError::NotAnInteger);
        }
        let value_char = |b: &u8| b.is_ascii_digit() || *b == b'-' || *b == b'+';
        match after.split_first() {
            Some((b'.' | b'e' | b'E', more)) => {
                // `text` ends in a non-blank, so only leading blanks are left to skip.
                if more.iter().skip_while(|b| blank(b)).all(value_char) {
                    Err(ParseError::DecimalForm)
                } else {
                    Err(ParseError::NotAnInteger)
                }
            }
            Some((b',' | b';', _)) => Err(ParseError::SeveralValues),
            Some((b' ' | b'\t', more)) => match more.iter().find(|b| !blank(b)) {
                Some(b) if value_char(b) => Err(ParseError::SeveralValues),
                _ => Err(ParseError::NotAnInteger),
            },
            _ => Err(ParseError::NotAnInteger),
        }
    }
}
#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::string::ToString;
    use std::vec;
    use std::vec::Vec;

    /// Every number of `input` fed in `chunk`-byte pieces, with its line; and the same
    /// through [`LineReader::feed_runs`], which must agree number for number and on
    /// the error.
    fn all(input: &[u8], chunk: usize) -> Result<Vec<(u64, i64)>, LineError> {
        let one_by_one = |out: &mut Vec<(u64, i64)>| {
            let mut r = LineReader::new();
            for c in input.chunks(chunk.max(1)) {
                r.feed(c, |l, v| out.push((l, v)))?;
            }
            r.finish(|l, v| out.push((l, v)))
        };
        let in_runs = |out: &mut Vec<(u64, i64)>| {
            let mut r = LineReader::new();
            for c in input.chunks(chunk.max(1)) {
                r.feed_runs(c, |first, vs| {
                    assert!(!vs.is_empty() && vs.len() <= 64);
                    out.extend((first..).zip(vs.iter().copied()));
                })?;
            }
            r.finish(|l, v| out.push((l, v)))
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (ra, rb) = (one_by_one(&mut a), in_runs(&mut b));
        assert_eq!(a, b, "numbers before the end or the error");
        assert_eq!(
            ra.as_ref().map_err(|e| e.to_string()),
            rb.as_ref().map_err(|e| e.to_string())
        );
        let (rc, counted) = check(input, chunk);
        assert_eq!(
            ra.as_ref().map_err(|e| e.to_string()),
            rc.as_ref().map_err(|e| e.to_string()),
            "checked"
        );
        assert_eq!(counted, a.len() as u64, "numbers checked");
        ra.map(|()| a)
    }

    /// `feed_check` over `input` in chunks: how it ended and the numbers it counted.
    fn check(input: &[u8], chunk: usize) -> (Result<(), LineError>, u64) {
        let mut r = LineReader::new();
        let end = input
            .chunks(chunk.max(1))
            .find_map(|c| r.feed_check(c).err())
            .map_or_else(|| r.finish(|_, _| {}), Err);
        (end, r.numbers())
    }

    #[test]
    fn friendly_forms_are_accepted() {
        assert_eq!(parse_line(b"42"), Ok(Some(42)));
        assert_eq!(parse_line(b"-42\r"), Ok(Some(-42)));
        assert_eq!(parse_line(b" \t+7 \t"), Ok(Some(7)));
        assert_eq!(parse_line(b"000000000000000000000000012"), Ok(Some(12)));
        assert_eq!(parse_line(b""), Ok(None));
        assert_eq!(parse_line(b" \t\r"), Ok(None));
        assert_eq!(parse_line(b"9223372036854775807"), Ok(Some(i64::MAX)));
        assert_eq!(parse_line(b"-9223372036854775808"), Ok(Some(i64::MIN)));
        assert_eq!(parse_line(b"-0"), Ok(Some(0)));
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(parse_line(b"abc"), Err(ParseError::NotAnInteger));
        assert_eq!(parse_line(b"-"), Err(ParseError::NotAnInteger));
        assert_eq!(parse_line(b"+-3"), Err(ParseError::NotAnInteger));
        assert_eq!(parse_line(b"12abc"), Err(ParseError::NotAnInteger));
        assert_eq!(parse_line(b"1.5"), Err(ParseError::DecimalForm));
        assert_eq!(parse_line(b"2e3"), Err(ParseError::DecimalForm));
        assert_eq!(parse_line(b"1,2"), Err(ParseError::SeveralValues));
        assert_eq!(parse_line(b"3 4"), Err(ParseError::SeveralValues));
        assert_eq!(
            parse_line(b"9223372036854775808"),
            Err(ParseError::OutOfRange)
        );
        assert_eq!(
            parse_line(b"-9223372036854775809"),
            Err(ParseError::OutOfRange)
        );
        assert_eq!(
            parse_line(b"99999999999999999999999999"),
            Err(ParseError::OutOfRange)
        );
        assert_eq!(parse_line(b"1\x002"), Err(ParseError::NotText(0)));
        assert_eq!(parse_line(b"\xff"), Err(ParseError::NotText(0xff)));
        assert_eq!(parse_line(&[b' '; 129]), Err(ParseError::TooLong));
    }

    #[test]
    fn stream_counts_lines_and_skips_blanks() {
        let input = b"1\n\n-2\r\n  3 \n+4";
        for chunk in 1..=input.len() {
            assert_eq!(
                all(input, chunk).unwrap(),
                [(1, 1), (3, -2), (4, 3), (5, 4)]
            );
        }
    }

    #[test]
    fn stream_errors_carry_line_and_excerpt() {
        let input = b"1\n2\n  abc \n4\n";
        for chunk in 1..=input.len() {
            let e = all(input, chunk).unwrap_err();
            assert_eq!(e.line, 3);
            assert_eq!(e.error, ParseError::NotAnInteger);
            assert_eq!(e.to_string(), "3: \"abc\" is not an integer");
        }
        let mut long = Vec::from(&b"5\n"[..]);
        long.extend(core::iter::repeat(b'7').take(300));
        long.push(b'\n');
        for chunk in [1, 7, 64, 1000] {
            let e = all(&long, chunk).unwrap_err();
            assert_eq!((e.line, e.error), (2, ParseError::TooLong));
            assert_eq!(e.excerpt.len(), EXCERPT_LEN);
            assert_eq!(
                e.to_string(),
                "2: line longer than 128 bytes: \"...7777777777777777777777777777777777777777\" \
                 at bytes 90-129"
            );
        }
        let e = all(b"1\x00\n", 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1: \"1\\x00\" contains the non-text byte 0x00 at byte 2"
        );
    }

    #[test]
    fn long_line_excerpt_does_not_depend_on_chunking() {
        // Found by fuzzing: trailing blanks inside the first MAX_LINE bytes were trimmed
        // from a chunked long line but not from a whole one.
        let mut long = Vec::from(&b"x"[..]);
        long.extend(core::iter::repeat(b' ').take(200));
        long.extend_from_slice(b"y\n");
        let whole = all(&long, long.len()).unwrap_err();
        for chunk in [1, 5, 100] {
            assert_eq!(all(&long, chunk).unwrap_err(), whole);
        }
        assert_eq!(whole.excerpt.as_slice(), b"x");
    }

    #[test]
    fn clones_keep_partial_lines_and_errors() {
        // Clone is written by hand (see `copy_bytes`); it must still copy everything.
        let mut r = LineReader::new();
        r.feed(b"1\n-2", |_, _| {}).unwrap();
        let mut c = r.clone();
        let mut got = Vec::new();
        c.feed(b"3\n", |l, v| got.push((l, v))).unwrap();
        assert_eq!(got, [(2, -23)]);
        let e = all(b"ok\n", 1).unwrap_err();
        assert_eq!(e.clone(), e);
        assert_eq!(e.excerpt.as_slice(), b"ok");
    }

    #[test]
    fn reader_stays_failed() {
        let mut r = LineReader::new();
        let mut seen = Vec::new();
        assert!(r.feed(b"x\n1\n", |_, v| seen.push(v)).is_err());
        assert!(r.feed(b"2\n", |_, v| seen.push(v)).is_err());
        assert!(r.finish(|_, v| seen.push(v)).is_err());
        assert!(seen.is_empty());
    }

    /// `fast_number` on `line` placed after enough bytes for its word loads.
    fn fast(line: &[u8]) -> Option<i64> {
        let mut buf = Vec::from(&[b'\n'; 24][..]);
        buf.extend_from_slice(line);
        fast_number(&buf, 24, buf.len())
    }

    #[test]
    fn fast_path_agrees_with_slow_path() {
        for s in [
            "0",
            "-0",
            "7",
            "12345678",
            "-12345678",
            "123456789",
            "1234567890123456",
            "12345678901234567",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "-9223372036854775808",
            "9223372036854775807",
            "-9223372036854775807",
            "0000000000000000001",
        ] {
            let slow = parse_line(s.as_bytes()).unwrap().unwrap();
            assert_eq!(fast(s.as_bytes()), Some(slow), "{s}");
            let mut line = Vec::from(s.as_bytes());
            line.push(b'\n');
            let got = all(&line, line.len()).unwrap();
            assert_eq!(got, [(1, slow)]);
        }
        // Just past the range, or too long: the fast path declines and the error is named.
        for s in [
            "9223372036854775808",
            "-9223372036854775809",
            "9999999999999999999",
            "18446744073709551616",
        ] {
            assert_eq!(fast(s.as_bytes()), None, "{s}");
            let mut line = Vec::from(s.as_bytes());
            line.push(b'\n');
            assert_eq!(
                all(&line, 3).unwrap_err().error,
                ParseError::OutOfRange,
                "{s}"
            );
        }
        // Whatever the fast path does not take whole is left to parse_line.
        for s in [
            "",
            "-",
            "+5",
            " 5",
            "5 ",
            "5\r",
            "1a",
            "a1",
            "--1",
            "1-",
            "123456789012345678901",
        ] {
            assert_eq!(fast(s.as_bytes()), None, "{s:?}");
        }
        // Every digit position of every word is checked.
        for len in 1..=19 {
            for at in 0..len {
                let mut line = vec![b'1'; len];
                for bad in [b'/', b':', b'\n' + 0x80, 0] {
                    line[at] = bad;
                    assert_eq!(fast(&line), None, "{line:?}");
                }
            }
        }
    }

    #[test]
    fn crlf_does_not_count_toward_the_limit() {
        let mut line = vec![b'0'; MAX_LINE - 1];
        line.push(b'5');
        assert_eq!(parse_line(&line), Ok(Some(5)));
        line.push(b'\r');
        assert_eq!(parse_line(&line), Ok(Some(5)));
        line.push(b'\n');
        let mut file = line.clone();
        file.extend_from_slice(b"6\r\n");
        for chunk in [1, 2, 64, 129, 130, 131, file.len()] {
            assert_eq!(all(&file, chunk).unwrap(), [(1, 5), (2, 6)], "{chunk}");
        }
        // One byte more is too long, with or without the '\r'.
        let mut long = vec![b'0'; MAX_LINE];
        long.push(b'5');
        assert_eq!(parse_line(&long), Err(ParseError::TooLong));
        long.push(b'\r');
        assert_eq!(parse_line(&long), Err(ParseError::TooLong));
    }

    /// Feeds `chunk` over and over, never a newline, up to `limit` bytes; returns the
    /// error and how many bytes it took.
    fn endless(chunk: &[u8], limit: usize) -> (LineError, usize) {
        let mut r = LineReader::new();
        let mut fed = 0;
        while fed < limit {
            if let Err(e) = r.feed(chunk, |_, _| panic!("no line ends")) {
                return (e, fed + chunk.len());
            }
            fed += chunk.len();
        }
        panic!("no error after {fed} bytes without a newline");
    }

    #[test]
    fn long_or_binary_lines_fail_without_a_newline() {
        // 100 MB of spaces, or /dev/zero, would never end: the first chunk decides.
        for size in [1, 7, 64, 65536] {
            let (e, fed) = endless(&vec![b' '; size], 1 << 20);
            assert_eq!((e.line, e.error), (1, ParseError::TooLong), "{size}");
            assert!(fed < MAX_LINE + 2 + size, "{size}: {fed}");
            let (e, fed) = endless(&vec![0; size], 1 << 20);
            assert_eq!((e.line, e.error), (1, ParseError::NotText(0)), "{size}");
            assert_eq!(fed, size);
        }
        // After good lines, in the middle of a chunk, with the line counted.
        let mut file = Vec::from(&b"1\n2\n"[..]);
        file.extend(core::iter::repeat(b'9').take(1000));
        let mut r = LineReader::new();
        let mut got = Vec::new();
        let e = r.feed(&file, |l, v| got.push((l, v))).unwrap_err();
        assert_eq!((e.line, e.error), (3, ParseError::TooLong));
        assert_eq!(got, [(1, 1), (2, 2)]);
        // A '\r' at the limit waits for the next byte.
        let mut r = LineReader::new();
        let mut line = vec![b'1'; MAX_LINE];
        line.push(b'\r');
        assert!(r.feed(&line, |_, _| {}).is_ok());
        assert_eq!(
            r.feed(b"x", |_, _| {}).unwrap_err().error,
            ParseError::TooLong
        );
        // A '\r' inside a line is not text, once the next byte shows it is not final.
        let mut r = LineReader::new();
        assert!(r.feed(b"12\r", |_, _| {}).is_ok());
        let e = r.feed(b"3", |_, _| {}).unwrap_err();
        assert_eq!(e.error, ParseError::NotText(b'\r'));
        assert_eq!(
            e.to_string(),
            "1: \"12\\x0d\" contains the non-text byte 0x0d at byte 3"
        );
    }

    #[test]
    fn long_line_excerpt_shows_where_it_went_wrong() {
        let padded = |before: usize, text: &[u8], after: usize| {
            let mut v = vec![b' '; before];
            v.extend_from_slice(text);
            v.extend(core::iter::repeat(b' ').take(after));
            v.push(b'\n');
            v
        };
        let cases: [(Vec<u8>, &str); 4] = [
            (
                padded(126, b"123", 100),
                "1: line longer than 128 bytes: \"123\" at bytes 127-129",
            ),
            (
                padded(200, b"", 0),
                "1: line longer than 128 bytes, blank up to byte 129",
            ),
            (
                padded(3, b"12", 300),
                "1: line longer than 128 bytes: \"12\" at bytes 4-5",
            ),
            (
                padded(10, (1..=50).map(|i| i.to_string()).collect::<Vec<_>>().join(" ").as_bytes(), 0),
                "1: line longer than 128 bytes: \"...0 31 32 33 34 35 36 37 38 39 40 41 42 43\" at bytes 90-129",
            ),
        ];
        for (file, msg) in cases {
            for chunk in [1, 3, 64, file.len()] {
                let e = all(&file, chunk).unwrap_err();
                assert_eq!(e.to_string(), msg, "chunk {chunk}");
            }
        }
    }

    #[test]
    fn byte_order_mark_is_skipped_at_the_start_only() {
        let file = b"\xef\xbb\xbf1\n 2\n3";
        for chunk in 1..=file.len() {
            assert_eq!(all(file, chunk).unwrap(), [(1, 1), (2, 2), (3, 3)]);
        }
        for chunk in 1..=3 {
            assert_eq!(all(b"\xef\xbb\xbf", chunk).unwrap(), []);
        }
        // Anywhere else, or incomplete, it is not text.
        for file in [&b"1\n\xef\xbb\xbf2\n"[..], b"\xef\xbb\xbf\xef\xbb\xbf2\n"] {
            let e = all(file, 1).unwrap_err();
            assert_eq!(e.error, ParseError::NotText(0xef));
        }
        for file in [&b"\xef"[..], b"\xef\xbb", b"\xef\xbb2\n", b"\xef2"] {
            for chunk in 1..=file.len() {
                let e = all(file, chunk).unwrap_err();
                assert_eq!(
                    (e.line, e.error),
                    (1, ParseError::NotText(0xef)),
                    "{file:?}"
                );
            }
        }
        // A reader started in the middle of a file does not skip one.
        let mut r = LineReader::mid_file();
        let e = r.feed(b"\xef\xbb\xbf1\n", |_, _| {}).unwrap_err();
        assert_eq!(e.error, ParseError::NotText(0xef));
    }

    #[test]
    fn decimal_forms_are_not_called_fractions() {
        for s in ["1.0", "1e3", "2.5", "-7E2", "1. 5"] {
            let e = all(s.as_bytes(), 2).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("1: \"{s}\" is not written as an integer (no decimal point or exponent)")
            );
        }
    }

    /// xorshift64*: a fixed sequence for the generated files.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a>(&mut self, items: &[&'a [u8]]) -> &'a [u8] {
            items[self.below(items.len() as u64) as usize]
        }
    }

    /// A line that is usually a number in one of the accepted forms, sometimes wrong.
    fn random_line(rng: &mut Rng, out: &mut Vec<u8>) {
        if rng.below(40) == 0 {
            // Around the ends of the range, where 19 digits may or may not fit.
            out.extend_from_slice(rng.pick(&[
                b"9223372036854775807",
                b"9223372036854775808",
                b"-9223372036854775808",
                b"-9223372036854775809",
                b"9999999999999999999",
                b"-9999999999999999999",
                b"10000000000000000000",
                b"1000000000000000000",
                b"-1000000000000000000",
                b"18446744073709551616",
            ]));
            return;
        }
        let value: i64 = match rng.below(6) {
            0 => rng.below(10) as i64,
            1 => rng.below(2_000_001) as i64 - 1_000_000,
            2 => rng.next() as i64,
            3 => [i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1][rng.below(4) as usize],
            4 => (rng.next() >> rng.below(64)) as i64,
            _ => -((rng.next() >> (1 + rng.below(63))) as i64),
        };
        let mut digits = value.unsigned_abs().to_string().into_bytes();
        if rng.below(20) == 0 {
            let zeros = rng.below(30) as usize;
            digits.splice(0..0, core::iter::repeat(b'0').take(zeros));
        }
        if rng.below(10) == 0 {
            out.extend_from_slice(rng.pick(&[b" ", b"\t", b"  \t"]));
        }
        if value < 0 {
            out.push(b'-');
        } else if rng.below(20) == 0 {
            out.push(b'+');
        }
        out.extend_from_slice(&digits);
        if rng.below(10) == 0 {
            out.extend_from_slice(rng.pick(&[b" ", b"\t", b" \t "]));
        }
        if rng.below(200) == 0 {
            // Something wrong, or odd but fine.
            out.extend_from_slice(rng.pick(&[
                b"0",
                b"9",
                b"x",
                b".5",
                b"e3",
                b",1",
                b" 2",
                b"\x00",
                b"\xef",
                b"\r",
                b"99999999999999999999",
                &[b' '; 120],
            ]));
        }
        if rng.below(20) == 0 {
            out.push(b'\r');
        }
        if rng.below(30) == 0 {
            out.extend_from_slice(rng.pick(&[b"\n", b" \n", b"\r\n"]));
        }
    }

    #[test]
    fn fast_path_agrees_with_the_reference_on_generated_files() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Under Miri (which checks every step, a thousand times slower) 10 rounds, one of
        // them a longer file; the fuzz target csv_reference covers the rest.
        let (rounds, long) = if cfg!(miri) { (10, 600) } else { (300, 3000) };
        for round in 0..rounds {
            let mut file = Vec::new();
            if rng.below(10) == 0 {
                file.extend_from_slice(&BYTE_ORDER_MARK);
            }
            let lines = rng.below(if round % 10 == 0 { long } else { 60 });
            for _ in 0..lines {
                random_line(&mut rng, &mut file);
                file.push(b'\n');
            }
            if rng.below(2) == 0 {
                file.pop();
            }
            let mut want = Vec::new();
            let want_err = reference::parse_file(&file, |l, v| want.push((l, v))).err();
            // Whole, in random chunks, and in the client's 64 KiB chunks.
            let sizes = [file.len().max(1), 1 + rng.below(200) as usize, 65536];
            for size in sizes {
                let mut got = Vec::new();
                let mut r = LineReader::new();
                let mut err = None;
                let mut at = 0;
                while at < file.len() && err.is_none() {
                    let step = if size == 65536 {
                        size
                    } else {
                        1 + rng.below(size as u64) as usize
                    };
                    let end = (at + step).min(file.len());
                    err = r.feed(&file[at..end], |l, v| got.push((l, v))).err();
                    at = end;
                }
                let err = err.or_else(|| r.finish(|l, v| got.push((l, v))).err());
                assert_eq!(got, want, "round {round}, chunks of {size}");
                assert_eq!(
                    err.map(|e| (e.line, e.error)),
                    want_err,
                    "round {round}, chunks of {size}"
                );
                // Parse and reduce in one pass: the same numbers folded, the same error.
                let op = Op::ALL[round % 4];
                let mut expect = Accumulator::new(op);
                want.iter().for_each(|&(_, v)| expect.push(v));
                let (mut acc, mut r) = (Accumulator::new(op), LineReader::new());
                let err = file
                    .chunks(size)
                    .find_map(|c| r.feed_reduce(c, &mut acc).err())
                    .or_else(|| r.finish_reduce(&mut acc).err());
                assert_eq!(acc.finish(), expect.finish(), "round {round}, {op:?}");
                assert_eq!(err.map(|e| (e.line, e.error)), want_err, "round {round}");
                // Checked only: the same count and the same error.
                let (end, counted) = check(&file, size);
                assert_eq!(
                    end.err().map(|e| (e.line, e.error)),
                    want_err,
                    "round {round}"
                );
                assert_eq!(counted, want.len() as u64, "round {round}, checked");
            }
        }
    }

    /// A fold takes a buffer's two halves at once ([`interleave`]), short lines only:
    /// whatever the lines and wherever a flaw (in either half, or none), the same
    /// numbers are folded as by the reference (those before the flaw, and no more),
    /// and the same error is reported, as by `feed`. Runs through a spare
    /// ([`interleave_runs`]) give `feed`'s numbers, lines and error.
    #[test]
    fn folds_of_two_halves_match_the_reference() {
        const ODD: &[&[u8]] = &[
            b"-1000000",
            b"12345678",
            b"-9999999",
            b"9999999",
            b"-",
            b"",
            b"-0",
            b"1x",
            b"5\r",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"9223372036854775808",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Under Miri, files still long enough for two halves (512 bytes), fewer of them.
        let (rounds, most) = if cfg!(miri) { (3, 300) } else { (400, 900) };
        for round in 0..rounds {
            let mut file = Vec::new();
            let lines = 1 + rng.below(most);
            let flaw_at = rng.below(lines + lines / 4);
            for i in 0..lines {
                if i == flaw_at || rng.below(200) == 0 {
                    file.extend_from_slice(ODD[rng.below(ODD.len() as u64) as usize]);
                } else {
                    // At most 7 bytes: the lines the halves are read two at a time on.
                    let negative = rng.below(2) == 0;
                    if negative {
                        file.push(b'-');
                    }
                    for _ in 0..1 + rng.below(7 - u64::from(negative)) {
                        file.push(b'0' + rng.below(10) as u8);
                    }
                }
                file.push(b'\n');
            }
            let mut want = Vec::new();
            let want_err = reference::parse_file(&file, |_, v| want.push(v)).err();
            let fed = all(&file, file.len()).err();
            for op in Op::ALL {
                let mut expect = Accumulator::new(op);
                want.iter().for_each(|&v| expect.push(v));
                for size in [file.len(), 512 + rng.below(600) as usize] {
                    let (mut acc, mut r) = (Accumulator::new(op), LineReader::new());
                    let err = file
                        .chunks(size)
                        .find_map(|c| r.feed_reduce(c, &mut acc).err())
                        .or_else(|| r.finish_reduce(&mut acc).err());
                    let at = format!("round {round}, {op:?}, chunks of {size}");
                    assert_eq!(acc.finish(), expect.finish(), "{at}");
                    assert_eq!(err.as_ref().map(|e| (e.line, e.error)), want_err, "{at}");
                    assert_eq!(err, fed, "{at}");
                }
            }
            // Runs, in order, through a spare that holds a whole half or fills up.
            let mut want_runs = Vec::new();
            let mut r = LineReader::new();
            let want_end = r
                .feed(&file, |l, v| want_runs.push((l, v)))
                .and_then(|()| r.finish(|l, v| want_runs.push((l, v))))
                .err();
            for room in [file.len(), 64 + rng.below(200) as usize] {
                for size in [file.len(), 512 + rng.below(600) as usize] {
                    let (mut got, mut r) = (Vec::new(), LineReader::new());
                    let mut spare = vec![0i64; room];
                    let err = file
                        .chunks(size)
                        .find_map(|c| {
                            r.feed_runs_with(c, &mut spare, |first, vs| {
                                assert!(!vs.is_empty() && vs.len() <= BLOCK);
                                got.extend((first..).zip(vs.iter().copied()));
                            })
                            .err()
                        })
                        .or_else(|| r.finish(|l, v| got.push((l, v))).err());
                    let at = format!("round {round}, spare {room}, chunks of {size}");
                    assert_eq!((&got, &err), (&want_runs, &want_end), "{at}");
                }
            }
        }
    }

    /// A file of plain lines, the kind a checking scan vouches for a block at a time, with
    /// one flaw at a random place (or none): the check finds what the reference finds, on
    /// the same line, and counts the same numbers, whatever the flaw's place in a block.
    #[test]
    fn block_checks_find_every_flaw_in_plain_lines() {
        const FLAWS: &[&[u8]] = &[
            b"",
            b"-",
            b"--1",
            b"1-2",
            b"+5",
            b" 5",
            b"5 ",
            b"5\r",
            b"x",
            b"1.5",
            b"\x00",
            b"9223372036854775807",
            b"9223372036854775808",
            b"-9223372036854775808",
            b"-9223372036854775809",
            b"123456789012345678",
            b"-123456789012345678",
            b"1234567890123456789",
            b"00000000000000000000001",
            b"-0",
            b"0",
        ];
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let rounds = if cfg!(miri) { 20 } else { 2000 };
        for round in 0..rounds {
            let mut file = Vec::new();
            let lines = 1 + rng.below(120);
            let flaw_at = rng.below(lines + 1);
            for i in 0..lines {
                if i == flaw_at {
                    file.extend_from_slice(FLAWS[rng.below(FLAWS.len() as u64) as usize]);
                } else {
                    if rng.below(2) == 0 {
                        file.push(b'-');
                    }
                    let most = if rng.below(8) == 0 { 18 } else { 7 };
                    let digits = 1 + rng.below(most);
                    for _ in 0..digits {
                        file.push(b'0' + rng.below(10) as u8);
                    }
                }
                file.push(b'\n');
            }
            let mut want = 0u64;
            let want_err = reference::parse_file(&file, |_, _| want += 1).err();
            for size in [file.len(), 1 + rng.below(100) as usize, 64] {
                let (end, counted) = check(&file, size);
                let got = end.err().map(|e| (e.line, e.error));
                assert_eq!(got, want_err, "round {round}, chunks of {size}");
                assert_eq!(counted, want, "round {round}, chunks of {size}");
            }
        }
    }
}
