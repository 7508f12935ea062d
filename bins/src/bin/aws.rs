//! The front-end server: `make aws` runs it.
#[global_allocator]
static ALLOC: offload_bins::alloc::Counting = offload_bins::alloc::Counting;

fn main() -> std::process::ExitCode {
    if let Err(e) = offload_bins::messages::start("aws") {
        eprintln!("{e}");
        return std::process::ExitCode::FAILURE;
    }
    offload_bins::aws::main()
}
