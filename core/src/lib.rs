//! # offload-core
//!
//! The sans-IO heart of offload: everything that can be decided without a socket or a
//! clock. It parses `nums.csv` lines, reduces numbers exactly, encodes and decodes the
//! fixed-size big-endian frames that travel over TCP and UDP, splits a job into three
//! parts, and runs the reliable-delivery state machines that make UDP loss-proof.
//!
//! The crate is `#![no_std]`, allocates nothing and forbids `unsafe`. Time is a number
//! the caller passes in ([`transfer::Instant`]), storage is supplied by the caller or
//! fixed by a const generic, and no public function panics on any input.
#![no_std]
#![forbid(unsafe_code)]

pub mod backend;
pub mod csv;
pub mod dispatch;
pub mod op;
pub mod reduce;
pub mod sim;
pub mod split;
pub mod transfer;
pub mod wide;
pub mod wire;

/// Data frames in flight per back-end per job on the host programs: the AWS's send
/// window and the back-ends' receive window. Defined once here for both ends; a chip
/// may choose a smaller window (it is a const generic everywhere in the core).
pub const WINDOW: usize = 512;

pub use op::Op;
pub use reduce::{Accumulator, Reduction};
pub use wide::I192;
pub use wire::JobId;
