//! The connection to a Redis or Valkey server (or a Redis Cluster) that the
//! three Redis stores share: redis-rs's `ConnectionManager` (one
//! multiplexed connection that reconnects by itself), or its cluster client
//! when the URL names a cluster node (`connection.rs`), on a tokio runtime
//! handed in by the caller (the binding hands in napi-rs's), every request
//! bounded by `redisTimeoutMs`, and what the last request said about the
//! server (for `getStorageStatus()`).
//!
//! `rediss://` URLs speak TLS through rustls with the `ring` provider: the
//! server's certificate must chain to the system's roots (on macOS, the
//! Mozilla roots compiled in: see Cargo.toml), or to the CA of `tls_ca` (a
//! PEM file, `redisTlsCa`), which then replaces them.
//!
//! The contract's synchronous methods need a blocking round trip: the
//! request runs as a task on the runtime and the caller waits for it on a
//! channel, never longer than the timeout. A caller that is itself a task
//! of a multi-threaded runtime (the worker's loop) waits inside
//! `block_in_place`, so the runtime's other tasks, the connection's own
//! among them, keep running.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Once, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
  ConnectionInfo, ErrorKind, FromRedisValue, IntoConnectionInfo, ProtocolVersion, RedisError,
  RedisResult, Script, ScriptInvocation, TlsCertificates,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::CertificateError;
use tokio::runtime::{Handle, RuntimeFlavor};

use super::connection::{Connection, Connector, Mode};
use super::local_copy::{CopyStats, Depends, LocalCopy};
use super::outbox::{judge, FollowUp, Next, Outbox, Sent, Write, WriteKind};
use super::reply::refused_by_acl_or_server;
use super::tracking::{self, Tracking};
use crate::core::notices;
use crate::core::storage::error::{StorageError, StorageErrorKind, StorageResult};
use crate::core::storage::sqlite::FileOptions;

/// How long one request may take when the options give no `redisTimeoutMs`.
pub const DEFAULT_TIMEOUT_MS: u64 = 500;
/// The key prefix when the options give no `keyPrefix`.
pub const DEFAULT_PREFIX: &str = "fallback-mechanisms";
/// Longest `keyPrefix`, in bytes.
pub const MAX_PREFIX_BYTES: usize = 256;

/// The coded warning of a kept write the server refused for good.
pub const SET_ASIDE: &str = "REDIS_WRITE_SET_ASIDE";
/// The coded warning of a server whose eviction policy may drop our keys.
pub const EVICTION_POLICY: &str = "REDIS_EVICTION_POLICY";

#[derive(Debug, Clone, PartialEq)]
pub struct RedisOptions {
  pub url: String,
  pub prefix: String,
  pub timeout_ms: u64,
  /// Where what is accepted while the server is away is kept besides
  /// memory (`storagePath` with `redisUrl`), so it survives the process.
  pub outbox_file: Option<(PathBuf, FileOptions)>,
  /// With a `rediss://` URL: a PEM file of the CA certificates to trust
  /// instead of the system's (a server with a self-signed certificate).
  pub tls_ca: Option<PathBuf>,
}

impl RedisOptions {
  pub fn new(url: impl Into<String>) -> Self {
    Self {
      url: url.into(),
      prefix: DEFAULT_PREFIX.into(),
      timeout_ms: DEFAULT_TIMEOUT_MS,
      outbox_file: None,
      tls_ca: None,
    }
  }
}

/// Whether `url` asks for TLS.
pub fn is_tls_url(url: &str) -> bool {
  url.starts_with("rediss://")
}

/// The URLs of a `redisUrl`: one, or a comma-separated list of a
/// cluster's seed nodes. A comma starts another URL only where `redis://`
/// or `rediss://` follows (a password may hold a comma).
pub fn seed_urls(url: &str) -> Vec<&str> {
  let mut seeds = Vec::new();
  let mut start = 0;
  for (comma, _) in url.match_indices(',') {
    let next = url[comma + 1..].trim_start();
    if next.starts_with("redis://") || next.starts_with("rediss://") {
      seeds.push(url[start..comma].trim());
      start = comma + 1;
    }
  }
  seeds.push(url[start..].trim());
  seeds
}

