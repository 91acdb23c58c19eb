//! What every failure store must do, as checks any store's tests run:
//! `make` opens a new, empty store with the bounds given.

use super::record::{FailureConfig, FailureRecord, DEFAULT_WINDOW_MS};
use crate::core::cooldown::MAX_REASON_BYTES;
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

/// The names of the cooldowns running at `now`, ending soonest first.
fn benched(store: &mut dyn FailureStore, now: u64) -> Vec<String> {
  let cooldowns = store.cooldowns(now).unwrap();
  cooldowns.iter().map(|c| c.name.to_string()).collect()
}

pub fn bench_then_cooldowns_of_sees_what_is_left(make: Make) {
  let mut w = make(FailureConfig::default());
  assert_eq!(w.cooldowns_of(&["gpt", "claude"], 0).unwrap(), [None, None]);
  w.bench("gpt", 1_000, "HTTP 429", 100).unwrap();
  w.bench("claude", 700, "HTTP 529", 200).unwrap();
  let left = w
    .cooldowns_of(&["gpt", "other", "claude", "gpt"], 300)
    .unwrap();
  assert_eq!(left, [Some(700), None, Some(400), Some(700)]);
  assert!(w.cooldowns_of(&[], 300).unwrap().is_empty());
  let all = w.cooldowns(300).unwrap();
  let claude = &all[0];
  assert_eq!(
    (
      &*claude.name,
      claude.since,
      claude.until,
      claude.reason.as_str()
    ),
    ("claude", 200, 700, "HTTP 529")
  );
  assert_eq!(benched(&mut *w, 300), ["claude", "gpt"]);
  // Cooldowns are no failures: not in the history, its stats or its bytes.
  assert!(w.failures(None, Page::ALL).unwrap().is_empty());
  assert!(w.stats().unwrap().is_empty());
  assert_eq!(w.bytes().unwrap(), 0);
  assert!(!w.should_skip("gpt", 1.0, 300).unwrap());
  // A name with any text, and a reason cut to its bound.
  let odd = "a:1:b\n{x}:s:";
  let long = "é".repeat(MAX_REASON_BYTES);
  w.bench(odd, 2_000, &long, 300).unwrap();
  assert_eq!(w.cooldowns_of(&[odd], 300).unwrap(), [Some(1_700)]);
  let reason = &w.cooldowns(300).unwrap()[2].reason;
  assert!(reason.len() <= MAX_REASON_BYTES && reason.starts_with("éé"));
  // An end already past benches nothing.
  w.bench("late", 300, "r", 300).unwrap();
  assert_eq!(w.cooldowns_of(&["late"], 300).unwrap(), [None]);
}

pub fn cooldowns_end(make: Make) {
  let mut w = make(FailureConfig::default());
  w.bench("gpt", 1_000, "r", 0).unwrap();
  assert_eq!(w.cooldowns_of(&["gpt"], 999).unwrap(), [Some(1)]);
  assert_eq!(w.cooldowns_of(&["gpt"], 1_000).unwrap(), [None]);
  assert!(benched(&mut *w, 1_000).is_empty());
  // Benched again after it ended: a new cooldown, from now.
  w.bench("gpt", 1_500, "again", 1_200).unwrap();
  let again = w.cooldowns(1_200).unwrap().remove(0);
  assert_eq!((again.since, again.until), (1_200, 1_500));
  assert_eq!(again.reason, "again");
}

pub fn a_cooldown_is_never_shortened(make: Make) {
  let mut w = make(FailureConfig::default());
  w.bench("gpt", 5_000, "long", 0).unwrap();
  w.bench("gpt", 1_000, "short", 100).unwrap();
  let held = w.cooldowns(100).unwrap().remove(0);
  assert_eq!(
    (held.since, held.until, held.reason.as_str()),
    (0, 5_000, "long")
  );
  w.bench("gpt", 9_000, "longer", 200).unwrap();
  let held = w.cooldowns(200).unwrap().remove(0);
  assert_eq!(
    (held.since, held.until, held.reason.as_str()),
    (0, 9_000, "longer")
  );
  assert_eq!(w.cooldowns(200).unwrap().len(), 1);
}

pub fn clear_forgets_cooldowns_one_or_all(make: Make) {
  let mut w = make(FailureConfig::default());
  w.bench("a", 1_000, "r", 0).unwrap();
  w.bench("b", 1_000, "r", 0).unwrap();
  w.record("b", "op", "e", "r", 0).unwrap();
  // A cooldown alone is something held.
  assert!(w.clear(Some("a")).unwrap());
  assert!(!w.clear(Some("a")).unwrap());
  assert_eq!(w.cooldowns_of(&["a", "b"], 1).unwrap(), [None, Some(999)]);
  assert!(w.clear(Some("b")).unwrap());
  assert!(benched(&mut *w, 1).is_empty());
  w.bench("c", 1_000, "r", 0).unwrap();
  w.bench("d", 1_000, "r", 0).unwrap();
  assert!(w.clear(None).unwrap());
  assert!(benched(&mut *w, 1).is_empty());
  assert!(!w.clear(None).unwrap());
}

pub fn cooldowns_are_bounded_ended_then_soonest_ending_first(make: Make) {
  let mut w = make(FailureConfig {
    max_services: 3,
    ..Default::default()
  });
  w.bench("ends-first", 100, "r", 0).unwrap();
  w.bench("b", 3_000, "r", 0).unwrap();
  w.bench("c", 2_000, "r", 0).unwrap();
  // Full: the one that has ended goes.
  w.bench("d", 4_000, "r", 200).unwrap();
  assert_eq!(benched(&mut *w, 200), ["c", "b", "d"]);
  // Full of running ones: the one ending soonest goes.
  w.bench("e", 5_000, "r", 300).unwrap();
  assert_eq!(benched(&mut *w, 300), ["b", "d", "e"]);
  // A name already held takes no room.
  w.bench("b", 6_000, "r", 300).unwrap();
  assert_eq!(benched(&mut *w, 300), ["d", "e", "b"]);
  // The history's services are another bound.
  w.record("x", "op", "e", "r", 300).unwrap();
  assert_eq!(benched(&mut *w, 300).len(), 3);
}

/// Two handles on one store (one file, one server and prefix) see each
/// other's cooldowns.
pub fn cooldowns_are_shared(a: &mut dyn FailureStore, b: &mut dyn FailureStore) {
  a.bench("gpt", 1_000, "HTTP 429", 0).unwrap();
  assert_eq!(b.cooldowns_of(&["gpt"], 400).unwrap(), [Some(600)]);
  b.bench("gpt", 2_000, "HTTP 503", 500).unwrap();
  assert_eq!(a.cooldowns(500).unwrap()[0].until, 2_000);
  assert!(a.clear(Some("gpt")).unwrap());
  assert_eq!(b.cooldowns_of(&["gpt"], 500).unwrap(), [None]);
}

/// Runs every cooldown check above but the shared one.
pub fn cooldowns(make: Make) {
  bench_then_cooldowns_of_sees_what_is_left(make);
  cooldowns_end(make);
  a_cooldown_is_never_shortened(make);
  clear_forgets_cooldowns_one_or_all(make);
  cooldowns_are_bounded_ended_then_soonest_ending_first(make);
}

/// Runs every check above but the shared one.
pub fn all(make: Make) {
  cooldowns(make);
  skip_counts_only_failures_inside_the_window(make);
  history_is_bounded_per_service(make);
  services_are_bounded_least_recently_failed_first(make);
  all_failures_oldest_first_and_stats(make);
  pages_of_failures_oldest_first(make);
  clear_one_or_all(make);
}
