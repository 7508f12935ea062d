//! The word-at-a-time `LineReader` against `csv::reference`, a plain line-by-line parser
//! whose values come from `i64::from_str`: the same numbers with the same line numbers,
//! and the same first error on the same line, for any input cut into any chunks. The
//! fast path and the early reporting of long or binary lines must never change an
//! answer; nor may `feed_runs`, which hands numbers over in runs (nor `feed_runs_with`,
//! which reads a long chunk's two halves at once), nor `feed_check`,
//! which only counts (and takes blocks of plain lines at once), nor `feed_reduce`,
//! which folds the two halves of a long enough chunk at once (the same result for each
//! operation: the numbers before the first error, and no more).
#![no_main]

use libfuzzer_sys::fuzz_target;
use offload_core::csv::{reference, LineError, LineReader, EXCERPT_LEN};
use offload_core::{Accumulator, Op, Reduction};

/// Bytes that make lines the fast path takes, and the ones it must hand over.
const ALPHABET: &[u8] =
    b"0123456789012345678901234567890123456789----\n\n\n\n\n\n+ \t\r.e,x\x00\xef\xbb\xbf";

/// Digits, signs and line ends only: the plain lines a checking scan (`feed_check`)
/// takes a block at a time, and the flaws it must still see among them.
const PLAIN: &[u8] = b"01234567890123456789012345678901234567890123456789---\n\n\n\n\n\n";

type Outcome = (Vec<(u64, i64)>, Option<LineError>);

fn read<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut out = Vec::new();
    let mut r = LineReader::new();
    for c in chunks {
        if let Err(e) = r.feed(c, |l, v| out.push((l, v))) {
            return (out, Some(e));
        }
    }
    let end = r.finish(|l, v| out.push((l, v))).err();
    (out, end)
}

/// [`read`] through `feed_runs` (`room` None): runs of numbers on consecutive lines; or
/// through `feed_runs_with` and a spare of `room` numbers, which reads long chunks two
/// halves at once: the same runs in the same order.
fn read_runs<'a>(chunks: impl Iterator<Item = &'a [u8]>, room: Option<usize>) -> Outcome {
    let mut out = Vec::new();
    let mut r = LineReader::new();
    let mut spare = vec![0i64; room.unwrap_or(0)];
    for c in chunks {
        let mut sink = |first: u64, vs: &[i64]| {
            assert!(!vs.is_empty() && vs.len() <= 64, "a run of {}", vs.len());
            out.extend((first..).zip(vs.iter().copied()));
        };
        let fed = match room {
            None => r.feed_runs(c, &mut sink),
            Some(_) => r.feed_runs_with(c, &mut spare, &mut sink),
        };
        if let Err(e) = fed {
            return (out, Some(e));
        }
    }
    let end = r.finish(|l, v| out.push((l, v))).err();
    (out, end)
}

/// `feed_reduce` over the chunks: the result, and the first error.
fn reduce<'a>(op: Op, chunks: impl Iterator<Item = &'a [u8]>) -> (Reduction, Option<LineError>) {
    let mut acc = Accumulator::new(op);
    let mut r = LineReader::new();
    for c in chunks {
        if let Err(e) = r.feed_reduce(c, &mut acc) {
            return (acc.finish(), Some(e));
        }
    }
    let end = r.finish_reduce(&mut acc).err();
    (acc.finish(), end)
}

/// `feed_check` over the same chunks: how many numbers it counted, and its first error.
fn check<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (u64, Option<LineError>) {
    let mut r = LineReader::new();
    for c in chunks {
        if let Err(e) = r.feed_check(c) {
            return (r.numbers(), Some(e));
        }
    }
    let end = r.finish(|_, _| {}).err();
    (r.numbers(), end)
}

fuzz_target!(|input: &[u8]| {
    // Layout: a mode byte (low four bits: how many chunk sizes follow; bit 4: spell the
    // file in ALPHABET, or in PLAIN when that number is odd; bits 5-7: chunk size
    // scale), the chunk sizes, then the file.
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let k = usize::from(mode & 15);
    if rest.len() < k {
        return;
    }
    let (sizes, raw) = rest.split_at(k);
    let data: Vec<u8> = if mode & 16 != 0 {
        let letters = if k % 2 == 1 { PLAIN } else { ALPHABET };
        raw.iter()
            .map(|&b| letters[usize::from(b) % letters.len()])
            .collect()
    } else {
        raw.to_vec()
    };
    let scale = 1 + usize::from(mode >> 5) * 37;

    let mut want = Vec::new();
    let want_err = reference::parse_file(&data, |l, v| want.push((l, v))).err();

    let whole = read(std::iter::once(&data[..]));
    assert_eq!(whole.0, want, "numbers differ from the reference");
    assert_eq!(
        whole.1.as_ref().map(|e| (e.line, e.error)),
        want_err,
        "first error differs from the reference"
    );

    let mut chunks = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < data.len() {
        let size = sizes
            .get(i % k.max(1))
            .map_or(1, |&s| usize::from(s) * scale);
        let end = (at + size).min(data.len());
        chunks.push(&data[at..end]); // size 0: an empty feed
        at = end;
        i += 1;
        if i > 4 * data.len() + 16 {
            // Only empty chunks: finish one byte at a time.
            chunks.extend(data[at..].chunks(1));
            break;
        }
    }
    let chunked = read(chunks.iter().copied());
    assert_eq!(
        chunked, whole,
        "chunking changed the outcome: sizes {sizes:?} x {scale}"
    );
    let runs = read_runs(chunks.iter().copied(), None);
    assert_eq!(
        runs, whole,
        "feed_runs differs from feed: sizes {sizes:?} x {scale}"
    );
    // A spare too small for a half (it fills, and the rest goes one line at a time), and
    // one large enough for any.
    let room = 64 + usize::from(mode) % 7 * 10;
    for (room, chunked) in [(room, false), (room, true), (data.len() / 2 + 64, true)] {
        let got = if chunked {
            read_runs(chunks.iter().copied(), Some(room))
        } else {
            read_runs(std::iter::once(&data[..]), Some(room))
        };
        assert_eq!(
            got, whole,
            "feed_runs_with differs from feed: spare {room}, chunked {chunked}, sizes {sizes:?} x {scale}"
        );
    }

    for op in Op::ALL {
        let mut expect = Accumulator::new(op);
        want.iter().for_each(|&(_, v)| expect.push(v));
        let expect = (expect.finish(), whole.1.clone());
        assert_eq!(
            reduce(op, std::iter::once(&data[..])),
            expect,
            "feed_reduce differs from feed: {op:?}"
        );
        assert_eq!(
            reduce(op, chunks.iter().copied()),
            expect,
            "feed_reduce differs from feed: {op:?}, sizes {sizes:?} x {scale}"
        );
    }

    let counted = want.len() as u64;
    assert_eq!(
        check(std::iter::once(&data[..])),
        (counted, whole.1.clone()),
        "feed_check differs from feed"
    );
    assert_eq!(
        check(chunks.iter().copied()),
        (counted, whole.1.clone()),
        "feed_check differs from feed: sizes {sizes:?} x {scale}"
    );

    if let Some(e) = &whole.1 {
        assert!(e.excerpt.len() <= EXCERPT_LEN);
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("{}: ", e.line)), "{msg}");
    }
});
