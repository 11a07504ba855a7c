//! cyto_dl's `RandomMultiScaleCropd`: patches cut at the same place from images at integer
//! multiples of one resolution (e.g. a raw image and a 4x super-resolution target).

use indexmap::IndexMap;

use super::{Transform, TransformError};
use crate::array::Array;
use crate::rng::Rng;
use crate::sample::{Field, Sample};

const NAME: &str = "RandomMultiScaleCropd";

/// `scales_dict` maps each key to a scale: one number, or one per spatial axis.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomMultiScaleCropd {
    pub keys: Vec<String>,
    /// The patch at scale 1 (length 2 or 3).
    pub patch_shape: Vec<usize>,
    pub scales: IndexMap<String, Vec<f64>>,
    pub patch_per_image: usize,
    pub allow_missing_keys: bool,
}

impl RandomMultiScaleCropd {
    /// Checks the parameters as cyto_dl's constructor does: a 2D or 3D patch, scales of length 1
    /// or the patch's, and (unlike cyto_dl, which fails later with a KeyError) a scale per key.
    pub fn new(
        keys: Vec<String>,
        patch_shape: Vec<usize>,
        scales_dict: IndexMap<String, Vec<f64>>,
        patch_per_image: usize,
        allow_missing_keys: bool,
    ) -> Result<Self, TransformError> {
        let invalid = |message: String| TransformError::Invalid { transform: NAME, message };
        let dims = patch_shape.len();
        if !(2..=3).contains(&dims) {
            return Err(invalid(format!("patch_shape must be 2D or 3D, got {dims} values")));
        }
        if patch_per_image == 0 {
            return Err(invalid("patch_per_image must be at least 1".into()));
        }
        let mut scales = IndexMap::new();
        for (k, v) in scales_dict {
            if !keys.contains(&k) {
                continue;
            }
            let v = match v.len() {
                1 => vec![v[0]; dims],
                n if n == dims => v,
                n => return Err(invalid(format!("scale of `{k}` has {n} values; give 1 or {dims}"))),
            };
            if v.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                return Err(invalid(format!("scales of `{k}` must be positive, got {v:?}")));
            }
            scales.insert(k, v);
        }
        if let Some(k) = keys.iter().find(|k| !scales.contains_key(*k)) {
            return Err(invalid(format!("key `{k}` has no entry in scales_dict")));
        }
        Ok(RandomMultiScaleCropd { keys, patch_shape, scales, patch_per_image, allow_missing_keys })
    }

    /// The exclusive upper bound of the start (scale-1 coordinates) over all keys present:
    /// `min(shape // s - patch // s)`, zeros raised to 1 so the start can be 0.
    pub fn max_start(&self, shapes: &IndexMap<String, Vec<usize>>) -> Result<Vec<u64>, TransformError> {
        let dims = self.patch_shape.len();
        let mut max = vec![f64::INFINITY; dims];
        for (key, scale) in &self.scales {
            let Some(shape) = shapes.get(key) else { continue };
            if shape.len() < dims {
                return Err(TransformError::Invalid { transform: NAME, message: format!("`{key}` has shape {shape:?}, fewer than {dims} spatial axes") });
            }
            let spatial = &shape[shape.len() - dims..];
            for d in 0..dims {
                let size = (spatial[d] as f64 / scale[d]).floor();
                let roi = (self.patch_shape[d] as f64 / scale[d]).floor();
                max[d] = max[d].min(size - roi);
            }
            if max.iter().any(|m| *m < 0.0) {
                let roi: Vec<f64> = (0..dims).map(|d| (self.patch_shape[d] as f64 / scale[d]).floor()).collect();
                let size: Vec<f64> = (0..dims).map(|d| (spatial[d] as f64 / scale[d]).floor()).collect();
                return Err(TransformError::Invalid {
                    transform: NAME,
                    message: format!("Crop size {roi:?} is too large for image size {size:?} (key `{key}`)"),
                });
            }
            for m in max.iter_mut() {
                if *m == 0.0 {
                    *m = 1.0;
                }
            }
        }
        Ok(max.iter().map(|m| if m.is_finite() { *m as u64 } else { 1 }).collect())
    }

    /// Start and size of `key`'s crop for a scale-1 start: `floor(start * s)`, `floor(patch * s)`.
    pub fn key_box(&self, key: &str, start: &[u64]) -> Option<(Vec<usize>, Vec<usize>)> {
        let scale = self.scales.get(key)?;
        let starts = start.iter().zip(scale).map(|(s, f)| (*s as f64 * f) as usize).collect();
        let sizes = self.patch_shape.iter().zip(scale).map(|(p, f)| (*p as f64 * f) as usize).collect();
        Some((starts, sizes))
    }
}

