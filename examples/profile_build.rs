use std::time::Instant;
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let d = 32;
    let mut s = 1u64;
    let x: Vec<u8> = (0..n * d)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % 16) as u8
        })
        .collect();
    for _ in 0..3 {
        let t = Instant::now();
        let idx = _rhmfast::index::TrainingIndex::build(&x, n, d).unwrap();
        eprintln!("build {:?} ({} bytes)", t.elapsed(), idx.memory_bytes());
        if std::env::var("SKIP_K").is_ok() {
            continue;
        }
        let t = Instant::now();
        let c = _rhmfast::counting::kgram_counts_all(&x, n, d, 8).unwrap();
        eprintln!("kgrams all {:?} {}", t.elapsed(), c.len());
    }
}
