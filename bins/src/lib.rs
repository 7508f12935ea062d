//! The five offload programs as a small library over `offload-core`: configuration,
//! sockets, the clock and the on-screen messages live here, and nowhere else touches
//! the operating system. The binaries in `src/bin/` only call [`client::main`],
//! [`aws::main`] and [`server::main`].

pub mod alloc;
pub mod aws;
pub mod client;
pub mod config;
pub mod messages;
pub mod net;
pub mod progress;
pub mod server;