/// Cuts `[:, start:start+size]` like numpy: a box running past the end is cut short there.
/// A 2D image under a 3D box drops the box's Z part (cyto_dl's `_apply_slice`).
fn cut(a: &Array, start: &[usize], size: &[usize]) -> Array {
    let nd = a.ndim();
    // Channel-first: the array's spatial axes are all but the first.
    let (start, size) = if nd.saturating_sub(1) + 1 == start.len() { (&start[1..], &size[1..]) } else { (start, size) };
    let start = &start[start.len().saturating_sub(nd)..];
    let size = &size[size.len().saturating_sub(nd)..];
    let mut full_start = vec![0; nd];
    let mut full_size = a.shape().to_vec();
    let offset = nd - start.len();
    for d in 0..start.len() {
        let dim = a.shape()[offset + d];
        let s = start[d].min(dim);
        full_start[offset + d] = s;
        full_size[offset + d] = size[d].min(dim - s);
    }
    a.crop(&full_start, &full_size)
}

impl Transform for RandomMultiScaleCropd {
    fn name(&self) -> &'static str {
        NAME
    }

    fn is_random(&self) -> bool {
        true
    }

    fn apply(&self, sample: Sample, rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let mut shapes = IndexMap::new();
        for key in &self.keys {
            match sample.fields.get(key) {
                Some(Field::Array(a)) => {
                    shapes.insert(key.clone(), a.shape().to_vec());
                }
                Some(Field::Text(_)) => return Err(TransformError::NotLoaded { transform: NAME, key: key.clone() }),
                None if self.allow_missing_keys => {}
                None => return Err(TransformError::MissingKey { transform: NAME, key: key.clone() }),
            }
        }
        let mut out = Vec::with_capacity(self.patch_per_image);
        for _ in 0..self.patch_per_image {
            let max = self.max_start(&shapes)?;
            let start: Vec<u64> = max.iter().map(|m| rng.below(*m)).collect();
            let mut patch = sample.clone();
            for key in shapes.keys() {
                let Some((s, z)) = self.key_box(key, &start) else { continue };
                if let Some(a) = sample.array(key) {
                    patch.set_array(key, cut(a, &s, &z));
                }
            }
            out.push(patch);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(shape: Vec<usize>) -> Array {
        let n = shape.iter().product::<usize>();
        Array::new(shape, (0..n).map(|v| v as f32).collect()).unwrap()
    }

    fn cropper(scales: &[(&str, Vec<f64>)], patch: Vec<usize>) -> RandomMultiScaleCropd {
        let keys = scales.iter().map(|(k, _)| k.to_string()).collect();
        let s = scales.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        RandomMultiScaleCropd::new(keys, patch, s, 1, false).unwrap()
    }

    #[test]
    fn max_start_uses_floor_of_patch_over_scale_and_bumps_zero() {
        let c = cropper(&[("raw", vec![1.0]), ("seg", vec![4.0])], vec![4, 8, 8]);
        let shapes: IndexMap<String, Vec<usize>> = [("raw".to_string(), vec![1, 10, 32, 32]), ("seg".to_string(), vec![1, 40, 128, 128])].into_iter().collect();
        // raw: 10-4=6, 32-8=24; seg: 40//4 - 4//4... floor(40/4)-floor(4/4)=9, floor(128/4)-floor(8/4)=30 -> min 6, 24, 24.
        assert_eq!(c.max_start(&shapes).unwrap(), vec![6, 24, 24]);
        let same: IndexMap<String, Vec<usize>> = [("raw".to_string(), vec![1, 4, 8, 8])].into_iter().collect();
        let c1 = cropper(&[("raw", vec![1.0])], vec![4, 8, 8]);
        assert_eq!(c1.max_start(&same).unwrap(), vec![1, 1, 1], "a patch as large as the image starts at 0");
        let small: IndexMap<String, Vec<usize>> = [("raw".to_string(), vec![1, 3, 8, 8])].into_iter().collect();
        assert!(c1.max_start(&small).is_err());
    }

    #[test]
    fn each_key_is_cut_at_start_times_scale() {
        let c = cropper(&[("raw", vec![1.0]), ("seg", vec![2.0])], vec![2, 4]);
        assert_eq!(c.key_box("seg", &[3, 5]), Some((vec![6, 10], vec![4, 8])));
        let sample = Sample::new().with_array("raw", ramp(vec![1, 8, 8])).with_array("seg", ramp(vec![1, 16, 16]));
        let mut rng = Rng::seed_from(7);
        let out = c.apply(sample, &mut rng).unwrap();
        assert_eq!(out.len(), 1);
        let raw = out[0].array("raw").unwrap();
        let seg = out[0].array("seg").unwrap();
        assert_eq!(raw.shape(), &[1, 2, 4]);
        assert_eq!(seg.shape(), &[1, 4, 8]);
        // The seg patch starts at twice the raw patch's start.
        let (ry, rx) = ((raw.at(&[0, 0, 0]) as usize) / 8, (raw.at(&[0, 0, 0]) as usize) % 8);
        let (sy, sx) = ((seg.at(&[0, 0, 0]) as usize) / 16, (seg.at(&[0, 0, 0]) as usize) % 16);
        assert_eq!((sy, sx), (2 * ry, 2 * rx));
    }

    #[test]
    fn start_is_never_the_last_valid_offset_and_covers_the_rest() {
        // numpy's randint(high) excludes `high`: with room for offsets 0..=2, only 0 and 1 are drawn.
        let c = cropper(&[("raw", vec![1.0])], vec![6, 1]);
        let mut seen = std::collections::BTreeSet::new();
        let mut rng = Rng::seed_from(1);
        for _ in 0..200 {
            let s = Sample::new().with_array("raw", ramp(vec![1, 8, 1]));
            let out = c.apply(s, &mut rng).unwrap();
            seen.insert(out[0].array("raw").unwrap().at(&[0, 0, 0]) as usize);
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn several_patches_and_2d_image_under_3d_patch() {
        // As in cyto_dl, the 2D image's channel axis stands in for Z when sizing, so the patch's Z is 1.
        let mut c = cropper(&[("raw", vec![1.0]), ("proj", vec![1.0])], vec![1, 4, 4]);
        c.patch_per_image = 3;
        let s = Sample::new().with_array("raw", ramp(vec![1, 4, 8, 8])).with_array("proj", ramp(vec![1, 8, 8])).with_text("id", "a");
        let out = c.apply(s, &mut Rng::seed_from(3)).unwrap();
        assert_eq!(out.len(), 3);
        for p in &out {
            assert_eq!(p.array("raw").unwrap().shape(), &[1, 1, 4, 4]);
            assert_eq!(p.array("proj").unwrap().shape(), &[1, 4, 4]);
            assert_eq!(p.text("id"), Some("a"), "other fields are copied into each patch");
        }
    }

    #[test]
    fn every_key_needs_a_scale() {
        let r = RandomMultiScaleCropd::new(vec!["raw".into(), "seg".into()], vec![4, 4], [("raw".to_string(), vec![1.0])].into_iter().collect(), 1, false);
        assert!(matches!(r, Err(TransformError::Invalid { .. })));
    }
}
