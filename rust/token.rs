//! Token values as callers pass them: the one trait for input tokens of every core
//! module (grammar parsing and scoring, the index, counting, the denoisers).
//!
//! Tokens arrive as u8/u16/u32/i64 (the dtypes the binding layer reads without a
//! copy); each module checks their range against its own alphabet.

/// A token type accepted from callers (strings to parse, training data, queries).
pub trait Token: Copy + Send + Sync + 'static {
    fn to_i64(self) -> i64;
    /// The token of value `v` (callers pass values that came from this type).
    fn from_i64(v: i64) -> Self;
    /// Eight tokens of at most 8 bits from the bytes of `w` (little-endian: token `m` in
    /// byte `m`); for u8 a plain re-typing, so the tokens stay in one register.
    #[inline(always)]
    fn from_bytes8(w: u64) -> [Self; 8] {
        std::array::from_fn(|m| Self::from_i64(((w >> (8 * m)) & 0xFF) as i64))
    }
}
impl Token for u8 {
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v as u8
    }
    #[inline(always)]
    fn from_bytes8(w: u64) -> [Self; 8] {
        w.to_le_bytes()
    }
}
impl Token for u16 {
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v as u16
    }
}
impl Token for u32 {
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v as u32
    }
}
impl Token for i64 {
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self
    }
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v
    }
}
