//! Binary morphology and filters on [`Grid`]s, with the semantics of the scipy / skimage calls
//! cyto_dl's instance-segmentation targets use: erosion and dilation by a structuring element,
//! small-object removal, Zhang–Suen thinning (skimage's 2-D `skeletonize`), the exact Euclidean
//! distance transform (`edt`), a Gaussian filter (`ndimage.gaussian_filter`, mode `nearest`) and
//! a NaN-skipping box mean (astropy's `convolve`, boundary `extend`).

use super::grid::{label, Grid};

/// A structuring element: the offsets `(dz, dy, dx)` it covers.
pub type Footprint = Vec<[isize; 3]>;

/// skimage's `disk(r)` in the Y / X plane: `dy² + dx² <= r²`.
pub fn disk(r: isize) -> Footprint {
    let mut out = Vec::new();
    for dy in -r..=r {
        for dx in -r..=r {
            if dy * dy + dx * dx <= r * r {
                out.push([0, dy, dx]);
            }
        }
    }
    out
}

/// skimage's `ball(r)[::step]` (every `step`-th Z plane of the ball, as offsets in planes).
/// The kept planes are adjacent in the element (scipy centres it at `planes / 2`).
pub fn ball_planes(r: isize, step: isize) -> Footprint {
    let planes: Vec<isize> = (0..).map(|k| -r + k * step).take_while(|dz| *dz <= r).collect();
    let centre = (planes.len() / 2) as isize;
    let mut out = Vec::new();
    for (plane, dz) in planes.iter().enumerate() {
        for dy in -r..=r {
            for dx in -r..=r {
                if dz * dz + dy * dy + dx * dx <= r * r {
                    out.push([plane as isize - centre, dy, dx]);
                }
            }
        }
    }
    out
}

/// The face cross (scipy's default structure).
pub fn cross() -> Footprint {
    vec![[0, 0, 0], [-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]]
}

fn at(shape: [usize; 3], p: [isize; 3]) -> Option<usize> {
    if (0..3).all(|a| p[a] >= 0 && (p[a] as usize) < shape[a]) {
        Some((p[0] as usize * shape[1] + p[1] as usize) * shape[2] + p[2] as usize)
    } else {
        None
    }
}

/// `scipy.ndimage.binary_erosion(mask, footprint, border_value)`: a voxel stays when every
/// offset of the footprint lands on the mask (outside the image counts as `border_value`).
pub fn erode(mask: &Grid<bool>, footprint: &Footprint, border_value: bool) -> Grid<bool> {
    let mut out = Grid::filled(mask.shape, false);
    mask.for_each_voxel(|i, z, y, x| {
        if !mask.data[i] {
            return;
        }
        out.data[i] = footprint.iter().all(|o| match at(mask.shape, [z as isize + o[0], y as isize + o[1], x as isize + o[2]]) {
            Some(j) => mask.data[j],
            None => border_value,
        });
    });
    out
}

/// `scipy.ndimage.binary_dilation(mask, footprint)` (outside the image is background).
pub fn dilate(mask: &Grid<bool>, footprint: &Footprint) -> Grid<bool> {
    let mut out = Grid::filled(mask.shape, false);
    mask.for_each_voxel(|i, z, y, x| {
        if !mask.data[i] {
            return;
        }
        for o in footprint {
            if let Some(j) = at(mask.shape, [z as isize + o[0], y as isize + o[1], x as isize + o[2]]) {
                out.data[j] = true;
            }
        }
    });
    out
}

/// `skimage.morphology.remove_small_objects(mask, min_size)` (face connectivity): components
/// of fewer than `min_size` voxels are removed.
pub fn remove_small_objects(mask: &Grid<bool>, min_size: usize) -> Grid<bool> {
    let (labels, n) = label(mask);
    let mut sizes = vec![0usize; n as usize + 1];
    for l in &labels.data {
        sizes[*l as usize] += 1;
    }
    Grid::new(mask.shape, labels.data.iter().map(|l| *l != 0 && sizes[*l as usize] >= min_size).collect())
}

