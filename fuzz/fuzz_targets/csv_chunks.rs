//! The streaming `LineReader` gives the same numbers, line numbers and first error
//! whether a file comes whole or in arbitrary chunks, and agrees with a plain
//! split-on-newline reference built on `parse_line`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offload_core::csv::{parse_line, LineError, LineReader};

type Outcome = (Vec<(u64, i64)>, Result<(), LineError>);

/// Feeds `chunks` in order, then finishes; stops at the first error.
fn read<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut out = Vec::new();
    let mut r = LineReader::new();
    for c in chunks {
        if let Err(e) = r.feed(c, |l, v| out.push((l, v))) {
            // A failed reader stays failed.
            assert_eq!(r.feed(b"1\n", |_, _| panic!("after error")), Err(e.clone()));
            assert_eq!(r.finish(|_, _| panic!("after error")), Err(e.clone()));
            return (out, Err(e));
        }
    }
    let end = r.finish(|l, v| out.push((l, v)));
    (out, end)
}

/// The obvious implementation: split on `\n`, parse each line.
fn reference(
    data: &[u8],
) -> (
    Vec<(u64, i64)>,
    Option<(u64, offload_core::csv::ParseError)>,
) {
    let mut out = Vec::new();
    let data = data
        .strip_prefix(&offload_core::csv::BYTE_ORDER_MARK[..])
        .unwrap_or(data);
    let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop(); // the final newline ends a line rather than starting one
    }
    for (i, line) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        match parse_line(line) {
            Ok(Some(v)) => out.push((n, v)),
            Ok(None) => {}
            Err(e) => return (out, Some((n, e))),
        }
    }
    (out, None)
}

fuzz_target!(|input: &[u8]| {
    // Layout: k, then k chunk sizes (0 allowed: an empty feed), then the file.
    let Some((&k, rest)) = input.split_first() else {
        return;
    };
    let k = usize::from(k % 16);
    if rest.len() < k {
        return;
    }
    let (sizes, data) = rest.split_at(k);

    let whole = read(std::iter::once(data));

    let mut chunks = Vec::new();
    if sizes.iter().any(|&s| s != 0) {
        let mut at = 0;
        for &s in sizes.iter().cycle() {
            if at >= data.len() {
                break;
            }
            let end = (at + usize::from(s)).min(data.len());
            chunks.push(&data[at..end]);
            at = end;
        }
    } else {
        // Only empty feeds requested: interleave them with single bytes.
        for i in 0..data.len() {
            chunks.push(&data[i..i]);
            chunks.push(&data[i..i + 1]);
        }
    }
    let chunked = read(chunks.iter().copied());
    assert_eq!(whole, chunked, "chunk sizes {sizes:?}");

    let (numbers, error) = reference(data);
    assert_eq!(whole.0, numbers);
    assert_eq!(
        whole.1.as_ref().err().map(|e| (e.line, e.error)),
        error,
        "reference disagrees"
    );
    if let Err(e) = &whole.1 {
        // The message names the line and stays short.
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("{}: ", e.line)), "{msg}");
        assert!(e.excerpt.len() <= offload_core::csv::EXCERPT_LEN);
    }
});
