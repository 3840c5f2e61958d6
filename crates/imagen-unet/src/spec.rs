//! `UNetSpec`: a [`UNetConfig`] checked once and converted into typed values.
//!
//! [`UNetConfig`] mirrors diffusers' `config.json` key for key, strings and
//! all, so that it reads and writes the reference files unchanged. Building
//! a U-Net needs something stricter: which layout, which activation, how the
//! time embedding enters the residual blocks, which levels attend and how.
//! [`UNetSpec`] holds exactly that, in enums and per-level structs that
//! cannot describe a network this crate cannot build (IF and Efficient
//! blocks mixed, a skip from `conv_in` in the IF layout, attention widths
//! that differ between the blocks that read one set of text states).
//! [`UNetConfig::spec`] is the one place where the strings are checked.

use crate::error::unsupported;
use crate::{Activation, MidBlockType, PerBlock, TimeConditioning, UNetConfig, UNetError};

/// How the levels of the U-Net are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// DeepFloyd IF (diffusers' `UNet2DConditionModel`): residual blocks at
    /// each level's resolution, a resampling residual block between levels,
    /// a skip after every layer and one from `conv_in`.
    If,
    /// Imagen's Efficient U-Net: DBlocks downsample before their residual
    /// blocks, UBlocks upsample after theirs, one skip per level.
    Efficient {
        /// Concatenate `conv_in`'s output to the last UBlock's before the
        /// output head ([`UNetConfig::conv_in_skip`]).
        conv_in_skip: bool,
    },
}

/// What an attention layer attends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionScope {
    /// The pixels and the text: text keys/values prepended to the pixels'
    /// own (IF's "simple cross attention").
    SelfAndText,
    /// The text alone (`only_cross_attention`; the paper's 1024 px stage).
    TextOnly,
}

impl AttentionScope {
    fn from_only_cross(only_cross: bool) -> Self {
        if only_cross {
            Self::TextOnly
        } else {
            Self::SelfAndText
        }
    }
}

/// The norm on the text states before an attention's key/value projections
/// (`cross_attention_norm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextNorm {
    /// GroupNorm with 32 groups (`"group_norm"`; diffusers hard-codes 32).
    Group,
    /// LayerNorm (`"layer_norm"`).
    Layer,
}

/// One attention layer of a level (or of the middle block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionSpec {
    /// Channels per head; the layer has `channels / head_dim` heads.
    pub head_dim: usize,
    /// What it attends to.
    pub scope: AttentionScope,
}

/// One resolution level: its down block and the up block at its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelSpec {
    /// Channels (`block_out_channels[i]`).
    pub channels: usize,
    /// Residual blocks of the down block (`layers_per_block[i]`); IF up
    /// blocks have one more, UBlocks as many.
    pub layers: usize,
    /// The down block's attention, if it attends.
    pub down_attention: Option<AttentionSpec>,
    /// The up block's attention, if it attends.
    pub up_attention: Option<AttentionSpec>,
}

/// The middle block: residual block, attention, residual block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MidSpec {
    /// Its attention, at the last level's width.
    pub attention: AttentionSpec,
    /// Divisor of its residual blocks' outputs (`mid_block_scale_factor`).
    pub output_scale_factor: f64,
}

/// What every residual block shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResidualSpec {
    /// Activation (`act_fn`), also inside the time MLPs.
    pub act: Activation,
    /// How the time embedding enters (`resnet_time_scale_shift`).
    pub time: TimeConditioning,
    /// Feed the time embedding to the projection without the activation
    /// (`resnet_skip_time_act`).
    pub skip_time_act: bool,
    /// Divisor of the output (`resnet_out_scale_factor`; IF-II: sqrt 2).
    pub output_scale_factor: f64,
    /// GroupNorm groups of every norm over pixels (`norm_num_groups`).
    pub groups: usize,
    /// GroupNorm / LayerNorm epsilon (`norm_eps`).
    pub eps: f64,
}

/// The timestep (and noise-level) embedding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeSpec {
    /// Width of the embedding every residual block reads.
    pub embedding_dim: usize,
    /// Cosines first (`flip_sin_to_cos`).
    pub flip_sin_to_cos: bool,
    /// Frequency shift of the sinusoids (`freq_shift`).
    pub freq_shift: usize,
    /// Activation on the summed embedding before the blocks
    /// (`time_embedding_act_fn`; IF-II-L: GELU).
    pub act: Option<Activation>,
    /// A second MLP embeds the low-resolution image's noise level
    /// (`class_embed_type = "timestep"`: super-resolution stages).
    pub noise_level: bool,
}

