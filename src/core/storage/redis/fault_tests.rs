//! The faults real servers have every week, against a real `redis-server`:
//! a reply that comes after `redisTimeoutMs` (the server paused), a key the
//! server lost, a server that refuses writes (out of memory, an ACL),
//! foreign data at each of the queue's keys, and sends made twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;

use super::commands::{CacheCommand, FailureCommand, QueueCommand, RecordCommand, QUEUE_KEYS};
use super::failures::RedisFailures;
use super::link::RedisLink;
use super::queue::{missing_jobs, RedisQueue, JOB_MISSING};
use super::test_server::TestServer;
use crate::core::cache::{CacheConfig, EntryText};
use crate::core::failures::FailureConfig;
use crate::core::notices;
use crate::core::queue::{JobPriority, JobStatus, JobType, NewJob, QueueConfig, QueueError};
use crate::core::storage::error::StorageErrorKind;
use crate::core::storage::redis::RedisCache;
use crate::core::storage::traits::{CacheStore, FailureStore, JobFilter, Page, QueueStore};

fn new_job(user: &str, max_retries: u32) -> NewJob {
  NewJob {
    job_type: JobType::Ai,
    operation: "op".into(),
    payload: Some("{\"a\":1}".into()),
    user_id: user.into(),
    priority: JobPriority::Medium,
    retry_count: 0,
    max_retries,
    next_retry_at: None,
  }
}

/// Waits (at most 20 s: far past any timeout here) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
  let deadline = Instant::now() + Duration::from_secs(20);
  while !done() {
    assert!(Instant::now() < deadline, "{what}");
    std::thread::sleep(Duration::from_millis(20));
  }
}

fn outbox_empty(link: &RedisLink) -> bool {
  link.outbox().waiting() == 0
}

/// Every key under `prefix` with its type and content, to tell that a
/// refused command wrote nothing.
fn snapshot(server: &TestServer, prefix: &str) -> Vec<(String, Value)> {
  let Value::Array(keys) = server.command(&["KEYS", &format!("{{{prefix}}}:*")]) else {
    panic!("KEYS");
  };
  let mut keys: Vec<String> = keys
    .iter()
    .map(|k| super::reply::text(k).unwrap())
    .collect();
  keys.sort();
  keys
    .into_iter()
    .map(|key| {
      let dump = server.command(&["DUMP", &key]);
      (key, dump)
    })
    .collect()
}

#[test]
fn a_lease_whose_reply_came_too_late_is_given_back_untried() {
  let server = TestServer::start();
  let link = server.link_with("late-lease", 200, None);
  let mut q = RedisQueue::open(link.clone(), QueueConfig::default()).unwrap();
  let id = q.enqueue(new_job("u", 1), 0).unwrap();
  server.pause();
  let error = q.dequeue(1).unwrap_err();
  assert_eq!(error.kind, StorageErrorKind::Unavailable);
  std::thread::sleep(Duration::from_millis(300));
  // The server now runs the lease it was sent, then the revoke.
  server.resume();
  eventually("the revoke was sent", || outbox_empty(&link));
  let job = q.get(&id, 2).unwrap().unwrap();
  assert_eq!(
    (job.status, job.retry_count, job.lease_until),
    (JobStatus::Pending, 0, None),
    "back to pending untried, not left leased to nobody"
  );
  // It is served, and runs: with maxRetries 1 it never reached a dead
  // letter for want of a worker.
  let leased = q.dequeue(3).unwrap().unwrap();
  assert_eq!(leased.id, id);
  assert!(q.complete(&id, 4).unwrap());
  assert_eq!(q.get(&id, 5).unwrap().unwrap().status, JobStatus::Completed);
}

#[test]
fn a_revoke_that_arrives_first_refuses_the_late_lease() {
  let server = TestServer::start();
  let mut q = RedisQueue::open(server.link("revoke-first"), QueueConfig::default()).unwrap();
  let id = q.enqueue(new_job("u", 1), 0).unwrap();
  let run = |command: QueueCommand, args: &[&str]| -> Value { q.call(command, 1, args).unwrap() };
  assert_eq!(run(QueueCommand::Revoke, &["token-1"]), Value::Int(0));
  assert_eq!(run(QueueCommand::Lease, &["token-1", ""]), Value::Nil);
  let job = q.clone().get(&id, 2).unwrap().unwrap();
  assert_eq!(job.status, JobStatus::Pending);
  // Another token leases it; revoking that token gives it back.
  assert!(matches!(
    run(QueueCommand::Lease, &["token-2", ""]),
    Value::Array(_)
  ));
  assert_eq!(run(QueueCommand::Revoke, &["token-2"]), Value::Int(1));
  let job = q.get(&id, 3).unwrap().unwrap();
  assert_eq!((job.status, job.retry_count), (JobStatus::Pending, 0));
}

