//! The durable stores: one SQLite file (WAL mode) holds the queue, the
//! cache and the failure history. Every process that opens the file sees
//! the same state; each write is one `BEGIN IMMEDIATE` transaction, so
//! writers from several processes take turns and a job is leased to one
//! `dequeue` only.

mod cache;
mod database;
mod errors;
mod failures;
mod outbox;
mod queue;
mod schema;

pub use cache::SqliteCache;
pub(crate) use database::is_json;
pub use database::{Durability, FileOptions, DEFAULT_BUSY_TIMEOUT_MS};
pub use failures::SqliteFailures;
pub use outbox::{KeptRow, SqliteOutbox};
pub use queue::SqliteQueue;

#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod testing;
#[cfg(test)]
pub use testing::test_dir;

#[cfg(test)]
mod tests {
  use std::path::Path;

  use rusqlite::Connection;

  use super::database::Database;
  use super::*;
  use crate::core::cache::{CacheConfig, EntryText};
  use crate::core::queue::{JobPriority, JobType, NewJob, QueueConfig};
  use crate::core::storage::error::StorageErrorKind;
  use crate::core::storage::traits::{CacheStore, QueueStore};

  fn job() -> NewJob {
    NewJob {
      job_type: JobType::Ai,
      operation: "op".into(),
      payload: None,
      user_id: "u".into(),
      priority: JobPriority::Medium,
      retry_count: 0,
      max_retries: 3,
      next_retry_at: None,
    }
  }

  fn queue(path: &Path) -> SqliteQueue {
    SqliteQueue::open(path, Durability::Normal, QueueConfig::default()).unwrap()
  }

  #[test]
  fn state_is_there_after_reopening() {
    let path = test_dir("reopen").join("s.db");
    let id = queue(&path).enqueue(job(), 10).unwrap();
    let config = CacheConfig::default();
    let mut cache = SqliteCache::open(&path, Durability::Fsync, config).unwrap();
    cache
      .set_text(EntryText::new("p", "\"r\""), "m", Some(100), 10)
      .unwrap();
    drop(cache);
    let mut cache = SqliteCache::open(&path, Durability::Normal, config).unwrap();
    assert_eq!(cache.get("p", "m", 50).unwrap().unwrap().response, "\"r\"");
    assert_eq!(cache.get("p", "m", 111).unwrap(), None);
    let job = queue(&path).dequeue(20).unwrap().unwrap();
    assert_eq!(job.id, id);
  }

  #[test]
  fn the_cache_behaves_like_every_cache_store() {
    let dir = test_dir("cache-cases");
    crate::core::cache::conformance::run_all(&mut |name, config| {
      let path = dir.join(format!("{name}.db"));
      Box::new(SqliteCache::open(&path, Durability::Normal, config).unwrap())
    });
  }

  #[test]
  fn a_hit_on_an_old_entry_saves_it_from_eviction() {
    let path = test_dir("lru").join("s.db");
    let config = CacheConfig {
      max_entries: 8,
      ..CacheConfig::default()
    };
    let mut cache = SqliteCache::open(&path, Durability::Normal, config).unwrap();
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for key in keys {
      cache
        .set_text(EntryText::new(key, "1"), "m", None, 0)
        .unwrap();
    }
    // "h" is the most recent already; "a" is the oldest and must move.
    assert!(cache.get("h", "m", 1).unwrap().is_some());
    assert!(cache.get("a", "m", 1).unwrap().is_some());
    cache
      .set_text(EntryText::new("i", "1"), "m", None, 2)
      .unwrap();
    assert!(cache.get("a", "m", 3).unwrap().is_some(), "a was used");
    assert!(
      cache.get("b", "m", 3).unwrap().is_none(),
      "b was the least recently used"
    );
    assert_eq!(cache.stats(3).unwrap().evictions, 1);
  }

  #[test]
  fn two_connections_never_get_the_same_job() {
    let path = test_dir("exclusive").join("s.db");
    let (mut a, mut b) = (queue(&path), queue(&path));
    for _ in 0..20 {
      a.enqueue(job(), 0).unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    loop {
      let (x, y) = (a.dequeue(1).unwrap(), b.dequeue(1).unwrap());
      if x.is_none() && y.is_none() {
        break;
      }
      for job in x.into_iter().chain(y) {
        assert!(seen.insert(job.id.clone()), "{} handed out twice", job.id);
      }
    }
    assert_eq!(seen.len(), 20);
  }

  #[test]
  fn foreign_damaged_and_newer_files_are_refused() {
    let dir = test_dir("refused");
    let kind = |path: &Path| {
      Database::open(path, Durability::Normal)
        .err()
        .map(|e| e.kind)
    };

    let garbage = dir.join("garbage.db");
    std::fs::write(&garbage, "not a database\n".repeat(500)).unwrap();
    assert_eq!(kind(&garbage), Some(StorageErrorKind::Corrupt));

    let foreign = dir.join("foreign.db");
    Connection::open(&foreign)
      .unwrap()
      .execute_batch("CREATE TABLE notes (body TEXT)")
      .unwrap();
    assert_eq!(kind(&foreign), Some(StorageErrorKind::Corrupt));

    let newer = dir.join("newer.db");
    drop(Database::open(&newer, Durability::Normal).unwrap());
    Connection::open(&newer)
      .unwrap()
      .execute_batch("PRAGMA user_version = 99")
      .unwrap();
    assert_eq!(kind(&newer), Some(StorageErrorKind::TooNew));

    assert_eq!(
      kind(&garbage.join("below-a-file.db")),
      Some(StorageErrorKind::Unavailable)
    );
  }
}
