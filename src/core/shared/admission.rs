//! One model's entry and exit through its shared guards, each one atomic
//! update of the records involved: the call's budget, the model's breaker
//! and its limits are read, decided on and written together, so two
//! instances can never both take the last slot or both run the probe.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::breaker::{self, BreakerOptions, BreakerRecord};
use super::budget::{self, BudgetLimits, BudgetRecord};
use super::rate::{self, Limit, LimitOptions, LimitRecord};
use super::records::{Key, Kind, Write};
use crate::core::storage::{FailureStore, StorageResult};

/// What guards one model's call (as JSON from lib/guards.js).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Guards {
  /// The model (or service): its breaker's and its limits' name.
  pub name: String,
  #[serde(default)]
  pub breaker: Option<BreakerOptions>,
  #[serde(default)]
  pub limits: Option<LimitOptions>,
  /// The call's budget: its key and limits (checked with the first model).
  #[serde(default)]
  pub budget: Option<(String, BudgetLimits)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
  /// Go ahead: as the breaker's probe or not, holding a concurrency slot
  /// or not.
  Allowed {
    probe: bool,
    lease: Option<String>,
  },
  /// The breaker is open (or its probe runs elsewhere).
  Open {
    until: Option<u64>,
  },
  Limited {
    limit: Limit,
    retry_at: Option<u64>,
  },
  /// The budget is spent until `resets_at`.
  OverBudget {
    resets_at: u64,
  },
}

/// How a call that was let through ended.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Spent {
  pub failed: bool,
  pub duration_ms: u64,
  pub probe: bool,
  pub tokens: u64,
  pub cost: f64,
}

/// This process, as the holder of probes and slots.
pub static INSTANCE: LazyLock<String> = LazyLock::new(|| {
  let random =
    std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 7u8);
  format!("{}-{:08x}", std::process::id(), random as u32)
});
static NEXT_LEASE: AtomicU64 = AtomicU64::new(1);

/// How long a concurrency slot is held without a renewal: a live process
/// renews its slots well before (`renew`), a dead one's run out.
pub const LEASE_MS: u64 = 30_000;

fn read<T: DeserializeOwned>(text: &Option<String>) -> Option<T> {
  // A damaged record is taken as none and written over.
  text
    .as_deref()
    .and_then(|text| serde_json::from_str(text).ok())
}

fn write<T: Serialize>(record: &T, expires_at: u64) -> Option<Write> {
  serde_json::to_string(record)
    .ok()
    .map(|text| Write { text, expires_at })
}

fn keys_of(guards: &Guards, budget: bool, breaker: bool, limits: bool) -> Vec<Key> {
  let mut keys = Vec::new();
  if let (true, Some((key, _))) = (budget, &guards.budget) {
    keys.push(Key::new(Kind::Budget, key));
  }
  if breaker && guards.breaker.is_some() {
    keys.push(Key::new(Kind::Breaker, &guards.name));
  }
  if limits && guards.limits.is_some() {
    keys.push(Key::new(Kind::Limit, &guards.name));
  }
  keys
}

