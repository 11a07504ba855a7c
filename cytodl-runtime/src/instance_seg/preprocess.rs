//! cyto_dl's `InstanceSegPreprocessd`: an instance label image becomes the training target of
//! instance segmentation, `dim + 4` channels:
//!
//! 0. the distance to the edge of each object's thinned core ("skeleton"; -10 off it),
//! 1. the semantic mask,
//! 2. `dim` embedding channels: per voxel, the offset (z in anisotropic units) to the nearest
//!    boundary voxel of its object's skeleton, smoothed within the object,
//! 3. the instances' inner boundaries,
//! 4. a cost map that weights the losses: smoothed skeleton surroundings, object interiors, and
//!    (x10) voxels where objects touch.
//!
//! The skeleton of an object is its erosion by `disk(thin)` (2-D) or `ball(thin)[::thin]` (3-D)
//! when that leaves one piece of at least 100 voxels; pieces are bridged by the skeleton of the
//! object when erosion splits it. Deviations from cyto_dl, both where cyto_dl cannot run as
//! written or reproducible without its lookup tables: a 3-D object that erosion removes entirely
//! gets the 2-D skeleton of its Z projection within the object (cyto_dl takes Lee's 3-D medial
//! axis); 2-D skeletons are textbook Zhang–Suen thinning (skimage's lookup table also removes
//! some corner pixels, so a few skeleton pixels differ); and a 2-D object split by erosion is
//! bridged with an in-plane disk (cyto_dl's 3-D structuring element fails on 2-D images).

use super::grid::{find_objects, inner_boundaries, label, pad_bounds, relabel_sequential, Grid};
use super::morphology::{ball_planes, cross, dilate, disk, distance_transform, erode, gaussian, masked_box_mean, remove_small_objects, skeletonize_planes};
use super::nearest::NearestPoints;
use crate::array::Array;

/// The transform's parameters (cyto_dl's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSegPreprocess {
    /// 2 or 3.
    pub dim: usize,
    /// Box size of the embedding's smoothing.
    pub kernel_size: usize,
    /// Erosion radius of the thinning.
    pub thin: usize,
    /// Z spacing relative to Y and X (3-D only).
    pub anisotropy: f64,
    /// Keep only each label's largest connected piece.
    pub keep_largest: bool,
}

impl Default for InstanceSegPreprocess {
    fn default() -> Self {
        InstanceSegPreprocess { dim: 3, kernel_size: 3, thin: 5, anisotropy: 2.6, keep_largest: true }
    }
}

/// A label image the transform cannot take.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreprocessError {
    #[error("InstanceSegPreprocessd(dim={dim}) takes a one-channel {dim}-D label image, got shape {shape:?}")]
    Shape { dim: usize, shape: Vec<usize> },
}

/// torch's float32 `linspace(0, stop, n)` as cyto_dl's embedding coordinates use it.
fn linspace32(stop: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![0.0];
    }
    let (stop, step) = (stop as f32, stop as f32 / (n - 1) as f32);
    let half = n / 2;
    (0..n).map(|k| if k < half { k as f32 * step } else { stop - (n - 1 - k) as f32 * step } as f64).collect()
}

impl InstanceSegPreprocess {
    fn scale(&self) -> [f64; 3] {
        if self.dim == 3 {
            [self.anisotropy, 1.0, 1.0]
        } else {
            [1.0, 1.0, 1.0]
        }
    }

    /// The target of a label image `[1, (Z,) Y, X]`: `[dim + 4, (Z,) Y, X]`.
    pub fn apply(&self, labels: &Array) -> Result<Array, PreprocessError> {
        let spatial: [usize; 3] = match (self.dim, labels.shape()) {
            (3, [1, z, y, x]) => [*z, *y, *x],
            (2, [1, y, x]) => [1, *y, *x],
            _ => return Err(PreprocessError::Shape { dim: self.dim, shape: labels.shape().to_vec() }),
        };
        // numpy's `astype(int)`: truncation.
        let mut im = Grid::new(spatial, labels.data().iter().map(|v| if *v > 0.0 { *v as u32 } else { 0 }).collect());
        // Numbered 1..n first (an order-keeping renumbering, so the result is cyto_dl's): label
        // ids can be any numbers, and per-label tables are sized by the largest.
        relabel_sequential(&mut im);
        if self.keep_largest {
            im = keep_largest_piece(&im);
        }
        let skel = self.shrink(&im);
        let on_skel = Grid::new(spatial, skel.data.iter().map(|v| *v != 0).collect());
        let skel_edt = distance_transform(&on_skel);
        let embed = self.embed_from_skeleton(&skel, &im);
        let cmap = self.cost_map(&skel_edt, &im);
        let bound = inner_boundaries(&im);

        let n: usize = spatial.iter().product();
        let mut out = Vec::with_capacity((self.dim + 4) * n);
        out.extend(skel_edt.data.iter().map(|d| if *d == 0.0 { -10.0 } else { *d as f32 }));
        out.extend(im.data.iter().map(|l| (*l > 0) as u8 as f32));
        for e in &embed {
            out.extend(e.data.iter().map(|v| *v as f32));
        }
        out.extend(bound.data.iter().map(|b| *b as u8 as f32));
        out.extend(cmap.data.iter().map(|v| *v as f32));
        let mut shape = vec![self.dim + 4];
        shape.extend_from_slice(&labels.shape()[1..]);
        Ok(Array::new(shape, out).expect("channels times voxels"))
    }

