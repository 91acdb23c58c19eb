//! The shared guards' native half (README, "Resilience across instances"):
//! lib/guards.js checks the options and hands them over as JSON; the core
//! decides (`core::shared::admission`) on the singletons' failure store.
//! Store problems come back as text, never thrown: a guard that cannot be
//! asked is the caller's warning, not its failure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::LazyLock;

use parking_lot::Mutex;

use napi::bindgen_prelude::{Either, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use serde_json::json;

use crate::core::clock;
use crate::core::failures::{FailureConfig, FailureWindow};
use crate::core::shared::admission::{self, Admission, Guards, Settle};
use crate::core::shared::breaker::phase_at;
use crate::core::shared::budget;
use crate::core::shared::rate;
use crate::core::singletons::global;

use super::store_call::on_store;

/// The guards of this process alone, for while the store cannot answer.
static LOCAL: LazyLock<Mutex<FailureWindow>> =
  LazyLock::new(|| Mutex::new(FailureWindow::new(FailureConfig::default())));

fn guards_of(text: &str) -> Result<Guards, String> {
  serde_json::from_str(text)
    .map_err(|error| format!("the guards' options could not be read: {error}"))
}

/// `work`, with a panic turned into a problem.
fn guarded(work: impl FnOnce() -> String) -> String {
  catch_unwind(AssertUnwindSafe(work))
    .unwrap_or_else(|_| json!({ "problem": "internal error in a shared guard" }).to_string())
}

fn answer(admission: Admission) -> serde_json::Value {
  match admission {
    Admission::Allowed { probe, lease } => {
      json!({ "allowed": true, "probe": probe, "lease": lease })
    }
    Admission::Open { until } => json!({ "open": true, "until": until }),
    Admission::Limited { limit, retry_at } => {
      json!({ "limited": limit.name(), "retryAt": retry_at })
    }
    Admission::OverBudget { resets_at } => json!({ "overBudget": true, "resetsAt": resets_at }),
  }
}

fn settles_of(text: Option<&str>) -> Result<Vec<Settle>, String> {
  match text {
    None => Ok(Vec::new()),
    Some(text) => serde_json::from_str(text)
      .map_err(|error| format!("the calls' outcomes could not be read: {error}")),
  }
}

/// Records `settles` (the outcomes of calls let through: a JSON array),
/// then, with `admit` (a model's guards as JSON), asks whether that model
/// may be called now: one atomic update. JSON: `{allowed, probe, lease}`,
/// `{open, until}`, `{limited, retryAt}`, `{overBudget, resetsAt}`, or
/// `{}` without `admit`; with `problem` when the store could not answer
/// (this process then decided alone). A promise of it on Redis.
#[napi(ts_return_type = "string | Promise<string>")]
pub fn guard_update<'env>(
  env: &'env Env,
  settles: Option<String>,
  admit: Option<String>,
  now: f64,
) -> napi::Result<Either<String, PromiseRaw<'env, String>>> {
  let now = clock::from_js(now);
  on_store(env, move || {
    guarded(|| updated(settles.as_deref(), admit.as_deref(), now).to_string())
  })
}

fn updated(settles: Option<&str>, admit: Option<&str>, now: u64) -> serde_json::Value {
  let read =
    settles_of(settles).and_then(|settles| Ok((settles, admit.map(guards_of).transpose()?)));
  let (settles, admit) = match read {
    Ok(read) => read,
    Err(problem) => return json!({ "problem": problem }),
  };
  match global().with_failures(|store| admission::update(store, &settles, admit.as_ref(), now)) {
    Ok(admission) => admission.map_or_else(|| json!({}), answer),
    Err(error) => {
      // The store cannot say: this process decides alone, with the same
      // settings, until it answers again.
      let alone = admission::update(&mut *LOCAL.lock(), &settles, admit.as_ref(), now);
      let mut answer = match alone {
        Ok(Some(admission)) => answer(admission),
        _ => json!({ "allowed": true, "probe": false }),
      };
      answer["problem"] = json!(error.to_string());
      answer
    }
  }
}

/// Keeps this process's concurrency slots on `name` held.
#[napi(ts_return_type = "string | null | Promise<string | null>")]
pub fn guard_renew<'env>(
  env: &'env Env,
  name: String,
  leases: Vec<String>,
  now: f64,
) -> napi::Result<Either<Option<String>, PromiseRaw<'env, Option<String>>>> {
  let now = clock::from_js(now);
  on_store(env, move || {
    let renewed = catch_unwind(AssertUnwindSafe(|| {
      global().with_failures(|store| admission::renew(store, &name, &leases, now))
    }));
    match renewed {
      Ok(Ok(())) => None,
      Ok(Err(error)) => Some(error.to_string()),
      Err(_) => Some("internal error in a shared guard".into()),
    }
  })
}

/// The shared breakers, limits or budgets (`kind`) as JSON; throws the
/// store's coded error when it cannot say.
/// `settles` (as `guardUpdate` takes them) are recorded first, so what a
/// call did shows at once.
#[napi]
pub fn guard_status(
  env: &Env,
  kind: String,
  settles: Option<String>,
  now: f64,
) -> napi::Result<String> {
  super::boundary::boundary(env, |_| {
    let now = clock::from_js(now);
    if settles.is_some() {
      updated(settles.as_deref(), None, now);
    }
    let listed = match kind.as_str() {
      "breakers" => global()
        .with_failures(|store| admission::breakers(store, now))?
        .into_iter()
        .map(|(name, record)| {
          json!({
            "name": name,
            "state": phase_at(&record, now).name(),
            "openedAt": record.opened_at,
            "probeHeldBy": record.probe.as_ref().map(|probe| probe.holder.clone()),
            "probeSince": record.probe.as_ref().map(|probe| probe.since),
            "failures": record.outcomes.chars().filter(|o| matches!(o, 'f' | 'x')).count() as u64
              + record.buckets.iter().map(|bucket| bucket[2]).sum::<u64>(),
          })
        })
        .collect::<Vec<_>>(),
      "limits" => global()
        .with_failures(|store| admission::limits(store, now))?
        .into_iter()
        .map(|(name, record)| {
          json!({
            "name": name,
            "limits": record.limits,
            "requests": rate::in_minute(&record.requests, now),
            "tokens": rate::in_minute(&record.tokens, now),
            "concurrent": record.leases.iter().filter(|lease| lease.until > now).count(),
          })
        })
        .collect(),
      _ => global()
        .with_failures(|store| admission::budgets(store, now))?
        .into_iter()
        .map(|(key, record)| {
          let record = budget::current(Some(record.clone()), &record.limits, now);
          json!({
            "key": key,
            "tokens": record.tokens,
            "cost": record.cost,
            "limits": record.limits,
            "resetsAt": record.end,
          })
        })
        .collect(),
    };
    Ok(serde_json::Value::Array(listed).to_string())
  })
}