/// Why a `redisUrl` cannot be used; the message never holds the password.
pub fn check_url(url: &str) -> Result<(), String> {
  let seeds = seed_urls(url);
  if seeds.len() > 1 {
    if seeds
      .iter()
      .any(|seed| is_tls_url(seed) != is_tls_url(seeds[0]))
    {
      return Err(format!(
        "the seed URLs of a cluster all use redis:// or all rediss://, got {}",
        redact_url(url)
      ));
    }
    return seeds.into_iter().try_for_each(check_url);
  }
  let scheme_ok = url.starts_with("redis://") || url.starts_with("rediss://");
  if !scheme_ok {
    return Err(format!(
      "expected a redis:// or rediss:// URL, got {}",
      redact_url(url)
    ));
  }
  // redis-rs reads `#insecure` as "verify no certificate"; this build
  // leaves that out: a self-signed server's CA is trusted by name instead.
  let fragment = url.split_once('#').map(|(_, fragment)| fragment);
  if fragment == Some("insecure") {
    return Err(format!(
      "#insecure (no certificate check) is not supported; trust a self-signed server's CA with redisTlsCa instead, got {}",
      redact_url(url)
    ));
  }
  match url.into_connection_info() {
    Ok(_) => Ok(()),
    Err(_) => Err(format!("not a valid Redis URL: {}", redact_url(url))),
  }
}

/// Whether a `keyPrefix` can be used: not empty, bounded, and without the
/// braces that would break the keys' hash tag.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
  if prefix.is_empty() || prefix.len() > MAX_PREFIX_BYTES {
    return Err(format!("between 1 and {MAX_PREFIX_BYTES} bytes"));
  }
  if prefix.contains(['{', '}']) {
    return Err("without { or } (the prefix becomes the keys' hash tag)".into());
  }
  Ok(())
}

/// `url` (or each URL of a list) with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
  let seeds = seed_urls(url);
  if seeds.len() > 1 {
    return seeds
      .into_iter()
      .map(redact_url)
      .collect::<Vec<_>>()
      .join(",");
  }
  let Some((scheme, rest)) = url.split_once("://") else {
    return url.to_string();
  };
  let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
  // A password may hold a '/', '?' or '#' of its own (unencoded, so the
  // URL does not parse): then the userinfo runs to the last '@' of all.
  let authority_end = match (rest[..authority_end].contains('@'), rest.rfind('@')) {
    (false, Some(at)) => rest[at..]
      .find(['/', '?', '#'])
      .map_or(rest.len(), |end| at + end),
    _ => authority_end,
  };
  let (authority, path) = rest.split_at(authority_end);
  match authority.rfind('@') {
    Some(at) => {
      let (userinfo, host) = authority.split_at(at);
      let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
      let hidden = if userinfo.contains(':') || !user.is_empty() {
        format!("{user}:***")
      } else {
        String::new()
      };
      format!("{scheme}://{hidden}{host}{path}")
    }
    None => url.to_string(),
  }
}

/// What the last request said about the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
  /// `None` until a request has been made.
  pub reachable: Option<bool>,
  pub last_error: Option<String>,
  pub last_error_at: Option<u64>,
  /// The server's `maxmemory-policy`, once read (at the first answer).
  pub eviction_policy: Option<String>,
}

/// Every link alive in the process, so that a process about to end can
/// tell whether anything it accepted still waits for a server.
static LINKS: LazyLock<Mutex<Vec<Weak<Inner>>>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// The writes waiting for a server on every link of the process (kept
/// jobs, failures, bounds, leases to give back).
pub fn waiting_anywhere() -> usize {
  let mut links = LINKS.lock();
  links.retain(|link| link.strong_count() > 0);
  links
    .iter()
    .filter_map(Weak::upgrade)
    .map(|inner| inner.outbox.waiting())
    .sum()
}

#[derive(Clone)]
pub struct RedisLink {
  inner: Arc<Inner>,
}

struct Inner {
  handle: Handle,
  connector: Connector,
  /// `{prefix}:`: every key starts with it, so one prefix is one hash tag.
  key_head: String,
  timeout: Duration,
  url: String,
  place: String,
  password: Option<String>,
  /// The CA file trusted instead of the system's roots (`redisTlsCa`).
  tls_ca: Option<PathBuf>,
  status: Mutex<LinkStatus>,
  /// Whether the server's eviction policy was asked for.
  policy_asked: AtomicBool,
  /// What was accepted while the server was away, to be written to it.
  outbox: Arc<Outbox>,
  /// The local copy of what the synchronous reads read, and the
  /// connection that keeps it coherent.
  tracking: Tracking,
}

