//! What the class methods return when it is more than a few numbers: JSON
//! text that `lib/` parses once and shapes (instants stay milliseconds here;
//! `lib/shapes.js` makes the `Date`s). A job's payload is spliced in as it is
//! stored, not parsed and written again, and the one `JSON.parse` in
//! JavaScript is the fresh copy the contract asks for. Numbers alone go out
//! through `numbers.rs`.

use serde_json::{Map, Value};

use crate::core::failures::{FailureRecord, ServiceStats};
use crate::core::queue::Job;

/// `"text"` as a JSON string, appended.
fn push_quoted(out: &mut String, text: &str) {
  // serde_json writes the escapes JSON needs; the common case (nothing to
  // escape) is one copy.
  if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
    out.push('"');
    out.push_str(text);
    out.push('"');
  } else {
    out.push_str(&Value::from(text).to_string());
  }
}

/// One job as a JSON array (V8 parses an array of values about three times
/// faster than an object with the same keys): `[id, type, operation,
/// userId, priority, createdAt, retryCount, maxRetries, nextRetryAt | null,
/// status, lastError | null, updatedAt, payload?]`, instants in ms; the
/// payload, when there is one, is spliced in last as it is stored.
pub fn job(job: &Job) -> String {
  use std::fmt::Write;
  let mut out = String::with_capacity(160 + job.payload.as_deref().map_or(0, str::len));
  out.push('[');
  push_quoted(&mut out, &job.id);
  let _ = write!(out, ",\"{}\",", job.job_type.as_str());
  push_quoted(&mut out, &job.operation);
  out.push(',');
  push_quoted(&mut out, &job.user_id);
  let _ = write!(
    out,
    ",\"{}\",{},{},{},",
    job.priority.as_str(),
    job.created_at,
    job.retry_count,
    job.max_retries
  );
  match job.next_retry_at {
    Some(at) => {
      let _ = write!(out, "{at}");
    }
    None => out.push_str("null"),
  }
  let _ = write!(out, ",\"{}\",", job.status.as_str());
  match &job.last_error {
    Some(error) => push_quoted(&mut out, error),
    None => out.push_str("null"),
  }
  let _ = write!(out, ",{}", job.updated_at);
  if let Some(payload) = &job.payload {
    out.push(',');
    out.push_str(payload);
  }
  out.push(']');
  out
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
