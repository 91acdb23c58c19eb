//! `getStorageStatus()`: where the singletons keep their state and whether
//! it answers, as JSON for lib/status.js.

use napi::Env;
use napi_derive::napi;

use super::boundary::boundary;
use crate::core::singletons::global;
use crate::core::storage::Location;

/// `{ backend, location, reachable, lastError, lastErrorAt, localJobs }`.
/// On Redis, asks the server (one round trip, within `redisTimeoutMs`).
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
    let (reachable, error, at, local_jobs) = match stores.redis() {
      Some(link) => {
        let reachable = link.ping().is_ok();
        let seen = link.status();
        (
          reachable,
          seen.last_error,
          seen.last_error_at,
          link.outbox().jobs(),
        )
      }
      None => (true, None, None, 0),
    };
    status.insert("reachable".into(), reachable.into());
    status.insert("lastError".into(), error.into());
    status.insert("lastErrorAt".into(), at.into());
    status.insert("localJobs".into(), local_jobs.into());
    Ok(serde_json::Value::Object(status).to_string())
  })
}