impl RedisLink {
  /// Prepares the connection without waiting for the server: an app starts
  /// while Redis is down, and the first request tries to connect.
  pub fn connect(options: &RedisOptions, handle: Handle) -> StorageResult<Self> {
    let bad = |message: String| StorageError::new(StorageErrorKind::Unavailable, message);
    check_url(&options.url).map_err(bad)?;
    check_prefix(&options.prefix).map_err(bad)?;
    let seeds = seed_urls(&options.url)
      .into_iter()
      .map(IntoConnectionInfo::into_connection_info)
      .collect::<RedisResult<Vec<_>>>()
      .map_err(|_| {
        bad(format!(
          "not a valid Redis URL: {}",
          redact_url(&options.url)
        ))
      })?;
    let info = seeds[0].clone();
    let password = info.redis_settings().password().map(str::to_string);
    let certificates = certificates(options).map_err(bad)?;
    let listening_seeds = seeds.iter().map(resp3).collect();
    let client = client(info, certificates.clone()).map_err(bad)?;
    let timeout = Duration::from_millis(options.timeout_ms.max(1));
    let config = ConnectionManagerConfig::new()
      .set_connection_timeout(Some(timeout))
      .set_response_timeout(Some(timeout))
      .set_number_of_retries(1)
      .set_max_delay(Duration::from_millis(200));
    let manager = {
      let _entered = handle.enter();
      ConnectionManager::new_lazy_with_config(client, config)
    }
    .map_err(|e| bad(e.to_string()))?;
    let key_head = format!("{{{}}}:", options.prefix);
    let connector = Connector::new(
      manager,
      seeds,
      certificates.clone(),
      timeout,
      key_head.clone(),
    );
    let outbox = match &options.outbox_file {
      Some((path, file_options)) => Outbox::in_file(path, *file_options)?,
      None => Outbox::default(),
    };
    let place = format!(
      "{} (keyPrefix {})",
      redact_url(&options.url),
      options.prefix
    );
    let tracking = Tracking::new(tracking::Setup {
      seeds: listening_seeds,
      make_client: Arc::new(move |info| self::client(info, certificates.clone()).ok()),
      prefixes: vec![format!("{key_head}c:e:"), format!("{key_head}f:")],
      timeout,
      place: place.clone(),
    });
    let link = Self {
      inner: Arc::new(Inner {
        handle,
        connector,
        key_head,
        timeout,
        url: redact_url(&options.url),
        place,
        password,
        tls_ca: options.tls_ca.clone(),
        status: Mutex::new(LinkStatus::default()),
        policy_asked: AtomicBool::new(false),
        outbox: Arc::new(outbox),
        tracking,
      }),
    };
    LINKS.lock().push(Arc::downgrade(&link.inner));
    Ok(link)
  }

  /// The full name of one of this prefix's keys.
  pub fn key(&self, name: &str) -> String {
    let mut key = String::with_capacity(self.inner.key_head.len() + name.len());
    key.push_str(&self.inner.key_head);
    key.push_str(name);
    key
  }

  /// The client the link's connection was made with.
  /// How to reach the node holding the prefix's keys on a connection of
  /// one's own (an idle worker's blocking wait, wake.rs).
  pub(super) fn home(&self) -> &tracking::Setup {
    self.inner.tracking.home()
  }

  /// The URL, its password hidden.
  pub fn url(&self) -> &str {
    &self.inner.url
  }

  /// Where the stores on this link keep their state: the URL (password
  /// hidden) and the key prefix. Two links with the same place share it.
  pub fn place(&self) -> &str {
    &self.inner.place
  }

  pub fn timeout(&self) -> Duration {
    self.inner.timeout
  }

  pub fn timeout_ms(&self) -> u64 {
    self.inner.timeout.as_millis() as u64
  }

  pub fn status(&self) -> LinkStatus {
    self.inner.status.lock().clone()
  }

  /// A standalone server or a cluster, once the URL's node has answered.
  pub fn mode(&self) -> Option<Mode> {
    self.inner.connector.mode()
  }

  pub fn outbox(&self) -> &Arc<Outbox> {
    &self.inner.outbox
  }

  pub(super) fn tracking(&self) -> &Tracking {
    &self.inner.tracking
  }

  /// Keeps a write the server did not answer (it is away, or slow), to be
  /// made when it answers.
  pub fn keep(&self, write: Write) -> StorageResult<()> {
    if self.inner.outbox.keep(write)? {
      self.start_writer();
    }
    Ok(())
  }

  /// What a change the other instances must see (new bounds) comes to:
  /// `sent` as it went, or, when the server did not answer, `kept()` kept
  /// to be made when it answers, and the change counts as made.
  pub fn sent_or_kept(
    &self,
    sent: StorageResult<()>,
    kept: impl FnOnce() -> Write,
  ) -> StorageResult<()> {
    match sent {
      Err(away) if away.is_no_answer() => self.keep(kept()),
      other => other,
    }
  }

  /// A store of `kind` opened: what a previous process kept of its kind
  /// can be written now, with `script` and the store's key `names`.
  pub fn resume(&self, kind: WriteKind, script: &'static Script, names: &[&str]) {
    if self.inner.outbox.resume(kind, script, names) {
      self.start_writer();
    }
  }

  fn start_writer(&self) {
    let link = self.clone();
    self.spawn(async move { link.write_out().await });
  }

