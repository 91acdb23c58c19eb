//! The fallback decision (the order in the README, "The API": a cached
//! answer, then `defaultValue` with a cache key, a queued job, a skip,
//! `defaultValue` without a cache key) and the three building blocks
//! (`fallbackToCachedAI`, `skipFailedIntegration`, `queueForLater`), as
//! plain functions over the stores.

use std::sync::Arc;

use super::cache::{CacheHit, EntryText};
use super::limits;
use super::messages::skip_reason;
use super::queue::{JobPriority, JobType, NewJob, QueueError, DEFAULT_MAX_RETRIES};
use super::singletons::Stores;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
  pub prompt: String,
  pub model_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueRequest {
  pub job_type: JobType,
  /// JSON text, taken when the call was made; `None` for `undefined`.
  pub payload: Option<Arc<str>>,
  pub priority: JobPriority,
  /// Why this call's payload could not be taken (circular, a BigInt, ...):
  /// the queue step is unavailable to it, and the chain goes on.
  pub payload_problem: Option<String>,
}

/// A validated `FallbackOptions`, minus `defaultValue` itself, which stays a
/// JavaScript value: only whether there is one matters here.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackPlan {
  pub operation_name: String,
  pub user_id: Option<String>,
  pub cache_key: Option<CacheKey>,
  /// Why the cache cannot be asked for this key (a lone surrogate in it):
  /// the cache step is unavailable; the key still orders the steps.
  pub cache_problem: Option<String>,
  pub allow_skip: bool,
  pub queue: Option<QueueRequest>,
  pub has_default: bool,
  pub service: Option<String>,
}

impl FallbackPlan {
  pub fn new(operation_name: impl Into<String>) -> Self {
    Self {
      operation_name: operation_name.into(),
      user_id: None,
      cache_key: None,
      cache_problem: None,
      allow_skip: false,
      queue: None,
      has_default: false,
      service: None,
    }
  }

  /// The name a skipped failure is recorded under.
  pub fn skip_service(&self) -> &str {
    self.service.as_deref().unwrap_or(&self.operation_name)
  }
}

/// A step of the chain passed over because of this call's data or the
/// state of a store (never because the operation failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
  pub step: &'static str,
  pub reason: String,
}

/// The failure path's result: the fallback it settled on, and the steps it
/// passed over on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureOutcome {
  pub fallback: Fallback,
  pub unavailable: Vec<Unavailable>,
}

/// What the failure path settled on.
#[derive(Debug, Clone, PartialEq)]
pub enum Fallback {
  Cache(CacheHit),
  Default,
  Queued(Arc<str>),
  Skipped,
  /// Nothing applied: the call resolves with `success: false`.
  Failed,
}

impl Fallback {
  /// The `fallbackType` reported for this outcome.
  pub fn fallback_type(&self) -> Option<&'static str> {
    match self {
      Fallback::Cache(_) => Some("cache"),
      Fallback::Default => Some("default"),
      Fallback::Queued(_) => Some("queue"),
      Fallback::Skipped => Some("skip"),
      Fallback::Failed => None,
    }
  }
}

/// Caches a successful result (its JSON text) under the call's key, with
/// the default TTL. A result the cache refuses (larger than its whole byte
/// bound, a store that cannot be written) is simply not cached: the call
/// still succeeded, and the reason is returned to be reported.
pub fn on_success(
  stores: &Stores,
  entry: EntryText,
  model_id: &str,
  now: u64,
) -> Result<(), String> {
  let stored = stores.with_cache(|cache| cache.set_text(entry, model_id, None, now));
  stored.map_err(|error| error.to_string())
}

/// The failure path, in the contract's order: cache, default (with a cache
/// key), queue, skip, default (without one), fail. A step that cannot serve
/// this call (a cache that cannot be read, a payload that cannot be queued,
/// a queue that refuses the job) is passed over, and said so: the request
/// goes on to the next step instead of being lost or failing the call.
pub fn on_failure(
  plan: &FallbackPlan,
  error_message: &str,
  stores: &Stores,
  now: u64,
) -> FailureOutcome {
  let mut unavailable = Vec::new();
  let fallback = choose(plan, error_message, stores, now, &mut unavailable);
  FailureOutcome {
    fallback,
    unavailable,
  }
}

