//! The integration failure history in Redis: every operation is one run of
//! `failures.lua` (one round trip, atomic on the server), so every instance
//! counts the failures all of them recorded. The window (`windowMs`) stays
//! each instance's own, as with a SQLite file: it only says what
//! `should_skip` counts. The bounds are the server's: the last instance
//! that set them set them for all. Cooldowns live in the same script and
//! keys; a bench made while the server is away is not kept to send later
//! (it reports the problem: the caller's call is benched nowhere).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redis::Value;

use super::commands::{self, FailureCommand, FAILURE_KEYS};
use super::link::RedisLink;
use super::local_copy::Depends;
use super::outbox::{FollowUp, Write, WriteKind};
use super::records::RedisRecords;
use super::reply;
use crate::core::cooldown::{self, Cooldown};
use crate::core::failures::record::{FailureConfig, FailureRecord, ServiceStats};
use crate::core::shared::records::{Change, Key, Kind};
use crate::core::storage::error::StorageResult;
use crate::core::storage::traits::{FailureStore, Location, Page};

/// Failures a listing reads, and services `stats` reads, per round trip
/// (at most the commands' `BATCH`, which caps what one run reads).
const LIST_BATCH: usize = 50;
/// The highest rank a listing asks for (Lua prints larger numbers with an
/// exponent, which Redis takes for no rank at all).
const MAX_RANK: usize = 1 << 40;

#[derive(Clone)]
pub struct RedisFailures {
  link: RedisLink,
  /// `KEYS` of every command: the head, then `FAILURE_KEYS`.
  keys: Arc<[String]>,
  config: FailureConfig,
  /// Record ids: this instance's, never reused (shared with the detached
  /// copies).
  next_record: Arc<AtomicU64>,
  /// The shared guards' records (`records.rs`).
  records: RedisRecords,
}

impl RedisFailures {
  /// Takes the bounds another instance set, if the server is there to say;
  /// opening never changes what is held.
  pub fn open(link: RedisLink, config: FailureConfig) -> StorageResult<Self> {
    let keys = commands::keys(&link.key("f:"), &FAILURE_KEYS).into();
    let seed =
      std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 2u8);
    let mut failures = Self {
      records: RedisRecords::new(link.clone()),
      link,
      keys,
      config,
      next_record: Arc::new(AtomicU64::new(seed)),
    };
    // Failures a previous process kept in the file can be merged now.
    let record = FailureCommand::Record.script();
    failures
      .link
      .resume(WriteKind::Failure, record, &FAILURE_KEYS);
    if let Ok(stored) = failures.call::<Vec<Option<u64>>>(FailureCommand::Bound, &[]) {
      failures.apply_bounds(&stored);
    }
    Ok(failures)
  }

  pub fn link(&self) -> &RedisLink {
    &self.link
  }

  /// The key of one service's failure times (`failures.lua`'s `t:<name>`).
  fn times_key(&self, service: &str) -> String {
    self.link.key(&format!("f:t:{service}"))
  }

  /// The commands' arguments: the history's bounds, then the command's
  /// own.
  fn script_args(&self, args: &[&str]) -> Vec<String> {
    let mut all = vec![
      self.config.max_per_service.to_string(),
      self.config.max_services.to_string(),
      self.config.max_bytes.to_string(),
    ];
    all.extend(args.iter().map(|arg| arg.to_string()));
    all
  }

  fn call<T: redis::FromRedisValue + Send + 'static>(
    &self,
    command: FailureCommand,
    args: &[&str],
  ) -> StorageResult<T> {
    self
      .link
      .command(command.script(), &self.keys, &self.script_args(args))
  }

  /// Keeps a failure the server did not answer for, to be merged when it
  /// answers. What waits here is bounded like the history: past its
  /// `maxBytes` (or `maxPerService` x `maxServices` records) the oldest
  /// kept failure goes first, as it would on the server.
  fn keep_locally(&self, args: &[&str], bytes: usize) -> StorageResult<()> {
    let outbox = self.link.outbox();
    let room = self
      .config
      .max_per_service
      .saturating_mul(self.config.max_services);
    loop {
      let (count, held) = outbox.held(WriteKind::Failure);
      let fits = count < room && held.saturating_add(bytes) <= self.config.max_bytes;
      if fits || !outbox.drop_oldest(WriteKind::Failure) {
        break;
      }
    }
    let args = self.script_args(args);
    let script = FailureCommand::Record.script();
    let write = Write::new(script, self.keys.to_vec(), args, WriteKind::Failure, bytes);
    self.link.keep(write)
  }

  /// A whole sorted set, members and scores: from the local copy while the
  /// server tracks it, else one round trip.
  fn tracked_zset(&self, key: &str) -> StorageResult<Arc<Value>> {
    let read = key.to_owned();
    self
      .link
      .tracked_read(key, Depends::Key, move |mut connection| async move {
        redis::cmd("ZRANGE")
          .arg(&read)
          .arg(0)
          .arg(-1)
          .arg("WITHSCORES")
          .query_async::<Value>(&mut connection)
          .await
      })
  }

  /// Goes on applying the stored bounds to what is held, a bounded step
  /// per run, from where `step` (`{more, from}`) left off.
  fn fit(&self, step: (i64, u64)) -> StorageResult<()> {
    let (mut more, mut from) = step;
    while more == 1 {
      (more, from) = self.call(FailureCommand::Fit, &[&from.to_string()])?;
    }
    Ok(())
  }

  fn apply_bounds(&mut self, bounds: &[Option<u64>]) {
    let bound = |i: usize, current: usize| {
      bounds
        .get(i)
        .copied()
        .flatten()
        .map_or(current, |n| n as usize)
    };
    self.config.max_per_service = bound(0, self.config.max_per_service);
    self.config.max_services = bound(1, self.config.max_services);
    self.config.max_bytes = bound(2, self.config.max_bytes);
  }
}

