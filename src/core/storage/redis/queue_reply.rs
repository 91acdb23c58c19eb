//! A job read from a queue command's reply: the fields in `queue.lua`'s
//! `FIELDS` order, or nothing, or a job this library cannot use (set
//! aside by the caller). Apart from queue.rs because it needs no server
//! and no queue: only the reply's shape.

use std::sync::Arc;

use redis::Value;

use super::reply;
use crate::core::queue::job::{Job, JobPriority, JobStatus, JobType};
use crate::core::storage::sqlite::is_json;

/// What a reply item that should be a job is.
pub(super) enum Read {
  Job(Job),
  /// No job (nil).
  Nothing,
  /// The fields of a job this library cannot use (its payload is not
  /// JSON, a field out of shape): its member.
  Damaged(String),
}

/// A job from a command's reply (the fields in `queue.lua`'s `FIELDS`
/// order, which the scripts checked for shape); its payload must be JSON.
pub(super) fn read_job(value: &Value) -> Read {
  let Value::Array(fields) = value else {
    return Read::Nothing;
  };
  match parse_job(fields) {
    Some(job) if job.payload.as_deref().is_none_or(is_json) => Read::Job(job),
    _ => {
      let seq = fields
        .first()
        .and_then(reply::text)
        .and_then(|n| n.parse::<u64>().ok());
      Read::Damaged(format!("{:016}", seq.unwrap_or(0)))
    }
  }
}

fn parse_job(fields: &[Value]) -> Option<Job> {
  let text = |i: usize| fields.get(i).and_then(reply::text);
  let number = |i: usize| {
    text(i)
      .and_then(|t| t.parse::<f64>().ok())
      .map(|n| n.max(0.0) as u64)
  };
  let status = JobStatus::ALL.get(number(11)? as usize).copied()?;
  let lease_until = number(14);
  Some(Job {
    seq: number(0)?,
    id: Arc::from(text(1)?),
    job_type: JobType::parse(&text(2)?)?,
    operation: text(3)?,
    payload: text(4).map(Arc::from),
    user_id: Arc::from(text(5)?),
    priority: JobPriority::ALL.get(number(6)? as usize).copied()?,
    created_at: number(7)?,
    retry_count: number(8)?.min(u32::MAX as u64) as u32,
    max_retries: number(9)?.min(u32::MAX as u64) as u32,
    next_retry_at: number(10),
    status,
    last_error: text(12),
    updated_at: number(13)?,
    lease_until: (status == JobStatus::Processing)
      .then_some(lease_until)
      .flatten(),
    finish_rank: number(15).unwrap_or(0),
    stalls: number(16).unwrap_or(0).min(u32::MAX as u64) as u32,
    lease_token: text(18).map(Arc::from),
  })
}
