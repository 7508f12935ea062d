//! The client: `./client <min|max|sum|sos>` in the directory holding nums.csv.
#[global_allocator]
static ALLOC: offload_bins::alloc::Counting = offload_bins::alloc::Counting;

fn main() -> std::process::ExitCode {
    if let Err(e) = offload_bins::messages::start("client") {
        eprintln!("{e}");
        return std::process::ExitCode::FAILURE;
    }
    offload_bins::client::main()
}
