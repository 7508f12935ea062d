//! Lines the three programs print on the semihosting console.
use crate::meter;
use cortex_m_semihosting::hprintln;
use offload_core::wide::{DECIMAL_LEN, I192};

/// Prints the memory a role's program uses; `state` names its core state's bytes.
pub fn memory(role: &str, state: usize) {
    hprintln!(
        "{}: flash {} B, static RAM {} B (core state {} B), stack room {} B",
        role,
        meter::flash_used(),
        meter::static_ram(),
        state,
        meter::stack_room()
    );
}

/// Prints peak stack and total RAM at the end, and checks the stack never reached the
/// statics. Returns static RAM plus peak stack.
pub fn peak(role: &str) -> usize {
    let peak = meter::peak_stack();
    let total = meter::static_ram() + peak;
    hprintln!(
        "{}: peak stack {} B, RAM in use {} B of {} (static + peak stack)",
        role,
        peak,
        total,
        meter::ram_size()
    );
    crate::check(
        "the stack stayed clear of the statics",
        peak < meter::stack_room(),
    );
    total
}

/// Formats a 192-bit value into `buf` and compares it with the expected decimal.
pub fn same(value: I192, expected: &str) -> bool {
    let mut buf = [0u8; DECIMAL_LEN];
    value.format(&mut buf) == expected
}

/// Prints `value` in decimal.
pub fn decimal(value: I192) -> Decimal {
    let mut d = Decimal([0; DECIMAL_LEN], 0);
    let s = value.format(&mut d.0).len();
    let mut buf = [0u8; DECIMAL_LEN];
    let text = value.format(&mut buf);
    d.0[..s].copy_from_slice(text.as_bytes());
    d.1 = s;
    d
}

/// A formatted decimal that outlives its buffer.
pub struct Decimal([u8; DECIMAL_LEN], usize);

impl core::fmt::Display for Decimal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(core::str::from_utf8(&self.0[..self.1]).unwrap_or("?"))
    }
}
