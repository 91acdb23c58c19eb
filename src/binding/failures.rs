//! `IntegrationFailureManager`: the JavaScript class over the core failure
//! window.

use std::sync::Arc;

use napi::Env;
use napi_derive::napi;

use crate::core::failures::{FailureConfig, DEFAULT_SKIP_THRESHOLD};
use crate::core::quiet::QuietWatch;
use crate::core::singletons::{global, shared, SharedFailures};
use crate::core::storage::open_failures;

use super::args;
use super::boundary::boundary;
use super::config::{failure_config, StorageChoice};
use super::raw::Raw;
use super::records;

/// Failure history per integration, bounded per service, in the number of
/// services and in bytes, with a time window for "skip this service up
/// front".
#[napi(js_name = "NativeFailureHistory")]
pub struct JsIntegrationFailureManager {
  inner: SharedFailures,
  /// The singletons' watch, for the shared history: clearing cooldowns
  /// there is published to the chains (`core::quiet`).
  quiet: Option<Arc<QuietWatch>>,
}

#[napi]
impl JsIntegrationFailureManager {
  /// An isolated failure history (defaults: 5 min window, 100 failures per
  /// service, 10,000 services, 64 MiB).
  #[napi(constructor)]
  pub fn new(env: &Env, options: Raw<'_>) -> napi::Result<Self> {
    boundary(env, |js| {
      let mut storage = StorageChoice::default();
      let config = failure_config(
        js,
        options,
        "options",
        FailureConfig::default(),
        Some(&mut storage),
      )?;
      let mut store = open_failures(storage.backend(), config)?;
      // Bounds given with a file become the file's; without any, the file
      // keeps the ones it has (opening evicts nothing).
      if storage.bounds_given && storage.is_shared() {
        store.set_config(config)?;
      }
      Ok(Self {
        inner: shared(store),
        quiet: None,
      })
    })
  }

  #[napi]
  pub fn record_failure<'env>(
    &self,
    env: &'env Env,
    service: Raw<'env>,
    operation: Raw<'env>,
    error: Raw<'env>,
    skip_reason: Raw<'env>,
  ) -> napi::Result<Raw<'env>> {
    boundary(env, |js| {
      let service = args::identifier(js, service, "service")?;
      let operation = args::identifier(js, operation, "operation")?;
      let error = args::string(js, error, "error")?;
      let skip_reason = args::string(js, skip_reason, "skipReason")?;
      self
        .inner
        .lock()
        .record(&service, &operation, &error, &skip_reason, js.now_ms())?;
      Ok(js.undefined())
    })
  }

  /// One service's failures, or all, oldest first; `options`
  /// (`{ limit, offset }`) takes one page.
  #[napi]
  pub fn get_failures(
    &self,
    env: &Env,
    service: Raw<'_>,
    options: Raw<'_>,
  ) -> napi::Result<String> {
    boundary(env, |js| {
      let service = args::optional_string(js, service, "service")?;
      let page = args::page(js, options, "options")?;
      let records = self.inner.lock().failures(service.as_deref(), page)?;
      Ok(records::failures(&records))
    })
  }

  /// True when at least `threshold` (default 3) failures of `service` fall
  /// inside the window.
  #[napi]
  pub fn should_skip_service(
    &self,
    env: &Env,
    service: Raw<'_>,
    threshold: Raw<'_>,
  ) -> napi::Result<bool> {
    boundary(env, |js| {
      let service = args::string(js, service, "service")?;
      let threshold =
        args::optional_non_negative(js, threshold, "threshold")?.unwrap_or(DEFAULT_SKIP_THRESHOLD);
      Ok(
        self
          .inner
          .lock()
          .should_skip(&service, threshold, js.now_ms())?,
      )
    })
  }

  /// Forgets one service's failures, or all; returns whether any were held.
  #[napi]
  pub fn clear_failures(&self, env: &Env, service: Raw<'_>) -> napi::Result<bool> {
    boundary(env, |js| {
      let service = args::optional_string(js, service, "service")?;
      let mut store = self.inner.lock();
      let held = store.clear(service.as_deref())?;
      if let Some(quiet) = &self.quiet {
        quiet.publish(store.quiet_from());
      }
      Ok(held)
    })
  }

  /// Per service: how many failures are held and the last one's time, as
  /// JSON (`records::service_stats`).
  #[napi]
  pub fn get_stats(&self, env: &Env) -> napi::Result<String> {
    boundary(env, |_| {
      Ok(records::service_stats(&self.inner.lock().stats()?))
    })
  }
}

/// The process-wide history behind the exported `integrationFailureManager`.
#[napi(js_name = "sharedIntegrationFailureManager")]
pub fn shared_integration_failure_manager() -> JsIntegrationFailureManager {
  JsIntegrationFailureManager {
    inner: global().failures.clone(),
    quiet: Some(global().quiet.clone()),
  }
}
