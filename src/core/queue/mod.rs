//! The background job queue: priority then FIFO, retries with backoff,
//! leases for jobs in processing, and bounds on jobs and bytes held that
//! never drop a live job.
//!
//! - `job.rs`: the job model and its transitions, the enums, bounds, errors
//!   and counts; what both stores share.
//! - `ids.rs`: job ids, which decode back to the job's sequence number (the
//!   SQLite queue uses the same codec).
//! - `memory.rs`: `JobQueue`, the in-memory store and its indexes.

pub(crate) mod ids;
pub mod job;
mod memory;

pub use job::{
  backoff_ms, stalled_error, Backoff, Job, JobPriority, JobStatus, JobType, Lease, NewJob,
  QueueConfig, QueueError, QueueStats, DEFAULT_BACKOFF_MS, DEFAULT_LEASE_MS, DEFAULT_MAX_BYTES,
  DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_RETRIES, DEFAULT_MAX_SIZE, DEFAULT_MAX_STALLS,
  LEASE_EXPIRED,
};
pub use memory::JobQueue;
