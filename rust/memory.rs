//! Memory: what a request may take before it is refused, fallible zeroed buffers, and
//! advice to the kernel that makes filling large fresh buffers cheap.
//!
//! A failed allocation in Rust aborts the process, so every large buffer is checked
//! twice: against an estimate of the memory the process can still get (the address-space
//! limit less what it maps already, and the memory the machine has available), and by a
//! fallible reservation.

use crate::error::{CoreError, CoreResult};

/// Buffers below this size are not checked against the budget (reading `/proc` costs more).
const CHECK_ABOVE: u128 = 64 << 20;

fn gib(bytes: u128) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Bytes of memory this process can still obtain: the smaller of the address space left
/// under `RLIMIT_AS` and the machine's available memory (RAM and swap), where known.
pub(crate) fn available_bytes() -> Option<u128> {
    let mut best: Option<u128> = None;
    let mut keep = |b: u128| best = Some(best.map_or(b, |x: u128| x.min(b)));
    #[cfg(target_os = "linux")]
    {
        let kib = |text: &str, key: &str| -> Option<u128> {
            let line = text.lines().find(|l| l.starts_with(key))?;
            line[key.len()..]
                .split_whitespace()
                .next()?
                .parse::<u128>()
                .ok()
                .map(|k| k * 1024)
        };
        if let Ok(info) = std::fs::read_to_string("/proc/meminfo") {
            if let (Some(a), Some(s)) = (kib(&info, "MemAvailable:"), kib(&info, "SwapFree:")) {
                keep(a + s);
            }
        }
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } == 0;
        if ok && lim.rlim_cur != libc::RLIM_INFINITY {
            let mapped = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| kib(&s, "VmSize:"))
                .unwrap_or(0);
            keep((lim.rlim_cur as u128).saturating_sub(mapped));
        }
    }
    best
}

/// Refuses a request that needs about `bytes` of memory when the process cannot get
/// them, with a `ValueError` naming `param`, the need and what is available.
pub(crate) fn ensure_available(param: &str, what: &str, bytes: u128) -> CoreResult<()> {
    if bytes > isize::MAX as u128 {
        return Err(CoreError::value(
            param,
            format!("{what} would need {}: too large to allocate", gib(bytes)),
        ));
    }
    if bytes < CHECK_ABOVE {
        return Ok(());
    }
    match available_bytes() {
        Some(avail) if bytes > avail => Err(CoreError::value(
            param,
            format!(
                "{what} would need about {}, more than the {} this process can still get: too large to allocate",
                gib(bytes),
                gib(avail)
            ),
        )),
        _ => Ok(()),
    }
}

/// A vector of `n` copies of `zero` in fresh memory (advised for huge pages), or a
/// `ValueError` naming `param` when the memory cannot be had: never an abort. The
/// fallible reservation is a probe; the vector itself comes from `vec!`, so large
/// zeroed buffers stay lazy (calloc).
pub(crate) fn zeroed<T: Clone>(param: &str, zero: T, n: usize) -> CoreResult<Vec<T>> {
    let bytes = (n as u128) * std::mem::size_of::<T>() as u128;
    ensure_available(param, &format!("an array of {n} elements"), bytes)?;
    let mut probe: Vec<T> = Vec::new();
    if probe.try_reserve_exact(n).is_err() {
        return Err(CoreError::value(
            param,
            format!(
                "cannot allocate {n} elements ({}): too large to allocate",
                gib(bytes)
            ),
        ));
    }
    drop(probe);
    let mut v = vec![zero; n];
    advise_huge_pages(&mut v);
    Ok(v)
}

/// Reserves room for `extra` more elements in `v`, or a `ValueError` naming `param`.
pub(crate) fn reserve<T>(param: &str, v: &mut Vec<T>, extra: usize) -> CoreResult<()> {
    let bytes = (extra as u128) * std::mem::size_of::<T>() as u128;
    ensure_available(param, &format!("an array of {extra} elements"), bytes)?;
    v.try_reserve_exact(extra).map_err(|_| {
        CoreError::value(
            param,
            format!(
                "cannot allocate {extra} elements ({}): too large to allocate",
                gib(bytes)
            ),
        )
    })
}

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
