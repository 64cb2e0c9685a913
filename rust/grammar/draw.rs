//! Random draws shared by construction, sampling and enumeration: per-level rule
//! samplers (uniform bits, uniform with rejection, alias tables), the bit reservoir
//! over ChaCha8 streams, the fixed rows per stream, and the sampled-strings container.
//! A leaf module: it knows nothing of `Grammar`.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Rows per RNG stream.
pub(crate) const CHUNK: usize = 1024;
/// How the rule of one level's symbols is drawn: uniform with `m` a power of two
/// takes `bits` random bits; uniform otherwise takes `bits` bits and rejects values
/// `>= k` (exact); non-uniform uses an alias table (one `u64` per draw).
#[derive(Debug, Clone)]
pub(crate) enum LevelSampler {
    Bits { bits: u32 },
    Uniform { bits: u32, k: u32 },
    Alias { table: Vec<AliasEntry> },
}

/// One alias-table column: keep the column when the low 32 random bits are below
/// `threshold`, else take `alias` (a column that is always kept aliases itself).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AliasEntry {
    pub(crate) threshold: u32,
    pub(crate) alias: u32,
}

fn alias_table(p: &[f64]) -> (Vec<u64>, Vec<u32>) {
    // Vose's alias method; thresholds scaled to 2**32 so a draw compares integers.
    let k = p.len();
    let total: f64 = p.iter().sum();
    let mut scaled: Vec<f64> = p.iter().map(|&x| x / total * k as f64).collect();
    let mut threshold = vec![1u64 << 32; k];
    let mut alias: Vec<u32> = (0..k as u32).collect();
    let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..k).partition(|&i| scaled[i] < 1.0);
    while let (Some(&l), Some(&g)) = (small.last(), large.last()) {
        small.pop();
        threshold[l] = (scaled[l] * 4294967296.0).round() as u64;
        alias[l] = g as u32;
        scaled[g] -= 1.0 - scaled[l];
        if scaled[g] < 1.0 {
            large.pop();
            small.push(g);
        }
    }
    // Leftovers are 1 up to rounding.
    for i in small.into_iter().chain(large) {
        threshold[i] = 1u64 << 32;
    }
    (threshold, alias)
}

pub(crate) fn level_sampler(probs: &[f64], k: usize) -> LevelSampler {
    let uniform = probs.chunks(k).all(|row| row.iter().all(|&x| x == row[0]));
    if uniform && k.is_power_of_two() {
        return LevelSampler::Bits {
            bits: k.trailing_zeros(),
        };
    }
    if uniform && k <= 1 << 24 {
        return LevelSampler::Uniform {
            bits: usize::BITS - (k - 1).leading_zeros(),
            k: k as u32,
        };
    }
    let mut table = Vec::with_capacity(probs.len());
    for row in probs.chunks(k) {
        let (t, a) = alias_table(row);
        for (i, (&ti, &ai)) in t.iter().zip(&a).enumerate() {
            table.push(if ti >= 1 << 32 {
                AliasEntry {
                    threshold: u32::MAX,
                    alias: i as u32,
                }
            } else {
                AliasEntry {
                    threshold: ti as u32,
                    alias: ai,
                }
            });
        }
    }
    LevelSampler::Alias { table }
}

/// A bit reservoir over a ChaCha8 stream: uniform power-of-two choices take only
/// the bits they need.
pub(crate) struct Bits {
    rng: ChaCha8Rng,
    buf: u64,
    left: u32,
}

impl Bits {
    pub(crate) fn new(seed: u64, stream: u64) -> Bits {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Bits {
            rng,
            buf: 0,
            left: 0,
        }
    }

    #[inline(always)]
    fn take(&mut self, b: u32) -> u32 {
        if b == 0 {
            return 0;
        }
        if self.left < b {
            self.buf = self.rng.next_u64();
            self.left = 64;
        }
        let r = (self.buf & ((1u64 << b) - 1)) as u32;
        self.buf >>= b;
        self.left -= b;
        r
    }

    #[inline(always)]
    pub(crate) fn draw(&mut self, sampler: &LevelSampler, sym: usize, k: usize) -> u32 {
        match sampler {
            LevelSampler::Bits { bits } => self.take(*bits),
            LevelSampler::Uniform { bits, k } => loop {
                let x = self.take(*bits);
                if x < *k {
                    return x;
                }
            },
            LevelSampler::Alias { table } => {
                let r = self.rng.next_u64();
                let col = (((r >> 32) * k as u64) >> 32) as usize;
                let e = table[sym * k + col];
                if (r as u32) < e.threshold {
                    col as u32
                } else {
                    e.alias
                }
            }
        }
    }
}

/// Sampled strings (`num * d`) and optionally their derivations (`num * K` symbols
/// and rule indices, level order).
pub struct Sampled<T> {
    pub tokens: Vec<T>,
    pub tree: Option<(Vec<i64>, Vec<i64>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_table_reproduces_probabilities() {
        for p in [
            vec![0.1, 0.2, 0.3, 0.4],
            vec![0.0, 0.5, 0.0, 0.5],
            vec![0.25; 4],
            vec![1.0, 0.0, 0.0],
        ] {
            let k = p.len();
            let LevelSampler::Alias { table } = level_sampler(&[p.clone(), p.clone()].concat(), k)
            else {
                assert!(p.iter().all(|&x| x == p[0]));
                continue;
            };
            let mut got = vec![0.0; k];
            for (i, e) in table[k..].iter().enumerate() {
                let keep = e.threshold as f64 / 4294967296.0;
                let keep = if e.alias as usize == i { 1.0 } else { keep };
                got[i] += keep / k as f64;
                got[e.alias as usize] += (1.0 - keep) / k as f64;
            }
            for (g, w) in got.iter().zip(&p) {
                assert!((g - w).abs() < 1e-9, "{got:?} vs {p:?}");
            }
        }
    }
}
