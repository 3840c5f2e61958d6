//! `DataLoader`: batches in a seeded, per-epoch shuffled, resumable order.

use std::collections::BTreeMap;

use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

use super::seed::{CROP, FLIP, PERMUTATION, derive, permutation};
use super::{DataError, ImageTextSource, prepare};

/// Settings of a [`DataLoader`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataLoaderConfig {
    /// Examples per batch (default 16).
    pub batch_size: usize,
    /// Side of the square training images in pixels (default 64).
    pub resolution: u32,
    /// Seed of the epoch shuffles and the flips (default 0).
    pub seed: u64,
    /// Mirror each example left-right with probability 1/2 (default off:
    /// flipping makes "left of" / "right of" captions false).
    pub random_flip: bool,
    /// Threads decoding one batch; 0 and 1 decode on the calling thread
    /// (default 1). The stream does not depend on it.
    pub workers: usize,
    /// A random `crop` x `crop` window of each example, taken after resizing
    /// to `resolution` (default none: the whole image). Super-resolution
    /// stages are fully convolutional and train on crops, as Imagen's
    /// 256 -> 1024 model trained on 256 x 256 crops.
    pub crop: Option<u32>,
}

impl Default for DataLoaderConfig {
    fn default() -> Self {
        DataLoaderConfig {
            batch_size: 16,
            resolution: 64,
            seed: 0,
            random_flip: false,
            workers: 1,
            crop: None,
        }
    }
}

impl DataLoaderConfig {
    /// `batch_size` examples of `resolution` x `resolution` pixels per batch.
    pub fn new(batch_size: usize, resolution: u32) -> Self {
        DataLoaderConfig {
            batch_size,
            resolution,
            ..Self::default()
        }
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Turns random horizontal flips on or off.
    pub fn with_random_flip(mut self, random_flip: bool) -> Self {
        self.random_flip = random_flip;
        self
    }

    /// Sets the number of decoding threads.
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Takes a random `crop` x `crop` window of each resized example.
    pub fn with_crop(mut self, crop: u32) -> Self {
        self.crop = Some(crop);
        self
    }

    /// Side of the batch's images: the crop, or else the resolution.
    pub fn output_size(&self) -> u32 {
        self.crop.unwrap_or(self.resolution)
    }

    /// A loader over `source`; see [`DataLoader::new`].
    pub fn init<S: ImageTextSource>(&self, source: S) -> Result<DataLoader<S>, DataError> {
        DataLoader::new(source, self.clone())
    }
}

/// One training batch.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[batch, 3, resolution, resolution]` f32 in `[-1, 1]` (see [`prepare`]).
    pub images: TensorData,
    /// The captions, in batch order.
    pub captions: Vec<String>,
    /// The source indices of the examples.
    pub indices: Vec<usize>,
    /// Which examples were mirrored.
    pub flipped: Vec<bool>,
}

/// Endless batches from an [`ImageTextSource`], in an order that is a pure
/// function of `(seed, position)`.
///
/// The stream visits epoch after epoch; epoch `e` is a permutation of the
/// source derived from `(seed, e)`, and the flip of the example at offset
/// `k` of epoch `e` is derived from `(seed, e, k)`. [`position`](Self::position)
/// counts the stream slots consumed (examples returned plus unreadable ones
/// skipped), and [`seek`](Self::seek) jumps to a slot, so a run resumed with
/// the saved position continues with exactly the batches the interrupted
/// run would have produced.
///
/// Examples whose image cannot be read or decoded
/// ([`DataError::is_unreadable_example`]) are skipped: the batch is filled
/// with the next readable ones, so the stream stays deterministic, and
/// [`skipped_corrupt`](Self::skipped_corrupt) counts them for a warning.
///
/// ```
/// use imagen_shapes::SamplerConfig;
/// use imagen_train::data::{DataLoaderConfig, ShapesDataset};
///
/// let source = ShapesDataset::new(SamplerConfig::default(), 0, 100, 32)?;
/// let config = DataLoaderConfig::new(4, 32).with_seed(7);
/// let mut loader = config.init(&source)?;
/// let first = loader.next_batch()?;
/// assert_eq!(first.images.shape.as_slice(), &[4, 3, 32, 32]);
/// let saved = loader.position(); // store with the checkpoint
/// let second = loader.next_batch()?;
///
/// let mut resumed = config.init(&source)?;
/// resumed.seek(saved);
/// assert_eq!(resumed.next_batch()?.indices, second.indices);
/// # Ok::<(), imagen_train::data::DataError>(())
/// ```
#[derive(Debug)]
pub struct DataLoader<S> {
    source: S,
    config: DataLoaderConfig,
    position: u64,
    /// The permutation of the current epoch, computed once per epoch.
    order: Option<(u64, Vec<usize>)>,
    /// Unreadable examples seen so far, with the reason.
    corrupt: BTreeMap<usize, String>,
}

