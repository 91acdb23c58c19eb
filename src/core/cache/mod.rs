//! The AI response cache: exact (prompt, modelId) keys, per-entry TTL, an LRU
//! bound on entries and on bytes, optional stale-if-error, O(log n) stats.
//!
//! Entries are indexed by a seeded 64-bit digest of the key, and every hit
//! is confirmed against the stored prompt and model id, so two different keys
//! can never answer for each other: a digest collision (about 1 in 10^11 at
//! 100,000 entries) can only make one entry replace the other.
//!
//! - `entry.rs`: the bounds, errors, hits, counts, entry text and key
//!   digests that the stores share.
//! - `memory.rs`: `ResponseCache`, the in-memory store and its indexes.
//! - `conformance.rs` (tests): what every store does alike, as cases the
//!   memory, SQLite and Redis stores' tests run.

#[cfg(test)]
pub(crate) mod conformance;
pub mod entry;
mod memory;

pub use entry::{
  CacheConfig, CacheError, CacheHit, CacheStats, EntryText, DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES,
  DEFAULT_TTL_MS,
};
pub use memory::ResponseCache;
