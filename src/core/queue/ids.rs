//! The job id codec, shared by the memory queue and the SQLite one.

use std::hash::{BuildHasher, RandomState};

/// Job ids, `job_<ms since epoch>_<9 base-36 characters>`. The nine
/// characters are the job's sequence number through a keyed permutation of
/// 46-bit numbers (a four-round Feistel network; 36^9 > 2^46): unique by
/// construction, unguessable in order, and decodable back to the sequence
/// number, so looking a job up by id needs no hash index.
#[derive(Clone)]
pub(crate) struct JobIds {
  keys: [u64; 4],
}

const HALF_BITS: u32 = 23;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;
const ID_DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

impl JobIds {
  pub(crate) fn new() -> Self {
    let random = RandomState::new();
    Self::from_keys([0u8, 1, 2, 3].map(|i| random.hash_one(i)))
  }

  /// Ids under these keys; a file store keeps its keys, so ids stay
  /// decodable by every process and after a restart.
  pub(crate) fn from_keys(keys: [u64; 4]) -> Self {
    Self { keys }
  }

  fn round(key: u64, half: u64) -> u64 {
    let mixed = (half ^ key).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 29) & HALF_MASK
  }

  fn permute(&self, value: u64) -> u64 {
    let (mut left, mut right) = (value >> HALF_BITS & HALF_MASK, value & HALF_MASK);
    for key in self.keys {
      (left, right) = (right, left ^ Self::round(key, right));
    }
    left << HALF_BITS | right
  }

  fn unpermute(&self, value: u64) -> u64 {
    let (mut left, mut right) = (value >> HALF_BITS & HALF_MASK, value & HALF_MASK);
    for key in self.keys.iter().rev() {
      (left, right) = (right ^ Self::round(*key, left), left);
    }
    left << HALF_BITS | right
  }

  pub(crate) fn job_id(&self, now: u64, seq: u64) -> String {
    let mut code = self.permute(seq & (HALF_MASK << HALF_BITS | HALF_MASK));
    let mut suffix = [b'0'; 9];
    for digit in suffix.iter_mut().rev() {
      *digit = ID_DIGITS[(code % 36) as usize];
      code /= 36;
    }
    format!(
      "job_{now}_{}",
      std::str::from_utf8(&suffix).unwrap_or("000000000")
    )
  }

  pub(crate) fn seq_of(&self, id: &str) -> Option<u64> {
    let suffix = id.rsplit_once('_')?.1;
    if suffix.len() != 9 {
      return None;
    }
    let mut code: u64 = 0;
    for byte in suffix.bytes() {
      let digit = ID_DIGITS.iter().position(|&d| d == byte)? as u64;
      code = code * 36 + digit;
    }
    (code >> (2 * HALF_BITS) == 0).then(|| self.unpermute(code))
  }
}