fn choose(
  plan: &FallbackPlan,
  error_message: &str,
  stores: &Stores,
  now: u64,
  unavailable: &mut Vec<Unavailable>,
) -> Fallback {
  let mut pass_over = |step, reason: String| unavailable.push(Unavailable { step, reason });
  if let Some(key) = &plan.cache_key {
    let found = match &plan.cache_problem {
      Some(problem) => Err(problem.clone()),
      None => stores
        .with_cache(|cache| cache.get_for_fallback(&key.prompt, &key.model_id, now))
        .map_err(|error| error.to_string()),
    };
    match found {
      Ok(Some(hit)) => return Fallback::Cache(hit),
      Ok(None) => {}
      Err(reason) => pass_over("cache", reason),
    }
    if plan.has_default {
      return Fallback::Default;
    }
  }
  if let (Some(request), Some(user_id)) = (&plan.queue, &plan.user_id) {
    match &request.payload_problem {
      Some(problem) => pass_over("queue", problem.clone()),
      None => {
        let job = NewJob {
          job_type: request.job_type,
          operation: plan.operation_name.clone(),
          payload: request.payload.clone(),
          user_id: user_id.clone(),
          priority: request.priority,
          retry_count: 0,
          max_retries: DEFAULT_MAX_RETRIES,
          next_retry_at: None,
        };
        match stores.with_queue(|queue| queue.enqueue(job, now)) {
          Ok(job_id) => return Fallback::Queued(job_id),
          Err(error) => pass_over("queue", error.to_string()),
        }
      }
    }
  }
  if plan.allow_skip {
    skip_failed_integration(stores, plan.skip_service(), "execute", error_message, now);
    return Fallback::Skipped;
  }
  if plan.has_default {
    return Fallback::Default;
  }
  Fallback::Failed
}

/// `skipThreshold`: with `allowSkip`, whether the service has already failed
/// often enough inside the window to be skipped without calling it.
pub fn skip_up_front(plan: &FallbackPlan, threshold: f64, stores: &Stores, now: u64) -> bool {
  plan.allow_skip
    && stores
      .with_failures(|failures| failures.should_skip(plan.skip_service(), threshold, now))
      // A history that cannot be read says nothing against calling.
      .unwrap_or(false)
}

/// `fallbackToCachedAI`: a cached answer (stale allowed), else the default,
/// else nothing.
pub fn cached_ai(stores: &Stores, key: &CacheKey, has_default: bool, now: u64) -> Fallback {
  let hit = stores
    .with_cache(|cache| cache.get_for_fallback(&key.prompt, &key.model_id, now))
    .unwrap_or(None);
  match hit {
    Some(hit) => Fallback::Cache(hit),
    None if has_default => Fallback::Default,
    None => Fallback::Failed,
  }
}

/// Records a skipped integration; returns the skip reason.
pub fn skip_failed_integration(
  stores: &Stores,
  service: &str,
  operation: &str,
  error_message: &str,
  now: u64,
) -> String {
  let reason = skip_reason(error_message);
  // A service or operation name too long to keep as a key is not written
  // down; the skip happens all the same, as it does when the store fails.
  if limits::id_too_long("", service).is_some() || limits::id_too_long("", operation).is_some() {
    return reason;
  }
  let _ = stores
    .with_failures(|failures| failures.record(service, operation, error_message, &reason, now));
  reason
}

