//! Bad input at scale for the loaders of user files (issue 39, part 3): a
//! small mutation engine and the harness that runs a loader on each mutant.
//!
//! Shared by the `fuzz` test binaries of every `imagen-*` crate that reads
//! user files; each includes this file with
//! `#[path = "../../imagen-weights/tests/fuzz_support/mod.rs"] mod fuzz_support;`
//! so there is one copy of it. No dependency beyond `std` and `serde_json`.
//!
//! A [`Target`] is a directory of valid files (copied from the repository's
//! fixtures, or written by the test), the files in it to mutate, and the
//! public loader to call on the directory. Each case mutates one file,
//! calls the loader on a fresh thread, and checks:
//!
//! - no panic (a panic is caught, its message and location recorded);
//! - no hang: the case finishes within [`Target::case_limit`] (at least 5 s,
//!   or 20 times the time the loader takes on the valid files, whichever is
//!   longer: the machines running these share their cores);
//! - allocation: the bytes the case's thread holds at its peak exceed what it
//!   held at the start by at most max(64 MiB, 8 x the size of the files in
//!   the directory). Counted by [`Counting`], per thread (the loaders read on
//!   the calling thread; work handed to a pool thread is not counted). A
//!   single request over 4 GiB is not served: the case's description is
//!   written to stderr and the process aborts, since std cannot recover from
//!   a failed allocation;
//! - the result is `Ok`, or an error whose `Display` and `source()` chain
//!   name the mutated file (its file name), unless the target documents why
//!   a class of errors names something else ([`Target::accept`]).
//!
//! Two modes. By default (CI) each target replays its saved corpus
//! (`tests/fuzz_corpus/<target>/`) and then runs [`Target::ci_cases`] fresh
//! cases from a fixed seed: seconds in all. With `IMAGEN_FUZZ_SECS=600` it
//! runs random cases for that many seconds from the seed in
//! `IMAGEN_FUZZ_SEED` (default: the clock), writes each new finding's input
//! into the corpus (one per distinct finding), prints a summary line, and
//! fails if there was any finding. Every failure prints the seed, case
//! number and mutation, which reproduce it: `IMAGEN_FUZZ_SEED=s
//! IMAGEN_FUZZ_CASE=i` runs that case alone and keeps its input under
//! `$TMPDIR/imagen-fuzz-findings/<target>/`, from where it can be copied
//! into the corpus.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Allocation counting.

thread_local! {
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// The case running on this thread, written to stderr before a refused
    /// allocation aborts the process.
    static CASE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// A single request larger than this is refused (and the process aborts,
/// naming the case): no loader of these small fixtures has a reason to ask
/// for it, and serving it could take the machine's memory.
pub const HARD_LIMIT: usize = 4 << 30;

/// `System`, counting the bytes each thread holds and its peak.
pub struct Counting;

fn track(delta: isize) {
    let _ = CURRENT.try_with(|c| {
        let v = c.get() + delta;
        c.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v)
            }
        });
    });
}

