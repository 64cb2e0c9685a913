//! Building the index: alphabet, coded text, libsais suffix array and PLCP, capped LCP,
//! bucket table and whole-string table.

use libsais::suffix_array::AlphabetSize;
use libsais::suffix_array::SuffixArrayWithText;
use libsais::typestate::OwnedBuffer;
use libsais::{InputElement, LibsaisError, SuffixArrayConstruction, SupportsPlcpOutputFor};
use rayon::prelude::*;

use super::chunksort;
use super::codes::{Code, SaIdx};
use super::search::Buckets;
use super::table::StringTable;
use super::{check_shape, with_text_sa, Alphabet, LcpBuf, SaBuf, TextBuf, TrainingIndex};
use crate::error::{CoreError, CoreResult};
use crate::token::Token;

fn sais_err(e: LibsaisError) -> CoreError {
    CoreError::value("train", format!("suffix array construction failed ({e})"))
}

/// Smallest and largest token (as i64).
pub fn token_range<X: Token>(data: &[X]) -> (i64, i64) {
    data.par_chunks(1 << 16)
        .map(|c| {
            c.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &t| {
                (lo.min(t.to_i64()), hi.max(t.to_i64()))
            })
        })
        .reduce(|| (i64::MAX, i64::MIN), |a, b| (a.0.min(b.0), a.1.max(b.1)))
}

/// Check tokens are in `[0, 2**32)`; return the alphabet.
pub(crate) fn make_alphabet<X: Token>(param: &str, data: &[X]) -> CoreResult<Alphabet> {
    let (lo, hi) = token_range(data);
    if lo < 0 {
        return Err(CoreError::value(
            param,
            format!("token {lo} is negative; tokens must be in [0, 2**32)"),
        ));
    }
    if hi > u32::MAX as i64 {
        return Err(CoreError::value(
            param,
            format!("token {hi} does not fit; tokens must be in [0, 2**32)"),
        ));
    }
    if hi < 65535 {
        return Ok(Alphabet::Shift {
            sigma: hi as u32 + 1,
        });
    }
    crate::memory::ensure_available(
        param,
        "the alphabet of a wide-token set",
        4 * data.len() as u128,
    )?;
    let mut tokens: Vec<u32> = data.par_iter().map(|t| t.to_i64() as u32).collect();
    tokens.par_sort_unstable();
    tokens.dedup();
    tokens.shrink_to_fit();
    Ok(Alphabet::Dense { tokens })
}

fn fill_text<X: Token, T: Code>(data: &[X], d: usize, alphabet: &Alphabet) -> Vec<T> {
    let n = data.len() / d * (d + 1);
    let mut text = vec![T::from_code(0); n];
    text.par_chunks_mut(d + 1)
        .zip(data.par_chunks(d))
        .for_each(|(row, src)| {
            for (dst, &t) in row.iter_mut().zip(src) {
                *dst = T::from_code(alphabet.encode(t.to_i64()));
            }
        });
    text
}

/// `lcp[i] = plcp[sa[i]]`, capped at the distance from `sa[i]` to its separator unless
/// the PLCP is already separator-aware (`generalized`: libsais' GSA mode).
fn make_lcp<S: SaIdx>(sa: &[S], plcp: &[S], d: usize, generalized: bool) -> LcpBuf {
    let at = |i: usize| -> usize {
        let p = sa[i].idx();
        if generalized {
            plcp[p].idx()
        } else {
            plcp[p].idx().min(d - p % (d + 1))
        }
    };
    if d <= u8::MAX as usize {
        LcpBuf::U8(
            sa.par_iter()
                .enumerate()
                .map(|(i, _)| at(i) as u8)
                .collect(),
        )
    } else if d <= u16::MAX as usize {
        LcpBuf::U16(
            sa.par_iter()
                .enumerate()
                .map(|(i, _)| at(i) as u16)
                .collect(),
        )
    } else {
        LcpBuf::U32(
            sa.par_iter()
                .enumerate()
                .map(|(i, _)| at(i) as u32)
                .collect(),
        )
    }
}

/// Eight text bytes from `p` (zeros past the end), little-endian.
#[inline(always)]
fn word_at(text: &[u8], p: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(src) = text.get(p..p + 8) {
        w.copy_from_slice(src);
    } else {
        let src = text.get(p..).unwrap_or(&[]);
        w[..src.len()].copy_from_slice(src);
    }
    u64::from_le_bytes(w)
}

