//! Back-end server B: `make serverB` runs it.
fn main() -> std::process::ExitCode {
    offload_bins::server::main(offload_core::split::Part::B)
}
