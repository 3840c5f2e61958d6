//! The run's CSV log, `<out>/log.csv`: one row per optimiser step.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::io;
use crate::{LOG_SNR_EDGES, StepReport, TrainError};

/// The header: `step,loss,lr,grad_norm,steps_per_s,images_per_s`, then
/// one `loss_snr_<lo>_<hi>` column per log-SNR bucket ([`LOG_SNR_EDGES`],
/// `-inf` and `inf` at the ends).
pub(crate) fn header() -> String {
    let mut edges = vec![f64::NEG_INFINITY];
    edges.extend(LOG_SNR_EDGES);
    edges.push(f64::INFINITY);
    let buckets: Vec<String> = edges
        .windows(2)
        .map(|w| format!("loss_snr_{}_{}", w[0], w[1]))
        .collect();
    format!(
        "step,loss,lr,grad_norm,steps_per_s,images_per_s,{}\n",
        buckets.join(",")
    )
}

/// One step's row; a bucket no example fell in is left empty.
pub(crate) fn row(report: &StepReport, steps_per_s: f64, images_per_s: f64) -> String {
    let buckets: Vec<String> = report
        .snr_buckets
        .iter()
        .map(|b| {
            if b.count > 0 {
                b.loss.to_string()
            } else {
                String::new()
            }
        })
        .collect();
    format!(
        "{},{},{},{},{:.4},{:.2},{}\n",
        report.step,
        report.loss,
        report.lr,
        report.grad_norm,
        steps_per_s,
        images_per_s,
        buckets.join(",")
    )
}

/// `log.csv`, opened for appending: a resumed run continues the file, and
/// the header is written only into an empty one.
pub(crate) struct RunLog {
    path: PathBuf,
    file: File,
}

impl RunLog {
    pub(crate) fn open(path: &Path) -> Result<Self, TrainError> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(path))?;
        if file.metadata().map_err(io(path))?.len() == 0 {
            file.write_all(header().as_bytes()).map_err(io(path))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    pub(crate) fn append(
        &mut self,
        report: &StepReport,
        steps_per_s: f64,
        images_per_s: f64,
    ) -> Result<(), TrainError> {
        let line = row(report, steps_per_s, images_per_s);
        self.file.write_all(line.as_bytes()).map_err(io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SnrBucket;

    #[test]
    fn header_and_row_keep_their_format() {
        assert_eq!(
            header(),
            "step,loss,lr,grad_norm,steps_per_s,images_per_s,loss_snr_-inf_-5,\
             loss_snr_-5_-2,loss_snr_-2_0,loss_snr_0_2,loss_snr_2_5,loss_snr_5_inf\n"
        );
        let bucket = |loss, count| SnrBucket {
            lo: 0.0,
            hi: 0.0,
            loss,
            count,
        };
        let report = StepReport {
            step: 7,
            loss: 0.25,
            grad_norm: 1.5,
            lr: 1e-4,
            snr_buckets: vec![
                bucket(0.5, 1),
                bucket(f32::NAN, 0),
                bucket(0.125, 2),
                bucket(f32::NAN, 0),
                bucket(f32::NAN, 0),
                bucket(1.0, 1),
            ],
        };
        assert_eq!(
            row(&report, 2.0 / 3.0, 16.0 / 3.0),
            "7,0.25,0.0001,1.5,0.6667,5.33,0.5,,0.125,,,1\n"
        );
    }
}
