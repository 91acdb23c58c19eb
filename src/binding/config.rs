//! Bounds, defaults and storage: the constructor options of each class and
//! the sections of `configure`, read by the same functions.

use std::path::PathBuf;

use napi::Env;
use napi_derive::napi;

use crate::core::cache::CacheConfig;
use crate::core::failures::FailureConfig;
use crate::core::queue::{Backoff, QueueConfig};
use crate::core::singletons::{global, Bounds, MoveError};
use crate::core::storage::redis::{self, RedisLink, RedisOptions};
use crate::core::storage::{Backend, Durability, FileOptions, DEFAULT_BUSY_TIMEOUT_MS};

use super::args;
use super::boundary::boundary;
use super::errors::{Fault, JsResult, ALREADY_IN_USE, ERR_INVALID_ARG_VALUE, ERR_INVALID_URL};
use super::raw::{Js, Kind, Raw};

fn count(js: Js<'_>, value: Raw<'_>, path: &str, min: u64) -> JsResult<u64> {
  Ok(args::optional_integer(js, value, path, min, args::MAX_SAFE_INTEGER)?.unwrap_or(min))
}

/// The largest `busyTimeoutMs` (SQLite takes an `int` of milliseconds).
const MAX_BUSY_TIMEOUT_MS: u64 = i32::MAX as u64;

/// The largest `redisTimeoutMs`: a synchronous call never waits longer.
const MAX_REDIS_TIMEOUT_MS: u64 = 60_000;

/// Where a store keeps its state: `storagePath` (memory when absent),
/// `durability` and `busyTimeoutMs`, or `redisUrl`, `keyPrefix`,
/// `redisTimeoutMs` and `redisTlsCa`; and whether the options gave bounds (bounds given with
/// a file or a server become its own).
#[derive(Default)]
pub struct StorageChoice {
  pub path: Option<PathBuf>,
  pub durability: Durability,
  pub busy_timeout_ms: Option<u64>,
  pub bounds_given: bool,
  redis_url: Option<String>,
  key_prefix: Option<String>,
  redis_timeout_ms: Option<u64>,
  redis_tls_ca: Option<PathBuf>,
  /// Made by `check` when the options gave a `redisUrl`: no connection yet.
  pub link: Option<RedisLink>,
}

impl StorageChoice {
  pub fn backend(&self) -> Backend<'_> {
    match (&self.link, &self.path) {
      (Some(link), _) => Backend::Redis(link),
      (None, Some(path)) => Backend::File(path, self.file_options(DEFAULT_BUSY_TIMEOUT_MS)),
      (None, None) => Backend::Memory,
    }
  }

  /// Whether the options name a shared store (a file or a server), whose
  /// bounds become the store's own.
  pub fn is_shared(&self) -> bool {
    self.path.is_some() || self.link.is_some()
  }

  /// How the file is opened; `busy_timeout_ms` when the options gave none.
  pub fn file_options(&self, busy_timeout_ms: u64) -> FileOptions {
    FileOptions {
      durability: self.durability,
      busy_timeout_ms: self.busy_timeout_ms.unwrap_or(busy_timeout_ms),
    }
  }

  const KEYS: [&'static str; 7] = [
    "storagePath",
    "durability",
    "busyTimeoutMs",
    "redisUrl",
    "keyPrefix",
    "redisTimeoutMs",
    "redisTlsCa",
  ];

  fn read(&mut self, js: Js<'_>, key: &str, value: Raw<'_>, path: &str) -> JsResult<()> {
    match key {
      "storagePath" => {
        // SQLite reads ":memory:" and "file:..." as special names, not files.
        let special = |file: &str| file.starts_with(":memory:") || file.starts_with("file:");
        let expected = "a file path (leave it out to keep state in memory)";
        self.path = Some(file_path(js, value, path, expected, special)?);
      }
      "busyTimeoutMs" => {
        self.busy_timeout_ms = args::optional_integer(js, value, path, 0, MAX_BUSY_TIMEOUT_MS)?;
      }
      "redisUrl" => {
        let url = args::string(js, value, path)?;
        if let Err(problem) = redis::check_url(&url) {
          return Err(Fault::type_error(
            ERR_INVALID_URL,
            format!("The \"{path}\" option must be a redis:// or rediss:// URL: {problem}"),
          ));
        }
        self.redis_url = Some(url);
      }
      "keyPrefix" => {
        let prefix = args::string(js, value, path)?;
        if let Err(expected) = redis::check_prefix(&prefix) {
          return Err(args::range_error(js, path, &expected, value));
        }
        self.key_prefix = Some(prefix);
      }
      "redisTimeoutMs" => {
        self.redis_timeout_ms = args::optional_integer(js, value, path, 1, MAX_REDIS_TIMEOUT_MS)?;
      }
      "redisTlsCa" => {
        let expected = "the path of a PEM file of CA certificates";
        self.redis_tls_ca = Some(file_path(js, value, path, expected, |_| false)?);
      }
      _ => {
        let modes = [Durability::Normal, Durability::Fsync];
        self.durability = args::one_of(js, value, path, &modes, |mode| match mode {
          Durability::Normal => "normal",
          Durability::Fsync => "fsync",
        })?;
      }
    }
    Ok(())
  }

  /// `durability` means nothing without a file to apply to, nor
  /// `keyPrefix` without a server; a `redisUrl` gets its link (which does
  /// not connect yet).
  fn check(&mut self, name: &str) -> JsResult<()> {
    let alone = |option: &str, needs: &str| {
      Fault::type_error(
        ERR_INVALID_ARG_VALUE,
        format!("The \"{name}.{option}\" option applies only together with \"{name}.{needs}\""),
      )
    };
    if self.path.is_none() && self.durability != Durability::default() {
      return Err(alone("durability", "storagePath"));
    }
    let Some(url) = &self.redis_url else {
      if self.key_prefix.is_some() {
        return Err(alone("keyPrefix", "redisUrl"));
      }
      if self.redis_timeout_ms.is_some() {
        return Err(alone("redisTimeoutMs", "redisUrl"));
      }
      if self.redis_tls_ca.is_some() {
        return Err(alone("redisTlsCa", "redisUrl"));
      }
      return Ok(());
    };
    if self.redis_tls_ca.is_some() && !redis::is_tls_url(url) {
      return Err(Fault::type_error(
        ERR_INVALID_ARG_VALUE,
        format!(
          "The \"{name}.redisTlsCa\" option applies only to a rediss:// (TLS) \"{name}.redisUrl\""
        ),
      ));
    }
    let options = RedisOptions {
      url: url.clone(),
      prefix: self
        .key_prefix
        .clone()
        .unwrap_or_else(|| redis::DEFAULT_PREFIX.into()),
      timeout_ms: self.redis_timeout_ms.unwrap_or(redis::DEFAULT_TIMEOUT_MS),
      // With a file too: what is accepted while the server is away is kept
      // there as well, and survives the process.
      outbox_file: self
        .path
        .clone()
        .map(|path| (path, self.file_options(DEFAULT_BUSY_TIMEOUT_MS))),
      tls_ca: self.redis_tls_ca.clone(),
    };
    let runtime =
      napi::bindgen_prelude::within_runtime_if_available(tokio::runtime::Handle::current);
    self.link = Some(RedisLink::connect(&options, runtime)?);
    Ok(())
  }
}

