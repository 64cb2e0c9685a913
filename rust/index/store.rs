//! Saving and loading an index. Layout (little endian):
//!
//! ```text
//! magic "RHMFIDX\0" | version u32 | endian marker u32 | num_strings u64 | length u64
//! | text bytes/elt u8 | sa bytes/elt u8 | lcp bytes/elt u8 | alphabet kind u8
//! | sigma (shift) or distinct-token count (dense) u64 | checksum u64
//! | [dense tokens u32...] | text | suffix array | lcp
//! ```
//!
//! Load checks everything before trusting it: tag, version, that the element types are
//! the ones the sizes imply, that the file length equals header + arrays exactly (so a
//! truncated or foreign file never triggers a large allocation), the checksum, and the
//! content invariants every query relies on (separators, code range, suffix array a
//! permutation, LCP at most d). The bucket and string tables are rebuilt (O(n)).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use bytemuck::Pod;

use super::build::assemble;
use super::codes::{Code, SaIdx};
use super::{with_text_sa, Alphabet, LcpBuf, SaBuf, TextBuf, TrainingIndex};
use crate::error::{CoreError, CoreResult};

const MAGIC: &[u8; 8] = b"RHMFIDX\0";
const VERSION: u32 = 1;
const ENDIAN: u32 = 0x0102_0304;
const HEADER: usize = 8 + 4 + 4 + 8 + 8 + 4 + 8 + 8;

struct Checksum(u64);
impl Checksum {
    fn add(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            h = (h ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(31);
        }
        for &b in words.remainder() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3);
        }
        self.0 = h ^ bytes.len() as u64;
    }
}

fn kinds(idx: &TrainingIndex) -> (u8, u8, u8) {
    let t = match &idx.text {
        TextBuf::U8(_) => 1,
        TextBuf::U16(_) => 2,
        TextBuf::I32(_) => 4,
    };
    let s = match &idx.sa {
        SaBuf::I32(_) => 4,
        SaBuf::I64(_) => 8,
    };
    let l = match &idx.lcp {
        LcpBuf::U8(_) => 1,
        LcpBuf::U16(_) => 2,
        LcpBuf::U32(_) => 4,
    };
    (t, s, l)
}

/// The element sizes `build` chooses for these dimensions.
fn expected_kinds(sigma: u64, n: usize, d: usize) -> (u8, u8, u8) {
    let (t, s, l, _) = super::build::element_bytes(n, d, sigma.min(u32::MAX as u64) as u32);
    (t as u8, s as u8, l as u8)
}

fn bytes_of(idx: &TrainingIndex) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = Vec::new();
    if let Alphabet::Dense { tokens } = &idx.alphabet {
        parts.push(bytemuck::cast_slice(tokens));
    }
    parts.push(match &idx.text {
        TextBuf::U8(v) => bytemuck::cast_slice(v),
        TextBuf::U16(v) => bytemuck::cast_slice(v),
        TextBuf::I32(v) => bytemuck::cast_slice(v),
    });
    parts.push(match &idx.sa {
        SaBuf::I32(v) => bytemuck::cast_slice(v),
        SaBuf::I64(v) => bytemuck::cast_slice(v),
    });
    parts.push(match &idx.lcp {
        LcpBuf::U8(v) => bytemuck::cast_slice(v),
        LcpBuf::U16(v) => bytemuck::cast_slice(v),
        LcpBuf::U32(v) => bytemuck::cast_slice(v),
    });
    parts
}

