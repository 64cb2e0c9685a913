//! Core invariants against brute force (no Python needed).

use super::*;

fn lcg(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 33
    }
}

fn data(rows: usize, d: usize, v: u64, seed: u64) -> Vec<u32> {
    let mut r = lcg(seed);
    (0..rows * d).map(|_| (r() % v) as u32).collect()
}

fn suffix_positions(idx: &TrainingIndex) -> Vec<usize> {
    match idx.sa() {
        SaBuf::I32(v) => v.iter().map(|&x| x as usize).collect(),
        SaBuf::I64(v) => v.iter().map(|&x| x as usize).collect(),
    }
}

fn count_brute(x: &[u32], d: usize, p: &[u32]) -> i64 {
    if p.is_empty() {
        return (x.len() / d * (d + 1)) as i64;
    }
    x.chunks(d)
        .map(|r| r.windows(p.len()).filter(|w| *w == p).count() as i64)
        .sum()
}

fn check_all(x: &[u32], rows: usize, d: usize) {
    let idx = TrainingIndex::build(x, rows, d).unwrap();
    // suffix array sorts the suffixes (each truncated at its separator)
    let sa = suffix_positions(&idx);
    let suffix = |p: usize| -> Vec<i64> {
        let (r, o) = (p / (d + 1), p % (d + 1));
        x[r * d + o.min(d)..(r + 1) * d]
            .iter()
            .map(|&t| t as i64)
            .collect()
    };
    for w in sa.windows(2) {
        assert!(suffix(w[0]) <= suffix(w[1]));
    }
    let lcp: Vec<usize> = match idx.lcp() {
        LcpBuf::U8(v) => v.iter().map(|&x| x as usize).collect(),
        LcpBuf::U16(v) => v.iter().map(|&x| x as usize).collect(),
        LcpBuf::U32(v) => v.iter().map(|&x| x as usize).collect(),
    };
    assert_eq!(lcp[0], 0);
    for i in 1..sa.len() {
        let (a, b) = (suffix(sa[i - 1]), suffix(sa[i]));
        let l = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        assert_eq!(lcp[i], l);
    }
    // count every substring of every row, plus absent patterns
    let mut pats: Vec<Vec<u32>> = Vec::new();
    for r in x.chunks(d).take(5) {
        for a in 0..d {
            for b in a..=d {
                pats.push(r[a..b].to_vec());
            }
        }
    }
    pats.push(vec![999_999]);
    pats.push(vec![x[0]; d + 1]);
    let flat: Vec<u32> = pats.concat();
    let mut offs = vec![0i64];
    for p in &pats {
        offs.push(offs.last().unwrap() + p.len() as i64);
    }
    let got = idx.count(&flat, &offs).unwrap();
    for (p, g) in pats.iter().zip(&got) {
        assert_eq!(*g, count_brute(x, d, p), "pattern {p:?}");
    }
    // longest match of queries against brute force
    let q = data(30, d + 2, 4, 99);
    let w = d + 2;
    let (len, string, offset) = idx.longest_match(&q, 30, w).unwrap();
    for r in 0..30 {
        let s = &q[r * w..(r + 1) * w];
        let mut best = 0;
        for a in 0..w {
            for b in a + 1..=w {
                if b - a > best && count_brute(x, d, &s[a..b]) > 0 {
                    best = b - a;
                }
            }
        }
        assert_eq!(len[r] as usize, best);
        if best > 0 {
            let (i, o) = (string[r] as usize, offset[r] as usize);
            let hit = &x[i * d + o..i * d + o + best];
            assert!(s.windows(best).any(|win| win == hit));
        } else {
            assert_eq!((string[r], offset[r]), (-1, -1));
        }
    }
    // lookup
    let (which, cnt) = idx.lookup(x, rows, d).unwrap();
    for r in 0..rows {
        let row = &x[r * d..(r + 1) * d];
        let eq: Vec<usize> = (0..rows)
            .filter(|&j| &x[j * d..(j + 1) * d] == row)
            .collect();
        assert_eq!(which[r] as usize, eq[0]);
        assert_eq!(cnt[r] as usize, eq.len());
    }
}

