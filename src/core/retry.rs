//! Retry delays: exponential backoff with decorrelated jitter (the AWS
//! Architecture Blog's "decorrelated jitter": each delay is drawn between the
//! base and three times the previous one, capped), or without jitter; and
//! what an error asks to wait (`retryAfterMs`, `Retry-After`,
//! `retry-after-ms`), read and capped.

/// The longest wait an error may ask for before its call gives up instead
/// (`maxRetryAfterMs`): 60 s, the ceiling the OpenAI and Anthropic SDKs
/// honour.
pub const DEFAULT_MAX_RETRY_AFTER_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
  /// `random(base, previous × 3)`, capped at `max_delay_ms`.
  Decorrelated,
  /// `base × 2^(retry − 1)`, capped: the same every time.
  None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
  /// Retries after the first attempt (so `max_retries + 1` attempts at most).
  pub max_retries: u32,
  pub base_delay_ms: u64,
  pub max_delay_ms: u64,
  pub jitter: Jitter,
  /// The longest wait an error may ask for; an error asking for more ends
  /// the retries (the call gives up at once, and its fallbacks run).
  pub max_retry_after_ms: u64,
}

impl Default for RetryPolicy {
  fn default() -> Self {
    Self {
      max_retries: 3,
      base_delay_ms: 1_000,
      max_delay_ms: 30_000,
      jitter: Jitter::Decorrelated,
      max_retry_after_ms: DEFAULT_MAX_RETRY_AFTER_MS,
    }
  }
}

impl RetryPolicy {
  /// Whether another attempt may follow attempt number `attempt` (1-based).
  pub fn allows_retry_after(&self, attempt: u32) -> bool {
    attempt <= self.max_retries
  }

  /// Whether the wait an error asked for is one this policy honours:
  /// at most `max_retry_after_ms`. A call whose error asks for more gives
  /// up rather than wait that long (or retry before the server allows).
  pub fn honours_wait(&self, asked_ms: u64) -> bool {
    asked_ms <= self.max_retry_after_ms
  }

  /// After attempt number `attempt` failed: the delay before the next one,
  /// or `None` to give up (no retries left, the error is not retryable, or
  /// it asks to wait longer than `max_retry_after_ms`).
  pub fn after_failure(
    &self,
    attempt: u32,
    previous_ms: u64,
    retryable: bool,
    at_least_ms: u64,
    random: &mut JitterRandom,
  ) -> Option<u64> {
    (retryable && self.allows_retry_after(attempt) && self.honours_wait(at_least_ms))
      .then(|| self.delay_ms(attempt, previous_ms, random.next_unit(), at_least_ms))
  }

  /// The delay before retry number `retry` (1-based), given the previous
  /// delay, a random number in [0, 1) and a lower bound the error asked for
  /// (`retryAfterMs`, `Retry-After`), which wins over `max_delay_ms` (the
  /// caller checks it against `max_retry_after_ms` first).
  pub fn delay_ms(&self, retry: u32, previous_ms: u64, random: f64, at_least_ms: u64) -> u64 {
    let base = self.base_delay_ms.min(self.max_delay_ms);
    let delay = match self.jitter {
      Jitter::None => {
        let factor = 1u64
          .checked_shl(retry.saturating_sub(1))
          .unwrap_or(u64::MAX);
        base.saturating_mul(factor).min(self.max_delay_ms)
      }
      Jitter::Decorrelated => {
        let upper = previous_ms
          .max(base)
          .saturating_mul(3)
          .min(self.max_delay_ms)
          .max(base);
        let span = (upper - base) as f64;
        (base + (span * random.clamp(0.0, 1.0)) as u64).min(upper)
      }
    };
    delay.max(at_least_ms)
  }
}

