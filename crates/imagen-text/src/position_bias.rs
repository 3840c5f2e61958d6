//! T5's relative position bias: bucketed key-minus-query distances, one learned
//! scalar per bucket and head, computed once and shared by every layer.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// The bucket of relative position `relative` (`key - query`) for a
/// bidirectional encoder, exactly as transformers'
/// `T5Attention._relative_position_bucket` computes it, including its f32
/// logarithm (so that positions on a bucket boundary land where PyTorch puts them).
pub fn relative_position_bucket(relative: i64, num_buckets: usize, max_distance: usize) -> i64 {
    let half = (num_buckets / 2) as i64;
    let offset = if relative > 0 { half } else { 0 };
    let n = relative.abs();
    let max_exact = half / 2;
    if n < max_exact {
        return offset + n;
    }
    let log_ratio = (n as f32 / max_exact as f32).ln();
    let scale = (max_distance as f64 / max_exact as f64).ln() as f32;
    let large = max_exact + (log_ratio / scale * (half - max_exact) as f32) as i64;
    offset + large.min(half - 1)
}

/// The learned table `[num_buckets, num_heads]` and the bucketing rule.
#[derive(Module, Debug)]
pub struct RelativePositionBias<B: Backend> {
    /// Transformers' `relative_attention_bias`: one embedding row per bucket.
    pub relative_attention_bias: Embedding<B>,
    num_buckets: usize,
    max_distance: usize,
}

impl<B: Backend> RelativePositionBias<B> {
    /// A randomly initialised table.
    pub fn new(
        num_buckets: usize,
        max_distance: usize,
        num_heads: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            relative_attention_bias: EmbeddingConfig::new(num_buckets, num_heads).init(device),
            num_buckets,
            max_distance,
        }
    }

    /// # Shapes
    /// Returns `[1, num_heads, seq, seq]`: entry `(h, q, k)` is the bias head
    /// `h` adds to the score of query `q` for key `k`.
    pub fn forward(&self, seq: usize, device: &B::Device) -> Tensor<B, 4> {
        let mut table = Vec::with_capacity(2 * seq);
        for rel in -(seq as i64 - 1)..seq as i64 {
            table.push(relative_position_bucket(
                rel,
                self.num_buckets,
                self.max_distance,
            ));
        }
        let mut ids = Vec::with_capacity(seq * seq);
        for q in 0..seq {
            for k in 0..seq {
                ids.push(table[k + seq - 1 - q]);
            }
        }
        let ids = TensorData::new(ids, [1, seq * seq]).convert::<B::IntElem>();
        let ids = Tensor::<B, 2, Int>::from_data(ids, device);
        let heads = self.relative_attention_bias.weight.dims()[1];
        self.relative_attention_bias
            .forward(ids)
            .reshape([seq, seq, heads])
            .permute([2, 0, 1])
            .unsqueeze_dim(0)
    }
}

#[cfg(test)]
mod tests {
    use super::relative_position_bucket as bucket;

    #[test]
    fn small_distances_are_exact() {
        assert_eq!(bucket(0, 32, 128), 0);
        assert_eq!(bucket(-3, 32, 128), 3);
        assert_eq!(bucket(3, 32, 128), 19);
    }

    #[test]
    fn far_distances_share_the_last_bucket() {
        assert_eq!(bucket(-1000, 32, 128), 15);
        assert_eq!(bucket(1000, 32, 128), 31);
    }
}
