//! The in-memory failure history: a log per service in an LRU map of
//! services, and the services by their oldest record for the byte bound.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::Arc;

use lru::LruCache;

use super::record::{FailureConfig, FailureRecord, ServiceStats};
use crate::core::cooldown::{Bench, Cooldown};
use crate::core::shared::records::{Change, Key, Kind, MemoryRecords};
use crate::core::storage::error::StorageResult;
use crate::core::storage::free::free;
use crate::core::storage::traits::{FailureStore, Location, Page};

pub struct FailureWindow {
  config: FailureConfig,
  next_seq: u64,
  services: LruCache<Arc<str>, VecDeque<FailureRecord>>,
  held: Held,
  /// Benched names (not counted in `held`, nor by `max_bytes`).
  bench: Bench,
  /// The shared guards' records (`core::shared`).
  records: MemoryRecords,
}

/// What the byte bound needs, kept as records come and go: every service
/// by the `seq` of its oldest record (so the oldest record of all is the
/// front of the first one's history), and the records' count and bytes.
#[derive(Default)]
struct Held {
  oldest: BTreeMap<u64, Arc<str>>,
  records: usize,
  bytes: usize,
}

impl Held {
  /// `record` joins `history` as its newest.
  fn push(&mut self, history: &mut VecDeque<FailureRecord>, record: FailureRecord) {
    if history.is_empty() {
      self.oldest.insert(record.seq, record.service.clone());
    }
    self.records += 1;
    self.bytes += record.stored_bytes();
    history.push_back(record);
  }

  /// Drops `history`'s oldest records until at most `keep` are left.
  fn trim(&mut self, history: &mut VecDeque<FailureRecord>, keep: usize) {
    let Some(front) = history.front() else {
      return;
    };
    if history.len() <= keep {
      return;
    }
    let service = self.oldest.remove(&front.seq);
    while history.len() > keep {
      if let Some(record) = history.pop_front() {
        self.records -= 1;
        self.bytes -= record.stored_bytes();
      }
    }
    if let (Some(front), Some(service)) = (history.front(), service) {
      self.oldest.insert(front.seq, service);
    }
  }

  /// Forgets a whole history, already taken out of the services.
  fn forget(&mut self, history: &VecDeque<FailureRecord>) {
    if let Some(front) = history.front() {
      self.oldest.remove(&front.seq);
    }
    self.records -= history.len();
    self.bytes -= history
      .iter()
      .map(FailureRecord::stored_bytes)
      .sum::<usize>();
  }
}

impl FailureWindow {
  pub fn new(config: FailureConfig) -> Self {
    Self {
      config,
      next_seq: 0,
      services: LruCache::unbounded(),
      held: Held::default(),
      bench: Bench::default(),
      records: MemoryRecords::default(),
    }
  }

  /// Forgets the least recently failed services beyond `max_services`.
  fn trim_services(&mut self) {
    while self.services.len() > self.config.max_services {
      if let Some((_, history)) = self.services.pop_lru() {
        self.held.forget(&history);
      }
    }
  }

  /// Drops the oldest records, whatever their service, while they hold
  /// more than `max_bytes`; the newest record stays even alone over it.
  fn fit_bytes(&mut self) {
    while self.held.bytes > self.config.max_bytes && self.held.records > 1 {
      let Some((_, service)) = self.held.oldest.first_key_value() else {
        return;
      };
      let service = service.clone();
      let Some(history) = self.services.peek_mut(&service) else {
        return;
      };
      self.held.trim(history, history.len() - 1);
      if history.is_empty() {
        self.services.pop(&service);
      }
    }
  }
}

impl FailureStore for FailureWindow {
  fn config(&self) -> FailureConfig {
    self.config
  }

  /// New bounds apply at once to the history already held.
  fn set_config(&mut self, config: FailureConfig) -> StorageResult<()> {
    self.config = config;
    self.trim_services();
    for (_, history) in self.services.iter_mut() {
      self.held.trim(history, config.max_per_service);
    }
    self.fit_bytes();
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
    let record =
      |service: Arc<str>, seq| FailureRecord::new(service, operation, error, skip_reason, now, seq);
    let seq = self.next_seq;
    self.next_seq += 1;
    if let Some(history) = self.services.get_mut(service) {
      let name = history.front().map(|r| r.service.clone());
      self
        .held
        .push(history, record(name.unwrap_or_else(|| service.into()), seq));
      self.held.trim(history, self.config.max_per_service);
    } else {
      let name: Arc<str> = service.into();
      let mut history = VecDeque::new();
      self.held.push(&mut history, record(name.clone(), seq));
      self.services.push(name, history);
      self.trim_services();
    }
    self.fit_bytes();
    Ok(())
  }

  /// True when at least `threshold` failures of `service` fall inside the
  /// window ending at `now`.
  fn should_skip(&mut self, service: &str, threshold: f64, now: u64) -> StorageResult<bool> {
    let recent = match self.services.peek(service) {
      Some(history) => {
        let since = now.saturating_sub(self.config.window_ms);
        history.len() - history.partition_point(|r| r.timestamp < since)
      }
      None => 0,
    };
    Ok(recent as f64 >= threshold)
  }

