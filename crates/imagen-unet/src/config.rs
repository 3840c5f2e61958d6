//! `UNetConfig`: a diffusers `UNet2DConditionModel` `config.json`, as it is.

use std::path::Path;

use serde::{Deserialize, Serialize};

use burn::tensor::backend::Backend;

use crate::{UNet, UNetError};

/// A value diffusers allows either once for all blocks or once per block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerBlock<T> {
    /// The same value for every block.
    All(T),
    /// One value per down block (up blocks use them reversed).
    Each(Vec<T>),
}

impl<T: Clone> PerBlock<T> {
    /// The value for down block `i` of `n`.
    pub fn get(&self, i: usize) -> T {
        match self {
            Self::All(v) => v.clone(),
            Self::Each(v) => v[i].clone(),
        }
    }

    pub(crate) fn len_ok(&self, n: usize) -> bool {
        match self {
            Self::All(_) => true,
            Self::Each(v) => v.len() == n,
        }
    }
}

/// Down-path block types of the DeepFloyd IF layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownBlockType {
    /// Residual blocks, then a residual block with `down=True`.
    ResnetDownsampleBlock2D,
    /// Residual blocks each followed by attention with text keys/values
    /// concatenated into the self-attention, then a downsampling residual block.
    SimpleCrossAttnDownBlock2D,
    /// Imagen's Efficient U-Net DBlock (not a diffusers type): a stride-2
    /// convolution, then the residual blocks.
    EfficientDownBlock2D,
    /// A DBlock ending in one attention (self + text, or text only with
    /// `only_cross_attention`).
    EfficientCrossAttnDownBlock2D,
}

/// Up-path block types of the DeepFloyd IF layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpBlockType {
    /// Residual blocks on concatenated skips, then an upsampling residual block.
    ResnetUpsampleBlock2D,
    /// The same with "simple cross attention" after each residual block.
    SimpleCrossAttnUpBlock2D,
    /// Imagen's Efficient U-Net UBlock (not a diffusers type): `[h; skip]`,
    /// residual blocks, then nearest x2 and a 3x3 convolution.
    EfficientUpBlock2D,
    /// A UBlock with one attention after its residual blocks.
    EfficientCrossAttnUpBlock2D,
}

impl DownBlockType {
    /// Whether the block has attention.
    pub fn attends(self) -> bool {
        matches!(
            self,
            Self::SimpleCrossAttnDownBlock2D | Self::EfficientCrossAttnDownBlock2D
        )
    }

    /// Whether this is an Efficient U-Net DBlock.
    pub fn is_efficient(self) -> bool {
        matches!(
            self,
            Self::EfficientDownBlock2D | Self::EfficientCrossAttnDownBlock2D
        )
    }
}

impl UpBlockType {
    /// Whether the block has attention.
    pub fn attends(self) -> bool {
        matches!(
            self,
            Self::SimpleCrossAttnUpBlock2D | Self::EfficientCrossAttnUpBlock2D
        )
    }

    /// Whether this is an Efficient U-Net UBlock.
    pub fn is_efficient(self) -> bool {
        matches!(
            self,
            Self::EfficientUpBlock2D | Self::EfficientCrossAttnUpBlock2D
        )
    }
}

/// Middle block types of the DeepFloyd IF layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MidBlockType {
    /// Residual block, then (attention, residual block) pairs.
    UNetMidBlock2DSimpleCrossAttn,
}

