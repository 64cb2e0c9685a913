//! The denoisers against brute force over every string of small grammars.

use super::*;
use crate::grammar::Grammar;

/// Every string of `g` with its probability, by enumeration of derivations.
fn all_strings(g: &Grammar) -> Vec<(Vec<u32>, f64)> {
    let total = g.num_strings().to_string().parse::<u64>().unwrap();
    let ranks = crate::grammar::Ranks::Small((0..total).collect());
    let tokens = g.unrank::<u32>(&ranks, false).unwrap().tokens;
    let lp = g.parse(&tokens, false).unwrap().log_prob;
    tokens
        .chunks(g.d())
        .zip(lp)
        .map(|(x, l)| (x.to_vec(), l.exp()))
        .collect()
}

/// The posterior of one row of evidence `ev` over the weighted `strings`, by brute
/// force: marginals `(d, v)` and the log evidence.
fn brute(strings: &[(Vec<u32>, f64)], ev: &Evidence, d: usize, v: usize) -> (Vec<f64>, f64) {
    let lik = |i: usize, a: u32| match ev {
        Evidence::Masked { tokens, mask_id } => {
            if tokens[i] == *mask_id || tokens[i] == a as i64 {
                1.0
            } else {
                0.0
            }
        }
        Evidence::Uniform { tokens, alpha_bar } => {
            let keep = alpha_bar[0];
            (1.0 - keep) / v as f64 + if tokens[i] == a as i64 { keep } else { 0.0 }
        }
    };
    let mut marg = vec![0.0; d * v];
    let mut z = 0.0;
    for (x, p) in strings {
        let w = p * x
            .iter()
            .enumerate()
            .map(|(i, &a)| lik(i, a))
            .product::<f64>();
        z += w;
        for (i, &a) in x.iter().enumerate() {
            marg[i * v + a as usize] += w;
        }
    }
    marg.chunks_mut(v).for_each(normalise);
    (marg, z.ln())
}

/// `got`, the posterior of the one row of `ev`, equals brute force over `strings`.
fn assert_brute(got: &Posterior, strings: &[(Vec<u32>, f64)], ev: &Evidence, d: usize, v: usize) {
    let (want, lz) = brute(strings, ev, d, v);
    close(&got.marginals, &want);
    assert!((got.log_evidence[0] - lz).abs() < 1e-9);
}

/// `x` with the tokens at `hidden` replaced by the mask id `v`.
fn mask(x: &[u32], hidden: &[usize], v: usize) -> Vec<i64> {
    let mut out: Vec<i64> = x.iter().map(|&a| a as i64).collect();
    for &i in hidden {
        out[i] = v as i64;
    }
    out
}

fn close(a: &[f64], b: &[f64]) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-9 * (1.0 + x.abs()), "{x} vs {y}");
    }
}

#[test]
fn grammar_and_empirical_posteriors_match_enumeration() {
    let tilt = |syms: usize| (0..syms).flat_map(|_| [0.7, 0.3]).collect::<Vec<f64>>();
    let probs = Some(vec![tilt(2), tilt(3), tilt(3)]);
    let g = Grammar::random(3, 2, 2, 2, 3, 7, probs, Some(vec![0.6, 0.4])).unwrap();
    let (d, v) = (g.d(), g.v() as usize);
    let strings = all_strings(&g);
    let x: Vec<i64> = strings[5].0.iter().map(|&a| a as i64).collect();
    // masked: positions 1, 4, 6 hidden (mask id v); uniform noise with keep probability 0.6
    let masked = mask(&strings[5].0, &[1, 4, 6], v);
    let ab = [0.6];
    let evs = [
        Evidence::Masked {
            tokens: &masked,
            mask_id: v as i64,
        },
        Evidence::Uniform {
            tokens: &x,
            alpha_bar: &ab,
        },
    ];
    // the training set: the first 9 strings with weights 1..9
    let train: Vec<u32> = strings[..9].iter().flat_map(|(s, _)| s.clone()).collect();
    let w: Vec<f64> = (1..=9).map(|k| k as f64).collect();
    let e = Empirical::new(&train, 9, d, v as u32, Some(&w)).unwrap();
    let set: Vec<(Vec<u32>, f64)> = strings[..9]
        .iter()
        .zip(&w)
        .map(|((s, _), &wk)| (s.clone(), wk / 45.0))
        .collect();
    for ev in &evs {
        assert_brute(&g.posterior(ev).unwrap(), &strings, ev, d, v);
        assert_brute(&e.posterior(ev).unwrap(), &set, ev, d, v);
    }
}