#[test]
fn a_missing_job_hash_is_dropped_and_the_next_job_is_served() {
  let server = TestServer::start();
  let link = server.link("missing");
  let mut q = RedisQueue::open(link.clone(), QueueConfig::default()).unwrap();
  let first = q.enqueue(new_job("u", 3), 0).unwrap();
  let second = q.enqueue(new_job("u", 3), 1).unwrap();
  let third = q.enqueue(new_job("v", 3), 2).unwrap();
  // As `DEL`, or `allkeys-lru` evicting it, would leave the queue.
  let member = format!("{:016}", q.get(&first, 3).unwrap().unwrap().seq);
  server.command(&["DEL", &link.key(&format!("q:job:{member}"))]);
  assert_eq!(q.dequeue(4).unwrap().unwrap().id, second);
  assert_eq!(missing_jobs(&link).unwrap(), 1);
  assert!(notices::recent().iter().any(|n| n.code == JOB_MISSING));
  let stats = q.stats(5).unwrap();
  assert_eq!((stats.total, stats.pending, stats.processing), (2, 1, 1));
  assert!(q.get(&first, 5).unwrap().is_none());
  assert!(!q.complete(&first, 5).unwrap());
  // Listings skip it too, and the bytes left are the two jobs'.
  let all = q.list(5, JobFilter::All, Page::ALL).unwrap();
  assert_eq!(
    all.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
    [second.clone(), third.clone()]
  );
  let bytes: usize = all.iter().map(|j| j.stored_bytes()).sum();
  assert_eq!(stats.bytes, bytes);
  // A job whose hash is gone while it is listed by user is dropped there.
  let member = format!("{:016}", q.get(&third, 5).unwrap().unwrap().seq);
  server.command(&["DEL", &link.key(&format!("q:job:{member}"))]);
  assert!(q
    .list(6, JobFilter::User("v"), Page::ALL)
    .unwrap()
    .is_empty());
  assert_eq!(missing_jobs(&link).unwrap(), 2);
  assert!(q.complete(&second, 7).unwrap());
}

#[test]
fn a_lost_sequence_key_never_reuses_a_member() {
  let server = TestServer::start();
  let link = server.link("lost-seq");
  let mut q = RedisQueue::open(link.clone(), QueueConfig::default()).unwrap();
  let first = q.enqueue(new_job("u", 3), 0).unwrap();
  server.command(&["DEL", &link.key("q:seq")]);
  let second = q.enqueue(new_job("u", 3), 1).unwrap();
  let all = q.list(2, JobFilter::All, Page::ALL).unwrap();
  assert_eq!(
    all.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
    [first, second]
  );
}

