//! What the class methods return, as JSON text that `lib/` parses once and
//! shapes (instants stay milliseconds here; `lib/shapes.js` makes the
//! `Date`s). Stored JSON (a cached response, a job's payload) is spliced in
//! as it is, not parsed and written again, and the one `JSON.parse` in
//! JavaScript is the fresh copy the contract asks for.

use serde_json::{Map, Value};

use crate::core::cache::{CacheHit, CacheStats};
use crate::core::failures::{FailureRecord, ServiceStats};
use crate::core::queue::{Job, QueueStats};

/// `value` as JSON text, with `"key":<raw json>` added at the end when
/// `raw` is given.
fn with_raw(value: Map<String, Value>, key: &str, raw: Option<&str>) -> String {
  let mut text = Value::Object(value).to_string();
  if let Some(raw) = raw {
    text.pop();
    if text.len() > 1 {
      text.push(',');
    }
    text.push_str(&Value::from(key).to_string());
    text.push(':');
    text.push_str(raw);
    text.push('}');
  }
  text
}

/// `{ timestamp, expiresAt, stale?, response }`.
pub fn cache_hit(hit: &CacheHit) -> String {
  let mut record = Map::new();
  record.insert("timestamp".into(), hit.timestamp.into());
  record.insert("expiresAt".into(), hit.expires_at.into());
  if hit.stale {
    record.insert("stale".into(), true.into());
  }
  with_raw(record, "response", Some(&hit.response))
}

/// `{ size, oldestEntry?, newestEntry?, hits, misses, evictions, bytes }`.
pub fn cache_stats(stats: &CacheStats) -> String {
  let mut record = Map::new();
  record.insert("size".into(), stats.size.into());
  if let (Some(oldest), Some(newest)) = (stats.oldest_entry, stats.newest_entry) {
    record.insert("oldestEntry".into(), oldest.into());
    record.insert("newestEntry".into(), newest.into());
  }
  record.insert("hits".into(), stats.hits.into());
  record.insert("misses".into(), stats.misses.into());
  record.insert("evictions".into(), stats.evictions.into());
  record.insert("bytes".into(), stats.bytes.into());
  Value::Object(record).to_string()
}

fn job_record(job: &Job) -> Map<String, Value> {
  let mut record = Map::new();
  record.insert("id".into(), job.id.as_ref().into());
  record.insert("type".into(), job.job_type.as_str().into());
  record.insert("operation".into(), job.operation.as_str().into());
  record.insert("userId".into(), job.user_id.as_ref().into());
  record.insert("priority".into(), job.priority.as_str().into());
  record.insert("createdAt".into(), job.created_at.into());
  record.insert("retryCount".into(), job.retry_count.into());
  record.insert("maxRetries".into(), job.max_retries.into());
  if let Some(at) = job.next_retry_at {
    record.insert("nextRetryAt".into(), at.into());
  }
  record.insert("status".into(), job.status.as_str().into());
  if let Some(error) = &job.last_error {
    record.insert("lastError".into(), error.as_str().into());
  }
  record.insert("updatedAt".into(), job.updated_at.into());
  record
}

/// One job: its fields, instants in ms, the payload spliced in.
pub fn job(job: &Job) -> String {
  with_raw(job_record(job), "payload", job.payload.as_deref())
}

/// A JSON array of jobs.
pub fn jobs(jobs: &[Job]) -> String {
  let mut text = String::from("[");
  for (index, one) in jobs.iter().enumerate() {
    if index > 0 {
      text.push(',');
    }
    text.push_str(&job(one));
  }
  text.push(']');
  text
}

pub fn queue_stats(stats: &QueueStats) -> String {
  format!(
    "{{\"total\":{},\"pending\":{},\"processing\":{},\"completed\":{},\"failed\":{}}}",
    stats.total, stats.pending, stats.processing, stats.completed, stats.failed
  )
}

/// A JSON array of failure records.
pub fn failures(records: &[FailureRecord]) -> String {
  let all: Vec<Value> = records
    .iter()
    .map(|record| {
      let mut one = Map::new();
      one.insert("service".into(), record.service.as_ref().into());
      one.insert("operation".into(), record.operation.as_str().into());
      one.insert("error".into(), record.error.as_str().into());
      one.insert("timestamp".into(), record.timestamp.into());
      one.insert("skipReason".into(), record.skip_reason.as_str().into());
      Value::Object(one)
    })
    .collect();
  Value::Array(all).to_string()
}

/// `[{ service, count, lastFailure }]`, in the history's order (JavaScript
/// makes the object keyed by service from it).
pub fn service_stats(stats: &[ServiceStats]) -> String {
  let all: Vec<Value> = stats
    .iter()
    .map(|entry| {
      let mut one = Map::new();
      one.insert("service".into(), entry.service.as_ref().into());
      one.insert("count".into(), entry.count.into());
      one.insert("lastFailure".into(), entry.last_failure.into());
      Value::Object(one)
    })
    .collect();
  Value::Array(all).to_string()
}
