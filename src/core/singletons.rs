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
use super::quiet::QuietWatch;
use super::retry::JitterRandom;
use super::storage::redis::RedisLink;
use super::storage::{
  open_cache, open_failures, open_queue, Backend, CacheStore, FailureStore, Location, QueueStore,
  StorageError, StorageResult, DEFAULT_BUSY_TIMEOUT_MS,
};

pub type Shared<T> = Arc<Mutex<T>>;
/// A store behind its lock; the box lets `configure` move the singletons
/// to a file before they are used.
pub type SharedCache = Shared<Box<dyn CacheStore>>;
pub type SharedQueue = Shared<Box<dyn QueueStore>>;
pub type SharedFailures = Shared<Box<dyn FailureStore>>;

pub fn shared<T>(value: T) -> Shared<T> {
  Arc::new(Mutex::new(value))
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
  /// What `configure` asked for before the stores moved to a file: the
  /// bounds (applied to the file when they move, unlike the defaults) and
  /// the busy timeout.
  asked: Shared<Asked>,
  /// The server the singletons are on, once they moved to Redis.
  redis: Shared<Option<RedisLink>>,
  /// When no cooldown runs, as the failure store last said (`quiet`).
  pub quiet: Arc<QuietWatch>,
}

#[derive(Debug, Clone)]
struct Asked {
  bounds: Bounds,
  busy_timeout_ms: u64,
}

/// Why the singletons could not move to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveError {
  /// They already hold state somewhere else.
  InUse {
    current: Option<String>,
  },
  Storage(StorageError),
}

impl Stores {
  pub fn new() -> Self {
    Self {
      cache: shared(Box::new(ResponseCache::new(CacheConfig::default()))),
      queue: shared(Box::new(JobQueue::new(QueueConfig::default()))),
      failures: shared(Box::new(FailureWindow::new(FailureConfig::default()))),
      // A new window holds no cooldown.
      quiet: Arc::new(QuietWatch::new(0)),
      breakers: shared(Breakers::default()),
      random: shared(JitterRandom::new(std::hash::BuildHasher::hash_one(
        &std::collections::hash_map::RandomState::new(),
        0u8,
      ))),
      asked: shared(Asked {
        bounds: Bounds::default(),
        busy_timeout_ms: DEFAULT_BUSY_TIMEOUT_MS,
      }),
      redis: shared(None),
    }
  }

  /// Moves the cache, the queue and the failure history into the file or
  /// onto the Redis server `target` names, with these bounds (`None`: the
  /// store's, or the defaults for one that holds none; bounds asked for
  /// earlier, in memory, count as given). Opening never applies bounds
  /// nobody asked for, so a process that only opens a store evicts nothing
  /// of another's. Allowed while they are in memory and have never held
  /// anything; asking again for the store they are already in only applies
  /// the bounds (a hot-reloaded module configures again). All three locks
  /// are held from the check to the swap, so nothing written meanwhile can
  /// be left behind in memory; either all three move or none does.
  pub fn move_to(&self, target: Backend, bounds: Bounds, now: u64) -> Result<(), MoveError> {
    let mut cache = self.cache.lock();
    let mut queue = self.queue.lock();
    let mut failures = self.failures.lock();
    match cache.location() {
      Location::Memory { .. } => {}
      current if is_same(target, &current) => {
        return apply_bounds(&mut **cache, &mut **queue, &mut **failures, bounds, now)
          .map_err(MoveError::Storage);
      }
      current => {
        return Err(MoveError::InUse {
          current: Some(describe(&current)),
        });
      }
    }
    let untouched = |location: Location| matches!(location, Location::Memory { untouched: true });
    if !(untouched(cache.location())
      && untouched(queue.location())
      && untouched(failures.location()))
    {
      return Err(MoveError::InUse { current: None });
    }
    let asked = self.asked.lock().bounds.clone();
    let wanted = Bounds {
      cache: bounds.cache.or(asked.cache),
      queue: bounds.queue.or(asked.queue),
      failures: bounds.failures.or(asked.failures),
    };
    let open = || -> StorageResult<_> {
      let mut moved = (
        open_cache(target, cache.config())?,
        open_queue(target, queue.config())?,
        open_failures(target, failures.config())?,
      );
      apply_bounds(&mut *moved.0, &mut *moved.1, &mut *moved.2, wanted, now)?;
      Ok(moved)
    };
    let (new_cache, new_queue, new_failures) = open().map_err(MoveError::Storage)?;
    *cache = new_cache;
    *queue = new_queue;
    *failures = new_failures;
    self.quiet.publish(failures.quiet_from());
    if let Backend::Redis(link) = target {
      *self.redis.lock() = Some(link.clone());
    }
    Ok(())
  }

  /// Runs `call` on the cache. On Redis it runs on a detached copy, so
  /// that the round trip does not hold the cache's lock: calls waiting for
  /// a slow or paused server run side by side, each bounded by
  /// `redisTimeoutMs`, instead of one after the other behind the lock.
  pub fn with_cache<T>(&self, call: impl FnOnce(&mut dyn CacheStore) -> T) -> T {
    let detached = self.cache.lock().detached();
    match detached {
      Some(mut store) => call(&mut *store),
      None => call(&mut **self.cache.lock()),
    }
  }

