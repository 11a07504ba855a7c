//! The few scipy.ndimage / skimage operations instance segmentation is built from, on label
//! volumes `[Z, Y, X]` (a 2-D image is Z = 1, which no operation here treats differently):
//! connected components with face connectivity, bounding boxes, boundaries and sequential
//! relabelling, each with the library's exact semantics.

/// A label (or mask) volume: `[Z, Y, X]`, C order.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid<T> {
    pub shape: [usize; 3],
    pub data: Vec<T>,
}

/// A box `[start, stop)` per axis (scipy's `find_objects` slices).
pub type Bounds = [(usize, usize); 3];

impl<T: Copy + Default> Grid<T> {
    pub fn new(shape: [usize; 3], data: Vec<T>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Grid { shape, data }
    }

    pub fn filled(shape: [usize; 3], value: T) -> Self {
        Grid { shape, data: vec![value; shape.iter().product()] }
    }

    #[inline]
    pub fn index(&self, z: usize, y: usize, x: usize) -> usize {
        (z * self.shape[1] + y) * self.shape[2] + x
    }

    /// The values inside `b`, as a grid of their own.
    pub fn crop(&self, b: &Bounds) -> Grid<T> {
        let shape = [b[0].1 - b[0].0, b[1].1 - b[1].0, b[2].1 - b[2].0];
        let mut data = Vec::with_capacity(shape.iter().product());
        for z in b[0].0..b[0].1 {
            for y in b[1].0..b[1].1 {
                let row = self.index(z, y, 0);
                data.extend_from_slice(&self.data[row + b[2].0..row + b[2].1]);
            }
        }
        Grid { shape, data }
    }

    /// Calls `f(index, z, y, x)` for every voxel.
    pub fn for_each_voxel(&self, mut f: impl FnMut(usize, usize, usize, usize)) {
        let mut i = 0;
        for z in 0..self.shape[0] {
            for y in 0..self.shape[1] {
                for x in 0..self.shape[2] {
                    f(i, z, y, x);
                    i += 1;
                }
            }
        }
    }
}

/// `bounds` grown by `pad` on each side, within `shape` (cyto_dl's `pad_slice`).
pub fn pad_bounds(b: &Bounds, pad: usize, shape: [usize; 3]) -> Bounds {
    let mut out = *b;
    for a in 0..3 {
        out[a] = (b[a].0.saturating_sub(pad), (b[a].1 + pad).min(shape[a]));
    }
    out
}

/// The face neighbours (6 in 3-D) of voxel `(z, y, x)` inside `shape`.
#[inline]
fn face_neighbours(shape: [usize; 3], z: usize, y: usize, x: usize, mut f: impl FnMut(usize, usize, usize)) {
    if z > 0 {
        f(z - 1, y, x);
    }
    if z + 1 < shape[0] {
        f(z + 1, y, x);
    }
    if y > 0 {
        f(z, y - 1, x);
    }
    if y + 1 < shape[1] {
        f(z, y + 1, x);
    }
    if x > 0 {
        f(z, y, x - 1);
    }
    if x + 1 < shape[2] {
        f(z, y, x + 1);
    }
}

/// `scipy.ndimage.label(mask)` with its default structure (face connectivity): components
/// numbered 1.. in the raster order of their first voxel; the count.
pub fn label(mask: &Grid<bool>) -> (Grid<u32>, u32) {
    let shape = mask.shape;
    let mut labels = Grid::filled(shape, 0u32);
    let mut next = 0u32;
    let mut stack: Vec<(usize, usize, usize)> = Vec::new();
    mask.for_each_voxel(|i, z, y, x| {
        if !mask.data[i] || labels.data[i] != 0 {
            return;
        }
        next += 1;
        labels.data[i] = next;
        stack.push((z, y, x));
        while let Some((cz, cy, cx)) = stack.pop() {
            face_neighbours(shape, cz, cy, cx, |nz, ny, nx| {
                let j = (nz * shape[1] + ny) * shape[2] + nx;
                if mask.data[j] && labels.data[j] == 0 {
                    labels.data[j] = next;
                    stack.push((nz, ny, nx));
                }
            });
        }
    });
    (labels, next)
}