/// A wait in milliseconds given as a number (`retryAfterMs`, a numeric
/// header): `None` for NaN or a negative number (nothing asked), saturating
/// at `u64::MAX` (an infinite or huge ask, which no cap honours).
pub fn wait_from_ms(ms: f64) -> Option<u64> {
  if ms.is_nan() || ms < 0.0 {
    return None;
  }
  // `as` saturates: infinity and anything past u64::MAX become u64::MAX.
  Some(ms as u64)
}

/// Digits with at most one decimal point (`"120"`, `"0.5"`): what the
/// numeric header forms are read as. Rejects signs, exponents, `inf`, `NaN`.
fn plain_number(text: &str) -> Option<f64> {
  let digits = text.bytes().filter(u8::is_ascii_digit).count();
  let points = text.bytes().filter(|&b| b == b'.').count();
  (digits > 0 && points <= 1 && digits + points == text.len())
    .then(|| text.parse::<f64>().ok())
    .flatten()
}

/// A `retry-after-ms` header value (milliseconds, as the OpenAI and
/// Anthropic APIs send it).
pub fn parse_retry_after_ms(value: &str) -> Option<u64> {
  wait_from_ms(plain_number(value.trim())?)
}

/// A `Retry-After` header value: delay-seconds (a decimal fraction is
/// accepted) or an HTTP-date (RFC 9110: IMF-fixdate, or the obsolete RFC 850
/// and asctime forms), as milliseconds to wait from `now_ms`. A date in the
/// past asks for no wait (`Some(0)`); an unreadable value asks for nothing.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
  let value = value.trim();
  if let Some(seconds) = plain_number(value) {
    return wait_from_ms(seconds * 1000.0);
  }
  parse_http_date(value).map(|at| at.saturating_sub(now_ms))
}