fn refuse(size: usize) {
    use std::io::Write;
    let mut err = std::io::stderr();
    let _ = err.write_all(b"\nfuzz: allocation of ");
    let mut digits = [0u8; 20];
    let mut n = size;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let _ = err.write_all(&digits[i..]);
    let _ = err.write_all(b" bytes refused (over-allocation finding) in case: ");
    let _ = CASE.try_with(|c| {
        if let Ok(c) = c.try_borrow()
            && let Some(c) = c.as_ref()
        {
            let _ = err.write_all(c);
        }
    });
    let _ = err.write_all(b"\n");
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > HARD_LIMIT {
            refuse(layout.size());
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > HARD_LIMIT {
            refuse(layout.size());
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > HARD_LIMIT {
            refuse(new_size);
            return std::ptr::null_mut();
        }
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Starts measuring this thread's peak; returns the bytes held now.
fn reset_peak() -> isize {
    let now = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(now));
    now
}

fn peak() -> isize {
    PEAK.with(Cell::get)
}

// ---------------------------------------------------------------------------
// Random numbers.

/// splitmix64: tiny, fast, and every seed gives a good stream.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A seed for case `i` of a run seeded with `seed`.
pub fn case_seed(seed: u64, i: u64) -> u64 {
    Rng::new(seed ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64()
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

// ---------------------------------------------------------------------------
// Mutations.

/// How a file is mutated: every kind gets the byte-level mutations; JSON
/// files and safetensors headers also get structure-aware ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Json,
    Safetensors,
    Binary,
}

impl FileKind {
    pub fn of(path: &str) -> Self {
        if path.ends_with(".json") {
            Self::Json
        } else if path.ends_with(".safetensors") {
            Self::Safetensors
        } else {
            Self::Binary
        }
    }
}

/// Raw JSON tokens that serde_json cannot hold in a `Value`: spliced into the
/// text after serialisation.
const RAW_NUMBERS: &[&str] = &[
    "NaN",
    "Infinity",
    "-Infinity",
    "1e309",
    "-1e309",
    "-0",
    "-0.0",
    "1e-400",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "-9223372036854775809",
    "4.9e-324",
    "0.0000001",
];

/// Strings that a loader might take for a dtype, a path or a name.
const STRINGS: &[&str] = &[
    "",
    "F8_E4M3",
    "F8_E5M2",
    "I64",
    "I8",
    "U8",
    "BOOL",
    "F64",
    "F16",
    "BF16",
    "F32",
    "C64",
    "../../etc/passwd",
    "/abs",
    "/etc/passwd",
    "a/../../b",
    "..",
    ".",
    "C:\\x",
    "\\\\server\\share",
    "sub/dir.safetensors",
    "nul\u{0}byte",
    "model.safetensors",
    "diffusion_pytorch_model.safetensors",
    "-inf",
    "nan",
    "inf",
    "1e400",
    "gated-gelu",
    "squaredcos_cap_v2",
    "fp16",
    "\u{2581}",
    "<pad>",
    "<extra_id_0>",
];

fn interesting_value(rng: &mut Rng, raw: &mut Vec<&'static str>) -> serde_json::Value {
    use serde_json::{Value, json};
    match rng.below(12) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(*rng.pick(&[
            1u64,
            2,
            3,
            7,
            255,
            256,
            65535,
            65536,
            1 << 31,
            1 << 32,
            1 << 40,
            1 << 53,
            1 << 62,
            1 << 63,
            u64::MAX,
        ])),
        3 => json!(*rng.pick(&[i64::MIN, -(1i64 << 31), -2, -1000])),
        4 => json!(*rng.pick(&[0.5, 1e-9, 1e-30, 1e300, -1e300, 1.0000001, 0.9999999, 2.5])),
        5 => {
            let token = *rng.pick(RAW_NUMBERS);
            raw.push(token);
            Value::String(format!("__FUZZ_RAW_{}__", raw.len() - 1))
        }
        6 => Value::String(rng.pick(STRINGS).to_string()),
        7 => Value::Null,
        8 => Value::Bool(rng.chance(2)),
        9 => json!([]),
        10 => json!({}),
        _ => Value::String("A".repeat(1 + rng.below(20_000))),
    }
}

/// Paths to every node of `v` (keys and indices), the root excluded.
fn node_paths(v: &serde_json::Value, prefix: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, child) in o {
                prefix.push(PathStep::Key(k.clone()));
                out.push(prefix.clone());
                node_paths(child, prefix, out);
                prefix.pop();
            }
        }
        serde_json::Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                prefix.push(PathStep::Index(i));
                out.push(prefix.clone());
                node_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn node_mut<'a>(v: &'a mut serde_json::Value, path: &[PathStep]) -> &'a mut serde_json::Value {
    let mut v = v;
    for step in path {
        v = match step {
            PathStep::Key(k) => v.get_mut(k.as_str()).expect("path from node_paths"),
            PathStep::Index(i) => v.get_mut(*i).expect("path from node_paths"),
        };
    }
    v
}

fn path_text(path: &[PathStep]) -> String {
    path.iter()
        .map(|s| match s {
            PathStep::Key(k) => format!(".{}", k.chars().take(40).collect::<String>()),
            PathStep::Index(i) => format!("[{i}]"),
        })
        .collect()
}