  /// Writes the outbox out, oldest first, waiting between tries while the
  /// server does not answer; ends when nothing is left.
  async fn write_out(&self) {
    const RETRY_EVERY: Duration = Duration::from_millis(250);
    const LATER: Duration = Duration::from_secs(2);
    let outbox = &self.inner.outbox;
    loop {
      let write = match outbox.next() {
        Next::Send(write) => write,
        Next::Wait(pause) => {
          tokio::time::sleep(pause).await;
          continue;
        }
        Next::Done => return,
      };
      match self.send(&write).await {
        Sent::Taken(reply) => {
          outbox.written(&write);
          if let Some(follow) = &write.follow {
            self.follow_up(&write.keys, follow, reply).await;
          }
        }
        Sent::NoAnswer => tokio::time::sleep(RETRY_EVERY).await,
        Sent::Later => outbox.postpone(&write, LATER),
        Sent::Refused(reason) => {
          outbox.set_aside(&write, &reason);
          notices::warn(
            SET_ASIDE,
            format!(
              "{} was accepted while Redis at {} did not answer, and the server has now refused it for good ({reason}); it is set aside, not written{}",
              write.label,
              self.inner.place,
              if write.in_file() { " (its row stays in the storagePath file's redis_outbox table)" } else { "" }
            ),
          );
        }
      }
    }
  }

  /// What the server made of one send of `write`.
  async fn send(&self, write: &Write) -> Sent {
    let Some(script) = write.script else {
      return Sent::NoAnswer;
    };
    let invocation = invocation(script, &write.keys, &write.args);
    // A kept job counts as written once it would survive its master.
    let durable = write.kind == WriteKind::Job;
    let within = self.replica_wait();
    let reply: StorageResult<redis::Value> = self
      .run_async(move |connection| run_script(invocation, connection, durable, within))
      .await;
    match reply {
      Ok(reply) => judge(write.kind, reply),
      Err(error) if error.is_no_answer() => Sent::NoAnswer,
      // Out of memory may pass; the rest is an answer that will not change.
      Err(error) if error.kind == StorageErrorKind::Full => Sent::Later,
      Err(error) => Sent::Refused(error.message),
    }
  }

  /// Reads the server's `maxmemory-policy` (from `INFO memory`, which
  /// managed servers allow where `CONFIG GET` is not): any policy but
  /// `noeviction` lets the server delete this library's keys when it is
  /// full (a job's hash, an index), so it is warned about, once per server
  /// and prefix.
  async fn check_eviction_policy(&self) {
    let info: StorageResult<String> = self.run_async(memory_info).await;
    match info {
      Ok(info) => self.take_policy(&info),
      // Asked again at the next answer.
      Err(_) => self.inner.policy_asked.store(false, Ordering::Release),
    }
  }

  /// The server's `maxmemory-policy`: as read at the first answer, or
  /// read now (one round trip) when that has not come back yet.
  pub fn eviction_policy(&self) -> Option<String> {
    if let Some(policy) = self.status().eviction_policy {
      return Some(policy);
    }
    if let Ok(info) = self.run(memory_info) {
      self.take_policy(&info);
    }
    self.status().eviction_policy
  }

  /// Notes the policy `INFO memory` gave, and warns about any but
  /// `noeviction`.
  fn take_policy(&self, info: &str) {
    let Some(policy) = info
      .lines()
      .find_map(|line| line.strip_prefix("maxmemory_policy:"))
      .map(|policy| policy.trim().to_string())
    else {
      return;
    };
    self.inner.status.lock().eviction_policy = Some(policy.clone());
    if policy != "noeviction" {
      notices::warn_once(
        EVICTION_POLICY,
        &self.inner.place,
        format!(
          "Redis at {} has maxmemory-policy {policy}: when it is full it may delete this library's keys (a queued job, the queue's indexes, a failure record), and jobs are lost. Set maxmemory-policy noeviction (a full server then refuses new writes with STORAGE_FULL instead), or use a server of its own for this library",
          self.inner.place
        ),
      );
    }
  }

  /// Runs the rest of a kept write's work (a lowered bound's evictions, a
  /// batch per run) after its first run replied `reply`. One that fails is
  /// left: later commands carry on with it.
  async fn follow_up(&self, keys: &[String], follow: &FollowUp, mut reply: redis::Value) {
    while let Some(cursor) = (follow.more)(&reply) {
      let mut args = follow.args.clone();
      args.extend(cursor);
      let next = self.command_async(follow.script, keys, &args).await;
      match next {
        Ok(next) => reply = next,
        Err(_) => return,
      }
    }
  }

  /// The reply of `read`: the local copy's while the server tracks and
  /// nothing it `depends` on changed since it was kept, else the
  /// server's (one round trip), kept for the next time.
  pub fn tracked_read<F, Fut>(
    &self,
    id: &str,
    depends: Depends,
    read: F,
  ) -> StorageResult<Arc<redis::Value>>
  where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = RedisResult<redis::Value>> + Send + 'static,
  {
    let tracking = &self.inner.tracking;
    let copy = tracking.copy();
    if let Some(kept) = copy.get(id) {
      return Ok(kept);
    }
    tracking.start(&self.inner.handle);
    let ticket = copy.ticket();
    let value = Arc::new(self.run(read)?);
    if let Some(ticket) = ticket {
      copy.keep(ticket, id, depends, Arc::clone(&value));
    }
    Ok(value)
  }

