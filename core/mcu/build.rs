//! Puts `memory.x` on the linker's path for cortex-m-rt's `link.x`, and generates the
//! expected answers on the host with `expected.py` (an independent implementation).
use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

/// Numbers in the seeded full-range job, and its generator's seed.
const FULL_N: &str = "30000";
const FULL_SEED: &str = "0x0ff10ad5eed";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let here = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));
    println!("cargo:rerun-if-env-changed=MCU_MEMORY");
    let memory = match env::var("MCU_MEMORY").as_deref() {
        Ok("big") => "memory-big.x",
        _ => "memory-lm3s6965.x",
    };
    fs::copy(here.join(memory), out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rerun-if-changed={memory}");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg=-Tlink.x");

    let nums = here.join("../../nums.csv");
    let py = Command::new("python3")
        .arg(here.join("expected.py"))
        .arg(&nums)
        .args([FULL_N, FULL_SEED])
        .output()
        .expect("python3 is needed to compute the expected answers");
    assert!(
        py.status.success(),
        "expected.py failed: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    fs::write(out.join("expected.rs"), &py.stdout).expect("write expected.rs");
    fs::copy(&nums, out.join("nums.csv")).expect("copy nums.csv");
    println!("cargo:rerun-if-changed=expected.py");
    println!("cargo:rerun-if-changed={}", nums.display());
    println!("cargo:rerun-if-env-changed=MCU_WINDOW");
    let window = env::var("MCU_WINDOW").unwrap_or_else(|_| "8".into());
    let window: usize = window.parse().expect("MCU_WINDOW must be a number");
    fs::write(
        out.join("window.rs"),
        format!("/// Send window (frames in flight per part), from MCU_WINDOW.\npub const WINDOW: usize = {window};\n"),
    )
    .expect("write window.rs");
}
