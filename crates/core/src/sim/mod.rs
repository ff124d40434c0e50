//! The discrete-event kernel (SPEC section 8): the kernel owns the queue;
//! a model sees only a [`Context`] with `now()` and `schedule()`.
//!
//! ```
//! use sflam_core::sim::{Context, Kernel, Model, StopReason};
//! use sflam_core::units::{SimDuration, SimTime};
//!
//! /// Two pings at the same instant, then a pong 5 ns later.
//! struct PingPong { log: Vec<(u64, &'static str)> }
//! impl Model for PingPong {
//!     type Event = &'static str;
//!     fn handle(&mut self, ev: &'static str, ctx: &mut Context<'_, &'static str>) -> sflam_core::Result<()> {
//!         self.log.push((ctx.now().0, ev));
//!         if ev == "ping-1" {
//!             ctx.schedule_in(SimDuration(5), "pong");
//!         }
//!         Ok(())
//!     }
//! }
//! let mut k = Kernel::new();
//! k.schedule(SimTime(10), "ping-1").unwrap();
//! k.schedule(SimTime(10), "ping-2").unwrap(); // same time: FIFO order
//! let mut m = PingPong { log: Vec::new() };
//! assert_eq!(k.run(&mut m, SimTime::MAX).unwrap(), StopReason::Drained);
//! assert_eq!(m.log, [(10, "ping-1"), (10, "ping-2"), (15, "pong")]);
//! ```

mod kernel;
pub mod phold;
mod queue;
pub mod rng;

pub use kernel::{Context, Kernel, Model, StopReason};
pub use queue::EventQueue;

/// Asks the CPU to bring `r`'s cache line in (a no-op off x86-64).
#[inline(always)]
pub fn prefetch<T>(r: Option<&T>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(r) = r {
        // SAFETY: a prefetch is a hint; it never faults and reads nothing
        // into the program, and `r` is a valid reference anyway.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((r as *const T).cast()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}
