//! The split rule: N numbers become three consecutive parts for servers A, B and C.

/// One of the three back-end servers, in the order they receive the file's thirds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// Back-Server A: the first part.
    A,
    /// Back-Server B: the second part.
    B,
    /// Back-Server C: the last part.
    C,
}

impl Part {
    /// The three parts in file order.
    pub const ALL: [Part; 3] = [Part::A, Part::B, Part::C];

    /// The server's letter as the messages print it.
    pub const fn letter(self) -> char {
        match self {
            Part::A => 'A',
            Part::B => 'B',
            Part::C => 'C',
        }
    }

    /// Position in file order: 0, 1 or 2.
    pub const fn index(self) -> usize {
        match self {
            Part::A => 0,
            Part::B => 1,
            Part::C => 2,
        }
    }

    /// The part at a position, or `None` past 2.
    pub const fn from_index(index: usize) -> Option<Part> {
        match index {
            0 => Some(Part::A),
            1 => Some(Part::B),
            2 => Some(Part::C),
            _ => None,
        }
    }
}

/// Sizes of the three parts of `n` numbers, ceil-first: the first `n % 3` parts take
/// one extra number (10 -> 4/3/3, 11 -> 4/4/3, 2 -> 1/1/0).
pub const fn split(n: u64) -> [u64; 3] {
    let base = n / 3;
    let extra = n % 3;
    [base + (extra > 0) as u64, base + (extra > 1) as u64, base]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_first() {
        assert_eq!(split(0), [0, 0, 0]);
        assert_eq!(split(1), [1, 0, 0]);
        assert_eq!(split(2), [1, 1, 0]);
        assert_eq!(split(3), [1, 1, 1]);
        assert_eq!(split(10), [4, 3, 3]);
        assert_eq!(split(11), [4, 4, 3]);
        assert_eq!(split(90), [30, 30, 30]);
        assert_eq!(split(u64::MAX), [6148914691236517205; 3]);
        for n in 0..1000u64 {
            let s = split(n);
            assert_eq!(s[0] + s[1] + s[2], n);
            assert!(s[0] >= s[1] && s[1] >= s[2] && s[0] - s[2] <= 1);
        }
    }

    #[test]
    fn part_indices_round_trip() {
        for p in Part::ALL {
            assert_eq!(Part::from_index(p.index()), Some(p));
        }
        assert_eq!(Part::from_index(3), None);
        assert_eq!(Part::B.letter(), 'B');
    }
}