/// How the text states enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextSpec {
    /// Width of the states the U-Net is given (`encoder_hid_dim`, else
    /// `attention_dim`).
    pub input_dim: usize,
    /// Width the attention layers read (`cross_attention_dim`); the input is
    /// projected to it when the two are given apart (`encoder_hid_dim`).
    pub attention_dim: usize,
    /// Project the input to `attention_dim` (`encoder_hid_dim` set).
    pub projected: bool,
    /// Heads of the pooled-text embedding added to the time embedding
    /// (`addition_embed_type = "text"`), if any.
    pub pooled_heads: Option<usize>,
    /// Norm on the text before each attention's projections.
    pub norm: Option<TextNorm>,
}

/// A U-Net this crate can build: a [`UNetConfig`] checked and converted
/// once ([`UNetConfig::spec`]), and what [`UNetSpec::init`] reads.
///
/// ```
/// use imagen_unet::{Layout, UNetConfig};
///
/// let spec = UNetConfig::tiny_sr(32).spec().unwrap();
/// assert_eq!(spec.layout, Layout::Efficient { conv_in_skip: false });
/// assert_eq!(spec.levels.len(), 2);
/// assert!(spec.time.noise_level);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct UNetSpec {
    /// Input channels (3, or 6 with the low-resolution image concatenated).
    pub in_channels: usize,
    /// Output channels (3, or 6 with a learned variance).
    pub out_channels: usize,
    /// IF or Efficient.
    pub layout: Layout,
    /// The resolution levels, full resolution first; never empty.
    pub levels: Vec<LevelSpec>,
    /// The middle block.
    pub mid: MidSpec,
    /// What every residual block shares.
    pub residual: ResidualSpec,
    /// The time embedding.
    pub time: TimeSpec,
    /// The text conditioning.
    pub text: TextSpec,
    /// Kernel of the input convolution (odd).
    pub conv_in_kernel: usize,
    /// Kernel of the output convolution (odd).
    pub conv_out_kernel: usize,
}

impl UNetSpec {
    /// How many times the network halves the resolution: inputs must have
    /// sides divisible by 2 to this power.
    pub fn downsampling_factor(&self) -> usize {
        let halvings = match self.layout {
            Layout::If => self.levels.len() - 1,
            Layout::Efficient { .. } => self.levels.len(),
        };
        1 << halvings
    }
}

impl TryFrom<&UNetConfig> for UNetSpec {
    type Error = UNetError;

    fn try_from(config: &UNetConfig) -> Result<Self, UNetError> {
        config.spec()
    }
}

/// `value` when it is one of `allowed`, else the error naming `field`.
fn choice<'a>(field: &'static str, value: &'a str, allowed: &[&str]) -> Result<&'a str, UNetError> {
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(unsupported(
            field,
            value,
            format!("supported: {}", allowed.join(", ")),
        ))
    }
}

/// [`choice`] of an optional value.
fn optional<'a>(
    field: &'static str,
    value: &'a Option<String>,
    allowed: &[&str],
) -> Result<Option<&'a str>, UNetError> {
    value
        .as_deref()
        .map(|v| choice(field, v, allowed))
        .transpose()
}

impl UNetConfig {
    /// Checks every value the U-Net depends on and converts the config into
    /// its typed form; errors name the `config.json` key.
    pub fn spec(&self) -> Result<UNetSpec, UNetError> {
        let n = self.levels();
        if n == 0 {
            return Err(unsupported(
                "block_out_channels",
                &self.block_out_channels,
                "must not be empty",
            ));
        }
        let layout = self.layout()?;
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
        let residual = self.residual()?;
        let levels = self.level_specs()?;
        let text = self.text_spec()?;
        let time = self.time_spec()?;
        for (field, k) in [
            ("conv_in_kernel", self.conv_in_kernel),
            ("conv_out_kernel", self.conv_out_kernel),
        ] {
            if k % 2 == 0 {
                return Err(unsupported(field, k, "must be odd"));
            }
        }
        self.unused_keys_off()?;
        Ok(UNetSpec {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            layout,
            mid: MidSpec {
                attention: AttentionSpec {
                    head_dim: self.attention_head_dim.get(n - 1),
                    scope: AttentionScope::from_only_cross(self.mid_only_cross_attention()),
                },
                output_scale_factor: self.mid_block_scale_factor,
            },
            levels,
            residual,
            time,
            text,
            conv_in_kernel: self.conv_in_kernel,
            conv_out_kernel: self.conv_out_kernel,
        })
    }

