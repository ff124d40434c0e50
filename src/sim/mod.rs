//! The discrete-event kernel (SPEC section 8): the kernel owns the queue;
//! a model sees only a [`Context`] with `now()` and `schedule()`.

mod kernel;
pub mod phold;
mod queue;
pub mod rng;

pub use kernel::{Context, Kernel, Model, StopReason};
pub use queue::EventQueue;
