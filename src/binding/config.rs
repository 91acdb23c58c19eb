//! Bounds and defaults: the constructor options of each class and the
//! sections of `configure`, read by the same functions.

use napi::Env;
use napi_derive::napi;

use crate::core::cache::CacheConfig;
use crate::core::failures::FailureConfig;
use crate::core::queue::QueueConfig;
use crate::core::stores::global;

use super::args;
use super::errors::{boundary, JsResult};
use super::js::{Js, Raw};

fn count(js: Js, value: Raw, path: &str, min: u64) -> JsResult<u64> {
  Ok(args::optional_integer(js, value, path, min, args::MAX_SAFE_INTEGER)?.unwrap_or(min))
}

pub fn cache_config(js: Js, value: Raw, name: &str, base: CacheConfig) -> JsResult<CacheConfig> {
  let mut config = base;
  let known = ["maxEntries", "maxBytes", "defaultTtlMs", "staleIfErrorMs"];
  args::options(js, value, name, &known, |key, field, path| {
    match key {
      "maxEntries" => config.max_entries = count(js, field, path, 1)? as usize,
      "maxBytes" => config.max_bytes = count(js, field, path, 1)? as usize,
      "defaultTtlMs" => config.default_ttl_ms = count(js, field, path, 1)?,
      _ => config.stale_if_error_ms = count(js, field, path, 0)?,
    }
    Ok(())
  })?;
  Ok(config)
}

pub fn queue_config(js: Js, value: Raw, name: &str, base: QueueConfig) -> JsResult<QueueConfig> {
  let mut config = base;
  let known = ["maxSize", "leaseMs", "maxPayloadBytes"];
  args::options(js, value, name, &known, |key, field, path| {
    match key {
      "maxSize" => config.max_size = count(js, field, path, 1)? as usize,
      "leaseMs" => config.lease_ms = count(js, field, path, 1)?,
      _ => config.max_payload_bytes = count(js, field, path, 1)? as usize,
    }
    Ok(())
  })?;
  Ok(config)
}

pub fn failure_config(
  js: Js,
  value: Raw,
  name: &str,
  base: FailureConfig,
) -> JsResult<FailureConfig> {
  let mut config = base;
  let known = ["windowMs", "maxPerService"];
  args::options(js, value, name, &known, |key, field, path| {
    match key {
      "windowMs" => config.window_ms = count(js, field, path, 1)?,
      _ => config.max_per_service = count(js, field, path, 1)? as usize,
    }
    Ok(())
  })?;
  Ok(config)
}

/// Sets the bounds and defaults of the exported singletons. Every section
/// is checked before any is applied, so a call that throws changes nothing.
#[napi]
pub fn configure(env: Env, options: Raw) -> napi::Result<Raw> {
  boundary(env, |js| {
    args::object(js, options, "options")?;
    let stores = global();
    let (mut cache, mut queue, mut failures) = (None, None, None);
    let sections = ["cache", "queue", "failures"];
    args::options(js, options, "options", &sections, |key, field, path| {
      match key {
        "cache" => cache = Some(cache_config(js, field, path, stores.cache.lock().config())?),
        "queue" => queue = Some(queue_config(js, field, path, stores.queue.lock().config())?),
        _ => {
          failures = Some(failure_config(
            js,
            field,
            path,
            stores.failures.lock().config(),
          )?)
        }
      }
      Ok(())
    })?;
    let now = js.now_ms();
    if let Some(config) = cache {
      stores.cache.lock().set_config(config, now);
    }
    if let Some(config) = queue {
      stores.queue.lock().set_config(config, now);
    }
    if let Some(config) = failures {
      stores.failures.lock().set_config(config);
    }
    Ok(js.undefined())
  })
}