    /// The layout the block types name: all IF or all Efficient, the same
    /// number down and up, and a middle block.
    fn layout(&self) -> Result<Layout, UNetError> {
        let n = self.levels();
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
        if self.mid_block_type != Some(MidBlockType::UNetMidBlock2DSimpleCrossAttn) {
            return Err(unsupported(
                "mid_block_type",
                self.mid_block_type,
                "supported: UNetMidBlock2DSimpleCrossAttn",
            ));
        }
        match (efficient, self.conv_in_skip) {
            (true, conv_in_skip) => Ok(Layout::Efficient { conv_in_skip }),
            (false, false) => Ok(Layout::If),
            (false, true) => Err(unsupported(
                "conv_in_skip",
                true,
                "only Efficient U-Nets take it (the IF layout already skips from conv_in)",
            )),
        }
    }

    /// Activation, time conditioning and norms of the residual blocks.
    fn residual(&self) -> Result<ResidualSpec, UNetError> {
        let Some(groups) = self.norm_num_groups else {
            return Err(unsupported(
                "norm_num_groups",
                "null",
                "GroupNorm is required",
            ));
        };
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
        let time = match choice(
            "resnet_time_scale_shift",
            &self.resnet_time_scale_shift,
            &["default", "scale_shift"],
        )? {
            "scale_shift" => TimeConditioning::ScaleShift,
            _ => TimeConditioning::Add,
        };
        Ok(ResidualSpec {
            act: Activation::parse("act_fn", &self.act_fn)?,
            time,
            skip_time_act: self.resnet_skip_time_act,
            output_scale_factor: self.resnet_out_scale_factor,
            groups,
            eps: self.norm_eps,
        })
    }

    /// Each level's width, depth and attention.
    fn level_specs(&self) -> Result<Vec<LevelSpec>, UNetError> {
        let n = self.levels();
        (0..n)
            .map(|i| {
                let channels = self.block_out_channels[i];
                // Attention layers use `channels / attention_head_dim` heads
                // of `attention_head_dim` channels (integer division, as
                // diffusers).
                let down = self.down_block_types[i].attends();
                let up = self.up_block_types[n - 1 - i].attends();
                let head_dim = self.attention_head_dim.get(i);
                if (down || up || i == n - 1) && (head_dim == 0 || head_dim > channels) {
                    return Err(unsupported(
                        "attention_head_dim",
                        head_dim,
                        format!("must be in 1..={channels} (block_out_channels[{i}])"),
                    ));
                }
                if self.transformer_layers_per_block.get(i) != 1 {
                    return Err(unsupported(
                        "transformer_layers_per_block",
                        self.transformer_layers_per_block.get(i),
                        "only 1",
                    ));
                }
                let attention = AttentionSpec {
                    head_dim,
                    scope: AttentionScope::from_only_cross(self.only_cross_attention.get(i)),
                };
                Ok(LevelSpec {
                    channels,
                    layers: self.layers_per_block.get(i),
                    down_attention: down.then_some(attention),
                    up_attention: up.then_some(attention),
                })
            })
            .collect()
    }

