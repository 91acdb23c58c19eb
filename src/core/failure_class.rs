//! Failure classes (README, "Failure classes"): what kind of failure an
//! error is, from the facts read off it (its HTTP status, its codes, types
//! and names, its message texts, and the errors it wraps), as OpenAI,
//! Anthropic, Amazon Bedrock, Google, the AI SDK and Node.js itself throw
//! them. The binding reads the facts (src/binding/error_facts.rs); the
//! decision is here, free of any JavaScript.

/// The class of a failure. The order is the contract's order: `index()`
/// is the position in `ALL`, which the binding hands to JavaScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
  RateLimit,
  Overloaded,
  ContextWindow,
  ContentPolicy,
  Auth,
  Timeout,
  Network,
  Other,
}

impl FailureClass {
  pub const ALL: [FailureClass; 8] = [
    FailureClass::RateLimit,
    FailureClass::Overloaded,
    FailureClass::ContextWindow,
    FailureClass::ContentPolicy,
    FailureClass::Auth,
    FailureClass::Timeout,
    FailureClass::Network,
    FailureClass::Other,
  ];

  /// The name JavaScript sees.
  pub fn as_str(self) -> &'static str {
    match self {
      FailureClass::RateLimit => "rateLimit",
      FailureClass::Overloaded => "overloaded",
      FailureClass::ContextWindow => "contextWindow",
      FailureClass::ContentPolicy => "contentPolicy",
      FailureClass::Auth => "auth",
      FailureClass::Timeout => "timeout",
      FailureClass::Network => "network",
      FailureClass::Other => "other",
    }
  }

  pub fn from_name(name: &str) -> Option<FailureClass> {
    FailureClass::ALL
      .into_iter()
      .find(|class| class.as_str() == name)
  }

  /// The position in `ALL`.
  pub fn index(self) -> u32 {
    self as u32
  }
}

/// What could be read off one thrown value. Every part may be empty: a
/// value that is not an object, or whose getters throw, has no facts and
/// is `Other`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ErrorFacts {
  /// The HTTP status it carries (`status`, `statusCode`, `response.status`,
  /// `$metadata.httpStatusCode`, a body's numeric `code`).
  pub status: Option<u16>,
  /// A gRPC status code (Vertex AI's clients: a numeric `code` of 1 to 16).
  pub grpc: Option<u8>,
  /// Identifiers: its `name`, `code`, `type`, a textual `status`, those of
  /// the body it carries (`error`, `error.error`, `data.error`), a
  /// `finishReason` or `blockReason`.
  pub tokens: Vec<String>,
  /// Texts: its `message`, the body's messages, an AI SDK `responseBody`.
  pub messages: Vec<String>,
  /// The errors it wraps, the nearest first: `lastError` (the AI SDK's
  /// `RetryError`), then `cause` (undici's `fetch failed`).
  pub inner: Vec<ErrorFacts>,
}

/// The class of the failure `facts` describe. Strongest evidence first:
/// the error's own identifiers, then what its message says of a context
/// window or a content policy (both come as a plain 400), then its HTTP
/// status, then the errors it wraps, then the rest of what its message
/// says.
pub fn classify(facts: &ErrorFacts) -> FailureClass {
  if let Some(class) = by_tokens(&facts.tokens) {
    return class;
  }
  if let Some(class) = by_messages(&facts.messages, STRONG_PATTERNS) {
    return class;
  }
  if let Some(class) = facts.status.and_then(by_status) {
    return class;
  }
  if let Some(class) = facts.grpc.and_then(by_grpc) {
    return class;
  }
  for inner in &facts.inner {
    let class = classify(inner);
    if class != FailureClass::Other {
      return class;
    }
  }
  by_messages(&facts.messages, WEAK_PATTERNS).unwrap_or(FailureClass::Other)
}

use FailureClass::{Auth, ContentPolicy, ContextWindow, Network, Overloaded, RateLimit, Timeout};

