//! The four reductions the system offers and their names.

use core::fmt;

/// A reduction operation: what the back-ends map and the AWS reduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Exact sum.
    Sum,
    /// Exact sum of squares.
    Sos,
}

impl Op {
    /// All operations, in wire-code order.
    pub const ALL: [Op; 4] = [Op::Min, Op::Max, Op::Sum, Op::Sos];

    /// The upper-case name the on-screen messages use (`MIN`, `MAX`, `SUM`, `SOS`).
    pub const fn name(self) -> &'static str {
        match self {
            Op::Min => "MIN",
            Op::Max => "MAX",
            Op::Sum => "SUM",
            Op::Sos => "SOS",
        }
    }

    /// The one-byte code carried in frames.
    pub const fn code(self) -> u8 {
        match self {
            Op::Min => 1,
            Op::Max => 2,
            Op::Sum => 3,
            Op::Sos => 4,
        }
    }

    /// The operation for a wire code, or `None` for an unknown code.
    pub const fn from_code(code: u8) -> Option<Op> {
        match code {
            1 => Some(Op::Min),
            2 => Some(Op::Max),
            3 => Some(Op::Sum),
            4 => Some(Op::Sos),
            _ => None,
        }
    }

    /// Parses a function name as the client's command line gives it, in any case
    /// (`min`, `MAX`, `Sum`, `sOs`).
    ///
    /// # Errors
    /// `None` for anything else.
    pub fn parse(name: &str) -> Option<Op> {
        Op::ALL
            .into_iter()
            .find(|op| op.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_codes_and_parsing_agree() {
        for op in Op::ALL {
            assert_eq!(Op::from_code(op.code()), Some(op));
            assert_eq!(Op::parse(op.name()), Some(op));
        }
        assert_eq!(Op::parse("sos"), Some(Op::Sos));
        assert_eq!(Op::parse("Min"), Some(Op::Min));
        assert_eq!(Op::parse("avg"), None);
        assert_eq!(Op::parse(""), None);
        assert_eq!(Op::from_code(0), None);
        assert_eq!(Op::from_code(5), None);
    }
}
