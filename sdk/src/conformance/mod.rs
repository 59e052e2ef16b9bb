//! Conformance suites that every store plugin and registry driver runs in its own tests,
//! behind the `conformance` feature:
//!
//! ```toml
//! [dev-dependencies]
//! tank-sdk = { version = "1", features = ["conformance"] }
//! ```
//!
//! Each suite opens the plugin through the same ABI objects the host gets after loading
//! it (so the panic guards and drop-aborts are in the path), runs every case, and panics
//! with the case's name and what differed. Run them against the real backend: a mock
//! proves nothing about the backend.
//!
//! - [`store::run`] opens a [`crate::Store`] type in process and runs the store suite;
//!   [`store::run_with`] also asks the backend after every case whether anything was left
//!   behind (the way to prove that an aborted upload leaves no partial object).
//! - [`registry::run`] does the same for a [`crate::RegistryDriver`] type.
//! - [`store::run_object`] and [`registry::run_object`] take an object that is already
//!   open, such as one the host's loader opened from a built library.
//!
//! The module's own tests run both suites against small in-memory plugins with one fault
//! at a time, to show that each case catches what it is meant to.

pub mod registry;
pub mod store;

/// `n` deterministic bytes that differ from chunk to chunk (xorshift64 of `seed`): test
/// data that no store can compress or deduplicate into a false pass.
pub fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
