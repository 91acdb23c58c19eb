//! The integration failure history in the file: at most `max_per_service`
//! records per service, `max_services` services (the least recently failed
//! go first) and `max_bytes` bytes (the oldest records go first), trimmed as
//! records arrive. Triggers keep the byte total in `failure_totals`. The
//! cooldowns are rows of `cooldowns`, outside that total.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::database::{
  delete_all, int, read_bounds, store_bounds, Database, FileOptions, SharedBounds,
};
use crate::core::cooldown::{self, Cooldown};
use crate::core::failures::record::{FailureConfig, FailureRecord, ServiceStats};
use crate::core::shared::records::{Change, Key, Kind};
use crate::core::storage::error::StorageResult;
use crate::core::storage::traits::{FailureStore, Location, Page};

pub struct SqliteFailures {
  db: Database,
  config: FailureConfig,
}

impl SqliteFailures {
  pub fn open(
    path: &Path,
    options: impl Into<FileOptions>,
    config: FailureConfig,
  ) -> StorageResult<Self> {
    let mut db = Database::open(path, options)?;
    let config = db.read(|tx| read_bounds(tx, config, bounds))?;
    Ok(Self { db, config })
  }
}

/// The history's bounds every process on the file shares.
fn bounds(config: &mut FailureConfig) -> SharedBounds<'_, 2> {
  [
    (
      "bound_failures_max_per_service",
      &mut config.max_per_service,
    ),
    ("bound_failures_max_bytes", &mut config.max_bytes),
  ]
}

fn read_record(row: &Row) -> rusqlite::Result<FailureRecord> {
  Ok(FailureRecord {
    seq: row.get::<_, i64>(0)? as u64,
    service: Arc::from(row.get::<_, String>(1)?),
    operation: row.get(2)?,
    error: row.get(3)?,
    skip_reason: row.get(4)?,
    timestamp: row.get::<_, i64>(5)?.max(0) as u64,
  })
}

/// Keeps one service's newest `max_per_service` records.
fn trim_service(tx: &Transaction, service: &str, max_per_service: usize) -> rusqlite::Result<()> {
  tx.prepare_cached(
    "DELETE FROM failures WHERE service = ?1 AND seq <= \
     (SELECT seq FROM failures WHERE service = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
  )?
  .execute(params![service, int(max_per_service as u64)])?;
  Ok(())
}

fn forget_service(tx: &Transaction, service: &str) -> rusqlite::Result<usize> {
  tx.prepare_cached("DELETE FROM failures WHERE service = ?1")?
    .execute([service])?;
  tx.prepare_cached("DELETE FROM failure_services WHERE service = ?1")?
    .execute([service])
}

/// Forgets the least recently failed services beyond `max_services`.
fn trim_services(tx: &Transaction, max_services: usize) -> rusqlite::Result<()> {
  let held: i64 = tx
    .prepare_cached("SELECT count(*) FROM failure_services")?
    .query_row([], |row| row.get(0))?;
  let over = (held as u64).saturating_sub(max_services as u64);
  let victims: Vec<String> = tx
    .prepare_cached("SELECT service FROM failure_services ORDER BY last_seq LIMIT ?1")?
    .query_map([int(over)], |row| row.get(0))?
    .collect::<rusqlite::Result<_>>()?;
  for service in victims {
    forget_service(tx, &service)?;
  }
  Ok(())
}

/// What the records hold, from `failure_totals` (kept by triggers).
fn held_bytes(tx: &Transaction) -> rusqlite::Result<u64> {
  tx.prepare_cached("SELECT bytes FROM failure_totals")?
    .query_row([], |row| row.get::<_, i64>(0))
    .map(|bytes| bytes.max(0) as u64)
}

/// Drops the oldest records, whatever their service, while they hold more
/// than `max_bytes`; the newest record stays even alone over it. A service
/// left without records is forgotten.
fn fit_bytes(tx: &Transaction, max_bytes: usize) -> rusqlite::Result<()> {
  while held_bytes(tx)? > max_bytes as u64 {
    let service: Option<String> = tx
      .prepare_cached(
        "DELETE FROM failures WHERE seq = (SELECT min(seq) FROM failures) \
         AND seq < (SELECT max(seq) FROM failures) RETURNING service",
      )?
      .query_row([], |row| row.get(0))
      .optional()?;
    let Some(service) = service else {
      return Ok(());
    };
    tx.prepare_cached(
      "DELETE FROM failure_services WHERE service = ?1 \
       AND NOT EXISTS (SELECT 1 FROM failures WHERE service = ?1)",
    )?
    .execute([service])?;
  }
  Ok(())
}