  /// Around a write of this process to `key`: the local copy forgets it
  /// at once (the server's announcement comes later, on another
  /// connection), so a read after the write never sees what was before.
  ///
  /// Every link of this process on the same place forgets it too: two
  /// instances made with the same options have links of their own, and
  /// one must read what the other wrote as soon as it returns.
  pub fn changing(&self, key: &str) {
    self.each_copy_here(|copy| copy.changed(key));
  }

  /// Around a clear of a whole store: every copy of this place forgets all.
  pub fn changing_all(&self) {
    self.each_copy_here(LocalCopy::changed_all);
  }

  fn each_copy_here(&self, mut act: impl FnMut(&LocalCopy)) {
    act(self.inner.tracking.copy());
    let links = LINKS.lock();
    for other in links.iter().filter_map(Weak::upgrade) {
      if !Arc::ptr_eq(&other, &self.inner) && other.place == self.inner.place {
        act(other.tracking.copy());
      }
    }
  }

  /// What the local copy holds, and whether the server tracks for it.
  pub fn local_copy_stats(&self) -> CopyStats {
    self.inner.tracking.copy().stats()
  }

  /// `command` off the caller's thread: for bookkeeping nobody waits for.
  pub async fn command_async<T>(
    &self,
    script: &'static Script,
    keys: &[String],
    args: &[String],
  ) -> StorageResult<T>
  where
    T: FromRedisValue + Send + 'static,
  {
    let invocation = invocation(script, keys, args);
    self
      .run_async(
        move |mut connection| async move { invocation.invoke_async(&mut connection).await },
      )
      .await
  }

  /// Runs one command (one round trip) and reads its reply.
  pub fn command<T>(
    &self,
    script: &'static Script,
    keys: &[String],
    args: &[String],
  ) -> StorageResult<T>
  where
    T: FromRedisValue + Send + 'static,
  {
    self.invoke(invocation(script, keys, args), false)
  }

  /// `command` for a write that must outlive a failover (an enqueue).
  pub fn command_replicated<T>(
    &self,
    script: &'static Script,
    keys: &[String],
    args: &[String],
  ) -> StorageResult<T>
  where
    T: FromRedisValue + Send + 'static,
  {
    self.invoke(invocation(script, keys, args), true)
  }

  /// How long a write waits for a replica: half the request's time, so
  /// that the script's own round trip fits in the rest.
  fn replica_wait(&self) -> Duration {
    self.inner.timeout / 2
  }

