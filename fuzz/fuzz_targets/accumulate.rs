//! Merging `Accumulator` results over an arbitrary split of arbitrary `i64`s equals one
//! pass, and both equal an independent computation: `i64` min/max, `i128` sum, and a
//! schoolbook big number for the sum of squares (which outgrows `u128`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use offload_core::wide::{DECIMAL_LEN, I192};
use offload_core::{Accumulator, Op, Reduction};

#[derive(Arbitrary, Debug)]
struct Input {
    values: Vec<i64>,
    /// Lengths of consecutive parts (the rest forms a last part).
    cuts: Vec<u8>,
    /// Per part: fold with `push` (true) or `extend` (false).
    push: Vec<bool>,
}

/// Unsigned big number, little-endian base-2^32 limbs.
#[derive(Clone, Default, Debug, PartialEq)]
struct Big(Vec<u32>);

impl Big {
    fn add_u128(&mut self, mut x: u128) {
        let mut i = 0;
        let mut carry = 0u64;
        while x != 0 || carry != 0 {
            if i == self.0.len() {
                self.0.push(0);
            }
            let s = u64::from(self.0[i]) + (x as u32) as u64 + carry;
            self.0[i] = s as u32;
            carry = s >> 32;
            x >>= 32;
            i += 1;
        }
    }

    /// Little-endian limbs widened to 24 big-endian bytes (must fit).
    fn to_be_24(&self) -> [u8; 24] {
        assert!(self.0.iter().skip(6).all(|&l| l == 0), "beyond 192 bits");
        let mut out = [0u8; 24];
        for (i, limb) in self.0.iter().take(6).enumerate() {
            out[24 - 4 * (i + 1)..24 - 4 * i].copy_from_slice(&limb.to_be_bytes());
        }
        out
    }

    fn to_decimal(&self) -> String {
        let mut limbs = self.0.clone();
        let mut digits = Vec::new();
        loop {
            let mut rem = 0u64;
            for l in limbs.iter_mut().rev() {
                let cur = (rem << 32) | u64::from(*l);
                *l = (cur / 10) as u32;
                rem = cur % 10;
            }
            digits.push(b'0' + rem as u8);
            if limbs.iter().all(|&l| l == 0) {
                break;
            }
        }
        digits.reverse();
        String::from_utf8(digits).unwrap()
    }
}

fn fold(op: Op, part: &[i64], push: bool) -> Reduction {
    let mut a = Accumulator::new(op);
    if push {
        part.iter().for_each(|&x| a.push(x));
    } else {
        a.extend(part.iter().copied());
    }
    assert_eq!(a.op(), op);
    assert_eq!(a.count(), part.len() as u64);
    a.finish()
}

fn format(v: I192) -> String {
    let mut buf = [0u8; DECIMAL_LEN];
    let s = v.format(&mut buf).to_owned();
    assert_eq!(s, v.to_string());
    s
}

fuzz_target!(|input: Input| {
    let xs = &input.values;
    let mut parts = Vec::new();
    let mut rest = &xs[..];
    for &c in &input.cuts {
        let (p, r) = rest.split_at(usize::from(c).min(rest.len()));
        parts.push(p);
        rest = r;
    }
    parts.push(rest);

    for op in Op::ALL {
        let whole = fold(op, xs, false);
        assert_eq!(whole, fold(op, xs, true));
        let mut merged = Reduction::empty(op);
        for (i, p) in parts.iter().enumerate() {
            let r = fold(op, p, input.push.get(i).copied().unwrap_or(false));
            merged = merged.merge(r).expect("same op");
            // Empty parts are the identity on either side.
            assert_eq!(merged.merge(Reduction::empty(op)), Some(merged));
        }
        assert_eq!(merged, whole, "{op}");
        let other = Op::ALL[(Op::ALL.iter().position(|&o| o == op).unwrap() + 1) % 4];
        assert_eq!(whole.merge(Reduction::empty(other)), None);
        assert_eq!(whole.count, xs.len() as u64);

        let text = format(whole.value);
        match op {
            Op::Min | Op::Max if xs.is_empty() => assert_eq!(whole.value, I192::ZERO),
            Op::Min => assert_eq!(whole.value, I192::from_i64(*xs.iter().min().unwrap())),
            Op::Max => assert_eq!(whole.value, I192::from_i64(*xs.iter().max().unwrap())),
            Op::Sum => {
                let sum: i128 = xs.iter().map(|&x| i128::from(x)).sum();
                assert_eq!(whole.value, I192::from_i128(sum));
                assert_eq!(whole.value.to_i128(), Some(sum));
                assert_eq!(text, sum.to_string());
                let neg = whole.value.wrapping_neg();
                assert_eq!(neg.to_i128(), Some(-sum));
                assert_eq!(format(neg), (-sum).to_string());
                assert_eq!(whole.value.is_negative(), sum < 0);
                assert_eq!(whole.value.cmp(&I192::ZERO), sum.cmp(&0));
            }
            Op::Sos => {
                let mut big = Big::default();
                for &x in xs {
                    let m = u128::from(x.unsigned_abs());
                    big.add_u128(m * m);
                }
                assert_eq!(whole.value.to_be_bytes(), big.to_be_24());
                assert_eq!(I192::from_be_bytes(big.to_be_24()), whole.value);
                assert_eq!(text, big.to_decimal());
                assert!(!whole.value.is_negative());
                let neg = whole.value.wrapping_neg();
                let neg_text = format(neg);
                if text == "0" {
                    assert_eq!(neg_text, "0");
                } else {
                    assert_eq!(neg_text, format!("-{text}"));
                    assert!(neg < whole.value);
                }
            }
        }
    }
});
