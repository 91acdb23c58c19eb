//! Store calls made for JavaScript by the singletons' asynchronous
//! functions (`cacheResult`, `fallbackAfterFailure`, `benchModel`,
//! `cooldownsOf`): at once here, or off the JavaScript thread on Redis.

use napi::bindgen_prelude::{Either, PromiseRaw};
use napi::Env;

use crate::core::singletons::global;

/// Runs `work` (the singletons' store calls) here when the stores are in
/// this process or its file, where a call takes microseconds; on Redis, on
/// tokio's blocking threads, and the caller gets a promise of its result:
/// the JavaScript thread never waits on the network in an asynchronous
/// call. A panic there rejects the promise with an internal error.
pub fn on_store<'env, T>(
  env: &'env Env,
  work: impl FnOnce() -> T + Send + 'static,
) -> napi::Result<Either<T, PromiseRaw<'env, T>>>
where
  T: napi::bindgen_prelude::ToNapiValue + Send + 'static,
{
  if !global().on_redis() {
    return Ok(Either::A(work()));
  }
  let promise = env.spawn_future(async move {
    napi::bindgen_prelude::spawn_blocking(work)
      .await
      .map_err(|_| napi::Error::from_reason("fallback-mechanisms: internal error in a store call"))
  })?;
  Ok(Either::B(promise))
}
