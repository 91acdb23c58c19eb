//! Where the cache, the queue and the failure history keep their state.
//! Each component talks to its store through a trait, with two
//! implementations: memory (the default), an embedded SQLite file
//! (durable, shared by every process that opens it) and a Redis server
//! (shared by every instance, on every machine).
//!
//! No call here assumes the storage is local, instant or infallible: every
//! one returns a `Result`, and the caller decides what a failure means (an
//! explicit method call reports it; the fallback path treats a store it
//! cannot reach as one that has nothing to offer).

#[cfg(test)]
mod byte_bounds;
pub mod error;
pub mod free;
pub mod open;
pub mod redis;
pub mod sqlite;
#[cfg(test)]
mod stalls;
pub mod traits;

pub use error::{StorageError, StorageErrorKind, StorageResult};
pub use open::{open_cache, open_failures, open_queue, Backend};
pub use sqlite::{Durability, FileOptions, DEFAULT_BUSY_TIMEOUT_MS};
pub use traits::{
  CacheStore, FailureStore, Finished, Heard, JobFilter, Location, Page, QueueStore, WorkSignal,
};
