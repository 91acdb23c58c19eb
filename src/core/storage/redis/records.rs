//! The shared guards' records on the server (`core::shared`): a decision is
//! made here, in the instance, and written by `records/swap.lua` only if
//! every record still holds what the decision read; otherwise the script
//! answers what they hold and the decision is made again. The instance
//! remembers what it last saw of each record, so when it is the only one
//! writing (or the records are quiet) an update is one round trip.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use redis::Value;

use super::commands::{self, RecordCommand, RECORD_KEYS};
use super::link::RedisLink;
use crate::core::shared::records::{Change, Key, Kind};
use crate::core::storage::error::{StorageError, StorageErrorKind, StorageResult};

/// Tries of one update before it gives up (other instances kept winning);
/// after the first few, each waits a little, at random, so that
/// instances that keep colliding spread out.
const MAX_TRIES: usize = 64;
const TRIES_BEFORE_WAITING: usize = 4;
/// Records remembered at most; past it, all are forgotten (the next update
/// of each costs a round trip more).
const MAX_SEEN: usize = 10_000;

#[derive(Clone)]
pub struct RedisRecords {
  link: RedisLink,
  keys: Arc<[String]>,
  /// What each record held when last seen here (`None`: nothing).
  seen: Arc<Mutex<HashMap<Key, Option<String>>>>,
  /// One update at a time from this process: its own calls never race
  /// each other for a record (each would expect what the other is about
  /// to change), so a swap loses only to another instance.
  one_at_a_time: Arc<Mutex<()>>,
}

impl RedisRecords {
  pub fn new(link: RedisLink) -> Self {
    Self {
      keys: commands::keys(&link.key("g:"), &RECORD_KEYS).into(),
      link,
      seen: Arc::default(),
      one_at_a_time: Arc::default(),
    }
  }

  pub fn update(&self, keys: &[Key], change: &mut Change, now: u64) -> StorageResult<()> {
    let _turn = self.one_at_a_time.lock();
    let mut known: Vec<Option<Option<String>>> = {
      let seen = self.seen.lock();
      keys.iter().map(|key| seen.get(key).cloned()).collect()
    };
    for tried in 0..MAX_TRIES {
      if tried >= TRIES_BEFORE_WAITING {
        let most = (tried - TRIES_BEFORE_WAITING + 1).min(20) as u64 * 250;
        std::thread::sleep(std::time::Duration::from_micros(jitter(most)));
      }
      let held: Option<Vec<Option<String>>> = known.iter().cloned().collect();
      let writes = match &held {
        Some(held) => change(held),
        None => vec![None; keys.len()],
      };
      let mut args = vec![now.to_string(), keys.len().to_string()];
      for (i, key) in keys.iter().enumerate() {
        let expected = match &known[i] {
          None => "?".to_string(),
          Some(None) => "-".to_string(),
          Some(Some(text)) => format!("={text}"),
        };
        let (expires, text) = match writes.get(i).cloned().flatten() {
          Some(write) => (write.expires_at.to_string(), write.text),
          None => (String::new(), String::new()),
        };
        args.extend([
          key.kind.tag().to_string(),
          key.name.clone(),
          expected,
          expires,
          text,
        ]);
      }
      // What the records will hold once this lands, remembered before it
      // is sent: the next update of this process, sent after it on the same
      // connection, then expects what the server will hold by its turn. If
      // this one fails, its reply puts right what is remembered.
      if held.is_some() {
        let mut seen = self.seen.lock();
        for (key, write) in keys.iter().zip(&writes) {
          if let Some(write) = write {
            seen.insert(key.clone(), Some(write.text.clone()));
          }
        }
      }
      let sent = self
        .link
        .command(RecordCommand::Swap.script(), &self.keys, &args);
      let reply: Value = match sent {
        Ok(reply) => reply,
        Err(error) => {
          // Not known whether it landed: asked afresh next time.
          let mut seen = self.seen.lock();
          for key in keys {
            seen.remove(key);
          }
          return Err(error);
        }
      };
      let Value::Array(items) = reply else {
        return Err(unreadable());
      };
      let swapped = matches!(items.first(), Some(Value::Int(1)));
      let mut seen = self.seen.lock();
      if seen.len() > MAX_SEEN {
        seen.clear();
      }
      if swapped {
        for (i, key) in keys.iter().enumerate() {
          let now_held = match writes.get(i).cloned().flatten() {
            Some(write) => Some(write.text),
            None => known[i].clone().flatten(),
          };
          seen.insert(key.clone(), now_held);
        }
        return Ok(());
      }
      for (i, key) in keys.iter().enumerate() {
        let held = match items.get(i + 1) {
          Some(Value::BulkString(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
          Some(Value::SimpleString(text)) => Some(text.clone()),
          _ => None,
        };
        seen.insert(key.clone(), held.clone());
        known[i] = Some(held);
      }
    }
    Err(StorageError::new(
      StorageErrorKind::Busy,
      format!("the shared records changed under {MAX_TRIES} tries in a row (other instances kept writing them)"),
    ))
  }

  pub fn list(&self, kind: Kind, now: u64) -> StorageResult<Vec<(String, String)>> {
    let args = [kind.tag().to_string(), now.to_string()];
    let reply: Vec<String> = self
      .link
      .command(RecordCommand::List.script(), &self.keys, &args)?;
    let mut all: Vec<(String, String)> = reply
      .chunks_exact(2)
      .map(|pair| (pair[0].clone(), pair[1].clone()))
      .collect();
    all.sort();
    Ok(all)
  }
}

/// A wait of up to `most` µs, at random.
fn jitter(most: u64) -> u64 {
  let random =
    std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), most);
  random % most.max(1)
}