/// One structure-aware mutation of a JSON value; returns its description.
/// `focus` names keys to prefer (e.g. `shape`, `dtype`, `data_offsets`).
fn mutate_json_value(
    rng: &mut Rng,
    root: &mut serde_json::Value,
    raw: &mut Vec<&'static str>,
    focus: &[&str],
) -> String {
    use serde_json::Value;
    let mut paths = Vec::new();
    node_paths(root, &mut Vec::new(), &mut paths);
    if paths.is_empty() {
        *root = interesting_value(rng, raw);
        return "replace root".into();
    }
    // Prefer nodes under a focus key half the time.
    let focused: Vec<&Vec<PathStep>> = paths
        .iter()
        .filter(|p| {
            p.iter()
                .any(|s| matches!(s, PathStep::Key(k) if focus.contains(&k.as_str())))
        })
        .collect();
    let path = if !focused.is_empty() && rng.chance(2) {
        (*rng.pick(&focused)).clone()
    } else {
        rng.pick(&paths).clone()
    };
    let where_ = path_text(&path);
    match rng.below(10) {
        // Replace the node.
        0..=4 => {
            let new = interesting_value(rng, raw);
            *node_mut(root, &path) = new;
            format!("set {where_}")
        }
        // Nudge a number.
        5 => {
            let node = node_mut(root, &path);
            if let Some(n) = node.as_i64() {
                let d = *rng.pick(&[-1i64, 1, -2, 2, 1000, -1000]);
                *node = Value::from(n.saturating_add(d));
                format!("nudge {where_}")
            } else if let Some(n) = node.as_f64() {
                *node = serde_json::json!(n * *rng.pick(&[-1.0, 2.0, 0.5, 1e10, 0.0]));
                format!("scale {where_}")
            } else {
                *node = interesting_value(rng, raw);
                format!("set {where_}")
            }
        }
        // Remove the node from its parent.
        6 => {
            let (last, parent) = path.split_last().expect("non-empty");
            let parent = node_mut(root, parent);
            match (last, parent) {
                (PathStep::Key(k), Value::Object(o)) => {
                    o.remove(k);
                }
                (PathStep::Index(i), Value::Array(a)) => {
                    a.remove(*i);
                }
                _ => {}
            }
            format!("remove {where_}")
        }
        // Rename a key / duplicate an array element.
        7 => {
            let (last, parent_path) = path.split_last().expect("non-empty");
            let parent = node_mut(root, parent_path);
            match (last, parent) {
                (PathStep::Key(k), Value::Object(o)) => {
                    if let Some(v) = o.remove(k) {
                        let new_key = match rng.below(3) {
                            0 => format!("{k}_"),
                            1 => rng.pick(STRINGS).to_string(),
                            _ => k.to_uppercase(),
                        };
                        o.insert(new_key, v);
                    }
                    format!("rename key {where_}")
                }
                (PathStep::Index(i), Value::Array(a)) => {
                    let copies = *rng.pick(&[1usize, 2, 100]);
                    let v = a[*i].clone();
                    for _ in 0..copies {
                        a.insert(*i, v.clone());
                    }
                    format!("repeat {where_} x{copies}")
                }
                _ => "noop".into(),
            }
        }
        // Swap with another node's value.
        8 => {
            let other = rng.pick(&paths).clone();
            let a = node_mut(root, &other).clone();
            let b = node_mut(root, &path).clone();
            // The paths may nest; set one then the other only if both still resolve.
            *node_mut(root, &path) = a;
            if let Some(o) = try_node_mut(root, &other) {
                *o = b;
            }
            format!("swap {where_} <-> {}", path_text(&other))
        }
        // Wrap in an array / object.
        _ => {
            let node = node_mut(root, &path);
            let inner = node.take();
            *node = if rng.chance(2) {
                Value::Array(vec![inner])
            } else {
                serde_json::json!({ "x": inner })
            };
            format!("wrap {where_}")
        }
    }
}

fn try_node_mut<'a>(
    v: &'a mut serde_json::Value,
    path: &[PathStep],
) -> Option<&'a mut serde_json::Value> {
    let mut v = v;
    for step in path {
        v = match step {
            PathStep::Key(k) => v.get_mut(k.as_str())?,
            PathStep::Index(i) => v.get_mut(*i)?,
        };
    }
    Some(v)
}