    /// The text widths, projection, pooling and norm.
    fn text_spec(&self) -> Result<TextSpec, UNetError> {
        let attention_dim = self.cross_attention_dim.get(0);
        // Every block reads the same (projected) text states.
        if let PerBlock::Each(dims) = &self.cross_attention_dim
            && dims.iter().any(|&d| d != attention_dim)
        {
            return Err(unsupported(
                "cross_attention_dim",
                dims,
                "every block reads the same text states: give one width",
            ));
        }
        let norm = match optional(
            "cross_attention_norm",
            &self.cross_attention_norm,
            &["group_norm", "layer_norm"],
        )? {
            None => None,
            Some("group_norm") => Some(TextNorm::Group),
            Some(_) => Some(TextNorm::Layer),
        };
        // The text's GroupNorm has 32 groups (diffusers'
        // `cross_attention_norm_num_groups`): the text width must divide.
        if norm == Some(TextNorm::Group)
            && (attention_dim == 0 || !attention_dim.is_multiple_of(32))
        {
            return Err(unsupported(
                "cross_attention_dim",
                attention_dim,
                "must be a positive multiple of 32 with cross_attention_norm \"group_norm\"",
            ));
        }
        let pooled = optional("addition_embed_type", &self.addition_embed_type, &["text"])?;
        let projection = optional(
            "encoder_hid_dim_type",
            &self.encoder_hid_dim_type,
            &["text_proj"],
        )?;
        if pooled.is_some() && self.encoder_hid_dim.is_none() && projection.is_some() {
            return Err(unsupported(
                "encoder_hid_dim",
                "null",
                "required by encoder_hid_dim_type",
            ));
        }
        let input_dim = self.encoder_hid_dim.unwrap_or(attention_dim);
        let heads = self.addition_embed_type_num_heads;
        if pooled.is_some() && (heads == 0 || !input_dim.is_multiple_of(heads)) {
            return Err(unsupported(
                "addition_embed_type_num_heads",
                heads,
                format!("must divide the text width ({input_dim})"),
            ));
        }
        Ok(TextSpec {
            input_dim,
            attention_dim,
            projected: self.encoder_hid_dim.is_some(),
            pooled_heads: pooled.map(|_| heads),
            norm,
        })
    }

    /// The time embedding's width, sinusoids, activation and noise level.
    fn time_spec(&self) -> Result<TimeSpec, UNetError> {
        let act = self
            .time_embedding_act_fn
            .as_deref()
            .map(|a| Activation::parse("time_embedding_act_fn", a))
            .transpose()?;
        choice(
            "time_embedding_type",
            &self.time_embedding_type,
            &["positional"],
        )?;
        choice("attention_type", &self.attention_type, &["default"])?;
        let noise_level = optional("class_embed_type", &self.class_embed_type, &["timestep"])?;
        Ok(TimeSpec {
            embedding_dim: self.time_embed_dim(),
            flip_sin_to_cos: self.flip_sin_to_cos,
            freq_shift: self.freq_shift,
            act,
            noise_level: noise_level.is_some(),
        })
    }

    /// The diffusers keys the IF layout leaves off.
    fn unused_keys_off(&self) -> Result<(), UNetError> {
        let must_be_off = [
            ("center_input_sample", self.center_input_sample),
            ("dual_cross_attention", self.dual_cross_attention),
            ("class_embeddings_concat", self.class_embeddings_concat),
            ("time_cond_proj_dim", self.time_cond_proj_dim.is_some()),
            ("timestep_post_act", self.timestep_post_act.is_some()),
            ("num_class_embeds", self.num_class_embeds.is_some()),
            ("num_attention_heads", self.num_attention_heads.is_some()),
        ];
        match must_be_off.iter().find(|(_, on)| *on) {
            Some((field, _)) => Err(unsupported(
                field,
                "set",
                "not used by the IF layout; leave it false / null",
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_combinations_are_refused_by_name() {
        let mut c = UNetConfig::tiny_base(32);
        c.conv_in_skip = true;
        assert!(c.spec().unwrap_err().to_string().contains("conv_in_skip"));

        let mut c = UNetConfig::tiny_base(32);
        c.mid_block_type = None;
        assert!(c.spec().unwrap_err().to_string().contains("mid_block_type"));

        let mut c = UNetConfig::tiny_base(32);
        c.cross_attention_dim = PerBlock::Each(vec![16, 32]);
        assert!(
            c.spec()
                .unwrap_err()
                .to_string()
                .contains("cross_attention_dim")
        );

        let mut c = UNetConfig::tiny_base(32);
        c.addition_embed_type_num_heads = 0;
        assert!(
            c.spec()
                .unwrap_err()
                .to_string()
                .contains("addition_embed_type_num_heads")
        );
    }

    #[test]
    fn the_if_stages_convert() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/if_ii_l_config.json"
        );
        let spec = UNetConfig::from_file(path).unwrap().spec().unwrap();
        assert_eq!(spec.layout, Layout::If);
        assert_eq!(spec.time.embedding_dim, 1280);
        assert_eq!(spec.time.act, Some(Activation::Gelu));
        assert!(spec.time.noise_level);
        assert_eq!(spec.residual.time, TimeConditioning::ScaleShift);
        assert_eq!(
            spec.levels.iter().map(|l| l.layers).collect::<Vec<_>>(),
            [2, 2, 3, 5, 5]
        );
        assert_eq!(spec.downsampling_factor(), 16);
    }
}
