//! What the failure history holds and reports, shared by the memory store
//! and the SQLite one: the bounds, a recorded failure, per-service counts.

use std::sync::Arc;

pub const DEFAULT_WINDOW_MS: u64 = 5 * 60 * 1000;
pub const DEFAULT_MAX_PER_SERVICE: usize = 100;
pub const DEFAULT_MAX_SERVICES: usize = 10_000;
pub const DEFAULT_SKIP_THRESHOLD: f64 = 3.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureConfig {
  /// How far back `should_skip` looks.
  pub window_ms: u64,
  /// Failures held per service; older ones go first.
  pub max_per_service: usize,
  /// Services tracked; the least recently failed go first.
  pub max_services: usize,
}

impl Default for FailureConfig {
  fn default() -> Self {
    Self {
      window_ms: DEFAULT_WINDOW_MS,
      max_per_service: DEFAULT_MAX_PER_SERVICE,
      max_services: DEFAULT_MAX_SERVICES,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStats {
  pub service: Arc<str>,
  pub count: usize,
  pub last_failure: u64,
}
