//! Back-end server B: `make serverB` runs it.
#[global_allocator]
static ALLOC: offload_bins::alloc::Counting = offload_bins::alloc::Counting;

fn main() -> std::process::ExitCode {
    offload_bins::server::main(offload_core::split::Part::B)
}
