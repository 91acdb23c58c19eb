//! The three stores a fallback call works with, each behind its own lock so
//! that a cache read never waits on the queue. The process-wide singletons
//! live here, so every JavaScript environment in the process (a re-evaluated
//! module, a worker thread) shares them.

use std::path::Path;
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

use super::breaker::Breakers;
use super::cache::{CacheConfig, ResponseCache};
use super::failures::{FailureConfig, FailureWindow};
use super::queue::{JobQueue, QueueConfig};
use super::retry::JitterRandom;
use super::storage::sqlite::{SqliteCache, SqliteFailures, SqliteQueue};
use super::storage::{CacheStore, Durability, FailureStore, Location, QueueStore, StorageResult};

pub type Shared<T> = Arc<Mutex<T>>;
/// A store behind its lock; the box lets `configure` move the singletons
/// to a file before they are used.
pub type SharedCache = Shared<Box<dyn CacheStore>>;
pub type SharedQueue = Shared<Box<dyn QueueStore>>;
pub type SharedFailures = Shared<Box<dyn FailureStore>>;

pub fn shared<T>(value: T) -> Shared<T> {
  Arc::new(Mutex::new(value))
}

/// Where a set of stores keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend<'a> {
  Memory,
  File(&'a Path, Durability),
}

pub fn open_cache(backend: Backend, config: CacheConfig) -> StorageResult<Box<dyn CacheStore>> {
  Ok(match backend {
    Backend::Memory => Box::new(ResponseCache::new(config)),
    Backend::File(path, durability) => Box::new(SqliteCache::open(path, durability, config)?),
  })
}

pub fn open_queue(backend: Backend, config: QueueConfig) -> StorageResult<Box<dyn QueueStore>> {
  Ok(match backend {
    Backend::Memory => Box::new(JobQueue::new(config)),
    Backend::File(path, durability) => Box::new(SqliteQueue::open(path, durability, config)?),
  })
}

pub fn open_failures(
  backend: Backend,
  config: FailureConfig,
) -> StorageResult<Box<dyn FailureStore>> {
  Ok(match backend {
    Backend::Memory => Box::new(FailureWindow::new(config)),
    Backend::File(path, durability) => Box::new(SqliteFailures::open(path, durability, config)?),
  })
}

#[derive(Clone)]
pub struct Stores {
  pub cache: SharedCache,
  pub queue: SharedQueue,
  pub failures: SharedFailures,
  /// `executeService`'s circuit breakers, by operation name.
  pub breakers: Shared<Breakers>,
  /// Randomness for retry jitter.
  pub random: Shared<JitterRandom>,
  /// Held while the stores move to a file, so two `configure` calls on
  /// different threads cannot interleave.
  moving: Shared<()>,
}

/// Why the singletons could not move to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveError {
  /// They already hold state somewhere else.
  InUse {
    current: Option<String>,
  },
  Storage(super::storage::StorageError),
}

impl Stores {
  pub fn new() -> Self {
    Self {
      cache: shared(Box::new(ResponseCache::new(CacheConfig::default()))),
      queue: shared(Box::new(JobQueue::new(QueueConfig::default()))),
      failures: shared(Box::new(FailureWindow::new(FailureConfig::default()))),
      breakers: shared(Breakers::default()),
      random: shared(JitterRandom::new(std::hash::BuildHasher::hash_one(
        &std::collections::hash_map::RandomState::new(),
        0u8,
      ))),
      moving: shared(()),
    }
  }

  /// Moves the cache, the queue and the failure history into the file at
  /// `path`, keeping their bounds. Allowed while they are in memory and have
  /// never held anything; asking again for the file they are already in
  /// changes nothing (a hot-reloaded module configures again). Either all
  /// three move or none does.
  pub fn move_to_file(&self, path: &Path, durability: Durability) -> Result<(), MoveError> {
    let _moving = self.moving.lock();
    let current = {
      let cache = self.cache.lock();
      match cache.location() {
        Location::File(current) => Some(current.to_owned()),
        Location::Memory { untouched } => {
          let untouched = untouched
            && matches!(
              self.queue.lock().location(),
              Location::Memory { untouched: true }
            )
            && matches!(
              self.failures.lock().location(),
              Location::Memory { untouched: true }
            );
          if !untouched {
            return Err(MoveError::InUse { current: None });
          }
          None
        }
      }
    };
    if let Some(current) = current {
      let same = std::fs::canonicalize(path).is_ok_and(|wanted| wanted == current);
      return match same {
        true => Ok(()),
        false => Err(MoveError::InUse {
          current: Some(current.display().to_string()),
        }),
      };
    }
    let file = Backend::File(path, durability);
    let open = || -> StorageResult<_> {
      Ok((
        open_cache(file, self.cache.lock().config())?,
        open_queue(file, self.queue.lock().config())?,
        open_failures(file, self.failures.lock().config())?,
      ))
    };
    let (cache, queue, failures) = open().map_err(MoveError::Storage)?;
    *self.cache.lock() = cache;
    *self.queue.lock() = queue;
    *self.failures.lock() = failures;
    Ok(())
  }
}

impl Default for Stores {
  fn default() -> Self {
    Self::new()
  }
}

/// The stores behind the exported `aiResponseCache`, `backgroundJobQueue`
/// and `integrationFailureManager`.
pub fn global() -> &'static Stores {
  static GLOBAL: LazyLock<Stores> = LazyLock::new(Stores::new);
  &GLOBAL
}
