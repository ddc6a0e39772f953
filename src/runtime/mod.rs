//! The long-running side of `handoff`: what `handoff serve` builds on.
//!
//! - [`store`]: the durable store (the [`store::Store`] trait, its SQLite
//!   backend, the schema migrations).
//! - [`writer`]: group commit, the single writer thread every write goes
//!   through.
//!
//! Behind the `serve` cargo feature (on by default), so a build of the
//! language tool alone carries no SQLite.

pub mod ingest;
pub mod store;
pub mod writer;
