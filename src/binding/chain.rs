//! The options of a call that may move along a chain of models
//! (`alternatives`) and stream its answer, checked once before the
//! operation runs (`lib/chain.js` drives the chain). Only static misuse is
//! refused here, as the contract asks of `executeWithFallback` (§8). And
//! the chain's two decisions, made by `crate::core::chain`: whether an
//! alternative with `on` is tried, and what a chain in which no model
//! failed rejects with.

use napi::Env;
use napi_derive::napi;

use crate::core::chain::{self, CoolingModel, PassedOver, SpentBudget};
use crate::core::failure_class::FailureClass;
use crate::core::limits;

use super::args;
use super::boundary::boundary;
use super::errors::JsResult;
use super::raw::{Js, Kind, Raw};

/// How long a model is benched when it is throttled without saying for
/// how long (README, "Cooldowns").
const DEFAULT_COOLDOWN_MS: u64 = 30_000;
/// The longest a model is benched, whatever its Retry-After asks.
const DEFAULT_MAX_COOLDOWN_MS: u64 = 300_000;
/// More alternatives than any real chain of models has: a bound on the
/// work one call can ask for, not a limit anyone should meet.
const MAX_ALTERNATIVES: u32 = 64;
/// More entries than an alternative's `on` needs (there are 8 classes).
const MAX_ON_CLASSES: u32 = 64;

/// The chain's settings, defaults applied.
#[napi(object)]
pub struct ChainSettings {
  pub cooldown_ms: f64,
  pub max_cooldown_ms: f64,
}

/// The bounds `checkChain` holds a chain to, for `lib/chain-options.js`'s
/// fast check (written here only, so the two cannot drift apart).
#[napi(object)]
pub struct ChainBounds {
  pub max_alternatives: u32,
  pub max_on_classes: u32,
  /// The longest name in UTF-16 units that is surely within the byte
  /// bound of an identifier (a unit is at most 3 bytes of UTF-8).
  pub max_plain_name_units: u32,
}

#[napi]
pub fn chain_bounds() -> ChainBounds {
  ChainBounds {
    max_alternatives: MAX_ALTERNATIVES,
    max_on_classes: MAX_ON_CLASSES,
    max_plain_name_units: (limits::MAX_ID_BYTES / 3) as u32,
  }
}

/// Checks `alternatives` (an array of `{ name, operation, on? }`, names
/// non-empty, `on` an array of failure class names), `alternativesOn` (a function), `cooldownMs`,
/// `maxCooldownMs` (whole milliseconds) and `stream` (a boolean).
#[napi]
pub fn check_chain(
  env: &Env,
  alternatives: Raw<'_>,
  alternatives_on: Raw<'_>,
  cooldown_ms: Raw<'_>,
  max_cooldown_ms: Raw<'_>,
  stream: Raw<'_>,
) -> napi::Result<ChainSettings> {
  boundary(env, |js| {
    if js.kind(alternatives) != Kind::Undefined {
      check_alternatives(js, alternatives)?;
    }
    if js.kind(alternatives_on) != Kind::Undefined {
      args::function(js, alternatives_on, "options.alternativesOn")?;
    }
    let ms = |value, name| args::optional_integer(js, value, name, 0, args::MAX_SAFE_INTEGER);
    let cooldown = ms(cooldown_ms, "options.cooldownMs")?.unwrap_or(DEFAULT_COOLDOWN_MS);
    let max_cooldown =
      ms(max_cooldown_ms, "options.maxCooldownMs")?.unwrap_or(DEFAULT_MAX_COOLDOWN_MS);
    args::optional_bool(js, stream, "options.stream")?;
    Ok(ChainSettings {
      cooldown_ms: cooldown as f64,
      max_cooldown_ms: max_cooldown as f64,
    })
  })
}

