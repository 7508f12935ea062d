//! The front-end server: `make aws` runs it.
#[global_allocator]
static ALLOC: offload_bins::alloc::Counting = offload_bins::alloc::Counting;

fn main() -> std::process::ExitCode {
    offload_bins::aws::main()
}
