//! Dictionary transforms with MONAI / cyto_dl semantics, applied to named keys of a [`Sample`].
//!
//! Random transforms draw their parameters once per sample from the sample's own [`Rng`] and
//! apply them to every key, as MONAI's dictionary transforms do. The persistent cache stores the
//! output of the deterministic prefix of a pipeline (up to the first random transform).

use thiserror::Error;

use crate::array::Array;
use crate::io::ReadError;
use crate::rng::Rng;
use crate::sample::{Field, Sample};

#[derive(Debug, Error)]
pub enum TransformError {
    #[error("{transform}: key `{key}` is not in the sample")]
    MissingKey { transform: &'static str, key: String },
    #[error("{transform}: key `{key}` is not loaded yet (add LoadImaged before it)")]
    NotLoaded { transform: &'static str, key: String },
    #[error("{transform}: {message}")]
    Invalid { transform: &'static str, message: String },
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// One step of a pipeline.
pub trait Transform: Send + Sync + std::fmt::Debug {
    /// MONAI's class name (`NormalizeIntensityd`), for messages.
    fn name(&self) -> &'static str;
    /// Whether this transform draws random numbers.
    fn is_random(&self) -> bool {
        false
    }
    /// A stable text of the transform and all its parameters; part of the cache key. The
    /// `Debug` text names the type and every field, which is what the cache must depend on.
    fn cache_key(&self) -> String {
        format!("{self:?}")
    }
    /// Applies to one sample. Most transforms return one sample; patch samplers return several.
    fn apply(&self, sample: Sample, rng: &mut Rng) -> Result<Vec<Sample>, TransformError>;
}

/// Runs `f` on the array of each key (MONAI's `allow_missing_keys` skips absent keys).
pub fn for_each_key(
    sample: &mut Sample,
    keys: &[String],
    allow_missing: bool,
    transform: &'static str,
    mut f: impl FnMut(&mut Array) -> Result<(), TransformError>,
) -> Result<(), TransformError> {
    for key in keys {
        match sample.fields.get_mut(key) {
            Some(Field::Array(a)) => f(a)?,
            Some(Field::Text(_)) => return Err(TransformError::NotLoaded { transform, key: key.clone() }),
            None if allow_missing => {}
            None => return Err(TransformError::MissingKey { transform, key: key.clone() }),
        }
    }
    Ok(())
}

/// An ordered list of transforms for one split.
#[derive(Default, Debug)]
pub struct Pipeline {
    steps: Vec<Box<dyn Transform>>,
}

impl Pipeline {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(mut self, t: impl Transform + 'static) -> Self {
        self.steps.push(Box::new(t));
        self
    }

    pub fn steps(&self) -> &[Box<dyn Transform>] {
        &self.steps
    }

    /// How many leading steps are deterministic (what the persistent cache may store).
    pub fn deterministic_len(&self) -> usize {
        self.steps.iter().position(|t| t.is_random()).unwrap_or(self.steps.len())
    }

    /// The cache key of the first `n` steps.
    pub fn prefix_key(&self, n: usize) -> String {
        self.steps[..n].iter().map(|t| t.cache_key()).collect::<Vec<_>>().join("\n")
    }

    /// Runs steps `from..to` on each sample (patch samplers multiply them).
    pub fn run_range(&self, samples: Vec<Sample>, from: usize, to: usize, rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let mut current = samples;
        for step in &self.steps[from..to] {
            let mut next = Vec::with_capacity(current.len());
            for s in current {
                next.extend(step.apply(s, rng)?);
            }
            current = next;
        }
        Ok(current)
    }

    pub fn run(&self, sample: Sample, rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        self.run_range(vec![sample], 0, self.steps.len(), rng)
    }
}

pub mod multiscale;
pub use multiscale::RandomMultiScaleCropd;

pub mod instance_seg;
pub mod intensity;
pub mod items;
pub mod random;
pub mod spatial;
pub use intensity::{Clipd, NormalizeIntensityd, ScaleIntensityRangePercentilesd, ScaleIntensityRanged, ThresholdIntensityd};
pub use random::{RandAdjustContrastd, RandFlipd, RandGaussianNoised, RandHistogramShiftd, RandRotate90d, RandSpatialCropSamplesd, RandStdShiftIntensityd};
pub use spatial::{CenterSpatialCropd, ChannelDim, EnsureChannelFirstd, InterpMode, PadMode, SpatialPadd, ToTensord, Zoomd};

pub mod from_config;
pub mod load;
pub use load::LoadImaged;