#[test]
fn refusals_are_answers_nothing_is_kept_for_them() {
  let server = TestServer::start();
  // Out of memory: maxmemory below what the server holds, noeviction.
  let link = server.link("refused");
  let mut q = RedisQueue::open(link.clone(), QueueConfig::default()).unwrap();
  let held = q.enqueue(new_job("u", 3), 0).unwrap();
  server.command(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
  server.command(&["CONFIG", "SET", "maxmemory", "1"]);
  let before = snapshot(&server, "refused");
  match q.enqueue(new_job("u", 3), 1) {
    Err(QueueError::Storage(error)) => {
      assert_eq!(error.kind, StorageErrorKind::Full, "{}", error.message)
    }
    other => panic!("expected STORAGE_FULL, got {other:?}"),
  }
  assert_eq!(
    link.outbox().jobs(),
    0,
    "no id handed out for a job kept nowhere"
  );
  assert_eq!(snapshot(&server, "refused"), before, "nothing written");
  // Reads still work on a full server.
  assert_eq!(q.get(&held, 2).unwrap().unwrap().status, JobStatus::Pending);
  assert_eq!(q.stats(2).unwrap().total, 1);
  server.command(&["CONFIG", "SET", "maxmemory", "0"]);
  // A user without EVALSHA.
  server.command(&[
    "ACL", "SETUSER", "noscript", "on", ">pw", "~*", "+@all", "-evalsha", "-eval",
  ]);
  let denied_link = server.link_with("refused", 2000, Some(("noscript", "pw")));
  let mut denied = RedisQueue::open(denied_link.clone(), QueueConfig::default()).unwrap();
  match denied.enqueue(new_job("u", 3), 3) {
    Err(QueueError::Storage(error)) => {
      assert_eq!(error.kind, StorageErrorKind::Denied, "{}", error.message)
    }
    other => panic!("expected STORAGE_DENIED, got {other:?}"),
  }
  assert_eq!(denied_link.outbox().jobs(), 0);
  let mut history = RedisFailures::open(denied_link.clone(), FailureConfig::default()).unwrap();
  let error = history.record("svc", "op", "e", "r", 4).unwrap_err();
  assert_eq!(error.kind, StorageErrorKind::Denied);
  assert_eq!(denied_link.outbox().failures(), 0);
}

#[test]
fn a_cache_hit_is_served_by_a_server_that_refuses_writes() {
  let server = TestServer::start();
  let mut cache = RedisCache::open(server.link("read-only"), CacheConfig::default()).unwrap();
  let entry = EntryText::new("prompt", "\"answer\"");
  cache.set_text(entry, "m", None, 0).unwrap();
  server.command(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
  server.command(&["CONFIG", "SET", "maxmemory", "1"]);
  let hit = cache.get("prompt", "m", 1).unwrap().unwrap();
  assert_eq!(hit.response, "\"answer\"");
  assert!(cache.get("other", "m", 1).unwrap().is_none());
  let refused = cache.set_text(EntryText::new("p2", "1"), "m", None, 2);
  assert!(refused.is_err());
  server.command(&["CONFIG", "SET", "maxmemory", "0"]);
  // A user who may read but not run scripts still gets the answer.
  server.command(&[
    "ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@read", "+ping", "+info",
  ]);
  let reader = server.link_with("read-only", 2000, Some(("reader", "pw")));
  let mut cache = RedisCache::open(reader, CacheConfig::default()).unwrap();
  let hit = cache.get("prompt", "m", 3).unwrap().unwrap();
  assert_eq!((hit.response.as_str(), hit.stale), ("\"answer\"", false));
  assert!(cache.get("prompt", "other", 3).unwrap().is_none());
}

#[test]
fn foreign_data_at_any_queue_key_refuses_the_command_and_names_the_key() {
  let server = TestServer::start();
  for name in QUEUE_KEYS.iter().chain(&["user:u"]) {
    let prefix = format!("foreign-{}", name.replace(':', "-"));
    let link = server.link(&prefix);
    let mut q = RedisQueue::open(link.clone(), QueueConfig::default()).unwrap();
    let id = q.enqueue(new_job("u", 3), 0).unwrap();
    q.dequeue(1).unwrap().unwrap();
    let key = link.key(&format!("q:{name}"));
    // A set is of no kind this library keeps at any of its keys.
    server.command(&["DEL", &key]);
    server.command(&["SADD", &key, "x"]);
    let before = snapshot(&server, &prefix);
    let corrupt = |result: Result<bool, String>| {
      let message = result.unwrap_err();
      assert!(message.contains(&key), "{name}: {message}");
    };
    let text = |e: QueueError| {
      assert!(
        matches!(&e, QueueError::Storage(s) if s.kind == StorageErrorKind::Corrupt),
        "{e}"
      );
      e.to_string()
    };
    corrupt(q.enqueue(new_job("u", 3), 2).map(|_| true).map_err(text));
    assert_eq!(link.outbox().jobs(), 0, "{name}: nothing kept");
    if name.starts_with("user:") {
      // A user's index is only written when a job of theirs is added or
      // removed: the rest of the queue works on.
      assert_eq!(
        snapshot(&server, &prefix),
        before,
        "{name}: nothing written"
      );
      assert!(q.complete(&id, 3).unwrap());
      continue;
    }
    corrupt(q.complete(&id, 2).map_err(|e| e.message));
    corrupt(q.fail(&id, "boom", 2).map_err(|e| e.message));
    assert_eq!(
      snapshot(&server, &prefix),
      before,
      "{name}: nothing written"
    );
  }
}

#[test]
fn a_finished_job_sent_again_is_not_run_again() {
  let server = TestServer::start();
  let mut q = RedisQueue::open(server.link("resent"), QueueConfig::default()).unwrap();
  let args = [
    "job_1_000000007",
    "ai",
    "op",
    "",
    "0",
    "u",
    "1",
    "0",
    "3",
    "",
    "20",
  ];
  let first: Vec<String> = q.call(QueueCommand::Enqueue, 1, &args).unwrap();
  assert_eq!(first[0], "OK");
  q.dequeue(2).unwrap().unwrap();
  assert!(q.complete(args[0], 3).unwrap());
  assert_eq!(q.clear_completed(4).unwrap(), 1);
  // The late re-send of the first write arrives now.
  let again: Vec<String> = q.call(QueueCommand::Enqueue, 5, &args).unwrap();
  assert_eq!(again[0], "DUPLICATE");
  assert_eq!(q.stats(6).unwrap().total, 0);
  assert!(q.dequeue(7).unwrap().is_none());
}

#[test]
fn a_failure_sent_during_a_pause_counts_once() {
  let server = TestServer::start();
  let link = server.link_with("pause-failures", 200, None);
  let mut history = RedisFailures::open(link.clone(), FailureConfig::default()).unwrap();
  server.pause();
  for now in 0..3 {
    history.record("svc", "op", "down", "skip", now).unwrap();
  }
  // Sent, timed out, kept and sent again every 250 ms meanwhile.
  std::thread::sleep(Duration::from_millis(1200));
  server.resume();
  eventually("the kept failures were written", || outbox_empty(&link));
  assert_eq!(history.failures(Some("svc"), Page::ALL).unwrap().len(), 3);
  assert!(history.should_skip("svc", 3.0, 3).unwrap());
  assert!(!history.should_skip("svc", 4.0, 3).unwrap());
}

#[test]
fn a_kept_job_refused_for_good_is_set_aside_without_blocking_the_rest() {
  let server = TestServer::start();
  let link = server.link_with("set-aside", 200, None);
  let mut q = RedisQueue::open(link.clone(), QueueConfig::default()).unwrap();
  q.enqueue(new_job("u", 3), 0).unwrap();
  // Another instance lowers the byte bound; this one has not heard.
  let mut other = RedisQueue::open(server.link("set-aside"), QueueConfig::default()).unwrap();
  let lower = QueueConfig {
    max_bytes: 1000,
    ..QueueConfig::default()
  };
  other.set_config(lower, 0).unwrap();
  server.pause();
  let mut big = new_job("u", 3);
  big.payload = Some(Arc::from(format!("\"{}\"", "x".repeat(2000))));
  let refused = q.enqueue(big, 1).unwrap();
  let small = q.enqueue(new_job("u", 3), 2).unwrap();
  assert_eq!(
    link.outbox().jobs(),
    2,
    "both kept: the server did not answer"
  );
  server.resume();
  eventually("the outbox was written out", || outbox_empty(&link));
  assert!(q.get(&refused, 3).unwrap().is_none());
  assert!(
    q.get(&small, 3).unwrap().is_some(),
    "not blocked behind the refused one"
  );
  assert_eq!(link.outbox().refused(), 1);
  let warned = notices::recent();
  let warning = warned
    .iter()
    .find(|n| n.code == super::outbox_writer::SET_ASIDE)
    .unwrap();
  assert!(warning.message.contains(&*refused), "{}", warning.message);
}

#[test]
fn what_waits_for_the_server_is_bounded_like_the_queue() {
  let (_runtime, link) = TestServer::unreachable(100);
  let config = QueueConfig {
    max_bytes: 200,
    ..QueueConfig::default()
  };
  let mut q = RedisQueue::open(link.clone(), config).unwrap();
  let mut kept = 0;
  let refusal = loop {
    match q.enqueue(new_job("u", 3), 0) {
      Ok(_) => kept += 1,
      Err(error) => break error,
    }
    assert!(kept < 100, "never refused");
  };
  assert!(
    matches!(refusal, QueueError::WaitingFull { .. }),
    "{refusal}"
  );
  assert_eq!(link.outbox().jobs(), kept);
  assert!(link.outbox().held(super::outbox::WriteKind::Job).1 <= 200);
}

/// How many scripts the server has run (`INFO commandstats`).
fn scripts_run(server: &TestServer) -> u64 {
  let Value::BulkString(info) = server.command(&["INFO", "commandstats"]) else {
    panic!("INFO");
  };
  String::from_utf8(info)
    .unwrap()
    .lines()
    .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:"))
    .filter_map(|line| {
      line
        .split("calls=")
        .nth(1)?
        .split(',')
        .next()?
        .parse::<u64>()
        .ok()
    })
    .sum()
}

#[test]
fn long_listings_and_clears_run_in_bounded_steps() {
  let server = TestServer::start();
  let mut q = RedisQueue::open(server.link("bounded-steps"), QueueConfig::default()).unwrap();
  let ids: Vec<_> = (0..1_000)
    .map(|_| q.enqueue(new_job("u", 0), 0).unwrap())
    .collect();
  let before = scripts_run(&server);
  assert_eq!(q.list(1, JobFilter::All, Page::ALL).unwrap().len(), 1_000);
  // A hundred jobs at most per run: no run holds the server long at any size.
  assert!(scripts_run(&server) - before >= 10);
  for id in &ids {
    assert!(q.fail(id, "boom", 2).unwrap());
  }
  let before = scripts_run(&server);
  assert_eq!(q.retry_failed(None, 3).unwrap(), 1_000);
  assert!(scripts_run(&server) - before >= 10);
  for id in &ids {
    assert!(q.complete(id, 4).unwrap());
  }
  let before = scripts_run(&server);
  assert_eq!(q.clear_completed(5).unwrap(), 1_000);
  assert!(scripts_run(&server) - before >= 10);
  assert_eq!(q.stats(6).unwrap().total, 0);
  // A lower bound evicts the finished jobs in steps too.
  for _ in 0..1_000 {
    let id = q.enqueue(new_job("u", 0), 7).unwrap();
    q.complete(&id, 7).unwrap();
  }
  let before = scripts_run(&server);
  let lower = QueueConfig {
    max_size: 10,
    ..QueueConfig::default()
  };
  q.set_config(lower, 8).unwrap();
  assert!(scripts_run(&server) - before >= 10);
  assert_eq!(q.stats(9).unwrap().total, 10);
}

/// Every command compiles on a real server (a Lua syntax error in an
/// include shows in every command of its store).
#[test]
fn every_script_loads() {
  let server = TestServer::start();
  let link = server.link("load");
  let scripts = QueueCommand::ALL
    .iter()
    .map(|c| (c.name(), c.script()))
    .chain(CacheCommand::ALL.iter().map(|c| (c.name(), c.script())))
    .chain(FailureCommand::ALL.iter().map(|c| (c.name(), c.script())))
    .chain(RecordCommand::ALL.iter().map(|c| (c.name(), c.script())));
  for (name, script) in scripts {
    let code = script.get_hash().to_string();
    let loaded: String = link
      .run(move |mut connection| {
        let script = script.clone();
        async move { script.prepare_invoke().load_async(&mut connection).await }
      })
      .unwrap_or_else(|error| panic!("{name}: {error}"));
    assert_eq!(loaded, code, "{name}");
  }
}

#[test]
fn a_job_whose_fields_cannot_be_read_is_set_aside_and_the_next_served() {
  let server = TestServer::start();
  let tamperings: [(&str, &[&str]); 7] = [
    ("type", &["HSET", "type", "bogus"]),
    ("prio", &["HSET", "prio", "7"]),
    ("status", &["HSET", "status", "9"]),
    ("fraction", &["HSET", "status", "1.5"]),
    ("payload", &["HSET", "payload", "{oops"]),
    ("no-id", &["HDEL", "id"]),
    ("no-user", &["HDEL", "user"]),
  ];
  for (name, tamper) in tamperings {
    let link = server.link(&format!("damaged-{name}"));
    let mut q = RedisQueue::open(link.clone(), QueueConfig::default()).unwrap();
    let mut bad = new_job("u", 3);
    bad.priority = JobPriority::High;
    let bad = q.enqueue(bad, 0).unwrap();
    let good = q.enqueue(new_job("u", 3), 1).unwrap();
    let member = format!("{:016}", q.get(&bad, 2).unwrap().unwrap().seq);
    let key = link.key(&format!("q:job:{member}"));
    let mut command = vec![tamper[0], key.as_str()];
    command.extend(&tamper[1..]);
    server.command(&command);
    let leased = q.dequeue(3).unwrap().unwrap();
    assert_eq!(leased.id, good, "{name}: the next job is served");
    assert_eq!(missing_jobs(&link).unwrap(), 1, "{name}");
    let aside = link.key(&format!("q:damaged:{member}"));
    assert_eq!(
      server.command(&["EXISTS", &aside]),
      Value::Int(1),
      "{name}: kept aside"
    );
    let stats = q.stats(4).unwrap();
    assert_eq!((stats.total, stats.processing), (1, 1), "{name}");
    assert!(
      q.dequeue(5).unwrap().is_none(),
      "{name}: nothing leased to nobody"
    );
    assert!(q
      .list(6, JobFilter::All, Page::ALL)
      .unwrap()
      .iter()
      .all(|job| job.id == good));
  }
}

#[test]
fn a_user_the_acl_refuses_writes_to_is_denied() {
  let server = TestServer::start();
  server.command(&[
    "ACL", "SETUSER", "reads", "on", ">pw", "~*", "+@all", "-@write",
  ]);
  let link = server.link_with("read-only-user", 2000, Some(("reads", "pw")));
  let mut q = RedisQueue::open(link.clone(), QueueConfig::default()).unwrap();
  match q.enqueue(new_job("u", 3), 0) {
    Err(QueueError::Storage(error)) => {
      assert_eq!(error.kind, StorageErrorKind::Denied, "{}", error.message)
    }
    other => panic!("expected STORAGE_DENIED, got {other:?}"),
  }
  assert_eq!(link.outbox().jobs(), 0);
}

#[test]
fn bounds_lowered_while_the_server_was_paused_apply_in_full_when_it_answers() {
  let server = TestServer::start();
  let link = server.link_with("kept-bounds", 200, None);
  let mut q = RedisQueue::open(link.clone(), QueueConfig::default()).unwrap();
  let mut history = RedisFailures::open(link.clone(), FailureConfig::default()).unwrap();
  for n in 0..300 {
    let id = q.enqueue(new_job("u", 3), n).unwrap();
    assert!(q.complete(&id, n).unwrap());
  }
  for n in 0..1_000 {
    history
      .record(&format!("svc-{}", n % 200), "op", "down", "skip", n)
      .unwrap();
  }
  server.pause();
  let lower = QueueConfig {
    max_size: 10,
    ..QueueConfig::default()
  };
  q.set_config(lower, 1_000).unwrap();
  let fewer = FailureConfig {
    max_per_service: 1,
    ..FailureConfig::default()
  };
  history.set_config(fewer).unwrap();
  server.resume();
  // Each bound's first step, then the rest a batch per run.
  eventually("the queue's lower bound applied", || {
    q.stats(2_000).unwrap().total == 10
  });
  eventually("the history's lower bound applied", || {
    history.failures(None, Page::ALL).unwrap().len() == 200
  });
}

#[test]
fn one_large_service_is_trimmed_and_cleared_in_bounded_steps() {
  let server = TestServer::start();
  let roomy = FailureConfig {
    max_per_service: 5_000,
    ..FailureConfig::default()
  };
  let mut history = RedisFailures::open(server.link("large-service"), roomy).unwrap();
  for n in 0..2_000 {
    history.record("svc", "op", "down", "skip", n).unwrap();
  }
  let before = scripts_run(&server);
  let one = FailureConfig {
    max_per_service: 1,
    ..roomy
  };
  history.set_config(one).unwrap();
  // 500 failures at most per run.
  assert!(scripts_run(&server) - before >= 4);
  let left = history.failures(None, Page::ALL).unwrap();
  assert_eq!(left.len(), 1);
  assert_eq!(left[0].timestamp, 1_999, "the newest stays");
  history.set_config(roomy).unwrap();
  for n in 0..1_500 {
    history
      .record("svc", "op", "down", "skip", 3_000 + n)
      .unwrap();
  }
  let before = scripts_run(&server);
  assert!(history.clear(Some("svc")).unwrap());
  assert!(scripts_run(&server) - before >= 3);
  assert!(history.failures(None, Page::ALL).unwrap().is_empty());
  assert!(!history.should_skip("svc", 1.0, 5_000).unwrap());
}
