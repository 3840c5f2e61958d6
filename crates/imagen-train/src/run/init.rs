//! Where a run's U-Net comes from when no checkpoint is resumed, and the
//! process-wide lock around seeded draws.

use std::path::PathBuf;
use std::sync::Mutex;

use burn::tensor::backend::{AutodiffBackend, Backend};
use imagen_unet::{UNet, UNetConfig};

use crate::{TrainConfig, TrainError, Trainer, materialize};

/// The U-Net a [`TrainingRun`](super::TrainingRun) starts from when it does
/// not resume a checkpoint.
// Built once per run: boxing the config would only make it clumsier to write.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum UNetInit {
    /// Fine-tune: load a diffusers `unet/` directory (`config.json` and
    /// `diffusion_pytorch_model.safetensors`).
    Pretrained(PathBuf),
    /// Train from scratch: random weights for this config (a preset such as
    /// [`UNetConfig::demo_base`], or one read with
    /// [`UNetConfig::from_file`]), drawn from [`TrainConfig::seed`].
    Config(UNetConfig),
}

/// Held while the backend's generator is seeded and drawn from.
static BACKEND_SEED: Mutex<()> = Mutex::new(());

/// Seeds `B`'s generator on `device` with `seed` and runs `draw` with no
/// other `seeded` draw in between, however many threads call it.
///
/// burn's generator is one per process, so two threads that each seed and
/// draw interleave their draws unless they take turns. [`TrainingRun`]
/// initialises its U-Net under this lock, which is why data-parallel peers
/// in threads (and tests) start from the weights a one-device run with the
/// same seed draws; code of yours that seeds the backend while runs start
/// should go through here too. Modules draw their weights lazily: pass a
/// module built in `draw` through [`materialize`] before returning it.
///
/// [`TrainingRun`]: super::TrainingRun
///
/// ```
/// use burn::tensor::{Distribution, Tensor};
/// use burn_flex::Flex;
/// use imagen_train::seeded;
///
/// let device = Default::default();
/// let draw = || Tensor::<Flex, 1>::random([4], Distribution::Default, &device).into_data();
/// assert_eq!(seeded::<Flex, _>(&device, 7, draw), seeded::<Flex, _>(&device, 7, draw));
/// ```
pub fn seeded<B: Backend, T>(device: &B::Device, seed: u64, draw: impl FnOnce() -> T) -> T {
    let _guard = BACKEND_SEED.lock().unwrap_or_else(|e| e.into_inner());
    B::seed(device, seed);
    draw()
}

impl UNetInit {
    /// A trainer at step 0 for `config`: the U-Net loaded or drawn (from
    /// `config.seed`, under [`seeded`], every weight drawn before the lock
    /// is released).
    pub(crate) fn trainer<B: AutodiffBackend>(
        &self,
        config: TrainConfig,
        device: &B::Device,
    ) -> Result<Trainer<B>, TrainError> {
        let (unet_config, unet) = seeded::<B, _>(device, config.seed, || {
            let (unet_config, unet) = match self {
                UNetInit::Pretrained(dir) => (
                    UNetConfig::from_file(dir.join("config.json"))?,
                    UNet::<B>::from_dir(dir, device)?,
                ),
                UNetInit::Config(unet_config) => {
                    (unet_config.clone(), unet_config.init::<B>(device)?)
                }
            };
            Ok::<_, TrainError>((unet_config, materialize(unet)))
        })?;
        Trainer::new(config, unet_config, unet)
    }
}