/// Serialises `v`, then splices in the raw tokens its placeholders stand for.
fn json_text(v: &serde_json::Value, raw: &[&str], pretty: bool) -> Vec<u8> {
    let mut text = if pretty {
        serde_json::to_string_pretty(v)
    } else {
        serde_json::to_string(v)
    }
    .expect("a Value serialises");
    for (i, token) in raw.iter().enumerate() {
        text = text.replace(&format!("\"__FUZZ_RAW_{i}__\""), token);
    }
    text.into_bytes()
}

/// A structure-aware JSON mutant, or `None` if `bytes` is not JSON.
fn mutate_json(rng: &mut Rng, bytes: &[u8], focus: &[&str]) -> Option<(Vec<u8>, String)> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let mut raw = Vec::new();
    let rounds = 1 + rng.below(3);
    let mut what = Vec::new();
    for _ in 0..rounds {
        what.push(mutate_json_value(rng, &mut v, &mut raw, focus));
    }
    Some((
        json_text(&v, &raw, rng.chance(2)),
        format!("json: {}", what.join("; ")),
    ))
}

/// Interesting byte strings for the byte-level overwrite.
fn interesting_bytes(rng: &mut Rng) -> Vec<u8> {
    match rng.below(9) {
        0 => vec![0; 1 + rng.below(8)],
        1 => vec![0xFF; 1 + rng.below(8)],
        2 => u64::MAX.to_le_bytes().to_vec(),
        3 => (u32::MAX as u64).to_le_bytes().to_vec(),
        4 => (1u64 << 63).to_le_bytes().to_vec(),
        5 => (rng.next_u64() >> rng.below(64)).to_le_bytes().to_vec(),
        6 => {
            let tokens: [&[u8]; 8] = [
                b"NaN",
                b"1e309",
                b"-",
                b"\"",
                b"{",
                b"]",
                b"\\u0000",
                b"\xff\xfe",
            ];
            rng.pick(&tokens).to_vec()
        }
        7 => vec![0x80; 1 + rng.below(10)], // unterminated varints
        _ => vec![0x7F],
    }
}

/// One byte-level mutation.
fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>) -> String {
    let len = bytes.len();
    let at = |rng: &mut Rng| if len == 0 { 0 } else { rng.below(len) };
    match rng.below(8) {
        0 => {
            let cut = at(rng);
            bytes.truncate(cut);
            format!("truncate at {cut}")
        }
        1 => {
            let n = 1 + rng.below(8);
            for _ in 0..n {
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= 1 << rng.below(8);
                }
            }
            format!("flip {n} bits")
        }
        2 => {
            let n = 1 + rng.below(4);
            for _ in 0..n {
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next_u64() as u8;
                }
            }
            format!("set {n} random bytes")
        }
        3 => {
            let i = at(rng);
            let n = 1 + rng.below(64);
            let insert: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            bytes.splice(i..i, insert);
            format!("insert {n} bytes at {i}")
        }
        4 => {
            let i = at(rng);
            let n = (1 + rng.below(64)).min(len - i.min(len));
            bytes.drain(i..i + n);
            format!("delete {n} bytes at {i}")
        }
        5 => {
            let i = at(rng);
            let v = interesting_bytes(rng);
            for (k, b) in v.iter().enumerate() {
                if let Some(slot) = bytes.get_mut(i + k) {
                    *slot = *b;
                }
            }
            format!("overwrite {} interesting bytes at {i}", v.len())
        }
        6 => {
            // Duplicate a chunk somewhere else.
            if len == 0 {
                return "noop".into();
            }
            let i = at(rng);
            let n = (1 + rng.below(256)).min(len - i);
            let chunk = bytes[i..i + n].to_vec();
            let j = at(rng);
            bytes.splice(j..j, chunk);
            format!("copy {n} bytes from {i} to {j}")
        }
        _ => {
            // Append garbage.
            let n = 1 + rng.below(32);
            bytes.extend((0..n).map(|_| rng.next_u64() as u8));
            format!("append {n} bytes")
        }
    }
}