/// Zhang–Suen thinning of each Z plane (skimage's `skeletonize` of a 2-D image): two
/// sub-iterations per pass remove border pixels whose removal keeps the shape connected, until
/// a pass removes nothing. Pixels outside the image count as background.
pub fn skeletonize_planes(mask: &Grid<bool>) -> Grid<bool> {
    let [nz, ny, nx] = mask.shape;
    let mut img = mask.clone();
    for z in 0..nz {
        loop {
            let mut changed = false;
            for first in [true, false] {
                let mut remove = Vec::new();
                for y in 0..ny {
                    for x in 0..nx {
                        if !img.data[img.index(z, y, x)] {
                            continue;
                        }
                        let px = |dy: isize, dx: isize| -> bool {
                            let (yy, xx) = (y as isize + dy, x as isize + dx);
                            yy >= 0 && xx >= 0 && (yy as usize) < ny && (xx as usize) < nx && img.data[img.index(z, yy as usize, xx as usize)]
                        };
                        // P2..P9 clockwise from north.
                        let p = [px(-1, 0), px(-1, 1), px(0, 1), px(1, 1), px(1, 0), px(1, -1), px(0, -1), px(-1, -1)];
                        let b = p.iter().filter(|v| **v).count();
                        let a = (0..8).filter(|&k| !p[k] && p[(k + 1) % 8]).count();
                        let (p2, p4, p6, p8) = (p[0], p[2], p[4], p[6]);
                        // Pass 1: not all of N, E, S and not all of E, S, W (pass 2: N, E, W / N, S, W).
                        let ok = if first { !(p4 && p6 && (p2 || p8)) } else { !(p2 && p8 && (p4 || p6)) };
                        if (2..=6).contains(&b) && a == 1 && ok {
                            remove.push(img.index(z, y, x));
                        }
                    }
                }
                changed |= !remove.is_empty();
                for i in remove {
                    img.data[i] = false;
                }
            }
            if !changed {
                break;
            }
        }
    }
    img
}

/// The exact Euclidean distance of each foreground voxel to the nearest background voxel
/// (`edt.edt`, unit spacing, the image border not counting as background); 0 on background.
/// Felzenszwalb–Huttenlocher's separable squared-distance transform, axis by axis.
pub fn distance_transform(mask: &Grid<bool>) -> Grid<f64> {
    const INF: f64 = 1e20;
    let shape = mask.shape;
    let mut d: Vec<f64> = mask.data.iter().map(|m| if *m { INF } else { 0.0 }).collect();
    for axis in 0..3 {
        if shape[axis] > 1 {
            map_lines(&mut d, shape, axis, lower_envelope);
        }
    }
    Grid::new(shape, d.into_iter().map(|v| if v >= INF { INF.sqrt() } else { v.sqrt() }).collect())
}

/// One axis of the squared distance transform: `out[q] = min_p (q - p)² + f[p]`.
fn lower_envelope(f: &[f64], out: &mut [f64]) {
    let n = f.len();
    let mut v = vec![0usize; n];
    let mut zb = vec![0.0f64; n + 1];
    let mut k = 0usize;
    zb[0] = f64::NEG_INFINITY;
    zb[1] = f64::INFINITY;
    let inter = |q: usize, p: usize| ((f[q] + (q * q) as f64) - (f[p] + (p * p) as f64)) / (2.0 * q as f64 - 2.0 * p as f64);
    for q in 1..n {
        let mut s = inter(q, v[k]);
        while s <= zb[k] {
            k -= 1;
            s = inter(q, v[k]);
        }
        k += 1;
        v[k] = q;
        zb[k] = s;
        zb[k + 1] = f64::INFINITY;
    }
    k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while zb[k + 1] < q as f64 {
            k += 1;
        }
        let p = v[k];
        *o = (q as f64 - p as f64).powi(2) + f[p];
    }
}

