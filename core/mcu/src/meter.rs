//! What the chip measures about itself: flash and static RAM from the linker's symbols,
//! peak stack by painting, and instructions by SysTick under QEMU's `-icount shift=0`
//! (the virtual clock then advances exactly one nanosecond per instruction, and SysTick
//! counts core clock cycles of that virtual clock: a calibration loop of known length
//! converts ticks back to instructions).
use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::syst::SystClkSource;

const PAINT: u32 = 0x5AC3_5AC3;
const RAM_START: usize = 0x2000_0000;

/// RAM size of the chip the program was linked for.
pub fn ram_size() -> usize {
    // SAFETY: linker symbol; only its address is taken.
    unsafe { addr(&_stack_start) - RAM_START }
}

extern "C" {
    static __sidata: u32;
    static __sdata: u32;
    static __edata: u32;
    static __sheap: u32;
    static _stack_start: u32;
    static __stext: u32;
}

fn addr(sym: &u32) -> usize {
    sym as *const u32 as usize
}

/// Flash bytes used: vectors, code and read-only data, plus `.data`'s initial image.
pub fn flash_used() -> usize {
    // SAFETY: linker symbols; only their addresses are taken.
    unsafe { addr(&__sidata) + (addr(&__edata) - addr(&__sdata)) }
}

/// Code bytes from the start of `.text` to the end of the image (text + rodata).
pub fn text_start() -> usize {
    // SAFETY: linker symbol; only its address is taken.
    unsafe { addr(&__stext) }
}

/// RAM taken by statics (`.data`, `.bss`, `.uninit`).
pub fn static_ram() -> usize {
    // SAFETY: linker symbol; only its address is taken.
    unsafe { addr(&__sheap) - RAM_START }
}

/// RAM left for the stack.
pub fn stack_room() -> usize {
    // SAFETY: linker symbols; only their addresses are taken.
    unsafe { addr(&_stack_start) - addr(&__sheap) }
}

/// Fills the free stack below the current frame with a pattern.
#[inline(never)]
pub fn paint_stack() {
    let sp = cortex_m::register::msp::read() as usize;
    // SAFETY: [__sheap, sp - 64) is RAM above every static and below the live stack.
    unsafe {
        let mut p = addr(&__sheap) as *mut u32;
        let end = (sp - 64) as *mut u32;
        while p < end {
            p.write_volatile(PAINT);
            p = p.add(1);
        }
    }
}

/// The deepest the stack has reached since [`paint_stack`], in bytes.
#[inline(never)]
pub fn peak_stack() -> usize {
    // SAFETY: reads RAM between the statics and the stack top, all mapped.
    unsafe {
        let top = addr(&_stack_start);
        let mut p = addr(&__sheap) as *const u32;
        while (p as usize) < top && p.read_volatile() == PAINT {
            p = p.add(1);
        }
        top - p as usize
    }
}

static WRAPS: AtomicU32 = AtomicU32::new(0);
const RELOAD: u32 = 0x00FF_FFFF;

#[cortex_m_rt::exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Starts SysTick on the core clock, free-running with an interrupt per wrap.
pub fn start_clock() {
    // SAFETY: the only user of SysTick in this program.
    let mut syst = unsafe { cortex_m::Peripherals::steal() }.SYST;
    // Rewriting the LM3S6965's run-mode clock configuration (RCC) makes QEMU compute
    // the system clock that drives SysTick; before that write its period is zero.
    const RCC: *mut u32 = 0x400F_E060 as *mut u32;
    // SAFETY: RCC is a device register of this chip; its value is written back as read.
    unsafe { RCC.write_volatile(RCC.read_volatile()) };
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Core clock ticks since [`start_clock`].
pub fn ticks() -> u64 {
    loop {
        let w = WRAPS.load(Ordering::Relaxed);
        let cur = cortex_m::peripheral::SYST::get_current();
        if WRAPS.load(Ordering::Relaxed) == w {
            return u64::from(w) * u64::from(RELOAD + 1) + u64::from(RELOAD - cur);
        }
    }
}

/// Instructions per 1000 ticks, from a loop of exactly `2 * n` instructions. QEMU
/// starts SysTick's clock late (its first period is zero), so the loop runs twice and
/// the second run counts.
pub fn calibrate() -> u64 {
    count_loop();
    count_loop()
}

fn count_loop() -> u64 {
    let n: u32 = 2_000_000;
    let t0 = ticks();
    // SAFETY: a register-only countdown loop: `subs` + `bne`, two instructions a turn.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {0}, {0}, #1",
            "bne 2b",
            inout(reg) n => _,
            options(nomem, nostack),
        );
    }
    let dt = ticks() - t0;
    (2 * u64::from(n) * 1000).checked_div(dt).unwrap_or(0)
}

/// Converts ticks to instructions with a calibration from [`calibrate`].
pub fn insns(ticks: u64, per_kilotick: u64) -> u64 {
    ticks * per_kilotick / 1000
}
