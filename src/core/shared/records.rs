//! The records the shared guards keep, and the in-memory store of them.

use std::collections::HashMap;

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
  Breaker,
  Limit,
  Budget,
}

impl Kind {
  /// The record's tag in a store's key.
  pub fn tag(self) -> &'static str {
    match self {
      Kind::Breaker => "b",
      Kind::Limit => "l",
      Kind::Budget => "u",
    }
  }

  pub fn from_tag(tag: &str) -> Option<Kind> {
    match tag {
      "b" => Some(Kind::Breaker),
      "l" => Some(Kind::Limit),
      "u" => Some(Kind::Budget),
      _ => None,
    }
  }
}

/// One record's place: its kind and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
  pub kind: Kind,
  pub name: String,
}

impl Key {
  pub fn new(kind: Kind, name: &str) -> Self {
    Self {
      kind,
      name: name.to_owned(),
    }
  }
}

/// A record to write, kept until `expires_at` (ms since the epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
  pub text: String,
  pub expires_at: u64,
}

/// A decision over records: given what each key holds (`None`: nothing, or
/// expired), what to write to each (`None`: leave it). It may run more
/// than once for one update (a store on a server runs it again when
/// another instance wrote first), so it only computes.
pub type Change<'a> = dyn FnMut(&[Option<String>]) -> Vec<Option<Write>> + 'a;

/// Records held at most in memory; past it the one expiring soonest goes.
pub const MAX_RECORDS: usize = 10_000;

/// The records of a store in this process.
#[derive(Debug, Default)]
pub struct MemoryRecords {
  held: HashMap<Key, (String, u64)>,
}

impl MemoryRecords {
  fn read(&self, key: &Key, now: u64) -> Option<String> {
    self
      .held
      .get(key)
      .filter(|(_, expires_at)| *expires_at > now)
      .map(|(text, _)| text.clone())
  }

  /// Runs `change` once over `keys`, and writes what it asks for.
  pub fn update(&mut self, keys: &[Key], change: &mut Change, now: u64) {
    let current: Vec<Option<String>> = keys.iter().map(|key| self.read(key, now)).collect();
    let writes = change(&current);
    for (key, write) in keys.iter().zip(writes) {
      let Some(write) = write else { continue };
      if !self.held.contains_key(key) && self.held.len() >= MAX_RECORDS {
        self.make_room(now);
      }
      self
        .held
        .insert(key.clone(), (write.text, write.expires_at));
    }
  }

  /// Drops the expired records, or else the one expiring soonest.
  fn make_room(&mut self, now: u64) {
    let before = self.held.len();
    self.held.retain(|_, (_, expires_at)| *expires_at > now);
    if self.held.len() < before {
      return;
    }
    let soonest = self
      .held
      .iter()
      .min_by_key(|(_, (_, expires_at))| *expires_at)
      .map(|(key, _)| key.clone());
    if let Some(key) = soonest {
      self.held.remove(&key);
    }
  }

  /// Every live record of `kind`, by name.
  pub fn list(&self, kind: Kind, now: u64) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = self
      .held
      .iter()
      .filter(|(key, (_, expires_at))| key.kind == kind && *expires_at > now)
      .map(|(key, (text, _))| (key.name.clone(), text.clone()))
      .collect();
    all.sort();
    all
  }

  /// Forgets every record (of `kind` only, when given).
  pub fn clear(&mut self, kind: Option<Kind>) {
    self
      .held
      .retain(|key, _| kind.is_some_and(|kind| key.kind != kind));
  }

  pub fn is_empty(&self) -> bool {
    self.held.is_empty()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn write(text: &str, expires_at: u64) -> Option<Write> {
    Some(Write {
      text: text.into(),
      expires_at,
    })
  }

  #[test]
  fn a_change_sees_what_is_held_and_expired_records_read_as_none() {
    let mut records = MemoryRecords::default();
    let a = Key::new(Kind::Breaker, "a");
    let b = Key::new(Kind::Limit, "a");
    records.update(
      &[a.clone(), b.clone()],
      &mut |held| {
        assert_eq!(held, [None, None]);
        vec![write("1", 100), write("2", 50)]
      },
      0,
    );
    records.update(
      &[a.clone(), b.clone()],
      &mut |held| {
        assert_eq!(held, [Some("1".to_string()), None], "b expired at 50");
        vec![None, None]
      },
      60,
    );
    assert_eq!(records.list(Kind::Breaker, 60), [("a".into(), "1".into())]);
    assert!(records.list(Kind::Limit, 60).is_empty());
    records.clear(Some(Kind::Breaker));
    assert!(records.list(Kind::Breaker, 60).is_empty());
  }

  #[test]
  fn the_number_held_is_bounded() {
    let mut records = MemoryRecords::default();
    for i in 0..MAX_RECORDS + 5 {
      let key = Key::new(Kind::Budget, &i.to_string());
      records.update(&[key], &mut |_| vec![write("x", 1_000 + i as u64)], 0);
    }
    assert_eq!(records.held.len(), MAX_RECORDS);
    assert!(
      records.read(&Key::new(Kind::Budget, "0"), 0).is_none(),
      "soonest went"
    );
  }
}
