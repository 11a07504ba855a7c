//! cyto_dl's `InstanceSegCluster`: from the network's skeleton, semantic and embedding channels
//! to instance labels (uint16). Each connected component of the semantic mask is split by the
//! skeletons inside it: skeleton voxels keep their skeleton's label, every other voxel of the
//! object follows its embedding vector to a point and takes the label of the nearest skeleton
//! boundary voxel.
//!
//! Exact to cyto_dl 0.6.2, quirks included: the prediction is rounded to float16 first; the
//! "small skeleton" test sums the label values in the skeleton's box, not its voxel count; a z
//! coordinate is `linspace(0, Z · anisotropy - 1, Z)`; embedded points are rounded half to even.

use super::grid::{find_objects, inner_boundaries, label, pad_bounds, present_labels, relabel_sequential, Bounds, Grid};
use super::nearest::NearestPoints;
use rayon::prelude::*;

use crate::array::Array;

/// The clustering's parameters (cyto_dl's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSegCluster {
    /// 2 or 3.
    pub dim: usize,
    /// Z spacing relative to Y / X (3-D only).
    pub anisotropy: f64,
    /// Skeleton voxels: skeleton channel above this.
    pub skel_threshold: f64,
    /// Object voxels: semantic channel above this.
    pub semantic_threshold: f64,
    /// Skeletons off the image edge whose box sums to less are dropped.
    pub min_size: i64,
    /// Embedded points farther from every skeleton stay unlabelled.
    pub distance_threshold: f64,
}

impl Default for InstanceSegCluster {
    fn default() -> Self {
        InstanceSegCluster { dim: 3, anisotropy: 2.6, skel_threshold: 0.0, semantic_threshold: 0.0, min_size: 1000, distance_threshold: 100.0 }
    }
}

/// A prediction the clustering cannot take.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    #[error("InstanceSegCluster(dim={dim}) needs {need} channels (skeleton, semantic, {dim} embedding) of a {dim}-D image, got shape {shape:?}")]
    Shape { dim: usize, need: usize, shape: Vec<usize> },
}

/// torch's `.half()`: the nearest float16 value (as f64). Normal float16 magnitudes are
/// rounded in place (mantissa to 10 bits, ties to even); the rest goes through `half`.
#[inline]
fn half(v: f32) -> f64 {
    let bits = v.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    if (-14..=15).contains(&exponent) {
        let rounded = f32::from_bits((bits + 0x0fff + ((bits >> 13) & 1)) & !0x1fff);
        if rounded.abs() <= 65504.0 {
            return rounded as f64;
        }
    }
    half::f16::from_f32(v).to_f64()
}

/// numpy's `linspace(0, stop, n)`: `k · step`, the last value exactly `stop`.
fn linspace(stop: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![0.0];
    }
    let step = stop / (n - 1) as f64;
    (0..n).map(|k| if k + 1 == n { stop } else { k as f64 * step }).collect()
}

impl InstanceSegCluster {
    /// Per spatial axis of the `[Z, Y, X]` grid: the anisotropy cyto_dl applies (2-D: none).
    fn axis_scale(&self) -> [f64; 3] {
        if self.dim == 3 {
            [self.anisotropy, 1.0, 1.0]
        } else {
            [1.0, 1.0, 1.0]
        }
    }

    /// The spatial axes cyto_dl sees (2-D: Y and X only).
    fn axes(&self) -> std::ops::Range<usize> {
        (3 - self.dim)..3
    }