/// The decision over what the keys of `keys_of(guards, true, true, true)`
/// hold, and what to write.
pub fn decide(
  guards: &Guards,
  held: &[Option<String>],
  now: u64,
  lease_id: &str,
) -> (Admission, Vec<Option<Write>>) {
  let mut held = held.iter();
  let mut writes = Vec::new();
  if let Some((_, limits)) = &guards.budget {
    let record = budget::current(
      read::<BudgetRecord>(held.next().unwrap_or(&None)),
      limits,
      now,
    );
    if budget::spent(&record) {
      return (
        Admission::OverBudget {
          resets_at: record.end,
        },
        Vec::new(),
      );
    }
    writes.push(None);
  }
  let mut probe = false;
  if let Some(options) = &guards.breaker {
    let record = read::<BreakerRecord>(held.next().unwrap_or(&None));
    match breaker::admit(record, options, now, &INSTANCE) {
      (breaker::Entry::Rejected { until }, _) => return (Admission::Open { until }, Vec::new()),
      (entry, taken) => {
        probe = entry == breaker::Entry::Probe;
        writes.push(taken.and_then(|record| write(&record, now + breaker::KEEP_MS)));
      }
    }
  }
  let mut lease = None;
  if let Some(options) = &guards.limits {
    let record = read::<LimitRecord>(held.next().unwrap_or(&None));
    match rate::admit(record, options, now, lease_id, LEASE_MS) {
      (rate::Entry::Limited { limit, retry_at }, _) => {
        return (Admission::Limited { limit, retry_at }, Vec::new());
      }
      (rate::Entry::Allowed { lease: taken }, record) => {
        lease = taken;
        writes.push(record.and_then(|record| write(&record, rate::expires_at(&record, now))));
      }
    }
  }
  (Admission::Allowed { probe, lease }, writes)
}

/// How a call let through ended, with what guarded it: what `update`
/// records (as JSON from lib/guards.js).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settle {
  pub guards: Guards,
  #[serde(default)]
  pub lease: Option<String>,
  #[serde(default)]
  pub failed: bool,
  #[serde(default)]
  pub duration_ms: u64,
  #[serde(default)]
  pub probe: bool,
  #[serde(default)]
  pub tokens: u64,
  #[serde(default)]
  pub cost: f64,
}

impl Settle {
  fn spent(&self) -> Spent {
    Spent {
      failed: self.failed,
      duration_ms: self.duration_ms,
      probe: self.probe,
      tokens: self.tokens,
      cost: if self.cost.is_finite() && self.cost > 0.0 {
        self.cost
      } else {
        0.0
      },
    }
  }

  /// The records it changes.
  fn keys(&self) -> Vec<Key> {
    let spent = self.spent();
    let charges = spent.tokens > 0 || spent.cost > 0.0;
    keys_of(
      &self.guards,
      charges,
      true,
      self.lease.is_some() || spent.tokens > 0,
    )
  }
}

/// What the settled calls write to the keys of `settle.keys()`.
fn settle_writes(settle: &Settle, held: &[Option<String>], now: u64) -> Vec<Option<Write>> {
  let (guards, lease, spent) = (&settle.guards, settle.lease.as_deref(), settle.spent());
  let charges = spent.tokens > 0 || spent.cost > 0.0;
  let mut held = held.iter();
  let mut writes = Vec::new();
  if let (true, Some((_, limits))) = (charges, &guards.budget) {
    let record = read::<BudgetRecord>(held.next().unwrap_or(&None));
    let record = budget::charge(record, limits, spent.tokens, spent.cost, now);
    writes.push(write(&record, record.end));
  }
  if let Some(options) = &guards.breaker {
    let record = read::<BreakerRecord>(held.next().unwrap_or(&None));
    let outcome = breaker::Outcome {
      failed: spent.failed,
      duration_ms: spent.duration_ms,
      probe: spent.probe,
    };
    let changed = breaker::settle(record, options, outcome, now, &INSTANCE);
    writes.push(changed.and_then(|record| write(&record, now + breaker::KEEP_MS)));
  }
  if guards.limits.is_some() && (lease.is_some() || spent.tokens > 0) {
    let record = read::<LimitRecord>(held.next().unwrap_or(&None));
    let record = rate::settle(record, lease, spent.tokens, now);
    writes.push(write(&record, rate::expires_at(&record, now)));
  }
  writes
}

/// The records of one update as it is decided: what each key holds, and
/// what was written to it so far.
struct Working<'a> {
  keys: &'a [Key],
  texts: Vec<Option<String>>,
  written: Vec<Option<Write>>,
}

