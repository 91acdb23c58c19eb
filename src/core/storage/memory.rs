//! The in-memory stores: the core structures themselves, which cannot fail.

use std::sync::Arc;

use super::error::StorageResult;
use super::traits::{CacheStore, FailureStore, Location, QueueStore};
use crate::core::cache::{CacheConfig, CacheError, CacheHit, CacheStats, EntryText, ResponseCache};
use crate::core::failures::{FailureConfig, FailureRecord, FailureWindow, ServiceStats};
use crate::core::queue::{Job, JobQueue, NewJob, QueueConfig, QueueError, QueueStats};

impl CacheStore for ResponseCache {
  fn config(&self) -> CacheConfig {
    ResponseCache::config(self)
  }
  fn set_config(&mut self, config: CacheConfig, now: u64) -> StorageResult<()> {
    ResponseCache::set_config(self, config, now);
    Ok(())
  }
  fn set_text(
    &mut self,
    entry: EntryText,
    model_id: &str,
    ttl_ms: Option<u64>,
    now: u64,
  ) -> Result<(), CacheError> {
    ResponseCache::set_text(self, entry, model_id, ttl_ms, now)
  }
  fn get(&mut self, prompt: &str, model_id: &str, now: u64) -> StorageResult<Option<CacheHit>> {
    Ok(ResponseCache::get(self, prompt, model_id, now))
  }
  fn get_for_fallback(
    &mut self,
    prompt: &str,
    model_id: &str,
    now: u64,
  ) -> StorageResult<Option<CacheHit>> {
    Ok(ResponseCache::get_for_fallback(self, prompt, model_id, now))
  }
  fn delete(&mut self, prompt: &str, model_id: &str) -> StorageResult<bool> {
    Ok(ResponseCache::delete(self, prompt, model_id))
  }
  fn clear(&mut self) -> StorageResult<()> {
    ResponseCache::clear(self);
    Ok(())
  }
  fn stats(&mut self, now: u64) -> StorageResult<CacheStats> {
    Ok(ResponseCache::stats(self, now))
  }
  fn location(&self) -> Location<'_> {
    Location::Memory {
      untouched: self.is_untouched(),
    }
  }
}

impl QueueStore for JobQueue {
  fn config(&self) -> QueueConfig {
    JobQueue::config(self)
  }
  fn set_config(&mut self, config: QueueConfig, now: u64) -> StorageResult<()> {
    JobQueue::set_config(self, config, now);
    Ok(())
  }
  fn enqueue(&mut self, job: NewJob, now: u64) -> Result<Arc<str>, QueueError> {
    JobQueue::enqueue(self, job, now)
  }
  fn dequeue_eligible(
    &mut self,
    now: u64,
    eligible: &dyn Fn(&Job) -> bool,
  ) -> StorageResult<Option<Job>> {
    Ok(JobQueue::dequeue_eligible(self, now, eligible))
  }
  fn renew_lease(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    Ok(JobQueue::renew_lease(self, id, now))
  }
  fn keep_leased(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    Ok(JobQueue::keep_leased(self, id, now))
  }
  fn release(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    Ok(JobQueue::release(self, id, now))
  }
  fn complete(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    Ok(JobQueue::complete(self, id, now))
  }
  fn fail(&mut self, id: &str, error: &str, now: u64) -> StorageResult<bool> {
    Ok(JobQueue::fail(self, id, error, now))
  }
  fn stats(&mut self, now: u64) -> StorageResult<QueueStats> {
    Ok(JobQueue::stats(self, now))
  }
  fn get(&mut self, id: &str, now: u64) -> StorageResult<Option<Job>> {
    Ok(JobQueue::get(self, id, now))
  }
  fn snapshot(&mut self, now: u64, filter: &dyn Fn(&Job) -> bool) -> StorageResult<Vec<Job>> {
    Ok(JobQueue::snapshot(self, now, filter))
  }
  fn retry_failed(&mut self, id: Option<&str>, now: u64) -> StorageResult<usize> {
    Ok(JobQueue::retry_failed(self, id, now))
  }
  fn clear_completed(&mut self, now: u64) -> StorageResult<usize> {
    Ok(JobQueue::clear_completed(self, now))
  }
  fn location(&self) -> Location<'_> {
    Location::Memory {
      untouched: self.is_untouched(),
    }
  }
}

impl FailureStore for FailureWindow {
  fn config(&self) -> FailureConfig {
    FailureWindow::config(self)
  }
  fn set_config(&mut self, config: FailureConfig) -> StorageResult<()> {
    FailureWindow::set_config(self, config);
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
    FailureWindow::record(self, service, operation, error, skip_reason, now);
    Ok(())
  }
  fn should_skip(&mut self, service: &str, threshold: f64, now: u64) -> StorageResult<bool> {
    Ok(FailureWindow::should_skip(self, service, threshold, now))
  }
  fn failures(&mut self, service: Option<&str>) -> StorageResult<Vec<FailureRecord>> {
    Ok(FailureWindow::failures(self, service))
  }
  fn clear(&mut self, service: Option<&str>) -> StorageResult<bool> {
    Ok(FailureWindow::clear(self, service))
  }
  fn stats(&mut self) -> StorageResult<Vec<ServiceStats>> {
    Ok(FailureWindow::stats(self))
  }
  fn location(&self) -> Location<'_> {
    Location::Memory {
      untouched: self.is_untouched(),
    }
  }
}