    /// Instance labels of a prediction `[C, (Z,) Y, X]` with `C >= 2 + dim` (channel 0 skeleton,
    /// 1 semantic, 2.. embedding), the shape of its spatial axes.
    pub fn apply(&self, image: &Array) -> Result<Array, ClusterError> {
        let shape = image.shape();
        let need = 2 + self.dim;
        let spatial: [usize; 3] = match (self.dim, shape) {
            (3, [c, z, y, x]) if *c >= need => [*z, *y, *x],
            (2, [c, y, x]) if *c >= need => [1, *y, *x],
            _ => return Err(ClusterError::Shape { dim: self.dim, need, shape: shape.to_vec() }),
        };
        let n: usize = spatial.iter().product();
        let semantic_threshold = half(self.semantic_threshold as f32);
        let objects = if semantic_threshold == 0.0 {
            // float16(v) > 0 exactly when v exceeds half the smallest float16 subnormal.
            Grid::new(spatial, image.data()[n..2 * n].iter().map(|v| *v > f32::from_bits(0x3300_0000)).collect())
        } else {
            Grid::new(spatial, image.data()[n..2 * n].iter().map(|v| half(*v) > semantic_threshold).collect())
        };
        let (naive, _) = label(&objects);
        // Skeleton and embedding are read (as float16) only at each object's voxels.
        let boxes: Vec<(u32, Bounds)> =
            find_objects(&naive).into_iter().enumerate().filter_map(|(i, b)| b.map(|b| (i as u32 + 1, pad_bounds(&b, 1, spatial)))).collect();
        // Objects are independent: clustered in parallel, numbered in order afterwards.
        let masks: Vec<Grid<u32>> = boxes
            .par_iter()
            .map(|(lab, region)| {
                let semantic = Grid::new(region_shape(region), naive.crop(region).data.iter().map(|v| v == lab).collect());
                let at = |c: usize, p: [usize; 3]| {
                    let k = ((region[0].0 + p[0]) * spatial[1] + region[1].0 + p[1]) * spatial[2] + region[2].0 + p[2];
                    half(image.data()[c * n + k])
                };
                self.cluster_object(semantic, |p| at(0, p), |e, p| at(2 + e, p))
            })
            .collect();
        let mut out = Grid::filled(spatial, 0u32);
        let mut highest = 0u32;
        for ((_, region), mask) in boxes.iter().zip(&masks) {
            let max = mask.data.iter().copied().max().unwrap_or(0);
            let [oz, oy, ox] = [region[0].0, region[1].0, region[2].0];
            mask.for_each_voxel(|j, z, y, x| {
                let v = mask.data[j];
                if v > 0 {
                    let k = out.index(oz + z, oy + y, ox + x);
                    out.data[k] += v + highest;
                }
            });
            highest += max;
        }
        let out_shape: Vec<usize> = shape[1..].to_vec();
        Ok(Array::new(out_shape, out.data.iter().map(|v| (*v as u16) as f32).collect()).expect("the image's own size"))
    }

    /// Skeletons off the image edge whose box sums (label values) to less than `min_size`.
    fn remove_small_skeletons(&self, skel: &Grid<u32>) -> Grid<u32> {
        let mut kept = skel.clone();
        for (i, b) in find_objects(skel).into_iter().enumerate() {
            let Some(b) = b else { continue };
            let lab = i as u32 + 1;
            let is_edge = self.axes().any(|a| b[a].0 == 0 || b[a].1 >= skel.shape[a]);
            if is_edge {
                continue;
            }
            let sum: i64 = skel.crop(&b).data.iter().map(|v| *v as i64).sum();
            if sum < self.min_size {
                for z in b[0].0..b[0].1 {
                    for y in b[1].0..b[1].1 {
                        for x in b[2].0..b[2].1 {
                            let k = kept.index(z, y, x);
                            if skel.data[k] == lab {
                                kept.data[k] = 0;
                            }
                        }
                    }
                }
            }
        }
        kept
    }