#[test]
fn bad_inputs_are_errors() {
    let g = Grammar::random(3, 2, 2, 2, 2, 0, None, None).unwrap();
    let bad = [0i64, 1, 7, 0];
    assert!(g
        .posterior(&Evidence::Masked {
            tokens: &bad,
            mask_id: 3
        })
        .is_err());
    assert!(g
        .posterior(&Evidence::Masked {
            tokens: &[0, 1, 2],
            mask_id: 3
        })
        .is_err());
    let ok = [0i64, 1, 2, 0];
    assert!(g
        .posterior(&Evidence::Uniform {
            tokens: &ok,
            alpha_bar: &[1.5]
        })
        .is_err());
    assert!(g
        .posterior(&Evidence::Uniform {
            tokens: &ok,
            alpha_bar: &[f64::NAN]
        })
        .is_err());
    assert!(Empirical::new(&[0u32, 1, 2, 0], 1, 4, 3, Some(&[-1.0])).is_err());
    assert!(Empirical::new(&[0u32, 1, 2, 0], 1, 4, 3, Some(&[0.0])).is_err());
    assert!(Empirical::new(&[0u32, 1, 2, 0], 1, 4, 3, Some(&[1.0, 1.0])).is_err());
    assert!(Empirical::new(&[0u32, 1, 5, 0], 1, 4, 3, None).is_err());
    let p = Posterior {
        marginals: vec![0.5; 2],
        log_evidence: vec![0.0],
    };
    assert!(mixture(&p, &p, f64::NAN, 2).is_err());
    assert!(mixture(&p, &p, -0.1, 2).is_err());
}

#[test]
fn binary_path_matches_general_path() {
    // the study grammar (v=6 n=6 m=4 s=2 L=4), tilted rules, some rules of probability 0
    let probs: Vec<Vec<f64>> = (0..4)
        .map(|_| {
            (0..6)
                .flat_map(|a| {
                    if a == 1 {
                        vec![0.5, 0.0, 0.5, 0.0]
                    } else {
                        vec![0.4, 0.3, 0.2, 0.1]
                    }
                })
                .collect()
        })
        .collect();
    for probs in [None, Some(probs)] {
        let g = Grammar::random(6, 6, 4, 2, 4, 3, probs, None).unwrap();
        let (d, v) = (g.d(), g.v() as usize);
        let x = g.sample::<u32>(200, 1, false).unwrap().tokens;
        let mut masked: Vec<i64> = x.iter().map(|&a| a as i64).collect();
        let mut state = 12345u64;
        for (k, t) in masked.iter_mut().enumerate() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if (state >> 33) % 2 == 0 || k < d {
                *t = v as i64; // the first row fully masked
            }
        }
        for r in 0..20 {
            // impossible rows: a seen token changed
            masked[(r + 2) * d + 3] = (x[(r + 2) * d + 3] as i64 + 1) % v as i64;
        }
        let unif: Vec<i64> = x.iter().map(|&a| a as i64).collect();
        let ab: Vec<f64> = (0..200).map(|r| r as f64 / 199.0).collect();
        for ev in [
            Evidence::Masked {
                tokens: &masked,
                mask_id: v as i64,
            },
            Evidence::Uniform {
                tokens: &unif,
                alpha_bar: &ab,
            },
        ] {
            let fast = g.posterior_binary(&ev).unwrap();
            let slow = g.posterior_general(&ev).unwrap();
            close(&fast.marginals, &slow.marginals);
            for (a, b) in fast.log_evidence.iter().zip(&slow.log_evidence) {
                assert!(
                    (a == b) || (a - b).abs() < 1e-10 * (1.0 + a.abs()),
                    "{a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn general_path_matches_enumeration_for_s3() {
    let g = Grammar::random(3, 2, 2, 3, 2, 5, None, Some(vec![0.6, 0.4])).unwrap();
    let (d, v) = (g.d(), g.v() as usize);
    let strings = all_strings(&g);
    let masked = mask(&strings[3].0, &[0, 4, 5, 8], v);
    let ev = Evidence::Masked {
        tokens: &masked,
        mask_id: v as i64,
    };
    assert_brute(&g.posterior(&ev).unwrap(), &strings, &ev, d, v);
}
