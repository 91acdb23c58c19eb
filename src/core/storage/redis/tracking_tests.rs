//! The local copy against a real server: what one instance writes reaches
//! another's synchronous reads, a lost connection never leaves a stale
//! answer behind, and a server that refuses tracking is only slower.

use std::time::{Duration, Instant};

use super::test_server::TestServer;
use super::tracking::TRACKING_UNAVAILABLE;
use super::{RedisCache, RedisFailures};
use crate::core::cache::conformance::{response, set};
use crate::core::cache::entry::CacheConfig;
use crate::core::failures::record::FailureConfig;
use crate::core::notices;
use crate::core::storage::traits::{CacheStore, FailureStore};

/// How long a test waits for what must happen eventually (a correctness
/// deadline on a loaded machine, not a speed claim).
const EVENTUALLY: Duration = Duration::from_secs(30);

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
  let start = Instant::now();
  while !done() {
    assert!(start.elapsed() < EVENTUALLY, "never happened: {what}");
    std::thread::sleep(Duration::from_millis(5));
  }
}

fn cache(server: &TestServer, prefix: &str) -> RedisCache {
  RedisCache::open(server.link(prefix), CacheConfig::default()).unwrap()
}

/// Reads until the copy holds what `prompt` reads.
fn warm(cache: &mut RedisCache, prompt: &str) {
  eventually("the local copy holds the entry", || {
    let held = cache.link().local_copy_stats().entries;
    let _ = cache.get(prompt, "m", 1);
    let copy = cache.link().local_copy_stats();
    copy.live && copy.entries == held && held > 0
  });
}

/// Runs `reads` with the server paused: what they answer comes from the
/// local copy, since the server answers nothing meanwhile.
fn paused<T>(server: &TestServer, reads: impl FnOnce() -> T) -> T {
  server.pause();
  let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(reads));
  server.resume();
  answered.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[test]
fn a_write_on_one_instance_reaches_the_others_local_copy() {
  let server = TestServer::start();
  let (mut a, mut b) = (cache(&server, "coherent"), cache(&server, "coherent"));
  set(&mut a, "p", "m", "1", None, 0);
  warm(&mut b, "p");
  paused(&server, || {
    for _ in 0..100 {
      assert_eq!(response(&mut b, "p", "m", 1).as_deref(), Some("1"));
    }
  });
  set(&mut a, "p", "m", "2", None, 2);
  eventually("b sees a's write", || {
    response(&mut b, "p", "m", 3).as_deref() == Some("2")
  });
  // A miss is kept too, and a later write ends it.
  warm(&mut b, "absent");
  set(&mut a, "absent", "m", "3", None, 4);
  eventually("b sees the new entry", || {
    response(&mut b, "absent", "m", 5).as_deref() == Some("3")
  });
  a.delete("p", "m").unwrap();
  eventually("b sees the delete", || {
    response(&mut b, "p", "m", 6).is_none()
  });
}

#[test]
fn an_instance_reads_its_own_writes_at_once() {
  let server = TestServer::start();
  let mut a = cache(&server, "own");
  set(&mut a, "p", "m", "1", None, 0);
  warm(&mut a, "p");
  for round in 2..50 {
    let text = round.to_string();
    set(&mut a, "p", "m", &text, None, 0);
    assert_eq!(response(&mut a, "p", "m", 1), Some(text));
  }
  a.clear().unwrap();
  assert_eq!(response(&mut a, "p", "m", 1), None);
}

#[test]
fn a_lost_connection_never_leaves_a_stale_answer() {
  let server = TestServer::start();
  let (mut a, mut b) = (cache(&server, "lost"), cache(&server, "lost"));
  set(&mut a, "p", "m", "1", None, 0);
  warm(&mut b, "p");
  // Every connection goes, the one that listens among them; the write is
  // made while b's is away, so no announcement of it ever reaches b.
  server.command(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
  server.command(&[
    "HSET",
    &a.link().key(&format!("c:e:{}", digest("p"))),
    "r",
    "2",
  ]);
  // A request on a killed connection fails once, then it reconnects.
  eventually("b reads the new answer", || {
    b.get("p", "m", 1)
      .ok()
      .flatten()
      .map(|hit| hit.response)
      .as_deref()
      == Some("2")
  });
  // And b's copy is trusted again once it listens again.
  warm(&mut b, "p");
  // a's connection was killed too: its first request fails and reconnects.
  let _ = a.link().ping();
  set(&mut a, "p", "m", "3", None, 0);
  eventually("b sees a's write after the reconnection", || {
    response(&mut b, "p", "m", 1).as_deref() == Some("3")
  });
}

fn digest(prompt: &str) -> String {
  format!(
    "{:032x}",
    crate::core::cache::entry::shared_key_digest(prompt, "m")
  )
}

#[test]
fn a_server_that_refuses_tracking_is_asked_each_time() {
  let server = TestServer::start();
  server.command(&[
    "ACL",
    "SETUSER",
    "untracked",
    "on",
    ">pw",
    "~*",
    "+@all",
    "-client",
  ]);
  let link = server.link_with("refused", 2000, Some(("untracked", "pw")));
  let mut c = RedisCache::open(link, CacheConfig::default()).unwrap();
  set(&mut c, "p", "m", "1", None, 0);
  eventually("the refusal is told", || {
    response(&mut c, "p", "m", 1);
    notices::recent()
      .iter()
      .any(|n| n.code == TRACKING_UNAVAILABLE)
  });
  assert_eq!(response(&mut c, "p", "m", 1).as_deref(), Some("1"));
  assert!(!c.link().local_copy_stats().live);
  // Every read asks: with the server paused, it has no answer.
  let error = paused(&server, || c.get("p", "m", 1).unwrap_err());
  assert!(error.is_no_answer(), "{}", error.message);
}

#[test]
fn skip_decisions_follow_failures_recorded_elsewhere() {
  let server = TestServer::start();
  let open = || RedisFailures::open(server.link("skips"), FailureConfig::default()).unwrap();
  let (mut a, mut b) = (open(), open());
  assert!(!b.should_skip("api", 3.0, 1_000).unwrap());
  eventually("b's copy holds the service", || {
    b.should_skip("api", 3.0, 1_000).unwrap();
    let copy = b.link().local_copy_stats();
    copy.live && copy.entries == 1
  });
  assert!(!paused(&server, || b
    .should_skip("api", 3.0, 1_000)
    .unwrap()));
  for at in [990, 995, 999] {
    a.record("api", "op", "down", "", at).unwrap();
  }
  eventually("b skips", || b.should_skip("api", 3.0, 1_000).unwrap());
  // The window moves with the caller's clock, no server needed.
  let window = FailureConfig::default().window_ms;
  assert!(!b.should_skip("api", 3.0, 995 + window).unwrap());
}

#[test]
fn instances_of_one_process_read_each_others_writes_at_once() {
  let server = TestServer::start();
  // Two links on one place, as two instances made with the same options.
  let (mut a, mut b) = (cache(&server, "one-place"), cache(&server, "one-place"));
  set(&mut a, "p", "m", "0", None, 0);
  warm(&mut b, "p");
  for round in 1..30 {
    let text = round.to_string();
    set(&mut a, "p", "m", &text, None, 0);
    assert_eq!(response(&mut b, "p", "m", 1), Some(text));
  }
  a.clear().unwrap();
  assert_eq!(response(&mut b, "p", "m", 1), None);
}
