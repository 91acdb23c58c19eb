//! Cooldowns' native half (README, "Cooldowns"): `throttleMs` reads what a
//! failed call's error says and the core decides (`core::cooldown`);
//! `benchModel`, `cooldownsOf` and `cooldownStatus` work on the singletons'
//! failure store, where the cooldowns live next to the history.

use napi::bindgen_prelude::{Either, PromiseRaw};
use napi::Env;
use napi_derive::napi;

use crate::core::clock;
use crate::core::cooldown::{self, Cooldown};
use crate::core::limits;
use crate::core::singletons::global;

use super::args;
use super::boundary::boundary;
use super::error_facts::{property, status_of};
use super::errors::{Fault, JsResult};
use super::names::Prop;
use super::raw::{Js, Kind, Raw, Reference};
use super::retry::asked_wait_ms;
use super::store_call::on_store;

/// How long to bench the model whose call failed with `error`, in ms, or
/// `null`: the wait it asks for (`retryAfterMs`, `retry-after-ms`,
/// `Retry-After`, read as retries read them) when over 0, else `defaultMs`
/// for HTTP 429, 503 or 529; capped at `maxMs`. An error with neither is
/// looked into one level: `error.lastError` (the AI SDK's `RetryError`),
/// then `error.cause`. Never throws for any `error`: what cannot be read
/// is not a throttle. `defaultMs` or `maxMs` of 0: never bench by default.
#[napi(ts_args_type = "error: unknown, defaultMs: number, maxMs: number")]
pub fn throttle_ms(
  env: &Env,
  error: Raw<'_>,
  default_ms: Raw<'_>,
  max_ms: Raw<'_>,
) -> napi::Result<Option<f64>> {
  boundary(env, |js| {
    let default_ms = args::ms(js, default_ms, "defaultMs")?;
    let max_ms = args::ms(js, max_ms, "maxMs")?;
    let now = js.now_ms();
    let read = |error: Raw<'_>| (status_of(js, error), asked_wait_ms(js, error, now));
    let (mut status, mut asked) = read(error);
    if status.is_none() && asked == 0 {
      for inner in [Prop::LastError, Prop::Cause] {
        if let Some(inner) = property(js, error, inner) {
          (status, asked) = read(inner);
          if status.is_some() || asked > 0 {
            break;
          }
        }
      }
    }
    Ok(cooldown::bench_ms(status, asked, default_ms, max_ms).map(|ms| ms as f64))
  })
}

/// Benches `name` on the singletons' failure store until `now + ms` (a
/// running cooldown is never shortened). `null` when stored (or nothing
/// to store: `ms` 0); otherwise why not (the store is down, the name is
/// too long), never thrown. A promise of that on Redis.
#[napi(
  ts_args_type = "name: string, ms: number, reason: string, now: number",
  ts_return_type = "string | null | Promise<string | null>"
)]
pub fn bench_model<'env>(
  env: &'env Env,
  name: Raw<'_>,
  ms: Raw<'_>,
  reason: Raw<'_>,
  now: Raw<'_>,
) -> napi::Result<Either<Option<String>, PromiseRaw<'env, Option<String>>>> {
  let (name, ms, reason, now) = boundary(env, |js| {
    let name = args::string(js, name, "name")?;
    let ms = args::ms(js, ms, "ms")?;
    let reason = args::string(js, reason, "reason")?;
    Ok((name, ms, reason, args::ms(js, now, "now")?))
  })?;
  if let Some(problem) = limits::id_too_long("The model's name", &name) {
    return Ok(Either::A(Some(problem)));
  }
  if ms == 0 {
    return Ok(Either::A(None));
  }
  let until = now.saturating_add(ms);
  on_store(env, move || {
    let benched = global().with_failures(|store| store.bench(&name, until, &reason, now));
    benched.err().map(|error| error.to_string())
  })
}

/// What `cooldownsOf` gives: the ms left per name, or why the store could
/// not say.
type LeftOrProblem = Either<Vec<Option<f64>>, String>;

/// For each of `names`, the ms left of its cooldown at `now`, or `null`;
/// one store round trip for the list. `null` instead of the list when the
/// store is in this process and no cooldown runs (the common case, answered
/// without reading the names). A string when the store failed. A promise
/// of that on Redis.
#[napi(
  ts_args_type = "names: string[], now: number",
  ts_return_type = "Array<number | null> | null | string | Promise<Array<number | null> | string>"
)]
pub fn cooldowns_of<'env>(
  env: &'env Env,
  names: Raw<'_>,
  now: f64,
) -> napi::Result<Option<Either<LeftOrProblem, PromiseRaw<'env, LeftOrProblem>>>> {
  let at = clock::from_js(now);
  if global().with_failures_here(|store| store.quiet_from() <= at) == Some(true) {
    return Ok(None);
  }
  let (names, now) = boundary(env, |js| {
    if !js.is_array(names) {
      return Err(args::type_error(js, "names", "an instance of Array", names));
    }
    let length = js.read_number(js.get(names, c"length")?) as u32;
    let mut read = Vec::with_capacity(length as usize);
    for i in 0..length {
      read.push(args::string(
        js,
        js.element(names, i)?,
        &format!("names[{i}]"),
      )?);
    }
    Ok((read, at))
  })?;
  on_store(env, move || {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    match global().with_failures(|store| store.cooldowns_of(&names, now)) {
      Ok(left) => Either::A(left.into_iter().map(|ms| ms.map(|ms| ms as f64)).collect()),
      Err(error) => Either::B(error.to_string()),
    }
  })
  .map(Some)
}