  /// Runs `task` on the link's runtime.
  pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
    self.inner.handle.spawn(task);
  }

  /// Asks the server whether it answers (one round trip).
  pub fn ping(&self) -> StorageResult<()> {
    self.run(|mut connection| async move {
      redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await
        .map(drop)
    })
  }

  /// Runs one request and waits for it, at most the timeout.
  pub fn run<T, F, Fut>(&self, work: F) -> StorageResult<T>
  where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = RedisResult<T>> + Send + 'static,
    T: Send + 'static,
  {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    let request = self.bounded(self.on_connection(work));
    self.inner.handle.spawn(async move {
      let _ = sender.send(request.await);
    });
    // The task is bounded by the timeout; the margin only covers a runtime
    // that cannot run it at all (shutting down).
    let patience = self.inner.timeout + Duration::from_millis(100);
    let received = wait_blocking(|| receiver.recv_timeout(patience));
    let outcome = received.unwrap_or_else(|_| Err(Failure::TimedOut));
    self.settle(outcome)
  }

  /// Runs one script invocation (one round trip) and reads its reply.
  /// `replicated`: on a cluster whose master has a replica, the reply
  /// counts only once the replica holds the write too; a replica that does
  /// not confirm in time makes it a request without an answer, so the
  /// caller keeps the write to send again (it is idempotent).
  pub fn invoke<T>(
    &self,
    invocation: ScriptInvocation<'static>,
    replicated: bool,
  ) -> StorageResult<T>
  where
    T: FromRedisValue + Send + 'static,
  {
    let within = self.replica_wait();
    self.run(move |connection| run_script(invocation, connection, replicated, within))
  }

  /// `run` for asynchronous callers: the request runs on the link's
  /// runtime and the caller awaits it.
  pub async fn run_async<T, F, Fut>(&self, work: F) -> StorageResult<T>
  where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = RedisResult<T>> + Send + 'static,
    T: Send + 'static,
  {
    let request = self.bounded(self.on_connection(work));
    let joined = self.inner.handle.spawn(request).await;
    let outcome = joined.unwrap_or_else(|_| Err(Failure::TimedOut));
    self.settle(outcome)
  }

  /// `work` on the link's connection, made first if need be (the first
  /// request asks the node whether it is part of a cluster).
  fn on_connection<T, F, Fut>(
    &self,
    work: F,
  ) -> impl Future<Output = RedisResult<T>> + Send + 'static
  where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = RedisResult<T>> + Send + 'static,
    T: Send + 'static,
  {
    let inner = Arc::clone(&self.inner);
    async move { work(inner.connector.connection().await?).await }
  }

  fn bounded<T>(
    &self,
    request: impl Future<Output = RedisResult<T>> + Send + 'static,
  ) -> impl Future<Output = Result<T, Failure>> + Send + 'static
  where
    T: Send + 'static,
  {
    let timeout = self.inner.timeout;
    async move {
      match tokio::time::timeout(timeout, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Failure::Redis(error)),
        Err(_) => Err(Failure::TimedOut),
      }
    }
  }

  /// Notes what the request said about the server and maps its error.
  fn settle<T>(&self, outcome: Result<T, Failure>) -> StorageResult<T> {
    let mut status = self.inner.status.lock();
    match outcome {
      Ok(value) => {
        status.reachable = Some(true);
        drop(status);
        if !self.inner.policy_asked.swap(true, Ordering::AcqRel) {
          let link = self.clone();
          self.spawn(async move { link.check_eviction_policy().await });
        }
        Ok(value)
      }
      Err(failure) => {
        let error = self.describe(failure);
        // A reply the server gave (a key of the wrong type, out of
        // memory) says it is up.
        status.reachable = Some(!error.is_no_answer());
        status.last_error = Some(error.message.clone());
        status.last_error_at = Some(crate::core::clock::now_ms());
        Err(error)
      }
    }
  }

  fn describe(&self, failure: Failure) -> StorageError {
    let (kind, detail) = match failure {
      Failure::TimedOut => (
        StorageErrorKind::Unavailable,
        format!("no reply within {} ms", self.timeout_ms()),
      ),
      Failure::Redis(error) => match certificate_error(&error) {
        Some(problem) => (StorageErrorKind::Unavailable, self.untrusted(problem)),
        None => classify(&error),
      },
    };
    let mut message = format!("Redis at {}: {detail}", self.inner.url);
    if let Some(password) = self.inner.password.as_deref().filter(|p| !p.is_empty()) {
      message = message.replace(password, "***");
    }
    StorageError::new(kind, message)
  }
}

/// What an error from redis-rs says, and what to call it. Only "no answer"
/// (the connection, a timeout, a server busy loading or failing over) is
/// `Unavailable`, the one kind after which a write is kept to be made
/// again: every other error is the server's answer, and it will not change
/// by sending the same write again.
fn classify(error: &RedisError) -> (StorageErrorKind, String) {
  let code = error.code().unwrap_or("");
  let kind = match code {
    "OOM" => StorageErrorKind::Full,
    "NOPERM" => StorageErrorKind::Denied,
    // A cluster or a server in the middle of something, a replica that is
    // not promoted yet: asking again later is the cure.
    "LOADING" | "BUSY" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "READONLY" | "MOVED"
    | "ASK" => StorageErrorKind::Unavailable,
    // A server without scripting (a proxy that leaves EVALSHA out), or a
    // script refused a command its ACL user may not run (reported as ERR
    // from inside the script: "can't run this command", "No permissions").
    "ERR" if refused_by_acl_or_server(&error.to_string()) => StorageErrorKind::Denied,
    // Foreign data at a key (WRONGTYPE), a script the server could not
    // keep (NOSCRIPT after loading it), a script that failed on data it
    // cannot read: an answer about the data.
    _ if matches!(error.kind(), ErrorKind::Server(_) | ErrorKind::Extension) => {
      StorageErrorKind::Corrupt
    }
    _ => StorageErrorKind::Unavailable,
  };
  let detail = match kind {
    StorageErrorKind::Full => format!(
      "the server is out of memory and refuses writes (maxmemory, with the noeviction policy); nothing was written: {error}"
    ),
    StorageErrorKind::Denied => format!(
      "the server refused the command to this user (an ACL must allow EVALSHA, EVAL, SCRIPT LOAD and the prefix's keys); nothing was written: {error}"
    ),
    StorageErrorKind::Corrupt if code == "WRONGTYPE" => format!(
      "a key holds data of another kind (not this library's); nothing was written: {error}"
    ),
    StorageErrorKind::Corrupt => format!("the server refused the command; nothing was written: {error}"),
    _ => error.to_string(),
  };
  (kind, detail)
}

/// `INFO memory`, where the eviction policy is (managed servers allow it
/// where `CONFIG GET` is not).
async fn memory_info(mut connection: Connection) -> RedisResult<String> {
  redis::cmd("INFO")
    .arg("memory")
    .query_async(&mut connection)
    .await
}