/// A file path option: a string, not empty, without NUL, not `special`.
fn file_path(
  js: Js<'_>,
  value: Raw<'_>,
  path: &str,
  expected: &str,
  special: impl Fn(&str) -> bool,
) -> JsResult<PathBuf> {
  let file = args::string(js, value, path)?;
  if file.is_empty() || file.contains('\0') || special(&file) {
    return Err(args::range_error(js, path, expected, value));
  }
  Ok(PathBuf::from(file))
}

/// Reads an options bag of `bounds` keys, plus the storage keys when
/// `storage` is given (a constructor's options).
fn read_options(
  js: Js<'_>,
  value: Raw<'_>,
  name: &str,
  bounds: &[&str],
  mut storage: Option<&mut StorageChoice>,
  mut bound: impl FnMut(&str, Raw<'_>, &str) -> JsResult<()>,
) -> JsResult<()> {
  let mut known = bounds.to_vec();
  if storage.is_some() {
    known.extend(StorageChoice::KEYS);
  }
  args::options(js, value, name, &known, |key, field, path| {
    match storage.as_deref_mut() {
      Some(storage) if StorageChoice::KEYS.contains(&key) => storage.read(js, key, field, path),
      Some(storage) => {
        storage.bounds_given = true;
        bound(key, field, path)
      }
      None => bound(key, field, path),
    }
  })?;
  match storage {
    Some(storage) => storage.check(name),
    None => Ok(()),
  }
}

pub fn cache_config(
  js: Js<'_>,
  value: Raw<'_>,
  name: &str,
  base: CacheConfig,
  storage: Option<&mut StorageChoice>,
) -> JsResult<CacheConfig> {
  let mut config = base;
  let known = ["maxEntries", "maxBytes", "defaultTtlMs", "staleIfErrorMs"];
  read_options(js, value, name, &known, storage, |key, field, path| {
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

/// `backoffMs`: a non-empty array of delays in ms (non-negative safe
/// integers), the last repeating.
fn backoff(js: Js<'_>, value: Raw<'_>, path: &str) -> JsResult<Backoff> {
  if !js.is_array(value) {
    return Err(args::type_error(
      js,
      path,
      "an array of non-negative integers",
      value,
    ));
  }
  let length = js.get(value, c"length")?;
  let length = if js.kind(length) == Kind::Number {
    js.read_number(length) as u32
  } else {
    0
  };
  let mut delays = Vec::with_capacity(length.min(1_024) as usize);
  for index in 0..length {
    let element = js.element(value, index)?;
    let name = format!("{path}[{index}]");
    match args::optional_integer(js, element, &name, 0, args::MAX_SAFE_INTEGER)? {
      Some(ms) => delays.push(ms),
      None => return Err(args::type_error(js, &name, "of type number", element)),
    }
  }
  Backoff::new(delays)
    .ok_or_else(|| args::range_error(js, path, "a non-empty array (at least one delay)", value))
}

pub fn queue_config(
  js: Js<'_>,
  value: Raw<'_>,
  name: &str,
  base: QueueConfig,
  storage: Option<&mut StorageChoice>,
) -> JsResult<QueueConfig> {
  let mut config = base;
  let known = [
    "maxSize",
    "maxBytes",
    "leaseMs",
    "maxPayloadBytes",
    "backoffMs",
    "maxStalls",
  ];
  read_options(js, value, name, &known, storage, |key, field, path| {
    match key {
      "maxSize" => config.max_size = count(js, field, path, 1)? as usize,
      "maxBytes" => config.max_bytes = count(js, field, path, 1)? as usize,
      "leaseMs" => config.lease_ms = count(js, field, path, 1)?,
      "backoffMs" => config.backoff = backoff(js, field, path)?,
      "maxStalls" => {
        let most = u64::from(u32::MAX);
        if let Some(stalls) = args::optional_integer(js, field, path, 0, most)? {
          config.max_stalls = stalls as u32;
        }
      }
      _ => config.max_payload_bytes = count(js, field, path, 1)? as usize,
    }
    Ok(())
  })?;
  Ok(config)
}

pub fn failure_config(
  js: Js<'_>,
  value: Raw<'_>,
  name: &str,
  base: FailureConfig,
  storage: Option<&mut StorageChoice>,
) -> JsResult<FailureConfig> {
  let mut config = base;
  let known = ["windowMs", "maxPerService", "maxBytes"];
  read_options(js, value, name, &known, storage, |key, field, path| {
    match key {
      "windowMs" => config.window_ms = count(js, field, path, 1)?,
      "maxBytes" => config.max_bytes = count(js, field, path, 1)? as usize,
      _ => config.max_per_service = count(js, field, path, 1)? as usize,
    }
    Ok(())
  })?;
  Ok(config)
}

/// Sets where the exported singletons keep their state and their bounds and
/// defaults. Everything is checked before anything is applied; a move to a
/// file opens the file and applies the bounds to it before the singletons
/// switch, so a call that throws leaves them where they were.
#[napi]
pub fn configure<'env>(env: &'env Env, options: Raw<'env>) -> napi::Result<Raw<'env>> {
  boundary(env, |js| {
    args::object(js, options, "options")?;
    let stores = global();
    let (mut cache, mut queue, mut failures) = (None, None, None);
    let mut storage = StorageChoice::default();
    let sections = ["cache", "queue", "failures"];
    read_options(
      js,
      options,
      "options",
      &sections,
      Some(&mut storage),
      |key, field, path| {
        match key {
          "cache" => {
            let base = stores.cache.lock().config();
            cache = Some(cache_config(js, field, path, base, None)?)
          }
          "queue" => {
            let base = stores.queue.lock().config();
            queue = Some(queue_config(js, field, path, base, None)?)
          }
          _ => {
            let base = stores.failures.lock().config();
            failures = Some(failure_config(js, field, path, base, None)?)
          }
        }
        Ok(())
      },
    )?;
    let bounds = Bounds {
      cache,
      queue,
      failures,
    };
    let now = js.now_ms();
    let (target, option, place) = match (&storage.link, &storage.path) {
      (Some(link), _) => (Backend::Redis(link), "redisUrl", link.place().to_string()),
      (None, Some(path)) => (
        Backend::File(path, storage.file_options(stores.busy_timeout_ms())),
        "storagePath",
        path.display().to_string(),
      ),
      (None, None) => {
        if let Some(ms) = storage.busy_timeout_ms {
          stores.set_busy_timeout(ms)?;
        }
        stores.set_bounds(bounds, now)?;
        return Ok(js.undefined());
      }
    };
    stores
      .move_to(target, bounds, now)
      .map_err(|error| match error {
        MoveError::Storage(error) => Fault::from(error),
        MoveError::InUse { current } => Fault::error(
          ALREADY_IN_USE,
          match current {
            Some(current) => format!(
              "configure({{ {option} }}) cannot move the shared cache, queue and failure history to {place}: they already keep their state in {current}"
            ),
            None => format!(
              "configure({{ {option} }}) must come before the shared cache, queue or failure history is first used; they already hold state in memory, so they cannot move to {place}"
            ),
          },
        ),
      })?;
    if let Some(ms) = storage.busy_timeout_ms {
      stores.set_busy_timeout(ms)?;
    }
    Ok(js.undefined())
  })
}
