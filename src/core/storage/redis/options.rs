//! A link's options and the checks made on them before any connection:
//! the `redisUrl` (one URL, or a cluster's seed URLs), the `keyPrefix`,
//! the timeout, and the URL with its password hidden for every message.
//! Apart from link.rs because none of it needs a server or a runtime: the
//! binding checks its arguments with these, and their tests run alone.

use std::path::PathBuf;

use redis::IntoConnectionInfo;

use crate::core::storage::sqlite::FileOptions;

/// How long one request may take when the options give no `redisTimeoutMs`.
pub const DEFAULT_TIMEOUT_MS: u64 = 500;
/// The key prefix when the options give no `keyPrefix`.
pub const DEFAULT_PREFIX: &str = "fallback-mechanisms";
/// Longest `keyPrefix`, in bytes.
pub const MAX_PREFIX_BYTES: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub struct RedisOptions {
  pub url: String,
  pub prefix: String,
  pub timeout_ms: u64,
  /// Where what is accepted while the server is away is kept besides
  /// memory (`storagePath` with `redisUrl`), so it survives the process.
  pub outbox_file: Option<(PathBuf, FileOptions)>,
  /// With a `rediss://` URL: a PEM file of the CA certificates to trust
  /// instead of the system's (a server with a self-signed certificate).
  pub tls_ca: Option<PathBuf>,
}

impl RedisOptions {
  pub fn new(url: impl Into<String>) -> Self {
    Self {
      url: url.into(),
      prefix: DEFAULT_PREFIX.into(),
      timeout_ms: DEFAULT_TIMEOUT_MS,
      outbox_file: None,
      tls_ca: None,
    }
  }
}

/// Whether `url` asks for TLS.
pub fn is_tls_url(url: &str) -> bool {
  url.starts_with("rediss://")
}

/// The URLs of a `redisUrl`: one, or a comma-separated list of a
/// cluster's seed nodes. A comma starts another URL only where `redis://`
/// or `rediss://` follows (a password may hold a comma).
pub fn seed_urls(url: &str) -> Vec<&str> {
  let mut seeds = Vec::new();
  let mut start = 0;
  for (comma, _) in url.match_indices(',') {
    let next = url[comma + 1..].trim_start();
    if next.starts_with("redis://") || next.starts_with("rediss://") {
      seeds.push(url[start..comma].trim());
      start = comma + 1;
    }
  }
  seeds.push(url[start..].trim());
  seeds
}

/// Why a `redisUrl` cannot be used; the message never holds the password.
pub fn check_url(url: &str) -> Result<(), String> {
  let seeds = seed_urls(url);
  if seeds.len() > 1 {
    if seeds
      .iter()
      .any(|seed| is_tls_url(seed) != is_tls_url(seeds[0]))
    {
      return Err(format!(
        "the seed URLs of a cluster all use redis:// or all rediss://, got {}",
        redact_url(url)
      ));
    }
    return seeds.into_iter().try_for_each(check_url);
  }
  let scheme_ok = url.starts_with("redis://") || url.starts_with("rediss://");
  if !scheme_ok {
    return Err(format!(
      "expected a redis:// or rediss:// URL, got {}",
      redact_url(url)
    ));
  }
  // redis-rs reads `#insecure` as "verify no certificate"; this build
  // leaves that out: a self-signed server's CA is trusted by name instead.
  let fragment = url.split_once('#').map(|(_, fragment)| fragment);
  if fragment == Some("insecure") {
    return Err(format!(
      "#insecure (no certificate check) is not supported; trust a self-signed server's CA with redisTlsCa instead, got {}",
      redact_url(url)
    ));
  }
  match url.into_connection_info() {
    Ok(_) => Ok(()),
    Err(_) => Err(format!("not a valid Redis URL: {}", redact_url(url))),
  }
}

/// Whether a `keyPrefix` can be used: not empty, bounded, and without the
/// braces that would break the keys' hash tag.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
  if prefix.is_empty() || prefix.len() > MAX_PREFIX_BYTES {
    return Err(format!("between 1 and {MAX_PREFIX_BYTES} bytes"));
  }
  if prefix.contains(['{', '}']) {
    return Err("without { or } (the prefix becomes the keys' hash tag)".into());
  }
  Ok(())
}