/// Runs `invocation` and, when `durable`, waits `within` for a replica to
/// hold what it wrote (`Connection::replicated`).
async fn run_script<T: FromRedisValue>(
  invocation: ScriptInvocation<'static>,
  mut connection: Connection,
  durable: bool,
  within: Duration,
) -> RedisResult<T> {
  let reply = invocation.invoke_async(&mut connection).await?;
  if durable && !connection.replicated(within).await {
    let unconfirmed = std::io::Error::new(
      std::io::ErrorKind::TimedOut,
      format!(
        "no replica confirmed the write within {} ms",
        within.as_millis()
      ),
    );
    return Err(unconfirmed.into());
  }
  Ok(reply)
}

/// A command's invocation: its script with `keys` and `args`.
fn invocation(
  script: &'static Script,
  keys: &[String],
  args: &[String],
) -> ScriptInvocation<'static> {
  let mut invocation = script.prepare_invoke();
  for key in keys {
    invocation.key(key);
  }
  invocation.arg(args);
  invocation
}

/// The same connection info, speaking RESP3 (for the connection that
/// listens for the server's announcements).
fn resp3(info: &ConnectionInfo) -> ConnectionInfo {
  let settings = info
    .redis_settings()
    .clone()
    .set_protocol(ProtocolVersion::RESP3);
  info.clone().set_redis_settings(settings)
}

/// The CA certificates to trust instead of the system's: those of
/// `options.tls_ca`, which only a `rediss://` URL may give.
fn certificates(options: &RedisOptions) -> Result<Option<TlsCertificates>, String> {
  if !is_tls_url(&options.url) {
    if options.tls_ca.is_some() {
      return Err("a TLS CA (redisTlsCa) applies only to a rediss:// URL".into());
    }
    return Ok(None);
  }
  install_crypto_provider();
  let Some(path) = &options.tls_ca else {
    return Ok(None);
  };
  Ok(Some(TlsCertificates {
    client_tls: None,
    root_cert: Some(read_ca(path)?),
  }))
}

/// The client of `info`, trusting `certificates` (over TLS) when given.
fn client(
  info: ConnectionInfo,
  certificates: Option<TlsCertificates>,
) -> Result<redis::Client, String> {
  match certificates {
    None => redis::Client::open(info).map_err(|e| e.to_string()),
    Some(certificates) => {
      redis::Client::build_with_tls(info, certificates).map_err(|e| format!("the TLS CA file: {e}"))
    }
  }
}

/// The PEM file of `redisTlsCa`, checked to hold at least one certificate
/// (one that holds none would fail every handshake, later and less clearly).
fn read_ca(path: &Path) -> Result<Vec<u8>, String> {
  let bytes = std::fs::read(path)
    .map_err(|e| format!("cannot read the TLS CA file {}: {e}", path.display()))?;
  let mut certificates = 0;
  for certificate in CertificateDer::pem_slice_iter(&bytes) {
    certificate.map_err(|e| format!("the TLS CA file {}: {e}", path.display()))?;
    certificates += 1;
  }
  if certificates == 0 {
    return Err(format!(
      "the TLS CA file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
      path.display()
    ));
  }
  Ok(bytes)
}

/// Makes `ring` rustls's process-wide crypto provider, once. The addon
/// builds rustls with `ring` alone, so rustls would pick it by itself; the
/// explicit choice keeps it so should another crate ever enable a second
/// provider (rustls then refuses to guess). A provider already installed
/// (`install_default` says so) is kept.
fn install_crypto_provider() {
  static INSTALLED: Once = Once::new();
  INSTALLED.call_once(|| {
    let _ = rustls::crypto::ring::default_provider().install_default();
  });
}

impl RedisLink {
  /// Why the server's certificate was refused, and what to do about it.
  fn untrusted(&self, problem: &CertificateError) -> String {
    let why = match (problem, &self.inner.tls_ca) {
      (CertificateError::UnknownIssuer, Some(path)) => {
        format!("no CA certificate of {} signed it", path.display())
      }
      (CertificateError::UnknownIssuer, None) => "it does not chain to the system's root certificates; for a server with a self-signed certificate, give its CA's PEM file as redisTlsCa (or FALLBACK_MECHANISMS_REDIS_TLS_CA)".into(),
      (CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }, _) => {
        "it was not issued for the URL's host".into()
      }
      _ => "see the reason in parentheses".into(),
    };
    format!("the server's TLS certificate is not trusted ({problem:?}): {why}")
  }
}