/// Drops the cooldowns that ended by `now`, then, while `room` more would
/// not fit under `max`, the one ending soonest.
fn fit_cooldowns(tx: &Transaction, now: u64, room: usize, max: usize) -> rusqlite::Result<()> {
  tx.prepare_cached("DELETE FROM cooldowns WHERE until <= ?1")?
    .execute([int(now)])?;
  let held: i64 = tx
    .prepare_cached("SELECT count(*) FROM cooldowns")?
    .query_row([], |row| row.get(0))?;
  let over = (held as u64 + room as u64).saturating_sub(max as u64);
  tx.prepare_cached(
    "DELETE FROM cooldowns WHERE name IN \
     (SELECT name FROM cooldowns ORDER BY until, name LIMIT ?1)",
  )?
  .execute([int(over)])?;
  Ok(())
}

fn read_cooldown(row: &Row) -> rusqlite::Result<Cooldown> {
  Ok(Cooldown {
    name: Arc::from(row.get::<_, String>(0)?),
    since: row.get::<_, i64>(1)?.max(0) as u64,
    until: row.get::<_, i64>(2)?.max(0) as u64,
    reason: row.get(3)?,
  })
}

impl FailureStore for SqliteFailures {
  fn config(&self) -> FailureConfig {
    self.config
  }

  fn set_config(&mut self, config: FailureConfig) -> StorageResult<()> {
    // Asked for: these bounds become the file's, for every process.
    self.db.write(|tx| {
      store_bounds(tx, config, bounds)?;
      trim_services(tx, config.max_services)?;
      let services: Vec<String> = tx
        .prepare_cached("SELECT service FROM failure_services")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
      for service in services {
        trim_service(tx, &service, config.max_per_service)?;
      }
      fit_bytes(tx, config.max_bytes)
    })?;
    self.config = config;
    Ok(())
  }