    /// One object (`semantic`, padded by one voxel) split by its skeletons.
    /// `skeleton(p)` and `embedding(e, p)` read the prediction (float16) at a voxel `p` of the box.
    fn cluster_object(&self, semantic: Grid<bool>, skeleton: impl Fn([usize; 3]) -> f64, embedding: impl Fn(usize, [usize; 3]) -> f64) -> Grid<u32> {
        let shape = semantic.shape;
        let threshold = half(self.skel_threshold as f32);
        let mut on_skeleton = Grid::filled(shape, false);
        semantic.for_each_voxel(|i, z, y, x| on_skeleton.data[i] = semantic.data[i] && skeleton([z, y, x]) > threshold);
        let (labels, _) = label(&on_skeleton);
        let mut labels = self.remove_small_skeletons(&labels);
        match present_labels(&labels).len() {
            0 => return Grid::filled(shape, 0),
            1 => return Grid::new(shape, semantic.data.iter().map(|m| *m as u32).collect()),
            _ => {}
        }
        // Where each voxel's embedding points, in voxels (z in anisotropic units, undone).
        let scale = self.axis_scale();
        let coords: Vec<Vec<f64>> = (0..3).map(|a| linspace(shape[a] as f64 * scale[a] - 1.0, shape[a])).collect();
        let skeleton_boundary = inner_boundaries(&labels);
        let mut boundary_points: Vec<[i64; 3]> = Vec::new();
        let mut boundary_labels: Vec<u32> = Vec::new();
        labels.for_each_voxel(|i, z, y, x| {
            if skeleton_boundary.data[i] {
                boundary_points.push([z as i64, y as i64, x as i64]);
                boundary_labels.push(labels.data[i]);
            }
        });
        let tree = NearestPoints::new(&boundary_points);
        let axes: Vec<usize> = self.axes().collect();
        let max_d2 = self.distance_threshold * self.distance_threshold;
        // Many voxels point at the same voxel (the embedding converges on the skeleton): each
        // target's nearest skeleton voxel is searched once.
        // (0: not searched yet, u32::MAX: no skeleton voxel, else its index + 1.)
        let mut nearest: Vec<u32> = vec![0; semantic.data.len()];
        // A target on a boundary voxel is its own nearest (distance 0, and points are distinct):
        // the embedding converges on thin skeletons, so most searches end here.
        for (j, p) in boundary_points.iter().enumerate() {
            nearest[semantic.index(p[0] as usize, p[1] as usize, p[2] as usize)] = j as u32 + 1;
        }
        let mut assigned: Vec<(usize, u32)> = Vec::new();
        semantic.for_each_voxel(|i, z, y, x| {
            if !semantic.data[i] || labels.data[i] != 0 {
                return;
            }
            let p = [z, y, x];
            let mut target = [0i64; 3];
            for (e, &a) in axes.iter().enumerate() {
                let v = (embedding(e, p) + coords[a][p[a]]) / scale[a];
                target[a] = v.clamp(0.0, (shape[a] - 1) as f64).round_ties_even() as i64;
            }
            let t = semantic.index(target[0] as usize, target[1] as usize, target[2] as usize);
            if nearest[t] == 0 {
                nearest[t] = tree.nearest(target).map_or(u32::MAX, |(j, _)| j as u32 + 1);
            }
            let found = (nearest[t] != u32::MAX).then(|| {
                let j = nearest[t] as usize - 1;
                let p = boundary_points[j];
                (j, (0..3).map(|a| (p[a] - target[a]).pow(2)).sum::<i64>())
            });
            let label = match found {
                Some((j, d2)) if (d2 as f64) <= max_d2 => boundary_labels[j],
                _ => 0,
            };
            assigned.push((i, label));
        });
        for (i, l) in assigned {
            labels.data[i] = l;
        }
        relabel_sequential(&mut labels);
        labels
    }
}

fn region_shape(b: &Bounds) -> [usize; 3] {
    [b[0].1 - b[0].0, b[1].1 - b[1].0, b[2].1 - b[2].0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place rounding is the `half` crate's on normal values, ties and overflow
    /// included, and the fast semantic threshold is `float16(v) > 0`.
    #[test]
    fn float16_rounding_matches_the_half_crate() {
        let mut rng = crate::rng::Rng::seed_from(9);
        let mut values: Vec<f32> = (0..100_000).map(|_| (rng.normal() * 10f64.powf(rng.uniform_range(-9.0, 5.0))) as f32).collect();
        values.extend([
            0.0,
            -0.0,
            65504.0,
            65519.0,
            65520.0,
            6.1035156e-5,
            1.0 + 2f32.powi(-11),
            1.0 + 3.0 * 2f32.powi(-11),
            f32::from_bits(0x3300_0000),
            f32::from_bits(0x3300_0001),
        ]);
        for v in values {
            let want = half::f16::from_f32(v).to_f64();
            assert_eq!(half(v).to_bits(), want.to_bits(), "{v:e}");
            assert_eq!(v > f32::from_bits(0x3300_0000), want > 0.0, "{v:e}");
        }
    }
}
