//! Exact accumulators (the map step) and the merge of partial results (the reduce step).

use crate::op::Op;
use crate::wide::I192;

/// The exact result of one operation over `count` numbers.
///
/// A reduction over zero numbers has no value; [`Reduction::merge`] treats it as the
/// identity, so empty parts drop out of the final answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reduction {
    /// The operation.
    pub op: Op,
    /// How many numbers went in.
    pub count: u64,
    /// The value: an `i64` for MIN/MAX, up to 129 bits for SUM, up to 190 for SOS.
    pub value: I192,
}

impl Reduction {
    /// The reduction of no numbers.
    pub const fn empty(op: Op) -> Reduction {
        Reduction {
            op,
            count: 0,
            value: I192::ZERO,
        }
    }

    /// Combines two partial results of the same operation (Table 2 of the assignment).
    ///
    /// # Errors
    /// `None` when the operations differ.
    pub fn merge(self, other: Reduction) -> Option<Reduction> {
        if self.op != other.op {
            return None;
        }
        if other.count == 0 {
            return Some(self);
        }
        if self.count == 0 {
            return Some(other);
        }
        let value = match self.op {
            Op::Min => core::cmp::min(self.value, other.value),
            Op::Max => core::cmp::max(self.value, other.value),
            Op::Sum | Op::Sos => self.value.wrapping_add(other.value),
        };
        Some(Reduction {
            op: self.op,
            count: self.count.wrapping_add(other.count),
            value,
        })
    }
}

/// Folds numbers into one exact partial result without ever overflowing for fewer
/// than 2^64 inputs.
#[derive(Clone, Copy, Debug)]
pub struct Accumulator {
    op: Op,
    count: u64,
    min: i64,
    max: i64,
    sum: i128,
    sos_lo: u128,
    sos_hi: u64,
}

impl Accumulator {
    /// A fresh accumulator for `op`.
    pub const fn new(op: Op) -> Accumulator {
        Accumulator {
            op,
            count: 0,
            min: i64::MAX,
            max: i64::MIN,
            sum: 0,
            sos_lo: 0,
            sos_hi: 0,
        }
    }

    /// The operation being computed.
    pub const fn op(&self) -> Op {
        self.op
    }

    /// Numbers folded in so far.
    pub const fn count(&self) -> u64 {
        self.count
    }

    /// Folds one number in.
    #[inline]
    pub fn push(&mut self, x: i64) {
        self.count = self.count.wrapping_add(1);
        match self.op {
            Op::Min => self.fold_min(x),
            Op::Max => self.fold_max(x),
            Op::Sum => self.fold_sum(x),
            Op::Sos => self.fold_sos(x),
        }
    }

    /// [`Accumulator::push`] without the count, for an accumulator known to be
    /// [`Op::Min`] (and so on): the fold without the per-number `match`, for loops
    /// specialised per operation that count the numbers themselves
    /// ([`Accumulator::add_count`]).
    #[inline(always)]
    pub(crate) fn fold_min(&mut self, x: i64) {
        self.min = self.min.min(x);
    }

    #[inline(always)]
    pub(crate) fn fold_max(&mut self, x: i64) {
        self.max = self.max.max(x);
    }

    #[inline(always)]
    pub(crate) fn fold_sum(&mut self, x: i64) {
        // |sum| <= count * 2^63 < 2^127 while count < 2^64.
        self.sum = self.sum.wrapping_add(i128::from(x));
    }

    #[inline(always)]
    pub(crate) fn fold_sos(&mut self, x: i64) {
        let m = u128::from(x.unsigned_abs());
        let (lo, carry) = self.sos_lo.overflowing_add(m * m);
        self.sos_lo = lo;
        self.sos_hi = self.sos_hi.wrapping_add(u64::from(carry));
    }

    /// Folds in numbers whose squares add up to `squares` (for [`Op::Sos`]; exact
    /// while that sum fits a `u128`): many squares at the cost of one.
    #[inline(always)]
    pub(crate) fn fold_squares(&mut self, squares: u128) {
        let (lo, carry) = self.sos_lo.overflowing_add(squares);
        self.sos_lo = lo;
        self.sos_hi = self.sos_hi.wrapping_add(u64::from(carry));
    }

