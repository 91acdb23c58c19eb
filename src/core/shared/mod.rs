//! Resilience state that every instance of an app shares through the store
//! (README, "Resilience across instances"): circuit breakers, rate limits
//! and budgets. Each is a record, JSON text under a kind and a name; the
//! decisions are pure functions from the records read to the records to
//! write (`breaker`, `rate`, `budget`, joined in `admission`), and a store
//! makes each read-decide-write atomic (`FailureStore::update_records`:
//! under its lock in memory, in one transaction in a file, by a
//! compare-and-swap script on Redis, which may run the decision again).

pub mod admission;
pub mod breaker;
pub mod budget;
pub mod rate;
pub mod records;
