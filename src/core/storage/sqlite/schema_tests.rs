//! Files written by earlier releases, opened by this one: the schema's
//! migrations checked through the stores (apart from schema.rs, which the
//! stores depend on).

use std::path::Path;

use rusqlite::Connection;

use super::schema::{seed_keys, APPLICATION_ID, V1, VERSION};
use crate::core::failures::{FailureConfig, FailureRecord};
use crate::core::queue::{Job, QueueConfig};
use crate::core::storage::sqlite::database::Durability;
use crate::core::storage::sqlite::failures::SqliteFailures;
use crate::core::storage::sqlite::queue::SqliteQueue;
use crate::core::storage::sqlite::testing::test_dir;
use crate::core::storage::traits::{FailureStore, JobFilter, Page, QueueStore};

/// A file as the first release wrote it, with jobs in it.
fn version_1_file(path: &Path, rows: &str) {
  let mut connection = Connection::open(path).unwrap();
  let tx = connection.transaction().unwrap();
  tx.execute_batch(V1).unwrap();
  seed_keys(&tx).unwrap();
  tx.execute_batch(rows).unwrap();
  tx.execute_batch(&format!(
    "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;"
  ))
  .unwrap();
  tx.commit().unwrap();
}

#[test]
fn jobs_written_before_the_byte_bound_are_counted_as_the_queue_counts_them() {
  let path = test_dir("migrate-bytes").join("s.db");
  version_1_file(
    &path,
    "INSERT INTO jobs VALUES (1, 'job_1_000000001', 'ai', 'opé', '{\"p\":\"☃\"}', 'ü', 1, 1, 0, 3, NULL, 0, NULL, 1, 0, 1);
     INSERT INTO jobs VALUES (2, 'job_1_000000002', 'analytics', 'op', NULL, 'u', 0, 1, 1, 1, NULL, 3, 'boom ✗', 2, 3, 1);",
  );
  let mut queue = SqliteQueue::open(&path, Durability::Normal, QueueConfig::default()).unwrap();
  let jobs = queue.list(5, JobFilter::All, Page::ALL).unwrap();
  assert_eq!(jobs.len(), 2);
  let counted: usize = jobs.iter().map(Job::stored_bytes).sum();
  let stats = queue.stats(5).unwrap();
  assert_eq!((stats.total, stats.pending, stats.failed), (2, 1, 1));
  assert_eq!(stats.bytes, counted);
  // The triggers carry on from there: a dead letter revived, leased, and
  // lost (its lease runs out: a failed attempt with a new error text).
  assert_eq!(queue.retry_failed(None, 6).unwrap(), 1);
  queue.dequeue(6).unwrap().unwrap();
  queue.dequeue(6).unwrap().unwrap();
  let later = 7 + QueueConfig::default().lease_ms;
  let jobs = queue.list(later, JobFilter::All, Page::ALL).unwrap();
  assert!(jobs.iter().all(|job| job.last_error.is_some()));
  let counted: usize = jobs.iter().map(Job::stored_bytes).sum();
  assert_eq!(queue.stats(later).unwrap().bytes, counted);
}

#[test]
fn failures_written_before_the_byte_bound_are_counted_as_the_history_counts_them() {
  let path = test_dir("migrate-failure-bytes").join("s.db");
  version_1_file(
    &path,
    "INSERT INTO failures (service, operation, error, skip_reason, at) VALUES
       ('fb', 'post', 'timeout ⏱', 'Service temporarily unavailable: timeout ⏱', 1),
       ('x', 'op', 'e', 'r', 2);
     INSERT INTO failure_services VALUES ('fb', 1), ('x', 2);",
  );
  let config = FailureConfig::default();
  let mut history = SqliteFailures::open(&path, Durability::Normal, config).unwrap();
  let counted = |history: &mut SqliteFailures| -> usize {
    history
      .failures(None, Page::ALL)
      .unwrap()
      .iter()
      .map(FailureRecord::stored_bytes)
      .sum()
  };
  // "⏱" is 3 bytes of UTF-8.
  assert_eq!(counted(&mut history), (2 + 4 + 11 + 44) + (1 + 2 + 1 + 1));
  assert_eq!(history.bytes().unwrap(), counted(&mut history));
  // The bound applies to them like any other.
  history
    .set_config(FailureConfig {
      max_bytes: 10,
      ..config
    })
    .unwrap();
  assert_eq!(history.bytes().unwrap(), 5);
  assert_eq!(history.stats().unwrap().len(), 1);
}

#[test]
fn a_file_of_the_previous_version_gains_the_cooldowns_and_keeps_its_history() {
  let path = test_dir("migrate-cooldowns").join("s.db");
  let config = FailureConfig::default();
  let mut history = SqliteFailures::open(&path, Durability::Normal, config).unwrap();
  history.record("fb", "post", "e", "r", 1).unwrap();
  drop(history);
  // As version 3 left it: no cooldowns table, nor what version 5 added.
  Connection::open(&path)
    .unwrap()
    .execute_batch(
      "DROP TABLE cooldowns; ALTER TABLE jobs DROP COLUMN stalls; \
       ALTER TABLE redis_outbox DROP COLUMN refused; DROP TABLE shared_records; \
       PRAGMA user_version = 3;",
    )
    .unwrap();
  let mut history = SqliteFailures::open(&path, Durability::Normal, config).unwrap();
  assert_eq!(history.failures(None, Page::ALL).unwrap().len(), 1);
  history.bench("gpt", 1_000, "HTTP 429", 0).unwrap();
  assert_eq!(history.cooldowns_of(&["gpt"], 400).unwrap(), [Some(600)]);
  let version: i64 = Connection::open(&path)
    .unwrap()
    .query_row("PRAGMA user_version", [], |row| row.get(0))
    .unwrap();
  assert_eq!((version, VERSION), (6, 6));
  // And from the first release on, through every migration.
  let first = test_dir("migrate-cooldowns-v1").join("s.db");
  version_1_file(&first, "");
  let mut history = SqliteFailures::open(&first, Durability::Normal, config).unwrap();
  history.bench("gpt", 1_000, "HTTP 429", 0).unwrap();
  assert_eq!(history.cooldowns(0).unwrap().len(), 1);
}