impl TrainingIndex {
    /// Write the index to `path` atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> CoreResult<()> {
        if cfg!(target_endian = "big") {
            return Err(CoreError::Io {
                message: "saving needs a little-endian machine".into(),
            });
        }
        let parts = bytes_of(self);
        let mut sum = Checksum(0);
        for p in &parts {
            sum.add(p);
        }
        let (t, s, l) = kinds(self);
        let (akind, sigma) = match &self.alphabet {
            Alphabet::Shift { sigma } => (0u8, *sigma as u64),
            Alphabet::Dense { tokens } => (1u8, tokens.len() as u64),
        };
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&ENDIAN.to_le_bytes());
        header.extend_from_slice(&(self.num_strings as u64).to_le_bytes());
        header.extend_from_slice(&(self.length as u64).to_le_bytes());
        header.extend_from_slice(&[t, s, l, akind]);
        header.extend_from_slice(&sigma.to_le_bytes());
        header.extend_from_slice(&sum.0.to_le_bytes());
        debug_assert_eq!(header.len(), HEADER);

        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        let result = (|| -> std::io::Result<()> {
            let file = File::create(&tmp)?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            w.write_all(&header)?;
            for p in &parts {
                w.write_all(p)?;
            }
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(CoreError::Io {
                message: format!("{}: {e}", path.display()),
            });
        }
        Ok(())
    }

    /// Read an index written by [`TrainingIndex::save`], checking it fully.
    pub fn load(path: &Path) -> CoreResult<Self> {
        let io = |e: std::io::Error| CoreError::Io {
            message: format!("{}: {e}", path.display()),
        };
        let file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let bad = |m: String| CoreError::format(format!("{}: {m}", path.display()));
        if file_len < HEADER as u64 {
            return Err(bad(format!(
                "{file_len} bytes is shorter than the {HEADER}-byte header"
            )));
        }
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut h = [0u8; HEADER];
        r.read_exact(&mut h).map_err(io)?;
        if &h[0..8] != MAGIC {
            return Err(bad("not an rhmfast index (format tag mismatch)".into()));
        }
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let version = u32_at(8);
        if version != VERSION {
            return Err(bad(format!(
                "format version {version}, this build reads version {VERSION}"
            )));
        }
        if u32_at(12) != ENDIAN || cfg!(target_endian = "big") {
            return Err(bad("byte order differs from this machine".into()));
        }
        let num_strings = u64_at(16);
        let length = u64_at(24);
        let (t, s, l, akind) = (h[32], h[33], h[34], h[35]);
        let sigma = u64_at(36);
        let checksum = u64_at(44);
        if num_strings == 0 || length == 0 || num_strings >= u32::MAX as u64 {
            return Err(bad(format!(
                "num_strings={num_strings}, length={length} out of range"
            )));
        }
        let n = num_strings
            .checked_mul(length + 1)
            .filter(|&n| n <= file_len)
            .ok_or_else(|| bad("sizes exceed the file length".into()))? as usize;
        let (num_strings, d) = (num_strings as usize, length as usize);
        if akind > 1 || sigma == 0 || sigma > u32::MAX as u64 || (akind == 0 && sigma > 65535) {
            return Err(bad(format!(
                "alphabet kind {akind} with size {sigma} is invalid"
            )));
        }
        if (t, s, l) != expected_kinds(sigma, n, d) {
            return Err(bad(format!(
                "element sizes ({t}, {s}, {l}) do not match the dimensions"
            )));
        }
        let dense_len = if akind == 1 { sigma as usize } else { 0 };
        let want = (HEADER as u128)
            + 4 * dense_len as u128
            + (t as u128 + s as u128 + l as u128) * n as u128;
        if want != file_len as u128 {
            return Err(bad(format!(
                "file has {file_len} bytes, the header implies {want}"
            )));
        }

        // the arrays, the order check's rank array (8 bytes a position) and the
        // rebuilt tables, before a byte is read: a consistent header may still lie
        crate::memory::ensure_available(
            "path",
            &format!(
                "loading {} ({num_strings} strings of {d} tokens)",
                path.display()
            ),
            want + 8 * n as u128 + super::build::table_bytes(num_strings),
        )?;
        let mut sum = Checksum(0);
        let alphabet = if akind == 1 {
            let tokens: Vec<u32> = read_vec(&mut r, dense_len, &mut sum, &io)?;
            if tokens.windows(2).any(|w| w[0] >= w[1]) {
                return Err(bad("alphabet tokens are not strictly increasing".into()));
            }
            Alphabet::Dense { tokens }
        } else {
            Alphabet::Shift {
                sigma: sigma as u32,
            }
        };
        let text = match t {
            1 => TextBuf::U8(read_vec(&mut r, n, &mut sum, &io)?),
            2 => TextBuf::U16(read_vec(&mut r, n, &mut sum, &io)?),
            _ => TextBuf::I32(read_vec(&mut r, n, &mut sum, &io)?),
        };
        let sa = match s {
            4 => SaBuf::I32(read_vec(&mut r, n, &mut sum, &io)?),
            _ => SaBuf::I64(read_vec(&mut r, n, &mut sum, &io)?),
        };
        let lcp = match l {
            1 => LcpBuf::U8(read_vec(&mut r, n, &mut sum, &io)?),
            2 => LcpBuf::U16(read_vec(&mut r, n, &mut sum, &io)?),
            _ => LcpBuf::U32(read_vec(&mut r, n, &mut sum, &io)?),
        };
        if sum.0 != checksum {
            return Err(bad(
                "checksum mismatch (the file was modified or damaged)".into()
            ));
        }
        let ok_text = match &text {
            TextBuf::U8(v) => text_ok(v, d, sigma as u32),
            TextBuf::U16(v) => text_ok(v, d, sigma as u32),
            TextBuf::I32(v) => text_ok(v, d, sigma as u32),
        };
        let ok_sa = match &sa {
            SaBuf::I32(v) => permutation_ok(v),
            SaBuf::I64(v) => permutation_ok(v),
        };
        let ok_lcp = match &lcp {
            LcpBuf::U8(v) => v.iter().all(|&x| (x as usize) <= d),
            LcpBuf::U16(v) => v.iter().all(|&x| (x as usize) <= d),
            LcpBuf::U32(v) => v.iter().all(|&x| (x as usize) <= d),
        };
        if !(ok_text && ok_sa && ok_lcp) {
            return Err(bad("inconsistent contents".into()));
        }
        // a recomputed checksum must not make a wrong order or LCP answer queries
        let sorted = with_text_sa_lcp(&text, &sa, &lcp, num_strings)?;
        if !sorted {
            return Err(bad(
                "the suffix array is not sorted or the LCP array is wrong".into(),
            ));
        }
        Ok(assemble(num_strings, d, alphabet, text, sa, lcp))
    }
}

