//! The Random Hierarchy Model grammar: rules, sampling, parsing, probabilities,
//! enumeration and exact expected frequencies.
//!
//! Levels are numbered from the root (level 0, `n` symbols) to the string (level
//! `L`, tokens in `[0, v)`). `rules[l]` rewrites a level-`l` symbol into an
//! `s`-tuple of level-`(l+1)` symbols; within a level all tuples are distinct, so
//! every string has at most one derivation.

mod enumerate;
mod frequencies;
mod parse;
mod rules;
mod sample;
mod table;

pub use enumerate::Index;
pub use parse::ParseBuffers;
pub use rules::{Grammar, MAX_D, MAX_RULE_ENTRIES, MAX_V};
pub use sample::Sampled;

/// Token types a string may be stored in (the smallest unsigned type holding `v`).
pub trait Token: Copy + Default + Send + Sync + Eq + std::hash::Hash + 'static {
    fn from_u32(x: u32) -> Self;
    fn to_u32(self) -> u32;
    /// The merged bottom-subtree tokens when stored in this type.
    #[doc(hidden)]
    fn block_tokens(t: &sample::BlockTokens) -> Option<&[Self]>;
}

impl Token for u8 {
    #[inline(always)]
    fn block_tokens(t: &sample::BlockTokens) -> Option<&[Self]> {
        match t {
            sample::BlockTokens::U8(v) => Some(v),
            _ => None,
        }
    }
    #[inline(always)]
    fn from_u32(x: u32) -> Self {
        x as u8
    }
    #[inline(always)]
    fn to_u32(self) -> u32 {
        self as u32
    }
}

impl Token for u16 {
    #[inline(always)]
    fn block_tokens(t: &sample::BlockTokens) -> Option<&[Self]> {
        match t {
            sample::BlockTokens::U16(v) => Some(v),
            _ => None,
        }
    }
    #[inline(always)]
    fn from_u32(x: u32) -> Self {
        x as u16
    }
    #[inline(always)]
    fn to_u32(self) -> u32 {
        self as u32
    }
}

impl Token for u32 {
    #[inline(always)]
    fn block_tokens(t: &sample::BlockTokens) -> Option<&[Self]> {
        match t {
            sample::BlockTokens::U32(v) => Some(v),
            _ => None,
        }
    }
    #[inline(always)]
    fn from_u32(x: u32) -> Self {
        x
    }
    #[inline(always)]
    fn to_u32(self) -> u32 {
        self
    }
}

/// A zero-filled vector of `n` elements, or a `ValueError` naming `param` when the
/// process cannot get the memory (never an abort): `crate::memory::zeroed` with the
/// type's default.
pub(crate) fn zeroed<T: Clone + Default>(
    param: &str,
    n: usize,
) -> crate::error::CoreResult<Vec<T>> {
    crate::memory::zeroed(param, T::default(), n)
}

/// Marks an undefined symbol in scratch buffers.
pub(crate) const NONE: u32 = u32::MAX;
