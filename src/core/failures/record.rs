//! What the failure history holds and reports, shared by the memory store
//! and the SQLite one: the bounds, a recorded failure, per-service counts.

use std::sync::Arc;

use crate::core::limits;

pub const DEFAULT_WINDOW_MS: u64 = 5 * 60 * 1000;
pub const DEFAULT_MAX_PER_SERVICE: usize = 100;
pub const DEFAULT_MAX_SERVICES: usize = 10_000;
/// 64 MiB.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_SKIP_THRESHOLD: f64 = 3.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureConfig {
  /// How far back `should_skip` looks.
  pub window_ms: u64,
  /// Failures held per service; older ones go first.
  pub max_per_service: usize,
  /// Services tracked; the least recently failed go first.
  pub max_services: usize,
  /// Bytes held at most by all the records together (counted by
  /// `FailureRecord::stored_bytes`); the oldest records go first, whatever
  /// their service. The newest record is always kept.
  pub max_bytes: usize,
}

impl Default for FailureConfig {
  fn default() -> Self {
    Self {
      window_ms: DEFAULT_WINDOW_MS,
      max_per_service: DEFAULT_MAX_PER_SERVICE,
      max_services: DEFAULT_MAX_SERVICES,
      max_bytes: DEFAULT_MAX_BYTES,
    }
  }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRecord {
  pub service: Arc<str>,
  pub operation: String,
  pub error: String,
  pub timestamp: u64,
  pub skip_reason: String,
  /// Global record order, to merge services oldest first.
  pub(crate) seq: u64,
}

impl FailureRecord {
  /// A failure as both stores keep it: the descriptive texts (error, skip
  /// reason) cut to `limits::MAX_TEXT_BYTES`.
  pub(crate) fn new(
    service: Arc<str>,
    operation: &str,
    error: &str,
    skip_reason: &str,
    timestamp: u64,
    seq: u64,
  ) -> Self {
    Self {
      service,
      operation: operation.to_owned(),
      error: limits::clip(error),
      timestamp,
      skip_reason: limits::clip(skip_reason),
      seq,
    }
  }

  /// The bytes this record holds, as `FailureConfig::max_bytes` counts
  /// them: the UTF-8 of its strings (service, operation, error, skip
  /// reason). The one definition: the memory store counts with it, the file
  /// stores it in each row (`schema.rs` computes the same for rows written
  /// before).
  pub fn stored_bytes(&self) -> usize {
    self.service.len() + self.operation.len() + self.error.len() + self.skip_reason.len()
  }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStats {
  pub service: Arc<str>,
  pub count: usize,
  pub last_failure: u64,
}
