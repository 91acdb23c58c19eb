//! The fallback machinery, free of any Node.js types: the AI response cache,
//! the background job queue, the integration failure window, the message
//! table and the fallback decision. `cargo test` exercises it on its own.

pub mod attempts;
pub mod breaker;
pub mod cache;
pub mod chain;
pub mod clock;
pub mod cooldown;
pub mod failure_class;
pub mod failures;
pub mod fallback;
pub mod limits;
pub mod messages;
pub mod notices;
pub mod queue;
pub mod quiet;
pub mod retry;
pub mod service;
pub mod shared;
pub mod singletons;
pub mod storage;
pub mod worker;