fn check_alternatives(js: Js<'_>, alternatives: Raw<'_>) -> JsResult<()> {
  if !js.is_array(alternatives) {
    return Err(args::type_error(
      js,
      "options.alternatives",
      "an instance of Array",
      alternatives,
    ));
  }
  let length = js.read_number(js.get(alternatives, c"length")?) as u32;
  if length > MAX_ALTERNATIVES {
    let expected = format!("an array of at most {MAX_ALTERNATIVES} alternatives");
    return Err(args::range_error(
      js,
      "options.alternatives.length",
      &expected,
      js.get(alternatives, c"length")?,
    ));
  }
  for index in 0..length {
    let path = format!("options.alternatives[{index}]");
    let alternative = args::object(js, js.element(alternatives, index)?, &path)?;
    let name_path = format!("{path}.name");
    let name = js.get(alternative, c"name")?;
    args::identifier(js, name, &name_path)?;
    if js.string_length(name) == 0 {
      return Err(args::value_error(
        js,
        &name_path,
        "a non-empty string",
        name,
      ));
    }
    let operation = js.get(alternative, c"operation")?;
    args::function(js, operation, &format!("{path}.operation"))?;
    let on = js.get(alternative, c"on")?;
    if js.kind(on) != Kind::Undefined {
      check_on(js, on, &format!("{path}.on"))?;
    }
  }
  Ok(())
}

/// An alternative's `on`: an array of failure class names (README,
/// "Failure classes"), the classes it answers.
fn check_on(js: Js<'_>, on: Raw<'_>, path: &str) -> JsResult<()> {
  if !js.is_array(on) {
    return Err(args::type_error(js, path, "an instance of Array", on));
  }
  let length = js.get(on, c"length")?;
  if js.read_number(length) > f64::from(MAX_ON_CLASSES) {
    let expected = format!("an array of at most {MAX_ON_CLASSES} failure classes");
    return Err(args::range_error(
      js,
      &format!("{path}.length"),
      &expected,
      length,
    ));
  }
  for index in 0..js.read_number(length) as u32 {
    let class = js.element(on, index)?;
    args::one_of(
      js,
      class,
      &format!("{path}[{index}]"),
      &FailureClass::ALL,
      |class| class.as_str(),
    )?;
  }
  Ok(())
}

/// Whether an alternative that answers the classes `on` (checked by
/// `checkChain`) is tried after a failure of class `after` (`undefined`:
/// no model failed yet).
#[napi]
pub fn answers_after(env: &Env, on: Vec<String>, after: Option<String>) -> napi::Result<bool> {
  boundary(env, |_| {
    let classes: Vec<FailureClass> = on
      .iter()
      .filter_map(|name| FailureClass::from_name(name))
      .collect();
    let after = after
      .as_deref()
      .map(|name| FailureClass::from_name(name).unwrap_or(FailureClass::Other));
    Ok(chain::answers(&classes, after))
  })
}

/// The budget that stopped a chain, as `lib/guards.js` reports it.
#[napi(object)]
pub struct ChainBudget {
  pub key: String,
  pub resets_at: f64,
}

/// A model benched by a cooldown, and for how many ms more.
#[napi(object)]
pub struct ChainCooling {
  pub name: String,
  pub remaining_ms: f64,
}

/// Why each model of a chain in which none failed was passed over.
#[napi(object)]
pub struct ChainPassedOver {
  pub over_budget: Option<ChainBudget>,
  pub limited: Option<Vec<String>>,
  pub opened: Option<Vec<String>>,
  pub cooling: Option<Vec<ChainCooling>>,
}

#[napi(object)]
pub struct ChainRefusal {
  pub code: String,
  pub message: String,
}

/// What a chain in which no model failed rejects with.
#[napi]
pub fn chain_refusal(
  env: &Env,
  operation_name: String,
  passed: ChainPassedOver,
) -> napi::Result<ChainRefusal> {
  boundary(env, |_| {
    let passed = PassedOver {
      over_budget: passed.over_budget.map(|budget| SpentBudget {
        key: budget.key,
        resets_at_ms: budget.resets_at.max(0.0) as u64,
      }),
      limited: passed.limited.unwrap_or_default(),
      opened: passed.opened.unwrap_or_default(),
      cooling: passed
        .cooling
        .unwrap_or_default()
        .into_iter()
        .map(|model| CoolingModel {
          name: model.name,
          remaining_ms: model.remaining_ms,
        })
        .collect(),
    };
    let refusal = passed.refusal(&operation_name);
    Ok(ChainRefusal {
      code: refusal.code.to_string(),
      message: refusal.message,
    })
  })
}