/// LCP straight from a u8 text, eight symbols per step: `lcp[i]` = common prefix of
/// suffixes `sa[i-1]` and `sa[i]`, stopping at the separator 0. The first word of each
/// suffix is loaded once and kept for the next position, so most positions cost one
/// random read; no PLCP array (4 bytes per position) is needed.
fn lcp_u8<S: SaIdx>(text: &[u8], sa: &[S], d: usize) -> LcpBuf {
    fn fill<S: SaIdx, L: Copy + Send>(text: &[u8], sa: &[S], conv: fn(usize) -> L) -> Vec<L> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        const CHUNK: usize = 1 << 14;
        let n = text.len();
        let mut out = vec![conv(0); sa.len()];
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, out)| {
            let lo = c * CHUNK;
            let mut prev = lo.checked_sub(1).map(|i| sa[i].idx());
            let mut wa = prev.map_or(0, |a| word_at(text, a));
            for (o, s) in out.iter_mut().zip(&sa[lo..]) {
                let b = s.idx();
                let wb = word_at(text, b);
                if let Some(a) = prev {
                    let diff = wa ^ wb;
                    let zero = wa.wrapping_sub(ONES) & !wa & HIGHS;
                    let stop = diff | zero;
                    // first differing byte or first separator, whichever comes first
                    let l = if stop != 0 {
                        (stop.trailing_zeros() / 8) as usize
                    } else {
                        let mut j = 8;
                        while a + j < n
                            && b + j < n
                            && text[a + j] == text[b + j]
                            && text[a + j] != 0
                        {
                            j += 1;
                        }
                        j
                    };
                    *o = conv(l);
                }
                prev = Some(b);
                wa = wb;
            }
        });
        out
    }
    if d <= u8::MAX as usize {
        LcpBuf::U8(fill(text, sa, |l| l as u8))
    } else if d <= u16::MAX as usize {
        LcpBuf::U16(fill(text, sa, |l| l as u16))
    } else {
        LcpBuf::U32(fill(text, sa, |l| l as u32))
    }
}

/// The generalized suffix array of a u8/u16 text (libsais, single-threaded), in an
/// owned `i32` (`in_owned_buffer32`) or `i64` (`in_owned_buffer64`) buffer.
macro_rules! gsa {
    ($text:expr, $buf:ident) => {
        SuffixArrayConstruction::for_text($text)
            .$buf()
            .single_threaded()
            .generalized_suffix_array()
            .run()
            .map_err(sais_err)?
    };
}

/// `(sa, plcp)`: the PLCP array (libsais, single-threaded) of a finished suffix array.
fn with_plcp<I: InputElement, O: SupportsPlcpOutputFor<I>>(
    sa: SuffixArrayWithText<'static, '_, I, O, OwnedBuffer>,
) -> CoreResult<(Vec<O>, Vec<O>)> {
    let res = sa
        .plcp_construction()
        .single_threaded()
        .run()
        .map_err(sais_err)?;
    let (sa, plcp, _) = res.into_parts();
    Ok((sa, plcp))
}

/// Suffix array (libsais, generalized mode) and LCP of a u8 text.
pub(super) fn sais_u8(text: &[u8], d: usize) -> CoreResult<(SaBuf, LcpBuf)> {
    Ok(if text.len() <= i32::MAX as usize {
        let sa = gsa!(text, in_owned_buffer32).into_vec();
        let lcp = lcp_u8(text, &sa, d);
        (SaBuf::I32(sa), lcp)
    } else {
        let sa = gsa!(text, in_owned_buffer64).into_vec();
        let lcp = lcp_u8(text, &sa, d);
        (SaBuf::I64(sa), lcp)
    })
}

