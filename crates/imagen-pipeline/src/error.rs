//! Everything that can go wrong composing and running the cascade.

use std::path::PathBuf;

/// A pipeline error; each names the path, stage or value at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A directory or file the cascade needs does not exist.
    #[error("`{path}` does not exist ({what})")]
    NotFound {
        /// The missing path.
        path: PathBuf,
        /// What it should hold.
        what: String,
    },
    /// A directory lacks a component (e.g. `model_index.json` lists no text encoder).
    #[error("`{dir}` has no {component}")]
    MissingComponent {
        /// The directory.
        dir: PathBuf,
        /// The missing part.
        component: String,
    },
    /// Reading or writing a file failed.
    #[error("I/O error on `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON file (manifest, `model_index.json`) could not be parsed.
    #[error("cannot parse `{path}`: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The text encoder's width differs from what a stage's U-Net reads.
    #[error(
        "stage `{stage}` reads text states {expected} wide, but the text encoder produces {found}"
    )]
    TextDimMismatch {
        /// The stage.
        stage: String,
        /// The U-Net's `encoder_hid_dim` (or `cross_attention_dim`).
        expected: usize,
        /// The text encoder's `d_model`.
        found: usize,
    },
    /// An image size a stage's U-Net cannot take: both sides must be
    /// positive multiples of its downsampling factor.
    #[error(
        "stage `{stage}`: {height}x{width} px is not a size its U-Net takes: height and width must be positive multiples of {factor}"
    )]
    Size {
        /// The stage.
        stage: String,
        /// Requested height.
        height: usize,
        /// Requested width.
        width: usize,
        /// What both must divide by.
        factor: usize,
    },
    /// A request or setting that cannot be run.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Sampling a stage failed (e.g. NaNs in the sample).
    #[error("stage `{stage}`: {source}")]
    Sampling {
        /// The stage.
        stage: String,
        /// The cause.
        source: imagen_diffusion::DiffusionError,
    },
    /// The text encoder failed.
    #[error(transparent)]
    Text(#[from] imagen_text::TextError),
    /// A U-Net could not be built or loaded.
    #[error(transparent)]
    UNet(#[from] imagen_unet::UNetError),
    /// A scheduler could not be built, or sampling failed (e.g. NaNs).
    #[error(transparent)]
    Diffusion(#[from] imagen_diffusion::DiffusionError),
    /// Weights could not be read or written.
    #[error(transparent)]
    Weights(#[from] imagen_weights::WeightsError),
    /// An image could not be read or written.
    #[error("image `{path}`: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: image::ImageError,
    },
}

pub(crate) fn invalid(msg: impl Into<String>) -> PipelineError {
    PipelineError::InvalidRequest(msg.into())
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PipelineError {
    let path = path.into();
    move |source| PipelineError::Io { path, source }
}

/// Fails with [`PipelineError::NotFound`] unless `path` exists.
pub(crate) fn require(path: &std::path::Path, what: &str) -> Result<(), PipelineError> {
    if path.exists() {
        Ok(())
    } else {
        Err(PipelineError::NotFound {
            path: path.to_path_buf(),
            what: what.to_string(),
        })
    }
}