    /// Each label's thinned core, carrying the label (cyto_dl's `shrink`).
    fn shrink(&self, im: &Grid<u32>) -> Grid<u32> {
        let mut core = Grid::filled(im.shape, 0u32);
        for (i, b) in find_objects(im).into_iter().enumerate() {
            let Some(b) = b else { continue };
            let lab = i as u32 + 1;
            let region = pad_bounds(&b, 2, im.shape);
            let crop = im.crop(&region);
            let object = Grid::new(crop.shape, crop.data.iter().map(|v| *v == lab).collect());
            let (thinned, weight) = self.thin_object(&object);
            thinned.for_each_voxel(|j, z, y, x| {
                if thinned.data[j] {
                    let k = core.index(region[0].0 + z, region[1].0 + y, region[2].0 + x);
                    core.data[k] += weight;
                }
            });
        }
        // `skel * im`: the core takes the label of the image under it.
        Grid::new(im.shape, core.data.iter().zip(&im.data).map(|(c, l)| c * l).collect())
    }

    /// cyto_dl's `topology_preserving_thinning` of one object mask, and the value its voxels add
    /// to the core: 1, except for a 3-D object erosion removes, whose skeleton cyto_dl gets from
    /// skimage's 3-D `skeletonize` as uint8 255 (its core then carries 255 x its label, which
    /// no voxel of the object matches, so the object gets no embedding: kept as cyto_dl has it).
    fn thin_object(&self, object: &Grid<bool>) -> (Grid<bool>, u32) {
        let t = self.thin as isize;
        let footprint = if self.dim == 3 { ball_planes(t, t) } else { disk(t) };
        let eroded = remove_small_objects(&erode(object, &footprint, true), 100);
        let (eroded, pieces) = label(&eroded);
        if pieces == 1 {
            return (Grid::new(object.shape, eroded.data.iter().map(|v| *v != 0).collect()), 1);
        }
        // The object's skeleton: per plane in 2-D, of the Z projection (stacked) in 3-D.
        let skeleton = if self.dim == 2 {
            skeletonize_planes(object)
        } else {
            let [nz, ny, nx] = object.shape;
            let mut projection = Grid::filled([1, ny, nx], false);
            object.for_each_voxel(|i, _, y, x| projection.data[y * nx + x] |= object.data[i]);
            let flat = skeletonize_planes(&projection);
            let tall = Grid::new(object.shape, (0..nz).flat_map(|_| flat.data.iter().copied()).collect::<Vec<_>>());
            if pieces == 0 {
                // Deviation (module docs): within the object.
                return (Grid::new(object.shape, tall.data.iter().zip(&object.data).map(|(s, o)| *s && *o).collect()), 255);
            }
            tall
        };
        if pieces == 0 {
            return (skeleton, 1);
        }
        // Bridge the pieces with the parts of the skeleton outside them that touch two or more.
        let outside = Grid::new(object.shape, skeleton.data.iter().zip(&eroded.data).map(|(s, e)| *s && *e == 0).collect());
        let bridges = label_planes(&outside);
        let mut core: Vec<u32> = eroded.data.clone();
        let ring = disk(3);
        let max = bridges.data.iter().copied().max().unwrap_or(0);
        for b in 1..=max {
            let piece = Grid::new(object.shape, bridges.data.iter().map(|v| *v == b).collect());
            if !piece.data.iter().any(|v| *v) {
                continue;
            }
            let grown = dilate(&piece, &ring);
            let mut touched: Vec<u32> = grown.data.iter().zip(&eroded.data).filter(|(g, e)| **g && **e != 0).map(|(_, e)| *e).collect();
            touched.sort_unstable();
            touched.dedup();
            if touched.len() > 1 {
                for (c, g) in core.iter_mut().zip(&grown.data) {
                    *c += *g as u32;
                }
            }
        }
        let inside = erode(object, &cross(), true);
        (Grid::new(object.shape, core.iter().zip(&inside.data).map(|(c, i)| *i && *c > 0).collect()), 1)
    }