/// Whether `set_bound` or `fit` replied that more is left to do (their
/// reply is `{more, from}`), and the rank to go on from.
fn more_to_fit(reply: &Value) -> Option<Option<String>> {
  let Value::Array(pair) = reply else {
    return None;
  };
  let more = pair.first() == Some(&Value::Int(1));
  more.then(|| pair.get(1).and_then(reply::text))
}

/// A failure as the script keeps it: each field as its length in bytes, a
/// colon, then the field, so that no text can be mistaken for a separator.
fn encode(timestamp: u64, fields: [&str; 4]) -> String {
  let timestamp = timestamp.to_string();
  let mut encoded = String::new();
  for field in std::iter::once(timestamp.as_str()).chain(fields) {
    encoded.push_str(&field.len().to_string());
    encoded.push(':');
    encoded.push_str(field);
  }
  encoded
}

/// The failure `m` (its sequence number as text) from `encode`'s form;
/// `None` for anything else.
fn decode(m: &Value, encoded: &Value) -> Option<FailureRecord> {
  let seq = reply::text(m)?.parse().ok()?;
  let Value::BulkString(bytes) = encoded else {
    return None;
  };
  let mut rest = std::str::from_utf8(bytes).ok()?;
  let mut next = || {
    let (length, after) = rest.split_once(':')?;
    let length: usize = length.parse().ok()?;
    let field = after.get(..length)?;
    rest = &after[length..];
    Some(field)
  };
  let timestamp = next()?.parse().ok()?;
  let (service, operation, error, skip_reason) = (next()?, next()?, next()?, next()?);
  Some(FailureRecord {
    service: Arc::from(service),
    operation: operation.to_owned(),
    error: error.to_owned(),
    timestamp,
    skip_reason: skip_reason.to_owned(),
    seq,
  })
}

/// `[name, first m, count, last timestamp]`, as the script's `stats` gives
/// one service, with the first failure's sequence number to sort by.
fn read_stats(value: &Value) -> Option<(u64, ServiceStats)> {
  let Value::Array(fields) = value else {
    return None;
  };
  let text = |i: usize| fields.get(i).and_then(reply::text);
  let first = text(1)?.parse().ok()?;
  let last_failure = text(3)?.parse::<f64>().ok()?.max(0.0) as u64;
  Some((
    first,
    ServiceStats {
      service: Arc::from(text(0)?),
      count: text(2)?.parse().ok()?,
      last_failure,
    },
  ))
}

/// A millisecond instant from a reply (a zset score as text).
fn instant(value: &Value) -> Option<u64> {
  let ms: f64 = reply::text(value)?.parse().ok()?;
  (ms.is_finite() && ms >= 0.0).then_some(ms as u64)
}