/// Keys of a safetensors header that the structure-aware mutations prefer.
const SAFETENSORS_FOCUS: &[&str] = &["shape", "dtype", "data_offsets", "__metadata__"];

/// A safetensors mutant: the JSON header mutated structurally (the 8-byte
/// length kept consistent, or not), the data's floats set to NaN / Inf, or
/// the header length itself.
fn mutate_safetensors(rng: &mut Rng, bytes: &[u8]) -> Option<(Vec<u8>, String)> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header = bytes.get(8..8 + n)?;
    let data = &bytes[8 + n..];
    match rng.below(5) {
        0..=2 => {
            let (new_header, what) = mutate_json(rng, header, SAFETENSORS_FOCUS)?;
            let mut out = Vec::with_capacity(8 + new_header.len() + data.len());
            let consistent = !rng.chance(8);
            let declared = if consistent {
                new_header.len() as u64
            } else {
                new_header.len() as u64 ^ (1 << rng.below(40))
            };
            out.extend(declared.to_le_bytes());
            out.extend(&new_header);
            out.extend(data);
            let tail = if consistent { "" } else { " (length off)" };
            Some((out, format!("safetensors header {what}{tail}")))
        }
        3 => {
            // NaN / Inf / subnormal values over part of the data.
            let mut out = bytes.to_vec();
            if data.is_empty() {
                return None;
            }
            let patterns: [Vec<u8>; 7] = [
                0x7FC0_0000u32.to_le_bytes().to_vec(),
                0x7F80_0000u32.to_le_bytes().to_vec(),
                0xFF80_0000u32.to_le_bytes().to_vec(),
                0x0000_0001u32.to_le_bytes().to_vec(),
                0x7E00u16.to_le_bytes().to_vec(),
                0x7C00u16.to_le_bytes().to_vec(),
                0x7FC0u16.to_le_bytes().to_vec(),
            ];
            let pattern = rng.pick(&patterns).clone();
            let start = 8 + n + rng.below(data.len());
            let count = 1 + rng.below(data.len() / pattern.len() + 1);
            let mut i = start;
            for _ in 0..count {
                for &b in &pattern {
                    if let Some(slot) = out.get_mut(i) {
                        *slot = b;
                    }
                    i += 1;
                }
            }
            Some((out, format!("nan/inf pattern x{count} at {start}")))
        }
        _ => {
            let mut out = bytes.to_vec();
            let v = *rng.pick(&[
                0u64,
                1,
                7,
                n as u64 - 1,
                n as u64 + 1,
                bytes.len() as u64 - 8,
                bytes.len() as u64,
                100_000_000,
                100_000_001,
                u64::MAX,
                u64::MAX - 7,
                1 << 32,
            ]);
            out[..8].copy_from_slice(&v.to_le_bytes());
            Some((out, format!("header length {v}")))
        }
    }
}

/// One mutant of `bytes`, a file of `kind`, and what was done.
pub fn mutate(rng: &mut Rng, bytes: &[u8], kind: FileKind) -> (Vec<u8>, String) {
    let structured = match kind {
        FileKind::Json if rng.below(3) != 0 => mutate_json(rng, bytes, &[]),
        FileKind::Safetensors if rng.below(3) != 0 => mutate_safetensors(rng, bytes),
        _ => None,
    };
    if let Some(m) = structured {
        return m;
    }
    let mut out = bytes.to_vec();
    let rounds = 1 + rng.below(3);
    let what: Vec<String> = (0..rounds).map(|_| mutate_bytes(rng, &mut out)).collect();
    (out, format!("bytes: {}", what.join("; ")))
}

// ---------------------------------------------------------------------------
// The harness.

/// What a loader call returned, as the harness sees it.
type LoadFn = dyn Fn(&Path) -> Result<(), Box<dyn std::error::Error>> + Send + Sync;