pub(super) fn build<X: Token>(
    data: &[X],
    num_strings: usize,
    d: usize,
) -> CoreResult<TrainingIndex> {
    if num_strings == 0 {
        return Err(CoreError::value(
            "train",
            "empty set: need at least one string",
        ));
    }
    if d == 0 {
        return Err(CoreError::value(
            "train",
            "strings must have at least one token",
        ));
    }
    check_shape("train", data.len(), num_strings, d)?;
    if num_strings >= u32::MAX as usize {
        return Err(CoreError::value(
            "train",
            format!("{num_strings} strings: at most 2**32-2 supported"),
        ));
    }
    let n = num_strings
        .checked_mul(d + 1)
        .ok_or_else(|| CoreError::value("train", "too many tokens"))?;
    let alphabet = make_alphabet("train", data)?;
    let sigma = alphabet.sigma();
    // libsais runs single-threaded: its OpenMP threads spin-wait, and next to rayon's
    // workers on a shared machine that made a 2-thread build 5-10x slower than 1 thread.
    let small_sa = n <= i32::MAX as usize;
    crate::memory::ensure_available(
        "train",
        &format!("an index of {num_strings} strings of {d} tokens"),
        build_bytes(n, num_strings, d, sigma),
    )?;

    let (text, sa, lcp) = if sigma <= 65535 {
        let text = if sigma <= 255 {
            TextBuf::U8(fill_text::<X, u8>(data, d, &alphabet))
        } else {
            TextBuf::U16(fill_text::<X, u16>(data, d, &alphabet))
        };
        let (sa, lcp) = match (&text, small_sa) {
            (TextBuf::U8(t), _) => match chunksort::Plan::new(n, d, sigma) {
                Some(plan) => {
                    let (sa, lcp) = chunksort::sa_lcp(plan, t)?;
                    (SaBuf::I32(sa), lcp)
                }
                None => sais_u8(t, d)?,
            },
            (TextBuf::U16(t), true) => {
                let (sa, plcp) = with_plcp(gsa!(t.as_slice(), in_owned_buffer32))?;
                let lcp = make_lcp(&sa, &plcp, d, true);
                (SaBuf::I32(sa), lcp)
            }
            (TextBuf::U16(t), false) => {
                let (sa, plcp) = with_plcp(gsa!(t.as_slice(), in_owned_buffer64))?;
                let lcp = make_lcp(&sa, &plcp, d, true);
                (SaBuf::I64(sa), lcp)
            }
            (TextBuf::I32(_), _) => unreachable!("small alphabets are coded as u8/u16"),
        };
        (text, sa, lcp)
    } else {
        if !small_sa {
            return Err(CoreError::value(
                "train",
                format!("{n} positions with {sigma} distinct tokens: more than 2**31-1 positions needs at most 65534 distinct tokens"),
            ));
        }
        let mut t = fill_text::<X, i32>(data, d, &alphabet);
        // Plain (not generalized) mode: libsais has no generalized mode for integer
        // alphabets. Ties between suffixes equal up to their separators are then broken
        // by what follows, which is still a valid order for every query, and the LCP is
        // capped at the separator below.
        let (sa, plcp) = {
            let mut construction = SuffixArrayConstruction::for_text_mut(&mut t)
                .in_owned_buffer32()
                .single_threaded();
            // SAFETY: every code is in [0, sigma], so sigma + 1 is a valid alphabet size.
            construction =
                unsafe { construction.with_alphabet_size(AlphabetSize::new(sigma as i32 + 1)) };
            with_plcp(construction.run().map_err(sais_err)?)?
        };
        let lcp = make_lcp(&sa, &plcp, d, false);
        (TextBuf::I32(t), SaBuf::I32(sa), lcp)
    };
    Ok(assemble(num_strings, d, alphabet, text, sa, lcp))
}

/// Peak bytes of a build (upper bound): text, suffix array and LCP, the sort keys or
/// the PLCP (at most 8 per position), the whole-string table and the bucket table.
pub(super) fn build_bytes(n: usize, num_strings: usize, d: usize, sigma: u32) -> u128 {
    let (text, sa, lcp, scratch) = element_bytes(n, d, sigma);
    n as u128 * (text + sa + lcp + scratch) + table_bytes(num_strings)
}

/// Bytes per position of the text, suffix array, LCP and build scratch.
pub(super) fn element_bytes(n: usize, d: usize, sigma: u32) -> (u128, u128, u128, u128) {
    let text = if sigma <= 255 {
        1
    } else if sigma <= 65535 {
        2
    } else {
        4
    };
    let sa = if n <= i32::MAX as usize { 4 } else { 8 };
    let lcp = if d <= u8::MAX as usize {
        1
    } else if d <= u16::MAX as usize {
        2
    } else {
        4
    };
    (text, sa, lcp, 8)
}

/// Bytes of the tables rebuilt on every build and load: the whole-string hash table
/// (12 bytes a slot, at most 2**ceil(log2 2N) slots) and the bucket table (<= 32 MiB).
pub(super) fn table_bytes(num_strings: usize) -> u128 {
    12 * (2 * num_strings as u128).next_power_of_two() + (40 << 20)
}

/// Derive the lookup tables (cheap, O(n)) and assemble; shared by build and load.
pub(super) fn assemble(
    num_strings: usize,
    d: usize,
    alphabet: Alphabet,
    text: TextBuf,
    sa: SaBuf,
    lcp: LcpBuf,
) -> TrainingIndex {
    let sigma = alphabet.sigma();
    let n = num_strings * (d + 1);
    let buckets = {
        macro_rules! go {
            ($t:expr, $s:expr) => {
                match &lcp {
                    LcpBuf::U8(l) => Buckets::build($t, $s, |i| l[i] as usize, sigma, d),
                    LcpBuf::U16(l) => Buckets::build($t, $s, |i| l[i] as usize, sigma, d),
                    LcpBuf::U32(l) => Buckets::build($t, $s, |i| l[i] as usize, sigma, d),
                }
            };
        }
        with_text_sa!((&text, &sa), t, s => go!(t, s))
    };
    let strings = match &text {
        TextBuf::U8(t) => StringTable::build(t, num_strings, d, &alphabet),
        TextBuf::U16(t) => StringTable::build(t, num_strings, d, &alphabet),
        TextBuf::I32(t) => StringTable::build(t, num_strings, d, &alphabet),
    };
    debug_assert_eq!(buckets.total(), n);
    TrainingIndex {
        num_strings,
        length: d,
        alphabet,
        text,
        sa,
        lcp,
        buckets,
        strings,
    }
}