    /// Per voxel of each object, the offset to the nearest skeleton-boundary voxel of its label
    /// (cyto_dl's `embed_from_skel`), smoothed within the object.
    fn embed_from_skeleton(&self, skel: &Grid<u32>, im: &Grid<u32>) -> Vec<Grid<f64>> {
        let spatial = im.shape;
        let dims: Vec<usize> = ((3 - self.dim)..3).collect();
        let scale = self.scale();
        let mut embed: Vec<Grid<f64>> = (0..self.dim).map(|_| Grid::filled(spatial, 0.0)).collect();
        // Objects without their skeleton voxels.
        let iseg = Grid::new(spatial, im.data.iter().zip(&skel.data).map(|(l, s)| if *s != 0 { 0 } else { *l }).collect());
        let boundary = inner_boundaries(skel);
        let skel_boundary = Grid::new(spatial, skel.data.iter().zip(&boundary.data).map(|(s, b)| if *b { *s } else { 0 }).collect());
        for (i, b) in find_objects(&iseg).into_iter().enumerate() {
            let Some(b) = b else { continue };
            let lab = i as u32 + 1;
            let seg = iseg.crop(&b);
            let sb = skel_boundary.crop(&b);
            let crop_shape = seg.shape;
            // Anisotropic coordinates, scaled to integers for the exact search (x 10 keeps 2.6).
            let key = |z: usize, y: usize, x: usize| -> [i64; 3] {
                let p = [z, y, x];
                let mut k = [0i64; 3];
                for a in &dims {
                    k[*a] = (p[*a] as f64 * scale[*a] * 10.0).round() as i64;
                }
                k
            };
            let mut skel_points = Vec::new();
            let mut skel_coords = Vec::new();
            sb.for_each_voxel(|j, z, y, x| {
                if sb.data[j] == lab {
                    skel_points.push(key(z, y, x));
                    skel_coords.push([z, y, x]);
                }
            });
            if skel_points.is_empty() {
                continue;
            }
            let tree = NearestPoints::new(&skel_points);
            let mut crop_embed: Vec<Grid<f64>> = (0..self.dim).map(|_| Grid::filled(crop_shape, 0.0)).collect();
            seg.for_each_voxel(|j, z, y, x| {
                if seg.data[j] != lab {
                    return;
                }
                if let Some((k, _)) = tree.nearest(key(z, y, x)) {
                    let target = skel_coords[k];
                    for (e, a) in dims.iter().enumerate() {
                        // float32 in cyto_dl (`torch.from_numpy(...).float()`).
                        crop_embed[e].data[j] = (target[*a] as f64 * scale[*a]) as f32 as f64;
                    }
                }
            });
            let coords: Vec<Vec<f64>> = (0..3).map(|a| linspace32(crop_shape[a] as f64 * scale[a] - 1.0, crop_shape[a])).collect();
            for (e, a) in dims.iter().enumerate() {
                // Zeros are "no value" to the smoothing (a real 0 coordinate too, as in cyto_dl).
                let valid = Grid::new(crop_shape, crop_embed[e].data.iter().map(|v| *v != 0.0).collect());
                let smooth = masked_box_mean(&crop_embed[e], &valid, self.kernel_size, self.dim == 2);
                smooth.for_each_voxel(|j, z, y, x| {
                    let v = smooth.data[j];
                    if v != 0.0 {
                        let p = [z, y, x];
                        let k = embed[e].index(b[0].0 + z, b[1].0 + y, b[2].0 + x);
                        embed[e].data[k] += v - coords[*a][p[*a]];
                    }
                });
            }
        }
        embed
    }

    /// The loss weights (cyto_dl's `_get_cmap`).
    fn cost_map(&self, skel_edt: &Grid<f64>, im: &Grid<u32>) -> Grid<f64> {
        let shape = im.shape;
        let points = Grid::new(
            shape,
            im.data
                .iter()
                .zip(&skel_edt.data)
                .map(|(l, d)| {
                    let kept = if *d > 0.0 { 0 } else { *l };
                    kept != 0 || (*d > 0.0 && *d < 3.0)
                })
                .map(|b| b as u8 as f64)
                .collect(),
        );
        let scale = self.scale();
        let sigma = if self.dim == 3 { [(2.0 / scale[0]).max(1.0), 2.0, 2.0] } else { [0.0, 2.0, 2.0] };
        let mut cmap = gaussian(&points, sigma);
        let max = cmap.data.iter().copied().fold(f64::MIN, f64::max);
        let contacts = object_contacts(im);
        for ((c, l), t) in cmap.data.iter_mut().zip(&im.data).zip(&contacts.data) {
            *c /= max;
            if *l > 0 {
                *c += 0.5;
            }
            *c += 0.5;
            if *t {
                *c += 10.0;
            }
        }
        cmap
    }
}

