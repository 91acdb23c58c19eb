//! Opening a store: in memory, or in a SQLite file.

use std::path::Path;

use super::error::StorageResult;
use super::sqlite::{FileOptions, SqliteCache, SqliteFailures, SqliteQueue};
use super::traits::{CacheStore, FailureStore, QueueStore};
use crate::core::cache::{CacheConfig, ResponseCache};
use crate::core::failures::{FailureConfig, FailureWindow};
use crate::core::queue::{JobQueue, QueueConfig};

/// Where a set of stores keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend<'a> {
  Memory,
  File(&'a Path, FileOptions),
}

pub fn open_cache(backend: Backend, config: CacheConfig) -> StorageResult<Box<dyn CacheStore>> {
  Ok(match backend {
    Backend::Memory => Box::new(ResponseCache::new(config)),
    Backend::File(path, options) => Box::new(SqliteCache::open(path, options, config)?),
  })
}

pub fn open_queue(backend: Backend, config: QueueConfig) -> StorageResult<Box<dyn QueueStore>> {
  Ok(match backend {
    Backend::Memory => Box::new(JobQueue::new(config)),
    Backend::File(path, options) => Box::new(SqliteQueue::open(path, options, config)?),
  })
}

pub fn open_failures(
  backend: Backend,
  config: FailureConfig,
) -> StorageResult<Box<dyn FailureStore>> {
  Ok(match backend {
    Backend::Memory => Box::new(FailureWindow::new(config)),
    Backend::File(path, options) => Box::new(SqliteFailures::open(path, options, config)?),
  })
}
