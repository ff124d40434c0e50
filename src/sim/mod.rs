//! The discrete-event kernel (SPEC section 8): the kernel owns the queue;
//! a model sees only a [`Context`] with `now()` and `schedule()`.

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