/// A decoded example: pixels and caption.
type Loaded = Result<(Vec<f32>, String), DataError>;

/// What one stream slot decodes: the source index, whether to mirror it,
/// and the top-left corner of its crop.
#[derive(Debug, Clone, Copy)]
struct Slot {
    index: usize,
    flip: bool,
    corner: (usize, usize),
}

impl<S: ImageTextSource> DataLoader<S> {
    /// A loader at position 0.
    ///
    /// # Errors
    /// [`DataError::InvalidConfig`] for a zero batch size or resolution, a
    /// crop of zero or larger than the resolution, or an empty source.
    pub fn new(source: S, config: DataLoaderConfig) -> Result<Self, DataError> {
        if config.batch_size == 0 {
            return Err(DataError::invalid("batch_size", "must be positive"));
        }
        if config.resolution == 0 {
            return Err(DataError::invalid("resolution", "must be positive"));
        }
        if config.crop.is_some_and(|c| c == 0 || c > config.resolution) {
            return Err(DataError::invalid(
                "crop",
                "must be positive and at most the resolution",
            ));
        }
        if source.is_empty() {
            return Err(DataError::invalid("source", "it has no examples"));
        }
        Ok(DataLoader {
            source,
            config,
            position: 0,
            order: None,
            corrupt: BTreeMap::new(),
        })
    }

    /// The next batch.
    ///
    /// # Errors
    /// A source error other than an unreadable example, or
    /// [`DataError::NoReadableExamples`] when every example is unreadable;
    /// the position is then left where it was.
    pub fn next_batch(&mut self) -> Result<Batch, DataError> {
        let start = self.position;
        let batch = self.fill_batch();
        if batch.is_err() {
            self.position = start;
        }
        batch
    }

    /// Stream slots consumed so far: examples returned plus unreadable
    /// examples skipped. Save it to resume with [`seek`](Self::seek).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Continues from `position` (as returned by [`position`](Self::position)).
    pub fn seek(&mut self, position: u64) {
        self.position = position;
    }

    /// The epoch of the next example (0-based).
    pub fn epoch(&self) -> u64 {
        self.position
            .checked_div(self.source.len() as u64)
            .unwrap_or(0)
    }

