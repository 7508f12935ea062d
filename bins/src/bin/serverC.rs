//! Back-end server C: `make serverC` runs it.
fn main() -> std::process::ExitCode {
    offload_bins::server::main(offload_core::split::Part::C)
}
