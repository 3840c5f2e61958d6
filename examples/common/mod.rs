//! What the generation examples share: per-stage CLI options and progress bars.

use std::path::Path;

use std::path::PathBuf;

use imagen::pipeline::{GenerateRequest, Generated, StageOverrides, StageProgress, save_png};
use indicatif::{ProgressBar, ProgressStyle};

/// Per-stage settings given as comma lists (`--steps 50,25`); an empty or
/// missing entry keeps the stage's default.
#[derive(clap::Args, Debug, Default)]
pub struct StageArgs {
    /// Sampler steps per stage, e.g. `100,50`.
    #[arg(long, value_delimiter = ',')]
    pub steps: Vec<usize>,
    /// Guidance scale per stage, e.g. `7,4`.
    #[arg(long, value_delimiter = ',')]
    pub guidance: Vec<f64>,
    /// Noise-augmentation level per super-resolution stage (IF: 250).
    #[arg(long, value_delimiter = ',')]
    pub noise_level: Vec<usize>,
}

impl StageArgs {
    /// The overrides of every stage in `0..stages`.
    pub fn overrides(&self, stages: usize) -> Vec<StageOverrides> {
        (0..stages)
            .map(|i| StageOverrides {
                steps: self.steps.get(i).copied(),
                guidance_scale: self.guidance.get(i).copied(),
                noise_level: self.noise_level.get(i).copied(),
                ..Default::default()
            })
            .collect()
    }
}

/// The request options every generation example takes.
#[derive(clap::Args, Debug)]
pub struct RequestArgs {
    /// The prompt.
    pub prompt: String,
    /// Negative prompt (default: the empty prompt).
    #[arg(long)]
    pub negative: Option<String>,
    /// Number of images.
    #[arg(long, default_value_t = 1)]
    pub images: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub stages: StageArgs,
    /// Output PNG (several images: `<stem>-<i>.png`).
    #[arg(long, default_value = "imagen.png")]
    pub output: PathBuf,
}

impl RequestArgs {
    /// The request for a cascade of `stages` stages.
    pub fn request(&self, stages: usize) -> GenerateRequest {
        let mut req = GenerateRequest::new(&self.prompt)
            .images_per_prompt(self.images)
            .seed(self.seed);
        if let Some(n) = &self.negative {
            req = req.negative(n);
        }
        req.stages = self.stages.overrides(stages);
        req
    }
}

/// A progress callback drawing one bar per stage.
pub fn progress_bars() -> impl FnMut(StageProgress) {
    let mut bar: Option<(usize, ProgressBar)> = None;
    move |p: StageProgress| {
        if bar.as_ref().is_none_or(|(stage, _)| *stage != p.stage) {
            if let Some((_, old)) = bar.take() {
                old.finish();
            }
            let b = ProgressBar::new(p.total as u64).with_style(
                ProgressStyle::with_template("stage {msg} [{bar:30}] {pos}/{len} {per_sec}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b.set_message(format!("{}/{}", p.stage + 1, p.stages));
            bar = Some((p.stage, b));
        }
        if let Some((_, b)) = &bar {
            b.set_position(p.step as u64);
            if p.step == p.total {
                b.finish();
            }
        }
    }
}

/// Writes the images as `output` (one image) or `stem-<i>.png`, and reports
/// truncated prompts.
pub fn write_images(out: &Generated, output: &Path) -> Result<(), Box<dyn std::error::Error>> {
    for t in &out.truncated {
        eprintln!("warning: {t}");
    }
    if out.images.len() == 1 {
        save_png(&out.images[0], output)?;
        println!("wrote {}", output.display());
        return Ok(());
    }
    let stem = output.with_extension("");
    for (i, img) in out.images.iter().enumerate() {
        let path = format!("{}-{i}.png", stem.display());
        save_png(img, &path)?;
        println!("wrote {path}");
    }
    Ok(())
}