/// The certificate error of a refused TLS handshake: rustls's error, inside
/// the I/O error of tokio-rustls, inside redis-rs's (which holds it in an
/// `Arc`, so its `source` is the `Arc`).
fn certificate_error(error: &RedisError) -> Option<&CertificateError> {
  type Shared = Arc<dyn std::error::Error + Send + Sync>;
  let source = std::error::Error::source(error)?;
  let io = match source.downcast_ref::<Shared>() {
    Some(shared) => shared.downcast_ref::<std::io::Error>(),
    None => source.downcast_ref::<std::io::Error>(),
  }?;
  match io.get_ref()?.downcast_ref::<rustls::Error>()? {
    rustls::Error::InvalidCertificate(problem) => Some(problem),
    _ => None,
  }
}

enum Failure {
  TimedOut,
  Redis(RedisError),
}

/// Runs `wait`, a blocking wait, where blocking is allowed: inside
/// `block_in_place` on a worker of a multi-threaded runtime, as it is
/// elsewhere.
fn wait_blocking<T>(wait: impl FnOnce() -> T) -> T {
  match Handle::try_current() {
    Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => {
      tokio::task::block_in_place(wait)
    }
    _ => wait(),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn passwords_are_hidden() {
    assert_eq!(
      redact_url("redis://user:secret@host:6379/2"),
      "redis://user:***@host:6379/2"
    );
    assert_eq!(redact_url("redis://:secret@host"), "redis://:***@host");
    assert_eq!(redact_url("redis://host:1/0"), "redis://host:1/0");
    let error = check_url("http://:hunter2@host").unwrap_err();
    assert!(!error.contains("hunter2"), "{error}");
    // A password with an unencoded '/', '?' or '#' breaks the URL; the
    // message saying so must not show it either.
    for url in [
      "redis://:pa/ss@host",
      "redis://u:pa?ss@host:1/0",
      "redis://:pa#ss@host",
      "redis://u:a/b?c#d@host/2",
    ] {
      let error = check_url(url).unwrap_err();
      assert!(!error.contains("pa") && !error.contains("a/b"), "{error}");
      assert!(error.contains("***@host"), "{error}");
    }
  }

  #[test]
  fn urls_and_prefixes_are_checked() {
    assert!(check_url("redis://127.0.0.1:6379/3").is_ok());
    assert!(check_url("redis://u:p@localhost").is_ok());
    assert!(check_url("rediss://u:p@localhost:6380/1").is_ok());
    let insecure = check_url("rediss://:hunter2@localhost#insecure").unwrap_err();
    assert!(
      insecure.contains("redisTlsCa") && !insecure.contains("hunter2"),
      "{insecure}"
    );
    assert!(check_url("localhost:6379").is_err());
    assert!(check_prefix("app").is_ok());
    assert!(check_prefix("").is_err());
    assert!(check_prefix("a{b}").is_err());
  }

  #[test]
  fn a_list_of_seed_urls_is_checked_and_hidden_url_by_url() {
    let list = "redis://:s3cret@10.0.0.1:7000, redis://10.0.0.2:7001,redis://u:a,b@10.0.0.3";
    assert_eq!(
      seed_urls(list),
      [
        "redis://:s3cret@10.0.0.1:7000",
        "redis://10.0.0.2:7001",
        "redis://u:a,b@10.0.0.3"
      ]
    );
    assert!(check_url(list).is_ok());
    assert_eq!(
      redact_url(list),
      "redis://:***@10.0.0.1:7000,redis://10.0.0.2:7001,redis://u:***@10.0.0.3"
    );
    let mixed = check_url("redis://:s3cret@a:1,rediss://b:2").unwrap_err();
    assert!(
      mixed.contains("all rediss://") && !mixed.contains("s3cret"),
      "{mixed}"
    );
    assert!(check_url("redis://a:1,redis://:p@b:notaport").is_err());
  }

  #[test]
  fn a_tls_ca_must_be_a_pem_file_of_certificates_for_a_rediss_url() {
    let runtime = tokio::runtime::Builder::new_current_thread()
      .build()
      .unwrap();
    let dir = crate::core::storage::sqlite::test_dir("redis-tls-ca");
    let connect = |url: &str, tls_ca: PathBuf| {
      let options = RedisOptions {
        tls_ca: Some(tls_ca),
        ..RedisOptions::new(url)
      };
      let error = RedisLink::connect(&options, runtime.handle().clone())
        .err()
        .unwrap();
      assert_eq!(error.kind, StorageErrorKind::Unavailable);
      error.message
    };
    let missing = connect("rediss://127.0.0.1:1", dir.join("missing.pem"));
    assert!(missing.contains("cannot read the TLS CA file"), "{missing}");
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let empty = connect("rediss://127.0.0.1:1", not_pem.clone());
    assert!(empty.contains("holds no PEM certificate"), "{empty}");
    let plain = connect("redis://127.0.0.1:1", not_pem);
    assert!(plain.contains("only to a rediss:// URL"), "{plain}");
    let _ = std::fs::remove_dir_all(&dir);
  }
}
