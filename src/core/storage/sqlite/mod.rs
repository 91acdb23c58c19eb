//! The durable stores: one SQLite file (WAL mode) holds the queue, the
//! cache and the failure history. Every process that opens the file sees
//! the same state; each write is one `BEGIN IMMEDIATE` transaction, so
//! writers from several processes take turns and a job is leased to one
//! `dequeue` only.

mod cache;
mod failures;
mod queue;
mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, FileControl, OpenFlags, Transaction, TransactionBehavior};

use super::error::{StorageError, StorageErrorKind, StorageResult};

pub use cache::SqliteCache;
pub use failures::SqliteFailures;
pub use queue::SqliteQueue;

/// How long a write waits for another process's transaction to end before
/// reporting the storage as unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// When a write counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
  /// Survives the process being killed: the commit is in the operating
  /// system's page cache (`synchronous=NORMAL`), not yet on the disk.
  #[default]
  Normal,
  /// Survives power loss too: every commit waits for the disk (`fsync`,
  /// `synchronous=FULL`).
  Fsync,
}

/// One connection to the file, with its schema checked and up to date.
pub struct Database {
  connection: Connection,
  path: PathBuf,
}

impl Database {
  pub fn open(path: &Path, durability: Durability) -> StorageResult<Self> {
    let unavailable = |what: &dyn std::fmt::Display| {
      StorageError::new(
        StorageErrorKind::Unavailable,
        format!("Cannot open the storage file {}: {what}", path.display()),
      )
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
      std::fs::create_dir_all(dir).map_err(|e| unavailable(&e))?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
      | OpenFlags::SQLITE_OPEN_CREATE
      | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(|e| at(path, e))?;
    let mut database = Self {
      connection,
      path: path.to_owned(),
    };
    database.configure(durability)?;
    let path = std::fs::canonicalize(path).map_err(|e| unavailable(&e))?;
    database.path = path;
    Ok(database)
  }

  fn configure(&mut self, durability: Durability) -> StorageResult<()> {
    let path = self.path.clone();
    let connection = &mut self.connection;
    connection
      .busy_timeout(BUSY_TIMEOUT)
      .map_err(|e| at(&path, e))?;
    if connection.is_readonly("main").map_err(|e| at(&path, e))? {
      return Err(StorageError::new(
        StorageErrorKind::Unavailable,
        format!("The storage file {} is not writable", path.display()),
      ));
    }
    // Look before touching: a file of another application, or of a newer
    // release, is refused before anything is written to it.
    schema::check(connection, &path)?;
    // Small pages for a new file: a commit writes every page it changed, and
    // a queue operation changes a few rows of a few bytes (1 KiB pages
    // commit in about half the time of 4 KiB ones). Ignored for an existing file.
    connection
      .pragma_update(None, "page_size", 1024)
      .map_err(|e| at(&path, e))?;
    let mode: String = connection
      .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
      .map_err(|e| at(&path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
      return Err(StorageError::new(
        StorageErrorKind::Unavailable,
        format!(
          "The storage file {} cannot use write-ahead logging (journal mode stays {mode})",
          path.display()
        ),
      ));
    }
    let synchronous = match durability {
      Durability::Normal => "NORMAL",
      Durability::Fsync => "FULL",
    };
    connection
      .pragma_update(None, "synchronous", synchronous)
      .map_err(|e| at(&path, e))?;
    let tx = connection
      .transaction_with_behavior(TransactionBehavior::Immediate)
      .map_err(|e| at(&path, e))?;
    schema::migrate(&tx, &path)?;
    tx.commit().map_err(|e| at(&path, e))
  }

  /// The file this connection opened was deleted or replaced: SQLite would
  /// go on writing to the unlinked inode and every change would vanish with
  /// the process, so stop with an error instead.
  fn ensure_in_place(&self) -> StorageResult<()> {
    let mut moved: std::os::raw::c_int = 0;
    self
      .connection
      .file_control(Some("main"), FileControl::HasMoved(&mut moved))
      .map_err(|e| at(&self.path, e))?;
    if moved != 0 {
      return Err(StorageError::new(
        StorageErrorKind::Unavailable,
        format!(
          "The storage file {} was deleted or replaced while in use; changes are refused so that none is lost (restart to open the file anew)",
          self.path.display()
        ),
      ));
    }
    Ok(())
  }

  pub fn path(&self) -> &Path {
    &self.path
  }

  /// Runs `work` in one `BEGIN IMMEDIATE` transaction and commits it.
  pub fn write<T>(
    &mut self,
    work: impl FnOnce(&Transaction) -> rusqlite::Result<T>,
  ) -> StorageResult<T> {
    self.transaction(TransactionBehavior::Immediate, work)
  }

  /// Runs `work` in one deferred transaction: a consistent snapshot that
  /// becomes a write only if `work` writes.
  pub fn read<T>(
    &mut self,
    work: impl FnOnce(&Transaction) -> rusqlite::Result<T>,
  ) -> StorageResult<T> {
    self.transaction(TransactionBehavior::Deferred, work)
  }

  fn transaction<T>(
    &mut self,
    behavior: TransactionBehavior,
    work: impl FnOnce(&Transaction) -> rusqlite::Result<T>,
  ) -> StorageResult<T> {
    self.ensure_in_place()?;
    let path = &self.path;
    let tx = self
      .connection
      .transaction_with_behavior(behavior)
      .map_err(|e| at(path, e))?;
    let value = work(&tx).map_err(|e| at(path, e))?;
    tx.commit().map_err(|e| at(path, e))?;
    Ok(value)
  }

  /// Reads through `work` on a snapshot when nothing time-driven is due
  /// (`due` says), so a read takes no write lock; otherwise applies
  /// `advance` and reads in one write transaction.
  pub fn read_current<T>(
    &mut self,
    due: impl Fn(&Transaction) -> rusqlite::Result<bool>,
    advance: impl FnOnce(&Transaction) -> rusqlite::Result<()>,
    work: impl Fn(&Transaction) -> rusqlite::Result<T>,
  ) -> StorageResult<T> {
    let current = self.read(|tx| match due(tx)? {
      true => Ok(None),
      false => work(tx).map(Some),
    })?;
    match current {
      Some(value) => Ok(value),
      None => self.write(|tx| {
        advance(tx)?;
        work(tx)
      }),
    }
  }

  /// A value kept in the file's `meta` table (random keys made once, when
  /// the file was created).
  fn meta(&mut self, key: &str) -> StorageResult<u64> {
    self
      .read(|tx| {
        tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
          row.get::<_, i64>(0)
        })
      })
      .map(|value| value as u64)
  }
}