    /// Counts `n` numbers folded by the `fold_*` functions.
    pub(crate) fn add_count(&mut self, n: u64) {
        self.count = self.count.wrapping_add(n);
    }

    /// Folds every number of an iterator in, with the operation chosen once.
    pub fn extend<I: IntoIterator<Item = i64>>(&mut self, values: I) {
        let mut n = 0u64;
        match self.op {
            Op::Min => values.into_iter().for_each(|x| {
                n += 1;
                self.fold_min(x);
            }),
            Op::Max => values.into_iter().for_each(|x| {
                n += 1;
                self.fold_max(x);
            }),
            Op::Sum => values.into_iter().for_each(|x| {
                n += 1;
                self.fold_sum(x);
            }),
            Op::Sos => values.into_iter().for_each(|x| {
                n += 1;
                self.fold_sos(x);
            }),
        }
        self.add_count(n);
    }

    /// The result so far.
    pub fn finish(&self) -> Reduction {
        let value = if self.count == 0 {
            I192::ZERO
        } else {
            match self.op {
                Op::Min => I192::from_i64(self.min),
                Op::Max => I192::from_i64(self.max),
                Op::Sum => I192::from_i128(self.sum),
                Op::Sos => I192::from_parts(self.sos_lo, self.sos_hi),
            }
        };
        Reduction {
            op: self.op,
            count: self.count,
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    fn reduce(op: Op, xs: &[i64]) -> Reduction {
        let mut a = Accumulator::new(op);
        a.extend(xs.iter().copied());
        let mut b = Accumulator::new(op);
        xs.iter().for_each(|&x| b.push(x));
        assert_eq!(a.finish(), b.finish());
        a.finish()
    }

    #[test]
    fn small_values() {
        let xs = [3, -7, 12, 0, 5];
        assert_eq!(reduce(Op::Min, &xs).value, I192::from_i64(-7));
        assert_eq!(reduce(Op::Max, &xs).value, I192::from_i64(12));
        assert_eq!(reduce(Op::Sum, &xs).value, I192::from_i64(13));
        assert_eq!(
            reduce(Op::Sos, &xs).value,
            I192::from_i64(9 + 49 + 144 + 25)
        );
        assert_eq!(reduce(Op::Sum, &xs).count, 5);
    }

    #[test]
    fn extremes_are_exact() {
        let xs = [i64::MIN, i64::MAX, i64::MIN, i64::MIN];
        assert_eq!(reduce(Op::Min, &xs).value, I192::from_i64(i64::MIN));
        assert_eq!(reduce(Op::Max, &xs).value, I192::from_i64(i64::MAX));
        let sum = 3 * (i64::MIN as i128) + i64::MAX as i128;
        assert_eq!(reduce(Op::Sum, &xs).value, I192::from_i128(sum));
        // 3 * 2^126 + (2^63-1)^2, beyond i128 and u128 alike when summed further.
        let sos = reduce(Op::Sos, &xs).value.to_string();
        assert_eq!(sos, "340282366920938463444927863358058659841");
        let four_min = reduce(Op::Sos, &[i64::MIN; 4]).value.to_string();
        assert_eq!(four_min, "340282366920938463463374607431768211456"); // 2^128
    }

    #[test]
    fn merge_skips_empty_parts_and_checks_op() {
        let a = reduce(Op::Min, &[4, 9]);
        let empty = Reduction::empty(Op::Min);
        assert_eq!(empty.merge(a), Some(a));
        assert_eq!(a.merge(empty), Some(a));
        let b = reduce(Op::Min, &[-3]);
        assert_eq!(
            a.merge(b).map(|r| (r.value, r.count)),
            Some((I192::from_i64(-3), 3))
        );
        assert_eq!(a.merge(Reduction::empty(Op::Max)), None);
        // Empty MIN would be 0 if it were not skipped.
        let pos = reduce(Op::Max, &[-5]);
        assert_eq!(
            pos.merge(Reduction::empty(Op::Max)).map(|r| r.value),
            Some(I192::from_i64(-5))
        );
    }
}
