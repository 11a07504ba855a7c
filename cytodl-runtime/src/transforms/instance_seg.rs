//! cyto_dl's `InstanceSegPreprocessd` as a pipeline step (the target computation itself is
//! [`crate::instance_seg::preprocess`]).

use super::{for_each_key, Transform, TransformError};
use crate::instance_seg::preprocess::InstanceSegPreprocess;
use crate::rng::Rng;
use crate::sample::Sample;

/// Replaces each label key `[1, (Z,) Y, X]` by its instance-segmentation target.
#[derive(Debug, Clone)]
pub struct InstanceSegPreprocessd {
    pub keys: Vec<String>,
    pub params: InstanceSegPreprocess,
    pub allow_missing_keys: bool,
}

impl Transform for InstanceSegPreprocessd {
    fn name(&self) -> &'static str {
        "InstanceSegPreprocessd"
    }

    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, self.name(), |a| {
            *a = self.params.apply(a).map_err(|e| TransformError::Invalid { transform: "InstanceSegPreprocessd", message: e.to_string() })?;
            Ok(())
        })?;
        Ok(vec![sample])
    }
}
