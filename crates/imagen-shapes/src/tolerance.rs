//! How strictly a size, region or relation predicate is judged.

use serde::{Deserialize, Serialize};

/// How strictly a size, region or relation predicate is judged.
///
/// Captions are only written when the `Strict` predicate holds, so they are
/// true with a clear margin; the scorer judges measured images with the
/// `Lenient` one, so a roughly right layout passes. Every strict predicate
/// implies the lenient one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tolerance {
    /// With a clear margin: what captions and realised scenes guarantee.
    Strict,
    /// Roughly right: what the scorer asks of an image.
    Lenient,
}
