//! Token and cost budgets every instance shares: what was spent under a key
//! in the current period (a UTC minute, hour, day or month). A call starts
//! only while less than the budget was spent; what it spends is charged
//! when it ends, so one call may take the spend past the budget, and the
//! next call is refused until the period resets.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
  Minute,
  Hour,
  Day,
  Month,
}

impl Per {
  pub fn name(self) -> &'static str {
    match self {
      Per::Minute => "minute",
      Per::Hour => "hour",
      Per::Day => "day",
      Per::Month => "month",
    }
  }

  pub fn from_name(name: &str) -> Option<Per> {
    match name {
      "minute" => Some(Per::Minute),
      "hour" => Some(Per::Hour),
      "day" => Some(Per::Day),
      "month" => Some(Per::Month),
      _ => None,
    }
  }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BudgetLimits {
  #[serde(default)]
  pub tokens: Option<u64>,
  #[serde(default)]
  pub cost: Option<f64>,
  pub per: Per,
}

/// A budget as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetRecord {
  pub start: u64,
  pub end: u64,
  pub tokens: u64,
  pub cost: f64,
  /// The limits last asked for (for `getBudgets`).
  pub limits: BudgetLimits,
}

const DAY_MS: u64 = 86_400_000;

/// The UTC period of `per` that holds `now`: `(start, end)` in ms.
pub fn period(per: Per, now: u64) -> (u64, u64) {
  let fixed = |len: u64| {
    let start = now - now % len;
    (start, start + len)
  };
  match per {
    Per::Minute => fixed(60_000),
    Per::Hour => fixed(3_600_000),
    Per::Day => fixed(DAY_MS),
    Per::Month => {
      let (year, month) = year_month((now / DAY_MS) as i64);
      let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
      } else {
        (year, month + 1)
      };
      let start = days_from_civil(year, month) as u64 * DAY_MS;
      (
        start,
        days_from_civil(next_year, next_month) as u64 * DAY_MS,
      )
    }
  }
}

/// Days since 1970-01-01 of the first day of `month` of `year` (Howard
/// Hinnant's `days_from_civil`, day 1).
fn days_from_civil(year: i64, month: u32) -> i64 {
  let y = if month <= 2 { year - 1 } else { year };
  let era = y.div_euclid(400);
  let yoe = y - era * 400;
  let m = i64::from(month);
  let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
  let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  era * 146_097 + doe - 719_468
}

/// The year and month of a day since 1970-01-01.
fn year_month(days: i64) -> (i64, u32) {
  let z = days + 719_468;
  let era = z.div_euclid(146_097);
  let doe = z - era * 146_097;
  let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
  let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  let mp = (5 * doy + 2) / 153;
  let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
  let year = yoe + era * 400 + i64::from(month <= 2);
  (year, month)
}

/// The record as of `now`: a new period starts from nothing.
pub fn current(record: Option<BudgetRecord>, limits: &BudgetLimits, now: u64) -> BudgetRecord {
  match record {
    Some(mut record)
      if record.limits.per == limits.per && now < record.end && now >= record.start =>
    {
      record.limits = *limits;
      record
    }
    _ => {
      let (start, end) = period(limits.per, now);
      BudgetRecord {
        start,
        end,
        tokens: 0,
        cost: 0.0,
        limits: *limits,
      }
    }
  }
}

/// Whether the budget is spent: a call is refused.
pub fn spent(record: &BudgetRecord) -> bool {
  let limits = record.limits;
  limits.tokens.is_some_and(|tokens| record.tokens >= tokens)
    || limits.cost.is_some_and(|cost| record.cost >= cost)
}

/// What a call spent, charged.
pub fn charge(
  record: Option<BudgetRecord>,
  limits: &BudgetLimits,
  tokens: u64,
  cost: f64,
  now: u64,
) -> BudgetRecord {
  let mut record = current(record, limits, now);
  record.tokens = record.tokens.saturating_add(tokens);
  if cost.is_finite() && cost > 0.0 {
    // At most the largest number: an infinite one would be written as
    // null, and the record then read as damaged (so as nothing spent).
    record.cost = (record.cost + cost).min(f64::MAX);
  }
  record
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn periods_are_utc_minutes_hours_days_and_months() {
    // 2026-12-07T17:04:38.500Z
    let now = 1_796_663_078_500;
    assert_eq!(
      period(Per::Minute, now),
      (1_796_663_040_000, 1_796_663_100_000)
    );
    assert_eq!(period(Per::Day, now).0, 1_796_601_600_000);
    // 2026-12-01 to 2027-01-01
    assert_eq!(
      period(Per::Month, now),
      (1_796_083_200_000, 1_798_761_600_000)
    );
    // 2024-02 (a leap year): 29 days
    let feb = period(Per::Month, 1_707_000_000_000);
    assert_eq!((feb.1 - feb.0) / DAY_MS, 29);
  }

  #[test]
  fn spent_budgets_refuse_until_the_period_resets() {
    let limits = BudgetLimits {
      tokens: Some(100),
      cost: Some(1.0),
      per: Per::Minute,
    };
    let record = charge(None, &limits, 60, 0.2, 1_000);
    assert!(!spent(&record));
    let record = charge(Some(record), &limits, 60, 0.2, 2_000);
    assert!(spent(&record), "120 tokens of 100");
    assert!(
      !spent(&current(Some(record), &limits, 60_000)),
      "a new minute"
    );
    let costly = charge(None, &limits, 0, 1.5, 0);
    assert!(spent(&costly));
  }
}
