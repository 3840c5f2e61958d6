//! `UNetConfig`: a diffusers `UNet2DConditionModel` `config.json`, as it is.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::unsupported;
use crate::{Activation, UNetError};

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

    fn len_ok(&self, n: usize) -> bool {
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

    /// Checks every value the IF-layout U-Net depends on.
    pub fn validate(&self) -> Result<(), UNetError> {
        let n = self.levels();
        if n == 0 {
            return Err(unsupported(
                "block_out_channels",
                &self.block_out_channels,
                "must not be empty",
            ));
        }
        if self.down_block_types.len() != n {
            return Err(unsupported(
                "down_block_types",
                &self.down_block_types,
                format!("need one per block_out_channels entry ({n})"),
            ));
        }
        if self.up_block_types.len() != n {
            return Err(unsupported(
                "up_block_types",
                &self.up_block_types,
                format!("need one per block_out_channels entry ({n})"),
            ));
        }
        let efficient = self.is_efficient();
        if self
            .down_block_types
            .iter()
            .any(|b| b.is_efficient() != efficient)
            || self
                .up_block_types
                .iter()
                .any(|b| b.is_efficient() != efficient)
        {
            return Err(unsupported(
                "down_block_types",
                &self.down_block_types,
                "Efficient (DBlock / UBlock) and IF block types cannot be mixed in one U-Net",
            ));
        }
        if self.conv_in_skip && !efficient {
            return Err(unsupported(
                "conv_in_skip",
                self.conv_in_skip,
                "only Efficient U-Nets take it (the IF layout already skips from conv_in)",
            ));
        }
        let lists: [(&'static str, bool); 5] = [
            ("layers_per_block", self.layers_per_block.len_ok(n)),
            ("attention_head_dim", self.attention_head_dim.len_ok(n)),
            ("cross_attention_dim", self.cross_attention_dim.len_ok(n)),
            ("only_cross_attention", self.only_cross_attention.len_ok(n)),
            (
                "transformer_layers_per_block",
                self.transformer_layers_per_block.len_ok(n),
            ),
        ];
        if let Some((field, _)) = lists.iter().find(|(_, ok)| !ok) {
            return Err(unsupported(
                field,
                "a list",
                format!("lists need one entry per block ({n})"),
            ));
        }
        if let Some(groups) = self.norm_num_groups {
            if let Some(c) = self
                .block_out_channels
                .iter()
                .find(|&&c| groups == 0 || c % groups != 0)
            {
                return Err(unsupported(
                    "norm_num_groups",
                    groups,
                    format!("must divide every block_out_channels entry ({c} is not a multiple)"),
                ));
            }
        } else {
            return Err(unsupported(
                "norm_num_groups",
                "null",
                "GroupNorm is required",
            ));
        }
        for i in 0..n {
            // Attention blocks use `channels / attention_head_dim` heads of
            // `attention_head_dim` channels (integer division, as diffusers).
            let attends = self.down_block_types[i].attends()
                || self.up_block_types[n - 1 - i].attends()
                || (i == n - 1 && self.mid_block_type.is_some());
            let head = self.attention_head_dim.get(i);
            if attends && (head == 0 || head > self.block_out_channels[i]) {
                return Err(unsupported(
                    "attention_head_dim",
                    head,
                    format!(
                        "must be in 1..={} (block_out_channels[{i}])",
                        self.block_out_channels[i]
                    ),
                ));
            }
            if self.transformer_layers_per_block.get(i) != 1 {
                return Err(unsupported(
                    "transformer_layers_per_block",
                    self.transformer_layers_per_block.get(i),
                    "only 1",
                ));
            }
        }
        // The text's GroupNorm has 32 groups (diffusers'
        // `cross_attention_norm_num_groups`): the text width must divide.
        if self.cross_attention_norm.as_deref() == Some("group_norm") {
            for i in 0..n {
                let dim = self.cross_attention_dim.get(i);
                if dim == 0 || !dim.is_multiple_of(32) {
                    return Err(unsupported(
                        "cross_attention_dim",
                        dim,
                        "must be a positive multiple of 32 with cross_attention_norm \"group_norm\"",
                    ));
                }
            }
        }
        let choice = |field: &'static str, value: &str, allowed: &[&str]| {
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(unsupported(
                    field,
                    value,
                    format!("supported: {}", allowed.join(", ")),
                ))
            }
        };
        Activation::parse("act_fn", &self.act_fn)?;
        if let Some(act) = &self.time_embedding_act_fn {
            Activation::parse("time_embedding_act_fn", act)?;
        }
        choice(
            "resnet_time_scale_shift",
            &self.resnet_time_scale_shift,
            &["default", "scale_shift"],
        )?;
        choice(
            "time_embedding_type",
            &self.time_embedding_type,
            &["positional"],
        )?;
        choice("attention_type", &self.attention_type, &["default"])?;
        let optional = |field: &'static str, value: &Option<String>, allowed: &[&str]| match value {
            None => Ok(()),
            Some(v) => choice(field, v, allowed),
        };
        optional("class_embed_type", &self.class_embed_type, &["timestep"])?;
        optional("addition_embed_type", &self.addition_embed_type, &["text"])?;
        optional(
            "encoder_hid_dim_type",
            &self.encoder_hid_dim_type,
            &["text_proj"],
        )?;
        optional(
            "cross_attention_norm",
            &self.cross_attention_norm,
            &["group_norm", "layer_norm"],
        )?;
        let must_be_off = [
            ("center_input_sample", self.center_input_sample),
            ("dual_cross_attention", self.dual_cross_attention),
            ("class_embeddings_concat", self.class_embeddings_concat),
            ("time_cond_proj_dim", self.time_cond_proj_dim.is_some()),
            ("timestep_post_act", self.timestep_post_act.is_some()),
            ("num_class_embeds", self.num_class_embeds.is_some()),
            ("num_attention_heads", self.num_attention_heads.is_some()),
        ];
        if let Some((field, _)) = must_be_off.iter().find(|(_, on)| *on) {
            return Err(unsupported(
                field,
                "set",
                "not used by the IF layout; leave it false / null",
            ));
        }
        for (field, k) in [
            ("conv_in_kernel", self.conv_in_kernel),
            ("conv_out_kernel", self.conv_out_kernel),
        ] {
            if k % 2 == 0 {
                return Err(unsupported(field, k, "must be odd"));
            }
        }
        if self.addition_embed_type.is_some()
            && self.encoder_hid_dim.is_none()
            && self.encoder_hid_dim_type.is_some()
        {
            return Err(unsupported(
                "encoder_hid_dim",
                "null",
                "required by encoder_hid_dim_type",
            ));
        }
        Ok(())
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
