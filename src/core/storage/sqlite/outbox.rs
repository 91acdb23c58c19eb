//! The Redis outbox kept in the file (`redisUrl` together with
//! `storagePath`): what a process accepted while the server was away
//! survives the process. Each row is one script run still to make.

use std::path::Path;

use rusqlite::params;

use super::database::{Database, FileOptions};
use crate::core::storage::error::StorageResult;

/// A kept write: its row, its kind (what the outbox says it is), the key
/// head and the script's arguments.
pub type KeptRow = (i64, u8, String, Vec<String>);

pub struct SqliteOutbox {
  db: Database,
}

impl SqliteOutbox {
  pub fn open(path: &Path, options: impl Into<FileOptions>) -> StorageResult<Self> {
    Ok(Self {
      db: Database::open(path, options)?,
    })
  }

  /// Keeps a write; its row is committed when this returns.
  pub fn add(&mut self, kind: u8, head: &str, args: &[String]) -> StorageResult<i64> {
    let args = serde_json::to_string(args).unwrap_or_else(|_| "[]".into());
    self.db.write(|tx| {
      tx.prepare_cached("INSERT INTO redis_outbox (kind, head, args) VALUES (?1, ?2, ?3)")?
        .execute(params![kind, head, args])?;
      Ok(tx.last_insert_rowid())
    })
  }

  pub fn remove(&mut self, row: i64) -> StorageResult<()> {
    self.db.write(|tx| {
      tx.prepare_cached("DELETE FROM redis_outbox WHERE seq = ?1")?
        .execute([row])
        .map(drop)
    })
  }

  /// Marks a kept write the server refused for good: it stays, with the
  /// reason, for an operator to read, and is never sent again.
  pub fn refuse(&mut self, row: i64, reason: &str) -> StorageResult<()> {
    self.db.write(|tx| {
      tx.prepare_cached("UPDATE redis_outbox SET refused = ?2 WHERE seq = ?1")?
        .execute(params![row, reason])
        .map(drop)
    })
  }

  /// How many kept writes were refused for good.
  pub fn refused_count(&mut self) -> StorageResult<usize> {
    self.db.read(|tx| {
      tx.prepare_cached("SELECT count(*) FROM redis_outbox WHERE refused IS NOT NULL")?
        .query_row([], |row| row.get::<_, i64>(0))
        .map(|n| n.max(0) as usize)
    })
  }

  /// Every kept write still to send, oldest first (a row whose arguments
  /// cannot be read is left where it is).
  pub fn all(&mut self) -> StorageResult<Vec<KeptRow>> {
    self.db.read(|tx| {
      let mut statement = tx.prepare_cached(
        "SELECT seq, kind, head, args FROM redis_outbox WHERE refused IS NULL ORDER BY seq",
      )?;
      let rows = statement.query_map([], |row| {
        Ok((
          row.get::<_, i64>(0)?,
          row.get::<_, u8>(1)?,
          row.get::<_, String>(2)?,
          row.get::<_, String>(3)?,
        ))
      })?;
      let mut kept = Vec::new();
      for row in rows {
        let (seq, kind, head, args) = row?;
        if let Ok(args) = serde_json::from_str::<Vec<String>>(&args) {
          kept.push((seq, kind, head, args));
        }
      }
      Ok(kept)
    })
  }
}
