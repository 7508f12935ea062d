//! `parse_line` never panics, agrees with the standard library's integer parser on the
//! trimmed text, and whatever it accepts round-trips through its decimal form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offload_core::csv::{parse_line, LineError, LineReader, ParseError, MAX_LINE};
use std::fmt::Write;
use std::num::IntErrorKind;

fuzz_target!(|line: &[u8]| {
    let got = parse_line(line);

    // Independent oracle: strip one `\r`, require text bytes, trim spaces and tabs,
    // then let `i64::from_str` (which also takes a leading `+`) decide.
    let body = line.strip_suffix(b"\r").unwrap_or(line);
    let text_only = body
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
    let trimmed = body.trim_ascii_matches();
    match got {
        Ok(Some(v)) => {
            assert!(body.len() <= MAX_LINE && text_only);
            let s = std::str::from_utf8(trimmed).unwrap();
            assert_eq!(s.parse::<i64>(), Ok(v), "{s:?}");
            // Round trip through the canonical form.
            assert_eq!(parse_line(v.to_string().as_bytes()), Ok(Some(v)));
        }
        Ok(None) => assert!(body.len() <= MAX_LINE && text_only && trimmed.is_empty()),
        Err(e) => {
            let mut msg = String::new();
            write!(msg, "{e}").unwrap();
            assert!(!msg.is_empty());
            // The first non-text byte within the limit, else the length (neither
            // counts a final '\r'), else the text.
            let head = &body[..body.len().min(MAX_LINE)];
            if let Some(&b) = head
                .iter()
                .find(|&&b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
            {
                assert_eq!(e, ParseError::NotText(b));
            } else if body.len() > MAX_LINE {
                assert_eq!(e, ParseError::TooLong);
            } else {
                let s = std::str::from_utf8(trimmed).unwrap();
                let std_err = s.parse::<i64>().expect_err(s);
                let overflow = matches!(
                    std_err.kind(),
                    IntErrorKind::PosOverflow | IntErrorKind::NegOverflow
                );
                // std reports overflow as soon as it sees it, even with junk after the
                // digits; only a well-formed integer is out of range for us.
                let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
                let well_formed = digits.bytes().all(|b| b.is_ascii_digit());
                assert_eq!(
                    overflow && well_formed,
                    e == ParseError::OutOfRange,
                    "{s:?}: {e:?}"
                );
            }
        }
    }

    // The streaming reader says the same about the line on its own.
    if line.contains(&b'\n') {
        return;
    }
    // (A reader from the middle of a file: one from the start would skip a byte order
    // mark that parse_line, which sees one line, does not.)
    let mut reader = LineReader::mid_file();
    let mut seen = None;
    // A line already decided is reported before its end.
    let fed = reader.feed(line, |_, _| unreachable!("no newline, nothing complete"));
    let end = fed.and_then(|()| reader.finish(|n, v| seen = Some((n, v))));
    match (got, end) {
        (Ok(Some(v)), Ok(())) => assert_eq!(seen, Some((1, v))),
        (Ok(None), Ok(())) => assert_eq!(seen, None),
        (Err(e), Err(LineError { line: 1, error, .. })) => assert_eq!(e, error),
        (a, b) => panic!("parse_line {a:?} but reader {b:?}"),
    }
});

trait TrimBlanks {
    fn trim_ascii_matches(&self) -> &[u8];
}

impl TrimBlanks for [u8] {
    /// Trims spaces and tabs only (not `\r` or other whitespace), as the format says.
    fn trim_ascii_matches(&self) -> &[u8] {
        let blank = |b: &u8| *b == b' ' || *b == b'\t';
        let start = self.iter().position(|b| !blank(b)).unwrap_or(self.len());
        let end = self
            .iter()
            .rposition(|b| !blank(b))
            .map_or(start, |i| i + 1);
        &self[start..end]
    }
}
