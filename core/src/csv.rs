//! `nums.csv`: one integer per line, parsed without allocation, streamed in chunks.
//!
//! Accepted: an optional `+` or `-` and decimal digits, with spaces or tabs around
//! them, a trailing `\r` (CRLF files), blank lines (skipped) and a missing final
//! newline. Everything else is a [`ParseError`] naming what is wrong.

use arrayvec::ArrayVec;
use core::fmt;

/// Longest line accepted, not counting its `\n`. An `i64` needs at most 20 characters;
/// the rest is room for padding and leading zeros.
pub const MAX_LINE: usize = 128;

/// How many bytes of a bad line an error keeps to show the user.
pub const EXCERPT_LEN: usize = 40;

/// What is wrong with one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not a decimal integer (a word, a sign alone, stray characters).
    NotAnInteger,
    /// A number with a fraction or exponent, such as `1.5` or `2e3`.
    NotWhole,
    /// Two or more values on one line, such as `1,2` or `3 4`.
    SeveralValues,
    /// A well-formed integer outside `i64::MIN..=i64::MAX`.
    OutOfRange,
    /// A byte that does not belong in a text file (control or non-ASCII).
    NotText(u8),
    /// Longer than [`MAX_LINE`] bytes.
    TooLong,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotAnInteger => f.write_str("is not an integer"),
            ParseError::NotWhole => f.write_str("is not a whole number"),
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

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_blank(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_blank(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Parses one line (without its `\n`) into a number, or `None` for a blank line.
///
/// # Errors
/// A [`ParseError`] saying what is wrong with the line.
pub fn parse_line(line: &[u8]) -> Result<Option<i64>, ParseError> {
    if line.len() > MAX_LINE {
        return Err(ParseError::TooLong);
    }
    let line = match line {
        [rest @ .., b'\r'] => rest,
        other => other,
    };
    if let Some(&b) = line
        .iter()
        .find(|&&b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
    {
        return Err(ParseError::NotText(b));
    }
    let text = trim(line);
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
            ParseError::NotWhole
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
    /// The first bytes of the line, for the message.
    pub excerpt: ArrayVec<u8, EXCERPT_LEN>,
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
            line: self.line,
            error: self.error,
            excerpt: copy_bytes(&self.excerpt),
        }
    }
}

impl LineError {
    fn new(line: u64, error: ParseError, text: &[u8]) -> LineError {
        // A streaming reader keeps only the first MAX_LINE bytes of a long line, so the
        // excerpt is taken from those whether the line came whole or in chunks.
        let text = text.get(..MAX_LINE).unwrap_or(text);
        let text = match text {
            [rest @ .., b'\r'] => rest,
            other => other,
        };
        let text = trim(text);
        let mut excerpt = ArrayVec::new();
        // `try_extend_from_slice` on a slice that fits, not `extend`, which can panic.
        let _ = excerpt.try_extend_from_slice(text.get(..EXCERPT_LEN).unwrap_or(text));
        LineError {
            line,
            error,
            excerpt,
        }
    }
}

impl fmt::Display for LineError {
    /// `17: "abc" is not an integer`; the caller prefixes the file name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: \"", self.line)?;
        for &b in &self.excerpt {
            if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.error == ParseError::TooLong {
            f.write_str("...")?;
        }
        write!(f, "\" {}", self.error)
    }
}

/// Splits a file fed in chunks of any size into numbers with their line numbers,
/// holding at most one partial line ([`MAX_LINE`] bytes) between chunks.
///
/// After an error the reader stays failed: further calls return the same error.
#[derive(Debug, Default)]
pub struct LineReader {
    partial: ArrayVec<u8, MAX_LINE>,
    /// Lines completed so far.
    lines: u64,
    /// The partial line has grown past [`MAX_LINE`].
    overlong: bool,
    failed: Option<LineError>,
}

impl Clone for LineReader {
    fn clone(&self) -> Self {
        LineReader {
            partial: copy_bytes(&self.partial),
            lines: self.lines,
            overlong: self.overlong,
            failed: self.failed.clone(),
        }
    }
}

impl LineReader {
    /// A reader at the start of a file.
    pub fn new() -> LineReader {
        LineReader::default()
    }

    /// Lines completed so far (the line number of the last complete line).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Feeds the next chunk; calls `sink(line, value)` for every number it completes.
    ///
    /// # Errors
    /// The first bad line; no number after it is passed to `sink`.
    pub fn feed<F: FnMut(u64, i64)>(&mut self, chunk: &[u8], mut sink: F) -> Result<(), LineError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut rest = chunk;
        if !self.partial.is_empty() || self.overlong {
            // Finish the line that straddles the previous chunk.
            match rest.iter().position(|&b| b == b'\n') {
                None => return self.stash(rest),
                Some(nl) => {
                    let (head, tail) = rest.split_at(nl);
                    self.stash(head)?;
                    rest = tail.get(1..).unwrap_or(&[]);
                    self.complete_partial(&mut sink)?;
                }
            }
        }
        loop {
            if let Some((value, consumed)) = fast_line(rest) {
                self.lines += 1;
                sink(self.lines, value);
                rest = rest.get(consumed..).unwrap_or(&[]);
                continue;
            }
            match rest.iter().position(|&b| b == b'\n') {
                None => return self.stash(rest),
                Some(nl) => {
                    let (line, tail) = rest.split_at(nl);
                    self.lines += 1;
                    match parse_line(line) {
                        Ok(Some(v)) => sink(self.lines, v),
                        Ok(None) => {}
                        Err(e) => return self.fail(e, line),
                    }
                    rest = tail.get(1..).unwrap_or(&[]);
                }
            }
        }
    }

    /// Ends the file: a last line without `\n` still counts.
    ///
    /// # Errors
    /// The last line's error, or an earlier one.
    pub fn finish<F: FnMut(u64, i64)>(&mut self, mut sink: F) -> Result<(), LineError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if !self.partial.is_empty() || self.overlong {
            self.complete_partial(&mut sink)?;
        }
        Ok(())
    }

    fn stash(&mut self, bytes: &[u8]) -> Result<(), LineError> {
        if self.overlong || self.partial.try_extend_from_slice(bytes).is_err() {
            let room = self.partial.remaining_capacity();
            let _ = self
                .partial
                .try_extend_from_slice(bytes.get(..room).unwrap_or(bytes));
            self.overlong = true;
        }
        Ok(())
    }

    fn complete_partial<F: FnMut(u64, i64)>(&mut self, sink: &mut F) -> Result<(), LineError> {
        self.lines += 1;
        let result = if self.overlong {
            Err(ParseError::TooLong)
        } else {
            parse_line(&self.partial)
        };
        match result {
            Ok(Some(v)) => sink(self.lines, v),
            Ok(None) => {}
            Err(e) => {
                let partial = core::mem::take(&mut self.partial);
                return self.fail(e, &partial);
            }
        }
        self.partial.clear();
        self.overlong = false;
        Ok(())
    }

    fn fail(&mut self, error: ParseError, text: &[u8]) -> Result<(), LineError> {
        let e = LineError::new(self.lines, error, text);
        self.failed = Some(e.clone());
        Err(e)
    }
}

