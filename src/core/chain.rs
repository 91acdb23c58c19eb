//! The policy of a chain of models (README, "Alternatives"): which
//! alternative a failure moves the call to, and what a chain in which no
//! model failed fails with. `lib/chain.js` drives the chain (it calls and
//! awaits the models, benches the throttled ones, says on the channels how
//! each fared) and asks here at the two points where the chain decides:
//! before an alternative with `on`, and when every model was passed over.

use super::failure_class::FailureClass;

/// The classes a model benched after a throttle stands for.
const THROTTLES: [FailureClass; 2] = [FailureClass::RateLimit, FailureClass::Overloaded];

/// Whether an alternative that answers the classes `on` is tried after a
/// failure of class `after`. `None`: no model has failed yet (the ones
/// before it were benched), which only a throttle benches, so it is tried
/// when it answers a throttle.
pub fn answers(on: &[FailureClass], after: Option<FailureClass>) -> bool {
  match after {
    Some(class) => on.contains(&class),
    None => THROTTLES.iter().any(|throttle| on.contains(throttle)),
  }
}

/// A budget that stopped the chain: its key, and when it is spent no more.
#[derive(Debug, Clone, PartialEq)]
pub struct SpentBudget {
  pub key: String,
  pub resets_at_ms: u64,
}

/// A model passed over because a cooldown benched it, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct CoolingModel {
  pub name: String,
  pub remaining_ms: f64,
}

/// Why the models of a chain in which none failed were passed over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassedOver {
  /// The budget that stopped the chain before any model failed.
  pub over_budget: Option<SpentBudget>,
  /// Models over their shared rate limit.
  pub limited: Vec<String>,
  /// Models whose shared circuit breaker is open.
  pub opened: Vec<String>,
  /// Models benched by a cooldown.
  pub cooling: Vec<CoolingModel>,
}

/// The error a chain in which no model failed rejects with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
  pub code: &'static str,
  pub message: String,
}

impl PassedOver {
  /// A spent budget first (it stopped the chain, whatever came before),
  /// then rate limits, then open breakers, else cooldowns: the reason
  /// the caller can act on soonest is the one named.
  pub fn refusal(&self, operation_name: &str) -> Refusal {
    if let Some(SpentBudget { key, resets_at_ms }) = &self.over_budget {
      let until = iso_8601(*resets_at_ms);
      return Refusal {
        code: "BUDGET_EXCEEDED",
        message: format!("The budget \"{key}\" of \"{operation_name}\" is spent until {until}"),
      };
    }
    if !self.limited.is_empty() {
      let names = self.limited.join(", ");
      return Refusal {
        code: "RATE_LIMITED",
        message: format!(
          "Every model of \"{operation_name}\" is over its rate limit or passed over: {names}"
        ),
      };
    }
    if !self.opened.is_empty() {
      let names = self.opened.join(", ");
      return Refusal {
        code: "CIRCUIT_OPEN",
        message: format!(
          "Every model of \"{operation_name}\" has its circuit breaker open or passed over: {names}"
        ),
      };
    }
    let waits: Vec<String> = self
      .cooling
      .iter()
      .map(|model| {
        format!(
          "{} ({} s)",
          model.name,
          (model.remaining_ms / 1000.0).ceil()
        )
      })
      .collect();
    Refusal {
      code: "COOLING_DOWN",
      message: format!(
        "Every model of \"{operation_name}\" is cooling down: {}",
        waits.join(", ")
      ),
    }
  }
}

/// `ms` since the epoch as JavaScript's `Date.prototype.toISOString`
/// writes it (a year past 9999 gets a sign and six digits).
pub fn iso_8601(ms: u64) -> String {
  let days = (ms / 86_400_000) as i64;
  let in_day = ms % 86_400_000;
  let (year, month, day) = civil_from_days(days);
  let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
  let (second, milli) = (in_day / 1000 % 60, in_day % 1000);
  let year = if year > 9999 {
    format!("+{year:06}")
  } else {
    format!("{year:04}")
  };
  format!("{year}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
  let z = days + 719_468;
  let era = z / 146_097;
  let day_of_era = z - era * 146_097;
  let year_of_era =
    (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
  let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  let month_index = (5 * day_of_year + 2) / 153;
  let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
  let month = if month_index < 10 {
    month_index + 3
  } else {
    month_index - 9
  } as u32;
  let year = year_of_era + era * 400 + i64::from(month <= 2);
  (year, month, day)
}

#[cfg(test)]
mod tests {
  use super::*;
  use FailureClass::*;

  #[test]
  fn an_alternative_answers_only_its_classes() {
    assert!(answers(&[Timeout, Network], Some(Network)));
    assert!(!answers(&[Timeout, Network], Some(Auth)));
    assert!(!answers(&[], Some(Other)));
  }

  #[test]
  fn before_any_failure_only_a_throttle_is_answered() {
    assert!(answers(&[RateLimit], None));
    assert!(answers(&[Auth, Overloaded], None));
    assert!(!answers(&[Timeout, ContextWindow], None));
  }

  fn passed_over() -> PassedOver {
    PassedOver {
      over_budget: Some(SpentBudget {
        key: "daily".into(),
        resets_at_ms: 1_765_152_000_000,
      }),
      limited: vec!["gpt".into()],
      opened: vec!["claude".into()],
      cooling: vec![CoolingModel {
        name: "gemini".into(),
        remaining_ms: 1500.0,
      }],
    }
  }

  #[test]
  fn a_spent_budget_is_named_before_anything_else() {
    let refusal = passed_over().refusal("chat");
    assert_eq!(refusal.code, "BUDGET_EXCEEDED");
    assert_eq!(
      refusal.message,
      "The budget \"daily\" of \"chat\" is spent until 2025-12-08T00:00:00.000Z"
    );
  }

  #[test]
  fn rate_limits_then_open_breakers_then_cooldowns() {
    let mut passed = passed_over();
    passed.over_budget = None;
    let limited = passed.refusal("chat");
    assert_eq!(limited.code, "RATE_LIMITED");
    assert_eq!(
      limited.message,
      "Every model of \"chat\" is over its rate limit or passed over: gpt"
    );
    passed.limited.clear();
    let opened = passed.refusal("chat");
    assert_eq!(opened.code, "CIRCUIT_OPEN");
    assert!(opened
      .message
      .ends_with("has its circuit breaker open or passed over: claude"));
    passed.opened.clear();
    passed.cooling.push(CoolingModel {
      name: "mistral".into(),
      remaining_ms: 30_000.0,
    });
    let cooling = passed.refusal("chat");
    assert_eq!(cooling.code, "COOLING_DOWN");
    // A wait is rounded up to whole seconds: 1.5 s is said as 2 s.
    assert_eq!(
      cooling.message,
      "Every model of \"chat\" is cooling down: gemini (2 s), mistral (30 s)"
    );
  }

  #[test]
  fn dates_are_written_as_javascript_writes_them() {
    assert_eq!(iso_8601(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso_8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
    assert_eq!(iso_8601(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
    assert_eq!(iso_8601(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
    assert_eq!(iso_8601(253_402_300_800_000), "+010000-01-01T00:00:00.000Z");
    // The latest time a Date holds.
    assert_eq!(
      iso_8601(8_640_000_000_000_000),
      "+275760-09-13T00:00:00.000Z"
    );
  }
}