/// `url` (or each URL of a list) with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
  let seeds = seed_urls(url);
  if seeds.len() > 1 {
    return seeds
      .into_iter()
      .map(redact_url)
      .collect::<Vec<_>>()
      .join(",");
  }
  let Some((scheme, rest)) = url.split_once("://") else {
    return url.to_string();
  };
  let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
  // A password may hold a '/', '?' or '#' of its own (unencoded, so the
  // URL does not parse): then the userinfo runs to the last '@' of all.
  let authority_end = match (rest[..authority_end].contains('@'), rest.rfind('@')) {
    (false, Some(at)) => rest[at..]
      .find(['/', '?', '#'])
      .map_or(rest.len(), |end| at + end),
    _ => authority_end,
  };
  let (authority, path) = rest.split_at(authority_end);
  match authority.rfind('@') {
    Some(at) => {
      let (userinfo, host) = authority.split_at(at);
      let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
      let hidden = if userinfo.contains(':') || !user.is_empty() {
        format!("{user}:***")
      } else {
        String::new()
      };
      format!("{scheme}://{hidden}{host}{path}")
    }
    None => url.to_string(),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn passwords_are_hidden() {
    assert_eq!(
      redact_url("redis://user:secret@host:6379/2"),
      "redis://user:***@host:6379/2"
    );
    assert_eq!(redact_url("redis://:secret@host"), "redis://:***@host");
    assert_eq!(redact_url("redis://host:1/0"), "redis://host:1/0");
    let error = check_url("http://:hunter2@host").unwrap_err();
    assert!(!error.contains("hunter2"), "{error}");
    // A password with an unencoded '/', '?' or '#' breaks the URL; the
    // message saying so must not show it either.
    for url in [
      "redis://:pa/ss@host",
      "redis://u:pa?ss@host:1/0",
      "redis://:pa#ss@host",
      "redis://u:a/b?c#d@host/2",
    ] {
      let error = check_url(url).unwrap_err();
      assert!(!error.contains("pa") && !error.contains("a/b"), "{error}");
      assert!(error.contains("***@host"), "{error}");
    }
  }

  #[test]
  fn urls_and_prefixes_are_checked() {
    assert!(check_url("redis://127.0.0.1:6379/3").is_ok());
    assert!(check_url("redis://u:p@localhost").is_ok());
    assert!(check_url("rediss://u:p@localhost:6380/1").is_ok());
    let insecure = check_url("rediss://:hunter2@localhost#insecure").unwrap_err();
    assert!(
      insecure.contains("redisTlsCa") && !insecure.contains("hunter2"),
      "{insecure}"
    );
    assert!(check_url("localhost:6379").is_err());
    assert!(check_prefix("app").is_ok());
    assert!(check_prefix("").is_err());
    assert!(check_prefix("a{b}").is_err());
  }

  #[test]
  fn a_list_of_seed_urls_is_checked_and_hidden_url_by_url() {
    let list = "redis://:s3cret@10.0.0.1:7000, redis://10.0.0.2:7001,redis://u:a,b@10.0.0.3";
    assert_eq!(
      seed_urls(list),
      [
        "redis://:s3cret@10.0.0.1:7000",
        "redis://10.0.0.2:7001",
        "redis://u:a,b@10.0.0.3"
      ]
    );
    assert!(check_url(list).is_ok());
    assert_eq!(
      redact_url(list),
      "redis://:***@10.0.0.1:7000,redis://10.0.0.2:7001,redis://u:***@10.0.0.3"
    );
    let mixed = check_url("redis://:s3cret@a:1,rediss://b:2").unwrap_err();
    assert!(
      mixed.contains("all rediss://") && !mixed.contains("s3cret"),
      "{mixed}"
    );
    assert!(check_url("redis://a:1,redis://:p@b:notaport").is_err());
  }
}
