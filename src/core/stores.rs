//! The three stores a fallback call works with, each behind its own lock so
//! that a cache read never waits on the queue. The process-wide singletons
//! live here, so every JavaScript environment in the process (a re-evaluated
//! module, a worker thread) shares them.

use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

use super::breaker::Breakers;
use super::cache::{CacheConfig, ResponseCache};
use super::failures::{FailureConfig, FailureWindow};
use super::queue::{JobQueue, QueueConfig};
use super::retry::JitterRandom;

pub type Shared<T> = Arc<Mutex<T>>;

#[derive(Clone)]
pub struct Stores {
  pub cache: Shared<ResponseCache>,
  pub queue: Shared<JobQueue>,
  pub failures: Shared<FailureWindow>,
  /// `executeService`'s circuit breakers, by operation name.
  pub breakers: Shared<Breakers>,
  /// Randomness for retry jitter.
  pub random: Shared<JitterRandom>,
}

impl Stores {
  pub fn new() -> Self {
    Self {
      cache: Arc::new(Mutex::new(ResponseCache::new(CacheConfig::default()))),
      queue: Arc::new(Mutex::new(JobQueue::new(QueueConfig::default()))),
      failures: Arc::new(Mutex::new(FailureWindow::new(FailureConfig::default()))),
      breakers: Arc::new(Mutex::new(Breakers::default())),
      random: Arc::new(Mutex::new(JitterRandom::new(
        std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8),
      ))),
    }
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