fn unreadable() -> StorageError {
  StorageError::new(
    StorageErrorKind::Corrupt,
    "the server's answer to a record swap could not be read",
  )
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::shared::records::Write;
  use crate::core::storage::redis::test_server::TestServer;

  fn bump(records: &RedisRecords, key: &[Key]) {
    records
      .update(
        key,
        &mut |held| {
          let n: u64 = held[0].as_deref().map_or(0, |text| text.parse().unwrap());
          vec![Some(Write {
            text: (n + 1).to_string(),
            expires_at: 1_000_000,
          })]
        },
        0,
      )
      .unwrap();
  }

  /// Two instances (two links: two processes' worth of connections) add
  /// one at a time to one record; none of the additions is lost.
  #[test]
  fn updates_from_two_instances_are_never_lost() {
    let server = TestServer::start();
    let a = RedisRecords::new(server.link("rec"));
    let b = RedisRecords::new(server.link("rec"));
    let key = [Key::new(Kind::Limit, "n")];
    std::thread::scope(|scope| {
      for records in [&a, &b] {
        let key = &key;
        scope.spawn(move || {
          for _ in 0..40 {
            bump(records, key);
          }
        });
      }
    });
    assert_eq!(
      a.list(Kind::Limit, 0).unwrap(),
      [("n".to_string(), "80".to_string())]
    );
    assert!(
      b.list(Kind::Limit, 1_000_000).unwrap().is_empty(),
      "expired"
    );
  }

  #[test]
  fn a_record_of_the_wrong_type_is_refused_and_nothing_written() {
    let server = TestServer::start();
    let link = server.link("wrong");
    let records = RedisRecords::new(link.clone());
    server.command(&["HSET", &link.key("g:b:x"), "f", "v"]);
    let keys = [Key::new(Kind::Limit, "y"), Key::new(Kind::Breaker, "x")];
    let error = records
      .update(&keys, &mut |_| vec![None, None], 0)
      .unwrap_err();
    assert!(error.message.contains("WRONGTYPE"), "{error}");
    assert!(records.list(Kind::Limit, 0).unwrap().is_empty());
  }
}