const MONTHS: [&str; 12] = [
  "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP-date as milliseconds since the Unix epoch (a date before it
/// reads as 0): `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate), `Sunday,
/// 06-Nov-94 08:49:37 GMT` (RFC 850; a two-digit year below 70 is 20yy) or
/// `Sun Nov  6 08:49:37 1994` (asctime). The weekday is not checked against
/// the date; month names are matched case-insensitively.
pub fn parse_http_date(text: &str) -> Option<u64> {
  let (day, month, year, time) = match text.split_once(',') {
    Some((_weekday, rest)) => {
      let parts: Vec<&str> = rest.split_whitespace().collect();
      match parts.as_slice() {
        [day, month, year, time, zone] if zone.eq_ignore_ascii_case("GMT") => {
          (*day, *month, year_of(year, false)?, *time)
        }
        [date, time, zone] if zone.eq_ignore_ascii_case("GMT") => {
          let mut pieces = date.split('-');
          let (day, month, year) = (pieces.next()?, pieces.next()?, pieces.next()?);
          if pieces.next().is_some() {
            return None;
          }
          (day, month, year_of(year, true)?, *time)
        }
        _ => return None,
      }
    }
    None => match text.split_whitespace().collect::<Vec<_>>().as_slice() {
      [_weekday, month, day, time, year] => (*day, *month, year_of(year, false)?, *time),
      _ => return None,
    },
  };
  let month = MONTHS
    .iter()
    .position(|name| name.eq_ignore_ascii_case(month))? as u32
    + 1;
  let day = small_number(day, 2)?;
  if day == 0 || day > days_in_month(year, month) {
    return None;
  }
  let mut clock = time.split(':');
  let (hour, minute, second) = (
    small_number(clock.next()?, 2)?,
    small_number(clock.next()?, 2)?,
    small_number(clock.next()?, 2)?,
  );
  if clock.next().is_some() || hour > 23 || minute > 59 || second > 60 {
    return None;
  }
  let days = days_from_civil(year, month, day);
  let seconds = days * 86_400 + (hour * 3_600 + minute * 60 + second) as i64;
  Some(u64::try_from(seconds).unwrap_or(0).saturating_mul(1_000))
}

/// 1 to `max_digits` ASCII digits.
fn small_number(text: &str, max_digits: usize) -> Option<u32> {
  (!text.is_empty() && text.len() <= max_digits && text.bytes().all(|b| b.is_ascii_digit()))
    .then(|| text.parse().ok())
    .flatten()
}

/// A four-digit year, or (RFC 850) a two-digit one.
fn year_of(text: &str, two_digits: bool) -> Option<i64> {
  match (two_digits, text.len()) {
    (true, 2) => small_number(text, 2).map(|yy| if yy < 70 { 2000 } else { 1900 } + yy as i64),
    (_, 4) => small_number(text, 4).map(i64::from),
    _ => None,
  }
}

fn days_in_month(year: i64, month: u32) -> u32 {
  match month {
    2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
    2 => 28,
    4 | 6 | 9 | 11 => 30,
    _ => 31,
  }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
  let year = if month <= 2 { year - 1 } else { year };
  let era = year.div_euclid(400);
  let year_of_era = year - era * 400;
  let month_from_march = (month as i64 + 9) % 12;
  let day_of_year = (153 * month_from_march + 2) / 5 + day as i64 - 1;
  let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  era * 146_097 + day_of_era - 719_468
}

/// A small, fast random source for jitter (xorshift64*, seeded per process).
pub struct JitterRandom(u64);

impl JitterRandom {
  pub fn new(seed: u64) -> Self {
    Self(seed | 1)
  }

  /// A number in [0, 1).
  pub fn next_unit(&mut self) -> f64 {
    let mut x = self.0;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    self.0 = x;
    (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn policy(jitter: Jitter) -> RetryPolicy {
    RetryPolicy {
      max_retries: 4,
      base_delay_ms: 100,
      max_delay_ms: 1_000,
      jitter,
      max_retry_after_ms: 5_000,
    }
  }

  #[test]
  fn exponential_without_jitter_is_capped() {
    let p = policy(Jitter::None);
    let delays: Vec<u64> = (1..=6).map(|r| p.delay_ms(r, 0, 0.5, 0)).collect();
    assert_eq!(delays, vec![100, 200, 400, 800, 1_000, 1_000]);
  }

  #[test]
  fn decorrelated_jitter_stays_between_base_and_three_times_previous() {
    let p = policy(Jitter::Decorrelated);
    let mut random = JitterRandom::new(7);
    let mut previous = 0;
    for retry in 1..=50 {
      let delay = p.delay_ms(retry, previous, random.next_unit(), 0);
      assert!(delay >= 100, "{delay}");
      assert!(
        delay <= (previous.max(100) * 3).min(1_000),
        "{delay} after {previous}"
      );
      previous = delay;
    }
    assert_eq!(p.delay_ms(1, 0, 0.0, 0), 100);
    assert_eq!(p.delay_ms(1, 0, 0.999_999, 0), 299);
  }

  #[test]
  fn an_error_asking_for_more_time_gets_it() {
    let p = policy(Jitter::None);
    assert_eq!(p.delay_ms(1, 0, 0.0, 5_000), 5_000);
    assert_eq!(p.delay_ms(3, 0, 0.0, 10), 400);
  }

  #[test]
  fn retries_are_counted_after_the_first_attempt() {
    let p = policy(Jitter::None);
    assert!(p.allows_retry_after(1));
    assert!(p.allows_retry_after(4));
    assert!(!p.allows_retry_after(5));
    let none = RetryPolicy {
      max_retries: 0,
      ..p
    };
    assert!(!none.allows_retry_after(1));
  }

  #[test]
  fn random_units_are_in_range_and_vary() {
    let mut random = JitterRandom::new(42);
    let draws: Vec<f64> = (0..1_000).map(|_| random.next_unit()).collect();
    assert!(draws.iter().all(|&u| (0.0..1.0).contains(&u)));
    let mean = draws.iter().sum::<f64>() / draws.len() as f64;
    assert!((0.4..0.6).contains(&mean), "{mean}");
  }

  #[test]
  fn a_wait_past_the_cap_gives_up_instead() {
    let p = policy(Jitter::None);
    let mut random = JitterRandom::new(3);
    assert_eq!(p.after_failure(1, 0, true, 5_000, &mut random), Some(5_000));
    assert_eq!(p.after_failure(1, 0, true, 5_001, &mut random), None);
    assert_eq!(p.after_failure(1, 0, true, 86_400_000, &mut random), None);
    assert_eq!(p.after_failure(1, 0, true, u64::MAX, &mut random), None);
    assert_eq!(p.after_failure(1, 0, true, 0, &mut random), Some(100));
    let defaults = RetryPolicy::default();
    assert!(defaults.honours_wait(60_000));
    assert!(!defaults.honours_wait(60_001));
  }

  #[test]
  fn numbers_become_waits() {
    assert_eq!(wait_from_ms(120.0), Some(120));
    assert_eq!(wait_from_ms(0.0), Some(0));
    assert_eq!(wait_from_ms(-1.0), None);
    assert_eq!(wait_from_ms(f64::NAN), None);
    assert_eq!(wait_from_ms(f64::INFINITY), Some(u64::MAX));
    assert_eq!(wait_from_ms(1e308), Some(u64::MAX));
  }

  #[test]
  fn retry_after_in_seconds_and_ms() {
    assert_eq!(parse_retry_after("120", 0), Some(120_000));
    assert_eq!(parse_retry_after(" 0.5 ", 0), Some(500));
    assert_eq!(parse_retry_after("0", 0), Some(0));
    assert_eq!(parse_retry_after("86400", 0), Some(86_400_000));
    for bad in ["", "-1", "+1", "1e3", "inf", "NaN", "1.2.3", "soon", "."] {
      assert_eq!(parse_retry_after(bad, 0), None, "{bad:?}");
    }
    assert_eq!(parse_retry_after_ms("250"), Some(250));
    assert_eq!(parse_retry_after_ms("12.7"), Some(12));
    assert_eq!(parse_retry_after_ms("-5"), None);
    assert_eq!(
      parse_retry_after_ms("1000000000000000000000000"),
      Some(u64::MAX)
    );
  }

  #[test]
  fn http_dates_in_all_three_forms() {
    // 1994-11-06T08:49:37Z, RFC 9110's example.
    let at = 784_111_777_000;
    assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(at));
    assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(at));
    assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(at));
    assert_eq!(
      parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
      Some(1_445_412_480_000)
    );
    assert_eq!(
      parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"),
      Some(1_709_164_800_000)
    );
    assert_eq!(parse_http_date("thu, 01 jan 1970 00:00:00 gmt"), Some(0));
    assert_eq!(
      parse_http_date("Tue, 01 Jan 1901 00:00:00 GMT"),
      Some(0),
      "before the epoch"
    );
    assert_eq!(
      parse_http_date("Thursday, 01-Jan-30 00:00:00 GMT"),
      Some(1_893_456_000_000)
    );
    for bad in [
      "Sun, 06 Nov 1994 08:49:37 PST",
      "Sun, 31 Nov 1994 08:49:37 GMT",
      "Fri, 29 Feb 2023 00:00:00 GMT",
      "Sun, 06 Nov 1994 24:00:00 GMT",
      "Sun, 06 Nov 1994 08:49 GMT",
      "Sun, 06 Foo 1994 08:49:37 GMT",
      "Sun, 06 Nov 94 08:49:37 GMT",
      "Sunday, 06-Nov-1994-1 08:49:37 GMT",
      "06 Nov 1994",
      "",
    ] {
      assert_eq!(parse_http_date(bad), None, "{bad:?}");
    }
  }

  #[test]
  fn a_dated_retry_after_counts_from_now() {
    let at = 1_445_412_480_000;
    let header = "Wed, 21 Oct 2015 07:28:00 GMT";
    assert_eq!(parse_retry_after(header, at - 30_000), Some(30_000));
    assert_eq!(
      parse_retry_after(header, at + 5_000),
      Some(0),
      "a past date: no wait"
    );
  }
}
