//! Suffix array (+ LCP) over a training set, for membership, longest-match and
//! substring-count queries.
//!
//! Layout: the `N` training strings of length `d` are concatenated as
//! `x_0 0 x_1 0 ... x_{N-1} 0` (text length `n = N*(d+1)`), tokens re-coded to
//! `1..=sigma` so the separator 0 sorts first and no match can contain it. Text
//! position `p` is offset `p % (d+1)` of string `p / (d+1)`. Short strings over at
//! most 255 symbols (each string spans at most 8 packed 64-bit chunks) are sorted by
//! radix sorting their packed chunks (`chunksort`, which yields the LCP on the way);
//! otherwise libsais builds the suffix array (generalized mode for u8/u16 codes). The
//! LCP of adjacent suffixes is capped at the separator, so it never counts symbols of
//! two strings.
//!
//! Element types are chosen by size: codes u8/u16/i32 by alphabet, suffix array
//! i32/i64 by `n`, LCP u8/u16/u32 by `d`. Memory for the common case (alphabet < 255,
//! d < 256, n < 2**31) is 1 (text) + 4 (SA) + 1 (LCP) bytes per position, plus 8 bytes
//! per position for the packed keys (chunk sort) or 4 for the PLCP (libsais) during the
//! build only.

mod build;
mod chunksort;
pub mod codes;
mod search;
mod spectrum;
mod store;
mod table;

use rayon::prelude::*;

use crate::error::{CoreError, CoreResult};
use crate::token::Token;
pub use build::token_range;
pub use codes::{Alphabet, NO_CODE};
use search::Buckets;
pub use spectrum::KgramCounts;
use table::StringTable;

/// The coded text.
#[derive(Debug)]
pub enum TextBuf {
    U8(Vec<u8>),
    U16(Vec<u16>),
    I32(Vec<i32>),
}

/// The suffix array.
#[derive(Debug)]
pub enum SaBuf {
    I32(Vec<i32>),
    I64(Vec<i64>),
}

/// The LCP array: `lcp[i]` = longest common prefix of suffixes `sa[i-1]` and `sa[i]`
/// (0 for `i = 0`), never crossing a separator.
#[derive(Debug)]
pub enum LcpBuf {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

/// A suffix index over a set of equal-length token strings.
#[derive(Debug)]
pub struct TrainingIndex {
    num_strings: usize,
    length: usize,
    alphabet: Alphabet,
    text: TextBuf,
    sa: SaBuf,
    lcp: LcpBuf,
    buckets: Buckets,
    strings: StringTable,
}

/// Dispatch on the (text, suffix array) element types: binds `$t` (text slice) and
/// `$s` (suffix-array slice) and evaluates `$body` generically.
macro_rules! with_text_sa {
    ($self:ident, $t:ident, $s:ident => $body:expr) => {
        $crate::index::with_text_sa!((&$self.text, &$self.sa), $t, $s => $body)
    };
    (($text:expr, $sa:expr), $t:ident, $s:ident => $body:expr) => {
        match ($text, $sa) {
            (TextBuf::U8($t), SaBuf::I32($s)) => $body,
            (TextBuf::U8($t), SaBuf::I64($s)) => $body,
            (TextBuf::U16($t), SaBuf::I32($s)) => $body,
            (TextBuf::U16($t), SaBuf::I64($s)) => $body,
            (TextBuf::I32($t), SaBuf::I32($s)) => $body,
            (TextBuf::I32($t), SaBuf::I64($s)) => $body,
        }
    };
}
pub(crate) use with_text_sa;

macro_rules! with_text {
    ($self:expr, $t:ident => $body:expr) => {
        match &$self.text {
            TextBuf::U8($t) => $body,
            TextBuf::U16($t) => $body,
            TextBuf::I32($t) => $body,
        }
    };
}
pub(crate) use with_text;

impl TrainingIndex {
    /// Index `num_strings` strings of `length` tokens each, stored row-major in `data`.
    pub fn build<X: Token>(data: &[X], num_strings: usize, length: usize) -> CoreResult<Self> {
        build::build(data, num_strings, length)
    }

    pub fn num_strings(&self) -> usize {
        self.num_strings
    }
    /// Tokens per training string (`d`).
    pub fn length(&self) -> usize {
        self.length
    }
    /// Positions in the concatenated text, separators included: `N*(d+1)`.
    pub fn text_len(&self) -> usize {
        self.num_strings * (self.length + 1)
    }
    pub fn alphabet(&self) -> &Alphabet {
        &self.alphabet
    }
    pub fn sa(&self) -> &SaBuf {
        &self.sa
    }
    pub fn lcp(&self) -> &LcpBuf {
        &self.lcp
    }

    /// Bytes held by the index (text, suffix array, LCP, lookup tables).
    pub fn memory_bytes(&self) -> usize {
        let text = match &self.text {
            TextBuf::U8(v) => v.len(),
            TextBuf::U16(v) => 2 * v.len(),
            TextBuf::I32(v) => 4 * v.len(),
        };
        let sa = match &self.sa {
            SaBuf::I32(v) => 4 * v.len(),
            SaBuf::I64(v) => 8 * v.len(),
        };
        let lcp = match &self.lcp {
            LcpBuf::U8(v) => v.len(),
            LcpBuf::U16(v) => 2 * v.len(),
            LcpBuf::U32(v) => 4 * v.len(),
        };
        let alphabet = match &self.alphabet {
            Alphabet::Shift { .. } => 0,
            Alphabet::Dense { tokens } => 4 * tokens.len(),
        };
        text + sa + lcp + alphabet + self.buckets.memory_bytes() + self.strings.memory_bytes()
    }

    /// The training strings, decoded (row-major `N*d` tokens).
    pub fn strings(&self) -> Vec<u32> {
        let d = self.length;
        with_text!(self, t => {
            let mut out = vec![0u32; self.num_strings * d];
            out.par_chunks_mut(d).zip(t.par_chunks(d + 1)).for_each(|(o, row)| {
                for (o, c) in o.iter_mut().zip(row) {
                    *o = self.alphabet.decode(codes::Code::get(*c));
                }
            });
            out
        })
    }

    /// Token `j` of training string `i` (for tests and reports).
    pub fn token(&self, i: usize, j: usize) -> CoreResult<u32> {
        if i >= self.num_strings || j >= self.length {
            return Err(CoreError::value("position", "out of range"));
        }
        let p = i * (self.length + 1) + j;
        let c = with_text!(self, t => codes::Code::get(t[p]));
        Ok(self.alphabet.decode(c))
    }
}

/// Check a row-major token buffer of `rows` rows of `width` tokens.
pub fn check_shape(param: &str, len: usize, rows: usize, width: usize) -> CoreResult<()> {
    match rows.checked_mul(width) {
        Some(m) if m == len => Ok(()),
        _ => Err(CoreError::value(
            param,
            format!("buffer of {len} tokens does not hold {rows} rows of {width} tokens"),
        )),
    }
}

#[cfg(test)]
mod tests;
