//! Back-end server A: `make serverA` runs it.
#[global_allocator]
static ALLOC: offload_bins::alloc::Counting = offload_bins::alloc::Counting;

fn main() -> std::process::ExitCode {
    if let Err(e) = offload_bins::messages::start("serverA") {
        eprintln!("{e}");
        return std::process::ExitCode::FAILURE;
    }
    offload_bins::server::main(offload_core::split::Part::A)
}