/// One loader, its valid files, and what it may name in its errors.
pub struct Target {
    /// Short name: the corpus folder and the name in messages.
    pub name: &'static str,
    /// A directory of valid files; copied to a scratch directory first.
    pub fixture: PathBuf,
    /// Files (relative to `fixture`) that cases mutate, one per case.
    pub files: Vec<String>,
    /// Calls the loader on the scratch directory.
    pub load: Arc<LoadFn>,
    /// Fresh random cases in the default (CI) mode.
    pub ci_cases: u64,
    /// Extra acceptance for errors that legitimately name something other
    /// than the mutated file (documented where a target sets it).
    pub accept: Option<fn(&str) -> bool>,
    /// Where the corpus lives: `<crate>/tests/fuzz_corpus`.
    pub corpus_root: PathBuf,
}

impl Target {
    pub fn new(
        name: &'static str,
        fixture: impl Into<PathBuf>,
        files: &[&str],
        corpus_root: impl Into<PathBuf>,
        load: impl Fn(&Path) -> Result<(), Box<dyn std::error::Error>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            fixture: fixture.into(),
            files: files.iter().map(|s| s.to_string()).collect(),
            load: Arc::new(load),
            ci_cases: 200,
            accept: None,
            corpus_root: corpus_root.into(),
        }
    }

    pub fn ci_cases(mut self, n: u64) -> Self {
        self.ci_cases = n;
        self
    }

    pub fn accept(mut self, f: fn(&str) -> bool) -> Self {
        self.accept = Some(f);
        self
    }
}

/// The error and its `source()` chain, joined.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(" <- ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[derive(Debug)]
enum Outcome {
    Ok,
    Err(String),
    Panic(String),
    Hang,
}

struct CaseResult {
    outcome: Outcome,
    peak_bytes: isize,
    elapsed: Duration,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".into()
    }
}

thread_local! {
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs, once, a panic hook that records the location of a panic on a
/// case thread instead of printing it (the harness reports it).
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_case = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("fuzz-case"));
            if on_case {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                PANIC_AT.with(|p| *p.borrow_mut() = Some(at));
            } else {
                default(info);
            }
        }));
    });
}

fn run_case(load: &Arc<LoadFn>, dir: &Path, limit: Duration, label: &str) -> CaseResult {
    let (tx, rx) = std::sync::mpsc::channel();
    let load = load.clone();
    let dir = dir.to_path_buf();
    let label = label.as_bytes().to_vec();
    let start = Instant::now();
    std::thread::Builder::new()
        .name("fuzz-case".into())
        .stack_size(8 << 20)
        .spawn(move || {
            CASE.with(|c| *c.borrow_mut() = Some(label));
            let base = reset_peak();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                load(&dir).map_err(|e| chain(&*e))
            }));
            let peak = peak() - base;
            let outcome = match r {
                Ok(Ok(())) => Outcome::Ok,
                Ok(Err(msg)) => Outcome::Err(msg),
                Err(p) => {
                    let at = PANIC_AT.with(|a| a.borrow_mut().take()).unwrap_or_default();
                    Outcome::Panic(format!("{} at {at}", panic_message(&*p)))
                }
            };
            let _ = tx.send((outcome, peak));
        })
        .expect("spawn a case thread");
    match rx.recv_timeout(limit) {
        Ok((outcome, peak_bytes)) => CaseResult {
            outcome,
            peak_bytes,
            elapsed: start.elapsed(),
        },
        // The thread is left running: a hang is reported and the run stops.
        Err(_) => CaseResult {
            outcome: Outcome::Hang,
            peak_bytes: 0,
            elapsed: start.elapsed(),
        },
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
    {
        let entry = entry.expect("dir entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), dst.display()));
        }
    }
}

fn dir_size(dir: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                n += dir_size(&p);
            } else {
                n += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    n
}

/// A corpus entry's file name: content hash, then the relative path of the
/// file it replaces with `/` written `%2F`.
fn corpus_name(rel: &str, bytes: &[u8]) -> String {
    format!("{:016x}--{}", fnv(bytes), rel.replace('/', "%2F"))
}

fn corpus_entries(dir: &Path) -> Vec<(String, Vec<u8>, String)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut names: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    names.sort();
    for p in names {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let Some((_, rel)) = name.split_once("--") else {
            continue;
        };
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        out.push((rel.replace("%2F", "/"), bytes, name));
    }
    out
}

/// A finding: what went wrong, for which input.
struct Finding {
    key: String,
    report: String,
    rel: String,
    bytes: Vec<u8>,
}

