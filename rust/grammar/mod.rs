//! The Random Hierarchy Model grammar: rules, sampling, parsing, probabilities,
//! enumeration and exact expected frequencies.
//!
//! Levels are numbered from the root (level 0, `n` symbols) to the string (level
//! `L`, tokens in `[0, v)`). `rules[l]` rewrites a level-`l` symbol into an
//! `s`-tuple of level-`(l+1)` symbols; within a level all tuples are distinct, so
//! every string has at most one derivation.

mod blocks;
mod draw;
mod enumerate;
mod frequencies;
mod parse;
mod rules;
mod sample;
mod table;

use blocks::BlockTokens;
pub use draw::Sampled;
pub use enumerate::Ranks;
pub use parse::ParseBuffers;
pub use rules::{Grammar, MAX_D, MAX_RULE_ENTRIES, MAX_V};

use crate::token::Token;

/// Token types sampled strings are stored in (the smallest unsigned type holding `v`).
/// Inputs (strings to parse or score) take any `crate::token::Token`.
pub trait SampleToken: Token + Default + Eq + std::hash::Hash {
    fn from_u32(x: u32) -> Self;
    /// The merged bottom-subtree tokens when stored in this type.
    #[doc(hidden)]
    fn block_tokens(t: &BlockTokens) -> Option<&[Self]>;
}

macro_rules! sample_token {
    ($t:ty, $variant:ident) => {
        impl SampleToken for $t {
            #[inline(always)]
            fn from_u32(x: u32) -> Self {
                x as $t
            }
            #[inline(always)]
            fn block_tokens(t: &BlockTokens) -> Option<&[Self]> {
                match t {
                    BlockTokens::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
sample_token!(u8, U8);
sample_token!(u16, U16);
sample_token!(u32, U32);

/// Number of symbols at internal level `level`: `n` at the root, `v` below.
#[inline]
pub(crate) fn symbols_at(level: usize, n: u32, v: u32) -> usize {
    if level == 0 {
        n as usize
    } else {
        v as usize
    }
}

/// Marks an undefined symbol in scratch buffers.
pub(crate) const NONE: u32 = u32::MAX;
