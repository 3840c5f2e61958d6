//! Faint background textures: low-contrast patterns that segmentation ignores.

use serde::{Deserialize, Serialize};

/// Peak offset a texture adds to the background, in 0-255 units per channel.
pub const TEXTURE_CONTRAST: f32 = 10.0;

/// A faint background pattern, defined in normalised canvas coordinates so
/// that it looks the same at every resolution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Texture {
    /// No pattern.
    Plain,
    /// Smooth (sinusoidal) stripes.
    Stripes {
        /// Stripes run top to bottom when true, left to right otherwise.
        vertical: bool,
        /// Period as a fraction of the canvas.
        period: f32,
    },
    /// A checkerboard.
    Checker {
        /// Side of one cell as a fraction of the canvas.
        cell: f32,
    },
    /// Smooth value noise on a 10 x 10 lattice.
    Noise {
        /// Seed of the lattice values.
        seed: u32,
    },
}

impl Texture {
    /// The offset in `[-1, 1]` the pattern adds at normalised point `(x, y)`;
    /// multiplied by [`TEXTURE_CONTRAST`] when rendering.
    ///
    /// ```
    /// use imagen_shapes::Texture;
    /// assert_eq!(Texture::Plain.offset(0.3, 0.7), 0.0);
    /// let v = Texture::Noise { seed: 7 }.offset(0.3, 0.7);
    /// assert!((-1.0..=1.0).contains(&v));
    /// ```
    pub fn offset(&self, x: f32, y: f32) -> f32 {
        use std::f32::consts::TAU;
        match *self {
            Texture::Plain => 0.0,
            Texture::Stripes { vertical, period } => {
                let t = if vertical { x } else { y };
                (TAU * t / period.max(1e-3)).sin()
            }
            Texture::Checker { cell } => {
                let c = cell.max(1e-3);
                let parity = ((x / c).floor() as i64 + (y / c).floor() as i64).rem_euclid(2);
                if parity == 0 { 0.8 } else { -0.8 }
            }
            Texture::Noise { seed } => value_noise(seed, x * 10.0, y * 10.0),
        }
    }
}

impl Texture {
    /// [`Texture::offset`] at every pixel centre of an `n x n` image, row-major;
    /// `None` for [`Texture::Plain`]. Separable work is done once per row and
    /// column, which keeps rendering fast in unoptimised builds.
    pub(crate) fn raster(&self, n: usize) -> Option<Vec<f32>> {
        let coord: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
        let mut out = vec![0.0_f32; n * n];
        match *self {
            Texture::Plain => return None,
            Texture::Stripes { vertical, .. } => {
                let line: Vec<f32> = coord.iter().map(|&t| self.offset(t, t)).collect();
                for (i, v) in out.iter_mut().enumerate() {
                    *v = if vertical { line[i % n] } else { line[i / n] };
                }
            }
            Texture::Checker { cell } => {
                let c = cell.max(1e-3);
                let cells: Vec<i64> = coord.iter().map(|&t| (t / c).floor() as i64).collect();
                for (i, v) in out.iter_mut().enumerate() {
                    *v = if (cells[i % n] + cells[i / n]).rem_euclid(2) == 0 {
                        0.8
                    } else {
                        -0.8
                    };
                }
            }
            Texture::Noise { seed } => {
                // Smoothstep-weighted lattice cell of every column (and row).
                let cells: Vec<(usize, f32)> = coord
                    .iter()
                    .map(|&t| {
                        let x = t * 10.0;
                        let f = x - x.floor();
                        ((x.floor() as usize).min(10), f * f * (3.0 - 2.0 * f))
                    })
                    .collect();
                // Each lattice row interpolated along x once, then rows blend along y.
                let rows: Vec<Vec<f32>> = (0..12)
                    .map(|j| {
                        cells
                            .iter()
                            .map(|&(i, s)| {
                                let (a, b) =
                                    (lattice(seed, i as i64, j), lattice(seed, i as i64 + 1, j));
                                a + (b - a) * s
                            })
                            .collect()
                    })
                    .collect();
                for (y, &(j, sy)) in cells.iter().enumerate() {
                    let (top, bottom) = (&rows[j], &rows[j + 1]);
                    let line = &mut out[y * n..(y + 1) * n];
                    for x in 0..n {
                        line[x] = top[x] + (bottom[x] - top[x]) * sy;
                    }
                }
            }
        }
        Some(out)
    }
}

