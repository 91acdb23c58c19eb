//! Opening a store: in memory, in a SQLite file, or on a Redis server.

use std::path::Path;

use super::error::StorageResult;
use super::redis::{RedisCache, RedisFailures, RedisLink, RedisQueue};
use super::sqlite::{FileOptions, SqliteCache, SqliteFailures, SqliteQueue};
use super::traits::{CacheStore, FailureStore, QueueStore};
use crate::core::cache::{CacheConfig, ResponseCache};
use crate::core::failures::{FailureConfig, FailureWindow};
use crate::core::queue::{JobQueue, QueueConfig};

/// Where a set of stores keeps its state.
#[derive(Clone, Copy)]
pub enum Backend<'a> {
  Memory,
  File(&'a Path, FileOptions),
  /// On the server this link connects to (the three stores share it).
  Redis(&'a RedisLink),
}

pub fn open_cache(backend: Backend, config: CacheConfig) -> StorageResult<Box<dyn CacheStore>> {
  Ok(match backend {
    Backend::Memory => Box::new(ResponseCache::new(config)),
    Backend::File(path, options) => Box::new(SqliteCache::open(path, options, config)?),
    Backend::Redis(link) => Box::new(RedisCache::open(link.clone(), config)?),
  })
}

pub fn open_queue(backend: Backend, config: QueueConfig) -> StorageResult<Box<dyn QueueStore>> {
  Ok(match backend {
    Backend::Memory => Box::new(JobQueue::new(config)),
    Backend::File(path, options) => Box::new(SqliteQueue::open(path, options, config)?),
    Backend::Redis(link) => Box::new(RedisQueue::open(link.clone(), config)?),
  })
}

pub fn open_failures(
  backend: Backend,
  config: FailureConfig,
) -> StorageResult<Box<dyn FailureStore>> {
  Ok(match backend {
    Backend::Memory => Box::new(FailureWindow::new(config)),
    Backend::File(path, options) => Box::new(SqliteFailures::open(path, options, config)?),
    Backend::Redis(link) => Box::new(RedisFailures::open(link.clone(), config)?),
  })
}
