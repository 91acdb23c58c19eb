//! `AIResponseCache`: the JavaScript class over the core response cache.

use napi::Env;
use napi_derive::napi;

use crate::core::cache::{CacheConfig, EntryText};
use crate::core::singletons::{global, shared, SharedCache};
use crate::core::storage::open_cache;

use super::args;
use super::config::{cache_config, StorageChoice};
use super::env::Glue;
use super::errors::{boundary, Fault, JsResult};
use super::js::{Js, Raw};
use super::json;

/// A cache of AI responses keyed by the exact (prompt, modelId) pair, with a
/// TTL per entry and an LRU bound on entries and bytes. Responses are stored
/// as JSON; every `get` returns a fresh copy.
#[napi(js_name = "AIResponseCache")]
pub struct JsAiResponseCache {
  inner: SharedCache,
}

fn key(js: Js, prompt: Raw, model_id: Raw) -> JsResult<(String, String)> {
  Ok((
    args::string(js, prompt, "prompt")?,
    args::string(js, model_id, "modelId")?,
  ))
}

#[napi]
impl JsAiResponseCache {
  /// An isolated cache with its own bounds (defaults: 10,000 entries,
  /// 256 MiB, 24 h TTL, no stale-if-error).
  #[napi(constructor)]
  pub fn new(env: Env, options: Raw) -> napi::Result<Self> {
    boundary(env, |js| {
      let mut storage = StorageChoice::default();
      let config = cache_config(
        js,
        options,
        "options",
        CacheConfig::default(),
        Some(&mut storage),
      )?;
      Ok(Self {
        inner: shared(open_cache(storage.backend(), config)?),
      })
    })
  }

  /// Stores `response` (as JSON) for `ttl` ms; `undefined` or `0` mean the
  /// default TTL.
  #[napi]
  pub fn set(
    &self,
    env: Env,
    prompt: Raw,
    response: Raw,
    model_id: Raw,
    ttl: Raw,
  ) -> napi::Result<Raw> {
    boundary(env, |js| {
      let (prompt, model_id) = key(js, prompt, model_id)?;
      let ttl = args::optional_ms(js, ttl, "ttl")?;
      let response = json::stringify_required(js, response, "response")?;
      self
        .inner
        .lock()
        .set_text(
          EntryText::new(&prompt, &response),
          &model_id,
          ttl,
          js.now_ms(),
        )
        .map_err(Fault::from)?;
      Ok(js.undefined())
    })
  }

  /// The live entry for this exact pair, or `null`.
  #[napi]
  pub fn get(&self, env: Env, prompt: Raw, model_id: Raw) -> napi::Result<Raw> {
    boundary(env, |js| {
      let (prompt_text, model_text) = key(js, prompt, model_id)?;
      let hit = self
        .inner
        .lock()
        .get(&prompt_text, &model_text, js.now_ms())?;
      let Some(hit) = hit else {
        return Ok(js.null());
      };
      js.glue(
        Glue::CachedResponse,
        &[
          prompt,
          js.string(&hit.response)?,
          js.number(hit.timestamp as f64)?,
          model_id,
          js.number(hit.expires_at as f64)?,
        ],
      )
    })
  }

  /// Removes the entry; returns whether there was one.
  #[napi]
  pub fn delete(&self, env: Env, prompt: Raw, model_id: Raw) -> napi::Result<bool> {
    boundary(env, |js| {
      let (prompt, model_id) = key(js, prompt, model_id)?;
      Ok(self.inner.lock().delete(&prompt, &model_id)?)
    })
  }

  /// Empties the cache and resets its counters.
  #[napi]
  pub fn clear(&self, env: Env) -> napi::Result<()> {
    boundary(env, |_| Ok(self.inner.lock().clear()?))
  }

  /// Live entries, their oldest and newest timestamps, hit/miss/eviction
  /// counters and live bytes.
  #[napi]
  pub fn get_stats(&self, env: Env) -> napi::Result<Raw> {
    boundary(env, |js| {
      let stats = self.inner.lock().stats(js.now_ms())?;
      let instant = |ms: Option<u64>| js.number(ms.unwrap_or(0) as f64);
      js.glue(
        Glue::CacheStats,
        &[
          js.number(stats.size as f64)?,
          instant(stats.oldest_entry)?,
          instant(stats.newest_entry)?,
          js.number(stats.hits as f64)?,
          js.number(stats.misses as f64)?,
          js.number(stats.evictions as f64)?,
          js.number(stats.bytes as f64)?,
        ],
      )
    })
  }
}

/// The process-wide cache behind the exported `aiResponseCache`.
#[napi(js_name = "sharedAiResponseCache")]
pub fn shared_ai_response_cache() -> JsAiResponseCache {
  JsAiResponseCache {
    inner: global().cache.clone(),
  }
}
