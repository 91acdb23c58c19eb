//! Integration failure history: a bounded log per service, a bounded number
//! of services (least recently failed go first), a bound on the bytes of all
//! records (oldest first), and the "should we skip this service" window
//! check in O(log n).
//!
//! - `record.rs`: the bounds, a recorded failure and per-service counts,
//!   which both stores share.
//! - `memory.rs`: `FailureWindow`, the in-memory store.
//! - `behaviour.rs` (tests): what every store must do, checked against each.

#[cfg(test)]
pub(crate) mod behaviour;
mod memory;
pub mod record;

pub use memory::FailureWindow;
pub use record::{
  FailureConfig, FailureRecord, ServiceStats, DEFAULT_MAX_BYTES, DEFAULT_MAX_PER_SERVICE,
  DEFAULT_MAX_SERVICES, DEFAULT_SKIP_THRESHOLD, DEFAULT_WINDOW_MS,
};
