//! `AIResponseCache`: the JavaScript class over the core response cache.

use napi::Env;
use napi_derive::napi;

use crate::core::cache::{CacheConfig, EntryText};
use crate::core::singletons::{global, shared, SharedCache};
use crate::core::storage::open_cache;

use super::args;
use super::boundary::boundary;
use super::config::{cache_config, StorageChoice};
use super::errors::Fault;
use super::json;
use super::numbers;
use super::raw::Raw;

/// A cache of AI responses keyed by the exact (prompt, modelId) pair, with a
/// TTL per entry and an LRU bound on entries and bytes. Responses are stored
/// as JSON; every `get` returns a fresh copy.
#[napi(js_name = "NativeResponseCache")]
pub struct JsAiResponseCache {
  inner: SharedCache,
}

#[napi]
impl JsAiResponseCache {
  /// An isolated cache with its own bounds (defaults: 10,000 entries,
  /// 256 MiB, 24 h TTL, no stale-if-error).
  #[napi(constructor)]
  pub fn new(env: &Env, options: Raw<'_>) -> napi::Result<Self> {
    boundary(env, |js| {
      let mut storage = StorageChoice::default();
      let config = cache_config(
        js,
        options,
        "options",
        CacheConfig::default(),
        Some(&mut storage),
      )?;
      let mut store = open_cache(storage.backend(), config)?;
      // Bounds given with a file become the file's; without any, the file
      // keeps the ones it has (opening evicts nothing).
      if storage.bounds_given && storage.is_shared() {
        store.set_config(config, js.now_ms())?;
      }
      Ok(Self {
        inner: shared(store),
      })
    })
  }

  /// Stores `response` (as JSON) for `ttl` ms; `undefined` or `0` mean the
  /// default TTL.
  #[napi]
  pub fn set<'env>(
    &self,
    env: &'env Env,
    prompt: Raw<'env>,
    response: Raw<'env>,
    model_id: Raw<'env>,
    ttl: Raw<'env>,
  ) -> napi::Result<Raw<'env>> {
    boundary(env, |js| {
      let (prompt, model_id) = args::cache_key(js, prompt, model_id)?;
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

  /// The live entry's response as JSON text, or `null`; its timestamp and
  /// expiry go into `numbers` (`numbers::cache_hit`).
  #[napi]
  pub fn get(
    &self,
    env: &Env,
    prompt: Raw<'_>,
    model_id: Raw<'_>,
    numbers: Raw<'_>,
  ) -> napi::Result<Option<String>> {
    boundary(env, |js| {
      let (prompt, model_id) = args::cache_key(js, prompt, model_id)?;
      let hit = self.inner.lock().get(&prompt, &model_id, js.now_ms())?;
      match hit {
        Some(hit) => {
          numbers::cache_hit(js, numbers, &hit)?;
          Ok(Some(hit.response))
        }
        None => Ok(None),
      }
    })
  }

  /// Removes the entry; returns whether there was one.
  #[napi]
  pub fn delete(&self, env: &Env, prompt: Raw<'_>, model_id: Raw<'_>) -> napi::Result<bool> {
    boundary(env, |js| {
      let (prompt, model_id) = args::cache_key(js, prompt, model_id)?;
      Ok(self.inner.lock().delete(&prompt, &model_id)?)
    })
  }

  /// Empties the cache and resets its counters.
  #[napi]
  pub fn clear(&self, env: &Env) -> napi::Result<()> {
    boundary(env, |_| Ok(self.inner.lock().clear()?))
  }

  /// Live entries, their oldest and newest timestamps, hit/miss/eviction
  /// counters and live bytes, into `numbers` (`numbers::cache_stats`).
  #[napi]
  pub fn get_stats(&self, env: &Env, numbers: Raw<'_>) -> napi::Result<()> {
    boundary(env, |js| {
      let stats = self.inner.lock().stats(js.now_ms())?;
      numbers::cache_stats(js, numbers, &stats)
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
