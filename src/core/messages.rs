//! The user-facing message table: `getUserFriendlyMessage` and the messages
//! of the building blocks and `executeWithFallback`, the same strings as the
//! module this package replaces (README, first section). One place, so the
//! building blocks and `executeWithFallback` can never drift apart.

pub const MSG_CACHE: &str =
  "We encountered an issue, but don't worry! We're showing you a previous result while we work on this.";
pub const MSG_SKIP: &str =
  "We encountered an issue, but don't worry! We've temporarily skipped this step to keep things moving.";
pub const MSG_QUEUE: &str =
  "We encountered an issue, but don't worry! We've saved your request and will process it shortly.";
pub const MSG_DEFAULT: &str =
  "We encountered an issue, but don't worry! We're using a safe default while we resolve this.";
pub const MSG_ALTERNATIVE: &str =
  "We encountered an issue, but don't worry! We've switched to an alternative so you can keep going.";
pub const MSG_GENERIC: &str =
  "We encountered an issue, but don't worry! Please try again in a moment.";

pub const MSG_SUCCESS: &str = "Operation completed successfully";
pub const MSG_CACHED_AI: &str = "Using cached AI response from previous request";
pub const MSG_DEFAULT_AI: &str = "Using default value as no cache available";
pub const MSG_NO_CACHE: &str = "No cached response available";

/// The friendly message for a fallback type; anything unknown gets the
/// generic one.
pub fn user_friendly_message(fallback_type: Option<&str>) -> &'static str {
  match fallback_type {
    Some("cache") => MSG_CACHE,
    Some("skip") => MSG_SKIP,
    Some("queue") => MSG_QUEUE,
    Some("default") => MSG_DEFAULT,
    Some("alternative") => MSG_ALTERNATIVE,
    _ => MSG_GENERIC,
  }
}

/// `skipReason` recorded for a skipped integration.
pub fn skip_reason(error_message: &str) -> String {
  format!("Service temporarily unavailable: {error_message}")
}

/// `message` of `skipFailedIntegration`'s result.
pub fn skipped_message(service: &str, skip_reason: &str) -> String {
  format!("Skipped {service} integration - {skip_reason}")
}

/// `message` of `queueForLater`'s result.
pub fn queued_message(job_id: &str) -> String {
  format!("Job queued for later processing (ID: {job_id})")
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn table_matches_the_contract() {
    let rows = [
      (Some("cache"), MSG_CACHE),
      (Some("skip"), MSG_SKIP),
      (Some("queue"), MSG_QUEUE),
      (Some("default"), MSG_DEFAULT),
      (Some("alternative"), MSG_ALTERNATIVE),
      (Some("other"), MSG_GENERIC),
      (Some(""), MSG_GENERIC),
      (Some("Cache"), MSG_GENERIC),
      (None, MSG_GENERIC),
    ];
    for (kind, expected) in rows {
      assert_eq!(user_friendly_message(kind), expected, "{kind:?}");
    }
  }

  #[test]
  fn composed_messages() {
    let reason = skip_reason("boom");
    assert_eq!(reason, "Service temporarily unavailable: boom");
    assert_eq!(
      skipped_message("facebook", &reason),
      "Skipped facebook integration - Service temporarily unavailable: boom"
    );
    assert_eq!(
      queued_message("job_1_abc"),
      "Job queued for later processing (ID: job_1_abc)"
    );
  }
}
