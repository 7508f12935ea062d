//! The split rule against an independent statement of it: ceil-first thirds whose
//! sizes add up to N and differ by at most one, parts in file order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offload_core::split::{split, Part};

fuzz_target!(|n: u64| {
    let s = split(n);
    // Independent: A takes ceil(n/3), B ceil of half the rest, C the remainder.
    let a = n / 3 + u64::from(n % 3 != 0);
    let rest = n - a;
    let b = rest / 2 + rest % 2;
    assert_eq!(s, [a, b, rest - b], "n = {n}");
    assert_eq!(
        u128::from(s[0]) + u128::from(s[1]) + u128::from(s[2]),
        u128::from(n)
    );
    assert!(s[0] >= s[1] && s[1] >= s[2] && s[0] - s[2] <= 1);
    let i = (n % 5) as usize;
    match Part::from_index(i) {
        Some(p) => {
            assert_eq!(p.index(), i);
            assert_eq!(Part::ALL[i], p);
            assert_eq!(p.letter(), ['A', 'B', 'C'][i]);
        }
        None => assert!(i >= 3),
    }
});
