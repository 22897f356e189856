//! Secret keys kept out of swap: each in-memory secret key lives in its own heap allocation
//! whose pages are locked in RAM (`mlock(2)` through the `region` crate; `VirtualLock` on
//! Windows).
//!
//! Pages are reference-counted across keys, since two small allocations can share a page and
//! unlocking is per page: a page is locked when the first key on it is stored and unlocked
//! when the last one is dropped. When locking fails (typically `RLIMIT_MEMLOCK`, often 64 KiB
//! to 8 MiB, exhausted, or a platform without `mlock`) the key is still used, unlocked, and
//! one warning is logged for the whole process, not one per key. Core dumps are not covered:
//! run with `ulimit -c 0` (or systemd's `LimitCORE=0`) to keep secrets out of them.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// Locked pages: page address → (number of live [`Locked`] values on it, the lock).
static PAGES: LazyLock<Mutex<HashMap<usize, (usize, region::LockGuard)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Whether the "cannot lock" warning was logged.
static WARNED: AtomicBool = AtomicBool::new(false);

/// A value (a secret key) on the heap with its pages locked in RAM while it lives.
/// `Debug` prints nothing of the value.
pub struct Locked<T> {
    value: Box<T>,
    /// The page addresses this value holds a count on (empty when locking failed).
    pages: Vec<usize>,
}

impl<T> std::fmt::Debug for Locked<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Locked(<redacted>)")
    }
}

impl<T> Locked<T> {
    /// Moves `value` to the heap and locks its pages (warning once per process when that
    /// is not possible).
    pub fn new(value: T) -> Self {
        let value = Box::new(value);
        let size = std::mem::size_of::<T>();
        let mut me = Locked {
            value,
            pages: Vec::new(),
        };
        if size == 0 {
            return me;
        }
        let ptr: *const u8 = (&*me.value as *const T).cast();
        let page = region::page::size();
        let addr = ptr as usize;
        let first = addr - addr % page;
        let last = (addr + size - 1) - (addr + size - 1) % page;
        let mut pages = PAGES.lock();
        let mut failure = None;
        let mut at = first;
        while at <= last {
            if let Some((count, _)) = pages.get_mut(&at) {
                *count += 1;
                me.pages.push(at);
            } else {
                // The page's start, derived from the value's own pointer.
                let page_ptr = if at >= addr {
                    ptr.wrapping_add(at - addr)
                } else {
                    ptr.wrapping_sub(addr - at)
                };
                match region::lock(page_ptr, page) {
                    Ok(guard) => {
                        pages.insert(at, (1, guard));
                        me.pages.push(at);
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            at += page;
        }
        if let Some(e) = failure {
            release(&mut pages, &me.pages);
            me.pages.clear();
            drop(pages);
            if !WARNED.swap(true, Ordering::SeqCst) {
                tracing::warn!(
                    error = %e,
                    "cannot lock secret key memory in RAM (mlock); secret keys may be written \
                     to swap: raise RLIMIT_MEMLOCK (ulimit -l, systemd LimitMEMLOCK=) or grant \
                     CAP_IPC_LOCK, or run without swap (this warning is logged once)"
                );
            }
        }
        me
    }

    /// Whether the value's pages are locked in RAM.
    pub fn is_locked(&self) -> bool {
        !self.pages.is_empty()
    }
}

fn release(pages: &mut HashMap<usize, (usize, region::LockGuard)>, held: &[usize]) {
    for at in held {
        if let Some((count, _)) = pages.get_mut(at) {
            *count -= 1;
            if *count == 0 {
                // Dropping the guard unlocks the page.
                pages.remove(at);
            }
        }
    }
}

impl<T> std::ops::Deref for Locked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> Drop for Locked<T> {
    fn drop(&mut self) {
        if !self.pages.is_empty() {
            release(&mut PAGES.lock(), &self.pages);
        }
    }
}

/// Number of pages locked now (for tests).
pub fn locked_pages() -> usize {
    PAGES.lock().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_readable_and_pages_counted() {
        let before = locked_pages();
        let a = Locked::new([7u8; 32]);
        let b = Locked::new([9u8; 32]);
        assert_eq!(a[0], 7);
        assert_eq!(b[31], 9);
        assert_eq!(format!("{a:?}"), "Locked(<redacted>)");
        if a.is_locked() && b.is_locked() {
            assert!(locked_pages() > before);
        }
        drop(a);
        drop(b);
    }
}