/// `queueForLater`: enqueues on the shared queue.
pub fn queue_for_later(stores: &Stores, job: NewJob, now: u64) -> Result<Arc<str>, QueueError> {
  stores.with_queue(|queue| queue.enqueue(job, now))
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::cache::CacheConfig;
  use crate::core::queue::{JobStatus, QueueConfig};

  /// Runs a test against memory stores and against stores in a new file.
  fn for_each_backend(test: impl Fn(Stores)) {
    test(Stores::new());
    let dir = crate::core::storage::sqlite::test_dir("fallback");
    let path = dir.join("state.db");
    let stores = Stores::new();
    stores
      .move_to(
        crate::core::storage::Backend::File(&path, Default::default()),
        Default::default(),
        0,
      )
      .unwrap();
    test(stores);
  }

  fn set_cache_config(stores: &Stores, config: CacheConfig) {
    stores.cache.lock().set_config(config, 0).unwrap();
  }

  fn key() -> CacheKey {
    CacheKey {
      prompt: "p".into(),
      model_id: "m".into(),
    }
  }

  fn queue_request() -> QueueRequest {
    QueueRequest {
      job_type: JobType::Analytics,
      payload: Some(Arc::from("{\"a\":1}")),
      payload_problem: None,
      priority: JobPriority::Low,
    }
  }

  /// A payload that could not be taken, or a queue that refuses the job,
  /// passes the request on to the next step and says why.
  #[test]
  fn an_unavailable_queue_step_is_passed_over_and_reported() {
    for_each_backend(|stores| {
      let mut plan = FallbackPlan::new("op");
      plan.user_id = Some("u".into());
      plan.allow_skip = true;
      plan.queue = Some(QueueRequest {
        payload_problem: Some("circular".into()),
        ..queue_request()
      });
      let outcome = on_failure(&plan, "e", &stores, 1);
      assert_eq!(outcome.fallback, Fallback::Skipped);
      assert_eq!(
        outcome.unavailable,
        vec![Unavailable {
          step: "queue",
          reason: "circular".into()
        }]
      );
      assert_eq!(stores.queue.lock().stats(1).unwrap().total, 0);

      stores
        .queue
        .lock()
        .set_config(
          QueueConfig {
            max_payload_bytes: 2,
            ..QueueConfig::default()
          },
          1,
        )
        .unwrap();
      plan.queue = Some(queue_request());
      let outcome = on_failure(&plan, "e", &stores, 1);
      assert_eq!(outcome.fallback, Fallback::Skipped);
      assert_eq!(outcome.unavailable.len(), 1);
      assert_eq!(outcome.unavailable[0].step, "queue");
    });
  }

  /// Every option given: each row removes what made the previous one apply.
  #[test]
  fn precedence_follows_the_contract() {
    for_each_backend(|stores| {
      let mut plan = FallbackPlan::new("op");
      plan.cache_key = Some(key());
      plan.has_default = true;
      plan.queue = Some(queue_request());
      plan.user_id = Some("u".into());
      plan.allow_skip = true;

      stores
        .cache
        .lock()
        .set_text(EntryText::new("p", "1"), "m", None, 0)
        .unwrap();
      assert_eq!(
        on_failure(&plan, "e", &stores, 1).fallback.fallback_type(),
        Some("cache")
      );

      stores.cache.lock().clear().unwrap();
      assert_eq!(
        on_failure(&plan, "e", &stores, 1).fallback,
        Fallback::Default
      );

      plan.has_default = false;
      let queued = on_failure(&plan, "e", &stores, 1).fallback;
      let Fallback::Queued(id) = queued else {
        panic!("expected a queued job, got {queued:?}");
      };
      let job = stores.queue.lock().get(&id, 1).unwrap().unwrap();
      assert_eq!(
        (
          job.operation.as_str(),
          job.priority,
          job.max_retries,
          job.status
        ),
        ("op", JobPriority::Low, 3, JobStatus::Pending)
      );

      plan.user_id = None;
      assert_eq!(
        on_failure(&plan, "boom", &stores, 1).fallback,
        Fallback::Skipped
      );
      let failures = stores
        .failures
        .lock()
        .failures(Some("op"), crate::core::storage::Page::ALL)
        .unwrap();
      assert_eq!(failures[0].operation, "execute");
      assert_eq!(
        failures[0].skip_reason,
        "Service temporarily unavailable: boom"
      );

      plan.allow_skip = false;
      assert_eq!(
        on_failure(&plan, "e", &stores, 1).fallback,
        Fallback::Failed
      );
    });
  }

  #[test]
  fn skip_up_front_needs_allow_skip_and_enough_recent_failures() {
    for_each_backend(|stores| {
      let mut plan = FallbackPlan::new("op");
      plan.service = Some("svc".into());
      for _ in 0..3 {
        skip_failed_integration(&stores, "svc", "execute", "e", 100);
      }
      assert!(!skip_up_front(&plan, 3.0, &stores, 100), "allowSkip is off");
      plan.allow_skip = true;
      assert!(skip_up_front(&plan, 3.0, &stores, 100));
      assert!(!skip_up_front(&plan, 4.0, &stores, 100));
    });
  }

  #[test]
  fn default_without_cache_key_is_used_last() {
    for_each_backend(|stores| {
      let mut plan = FallbackPlan::new("op");
      plan.has_default = true;
      plan.allow_skip = true;
      plan.service = Some("svc".into());
      assert_eq!(
        on_failure(&plan, "e", &stores, 0).fallback,
        Fallback::Skipped
      );
      assert_eq!(
        stores
          .failures
          .lock()
          .failures(Some("svc"), crate::core::storage::Page::ALL)
          .unwrap()
          .len(),
        1
      );
      plan.allow_skip = false;
      assert_eq!(
        on_failure(&plan, "e", &stores, 0).fallback,
        Fallback::Default
      );
    });
  }

  #[test]
  fn full_queue_falls_through_to_the_next_step() {
    for_each_backend(|stores| {
      stores
        .queue
        .lock()
        .set_config(
          QueueConfig {
            max_size: 0,
            ..QueueConfig::default()
          },
          0,
        )
        .unwrap();
      let mut plan = FallbackPlan::new("op");
      plan.queue = Some(queue_request());
      plan.user_id = Some("u".into());
      assert_eq!(
        on_failure(&plan, "e", &stores, 0).fallback,
        Fallback::Failed
      );
      plan.allow_skip = true;
      assert_eq!(
        on_failure(&plan, "e", &stores, 0).fallback,
        Fallback::Skipped
      );
    });
  }

  #[test]
  fn success_is_cached_and_a_refused_one_is_not() {
    for_each_backend(|stores| {
      set_cache_config(
        &stores,
        CacheConfig {
          max_bytes: 10,
          ..CacheConfig::default()
        },
      );
      on_success(&stores, EntryText::new("p", "1"), "m", 0).unwrap();
      assert_eq!(stores.cache.lock().stats(0).unwrap().size, 1);
      let refused = on_success(
        &stores,
        EntryText::new("p", "a response far too large"),
        "m",
        0,
      );
      assert!(
        refused.unwrap_err().contains("more than the cache"),
        "the reason is reported"
      );
      let hit = stores
        .cache
        .lock()
        .get("p", "m", 0)
        .unwrap()
        .expect("the old entry stays");
      assert_eq!(hit.response, "1");
    });
  }

  #[test]
  fn stale_answers_serve_the_failure_path() {
    for_each_backend(|stores| {
      set_cache_config(
        &stores,
        CacheConfig {
          stale_if_error_ms: 1_000,
          ..CacheConfig::default()
        },
      );
      stores
        .cache
        .lock()
        .set_text(EntryText::new("p", "1"), "m", Some(10), 0)
        .unwrap();
      match cached_ai(&stores, &key(), false, 500) {
        Fallback::Cache(hit) => assert!(hit.stale),
        other => panic!("expected a stale hit, got {other:?}"),
      }
      assert_eq!(cached_ai(&stores, &key(), false, 2_000), Fallback::Failed);
      assert_eq!(cached_ai(&stores, &key(), true, 2_000), Fallback::Default);
    });
  }
}
