//! The front-end server: `make aws` runs it.
fn main() -> std::process::ExitCode {
    offload_bins::aws::main()
}