/// A random texture: plain with probability `plain`, else stripes, checker or noise.
pub(crate) fn random_texture<R: rand::Rng + ?Sized>(rng: &mut R, plain: f64) -> Texture {
    use crate::random::{chance, pick, uniform};
    use rand::RngExt;
    if chance(rng, plain) {
        return Texture::Plain;
    }
    let period = pick(rng, &[1.0 / 6.0, 1.0 / 8.0, 1.0 / 12.0]).unwrap_or(0.125);
    match rng.random_range(0..3) {
        0 => Texture::Stripes {
            vertical: rng.random::<bool>(),
            period,
        },
        1 => Texture::Checker {
            cell: period * uniform(rng, 0.5, 1.0),
        },
        _ => Texture::Noise {
            seed: rng.random::<u32>(),
        },
    }
}

/// Bilinear value noise with smoothstep weights, in `[-1, 1]`.
fn value_noise(seed: u32, x: f32, y: f32) -> f32 {
    let (ix, iy) = (x.floor(), y.floor());
    let (fx, fy) = (x - ix, y - iy);
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let (i, j) = (ix as i64, iy as i64);
    let v00 = lattice(seed, i, j);
    let v10 = lattice(seed, i + 1, j);
    let v01 = lattice(seed, i, j + 1);
    let v11 = lattice(seed, i + 1, j + 1);
    let top = v00 + (v10 - v00) * sx;
    let bottom = v01 + (v11 - v01) * sx;
    top + (bottom - top) * sy
}

/// A hashed lattice value in `[-1, 1]` (splitmix64 finaliser).
fn lattice(seed: u32, i: i64, j: i64) -> f32 {
    let mut z = u64::from(seed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((i as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add((j as u64).wrapping_mul(0x94D0_49BB_1331_11EB));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_stay_in_range() {
        let textures = [
            Texture::Stripes {
                vertical: true,
                period: 0.1,
            },
            Texture::Checker { cell: 0.125 },
            Texture::Noise { seed: 3 },
        ];
        for t in textures {
            for k in 0..400 {
                let (x, y) = ((k % 20) as f32 / 19.0, (k / 20) as f32 / 19.0);
                let v = t.offset(x, y);
                assert!((-1.0..=1.0).contains(&v), "{t:?} {v}");
            }
        }
    }

    #[test]
    fn raster_matches_offset() {
        let textures = [
            Texture::Stripes {
                vertical: true,
                period: 0.1,
            },
            Texture::Stripes {
                vertical: false,
                period: 0.17,
            },
            Texture::Checker { cell: 0.125 },
            Texture::Noise { seed: 3 },
        ];
        let n = 37;
        for t in textures {
            let r = t.raster(n).unwrap();
            for (i, v) in r.iter().enumerate() {
                let (x, y) = (
                    ((i % n) as f32 + 0.5) / n as f32,
                    ((i / n) as f32 + 0.5) / n as f32,
                );
                assert!((v - t.offset(x, y)).abs() < 1e-4, "{t:?} at {i}");
            }
        }
        assert_eq!(Texture::Plain.raster(4), None);
    }

    #[test]
    fn noise_depends_on_seed() {
        let a = Texture::Noise { seed: 1 }.offset(0.33, 0.47);
        let b = Texture::Noise { seed: 2 }.offset(0.33, 0.47);
        assert_ne!(a, b);
    }
}
