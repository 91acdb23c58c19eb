//! Bounds on the strings the stores keep. An identifier (an operation name,
//! a user id, a service, a model id) is a key: kept whole or refused, never
//! cut, or two of them would become one. A descriptive text (an error
//! message, a skip reason) is only read by people: cut to a bound, marked.

/// The most bytes of UTF-8 an identifier may have.
pub const MAX_ID_BYTES: usize = 4096;

/// The most bytes of UTF-8 a descriptive text keeps.
pub const MAX_TEXT_BYTES: usize = 8192;

const CUT_MARK: &str = "… (cut)";

/// `text`, cut at a character boundary to at most `MAX_TEXT_BYTES` bytes
/// (the mark included) when it is longer.
pub fn clip(text: &str) -> String {
  clip_to(text, MAX_TEXT_BYTES)
}

/// `text`, cut at a character boundary to at most `max` bytes (the mark
/// included; `max` is at least the mark's length) when it is longer.
pub fn clip_to(text: &str, max: usize) -> String {
  if text.len() <= max {
    return text.to_owned();
  }
  let mut end = max.saturating_sub(CUT_MARK.len());
  while !text.is_char_boundary(end) {
    end -= 1;
  }
  format!("{}{CUT_MARK}", &text[..end])
}

/// Why an identifier cannot be kept, if it cannot.
pub fn id_too_long(what: &str, id: &str) -> Option<String> {
  (id.len() > MAX_ID_BYTES).then(|| {
    format!(
      "{what} is {} bytes long, more than the {MAX_ID_BYTES} bytes an identifier may have",
      id.len()
    )
  })
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn texts_are_cut_at_a_character_boundary_and_marked() {
    assert_eq!(clip("short"), "short");
    let long = "é".repeat(MAX_TEXT_BYTES);
    let cut = clip(&long);
    assert!(cut.len() <= MAX_TEXT_BYTES);
    assert!(cut.ends_with(CUT_MARK));
    let short = clip_to(&"é".repeat(600), 1024);
    assert!(short.len() <= 1024 && short.ends_with(CUT_MARK));
    assert_eq!(clip_to("short", 1024), "short");
  }

  #[test]
  fn identifiers_are_kept_whole_or_refused() {
    assert_eq!(id_too_long("userId", &"u".repeat(MAX_ID_BYTES)), None);
    assert!(id_too_long("userId", &"u".repeat(MAX_ID_BYTES + 1))
      .unwrap()
      .contains("4097 bytes"));
  }
}