/// Each Z plane labelled on its own, labels continuing across planes (cyto_dl's `label_2d`).
fn label_planes(mask: &Grid<bool>) -> Grid<u32> {
    let [nz, ny, nx] = mask.shape;
    let mut out = Grid::filled(mask.shape, 0u32);
    let mut offset = 0;
    for z in 0..nz {
        let plane = Grid::new([1, ny, nx], mask.data[z * ny * nx..(z + 1) * ny * nx].to_vec());
        let (l, n) = label(&plane);
        for (k, v) in l.data.iter().enumerate() {
            if *v > 0 {
                out.data[z * ny * nx + k] = v + offset;
            }
        }
        offset += n;
    }
    out
}

/// Voxels on the (thick) boundary of two or more objects (cyto_dl's `_get_object_contacts`).
fn object_contacts(im: &Grid<u32>) -> Grid<bool> {
    let mut count = Grid::filled(im.shape, 0u8);
    for (i, b) in find_objects(im).into_iter().enumerate() {
        let Some(b) = b else { continue };
        let lab = i as u32 + 1;
        let crop = im.crop(&b);
        let object = Grid::new(crop.shape, crop.data.iter().map(|v| (*v == lab) as u32).collect());
        // find_boundaries(mode="thick") on the box: a neighbour of another value, either side.
        let thick = thick_boundaries(&object);
        thick.for_each_voxel(|j, z, y, x| {
            if thick.data[j] {
                let k = count.index(b[0].0 + z, b[1].0 + y, b[2].0 + x);
                count.data[k] = count.data[k].saturating_add(1);
            }
        });
    }
    Grid::new(im.shape, count.data.iter().map(|c| *c > 1).collect())
}

/// `find_boundaries(labels, mode="thick")`: voxels with a face neighbour of another value.
fn thick_boundaries(labels: &Grid<u32>) -> Grid<bool> {
    let inner = inner_boundaries(labels);
    let background_side = Grid::new(labels.shape, labels.data.iter().map(|v| (*v == 0) as u32).collect());
    let outer = inner_boundaries(&background_side);
    Grid::new(labels.shape, inner.data.iter().zip(&outer.data).map(|(a, b)| *a || *b).collect())
}

/// Each label's largest face-connected piece (cyto_dl's `keep_largest_cc`).
fn keep_largest_piece(im: &Grid<u32>) -> Grid<u32> {
    let mut out = Grid::filled(im.shape, 0u32);
    for (i, b) in find_objects(im).into_iter().enumerate() {
        let Some(b) = b else { continue };
        let lab = i as u32 + 1;
        let crop = im.crop(&b);
        let (pieces, n) = label(&Grid::new(crop.shape, crop.data.iter().map(|v| *v == lab).collect()));
        let keep = if n > 1 {
            let mut sizes = vec![0usize; n as usize + 1];
            for p in &pieces.data {
                sizes[*p as usize] += 1;
            }
            // The first of the largest (numpy's argmax).
            (1..=n as usize).fold(1, |best, k| if sizes[k] > sizes[best] { k } else { best }) as u32
        } else {
            1
        };
        pieces.for_each_voxel(|j, z, y, x| {
            if pieces.data[j] == keep {
                let k = out.index(b[0].0 + z, b[1].0 + y, b[2].0 + x);
                out.data[k] += lab;
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Label ids are only names: huge or sparse ids give the target of ids 1..n in the same order.
    #[test]
    fn label_ids_are_renumbered_in_order() {
        let disks = |a: f32, b: f32| {
            let data = (0..40 * 40)
                .map(|i| {
                    let (y, x) = ((i / 40) as f32, (i % 40) as f32);
                    if (y - 12.0).powi(2) + (x - 12.0).powi(2) <= 64.0 {
                        a
                    } else if (y - 26.0).powi(2) + (x - 27.0).powi(2) <= 81.0 {
                        b
                    } else {
                        0.0
                    }
                })
                .collect();
            Array::new(vec![1, 40, 40], data).expect("shape")
        };
        let p = InstanceSegPreprocess { dim: 2, ..InstanceSegPreprocess::default() };
        let big = p.apply(&disks(7_000_000.0, 3.0)).expect("target");
        let small = p.apply(&disks(2.0, 1.0)).expect("target");
        assert_eq!(big, small);
        assert_eq!(big.shape(), &[6, 40, 40]);
    }
}
