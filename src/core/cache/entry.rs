//! What the cache holds and answers, shared by the memory cache, the
//! SQLite one and the Redis one: the bounds, errors, hits and counts, an
//! entry's text, and the digests of a key.

use xxhash_rust::xxh3::Xxh3;

use crate::core::storage::error::StorageError;

pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024 * 1024;
pub const DEFAULT_TTL_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
  /// Entries held at most (live and stale together); at least 1.
  pub max_entries: usize,
  /// Prompt + response bytes held at most; at least 1.
  pub max_bytes: usize,
  /// TTL used when `set` gets none (or 0).
  pub default_ttl_ms: u64,
  /// How long an expired entry stays available to the failure path.
  pub stale_if_error_ms: u64,
}

impl CacheConfig {
  /// The TTL of an entry set with `ttl_ms`: `None` or `0` mean the default.
  pub fn ttl(&self, ttl_ms: Option<u64>) -> u64 {
    match ttl_ms {
      None | Some(0) => self.default_ttl_ms,
      Some(ttl) => ttl,
    }
  }
}

impl Default for CacheConfig {
  fn default() -> Self {
    Self {
      max_entries: DEFAULT_MAX_ENTRIES,
      max_bytes: DEFAULT_MAX_BYTES,
      default_ttl_ms: DEFAULT_TTL_MS,
      stale_if_error_ms: 0,
    }
  }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheError {
  Storage(StorageError),
  /// One entry is larger than the whole byte bound.
  EntryTooLarge {
    bytes: usize,
    max_bytes: usize,
  },
}

impl std::fmt::Display for CacheError {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    match self {
      CacheError::Storage(error) => error.fmt(f),
      CacheError::EntryTooLarge { bytes, max_bytes } => write!(
        f,
        "The cache entry is {bytes} bytes, more than the cache's whole bound of {max_bytes} bytes"
      ),
    }
  }
}

/// A cached response as handed out: a copy of the JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheHit {
  pub response: String,
  pub timestamp: u64,
  pub expires_at: u64,
  /// Past its TTL, served only because of stale-if-error.
  pub stale: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStats {
  pub size: usize,
  pub oldest_entry: Option<u64>,
  pub newest_entry: Option<u64>,
  pub hits: u64,
  pub misses: u64,
  pub evictions: u64,
  pub bytes: usize,
}

/// The seeded digest of a (prompt, model id) key.
pub(crate) fn key_digest(seed: u64, prompt: &str, model_id: &str) -> u64 {
  key_hasher(Xxh3::with_seed(seed), prompt, model_id).digest()
}

/// The 128-bit digest of a key, unseeded so that every process computes
/// the same one: the name of the key's entry in a store that processes on
/// several machines share (Redis). Entries still hold their key, so a
/// collision can only make one entry replace the other.
pub(crate) fn shared_key_digest(prompt: &str, model_id: &str) -> u128 {
  key_hasher(Xxh3::new(), prompt, model_id).digest128()
}

fn key_hasher(mut hasher: Xxh3, prompt: &str, model_id: &str) -> Xxh3 {
  // The length prefix keeps ("ab", "c") apart from ("a", "bc").
  hasher.update(&(model_id.len() as u64).to_le_bytes());
  hasher.update(model_id.as_bytes());
  hasher.update(prompt.as_bytes());
  hasher
}

/// A prompt and a response's JSON text in one buffer, as an entry holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryText {
  pub(super) text: String,
  pub(super) prompt_len: usize,
}

impl EntryText {
  pub fn new(prompt: &str, response: &str) -> Self {
    let mut text = String::with_capacity(prompt.len() + response.len());
    text.push_str(prompt);
    text.push_str(response);
    Self {
      text,
      prompt_len: prompt.len(),
    }
  }

  pub fn prompt(&self) -> &str {
    &self.text[..self.prompt_len]
  }

  pub fn response(&self) -> &str {
    &self.text[self.prompt_len..]
  }

  /// `text` is the prompt followed by the response; `None` when
  /// `prompt_len` does not split it on a character boundary.
  pub fn joined(text: String, prompt_len: usize) -> Option<Self> {
    text
      .is_char_boundary(prompt_len)
      .then_some(Self { text, prompt_len })
  }
}