/// `[name, end, "<since>:<reason>"]`, as the script's `cooldowns` gives one.
fn read_cooldown(fields: &[Value]) -> Option<Cooldown> {
  let (since, reason) = reply::text(&fields[2])?
    .split_once(':')
    .map(|(since, reason)| (since.parse().ok(), reason.to_owned()))?;
  Some(Cooldown {
    name: Arc::from(reply::text(&fields[0])?),
    since: since?,
    until: instant(&fields[1])?,
    reason,
  })
}

/// `'one'` and the service, or `'all'`, as the script's `list` and `clear`
/// take them.
fn scope(service: Option<&str>) -> [&str; 2] {
  match service {
    Some(name) => ["one", name],
    None => ["all", ""],
  }
}

impl FailureStore for RedisFailures {
  fn config(&self) -> FailureConfig {
    self.config
  }

  /// The bounds become the server's, for every instance, and apply at once
  /// to what is held; the window stays this instance's.
  fn set_config(&mut self, config: FailureConfig) -> StorageResult<()> {
    let per_service = config.max_per_service.to_string();
    let services = config.max_services.to_string();
    let bytes = config.max_bytes.to_string();
    let bounds = [per_service.as_str(), &services, &bytes];
    let previous = std::mem::replace(&mut self.config, config);
    let sent = self
      .call::<(i64, u64)>(FailureCommand::SetBound, &bounds)
      .and_then(|step| self.fit(step));
    // Asked for while the server is away: used here at once, and stored
    // for every instance when it answers.
    let outcome = self.link.sent_or_kept(sent, || {
      let args = self.script_args(&bounds);
      let script = FailureCommand::SetBound.script();
      let fit = FollowUp {
        script: FailureCommand::Fit.script(),
        args: self.script_args(&[]),
        more: more_to_fit,
      };
      Write::new(script, self.keys.to_vec(), args, WriteKind::Bound, 0).then(fit)
    });
    if outcome.is_err() {
      self.config = previous;
    }
    outcome
  }

  fn record(
    &mut self,
    service: &str,
    operation: &str,
    error: &str,
    skip_reason: &str,
    now: u64,
  ) -> StorageResult<()> {
    let record = FailureRecord::new(service.into(), operation, error, skip_reason, now, 0);
    let encoded = encode(
      now,
      [service, operation, &record.error, &record.skip_reason],
    );
    let stored_bytes = record.stored_bytes();
    let bytes = stored_bytes.to_string();
    let now = now.to_string();
    let id = format!("{:016x}", self.next_record.fetch_add(1, Ordering::Relaxed));
    let args = [id.as_str(), service, now.as_str(), &encoded, &bytes];
    let times = self.times_key(service);
    self.link.changing(&times);
    let applied = self.call(FailureCommand::Record, &args);
    self.link.changing(&times);
    let applied: Vec<u64> = match applied {
      Ok(applied) => applied,
      // No answer: kept here and merged when the server answers (sent
      // again, it still counts once: the server knows its id).
      Err(away) if away.is_no_answer() => return self.keep_locally(&args, stored_bytes),
      Err(error) => return Err(error),
    };
    // The server's bounds, as another instance may have set them since.
    self.apply_bounds(&applied.into_iter().map(Some).collect::<Vec<_>>());
    Ok(())
  }

  /// Counts through the service's timestamps (at most `maxPerService`),
  /// held in the local copy while the server tracks them, else read with
  /// one `ZRANGE`.
  fn should_skip(&mut self, service: &str, threshold: f64, now: u64) -> StorageResult<bool> {
    let since = now.saturating_sub(self.config.window_ms) as f64;
    let times = self.tracked_zset(&self.times_key(service))?;
    let Value::Array(pairs) = &*times else {
      return Ok(false);
    };
    let recent = pairs
      .chunks_exact(2)
      .filter_map(|pair| reply::text(&pair[1])?.parse::<f64>().ok())
      .filter(|&at| at >= since)
      .count();
    Ok(recent as f64 >= threshold)
  }

