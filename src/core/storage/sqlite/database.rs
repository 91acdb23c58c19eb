//! One connection to the SQLite file: opening it (schema checked, WAL,
//! durability), transactions, and the `meta` values kept in it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, FileControl, OpenFlags, Transaction, TransactionBehavior};

use super::errors::at;
use super::schema;
use crate::core::storage::error::{StorageError, StorageErrorKind, StorageResult};

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
  pub(super) fn meta(&mut self, key: &str) -> StorageResult<u64> {
    self
      .read(|tx| {
        tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
          row.get::<_, i64>(0)
        })
      })
      .map(|value| value as u64)
  }
}

/// Integers as SQLite holds them: milliseconds and counts fit easily in 63 bits.
pub(super) fn int(value: u64) -> i64 {
  value.min(i64::MAX as u64) as i64
}
