//! `getStorageStatus()`: where the singletons keep their state and whether
//! it answers, as JSON for lib/status.js.

use std::time::{Duration, Instant};

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

use super::boundary::boundary;
use super::errors::JsResult;
use super::raw::Js;
use crate::core::singletons::global;
use crate::core::storage::redis::{missing_jobs, waiting_anywhere, RedisLink};
use crate::core::storage::Location;

/// `{ backend, location, reachable, lastError, lastErrorAt, localJobs,
/// missingJobs, setAsideWrites, evictionPolicy, localCopy, redisMode }`. On
/// Redis, asks the
/// server (a round trip or two, each within `redisTimeoutMs`).
#[napi]
pub fn storage_status(env: &Env) -> napi::Result<String> {
  boundary(env, |_js| {
    let stores = global();
    let mut status = serde_json::Map::new();
    let (backend, location) = match stores.queue.lock().location() {
      Location::Memory { .. } => ("memory", None),
      Location::File(path) => ("sqlite", Some(path.display().to_string())),
      Location::Redis(place) => ("redis", Some(place.to_string())),
    };
    status.insert("backend".into(), backend.into());
    status.insert("location".into(), location.into());
    let mut fields = serde_json::json!({
      "reachable": true,
      "lastError": null,
      "lastErrorAt": null,
      "localJobs": 0,
      "missingJobs": 0,
      "setAsideWrites": 0,
      "evictionPolicy": null,
      "localCopy": null,
      "redisMode": null,
    });
    if let Some(link) = stores.redis() {
      let reachable = link.ping().is_ok();
      // Counted by every instance on the server; unknown while it is away.
      let missing = reachable.then(|| missing_jobs(&link).ok()).flatten();
      let seen = link.status();
      fields = serde_json::json!({
        "reachable": reachable,
        "lastError": seen.last_error,
        "lastErrorAt": seen.last_error_at,
        "localJobs": link.outbox().jobs(),
        "missingJobs": missing,
        "setAsideWrites": link.outbox().refused(),
        "evictionPolicy": if reachable { link.eviction_policy() } else { seen.eviction_policy },
        "localCopy": local_copy(&link),
        "redisMode": link.mode().map(|mode| mode.name()),
      });
    }
    if let serde_json::Value::Object(fields) = fields {
      status.extend(fields);
    }
    Ok(serde_json::Value::Object(status).to_string())
  })
}

/// `{ live, entries, bytes }` of the copy the synchronous reads use.
fn local_copy(link: &RedisLink) -> serde_json::Value {
  let copy = link.local_copy_stats();
  serde_json::json!({ "live": copy.live, "entries": copy.entries, "bytes": copy.bytes })
}

/// Writes accepted while a Redis server did not answer that still wait to
/// be written, on every store of the process.
fn pending_writes() -> u32 {
  u32::try_from(waiting_anywhere()).unwrap_or(u32::MAX)
}

/// Resolves `true` once nothing waits for a Redis server anywhere in the
/// process, or `false` after `within_ms`; the promise keeps Node.js alive
/// meanwhile (a process about to end gives what it accepted a last chance).
fn writes_settled(env: &Env, within_ms: f64) -> napi::Result<PromiseRaw<'_, bool>> {
  let within = Duration::from_millis(within_ms.clamp(0.0, 60_000.0) as u64);
  let began = Instant::now();
  env.spawn_future(async move {
    loop {
      if waiting_anywhere() == 0 {
        return Ok(true);
      }
      if began.elapsed() >= within {
        return Ok(false);
      }
      tokio::time::sleep(Duration::from_millis(20)).await;
    }
  })
}

/// How long a process about to end waits for its unwritten Redis writes.
const EXIT_WAIT_MS: f64 = 5_000.0;

/// lib/exit.js's `beforeExit` listener. A process that ends on its own
/// while writes it accepted still wait for a Redis server that did not
/// answer gives them one last chance, once per environment: it waits up to
/// `EXIT_WAIT_MS` for them (`writes_settled`), then says with the
/// environment's own `process.emitWarning` how many are lost. A function of
/// the addon, not of the `vm` context that installed it, so that the
/// listener (held by `process` for good) keeps no context alive.
#[napi]
pub fn before_exit(env: &Env) -> napi::Result<()> {
  let wait = boundary(env, |js| {
    let held = js.held()?;
    let wait = !held.exit_waited.get() && waiting_anywhere() > 0;
    held.exit_waited.set(held.exit_waited.get() || wait);
    Ok(wait)
  })?;
  if !wait {
    return Ok(());
  }
  writes_settled(env, EXIT_WAIT_MS)?.then(|settled| {
    if !settled.value {
      boundary(&settled.env, warn_unsent)?;
    }
    Ok(())
  })?;
  Ok(())
}

fn warn_unsent(js: Js<'_>) -> JsResult<()> {
  let message = format!(
    "fallback-mechanisms: {} write(s) accepted while Redis did not answer were not written before the process ended (waited {EXIT_WAIT_MS} ms); give storagePath with redisUrl to keep them for the next process",
    pending_writes()
  );
  let process = js.get(js.global()?, c"process")?;
  let emit_warning = js.get(process, c"emitWarning")?;
  let args = [
    js.string(&message)?,
    js.string("Warning")?,
    js.string("REDIS_WRITES_UNSENT")?,
  ];
  // A throwing emitWarning is the process's own business: nothing to add.
  let _ = js.call_on(process, emit_warning, &args)?;
  Ok(())
}