fn read_vec<E: Pod>(
    r: &mut impl Read,
    len: usize,
    sum: &mut Checksum,
    io: &dyn Fn(std::io::Error) -> CoreError,
) -> CoreResult<Vec<E>> {
    let mut v = crate::memory::zeroed("path", E::zeroed(), len)?;
    r.read_exact(bytemuck::cast_slice_mut(&mut v)).map_err(io)?;
    sum.add(bytemuck::cast_slice(&v));
    Ok(v)
}

fn with_text_sa_lcp(
    text: &TextBuf,
    sa: &SaBuf,
    lcp: &LcpBuf,
    num_strings: usize,
) -> CoreResult<bool> {
    macro_rules! go {
        ($t:expr, $s:expr) => {
            match lcp {
                LcpBuf::U8(l) => order_ok($t, $s, |i| l[i] as usize, num_strings),
                LcpBuf::U16(l) => order_ok($t, $s, |i| l[i] as usize, num_strings),
                LcpBuf::U32(l) => order_ok($t, $s, |i| l[i] as usize, num_strings),
            }
        };
    }
    with_text_sa!((text, sa), t, s => go!(t, s))
}

/// Whether `sa` (a permutation, checked before) sorts the suffixes of `text` and `lcp`
/// holds their common prefixes, in linear time. The `N` separator suffixes come first
/// (in any order: no query reads their order); after them, each suffix's key (its first
/// code, then the rank of the suffix one position on) must grow strictly, which makes
/// the order lexicographic, with suffixes equal up to their separators tied in the
/// order of what follows them, as both build paths leave them. The LCP is then
/// recomputed by Kasai's pass (valid because the order is) and compared.
fn order_ok<T: Code, S: SaIdx>(
    text: &[T],
    sa: &[S],
    lcp: impl Fn(usize) -> usize,
    num_strings: usize,
) -> CoreResult<bool> {
    let n = sa.len();
    let mut rank = crate::memory::zeroed("path", 0usize, n)?;
    for (i, s) in sa.iter().enumerate() {
        rank[s.idx()] = i;
    }
    if sa[..num_strings].iter().any(|s| text[s.idx()].get() != 0) {
        return Ok(false);
    }
    let key = |p: usize| (text[p].get(), rank.get(p + 1).map_or(0, |&r| r + 1));
    if sa[num_strings..]
        .windows(2)
        .any(|w| key(w[0].idx()) >= key(w[1].idx()))
    {
        return Ok(false);
    }
    if lcp(0) != 0 {
        return Ok(false);
    }
    let mut h = 0usize;
    for p in 0..n {
        let r = rank[p];
        if r == 0 {
            h = 0;
            continue;
        }
        let q = sa[r - 1].idx();
        while p + h < n
            && q + h < n
            && text[p + h].get() == text[q + h].get()
            && text[p + h].get() != 0
        {
            h += 1;
        }
        if lcp(r) != h {
            return Ok(false);
        }
        h = h.saturating_sub(1);
    }
    Ok(true)
}

fn text_ok<T: Code>(text: &[T], d: usize, sigma: u32) -> bool {
    text.chunks(d + 1).all(|row| {
        row.len() == d + 1
            && row[d].get() == 0
            && row[..d].iter().all(|c| (1..=sigma).contains(&c.get()))
    })
}

fn permutation_ok<S: SaIdx + PartialOrd + Default>(sa: &[S]) -> bool {
    let n = sa.len();
    let mut seen = vec![0u64; n.div_ceil(64)];
    for &x in sa {
        if x < S::default() {
            return false;
        }
        let i = x.idx();
        if i >= n || seen[i / 64] >> (i % 64) & 1 == 1 {
            return false;
        }
        seen[i / 64] |= 1 << (i % 64);
    }
    true
}
