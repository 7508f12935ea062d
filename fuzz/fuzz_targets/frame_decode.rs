//! `Frame::parse` never panics; any frame that decodes re-encodes to exactly the same
//! bytes; the header's length agrees with the input's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offload_core::wire::{emit_data, Frame, Header, WireError, HEADER_LEN, MAX_DATAGRAM};

fuzz_target!(|data: &[u8]| {
    let header = Header::parse(data);
    let parsed = Frame::parse(data);
    match &parsed {
        Ok(frame) => {
            assert!(data.len() <= MAX_DATAGRAM);
            assert_eq!(frame.len(), data.len());
            let h = header.expect("a frame has a header");
            assert_eq!(h.frame_len(), Ok(data.len()));
            assert_eq!(h.job, frame.job());

            let mut buf = [0u8; MAX_DATAGRAM + 8];
            assert_eq!(frame.emit(&mut buf), Ok(data.len()));
            assert_eq!(&buf[..data.len()], data);
            // Exactly big enough works; one byte short does not, and writes nothing.
            let mut exact = vec![0u8; data.len()];
            assert_eq!(frame.emit(&mut exact), Ok(data.len()));
            assert_eq!(exact, data);
            let mut short = vec![0u8; data.len() - 1];
            assert_eq!(frame.emit(&mut short), Err(WireError::BufferTooSmall));
            assert!(short.iter().all(|&b| b == 0));

            if let Frame::Data {
                job,
                seq,
                op,
                last,
                ack_now,
                values,
            } = *frame
            {
                let numbers: Vec<i64> = values.iter().collect();
                assert_eq!(numbers.len(), values.len());
                let mut again = [0u8; MAX_DATAGRAM];
                let n = emit_data(&mut again, job, seq, op, last, &numbers).unwrap();
                // emit_data writes a first send; a probe's ack-now flag is set after.
                offload_core::wire::set_ack_now(&mut again[..n], ack_now);
                assert_eq!(&again[..n], data);
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            if data.len() < HEADER_LEN {
                assert_eq!(header, Err(WireError::Truncated));
                assert_eq!(*e, WireError::Truncated);
            }
        }
    }

    // The TCP reader's view: a valid header fixes the frame's length, and parse says
    // Truncated below it and TrailingBytes above it.
    if let Ok(h) = header {
        if let Ok(len) = h.frame_len() {
            assert!(len <= MAX_DATAGRAM);
            if data.len() < len {
                assert_eq!(parsed, Err(WireError::Truncated));
            } else {
                if data.len() > len {
                    assert_eq!(parsed, Err(WireError::TrailingBytes));
                }
                // The prefix of the right length decodes iff the body is valid; either
                // way it must not panic, and a success round-trips (checked above for
                // exact inputs).
                if let Ok(f) = Frame::parse(&data[..len]) {
                    assert_eq!(f.len(), len);
                }
            }
        } else {
            assert!(parsed.is_err());
        }
    } else {
        assert!(parsed.is_err());
    }
});
