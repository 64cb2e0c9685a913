//! Building the index: alphabet, coded text, libsais suffix array and PLCP, capped LCP,
//! bucket table and whole-string table.

use libsais::suffix_array::AlphabetSize;
use libsais::{LibsaisError, SuffixArrayConstruction, ThreadCount};
use rayon::prelude::*;

use super::codes::{Code, SaIdx, Token};
use super::search::Buckets;
use super::table::StringTable;
use super::{check_shape, Alphabet, LcpBuf, SaBuf, TextBuf, TrainingIndex};
use crate::error::{CoreError, CoreResult};

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

/// `lcp[i] = min(plcp[sa[i]], distance from sa[i] to its separator)`.
fn capped_lcp<S: SaIdx>(sa: &[S], plcp: &[S], d: usize) -> LcpBuf {
    let cap = |i: usize| -> usize {
        let p = sa[i].idx();
        plcp[p].idx().min(d - p % (d + 1))
    };
    let idx = 0..sa.len();
    if d <= u8::MAX as usize {
        LcpBuf::U8(idx.into_par_iter().map(|i| cap(i) as u8).collect())
    } else if d <= u16::MAX as usize {
        LcpBuf::U16(idx.into_par_iter().map(|i| cap(i) as u16).collect())
    } else {
        LcpBuf::U32(idx.into_par_iter().map(|i| cap(i) as u32).collect())
    }
}

macro_rules! sais_small {
    ($text:expr, $buf:ident, $threads:expr) => {{
        let res = SuffixArrayConstruction::for_text($text)
            .$buf()
            .multi_threaded($threads)
            .generalized_suffix_array()
            .run()
            .map_err(sais_err)?;
        let res = res
            .plcp_construction()
            .multi_threaded($threads)
            .run()
            .map_err(sais_err)?;
        let (sa, plcp, _) = res.into_parts();
        (sa, plcp)
    }};
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
    let threads =
        ThreadCount::fixed(rayon::current_num_threads().clamp(1, u16::MAX as usize) as u16);
    let small_sa = n <= i32::MAX as usize;

    let (text, sa, lcp) = if sigma <= 65535 {
        let text = if sigma <= 255 {
            TextBuf::U8(fill_text::<X, u8>(data, d, &alphabet))
        } else {
            TextBuf::U16(fill_text::<X, u16>(data, d, &alphabet))
        };
        let (sa, lcp) = match (&text, small_sa) {
            (TextBuf::U8(t), true) => {
                let (sa, plcp) = sais_small!(t.as_slice(), in_owned_buffer32, threads);
                let lcp = capped_lcp(&sa, &plcp, d);
                (SaBuf::I32(sa), lcp)
            }
            (TextBuf::U8(t), false) => {
                let (sa, plcp) = sais_small!(t.as_slice(), in_owned_buffer64, threads);
                let lcp = capped_lcp(&sa, &plcp, d);
                (SaBuf::I64(sa), lcp)
            }
            (TextBuf::U16(t), true) => {
                let (sa, plcp) = sais_small!(t.as_slice(), in_owned_buffer32, threads);
                let lcp = capped_lcp(&sa, &plcp, d);
                (SaBuf::I32(sa), lcp)
            }
            (TextBuf::U16(t), false) => {
                let (sa, plcp) = sais_small!(t.as_slice(), in_owned_buffer64, threads);
                let lcp = capped_lcp(&sa, &plcp, d);
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
                .multi_threaded(threads);
            // SAFETY: every code is in [0, sigma], so sigma + 1 is a valid alphabet size.
            construction =
                unsafe { construction.with_alphabet_size(AlphabetSize::new(sigma as i32 + 1)) };
            let res = construction.run().map_err(sais_err)?;
            let res = res
                .plcp_construction()
                .multi_threaded(threads)
                .run()
                .map_err(sais_err)?;
            let (sa, plcp, _) = res.into_parts();
            (sa, plcp)
        };
        let lcp = capped_lcp(&sa, &plcp, d);
        (TextBuf::I32(t), SaBuf::I32(sa), lcp)
    };
    Ok(assemble(num_strings, d, alphabet, text, sa, lcp))
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
    let buckets = match &text {
        TextBuf::U8(t) => Buckets::build(t, sigma, d),
        TextBuf::U16(t) => Buckets::build(t, sigma, d),
        TextBuf::I32(t) => Buckets::build(t, sigma, d),
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
