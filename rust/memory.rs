//! Large fresh buffers: advice to the kernel that makes filling them cheap.

/// Asks Linux for transparent huge pages on a large buffer that is not yet touched
/// (numpy does the same for its arrays): filling big key and output arrays otherwise
/// costs as many 4 KiB page faults as the work itself. Advice only; failure is harmless.
#[cfg(target_os = "linux")]
pub(crate) fn advise_huge_pages<T>(v: &mut [T]) {
    const HUGE: usize = 1 << 21;
    let bytes = std::mem::size_of_val(v);
    if bytes < 4 * HUGE {
        return;
    }
    let p = v.as_mut_ptr() as usize;
    let start = p.next_multiple_of(HUGE);
    let end = (p + bytes) / HUGE * HUGE;
    if end > start {
        // SAFETY: whole pages inside this live allocation; MADV_HUGEPAGE changes how the
        // kernel backs them, never their contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn advise_huge_pages<T>(_v: &mut [T]) {}

/// `n` zeroed elements in fresh memory, which Linux is asked to back with transparent
/// huge pages: the big key and output arrays are written once, and 4 KiB page faults
/// cost as much as the work itself.
pub(crate) fn zeroed<T: Copy + Send + Sync>(zero: T, n: usize) -> Vec<T> {
    let mut v = vec![zero; n];
    advise_huge_pages(&mut v);
    v
}

/// Hint that `s[i]` will be read soon (random reads in a sequential loop: the hint lets
/// their cache misses overlap). No effect off x86_64 or when `i` is out of range.
#[inline(always)]
pub(crate) fn prefetch<T>(s: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(r) = s.get(i) {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch changes no memory and no program state, and the address
        // is inside a live slice.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (s, i);
}