/// Identifiers, lowercased with `-` as `_`, and what each means. Names,
/// codes and types of the providers' SDKs and their bodies, gRPC status
/// names, Node.js and undici codes, the AI SDK's finish reasons.
const TOKENS: &[(&str, FailureClass)] = &[
  // A context window: OpenAI's code, Anthropic's and Bedrock's through messages.
  ("context_length_exceeded", ContextWindow),
  ("string_above_max_length", ContextWindow),
  ("model_context_window_exceeded", ContextWindow),
  // A content policy: OpenAI (Azure) codes, Gemini finish and block reasons, the AI SDK.
  ("content_filter", ContentPolicy),
  ("content_policy_violation", ContentPolicy),
  ("safety", ContentPolicy),
  ("prohibited_content", ContentPolicy),
  ("blocklist", ContentPolicy),
  ("spii", ContentPolicy),
  ("image_safety", ContentPolicy),
  // Credentials and permissions.
  ("invalid_api_key", Auth),
  ("authentication_error", Auth),
  ("permission_error", Auth),
  ("authenticationerror", Auth),
  ("permissiondeniederror", Auth),
  ("accessdeniedexception", Auth),
  ("unrecognizedclientexception", Auth),
  ("expiredtokenexception", Auth),
  ("invalidsignatureexception", Auth),
  ("permission_denied", Auth),
  ("unauthenticated", Auth),
  ("api_key_invalid", Auth),
  ("ai_loadapikeyerror", Auth),
  ("loadapikeyerror", Auth),
  // A rate limit or a spent quota.
  ("rate_limit_exceeded", RateLimit),
  ("rate_limit_error", RateLimit),
  ("ratelimiterror", RateLimit),
  ("insufficient_quota", RateLimit),
  ("throttlingexception", RateLimit),
  ("toomanyrequestsexception", RateLimit),
  ("servicequotaexceededexception", RateLimit),
  ("resource_exhausted", RateLimit),
  // This package's own: every model of a chain is benched after a throttle,
  // or over its shared rate limit, or the call's budget is spent (a quota).
  ("cooling_down", RateLimit),
  ("rate_limited", RateLimit),
  ("budget_exceeded", RateLimit),
  // This package's own: every model's shared breaker is open.
  ("circuit_open", Overloaded),
  // The provider cannot serve now.
  ("overloaded_error", Overloaded),
  ("serviceunavailableexception", Overloaded),
  ("modelnotreadyexception", Overloaded),
  ("internalserverexception", Overloaded),
  ("internalservererror", Overloaded),
  ("unavailable", Overloaded),
  ("server_error", Overloaded),
  ("api_error", Overloaded),
  // Time ran out (this package's own `timeoutMs` error is `code: 'TIMEOUT'`).
  ("timeout", Timeout),
  ("timeouterror", Timeout),
  ("aborterror", Timeout),
  ("etimedout", Timeout),
  ("esockettimedout", Timeout),
  ("und_err_connect_timeout", Timeout),
  ("und_err_headers_timeout", Timeout),
  ("und_err_body_timeout", Timeout),
  ("und_err_aborted", Timeout),
  ("apiconnectiontimeouterror", Timeout),
  ("modeltimeoutexception", Timeout),
  ("deadline_exceeded", Timeout),
  // The network.
  ("econnreset", Network),
  ("econnrefused", Network),
  ("econnaborted", Network),
  ("enotfound", Network),
  ("eai_again", Network),
  ("epipe", Network),
  ("enetunreach", Network),
  ("enetdown", Network),
  ("ehostunreach", Network),
  ("ehostdown", Network),
  ("apiconnectionerror", Network),
  ("fetcherror", Network),
];

