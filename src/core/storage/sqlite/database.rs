//! One connection to the SQLite file: opening it (schema checked, WAL,
//! durability), transactions, and the `meta` values kept in it.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(unix)]
use rusqlite::FileControl;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use super::errors::at;
use super::schema;
use crate::core::storage::error::{StorageError, StorageErrorKind, StorageResult};

/// How long a call waits for another process's transaction to end before
/// reporting the storage as busy, unless the caller asks otherwise: calls
/// made on the JavaScript thread must not freeze a server for seconds.
pub const DEFAULT_BUSY_TIMEOUT_MS: u64 = 250;

/// How long opening a file keeps trying while other processes hold it
/// (opening is done once, at startup, and several processes often start
/// together); never less than the busy timeout.
const OPEN_BUDGET: Duration = Duration::from_secs(10);

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

/// How a file is opened: its durability and how long a call waits for
/// another process's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileOptions {
  pub durability: Durability,
  pub busy_timeout_ms: u64,
}

impl Default for FileOptions {
  fn default() -> Self {
    Self {
      durability: Durability::Normal,
      busy_timeout_ms: DEFAULT_BUSY_TIMEOUT_MS,
    }
  }
}

impl From<Durability> for FileOptions {
  fn from(durability: Durability) -> Self {
    Self {
      durability,
      ..Self::default()
    }
  }
}