/// The common case in one tight loop: `-?[0-9]{1,19}\n` within the `i64` range. Returns the value and the
/// bytes consumed, or `None` to let [`parse_line`] judge the line.
#[inline(always)]
fn fast_line(s: &[u8]) -> Option<(i64, usize)> {
    let (negative, start) = match s.first() {
        Some(b'-') => (true, 1),
        _ => (false, 0),
    };
    let mut mag: u64 = 0;
    let mut i = start;
    loop {
        let b = *s.get(i)?;
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            if b != b'\n' || i == start {
                return None;
            }
            if i - start > 18 {
                return nineteen_digits(mag, negative, i - start).map(|v| (v, i + 1));
            }
            // 18 digits stay below 10^18 < 2^63: no overflow possible.
            let v = mag as i64;
            return Some((if negative { -v } else { v }, i + 1));
        }
        mag = mag.wrapping_mul(10).wrapping_add(u64::from(d));
        i += 1;
    }
}

/// The rarer 19-digit case of [`fast_line`], kept out of its loop: 19 digits stay below
/// 10^19 < 2^64, so `mag` is exact, and the sign sets the limit. Anything else (more
/// digits, past the limit) is left to [`parse_line`] to name.
#[cold]
#[inline(never)]
fn nineteen_digits(mag: u64, negative: bool, digits: usize) -> Option<i64> {
    let limit = if negative {
        1u64 << 63
    } else {
        i64::MAX as u64
    };
    if digits > 19 || mag > limit {
        return None;
    }
    // 2^63 casts to i64::MIN, which wrapping_neg leaves as it is.
    let v = mag as i64;
    Some(if negative { v.wrapping_neg() } else { v })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    fn all(input: &[u8], chunk: usize) -> Result<Vec<(u64, i64)>, LineError> {
        let mut out = Vec::new();
        let mut r = LineReader::new();
        for c in input.chunks(chunk.max(1)) {
            r.feed(c, |l, v| out.push((l, v)))?;
        }
        r.finish(|l, v| out.push((l, v)))?;
        Ok(out)
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
        assert_eq!(parse_line(b"1.5"), Err(ParseError::NotWhole));
        assert_eq!(parse_line(b"2e3"), Err(ParseError::NotWhole));
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
        }
        let e = all(b"1\x00\n", 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1: \"1\\x00\" contains the non-text byte 0x00"
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

    #[test]
    fn fast_path_agrees_with_slow_path() {
        for s in [
            "0",
            "-0",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "-9223372036854775808",
            "9223372036854775807",
            "-9223372036854775807",
            "0000000000000000001",
        ] {
            let mut line = Vec::from(s.as_bytes());
            let slow = parse_line(&line).unwrap().unwrap();
            line.push(b'\n');
            assert_eq!(fast_line(&line), Some((slow, line.len())), "{s}");
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
            let mut line = Vec::from(s.as_bytes());
            line.push(b'\n');
            assert_eq!(fast_line(&line), None, "{s}");
            assert_eq!(
                all(&line, 3).unwrap_err().error,
                ParseError::OutOfRange,
                "{s}"
            );
        }
    }
}
