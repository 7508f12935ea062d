//! A 192-bit two's-complement integer: wide enough for any partial or final result.
//!
//! SUM of fewer than 2^64 `i64` values fits in `i128`; SOS of as many needs up to 190
//! bits. One signed 192-bit type carries every result on the wire and through merges.

use core::cmp::Ordering;
use core::fmt;

/// Number of bytes of an [`I192`] on the wire.
pub const I192_BYTES: usize = 24;

/// Longest decimal form of an [`I192`]: a sign and 58 digits.
pub const DECIMAL_LEN: usize = 59;

/// A signed 192-bit integer, two's complement, little-endian 64-bit limbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct I192 {
    limbs: [u64; 3],
}

impl I192 {
    /// Zero.
    pub const ZERO: I192 = I192 { limbs: [0; 3] };

    /// Widens an `i64`.
    pub const fn from_i64(v: i64) -> I192 {
        I192::from_i128(v as i128)
    }

    /// Widens an `i128`.
    pub const fn from_i128(v: i128) -> I192 {
        let hi = if v < 0 { u64::MAX } else { 0 };
        I192 {
            limbs: [v as u64, (v >> 64) as u64, hi],
        }
    }

    /// Builds a non-negative value from a low `u128` and a high `u64` limb.
    pub const fn from_parts(lo: u128, hi: u64) -> I192 {
        I192 {
            limbs: [lo as u64, (lo >> 64) as u64, hi],
        }
    }

    /// True when the value is below zero.
    pub const fn is_negative(self) -> bool {
        (self.limbs[2] as i64) < 0
    }

    /// Two's-complement addition modulo 2^192. Results of this crate never come near
    /// the modulus (see the module docs), so in practice this is exact.
    pub const fn wrapping_add(self, rhs: I192) -> I192 {
        let (l0, c0) = self.limbs[0].overflowing_add(rhs.limbs[0]);
        let (l1a, c1a) = self.limbs[1].overflowing_add(rhs.limbs[1]);
        let (l1, c1b) = l1a.overflowing_add(c0 as u64);
        let l2 = self.limbs[2]
            .wrapping_add(rhs.limbs[2])
            .wrapping_add((c1a | c1b) as u64);
        I192 {
            limbs: [l0, l1, l2],
        }
    }

    /// Two's-complement negation modulo 2^192.
    pub const fn wrapping_neg(self) -> I192 {
        let inv = I192 {
            limbs: [!self.limbs[0], !self.limbs[1], !self.limbs[2]],
        };
        inv.wrapping_add(I192::from_i64(1))
    }

    /// The value as an `i128`, or `None` if it does not fit.
    pub const fn to_i128(self) -> Option<i128> {
        let lo = (self.limbs[0] as u128) | ((self.limbs[1] as u128) << 64);
        let sign_ok = if (lo as i128) < 0 {
            self.limbs[2] == u64::MAX
        } else {
            self.limbs[2] == 0
        };
        if sign_ok {
            Some(lo as i128)
        } else {
            None
        }
    }

    /// Big-endian two's-complement bytes, as the wire carries them.
    pub fn to_be_bytes(self) -> [u8; I192_BYTES] {
        let mut out = [0u8; I192_BYTES];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.limbs.iter().rev()) {
            if let Some(chunk) = chunk.first_chunk_mut() {
                *chunk = limb.to_be_bytes();
            }
        }
        out
    }

    /// Reads big-endian two's-complement bytes.
    pub fn from_be_bytes(bytes: [u8; I192_BYTES]) -> I192 {
        let mut limbs = [0u64; 3];
        for (limb, chunk) in limbs.iter_mut().rev().zip(bytes.chunks_exact(8)) {
            *limb = u64::from_be_bytes(chunk.first_chunk().copied().unwrap_or_default());
        }
        I192 { limbs }
    }

    /// Writes the decimal form into `buf` and returns it.
    ///
    /// # Panics
    /// Never: the buffer's type makes it large enough for every value.
    pub fn format(self, buf: &mut [u8; DECIMAL_LEN]) -> &str {
        let negative = self.is_negative();
        let mut mag = if negative {
            self.wrapping_neg().limbs
        } else {
            self.limbs
        };
        // The magnitude of -2^191 is 2^191, which reads correctly as unsigned limbs.
        let mut pos = DECIMAL_LEN;
        loop {
            let mut rem: u128 = 0;
            for limb in mag.iter_mut().rev() {
                let cur = (rem << 64) | u128::from(*limb);
                *limb = (cur / 10) as u64;
                rem = cur % 10;
            }
            pos = pos.saturating_sub(1);
            if let Some(slot) = buf.get_mut(pos) {
                *slot = b'0' + rem as u8;
            }
            if mag == [0; 3] || pos == 0 {
                break;
            }
        }
        if negative {
            pos = pos.saturating_sub(1);
            if let Some(slot) = buf.get_mut(pos) {
                *slot = b'-';
            }
        }
        buf.get(pos..)
            .and_then(|digits| core::str::from_utf8(digits).ok())
            .unwrap_or("")
    }
}

impl Ord for I192 {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.is_negative(), other.is_negative()) {
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            // Same sign: unsigned comparison of the limbs, most significant first.
            _ => self.limbs.iter().rev().cmp(other.limbs.iter().rev()),
        }
    }
}

impl PartialOrd for I192 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for I192 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; DECIMAL_LEN];
        f.write_str(self.format(&mut buf))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::string::ToString;

    #[test]
    fn formats_like_i128() {
        for v in [
            0i128,
            1,
            -1,
            9,
            10,
            -10,
            i64::MIN as i128,
            i64::MAX as i128,
            i128::MIN,
            i128::MAX,
            1234567890123456789012345678,
        ] {
            assert_eq!(I192::from_i128(v).to_string(), v.to_string());
        }
    }

    #[test]
    fn extreme_values_format() {
        let max = I192 {
            limbs: [u64::MAX, u64::MAX, i64::MAX as u64],
        };
        assert_eq!(
            max.to_string(),
            "3138550867693340381917894711603833208051177722232017256447"
        );
        let min = I192 {
            limbs: [0, 0, 1 << 63],
        };
        assert_eq!(
            min.to_string(),
            "-3138550867693340381917894711603833208051177722232017256448"
        );
        assert_eq!(min.to_string().len(), DECIMAL_LEN);
        // 2^128
        assert_eq!(
            I192::from_parts(0, 1).to_string(),
            "340282366920938463463374607431768211456"
        );
    }

    #[test]
    fn add_carries_and_signs() {
        let a = I192::from_i128(i128::MAX);
        let b = a.wrapping_add(I192::from_i64(1));
        assert_eq!(b.to_string(), "170141183460469231731687303715884105728");
        assert_eq!(b.to_i128(), None);
        assert_eq!(
            I192::from_i64(-5).wrapping_add(I192::from_i64(3)),
            I192::from_i64(-2)
        );
        assert_eq!(I192::from_i128(-7).to_i128(), Some(-7));
        assert!(I192::from_i64(-1) < I192::ZERO);
        assert!(I192::from_parts(0, 1) > I192::from_i128(i128::MAX));
        assert!(I192::from_i64(-2) < I192::from_i64(-1));
    }

    #[test]
    fn bytes_round_trip() {
        for v in [0i128, -1, i128::MIN, i128::MAX, 42] {
            let x = I192::from_i128(v);
            assert_eq!(I192::from_be_bytes(x.to_be_bytes()), x);
        }
        let b = I192::from_i64(-2).to_be_bytes();
        assert_eq!(format!("{:02x}", b[0]), "ff");
        assert_eq!(b[23], 0xfe);
    }
}
