//! A team of threads that runs one forward pass together, as ggml does: every thread walks the
//! same sequence of steps, takes its share of each step, and meets the others at a spinning
//! barrier before the next step reads what this one wrote.
//!
//! A decode step of a small model is a few hundred tiny parallel regions (a 576 x 576 matrix
//! product takes tens of microseconds). Waking a sleeping pool thread for each of them costs as
//! much as the work, which is why a work-stealing pool made two threads barely faster than one.
//! Here the threads stay awake for the length of one pass and a barrier costs well under a
//! microsecond; between passes they do not exist (scoped threads, spawned per pass).

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The share `ith` of `nth` threads takes of `n` items: contiguous and balanced.
pub(crate) fn share(n: usize, ith: usize, nth: usize) -> Range<usize> {
    n * ith / nth..n * (ith + 1) / nth
}

/// A barrier that spins (then yields) instead of sleeping; a panicking member poisons it so
/// the others panic too instead of waiting forever.
pub(crate) struct SpinBarrier {
    n: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    poisoned: AtomicBool,
}

impl SpinBarrier {
    /// A barrier for `n` threads.
    pub(crate) fn new(n: usize) -> Self {
        SpinBarrier {
            n: n.max(1),
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
        }
    }

    /// Waits until all `n` threads have called `wait` for this round. Everything a thread wrote
    /// before its call is visible to every thread after theirs.
    pub(crate) fn wait(&self) {
        if self.n == 1 {
            return;
        }
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if self.poisoned.load(Ordering::Relaxed) {
                panic!("another thread of the forward pass panicked");
            }
            if spins < 1 << 11 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Poisons the barrier if the current thread is unwinding when the guard drops.
    pub(crate) fn guard(&self) -> PoisonOnPanic<'_> {
        PoisonOnPanic(self)
    }
}

/// See [`SpinBarrier::guard`].
pub(crate) struct PoisonOnPanic<'a>(&'a SpinBarrier);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::Relaxed);
        }
    }
}

/// A buffer the team shares: between two barriers each element is written by at most one
/// thread and read by none other, which the callers of the `unsafe` accessors promise.
pub(crate) struct Shared<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: access is coordinated by the barrier discipline above; `T` itself crosses threads.
unsafe impl<T: Send> Sync for Shared<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Shared<'_, T> {}

impl<'a, T> Shared<'a, T> {
    /// Shares `v` (borrowed mutably for as long as the share lives).
    pub(crate) fn new(v: &'a mut [T]) -> Self {
        Shared {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            _borrow: PhantomData,
        }
    }

    /// Elements `r`, to read.
    ///
    /// # Safety
    /// No thread writes `r` until the next barrier.
    pub(crate) unsafe fn get(&self, r: Range<usize>) -> &[T] {
        assert!(r.start <= r.end && r.end <= self.len);
        // SAFETY: in bounds (asserted); no concurrent writer (the caller's promise).
        unsafe { std::slice::from_raw_parts(self.ptr.add(r.start), r.end - r.start) }
    }

    /// Elements `r`, to write.
    ///
    /// # Safety
    /// No other thread reads or writes `r` until the next barrier.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get_mut(&self, r: Range<usize>) -> &mut [T] {
        assert!(r.start <= r.end && r.end <= self.len);
        // SAFETY: in bounds (asserted); exclusive until the next barrier (the caller's promise).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.end - r.start) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_everything_once() {
        for n in [0, 1, 7, 64, 1000] {
            for nth in 1..5 {
                let mut next = 0;
                for ith in 0..nth {
                    let r = share(n, ith, nth);
                    assert_eq!(r.start, next);
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
    }

    #[test]
    fn barrier_orders_rounds() {
        let nth = 3;
        let rounds = 200;
        let barrier = SpinBarrier::new(nth);
        let mut data = vec![0usize; nth];
        let shared = Shared::new(&mut data);
        std::thread::scope(|s| {
            for ith in 0..nth {
                let (barrier, shared) = (&barrier, &shared);
                s.spawn(move || {
                    for round in 0..rounds {
                        // SAFETY: each thread writes its own element, then reads all after the
                        // barrier, and nobody writes again before the second barrier.
                        unsafe { shared.get_mut(ith..ith + 1)[0] = round };
                        barrier.wait();
                        let all = unsafe { shared.get(0..nth) };
                        assert!(all.iter().all(|&v| v == round));
                        barrier.wait();
                    }
                });
            }
        });
    }

    #[test]
    fn a_panicking_member_releases_the_others() {
        let barrier = SpinBarrier::new(2);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::thread::scope(|s| {
                s.spawn(|| {
                    let _g = barrier.guard();
                    panic!("boom");
                });
                let _g = barrier.guard();
                barrier.wait();
            })
        }));
        assert!(result.is_err());
    }
}