#[test]
fn small_alphabet_matches_brute_force() {
    check_all(&data(60, 6, 3, 1), 60, 6);
    check_all(&data(1, 1, 2, 2), 1, 1);
    check_all(&[1; 50], 10, 5);
}

#[test]
fn large_alphabets_match_brute_force() {
    let x: Vec<u32> = data(50, 5, 3, 3).iter().map(|&t| t * 40_000).collect(); // u16 dense? no: shift u16 > 65535 -> dense u8
    check_all(&x, 50, 5);
    let y: Vec<u32> = (0..400u32).map(|i| (i * 7919) % 70_001).collect(); // > 65534 distinct? no, dense u16
    check_all(&y, 80, 5);
    let z: Vec<u32> = (0..70_000u32).map(|i| i.wrapping_mul(2654435761)).collect(); // i32 codes
    let idx = TrainingIndex::build(&z, 7000, 10).unwrap();
    assert!(matches!(idx.text, TextBuf::I32(_)));
    let (w, _) = idx.lookup(&z[..100], 10, 10).unwrap();
    assert_eq!(w, (0..10).collect::<Vec<i64>>());
}

#[test]
fn save_load_roundtrip_and_corruption() {
    let x = data(200, 8, 5, 4);
    let idx = TrainingIndex::build(&x, 200, 8).unwrap();
    let dir = std::env::temp_dir().join(format!("rhmfast_idx_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.idx");
    idx.save(&path).unwrap();
    let back = TrainingIndex::load(&path).unwrap();
    assert_eq!(suffix_positions(&back), suffix_positions(&idx));
    assert_eq!(
        back.lookup(&x, 200, 8).unwrap(),
        idx.lookup(&x, 200, 8).unwrap()
    );
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 10, 51, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert!(TrainingIndex::load(&path).is_err());
    }
    let mut edited = bytes.clone();
    let last = edited.len() - 3;
    edited[last] ^= 1;
    std::fs::write(&path, &edited).unwrap();
    assert!(matches!(
        TrainingIndex::load(&path),
        Err(CoreError::Format { .. })
    ));
    let mut huge = bytes.clone();
    huge[16..24].copy_from_slice(&(u64::MAX / 3).to_le_bytes());
    std::fs::write(&path, &huge).unwrap();
    assert!(matches!(
        TrainingIndex::load(&path),
        Err(CoreError::Format { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_an_error() {
    assert!(TrainingIndex::build::<u32>(&[], 0, 4).is_err());
    assert!(TrainingIndex::build(&[1u32, 2, 3], 2, 2).is_err());
    assert!(TrainingIndex::build(&[-1i64, 2], 1, 2).is_err());
    assert!(TrainingIndex::build(&[1i64 << 33, 2], 1, 2).is_err());
    let idx = TrainingIndex::build(&[1u32, 2, 3, 4], 2, 2).unwrap();
    assert!(idx.count(&[1u32], &[0, 2]).is_err());
    assert!(idx.count(&[1u32, 2], &[0, 2, 1, 2]).is_err());
    assert_eq!(
        idx.lookup(&[1u32, 2, 3], 1, 3).unwrap(),
        (vec![-1], vec![0])
    );
}

#[test]
fn lcp_right_across_parallel_chunks() {
    // 42,000 positions (several LCP chunks), binary alphabet so many LCPs pass 8 symbols
    let (rows, d) = (2000, 20);
    let x = data(rows, d, 2, 7);
    let idx = TrainingIndex::build(&x, rows, d).unwrap();
    assert!(matches!(idx.text, TextBuf::U8(_)));
    let sa = suffix_positions(&idx);
    let suffix = |p: usize| {
        let (r, o) = (p / (d + 1), p % (d + 1));
        &x[r * d + o.min(d)..(r + 1) * d]
    };
    let lcp: Vec<usize> = match idx.lcp() {
        LcpBuf::U8(v) => v.iter().map(|&x| x as usize).collect(),
        LcpBuf::U16(v) => v.iter().map(|&x| x as usize).collect(),
        LcpBuf::U32(v) => v.iter().map(|&x| x as usize).collect(),
    };
    assert_eq!(lcp[0], 0);
    let mut long = 0;
    for i in 1..sa.len() {
        let (a, b) = (suffix(sa[i - 1]), suffix(sa[i]));
        assert!(a <= b);
        let l = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        assert_eq!(lcp[i], l, "position {i}");
        long += usize::from(l > 8);
    }
    assert!(long > 1000);
}

#[test]
fn bucket_table_counts_codes_below_each_code() {
    // start[c] = number of suffixes whose first q symbols (zeros after a separator) code
    // below c: a histogram of every position's code, independent of the suffix array;
    // several parallel blocks of the build
    for (rows, d, v) in [(2000, 20, 2), (3000, 9, 3), (1500, 33, 16), (300, 4, 1000)] {
        let x = data(rows, d, v, 11);
        let idx = TrainingIndex::build(&x, rows, d).unwrap();
        let b = &idx.buckets;
        let mut hist = vec![0u64; b.start.len()];
        with_text!(idx, t => {
            for p in 0..t.len() {
                hist[search::window_code(t, p, b.q, b.radix) as usize + 1] += 1;
            }
        });
        let mut acc = 0;
        for (c, h) in hist.iter().enumerate() {
            acc += h;
            assert_eq!(b.start[c], acc, "rows={rows} d={d} v={v} code={c}");
        }
    }
}

/// Suffixes (as code strings, cut at the separator) in suffix-array order, and the LCP.
fn ordered(text: &[u8], sa: &SaBuf, lcp: &LcpBuf) -> (Vec<usize>, Vec<Vec<u8>>, Vec<usize>) {
    let pos: Vec<usize> = match sa {
        SaBuf::I32(v) => v.iter().map(|&x| x as usize).collect(),
        SaBuf::I64(v) => v.iter().map(|&x| x as usize).collect(),
    };
    let sufs = pos
        .iter()
        .map(|&p| text[p..].iter().take_while(|&&c| c != 0).copied().collect())
        .collect();
    let lcp = match lcp {
        LcpBuf::U8(v) => v.iter().map(|&x| x as usize).collect(),
        LcpBuf::U16(v) => v.iter().map(|&x| x as usize).collect(),
        LcpBuf::U32(v) => v.iter().map(|&x| x as usize).collect(),
    };
    (pos, sufs, lcp)
}

#[test]
fn chunk_sort_matches_libsais_and_brute_force() {
    // (rows, d, alphabet, distinct rows): repeated rows force runs that share several
    // chunks (up to 8 levels for 255 symbols); > 2**15 positions use the radix buckets
    for (rows, d, v, distinct) in [
        (40, 7, 5, 40),
        (2500, 33, 16, 2500),
        (3000, 40, 2, 50),
        (1200, 35, 255, 30),
        (2000, 20, 3, 1),
        (3000, 40, 255, 3), // runs of 1,000 copies through 8 levels (radix re-sorts)
        (1, 1, 1, 1),
    ] {
        let base = data(distinct, d, v, 5);
        let x: Vec<u32> = (0..rows)
            .flat_map(|r| base[(r % distinct) * d..(r % distinct + 1) * d].to_vec())
            .collect();
        let idx = TrainingIndex::build(&x, rows, d).unwrap();
        let TextBuf::U8(text) = &idx.text else {
            panic!("u8 text expected")
        };
        let sigma = idx.alphabet.sigma();
        assert!(chunksort::Plan::new(text.len(), d, sigma).is_some());
        let (pos, sufs, lcp) = ordered(text, &idx.sa, &idx.lcp);
        let (sa_ref, lcp_ref) = build::sais_u8(text, d).unwrap();
        let (_, sufs_ref, lcp_ref) = ordered(text, &sa_ref, &lcp_ref);
        assert_eq!(sufs, sufs_ref, "rows={rows} d={d} v={v}");
        assert_eq!(lcp, lcp_ref, "rows={rows} d={d} v={v}");
        assert_eq!(lcp[0], 0);
        for i in 1..pos.len() {
            let (a, b) = (&sufs[i - 1], &sufs[i]);
            assert!(a < b || (a == b && pos[i - 1] < pos[i]), "order at {i}");
            let l = a.iter().zip(b).take_while(|(x, y)| x == y).count();
            assert_eq!(lcp[i], l, "lcp at {i}");
        }
    }
}

#[test]
fn long_strings_fall_back_to_libsais() {
    // 255 symbols: 5 per chunk, so 60 tokens span 12 chunks (more than the chunk
    // sort takes on)
    let (rows, d) = (30, 60);
    let x = data(rows, d, 255, 8);
    assert!(chunksort::Plan::new(rows * (d + 1), d, 255).is_none());
    check_all(&x, rows, d);
}

/// Every build path's index loads back (the order check accepts what `build` writes),
/// and a swapped suffix-array pair, a wrong LCP entry or an altered text token saved
/// with a recomputed checksum is refused: the checksum is not the only guard.
#[test]
fn load_verifies_order_and_lcp_on_every_build_path() {
    let dir = std::env::temp_dir().join(format!("rhmfast_order_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.idx");
    // (rows, d, alphabet): chunk sort; libsais u8 (long strings); u16 codes; i32 codes
    let cases = [(300, 8, 4), (40, 300, 3), (300, 6, 2000), (300, 6, 70_000)];
    for (rows, d, v) in cases {
        let mut x = data(rows, d, v, 9);
        let first = x[..d].to_vec();
        x[d..2 * d].copy_from_slice(&first); // a repeated string: tied suffixes
        let idx = TrainingIndex::build(&x, rows, d).unwrap();
        idx.save(&path).unwrap();
        let back = TrainingIndex::load(&path).unwrap();
        assert_eq!(
            suffix_positions(&back),
            suffix_positions(&idx),
            "d={d} v={v}"
        );

        let tamper = |f: &dyn Fn(&mut TrainingIndex)| {
            let mut bad = TrainingIndex::load(&path).unwrap();
            f(&mut bad);
            let other = dir.join("bad.idx");
            bad.save(&other).unwrap();
            let got = TrainingIndex::load(&other);
            assert!(
                matches!(got, Err(CoreError::Format { .. })),
                "tampered index loaded (d={d} v={v})"
            );
        };
        let n = rows * (d + 1);
        // two adjacent non-separator suffixes swapped
        tamper(&|t: &mut TrainingIndex| match &mut t.sa {
            SaBuf::I32(s) => s.swap(n / 2, n / 2 + 1),
            SaBuf::I64(s) => s.swap(n / 2, n / 2 + 1),
        });
        // one LCP entry off by one (within 0..=d)
        tamper(&|t: &mut TrainingIndex| match &mut t.lcp {
            LcpBuf::U8(l) => l[n / 2] = if l[n / 2] == 0 { 1 } else { l[n / 2] - 1 },
            LcpBuf::U16(l) => l[n / 2] = if l[n / 2] == 0 { 1 } else { l[n / 2] - 1 },
            LcpBuf::U32(l) => l[n / 2] = if l[n / 2] == 0 { 1 } else { l[n / 2] - 1 },
        });
        // the first token of the suffix sorted last made the smallest code
        let last = suffix_positions(&idx)[n - 1];
        tamper(&|t: &mut TrainingIndex| match &mut t.text {
            TextBuf::U8(c) => c[last] = 1,
            TextBuf::U16(c) => c[last] = 1,
            TextBuf::I32(c) => c[last] = 1,
        });
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