  fn record(
    &mut self,
    service: &str,
    operation: &str,
    error: &str,
    skip_reason: &str,
    now: u64,
  ) -> StorageResult<()> {
    let config = self.config;
    let record = FailureRecord::new(service.into(), operation, error, skip_reason, now, 0);
    self.config = self.db.write(|tx| {
      // The file's bounds, as another process may have set them since.
      let config = read_bounds(tx, config, bounds)?;
      tx.prepare_cached(
        "INSERT INTO failures (service, operation, error, skip_reason, at, bytes) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      )?
      .execute(params![
        service,
        record.operation,
        record.error,
        record.skip_reason,
        int(now),
        int(record.stored_bytes() as u64)
      ])?;
      let seq = tx.last_insert_rowid();
      let known = tx
        .prepare_cached("UPDATE failure_services SET last_seq = ?2 WHERE service = ?1")?
        .execute(params![service, seq])?
        > 0;
      if known {
        trim_service(tx, service, config.max_per_service)?;
      } else {
        tx.prepare_cached("INSERT INTO failure_services (service, last_seq) VALUES (?1, ?2)")?
          .execute(params![service, seq])?;
        trim_services(tx, config.max_services)?;
      }
      fit_bytes(tx, config.max_bytes)?;
      Ok(config)
    })?;
    Ok(())
  }

  fn should_skip(&mut self, service: &str, threshold: f64, now: u64) -> StorageResult<bool> {
    let since = now.saturating_sub(self.config.window_ms);
    let recent: i64 = self.db.read(|tx| {
      tx.prepare_cached("SELECT count(*) FROM failures WHERE service = ?1 AND at >= ?2")?
        .query_row(params![service, int(since)], |row| row.get(0))
    })?;
    Ok(recent as f64 >= threshold)
  }

  /// One page, oldest first: by `seq` (the primary key), or through the
  /// `(service, seq)` index for one service; reads `offset + limit` rows.
  fn failures(&mut self, service: Option<&str>, page: Page) -> StorageResult<Vec<FailureRecord>> {
    const COLUMNS: &str = "seq, service, operation, error, skip_reason, at";
    let (limit, offset) = page.sql();
    self.db.read(|tx| match service {
      Some(service) => tx
        .prepare_cached(&format!(
          "SELECT {COLUMNS} FROM failures WHERE service = ?3 ORDER BY seq LIMIT ?1 OFFSET ?2"
        ))?
        .query_map(params![limit, offset, service], read_record)?
        .collect(),
      None => tx
        .prepare_cached(&format!(
          "SELECT {COLUMNS} FROM failures ORDER BY seq LIMIT ?1 OFFSET ?2"
        ))?
        .query_map(params![limit, offset], read_record)?
        .collect(),
    })
  }

  fn clear(&mut self, service: Option<&str>) -> StorageResult<bool> {
    self.db.write(|tx| match service {
      Some(service) => {
        let benched = tx
          .prepare_cached("DELETE FROM cooldowns WHERE name = ?1")?
          .execute([service])?;
        Ok(forget_service(tx, service)? + benched > 0)
      }
      None => {
        delete_all(
          tx,
          "failures",
          "failures_count_out",
          "UPDATE failure_totals SET bytes = 0",
        )?;
        let benched = tx.execute("DELETE FROM cooldowns", [])?;
        Ok(tx.execute("DELETE FROM failure_services", [])? + benched > 0)
      }
    })
  }

  fn stats(&mut self) -> StorageResult<Vec<ServiceStats>> {
    self.db.read(|tx| {
      let mut statement = tx.prepare_cached(
        "SELECT service, count(*), min(seq), \
         (SELECT at FROM failures AS last WHERE last.service = f.service ORDER BY seq DESC LIMIT 1) \
         FROM failures AS f GROUP BY service ORDER BY min(seq)",
      )?;
      let stats = statement
        .query_map([], |row| {
          Ok(ServiceStats {
            service: Arc::from(row.get::<_, String>(0)?),
            count: row.get::<_, i64>(1)? as usize,
            last_failure: row.get::<_, Option<i64>>(3)?.unwrap_or(0).max(0) as u64,
          })
        })?
        .collect();
      stats
    })
  }

  fn bytes(&mut self) -> StorageResult<usize> {
    Ok(self.db.read(held_bytes)? as usize)
  }

  fn bench(&mut self, name: &str, until: u64, reason: &str, now: u64) -> StorageResult<()> {
    if until <= now {
      return Ok(());
    }
    let reason = cooldown::reason(reason);
    let max = self.config.max_services;
    self.db.write(|tx| {
      let extended = tx
        .prepare_cached(
          "UPDATE cooldowns SET reason = CASE WHEN ?2 > until THEN ?3 ELSE reason END, \
           until = max(until, ?2) WHERE name = ?1 AND until > ?4",
        )?
        .execute(params![name, int(until), reason, int(now)])?;
      if extended > 0 {
        return fit_cooldowns(tx, now, 0, max);
      }
      tx.prepare_cached("DELETE FROM cooldowns WHERE name = ?1")?
        .execute([name])?;
      fit_cooldowns(tx, now, 1, max)?;
      if max > 0 {
        tx.prepare_cached(
          "INSERT INTO cooldowns (name, since, until, reason) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![name, int(now), int(until), reason])?;
      }
      Ok(())
    })
  }

  /// One read transaction, one indexed look-up per name.
  fn cooldowns_of(&mut self, names: &[&str], now: u64) -> StorageResult<Vec<Option<u64>>> {
    self.db.read(|tx| {
      let mut until = tx.prepare_cached("SELECT until FROM cooldowns WHERE name = ?1")?;
      names
        .iter()
        .map(|name| {
          let end: Option<i64> = until.query_row([name], |row| row.get(0)).optional()?;
          Ok(
            end
              .map(|end| end.max(0) as u64)
              .filter(|&end| end > now)
              .map(|end| end - now),
          )
        })
        .collect()
    })
  }

  fn cooldowns(&mut self, now: u64) -> StorageResult<Vec<Cooldown>> {
    self.db.read(|tx| {
      tx.prepare_cached(
        "SELECT name, since, until, reason FROM cooldowns WHERE until > ?1 ORDER BY until, name",
      )?
      .query_map([int(now)], read_cooldown)?
      .collect()
    })
  }

  /// One write transaction: the records read, decided on and written
  /// while the file is locked; expired ones go with it.
  fn update_records(&mut self, keys: &[Key], change: &mut Change, now: u64) -> StorageResult<()> {
    self.db.write(|tx| {
      let mut select = tx.prepare_cached(
        "SELECT name, state FROM shared_records WHERE kind = ?1 AND name = ?2 AND expires_at > ?3",
      )?;
      let held = keys
        .iter()
        .map(|key| {
          select
            .query_row(params![key.kind.tag(), key.name, int(now)], text_of)
            .optional()
            .map(Option::flatten)
        })
        .collect::<rusqlite::Result<Vec<Option<String>>>>()?;
      let mut upsert = tx.prepare_cached(
        "INSERT INTO shared_records (kind, name, state, expires_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (kind, name) DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at",
      )?;
      let mut wrote = false;
      for (key, write) in keys.iter().zip(change(&held)) {
        if let Some(write) = write {
          upsert.execute(params![key.kind.tag(), key.name, write.text, int(write.expires_at)])?;
          wrote = true;
        }
      }
      if wrote {
        tx.prepare_cached("DELETE FROM shared_records WHERE expires_at <= ?1")?
          .execute([int(now)])?;
      }
      Ok(())
    })
  }

  fn records(&mut self, kind: Kind, now: u64) -> StorageResult<Vec<(String, String)>> {
    self.db.read(|tx| {
      tx.prepare_cached(
        "SELECT name, state FROM shared_records WHERE kind = ?1 AND expires_at > ?2 ORDER BY name",
      )?
      .query_map(params![kind.tag(), int(now)], |row| {
        Ok(text_of(row)?.map(|state| (row.get(0), state)))
      })?
      .filter_map(|listed| match listed {
        Ok(Some((name, state))) => Some(name.map(|name| (name, state))),
        Ok(None) => None,
        Err(error) => Some(Err(error)),
      })
      .collect()
    })
  }

  fn set_busy_timeout(&mut self, ms: u64) -> StorageResult<()> {
    self.db.set_busy_timeout(ms)
  }

  fn busy_timeout_ms(&self) -> u64 {
    self.db.busy_timeout_ms()
  }

  fn location(&self) -> Location<'_> {
    Location::File(self.db.path())
  }
}

/// A record's state (column 1), `None` when it is not text (damaged by a hand other
/// than this library's): taken as no record and written over, as a text
/// that is not a record is, not an error of every later update.
fn text_of(row: &Row) -> rusqlite::Result<Option<String>> {
  Ok(row.get_ref(1)?.as_str().ok().map(str::to_owned))
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::failures::behaviour;
  use crate::core::storage::sqlite::database::Durability;
  use crate::core::storage::sqlite::testing::test_dir;

  #[test]
  fn behaves_like_the_memory_window() {
    let dir = test_dir("failure-cases");
    let opened = std::sync::atomic::AtomicUsize::new(0);
    behaviour::all(&|config| {
      let n = opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
      let path = dir.join(format!("{n}.db"));
      Box::new(SqliteFailures::open(&path, Durability::Normal, config).unwrap())
    });
  }

  #[test]
  fn a_record_that_is_not_text_is_taken_as_none() {
    use crate::core::shared::records::Write;
    let path = test_dir("damaged-records").join("s.db");
    let open =
      || SqliteFailures::open(&path, Durability::Normal, FailureConfig::default()).unwrap();
    let keys = [Key::new(Kind::Breaker, "m"), Key::new(Kind::Limit, "m")];
    let write = |text: &str| {
      Some(Write {
        text: text.into(),
        expires_at: u64::from(u32::MAX),
      })
    };
    open()
      .update_records(&keys, &mut |_| vec![write("{}"), write("{}")], 0)
      .unwrap();
    let damage = rusqlite::Connection::open(&path).unwrap();
    damage
      .execute_batch(
        "UPDATE shared_records SET state = x'7b7d' WHERE kind = 'b'; \
         UPDATE shared_records SET state = x'fffe00' WHERE kind = 'l';",
      )
      .unwrap();
    drop(damage);
    let mut store = open();
    assert!(store.records(Kind::Limit, 1).unwrap().is_empty());
    store
      .update_records(
        &keys,
        &mut |held| {
          assert_eq!(held, [None, None]);
          vec![write("{\"a\":1}"), None]
        },
        1,
      )
      .unwrap();
    let listed = store.records(Kind::Breaker, 1).unwrap();
    assert_eq!(listed, [("m".to_string(), "{\"a\":1}".to_string())]);
  }

  #[test]
  fn two_handles_on_one_file_share_the_cooldowns() {
    let path = test_dir("shared-cooldowns").join("s.db");
    let open =
      || SqliteFailures::open(&path, Durability::Normal, FailureConfig::default()).unwrap();
    behaviour::cooldowns_are_shared(&mut open(), &mut open());
  }
}
