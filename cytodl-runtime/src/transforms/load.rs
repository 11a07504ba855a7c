//! `LoadImaged` with cyto_dl's `MonaiBioReader`: a key's path becomes an `f32` array.

use std::path::PathBuf;

use super::{Transform, TransformError};
use crate::io::{self, Selection};
use crate::rng::Rng;
use crate::sample::{Field, Sample};

const NAME: &str = "LoadImaged";

/// Reads the file named by each key with one reader selection (`dimension_order_out`, `C`, `Z`, `T`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadImaged {
    pub keys: Vec<String>,
    pub selection: Selection,
    /// MONAI's `expand_user`: `~/x` means the home folder.
    pub expand_user: bool,
    pub allow_missing_keys: bool,
}

impl LoadImaged {
    pub fn new(keys: Vec<String>, selection: Selection) -> Self {
        LoadImaged { keys, selection, expand_user: true, allow_missing_keys: false }
    }
}

fn expand(path: &str, expand_user: bool) -> PathBuf {
    if expand_user {
        if let (Some(rest), Some(home)) = (path.strip_prefix("~/"), std::env::var_os("HOME")) {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(path)
}

impl Transform for LoadImaged {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        for key in &self.keys {
            let path = match sample.fields.get(key) {
                Some(Field::Text(t)) => expand(t, self.expand_user),
                Some(Field::Array(_)) => return Err(TransformError::Invalid { transform: NAME, message: format!("key `{key}` is already an image") }),
                None if self.allow_missing_keys => continue,
                None => return Err(TransformError::MissingKey { transform: NAME, key: key.clone() }),
            };
            let (array, info) = io::read(&path, &self.selection)?;
            sample.origin.files.insert(key.clone(), path);
            sample.origin.pixel_sizes.insert(key.clone(), info.pixel_sizes);
            sample.set_array(key, array);
        }
        Ok(vec![sample])
    }
}