/// `scipy.ndimage.find_objects(labels)`: the bounding box of each label 1..=max (`None` for a
/// label that does not occur).
pub fn find_objects(labels: &Grid<u32>) -> Vec<Option<Bounds>> {
    let max = labels.data.iter().copied().max().unwrap_or(0) as usize;
    let mut out: Vec<Option<Bounds>> = vec![None; max];
    labels.for_each_voxel(|i, z, y, x| {
        let l = labels.data[i] as usize;
        if l == 0 {
            return;
        }
        let p = [z, y, x];
        match &mut out[l - 1] {
            Some(b) => {
                for a in 0..3 {
                    b[a].0 = b[a].0.min(p[a]);
                    b[a].1 = b[a].1.max(p[a] + 1);
                }
            }
            slot @ None => *slot = Some([(z, z + 1), (y, y + 1), (x, x + 1)]),
        }
    });
    out
}

/// `skimage.segmentation.find_boundaries(labels, mode="inner")`: labelled voxels with a face
/// neighbour of another value (neighbours outside the image do not count).
pub fn inner_boundaries(labels: &Grid<u32>) -> Grid<bool> {
    let shape = labels.shape;
    let mut out = Grid::filled(shape, false);
    labels.for_each_voxel(|i, z, y, x| {
        let v = labels.data[i];
        if v == 0 {
            return;
        }
        let mut differs = false;
        face_neighbours(shape, z, y, x, |nz, ny, nx| differs |= labels.data[(nz * shape[1] + ny) * shape[2] + nx] != v);
        out.data[i] = differs;
    });
    out
}

/// `skimage.segmentation.relabel_sequential(labels)`: the labels present, in increasing order,
/// become 1, 2, ...
pub fn relabel_sequential(labels: &mut Grid<u32>) {
    let present = present_labels(labels);
    if present.iter().enumerate().all(|(i, v)| *v as usize == i + 1) {
        return;
    }
    let max = present.last().copied().unwrap_or(0) as usize;
    if max <= 4 * labels.data.len() + 1024 {
        let mut lookup = vec![0u32; max + 1];
        for (i, v) in present.iter().enumerate() {
            lookup[*v as usize] = i as u32 + 1;
        }
        labels.data.iter_mut().for_each(|v| *v = lookup[*v as usize]);
    } else {
        // Sparse huge ids: a map instead of a table sized by the largest.
        let lookup: std::collections::HashMap<u32, u32> = present.iter().enumerate().map(|(i, v)| (*v, i as u32 + 1)).collect();
        labels.data.iter_mut().filter(|v| **v != 0).for_each(|v| *v = lookup[v]);
    }
}

/// The non-zero labels present, in increasing order.
pub fn present_labels(labels: &Grid<u32>) -> Vec<u32> {
    let max = labels.data.iter().copied().max().unwrap_or(0) as usize;
    if max <= 4 * labels.data.len() + 1024 {
        let mut seen = vec![false; max + 1];
        labels.data.iter().for_each(|v| seen[*v as usize] = true);
        (1..=max).filter(|l| seen[*l]).map(|l| l as u32).collect()
    } else {
        let mut present: Vec<u32> = labels.data.iter().copied().filter(|v| *v != 0).collect();
        present.sort_unstable();
        present.dedup();
        present
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid2(rows: &[&str]) -> Grid<bool> {
        let (h, w) = (rows.len(), rows[0].len());
        Grid::new([1, h, w], rows.iter().flat_map(|r| r.chars().map(|c| c == '#')).collect())
    }

    /// Diagonal neighbours are separate components (face connectivity); numbering follows the
    /// raster order of each component's first voxel.
    #[test]
    fn label_uses_face_connectivity_in_raster_order() {
        let (l, n) = label(&grid2(&["#..#", ".#.#", "...."]));
        assert_eq!(n, 3);
        assert_eq!(l.data, vec![1, 0, 0, 2, 0, 3, 0, 2, 0, 0, 0, 0]);
        let objects = find_objects(&l);
        assert_eq!(objects[1], Some([(0, 1), (0, 2), (3, 4)]));
    }

    #[test]
    fn inner_boundaries_and_relabelling() {
        let mut l = Grid::new([1, 3, 3], vec![5, 5, 5, 5, 5, 5, 5, 5, 9]);
        let b = inner_boundaries(&l);
        // Only the voxels touching label 9 differ from a neighbour; the image edge is no boundary.
        assert_eq!(b.data, vec![false, false, false, false, false, true, false, true, true]);
        relabel_sequential(&mut l);
        assert_eq!(l.data, vec![1, 1, 1, 1, 1, 1, 1, 1, 2]);
    }
}
