//! The client: `./client <min|max|sum|sos>` in the directory holding nums.csv.
fn main() -> std::process::ExitCode {
    offload_bins::client::main()
}