/// The class the identifiers name; when they name several, the more
/// specific wins (a context window over a rate limit, a timeout over the
/// network: OpenAI's `APIConnectionTimeoutError` is an `APIConnectionError`).
fn by_tokens(tokens: &[String]) -> Option<FailureClass> {
  let mut found: Option<FailureClass> = None;
  for token in tokens {
    let token = normalized(token);
    let class = TOKENS
      .iter()
      .find(|(known, _)| *known == token)
      .map(|&(_, class)| class)
      .or_else(|| token.starts_with("und_err_").then_some(Network));
    if let Some(class) = class {
      if found.is_none_or(|before| rank(class) < rank(before)) {
        found = Some(class);
      }
    }
  }
  found
}

/// Lower ranks win when identifiers disagree.
fn rank(class: FailureClass) -> u8 {
  match class {
    ContextWindow => 0,
    ContentPolicy => 1,
    Auth => 2,
    RateLimit => 3,
    Overloaded => 4,
    Timeout => 5,
    Network => 6,
    FailureClass::Other => 7,
  }
}

fn normalized(token: &str) -> String {
  token.trim().to_ascii_lowercase().replace('-', "_")
}

/// Phrases (lowercase) that say what a failure was even on a plain 400:
/// a context window or a content policy.
const STRONG_PATTERNS: &[(&str, FailureClass)] = &[
  ("context_length_exceeded", ContextWindow),
  ("maximum context length", ContextWindow),
  ("context length", ContextWindow),
  ("context window", ContextWindow),
  ("prompt is too long", ContextWindow),
  ("input is too long", ContextWindow),
  ("too many input tokens", ContextWindow),
  ("input token count", ContextWindow),
  ("exceeds the maximum number of tokens", ContextWindow),
  ("reduce the length of the messages", ContextWindow),
  ("too many tokens", ContextWindow),
  ("content_filter", ContentPolicy),
  ("content_policy_violation", ContentPolicy),
  ("content policy", ContentPolicy),
  ("content management policy", ContentPolicy),
  ("content filtering policy", ContentPolicy),
  ("safety system", ContentPolicy),
  ("blocked due to safety", ContentPolicy),
  ("blocked due to prohibited_content", ContentPolicy),
  ("blocked due to blocklist", ContentPolicy),
  ("usage policies", ContentPolicy),
  ("responsible ai", ContentPolicy),
];

/// Phrases (lowercase) weighed after the status and the wrapped errors.
const WEAK_PATTERNS: &[(&str, FailureClass)] = &[
  ("rate limit", RateLimit),
  ("rate_limit", RateLimit),
  ("too many requests", RateLimit),
  ("resource_exhausted", RateLimit),
  ("exceeded your current quota", RateLimit),
  ("quota exceeded", RateLimit),
  ("throttl", RateLimit),
  ("overloaded", Overloaded),
  ("service unavailable", Overloaded),
  ("temporarily unavailable", Overloaded),
  ("api key", Auth),
  ("api_key", Auth),
  ("unauthorized", Auth),
  ("unauthenticated", Auth),
  ("permission_denied", Auth),
  ("permission denied", Auth),
  ("access denied", Auth),
  ("authentication", Auth),
  ("timed out", Timeout),
  ("timeout", Timeout),
  ("deadline_exceeded", Timeout),
  ("fetch failed", Network),
  ("socket hang up", Network),
  ("connection error", Network),
  ("network error", Network),
  ("econnreset", Network),
  ("econnrefused", Network),
  ("enotfound", Network),
  ("eai_again", Network),
];

/// The class of the first pattern any of `messages` holds.
fn by_messages(messages: &[String], patterns: &[(&str, FailureClass)]) -> Option<FailureClass> {
  let lowered: Vec<String> = messages.iter().map(|text| text.to_lowercase()).collect();
  patterns
    .iter()
    .find(|(pattern, _)| lowered.iter().any(|text| text.contains(pattern)))
    .map(|&(_, class)| class)
}

/// What an HTTP status says on its own.
fn by_status(status: u16) -> Option<FailureClass> {
  match status {
    401 | 403 | 407 => Some(Auth),
    408 | 504 => Some(Timeout),
    429 => Some(RateLimit),
    500 | 502 | 503 | 529 => Some(Overloaded),
    _ => None,
  }
}