/// The second from which no cooldown runs, as far as the failure store
/// knows without a look-up (`core::quiet`), in `slot[0]` of one
/// `Uint32Array` over a `SharedArrayBuffer` per environment: a chain reads
/// it and calls `cooldownsOf` only while a cooldown may run. Made on the
/// first call from the environment's own global and watched from then
/// until the environment goes; every later call, from any `vm` context
/// that loaded the package, gets the same array, so no context's value is
/// ever held. `0xFFFFFFFF` (always ask) for a store that is not in this
/// process, and in a plain `Uint32Array` when there is no usable
/// `SharedArrayBuffer` (lib/chain.js makes one when this throws).
#[napi(ts_return_type = "Uint32Array")]
pub fn cooldown_slot<'env>(env: &'env Env) -> napi::Result<Raw<'env>> {
  boundary(env, |js| {
    let held = js.held()?;
    if let Some(slot) = held.cooldown_slot.get() {
      return js.value_of(*slot);
    }
    let (kept, slot) = match watched_slot(js, env)? {
      Some(watched) => watched,
      None => always_ask(js)?,
    };
    held.cooldown_slot.set(kept).ok();
    Ok(slot)
  })
}

/// A `Uint32Array` over a new `SharedArrayBuffer` of this environment's
/// realm, kept and watched; `None` when that cannot be made.
fn watched_slot<'env>(js: Js<'env>, env: &'env Env) -> JsResult<Option<(Reference, Raw<'env>)>> {
  let realm = js.global()?;
  let shared = js.get(realm, c"SharedArrayBuffer")?;
  let uint32 = js.get(realm, c"Uint32Array")?;
  if js.kind(shared) != Kind::Function || js.kind(uint32) != Kind::Function {
    return Ok(None);
  }
  let Ok(buffer) = js.construct(shared, &[js.number(4.0)?])? else {
    return Ok(None);
  };
  let Ok(array) = js.construct(uint32, &[buffer])? else {
    return Ok(None);
  };
  let Some((kept, cell)) = js.shared_u32(array)? else {
    return Ok(None);
  };
  let id = global()
    .quiet
    .watch(Box::new(move |from| cell.store(quiet_second(from))));
  env
    .add_env_cleanup_hook(id, |id| global().quiet.unwatch(id))
    .map_err(Fault::internal)?;
  Ok(Some((kept, array)))
}

/// `new Uint32Array([0xFFFFFFFF])`, kept: chains always ask the store.
fn always_ask<'env>(js: Js<'env>) -> JsResult<(Reference, Raw<'env>)> {
  let uint32 = js.get(js.global()?, c"Uint32Array")?;
  let array = match js.construct(uint32, &[js.number(1.0)?])? {
    Ok(array) => array,
    Err(thrown) => {
      js.throw(thrown);
      return Err(Fault::Pending);
    }
  };
  js.set_element(array, 0, js.number(f64::from(u32::MAX))?)?;
  Ok((js.keep(array)?, array))
}

/// `quiet_from` (ms) as the whole second at or after it; `u32::MAX` for
/// never (and for a time past what a u32 of seconds holds, in 2106).
fn quiet_second(quiet_from: u64) -> u32 {
  u32::try_from(quiet_from.div_ceil(1000)).unwrap_or(u32::MAX)
}

/// The cooldowns running at `now`, ending soonest first, as JSON:
/// `[{ name, since, until, reason }]` (ms since the epoch). A store that
/// fails throws its coded error, as the other status calls do.
#[napi(ts_args_type = "now: number")]
pub fn cooldown_status(env: &Env, now: Raw<'_>) -> napi::Result<String> {
  boundary(env, |js| {
    let now = args::ms(js, now, "now")?;
    let cooldowns = global().with_failures(|store| store.cooldowns(now))?;
    Ok(serde_json::Value::Array(cooldowns.iter().map(json).collect()).to_string())
  })
}

fn json(cooldown: &Cooldown) -> serde_json::Value {
  serde_json::json!({
    "name": &*cooldown.name,
    "since": cooldown.since,
    "until": cooldown.until,
    "reason": cooldown.reason,
  })
}
