//! `ShapesDataset`: the procedural shapes-and-captions data of `imagen-shapes`.

use image::RgbImage;
use imagen_shapes::{SamplerConfig, Scene, SceneSampler, render};

use super::seed::{SCENE, derive};
use super::{DataError, ImageTextSource};

/// `len` procedural scenes with true captions, rendered at `resolution`.
///
/// Example `i` is drawn by a [`SceneSampler`] seeded with a hash of
/// `(seed, i)`, so it is a pure function of `(config, seed, i)`: no state,
/// any order, any thread. The caption needs only the scene, not the
/// rendering, so the embedding cache reads captions cheaply.
///
/// Captions name positions ("left of"): train with
/// [`DataLoaderConfig::random_flip`](super::DataLoaderConfig::random_flip) off.
///
/// ```
/// use imagen_shapes::SamplerConfig;
/// use imagen_train::data::{ImageTextSource, ShapesDataset};
/// let data = ShapesDataset::new(SamplerConfig::default(), 7, 1000, 32)?;
/// assert_eq!(data.len(), 1000);
/// assert_eq!(data.image(3)?.dimensions(), (32, 32));
/// assert_eq!(data.caption(3)?, data.caption(3)?);
/// # Ok::<(), imagen_train::data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ShapesDataset {
    config: SamplerConfig,
    seed: u64,
    len: usize,
    resolution: u32,
}

impl ShapesDataset {
    /// A dataset of `len` scenes drawn from `config`, rendered at
    /// `resolution` x `resolution` pixels.
    ///
    /// # Errors
    /// [`DataError::Shapes`] for a configuration the sampler rejects,
    /// [`DataError::InvalidConfig`] for `len` or `resolution` zero.
    pub fn new(
        config: SamplerConfig,
        seed: u64,
        len: usize,
        resolution: u32,
    ) -> Result<Self, DataError> {
        SceneSampler::new(config.clone(), seed)?;
        if len == 0 {
            return Err(DataError::invalid("len", "the dataset must hold examples"));
        }
        if resolution == 0 {
            return Err(DataError::invalid("resolution", "must be positive"));
        }
        Ok(ShapesDataset {
            config,
            seed,
            len,
            resolution,
        })
    }

    /// The scene distribution.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// The rendering size in pixels.
    pub fn resolution(&self) -> u32 {
        self.resolution
    }

    /// Scene and caption of example `index`.
    pub fn example(&self, index: usize) -> Result<(Scene, String), DataError> {
        if index >= self.len {
            return Err(DataError::IndexOutOfRange {
                index,
                len: self.len,
            });
        }
        let seed = derive(SCENE, &[self.seed, index as u64]);
        Ok(SceneSampler::new(self.config.clone(), seed)?.sample_captioned())
    }
}

impl ImageTextSource for ShapesDataset {
    fn len(&self) -> usize {
        self.len
    }

    fn caption(&self, index: usize) -> Result<String, DataError> {
        Ok(self.example(index)?.1)
    }

    fn image(&self, index: usize) -> Result<RgbImage, DataError> {
        Ok(render(&self.example(index)?.0, self.resolution))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_pure_functions_of_seed_and_index() {
        let a = ShapesDataset::new(SamplerConfig::default(), 1, 50, 16).unwrap();
        let b = ShapesDataset::new(SamplerConfig::default(), 1, 50, 16).unwrap();
        let c = ShapesDataset::new(SamplerConfig::default(), 2, 50, 16).unwrap();
        assert_eq!(a.caption(7).unwrap(), b.caption(7).unwrap());
        assert_eq!(a.image(7).unwrap(), b.image(7).unwrap());
        let captions =
            |d: &ShapesDataset| (0..20).map(|i| d.caption(i).unwrap()).collect::<Vec<_>>();
        assert_ne!(captions(&a), captions(&c));
        assert!(matches!(
            a.caption(50),
            Err(DataError::IndexOutOfRange { index: 50, len: 50 })
        ));
    }

    #[test]
    fn rejects_bad_settings() {
        let bad = SamplerConfig {
            max_objects: 0,
            ..SamplerConfig::default()
        };
        assert!(matches!(
            ShapesDataset::new(bad, 0, 1, 16),
            Err(DataError::Shapes(_))
        ));
        assert!(ShapesDataset::new(SamplerConfig::default(), 0, 0, 16).is_err());
        assert!(ShapesDataset::new(SamplerConfig::default(), 0, 1, 0).is_err());
    }
}