/// What a gRPC status code says (google-gax, as Vertex AI's clients throw).
fn by_grpc(code: u8) -> Option<FailureClass> {
  match code {
    4 => Some(Timeout),
    7 | 16 => Some(Auth),
    8 => Some(RateLimit),
    13 | 14 => Some(Overloaded),
    _ => None,
  }
}

#[cfg(test)]
mod tests {
  use super::FailureClass::*;
  use super::*;

  fn facts(status: Option<u16>, tokens: &[&str], messages: &[&str]) -> ErrorFacts {
    ErrorFacts {
      status,
      tokens: tokens.iter().map(|t| t.to_string()).collect(),
      messages: messages.iter().map(|t| t.to_string()).collect(),
      ..ErrorFacts::default()
    }
  }

  #[test]
  fn names_round_trip_in_the_contracts_order() {
    let names: Vec<_> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
      names,
      [
        "rateLimit",
        "overloaded",
        "contextWindow",
        "contentPolicy",
        "auth",
        "timeout",
        "network",
        "other"
      ]
    );
    for (i, class) in FailureClass::ALL.iter().enumerate() {
      assert_eq!(class.index() as usize, i);
      assert_eq!(FailureClass::from_name(class.as_str()), Some(*class));
    }
    assert_eq!(FailureClass::from_name("RateLimit"), None);
  }

  #[test]
  fn nothing_known_is_other() {
    assert_eq!(classify(&ErrorFacts::default()), Other);
    assert_eq!(
      classify(&facts(
        Some(400),
        &["Error", "invalid_request_error"],
        &["bad"]
      )),
      Other
    );
    assert_eq!(
      classify(&facts(Some(404), &["NotFoundError"], &["no such model"])),
      Other
    );
  }

  #[test]
  fn openai_shapes() {
    let context = facts(
      Some(400),
      &[
        "BadRequestError",
        "context_length_exceeded",
        "invalid_request_error",
      ],
      &["400 This model's maximum context length is 8192 tokens."],
    );
    assert_eq!(classify(&context), ContextWindow);
    assert_eq!(
      classify(&facts(
        Some(429),
        &["RateLimitError", "rate_limit_exceeded", "requests"],
        &[]
      )),
      RateLimit
    );
    assert_eq!(
      classify(&facts(
        Some(429),
        &["RateLimitError", "insufficient_quota"],
        &[]
      )),
      RateLimit
    );
    assert_eq!(
      classify(&facts(
        Some(400),
        &["BadRequestError", "content_filter"],
        &[]
      )),
      ContentPolicy
    );
    assert_eq!(
      classify(&facts(
        Some(400),
        &["BadRequestError", "content_policy_violation"],
        &[]
      )),
      ContentPolicy
    );
    assert_eq!(
      classify(&facts(
        Some(401),
        &["AuthenticationError", "invalid_api_key"],
        &[]
      )),
      Auth
    );
    assert_eq!(
      classify(&facts(
        None,
        &["APIConnectionError"],
        &["Connection error."]
      )),
      Network
    );
    assert_eq!(
      classify(&facts(
        None,
        &["APIConnectionTimeoutError", "APIConnectionError"],
        &["Request timed out."]
      )),
      Timeout
    );
  }

  #[test]
  fn anthropic_shapes() {
    assert_eq!(
      classify(&facts(
        Some(529),
        &["InternalServerError", "overloaded_error"],
        &[]
      )),
      Overloaded
    );
    assert_eq!(
      classify(&facts(Some(429), &["rate_limit_error"], &[])),
      RateLimit
    );
    let too_long = facts(
      Some(400),
      &["BadRequestError", "invalid_request_error"],
      &["prompt is too long: 208310 tokens > 200000 maximum"],
    );
    assert_eq!(classify(&too_long), ContextWindow);
    assert_eq!(
      classify(&facts(Some(403), &["permission_error"], &[])),
      Auth
    );
  }

  #[test]
  fn bedrock_and_google_shapes() {
    assert_eq!(
      classify(&facts(Some(429), &["ThrottlingException"], &[])),
      RateLimit
    );
    assert_eq!(
      classify(&facts(Some(503), &["ModelNotReadyException"], &[])),
      Overloaded
    );
    let input = facts(
      Some(400),
      &["ValidationException"],
      &["Input is too long for requested model."],
    );
    assert_eq!(classify(&input), ContextWindow);
    assert_eq!(
      classify(&facts(Some(408), &["ModelTimeoutException"], &[])),
      Timeout
    );
    assert_eq!(
      classify(&facts(Some(429), &["RESOURCE_EXHAUSTED"], &[])),
      RateLimit
    );
    let tokens = facts(
      Some(400),
      &["INVALID_ARGUMENT"],
      &["The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."],
    );
    assert_eq!(classify(&tokens), ContextWindow);
    assert_eq!(classify(&facts(None, &["SAFETY"], &[])), ContentPolicy);
    let key = facts(
      Some(400),
      &["INVALID_ARGUMENT"],
      &["API key not valid. Please pass a valid API key."],
    );
    assert_eq!(classify(&key), Auth);
    let grpc = ErrorFacts {
      grpc: Some(8),
      ..ErrorFacts::default()
    };
    assert_eq!(classify(&grpc), RateLimit);
  }

  #[test]
  fn node_errors_and_wrapped_ones() {
    assert_eq!(
      classify(&facts(None, &["Error", "ECONNRESET"], &[])),
      Network
    );
    assert_eq!(classify(&facts(None, &["UND_ERR_SOCKET"], &[])), Network);
    assert_eq!(
      classify(&facts(None, &["UND_ERR_HEADERS_TIMEOUT"], &[])),
      Timeout
    );
    assert_eq!(classify(&facts(None, &["Error", "TIMEOUT"], &[])), Timeout);
    let fetch = ErrorFacts {
      inner: vec![facts(None, &["Error", "ECONNREFUSED"], &[])],
      ..facts(None, &["TypeError"], &["fetch failed"])
    };
    assert_eq!(classify(&fetch), Network);
    let retry = ErrorFacts {
      inner: vec![facts(
        Some(400),
        &["AI_APICallError"],
        &["This model's maximum context length is 4097 tokens"],
      )],
      ..facts(
        None,
        &["AI_RetryError", "maxRetriesExceeded"],
        &["Failed after 3 attempts."],
      )
    };
    assert_eq!(classify(&retry), ContextWindow);
  }

  #[test]
  fn identifiers_beat_the_status_and_the_specific_wins() {
    // Bedrock's ModelNotReadyException comes as a 429: it is an overload.
    assert_eq!(
      classify(&facts(Some(429), &["ModelNotReadyException"], &[])),
      Overloaded
    );
    // A context window named beside a rate limit's name: the context window.
    assert_eq!(
      classify(&facts(
        Some(429),
        &["RateLimitError", "context_length_exceeded"],
        &[]
      )),
      ContextWindow
    );
    // This package's own COOLING_DOWN: every model was benched after a throttle.
    assert_eq!(
      classify(&facts(None, &["Error", "COOLING_DOWN"], &[])),
      RateLimit
    );
    // The AI SDK's finish reason, spelled with a dash.
    assert_eq!(
      classify(&facts(None, &["content-filter"], &[])),
      ContentPolicy
    );
    // A message about the network weighs less than the status.
    assert_eq!(
      classify(&facts(Some(503), &[], &["fetch failed"])),
      Overloaded
    );
  }

  #[test]
  fn statuses_alone() {
    for (status, class) in [
      (401, Auth),
      (403, Auth),
      (408, Timeout),
      (504, Timeout),
      (429, RateLimit),
      (503, Overloaded),
      (529, Overloaded),
    ] {
      assert_eq!(classify(&facts(Some(status), &[], &[])), class, "{status}");
    }
  }
}