/// Which file a path names: device and inode.
#[cfg(unix)]
fn file_id(path: &Path) -> Option<(u64, u64)> {
  use std::os::unix::fs::MetadataExt;
  std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(path: &Path) -> Option<(u64, u64)> {
  std::fs::metadata(path).ok().map(|_| (0, 0))
}

/// One connection to the file, with its schema checked and up to date.
pub struct Database {
  connection: Connection,
  path: PathBuf,
  /// The `-wal` companion and the file it was when first seen: deleting or
  /// replacing it while the connection is open loses committed changes at
  /// the next restart, so it is checked before each transaction.
  wal: PathBuf,
  wal_id: Option<(u64, u64)>,
  busy_timeout_ms: u64,
}

impl Database {
  pub fn open(path: &Path, options: impl Into<FileOptions>) -> StorageResult<Self> {
    let options = options.into();
    let unavailable = |what: &dyn std::fmt::Display| {
      StorageError::new(
        StorageErrorKind::Unavailable,
        format!("Cannot open the storage file {}: {what}", path.display()),
      )
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
      std::fs::create_dir_all(dir).map_err(|e| unavailable(&e))?;
    }
    // Processes opening one file together take turns (the check and the
    // schema are one write transaction); a step that finds the file busy
    // without waiting (switching to WAL, recovery) is tried again, the whole
    // open, until the budget runs out.
    let budget = OPEN_BUDGET.max(Duration::from_millis(options.busy_timeout_ms));
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    let mut database = loop {
      match Self::try_open(path, options) {
        Err(error) if error.kind == StorageErrorKind::Busy && started.elapsed() < budget => {
          std::thread::sleep(pause);
          pause = (pause * 2).min(Duration::from_millis(50));
        }
        result => break result?,
      }
    };
    database.path = std::fs::canonicalize(path).map_err(|e| unavailable(&e))?;
    let mut wal = database.path.clone().into_os_string();
    wal.push("-wal");
    database.wal = PathBuf::from(wal);
    database.wal_id = file_id(&database.wal);
    database.set_busy_timeout(options.busy_timeout_ms)?;
    Ok(database)
  }

  fn try_open(path: &Path, options: FileOptions) -> StorageResult<Self> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
      | OpenFlags::SQLITE_OPEN_CREATE
      | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(|e| at(path, e))?;
    let mut database = Self {
      connection,
      path: path.to_owned(),
      wal: PathBuf::new(),
      wal_id: None,
      busy_timeout_ms: options.busy_timeout_ms,
    };
    database.configure(options)?;
    Ok(database)
  }

  /// How long this connection's calls wait for another process's lock.
  pub fn set_busy_timeout(&mut self, ms: u64) -> StorageResult<()> {
    self
      .connection
      .busy_timeout(Duration::from_millis(ms))
      .map_err(|e| at(&self.path, e))?;
    self.busy_timeout_ms = ms;
    Ok(())
  }

  pub fn busy_timeout_ms(&self) -> u64 {
    self.busy_timeout_ms
  }

  fn configure(&mut self, options: FileOptions) -> StorageResult<()> {
    let path = self.path.clone();
    let connection = &mut self.connection;
    // Opening waits in steps of its own (`open`), each step briefly.
    let step = options.busy_timeout_ms.clamp(100, 1_000);
    connection
      .busy_timeout(Duration::from_millis(step))
      .map_err(|e| at(&path, e))?;
    if connection.is_readonly("main").map_err(|e| at(&path, e))? {
      return Err(StorageError::new(
        StorageErrorKind::Unavailable,
        format!("The storage file {} is not writable", path.display()),
      ));
    }
    // Small pages for a new file: a commit writes every page it changed, and
    // a queue operation changes a few rows of a few bytes (1 KiB pages
    // commit in about half the time of 4 KiB ones). Ignored for an existing
    // file; writes nothing.
    connection
      .pragma_update(None, "page_size", 1024)
      .map_err(|e| at(&path, e))?;
    let synchronous = match options.durability {
      Durability::Normal => "NORMAL",
      Durability::Fsync => "FULL",
    };
    connection
      .pragma_update(None, "synchronous", synchronous)
      .map_err(|e| at(&path, e))?;
    // A new (empty) file goes to WAL first, so the processes creating it
    // together take turns in WAL mode rather than in rollback mode (where
    // readers block the switch). A file with content is looked at first.
    let empty = std::fs::metadata(&path).is_ok_and(|m| m.len() == 0);
    if empty {
      connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| {
          row.get::<_, String>(0)
        })
        .map_err(|e| at(&path, e))?;
    }
    // The identity check and the schema are one write transaction: what the
    // check reads (application_id, user_version, the tables) is read under
    // the write lock, so a process creating the schema meanwhile is either
    // wholly before or wholly after. A file of another application, or of a
    // newer release, is refused before anything is written to it.
    let tx = connection
      .transaction_with_behavior(TransactionBehavior::Immediate)
      .map_err(|e| at(&path, e))?;
    schema::migrate(&tx, &path)?;
    tx.commit().map_err(|e| at(&path, e))?;
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
    Ok(())
  }

  /// The file this connection opened, or its `-wal` companion, was deleted
  /// or replaced: SQLite would go on writing to the unlinked inode and every
  /// change would vanish with the process (or, for the `-wal`, at the next
  /// restart), so stop with an error instead.
  fn ensure_in_place(&mut self) -> StorageResult<()> {
    let moved = self.main_file_moved()?;
    let wal = match self.wal_id {
      // First seen now (no `-wal` existed when the file was opened).
      None => {
        self.wal_id = file_id(&self.wal);
        false
      }
      Some(id) => file_id(&self.wal) != Some(id),
    };
    if moved || wal {
      let which = if moved {
        self.path.display().to_string()
      } else {
        format!(
          "{} (its write-ahead log {})",
          self.path.display(),
          self.wal.display()
        )
      };
      return Err(StorageError::new(
        StorageErrorKind::Unavailable,
        format!(
          "The storage file {which} was deleted or replaced while in use; changes are refused so that none is lost (restart to open the file anew)"
        ),
      ));
    }
    Ok(())
  }

  /// SQLite's own check that the main file was unlinked or replaced
  /// (`SQLITE_FCNTL_HAS_MOVED`, a Unix VFS feature).
  #[cfg(unix)]
  fn main_file_moved(&self) -> StorageResult<bool> {
    let mut moved: std::os::raw::c_int = 0;
    self
      .connection
      .file_control(Some("main"), FileControl::HasMoved(&mut moved))
      .map_err(|e| at(&self.path, e))?;
    Ok(moved != 0)
  }

  /// Windows refuses to delete or rename a file SQLite holds open (it opens
  /// without `FILE_SHARE_DELETE`), so the file cannot move under the
  /// connection, and rusqlite has no `HasMoved` there.
  #[cfg(not(unix))]
  fn main_file_moved(&self) -> StorageResult<bool> {
    Ok(false)
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

/// Bounds every process on the file shares (cache entries and bytes, jobs
/// and their bytes, failures per service and their bytes): the fields of a
/// store's config, each with its key in `meta`.
pub(super) type SharedBounds<'a, const N: usize> = [(&'static str, &'a mut usize); N];

/// `config` with the shared bounds (`bounds` names them) the file holds, as
/// the last process that asked for bounds set them; a bound the file holds
/// none of stays as it is. Opening a file never changes these: only
/// `configure` and constructors given bounds do (`store_bounds`).
pub(super) fn read_bounds<C, const N: usize>(
  tx: &Transaction,
  mut config: C,
  bounds: fn(&mut C) -> SharedBounds<'_, N>,
) -> rusqlite::Result<C> {
  use rusqlite::OptionalExtension;
  for (key, bound) in bounds(&mut config) {
    let stored = tx
      .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
      .query_row([key], |row| row.get::<_, i64>(0))
      .optional()?;
    if let Some(value) = stored {
      *bound = value.max(0) as usize;
    }
  }
  Ok(config)
}

/// Makes `config`'s shared bounds the file's, for every process.
pub(super) fn store_bounds<C, const N: usize>(
  tx: &Transaction,
  mut config: C,
  bounds: fn(&mut C) -> SharedBounds<'_, N>,
) -> rusqlite::Result<()> {
  for (key, bound) in bounds(&mut config) {
    tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
      .execute(rusqlite::params![key, int(*bound as u64)])?;
  }
  Ok(())
}

/// Empties `table`, whose per-row trigger `trigger` keeps a total, and
/// runs `reset` to zero that total. The trigger is set aside meanwhile, so
/// SQLite drops the table's pages whole instead of deleting row by row
/// (~650 ms became ~35 ms for 200k cache entries). Other processes see the
/// old schema or the restored one, never the gap.
pub(super) fn delete_all(
  tx: &Transaction,
  table: &str,
  trigger: &str,
  reset: &str,
) -> rusqlite::Result<()> {
  let sql: String = tx.query_row(
    "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = ?1",
    [trigger],
    |row| row.get(0),
  )?;
  tx.execute_batch(&format!("DROP TRIGGER {trigger}; DELETE FROM {table};"))?;
  tx.execute(reset, [])?;
  tx.execute_batch(&sql)
}

/// Whether `text` is one JSON value (what a cached response or a job's
/// payload must be before it is spliced into the JSON handed to JavaScript).
pub(crate) fn is_json(text: &str) -> bool {
  serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// Moves the row `rowid` of `table` to `damaged_rows`, with `key` (a job id,
/// a cache key) and `reason`.
pub(super) fn quarantine(
  tx: &Transaction,
  table: &str,
  columns: &str,
  rowid: i64,
  key: &str,
  reason: &str,
  now: u64,
) -> rusqlite::Result<()> {
  let pairs = columns
    .split(',')
    .map(|c| format!("'{0}', {0}", c.trim()))
    .collect::<Vec<_>>()
    .join(", ");
  tx.execute(
    &format!(
      "INSERT INTO damaged_rows (source, key, reason, at, row) \
       SELECT ?1, ?2, ?3, ?4, json_object({pairs}) FROM {table} WHERE rowid = ?5"
    ),
    rusqlite::params![table, key, reason, int(now), rowid],
  )?;
  tx.execute(&format!("DELETE FROM {table} WHERE rowid = ?1"), [rowid])?;
  Ok(())
}