    /// The settings.
    pub fn config(&self) -> &DataLoaderConfig {
        &self.config
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Distinct unreadable examples met (and skipped) by this loader.
    pub fn skipped_corrupt(&self) -> usize {
        self.corrupt.len()
    }

    /// The unreadable examples met so far: source index and reason.
    pub fn corrupt_examples(&self) -> &BTreeMap<usize, String> {
        &self.corrupt
    }

    fn fill_batch(&mut self) -> Result<Batch, DataError> {
        let (size, r) = (self.config.batch_size, self.config.output_size() as usize);
        let len = self.source.len();
        if len == 0 {
            return Err(DataError::invalid("source", "it has no examples"));
        }
        let mut pixels = Vec::with_capacity(size * 3 * r * r);
        let (mut captions, mut indices, mut flipped) = (Vec::new(), Vec::new(), Vec::new());
        while indices.len() < size {
            self.check_readable_left(len)?;
            // Exactly as many slots as examples still needed, so that the
            // position after a batch never depends on what was known before.
            let mut slots = Vec::with_capacity(size - indices.len());
            while slots.len() < size - indices.len() {
                let slot = self.slot(self.position, len);
                self.position += 1;
                if !self.corrupt.contains_key(&slot.index) {
                    slots.push(slot);
                }
            }
            for (slot, loaded) in slots.iter().zip(self.load(&slots)) {
                match loaded {
                    Ok((image, caption)) => {
                        pixels.extend_from_slice(&image);
                        captions.push(caption);
                        indices.push(slot.index);
                        flipped.push(slot.flip);
                    }
                    Err(e) if e.is_unreadable_example() => {
                        self.corrupt.insert(slot.index, e.to_string());
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(Batch {
            images: TensorData::new(pixels, [size, 3, r, r]),
            captions,
            indices,
            flipped,
        })
    }

    /// Source index, flip and crop of stream slot `position` for a source of `len`.
    fn slot(&mut self, position: u64, len: usize) -> Slot {
        let (epoch, offset) = (position / len as u64, (position % len as u64) as usize);
        let seed = self.config.seed;
        let order = match &mut self.order {
            Some((e, order)) if *e == epoch && order.len() == len => order,
            slot => {
                let order = permutation(len, derive(PERMUTATION, &[seed, epoch]));
                &mut slot.insert((epoch, order)).1
            }
        };
        let flip = self.config.random_flip && derive(FLIP, &[seed, epoch, offset as u64]) & 1 == 1;
        let span = (self.config.resolution - self.config.output_size()) as u64 + 1;
        let bits = derive(CROP, &[seed, epoch, offset as u64]);
        let corner = ((bits % span) as usize, ((bits >> 32) % span) as usize);
        Slot {
            index: order[offset],
            flip,
            corner,
        }
    }

    fn check_readable_left(&self, len: usize) -> Result<(), DataError> {
        if self.corrupt.len() < len {
            return Ok(());
        }
        Err(DataError::NoReadableExamples {
            len,
            first: self.corrupt.values().next().cloned().unwrap_or_default(),
        })
    }

    /// Decodes and prepares `slots`, on `workers` threads when asked.
    fn load(&self, slots: &[Slot]) -> Vec<Loaded> {
        let (source, resolution) = (&self.source, self.config.resolution);
        let crop = self.config.output_size() as usize;
        let load = move |slot: &Slot| -> Loaded {
            let pixels = prepare(&source.image(slot.index)?, resolution, slot.flip)?;
            let pixels = crop_chw(pixels, resolution as usize, crop, slot.corner);
            Ok((pixels, source.caption(slot.index)?))
        };
        let workers = self.config.workers.clamp(1, slots.len().max(1));
        if workers == 1 {
            return slots.iter().map(load).collect();
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = slots
                .chunks(slots.len().div_ceil(workers))
                .map(|part| scope.spawn(move || part.iter().map(load).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }
}

/// The `crop` x `crop` window at `(x, y)` of a `[3, side, side]` image.
fn crop_chw(pixels: Vec<f32>, side: usize, crop: usize, (x, y): (usize, usize)) -> Vec<f32> {
    if crop == side {
        return pixels;
    }
    let mut out = Vec::with_capacity(3 * crop * crop);
    for plane in pixels.chunks_exact(side * side) {
        for row in plane.chunks_exact(side).skip(y).take(crop) {
            out.extend_from_slice(&row[x..x + crop]);
        }
    }
    out
}

impl<S: ImageTextSource> Iterator for DataLoader<S> {
    type Item = Result<Batch, DataError>;

    /// [`DataLoader::next_batch`]; never `None`.
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_batch())
    }
}