/// The keys of a diffusers `UNet2DConditionModel` `config.json` that the IF
/// layout uses, with diffusers' defaults. Block types and values outside that
/// layout are rejected by [`UNetConfig::validate`] with the key's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNetConfig {
    /// Input image size (informative).
    #[serde(default)]
    pub sample_size: Option<usize>,
    /// Input channels (3, or 6 with a low-resolution image concatenated).
    #[serde(default = "d::four")]
    pub in_channels: usize,
    /// Output channels (3, or 6 with learned variance).
    #[serde(default = "d::four")]
    pub out_channels: usize,
    /// Map inputs from [0, 1] to [-1, 1] first (must be false).
    #[serde(default)]
    pub center_input_sample: bool,
    /// Timestep embedding: cos first, then sin.
    #[serde(default = "d::yes")]
    pub flip_sin_to_cos: bool,
    /// Timestep embedding frequency shift.
    #[serde(default)]
    pub freq_shift: usize,
    /// Down-path block types.
    pub down_block_types: Vec<DownBlockType>,
    /// Middle block type.
    #[serde(default = "d::mid")]
    pub mid_block_type: Option<MidBlockType>,
    /// Up-path block types.
    pub up_block_types: Vec<UpBlockType>,
    /// Attention without self-attention (text keys/values only).
    #[serde(default = "d::no_per_block")]
    pub only_cross_attention: PerBlock<bool>,
    /// The middle block's `only_cross_attention`; by default the global one
    /// when that is a single bool, else false (as diffusers).
    #[serde(default)]
    pub mid_block_only_cross_attention: Option<bool>,
    /// Channels of each resolution level.
    pub block_out_channels: Vec<usize>,
    /// Residual blocks per down block (up blocks get one more).
    #[serde(default = "d::two_per_block")]
    pub layers_per_block: PerBlock<usize>,
    /// Padding of downsampling convolutions.
    #[serde(default = "d::one")]
    pub downsample_padding: usize,
    /// Middle block output divisor.
    #[serde(default = "d::onef")]
    pub mid_block_scale_factor: f64,
    /// Dropout (inference: ignored).
    #[serde(default)]
    pub dropout: f64,
    /// Activation of residual blocks and time embedding (`silu`, `gelu`, `mish`).
    #[serde(default = "d::silu")]
    pub act_fn: String,
    /// GroupNorm groups.
    #[serde(default = "d::groups")]
    pub norm_num_groups: Option<usize>,
    /// GroupNorm epsilon.
    #[serde(default = "d::eps")]
    pub norm_eps: f64,
    /// Width of the text states attention reads.
    #[serde(default = "d::cross_dim")]
    pub cross_attention_dim: PerBlock<usize>,
    /// Width of the raw text states, projected to `cross_attention_dim`.
    #[serde(default)]
    pub encoder_hid_dim: Option<usize>,
    /// How text states are projected (`"text_proj"`).
    #[serde(default)]
    pub encoder_hid_dim_type: Option<String>,
    /// Channels per attention head.
    #[serde(default = "d::head_dim")]
    pub attention_head_dim: PerBlock<usize>,
    /// Must be null (diffusers refuses it too; `attention_head_dim` is used).
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock<usize>>,
    /// Conditioning on a second embedding (`"timestep"`: IF stage II's noise level).
    #[serde(default)]
    pub class_embed_type: Option<String>,
    /// Extra embedding added to the time embedding (`"text"`: pooled text).
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    /// Heads of the text attention pooling.
    #[serde(default = "d::sixty_four")]
    pub addition_embed_type_num_heads: usize,
    /// Compute attention in f32 (no effect in f32).
    #[serde(default)]
    pub upcast_attention: bool,
    /// `"default"` or `"scale_shift"` (FiLM-like time conditioning).
    #[serde(default = "d::default_str")]
    pub resnet_time_scale_shift: String,
    /// Skip the activation before each residual block's time projection.
    #[serde(default)]
    pub resnet_skip_time_act: bool,
    /// Residual block output divisor (IF-II: sqrt 2).
    #[serde(default = "d::onef")]
    pub resnet_out_scale_factor: f64,
    /// Only `"positional"`.
    #[serde(default = "d::positional")]
    pub time_embedding_type: String,
    /// Norm on text states in attention (`"group_norm"`, `"layer_norm"`).
    #[serde(default)]
    pub cross_attention_norm: Option<String>,
    /// Input convolution kernel.
    #[serde(default = "d::three")]
    pub conv_in_kernel: usize,
    /// Output convolution kernel.
    #[serde(default = "d::three")]
    pub conv_out_kernel: usize,
    /// Transformer layers per block (only 1: IF blocks have none).
    #[serde(default = "d::one_per_block")]
    pub transformer_layers_per_block: PerBlock<usize>,
    /// Only `"default"`.
    #[serde(default = "d::default_str")]
    pub attention_type: String,
    /// Must be false.
    #[serde(default)]
    pub dual_cross_attention: bool,
    /// Must be null.
    #[serde(default)]
    pub time_cond_proj_dim: Option<usize>,
    /// Time embedding width; default 4 x `block_out_channels[0]` (IF-II-L: 1280).
    #[serde(default)]
    pub time_embedding_dim: Option<usize>,
    /// Activation applied to the time embedding before the blocks (IF-II-L: `gelu`).
    #[serde(default)]
    pub time_embedding_act_fn: Option<String>,
    /// Must be null.
    #[serde(default)]
    pub timestep_post_act: Option<String>,
    /// Must be false.
    #[serde(default)]
    pub class_embeddings_concat: bool,
    /// Must be null.
    #[serde(default)]
    pub num_class_embeds: Option<usize>,
    /// Efficient U-Nets only (not a diffusers key): concatenate the input
    /// convolution's output to the last UBlock's before the output
    /// convolution (imagen-pytorch's `init_conv_to_final_conv_residual`).
    /// DBlocks downsample first, so without it no path keeps full
    /// resolution and per-pixel noise cannot be predicted exactly.
    #[serde(default)]
    pub conv_in_skip: bool,
}