/// The scratch directory and digits removed and the message cut short, so
/// that one bug found with many sizes or values counts once.
fn finding_key(kind: &str, msg: &str, scratch: &Path) -> String {
    let short: String = msg
        .replace(scratch.to_str().unwrap_or("\u{0}"), "<dir>")
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .take(if kind == "unnamed error" { 80 } else { 110 })
        .collect();
    format!("{kind}: {short}")
}

/// The bound on a case's peak allocation: max(64 MiB, 8 x the files' size).
pub fn alloc_bound(files_size: u64) -> isize {
    (64u64 << 20).max(8 * files_size) as isize
}

/// Runs `target` in the mode the environment asks for; panics listing the
/// findings if there are any.
pub fn run(target: Target) {
    quiet_panics();
    let long_secs: Option<u64> = std::env::var("IMAGEN_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok());
    let seed: u64 = std::env::var("IMAGEN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            if long_secs.is_some() {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            } else {
                fnv(target.name.as_bytes())
            }
        });

    let scratch = std::env::temp_dir().join(format!(
        "imagen-fuzz-{}-{}",
        target.name,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    copy_dir(&target.fixture, &scratch);
    let originals: Vec<(String, Vec<u8>)> = target
        .files
        .iter()
        .map(|rel| {
            let p = scratch.join(rel);
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (rel.clone(), bytes)
        })
        .collect();
    let size = dir_size(&scratch);
    let bound = alloc_bound(size);

    // The valid files load, and set the time limit.
    let base = run_case(
        &target.load,
        &scratch,
        Duration::from_secs(600),
        "valid fixture",
    );
    match &base.outcome {
        Outcome::Ok => {}
        other => panic!(
            "{}: the valid fixture does not load: {other:?}",
            target.name
        ),
    }
    let limit = Duration::from_secs(5).max(base.elapsed * 20);

    let corpus_dir = target.corpus_root.join(target.name);
    let mut findings: Vec<Finding> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut tally: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut cases = 0u64;
    let start = Instant::now();

    let mut check = |rel: &str,
                     bytes: &[u8],
                     label: String,
                     findings: &mut Vec<Finding>,
                     tally: &mut BTreeMap<&'static str, u64>,
                     errors: &mut BTreeMap<String, u64>|
     -> bool {
        let path = scratch.join(rel);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        let r = run_case(&target.load, &scratch, limit, &label);
        let file_name = Path::new(rel)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(rel)
            .to_string();
        let problem = match &r.outcome {
            Outcome::Ok => {
                *tally.entry("ok").or_default() += 1;
                None
            }
            Outcome::Err(msg) => {
                *tally.entry("err").or_default() += 1;
                let head: String = msg
                    .replace(scratch.to_str().unwrap_or("\u{0}"), "<dir>")
                    .chars()
                    .filter(|c| !c.is_ascii_digit())
                    .take(100)
                    .collect();
                *errors.entry(head).or_default() += 1;
                let named = msg.contains(&file_name) || target.accept.is_some_and(|f| f(msg));
                (!named).then(|| {
                    (
                        "unnamed error",
                        format!("error does not name `{file_name}`: {msg}"),
                    )
                })
            }
            Outcome::Panic(msg) => Some(("panic", msg.clone())),
            Outcome::Hang => Some(("hang", format!("no result after {limit:?}"))),
        };
        let problem = problem.or_else(|| {
            (r.peak_bytes > bound).then(|| {
                (
                    "over-allocation",
                    format!(
                        "peak {} bytes > bound {bound} (files {size} bytes)",
                        r.peak_bytes
                    ),
                )
            })
        });
        let hang = matches!(r.outcome, Outcome::Hang);
        if let Some((kind, msg)) = problem {
            *tally.entry("finding").or_default() += 1;
            let key = finding_key(kind, &msg, &scratch);
            if seen.insert(key.clone()) {
                findings.push(Finding {
                    key,
                    report: format!("{kind} in {label}: {msg}"),
                    rel: rel.to_string(),
                    bytes: bytes.to_vec(),
                });
            }
        }
        // Restore the valid file for the next case (unless the case thread
        // still holds the directory: a hang ends the run).
        if !hang {
            let original = &originals
                .iter()
                .find(|(r, _)| r == rel)
                .expect("known file")
                .1;
            std::fs::write(&path, original).expect("restore the fixture");
        }
        hang
    };

    // 1. The saved corpus, forever.
    let mut hung = false;
    for (rel, bytes, name) in corpus_entries(&corpus_dir) {
        if !originals.iter().any(|(r, _)| *r == rel) {
            panic!("corpus entry {name} replaces `{rel}`, which the target does not mutate");
        }
        cases += 1;
        let label = format!("{} corpus entry {name}", target.name);
        if check(&rel, &bytes, label, &mut findings, &mut tally, &mut errors) {
            hung = true;
            break;
        }
    }
    // 2. Fresh random cases; `IMAGEN_FUZZ_CASE=i` (with the seed) runs only
    // case `i`, keeping its input first (a case that aborts the process
    // leaves it behind).
    let only: Option<u64> = std::env::var("IMAGEN_FUZZ_CASE")
        .ok()
        .and_then(|s| s.parse().ok());
    let deadline = long_secs.map(|s| start + Duration::from_secs(s));
    let mut i = only.unwrap_or(0);
    while !hung {
        match (deadline, only) {
            (_, Some(o)) if i > o => break,
            (Some(d), None) if Instant::now() >= d => break,
            (None, None) if i >= target.ci_cases => break,
            _ => {}
        }
        let cs = case_seed(seed, i);
        let mut rng = Rng::new(cs);
        let (rel, original) = rng.pick(&originals).clone();
        let (bytes, what) = mutate(&mut rng, &original, FileKind::of(&rel));
        let label = format!(
            "{} seed {seed} case {i} (IMAGEN_FUZZ_SEED={seed}): {rel}: {what}",
            target.name
        );
        if only.is_some() {
            let kept = std::env::temp_dir()
                .join("imagen-fuzz-findings")
                .join(target.name);
            let _ = std::fs::create_dir_all(&kept);
            let p = kept.join(corpus_name(&rel, &bytes));
            let _ = std::fs::write(&p, &bytes);
            println!("{label}\n  input: {}", p.display());
        }
        cases += 1;
        i += 1;
        if check(&rel, &bytes, label, &mut findings, &mut tally, &mut errors) {
            hung = true;
        }
        if long_secs.is_some() && findings.len() > 50 {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if long_secs.is_some() {
        for f in &findings {
            std::fs::create_dir_all(&corpus_dir).expect("create the corpus dir");
            let p = corpus_dir.join(corpus_name(&f.rel, &f.bytes));
            std::fs::write(&p, &f.bytes).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        }
        let top: Vec<String> = {
            let mut v: Vec<(&String, &u64)> = errors.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1));
            v.iter()
                .take(8)
                .map(|(k, n)| format!("{n} x {k}"))
                .collect()
        };
        println!(
            "FUZZ-SUMMARY target={} seed={seed} cases={cases} secs={secs:.0} rate={:.1}/s tally={tally:?} findings={} limit={limit:?} bound={bound} files={size}\n  top errors: {}",
            target.name,
            cases as f64 / secs,
            findings.len(),
            top.join("\n              "),
        );
    }
    if !hung {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    if !findings.is_empty() {
        // The inputs, to rerun or to look at (the long mode also keeps them
        // in the corpus).
        let kept = std::env::temp_dir()
            .join("imagen-fuzz-findings")
            .join(target.name);
        let _ = std::fs::create_dir_all(&kept);
        let list: Vec<String> = findings
            .iter()
            .map(|f| {
                let p = kept.join(corpus_name(&f.rel, &f.bytes));
                let _ = std::fs::write(&p, &f.bytes);
                format!(
                    "- [{}] {} (input: {})",
                    f.key.split(':').next().unwrap_or(""),
                    f.report,
                    p.display()
                )
            })
            .collect();
        panic!(
            "{}: {} finding(s) in {cases} cases (seed {seed}):\n{}",
            target.name,
            findings.len(),
            list.join("\n")
        );
    }
}

/// Every `fuzz` test binary counts its allocations.
#[global_allocator]
static COUNTING: Counting = Counting;