impl Working<'_> {
  fn held(&self, keys: &[Key]) -> Vec<Option<String>> {
    keys
      .iter()
      .map(|key| self.texts[self.at(key)].clone())
      .collect()
  }

  fn at(&self, key: &Key) -> usize {
    self
      .keys
      .iter()
      .position(|k| k == key)
      .expect("every key is in the update")
  }

  fn apply(&mut self, keys: &[Key], writes: Vec<Option<Write>>) {
    for (key, write) in keys.iter().zip(writes) {
      if let Some(write) = write {
        let at = self.at(key);
        self.texts[at] = Some(write.text.clone());
        self.written[at] = Some(write);
      }
    }
  }
}

/// Records the calls `settles` (in order), then, when `admit` names a
/// model, asks whether it may be called now: all in one atomic update of
/// the records involved, so a process's outcomes travel with its next
/// call's entry. The admission, when one was asked for.
pub fn update(
  store: &mut dyn FailureStore,
  settles: &[Settle],
  admit: Option<&Guards>,
  now: u64,
) -> StorageResult<Option<Admission>> {
  let mut keys: Vec<Key> = Vec::new();
  let each: Vec<Vec<Key>> = settles.iter().map(Settle::keys).collect();
  let admitted = admit.map(|guards| keys_of(guards, true, true, true));
  for key in each.iter().flatten().chain(admitted.iter().flatten()) {
    if !keys.contains(key) {
      keys.push(key.clone());
    }
  }
  let lease_id = format!(
    "{}:{}",
    *INSTANCE,
    NEXT_LEASE.fetch_add(1, Ordering::Relaxed)
  );
  let allowed = Admission::Allowed {
    probe: false,
    lease: None,
  };
  let mut answer = admit.map(|_| allowed.clone());
  if keys.is_empty() {
    return Ok(answer);
  }
  store.update_records(
    &keys,
    &mut |held| {
      let mut working = Working {
        keys: &keys,
        texts: held.to_vec(),
        written: vec![None; keys.len()],
      };
      for (settle, keys) in settles.iter().zip(&each) {
        let writes = settle_writes(settle, &working.held(keys), now);
        working.apply(keys, writes);
      }
      if let (Some(guards), Some(keys)) = (admit, &admitted) {
        let (admission, writes) = decide(guards, &working.held(keys), now, &lease_id);
        if matches!(admission, Admission::Allowed { .. }) {
          working.apply(keys, writes);
        }
        answer = Some(admission);
      }
      working.written
    },
    now,
  )?;
  Ok(answer)
}

/// Asks the store whether the model of `guards` may be called now.
pub fn admit(store: &mut dyn FailureStore, guards: &Guards, now: u64) -> StorageResult<Admission> {
  let allowed = Admission::Allowed {
    probe: false,
    lease: None,
  };
  Ok(update(store, &[], Some(guards), now)?.unwrap_or(allowed))
}

/// Records how a call let through by `admit` ended: the breaker's window
/// (or its probe), the slot released, the tokens and cost charged.
pub fn settle(
  store: &mut dyn FailureStore,
  guards: &Guards,
  lease: Option<&str>,
  spent: Spent,
  now: u64,
) -> StorageResult<()> {
  let settle = Settle {
    guards: guards.clone(),
    lease: lease.map(str::to_owned),
    failed: spent.failed,
    duration_ms: spent.duration_ms,
    probe: spent.probe,
    tokens: spent.tokens,
    cost: spent.cost,
  };
  update(store, &[settle], None, now).map(drop)
}

/// Keeps this process's slots on `name` held (their calls still run).
pub fn renew(
  store: &mut dyn FailureStore,
  name: &str,
  leases: &[String],
  now: u64,
) -> StorageResult<()> {
  let until = now + LEASE_MS;
  store.update_records(
    &[Key::new(Kind::Limit, name)],
    &mut |held| {
      let record = read::<LimitRecord>(&held[0]);
      vec![rate::renew(record, leases, until)
        .and_then(|record| write(&record, rate::expires_at(&record, now)))]
    },
    now,
  )
}