mod d {
    use super::{MidBlockType, PerBlock};
    pub fn four() -> usize {
        4
    }
    pub fn three() -> usize {
        3
    }
    pub fn one() -> usize {
        1
    }
    pub fn sixty_four() -> usize {
        64
    }
    pub fn yes() -> bool {
        true
    }
    pub fn onef() -> f64 {
        1.0
    }
    pub fn eps() -> f64 {
        1e-5
    }
    pub fn groups() -> Option<usize> {
        Some(32)
    }
    pub fn silu() -> String {
        "silu".into()
    }
    pub fn default_str() -> String {
        "default".into()
    }
    pub fn positional() -> String {
        "positional".into()
    }
    pub fn mid() -> Option<MidBlockType> {
        Some(MidBlockType::UNetMidBlock2DSimpleCrossAttn)
    }
    pub fn no_per_block() -> PerBlock<bool> {
        PerBlock::All(false)
    }
    pub fn two_per_block() -> PerBlock<usize> {
        PerBlock::All(2)
    }
    pub fn one_per_block() -> PerBlock<usize> {
        PerBlock::All(1)
    }
    pub fn cross_dim() -> PerBlock<usize> {
        PerBlock::All(1280)
    }
    pub fn head_dim() -> PerBlock<usize> {
        PerBlock::All(8)
    }
}

impl UNetConfig {
    /// Reads and validates a diffusers `unet/config.json`. An unknown block
    /// type is a parse error naming it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, UNetError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| UNetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg: Self = serde_json::from_str(&text).map_err(|source| UNetError::Config {
            path: path.to_path_buf(),
            source,
        })?;
        cfg.validate().map_err(|e| e.in_file(path))?;
        Ok(cfg)
    }

    /// Number of resolution levels.
    pub fn levels(&self) -> usize {
        self.block_out_channels.len()
    }

    /// The time embedding width: `time_embedding_dim`, else 4 x the first
    /// block's channels.
    pub fn time_embed_dim(&self) -> usize {
        self.time_embedding_dim
            .unwrap_or(4 * self.block_out_channels[0])
    }

    /// Heads of the attention in down block `i`: the simple-cross-attention
    /// blocks read `attention_head_dim` as the width per head.
    pub fn heads(&self, i: usize) -> usize {
        self.block_out_channels[i] / self.attention_head_dim.get(i)
    }

    /// Whether this is an Efficient U-Net (all blocks DBlock / UBlock).
    pub fn is_efficient(&self) -> bool {
        self.down_block_types
            .first()
            .is_some_and(|b| b.is_efficient())
    }

    /// How many times the network halves the resolution: inputs must have
    /// sides divisible by 2 to this power.
    pub fn downsampling_factor(&self) -> usize {
        let halvings = if self.is_efficient() {
            self.levels()
        } else {
            self.levels().saturating_sub(1)
        };
        1 << halvings
    }

    /// Whether the middle block attends to the text only.
    pub fn mid_only_cross_attention(&self) -> bool {
        self.mid_block_only_cross_attention
            .unwrap_or(matches!(self.only_cross_attention, PerBlock::All(true)))
    }

    /// Checks every value the U-Net depends on ([`UNetConfig::spec`]
    /// without keeping the result).
    pub fn validate(&self) -> Result<(), UNetError> {
        self.spec().map(drop)
    }

    /// Builds the U-Net with fresh (lazily allocated) weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<UNet<B>, UNetError> {
        Ok(self.spec()?.init(device))
    }
}

