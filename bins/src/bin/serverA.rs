//! Back-end server A: `make serverA` runs it.
fn main() -> std::process::ExitCode {
    offload_bins::server::main(offload_core::split::Part::A)
}
