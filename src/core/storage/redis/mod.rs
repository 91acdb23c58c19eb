//! The shared stores: the cache, the queue and the failure history on a
//! Redis or Valkey server, so that every instance of an app, on every
//! machine, sees the same state. Each store runs its state changes as Lua
//! scripts (atomic on the server); `link.rs` holds the connection they
//! share, with its timeout and what the server last said.

mod cache;
mod cache_uses;
#[cfg(test)]
mod chain_tests;
mod commands;
mod connection;
mod eviction;
mod failures;
#[cfg(test)]
mod fault_tests;
mod link;
mod local_copy;
mod options;
mod outbox;
mod outbox_writer;
mod queue;
mod queue_enqueue;
mod queue_leases;
mod queue_pages;
mod queue_reply;
#[cfg(test)]
mod queue_tests;
mod records;
mod reply;
#[cfg(test)]
pub(crate) mod test_server;
mod tls;
#[cfg(test)]
mod tls_tests;
mod tracking;
#[cfg(test)]
mod tracking_tests;
mod wake;

pub use cache::RedisCache;
pub use connection::Mode;
pub use eviction::EVICTION_POLICY;
pub use failures::RedisFailures;
pub use link::{waiting_anywhere, LinkStatus, RedisLink};
pub use options::{
  check_prefix, check_url, is_tls_url, redact_url, seed_urls, RedisOptions, DEFAULT_PREFIX,
  DEFAULT_TIMEOUT_MS, MAX_PREFIX_BYTES,
};
pub use outbox_writer::SET_ASIDE;
pub use queue::{missing_jobs, RedisQueue, JOB_MISSING};
pub use tracking::TRACKING_UNAVAILABLE;