  /// One page, oldest first: one service's log or the global order, read
  /// by rank (O(log n + page) on the server).
  fn failures(&mut self, service: Option<&str>, page: Page) -> StorageResult<Vec<FailureRecord>> {
    if page.limit == Some(0) {
      return Ok(Vec::new());
    }
    let [which, name] = scope(service);
    let mut records = Vec::new();
    // Beyond any set's size, and an integer Lua writes out whole.
    let mut first = page.offset.min(MAX_RANK);
    let mut wanted = page.limit.unwrap_or(usize::MAX);
    // A page per run (one round trip each), so a long history never holds
    // the server for long; other instances' records may land in between.
    while wanted > 0 {
      let asked = wanted.min(LIST_BATCH);
      let reply: Value = self.call(
        FailureCommand::List,
        &[which, name, &first.to_string(), &asked.to_string()],
      )?;
      let Value::Array(items) = reply else {
        break;
      };
      let read = items.len() / 2;
      records.extend(
        items
          .chunks_exact(2)
          .filter_map(|pair| decode(&pair[0], &pair[1])),
      );
      if read < asked {
        break;
      }
      first += read;
      wanted -= read;
    }
    Ok(records)
  }

  fn bytes(&mut self) -> StorageResult<usize> {
    self.call(FailureCommand::Bytes, &[])
  }

  fn clear(&mut self, service: Option<&str>) -> StorageResult<bool> {
    let [which, name] = scope(service);
    self.link.changing_all();
    let mut held = false;
    // All of them a batch of services per run.
    let cleared = loop {
      match self.call::<(i64, i64)>(FailureCommand::Clear, &[which, name]) {
        Ok((any, more)) => {
          held |= any == 1;
          if more == 0 {
            break Ok(held);
          }
        }
        Err(error) => break Err(error),
      }
    };
    self.link.changing_all();
    cleared
  }

  /// One pass over the services held (O(services log n) on the server),
  /// sorted here by each one's oldest failure.
  /// Read a page of services per run (each one round trip), so many
  /// services never hold the server for long; not one snapshot then.
  fn stats(&mut self) -> StorageResult<Vec<ServiceStats>> {
    const PAGE: usize = LIST_BATCH;
    let mut stats: Vec<(u64, ServiceStats)> = Vec::new();
    for first in (0..).step_by(PAGE) {
      let reply: Value = self.call(
        FailureCommand::Stats,
        &[&first.to_string(), &PAGE.to_string()],
      )?;
      let Value::Array(items) = reply else {
        break;
      };
      stats.extend(items.iter().filter_map(read_stats));
      if items.len() < PAGE {
        break;
      }
    }
    stats.sort_by_key(|(first, _)| *first);
    Ok(stats.into_iter().map(|(_, s)| s).collect())
  }

  /// One script run: checks, lengthens or adds, and drops the ended
  /// cooldowns.
  fn bench(&mut self, name: &str, until: u64, reason: &str, now: u64) -> StorageResult<()> {
    if until <= now {
      return Ok(());
    }
    let reason = cooldown::reason(reason);
    let (until, now) = (until.to_string(), now.to_string());
    let benched = self.link.key("f:cdu");
    self.link.changing(&benched);
    let done = self
      .call::<i64>(FailureCommand::Bench, &[name, &until, &now, &reason])
      .map(drop);
    self.link.changing(&benched);
    done
  }

  /// The benched names and their ends, read whole (at most
  /// `max_services` of them) from the local copy while the server tracks
  /// it, else in one round trip: a chain on Redis asks before every call.
  fn cooldowns_of(&mut self, names: &[&str], now: u64) -> StorageResult<Vec<Option<u64>>> {
    if names.is_empty() {
      return Ok(Vec::new());
    }
    let ends = self.tracked_zset(&self.link.key("f:cdu"))?;
    let Value::Array(pairs) = &*ends else {
      return Ok(vec![None; names.len()]);
    };
    let benched: std::collections::HashMap<String, u64> = pairs
      .chunks_exact(2)
      .filter_map(|pair| Some((reply::text(&pair[0])?, instant(&pair[1])?)))
      .collect();
    let end_of = |name: &str| benched.get(name).copied();
    Ok(
      names
        .iter()
        .map(|name| end_of(name).filter(|&end| end > now).map(|end| end - now))
        .collect(),
    )
  }

  fn cooldowns(&mut self, now: u64) -> StorageResult<Vec<Cooldown>> {
    let reply: Value = self.call(FailureCommand::Cooldowns, &[&now.to_string()])?;
    let Value::Array(items) = reply else {
      return Ok(Vec::new());
    };
    let mut all: Vec<Cooldown> = items.chunks_exact(3).filter_map(read_cooldown).collect();
    cooldown::sort(&mut all);
    Ok(all)
  }

  fn update_records(&mut self, keys: &[Key], change: &mut Change, now: u64) -> StorageResult<()> {
    self.records.update(keys, change, now)
  }