  /// One page of one service's failures (O(offset + limit)), or of every
  /// service's, oldest first (a merge of the services' histories: O(services
  /// + (offset + limit) log services)).
  fn failures(&mut self, service: Option<&str>, page: Page) -> StorageResult<Vec<FailureRecord>> {
    Ok(match service {
      Some(name) => self
        .services
        .peek(name)
        .map(|history| page.of(history.iter()).cloned().collect())
        .unwrap_or_default(),
      None => {
        let mut histories: Vec<_> = self
          .services
          .iter()
          .map(|(_, history)| history.iter().peekable())
          .collect();
        let mut next: BinaryHeap<Reverse<(u64, usize)>> = histories
          .iter_mut()
          .enumerate()
          .filter_map(|(i, history)| Some(Reverse((history.peek()?.seq, i))))
          .collect();
        let merged = std::iter::from_fn(|| {
          let Reverse((_, i)) = next.pop()?;
          let record = histories[i].next()?;
          if let Some(after) = histories[i].peek() {
            next.push(Reverse((after.seq, i)));
          }
          Some(record)
        });
        page.of(merged).cloned().collect()
      }
    })
  }

  /// Forgets one service's failures, or all; true when anything was held.
  fn clear(&mut self, service: Option<&str>) -> StorageResult<bool> {
    let benched = self.bench.clear(service);
    let held = match service {
      Some(name) => match self.services.pop(name) {
        Some(history) => {
          self.held.forget(&history);
          true
        }
        None => false,
      },
      None => {
        let had_any = !self.services.is_empty();
        self.held = Held::default();
        let old = std::mem::replace(&mut self.services, LruCache::unbounded());
        let items = old.len();
        free(old, items);
        had_any
      }
    };
    Ok(held || benched)
  }

  /// Per service, in the order they first failed within what is held.
  fn stats(&mut self) -> StorageResult<Vec<ServiceStats>> {
    let mut stats: Vec<(u64, ServiceStats)> = self
      .services
      .iter()
      .filter_map(|(name, history)| {
        let first = history.front()?;
        let last = history.back()?;
        Some((
          first.seq,
          ServiceStats {
            service: name.clone(),
            count: history.len(),
            last_failure: last.timestamp,
          },
        ))
      })
      .collect();
    stats.sort_by_key(|(seq, _)| *seq);
    Ok(stats.into_iter().map(|(_, s)| s).collect())
  }

  fn bytes(&mut self) -> StorageResult<usize> {
    Ok(self.held.bytes)
  }

  fn bench(&mut self, name: &str, until: u64, reason: &str, now: u64) -> StorageResult<()> {
    let max = self.config.max_services;
    self.bench.bench(name, until, reason, now, max);
    Ok(())
  }

  fn cooldowns_of(&mut self, names: &[&str], now: u64) -> StorageResult<Vec<Option<u64>>> {
    Ok(
      names
        .iter()
        .map(|name| self.bench.remaining(name, now))
        .collect(),
    )
  }

  fn cooldowns(&mut self, now: u64) -> StorageResult<Vec<Cooldown>> {
    Ok(self.bench.active(now))
  }

  fn quiet_from(&self) -> u64 {
    self.bench.quiet_from()
  }

  fn location(&self) -> Location<'_> {
    Location::Memory {
      // Never recorded a failure nor benched a name.
      untouched: self.next_seq == 0 && !self.bench.used() && self.records.is_empty(),
    }
  }

  fn update_records(&mut self, keys: &[Key], change: &mut Change, now: u64) -> StorageResult<()> {
    self.records.update(keys, change, now);
    Ok(())
  }

  fn records(&mut self, kind: Kind, now: u64) -> StorageResult<Vec<(String, String)>> {
    Ok(self.records.list(kind, now))
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::failures::behaviour;

  fn make(config: FailureConfig) -> Box<dyn FailureStore> {
    Box::new(FailureWindow::new(config))
  }

  #[test]
  fn skip_counts_only_failures_inside_the_window() {
    behaviour::skip_counts_only_failures_inside_the_window(&make);
  }

  #[test]
  fn history_is_bounded_per_service() {
    behaviour::history_is_bounded_per_service(&make);
  }

  #[test]
  fn services_are_bounded_least_recently_failed_first() {
    behaviour::services_are_bounded_least_recently_failed_first(&make);
  }

  #[test]
  fn all_failures_oldest_first_and_stats() {
    behaviour::all_failures_oldest_first_and_stats(&make);
  }

  #[test]
  fn pages_of_failures_oldest_first() {
    behaviour::pages_of_failures_oldest_first(&make);
  }

  #[test]
  fn clear_one_or_all() {
    behaviour::clear_one_or_all(&make);
  }

  #[test]
  fn cooldowns() {
    behaviour::cooldowns(&make);
  }
}
