//! `getStorageStatus()`: where the singletons keep their state and whether
//! it answers, as JSON for lib/status.js.

use std::time::{Duration, Instant};

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

use super::boundary::boundary;
use crate::core::singletons::global;
use crate::core::storage::redis::{missing_jobs, waiting_anywhere};
use crate::core::storage::Location;

/// `{ backend, location, reachable, lastError, lastErrorAt, localJobs,
/// missingJobs, setAsideWrites, evictionPolicy }`. On Redis, asks the
/// server (a round trip or two, each within `redisTimeoutMs`).
#[napi]
pub fn storage_status(env: Env) -> napi::Result<String> {
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
      });
    }
    if let serde_json::Value::Object(fields) = fields {
      status.extend(fields);
    }
    Ok(serde_json::Value::Object(status).to_string())
  })
}

/// Writes accepted while a Redis server did not answer that still wait to
/// be written, on every store of the process.
#[napi]
pub fn pending_writes() -> u32 {
  u32::try_from(waiting_anywhere()).unwrap_or(u32::MAX)
}

/// Resolves `true` once nothing waits for a Redis server anywhere in the
/// process, or `false` after `within_ms`; the promise keeps Node.js alive
/// meanwhile (a process about to end gives what it accepted a last chance).
#[napi]
pub fn writes_settled(env: &Env, within_ms: f64) -> napi::Result<PromiseRaw<'_, bool>> {
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
