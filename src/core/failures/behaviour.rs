//! What every failure store must do, as checks any store's tests run:
//! `make` opens a new, empty store with the bounds given.

use super::record::{FailureConfig, FailureRecord, DEFAULT_WINDOW_MS};
use crate::core::storage::traits::{FailureStore, Page};

pub type Make<'a> = &'a dyn Fn(FailureConfig) -> Box<dyn FailureStore>;

fn operations(records: Vec<FailureRecord>) -> Vec<String> {
  records.into_iter().map(|r| r.operation).collect()
}

fn services(store: &mut dyn FailureStore) -> Vec<String> {
  let stats = store.stats().unwrap();
  stats.iter().map(|s| s.service.to_string()).collect()
}

pub fn skip_counts_only_failures_inside_the_window(make: Make) {
  let mut w = make(FailureConfig::default());
  w.record("fb", "post", "e", "r", 0).unwrap();
  w.record("fb", "post", "e", "r", 1_000).unwrap();
  w.record("fb", "post", "e", "r", 2_000).unwrap();
  assert!(w.should_skip("fb", 3.0, 2_000).unwrap());
  assert!(w.should_skip("fb", 3.0, DEFAULT_WINDOW_MS).unwrap());
  assert!(!w.should_skip("fb", 3.0, DEFAULT_WINDOW_MS + 1).unwrap());
  assert!(w.should_skip("fb", 2.0, DEFAULT_WINDOW_MS + 1).unwrap());
  assert!(!w.should_skip("other", 1.0, 0).unwrap());
  assert!(w.should_skip("other", 0.0, 0).unwrap());
  // Nothing is dropped for being outside the window.
  assert_eq!(w.stats().unwrap()[0].count, 3);
}

pub fn history_is_bounded_per_service(make: Make) {
  let mut w = make(FailureConfig {
    max_per_service: 3,
    ..Default::default()
  });
  for i in 0..10 {
    w.record("noisy", "op", &format!("e{i}"), "r", i).unwrap();
  }
  w.record("quiet", "op", "q", "r", 10).unwrap();
  let noisy = w.failures(Some("noisy"), Page::ALL).unwrap();
  let errors: Vec<&str> = noisy.iter().map(|r| r.error.as_str()).collect();
  assert_eq!(errors, vec!["e7", "e8", "e9"]);
  assert_eq!(w.failures(Some("quiet"), Page::ALL).unwrap().len(), 1);
  assert_eq!(w.failures(None, Page::ALL).unwrap().len(), 4);
  // The dropped ones no longer count in the window either.
  assert!(!w.should_skip("noisy", 4.0, 10).unwrap());
  assert!(w.should_skip("noisy", 3.0, 10).unwrap());
}

pub fn services_are_bounded_least_recently_failed_first(make: Make) {
  let mut w = make(FailureConfig {
    max_services: 2,
    ..Default::default()
  });
  w.record("a", "op", "e", "r", 0).unwrap();
  w.record("b", "op", "e", "r", 1).unwrap();
  w.record("a", "op", "e", "r", 2).unwrap();
  w.record("c", "op", "e", "r", 3).unwrap();
  assert_eq!(services(&mut *w), vec!["a", "c"]);
  assert!(w.failures(Some("b"), Page::ALL).unwrap().is_empty());
  assert_eq!(w.failures(None, Page::ALL).unwrap().len(), 3);
}

pub fn all_failures_oldest_first_and_stats(make: Make) {
  let mut w = make(FailureConfig::default());
  w.record("a", "op1", "e1", "r1", 10).unwrap();
  w.record("b", "op2", "e2", "r2", 20).unwrap();
  w.record("a", "op3", "e3", "r3", 30).unwrap();
  let all = w.failures(None, Page::ALL).unwrap();
  let first = &all[0];
  assert_eq!(
    (
      &*first.service,
      first.error.as_str(),
      first.skip_reason.as_str()
    ),
    ("a", "e1", "r1")
  );
  assert_eq!(first.timestamp, 10);
  assert_eq!(operations(all), vec!["op1", "op2", "op3"]);
  let stats = w.stats().unwrap();
  assert_eq!(stats[0].service.as_ref(), "a");
  assert_eq!((stats[0].count, stats[0].last_failure), (2, 30));
  assert_eq!((stats[1].count, stats[1].last_failure), (1, 20));
}

pub fn pages_of_failures_oldest_first(make: Make) {
  let mut w = make(FailureConfig::default());
  for i in 0..12u64 {
    let service = ["a", "b", "c"][(i % 3) as usize];
    w.record(service, &format!("op{i}"), "e", "r", i).unwrap();
  }
  let page = |offset, limit| Page { offset, limit };
  assert_eq!(
    operations(w.failures(None, page(2, Some(3))).unwrap()),
    ["op2", "op3", "op4"]
  );
  assert_eq!(
    operations(w.failures(None, page(10, None)).unwrap()),
    ["op10", "op11"]
  );
  assert_eq!(
    operations(w.failures(Some("b"), page(1, Some(2))).unwrap()),
    ["op4", "op7"]
  );
  assert!(w.failures(Some("b"), page(9, None)).unwrap().is_empty());
  assert!(w.failures(None, page(0, Some(0))).unwrap().is_empty());
  let far = page(usize::MAX, Some(usize::MAX));
  assert!(w.failures(None, far).unwrap().is_empty());
  assert_eq!(w.failures(None, Page::ALL).unwrap().len(), 12);
}

pub fn clear_one_or_all(make: Make) {
  let mut w = make(FailureConfig::default());
  w.record("a", "op", "e", "r", 0).unwrap();
  w.record("b", "op", "e", "r", 0).unwrap();
  assert!(w.clear(Some("a")).unwrap());
  assert!(!w.clear(Some("a")).unwrap());
  assert_eq!(services(&mut *w), vec!["b"]);
  assert!(!w.should_skip("a", 1.0, 0).unwrap());
  assert!(w.clear(None).unwrap());
  assert!(!w.clear(None).unwrap());
  assert!(w.failures(None, Page::ALL).unwrap().is_empty());
  assert!(w.stats().unwrap().is_empty());
  // The order goes on after a clear.
  w.record("c", "op", "e", "r", 1).unwrap();
  w.record("b", "op", "e", "r", 2).unwrap();
  assert_eq!(services(&mut *w), vec!["c", "b"]);
}

/// Runs every check above.
pub fn all(make: Make) {
  skip_counts_only_failures_inside_the_window(make);
  history_is_bounded_per_service(make);
  services_are_bounded_least_recently_failed_first(make);
  all_failures_oldest_first_and_stats(make);
  pages_of_failures_oldest_first(make);
  clear_one_or_all(make);
}