  fn records(&mut self, kind: Kind, now: u64) -> StorageResult<Vec<(String, String)>> {
    self.records.list(kind, now)
  }

  fn detached(&self) -> Option<Box<dyn FailureStore>> {
    Some(Box::new(self.clone()))
  }

  fn location(&self) -> Location<'_> {
    Location::Redis(self.link.place())
  }
}

#[cfg(test)]
mod tests {
  use crate::core::limits;
  use std::sync::atomic::{AtomicUsize, Ordering};

  use super::*;
  use crate::core::failures::behaviour;
  use crate::core::storage::error::StorageErrorKind;
  use crate::core::storage::redis::test_server::{self, TestServer};

  fn history(server: &TestServer, prefix: &str, config: FailureConfig) -> RedisFailures {
    RedisFailures::open(server.link(prefix), config).unwrap()
  }

  /// Runs one command on the server behind `link`, to plant foreign data.
  fn raw(link: &RedisLink, args: &[&str]) -> Value {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
      command.arg(*arg);
    }
    link
      .run(move |mut connection| async move { command.query_async(&mut connection).await })
      .unwrap()
  }

  #[test]
  fn behaves_like_the_memory_window() {
    let server = TestServer::start();
    let opened = AtomicUsize::new(0);
    behaviour::all(&|config| {
      let prefix = format!("same-{}", opened.fetch_add(1, Ordering::Relaxed));
      Box::new(history(&server, &prefix, config))
    });
  }

  #[test]
  fn two_instances_on_one_prefix_share_the_cooldowns() {
    let server = TestServer::start();
    let config = FailureConfig::default();
    let (mut a, mut b) = (
      history(&server, "benched", config),
      history(&server, "benched", config),
    );
    behaviour::cooldowns_are_shared(&mut a, &mut b);
    // Another prefix is another store.
    a.bench("gpt", 1_000, "r", 0).unwrap();
    let mut other = history(&server, "elsewhere", config);
    assert_eq!(other.cooldowns_of(&["gpt"], 0).unwrap(), [None]);
  }

  #[test]
  fn ends_past_what_a_lua_number_prints_exactly_are_kept_exactly() {
    let server = TestServer::start();
    let mut w = history(&server, "exact", FailureConfig::default());
    let now = (1u64 << 52) + 1;
    w.bench("gpt", now + 3, "r", now).unwrap();
    w.bench("gpt", now + 5, "longer", now + 1).unwrap();
    assert_eq!(w.cooldowns_of(&["gpt"], now + 1).unwrap(), [Some(4)]);
    let held = w.cooldowns(now).unwrap().remove(0);
    assert_eq!((held.since, held.until), (now, now + 5));
  }

  #[test]
  fn two_instances_share_the_history_and_the_bounds() {
    let server = TestServer::start();
    let mut a = history(&server, "shared", FailureConfig::default());
    let mut b = history(&server, "shared", FailureConfig::default());
    assert!(!b.should_skip("payments", 3.0, 100).unwrap());
    for at in [10, 20, 30] {
      a.record("payments", "charge", "503", "down", at).unwrap();
    }
    assert!(b.should_skip("payments", 3.0, 100).unwrap());
    assert_eq!(b.failures(None, Page::ALL).unwrap().len(), 3);
    // The window is each instance's own, as with a SQLite file.
    let narrow = FailureConfig {
      window_ms: 15,
      ..FailureConfig::default()
    };
    let mut c = history(&server, "shared", narrow);
    assert!(!c.should_skip("payments", 2.0, 40).unwrap());
    assert!(c.should_skip("payments", 1.0, 40).unwrap());
    // Bounds set through one instance are everyone's, at once.
    a.set_config(FailureConfig {
      max_per_service: 2,
      ..FailureConfig::default()
    })
    .unwrap();
    assert_eq!(b.failures(Some("payments"), Page::ALL).unwrap().len(), 2);
    b.record("payments", "charge", "503", "down", 40).unwrap();
    assert_eq!(b.config().max_per_service, 2, "b took the server's bound");
    assert_eq!(b.failures(Some("payments"), Page::ALL).unwrap().len(), 2);
    let late = history(&server, "shared", FailureConfig::default());
    assert_eq!(late.config().max_per_service, 2);
    assert_eq!(b.location(), Location::Redis(b.link.place()));
    assert!(b.link.place().contains(&server.url()));
  }

  #[test]
  fn any_name_and_text_is_kept_and_order_is_recording_order() {
    let server = TestServer::start();
    let mut w = history(&server, "texts", FailureConfig::default());
    let long = "é".repeat(limits::MAX_TEXT_BYTES);
    let odd = "a:1:b\n{x}:s:";
    // Timestamps out of order (two instances' clocks) leave the order be.
    w.record(odd, odd, &long, "3:abc", 9_000).unwrap();
    w.record("x", "op", "e", "r", 2_000).unwrap();
    w.record("s:x", "op", "e", "r", 1_000).unwrap();
    w.record(odd, "later", "e", "r", 500).unwrap();
    let record = w.failures(Some(odd), Page::ALL).unwrap().remove(0);
    assert_eq!((&*record.service, record.operation.as_str()), (odd, odd));
    assert_eq!(record.error, limits::clip(&long));
    assert_eq!(record.skip_reason, "3:abc");
    assert_eq!(record.timestamp, 9_000);
    let all = w.failures(None, Page::ALL).unwrap();
    let order: Vec<&str> = all.iter().map(|r| &*r.service).collect();
    assert_eq!(order, [odd, "x", "s:x", odd]);
    // "s:" + a name never meets another service's keys.
    assert_eq!(w.failures(Some("x"), Page::ALL).unwrap().len(), 1);
    assert!(w.should_skip(odd, 2.0, 9_000).unwrap());
  }

  #[test]
  fn a_key_of_the_wrong_type_is_corrupt_and_nothing_is_touched() {
    let server = TestServer::start();
    let mut w = history(&server, "foreign", FailureConfig::default());
    w.record("good", "op", "e", "r", 0).unwrap();
    w.record("bad", "op", "e", "r", 1).unwrap();
    let link = server.link("foreign");
    let planted = link.key("f:t:bad");
    raw(&link, &["DEL", &planted]);
    raw(&link, &["SET", &planted, "not ours"]);
    let before = w.failures(None, Page::ALL).unwrap();
    let seq = raw(&link, &["GET", &link.key("f:seq")]);
    let corrupt = |result: StorageResult<bool>| {
      let error = result.unwrap_err();
      assert_eq!(error.kind, StorageErrorKind::Corrupt, "{}", error.message);
    };
    corrupt(w.record("bad", "op", "e", "r", 2).map(|_| true));
    corrupt(w.clear(Some("bad")));
    corrupt(w.clear(None));
    corrupt(w.should_skip("bad", 1.0, 2));
    let lower = FailureConfig {
      max_per_service: 1,
      ..FailureConfig::default()
    };
    corrupt(w.set_config(lower).map(|_| true));
    assert_eq!(w.config(), FailureConfig::default());
    assert_eq!(w.failures(None, Page::ALL).unwrap(), before);
    assert_eq!(raw(&link, &["GET", &link.key("f:seq")]), seq);
    let kept = raw(&link, &["GET", &planted]);
    assert_eq!(kept, Value::BulkString(b"not ours".to_vec()));
    // The other services go on working.
    w.record("good", "op", "e", "r", 3).unwrap();
    assert!(w.should_skip("good", 2.0, 3).unwrap());
    // A fixed key of the wrong type, too.
    raw(&link, &["DEL", &link.key("f:all")]);
    raw(&link, &["SET", &link.key("f:all"), "x"]);
    corrupt(w.record("good", "op", "e", "r", 4).map(|_| true));
    // Every command checks every fixed key first, reads too.
    corrupt(w.failures(Some("good"), Page::ALL).map(|_| true));
    let held = raw(&link, &["ZCARD", &link.key("f:s:good")]);
    assert_eq!(held, Value::Int(2), "nothing was written");
  }

  #[test]
  fn an_unreachable_server_is_unavailable_within_the_timeout() {
    let (_runtime, link) = TestServer::unreachable(200);
    let mut w = RedisFailures::open(link, FailureConfig::default()).unwrap();
    let started = std::time::Instant::now();
    let error = w.should_skip("s", 1.0, 0).unwrap_err();
    assert_eq!(error.kind, StorageErrorKind::Unavailable);
    assert!(!error.message.contains(test_server::PASSWORD));
    // Kept here, to be merged when the server answers.
    w.record("s", "op", "e", "r", 0).unwrap();
    assert_eq!(w.link().outbox().failures(), 1);
    assert!(started.elapsed() < std::time::Duration::from_millis(1500));
    assert_eq!(w.link().status().reachable, Some(false));
  }
}