impl Default for UNetConfig {
    /// diffusers' defaults, with no blocks: presets fill in the rest
    /// (`UNetConfig { block_out_channels: .., ..UNetConfig::default() }`).
    fn default() -> Self {
        Self {
            sample_size: None,
            in_channels: d::four(),
            out_channels: d::four(),
            center_input_sample: false,
            flip_sin_to_cos: d::yes(),
            freq_shift: 0,
            down_block_types: Vec::new(),
            mid_block_type: d::mid(),
            up_block_types: Vec::new(),
            only_cross_attention: d::no_per_block(),
            mid_block_only_cross_attention: None,
            block_out_channels: Vec::new(),
            layers_per_block: d::two_per_block(),
            downsample_padding: d::one(),
            mid_block_scale_factor: d::onef(),
            dropout: 0.0,
            act_fn: d::silu(),
            norm_num_groups: d::groups(),
            norm_eps: d::eps(),
            cross_attention_dim: d::cross_dim(),
            encoder_hid_dim: None,
            encoder_hid_dim_type: None,
            attention_head_dim: d::head_dim(),
            num_attention_heads: None,
            class_embed_type: None,
            addition_embed_type: None,
            addition_embed_type_num_heads: d::sixty_four(),
            upcast_attention: false,
            resnet_time_scale_shift: d::default_str(),
            resnet_skip_time_act: false,
            resnet_out_scale_factor: d::onef(),
            time_embedding_type: d::positional(),
            cross_attention_norm: None,
            conv_in_kernel: d::three(),
            conv_out_kernel: d::three(),
            transformer_layers_per_block: d::one_per_block(),
            attention_type: d::default_str(),
            dual_cross_attention: false,
            time_cond_proj_dim: None,
            time_embedding_dim: None,
            time_embedding_act_fn: None,
            timestep_post_act: None,
            class_embeddings_concat: false,
            num_class_embeds: None,
            conv_in_skip: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn if_i_xl() -> UNetConfig {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/if_i_xl_config.json"
        );
        UNetConfig::from_file(path).unwrap()
    }

    #[test]
    fn parses_the_real_if_configs() {
        let c = if_i_xl();
        assert_eq!(c.block_out_channels, vec![704, 1408, 2112, 2816]);
        assert_eq!(c.heads(0), 11);
        assert_eq!(c.time_embed_dim(), 2816);
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/if_ii_l_config.json"
        );
        let c = UNetConfig::from_file(path).unwrap();
        assert_eq!(c.layers_per_block, PerBlock::Each(vec![2, 2, 3, 5, 5]));
        assert_eq!(c.class_embed_type.as_deref(), Some("timestep"));
        assert_eq!(c.time_embed_dim(), 1280);
    }

    #[test]
    fn default_is_what_serde_fills_in() {
        let minimal = r#"{"down_block_types": [], "up_block_types": [], "block_out_channels": []}"#;
        let parsed: UNetConfig = serde_json::from_str(minimal).unwrap();
        assert_eq!(parsed, UNetConfig::default());
    }

    #[test]
    fn unsupported_values_name_the_key() {
        let mut c = if_i_xl();
        c.resnet_time_scale_shift = "film".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("resnet_time_scale_shift") && err.contains("film"),
            "{err}"
        );

        let mut c = if_i_xl();
        c.norm_num_groups = Some(5);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("norm_num_groups")
        );

        let mut c = if_i_xl();
        c.layers_per_block = PerBlock::Each(vec![1, 2]);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("layers_per_block")
        );

        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/if_i_xl_config.json"
        ))
        .unwrap()
        .replace("\"SimpleCrossAttnDownBlock2D\"", "\"CrossAttnDownBlock2D\"");
        let err = serde_json::from_str::<UNetConfig>(&text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("CrossAttnDownBlock2D"), "{err}");
    }
}
