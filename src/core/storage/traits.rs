//! The store traits: what the cache, the queue and the failure history ask
//! of wherever their state is kept. Implemented in memory by the core
//! structures themselves (`cache/memory.rs`, `queue/memory.rs`,
//! `failures/memory.rs`, which cannot fail) and in SQLite (`sqlite/`).

use std::path::Path;
use std::sync::Arc;

use super::error::StorageResult;
use crate::core::cache::entry::{CacheConfig, CacheError, CacheHit, CacheStats, EntryText};
use crate::core::failures::record::{FailureConfig, FailureRecord, ServiceStats};
use crate::core::queue::job::{Job, NewJob, QueueConfig, QueueError, QueueStats};

/// What a store is kept in, for `configure` to tell whether a new storage
/// path would replace anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location<'a> {
  /// In memory; `untouched` while it has never held or counted anything.
  Memory {
    untouched: bool,
  },
  File(&'a Path),
}

pub trait CacheStore: Send {
  fn config(&self) -> CacheConfig;
  /// New bounds apply at once: whatever no longer fits is evicted, stale
  /// entries first, then least recently used.
  fn set_config(&mut self, config: CacheConfig, now: u64) -> StorageResult<()>;
  /// Stores a response's JSON text; `ttl_ms` of `None` or `0` means the
  /// default TTL.
  fn set_text(
    &mut self,
    entry: EntryText,
    model_id: &str,
    ttl_ms: Option<u64>,
    now: u64,
  ) -> Result<(), CacheError>;
  /// A live entry, or `None` (counted as a hit or a miss).
  fn get(&mut self, prompt: &str, model_id: &str, now: u64) -> StorageResult<Option<CacheHit>>;
  /// A live entry, or a stale one kept by stale-if-error.
  fn get_for_fallback(
    &mut self,
    prompt: &str,
    model_id: &str,
    now: u64,
  ) -> StorageResult<Option<CacheHit>>;
  fn delete(&mut self, prompt: &str, model_id: &str) -> StorageResult<bool>;
  /// Empties the cache and resets its counters.
  fn clear(&mut self) -> StorageResult<()>;
  fn stats(&mut self, now: u64) -> StorageResult<CacheStats>;
  /// How long calls wait for another process's lock on the file (nothing
  /// to wait for in memory).
  fn set_busy_timeout(&mut self, _ms: u64) -> StorageResult<()> {
    Ok(())
  }
  fn busy_timeout_ms(&self) -> u64 {
    0
  }
  fn location(&self) -> Location<'_>;
}

pub trait QueueStore: Send {
  fn config(&self) -> QueueConfig;
  /// New bounds apply at once; a lower `max_size` evicts finished jobs but
  /// never a pending or processing one.
  fn set_config(&mut self, config: QueueConfig, now: u64) -> StorageResult<()>;
  fn enqueue(&mut self, job: NewJob, now: u64) -> Result<Arc<str>, QueueError>;
  /// Leases the best ready job that `eligible` accepts; the ones it turns
  /// down keep their place.
  fn dequeue_eligible(
    &mut self,
    now: u64,
    eligible: &dyn Fn(&Job) -> bool,
  ) -> StorageResult<Option<Job>>;
  fn dequeue(&mut self, now: u64) -> StorageResult<Option<Job>> {
    self.dequeue_eligible(now, &|_| true)
  }
  /// Extends a processing job's lease to `now + leaseMs`; false when the
  /// job is not processing.
  fn renew_lease(&mut self, id: &str, now: u64) -> StorageResult<bool>;
  /// `renew_lease` for a worker that knows the job is still running: the
  /// lease is extended even when it ran out meanwhile and nothing has
  /// noticed yet.
  fn keep_leased(&mut self, id: &str, now: u64) -> StorageResult<bool>;
  /// Hands a processing job back, untried and ready now.
  fn release(&mut self, id: &str, now: u64) -> StorageResult<bool>;
  /// Marks a pending or processing job completed; false for an unknown or
  /// finished one.
  fn complete(&mut self, id: &str, now: u64) -> StorageResult<bool>;
  /// Records a failed attempt: back to pending after a backoff, or failed
  /// for good once `max_retries` attempts have failed.
  fn fail(&mut self, id: &str, error: &str, now: u64) -> StorageResult<bool>;
  fn stats(&mut self, now: u64) -> StorageResult<QueueStats>;
  fn get(&mut self, id: &str, now: u64) -> StorageResult<Option<Job>>;
  /// The jobs that match, in enqueue order.
  fn snapshot(&mut self, now: u64, filter: &dyn Fn(&Job) -> bool) -> StorageResult<Vec<Job>>;
  /// One failed job, or all of them, back to pending with a fresh retry
  /// count; returns how many went back.
  fn retry_failed(&mut self, id: Option<&str>, now: u64) -> StorageResult<usize>;
  /// Removes completed jobs; returns how many went.
  fn clear_completed(&mut self, now: u64) -> StorageResult<usize>;
  /// How long calls wait for another process's lock on the file (nothing
  /// to wait for in memory).
  fn set_busy_timeout(&mut self, _ms: u64) -> StorageResult<()> {
    Ok(())
  }
  fn busy_timeout_ms(&self) -> u64 {
    0
  }
  fn location(&self) -> Location<'_>;
}

pub trait FailureStore: Send {
  fn config(&self) -> FailureConfig;
  fn set_config(&mut self, config: FailureConfig) -> StorageResult<()>;
  fn record(
    &mut self,
    service: &str,
    operation: &str,
    error: &str,
    skip_reason: &str,
    now: u64,
  ) -> StorageResult<()>;
  /// True when at least `threshold` failures of `service` fall inside the
  /// window ending at `now`.
  fn should_skip(&mut self, service: &str, threshold: f64, now: u64) -> StorageResult<bool>;
  /// One service's failures, or every service's, oldest first.
  fn failures(&mut self, service: Option<&str>) -> StorageResult<Vec<FailureRecord>>;
  /// Forgets one service's failures, or all; true when anything was held.
  fn clear(&mut self, service: Option<&str>) -> StorageResult<bool>;
  /// Per service, in the order they first failed within what is held.
  fn stats(&mut self) -> StorageResult<Vec<ServiceStats>>;
  /// How long calls wait for another process's lock on the file (nothing
  /// to wait for in memory).
  fn set_busy_timeout(&mut self, _ms: u64) -> StorageResult<()> {
    Ok(())
  }
  fn busy_timeout_ms(&self) -> u64 {
    0
  }
  fn location(&self) -> Location<'_>;
}
