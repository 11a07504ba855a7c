//! Transforms that add, drop or combine a sample's keys: cyto_dl's `RemoveNaNKeysd` and
//! `Merged`, MONAI's `SelectItemsd`.

use super::{Transform, TransformError};
use crate::rng::Rng;
use crate::sample::{Field, Sample};

/// What pandas reads as NaN by default (`read_csv`'s `na_values`).
const PANDAS_NA: &[&str] = &[
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// cyto_dl's `RemoveNaNKeysd`: drops the manifest cells pandas would read as NaN.
#[derive(Debug, Clone, Default)]
pub struct RemoveNaNKeysd;

impl Transform for RemoveNaNKeysd {
    fn name(&self) -> &'static str {
        "RemoveNaNKeysd"
    }

    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        sample.fields.retain(|_, f| !matches!(f, Field::Text(t) if PANDAS_NA.contains(&t.trim())));
        Ok(vec![sample])
    }
}

/// MONAI's `SelectItemsd`: keeps only `keys`.
#[derive(Debug, Clone)]
pub struct SelectItemsd {
    pub keys: Vec<String>,
    pub allow_missing_keys: bool,
}

impl Transform for SelectItemsd {
    fn name(&self) -> &'static str {
        "SelectItemsd"
    }

    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        if !self.allow_missing_keys {
            if let Some(k) = self.keys.iter().find(|k| !sample.fields.contains_key(*k)) {
                return Err(TransformError::MissingKey { transform: "SelectItemsd", key: k.clone() });
            }
        }
        sample.fields.retain(|k, _| self.keys.contains(k));
        Ok(vec![sample])
    }
}

/// cyto_dl's `Merged`: `output_name` becomes the base image (named by the `base_image_key`
/// cell) where the mask is set and the other image elsewhere; without a mask, the base image.
/// The mask key is dropped when absent.
#[derive(Debug, Clone)]
pub struct Merged {
    pub mask_key: String,
    pub image_keys: [String; 2],
    pub base_image_key: String,
    pub output_name: String,
}

impl Transform for Merged {
    fn name(&self) -> &'static str {
        "Merged"
    }

    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let invalid = |message: String| TransformError::Invalid { transform: "Merged", message };
        let base_name = match sample.fields.get(&self.base_image_key) {
            Some(Field::Text(t)) => t.trim().to_string(),
            Some(Field::Array(_)) => return Err(invalid(format!("`{}` must name an image key, found an image", self.base_image_key))),
            None => return Err(TransformError::MissingKey { transform: "Merged", key: self.base_image_key.clone() }),
        };
        let Some(base_index) = self.image_keys.iter().position(|k| *k == base_name) else {
            return Err(invalid(format!("the base image name `{base_name}` must be one of [{}]", self.image_keys.join(", "))));
        };
        let image = |s: &Sample, key: &str| match s.fields.get(key) {
            Some(Field::Array(a)) => Ok(a.clone()),
            Some(Field::Text(_)) => Err(TransformError::NotLoaded { transform: "Merged", key: key.to_string() }),
            None => Err(TransformError::MissingKey { transform: "Merged", key: key.to_string() }),
        };
        let base = image(&sample, &base_name)?;
        let merged = match sample.fields.get(&self.mask_key) {
            None => {
                sample.fields.shift_remove(&self.mask_key);
                base
            }
            Some(_) => {
                let mask = image(&sample, &self.mask_key)?;
                let other = image(&sample, &self.image_keys[1 - base_index])?;
                if mask.shape() != base.shape() || other.shape() != base.shape() {
                    return Err(invalid(format!("mask {:?} and images {:?}, {:?} differ in shape", mask.shape(), base.shape(), other.shape())));
                }
                let data = mask.data().iter().zip(base.data()).zip(other.data()).map(|((m, b), o)| if *m != 0.0 { *b } else { *o }).collect();
                crate::array::Array::new(base.shape().to_vec(), data).map_err(|e| invalid(e.to_string()))?
            }
        };
        sample.fields.insert(self.output_name.clone(), Field::Array(merged));
        Ok(vec![sample])
    }
}
