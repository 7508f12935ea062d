//! The client: `./client <min|max|sum|sos>` in the directory holding nums.csv.
#[global_allocator]
static ALLOC: offload_bins::alloc::Counting = offload_bins::alloc::Counting;

fn main() -> std::process::ExitCode {
    offload_bins::client::main()
}
