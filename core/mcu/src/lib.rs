//! The chip side of `make mcu`: what the three programs in `src/bin` share.
//!
//! * [`meter`]: flash and static RAM from the linker's symbols, peak stack by painting,
//!   and an instruction counter (SysTick under QEMU's `-icount shift=0`).
//! * [`rng`]: the seeded numbers of the full-range job.
//! * [`report`]: the lines the programs print.
//! * [`expected`]: the answers `expected.py` computed on the host.
#![no_std]

pub mod meter;
pub mod report;
pub mod rng;

/// Expected answers, computed on the host by `expected.py` (Python big integers).
pub mod expected {
    /// One operation's expected outcome.
    pub struct Expect {
        /// Function name as the client takes it.
        pub op: &'static str,
        /// Numbers in the job.
        pub count: u64,
        /// The answer in decimal.
        pub answer: &'static str,
        /// Each part's (count, low 128 bits, high 64 bits) in 192-bit two's complement.
        pub parts: [(u64, u128, u64); 3],
    }
    include!(concat!(env!("OUT_DIR"), "/expected.rs"));
}

include!(concat!(env!("OUT_DIR"), "/window.rs"));

/// The seed example's file, as the client would read it.
pub const NUMS_CSV: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nums.csv"));

use core::sync::atomic::{AtomicBool, Ordering};
use cortex_m_semihosting::{debug, hprintln};

static FAILED: AtomicBool = AtomicBool::new(false);

/// Prints a check's outcome and remembers a failure for [`finish`].
pub fn check(what: &str, ok: bool) {
    if ok {
        hprintln!("ok   {}", what);
    } else {
        hprintln!("FAIL {}", what);
        FAILED.store(true, Ordering::Relaxed);
    }
}

/// Ends the program: semihosting exit 0 if every check passed, 1 otherwise.
pub fn finish() -> ! {
    if FAILED.load(Ordering::Relaxed) {
        hprintln!("mcu: FAILED");
        debug::exit(debug::EXIT_FAILURE);
    } else {
        debug::exit(debug::EXIT_SUCCESS);
    }
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("mcu: panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    hprintln!("mcu: hard fault (stack overflow?) at pc {:#x}", frame.pc());
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
