//! Cache keys: the 64-bit FNV-1a hash of a caption's UTF-8 bytes.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a (64-bit) of `caption`'s UTF-8 bytes: stable across platforms,
/// Rust versions and runs, unlike `std`'s hasher.
///
/// ```
/// assert_eq!(imagen_train::data::caption_hash(""), 0xcbf2_9ce4_8422_2325);
/// ```
pub fn caption_hash(caption: &str) -> u64 {
    fnv1a(caption.as_bytes())
}

/// FNV-1a (64-bit) of `bytes`.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The cache key of `caption`: [`caption_hash`] as 16 lowercase hex digits.
///
/// ```
/// assert_eq!(imagen_train::data::caption_key("a"), "af63dc4c8601ec8c");
/// ```
pub fn caption_key(caption: &str) -> String {
    format!("{:016x}", caption_hash(caption))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_fnv1a_vectors() {
        assert_eq!(caption_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(caption_hash("foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(caption_key(""), "cbf29ce484222325");
        assert_eq!(caption_key("x").len(), 16);
    }
}