/// What a SQLite error means for the caller.
fn at(path: &Path, error: rusqlite::Error) -> StorageError {
  let kind = match error.sqlite_error_code() {
    Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StorageErrorKind::Corrupt,
    _ => StorageErrorKind::Unavailable,
  };
  let message = match kind {
    StorageErrorKind::Corrupt => format!(
      "The storage file {} is not a fallback-mechanisms database or is damaged ({error})",
      path.display()
    ),
    _ => format!(
      "The storage file {} cannot be used: {error}",
      path.display()
    ),
  };
  StorageError::new(kind, message)
}

/// Integers as SQLite holds them: milliseconds and counts fit easily in 63 bits.
fn int(value: u64) -> i64 {
  value.min(i64::MAX as u64) as i64
}

/// A fresh, empty directory for one test's files.
#[cfg(test)]
pub fn test_dir(name: &str) -> PathBuf {
  use std::sync::atomic::{AtomicU64, Ordering};
  static NEXT: AtomicU64 = AtomicU64::new(0);
  let dir = std::env::temp_dir().join(format!(
    "fallback-mechanisms-test-{}-{name}-{}",
    std::process::id(),
    NEXT.fetch_add(1, Ordering::Relaxed)
  ));
  let _ = std::fs::remove_dir_all(&dir);
  std::fs::create_dir_all(&dir).unwrap();
  dir
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::cache::{CacheConfig, EntryText};
  use crate::core::queue::{JobPriority, JobType, NewJob, QueueConfig};
  use crate::core::storage::{CacheStore, QueueStore};

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