/// `scipy.ndimage.gaussian_filter(image, sigma, mode="nearest", truncate=4.0)`: a normalised
/// Gaussian kernel of radius `int(4 σ + 0.5)` per axis, the edge value repeated outside.
pub fn gaussian(image: &Grid<f64>, sigma: [f64; 3]) -> Grid<f64> {
    let shape = image.shape;
    let mut data = image.data.clone();
    for axis in 0..3 {
        let n = shape[axis];
        if sigma[axis] <= 0.0 || n == 1 {
            continue;
        }
        let radius = (4.0 * sigma[axis] + 0.5) as isize;
        let mut weights: Vec<f64> = (-radius..=radius).map(|x| (-0.5 / (sigma[axis] * sigma[axis]) * (x * x) as f64).exp()).collect();
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        map_lines(&mut data, shape, axis, |line, out| {
            for (k, o) in out.iter_mut().enumerate() {
                *o = weights.iter().enumerate().map(|(t, w)| w * line[(k as isize + t as isize - radius).clamp(0, n as isize - 1) as usize]).sum();
            }
        });
    }
    Grid::new(shape, data)
}

/// Replaces every line of `data` (a `[Z, Y, X]` volume) along `axis` by `f(line, out)`.
fn map_lines(data: &mut [f64], shape: [usize; 3], axis: usize, mut f: impl FnMut(&[f64], &mut [f64])) {
    let strides = [shape[1] * shape[2], shape[2], 1];
    let n = shape[axis];
    let others: Vec<usize> = (0..3).filter(|a| *a != axis).collect();
    let (mut line, mut out) = (vec![0.0; n], vec![0.0; n]);
    for i in 0..shape[others[0]] {
        for j in 0..shape[others[1]] {
            let base = i * strides[others[0]] + j * strides[others[1]];
            for (k, v) in line.iter_mut().enumerate() {
                *v = data[base + k * strides[axis]];
            }
            f(&line, &mut out);
            for (k, v) in out.iter().enumerate() {
                data[base + k * strides[axis]] = *v;
            }
        }
    }
}

/// astropy's `convolve(values, box_of_size³ / size³, boundary="extend")` with NaN
/// interpolation, where `valid` marks the non-NaN voxels: each valid voxel becomes the mean of the
/// valid voxels in its box (out-of-image voxels repeat the edge voxel, valid or not); others 0.
/// `planar` restricts the box to the Y / X plane (a 2-D image).
pub fn masked_box_mean(values: &Grid<f64>, valid: &Grid<bool>, size: usize, planar: bool) -> Grid<f64> {
    let shape = values.shape;
    let r = (size / 2) as isize;
    let rz = if planar { 0 } else { r };
    let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    let mut out = Grid::filled(shape, 0.0);
    values.for_each_voxel(|i, z, y, x| {
        if !valid.data[i] {
            return;
        }
        let (mut sum, mut count) = (0.0, 0usize);
        for dz in -rz..=rz {
            for dy in -r..=r {
                for dx in -r..=r {
                    let j = values.index(clamp(z as isize + dz, shape[0]), clamp(y as isize + dy, shape[1]), clamp(x as isize + dx, shape[2]));
                    if valid.data[j] {
                        sum += values.data[j];
                        count += 1;
                    }
                }
            }
        }
        out.data[i] = sum / count as f64;
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footprints_are_skimages() {
        assert_eq!(disk(5).len(), 81);
        assert_eq!(disk(3).len(), 29);
        // ball(5)[::5]: the centre voxel two planes out, disk(5) in the middle plane.
        let b = ball_planes(5, 5);
        assert_eq!(b.len(), 83);
        assert!(b.contains(&[-1, 0, 0]) && b.contains(&[1, 0, 0]) && !b.contains(&[1, 0, 1]));
    }

    /// The distance transform of a bar: 1 at its edges, growing inward; the image border is not
    /// background.
    #[test]
    fn distance_transform_is_exact() {
        let mask = Grid::new([1, 1, 7], vec![false, true, true, true, true, true, true]);
        let d = distance_transform(&mask);
        assert_eq!(d.data, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let mut m = Grid::filled([1, 5, 5], true);
        m.data[0] = false;
        let d = distance_transform(&m);
        assert!((d.data[24] - (32f64).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn gaussian_preserves_a_constant() {
        let g = gaussian(&Grid::filled([3, 9, 9], 2.5), [1.0, 2.0, 2.0]);
        assert!(g.data.iter().all(|v| (v - 2.5).abs() < 1e-12));
    }
}
