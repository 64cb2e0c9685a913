//! Token codes inside the index: how training tokens map to the compact symbols the
//! suffix array is built on, and the element types chosen by size.

/// Code of a query token that does not occur in the training alphabet: compares
/// greater than every text symbol and equal to none, so no match ever contains it.
pub const NO_CODE: u32 = u32::MAX;

/// A text symbol type (separator 0, tokens 1..=sigma).
pub trait Code: Copy + Send + Sync + 'static {
    fn get(self) -> u32;
    fn from_code(c: u32) -> Self;
}

impl Code for u8 {
    #[inline(always)]
    fn get(self) -> u32 {
        self as u32
    }
    #[inline(always)]
    fn from_code(c: u32) -> Self {
        c as u8
    }
}
impl Code for u16 {
    #[inline(always)]
    fn get(self) -> u32 {
        self as u32
    }
    #[inline(always)]
    fn from_code(c: u32) -> Self {
        c as u16
    }
}
impl Code for i32 {
    #[inline(always)]
    fn get(self) -> u32 {
        self as u32
    }
    #[inline(always)]
    fn from_code(c: u32) -> Self {
        c as i32
    }
}

/// A suffix-array element type (libsais produces i32 or i64).
pub trait SaIdx: Copy + Send + Sync + 'static {
    fn idx(self) -> usize;
}
impl SaIdx for i32 {
    #[inline(always)]
    fn idx(self) -> usize {
        self as usize
    }
}
impl SaIdx for i64 {
    #[inline(always)]
    fn idx(self) -> usize {
        self as usize
    }
}

/// How training tokens become codes 1..=sigma (0 is the string separator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alphabet {
    /// code = token + 1, for tokens in `[0, sigma)`.
    Shift { sigma: u32 },
    /// code = rank + 1 in the sorted distinct training tokens (large alphabets).
    Dense { tokens: Vec<u32> },
}

impl Alphabet {
    /// Largest code in use.
    pub fn sigma(&self) -> u32 {
        match self {
            Alphabet::Shift { sigma } => *sigma,
            Alphabet::Dense { tokens } => tokens.len() as u32,
        }
    }

    #[inline(always)]
    pub fn encode(&self, t: i64) -> u32 {
        match self {
            Alphabet::Shift { sigma } => {
                if t >= 0 && t < *sigma as i64 {
                    t as u32 + 1
                } else {
                    NO_CODE
                }
            }
            Alphabet::Dense { tokens } => {
                if t < 0 || t > u32::MAX as i64 {
                    return NO_CODE;
                }
                match tokens.binary_search(&(t as u32)) {
                    Ok(r) => r as u32 + 1,
                    Err(_) => NO_CODE,
                }
            }
        }
    }

    /// Token of a code in 1..=sigma.
    #[inline(always)]
    pub fn decode(&self, c: u32) -> u32 {
        match self {
            Alphabet::Shift { .. } => c - 1,
            Alphabet::Dense { tokens } => tokens[(c - 1) as usize],
        }
    }
}