/// Every breaker held, by name.
pub fn breakers(
  store: &mut dyn FailureStore,
  now: u64,
) -> StorageResult<Vec<(String, BreakerRecord)>> {
  listed(store, Kind::Breaker, now)
}

pub fn limits(store: &mut dyn FailureStore, now: u64) -> StorageResult<Vec<(String, LimitRecord)>> {
  listed(store, Kind::Limit, now)
}

pub fn budgets(
  store: &mut dyn FailureStore,
  now: u64,
) -> StorageResult<Vec<(String, BudgetRecord)>> {
  listed(store, Kind::Budget, now)
}

fn listed<T: DeserializeOwned>(
  store: &mut dyn FailureStore,
  kind: Kind,
  now: u64,
) -> StorageResult<Vec<(String, T)>> {
  Ok(
    store
      .records(kind, now)?
      .into_iter()
      .filter_map(|(name, text)| Some((name, serde_json::from_str(&text).ok()?)))
      .collect(),
  )
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::failures::{FailureConfig, FailureWindow};
  use crate::core::shared::breaker::Window;
  use crate::core::shared::budget::Per;

  fn guards() -> Guards {
    Guards {
      name: "gpt".into(),
      breaker: Some(BreakerOptions {
        window: Window::Count,
        size: 2,
        minimum_calls: 2,
        failure_ratio: 1.0,
        half_open_after_ms: 100,
        ..BreakerOptions::default()
      }),
      limits: Some(LimitOptions {
        requests_per_minute: Some(10),
        tokens_per_minute: None,
        concurrency: Some(1),
      }),
      budget: Some((
        "user:1".into(),
        BudgetLimits {
          tokens: Some(50),
          cost: None,
          per: Per::Hour,
        },
      )),
    }
  }

  #[test]
  fn entry_and_exit_through_a_store() {
    let mut store = FailureWindow::new(FailureConfig::default());
    let g = guards();
    let Admission::Allowed {
      probe: false,
      lease: Some(lease),
    } = admit(&mut store, &g, 0).unwrap()
    else {
      panic!("allowed with a slot")
    };
    assert!(matches!(
      admit(&mut store, &g, 1).unwrap(),
      Admission::Limited {
        limit: Limit::Concurrency,
        ..
      }
    ));
    settle(
      &mut store,
      &g,
      Some(&lease),
      Spent {
        failed: true,
        tokens: 60,
        ..Spent::default()
      },
      2,
    )
    .unwrap();
    assert_eq!(
      admit(&mut store, &g, 3).unwrap(),
      Admission::OverBudget {
        resets_at: 3_600_000
      }
    );
    let g = Guards { budget: None, ..g };
    let Admission::Allowed { lease, .. } = admit(&mut store, &g, 4).unwrap() else {
      panic!()
    };
    settle(
      &mut store,
      &g,
      lease.as_deref(),
      Spent {
        failed: true,
        ..Spent::default()
      },
      5,
    )
    .unwrap();
    assert_eq!(
      admit(&mut store, &g, 6).unwrap(),
      Admission::Open { until: Some(105) }
    );
    assert!(matches!(
      admit(&mut store, &g, 105).unwrap(),
      Admission::Allowed { probe: true, .. }
    ));
    assert_eq!(
      admit(&mut store, &g, 106).unwrap(),
      Admission::Open { until: None }
    );
    let listed = breakers(&mut store, 106).unwrap();
    assert_eq!(listed[0].1.probe.as_ref().unwrap().holder, *INSTANCE);
    assert_eq!(budgets(&mut store, 106).unwrap()[0].1.tokens, 60);
    assert_eq!(limits(&mut store, 106).unwrap()[0].0, "gpt");
  }

  #[test]
  fn a_damaged_record_is_taken_as_none() {
    let g = guards();
    let held = [Some("{not json".to_string()), Some("[]".to_string()), None];
    assert!(matches!(
      decide(&g, &held, 0, "l").0,
      Admission::Allowed { .. }
    ));
  }
}
