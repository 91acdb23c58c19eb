//! The one module that calls N-API directly: a small safe face over the raw
//! calls the measured hot paths need (reading options and strings without
//! napi-rs's per-value conversions, making the few values we return). Every
//! other binding module is safe code on top of this one and of napi-rs.
//!
//! Two invariants carry every `unsafe` block here:
//! - a `Js<'env>` holds the `napi_env` of the callback (or
//!   threadsafe-function call, or promise reaction) running on this thread,
//!   and `'env` is a borrow of that callback's `Env` (the one napi-rs's glue
//!   lends a `#[napi]` function, or a local of the callback): `Js::new` is an
//!   `unsafe fn` whose callers promise both, and a `Js` is `!Send` (it holds
//!   a raw pointer), so it never leaves that thread;
//! - a `Raw<'env>` holds a handle made in that callback's handle scope: its
//!   fields are private to this module, and it is only made here, from what
//!   N-API or napi-rs's glue handed over in that callback, with the `'env`
//!   of the `Js` (or the `Unknown<'env>`) it came from.
//!
//! The lifetime is what keeps a handle inside its scope: a `Raw<'env>`
//! cannot be returned past the callback, kept in a `'static` place
//! (instance data, a closure a promise runs later), or sent to another
//! thread (`!Send`, `!Sync`). What is kept across callbacks is a
//! `Reference`, a `Weak` or a `SharedU32`, which carry no lifetime; the
//! value behind one comes back as a `Raw` of the `Js` that asks for it.
//!
//! Most N-API calls have one of three shapes (the environment, zero to two
//! arguments by value, one out-pointer); `Js::out0`, `Js::out1` and
//! `Js::out2` make those calls, each in one `unsafe` block, and the rest of
//! the module calls N-API through them. The calls of other shapes (pointers
//! to our buffers, slices of handles) keep a block each, next to the buffer
//! they lend.
//!
//! `js.rs` holds `Raw`, `Js` and those helpers; `values.rs` reads and makes
//! values, `calls.rs` calls into JavaScript and waits for promises,
//! `refs.rs` keeps values across callbacks.

mod calls;
mod js;
mod refs;
mod values;

pub use calls::Settled;
pub use js::{Js, Kind, Raw};
pub use refs::{Reference, Weak};