  /// `with_cache`, for the queue.
  pub fn with_queue<T>(&self, call: impl FnOnce(&mut dyn QueueStore) -> T) -> T {
    let detached = self.queue.lock().detached();
    match detached {
      Some(mut store) => call(&mut *store),
      None => call(&mut **self.queue.lock()),
    }
  }

  /// `with_cache`, for the failure history.
  pub fn with_failures<T>(&self, call: impl FnOnce(&mut dyn FailureStore) -> T) -> T {
    let detached = self.failures.lock().detached();
    match detached {
      Some(mut store) => call(&mut *store),
      None => {
        let mut store = self.failures.lock();
        let answer = call(&mut **store);
        self.quiet.publish(store.quiet_from());
        answer
      }
    }
  }

  /// `call` on the failure store when it is in this process (memory or
  /// its file), under its lock; `None` for a store on a server, which is
  /// not touched.
  pub fn with_failures_here<T>(&self, call: impl FnOnce(&dyn FailureStore) -> T) -> Option<T> {
    let store = self.failures.lock();
    match store.location() {
      Location::Redis(_) => None,
      _ => Some(call(&**store)),
    }
  }

  /// Whether the singletons are on a Redis server.
  pub fn on_redis(&self) -> bool {
    self.redis.lock().is_some()
  }

  /// The link to the Redis server the singletons are on, if they are.
  pub fn redis(&self) -> Option<RedisLink> {
    self.redis.lock().clone()
  }

  /// Applies new bounds to the singletons wherever they are.
  pub fn set_bounds(&self, bounds: Bounds, now: u64) -> StorageResult<()> {
    {
      let mut asked = self.asked.lock();
      asked.bounds = Bounds {
        cache: bounds.cache.or(asked.bounds.cache),
        queue: bounds.queue.clone().or(asked.bounds.queue.clone()),
        failures: bounds.failures.or(asked.bounds.failures),
      };
    }
    apply_bounds(
      &mut **self.cache.lock(),
      &mut **self.queue.lock(),
      &mut **self.failures.lock(),
      bounds,
      now,
    )
  }
}

impl Stores {
  /// The busy timeout the singletons use, or will use once in a file.
  pub fn busy_timeout_ms(&self) -> u64 {
    self.asked.lock().busy_timeout_ms
  }

  /// Sets how long the singletons' calls wait for another process's lock,
  /// at once if they are in a file, and for a later move otherwise.
  pub fn set_busy_timeout(&self, ms: u64) -> StorageResult<()> {
    self.asked.lock().busy_timeout_ms = ms;
    self.cache.lock().set_busy_timeout(ms)?;
    self.queue.lock().set_busy_timeout(ms)?;
    self.failures.lock().set_busy_timeout(ms)
  }
}

/// Whether the singletons, now at `current`, are already where `target`
/// points.
fn is_same(target: Backend, current: &Location) -> bool {
  match (target, current) {
    (Backend::File(path, _), Location::File(current)) => {
      std::fs::canonicalize(path).is_ok_and(|wanted| wanted == *current)
    }
    (Backend::Redis(link), Location::Redis(place)) => link.place() == *place,
    _ => false,
  }
}

fn describe(location: &Location) -> String {
  match location {
    Location::Memory { .. } => "memory".into(),
    Location::File(path) => path.display().to_string(),
    Location::Redis(place) => place.to_string(),
  }
}

/// New bounds for some of the three stores.
#[derive(Debug, Clone, Default)]
pub struct Bounds {
  pub cache: Option<CacheConfig>,
  pub queue: Option<QueueConfig>,
  pub failures: Option<FailureConfig>,
}

fn apply_bounds(
  cache: &mut dyn CacheStore,
  queue: &mut dyn QueueStore,
  failures: &mut dyn FailureStore,
  bounds: Bounds,
  now: u64,
) -> StorageResult<()> {
  if let Some(config) = bounds.cache {
    cache.set_config(config, now)?;
  }
  if let Some(config) = bounds.queue {
    queue.set_config(config, now)?;
  }
  if let Some(config) = bounds.failures {
    failures.set_config(config)?;
  }
  Ok(())
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

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::storage::FileOptions;

  #[test]
  fn a_bench_through_the_stores_is_published_before_the_call_returns() {
    let stores = Stores::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    let id = stores
      .quiet
      .watch(Box::new(move |time| into.lock().push(time)));
    stores
      .with_failures(|store| store.bench("claude", 5_000, "429", 1_000))
      .unwrap();
    assert_eq!(*seen.lock(), vec![0, 5_000]);
    stores.with_failures(|store| store.clear(None)).unwrap();
    assert_eq!(*seen.lock(), vec![0, 5_000, 0]);
    stores.quiet.unwatch(id);
  }

  #[test]
  fn a_store_in_a_file_says_to_always_ask() {
    let dir = std::env::temp_dir().join(format!("quiet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.db");
    let stores = Stores::new();
    stores
      .move_to(
        Backend::File(&file, FileOptions::default()),
        Bounds::default(),
        0,
      )
      .unwrap();
    assert_eq!(stores.quiet.quiet_from(), u64::MAX);
    drop(stores);
    std::fs::remove_dir_all(&dir).unwrap();
  }
}
